package host_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/sqlite"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/host"
)

// TestReconcileFeeds: a change-feed checkpoint past its container's last
// change (as a failover can leave it, the checkpoints mirrored further than
// the document store's replica) is moved back to it; others stay.
func TestReconcileFeeds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := enginetest.Embedded(t)
	kv, err := eng.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: host.FeedBucket})
	require.NoError(t, err)
	docs, err := sqlite.Open(filepath.Join(t.TempDir(), "docs.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = docs.Close() })
	_, err = docs.CreateContainer(ctx, docstore.Container{Name: "c", PartitionKeyPath: "/pk"})
	require.NoError(t, err)
	for _, id := range []string{"a", "b"} {
		_, err := docs.Upsert(ctx, "c", []byte(`{"id":"`+id+`","pk":"p"}`))
		require.NoError(t, err)
	}
	last, err := docs.LastLSN(ctx, "c")
	require.NoError(t, err)
	put := func(key string, lsn int64) {
		data, _ := json.Marshal(map[string]any{"lsn": lsn})
		_, err := kv.Put(ctx, key, data)
		require.NoError(t, err)
	}
	put("c.fn.0", last+10)
	put("c.fn.1", last-1)
	put("gone.fn.0", 99)
	_, err = kv.Put(ctx, "c.fn.layout", []byte(`{"ranges":2}`))
	require.NoError(t, err)

	moved, err := host.ReconcileFeeds(ctx, kv, docs, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.Equal(t, 1, moved)
	lsn := func(key string) int64 {
		e, err := kv.Get(ctx, key)
		require.NoError(t, err)
		var v struct{ LSN int64 }
		require.NoError(t, json.Unmarshal(e.Value(), &v))
		return v.LSN
	}
	require.Equal(t, last, lsn("c.fn.0"))
	require.Equal(t, last-1, lsn("c.fn.1"))
	require.EqualValues(t, 99, lsn("gone.fn.0"))
	moved, err = host.ReconcileFeeds(ctx, kv, docs, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.Zero(t, moved)
}
