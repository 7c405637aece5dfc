package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/gateway"
)

func TestBreakerCommands(t *testing.T) {
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app.Hub(sluice.HubConfig{Name: "orders", Partitions: 1})
	app.Function("deliver", sluice.HubTrigger{Hub: "orders"}, func(context.Context, []sluice.Event) error { return nil },
		sluice.WithBreaker(sluice.BreakerPolicy{FailureThreshold: 101}))
	require.NoError(t, app.Start(context.Background()))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	srv := "http://" + app.Addr()
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return sluiceCmd(t, append(args, "--server", srv)...)
	}
	ok := func(args ...string) string {
		t.Helper()
		code, out, errOut := run(args...)
		require.Equal(t, 0, code, "sluice %v: %s", args, errOut)
		return out
	}
	require.Regexp(t, `deliver +closed`, ok("breaker", "list"))
	show := ok("breaker", "show", "deliver")
	require.Contains(t, show, "open at 101 failures within 30s; cool-down 30s (up to 5m0s)")

	require.Contains(t, ok("breaker", "open", "deliver", "--reason", "partner maintenance"), "breaker of deliver is open (by hand)")
	show = ok("breaker", "show", "deliver")
	require.Regexp(t, `closed → open by manual: cli: partner maintenance`, show)
	var b gateway.BreakerJSON
	require.NoError(t, json.Unmarshal([]byte(ok("breaker", "show", "deliver", "--json")), &b))
	require.Equal(t, string(sluice.BreakerOpen), string(b.State))
	require.True(t, b.Manual)
	require.Equal(t, "30s", b.Policy.Window)

	require.Contains(t, ok("breaker", "close", "deliver"), "breaker of deliver is closed")
	require.Regexp(t, `deliver +closed`, ok("breaker", "list"))

	code, _, errOut := run("breaker", "open", "nosuch")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "function nosuch has no breaker")
	code, _, errOut = run("breaker", "open")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "give exactly one function name")
	code, out, _ := run("breaker", "--help")
	require.Equal(t, 0, code)
	require.Contains(t, out, "open a breaker by hand")
}
