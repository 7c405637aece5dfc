package pgsource_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// Writers go on while the snapshot is read: the snapshot and the stream
// meet without a gap or an overlap (the strict model would see a
// transaction of the snapshot again as a repeated insert or an update
// that does not raise the version), and every transaction that began
// once the snapshot was being read is in the stream once.
func TestSnapshotWithConcurrentWrites(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createTables()
	f.prefill(2000)
	cfg := f.config("a", "b")
	cfg.BatchSize = 100
	src := f.source(cfg)
	ctx := testCtx(t)

	w := newWriters(f)
	w.start(ctx, 16, 1<<30)
	require.NoError(t, w.waitCommits(ctx, 16), "the writers run before the source starts")

	col := newCollector()
	col.hook = func(ctx context.Context, b pipeline.Batch, n int) error {
		if b.Snapshot && n == 0 {
			// The snapshot waits while the writers commit more.
			w.afterMark.Store(true)
			return w.waitCommits(ctx, 48)
		}
		return nil
	}
	run := start(t, ctx, src, "", col)
	run.wait("the snapshot", snapshotDone)
	require.NoError(t, w.waitCommits(ctx, 48))
	w.stop()
	run.wait("the fence transaction", sawTx("fence"))
	require.ErrorIs(t, run.stop(), context.Canceled)

	batches := col.snapshot()
	var reads int
	var done int
	for i, b := range batches {
		if !b.Snapshot {
			continue
		}
		reads += len(b.Changes)
		require.LessOrEqual(t, len(b.Changes), 100)
		if strings.HasPrefix(b.Position, "snapshot-done:") {
			done++
			require.False(t, batches[i+1].Snapshot, "the snapshot's last batch says it is done")
		} else {
			require.Regexp(t, `^snapshot:[0-9A-F]+/[0-9A-F]+:[01]:[0-9]+$`, b.Position)
		}
	}
	require.Equal(t, 1, done)
	require.GreaterOrEqual(t, reads, 2*2000+sharedKeys)
	require.GreaterOrEqual(t, len(w.required), 48)
	checkStream(t, f, w, newModel(), batches)
}

// A Run stopped in the middle of the snapshot leaves a snapshot position;
// a Run given it takes the snapshot again, from the start, from a new
// slot, and then streams.
func TestSnapshotCutShortStartsOver(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createTables()
	f.prefill(500)
	cfg := f.config("a", "b")
	cfg.BatchSize = 50
	src := f.source(cfg)
	ctx := testCtx(t)

	ctx1, cancel1 := context.WithCancel(ctx)
	defer cancel1()
	col1 := newCollector()
	col1.hook = func(ctx context.Context, b pipeline.Batch, n int) error {
		if n == 3 {
			cancel1()
			return ctx.Err()
		}
		return nil
	}
	run1 := start(t, ctx1, src, "", col1)
	require.ErrorIs(t, run1.returned(), context.Canceled)
	first := col1.snapshot()
	require.Len(t, first, 3)
	after := first[2].Position
	require.Equal(t, "snapshot:", after[:9])
	var c1 string
	var table, rows int
	_, err := fmt.Sscanf(strings.ReplaceAll(after[9:], ":", " "), "%s %d %d", &c1, &table, &rows)
	require.NoError(t, err)
	require.Equal(t, 0, table)
	require.Equal(t, 150, rows)

	// Changes between the runs are in the new snapshot.
	f.exec(fmt.Sprintf("INSERT INTO %s.a (id, v, tx) VALUES (5000, 0, 'between')", f.schema))
	f.exec(fmt.Sprintf("UPDATE %s.a SET v = 7 WHERE id = 101", f.schema))
	f.exec(fmt.Sprintf("DELETE FROM %s.b WHERE k1 = 'init' AND k2 = 3", f.schema))

	col2 := newCollector()
	run2 := start(t, ctx, src, after, col2)
	run2.wait("the snapshot", snapshotDone)
	f.exec(fmt.Sprintf("INSERT INTO %s.a (id, v, tx) VALUES (5001, 0, 'after')", f.schema))
	run2.wait("the transaction after the snapshot", sawTx("after"))
	require.ErrorIs(t, run2.stop(), context.Canceled)

	batches := col2.snapshot()
	require.True(t, batches[0].Snapshot)
	require.Equal(t, "1", batches[0].Changes[0].Key["id"], "the snapshot starts over from the first row")
	m := newModel()
	var c2 string
	for _, b := range batches {
		for _, c := range b.Changes {
			require.NoError(t, m.apply(c))
		}
		if strings.HasPrefix(b.Position, "snapshot-done:") {
			c2 = strings.TrimPrefix(b.Position, "snapshot-done:")
			require.Equal(t, f.tables("a", "b")["b"], m.rows["b"], "the snapshot holds every row once")
		}
	}
	require.Greater(t, lsnOf(t, c2), lsnOf(t, c1), "a new slot")
	require.Equal(t, f.tables("a", "b"), m.rows)
}
