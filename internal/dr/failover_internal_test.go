package dr

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

// TestFailoverInterrupted: a failover cut short after promoting some
// mirrors (and before recording the promotion) is finished by the next
// run, which records it.
func TestFailoverInterrupted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary, secondary := enginetest.Pair(t)
	for _, name := range []string{"hub-a-0", "hub-a-1"} {
		_, err := primary.JS.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"hub.a." + name[len(name)-1:]}})
		require.NoError(t, err)
	}
	f, err := Open(ctx, Config{PrimaryDomain: enginetest.PrimaryDomain, JS: secondary.JS, Interval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	require.NoError(t, f.Sync(ctx))

	// What the interrupted run did: one mirror promoted, no record.
	st, err := secondary.JS.Stream(ctx, "hub-a-0")
	require.NoError(t, err)
	promoted, err := promotedConfig(st.CachedInfo().Config)
	require.NoError(t, err)
	_, err = secondary.JS.UpdateStream(ctx, promoted)
	require.NoError(t, err)
	_, err = f.state.Get(ctx, keyPromotion)
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound)

	rep, err := f.Failover(ctx)
	require.NoError(t, err)
	require.False(t, rep.Already)
	require.Equal(t, 1, rep.AlreadyPromoted)
	require.Len(t, rep.Resources, 1)
	require.Equal(t, "hub-a-1", rep.Resources[0].Stream)
	_, err = f.state.Get(ctx, keyPromotion)
	require.NoError(t, err, "the promotion is recorded")
	for _, name := range []string{"hub-a-0", "hub-a-1"} {
		st, err := secondary.JS.Stream(ctx, name)
		require.NoError(t, err)
		cfg := st.CachedInfo().Config
		require.Nil(t, cfg.Mirror)
		require.Equal(t, []string{"hub.a." + name[len(name)-1:]}, cfg.Subjects)
	}
}
