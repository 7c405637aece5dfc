package pgsource_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// A Run stopped in the middle of the stream, while writers go on, and a
// Run given the last position staged: together they hand over every
// transaction once (the strict model sees a repeat as an insert of a row
// it has or an update that does not raise the version). The first Run
// stops as if it crashed once its last batch was staged but before the
// slot heard of it: the slot sends that batch again, and the second Run
// skips it.
func TestRestartResumesAfterPosition(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createTables()
	cfg := f.config("a", "b")
	cfg.BatchSize = 10
	src := f.source(cfg)
	ctx := testCtx(t)

	ctx1, cancel1 := context.WithCancel(ctx)
	defer cancel1()
	col1 := newCollector()
	streamed := 0
	col1.hook = func(ctx context.Context, b pipeline.Batch, n int) error {
		if !b.Snapshot {
			streamed++
		}
		if streamed == 6 {
			// Staged, but the source is stopped before it confirms.
			col1.record(b)
			cancel1()
			return ctx.Err()
		}
		return nil
	}
	run1 := start(t, ctx1, src, "", col1)
	run1.wait("the snapshot", snapshotDone)
	w := newWriters(f)
	w.afterMark.Store(true)
	w.start(ctx, 16, 1<<30)
	require.ErrorIs(t, run1.returned(), context.Canceled)
	first := col1.snapshot()
	after := first[len(first)-1].Position
	require.True(t, strings.HasPrefix(after, "lsn:"), after)
	var confirmed string
	require.NoError(t, f.admin.QueryRow(bg, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
		src.Slot()).Scan(&confirmed))
	require.LessOrEqual(t, lsnOf(t, confirmed), lsnOf(t, first[len(first)-1].Changes[0].Position), "the slot did not hear of the last batch")

	// The writers go on between the runs and during the second.
	require.NoError(t, w.waitCommits(ctx, 32))
	col2 := newCollector()
	run2 := start(t, ctx, src, after, col2)
	run2.wait("a stream batch", func(bs []pipeline.Batch) bool { return len(bs) > 0 })
	require.NoError(t, w.waitCommits(ctx, 32))
	w.stop()
	run2.wait("the fence transaction", sawTx("fence"))
	require.ErrorIs(t, run2.stop(), context.Canceled)

	second := col2.snapshot()
	for _, b := range second {
		require.False(t, b.Snapshot)
		for _, c := range b.Changes {
			require.Greater(t, lsnOf(t, c.Position), lsnOf(t, after[4:]), "nothing at or before the position comes again")
		}
	}
	checkStream(t, f, w, newModel(), append(first, second...))
}

var errStaging = errors.New("staging failed")

// An emit that fails stops Run with its error, and the batch is not
// confirmed: a Run given the position before it hands it over again.
func TestFailedEmitIsNotConfirmed(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createTables()
	cfg := f.config("a", "b")
	cfg.BatchSize = 5
	src := f.source(cfg)
	ctx := testCtx(t)

	col1 := newCollector()
	var failed pipeline.Batch
	streamed := 0
	col1.hook = func(ctx context.Context, b pipeline.Batch, n int) error {
		if !b.Snapshot {
			streamed++
		}
		if streamed == 3 {
			failed = b
			return errStaging
		}
		return nil
	}
	run1 := start(t, ctx, src, "", col1)
	run1.wait("the snapshot", snapshotDone)
	w := newWriters(f)
	w.afterMark.Store(true)
	w.start(ctx, 4, 1<<30)
	require.ErrorIs(t, run1.returned(), errStaging)
	first := col1.snapshot()
	after := first[len(first)-1].Position
	require.NotEmpty(t, failed.Changes)

	// The slot holds the failed batch: its confirmed position is at most
	// the commit LSN of the failed batch's first transaction.
	var confirmed string
	require.NoError(t, f.admin.QueryRow(bg, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
		src.Slot()).Scan(&confirmed))
	require.LessOrEqual(t, lsnOf(t, confirmed), lsnOf(t, failed.Changes[0].Position))

	col2 := newCollector()
	run2 := start(t, ctx, src, after, col2)
	changes := func(bs []pipeline.Batch) []pipeline.Change {
		var out []pipeline.Change
		for _, b := range bs {
			out = append(out, b.Changes...)
		}
		return out
	}
	run2.wait("the failed batch again", func(bs []pipeline.Batch) bool { return len(changes(bs)) >= len(failed.Changes) })
	require.Equal(t, failed.Changes, changes(col2.snapshot())[:len(failed.Changes)], "the failed batch's changes come again, first")
	w.stop()
	run2.wait("the fence transaction", sawTx("fence"))
	require.ErrorIs(t, run2.stop(), context.Canceled)
	checkStream(t, f, w, newModel(), append(first, col2.snapshot()...))
}

// With no changes of its tables, the slot still moves: the source
// confirms the server's WAL end when nothing is pending, and the server
// can free the WAL.
func TestIdleSlotAdvances(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createTables()
	f.exec("CREATE TABLE " + f.schema + ".other (id serial PRIMARY KEY, x text)")
	cfg := f.config("a", "b")
	src := f.source(cfg)
	ctx := testCtx(t)

	col := newCollector()
	run := start(t, ctx, src, "", col)
	run.wait("the snapshot", snapshotDone)
	f.exec("INSERT INTO " + f.schema + ".other (x) SELECT repeat('x', 100) FROM generate_series(1, 2000)")
	var flushed string
	require.NoError(t, f.admin.QueryRow(bg, "SELECT pg_current_wal_flush_lsn()::text").Scan(&flushed))
	var confirmed pglogrepl.LSN
	eventually(t, "the slot to confirm "+flushed, func() bool {
		run.requireRunning("the slot confirms " + flushed)
		var s string
		require.NoError(t, f.admin.QueryRow(bg, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
			src.Slot()).Scan(&s))
		confirmed = lsnOf(t, s)
		return confirmed >= lsnOf(t, flushed)
	})
	require.Len(t, col.snapshot(), 1, "nothing to hand over")
	lag, err := src.Lag(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, lag.Bytes, int64(0))

	// A change after that still comes.
	f.exec("INSERT INTO " + f.schema + ".a (id, v, tx) VALUES (42, 0, 'late')")
	run.wait("the late transaction", sawTx("late"))
	require.Greater(t, lsnOf(t, col.snapshot()[1].Changes[0].Position), confirmed)
	require.ErrorIs(t, run.stop(), context.Canceled)
	require.Equal(t, "insert", string(col.snapshot()[1].Changes[0].Op))
}
