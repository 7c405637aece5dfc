package lease

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/claim"
	"github.com/sluicehq/sluice/internal/service"
)

// Causes of a run context's cancellation, read with [context.Cause].
var (
	// ErrLost: another writer changed the ownership key (a compare-and-set
	// failed, or the key was overwritten or deleted), or the lease could not
	// be renewed for so long that another instance might soon take it over.
	ErrLost = errors.New("lease: lost")
	// ErrReleased: this instance gave the unit up so that another member gets
	// its share. The key is freed once run has returned.
	ErrReleased = errors.New("lease: released to rebalance")
	// ErrStopped: the set was left or the manager stopped. The key is freed
	// once run has returned.
	ErrStopped = errors.New("lease: released on leave or stop")
)

// MaxUnits is the largest number of units a set may have.
const MaxUnits = 4096

// defaultTimeout bounds a call made with a context that has no deadline.
const defaultTimeout = 10 * time.Second

// Config configures a [Manager]. Zero values mean the defaults.
type Config struct {
	// InstanceID names this process among the instances sharing the bucket.
	// Required. It must differ between processes running at the same time.
	// A restarted process that reuses its ID takes the leases of its
	// previous life back without waiting for them to expire: at once when
	// ExclusiveID is set, else once a heartbeat period (1.5 × Renew) after
	// its own first heartbeat has shown no other live process under the
	// ID. A second live process under the ID is noticed by its heartbeats
	// (logged as an error); units are then taken only once they expire.
	InstanceID string
	// ExclusiveID says the caller guarantees that no other live process
	// uses InstanceID (it holds an OS lock on it), so that leases of a
	// previous life are taken back at once.
	ExclusiveID bool
	// Expiry is how long a lease (or a membership) lasts without renewal.
	// Others take over a dead instance's units this long after its last
	// renewal. Default 30s.
	Expiry time.Duration
	// Renew is the period of heartbeats, renewals and rebalancing. It must be
	// at most Expiry/2; a holder stops working on a unit Expiry − Renew/2 after
	// its last confirmed renewal. Default Expiry/3.
	Renew time.Duration
	// Logger receives claims, releases and losses. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Expiry = cmp.Or(c.Expiry, 30*time.Second)
	c.Renew = cmp.Or(c.Renew, c.Expiry/3)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.InstanceID == "":
		return errors.New("lease: Config.InstanceID is required (a name unique to this process)")
	case c.Expiry < 0:
		return fmt.Errorf("lease: Config.Expiry must be positive, got %v", c.Expiry)
	case c.Renew < 0:
		return fmt.Errorf("lease: Config.Renew must be positive, got %v", c.Renew)
	case c.Expiry < 2*c.Renew:
		return fmt.Errorf("lease: Config.Expiry (%v) must be at least twice Config.Renew (%v), so a lease is renewed before its holder must give it up", c.Expiry, c.Renew)
	}
	return nil
}

// Manager claims, renews and releases the leases of one instance in one KV
// bucket. Create it with [New], [Manager.Join] the sets the instance works on,
// then [Manager.Start] it; [Manager.Stop] hands everything over.
type Manager struct {
	kv      jetstream.KeyValue
	cfg     Config
	session string
	log     *slog.Logger
	// terms of every ownership claim: the holder stops Renew/2 before
	// others may take over (see the claim package on clock skew).
	terms claim.Terms

	life    service.Lifecycle
	mu      sync.Mutex
	sets    map[string]*set
	ctx     context.Context // from Start, ended by a hard stop too; nil before
	started bool
	stopped bool

	runs  sync.WaitGroup // run funcs
	loops sync.WaitGroup // set loops

	// frozen is a test hook: while set, the loops make no KV calls at all, as
	// if the process hung or lost its connection, until a Leave or Stop.
	frozen atomic.Bool
}

// Bucket is the KV bucket Sluice keeps its leases in.
const Bucket = "sluice-leases"

// Open returns a Manager for the leases of the bucket Bucket in js,
// creating the bucket if it is missing.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Manager, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("lease: open KV bucket %s: %w", Bucket, err)
	}
	return New(kv, cfg)
}

