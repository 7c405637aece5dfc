package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/claim"
	"github.com/sluicehq/sluice/internal/engine"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Rounds (renewals, heartbeats, rebalancing) run every testRenew in every
// test. Tests of what happens when a lease expires use testExpiry: a lease
// expires 1.2 s after its last renewal and its holder stops 1 s after it.
// Every other test uses stableExpiry, so long that no lease expires during
// the test however slow the machine is: a round delayed, or a KV call timed
// out, under load then costs time, never a lease.
const (
	testExpiry   = 1200 * time.Millisecond
	stableExpiry = 10 * time.Minute
	testRenew    = 400 * time.Millisecond
	testSet      = "orders.$Default"
)

// setup starts an embedded NATS server with a fresh lease bucket.
func setup(t *testing.T) jetstream.KeyValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.Start(ctx, engine.Config{DataDir: t.TempDir(), Sync: engine.SyncInterval,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })
	kv, err := eng.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "leases-test", History: 1})
	require.NoError(t, err)
	return kv
}

// tracker is the run func of every manager in a test. It keeps the run
// funcs running per unit and counts overlaps: a run starting while another
// run of its unit may still act. A run given up gracefully (released or
// stopped) may act until it returns: its key is freed only then. A run
// whose lease was lost or hard-stopped may still be running (its goroutine
// waiting for the CPU) when the unit is taken over, but it must no longer
// act on it: its lease is no longer [Valid].
type tracker struct {
	overlaps atomic.Int32
	starts   atomic.Int32

	mu      sync.Mutex
	running map[int][]context.Context
	causes  map[string][]error // by instance: why its run contexts ended
}

func newTracker() *tracker {
	return &tracker{running: map[int][]context.Context{}, causes: map[string][]error{}}
}

func (tr *tracker) run(id string) func(context.Context, int) {
	return func(ctx context.Context, unit int) {
		tr.starts.Add(1)
		tr.mu.Lock()
		for _, other := range tr.running[unit] {
			cause := context.Cause(other)
			if Valid(other) || errors.Is(cause, ErrReleased) || errors.Is(cause, ErrStopped) {
				tr.overlaps.Add(1)
			}
		}
		tr.running[unit] = append(tr.running[unit], ctx)
		tr.mu.Unlock()
		<-ctx.Done()
		tr.mu.Lock()
		defer tr.mu.Unlock()
		tr.running[unit] = slices.DeleteFunc(tr.running[unit], func(c context.Context) bool { return c == ctx })
		tr.causes[id] = append(tr.causes[id], context.Cause(ctx))
	}
}

// settled reports whether every unit of 0..units-1 has exactly one run
// func running, and its lease holds: no run is yet to start or to return.
func (tr *tracker) settled(units int) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for u := range units {
		if len(tr.running[u]) != 1 || !Valid(tr.running[u][0]) {
			return false
		}
	}
	return true
}

func (tr *tracker) causesOf(id string) []error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.causes[id])
}

// start creates, joins and starts a manager running tr's run func, with
// leases that do not expire during the test; it is stopped at the end of the
// test.
func start(t *testing.T, kv jetstream.KeyValue, id string, units int, tr *tracker) *Manager {
	t.Helper()
	return startWith(t, kv, Config{InstanceID: id, Expiry: stableExpiry, Renew: testRenew}, units, tr)
}

// startWith is start with cfg (its Logger is set to discard).
func startWith(t *testing.T, kv jetstream.KeyValue, cfg Config, units int, tr *tracker) *Manager {
	t.Helper()
	id := cfg.InstanceID
	cfg.Logger = slog.New(slog.DiscardHandler)
	m, err := New(kv, cfg)
	require.NoError(t, err)
	require.NoError(t, m.Join(testSet, units, tr.run(id)))
	require.NoError(t, m.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, m.Stop(context.Background())) })
	return m
}

