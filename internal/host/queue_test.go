package host_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/resilience"
)

type qenv struct {
	eng  *engine.Engine
	q    *queue.Service
	name string
	sink *deadletter.Store
}

func setupQueue(t *testing.T, cfg queue.Config) *qenv {
	t.Helper()
	eng := enginetest.Embedded(t)
	q := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{})
	t.Cleanup(func() { require.NoError(t, q.Stop(context.Background())) })
	cfg.Name = enginetest.Name("q")
	_, err := q.Create(context.Background(), cfg)
	require.NoError(t, err)
	return &qenv{eng: eng, q: q, name: cfg.Name, sink: &deadletter.Store{Queues: q}}
}

func (e *qenv) start(t *testing.T, fns ...host.QueueFunction) *host.Host {
	t.Helper()
	h, err := host.New(host.Config{InstanceID: "test", Queues: e.q, DeadLetters: e.sink, ShutdownTimeout: 5 * time.Second, LagEvery: 100 * time.Millisecond})
	require.NoError(t, err)
	for _, f := range fns {
		require.NoError(t, h.RegisterQueue(f))
	}
	require.NoError(t, h.Start(context.Background()))
	t.Cleanup(func() { h.Stop(context.Background()) })
	return h
}

func (e *qenv) send(t *testing.T, bodies ...string) {
	t.Helper()
	msgs := make([]queue.Outgoing, len(bodies))
	for i, b := range bodies {
		msgs[i] = queue.Outgoing{Body: []byte(b), Properties: map[string]string{"n": strconv.Itoa(i)}}
	}
	_, err := e.q.Send(context.Background(), e.name, msgs)
	require.NoError(t, err)
}

func (e *qenv) depth(t *testing.T, name string) uint64 {
	t.Helper()
	st, err := e.q.Stats(context.Background(), name)
	require.NoError(t, err)
	return st.Depth
}

func TestQueueFunctionCompletesEveryMessage(t *testing.T) {
	t.Parallel()
	e := setupQueue(t, queue.Config{})
	var mu sync.Mutex
	seen := map[string]int{}
	h := e.start(t, host.QueueFunction{Name: "f", Trigger: host.QueueTrigger{Queue: e.name, BatchSize: 8, Concurrency: 4},
		Handler: func(_ context.Context, m *queue.Message) error {
			mu.Lock()
			seen[string(m.Body)]++
			mu.Unlock()
			return nil
		}})
	var bodies []string
	for i := range 300 {
		bodies = append(bodies, fmt.Sprint(i))
	}
	e.send(t, bodies...)
	eventually(t, "300 messages processed", func() bool { return h.Processed("f") >= 300 })
	eventually(t, "queue empty", func() bool { return e.depth(t, e.name) == 0 })
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 300)
	for b, n := range seen {
		require.Equal(t, 1, n, "message %s processed once", b)
	}
}

func TestQueuePoisonAfterMaxDequeueCount(t *testing.T) {
	t.Parallel()
	e := setupQueue(t, queue.Config{})
	var mu sync.Mutex
	var counts []int
	e.start(t, host.QueueFunction{Name: "f", Trigger: host.QueueTrigger{Queue: e.name, MaxDequeueCount: 3},
		Handler: func(_ context.Context, m *queue.Message) error {
			mu.Lock()
			counts = append(counts, m.DequeueCount)
			mu.Unlock()
			return errors.New("downstream said no")
		}})
	e.send(t, "bad")
	poison := queue.PoisonName(e.name)
	eventually(t, "the poison queue holds the message", func() bool {
		st, err := e.q.Stats(context.Background(), poison)
		return err == nil && st.Depth == 1
	})
	mu.Lock()
	require.Equal(t, []int{1, 2, 3}, counts, "exactly maxDequeueCount deliveries, each with its count")
	mu.Unlock()
	msgs, err := e.q.Peek(context.Background(), poison, 1)
	require.NoError(t, err)
	l := deadletter.Decode(poison, msgs[0])
	require.Equal(t, "bad", string(l.Body))
	require.Equal(t, map[string]string{"n": "0"}, l.Properties, "the message's own properties are kept")
	require.Equal(t, "downstream said no", l.Reason)
	require.Equal(t, "f", l.Function)
	require.Equal(t, 3, l.Attempts)
	require.Equal(t, host.Source{Kind: "queue", Queue: e.name, MessageID: l.Source.MessageID, EnqueuedTime: l.Source.EnqueuedTime}, l.Source)
	require.NotZero(t, l.Source.MessageID)
	eventually(t, "the original is gone", func() bool { return e.depth(t, e.name) == 0 })
}

