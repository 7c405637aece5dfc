package resilience

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/engine"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a clock the test moves by hand. reads counts the calls of
// Now: code that reads the clock on every look at something shows by it
// that it has looked again.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	reads atomic.Int64
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.reads.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestWindowRollsWithTheClock(t *testing.T) {
	clock := newFakeClock()
	w := newWindow(30 * time.Second) // 1s buckets
	for range 5 {
		w.add(clock.Now(), 1)
	}
	assert.Equal(t, 5, w.sum(clock.Now(), time.Time{}))
	clock.Advance(10 * time.Second)
	w.add(clock.Now(), 3)
	assert.Equal(t, 8, w.sum(clock.Now(), time.Time{}))
	// 25s later the first five are past the window, the three are not.
	clock.Advance(25 * time.Second)
	assert.Equal(t, 3, w.sum(clock.Now(), time.Time{}))
	clock.Advance(6 * time.Second)
	assert.Equal(t, 0, w.sum(clock.Now(), time.Time{}))

	// A bucket slot reused after a full turn starts from zero.
	w.add(clock.Now(), 2)
	assert.Equal(t, 2, w.sum(clock.Now(), time.Time{}))
	assert.Len(t, w.snapshot(clock.Now()), 1)

	// Buckets before a reset do not count.
	clock.Advance(2 * time.Second)
	w.add(clock.Now(), 4)
	assert.Equal(t, 4, w.sum(clock.Now(), clock.Now()))
	assert.Equal(t, 6, sumBuckets(w.snapshot(clock.Now()), w.size, w.length, clock.Now(), time.Time{}))
	w.reset()
	assert.Equal(t, 0, w.sum(clock.Now(), time.Time{}))
}

func startKV(t *testing.T) jetstream.KeyValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eng, err := engine.Start(ctx, engine.Config{DataDir: t.TempDir(), Sync: engine.SyncInterval, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })
	kv, err := eng.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "breakers-test", History: 1})
	require.NoError(t, err)
	return kv
}

// instance is one instance's breakers in a test, with the transitions it
// made.
type instance struct {
	bs    *Breakers
	b     *Breaker
	mu    sync.Mutex
	notes []Transition
}

func (in *instance) made() []Transition {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Transition(nil), in.notes...)
}

func newInstance(t *testing.T, kv jetstream.KeyValue, id string, clock *fakeClock, p BreakerPolicy) *instance {
	t.Helper()
	in := &instance{}
	in.bs = NewBreakers(kv, BreakersOptions{Instance: id, Now: clock.Now, ShareEvery: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), Notify: func(_ Record, tr Transition) {
			in.mu.Lock()
			in.notes = append(in.notes, tr)
			in.mu.Unlock()
		}})
	var err error
	in.b, err = in.bs.Register("deliver", p, time.Minute)
	require.NoError(t, err)
	require.NoError(t, in.bs.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, in.bs.Stop(context.Background())) })
	return in
}

func waitState(t *testing.T, b *Breaker, want BreakerState) Record {
	t.Helper()
	return waitFor(t, b, string(want), func(rec Record) bool { return rec.State == want })
}

// waitFor waits until the breaker's record as b sees it satisfies ok.
func waitFor(t *testing.T, b *Breaker, what string, ok func(Record) bool) Record {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		changed := b.Changed()
		if rec := b.State(); ok(rec) {
			return rec
		}
		select {
		case <-changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("breaker of %s: state %+v, want %s", b.Name(), b.State(), what)
		}
	}
}

func fail(b *Breaker, n int) {
	for range n {
		p, ok, _ := b.Acquire(context.Background())
		if !ok {
			return
		}
		b.Done(context.Background(), p, true)
	}
}

