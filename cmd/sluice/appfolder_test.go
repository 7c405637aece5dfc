package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestServeAppErrors: a broken app folder is refused before anything
// starts, with every problem on a line of its own.
func TestServeAppErrors(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"host.json":             `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "missing-handler"}}}`,
		"orders/function.json":  `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "msg"}]}`,
		"nightly/function.json": `{"bindings": [{"type": "timerTrigger", "direction": "in", "name": "t", "schedule": "0 0 25 * * *"}]}`,
		"uploads/function.json": `{"bindings": [{"type": "serviceBusTrigger", "direction": "in", "name": "m"}]}`,
	} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	data := t.TempDir()
	code, _, errOut := sluiceCmd(t, "serve", "--app", dir, "--data-dir", data, "--http", "127.0.0.1:0")
	require.Equal(t, 1, code, errOut)
	for _, want := range []string{
		"has 4 problems",
		"host.json: customHandler.description.defaultExecutablePath",
		"orders/function.json: bindings[0].queueName: missing",
		"nightly/function.json: bindings[0].schedule",
		"hour 25",
		"uploads/function.json: bindings[0].type",
	} {
		require.Contains(t, errOut, want)
	}
	entries, err := os.ReadDir(data)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing was started")

	code, _, errOut = sluiceCmd(t, "serve", "--app", dir, "--payload", "pretty")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `payload mode "pretty": use compat`)
}

// TestServeAppMissingResources: without --create, a missing queue is named
// with the way out.
func TestServeAppMissingResources(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("needs node for a minimal handler")
	}
	dir := t.TempDir()
	for name, content := range map[string]string{
		"host.json":          `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "node", "arguments": ["handler.js"]}}}`,
		"handler.js":         `require("http").createServer((req, res) => res.end("{}")).listen(process.env.FUNCTIONS_CUSTOMHANDLER_PORT, "127.0.0.1");`,
		"work/function.json": `{"bindings": [{"type": "queueTrigger", "direction": "in", "name": "msg", "queueName": "work"}]}`,
	} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	code, _, errOut := sluiceCmd(t, "serve", "--app", dir, "--data-dir", t.TempDir(), "--http", "127.0.0.1:0")
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "queue not found")
	require.Contains(t, errOut, "run with --create")
}
