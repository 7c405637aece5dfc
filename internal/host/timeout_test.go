package host_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/resilience"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// counter reads a counter of the metrics by name and function label.
func counter(t *testing.T, m *telemetry.Metrics, name, function string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "function" && l.GetValue() == function {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func (e *env) newHostWith(t *testing.T, cfg host.Config, fns ...host.Function) *host.Host {
	t.Helper()
	kv, err := e.eng.JS.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "leases", History: 1})
	require.NoError(t, err)
	lm := newLeases(t, kv, "test-"+enginetest.Name("i"))
	cfg.InstanceID, cfg.Hubs, cfg.Leases, cfg.DeadLetters, cfg.ShutdownTimeout = "test", e.hubs, lm, e.sink, 5*time.Second
	h, err := host.New(cfg)
	require.NoError(t, err)
	for _, f := range fns {
		require.NoError(t, h.Register(f))
	}
	require.NoError(t, h.Start(context.Background()))
	t.Cleanup(func() { h.Stop(context.Background()) })
	return h
}

func TestTimeoutCancelsTheInvocationAndCountsAsFailure(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	m := telemetry.NewMetrics()
	var attempts atomic.Int32
	var causes atomic.Value
	e.newHostWith(t, host.Config{Metrics: m}, host.Function{
		Name: "slow", Trigger: host.HubTrigger{Hub: e.hub}, Timeout: 100 * time.Millisecond,
		Retry: resilience.Retry{Strategy: resilience.FixedDelay, MaxRetryCount: 1, Delay: 10 * time.Millisecond},
		Handler: func(ctx context.Context, _ []hub.StoredEvent) error {
			attempts.Add(1)
			<-ctx.Done()
			causes.Store(ctx.Err())
			return ctx.Err()
		},
	})
	e.publish(t, 1, 1)
	eventually(t, "dead letter", func() bool { return len(e.sink.all()) == 1 })
	require.Equal(t, int32(2), attempts.Load(), "a timed-out attempt is retried per the policy")
	require.ErrorIs(t, causes.Load().(error), context.DeadlineExceeded)
	dl := e.sink.all()[0]
	require.Contains(t, dl.Reason, "function slow timed out after 100ms")
	require.Equal(t, 2.0, counter(t, m, "sluice_function_timeouts_total", "slow"))
	require.Equal(t, 2.0, counter(t, m, "sluice_function_failures_total", "slow"))
	require.Zero(t, counter(t, m, "sluice_function_overruns_total", "slow"))
}

func TestTimeoutIgnoredByTheFunctionIsReported(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	m := telemetry.NewMetrics()
	var finished atomic.Int32
	e.newHostWith(t, host.Config{Metrics: m, OverrunGrace: 50 * time.Millisecond}, host.Function{
		Name: "stubborn", Trigger: host.HubTrigger{Hub: e.hub}, Timeout: 50 * time.Millisecond,
		Handler: func(ctx context.Context, _ []hub.StoredEvent) error {
			// Ignores ctx: runs on until the overrun is reported.
			eventually(t, "the overrun reported", func() bool { return counter(t, m, "sluice_function_overruns_total", "stubborn") == 1 })
			finished.Add(1)
			return nil
		},
	})
	e.publish(t, 1, 1)
	eventually(t, "dead letter", func() bool { return len(e.sink.all()) == 1 })
	require.Equal(t, int32(1), finished.Load(), "the invocation waited for the function")
	require.Equal(t, 1.0, counter(t, m, "sluice_function_overruns_total", "stubborn"))
	require.Contains(t, e.sink.all()[0].Reason, "timed out after 50ms")
}

func TestTimeoutOfAQueueFunction(t *testing.T) {
	t.Parallel()
	e := setupQueue(t, queue.Config{})
	var deliveries atomic.Int32
	var sawTimeout atomic.Bool
	e.start(t, host.QueueFunction{
		Name: "slow", Trigger: host.QueueTrigger{Queue: e.name, MaxDequeueCount: 2}, Timeout: 50 * time.Millisecond,
		Handler: func(ctx context.Context, m *queue.Message) error {
			deliveries.Add(1)
			<-ctx.Done()
			sawTimeout.Store(errors.Is(ctx.Err(), context.DeadlineExceeded))
			return ctx.Err()
		},
	})
	e.send(t, "job")
	poison := queue.PoisonName(e.name)
	eventually(t, "poisoned message", func() bool {
		st, err := e.q.Stats(context.Background(), poison)
		return err == nil && st.Depth == 1
	})
	require.Equal(t, int32(2), deliveries.Load())
	require.True(t, sawTimeout.Load())
	msgs, err := e.q.Peek(context.Background(), poison, 1)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Contains(t, deadletter.Decode(poison, msgs[0]).Reason, "function slow timed out after 50ms")
}

func TestTimeoutLeavesFastInvocationsAlone(t *testing.T) {
	t.Parallel()
	e := setup(t, 2)
	m := telemetry.NewMetrics()
	rec := &recorder{}
	e.newHostWith(t, host.Config{Metrics: m}, host.Function{
		Name: "fast", Trigger: host.HubTrigger{Hub: e.hub}, Timeout: 5 * time.Second, Handler: rec.handle,
	})
	e.publish(t, 200, 10)
	eventually(t, "every event", func() bool { return rec.n.Load() == 200 })
	require.Empty(t, e.sink.all())
	require.Zero(t, counter(t, m, "sluice_function_timeouts_total", "fast"))
}
