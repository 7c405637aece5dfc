// Package hub implements hubs: named, partitioned, append-only, replayable
// event streams on NATS JetStream.
//
// Each partition of a hub is its own stream (`hub-<name>-<p>`, subject
// `hub.<name>.<p>`), so partitions scale and replay independently. Publishers
// do not store one message per event: concurrent publishes to a partition are
// packed into records (see record.go) and a publish returns when its record is
// stored, which turns the server's per-message cost (and, with sync always,
// its per-message fsync) into a per-record cost.
//
// Hub definitions, consumer-group checkpoints and group control (pause for
// replay) live in KV buckets; every update of a checkpoint is a
// compare-and-set on the entry's revision.
package hub

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/service"
)

// Errors returned by the service. Callers map them to user-facing answers.
var (
	// ErrNotFound: the hub does not exist (or was deleted meanwhile).
	ErrNotFound = errors.New("hub not found")
	// ErrExists: Create was called for a name that is taken.
	ErrExists = errors.New("hub already exists")
	// ErrInvalid wraps every validation error of caller input.
	ErrInvalid = errors.New("invalid")
	// ErrTooLarge: an event is bigger than the maximum event size.
	ErrTooLarge = errors.New("event too large")
	// ErrInsufficientStorage: the engine refused to create a hub's
	// partitions for lack of storage: its retention bytes do not fit what
	// the server or the account may still reserve. Nothing was created.
	ErrInsufficientStorage = errors.New("insufficient storage")
	// ErrUnavailable: the engine did not take the write, or did not say
	// whether it did: it is unreachable, or a partition's stream has no
	// leader for the moment (a node is down, a leader is being elected).
	// The error's text says whether anything may have been stored.
	// Retrying later is the answer; events with message ids are not
	// stored twice.
	ErrUnavailable = errors.New("engine unavailable")
)

const (
	// DefaultPartitions is the partition count of a hub created without one.
	DefaultPartitions = 4
	// MaxPartitions bounds the partitions of one hub.
	MaxPartitions = 1024
	// DefaultRetention is how long events are kept when no age is given.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultGroup is the consumer group used when none is named.
	DefaultGroup = "$Default"

	// DefaultDuplicateWindow is how long a message id is remembered when
	// Options.DuplicateWindow is not set: ten minutes, as the duplicate
	// detection of Azure Service Bus.
	DefaultDuplicateWindow = 10 * time.Minute
	// MinDuplicateWindow and MaxDuplicateWindow bound Options.DuplicateWindow.
	MinDuplicateWindow = time.Second
	MaxDuplicateWindow = 7 * 24 * time.Hour

	bucketHubs        = "sluice-hubs"
	bucketCheckpoints = "sluice-checkpoints"
	bucketGroups      = "sluice-groups"
	bucketIDs         = "sluice-hub-ids"
)

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	groupRE = regexp.MustCompile(`^\$?[A-Za-z0-9][A-Za-z0-9_-]{0,49}$`)
)

// ValidateName reports whether name can name a hub.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w hub name %q: use 1-64 letters, digits, '-' or '_', starting with a letter or digit", ErrInvalid, name)
	}
	return nil
}

// ValidateGroup reports whether name can name a consumer group.
func ValidateGroup(name string) error {
	if !groupRE.MatchString(name) {
		return fmt.Errorf("%w consumer group %q: use 1-50 letters, digits, '-' or '_', optionally after a leading '$'", ErrInvalid, name)
	}
	return nil
}

// Config defines a hub.
type Config struct {
	Name string `json:"name"`
	// Partitions is the number of partitions, 1..MaxPartitions. Default 4.
	// It cannot change after creation: the partition of a key depends on it.
	Partitions int `json:"partitions"`
	// RetentionAge is how long events are kept. Default 7 days.
	RetentionAge time.Duration `json:"retention_age"`
	// RetentionBytes bounds the stored bytes of the whole hub, split evenly
	// across partitions; the oldest records go first. 0 means no bound.
	RetentionBytes int64 `json:"retention_bytes"`
	// Replicas is how many copies a NATS cluster keeps of each partition,
	// 1 to 5. Default (0): the service's (Options.Replicas). An existing
	// partition with more replicas keeps them.
	Replicas int `json:"replicas,omitempty"`
}

