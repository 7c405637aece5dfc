package sluice_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

func TestMain(m *testing.M) {
	enginetest.RunNodeIfAsked() // the cluster tests' NATS nodes are this binary
	goleak.VerifyTestMain(m,
		// A promoted mirror (DR failover) asks its dead origin's server to
		// delete the mirror's consumer there, in a goroutine of the NATS
		// server that waits for the answer for a while whatever happens
		// to the server (nats-server stream.go tryDeleteSourcingConsumer).
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*stream).tryDeleteSourcingConsumer.func1"))
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestAppLifecycleAndErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	app := sluice.New(sluice.Config{DataDir: dir, Logger: quiet()})
	_, err := app.Publish(ctx, "h", sluice.Event{Body: []byte("x")})
	require.ErrorIs(t, err, sluice.ErrNotStarted)

	app.Hub(sluice.HubConfig{Name: "h", Partitions: 2})
	require.NoError(t, app.Start(ctx))
	require.Error(t, app.Start(ctx), "a second Start is refused")
	_, err = app.Publish(ctx, "missing", sluice.Event{Body: []byte("x")})
	require.ErrorIs(t, err, sluice.ErrHubNotFound)
	_, err = app.Publish(ctx, "h", sluice.Event{Body: make([]byte, 2<<20)})
	require.ErrorIs(t, err, sluice.ErrEventTooLarge)
	pos, err := app.PublishToPartition(ctx, "h", 1, sluice.Event{Body: []byte("x")})
	require.NoError(t, err)
	require.Equal(t, 1, pos[0].Partition)
	require.NoError(t, app.Stop(ctx))
	require.NoError(t, app.Stop(ctx), "Stop twice is safe")

	// The same data directory, with a conflicting declaration.
	again := sluice.New(sluice.Config{DataDir: dir, Logger: quiet()})
	again.Hub(sluice.HubConfig{Name: "h", Partitions: 3})
	require.ErrorContains(t, again.Start(ctx), "exists with 2 partitions but is declared with 3")
}

func TestAppDeadLettersAndRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "in", Partitions: 1})
	var calls, good atomic.Int32
	app.Function("f", sluice.HubTrigger{Hub: "in"}, func(ctx context.Context, events []sluice.Event) error {
		calls.Add(1)
		var bad []sluice.Event
		for _, e := range events {
			switch string(e.Body) {
			case "flaky":
				if calls.Load() < 3 {
					return errors.New("try again")
				}
			case "corrupt":
				bad = append(bad, e)
				continue
			}
			good.Add(1)
		}
		if len(bad) > 0 {
			return sluice.DeadLetter(errors.New("corrupt"), bad...)
		}
		return nil
	}, sluice.WithRetry(sluice.FixedDelay(5, 10*time.Millisecond)))
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	_, err := app.Publish(ctx, "in", sluice.Event{Body: []byte("flaky")}, sluice.Event{Body: []byte("corrupt")}, sluice.Event{Body: []byte("ok")})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return app.Processed("f") == 3 }, 30*time.Second, 10*time.Millisecond)
	require.GreaterOrEqual(t, calls.Load(), int32(3))
}
