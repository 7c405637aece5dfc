package host_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/lease"
	"github.com/sluicehq/sluice/internal/resilience"
	"github.com/sluicehq/sluice/internal/service"
)

// memSink records dead letters; failing makes Put fail, and refused
// counts the Puts it failed.
type memSink struct {
	mu      sync.Mutex
	letters []host.DeadLetter
	failing atomic.Bool
	refused atomic.Int64
}

func (s *memSink) Put(_ context.Context, l []host.DeadLetter) error {
	if s.failing.Load() {
		s.refused.Add(1)
		return errors.New("sink down")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.letters = append(s.letters, l...)
	return nil
}

func (s *memSink) Poison(ctx context.Context, l host.DeadLetter) error {
	return s.Put(ctx, []host.DeadLetter{l})
}

func (s *memSink) all() []host.DeadLetter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]host.DeadLetter(nil), s.letters...)
}

type env struct {
	eng  *engine.Engine
	hubs *hub.Service
	sink *memSink
	hub  string

	mu   sync.Mutex
	next map[string]int // next body index per key
}

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	goleak.VerifyTestMain(m)
}

func setup(t *testing.T, partitions int) *env {
	t.Helper()
	return setupOn(t, enginetest.Embedded(t), partitions)
}

// setupOn prepares a hub with a unique name on eng, deleted at the end.
func setupOn(t *testing.T, eng *engine.Engine, partitions int) *env {
	t.Helper()
	svc, err := hub.Open(context.Background(), eng.JS, eng.MaxPayload(), hub.Options{Tail: eng.Private()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, svc.Stop(context.Background())) })
	name := enginetest.Name("h")
	_, err = svc.Create(context.Background(), hub.Config{Name: name, Partitions: partitions})
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Delete(context.Background(), name) })
	return &env{eng: eng, hubs: svc, sink: &memSink{}, hub: name, next: map[string]int{}}
}

// newLeases is a lease manager whose leases do not expire during a test,
// however slow the machine: a renewal delayed or timed out under load then
// costs time, never a lease (and the redelivery that follows a lost one).
// Rounds still run often, so ranges and partitions move between hosts
// quickly. Tests of expiry and takeover configure their own.
func newLeases(t *testing.T, kv jetstream.KeyValue, id string) *lease.Manager {
	t.Helper()
	lm, err := lease.New(kv, lease.Config{InstanceID: id, Expiry: 10 * time.Minute, Renew: 500 * time.Millisecond})
	require.NoError(t, err)
	return lm
}

func (e *env) newHost(t *testing.T, fns ...host.Function) *host.Host {
	t.Helper()
	kv, err := e.eng.JS.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "leases", History: 1})
	require.NoError(t, err)
	lm := newLeases(t, kv, "test-"+enginetest.Name("i"))
	h, err := host.New(host.Config{InstanceID: "test", Hubs: e.hubs, Leases: lm, DeadLetters: e.sink, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	for _, f := range fns {
		require.NoError(t, h.Register(f))
	}
	require.NoError(t, h.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, h.Stop(context.Background())) })
	return h
}