// MaxReplicas is the most copies JetStream keeps of a stream.
const MaxReplicas = 5

// Info is a hub's stored definition.
type Info struct {
	Config
	Created time.Time `json:"created"`
	// Deleting is set while the hub is being deleted: the hub is then
	// gone for every purpose but finishing its deletion (see Delete).
	Deleting bool `json:"deleting,omitempty"`
}

func (c *Config) withDefaults() Config {
	out := *c
	out.Partitions = cmp.Or(out.Partitions, DefaultPartitions)
	out.RetentionAge = cmp.Or(out.RetentionAge, DefaultRetention)
	return out
}

func (c *Config) validate() error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		return fmt.Errorf("%w partitions %d: must be between 1 and %d", ErrInvalid, c.Partitions, MaxPartitions)
	}
	if c.RetentionAge < time.Second {
		return fmt.Errorf("%w retention %s: must be at least 1s", ErrInvalid, c.RetentionAge)
	}
	if c.RetentionBytes < 0 {
		return fmt.Errorf("%w retention bytes %d: must not be negative", ErrInvalid, c.RetentionBytes)
	}
	if c.Replicas < 0 || c.Replicas > MaxReplicas {
		return fmt.Errorf("%w replicas %d: must be between 1 and %d (0: the instance's default)", ErrInvalid, c.Replicas, MaxReplicas)
	}
	return nil
}

// StreamName is the JetStream stream holding one partition of a hub.
func StreamName(hub string, partition int) string { return fmt.Sprintf("hub-%s-%d", hub, partition) }

func subject(hub string, partition int) string { return fmt.Sprintf("hub.%s.%d", hub, partition) }

// Options tune the service. Zero values mean the defaults.
type Options struct {
	// Linger is how long a partition's publisher waits for more events
	// before storing a record while another record is still in flight.
	// Default 1ms. A publish to an idle partition is stored at once.
	Linger time.Duration
	// MaxRecordBytes bounds a record's size. Default 1 MiB.
	MaxRecordBytes int
	// MaxEventBytes bounds one event (body, key and properties). Default 1 MiB.
	MaxEventBytes int
	// Replicas is the replica count of the hubs' streams and buckets.
	// Default 0: the engine's (engine.Config.Replicas; 1 on a single
	// server).
	Replicas int
	// ReadJS, if set, is a separate connection for readers, so that reading
	// does not queue behind publishing on one connection. Default: the
	// service's connection.
	ReadJS jetstream.JetStream
	// Tail, when set, lets readers that have caught up take the records this
	// Service stores directly (see tail.go). Set it only when this Service
	// is the only writer to its hubs, as with the embedded engine without a
	// listener; another writer's records are still read, but up to
	// a second late.
	Tail bool
	// DuplicateWindow is how long the message id of a published event is
	// remembered: an event published again with the same id within the
	// window is not stored again (see Event.MessageID). Default 10 minutes,
	// at least 1s, at most 7 days. It is a setting of the server's id
	// bucket, shared by every instance: the last instance to open sets it.
	DuplicateWindow time.Duration
	Logger          *slog.Logger
}

// Service manages hubs on one JetStream connection. It is safe for
// concurrent use.
type Service struct {
	js     jetstream.JetStream
	hubs   jetstream.KeyValue
	cps    jetstream.KeyValue
	groups jetstream.KeyValue
	ids    jetstream.KeyValue // message ids of published events (dedupe.go)
	opts   Options
	log    *slog.Logger
	// readBytes caps one pull request of a reader. It must hold the largest
	// record the server can store, or the reader would never get past it.
	readBytes int
	tails     *tails // nil unless Options.Tail
	// pendingTimeout is how long a claimed message id may stay pending
	// before another publisher takes it over; now is the clock it is
	// measured with. Tests shorten and replace them.
	pendingTimeout time.Duration
	now            func() time.Time
	// batcherIdle is how long a partition's batcher waits for events
	// before it stops (tests shorten it).
	batcherIdle time.Duration
	atomicIDs   atomic.Bool // the id bucket takes atomic batches
	// resends counts records sent again after a lost acknowledgement, for
	// at most resendFor after their first send (tests shorten it).
	resends   atomic.Int64
	resendFor time.Duration
	idCost    writeCost

	mu    sync.Mutex
	cache map[string]*hubState
	// life runs the service from Open until Stop: the partitions'
	// batchers, consumer deletions and group state watches are its
	// goroutines.
	life service.Lifecycle
}