// eventually polls cond every 10 ms until it holds or within has passed.
func eventually(t *testing.T, within time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: "+what, append([]any{within}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ownerRevisions returns the revisions of the ownership keys of units
// 0..units-1 of testSet (0 for a key that does not exist).
func ownerRevisions(t *testing.T, kv jetstream.KeyValue, units int) []uint64 {
	t.Helper()
	out := make([]uint64, units)
	for u := range out {
		e, err := kv.Get(context.Background(), keysFor(testSet).owner(u))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		require.NoError(t, err)
		out[u] = e.Revision()
	}
	return out
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// partition reports whether the managers' Owned sets are disjoint, cover all
// units, and have the given sizes (in any order).
func partition(units int, sizes []int, ms ...*Manager) bool {
	var all, got []int
	for _, m := range ms {
		owned := m.Owned(testSet)
		all = append(all, owned...)
		got = append(got, len(owned))
	}
	slices.Sort(all)
	slices.Sort(got)
	want := slices.Sorted(slices.Values(sizes))
	return slices.Equal(all, seq(units)) && slices.Equal(got, want)
}

func TestOneManagerOwnsAll(t *testing.T) {
	t.Parallel()
	kv := setup(t)
	tr := newTracker()
	m := start(t, kv, "a", 4, tr)

	eventually(t, 20*time.Second, func() bool { return slices.Equal(m.Owned(testSet), seq(4)) },
		"one manager owns all units, owns %v", m.Owned(testSet))
	own, err := m.Ownership(context.Background(), testSet)
	require.NoError(t, err)
	require.Equal(t, map[int]string{0: "a", 1: "a", 2: "a", 3: "a"}, own)
	members, err := m.Members(context.Background(), testSet)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, members)

	require.NoError(t, m.Stop(context.Background()))
	require.Empty(t, m.Owned(testSet))
	own, err = m.Ownership(context.Background(), testSet)
	require.NoError(t, err)
	require.Empty(t, own, "Stop frees the keys")
	members, err = m.Members(context.Background(), testSet)
	require.NoError(t, err)
	require.Empty(t, members, "Stop ends the membership")
	require.Len(t, tr.causesOf("a"), 4)
	for _, c := range tr.causesOf("a") {
		require.ErrorIs(t, c, ErrStopped)
	}
	require.Zero(t, tr.overlaps.Load())
}

func TestThreeManagersBalance(t *testing.T) {
	t.Parallel()
	kv := setup(t)
	tr := newTracker()
	a := start(t, kv, "a", 8, tr)
	b := start(t, kv, "b", 8, tr)
	c := start(t, kv, "c", 8, tr)

	// Owned reports a unit as soon as it is claimed, before its run func
	// has started: count the starts once every run is running.
	eventually(t, 20*time.Second, func() bool { return partition(8, []int{3, 3, 2}, a, b, c) && tr.settled(8) },
		"3/3/2, every run running, have %v %v %v", a.Owned(testSet), b.Owned(testSet), c.Owned(testSet))

	// Balanced means stable: no unit moves over several rounds. A round
	// renews every key: two renewals of each show two rounds everywhere.
	starts := tr.starts.Load()
	revs := ownerRevisions(t, kv, 8)
	eventually(t, 20*time.Second, func() bool {
		now := ownerRevisions(t, kv, 8)
		for u := range now {
			if now[u] < revs[u]+2 {
				return false
			}
		}
		return true
	}, "two renewals of every key")
	require.True(t, partition(8, []int{3, 3, 2}, a, b, c))
	require.Equal(t, starts, tr.starts.Load(), "no unit moved once balanced")

	own, err := a.Ownership(context.Background(), testSet)
	require.NoError(t, err)
	require.Len(t, own, 8)
	members, err := a.Members(context.Background(), testSet)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, members)
	for _, m := range []*Manager{a, b, c} {
		for _, u := range m.Owned(testSet) {
			require.Equal(t, m.cfg.InstanceID, own[u], "unit %d", u)
		}
	}
	require.Zero(t, tr.overlaps.Load(), "two run funcs of one unit ran at once")
}