func TestBreakerCountsFailuresOverAllInstances(t *testing.T) {
	kv := startKV(t)
	clock := newFakeClock()
	p := BreakerPolicy{FailureThreshold: 10, Window: 30 * time.Second, CoolDown: 10 * time.Second}
	a := newInstance(t, kv, "a", clock, p)
	b := newInstance(t, kv, "b", clock, p)

	fail(a.b, 6)
	// a's failures reach b through the shared counts.
	require.Eventually(t, func() bool { f, _ := b.b.totals(); return f == 6 }, 20*time.Second, 10*time.Millisecond)
	assert.Equal(t, Closed, b.b.State().State)
	fail(b.b, 4) // 6 + 4 = 10: b opens it
	rec := waitState(t, a.b, Open)
	assert.Equal(t, "b", rec.By)
	assert.Contains(t, rec.Reason, "10 failures within 30s over all instances")
	assert.Equal(t, clock.Now().Add(10*time.Second), rec.Until)
	_, ok, _ := a.b.Acquire(context.Background())
	assert.False(t, ok, "an open breaker admits nothing on any instance")
	// Exactly one transition, made by b.
	assert.Empty(t, a.made())
	require.Len(t, b.made(), 1)
	assert.Equal(t, Transition{At: clock.Now(), From: Closed, To: Open, Reason: rec.Reason, By: "b"}, b.made()[0])
}

func TestBreakerForgetsFailuresPastTheWindow(t *testing.T) {
	kv := startKV(t)
	clock := newFakeClock()
	p := BreakerPolicy{FailureThreshold: 10, Window: 30 * time.Second}
	a := newInstance(t, kv, "a", clock, p)
	b := newInstance(t, kv, "b", clock, p)
	fail(a.b, 9)
	require.Eventually(t, func() bool { f, _ := b.b.totals(); return f == 9 }, 20*time.Second, 10*time.Millisecond)
	clock.Advance(31 * time.Second)
	f, _ := b.b.totals()
	assert.Equal(t, 0, f, "failures older than the window no longer count")
	fail(b.b, 9)
	assert.Equal(t, Closed, b.b.State().State)
	fail(b.b, 1)
	waitState(t, a.b, Open)
}

func TestBreakerConsecutiveFailures(t *testing.T) {
	kv := startKV(t)
	clock := newFakeClock()
	p := BreakerPolicy{ConsecutiveFailures: 5}
	a := newInstance(t, kv, "a", clock, p)
	b := newInstance(t, kv, "b", clock, p)
	fail(a.b, 4)
	// A success ends a's run.
	a.b.Done(context.Background(), Permit{}, false)
	fail(a.b, 2)
	require.Eventually(t, func() bool { _, r := b.b.totals(); return r == 2 }, 20*time.Second, 10*time.Millisecond)
	fail(b.b, 2)
	assert.Equal(t, Closed, b.b.State().State)
	fail(b.b, 1) // runs of a (2) and b (3) add up to 5
	rec := waitState(t, a.b, Open)
	assert.Contains(t, rec.Reason, "5 consecutive failures")
}