// publish sends n events with keys key-0..key-(keys-1) and bodies "key/i",
// i counting each key's events across calls.
func (e *env) publish(t *testing.T, n, keys int) []hub.Position {
	t.Helper()
	events := make([]hub.Event, n)
	e.mu.Lock()
	for i := range events {
		k := fmt.Sprintf("key-%d", i%keys)
		events[i] = hub.Event{Body: fmt.Appendf(nil, "%s/%d", k, e.next[k]), PartitionKey: k, Properties: map[string]string{"i": fmt.Sprint(i)}}
		e.next[k]++
	}
	e.mu.Unlock()
	pos, err := e.hubs.Publish(context.Background(), e.hub, events)
	require.NoError(t, err)
	return pos
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recorder is a handler that records every event it is given.
type recorder struct {
	mu     sync.Mutex
	events []hub.StoredEvent
	n      atomic.Int64
}

func (r *recorder) handle(_ context.Context, evs []hub.StoredEvent) error {
	r.mu.Lock()
	r.events = append(r.events, evs...)
	r.mu.Unlock()
	r.n.Add(int64(len(evs)))
	return nil
}

func (e *env) checkpoint(t *testing.T, group string, p int) int64 {
	t.Helper()
	cp, _, err := e.hubs.GetCheckpoint(context.Background(), e.hub, group, p)
	require.NoError(t, err)
	return cp.Sequence
}

func TestProcessesEveryEventInOrderAndCheckpoints(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		e := setupOn(t, eng, 3)
		rec := &recorder{}
		e.newHost(t, host.Function{Name: "f", Trigger: host.HubTrigger{Hub: e.hub, MaxBatchSize: 37}, Handler: rec.handle})
		var pos []hub.Position
		for range 5 {
			pos = append(pos, e.publish(t, 400, 10)...)
		}
		eventually(t, "2000 events", func() bool { return rec.n.Load() >= 2000 })

		last := map[int]int64{}
		for _, p := range pos {
			last[p.Partition] = max(last[p.Partition], p.Sequence)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		require.Len(t, rec.events, 2000, "each event exactly once without failures")
		prev := map[int]int64{}
		nextIdx := map[string]int{}
		for _, ev := range rec.events {
			if s, ok := prev[ev.Partition]; ok {
				require.Greater(t, ev.Sequence, s, "partition order")
			}
			prev[ev.Partition] = ev.Sequence
			want := fmt.Sprintf("%s/%d", ev.PartitionKey, nextIdx[ev.PartitionKey])
			require.Equal(t, want, string(ev.Body), "key order")
			nextIdx[ev.PartitionKey]++
		}
		for p, seq := range last {
			eventually(t, "checkpoint of the last batch", func() bool { return e.checkpoint(t, hub.DefaultGroup, p) == seq })
		}
		lags, err := e.hubs.GroupLag(context.Background(), e.hub, hub.DefaultGroup)
		require.NoError(t, err)
		for _, l := range lags {
			require.Zero(t, l.Events)
		}
	})
}

func TestRetriesHoldThePartitionThenDeadLetter(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		e := setupOn(t, eng, 1)
		var attempts atomic.Int32
		rec := &recorder{}
		e.newHost(t, host.Function{
			Name:    "f",
			Trigger: host.HubTrigger{Hub: e.hub, MaxBatchSize: 1},
			Retry:   resilience.Retry{Strategy: resilience.FixedDelay, MaxRetryCount: 2, Delay: 20 * time.Millisecond},
			Handler: func(ctx context.Context, evs []hub.StoredEvent) error {
				if string(evs[0].Body) == "poison" {
					n := attempts.Add(1)
					a, ok := host.AttemptOf(ctx)
					if !ok || a.Number != int(n) || a.MaxRetries != 2 || (n == 1) != (a.Last == nil) {
						return fmt.Errorf("attempt %d: the context says %+v", n, a)
					}
					return errors.New("downstream says no")
				}
				return rec.handle(ctx, evs)
			},
		})
		_, err := e.hubs.Publish(context.Background(), e.hub, []hub.Event{{Body: []byte("a")}})
		require.NoError(t, err)
		poison, err := e.hubs.Publish(context.Background(), e.hub, []hub.Event{{Body: []byte("poison"), PartitionKey: "pk", Properties: map[string]string{"x": "y"}}})
		require.NoError(t, err)
		_, err = e.hubs.Publish(context.Background(), e.hub, []hub.Event{{Body: []byte("b")}})
		require.NoError(t, err)

		eventually(t, "events after the poison one", func() bool { return rec.n.Load() == 2 })
		require.Equal(t, int32(3), attempts.Load(), "first attempt plus two retries")
		letters := e.sink.all()
		require.Len(t, letters, 1)
		dl := letters[0]
		require.Equal(t, "f", dl.Function)
		require.Equal(t, "downstream says no", dl.Reason)
		require.Equal(t, 3, dl.Attempts)
		require.Equal(t, host.Source{Kind: "hub", Hub: e.hub, Group: hub.DefaultGroup, Partition: 0, Sequence: poison[0].Sequence,
			PartitionKey: "pk", EnqueuedTime: dl.Source.EnqueuedTime}, dl.Source)
		require.False(t, dl.Source.EnqueuedTime.IsZero())
		require.Equal(t, "poison", string(dl.Body))
		require.Equal(t, map[string]string{"x": "y"}, dl.Properties)
		require.False(t, dl.FirstFailure.After(dl.LastFailure))
		require.GreaterOrEqual(t, dl.LastFailure.Sub(dl.FirstFailure), 40*time.Millisecond, "two delays passed between the failures")
		rec.mu.Lock()
		require.Equal(t, "a", string(rec.events[0].Body))
		require.Equal(t, "b", string(rec.events[1].Body), "b waited for the poison event's retries")
		rec.mu.Unlock()
	})
}

