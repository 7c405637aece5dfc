package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/funcapp"
	"github.com/sluicehq/sluice/internal/handler"
	"github.com/sluicehq/sluice/internal/schedule"
)

// writeApp writes the orders app folder: its handler (testdata/ordersapp,
// built) and one folder per function, as a team would have it for Azure.
func writeApp(t *testing.T, forward bool, mode string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "handler"), "./testdata/ordersapp").CombinedOutput()
	require.NoError(t, err, "build the handler: %s", out)
	files := map[string]string{
		"host.json": fmt.Sprintf(`{
  "version": "2.0",
  "logging": {"logLevel": {"default": "Information"}},
  "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"},
  "customHandler": {"description": {"defaultExecutablePath": "handler"}, "enableForwardingHttpRequest": %t},
  "extensions": {"eventHubs": {"maxEventBatchSize": 50, "targetUnprocessedEventThreshold": 200}, "queues": {"maxDequeueCount": 3}},
  "retry": {"strategy": "fixedDelay", "maxRetryCount": 2, "delayInterval": "00:00:00.050"}
}`, forward),
		"local.settings.json": fmt.Sprintf(`{"IsEncrypted": false, "Values": {"FUNCTIONS_WORKER_RUNTIME": "custom", "TELEMETRY_HUB": "telemetry", "PAYLOAD_MODE": %q, "MARKER_DIR": %q}}`, mode, dir),
		"ingest/function.json": `{"bindings": [
  {"type": "eventHubTrigger", "direction": "in", "name": "events", "eventHubName": "%TELEMETRY_HUB%", "cardinality": "many", "connection": "EventHubConnection"},
  {"type": "queue", "direction": "out", "name": "readings", "queueName": "readings", "connection": "AzureWebJobsStorage"}]}`,
		"store/function.json": `{"bindings": [
  {"type": "queueTrigger", "direction": "in", "name": "reading", "queueName": "readings"},
  {"type": "cosmosDB", "direction": "out", "name": "device", "databaseName": "fleet", "containerName": "devices", "partitionKey": "/deviceId", "createIfNotExists": true, "connection": "CosmosDB"}]}`,
		"changes/function.json": `{"bindings": [
  {"type": "cosmosDBTrigger", "direction": "in", "name": "documents", "databaseName": "fleet", "containerName": "devices", "leaseContainerName": "leases", "createLeaseContainerIfNotExists": true, "startFromBeginning": true, "connection": "CosmosDB"},
  {"type": "cosmosDB", "direction": "out", "name": "seen", "databaseName": "fleet", "containerName": "seen", "partitionKey": "/kind", "createIfNotExists": true, "connection": "CosmosDB"}]}`,
		"tick/function.json": `{"bindings": [
  {"type": "timerTrigger", "direction": "in", "name": "timer", "schedule": "* * * * * *"},
  {"type": "cosmosDB", "direction": "out", "name": "ticks", "databaseName": "fleet", "containerName": "ticks", "partitionKey": "/kind", "createIfNotExists": true, "connection": "CosmosDB"}]}`,
		"submit/function.json": `{"bindings": [
  {"type": "httpTrigger", "direction": "in", "name": "req", "methods": ["post"], "authLevel": "anonymous", "route": "submit"},
  {"type": "eventHub", "direction": "out", "name": "telemetry", "eventHubName": "%TELEMETRY_HUB%", "connection": "EventHubConnection"},
  {"type": "http", "direction": "out", "name": "res"}]}`,
		"hello/function.json": `{"bindings": [
  {"type": "httpTrigger", "direction": "in", "name": "req", "methods": ["get"], "authLevel": "anonymous", "route": "hello/{name}"},
  {"type": "http", "direction": "out", "name": "res"}]}`,
		"upper/function.json": `{"bindings": [
  {"type": "blobTrigger", "direction": "in", "name": "blob", "path": "uploads/in/{name}.txt", "dataType": "string", "connection": "AzureWebJobsStorage"},
  {"type": "blob", "direction": "out", "name": "result", "path": "uploads/out/{name}.upper", "connection": "AzureWebJobsStorage"}]}`,
		"device/function.json": `{"bindings": [
  {"type": "httpTrigger", "direction": "in", "name": "req", "methods": ["get"], "authLevel": "anonymous", "route": "devices/{id}"},
  {"type": "cosmosDB", "direction": "in", "name": "doc", "databaseName": "fleet", "containerName": "devices", "id": "{id}", "partitionKey": "{id}", "connection": "CosmosDB"},
  {"type": "http", "direction": "out", "name": "res"}]}`,
		"note/function.json": `{"bindings": [
  {"type": "httpTrigger", "direction": "in", "name": "req", "methods": ["get"], "authLevel": "anonymous", "route": "notes/{name}"},
  {"type": "blob", "direction": "in", "name": "note", "path": "uploads/out/{name}.upper", "dataType": "string", "connection": "AzureWebJobsStorage"},
  {"type": "http", "direction": "out", "name": "res"}]}`,
		"README.md": "not a function folder",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return dir
}