func TestBreakerProbe(t *testing.T) {
	kv := startKV(t)
	clock := newFakeClock()
	p := BreakerPolicy{ConsecutiveFailures: 2, CoolDown: 10 * time.Second, MaxCoolDown: 30 * time.Second}
	a := newInstance(t, kv, "a", clock, p)
	b := newInstance(t, kv, "b", clock, p)
	ctx := context.Background()
	fail(a.b, 2)
	opened := waitState(t, b.b, Open)

	// Before the cool-down ends, nothing is admitted.
	clock.Advance(9 * time.Second)
	_, ok, _ := b.b.Acquire(ctx)
	require.False(t, ok)

	// After it, the first instance to ask takes the one probe.
	clock.Advance(2 * time.Second)
	probe, ok, _ := b.b.Acquire(ctx)
	require.True(t, ok)
	require.True(t, probe.Probe)
	rec := waitState(t, a.b, HalfOpen)
	assert.Equal(t, "b", rec.ProbeOwner)
	_, ok, _ = a.b.Acquire(ctx)
	assert.False(t, ok, "another instance waits while the probe runs")
	_, ok, _ = b.b.Acquire(ctx)
	assert.False(t, ok, "one probe at a time on the owner too")

	// A failed probe reopens with twice the cool-down.
	b.b.Done(ctx, probe, true)
	rec = waitFor(t, a.b, "open after a failed probe", func(rec Record) bool { return rec.State == Open && rec.FailedProbes == 1 })
	assert.Equal(t, clock.Now().Add(20*time.Second), rec.Until)
	assert.True(t, rec.Since.After(opened.Since))

	// The next failed probe is capped by MaxCoolDown.
	clock.Advance(21 * time.Second)
	probe, ok, _ = a.b.Acquire(ctx)
	require.True(t, probe.Probe && ok)
	a.b.Done(ctx, probe, true)
	rec = waitFor(t, b.b, "open after the second failed probe", func(rec Record) bool { return rec.State == Open && rec.FailedProbes == 2 })
	assert.Equal(t, clock.Now().Add(30*time.Second), rec.Until)

	// A successful probe closes it everywhere and forgets the failures.
	clock.Advance(31 * time.Second)
	probe, ok, _ = a.b.Acquire(ctx)
	require.True(t, probe.Probe && ok)
	a.b.Done(ctx, probe, false)
	rec = waitState(t, b.b, Closed)
	assert.Equal(t, 0, rec.FailedProbes)
	assert.Equal(t, clock.Now(), rec.ResetAt)
	f, r := b.b.totals()
	assert.Equal(t, [2]int{0, 0}, [2]int{f, r})
	p2, ok, _ := b.b.Acquire(ctx)
	assert.True(t, ok)
	assert.False(t, p2.Probe)

	var tos []BreakerState
	for _, tr := range rec.History {
		tos = append(tos, tr.To)
	}
	assert.Equal(t, []BreakerState{Open, HalfOpen, Open, HalfOpen, Open, HalfOpen, Closed}, tos)
}

func TestBreakerProbeOfADeadInstanceIsTakenOver(t *testing.T) {
	kv := startKV(t)
	clock := newFakeClock()
	p := BreakerPolicy{ConsecutiveFailures: 1, CoolDown: time.Second}
	a := newInstance(t, kv, "a", clock, p)
	b := newInstance(t, kv, "b", clock, p)
	ctx := context.Background()
	fail(a.b, 1)
	waitState(t, b.b, Open)
	clock.Advance(2 * time.Second)
	probe, ok, _ := a.b.Acquire(ctx)
	require.True(t, ok && probe.Probe)
	waitState(t, b.b, HalfOpen)
	require.NoError(t, a.bs.Stop(context.Background())) // a dies with its probe out

	_, ok, _ = b.b.Acquire(ctx)
	require.False(t, ok)
	clock.Advance(time.Minute + time.Second) // the probe timeout
	probe, ok, _ = b.b.Acquire(ctx)
	require.True(t, ok && probe.Probe, "the overdue probe is taken over")
	assert.Equal(t, "b", b.b.State().ProbeOwner)
	b.b.Done(ctx, probe, false)
	waitState(t, b.b, Closed)
}

func TestBreakerManualOpenAndClose(t *testing.T) {
	kv := startKV(t)
	clock := newFakeClock()
	p := BreakerPolicy{FailureThreshold: 3, CoolDown: time.Second}
	a := newInstance(t, kv, "a", clock, p)
	b := newInstance(t, kv, "b", clock, p)
	ctx := context.Background()

	fail(a.b, 2)
	rec, err := b.bs.Open(ctx, "deliver", "downstream maintenance", "ops")
	require.NoError(t, err)
	assert.True(t, rec.Manual)
	assert.Equal(t, "manual: ops", rec.By)
	waitState(t, a.b, Open)
	// Opened by hand, it stays open past any cool-down.
	clock.Advance(time.Hour)
	_, ok, _ := a.b.Acquire(ctx)
	assert.False(t, ok)

	_, err = a.bs.Close(ctx, "deliver", "", "ops")
	require.NoError(t, err)
	waitState(t, b.b, Closed)
	_, ok, _ = b.b.Acquire(ctx)
	assert.True(t, ok)
	// The two failures before the close no longer count.
	fail(a.b, 2)
	assert.Equal(t, Closed, a.b.State().State)
	fail(a.b, 1)
	waitState(t, b.b, Open)

	// Unknown functions get a clear error and write nothing.
	_, err = a.bs.Open(ctx, "nosuch", "", "ops")
	require.ErrorIs(t, err, ErrNoBreaker)
	assert.Contains(t, err.Error(), "sluice breaker list")
	_, err = kv.Get(ctx, stateKey("nosuch"))
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound)

	list, err := a.bs.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "deliver", list[0].Function)
	assert.Equal(t, Open, list[0].State)
	require.NotNil(t, list[0].Policy)
	assert.Equal(t, 3, list[0].Policy.FailureThreshold)
}