func TestQueueRetryDoesNotBlockOtherMessages(t *testing.T) {
	t.Parallel()
	e := setupQueue(t, queue.Config{})
	var mu sync.Mutex
	var order []string
	// A retry delay no run of this test outlasts: how long the others take
	// depends on the machine.
	e.start(t, host.QueueFunction{Name: "f", Trigger: host.QueueTrigger{Queue: e.name, Concurrency: 1},
		Retry: resilience.Retry{Strategy: resilience.FixedDelay, MaxRetryCount: 3, Delay: time.Hour},
		Handler: func(_ context.Context, m *queue.Message) error {
			mu.Lock()
			order = append(order, fmt.Sprintf("%s#%d", m.Body, m.DequeueCount))
			mu.Unlock()
			if string(m.Body) == "flaky" && m.DequeueCount == 1 {
				return errors.New("try again")
			}
			return nil
		}})
	e.send(t, "flaky", "a", "b", "c")
	eventually(t, "the others done", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 4
	})
	mu.Lock()
	require.Equal(t, []string{"flaky#1", "a#1", "b#1", "c#1"}, order,
		"the failed message waits out its retry delay while the others go on")
	mu.Unlock()
	eventually(t, "the others completed", func() bool { return e.depth(t, e.name) == 0 })
	st, err := e.q.Stats(context.Background(), e.name)
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.Delayed, "the failed message waits for its retry")
}

func TestQueueRetryLaterAndDeadLetterNow(t *testing.T) {
	t.Parallel()
	e := setupQueue(t, queue.Config{})
	var laterAt atomic.Int64
	var calls atomic.Int32
	h := e.start(t, host.QueueFunction{Name: "f", Trigger: host.QueueTrigger{Queue: e.name},
		Handler: func(_ context.Context, m *queue.Message) error {
			calls.Add(1)
			switch string(m.Body) {
			case "later":
				if laterAt.Load() == 0 {
					at := time.Now().Add(time.Second)
					laterAt.Store(at.UnixNano())
					return &host.RetryLaterError{At: at, Reason: "partner is down"}
				}
				require.GreaterOrEqual(t, time.Now().UnixNano(), laterAt.Load()-int64(50*time.Millisecond), "delivered again only when due")
				require.Equal(t, 1, m.DequeueCount, "a retry later is not a failed delivery")
				return nil
			default:
				return &host.DeadLetterError{Reasons: map[int64]error{0: errors.New("corrupt payload")}}
			}
		}})
	e.send(t, "later", "corrupt")
	eventually(t, "both settled", func() bool { return h.Processed("f") >= 2 })
	require.EqualValues(t, 3, calls.Load(), "later twice, corrupt once (no retries for an explicit dead letter)")
	msgs, err := e.q.Peek(context.Background(), queue.PoisonName(e.name), 5)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, "corrupt payload", deadletter.Decode("", msgs[0]).Reason)
}

func TestQueueLockIsRenewedWhileTheFunctionRuns(t *testing.T) {
	t.Parallel()
	// The lock is renewed every half lock: a lock of 2s leaves a loaded
	// machine a second to renew it.
	const lock = 2 * time.Second
	e := setupQueue(t, queue.Config{Lock: lock})
	var calls, callsAtTheEnd atomic.Int32
	h := e.start(t, host.QueueFunction{Name: "f", Trigger: host.QueueTrigger{Queue: e.name, Concurrency: 4},
		Handler: func(ctx context.Context, m *queue.Message) error {
			if calls.Add(1) > 1 {
				return nil
			}
			// The work takes more than two locks.
			select {
			case <-time.After(5 * lock / 2):
			case <-ctx.Done():
			}
			callsAtTheEnd.Store(calls.Load())
			return nil
		}})
	e.send(t, "slow")
	eventually(t, "processed", func() bool { return h.Processed("f") >= 1 })
	// Completed: removed from the queue, it cannot be delivered again.
	eventually(t, "the message gone", func() bool { return e.depth(t, e.name) == 0 })
	require.EqualValues(t, 1, callsAtTheEnd.Load(), "a renewed lock keeps the message from a second delivery while it runs")
	require.EqualValues(t, 1, calls.Load())
}

