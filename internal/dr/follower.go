package dr

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/service"
)

// DefaultInterval is how often a follower looks for new resources of the
// primary when Config.Interval is zero.
const DefaultInterval = 2 * time.Second

// Keys of Bucket.
const (
	keyPromotion  = "promotion"
	keyFloors     = "queue-floors"
	keyReconciled = "reconciled"
)

// Config configures a Follower.
type Config struct {
	// PrimaryDomain is the JetStream domain of the primary's engine.
	// Required.
	PrimaryDomain string
	// JS is this (the secondary) site's engine. Required.
	JS jetstream.JetStream
	// Remote reaches the primary's JetStream API. Default:
	// jetstream.NewWithDomain on JS's connection, through the leaf node.
	Remote jetstream.JetStream
	// Replicas is the replica count of the mirrors (the secondary
	// engine's). Default 1.
	Replicas int
	// Interval is how often the primary's streams are listed to mirror
	// new ones. Default DefaultInterval.
	Interval time.Duration
	// InstanceID names this instance in the promotion record.
	InstanceID string
	Logger     *slog.Logger
}

// Follower keeps mirrors of a primary's Sluice streams on a secondary's
// engine, reports how far behind they are, and promotes them on failover.
// Every instance of a secondary site may run one; they agree through the
// engine (creating a mirror that exists is a no-op, the promotion record
// is written once). It is safe for concurrent use.
type Follower struct {
	cfg   Config
	state jetstream.KeyValue
	life  service.Lifecycle

	promoted     chan struct{} // closed when the promotion record is seen
	promotedOnce sync.Once
	promotion    atomic.Pointer[Promotion]
	failingOver  atomic.Bool // no new mirrors while a failover runs

	mu       sync.Mutex
	lastSync time.Time
	syncErr  error
	problems map[string]string // stream -> why it is not mirrored
	floors   map[string]uint64 // queue stream -> the primary's first sequence
	failMu   sync.Mutex        // one failover at a time in this process
}

// Promotion is the record of a failover, in Bucket.
type Promotion struct {
	At time.Time `json:"at"`
	// By is the instance that ran it.
	By string `json:"by"`
	// PrimaryDomain is the domain the site followed until then.
	PrimaryDomain string `json:"primary_domain"`
	// RecoveryPoint is the total lag of the mirrors when they were
	// promoted: messages (hub records, queue messages, KV updates,
	// object chunks) the primary had stored that the secondary had not
	// received as far as it knew. More may have been stored after the
	// mirrors' last contact (see LastContactSeconds).
	RecoveryPoint uint64 `json:"recovery_point_messages"`
	// LastContactSeconds is the longest time since a mirror had heard
	// from the primary, at promotion; -1 when one never had.
	LastContactSeconds float64 `json:"last_contact_seconds"`
}

// Open prepares a follower: it checks cfg and opens the local Bucket.
// Start starts following.
func Open(ctx context.Context, cfg Config) (*Follower, error) {
	if cfg.JS == nil {
		return nil, errors.New("dr: a follower needs this site's engine (Config.JS)")
	}
	if cfg.PrimaryDomain == "" {
		return nil, errors.New("dr: a follower needs the primary's JetStream domain (--dr-primary-domain)")
	}
	ai, err := cfg.JS.AccountInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("dr: read this site's engine: %w", err)
	}
	if ai.Domain == cfg.PrimaryDomain {
		return nil, fmt.Errorf("dr: this site's engine has the primary's JetStream domain %q: give the secondary's engine a domain of its own (--nats-domain secondary)", ai.Domain)
	}
	if cfg.Remote == nil {
		if cfg.Remote, err = jetstream.NewWithDomain(cfg.JS.Conn(), cfg.PrimaryDomain); err != nil {
			return nil, fmt.Errorf("dr: reach the primary's domain %s: %w", cfg.PrimaryDomain, err)
		}
	}
	cfg.Replicas = cmp.Or(cfg.Replicas, 1)
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kv, err := cfg.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, History: 1,
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas, Description: "Sluice DR state of this site (never mirrored)"})
	if err != nil {
		return nil, fmt.Errorf("dr: open bucket %s: %w", Bucket, err)
	}
	f := &Follower{cfg: cfg, state: kv, promoted: make(chan struct{}), problems: map[string]string{}, floors: map[string]uint64{}}
	if e, err := kv.Get(ctx, keyFloors); err == nil {
		_ = json.Unmarshal(e.Value(), &f.floors)
	}
	return f, nil
}