func TestFunctionDeadLettersSomeEventsOfABatch(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	var total atomic.Int64
	e.newHost(t, host.Function{Name: "f", Trigger: host.HubTrigger{Hub: e.hub, MaxBatchSize: 100},
		Handler: func(_ context.Context, evs []hub.StoredEvent) error {
			reasons := map[int64]error{}
			for _, ev := range evs {
				if string(ev.Body) == "corrupt" {
					reasons[ev.Sequence] = errors.New("bad frame")
				}
			}
			total.Add(int64(len(evs)))
			if len(reasons) > 0 {
				return &host.DeadLetterError{Reasons: reasons}
			}
			return nil
		}})
	pos, err := e.hubs.Publish(context.Background(), e.hub, []hub.Event{{Body: []byte("ok")}, {Body: []byte("corrupt")}, {Body: []byte("ok")}, {Body: []byte("corrupt")}})
	require.NoError(t, err)
	eventually(t, "checkpoint past the batch", func() bool { return e.checkpoint(t, hub.DefaultGroup, 0) == pos[3].Sequence })
	letters := e.sink.all()
	require.Len(t, letters, 2)
	require.Equal(t, pos[1].Sequence, letters[0].Source.Sequence)
	require.Equal(t, pos[3].Sequence, letters[1].Source.Sequence)
	require.Equal(t, "bad frame", letters[0].Reason)
	require.Equal(t, int64(4), total.Load(), "no retry of the batch")
}

func TestCheckpointOnlyAfterCompletionAndGracefulStop(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		e := setupOn(t, eng, 1)
		entered := make(chan struct{}, 10)
		release := make(chan struct{})
		h := e.newHost(t, host.Function{Name: "f", Trigger: host.HubTrigger{Hub: e.hub, MaxBatchSize: 10},
			Handler: func(ctx context.Context, evs []hub.StoredEvent) error {
				entered <- struct{}{}
				<-release
				return nil
			}})
		pos := e.publish(t, 5, 1)
		<-entered
		require.Equal(t, int64(-1), e.checkpoint(t, hub.DefaultGroup, 0), "no checkpoint while the batch runs")

		stopped := make(chan struct{})
		go func() { h.Stop(context.Background()); close(stopped) }()
		eventually(t, "Stop to begin", h.Stopping)
		select {
		case <-stopped:
			t.Fatal("Stop returned while a batch was in flight")
		default:
		}
		e.publish(t, 5, 1) // must not be taken after Stop began
		close(release)
		<-stopped
		require.Equal(t, pos[4].Sequence, e.checkpoint(t, hub.DefaultGroup, 0), "the in-flight batch was checkpointed on stop")
		require.Len(t, entered, 0, "no batch taken after Stop")
	})
}

func TestHardStopDoesNotCheckpoint(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	entered := make(chan struct{}, 1)
	kv, err := e.eng.JS.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "leases", History: 1})
	require.NoError(t, err)
	lm := newLeases(t, kv, "hard")
	h, err := host.New(host.Config{InstanceID: "hard", Hubs: e.hubs, Leases: lm, DeadLetters: e.sink, ShutdownTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, h.Register(host.Function{Name: "f", Trigger: host.HubTrigger{Hub: e.hub},
		Handler: func(ctx context.Context, evs []hub.StoredEvent) error {
			entered <- struct{}{}
			<-ctx.Done() // honours cancellation only
			return ctx.Err()
		}}))
	require.NoError(t, h.Start(context.Background()))
	e.publish(t, 3, 1)
	<-entered
	h.Stop(context.Background())
	require.Equal(t, int64(-1), e.checkpoint(t, hub.DefaultGroup, 0), "a cancelled batch is not checkpointed")
	require.Empty(t, e.sink.all(), "a cancelled batch is not dead-lettered")
}

