package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
)

// devices opens a store whose container "devices" holds n documents the
// size of the telemetry example's device states, and returns 200 keys of
// them picked at random (some repeat).
func devices(tb testing.TB, n int) (*Store, []docstore.Key) {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "docs.db"), Options{SyncNormal: true})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	_, err = s.CreateContainer(ctx, docstore.Container{Name: "devices", PartitionKeyPath: "/deviceId"})
	require.NoError(tb, err)
	docs := make([][]byte, n)
	for i := range docs {
		docs[i] = fmt.Appendf(nil, `{"id":"drone-%05d","deviceId":"drone-%05d","battery":%d.5,"flightMode":"auto","latitude":52.1,"longitude":4.3,"altitude":120.5,"gyrometerOK":true,"partition":2,"sequence":%d,"updated":"2026-01-01T00:00:00Z"}`, i, i, i%100, i)
	}
	_, err = s.BulkUpsert(ctx, "devices", docs)
	require.NoError(tb, err)
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]docstore.Key, 200)
	for i := range keys {
		id := fmt.Sprintf("drone-%05d", r.IntN(n))
		keys[i] = docstore.Key{PartitionKey: id, ID: id}
	}
	return s, keys
}

// ReadMany looks each key up in the key index, whatever the number of
// keys, before and after ANALYZE: never a scan of the container.
func TestReadManyUsesTheKeyIndex(t *testing.T) {
	t.Parallel()
	s, _ := devices(t, 2000)
	for _, analyzed := range []bool{false, true} {
		if analyzed {
			_, err := s.w.Exec(`ANALYZE`)
			require.NoError(t, err)
		}
		for _, n := range []int{1, 2, 256, 1024} {
			args := make([]any, 2+2*n)
			args[0], args[1] = "devices", 0
			rows, err := s.r.Query(`EXPLAIN QUERY PLAN `+readManyStatement(n), args...)
			require.NoError(t, err)
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
				plan = append(plan, detail)
			}
			require.NoError(t, rows.Err())
			text := strings.Join(plan, "; ")
			t.Logf("%d keys, analyzed %v: %s", n, analyzed, text)
			require.Contains(t, text, "SEARCH documents USING INDEX documents_key (container=? AND pk=?", "%d keys, analyzed %v", n, analyzed)
			require.NotContains(t, text, "SCAN documents", "%d keys, analyzed %v", n, analyzed)
			require.NotContains(t, text, "documents_feed", "%d keys, analyzed %v", n, analyzed)
		}
	}
}

func TestReadManySize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]int{1: 1, 2: 2, 3: 4, 4: 4, 5: 8, 200: 256, 256: 256, 257: 512, docstore.MaxReadManyKeys: 1024} {
		require.Equal(t, want, readManySize(n), "%d keys", n)
	}
}

// BenchmarkReadMany compares reading the documents of 200 keys (about
// 190 distinct, of 10,000 documents) one Read at a time with one
// ReadMany. The telemetry pipeline reads each device of a batch.
func BenchmarkReadMany(b *testing.B) {
	ctx := context.Background()
	s, keys := devices(b, 10000)
	distinct, err := docstore.DistinctKeys(keys)
	require.NoError(b, err)
	b.Run("Reads200", func(b *testing.B) {
		for b.Loop() {
			for _, k := range keys {
				if _, err := s.Read(ctx, "devices", k.PartitionKey, k.ID); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("ReadMany200", func(b *testing.B) {
		for b.Loop() {
			docs, err := s.ReadMany(ctx, "devices", keys)
			if err != nil || len(docs) != len(distinct) {
				b.Fatal(err, len(docs))
			}
		}
	})
}
