package resilience

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/claim"
	"github.com/sluicehq/sluice/internal/service"
)

// A shared circuit breaker. Every instance running a function keeps a
// Breaker for it; the breaker's state lives in a KV bucket that all of them
// watch, so they see every change within the watch's delivery time (well
// under a second).
//
// Keys of the bucket:
//
//	state.<function>             the Record: closed, open or half-open, with history
//	counts.<function>.<instance> an instance's recent failures (Counts)
//
// Each instance counts its own failures in a rolling window and shares them
// every ShareEvery when they changed; the instance whose failure (or whose
// view of another's) reaches a threshold opens the breaker with a
// compare-and-set on the state key, so a transition happens once however
// many instances see it. An open breaker admits nothing until its cool-down
// ends; then the first instance with work waiting takes the probe
// (half-open, owner = itself, by compare-and-set) and lets one invocation
// through: success closes the breaker, failure opens it again with twice
// the cool-down. The probe is a claim (package claim) held in the state
// record: ProbeOwner until ProbeDeadline, a lifetime of the probe timeout,
// never renewed; a probe whose owner dies is taken over after its deadline.
// A breaker opened by hand stays open until closed by hand.

// BreakerState is the state of a breaker.
type BreakerState string

// States of a breaker.
const (
	Closed   BreakerState = "closed"
	Open     BreakerState = "open"
	HalfOpen BreakerState = "half-open"
)

// historyLength bounds the transitions a Record keeps.
const historyLength = 20

// Record is a breaker's shared state.
type Record struct {
	Function string       `json:"function"`
	State    BreakerState `json:"state"`
	Since    time.Time    `json:"since"`
	// Until is when an open breaker lets a probe through; zero for one
	// opened by hand (open until closed by hand).
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason,omitempty"`
	Manual bool      `json:"manual,omitempty"`
	// FailedProbes counts probes that failed since the breaker last
	// closed; each doubles the cool-down.
	FailedProbes int `json:"failed_probes,omitempty"`
	// ProbeOwner is the instance running the probe of a half-open breaker,
	// which others take over after ProbeDeadline.
	ProbeOwner    string    `json:"probe_owner,omitempty"`
	ProbeDeadline time.Time `json:"probe_deadline,omitzero"`
	// ResetAt is when the breaker last closed: failures before it no
	// longer count.
	ResetAt time.Time `json:"reset_at,omitzero"`
	// By is the instance (or "manual: <who>") that made the last change.
	By      string       `json:"by,omitempty"`
	History []Transition `json:"history,omitempty"`
}

// Transition is one change of a breaker's state.
type Transition struct {
	At     time.Time    `json:"at"`
	From   BreakerState `json:"from"`
	To     BreakerState `json:"to"`
	Reason string       `json:"reason,omitempty"`
	By     string       `json:"by,omitempty"`
}

