// Package queue implements work queues on NATS JetStream: a message is
// locked by one receiver while it is processed, completed, or abandoned to
// be delivered again, possibly after a delay.
//
// A queue is a stream (`queue-<name>`) holding one stored message per queue
// message on subject `queue.<name>`, and one durable pull consumer shared by
// every receiver. The consumer's AckWait is the lock: a received message is
// invisible to others until it is completed (acknowledged), abandoned
// (negatively acknowledged, optionally with a delay) or its lock expires. A
// receiver renews the lock while it works (in progress). The dequeue count
// is the consumer's delivery count.
//
// The stream keeps messages by limits, not as a work queue: a work queue
// removes each message as it is acknowledged, and with sync always every
// removal is an fsync (about 8,000 completions/s on a 2-core machine).
// Instead, completed messages are removed in bulk: now and then the service
// purges the queue's messages below the consumer's acknowledgement floor
// (see sweep), which drops whole blocks and writes what else it must with
// one flush.
//
// Messages sent with a delay are stored as one-shot message schedules on
// `queue.<name>.later.<id>`; the server moves each onto the queue subject
// when it is due, and removes the schedule in the same step, so a delayed
// message survives restarts and is never both waiting and visible.
//
// A queue's settings are kept in its stream's metadata.
package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/service"
)

// Errors returned by the service. Callers map them to user-facing answers.
var (
	// ErrNotFound: the queue does not exist (or was deleted meanwhile).
	ErrNotFound = errors.New("queue not found")
	// ErrExists: Create was called for a name that is taken.
	ErrExists = errors.New("queue already exists")
	// ErrInvalid wraps every validation error of caller input.
	ErrInvalid = errors.New("invalid")
	// ErrTooLarge: a message is bigger than the queue's maximum.
	ErrTooLarge = errors.New("message too large")
	// ErrLockLost: a lock token no longer holds its message (it was
	// completed, or the lock expired and the message was delivered again).
	ErrLockLost = errors.New("message lock lost")
	// ErrUnsupported: the NATS server is too old for queues.
	ErrUnsupported = errors.New("unsupported NATS server")
)

// MinServerVersion is the oldest NATS server queues work on: they use
// message schedules, per-message TTLs and atomic batches.
const MinServerVersion = "2.12.0"

const (
	// DefaultMaxMessageBytes bounds a message (body and properties).
	DefaultMaxMessageBytes = 256 << 10
	// DefaultLock is how long a received message stays locked unless renewed.
	DefaultLock = 30 * time.Second
	// DefaultTTL is how long a message is kept when not received.
	DefaultTTL = 7 * 24 * time.Hour
	// PoisonSuffix names a queue's poison queue: `<queue>-poison`.
	PoisonSuffix = "-poison"
	// consumerName is the one durable consumer of every queue.
	consumerName = "sluice"
	// maxAtomicBatch is the server's limit on one atomic batch.
	maxAtomicBatch = 1000
	metaKind       = "sluice-kind"
	metaReplicas   = "sluice-replicas" // set when the queue asked for its own count
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidateName reports whether name can name a queue.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w queue name %q: use 1-64 letters, digits, '-' or '_', starting with a letter or digit", ErrInvalid, name)
	}
	return nil
}

// PoisonName is the poison queue of queue name, or "" when name is itself a
// poison queue or the poison queue's name would be too long.
func PoisonName(name string) string {
	p := name + PoisonSuffix
	if strings.HasSuffix(name, PoisonSuffix) || ValidateName(p) != nil {
		return ""
	}
	return p
}

// StreamName is the JetStream stream holding a queue.
func StreamName(name string) string { return "queue-" + name }

func subject(name string) string      { return "queue." + name }
func laterSubject(name string) string { return "queue." + name + ".later.*" }