// Start watches for the promotion record and, until it appears, mirrors
// the primary's streams: at once, then every Config.Interval. It returns
// once the promotion record has been read (Promoted is closed by then if
// the site was promoted); the first mirroring pass runs in the
// background, since the primary may be unreachable.
func (f *Follower) Start(ctx context.Context) error {
	return f.life.Start(func() error {
		if err := f.life.FollowKV(f.state, f.apply); err != nil {
			return fmt.Errorf("dr: watch bucket %s: %w", Bucket, err)
		}
		f.life.Go(f.loop)
		return nil
	})
}

// Stop stops following (mirrors already made keep mirroring: they are the
// engine's). Safe before Start and more than once.
func (f *Follower) Stop(ctx context.Context) error {
	return f.life.Stop(ctx, nil, nil)
}

func (f *Follower) apply(e jetstream.KeyValueEntry) {
	if e.Key() != keyPromotion || e.Operation() != jetstream.KeyValuePut {
		return
	}
	var p Promotion
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		f.cfg.Logger.Error("dr: the promotion record is corrupt; run `sluice dr failover` again to rewrite it", "err", err)
		return
	}
	f.promotion.Store(&p)
	f.promotedOnce.Do(func() { close(f.promoted) })
}

// Promoted is closed once this site has been promoted (by any of its
// instances).
func (f *Follower) Promoted() <-chan struct{} { return f.promoted }

// Promotion is the promotion record, or nil while following.
func (f *Follower) Promotion() *Promotion { return f.promotion.Load() }

// Reconciled reports whether the promoted site's state was brought back
// within what its streams hold (see MarkReconciled).
func (f *Follower) Reconciled(ctx context.Context) (bool, error) {
	_, err := f.state.Get(ctx, keyReconciled)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dr: read bucket %s: %w", Bucket, err)
	}
	return true, nil
}

// MarkReconciled records that an instance of the promoted site brought its
// state (checkpoints, message ids, change-feed positions) back within what
// the promoted streams and the document store hold, so that later starts
// skip that work: it reads every entry, and only the first start after the
// promotion has anything to change.
func (f *Follower) MarkReconciled(ctx context.Context, by string) error {
	data, _ := json.Marshal(map[string]any{"at": time.Now().UTC(), "by": by})
	if _, err := f.state.Put(ctx, keyReconciled, data); err != nil {
		return fmt.Errorf("dr: record the reconciliation: %w", err)
	}
	return nil
}

func (f *Follower) loop() {
	// A pass in progress ends as soon as Stop begins.
	ctx, cancel := context.WithCancel(f.life.Context())
	defer cancel()
	go func() {
		select {
		case <-f.life.Stopping():
			cancel()
		case <-ctx.Done():
		}
	}()
	failing := false
	for {
		select {
		case <-f.promoted:
			return
		default:
		}
		err := f.Sync(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil && !failing:
			// Once per outage, not once per pass.
			f.cfg.Logger.Warn("dr: cannot reach the primary; its mirrors fall behind until it answers again (retrying)",
				"primary_domain", f.cfg.PrimaryDomain, "err", err)
		case err == nil && failing:
			f.cfg.Logger.Info("dr: the primary answers again", "primary_domain", f.cfg.PrimaryDomain)
		}
		failing = err != nil
		select {
		case <-f.life.Stopping():
			return
		case <-f.promoted:
			return
		case <-time.After(f.cfg.Interval):
		}
	}
}