// New returns a Manager for the leases in kv. It makes no call to the server.
func New(kv jetstream.KeyValue, cfg Config) (*Manager, error) {
	if kv == nil {
		return nil, errors.New("lease: a KV bucket is required")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return &Manager{
		kv:      kv,
		cfg:     cfg,
		session: hex.EncodeToString(b[:]),
		log:     cfg.Logger.With("instance", cfg.InstanceID),
		terms:   claim.Terms{TTL: cfg.Expiry, Margin: cfg.Renew / 2},
		sets:    make(map[string]*set),
	}, nil
}

// Join makes this instance a member of the set name, which has units units
// numbered 0 to units-1. Each unit the instance acquires is worked on by
// run(ctx, unit) in its own goroutine; ctx is cancelled when the lease is
// lost, released for rebalancing, or given up by Leave or Stop, and run must
// then return promptly. [Valid] reports whether ctx's lease still holds.
// Join may be called before or after Start.
func (m *Manager) Join(name string, units int, run func(ctx context.Context, unit int)) error {
	switch {
	case name == "":
		return errors.New("lease: Join needs a set name")
	case units <= 0 || units > MaxUnits:
		return fmt.Errorf("lease: set %q: units must be between 1 and %d, got %d", name, MaxUnits, units)
	case run == nil:
		return fmt.Errorf("lease: set %q: run func is nil", name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return fmt.Errorf("lease: set %q: manager is stopped", name)
	}
	if _, ok := m.sets[name]; ok {
		return fmt.Errorf("lease: set %q is already joined", name)
	}
	s := newSet(m, name, units, run)
	m.sets[name] = s
	if m.started {
		m.startLoop(s)
	}
	return nil
}

// Leave gives up this instance's membership of the set name: it cancels the
// set's run funcs, waits for them to return, and frees their keys so that the
// other members take them over at once. Leaving a set not joined does nothing.
func (m *Manager) Leave(name string) {
	m.mu.Lock()
	s := m.sets[name]
	delete(m.sets, name)
	started := s != nil && s.started
	m.mu.Unlock()
	if s == nil {
		return
	}
	s.leave()
	if started {
		<-s.exited
	}
}

// Start starts the heartbeat, renewal and rebalancing of every joined set. It
// returns at once; calling it again does nothing. Cancelling ctx is a hard
// stop: every run context is cancelled and the loops end without freeing any
// key, as if the process had died, so others take over after Expiry. Use
// [Manager.Stop] to hand over gracefully.
func (m *Manager) Start(ctx context.Context) error {
	err := m.life.Start(func() error {
		// A hard stop (Stop's context ending) ends the loops as ctx does.
		loopCtx, cancel := context.WithCancel(ctx)
		context.AfterFunc(m.life.Context(), cancel)
		m.mu.Lock()
		defer m.mu.Unlock()
		m.started = true
		m.ctx = loopCtx
		for _, s := range m.sets {
			m.startLoop(s)
		}
		return nil
	})
	if errors.Is(err, service.ErrStopped) {
		return fmt.Errorf("lease: manager is %w", err)
	}
	return err
}

// startLoop runs the loop of s. It is called with m.mu held.
func (m *Manager) startLoop(s *set) {
	s.started = true
	m.loops.Go(func() { s.loop(m.ctx) })
}

// Stop leaves every set: it cancels all run funcs, waits for them to return,
// and frees their keys and this instance's memberships so that the other
// instances take over at once. When ctx ends first, it stops hard instead:
// the keys not yet freed are left to expire, as on a cancelled Start
// context. It is safe to call more than once and before Start; the manager
// cannot be started again. Failures to free keys are logged, not
// returned: the keys expire by themselves.
func (m *Manager) Stop(ctx context.Context) error {
	return m.life.Stop(ctx, func(context.Context) {
		m.mu.Lock()
		m.stopped = true
		sets := make([]*set, 0, len(m.sets))
		for _, s := range m.sets {
			sets = append(sets, s)
		}
		m.mu.Unlock()
		for _, s := range sets {
			s.leave()
		}
		m.loops.Wait()
		m.runs.Wait()
	}, nil)
}

// Stopped is closed once Stop has finished.
func (m *Manager) Stopped() <-chan struct{} { return m.life.Stopped() }

// Owned returns the units of the set name that this instance holds, sorted,
// including any being released whose run func has not returned yet.
// twinSeen reports whether set name has seen another live process under
// this instance's ID (for tests).
func (m *Manager) twinSeen(name string) bool {
	m.mu.Lock()
	s := m.sets[name]
	m.mu.Unlock()
	return s != nil && s.twinSeen()
}

// Owned returns the units of set name this instance holds, in order.
func (m *Manager) Owned(name string) []int {
	m.mu.Lock()
	s := m.sets[name]
	m.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	units := make([]int, 0, len(s.held))
	for u := range s.held {
		units = append(units, u)
	}
	slices.Sort(units)
	return units
}

// Ownership reads from the bucket which instance holds each unit of the set
// name, as seen by any instance: unit → instance ID. Free and expired units
// are absent. The set does not need to be joined by this manager.
func (m *Manager) Ownership(ctx context.Context, name string) (map[int]string, error) {
	if name == "" {
		return nil, errors.New("lease: Ownership needs a set name")
	}
	entries, err := snapshot(ctx, m.kv, keysFor(name).owners())
	if err != nil {
		return nil, fmt.Errorf("lease: read ownership of %q: %w", name, err)
	}
	k := keysFor(name)
	now := time.Now()
	out := make(map[int]string, len(entries))
	for _, e := range entries {
		_, tok, ok := k.parse(e.Key())
		if !ok || e.Operation() != jetstream.KeyValuePut || claim.Expired(now, e.Created().Add(m.cfg.Expiry)) {
			continue
		}
		unit, err := strconv.Atoi(tok)
		if err != nil || unit < 0 {
			continue
		}
		var v ownerValue
		if json.Unmarshal(e.Value(), &v) != nil || v.Owner == "" {
			continue
		}
		out[unit] = v.Owner
	}
	return out, nil
}

// Members reads from the bucket the instances that are live members of the
// set name (their heartbeat is younger than Expiry), as seen by any
// instance: their IDs, sorted. The set does not need to be joined by this
// manager.
func (m *Manager) Members(ctx context.Context, name string) ([]string, error) {
	if name == "" {
		return nil, errors.New("lease: Members needs a set name")
	}
	entries, err := snapshot(ctx, m.kv, keysFor(name).members())
	if err != nil {
		return nil, fmt.Errorf("lease: read members of %q: %w", name, err)
	}
	now := time.Now()
	var out []string
	for _, e := range entries {
		if e.Operation() != jetstream.KeyValuePut || claim.Expired(now, e.Created().Add(m.cfg.Expiry)) {
			continue
		}
		var v memberValue
		if json.Unmarshal(e.Value(), &v) != nil || v.Instance == "" {
			continue
		}
		out = append(out, v.Instance)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// snapshot reads the current entries of the keys matching filter.
func snapshot(ctx context.Context, kv jetstream.KeyValue, filter string) ([]jetstream.KeyValueEntry, error) {
	// The watch lives until ctx ends, so ctx must end: give it a bound of
	// our own and cancel it on return.
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); ok {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
	}
	defer cancel()
	w, err := kv.Watch(ctx, filter)
	if err != nil {
		return nil, err
	}
	defer stopWatch(w)
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watch closed")
			}
			if e == nil {
				return out, nil
			}
			out = append(out, e)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// stopWatch stops w and reads what is left of its channel: nats.go blocks the
// subscription's goroutine on a full channel, which would leak it.
func stopWatch(w jetstream.KeyWatcher) {
	_ = w.Stop()
	t := time.NewTimer(defaultTimeout)
	defer t.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}

// Valid reports whether ctx is (derived from) a run context whose lease still
// holds at this moment: not cancelled, and within the time its last confirmed
// renewal guarantees. Call it right before a write only the owner may make.
func Valid(ctx context.Context) bool {
	l, _ := ctx.Value(leaseKey{}).(*lease)
	return l != nil && l.ctx.Err() == nil && monotonic() < time.Duration(l.until.Load())
}

type leaseKey struct{}

// epoch anchors monotonic deadlines, immune to wall-clock jumps.
var epoch = time.Now()

func monotonic() time.Duration { return time.Since(epoch) }

type leaseState int

const (
	active    leaseState = iota
	releasing            // run cancelled; the key is freed when run returns
	gone                 // lost, released or stopped; no longer in set.held
)

// lease is one held unit.
type lease struct {
	unit   int
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when run returns
	until  atomic.Int64  // monotonic() deadline, as a time.Duration
	timer  *time.Timer   // fires at until: the lease is lost

	claim *claim.Claim // the ownership key; written by the set loop's goroutine only
	state leaseState   // guarded by set.mu
}

func (l *lease) finished() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}