func TestDeadManagerTakenOver(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		kill  func(m *Manager, cancel context.CancelFunc)
		cause error
	}{
		// The process hangs or is cut off: no KV calls, runs left to the
		// expiry timers.
		{"frozen", func(m *Manager, _ context.CancelFunc) { m.frozen.Store(true) }, ErrLost},
		// A hard stop: runs cancelled, nothing freed.
		{"cancelled", func(_ *Manager, cancel context.CancelFunc) { cancel() }, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kv := setup(t)
			tr := newTracker()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			a, err := New(kv, Config{InstanceID: "a", Expiry: testExpiry, Renew: testRenew,
				Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			require.NoError(t, a.Join(testSet, 6, tr.run("a")))
			require.NoError(t, a.Start(ctx))
			t.Cleanup(func() { require.NoError(t, a.Stop(context.Background())) })
			b := startWith(t, kv, Config{InstanceID: "b", Expiry: testExpiry, Renew: testRenew}, 6, tr)
			eventually(t, 20*time.Second, func() bool { return partition(6, []int{3, 3}, a, b) },
				"3/3, have %v %v", a.Owned(testSet), b.Owned(testSet))

			before := len(tr.causesOf("a")) // a may have released units to b at first
			killed := time.Now()
			tc.kill(a, cancel)
			eventually(t, 20*time.Second, func() bool { return slices.Equal(b.Owned(testSet), seq(6)) },
				"b takes all, owns %v", b.Owned(testSet))
			require.Greater(t, time.Since(killed), testExpiry-testRenew,
				"taken over before the dead owner's leases could have expired")
			// a's runs were told to stop before b could take their units
			// (the tracker checks that), but they and a's expiry timers
			// return in their own time.
			eventually(t, 20*time.Second, func() bool { return len(a.Owned(testSet)) == 0 && len(tr.causesOf("a")) == before+3 },
				"a's runs returned, a owns %v", a.Owned(testSet))
			causes := tr.causesOf("a")[before:]
			for _, c := range causes {
				require.ErrorIs(t, c, tc.cause)
			}
			require.Zero(t, tr.overlaps.Load(), "the dead owner still ran when its unit was taken over")
		})
	}
}

func TestStopHandsOverQuickly(t *testing.T) {
	t.Parallel()
	kv := setup(t)
	tr := newTracker()
	a := start(t, kv, "a", 6, tr)
	b := start(t, kv, "b", 6, tr)
	eventually(t, 20*time.Second, func() bool { return partition(6, []int{3, 3}, a, b) },
		"3/3, have %v %v", a.Owned(testSet), b.Owned(testSet))

	before := len(tr.causesOf("a")) // a may have released units to b at first
	stopped := time.Now()
	require.NoError(t, a.Stop(context.Background()))
	require.NoError(t, a.Stop(context.Background())) // safe twice
	// Stop deleted a's keys: b need not wait for them to expire (how soon
	// it takes them depends on the machine).
	own, err := b.Ownership(context.Background(), testSet)
	require.NoError(t, err)
	require.NotContains(t, slices.Collect(maps.Values(own)), "a", "Stop frees the keys")
	eventually(t, 20*time.Second, func() bool { return slices.Equal(b.Owned(testSet), seq(6)) },
		"b takes a's units, owns %v", b.Owned(testSet))
	t.Logf("handover took %v", time.Since(stopped))
	causes := tr.causesOf("a")[before:]
	require.Len(t, causes, 3)
	for _, c := range causes {
		require.ErrorIs(t, c, ErrStopped)
	}
	require.Zero(t, tr.overlaps.Load())
}

func TestNewMemberTakesShare(t *testing.T) {
	t.Parallel()
	kv := setup(t)
	tr := newTracker()
	a := start(t, kv, "a", 6, tr)
	eventually(t, 20*time.Second, func() bool { return slices.Equal(a.Owned(testSet), seq(6)) },
		"a owns all, owns %v", a.Owned(testSet))

	b := start(t, kv, "b", 6, tr)
	eventually(t, 20*time.Second, func() bool { return partition(6, []int{3, 3}, a, b) },
		"3/3, have %v %v", a.Owned(testSet), b.Owned(testSet))
	causes := tr.causesOf("a")
	require.Len(t, causes, 3)
	for _, c := range causes {
		require.ErrorIs(t, c, ErrReleased)
	}
	require.Zero(t, tr.overlaps.Load())
}

