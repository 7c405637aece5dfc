package handler

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/funcapp"
)

// TestMissingInputsAndNoHTTPOutput: a document or blob an input binding
// names that does not exist is sent as the host sends it, the string
// "null" (null in clean mode); and an HTTP function without an http output
// answers 200 with no body, as the host does (FunctionInvocationMiddleware
// answers OkResult when nothing set a response).
func TestMissingInputsAndNoHTTPOutput(t *testing.T) {
	t.Parallel()
	for mode, want := range map[Mode]string{Compat: `"null"`, Clean: `null`} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			dir := t.TempDir()
			files := map[string]string{
				"host.json": `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "` + echoHandler(t) + `"}}}`,
				// The echo handler gives the request's Data as the output
				// "out": here a queue message.
				"lookup/function.json": `{"bindings": [
  {"type": "httpTrigger", "direction": "in", "name": "req", "methods": ["get"], "authLevel": "anonymous", "route": "lookup/{id}"},
  {"type": "cosmosDB", "direction": "in", "name": "doc", "databaseName": "db", "containerName": "docs", "id": "{id}", "partitionKey": "{id}"},
  {"type": "blob", "direction": "in", "name": "file", "path": "files/{id}.txt", "dataType": "string"},
  {"type": "queue", "direction": "out", "name": "out", "queueName": "echoes"}]}`,
			}
			for name, content := range files {
				p := filepath.Join(dir, name)
				require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
				require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
			}
			fa, err := funcapp.Load(dir, funcapp.Options{Env: map[string]string{}})
			require.NoError(t, err)
			app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quietLog()})
			r, err := Prepare(app, fa, AppOptions{Mode: mode, Create: true, Logger: quietLog()})
			require.NoError(t, err)
			app.Container(sluice.ContainerConfig{Name: "docs", PartitionKeyPath: "/id"})
			app.BlobContainer("files")
			echoes := make(chan []byte, 1)
			app.QueueFunction("test-echoes", sluice.QueueTrigger{Queue: "echoes"}, func(ctx context.Context, m *sluice.Message) error {
				echoes <- m.Body
				return nil
			})
			require.NoError(t, r.Start(ctx))
			t.Cleanup(func() { require.NoError(t, r.Stop(context.Background())) })
			require.NoError(t, app.Start(ctx))
			t.Cleanup(func() { app.Stop(context.Background()) })

			resp, err := http.Get(app.URL() + "/api/lookup/nobody")
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "no http output: 200, as Azure answers")
			require.Empty(t, body)

			var data map[string]json.RawMessage
			select {
			case b := <-echoes:
				require.NoError(t, json.Unmarshal(b, &data))
			case <-ctx.Done():
				t.Fatal("the test ended before the handler's output arrived")
			}
			require.Equal(t, want, string(data["doc"]), "a document that does not exist")
			require.Equal(t, want, string(data["file"]), "a blob that does not exist")
		})
	}
}