// Config defines a queue.
type Config struct {
	Name string `json:"name"`
	// MaxMessageBytes bounds a message's body and properties. Default 256 KiB.
	MaxMessageBytes int `json:"max_message_bytes"`
	// Lock is how long a received message stays invisible to others unless
	// its lock is renewed. Default 30 s.
	Lock time.Duration `json:"lock"`
	// TTL is how long a message is kept by default. Default 7 days; a
	// negative TTL keeps messages until they are received and completed.
	TTL time.Duration `json:"ttl"`
	// Replicas is how many copies a NATS cluster keeps of the queue, 1 to
	// 5. Default (0): the service's (Options.Replicas), raised with it at
	// start (RaiseReplicas); a queue created with a count of its own keeps
	// it. As a queue's definition, the copies it has.
	Replicas int `json:"replicas,omitempty"`
}

// Info is a queue's definition.
type Info struct {
	Config
	Created time.Time `json:"created"`
}

func (c Config) withDefaults() Config {
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, DefaultMaxMessageBytes)
	c.Lock = cmp.Or(c.Lock, DefaultLock)
	c.TTL = cmp.Or(c.TTL, DefaultTTL)
	return c
}

func (c Config) validate(maxPayload int) error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if c.MaxMessageBytes < 1 || c.MaxMessageBytes > maxPayload {
		return fmt.Errorf("%w max message size %d: must be between 1 and %d bytes (the NATS server's max_payload less room for headers)", ErrInvalid, c.MaxMessageBytes, maxPayload)
	}
	if c.Lock < time.Second || c.Lock > 12*time.Hour {
		return fmt.Errorf("%w lock %s: must be between 1s and 12h", ErrInvalid, c.Lock)
	}
	if c.TTL >= 0 && c.TTL < time.Second {
		return fmt.Errorf("%w ttl %s: must be at least 1s, or negative to keep messages until completed", ErrInvalid, c.TTL)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("%w replicas %d: must be between 1 and 5 (0: the instance's default)", ErrInvalid, c.Replicas)
	}
	return nil
}

// Options tune the service. Zero values mean the defaults.
type Options struct {
	// Replicas is the replica count of the queues' streams. Default 0: the
	// engine's (engine.Config.Replicas; 1 on a single server).
	Replicas int
	Logger   *slog.Logger
}

// Service manages queues on one JetStream connection. It is safe for
// concurrent use. It runs from Open, starting goroutines as work comes (a
// queue's batchers while it is sent to, its sweeper while messages are
// completed), until Stop.
type Service struct {
	life service.Lifecycle

	nc         *nats.Conn
	js         jetstream.JetStream
	opts       Options
	log        *slog.Logger
	maxPayload int
	// unsupported is set when the server is older than MinServerVersion.
	unsupported error

	mu    sync.Mutex
	cache map[string]*queueState
	locks jetstream.KeyValue // see locks.go; opened on first use
}

// queueState is what sending and receiving need to know about a queue.
type queueState struct {
	info Info
	cons jetstream.Consumer
	// dirty is set by completions not yet swept; sweeping while a sweeper
	// runs.
	dirty    atomic.Bool
	sweeping atomic.Bool
	// lastRelease and lastSweep are unix nanoseconds of the last message
	// released to the server's redelivery and of the last sweep.
	lastRelease atomic.Int64
	lastSweep   atomic.Int64
	// releaseMu keeps this process's releases out of a sweep's check and
	// purge (readers: releases; writer: a sweep).
	releaseMu sync.RWMutex

	// sends feed the queue's batchers (see batch.go); batchers counts
	// those running.
	sends    chan *storeReq
	batchMu  sync.Mutex
	batchers int
}

// MaxMessageBytesLimit is the largest MaxMessageBytes a queue can have on
// this server: its max_payload less room for headers.
func (s *Service) MaxMessageBytesLimit() int { return s.maxPayload }

// Open returns a service on js. maxPayload is the server's message limit.
func Open(js jetstream.JetStream, maxPayload int64, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Service{nc: js.Conn(), js: js, opts: opts, log: opts.Logger,
		maxPayload: int(maxPayload) - 8<<10, cache: map[string]*queueState{}}
	if v := s.nc.ConnectedServerVersion(); !engine.VersionAtLeast(v, MinServerVersion) {
		s.unsupported = fmt.Errorf("%w: queues need NATS server %s or newer; the server at %s is %s (the embedded engine always is)",
			ErrUnsupported, MinServerVersion, s.nc.ConnectedUrlRedacted(), v)
	}
	return s
}

