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

func TestScaleCommand(t *testing.T) {
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app.Hub(sluice.HubConfig{Name: "orders", Partitions: 8})
	release := make(chan struct{})
	app.Function("decode", sluice.HubTrigger{Hub: "orders", MaxBatchSize: 2}, func(ctx context.Context, _ []sluice.Event) error {
		select { // hold the first batch: nothing is checkpointed
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	require.NoError(t, app.Start(context.Background()))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	t.Cleanup(func() { close(release) })
	events := make([]sluice.Event, 9)
	for i := range events {
		events[i] = sluice.Event{Body: []byte("e")}
	}
	_, err := app.Publish(context.Background(), "orders", events...)
	require.NoError(t, err)
	srv := "http://" + app.Addr()

	// 9 events, 2 per instance: ceil(4.5) = 5, which spreads 8 partitions
	// unevenly: 8.
	out, _ := runOK(t, srv, "scale")
	require.Contains(t, out, "desired instances: 8")
	require.Regexp(t, `decode +hub +hub orders / \$Default +8 +9 +2 +8`, out)
	var s gateway.Scale
	out, _ = runOK(t, srv, "scale", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	require.Equal(t, 8, s.DesiredInstances)
	var f gateway.FunctionScale
	out, _ = runOK(t, srv, "scale", "decode", "--json")
	require.NoError(t, json.Unmarshal([]byte(out), &f))
	require.Equal(t, int64(9), f.Unprocessed)

	code, _, errOut := sluiceCmd(t, "scale", "nosuch", "--server", srv)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `no hub or queue function named "nosuch"`)
	code, _, errOut = sluiceCmd(t, "scale", "a", "b", "--server", srv)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "give at most one function name")
}
