package sluice_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func TestPublishEventsWithMessageIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "orders", Partitions: 2})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })

	first, err := app.Publish(ctx, "orders",
		sluice.Event{Body: []byte("paid"), PartitionKey: "o-17", MessageID: "o-17-paid"},
		sluice.Event{Body: []byte("no id")})
	require.NoError(t, err)
	// A retry, with the same event again inside it.
	again, err := app.Publish(ctx, "orders",
		sluice.Event{Body: []byte("paid"), PartitionKey: "o-17", MessageID: "o-17-paid"},
		sluice.Event{Body: []byte("shipped"), PartitionKey: "o-17", MessageID: "o-17-shipped"},
		sluice.Event{Body: []byte("paid"), MessageID: "o-17-paid"})
	require.NoError(t, err)
	require.Equal(t, first[0], again[0], "the stored event's position")
	require.Equal(t, first[0], again[2])
	require.Greater(t, again[1].SequenceNumber, first[0].SequenceNumber)

	_, err = app.Publish(ctx, "orders", sluice.Event{Body: []byte("x"), MessageID: strings.Repeat("x", 129)})
	require.ErrorContains(t, err, "message id")
}