func runApp(t *testing.T, dir string, mode handler.Mode) *sluice.App {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	fa, err := funcapp.Load(dir, funcapp.Options{Env: map[string]string{}, CheckSchedule: func(s string) error {
		_, err := schedule.Parse(s, nil)
		return err
	}})
	require.NoError(t, err)
	app := sluice.New(sluice.Config{DataDir: filepath.Join(t.TempDir(), "data"), HTTPAddr: "127.0.0.1:0", Logger: log})
	r, err := handler.Prepare(app, fa, handler.AppOptions{Mode: mode, Create: true, Partitions: 2, Logger: log})
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() { require.NoError(t, r.Stop(context.Background())) })
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { app.Stop(context.Background()) })
	return app
}

func TestAppFolderEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		mode    handler.Mode
		forward bool
	}{{handler.Compat, true}, {handler.Clean, false}} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			dir := writeApp(t, tc.forward, tc.mode.String())
			app := runApp(t, dir, tc.mode)
			base := "http://" + app.Addr()
			ctx := context.Background()

			// Readings in through the HTTP function, then hub → queue →
			// container → change feed → container, all by the handler.
			const devices = 20
			for i := range devices {
				id := fmt.Sprintf("dev-%d", i)
				if i == 7 {
					id = "crash-me" // the handler dies the first time it stores this one
				}
				resp, err := http.Post(base+"/api/submit", "application/json", strings.NewReader(fmt.Sprintf(`{"deviceId":%q,"value":%d}`, id, i)))
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
				require.Equal(t, "accepted "+id, string(body))
			}
			resp, err := http.Post(base+"/api/submit", "application/json", strings.NewReader(`{}`))
			require.NoError(t, err)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "the handler's statusCode string is the answer's status")
			resp.Body.Close()

			eventually(t, "every device stored and seen in the feed", func() bool {
				for i := range devices {
					id := fmt.Sprintf("dev-%d", i)
					if i == 7 {
						id = "crash-me"
					}
					d, err := app.Docs().Read(ctx, "devices", id, id)
					if err != nil {
						return false
					}
					var body struct{ Value float64 }
					require.NoError(t, json.Unmarshal(d.Body, &body))
					require.Equal(t, float64(i), body.Value)
					if _, err := app.Docs().Read(ctx, "seen", "seen", "seen-"+id); err != nil {
						return false
					}
				}
				return true
			})
			require.FileExists(t, filepath.Join(dir, "crashed"), "the handler crashed once mid-invocation; the reading still arrived")

			_, err = app.Blobs().Put(ctx, "uploads", "in/note.txt", []byte("hello blob"), "text/plain")
			require.NoError(t, err)
			eventually(t, "the upper-cased blob", func() bool {
				data, _, err := app.Blobs().Get(ctx, "uploads", "out/note.upper")
				if err != nil {
					return false
				}
				require.Equal(t, "HELLO BLOB (note)", string(data))
				return true
			})

			var header http.Header
			get := func(path string) (int, string) {
				resp, err := http.Get(base + path)
				require.NoError(t, err)
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				header = resp.Header
				return resp.StatusCode, string(body)
			}
			// The scale signals take host.json's target for hub functions.
			status, body := get("/api/v1/scale/ingest")
			require.Equal(t, http.StatusOK, status, body)
			require.Contains(t, body, `"target_per_instance": 200`)
			status, body = get("/api/devices/dev-3")
			require.Equal(t, http.StatusOK, status, body)
			require.Contains(t, body, `"deviceId":"dev-3"`, "the document read by the cosmosDB input binding")
			status, _ = get("/api/devices/nobody")
			require.Equal(t, http.StatusNotFound, status, "a missing document is null")
			status, body = get("/api/notes/note")
			require.Equal(t, http.StatusOK, status, body)
			require.Equal(t, "HELLO BLOB (note)", body, "the blob read by the blob input binding")

			eventually(t, "the timer", func() bool {
				_, err := app.Docs().Read(ctx, "ticks", "tick", "tick")
				return err == nil
			})

			status, body = get("/api/hello/ada?x=1")
			require.Equal(t, http.StatusOK, status)
			if tc.forward {
				require.Equal(t, "hello ada, forwarded GET /api/hello/ada?x=1", body)
			} else {
				require.Equal(t, "hello ada, invoked", body)
				require.Equal(t, "clean", header.Get("X-Mode"), "the http output's headers")
			}
		})
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