func TestQueueGracefulStopFinishesInFlightMessages(t *testing.T) {
	t.Parallel()
	e := setupQueue(t, queue.Config{})
	started := make(chan struct{}, 1)
	var finished atomic.Int32
	var hp atomic.Pointer[host.Host]
	h := e.start(t, host.QueueFunction{Name: "f", Trigger: host.QueueTrigger{Queue: e.name, BatchSize: 16, Concurrency: 1},
		Handler: func(ctx context.Context, m *queue.Message) error {
			select {
			case started <- struct{}{}:
			default:
			}
			// In flight until Stop has begun.
			eventually(t, "Stop to begin", func() bool { h := hp.Load(); return h != nil && h.Stopping() })
			finished.Add(1)
			return nil
		}})
	hp.Store(h)
	e.send(t, "1", "2", "3", "4", "5")
	<-started
	h.Stop(context.Background())
	require.EqualValues(t, 1, finished.Load(), "the in-flight message finished; no new one was started")
	// The rest were released, not left locked until their lock (30s)
	// runs out.
	var msgs []*queue.Message
	eventually(t, "the other four", func() bool {
		got, err := e.q.Receive(context.Background(), e.name, 10, time.Second)
		require.NoError(t, err)
		msgs = append(msgs, got...)
		return len(msgs) >= 4
	})
	require.Len(t, msgs, 4)
}

func TestRegisterQueueRejectsBadFunctions(t *testing.T) {
	t.Parallel()
	e := setupQueue(t, queue.Config{})
	h, err := host.New(host.Config{InstanceID: "test", Queues: e.q, DeadLetters: e.sink})
	require.NoError(t, err)
	ok := func(context.Context, *queue.Message) error { return nil }
	for _, f := range []host.QueueFunction{
		{Name: "", Trigger: host.QueueTrigger{Queue: e.name}, Handler: ok},
		{Name: "f", Trigger: host.QueueTrigger{Queue: e.name}},
		{Name: "f", Trigger: host.QueueTrigger{Queue: "bad name"}, Handler: ok},
		{Name: "f", Trigger: host.QueueTrigger{Queue: e.name, BatchSize: 5000}, Handler: ok},
		{Name: "f", Trigger: host.QueueTrigger{Queue: e.name, MaxDequeueCount: -1}, Handler: ok},
		{Name: "f", Trigger: host.QueueTrigger{Queue: e.name}, Handler: ok, Retry: resilience.Retry{Strategy: "sometimes"}},
	} {
		require.Error(t, h.RegisterQueue(f), "%+v", f)
	}
	require.NoError(t, h.RegisterQueue(host.QueueFunction{Name: "f", Trigger: host.QueueTrigger{Queue: e.name}, Handler: ok}))
	require.ErrorContains(t, h.RegisterQueue(host.QueueFunction{Name: "f", Trigger: host.QueueTrigger{Queue: e.name}, Handler: ok}), "two functions are named f")
}

