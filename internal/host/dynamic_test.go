package host_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/resilience"
)

// A hub function added to a host that runs (with no function at all when
// it started) processes its hub, with a breaker; removed, it stops at once
// and takes no more events; added again under the same name, it goes on
// from its checkpoint, so no event is processed twice or skipped.
func TestAddAndRemoveFunctionWhileRunning(t *testing.T) {
	t.Parallel()
	e := setup(t, 2)
	breakers, err := e.eng.JS.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: enginetest.Name("breakers"), History: 1})
	require.NoError(t, err)
	h := e.newHostWith(t, host.Config{BreakerState: breakers})
	ctx := context.Background()
	rec := &recorder{}
	f := host.Function{Name: "late", Trigger: host.HubTrigger{Hub: e.hub, Group: "late"}, Handler: rec.handle,
		Breaker: resilience.BreakerPolicy{ConsecutiveFailures: 3}}
	require.NoError(t, h.AddFunction(ctx, f))
	require.Error(t, h.AddFunction(ctx, f), "two functions of one name")
	e.publish(t, 50, 5)
	eventually(t, "the added function processes every event", func() bool { return rec.n.Load() == 50 })
	require.EqualValues(t, 50, h.Processed("late"))
	eventually(t, "its checkpoints reach the end", func() bool {
		return e.checkpoint(t, "late", 0) >= 0 && e.checkpoint(t, "late", 1) >= 0 && checkpointsAtEnd(t, e, "late")
	})

	h.RemoveFunction("late")
	require.Zero(t, h.Processed("late"), "a removed function is gone from the host")
	e.publish(t, 30, 5)
	lags, err := e.hubs.GroupLag(ctx, e.hub, "late")
	require.NoError(t, err)
	require.EqualValues(t, 30, lags[0].Events+lags[1].Events, "nothing processed once removed")
	require.EqualValues(t, 50, rec.n.Load())

	require.NoError(t, h.AddFunction(ctx, f))
	eventually(t, "added again, it processes what came meanwhile", func() bool { return rec.n.Load() == 80 })
	seen := map[string]bool{}
	rec.mu.Lock()
	for _, ev := range rec.events {
		require.False(t, seen[string(ev.Body)], "event %s processed twice", ev.Body)
		seen[string(ev.Body)] = true
	}
	rec.mu.Unlock()
	h.RemoveFunction("late")
	h.RemoveFunction("late") // again: nothing
}

func checkpointsAtEnd(t *testing.T, e *env, group string) bool {
	t.Helper()
	lags, err := e.hubs.GroupLag(context.Background(), e.hub, group)
	require.NoError(t, err)
	for _, l := range lags {
		if l.Events != 0 {
			return false
		}
	}
	return true
}
