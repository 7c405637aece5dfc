package sluice_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/hub"
)

// An instance against a NATS server with its default max_payload (1 MiB)
// starts with a function of every kind, and an event of the largest size
// such a server takes (max_payload less hub.EventReserve) goes whole
// through a hub, a function's retry queue and the dead letters; a queue
// message of that size reaches the poison queue whole.
func TestDefaultServerCarriesTheLargestEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const maxPayload = 1 << 20 // nats-server's default
	eng, err := engine.Start(ctx, engine.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", MaxPayload: maxPayload})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })

	app := sluice.New(sluice.Config{DataDir: t.TempDir(), NATSURL: eng.ClientURL(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "in", Partitions: 1})
	var hubCalls atomic.Int32
	app.Function("f", sluice.HubTrigger{Hub: "in", MaxBatchSize: 1}, func(context.Context, []sluice.Event) error {
		if hubCalls.Add(1) == 1 {
			return sluice.RetryAfter(time.Millisecond, "partner down") // to the retry queue
		}
		return errors.New("still failing") // no retry policy: dead-lettered
	})
	app.Queue(sluice.QueueConfig{Name: "jobs", MaxMessageBytes: hub.MaxEventBytesFor(maxPayload)})
	app.QueueFunction("q", sluice.QueueTrigger{Queue: "jobs"}, func(context.Context, *sluice.Message) error {
		return sluice.DeadLetterMessage(errors.New("refused"))
	})
	app.Container(sluice.ContainerConfig{Name: "docs", PartitionKeyPath: "/k"})
	app.FeedFunction("feed", sluice.FeedTrigger{Container: "docs"}, func(context.Context, []sluice.Document) error { return nil })
	app.TimerFunction("tick", sluice.TimerTrigger{Schedule: "0 0 * * * *"}, func(context.Context, sluice.TimerInfo) error { return nil })
	app.BlobContainer("uploads")
	app.BlobFunction("blob", sluice.BlobTrigger{Path: "uploads/{name}"}, func(context.Context, sluice.Blob) error { return nil })
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })

	body := bytes.Repeat([]byte("x"), hub.MaxEventBytesFor(maxPayload))
	_, err = app.Publish(ctx, "in", sluice.Event{Body: body})
	require.NoError(t, err)
	_, err = app.Send(ctx, "jobs", sluice.OutgoingMessage{Body: body})
	require.NoError(t, err)
	// One byte more is refused, saying so.
	_, err = app.Publish(ctx, "in", sluice.Event{Body: append(body, 'x')})
	require.ErrorContains(t, err, "the limit is")

	for _, fn := range []string{"f", "q"} {
		var letters []sluice.DeadLetterRecord
		require.Eventually(t, func() bool {
			letters, err = app.DeadLetters(ctx, sluice.DeadLetterFilter{Function: fn}, 10)
			return err == nil && len(letters) > 0
		}, time.Minute, 10*time.Millisecond, "function %s's letter", fn)
		require.Len(t, letters, 1)
		require.Equal(t, len(body), len(letters[0].Body), "function %s's letter holds the whole body", fn)
	}
	require.Equal(t, int32(2), hubCalls.Load(), "once from the partition, once from the retry queue")
}
