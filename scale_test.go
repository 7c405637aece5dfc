package sluice_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// TestScaleSignals: an app whose hub and queue functions hold their
// first inputs (so nothing is checkpointed or completed) answers
// GET /api/v1/scale with the backlog it was given, and /metrics has the
// same numbers as gauges.
func TestScaleSignals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "orders", Partitions: 4})
	app.Queue(sluice.QueueConfig{Name: "jobs"})
	release := make(chan struct{})
	hold := func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	app.Function("decode", sluice.HubTrigger{Hub: "orders", MaxBatchSize: 10},
		func(ctx context.Context, _ []sluice.Event) error { return hold(ctx) })
	app.QueueFunction("work", sluice.QueueTrigger{Queue: "jobs", TargetPerInstance: 5},
		func(ctx context.Context, _ *sluice.Message) error { return hold(ctx) })
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(ctx) })
	t.Cleanup(func() { close(release) }) // first: the functions finish, then the app stops

	for i := range 25 {
		_, err := app.Publish(ctx, "orders", sluice.Event{Body: []byte("e"), PartitionKey: fmt.Sprint(i)})
		require.NoError(t, err)
	}
	msgs := make([]sluice.OutgoingMessage, 12)
	for i := range msgs {
		msgs[i] = sluice.OutgoingMessage{Body: []byte("m")}
	}
	_, err := app.Send(ctx, "jobs", msgs...)
	require.NoError(t, err)

	get := func(path string) (int, string) {
		resp, err := http.Get(app.URL() + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err.Error()
		}
		return resp.StatusCode, string(b)
	}
	type function struct {
		Function          string `json:"function"`
		Trigger           string `json:"trigger"`
		Partitions        int    `json:"partitions"`
		Lag               *int64 `json:"lag"`
		Depth             *int64 `json:"depth"`
		Unprocessed       int64  `json:"unprocessed"`
		TargetPerInstance int    `json:"target_per_instance"`
		DesiredInstances  int    `json:"desired_instances"`
	}
	var scale struct {
		DesiredInstances int        `json:"desired_instances"`
		Instances        *int       `json:"instances"`
		Functions        []function `json:"functions"`
	}
	// Nothing is checkpointed or completed, so the backlogs are exact
	// from the start; the app's membership of the partition leases is
	// written once its leases run.
	require.Eventually(t, func() bool {
		code, body := get("/api/v1/scale")
		return code == http.StatusOK && json.Unmarshal([]byte(body), &scale) == nil && scale.Instances != nil && *scale.Instances == 1
	}, 30*time.Second, 100*time.Millisecond, "the instance is counted")
	require.Len(t, scale.Functions, 2)
	decode, work := scale.Functions[0], scale.Functions[1]
	// decode: 25 events, target MaxBatchSize 10: ceil(2.5) = 3, which does
	// not spread 4 partitions evenly: 4. work: 12 messages (locked or
	// visible), target 5: 3. The app: 4.
	require.Equal(t, "hub", decode.Trigger)
	require.Equal(t, 4, decode.Partitions)
	require.Equal(t, int64(25), *decode.Lag)
	require.Equal(t, int64(25), decode.Unprocessed)
	require.Equal(t, 10, decode.TargetPerInstance)
	require.Equal(t, 4, decode.DesiredInstances)
	require.Equal(t, "queue", work.Trigger)
	require.Equal(t, int64(12), *work.Depth)
	require.Equal(t, 5, work.TargetPerInstance)
	require.Equal(t, 3, work.DesiredInstances)
	require.Equal(t, 4, scale.DesiredInstances)

	code, body := get("/api/v1/scale/work")
	require.Equal(t, http.StatusOK, code, body)
	var one function
	require.NoError(t, json.Unmarshal([]byte(body), &one))
	require.Equal(t, work, one)

	code, body = get("/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, line := range []string{
		"sluice_scale_desired_instances 4",
		"sluice_scale_instances 1",
		`sluice_scale_function_desired_instances{function="decode",trigger="hub"} 4`,
		`sluice_scale_function_desired_instances{function="work",trigger="queue"} 3`,
		`sluice_scale_function_unprocessed{function="decode",trigger="hub"} 25`,
	} {
		require.Contains(t, body, "\n"+line+"\n")
	}
}