// Counts is an instance's share of a breaker's failures.
type Counts struct {
	Instance string   `json:"instance"`
	Buckets  []bucket `json:"buckets,omitempty"`
	// Run is the instance's current run of failures without a success,
	// which started at RunStart and last grew at LastFailure.
	Run         int       `json:"run,omitempty"`
	RunStart    time.Time `json:"run_start,omitzero"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	BucketSize  int64     `json:"bucket_ms"`
}

// Status is what an operator sees of a breaker.
type Status struct {
	Record
	// Policy is the breaker's policy on the instance answering, if it
	// runs the function.
	Policy *BreakerPolicy `json:"policy,omitempty"`
	// Failures is the failures counted in the rolling window, over all
	// instances, as the answering instance sees them; Run is the current
	// run of consecutive failures.
	Failures int `json:"failures"`
	Run      int `json:"consecutive"`
}

// ErrNoBreaker is returned for a function that has no breaker.
var ErrNoBreaker = errors.New("no breaker")

// BreakersOptions configure Breakers.
type BreakersOptions struct {
	// Instance names this instance in the shared state.
	Instance string
	// Notify is called after this instance changed a breaker's state
	// (once per transition over all instances). It must not block long.
	Notify func(Record, Transition)
	// Observe is called on every instance when it sees a breaker's state
	// change (for metrics and logs).
	Observe func(Record)
	// ShareEvery is how often an instance shares its failure counts when
	// they changed. Default 250ms.
	ShareEvery time.Duration
	// Now is the clock; default time.Now. Tests pass a fake one.
	Now    func() time.Time
	Logger *slog.Logger
}

// Breakers are the breakers of one instance, over one KV bucket.
type Breakers struct {
	kv   jetstream.KeyValue
	opts BreakersOptions
	log  *slog.Logger

	mu      sync.Mutex
	byName  map[string]*Breaker
	remote  map[string]map[string]Counts // function → instance → counts
	records map[string]Record            // seen state of functions not registered here
	started bool

	life service.Lifecycle
}

// NewBreakers returns the breakers of an instance over kv (History 1 is
// enough). Register breakers, then Start.
func NewBreakers(kv jetstream.KeyValue, opts BreakersOptions) *Breakers {
	opts.ShareEvery = cmp.Or(opts.ShareEvery, 250*time.Millisecond)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Breakers{kv: kv, opts: opts, log: opts.Logger, byName: map[string]*Breaker{},
		remote: map[string]map[string]Counts{}, records: map[string]Record{}}
}

// Breaker is one function's breaker on this instance.
type Breaker struct {
	bs   *Breakers
	name string
	p    BreakerPolicy
	// probeTimeout bounds a probe before another instance may take it.
	probeTimeout time.Duration

	mu       sync.Mutex
	rec      Record
	rev      uint64
	wake     chan struct{} // closed when worth trying again; replaced then
	timer    *time.Timer   // closes wake at the record's next deadline
	win      *window
	run      int
	runStart time.Time
	lastFail time.Time
	dirty    bool // counts changed since last shared
	probing  bool // this instance's probe permit is out
}

// Permit is the right to run one invocation, from Breaker.Acquire.
type Permit struct {
	// Probe is set for the one invocation a half-open breaker lets
	// through; its outcome decides whether the breaker closes.
	Probe bool
}

var keyToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// keyPart makes s a single KV key token: as is when it can be, else
// "h-" and a hash (the Record keeps the real name).
func keyPart(s string) string {
	if keyToken.MatchString(s) && !strings.HasPrefix(s, "h-") {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "h-" + hex.EncodeToString(sum[:12])
}

func stateKey(function string) string { return "state." + keyPart(function) }
func countsKey(function, instance string) string {
	return "counts." + keyPart(function) + "." + keyPart(instance)
}

// Register adds the breaker of a function run by this instance. A policy
// that is not enabled returns nil: a nil *Breaker admits everything.
// probeTimeout bounds a probe invocation (default 1 minute).
func (bs *Breakers) Register(function string, p BreakerPolicy, probeTimeout time.Duration) (*Breaker, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("function %s: %w", function, err)
	}
	if !p.Enabled() {
		return nil, nil
	}
	p = p.WithDefaults()
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.started {
		return nil, fmt.Errorf("breaker of %s: register before Start", function)
	}
	if _, ok := bs.byName[function]; ok {
		return nil, fmt.Errorf("function %s has two breakers", function)
	}
	b := &Breaker{bs: bs, name: function, p: p, probeTimeout: cmp.Or(probeTimeout, time.Minute),
		rec: Record{Function: function, State: Closed}, wake: make(chan struct{}), win: newWindow(p.Window)}
	bs.byName[function] = b
	return b, nil
}

// Add returns the breaker called name, registering it if this instance
// has none, also while the breakers run: for breakers of things that
// appear at run time, such as a partner's delivery endpoints. A breaker
// added after Start takes the shared state at once (ctx bounds the read).
func (bs *Breakers) Add(ctx context.Context, name string, p BreakerPolicy, probeTimeout time.Duration) (*Breaker, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("breaker %s: %w", name, err)
	}
	if !p.Enabled() {
		return nil, nil
	}
	p = p.WithDefaults()
	bs.mu.Lock()
	if b, ok := bs.byName[name]; ok {
		bs.mu.Unlock()
		return b, nil
	}
	b := &Breaker{bs: bs, name: name, p: p, probeTimeout: cmp.Or(probeTimeout, time.Minute),
		rec: Record{Function: name, State: Closed}, wake: make(chan struct{}), win: newWindow(p.Window)}
	bs.byName[name] = b
	started := bs.started
	bs.mu.Unlock()
	if started {
		if kve, err := bs.kv.Get(ctx, stateKey(name)); err == nil {
			var rec Record
			if json.Unmarshal(kve.Value(), &rec) == nil && rec.Function == name {
				b.seen(rec, kve.Revision())
			}
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return b, fmt.Errorf("breaker %s: read its shared state: %w", name, err)
		}
	}
	return b, nil
}

// Start loads the shared state and follows it until Stop. Calling it again
// does nothing; after Stop it fails.
func (bs *Breakers) Start(context.Context) error {
	return bs.life.Start(func() error {
		bs.mu.Lock()
		bs.started = true
		bs.mu.Unlock()
		// The initial values are applied before this returns, so that a
		// breaker left open is closed to work from the first batch.
		if err := bs.life.FollowKV(bs.kv, bs.apply); err != nil {
			return fmt.Errorf("breakers: watch state: %w", err)
		}
		bs.life.Go(bs.share)
		return nil
	})
}

// Stop stops following the shared state and removes this instance's
// counts (within ctx, and at most 2s), returning why it could not. Safe
// to call twice and before Start.
func (bs *Breakers) Stop(ctx context.Context) error {
	return bs.life.Stop(ctx, nil, func(ctx context.Context) error {
		bs.mu.Lock()
		started := bs.started
		names := make([]string, 0, len(bs.byName))
		for name := range bs.byName {
			names = append(names, name)
		}
		breakers := slices.Collect(maps.Values(bs.byName))
		bs.mu.Unlock()
		for _, b := range breakers {
			b.mu.Lock()
			if b.timer != nil {
				b.timer.Stop()
			}
			b.mu.Unlock()
		}
		if !started {
			return nil
		}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var errs []error
		for _, name := range names {
			if err := bs.kv.Delete(dctx, countsKey(name, bs.opts.Instance)); err != nil {
				errs = append(errs, fmt.Errorf("breakers: remove this instance's failure counts of %s: %w", name, err))
			}
		}
		return errors.Join(errs...)
	})
}

// Stopped is closed once Stop has finished.
func (bs *Breakers) Stopped() <-chan struct{} { return bs.life.Stopped() }

// apply takes in a change of the bucket.
func (bs *Breakers) apply(kve jetstream.KeyValueEntry) {
	key := kve.Key()
	deleted := kve.Operation() != jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(key, "state."):
		var rec Record
		if deleted {
			return
		}
		if err := json.Unmarshal(kve.Value(), &rec); err != nil {
			bs.log.Warn("breakers: unreadable state; ignored", "key", key, "err", err)
			return
		}
		bs.mu.Lock()
		b := bs.byName[rec.Function]
		if b == nil {
			bs.records[rec.Function] = rec
		}
		bs.mu.Unlock()
		if b != nil {
			b.seen(rec, kve.Revision())
		}
	case strings.HasPrefix(key, "counts."):
		var c Counts
		if !deleted {
			if err := json.Unmarshal(kve.Value(), &c); err != nil {
				return
			}
		}
		rest := strings.TrimPrefix(key, "counts.")
		fnKey, instKey, ok := strings.Cut(rest, ".")
		if !ok || instKey == keyPart(bs.opts.Instance) {
			return
		}
		bs.mu.Lock()
		var b *Breaker
		for name, cand := range bs.byName {
			if keyPart(name) == fnKey {
				b = cand
			}
		}
		if b == nil {
			bs.mu.Unlock()
			return
		}
		m := bs.remote[b.name]
		if m == nil {
			m = map[string]Counts{}
			bs.remote[b.name] = m
		}
		if deleted {
			delete(m, instKey)
		} else {
			m[instKey] = c
		}
		bs.mu.Unlock()
		if !deleted {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			b.check(ctx)
			cancel()
		}
	}
}

// share publishes the changed counts of this instance's breakers.
func (bs *Breakers) share() {
	t := time.NewTicker(bs.opts.ShareEvery)
	defer t.Stop()
	stopping, ctx := bs.life.Stopping(), bs.life.Context()
	for {
		select {
		case <-stopping:
			return
		case <-t.C:
		}
		bs.mu.Lock()
		list := make([]*Breaker, 0, len(bs.byName))
		for _, b := range bs.byName {
			list = append(list, b)
		}
		bs.mu.Unlock()
		for _, b := range list {
			b.mu.Lock()
			if !b.dirty {
				b.mu.Unlock()
				continue
			}
			b.dirty = false
			c := Counts{Instance: bs.opts.Instance, Buckets: b.win.snapshot(bs.opts.Now()), Run: b.run,
				RunStart: b.runStart, LastFailure: b.lastFail, BucketSize: b.win.size.Milliseconds()}
			b.mu.Unlock()
			data, _ := json.Marshal(c)
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := bs.kv.Put(pctx, countsKey(b.name, bs.opts.Instance), data); err != nil && ctx.Err() == nil {
				bs.log.Warn("breakers: cannot share failure counts; other instances see them late", "function", b.name, "err", err)
				b.mu.Lock()
				b.dirty = true
				b.mu.Unlock()
			}
			cancel()
		}
	}
}

// seen takes in the shared state of the breaker at revision rev.
func (b *Breaker) seen(rec Record, rev uint64) {
	b.mu.Lock()
	if rev <= b.rev {
		b.mu.Unlock()
		return
	}
	prev := b.rec
	b.rec, b.rev = rec, rev
	if rec.ResetAt.After(prev.ResetAt) {
		// Closed since: earlier failures no longer count.
		b.win.reset()
		b.run, b.runStart, b.dirty = 0, time.Time{}, true
	}
	if rec.State != HalfOpen || rec.ProbeOwner != b.bs.opts.Instance {
		b.probing = false
	}
	b.rearm()
	b.mu.Unlock()
	if prev.State != rec.State && b.bs.opts.Observe != nil {
		b.bs.opts.Observe(rec)
	}
}

// rearm wakes waiters now, and again at the record's next deadline.
// b.mu is held.
func (b *Breaker) rearm() {
	close(b.wake)
	b.wake = make(chan struct{})
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	var at time.Time
	switch b.rec.State {
	case Open:
		at = b.rec.Until
	case HalfOpen:
		at = b.rec.ProbeDeadline
	}
	if at.IsZero() {
		return
	}
	wake := b.wake
	b.timer = time.AfterFunc(max(at.Sub(b.bs.opts.Now()), 0)+time.Millisecond, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.wake == wake {
			close(b.wake)
			b.wake = make(chan struct{})
		}
	})
}

// Name is the breaker's function.
func (b *Breaker) Name() string { return b.name }

// State is the breaker's state as last seen.
func (b *Breaker) State() Record {
	if b == nil {
		return Record{State: Closed}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rec
}

// Acquire returns a permit to run one invocation now, or, when the breaker
// admits nothing now, false and a channel closed when it is worth asking
// again. A nil breaker always admits. When an open breaker's cool-down has
// ended, Acquire tries to take the probe (which needs the KV store, bounded
// by ctx).
func (b *Breaker) Acquire(ctx context.Context) (Permit, bool, <-chan struct{}) {
	if b == nil {
		return Permit{}, true, nil
	}
	for range 3 {
		b.mu.Lock()
		rec, rev, wake := b.rec, b.rev, b.wake
		now := b.bs.opts.Now()
		switch {
		case rec.State == Closed || rec.State == "":
			b.mu.Unlock()
			return Permit{}, true, nil
		case rec.State == HalfOpen && rec.ProbeOwner == b.bs.opts.Instance:
			if b.probing {
				b.mu.Unlock()
				return Permit{}, false, wake
			}
			b.probing = true
			b.mu.Unlock()
			return Permit{Probe: true}, true, nil
		case rec.State == Open && (rec.Manual || rec.Until.IsZero() || now.Before(rec.Until)),
			rec.State == HalfOpen && !claim.Expired(now, rec.ProbeDeadline):
			b.mu.Unlock()
			return Permit{}, false, wake
		}
		b.mu.Unlock()
		// The cool-down is over, or the probe's owner is overdue: take
		// the probe.
		next := rec
		next.State, next.ProbeOwner, next.ProbeDeadline = HalfOpen, b.bs.opts.Instance, now.Add(b.probeTimeout)
		reason := "cool-down over; probing with one invocation"
		if rec.State == HalfOpen {
			reason = fmt.Sprintf("probe of %s overdue; probing again", rec.ProbeOwner)
		}
		if _, err := b.transition(ctx, next, rev, reason); err != nil {
			if ctx.Err() != nil {
				return Permit{}, false, wake
			}
			continue // someone else changed it: look again
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return Permit{}, false, b.wake
}

// Admits reports whether the breaker admits work now, without taking a
// permit (a half-open breaker admits only its probe).
func (b *Breaker) Admits() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rec.State == Closed || b.rec.State == ""
}

// Done records the outcome of an invocation run with permit p. A failed
// invocation may open the breaker; a probe's outcome closes or reopens it.
// ctx bounds the KV writes this needs.
func (b *Breaker) Done(ctx context.Context, p Permit, failed bool) {
	if b == nil {
		return
	}
	if p.Probe {
		b.probeDone(ctx, failed)
		return
	}
	b.mu.Lock()
	if !failed {
		if b.run > 0 {
			b.run, b.runStart, b.dirty = 0, time.Time{}, true
		}
		b.mu.Unlock()
		return
	}
	now := b.bs.opts.Now()
	b.win.add(now, 1)
	if b.run == 0 {
		b.runStart = now
	}
	b.run++
	b.lastFail = now
	b.dirty = true
	b.mu.Unlock()
	b.check(ctx)
}

// totals returns the failures in the window and the consecutive failures,
// over all instances, as this instance sees them.
func (b *Breaker) totals() (failures, run int) {
	b.bs.mu.Lock()
	remote := make([]Counts, 0, len(b.bs.remote[b.name]))
	for _, c := range b.bs.remote[b.name] {
		remote = append(remote, c)
	}
	b.bs.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.bs.opts.Now()
	since := b.rec.ResetAt
	failures = b.win.sum(now, since)
	run = b.run
	for _, c := range remote {
		size := time.Duration(max(c.BucketSize, 1)) * time.Millisecond
		failures += sumBuckets(c.Buckets, size, b.p.Window, now, since)
		// A run counts while it is recent: a dead instance's run does not
		// hold forever.
		if c.Run > 0 && !c.RunStart.Before(since) && now.Sub(c.LastFailure) <= b.p.Window {
			run += c.Run
		}
	}
	return failures, run
}

// check opens a closed breaker whose thresholds are reached.
func (b *Breaker) check(ctx context.Context) {
	b.mu.Lock()
	rec, rev := b.rec, b.rev
	b.mu.Unlock()
	if rec.State != Closed && rec.State != "" {
		return
	}
	failures, run := b.totals()
	var reason string
	switch {
	case b.p.FailureThreshold > 0 && failures >= b.p.FailureThreshold:
		reason = fmt.Sprintf("%d failures within %s over all instances (threshold %d)", failures, b.p.Window, b.p.FailureThreshold)
	case b.p.ConsecutiveFailures > 0 && run >= b.p.ConsecutiveFailures:
		reason = fmt.Sprintf("%d consecutive failures over all instances (threshold %d)", run, b.p.ConsecutiveFailures)
	default:
		return
	}
	now := b.bs.opts.Now()
	next := rec
	next.State, next.Since, next.Until, next.Manual, next.FailedProbes = Open, now, now.Add(b.p.CoolDown), false, 0
	next.ProbeOwner, next.ProbeDeadline = "", time.Time{}
	// A lost race means someone else changed the state: fine either way.
	_, _ = b.transition(ctx, next, rev, reason)
}

// probeDone closes or reopens the breaker after this instance's probe.
func (b *Breaker) probeDone(ctx context.Context, failed bool) {
	for range 5 {
		b.mu.Lock()
		rec, rev := b.rec, b.rev
		mine := rec.State == HalfOpen && rec.ProbeOwner == b.bs.opts.Instance
		if !mine {
			b.probing = false
			b.mu.Unlock()
			return // taken over, or changed by hand meanwhile
		}
		b.mu.Unlock()
		now := b.bs.opts.Now()
		next := rec
		next.ProbeOwner, next.ProbeDeadline = "", time.Time{}
		var reason string
		if failed {
			next.FailedProbes++
			cool := min(b.p.CoolDown<<min(next.FailedProbes, 20), b.p.MaxCoolDown)
			next.State, next.Since, next.Until = Open, now, now.Add(cool)
			reason = fmt.Sprintf("probe failed; open for %s", cool)
		} else {
			next.State, next.Since, next.Until, next.FailedProbes, next.ResetAt = Closed, now, time.Time{}, 0, now
			reason = "probe succeeded"
		}
		if _, err := b.transition(ctx, next, rev, reason); err == nil || ctx.Err() != nil {
			b.mu.Lock()
			b.probing = false
			b.mu.Unlock()
			return
		}
	}
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// transition writes next as the breaker's state if it is still at rev,
// records it in the history and notifies. The write's result is also
// applied at once, not only when the watch delivers it.
func (b *Breaker) transition(ctx context.Context, next Record, rev uint64, reason string) (Record, error) {
	b.mu.Lock()
	prev := b.rec
	b.mu.Unlock()
	next, newRev, err := b.bs.write(ctx, b.name, next, prev.State, rev, reason, b.bs.opts.Instance)
	if err != nil {
		return prev, err
	}
	b.seen(next, newRev)
	return next, nil
}

// write stores next for function at revision rev (0: the key must not
// exist), adding a history entry from "from".
func (bs *Breakers) write(ctx context.Context, function string, next Record, from BreakerState, rev uint64, reason, by string) (Record, uint64, error) {
	now := bs.opts.Now()
	next.Function, next.Reason, next.By = function, reason, by
	if next.Since.IsZero() || next.State != from {
		next.Since = now
	}
	t := Transition{At: now, From: cmp.Or(from, Closed), To: next.State, Reason: reason, By: by}
	next.History = append(slices.Clone(next.History), t)
	if len(next.History) > historyLength {
		next.History = next.History[len(next.History)-historyLength:]
	}
	data, err := json.Marshal(next)
	if err != nil {
		return next, 0, err
	}
	newRev, err := claim.Write(ctx, bs.kv, stateKey(function), data, rev)
	if err != nil {
		return next, 0, err
	}
	if bs.opts.Notify != nil && t.From != t.To {
		bs.opts.Notify(next, t)
	}
	return next, newRev, nil
}

// Get returns the status of a function's breaker, from the KV store.
func (bs *Breakers) Get(ctx context.Context, function string) (Status, error) {
	st := Status{Record: Record{Function: function, State: Closed}}
	kve, err := bs.kv.Get(ctx, stateKey(function))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return st, err
	default:
		if err := json.Unmarshal(kve.Value(), &st.Record); err != nil {
			return st, fmt.Errorf("breaker of %s: unreadable state: %w", function, err)
		}
	}
	bs.mu.Lock()
	b := bs.byName[function]
	bs.mu.Unlock()
	if b != nil {
		p := b.p
		st.Policy = &p
		st.Failures, st.Run = b.totals()
	} else if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, fmt.Errorf("%w: function %s has no breaker (none is configured on this instance and none has state)", ErrNoBreaker, function)
	}
	return st, nil
}

// List returns the status of every breaker this instance runs or that has
// shared state, sorted by function.
func (bs *Breakers) List(ctx context.Context) ([]Status, error) {
	names := map[string]bool{}
	bs.mu.Lock()
	for name := range bs.byName {
		names[name] = true
	}
	bs.mu.Unlock()
	lister, err := bs.kv.ListKeysFiltered(ctx, "state.>")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, err
	}
	var keys []string
	if lister != nil {
		for k := range lister.Keys() {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		kve, err := bs.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var rec Record
		if json.Unmarshal(kve.Value(), &rec) == nil && rec.Function != "" {
			names[rec.Function] = true
		}
	}
	out := make([]Status, 0, len(names))
	for name := range names {
		st, err := bs.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Function, b.Function) })
	return out, nil
}

// Open opens a function's breaker by hand: it stays open, on every
// instance, until closed by hand. by names who asked (for the history).
func (bs *Breakers) Open(ctx context.Context, function, reason, by string) (Record, error) {
	return bs.set(ctx, function, by, func(rec Record) (Record, string) {
		rec.State, rec.Manual, rec.Until, rec.ProbeOwner, rec.ProbeDeadline = Open, true, time.Time{}, "", time.Time{}
		return rec, cmp.Or(reason, "opened by hand")
	})
}

// Close closes a function's breaker by hand: work resumes on every
// instance, and failures counted so far are forgotten.
func (bs *Breakers) Close(ctx context.Context, function, reason, by string) (Record, error) {
	return bs.set(ctx, function, by, func(rec Record) (Record, string) {
		now := bs.opts.Now()
		rec.State, rec.Manual, rec.Until, rec.FailedProbes, rec.ResetAt = Closed, false, time.Time{}, 0, now
		rec.ProbeOwner, rec.ProbeDeadline = "", time.Time{}
		return rec, cmp.Or(reason, "closed by hand")
	})
}

// set changes a breaker's record with change, retrying lost races.
func (bs *Breakers) set(ctx context.Context, function, by string, change func(Record) (Record, string)) (Record, error) {
	bs.mu.Lock()
	b := bs.byName[function]
	bs.mu.Unlock()
	by = "manual: " + cmp.Or(by, bs.opts.Instance)
	for range 10 {
		rec := Record{Function: function, State: Closed}
		var rev uint64
		kve, err := bs.kv.Get(ctx, stateKey(function))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if b == nil {
				return rec, fmt.Errorf("%w: function %s has no breaker (none is configured on this instance and none has state); check the name with 'sluice breaker list'", ErrNoBreaker, function)
			}
		case err != nil:
			return rec, err
		default:
			if err := json.Unmarshal(kve.Value(), &rec); err != nil {
				return rec, fmt.Errorf("breaker of %s: unreadable state: %w", function, err)
			}
			rev = kve.Revision()
		}
		next, reason := change(rec)
		next, newRev, err := bs.write(ctx, function, next, rec.State, rev, reason, by)
		if err == nil {
			if b != nil {
				b.seen(next, newRev)
			}
			return next, nil
		}
		if ctx.Err() != nil {
			return rec, err
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) && !errors.Is(err, jetstream.ErrKeyExists) {
			return rec, err
		}
	}
	return Record{}, fmt.Errorf("breaker of %s: changed concurrently too often; try again", function)
}

// Release gives back a permit whose invocation ended without an outcome
// (cancelled by a stop or a lost lease): this instance may probe again.
func (b *Breaker) Release(p Permit) {
	if b == nil || !p.Probe {
		return
	}
	b.mu.Lock()
	b.probing = false
	// Another invocation waiting here may take the probe now.
	b.rearm()
	b.mu.Unlock()
}

// MayProbe reports whether Acquire would now hand out (or try to take) the
// probe, for a trigger that must take work before it can ask: it then
// takes work only when this is true.
func (b *Breaker) MayProbe() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.bs.opts.Now()
	switch b.rec.State {
	case Open:
		return !b.rec.Manual && !b.rec.Until.IsZero() && !now.Before(b.rec.Until)
	case HalfOpen:
		if b.rec.ProbeOwner == b.bs.opts.Instance {
			return !b.probing
		}
		return claim.Expired(now, b.rec.ProbeDeadline)
	}
	return false
}

// Changed returns a channel closed at the breaker's next change (or
// deadline).
func (b *Breaker) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wake
}
