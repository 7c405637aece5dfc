package sluice_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// An instance restarted on its data directory after dying with its leases
// held takes its partitions back at once: the data directory keeps its
// instance ID, and a previous life of an ID this process holds is dead.
// (The leases last 10 minutes: waiting for them would fail the test.)
func TestRestartedInstanceTakesItsPartitionsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	declare := func(app *sluice.App, processed chan<- string) {
		app.Hub(sluice.HubConfig{Name: "in", Partitions: 4})
		app.Function("f", sluice.HubTrigger{Hub: "in"}, func(_ context.Context, events []sluice.Event) error {
			for _, e := range events {
				processed <- string(e.Body)
			}
			return nil
		})
	}
	first := sluice.New(sluice.Config{DataDir: dir, LeaseExpiry: 10 * time.Minute, Logger: quiet()})
	seen := make(chan string, 16)
	declare(first, seen)
	require.NoError(t, first.Start(ctx))
	id := first.InstanceID()
	for p := range 4 {
		_, err := first.PublishToPartition(ctx, "in", p, sluice.Event{Body: []byte("before")})
		require.NoError(t, err)
	}
	for range 4 {
		require.Equal(t, "before", <-seen)
	}
	// Dies: a hard stop leaves its leases held.
	dead, cancel := context.WithCancel(ctx)
	cancel()
	_ = first.Stop(dead)

	second := sluice.New(sluice.Config{DataDir: dir, LeaseExpiry: 10 * time.Minute, Logger: quiet()})
	processed := make(chan string, 16)
	declare(second, processed)
	require.NoError(t, second.Start(ctx))
	defer second.Stop(ctx)
	require.Equal(t, id, second.InstanceID(), "the data directory keeps the instance's ID")
	for p := range 4 {
		_, err := second.PublishToPartition(ctx, "in", p, sluice.Event{Body: []byte("after")})
		require.NoError(t, err)
	}
	for range 4 {
		require.Equal(t, "after", <-processed)
	}
}
