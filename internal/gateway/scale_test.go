package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
)

// TestScale checks GET /api/v1/scale, /api/v1/scale/{function} and the
// sluice_scale_* gauges against backlogs made on real engines: a hub of 8
// partitions read by two consumer groups, and a queue.
func TestScale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := enginetest.Embedded(t)
	hubs, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, hubs.Stop(context.Background())) })
	queues := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { require.NoError(t, queues.Stop(context.Background())) })

	// 250 events in hub orders. Group $Default has processed none; group
	// audit the first 50.
	_, err = hubs.Create(ctx, hub.Config{Name: "orders", Partitions: 8})
	require.NoError(t, err)
	events := make([]hub.Event, 250)
	for i := range events {
		events[i] = hub.Event{Body: fmt.Appendf(nil, "e%d", i)}
	}
	pos, err := hubs.Publish(ctx, "orders", events)
	require.NoError(t, err)
	_, err = hubs.PutCheckpoint(ctx, "orders", "audit", pos[49].Partition, hub.Checkpoint{Sequence: pos[49].Sequence, Owner: "i1", Updated: time.Now()}, 0)
	require.NoError(t, err)
	// 40 messages in queue mail.
	_, err = queues.Ensure(ctx, queue.Config{Name: "mail"})
	require.NoError(t, err)
	msgs := make([]queue.Outgoing, 40)
	for i := range msgs {
		msgs[i] = queue.Outgoing{Body: []byte("m")}
	}
	_, err = queues.Send(ctx, "mail", msgs)
	require.NoError(t, err)

	srv := httptest.NewServer(gateway.NewServer(gateway.Config{Hubs: hubs, Queues: queues, Logger: slog.New(slog.DiscardHandler),
		Scaled: []gateway.ScaledFunction{
			{Name: "decode", Hub: "orders", Group: "$Default", TargetPerInstance: 100},
			{Name: "audit", Hub: "orders", Group: "audit", TargetPerInstance: 50},
			{Name: "mail", Queue: "mail", TargetPerInstance: 16},
		}}))
	t.Cleanup(srv.Close)
	f := &fixture{url: srv.URL}

	// decode: ceil(250/100) = 3, an even spread of 8 partitions (3+3+2).
	// audit: ceil(200/50) = 4. mail: ceil(40/16) = 3. The app: the most, 4.
	i64 := func(n int64) *int64 { return &n }
	u64 := func(n uint64) *uint64 { return &n }
	want := gateway.Scale{DesiredInstances: 4, Functions: []gateway.FunctionScale{
		{Function: "decode", Trigger: "hub", Hub: "orders", Group: "$Default", Partitions: 8, Lag: i64(250),
			Unprocessed: 250, TargetPerInstance: 100, DesiredInstances: 3},
		{Function: "audit", Trigger: "hub", Hub: "orders", Group: "audit", Partitions: 8, Lag: i64(200),
			Unprocessed: 200, TargetPerInstance: 50, DesiredInstances: 4},
		{Function: "mail", Trigger: "queue", Queue: "mail", Depth: u64(40), Locked: u64(0),
			Unprocessed: 40, TargetPerInstance: 16, DesiredInstances: 3},
	}}
	var got gateway.Scale
	f.doJSON(t, http.StatusOK, &got, "GET", "/api/v1/scale", nil)
	require.Equal(t, want, got)

	// What KEDA's metrics-api scaler reads: a number at a path.
	r := f.do(t, "GET", "/api/v1/scale", nil)
	var raw map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &raw))
	require.Equal(t, 4.0, raw["desired_instances"])
	require.NotContains(t, raw, "instances", "unknown without lease membership")

	var one gateway.FunctionScale
	f.doJSON(t, http.StatusOK, &one, "GET", "/api/v1/scale/audit", nil)
	require.Equal(t, want.Functions[1], one)
	requireError(t, f.do(t, "GET", "/api/v1/scale/nope", nil), http.StatusNotFound, `"nope"`, "decode, audit, mail")

	metrics := string(f.do(t, "GET", "/metrics", nil).Body)
	for _, line := range []string{
		"sluice_scale_desired_instances 4",
		`sluice_scale_function_desired_instances{function="decode",trigger="hub"} 3`,
		`sluice_scale_function_desired_instances{function="mail",trigger="queue"} 3`,
		`sluice_scale_function_unprocessed{function="audit",trigger="hub"} 200`,
		`sluice_scale_function_target_per_instance{function="mail",trigger="queue"} 16`,
	} {
		require.Contains(t, metrics, "\n"+line+"\n")
	}
	require.NotContains(t, metrics, "sluice_scale_instances ")
}

// TestScaleFailsWhenASourceIsMissing: a function whose hub is gone fails
// the answer with a message that says what to do, and leaves the gauges
// out, rather than report a count without its backlog.
func TestScaleFailsWhenASourceIsMissing(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *gateway.Config) {
		c.Scaled = []gateway.ScaledFunction{{Name: "decode", Hub: "gone", Group: "$Default", TargetPerInstance: 10}}
	})
	requireError(t, f.do(t, "GET", "/api/v1/scale", nil), http.StatusInternalServerError,
		"function decode", "hub gone", "does not exist", "restart the app")
	requireError(t, f.do(t, "GET", "/api/v1/scale/decode", nil), http.StatusInternalServerError, "hub gone")
	metrics := f.do(t, "GET", "/metrics", nil)
	require.Equal(t, http.StatusOK, metrics.Code)
	require.NotContains(t, string(metrics.Body), "sluice_scale_")
	require.Contains(t, string(metrics.Body), "sluice_http_requests_total")
}

// TestScaleWithoutFunctions: an app without hub or queue functions needs
// no instance for its backlog; the function endpoint says there are none.
func TestScaleWithoutFunctions(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.do(t, "GET", "/api/v1/scale", nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.JSONEq(t, `{"desired_instances":0,"functions":[]}`, string(r.Body))
	requireError(t, f.do(t, "GET", "/api/v1/scale/x", nil), http.StatusNotFound, "the app has none")
	require.Contains(t, string(f.do(t, "GET", "/metrics", nil).Body), "\nsluice_scale_desired_instances 0\n")
}