// EventReserve is what a server message must hold beyond an event's own
// bytes wherever an event travels whole: the headers and the context of a
// record, a retry queue's message or a dead letter.
const EventReserve = 64 << 10

// MinServerPayload is the smallest server max_payload Sluice runs on.
const MinServerPayload = 256 << 10

// MaxEventBytesFor is the largest event a server whose max_payload is
// maxPayload can carry everywhere an event goes (a hub record, a function's
// retry queue, a dead letter): max_payload less EventReserve. A default
// NATS server (1 MiB) thus takes events up to 960 KiB.
func MaxEventBytesFor(maxPayload int64) int { return int(maxPayload) - EventReserve }

// Open prepares the service's buckets on js. maxPayload is the server's
// message limit; records and events are clamped below it.
func Open(ctx context.Context, js jetstream.JetStream, maxPayload int64, opts Options) (*Service, error) {
	opts.Linger = cmp.Or(opts.Linger, time.Millisecond)
	opts.MaxRecordBytes = cmp.Or(opts.MaxRecordBytes, 1<<20)
	chosenEventBytes := opts.MaxEventBytes != 0
	opts.MaxEventBytes = cmp.Or(opts.MaxEventBytes, 1<<20)
	opts.DuplicateWindow = cmp.Or(opts.DuplicateWindow, DefaultDuplicateWindow)
	if opts.DuplicateWindow < MinDuplicateWindow || opts.DuplicateWindow > MaxDuplicateWindow {
		return nil, fmt.Errorf("%w duplicate window %s: must be between %s and %s", ErrInvalid, opts.DuplicateWindow, MinDuplicateWindow, MaxDuplicateWindow)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if maxPayload > 0 && maxPayload < MinServerPayload {
		return nil, fmt.Errorf("hub: the NATS server's max_payload is %d bytes; Sluice needs at least %d (%d KiB): "+
			"raise max_payload in the server's configuration (4MB is what the embedded server uses)", maxPayload, MinServerPayload, MinServerPayload>>10)
	}
	if limit := MaxEventBytesFor(maxPayload); maxPayload > 0 && opts.MaxEventBytes > limit {
		log := opts.Logger.Info
		if chosenEventBytes {
			log = opts.Logger.Warn
		}
		log("maximum event size lowered to fit the NATS server's max_payload",
			"configured", opts.MaxEventBytes, "max_payload", maxPayload, "effective", limit)
		opts.MaxEventBytes = limit
	}
	if limit := int(maxPayload) - 1024; maxPayload > 0 && opts.MaxRecordBytes > limit {
		opts.MaxRecordBytes = limit
	}
	if opts.ReadJS == nil {
		opts.ReadJS = js
	}
	s := &Service{js: js, opts: opts, log: opts.Logger, cache: map[string]*hubState{},
		readBytes: readBytesFor(maxPayload), pendingTimeout: defaultPendingTimeout, now: time.Now, batcherIdle: defaultBatcherIdle, resendFor: defaultResendFor}
	if opts.Tail {
		s.tails = &tails{}
	}
	var err error
	if s.hubs, err = ensureBucket(ctx, js, bucketHubs, opts.Replicas); err != nil {
		return nil, err
	}
	if s.cps, err = ensureBucket(ctx, js, bucketCheckpoints, opts.Replicas); err != nil {
		return nil, err
	}
	if s.groups, err = ensureBucket(ctx, js, bucketGroups, opts.Replicas); err != nil {
		return nil, err
	}
	if err := s.openIDs(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// readBytesFor sizes a reader's pull requests: enough for any message the
// server accepts (payload plus headers), and at least a few default-sized
// records. Larger prefetch buys no throughput and costs memory twice: in
// the client's pending buffer and in the server's block caches it pins.
func readBytesFor(maxPayload int64) int {
	const floor, headers = 4 << 20, 64 << 10
	return max(floor, int(maxPayload)+headers)
}

func ensureBucket(ctx context.Context, js jetstream.JetStream, name string, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: name, History: 1, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("hub: open bucket %s: %w", name, err)
	}
	return kv, nil
}

// openIDs opens the bucket of message ids (see dedupe.go). Ids expire with
// the duplicate window, the bucket's TTL, so the server forgets them without
// any sweeping of ours. On a server that can (NATS 2.12 and later), the
// bucket's stream also takes atomic batches.
func (s *Service) openIDs(ctx context.Context) error {
	kv, err := s.js.KeyValue(ctx, bucketIDs)
	if err == nil {
		// A bucket's TTL is its stream's MaxAge.
		str, serr := s.js.Stream(ctx, "KV_"+bucketIDs)
		if serr != nil || str.CachedInfo().Config.MaxAge != s.opts.DuplicateWindow || max(str.CachedInfo().Config.Replicas, 1) < s.opts.Replicas {
			err = jetstream.ErrBucketNotFound // update it
		}
	}
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: bucketIDs, History: 1, TTL: s.opts.DuplicateWindow, Storage: jetstream.FileStorage, Replicas: s.opts.Replicas,
		})
	}
	if err != nil {
		return fmt.Errorf("hub: open bucket %s: %w", bucketIDs, err)
	}
	s.ids = kv
	if !engine.VersionAtLeast(s.js.Conn().ConnectedServerVersion(), "2.12.0") {
		return nil
	}
	st, err := s.js.Stream(ctx, "KV_"+bucketIDs)
	if err == nil {
		if cfg := st.CachedInfo().Config; !cfg.AllowAtomicPublish {
			cfg.AllowAtomicPublish = true
			_, err = s.js.UpdateStream(ctx, cfg)
		}
	}
	if err != nil {
		s.log.Warn("message ids are written one by one: the id bucket does not take atomic batches", "err", err)
		return nil
	}
	s.atomicIDs.Store(true)
	return nil
}