// Stop stops the service: sends are refused from now on, those already
// accepted are stored, and the batchers and sweepers return. ctx bounds
// the graceful part: when it ends, stores in flight are abandoned (their
// sends fail; the messages may still have been stored). Safe to call twice
// and before anything was sent; the other methods, which work on the
// caller's behalf, keep working as long as the connection does.
func (s *Service) Stop(ctx context.Context) error { return s.life.Stop(ctx, nil, nil) }

// Stopped is closed once Stop has finished.
func (s *Service) Stopped() <-chan struct{} { return s.life.Stopped() }

// Create creates a queue.
func (s *Service) Create(ctx context.Context, cfg Config) (Info, error) {
	if s.unsupported != nil {
		return Info{}, s.unsupported
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(s.maxPayload); err != nil {
		return Info{}, err
	}
	info := Info{Config: cfg, Created: time.Now().UTC()}
	st, err := s.js.CreateStream(ctx, s.streamConfig(info))
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return Info{}, fmt.Errorf("%w: %s", ErrExists, cfg.Name)
	}
	if err != nil {
		return Info{}, fmt.Errorf("queue: create %s: %w", cfg.Name, err)
	}
	info.Replicas = max(st.CachedInfo().Config.Replicas, 1) // the copies it has, as Get says
	if _, err := s.consumer(ctx, info); err != nil {
		return Info{}, err
	}
	return info, nil
}

// Ensure creates the queue if it does not exist, and returns its definition.
func (s *Service) Ensure(ctx context.Context, cfg Config) (Info, error) {
	info, err := s.Get(ctx, cfg.Name)
	if errors.Is(err, ErrNotFound) {
		info, err = s.Create(ctx, cfg)
		if errors.Is(err, ErrExists) {
			return s.Get(ctx, cfg.Name)
		}
	}
	return info, err
}

func (s *Service) streamConfig(info Info) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:        StreamName(info.Name),
		Description: "sluice queue " + info.Name,
		Subjects:    []string{subject(info.Name), laterSubject(info.Name)},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    cmp.Or(info.Replicas, s.opts.Replicas),
		MaxMsgSize:  int32(info.MaxMessageBytes + 8<<10),
		Duplicates:  2 * time.Minute,
		// Per-message TTLs, delayed messages as schedules, and sends of
		// many messages as one atomic batch (one fsync, all or nothing).
		AllowMsgTTL:        true,
		AllowMsgSchedules:  true,
		AllowRollup:        true,
		AllowAtomicPublish: true,
		Metadata: map[string]string{
			metaKind:           "queue",
			"sluice-max-bytes": strconv.Itoa(info.MaxMessageBytes),
			"sluice-lock":      info.Lock.String(),
			"sluice-ttl":       info.TTL.String(),
			"sluice-created":   info.Created.Format(time.RFC3339Nano),
		},
	}
	if info.Replicas > 0 {
		cfg.Metadata[metaReplicas] = strconv.Itoa(info.Replicas)
	}
	return cfg
}

func infoFromStream(cfg jetstream.StreamConfig) (Info, bool) {
	m := cfg.Metadata
	if m[metaKind] != "queue" || !strings.HasPrefix(cfg.Name, "queue-") {
		return Info{}, false
	}
	info := Info{Config: Config{Name: strings.TrimPrefix(cfg.Name, "queue-")}}
	info.MaxMessageBytes, _ = strconv.Atoi(m["sluice-max-bytes"])
	info.Lock, _ = time.ParseDuration(m["sluice-lock"])
	info.TTL, _ = time.ParseDuration(m["sluice-ttl"])
	info.Created, _ = time.Parse(time.RFC3339Nano, m["sluice-created"])
	info.Replicas = max(cfg.Replicas, 1)
	info.Config = info.Config.withDefaults()
	return info, true
}

// consumer returns the queue's durable consumer, creating it if needed (as
// after a crash between creating the stream and the consumer).
func (s *Service) consumer(ctx context.Context, info Info) (jetstream.Consumer, error) {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, StreamName(info.Name), jetstream.ConsumerConfig{
		Durable:       consumerName,
		Description:   "receivers of sluice queue " + info.Name,
		FilterSubject: subject(info.Name),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       info.Lock,
		MaxDeliver:    -1,
		MaxAckPending: 1 << 16,
		MaxWaiting:    4096,
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, info.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: prepare receivers of %s: %w", info.Name, err)
	}
	return cons, nil
}