func TestLeaveHandsOver(t *testing.T) {
	t.Parallel()
	kv := setup(t)
	tr := newTracker()
	a := start(t, kv, "a", 4, tr)
	b := start(t, kv, "b", 4, tr)
	eventually(t, 20*time.Second, func() bool { return partition(4, []int{2, 2}, a, b) && tr.settled(4) },
		"2/2, every run running, have %v %v", a.Owned(testSet), b.Owned(testSet))

	// b may have claimed units before a did, and released them to a since.
	before := len(tr.causesOf("b"))
	b.Leave(testSet)
	require.Empty(t, b.Owned(testSet))
	causes := tr.causesOf("b")[before:]
	require.Len(t, causes, 2, "Leave waited for b's run funcs")
	for _, c := range causes {
		require.ErrorIs(t, c, ErrStopped)
	}
	// Leave deleted b's keys: a need not wait for them to expire.
	own, err := a.Ownership(context.Background(), testSet)
	require.NoError(t, err)
	require.NotContains(t, slices.Collect(maps.Values(own)), "b", "Leave frees the keys")
	eventually(t, 20*time.Second, func() bool { return slices.Equal(a.Owned(testSet), seq(4)) },
		"a takes b's units, owns %v", a.Owned(testSet))
	b.Leave(testSet) // leaving twice does nothing
	require.NoError(t, b.Join(testSet, 4, tr.run("b")), "a set can be joined again")
	eventually(t, 20*time.Second, func() bool { return partition(4, []int{2, 2}, a, b) },
		"2/2 again, have %v %v", a.Owned(testSet), b.Owned(testSet))
	require.Zero(t, tr.overlaps.Load())
}

func TestForeignWriteLosesLease(t *testing.T) {
	t.Parallel()
	kv := setup(t)
	var (
		mu   sync.Mutex
		ctxs = map[int]context.Context{}
	)
	// The intruder's write must expire within the test; the holder's
	// renewals, though, must not miss it on a slow machine.
	const expiry = 4 * time.Second
	m, err := New(kv, Config{InstanceID: "a", Expiry: expiry, Renew: testRenew,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, m.Join(testSet, 3, func(ctx context.Context, unit int) {
		mu.Lock()
		ctxs[unit] = ctx
		mu.Unlock()
		<-ctx.Done()
	}))
	require.NoError(t, m.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, m.Stop(context.Background())) })
	eventually(t, 20*time.Second, func() bool { return slices.Equal(m.Owned(testSet), seq(3)) },
		"owns all, owns %v", m.Owned(testSet))
	// Owned can report a unit before its callback has started.
	var ctx1 context.Context
	eventually(t, 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		ctx1 = ctxs[1]
		return ctx1 != nil
	}, "unit 1's callback started")
	require.True(t, Valid(ctx1))

	wrote := time.Now()
	_, err = kv.Put(context.Background(), keysFor(testSet).owner(1), []byte(`{"owner":"intruder","session":"x"}`))
	require.NoError(t, err)
	eventually(t, 20*time.Second, func() bool { return ctx1.Err() != nil }, "unit 1 cancelled")
	require.ErrorIs(t, context.Cause(ctx1), ErrLost)
	require.False(t, Valid(ctx1))
	require.Equal(t, []int{0, 2}, m.Owned(testSet))

	// The intruder never renews: once its write expires, the unit is free.
	eventually(t, 20*time.Second, func() bool { return slices.Equal(m.Owned(testSet), seq(3)) },
		"unit 1 claimed again, owns %v", m.Owned(testSet))
	require.Greater(t, time.Since(wrote), expiry, "claimed before the intruder's write expired")
	// Owned can report the unit before its new callback has started.
	eventually(t, 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ctxs[1] != ctx1 && Valid(ctxs[1])
	}, "unit 1's callback started again with a valid lease")
}