// MaxEventBytes is the effective maximum event size.
func (s *Service) MaxEventBytes() int { return s.opts.MaxEventBytes }

// Resends returns how many records were sent again because the engine's
// acknowledgement of an earlier send was lost (see batcher.await).
func (s *Service) Resends() int64 { return s.resends.Load() }

// Create creates a hub and its partition streams.
func (s *Service) Create(ctx context.Context, cfg Config) (Info, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Info{}, err
	}
	info := Info{Config: cfg, Created: time.Now().UTC()}
	data, _ := json.Marshal(info)
	// The definition is claimed first, so two concurrent creates cannot both
	// win; streams are then created, and the claim undone if that fails.
	_, err := s.hubs.Create(ctx, cfg.Name, data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		// A deletion that did not finish (its instance died) is finished
		// first: the new hub must not inherit its events.
		if old, _, gerr := s.definition(ctx, cfg.Name); gerr == nil && old.Deleting {
			s.log.Info("finishing the interrupted deletion of a hub before creating it again", "hub", cfg.Name)
			if derr := s.Delete(ctx, cfg.Name); derr != nil {
				return Info{}, derr
			}
			_, err = s.hubs.Create(ctx, cfg.Name, data)
		}
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return Info{}, fmt.Errorf("%w: %s", ErrExists, cfg.Name)
		}
		return Info{}, fmt.Errorf("hub: store definition of %s: %w", cfg.Name, unavailable(err))
	}
	for p := range cfg.Partitions {
		if _, err := s.js.CreateOrUpdateStream(ctx, s.streamConfig(cfg, p)); err != nil {
			for q := range p {
				_ = s.js.DeleteStream(ctx, StreamName(cfg.Name, q))
			}
			_ = s.hubs.Delete(ctx, cfg.Name)
			if IsStorageRefusal(err) {
				return Info{}, s.storageError(ctx, cfg, err)
			}
			return Info{}, fmt.Errorf("hub: create partition %d of %s: %w", p, cfg.Name, err)
		}
	}
	return info, nil
}