// TestStopWithEndedContextStopsHard: a Stop whose context has ended
// cancels in-flight invocations at once, whatever ShutdownTimeout says.
func TestStopWithEndedContextStopsHard(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	entered := make(chan struct{}, 1)
	var cause atomic.Value
	h := e.newHost(t, host.Function{Name: "f", Trigger: host.HubTrigger{Hub: e.hub},
		Handler: func(ctx context.Context, evs []hub.StoredEvent) error {
			entered <- struct{}{}
			<-ctx.Done() // honours cancellation only
			cause.Store(ctx.Err())
			return ctx.Err()
		}})
	e.publish(t, 3, 1)
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, h.Stop(ctx))
	require.ErrorIs(t, cause.Load().(error), context.Canceled)
	require.Equal(t, int64(-1), e.checkpoint(t, hub.DefaultGroup, 0), "a cancelled batch is not checkpointed")
	select {
	case <-h.Stopped():
	default:
		t.Fatal("Stopped is not closed after Stop")
	}
}

func TestStopBeforeStartAndTwice(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	kv, err := e.eng.JS.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "leases", History: 1})
	require.NoError(t, err)
	lm, err := lease.New(kv, lease.Config{InstanceID: "early"})
	require.NoError(t, err)
	h, err := host.New(host.Config{InstanceID: "early", Hubs: e.hubs, Leases: lm, DeadLetters: e.sink})
	require.NoError(t, err)
	require.NoError(t, h.Stop(context.Background()))
	require.NoError(t, h.Stop(context.Background()))
	require.ErrorIs(t, h.Start(context.Background()), service.ErrStopped, "a stopped host does not start")
}

func TestDeadLetterSinkOutageHoldsThePartition(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	e.sink.failing.Store(true)
	e.newHost(t, host.Function{Name: "f", Trigger: host.HubTrigger{Hub: e.hub},
		Handler: func(context.Context, []hub.StoredEvent) error { return errors.New("always") }})
	pos := e.publish(t, 2, 1)
	// The sink refused a dead letter, and the host tried again: it has
	// gone past the point where it would have checkpointed without it.
	eventually(t, "a second try of the sink", func() bool { return e.sink.refused.Load() >= 2 })
	require.Equal(t, int64(-1), e.checkpoint(t, hub.DefaultGroup, 0), "never checkpoint past an input that was not kept")
	e.sink.failing.Store(false)
	eventually(t, "checkpoint after the sink recovers", func() bool { return e.checkpoint(t, hub.DefaultGroup, 0) == pos[1].Sequence })
	require.Len(t, e.sink.all(), 2)
}

func TestMinBatchSizeWaitsUpToMaxWait(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	sizes := make(chan int, 10)
	e.newHost(t, host.Function{Name: "f", Trigger: host.HubTrigger{Hub: e.hub, MinBatchSize: 20, MaxBatchSize: 30, MaxWait: 300 * time.Millisecond},
		Handler: func(_ context.Context, evs []hub.StoredEvent) error { sizes <- len(evs); return nil }})
	start := time.Now()
	e.publish(t, 5, 1)
	// A loaded machine may read the five in more than one MaxWait.
	got := <-sizes
	require.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "a short batch waits for MaxWait")
	for got < 5 {
		got += <-sizes
	}
	require.Equal(t, 5, got)
}

func TestMinBatchSizeGathersEvents(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	sizes := make(chan int, 10)
	// MaxWait long enough that only MinBatchSize makes the batch.
	e.newHost(t, host.Function{Name: "f", Trigger: host.HubTrigger{Hub: e.hub, MinBatchSize: 20, MaxBatchSize: 30, MaxWait: time.Hour},
		Handler: func(_ context.Context, evs []hub.StoredEvent) error { sizes <- len(evs); return nil }})
	for range 5 {
		e.publish(t, 5, 1)
	}
	got := <-sizes
	require.GreaterOrEqual(t, got, 20, "publishes of 5 are gathered into one batch of at least 20")
	require.LessOrEqual(t, got, 25)
}