// Sync makes one pass: it lists the primary's streams and creates the
// mirror of each of Sluice's that has none yet. A stream that cannot be
// mirrored (one of the same name exists here and is not a mirror, say) is
// reported by Status and does not stop the others.
func (f *Follower) Sync(ctx context.Context) error {
	if f.Promotion() != nil || f.failingOver.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var origins []*jetstream.StreamInfo
	lister := f.cfg.Remote.ListStreams(ctx)
	for info := range lister.Info() {
		if KindOf(info.Config.Name) != "" {
			origins = append(origins, info)
		}
	}
	if err := lister.Err(); err != nil {
		err = fmt.Errorf("dr: list the primary's streams (domain %s): %w (is the leaf-node connection to the primary up?)", f.cfg.PrimaryDomain, err)
		f.mu.Lock()
		f.syncErr = err
		f.mu.Unlock()
		return err
	}
	problems := map[string]string{}
	floors := map[string]uint64{}
	for _, o := range origins {
		name := o.Config.Name
		if KindOf(name) == KindQueue {
			floors[name] = o.State.FirstSeq
		}
		if err := f.ensureMirror(ctx, o.Config); err != nil {
			problems[name] = err.Error()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, why := range problems {
		if f.problems[name] != why { // new: said once
			f.cfg.Logger.Warn("dr: cannot mirror a stream of the primary", "stream", name, "err", why)
		}
	}
	f.lastSync, f.syncErr, f.problems = time.Now(), nil, problems
	if !maps.Equal(floors, f.floors) {
		f.floors = floors
		if data, err := json.Marshal(floors); err == nil {
			if _, err := f.state.Put(ctx, keyFloors, data); err != nil {
				f.cfg.Logger.Warn("dr: cannot record the primary's queue positions", "err", err)
			}
		}
	}
	return nil
}

// ensureMirror creates the mirror of the primary's stream origin unless
// it exists.
func (f *Follower) ensureMirror(ctx context.Context, origin jetstream.StreamConfig) error {
	st, err := f.cfg.JS.Stream(ctx, origin.Name)
	if err == nil {
		cfg := st.CachedInfo().Config
		switch {
		case isSluiceMirror(cfg):
			return nil
		case wasPromoted(cfg):
			return errors.New("it was promoted here by a failover that did not finish: run `sluice dr failover` again")
		default:
			return errors.New("a stream of that name exists on this site and is not a mirror (was this engine used as a primary?); delete it here to mirror the primary's")
		}
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return err
	}
	if f.failingOver.Load() || f.Promotion() != nil {
		return nil
	}
	if _, err := f.cfg.JS.CreateStream(ctx, mirrorConfig(origin, f.cfg.PrimaryDomain, f.cfg.Replicas)); err != nil {
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // another instance of this site made it meanwhile
		}
		return fmt.Errorf("create its mirror: %w", err)
	}
	f.cfg.Logger.Info("dr: mirroring a stream of the primary", "stream", origin.Name, "kind", KindOf(origin.Name))
	return nil
}

// Failover promotes this site: every mirror becomes an ordinary stream
// with its origin's subjects (queues lose the messages the primary had
// completed, as far as the follower saw), and the promotion is recorded
// in Bucket, which makes every instance of the site start its functions.
// It can be run again: streams already promoted are left as they are,
// and a failover cut short is finished. ctx bounds it.
func (f *Follower) Failover(ctx context.Context) (Report, error) {
	f.failMu.Lock()
	defer f.failMu.Unlock()
	f.failingOver.Store(true)
	defer f.failingOver.Store(false)
	rep := Report{PrimaryDomain: f.cfg.PrimaryDomain, Resources: []PromotedResource{}}
	if f.Promotion() == nil {
		// Said, not refused: an operator may fail over on purpose (a
		// drill, a planned move) with the primary's writers stopped.
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := f.cfg.Remote.AccountInfo(actx); err == nil {
			rep.PrimaryReachable = true
			f.cfg.Logger.Warn("dr: failing over while the primary answers: what it stores from now on is not carried over; stop its writers")
		}
		cancel()
	}
	floors := f.readFloors(ctx)
	var lastContact float64
	never := false // a mirror that never heard from the primary
	// Two passes: a mirror created by another instance's follower while
	// the first ran is promoted by the second.
	for pass := 0; pass < 2; pass++ {
		infos, err := f.localStreams(ctx)
		if err != nil {
			return rep, err
		}
		for _, info := range infos {
			cfg := info.Config
			switch {
			case cfg.Mirror == nil:
				// Promoted by an earlier run (Sluice's services may
				// have rewritten its metadata since).
				if pass == 0 {
					rep.AlreadyPromoted++
				}
				continue
			case !isSluiceMirror(cfg):
				continue
			}
			pr := PromotedResource{Stream: cfg.Name, Kind: KindOf(cfg.Name), LastSeq: info.State.LastSeq}
			if m := info.Mirror; m != nil {
				pr.Lag = m.Lag
				if m.Active >= 0 {
					lastContact = max(lastContact, m.Active.Seconds())
				} else {
					never = true
				}
			}
			promoted, err := promotedConfig(cfg)
			if err != nil {
				return rep, err
			}
			if _, err := f.cfg.JS.UpdateStream(ctx, promoted); err != nil {
				return rep, fmt.Errorf("dr: promote %s: %w (run the failover again; streams promoted so far stay promoted)", cfg.Name, err)
			}
			if floor := floors[cfg.Name]; pr.Kind == KindQueue && floor > info.State.FirstSeq {
				// The primary had completed (deleted) the messages below
				// its first sequence; the mirror kept them.
				if err := f.trimQueue(ctx, cfg.Name, floor); err != nil {
					return rep, err
				}
				pr.Trimmed = floor - info.State.FirstSeq
			}
			rep.RecoveryPoint += pr.Lag
			rep.Resources = append(rep.Resources, pr)
			f.cfg.Logger.Info("dr: promoted a mirror", "stream", cfg.Name, "last_seq", pr.LastSeq, "lag", pr.Lag)
		}
	}
	slices.SortFunc(rep.Resources, func(a, b PromotedResource) int { return cmp.Compare(a.Stream, b.Stream) })
	if never {
		lastContact = -1
	}
	p := Promotion{At: time.Now().UTC(), By: f.cfg.InstanceID, PrimaryDomain: f.cfg.PrimaryDomain,
		RecoveryPoint: rep.RecoveryPoint, LastContactSeconds: lastContact}
	data, _ := json.Marshal(p)
	if _, err := f.state.Create(ctx, keyPromotion, data); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return rep, fmt.Errorf("dr: record the promotion: %w (the streams are promoted; run the failover again to record it)", err)
		}
		e, gerr := f.state.Get(ctx, keyPromotion)
		if gerr != nil {
			return rep, fmt.Errorf("dr: read the promotion record: %w", gerr)
		}
		var earlier Promotion
		if err := json.Unmarshal(e.Value(), &earlier); err == nil {
			p = earlier
		}
		rep.Already = len(rep.Resources) == 0
	}
	rep.Promotion = p
	// This instance learns it now, not when its watch delivers it.
	f.promotion.Store(&p)
	f.promotedOnce.Do(func() { close(f.promoted) })
	return rep, nil
}