// storageCodes are the JetStream error codes of a stream refused for lack
// of storage, or past the account's limits: account resources exceeded,
// insufficient resources, maximum streams, insufficient storage, stream
// max bytes over the account's limit.
var storageCodes = []jetstream.ErrorCode{10002, 10023, 10027, 10047, 10122}

// IsStorageRefusal reports whether err is JetStream refusing to create a
// stream for lack of storage or past the account's limits.
func IsStorageRefusal(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && slices.Contains(storageCodes, ae.ErrorCode)
}

// Storage is what the engine's JetStream account stores, as the server
// tells it.
type Storage struct {
	// Limit is what the account may store in files; -1 when the account
	// has no limit of its own (the server's store limit applies, which it
	// does not tell clients: max_file_store, by default 75% of the disk
	// space that was free when it started).
	Limit int64
	// Reserved is what streams with a byte limit reserve; Used what all
	// streams store.
	Reserved, Used uint64
}

// Storage reads what the engine's account stores and may store.
func (s *Service) Storage(ctx context.Context) (Storage, error) {
	ai, err := s.js.AccountInfo(ctx)
	if err != nil {
		return Storage{}, fmt.Errorf("hub: storage of the engine: %w", err)
	}
	return Storage{Limit: ai.Limits.MaxStore, Reserved: ai.ReservedStore, Used: ai.Store}, nil
}

// Available says what storage is left, for error messages.
func (st Storage) Available() string {
	if st.Limit < 0 {
		return fmt.Sprintf("the server's streams already reserve %d bytes and store %d; the server may keep at most its max_file_store "+
			"(by default 75%% of the disk space free when it started)", st.Reserved, st.Used)
	}
	left := max(st.Limit-int64(max(st.Reserved, st.Used)), 0)
	return fmt.Sprintf("the account may store %d bytes, of which %d are reserved and %d stored: %d bytes are available", st.Limit, st.Reserved, st.Used, left)
}

// storageError words a refusal to create hub cfg's partitions for lack of
// storage.
func (s *Service) storageError(ctx context.Context, cfg Config, err error) error {
	asked := "its partitions"
	if cfg.RetentionBytes > 0 {
		asked = fmt.Sprintf("retention_bytes %d: %d bytes for each of its %d partitions", cfg.RetentionBytes,
			max(cfg.RetentionBytes/int64(cfg.Partitions), 1), cfg.Partitions)
	}
	avail := "what is available could not be read"
	if st, serr := s.Storage(ctx); serr == nil {
		avail = st.Available()
	}
	return fmt.Errorf("%w for hub %s: the engine cannot reserve %s (%v); %s. Give a smaller retention_bytes, or more storage to the engine",
		ErrInsufficientStorage, cfg.Name, asked, jetstreamReason(err), avail)
}

// jetstreamReason is the description of a JetStream API error.
func jetstreamReason(err error) string {
	var ae *jetstream.APIError
	if errors.As(err, &ae) && ae.Description != "" {
		return ae.Description
	}
	return err.Error()
}

// Repair creates the partition streams of an existing hub that are missing
// (see RestorePartition) and raises partitions with fewer replicas than the
// hub's. It is idempotent and returns the hub's definition.
func (s *Service) Repair(ctx context.Context, name string) (Info, error) {
	info, err := s.Get(ctx, name)
	if err != nil {
		return Info{}, err
	}
	for p := range info.Partitions {
		st, err := s.js.Stream(ctx, StreamName(name, p))
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			_, err = s.restore(ctx, info, p, 0)
		case err == nil:
			err = s.raise(ctx, info, st.CachedInfo().Config)
		}
		if err != nil {
			return Info{}, fmt.Errorf("hub: repair partition %d of %s: %w", p, name, unavailable(err))
		}
	}
	return info, nil
}

