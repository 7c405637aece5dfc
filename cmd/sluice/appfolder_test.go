package main

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
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

// TestAppGetsItsAPIAddress: the handler process of an app folder gets the
// URL of the instance's HTTP API as the app setting SLUICE_API, whatever
// --http says and whatever local.settings.json holds; an environment
// variable of that name wins, as for any app setting.
func TestAppGetsItsAPIAddress(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"host.json":            `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "/bin/sh"}}}`,
		"local.settings.json":  `{"Values": {"SLUICE_API": "http://127.0.0.1:7071", "OTHER": "kept"}}`,
		"device/function.json": `{"bindings": [{"type": "httpTrigger", "direction": "in", "name": "req", "route": "devices/{id}"}, {"type": "http", "direction": "out", "name": "res"}]}`,
	} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	t.Setenv("SLUICE_API", "")
	os.Unsetenv("SLUICE_API")
	af := &appFlags{dir: dir}
	for addr, want := range map[string]string{
		"127.0.0.1:7123": "http://127.0.0.1:7123",
		"0.0.0.0:7124":   "http://127.0.0.1:7124",
		":7125":          "http://127.0.0.1:7125",
		"[::]:7126":      "http://[::1]:7126",
		"[::1]:7127":     "http://[::1]:7127",
		"10.1.2.3:7128":  "http://10.1.2.3:7128",
	} {
		fa, err := af.load(sluice.Config{HTTPAddr: addr, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		require.Equal(t, want, fa.Settings["SLUICE_API"], "--http %s", addr)
		require.Equal(t, "kept", fa.Settings["OTHER"])
		require.Contains(t, fa.Environ(), "SLUICE_API="+want, "the handler's environment")
	}
	fa, err := af.load(sluice.Config{HTTPAddr: "127.0.0.1:7443", TLSCert: "cert.pem", Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.Equal(t, "https://127.0.0.1:7443", fa.Settings["SLUICE_API"])

	// The port is known only once the instance listens: what the app sets
	// stays, and nothing says a port 0.
	var log strings.Builder
	fa, err = af.load(sluice.Config{HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(&log, nil))})
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:7071", fa.Settings["SLUICE_API"], "local.settings.json's, as there is no better")
	require.NotContains(t, log.String(), "gets no SLUICE_API")

	t.Setenv("SLUICE_API", "http://proxy.example:8080")
	fa, err = af.load(sluice.Config{HTTPAddr: "127.0.0.1:7123", Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.Equal(t, "http://proxy.example:8080", fa.Settings["SLUICE_API"])
}
