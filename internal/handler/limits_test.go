package handler

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/funcapp"
	"github.com/sluicehq/sluice/internal/resilience"
)

// TestAppFolderBreakersAndTimeouts: host.json's sluice.breakers give the
// hub, queue and change-feed functions their breakers ("*" those without
// one of their own), and functionTimeout bounds each invocation in the
// host: a function that outlives it fails as a timeout and is
// dead-lettered with that reason, whatever its trigger.
func TestAppFolderBreakersAndTimeouts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	files := map[string]string{
		"host.json": `{"version": "2.0", "functionTimeout": "00:00:01",
  "customHandler": {"description": {"defaultExecutablePath": "` + echoHandler(t) + `"}},
  "extensions": {"queues": {"maxDequeueCount": 1}},
  "sluice": {"breakers": {
    "slowBatch": {"failureThreshold": 101, "window": "00:00:30", "coolDown": "00:00:10"},
    "quiet": null,
    "*": {"consecutiveFailures": 5}}}}`,
		"slowBatch/function.json":  `{"bindings": [{"type": "eventHubTrigger", "direction": "in", "name": "events", "eventHubName": "batches", "cardinality": "many"}]}`,
		"slowEvents/function.json": `{"bindings": [{"type": "eventHubTrigger", "direction": "in", "name": "event", "eventHubName": "events"}]}`,
		"slowQueue/function.json":  `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "msg", "queueName": "work"}]}`,
		"slowTick/function.json":   `{"bindings": [{"type": "timerTrigger", "direction": "in", "name": "timer", "schedule": "0 0 0 1 1 *", "runOnStartup": true}]}`,
		"slowBlob/function.json":   `{"bindings": [{"type": "blobTrigger", "direction": "in", "name": "file", "path": "uploads/{name}"}]}`,
		"changes/function.json": `{"bindings": [{"type": "cosmosDBTrigger", "direction": "in", "name": "docs", "databaseName": "db", "containerName": "devices"},
  {"type": "cosmosDB", "direction": "out", "name": "out", "databaseName": "db", "containerName": "devices", "partitionKey": "/id"}]}`,
		"quiet/function.json": `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "msg", "queueName": "quiet"}]}`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	fa, err := funcapp.Load(dir, funcapp.Options{Env: map[string]string{}})
	require.NoError(t, err)
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quietLog()})
	r, err := Prepare(app, fa, AppOptions{Create: true, Partitions: 1, Logger: quietLog()})
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() { require.NoError(t, r.Stop(context.Background())) })
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { app.Stop(context.Background()) })

	// Breakers: as written, with the host's defaults filled in.
	def := resilience.BreakerPolicy{ConsecutiveFailures: 5}.WithDefaults()
	for name, want := range map[string]resilience.BreakerPolicy{
		"slowBatch":  {FailureThreshold: 101, Window: 30 * time.Second, CoolDown: 10 * time.Second, MaxCoolDown: 100 * time.Second},
		"slowEvents": def,
		"slowQueue":  def,
		"changes":    def,
	} {
		st, err := app.Breaker(ctx, name)
		require.NoError(t, err, name)
		require.NotNil(t, st.Policy, name)
		require.Equal(t, sluice.BreakerPolicy(want), *st.Policy, name)
	}
	for _, name := range []string{"quiet", "slowTick", "slowBlob"} {
		_, err := app.Breaker(ctx, name)
		require.ErrorIs(t, err, resilience.ErrNoBreaker, name)
	}

	// Timeouts: the handler answers slow* only when the host gives up.
	_, err = app.Publish(ctx, "batches", sluice.Event{Body: []byte(`1`)})
	require.NoError(t, err)
	_, err = app.Publish(ctx, "events", sluice.Event{Body: []byte(`2`)})
	require.NoError(t, err)
	_, err = app.Send(ctx, "work", sluice.OutgoingMessage{Body: []byte(`3`)})
	require.NoError(t, err)
	_, err = app.Blobs().Put(ctx, "uploads", "a.txt", []byte("4"), "text/plain")
	require.NoError(t, err)
	reasons := map[string]string{
		// The host's timeout (host.TimeoutError).
		"slowBatch": "function slowBatch timed out after 1s: ",
		"slowQueue": "function slowQueue timed out after 1s: ",
		"slowTick":  "function slowTick timed out after 1s: ",
		"slowBlob":  "function slowBlob timed out after 1s: ",
		// Cardinality one: each event is bounded on its own.
		"slowEvents": "function slowEvents timed out after 1s (functionTimeout in host.json): ",
	}
	for name, reason := range reasons {
		var letters []sluice.DeadLetterRecord
		require.Eventually(t, func() bool {
			letters, err = app.DeadLetters(ctx, sluice.DeadLetterFilter{Function: name}, 10)
			require.NoError(t, err)
			return len(letters) > 0
		}, 30*time.Second, 50*time.Millisecond, "no dead letter of %s", name)
		require.Len(t, letters, 1, name)
		require.Contains(t, letters[0].Reason, reason, name)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