// RepairAll repairs every hub (see Repair), such as those created through
// the API since the instance's replica setting was raised.
func (s *Service) RepairAll(ctx context.Context) error {
	hubs, err := s.List(ctx)
	if err != nil {
		return err
	}
	for _, info := range hubs {
		if _, err := s.Repair(ctx, info.Name); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// raise gives a partition stream whose configuration is have the replicas
// its hub asks for, when it has fewer.
func (s *Service) raise(ctx context.Context, info Info, have jetstream.StreamConfig) error {
	want := cmp.Or(info.Replicas, s.opts.Replicas)
	if want <= max(have.Replicas, 1) {
		return nil
	}
	s.log.Info("raising the replicas of a hub partition", "stream", have.Name, "from", max(have.Replicas, 1), "to", want)
	have.Replicas = want
	_, err := s.js.UpdateStream(ctx, have)
	return err
}

// lostMargin is how many record numbers a recreated partition skips beyond
// the last one known to have existed (see restore): a consumer that read
// past its checkpoint before the partition was lost may still write a
// checkpoint up to what it read.
const lostMargin = 1 << 10

// RestorePartition recreates partition p of a hub whose definition exists
// when the engine no longer has the partition's stream (its servers lost
// their storage, or someone deleted the stream by hand), and reports
// whether it did. A consumer that read the partition up to record after
// passes it. It answers ErrNotFound when the hub itself is gone or being
// deleted: a deleted hub is never recreated.
func (s *Service) RestorePartition(ctx context.Context, name string, p int, after uint64) (bool, error) {
	info, err := s.Get(ctx, name)
	if err != nil {
		return false, err
	}
	if p < 0 || p >= info.Partitions {
		return false, fmt.Errorf("%w partition %d: hub %s has partitions 0 to %d", ErrInvalid, p, name, info.Partitions-1)
	}
	return s.restoreMissing(ctx, info, p, after)
}

// restoreMissing is RestorePartition for a hub whose definition info was
// just read.
func (s *Service) restoreMissing(ctx context.Context, info Info, p int, after uint64) (bool, error) {
	if _, err := s.js.Stream(ctx, StreamName(info.Name, p)); !errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, unavailable(err)
	}
	return s.restore(ctx, info, p, after)
}

// restore creates partition p's missing stream. When no consumer group
// ever checkpointed the partition (and after is 0), the stream was never
// created, as when a creation was interrupted or another instance is
// creating the hub right now: it is created as new. Otherwise its events
// were lost: the stream is recreated numbering records after any known
// position, so that no checkpoint points past new events, and the loss is
// logged as an error.
func (s *Service) restore(ctx context.Context, info Info, p int, after uint64) (bool, error) {
	known := after
	groups, err := s.Groups(ctx, info.Name)
	if err != nil {
		return false, err
	}
	for _, g := range groups {
		cp, _, err := s.GetCheckpoint(ctx, info.Name, g, p)
		if err != nil {
			return false, err
		}
		if cp.Sequence >= 0 {
			rec, _ := SplitSequence(cp.Sequence)
			known = max(known, rec)
		}
	}
	sc := s.streamConfig(info.Config, p)
	if known == 0 {
		s.log.Info("creating a missing partition of a hub (another instance may be creating the hub, or its creation was interrupted)",
			"hub", info.Name, "partition", p)
	} else {
		sc.FirstSeq = known + 1 + lostMargin
		s.log.Error("a partition of a hub is missing from the engine although consumers read it: its events are lost; "+
			"recreating it empty, numbering records after every known position (give hubs replicas on a cluster to survive losing a server's storage)",
			"hub", info.Name, "partition", p, "last_known_record", known, "first_new_record", sc.FirstSeq)
	}
	if _, err := s.js.CreateStream(ctx, sc); err != nil {
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return false, nil // another instance restored it first
		}
		return false, err
	}
	return true, nil
}

func (s *Service) streamConfig(cfg Config, p int) jetstream.StreamConfig {
	replicas := cmp.Or(cfg.Replicas, s.opts.Replicas)
	sc := jetstream.StreamConfig{
		Name:        StreamName(cfg.Name, p),
		Description: fmt.Sprintf("sluice hub %s partition %d", cfg.Name, p),
		Subjects:    []string{subject(cfg.Name, p)},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.RetentionAge,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  duplicateWindow,
	}
	if cfg.RetentionBytes > 0 {
		sc.MaxBytes = max(cfg.RetentionBytes/int64(cfg.Partitions), 1)
	}
	return sc
}

