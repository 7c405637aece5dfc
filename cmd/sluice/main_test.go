package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The CLI keeps its output writer in a package variable, so these tests do
// not run in parallel.

func startInstance(t *testing.T) string {
	t.Helper()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, app.Start(context.Background()))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	return "http://" + app.Addr()
}

func sluiceCmd(t *testing.T, args ...string) (code int, out, errOut string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// runOK runs a command against the instance at srv, requires that it
// succeeds, and returns its standard output and standard error.
func runOK(t *testing.T, srv string, args ...string) (out, errOut string) {
	t.Helper()
	code, out, errOut := sluiceCmd(t, append(args, "--server", srv)...)
	require.Equal(t, 0, code, "sluice %v: %s", args, errOut)
	return out, errOut
}

func TestHubCommands(t *testing.T) {
	srv := startInstance(t)
	ok := func(args ...string) string {
		t.Helper()
		code, out, errOut := sluiceCmd(t, append(args, "--server", srv)...)
		require.Equal(t, 0, code, "sluice %v: %s", args, errOut)
		return out
	}
	require.Contains(t, ok("hub", "create", "orders", "--partitions", "3"), "created hub orders with 3 partitions")
	require.Contains(t, ok("hub", "list"), "orders")
	out := ok("hub", "send", "orders", `{"id":1}`, `{"id":2}`, "--key", "c1")
	require.Equal(t, 2, strings.Count(out, "stored in partition"))
	ok("hub", "send", "orders", "plain text", "--property", "source=cli", "--partition", "0")

	var sent struct {
		Count  int
		Events []struct{ Partition int }
	}
	require.NoError(t, json.Unmarshal([]byte(ok("hub", "send", "orders", `{"id":3}`, "--key", "c1", "--json")), &sent))
	require.Equal(t, 1, sent.Count)

	tail := ok("hub", "tail", "orders", "--limit", "10")
	require.Contains(t, tail, `{"id":1}`)
	require.Contains(t, tail, "source=cli plain text")
	require.Less(t, strings.Index(tail, `{"id":1}`), strings.Index(tail, `{"id":3}`), "order of one key")

	lines := strings.Split(strings.TrimSpace(ok("hub", "tail", "orders", "--json")), "\n")
	require.Len(t, lines, 4, "one JSON object per event")

	require.Contains(t, ok("hub", "describe", "orders"), "PARTITION")
	require.Contains(t, ok("hub", "lag", "orders"), "4 events behind")
	require.Contains(t, ok("hub", "replay", "orders", "--earliest", "--grace", "0s"), "CHECKPOINT NOW")
	require.Contains(t, ok("hub", "delete", "orders", "--yes"), "deleted hub orders")
}

func TestCommandErrors(t *testing.T) {
	srv := startInstance(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"nope"}, 2, "unknown command"},
		{[]string{"hub", "frobnicate"}, 2, "unknown verb"},
		{[]string{"hub", "create"}, 2, "give exactly one hub name"},
		{[]string{"hub", "create", "x", "--partitions", "many"}, 2, "invalid value"},
		{[]string{"hub", "create", "bad name", "--server", srv}, 1, "hub name"},
		{[]string{"hub", "describe", "missing", "--server", srv}, 1, "hub not found"},
		{[]string{"hub", "delete", "missing"}, 2, "--yes"},
		{[]string{"hub", "send", "missing", "x", "--server", srv}, 1, "hub not found"},
		{[]string{"hub", "replay", "missing", "--server", srv}, 1, "hub not found"},
		{[]string{"hub", "send", "h", "x", "--property", "novalue", "--server", srv}, 2, "name=value"},
		{[]string{"hub", "list", "--server", "http://127.0.0.1:1"}, 1, "is 'sluice dev' or 'sluice serve' running"},
	} {
		code, _, errOut := sluiceCmd(t, tc.args...)
		require.Equal(t, tc.code, code, "sluice %v: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.msg, "sluice %v", tc.args)
	}
}

func TestHelpIsHelpful(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"hub", "--help"}, {"hub", "send", "--help"}, {"dev", "--help"}, {"bench", "--help"}, {"hub", "replay", "-h"}} {
		code, out, _ := sluiceCmd(t, args...)
		require.Equal(t, 0, code, "sluice %v", args)
		require.True(t, strings.Contains(out, "Usage") || strings.Contains(out, "Commands"), "sluice %v printed %q", args, out)
	}
	_, out, _ := sluiceCmd(t, "hub", "replay", "--help")
	require.Contains(t, out, "--sequence")
	require.Contains(t, out, "Examples")
}