func TestValidOutsideALease(t *testing.T) {
	t.Parallel()
	require.False(t, Valid(context.Background()))
}

func TestRunReturningEarlyReleasesUnit(t *testing.T) {
	t.Parallel()
	kv := setup(t)
	var runs atomic.Int32
	m, err := New(kv, Config{InstanceID: "a", Expiry: stableExpiry, Renew: testRenew,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, m.Join(testSet, 1, func(ctx context.Context, unit int) {
		if runs.Add(1) == 1 {
			return // gives the unit up at once, the first time
		}
		<-ctx.Done()
	}))
	require.NoError(t, m.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, m.Stop(context.Background())) })
	eventually(t, 20*time.Second, func() bool { return runs.Load() == 2 && len(m.Owned(testSet)) == 1 },
		"unit run again, runs %d", runs.Load())
}

func TestStartStopLifecycle(t *testing.T) {
	t.Parallel()
	kv := setup(t)
	m, err := New(kv, Config{InstanceID: "a", Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, m.cfg.Expiry)
	require.Equal(t, 10*time.Second, m.cfg.Renew)
	require.NoError(t, m.Join(testSet, 2, func(ctx context.Context, _ int) { <-ctx.Done() }))
	m.Leave(testSet) // before Start: nothing to release
	require.NoError(t, m.Stop(context.Background()))
	require.NoError(t, m.Stop(context.Background()))
	require.Error(t, m.Start(context.Background()), "a stopped manager does not start")
	require.Error(t, m.Join("other", 1, func(context.Context, int) {}))

	m2, err := New(kv, Config{InstanceID: "b", Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, m2.Start(context.Background()))
	require.NoError(t, m2.Start(context.Background()), "Start is idempotent")
	require.NoError(t, m2.Stop(context.Background()))
}

// TestStopHardLeavesKeys: when Stop's context ends before the run funcs
// have returned, the loops end without freeing the keys, which others take
// over once they expire.
func TestStopHardLeavesKeys(t *testing.T) {
	t.Parallel()
	kv := setup(t)
	m, err := New(kv, Config{InstanceID: "a", Expiry: stableExpiry, Renew: testRenew, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	running, cancelled, release := make(chan struct{}), make(chan error, 1), make(chan struct{})
	require.NoError(t, m.Join(testSet, 1, func(ctx context.Context, _ int) {
		close(running)
		<-ctx.Done()
		cancelled <- context.Cause(ctx)
		<-release // slow to finish: holds the graceful part open
	}))
	require.NoError(t, m.Start(context.Background()))
	<-running

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- m.Stop(ctx) }()
	require.ErrorIs(t, <-cancelled, ErrStopped, "the graceful part cancels the run func first")
	cancel()
	m.loops.Wait() // the hard stop ended the loop, the key still held
	close(release)
	require.NoError(t, <-stopped)
	requireClosed(t, m.Stopped())
	require.NotZero(t, ownerRevisions(t, kv, 1)[0], "a hard stop frees no key")
}

func requireClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Fatal("channel not closed")
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	kv := setup(t)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "InstanceID is required"},
		{Config{InstanceID: "a", Expiry: -time.Second}, "Expiry must be positive"},
		{Config{InstanceID: "a", Renew: -time.Second}, "Renew must be positive"},
		{Config{InstanceID: "a", Expiry: time.Second, Renew: time.Second}, "at least twice"},
		{Config{InstanceID: "a", Expiry: time.Second, Renew: 2 * time.Second}, "at least twice"},
		{Config{InstanceID: "a", Renew: 20 * time.Second}, "at least twice"},
	} {
		_, err := New(kv, tc.cfg)
		require.ErrorContains(t, err, tc.want, "%+v", tc.cfg)
	}
	_, err := New(nil, Config{InstanceID: "a"})
	require.ErrorContains(t, err, "KV bucket is required")

	m, err := New(kv, Config{InstanceID: "a"})
	require.NoError(t, err)
	run := func(context.Context, int) {}
	for _, tc := range []struct {
		name  string
		units int
		run   func(context.Context, int)
		want  string
	}{
		{"", 1, run, "needs a set name"},
		{"s", 0, run, "units must be between 1 and"},
		{"s", -3, run, "units must be between 1 and"},
		{"s", MaxUnits + 1, run, "units must be between 1 and"},
		{"s", 1, nil, "run func is nil"},
	} {
		require.ErrorContains(t, m.Join(tc.name, tc.units, tc.run), tc.want, "%q %d", tc.name, tc.units)
	}
	require.NoError(t, m.Join("s", 1, run))
	require.ErrorContains(t, m.Join("s", 1, run), "already joined")
	require.NoError(t, m.Stop(context.Background()))
}

