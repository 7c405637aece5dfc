package handler_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/funcapp"
	"github.com/sluicehq/sluice/internal/handler"
)

// TestPrepareRefusesWhatItCannotRun: every function Sluice cannot run is
// named with its file and field, and nothing is declared.
func TestPrepareRefusesWhatItCannotRun(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"host.json": `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "/bin/true"}}}`,
		"blobs/function.json": `{"bindings": [{"type": "blobTrigger", "direction": "in", "name": "blob", "path": "uploads/{name}"},
			{"type": "blob", "direction": "out", "name": "out", "path": "done/{name}-{id}"}]}`,
		"dotted/function.json": `{"bindings": [{"type": "eventHubTrigger", "direction": "in", "name": "events", "eventHubName": "my.hub"}]}`,
		"lookup/function.json": `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "msg", "queueName": "work"},
			{"type": "cosmosDB", "direction": "in", "name": "doc", "databaseName": "fleet", "containerName": "devices", "sqlQuery": "SELECT * FROM c"}]}`,
		"expr/function.json": `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "msg", "queueName": "work"},
			{"type": "queue", "direction": "out", "name": "out", "queueName": "out-{id}"}]}`,
		"fine/function.json": `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "msg", "queueName": "work"}]}`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	fa, err := funcapp.Load(dir, funcapp.Options{Env: map[string]string{}})
	require.NoError(t, err)
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	_, err = handler.Prepare(app, fa, handler.AppOptions{Create: true})
	errs := funcapp.Errors(err)
	require.Len(t, errs, 4, "%v", err)
	require.ErrorContains(t, err, `blobs/function.json: bindings[1].path: "done/{name}-{id}": {id}: Sluice resolves the trigger's blob path parameters`)
	require.ErrorContains(t, err, `dotted/function.json: bindings[0].eventHubName: invalid hub name "my.hub"`)
	require.ErrorContains(t, err, "lookup/function.json: bindings[1].sqlQuery: queries in cosmosDB input bindings are not supported by Sluice yet")
	require.ErrorContains(t, err, `expr/function.json: bindings[1].queueName: "out-{id}": binding expressions in resource names are not supported by Sluice yet`)

	// Nothing was declared: the app starts empty (no queue "work" made).
	require.NoError(t, app.Start(t.Context()))
	defer app.Stop(t.Context())
	require.Zero(t, app.Processed("fine"))
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }
