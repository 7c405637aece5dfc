package host_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/queue"
)

// TestOpenOpensEachKindsBucketWhenItStarts: a host given only JetStream
// opens the breakers' bucket at once, and a kind of function's bucket when
// a function of that kind starts, not before and not for kinds it has
// none of.
func TestOpenOpensEachKindsBucketWhenItStarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := enginetest.Embedded(t)
	h, err := host.Open(ctx, host.Config{InstanceID: "a", JS: eng.JS, DeadLetters: &memSink{}, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Stop(context.Background())) })
	require.NotNil(t, h.Breakers())
	_, err = eng.JS.KeyValue(ctx, host.BreakerBucket)
	require.NoError(t, err)

	ran := make(chan struct{}, 1)
	require.NoError(t, h.Register(host.TimerFunction{Name: "tick",
		Trigger: host.TimerTrigger{Schedule: every(time.Hour), RunOnStartup: true},
		Handler: func(context.Context, host.TimerInfo) error {
			select {
			case ran <- struct{}{}:
			default:
			}
			return nil
		}}))
	_, err = eng.JS.KeyValue(ctx, host.TimerBucket)
	require.ErrorIs(t, err, jetstream.ErrBucketNotFound, "registering opens nothing")

	require.NoError(t, h.Start(ctx))
	<-ran
	_, err = eng.JS.KeyValue(ctx, host.TimerBucket)
	require.NoError(t, err)
	for _, b := range []string{host.FeedBucket, host.BlobReceiptBucket} {
		_, err = eng.JS.KeyValue(ctx, b)
		require.ErrorIs(t, err, jetstream.ErrBucketNotFound, b)
	}
	require.ErrorContains(t, h.Register(host.TimerFunction{Name: "late"}), "host: register late: the host has started")
}

// TestRegisterChecksNamesAcrossKinds: Register takes every kind, and a
// name is unique over all of them.
func TestRegisterChecksNamesAcrossKinds(t *testing.T) {
	t.Parallel()
	e := setupQueue(t, queue.Config{})
	kv, err := e.eng.JS.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "timers", History: 1})
	require.NoError(t, err)
	h, err := host.New(host.Config{InstanceID: "a", Queues: e.q, TimerState: kv, DeadLetters: e.sink})
	require.NoError(t, err)
	require.NoError(t, h.Register(host.QueueFunction{Name: "f", Trigger: host.QueueTrigger{Queue: e.name},
		Handler: func(context.Context, *queue.Message) error { return nil }}))
	require.ErrorContains(t, h.Register(host.TimerFunction{Name: "f", Trigger: host.TimerTrigger{Schedule: every(time.Hour)},
		Handler: func(context.Context, host.TimerInfo) error { return nil }}), "two functions are named f")
}