// trimQueue removes the messages of a promoted queue below floor.
func (f *Follower) trimQueue(ctx context.Context, stream string, floor uint64) error {
	st, err := f.cfg.JS.Stream(ctx, stream)
	if err == nil {
		err = st.Purge(ctx, jetstream.WithPurgeSequence(floor))
	}
	if err != nil {
		return fmt.Errorf("dr: remove the messages the primary had completed from queue stream %s: %w (run the failover again)", stream, err)
	}
	return nil
}

func (f *Follower) readFloors(ctx context.Context) map[string]uint64 {
	floors := map[string]uint64{}
	if e, err := f.state.Get(ctx, keyFloors); err == nil {
		_ = json.Unmarshal(e.Value(), &floors)
	}
	f.mu.Lock()
	for k, v := range f.floors {
		floors[k] = max(floors[k], v)
	}
	f.mu.Unlock()
	return floors
}

// localStreams lists this site's streams of Sluice's kinds.
func (f *Follower) localStreams(ctx context.Context) ([]*jetstream.StreamInfo, error) {
	var out []*jetstream.StreamInfo
	lister := f.cfg.JS.ListStreams(ctx)
	for info := range lister.Info() {
		if KindOf(info.Config.Name) != "" {
			out = append(out, info)
		}
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("dr: list this site's streams: %w", err)
	}
	slices.SortFunc(out, func(a, b *jetstream.StreamInfo) int { return cmp.Compare(a.Config.Name, b.Config.Name) })
	return out, nil
}

// Report says what a failover did.
type Report struct {
	PrimaryDomain string `json:"primary_domain"`
	// Resources are the mirrors this run promoted.
	Resources []PromotedResource `json:"promoted"`
	// AlreadyPromoted counts the site's streams of Sluice that were not
	// mirrors any more (promoted by an earlier run).
	AlreadyPromoted int `json:"already_promoted"`
	// RecoveryPoint is the total lag of the mirrors this run promoted
	// (see Promotion.RecoveryPoint).
	RecoveryPoint uint64 `json:"recovery_point_messages"`
	// Already: the site had been promoted before and nothing was left to
	// do.
	Already bool `json:"already"`
	// PrimaryReachable: the primary's JetStream answered when the
	// failover began. What it stores afterwards is not carried over: the
	// sites diverge unless its writers are stopped.
	PrimaryReachable bool      `json:"primary_reachable,omitempty"`
	Promotion        Promotion `json:"promotion"`
}

// PromotedResource is one promoted mirror.
type PromotedResource struct {
	Stream  string `json:"stream"`
	Kind    string `json:"kind"`
	LastSeq uint64 `json:"last_seq"`
	// Lag is how many messages the mirror knew it lacked.
	Lag uint64 `json:"lag"`
	// Trimmed counts queue messages removed because the primary had
	// completed them.
	Trimmed uint64 `json:"trimmed,omitempty"`
}