// Get returns a hub's definition. A hub being deleted is not found.
func (s *Service) Get(ctx context.Context, name string) (Info, error) {
	info, _, err := s.definition(ctx, name)
	if err == nil && info.Deleting {
		return Info{}, fmt.Errorf("%w: %s (it is being deleted)", ErrNotFound, name)
	}
	return info, err
}

// definition reads a hub's stored definition and its revision, whether or
// not the hub is being deleted.
func (s *Service) definition(ctx context.Context, name string) (Info, uint64, error) {
	if err := ValidateName(name); err != nil {
		return Info{}, 0, err
	}
	e, err := s.hubs.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Info{}, 0, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return Info{}, 0, fmt.Errorf("hub: read definition of %s: %w", name, unavailable(err))
	}
	var info Info
	if err := json.Unmarshal(e.Value(), &info); err != nil {
		return Info{}, 0, fmt.Errorf("hub: definition of %s is corrupt: %w", name, err)
	}
	return info, e.Revision(), nil
}

// List returns every hub, sorted by name.
func (s *Service) List(ctx context.Context) ([]Info, error) {
	lister, err := s.hubs.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("hub: list: %w", err)
	}
	var names []string
	for k := range lister.Keys() {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]Info, 0, len(names))
	for _, n := range names {
		info, err := s.Get(ctx, n)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// Delete removes a hub, its events and its consumer groups' checkpoints.
// The hub's publishers on this Service stop first: publishes in flight are
// stored (or fail), and no goroutine of the hub is left (those of another
// instance stop when idle, see defaultBatcherIdle).
//
// The definition is marked as being deleted first, so that no instance
// takes the partitions it then finds missing for lost ones (see
// RestorePartition), and a deletion interrupted by a crash is finished by
// the next Delete or Create of the name.
func (s *Service) Delete(ctx context.Context, name string) error {
	info, rev, err := s.definition(ctx, name)
	if err != nil {
		return err
	}
	if !info.Deleting {
		info.Deleting = true
		data, _ := json.Marshal(info)
		if _, err := s.hubs.Update(ctx, name, data, rev); err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				return fmt.Errorf("hub: delete %s: its definition changed meanwhile (another instance deleted or recreated it); try again", name)
			}
			return fmt.Errorf("hub: delete %s: %w", name, unavailable(err))
		}
	}
	for _, b := range s.forget(name) {
		select {
		case <-b.stopped:
		case <-ctx.Done():
			return fmt.Errorf("hub: delete %s: %w", name, ctx.Err())
		}
	}
	for p := range info.Partitions {
		if err := s.js.DeleteStream(ctx, StreamName(name, p)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("hub: delete partition %d of %s: %w", p, name, err)
		}
		if s.tails != nil {
			s.tails.end(StreamName(name, p))
		}
	}
	for _, kv := range []jetstream.KeyValue{s.cps, s.groups} {
		if lister, err := kv.ListKeysFiltered(ctx, name+".>"); err == nil {
			for k := range lister.Keys() {
				_ = kv.Purge(ctx, k)
			}
		}
	}
	// The hub's message ids go too, so that a hub created again under the
	// name does not answer with positions of this one.
	if err := s.forgetIDs(ctx, name); err != nil {
		s.log.Warn("message ids of a deleted hub not purged; they expire with the duplicate window", "hub", name, "err", err)
	}
	if err := s.hubs.Purge(ctx, name); err != nil {
		return fmt.Errorf("hub: delete definition of %s: %w", name, err)
	}
	return nil
}