func TestPanicCountsAsFailure(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	e.newHost(t, host.Function{Name: "f", Trigger: host.HubTrigger{Hub: e.hub},
		Handler: func(context.Context, []hub.StoredEvent) error { panic("boom") }})
	e.publish(t, 1, 1)
	eventually(t, "dead letter", func() bool { return len(e.sink.all()) == 1 })
	require.Contains(t, e.sink.all()[0].Reason, "panic: boom")
}

func TestReplayReprocessesAndPausesTheGroup(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		e := setupOn(t, eng, 2)
		rec := &recorder{}
		e.newHost(t, host.Function{Name: "f", Trigger: host.HubTrigger{Hub: e.hub}, Handler: rec.handle})
		e.publish(t, 100, 4)
		eventually(t, "first pass", func() bool { return rec.n.Load() == 100 })
		lagZero := func() bool {
			lags, err := e.hubs.GroupLag(context.Background(), e.hub, hub.DefaultGroup)
			require.NoError(t, err)
			return lags[0].Events == 0 && lags[1].Events == 0
		}
		eventually(t, "checkpoints", lagZero)
		_, err := e.hubs.Replay(context.Background(), e.hub, hub.DefaultGroup, hub.ReplayTarget{Earliest: true}, 100*time.Millisecond)
		require.NoError(t, err)
		eventually(t, "second pass", func() bool { return rec.n.Load() >= 200 })
		// Events published now come after the replayed ones in every
		// partition: once they are processed, so is the replay.
		e.publish(t, 4, 4)
		eventually(t, "the events after the replay", func() bool { return rec.n.Load() >= 204 })
		eventually(t, "checkpoints after replay", lagZero)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		count := map[string]int{}
		for _, ev := range rec.events {
			count[string(ev.Body)]++
		}
		require.Len(t, count, 104)
		for body, n := range count {
			if strings.HasSuffix(body, "/25") {
				require.Equal(t, 1, n, "%s, published after the replay, once", body)
			} else {
				require.Equal(t, 2, n, "%s once more", body)
			}
		}
	})
}

func TestRegisterRejectsBadFunctions(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	kv, err := e.eng.JS.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "leases", History: 1})
	require.NoError(t, err)
	lm, err := lease.New(kv, lease.Config{InstanceID: "r"})
	require.NoError(t, err)
	h, err := host.New(host.Config{InstanceID: "r", Hubs: e.hubs, Leases: lm, DeadLetters: e.sink})
	require.NoError(t, err)
	ok := func(context.Context, []hub.StoredEvent) error { return nil }
	require.NoError(t, h.Register(host.Function{Name: "a", Trigger: host.HubTrigger{Hub: e.hub}, Handler: ok}))
	for msg, f := range map[string]host.Function{
		"needs a name":            {Trigger: host.HubTrigger{Hub: e.hub}, Handler: ok},
		"has no handler":          {Name: "b", Trigger: host.HubTrigger{Hub: e.hub}},
		"minBatchSize":            {Name: "b", Trigger: host.HubTrigger{Hub: e.hub, Group: "g", MinBatchSize: 200}, Handler: ok},
		"hub name":                {Name: "b", Trigger: host.HubTrigger{Hub: "bad name"}, Handler: ok},
		"consumer group":          {Name: "b", Trigger: host.HubTrigger{Hub: e.hub, Group: "bad group"}, Handler: ok},
		"unknown strategy":        {Name: "b", Trigger: host.HubTrigger{Hub: e.hub, Group: "g"}, Handler: ok, Retry: resilience.Retry{Strategy: "linear"}},
		"two functions are named": {Name: "a", Trigger: host.HubTrigger{Hub: e.hub, Group: "g"}, Handler: ok},
		"its own consumer group":  {Name: "b", Trigger: host.HubTrigger{Hub: e.hub}, Handler: ok},
	} {
		require.ErrorContains(t, h.Register(f), msg)
	}
	require.NoError(t, h.Register(host.Function{Name: "late", Trigger: host.HubTrigger{Hub: "missing-hub", Group: "g"}, Handler: ok}))
	require.ErrorIs(t, h.Start(context.Background()), hub.ErrNotFound, "a function on a missing hub fails Start")
	h.Stop(context.Background())
}