// state returns the cached definition and consumer of a queue.
func (s *Service) state(ctx context.Context, name string) (*queueState, error) {
	if s.unsupported != nil {
		return nil, s.unsupported
	}
	s.mu.Lock()
	st := s.cache[name]
	s.mu.Unlock()
	if st != nil {
		return st, nil
	}
	info, err := s.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	cons, err := s.consumer(ctx, info)
	if err != nil {
		return nil, err
	}
	st = &queueState{info: info, cons: cons, sends: make(chan *storeReq, 4096)}
	st.lastSweep.Store(time.Now().UnixNano())
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.cache[name]; cur != nil {
		return cur, nil
	}
	s.cache[name] = st
	return st, nil
}

func (s *Service) forget(name string) {
	s.mu.Lock()
	delete(s.cache, name)
	s.mu.Unlock()
}

// Get returns a queue's definition.
func (s *Service) Get(ctx context.Context, name string) (Info, error) {
	if err := ValidateName(name); err != nil {
		return Info{}, err
	}
	st, err := s.js.Stream(ctx, StreamName(name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return Info{}, fmt.Errorf("queue: get %s: %w", name, err)
	}
	info, ok := infoFromStream(st.CachedInfo().Config)
	if !ok {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return info, nil
}

// List returns every queue, by name.
func (s *Service) List(ctx context.Context) ([]Info, error) {
	var out []Info
	lister := s.js.ListStreams(ctx, jetstream.WithStreamListSubject("queue.*"))
	for si := range lister.Info() {
		if info, ok := infoFromStream(si.Config); ok {
			out = append(out, info)
		}
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("queue: list: %w", err)
	}
	slicesSortByName(out)
	return out, nil
}

// RaiseReplicas gives every queue with fewer replicas than the service's
// (Options.Replicas) that many, such as queues created before the
// instance's setting was raised. It never lowers a queue's replicas.
func (s *Service) RaiseReplicas(ctx context.Context) error {
	return engine.RaiseStreams(ctx, s.js, s.opts.Replicas, func(cfg jetstream.StreamConfig) bool {
		_, ok := infoFromStream(cfg)
		return ok && cfg.Metadata[metaReplicas] == "" // not a count of its own
	}, s.log)
}

// Delete removes a queue and its messages.
func (s *Service) Delete(ctx context.Context, name string) error {
	if _, err := s.Get(ctx, name); err != nil {
		return err
	}
	s.forget(name)
	err := s.js.DeleteStream(ctx, StreamName(name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return fmt.Errorf("queue: delete %s: %w", name, err)
	}
	return nil
}

// Stats describe a queue's contents.
type Stats struct {
	// Depth counts the messages that are visible or locked.
	Depth uint64 `json:"depth"`
	// Locked counts the messages received and not yet completed or released
	// (including those waiting out an abandon delay).
	Locked uint64 `json:"locked"`
	// Delayed counts the messages sent with a delay that is not over yet.
	Delayed uint64 `json:"delayed"`
	// OldestEnqueued is when the oldest visible or locked message was
	// enqueued; zero when the queue is empty.
	OldestEnqueued time.Time `json:"oldest_enqueued,omitzero"`
	// OldestAge is how long ago that was.
	OldestAge time.Duration `json:"oldest_age"`
}

// Stats returns a queue's depth, delayed count and oldest message's age.
func (s *Service) Stats(ctx context.Context, name string) (Stats, error) {
	st, err := s.state(ctx, name)
	if err != nil {
		return Stats{}, err
	}
	stream, err := s.js.Stream(ctx, StreamName(name))
	if err != nil {
		return Stats{}, s.wrap(name, "stats of", err)
	}
	// Count the queue subject's messages only (one entry): the delayed
	// messages are the rest, each on its own subject.
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject(name)))
	if err != nil {
		return Stats{}, s.wrap(name, "stats of", err)
	}
	var out Stats
	out.Delayed = info.State.Msgs - info.State.Subjects[subject(name)]
	ci, err := st.cons.Info(ctx)
	if err != nil {
		return Stats{}, s.wrap(name, "stats of", err)
	}
	out.Depth = ci.NumPending + uint64(ci.NumAckPending)
	out.Locked = uint64(ci.NumAckPending)
	if out.Depth > 0 {
		from := max(info.State.FirstSeq, ci.AckFloor.Stream+1)
		if m, err := stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subject(name))); err == nil {
			out.OldestEnqueued = enqueuedAt(m.Header, m.Time)
			out.OldestAge = time.Since(out.OldestEnqueued)
		}
	}
	return out, nil
}