func TestShare(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		units  int
		counts map[string]int
		want   int // share of "me"
	}{
		{8, map[string]int{"me": 0}, 8},
		{8, map[string]int{"me": 0, "b": 0, "c": 0}, 3}, // nobody holds extras yet
		{8, map[string]int{"me": 2, "b": 3, "c": 3}, 2}, // extras taken
		{8, map[string]int{"me": 3, "b": 3, "c": 2}, 3}, // balanced
		{8, map[string]int{"me": 3, "b": 3, "c": 3}, 2}, // too many extras: the highest ID gives one up
		{8, map[string]int{"a": 3, "b": 3, "me": 2}, 2},
		{8, map[string]int{"me": 8, "b": 0}, 4},                 // newcomer: release half
		{8, map[string]int{"me": 4, "b": 0, "c": 0, "d": 0}, 2}, // exact split
		{2, map[string]int{"me": 0, "b": 1, "c": 1}, 0},         // more members than units
		{2, map[string]int{"me": 1, "b": 1, "c": 0}, 1},
		{10, map[string]int{"me": 3, "b": 3, "c": 3, "d": 1}, 2}, // "me" sorts after "b", "c": gives one to "d"
		{10, map[string]int{"me": 3, "x": 3, "y": 3, "d": 1}, 3}, // "me" sorts first: keeps its extra
	} {
		require.Equal(t, tc.want, share(tc.units, "me", tc.counts), "%d units, %v", tc.units, tc.counts)
	}
}

func TestEncodeToken(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"orders":          "orders",
		"orders.$Default": "orders_2E_24Default",
		"a_b":             "a_5Fb",
		"host-1=x":        "host-1=x",
		"a/b c":           "a_2Fb_20c",
		"ü":               "_C3_BC",
	} {
		require.Equal(t, want, encodeToken(in), in)
	}
	// Distinct names never share a token.
	require.NotEqual(t, encodeToken("a.b"), encodeToken("a_2Eb"))
	k := keysFor("orders.$Default")
	require.Equal(t, "orders_2E_24Default.o.7", k.owner(7))
	require.Equal(t, "orders_2E_24Default.m.host_2E1", k.member("host.1"))
	kind, tok, ok := k.parse(k.member("host.1"))
	require.True(t, ok)
	require.Equal(t, "m", kind)
	require.Equal(t, "host_2E1", tok)
	_, _, ok = keysFor("orders").parse(k.owner(1))
	require.False(t, ok)
}