// PartitionInfo describes the stored state of one partition.
type PartitionInfo struct {
	Partition int `json:"partition"`
	// Records is the number of stored records; Bytes their size.
	Records uint64 `json:"records"`
	Bytes   uint64 `json:"bytes"`
	// FirstSequence and LastSequence bound the stored events' sequence
	// numbers; both are -1 when the partition is empty.
	FirstSequence int64     `json:"first_sequence"`
	LastSequence  int64     `json:"last_sequence"`
	LastEnqueued  time.Time `json:"last_enqueued,omitzero"`
	// Replicas is how many copies the engine keeps of the partition; on a
	// cluster, Leader is the server that takes its writes (empty while
	// one is elected) and Followers the other copies.
	Replicas  int            `json:"replicas"`
	Leader    string         `json:"leader,omitempty"`
	Followers []ReplicaState `json:"followers,omitempty"`
	// nextRecord is the stream sequence of the partition's next record.
	nextRecord uint64
}

// ReplicaState is a follower copy of a partition.
type ReplicaState struct {
	Server string `json:"server"`
	// Current: it has every record the leader has; otherwise Lag records
	// are missing. Offline: the server does not answer.
	Current bool   `json:"current"`
	Offline bool   `json:"offline,omitempty"`
	Lag     uint64 `json:"lag"`
	// Seen is how long ago the leader last heard from it.
	Seen time.Duration `json:"seen_ns"`
}

// Describe returns the hub's definition and the state of each partition.
func (s *Service) Describe(ctx context.Context, name string) (Info, []PartitionInfo, error) {
	info, err := s.Get(ctx, name)
	if err != nil {
		return Info{}, nil, err
	}
	parts := make([]PartitionInfo, info.Partitions)
	for p := range info.Partitions {
		pi, err := s.partitionInfo(ctx, name, p)
		if err != nil {
			return Info{}, nil, err
		}
		parts[p] = pi
	}
	return info, parts, nil
}

// Partition returns the state of one partition of a hub.
func (s *Service) Partition(ctx context.Context, name string, p int) (PartitionInfo, error) {
	return s.partitionInfo(ctx, name, p)
}

func (s *Service) partitionInfo(ctx context.Context, name string, p int) (PartitionInfo, error) {
	pi := PartitionInfo{Partition: p, FirstSequence: -1, LastSequence: -1}
	st, err := s.js.Stream(ctx, StreamName(name, p))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return pi, fmt.Errorf("%w: %s (partition %d is missing)", ErrNotFound, name, p)
	}
	if err != nil {
		return pi, fmt.Errorf("hub: partition %d of %s: %w", p, name, err)
	}
	ci := st.CachedInfo()
	state := ci.State
	pi.Records, pi.Bytes = state.Msgs, state.Bytes
	pi.Replicas = max(ci.Config.Replicas, 1)
	if c := ci.Cluster; c != nil && pi.Replicas > 1 {
		pi.Leader = c.Leader
		for _, r := range c.Replicas {
			pi.Followers = append(pi.Followers, ReplicaState{Server: r.Name, Current: r.Current, Offline: r.Offline, Lag: r.Lag, Seen: r.Active})
		}
	}
	pi.nextRecord = state.LastSeq + 1
	if state.Msgs == 0 {
		return pi, nil
	}
	pi.FirstSequence = SequenceOf(state.FirstSeq, 0)
	last, err := st.GetMsg(ctx, state.LastSeq)
	if err != nil {
		return pi, fmt.Errorf("hub: read last record of %s/%d: %w", name, p, err)
	}
	n, err := RecordCount(last.Data)
	if err != nil {
		return pi, fmt.Errorf("hub: last record of %s/%d: %w", name, p, err)
	}
	pi.LastSequence = SequenceOf(state.LastSeq, n-1)
	pi.LastEnqueued = last.Time.UTC()
	return pi, nil
}

// Stop stops the service: publishes are refused from now on, and the
// partitions' batchers store what they hold and return once it is
// acknowledged. ctx bounds the graceful part: when it ends, the
// acknowledgements still awaited are given up (those publishes fail; their
// events may still have been stored). Safe to call twice; the methods that
// only read keep working as long as the connection does.
func (s *Service) Stop(ctx context.Context) error { return s.life.Stop(ctx, nil, nil) }

// Stopped is closed once Stop has finished.
func (s *Service) Stopped() <-chan struct{} { return s.life.Stopped() }