func TestBreakerStateSurvivesARestart(t *testing.T) {
	kv := startKV(t)
	clock := newFakeClock()
	p := BreakerPolicy{ConsecutiveFailures: 1, CoolDown: time.Minute}
	a := newInstance(t, kv, "a", clock, p)
	fail(a.b, 1)
	waitState(t, a.b, Open)
	require.NoError(t, a.bs.Stop(context.Background()))

	again := newInstance(t, kv, "a", clock, p)
	// Start applies the stored state before returning: closed to work
	// from the first batch.
	assert.Equal(t, Open, again.b.State().State)
	_, ok, _ := again.b.Acquire(context.Background())
	assert.False(t, ok)
	var stored Record
	kve, err := kv.Get(context.Background(), stateKey("deliver"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(kve.Value(), &stored))
	assert.Equal(t, Open, stored.State)
}

func TestBreakerPolicyValidate(t *testing.T) {
	for _, c := range []struct {
		p    BreakerPolicy
		want string
	}{
		{BreakerPolicy{FailureThreshold: -1}, "failureThreshold -1"},
		{BreakerPolicy{ConsecutiveFailures: -2}, "consecutiveFailures -2"},
		{BreakerPolicy{Window: time.Second}, "set failureThreshold or consecutiveFailures"},
		{BreakerPolicy{FailureThreshold: 1, Window: time.Millisecond}, "below the shortest"},
		{BreakerPolicy{FailureThreshold: 1, Window: 2 * time.Hour}, "above the longest"},
		{BreakerPolicy{FailureThreshold: 1, CoolDown: time.Minute, MaxCoolDown: time.Second}, "maxCoolDown 1s is below coolDown 1m0s"},
		{BreakerPolicy{FailureThreshold: 1, CoolDown: -time.Second}, "must not be negative"},
	} {
		err := c.p.Validate()
		if assert.Error(t, err, "%+v", c.p) {
			assert.Contains(t, err.Error(), c.want)
		}
	}
	assert.NoError(t, BreakerPolicy{}.Validate())
	assert.NoError(t, BreakerPolicy{FailureThreshold: 101, Window: 30 * time.Second}.Validate())
	d := BreakerPolicy{ConsecutiveFailures: 3}.WithDefaults()
	assert.Equal(t, BreakerPolicy{ConsecutiveFailures: 3, Window: 30 * time.Second, CoolDown: 30 * time.Second, MaxCoolDown: 300 * time.Second}, d)
}

func TestNilBreakerAdmitsEverything(t *testing.T) {
	var b *Breaker
	p, ok, _ := b.Acquire(context.Background())
	assert.True(t, ok)
	assert.False(t, p.Probe)
	assert.True(t, b.Admits())
	b.Done(context.Background(), p, true)
	b.Release(p)
}

func TestKeyPart(t *testing.T) {
	assert.Equal(t, "deliver-orders_2", keyPart("deliver-orders_2"))
	assert.NotEqual(t, keyPart("a.b"), keyPart("a_b"))
	assert.Regexp(t, `^h-[0-9a-f]{24}$`, keyPart("a.b"))
	assert.Regexp(t, `^h-[0-9a-f]{24}$`, keyPart("h-x"))
	assert.Equal(t, "counts.deliver.host-1", countsKey("deliver", "host-1"))
}