// A renewal whose reply never came (it timed out under load, but the server
// stored it) is the holder's own write. When the watch has not shown it yet,
// the next renewal fails its compare-and-set on it: the holder must not take
// its own write for a takeover (it would stop the run and have its
// unfinished work redone), nor fail to free the key on a release. A write by
// anyone else still loses the lease.
func TestOwnLateRenewalKeepsTheLease(t *testing.T) {
	t.Parallel()
	kv := setup(t)
	m, err := New(kv, Config{InstanceID: "a", Expiry: stableExpiry, Renew: testRenew, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	runs := make(chan context.Context, 1)
	require.NoError(t, m.Join(testSet, 1, func(ctx context.Context, _ int) {
		runs <- ctx
		<-ctx.Done()
	}))
	t.Cleanup(func() { require.NoError(t, m.Stop(context.Background())) })
	// The manager is not started: the test makes the set loop's calls
	// itself, with no watch to show the late write first.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := m.sets[testSet]
	s.ctx = ctx
	key := s.keys.owner(0)
	hold := func() (*lease, context.Context) {
		c, err := claim.Take(ctx, kv, key, 0, time.Now(), s.claimed, m.terms)
		require.NoError(t, err)
		s.acquire(0, c)
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.held[0], <-runs
	}
	// What the holder's renewal stored though its reply was lost.
	lateRenewal := func(l *lease) uint64 {
		rev, err := kv.Update(ctx, key, s.claimed, l.claim.Rev())
		require.NoError(t, err)
		return rev
	}

	l, run := hold()
	late := lateRenewal(l)
	s.renewAll(ctx)
	require.NoError(t, run.Err(), "the lease was lost to its own late renewal: %v", context.Cause(run))
	require.Greater(t, l.claim.Rev(), late, "renewed after its own late write")
	require.True(t, Valid(run))

	lateRenewal(l)
	s.release([]int{0})
	<-l.done
	s.freeFinished(ctx)
	_, err = kv.Get(ctx, key)
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound, "the release freed the key")
	require.Empty(t, m.Owned(testSet))

	l, run = hold()
	_, err = kv.Update(ctx, key, []byte(`{"owner":"b","session":"other"}`), l.claim.Rev())
	require.NoError(t, err)
	s.renewAll(ctx)
	require.ErrorIs(t, context.Cause(run), ErrLost, "another writer's write loses the lease")
	require.Empty(t, m.Owned(testSet))
}

// A restarted instance (the same ID, a new session) takes the leases of
// its previous, dead life back without waiting for them to expire: at once
// with an exclusive ID, after a heartbeat period without a twin otherwise.
// (The leases last 10 minutes: only being taken back explains a takeover
// within the test.)
func TestRestartTakesItsOwnLeasesBack(t *testing.T) {
	t.Parallel()
	for _, exclusive := range []bool{true, false} {
		t.Run(fmt.Sprintf("exclusive=%v", exclusive), func(t *testing.T) {
			t.Parallel()
			kv := setup(t)
			cfg := Config{InstanceID: "a", ExclusiveID: exclusive, Expiry: stableExpiry, Renew: testRenew}
			a := startWith(t, kv, cfg, 4, newTracker())
			eventually(t, 20*time.Second, func() bool { return slices.Equal(a.Owned(testSet), seq(4)) }, "a owns all, has %v", a.Owned(testSet))
			a.frozen.Store(true) // the process dies: no more KV calls, its keys left held

			tr := newTracker()
			again := startWith(t, kv, cfg, 4, tr)
			eventually(t, 20*time.Second, func() bool { return tr.settled(4) && slices.Equal(again.Owned(testSet), seq(4)) },
				"the restarted instance owns all, has %v", again.Owned(testSet))
		})
	}
}

// A second live process under an instance's ID is noticed by both, and
// takes none of the other's units (their leases do not expire).
func TestTwinInstancesDoNotTakeEachOthersLeases(t *testing.T) {
	t.Parallel()
	kv := setup(t)
	a := start(t, kv, "a", 4, newTracker())
	eventually(t, 20*time.Second, func() bool { return slices.Equal(a.Owned(testSet), seq(4)) }, "a owns all, has %v", a.Owned(testSet))
	// The twin waits 1.5 × its Renew (90 s) before it would take a
	// previous life's units: a heartbeats every 400 ms meanwhile.
	twin := startWith(t, kv, Config{InstanceID: "a", Expiry: stableExpiry, Renew: time.Minute}, 4, newTracker())
	eventually(t, 20*time.Second, func() bool { return a.twinSeen(testSet) && twin.twinSeen(testSet) }, "both notice the twin")
	require.Empty(t, twin.Owned(testSet))
	require.Equal(t, seq(4), a.Owned(testSet))
}
