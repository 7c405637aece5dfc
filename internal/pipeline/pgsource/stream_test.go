package pgsource_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// 16 writers change both tables while the source streams: the changes,
// applied in order, give the tables; each transaction comes whole, in one
// batch, in commit order, once.
func TestStreamConcurrentWriters(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createTables()
	cfg := f.config("a", "b")
	cfg.BatchSize = 20
	src := f.source(cfg)

	col := newCollector()
	run := start(t, bg, src, "", col)
	run.wait("the snapshot", snapshotDone)

	w := newWriters(f)
	w.afterMark.Store(true)
	w.start(testCtx(t), 16, 40)
	w.finish()
	run.wait("the fence transaction", sawTx("fence"))
	require.ErrorIs(t, run.stop(), context.Canceled)

	batches := col.snapshot()
	require.True(t, batches[0].Snapshot)
	checkStream(t, f, w, newModel(), batches)

	// Tables describe the columns, keys and types.
	var sawB bool
	for _, b := range batches {
		if desc, ok := b.Tables[f.schema+".b"]; ok {
			sawB = true
			require.Equal(t, []string{"k1", "k2"}, desc.KeyColumns())
			require.Equal(t, []pipeline.Column{
				{Name: "k1", Type: "text", Key: true}, {Name: "k2", Type: "int4", Key: true}, {Name: "v", Type: "int8"},
				{Name: "tx", Type: "text"}, {Name: "flag", Type: "bool"}, {Name: "amount", Type: "numeric(10,2)"},
				{Name: "at", Type: "timestamptz"}, {Name: "note", Type: "varchar(40)"},
			}, desc.Columns)
		}
	}
	require.True(t, sawB)

	// Updates that left a large (TOASTed) payload alone leave it out.
	var unchangedToast int
	for _, b := range batches {
		for _, c := range b.Changes {
			if _, ok := c.After["payload"]; c.Op == pipeline.Update && c.Table == f.schema+".a" && !ok {
				unchangedToast++
			}
		}
	}
	require.Positive(t, unchangedToast, "some update left a TOASTed payload alone")

	lag, err := src.Lag(bg)
	require.NoError(t, err)
	require.GreaterOrEqual(t, lag.Bytes, int64(0))
}

// A column added while the source streams: the changes after it name it,
// with its type (looked up in the catalog then), in a batch of their own.
func TestSchemaChangeWhileStreaming(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createTables()
	cfg := f.config("a")
	cfg.MaxWait = time.Hour // batches are handed over when full, or when the table changes shape
	cfg.BatchSize = 2
	src := f.source(cfg)
	ctx := testCtx(t)
	col := newCollector()
	run := start(t, ctx, src, "", col)
	run.wait("the snapshot", snapshotDone)

	f.exec(fmt.Sprintf("INSERT INTO %s.a (id, v, tx) VALUES (100, 0, 'before')", f.schema))
	f.exec(fmt.Sprintf("ALTER TABLE %s.a ADD COLUMN ref uuid", f.schema))
	// One transaction of two inserts: a full batch.
	f.exec(fmt.Sprintf("INSERT INTO %[1]s.a (id, v, tx, ref) VALUES (101, 0, 'after', '6f1c0a52-9a5e-4b43-8a43-3c1f0c0b7f7e'); INSERT INTO %[1]s.a (id, v, tx) VALUES (102, 0, 'full')", f.schema))
	run.wait("the second insert", sawTx("full"))
	require.ErrorIs(t, run.stop(), context.Canceled)

	var batches []pipeline.Batch
	for _, b := range col.snapshot() {
		if !b.Snapshot {
			batches = append(batches, b)
		}
	}
	require.Len(t, batches, 2)
	table := f.schema + ".a"
	require.Len(t, batches[0].Changes, 1)
	require.Equal(t, "before", batches[0].Changes[0].After["tx"])
	require.Len(t, batches[0].Tables[table].Columns, 4)
	require.Len(t, batches[1].Changes, 2)
	require.Equal(t, pipeline.Column{Name: "ref", Type: "uuid"}, batches[1].Tables[table].Columns[4])
	require.Equal(t, "6f1c0a52-9a5e-4b43-8a43-3c1f0c0b7f7e", batches[1].Changes[0].After["ref"])
}