func TestHubFunctionRetryLaterSetsEventsAside(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	q := queue.Open(e.eng.JS, e.eng.MaxPayload(), queue.Options{})
	t.Cleanup(func() { require.NoError(t, q.Stop(context.Background())) })
	kv, err := e.eng.JS.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "leases", History: 1})
	require.NoError(t, err)
	lm := newLeases(t, kv, "i")
	h, err := host.New(host.Config{InstanceID: "i", Hubs: e.hubs, Leases: lm, Queues: q, DeadLetters: e.sink, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	var mu sync.Mutex
	var seen []string
	var dueAt atomic.Int64
	var doomed atomic.Int32
	require.NoError(t, h.Register(host.Function{Name: "partner", Trigger: host.HubTrigger{Hub: e.hub, MaxBatchSize: 1},
		Handler: func(_ context.Context, evs []hub.StoredEvent) error {
			ev := evs[0]
			body := string(ev.Body)
			mu.Lock()
			seen = append(seen, fmt.Sprintf("%s@%d", body, ev.Sequence))
			mu.Unlock()
			switch {
			case body == "later" && dueAt.Load() == 0:
				at := time.Now().Add(time.Second)
				dueAt.Store(at.UnixNano())
				return &host.RetryLaterError{At: at, Reason: "partner down"}
			case body == "doomed" && doomed.Add(1) == 1:
				return &host.RetryLaterError{At: time.Now(), Reason: "try later"}
			case body == "doomed":
				return errors.New("still failing later")
			case body == "later":
				if time.Now().UnixNano() < dueAt.Load()-int64(50*time.Millisecond) {
					return errors.New("delivered before it was due")
				}
				if ev.Properties["i"] != "0" || ev.PartitionKey != "key-0" {
					return fmt.Errorf("lost its properties or key: %+v", ev)
				}
			}
			return nil
		}}))
	require.NoError(t, h.Start(context.Background()))
	t.Cleanup(func() { h.Stop(context.Background()) })

	pos, err := e.hubs.Publish(context.Background(), e.hub, []hub.Event{{Body: []byte("later"), PartitionKey: "key-0", Properties: map[string]string{"i": "0"}}})
	require.NoError(t, err)
	_, err = e.hubs.Publish(context.Background(), e.hub, []hub.Event{{Body: []byte("a")}, {Body: []byte("b")}})
	require.NoError(t, err)
	eventually(t, "the set-aside event done", func() bool { return h.Processed("partner") >= 4 })
	mu.Lock()
	seq := pos[0].Sequence
	require.Len(t, seen, 4)
	require.Equal(t, fmt.Sprintf("later@%d", seq), seen[0])
	require.Equal(t, fmt.Sprintf("later@%d", seq), seen[3], "delivered again, with its position, after the others")
	mu.Unlock()
	require.Empty(t, e.sink.all())

	// A set-aside event that then fails (no retry policy) is a dead letter
	// with its hub position, not lost in the retry queue.
	dpos, err := e.hubs.Publish(context.Background(), e.hub, []hub.Event{{Body: []byte("doomed"), PartitionKey: "k"}})
	require.NoError(t, err)
	eventually(t, "the doomed event dead-lettered", func() bool { return len(e.sink.all()) == 1 })
	l := e.sink.all()[0]
	require.Equal(t, "still failing later", l.Reason)
	require.Equal(t, host.Source{Kind: "hub", Hub: e.hub, Group: hub.DefaultGroup, Partition: dpos[0].Partition,
		Sequence: dpos[0].Sequence, PartitionKey: "k", EnqueuedTime: l.Source.EnqueuedTime}, l.Source)
	require.Equal(t, "doomed", string(l.Body))
}

// An idle queue's function wakes when a message arrives, not on a
// multi-second poll: while idle, it keeps a pull request waiting at the
// server, which hands a message over as it arrives. (How fast that is
// depends on the machine, so the test checks the mechanism.)
func TestQueueFunctionWakesPromptlyWhenIdle(t *testing.T) {
	t.Parallel()
	e := setupQueue(t, queue.Config{})
	// Count the function's pull requests.
	var pulls atomic.Int32
	sub, err := e.eng.Conn.Subscribe("$JS.API.CONSUMER.MSG.NEXT."+queue.StreamName(e.name)+".>", func(*nats.Msg) { pulls.Add(1) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, e.eng.Conn.Flush())
	got := make(chan struct{}, 1)
	e.start(t, host.QueueFunction{Name: "f", Trigger: host.QueueTrigger{Queue: e.name},
		Handler: func(context.Context, *queue.Message) error {
			got <- struct{}{}
			return nil
		}})
	// Idle for several pull expiries: it pulls again each time, rather
	// than backing off.
	eventually(t, "idle pulls", func() bool { return pulls.Load() >= 4 })
	cons, err := e.eng.JS.Consumer(context.Background(), queue.StreamName(e.name), "sluice")
	require.NoError(t, err)
	eventually(t, "a pull request waiting at the server", func() bool {
		ci, err := cons.Info(context.Background())
		require.NoError(t, err)
		return ci.NumWaiting > 0
	})
	e.send(t, "wake up")
	select {
	case <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the message was not processed")
	}
}
