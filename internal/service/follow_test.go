package service_test

import (
	"context"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/service"
)

// view is what a follower knows of a bucket, with a signal per change.
type view struct {
	mu      sync.Mutex
	values  map[string]string
	changed chan string
}

func (v *view) apply(kve jetstream.KeyValueEntry) {
	v.mu.Lock()
	if kve.Operation() == jetstream.KeyValuePut {
		v.values[kve.Key()] = string(kve.Value())
	} else {
		delete(v.values, kve.Key())
	}
	v.mu.Unlock()
	v.changed <- kve.Key()
}

func (v *view) get(key string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	val, ok := v.values[key]
	return val, ok
}

func TestFollowKV(t *testing.T) {
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		name := enginetest.Name("follow-test")
		kv, err := eng.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: 1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = eng.JS.DeleteKeyValue(context.Background(), name) })
		_, err = kv.PutString(ctx, "a", "1")
		require.NoError(t, err)
		_, err = kv.PutString(ctx, "b", "2")
		require.NoError(t, err)

		var l service.Lifecycle
		v := &view{values: map[string]string{}, changed: make(chan string, 16)}
		require.NoError(t, l.FollowKV(kv, v.apply))
		// What the bucket held is applied before FollowKV returns.
		a, _ := v.get("a")
		b, _ := v.get("b")
		require.Equal(t, []string{"1", "2"}, []string{a, b})
		<-v.changed
		<-v.changed

		// Later puts and deletes follow.
		_, err = kv.PutString(ctx, "a", "3")
		require.NoError(t, err)
		require.Equal(t, "a", <-v.changed)
		a, _ = v.get("a")
		require.Equal(t, "3", a)
		require.NoError(t, kv.Delete(ctx, "b"))
		require.Equal(t, "b", <-v.changed)
		_, ok := v.get("b")
		require.False(t, ok)

		// Stop ends the goroutine (goleak checks) and a stopped lifecycle
		// refuses to follow.
		require.NoError(t, l.Stop(ctx, nil, nil))
		require.ErrorIs(t, l.FollowKV(kv, v.apply), service.ErrStopped)
	})
}