// Purge removes every message of a queue, delayed ones included, and
// returns how many it removed.
func (s *Service) Purge(ctx context.Context, name string) (uint64, error) {
	before, err := s.Stats(ctx, name)
	if err != nil {
		return 0, err
	}
	stream, err := s.js.Stream(ctx, StreamName(name))
	if err != nil {
		return 0, s.wrap(name, "purge", err)
	}
	n := before.Depth + before.Delayed
	if err := stream.Purge(ctx); err != nil {
		return 0, s.wrap(name, "purge", err)
	}
	return n, nil
}

func (s *Service) wrap(name, op string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.forget(name)
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return fmt.Errorf("queue: %s %s: %w", op, name, err)
}

// sweepEvery is how often, at most, a queue is swept; sweepAnyway how
// often it is swept even while messages are being released.
const (
	sweepEvery  = time.Second
	sweepAnyway = 30 * time.Second
)

// completed notes that messages of a queue were completed: a sweeper runs
// while there are completions, sweeping at most every sweepEvery.
func (s *Service) completed(st *queueState) {
	st.dirty.Store(true)
	if st.sweeping.CompareAndSwap(false, true) && !s.life.Go(func() { s.sweeper(st) }) {
		st.sweeping.Store(false) // stopping: the next start sweeps
	}
}

// pause waits d and reports whether the service is still running.
func (s *Service) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.life.Stopping():
		return false
	}
}

func (s *Service) sweeper(st *queueState) {
	for {
		for st.dirty.Swap(false) {
			// A sweep drops the server's pending redeliveries (nats-server's
			// consumer purge keeps none below its delivery point); they then
			// wait out their lock. So while messages are being released,
			// sweep only every sweepAnyway.
			st.releaseMu.Lock()
			now := time.Now().UnixNano()
			if now-st.lastRelease.Load() < int64(2*sweepEvery) && now-st.lastSweep.Load() < int64(sweepAnyway) {
				st.releaseMu.Unlock()
				st.dirty.Store(true)
				if !s.pause(sweepEvery) {
					st.sweeping.Store(false)
					return
				}
				continue
			}
			st.lastSweep.Store(now)
			ctx, cancel := context.WithTimeout(s.life.Context(), 30*time.Second)
			err := s.sweep(ctx, st)
			cancel()
			st.releaseMu.Unlock()
			if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				s.log.Warn("could not remove completed messages; will retry", "queue", st.info.Name, "err", err)
				st.dirty.Store(true)
			}
			if !s.pause(sweepEvery) {
				st.sweeping.Store(false)
				return
			}
		}
		st.sweeping.Store(false)
		// A completion between the last check and here found the sweeper
		// still running: go on for it.
		if !st.dirty.Load() || !st.sweeping.CompareAndSwap(false, true) {
			return
		}
	}
}

// sweep removes the completed messages of a queue: those below the
// consumer's acknowledgement floor. Completed messages above the floor (when
// an older one is still locked) wait for a later sweep.
func (s *Service) sweep(ctx context.Context, st *queueState) error {
	ci, err := st.cons.Info(ctx)
	if err != nil {
		return err
	}
	floor := ci.AckFloor.Stream
	if floor == 0 {
		return nil
	}
	stream, err := s.js.Stream(ctx, StreamName(st.info.Name))
	if err != nil {
		return err
	}
	if stream.CachedInfo().State.FirstSeq > floor {
		return nil
	}
	return stream.Purge(ctx, jetstream.WithPurgeSubject(subject(st.info.Name)), jetstream.WithPurgeSequence(floor+1))
}
