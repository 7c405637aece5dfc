package pgsource_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/pgsource"
)

// backfillTables: n (a key of one column, assorted types), c (a
// composite key of text and int) and f (REPLICA IDENTITY FULL without a
// key, duplicate rows).
func (f *fixture) backfillTables(rows int) {
	f.exec(fmt.Sprintf(`CREATE TABLE %[1]s.n (id int8 PRIMARY KEY, v int4, note text, amount numeric(10,2), at timestamptz, flag bool, tags text[], doc jsonb, gen int8 GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO %[1]s.n (id, v, note, amount, at, flag, tags, doc)
	SELECT g, g %% 7, CASE WHEN g %% 5 = 0 THEN NULL ELSE 'note ' || g END, g * 1.25, timestamptz '2026-12-08 10:00:00+00' + g * interval '1 second',
		g %% 2 = 0, ARRAY['a' || g, 'b'], jsonb_build_object('g', g) FROM generate_series(1, %[2]d) g`, f.schema, rows))
	f.exec(fmt.Sprintf(`CREATE TABLE %[1]s.c (k1 text, k2 int4, v int8, PRIMARY KEY (k1, k2));
INSERT INTO %[1]s.c SELECT chr(ascii('a') + g %% 3) || CASE WHEN g %% 4 = 0 THEN 'Z' ELSE '' END, g, g FROM generate_series(1, %[2]d) g`, f.schema, rows))
	f.exec(fmt.Sprintf(`CREATE TABLE %[1]s.f (x int4, y text);
ALTER TABLE %[1]s.f REPLICA IDENTITY FULL;
INSERT INTO %[1]s.f SELECT g %% 20, CASE WHEN g %% 3 = 0 THEN NULL ELSE 'y' END FROM generate_series(1, 55) g`, f.schema))
}

// snapshotOf runs src until its snapshot is done and returns the reads of
// each table (by key, as keyText makes it) and the tables' descriptions.
func snapshotOf(t *testing.T, src *pgsource.Source) (map[string][]pipeline.Change, map[string]pipeline.Table) {
	t.Helper()
	col := newCollector()
	run := start(t, testCtx(t), src, "", col)
	run.wait("the snapshot", snapshotDone)
	require.ErrorIs(t, run.stop(), context.Canceled)
	reads := map[string][]pipeline.Change{}
	tables := map[string]pipeline.Table{}
	for _, b := range col.snapshot() {
		for _, c := range b.Changes {
			require.Equal(t, pipeline.Read, c.Op)
			reads[c.Table] = append(reads[c.Table], c)
		}
		for name, desc := range b.Tables {
			tables[name] = desc
		}
	}
	return reads, tables
}

// backfillResult is what a Backfill handed over.
type backfillResult struct {
	batches  []pipeline.Batch
	progress []int64
	total    int64
	err      error
}

func backfill(ctx context.Context, src *pgsource.Source, table, where string) backfillResult {
	var r backfillResult
	r.total, r.err = src.Backfill(ctx, pipeline.BackfillRequest{Table: table, Where: where}, func(_ context.Context, b pipeline.Batch) error {
		r.batches = append(r.batches, b)
		return nil
	}, func(n int64) { r.progress = append(r.progress, n) })
	return r
}

// keysWhere are the keys (columns joined by "|") of table's rows where
// cond holds, in the server's key order.
func (f *fixture) keysWhere(table, key, cond string) []string {
	f.t.Helper()
	rows, err := f.admin.Query(bg, fmt.Sprintf("SELECT concat_ws('|', %s) FROM %s.%s WHERE %s ORDER BY %s", key, f.schema, table, cond, key))
	require.NoError(f.t, err)
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(f.t, err)
	return keys
}

func keyText(c pipeline.Change, cols []string) string {
	parts := make([]string, len(cols))
	for i, k := range cols {
		parts[i] = fmt.Sprint(c.Key[k])
	}
	return strings.Join(parts, "|")
}

// checkBackfill checks a backfill's batches against the snapshot's reads
// and the rows the server selects: every change a Read of the table,
// exactly the keys wanted in key order, each equal to the snapshot's read
// of the row, batches of size rows but the last, described as in the
// snapshot, progress told after each batch.
func checkBackfill(t *testing.T, r backfillResult, table string, desc pipeline.Table, snap []pipeline.Change, want []string, size int) {
	t.Helper()
	require.NoError(t, r.err)
	byKey := map[string]pipeline.Change{}
	keyCols := desc.KeyColumns()
	for _, c := range snap {
		byKey[keyText(c, keyCols)] = c
	}
	var got []string
	var sum int64
	for i, b := range r.batches {
		require.True(t, b.Snapshot)
		require.Empty(t, b.Position)
		require.Equal(t, map[string]pipeline.Table{table: desc}, b.Tables)
		if i < len(r.batches)-1 {
			require.Len(t, b.Changes, size, "batch %d", i)
		} else {
			require.NotEmpty(t, b.Changes, "no empty batch")
			require.LessOrEqual(t, len(b.Changes), size)
		}
		for _, c := range b.Changes {
			k := keyText(c, keyCols)
			got = append(got, k)
			require.Equal(t, pipeline.Read, c.Op)
			require.Equal(t, table, c.Table)
			require.Empty(t, c.Position)
			require.True(t, c.CommitTime.IsZero())
			s, ok := byKey[k]
			require.True(t, ok, "row %s is in the snapshot", k)
			require.Equal(t, s.After, c.After, "row %s as the snapshot gave it", k)
			require.Equal(t, s.Key, c.Key)
		}
		sum += int64(len(b.Changes))
		require.Equal(t, sum, r.progress[i], "progress after batch %d", i)
	}
	require.Len(t, r.progress, len(r.batches))
	require.Equal(t, want, got)
	require.Equal(t, int64(len(want)), r.total)
}

// A backfill hands over the rows its WHERE selects, in key order, in
// batches of BatchSize, as the snapshot gave them.
func TestBackfill(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.backfillTables(2500)
	cfg := f.config("n", "c", "f")
	cfg.BatchSize = 1000
	src := f.source(cfg)
	snap, descs := snapshotOf(t, src)
	ctx := testCtx(t)
	n, c := f.schema+".n", f.schema+".c"

	r := backfill(ctx, src, n, "id % 3 = 0")
	checkBackfill(t, r, n, descs[n], snap[n], f.keysWhere("n", "id", "id % 3 = 0"), 1000)
	require.Len(t, r.batches, 1)
	require.Len(t, r.batches[0].Changes, 833)

	r = backfill(ctx, src, n, "")
	checkBackfill(t, r, n, descs[n], snap[n], f.keysWhere("n", "id", "true"), 1000)
	require.Len(t, r.batches, 3, "1000, 1000, 500")

	r = backfill(ctx, src, n, "id <= 2000")
	checkBackfill(t, r, n, descs[n], snap[n], f.keysWhere("n", "id", "id <= 2000"), 1000)
	require.Len(t, r.batches, 2, "a full last batch, and no empty one after it")

	r = backfill(ctx, src, n, "  id % 3 = 0 AND note IS NULL -- a comment\n")
	checkBackfill(t, r, n, descs[n], snap[n], f.keysWhere("n", "id", "id % 3 = 0 AND note IS NULL"), 1000)
	require.NotEmpty(t, r.batches)

	r = backfill(ctx, src, n, "id > 1000000")
	require.NoError(t, r.err)
	require.Empty(t, r.batches)
	require.Zero(t, r.total)

	r = backfill(ctx, src, c, "k2 % 3 = 0")
	checkBackfill(t, r, c, descs[c], snap[c], f.keysWhere("c", "k1, k2", "k2 % 3 = 0"), 1000)
	r = backfill(ctx, src, c, "")
	checkBackfill(t, r, c, descs[c], snap[c], f.keysWhere("c", "k1, k2", "true"), 1000)

	// Smaller batches: many pages of a WHERE, with a composite key.
	cfg2 := cfg
	cfg2.BatchSize = 100
	src2 := f.source(cfg2)
	r = backfill(ctx, src2, n, "id % 3 = 0")
	checkBackfill(t, r, n, descs[n], snap[n], f.keysWhere("n", "id", "id % 3 = 0"), 100)
	require.Len(t, r.batches, 9)
	r = backfill(ctx, src2, c, "k2 % 3 = 0 OR k1 = 'bZ'")
	checkBackfill(t, r, c, descs[c], snap[c], f.keysWhere("c", "k1, k2", "k2 % 3 = 0 OR k1 = 'bZ'"), 100)
}

// A table of REPLICA IDENTITY FULL without a key is read in ctid order:
// every row once, duplicates too, as the snapshot gave them.
func TestBackfillReplicaIdentityFull(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.backfillTables(10)
	cfg := f.config("f")
	cfg.BatchSize = 10
	src := f.source(cfg)
	snap, descs := snapshotOf(t, src)
	name := f.schema + ".f"
	require.Equal(t, []string{"x", "y"}, descs[name].KeyColumns())

	count := func(cs []pipeline.Change) map[string]int {
		m := map[string]int{}
		for _, c := range cs {
			require.Equal(t, c.After, c.Key)
			m[fmt.Sprint(c.After["x"], "|", c.After["y"])]++
		}
		return m
	}
	r := backfill(testCtx(t), src, name, "")
	require.NoError(t, r.err)
	require.Len(t, r.batches, 6)
	var all []pipeline.Change
	for _, b := range r.batches {
		require.Equal(t, descs[name], b.Tables[name])
		all = append(all, b.Changes...)
	}
	require.Len(t, all, 55)
	require.Equal(t, count(snap[name]), count(all))

	r = backfill(testCtx(t), src, name, "y IS NULL")
	require.NoError(t, r.err)
	require.EqualValues(t, 18, r.total)
}

// Backfill reads on connections of its own while Run streams and writers
// change the table: it ends, its rows are in key order and match the
// WHERE, the rows nobody changes are all there, and the stream is whole.
func TestBackfillWhileStreaming(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createTables()
	f.prefill(2500)
	cfg := f.config("a", "b")
	cfg.BatchSize = 100
	src := f.source(cfg)
	ctx := testCtx(t)

	col := newCollector()
	run := start(t, ctx, src, "", col)
	run.wait("the snapshot", snapshotDone)
	w := newWriters(f)
	w.afterMark.Store(true)
	w.start(ctx, 8, 1<<30)
	require.NoError(t, w.waitCommits(ctx, 16))

	// Between batches the backfill waits for more commits: the writers
	// and the stream go on while it reads.
	var batches []pipeline.Batch
	total, err := src.Backfill(ctx, pipeline.BackfillRequest{Table: f.schema + ".a", Where: "id % 2 = 0"}, func(ctx context.Context, b pipeline.Batch) error {
		batches = append(batches, b)
		return w.waitCommits(ctx, 2)
	}, nil)
	require.NoError(t, err)
	w.stop()
	run.wait("the fence transaction", sawTx("fence"))
	require.ErrorIs(t, run.stop(), context.Canceled)

	var n int64
	prev := int64(-1)
	seen := map[int64]bool{}
	for _, b := range batches {
		require.True(t, b.Snapshot)
		require.Empty(t, b.Position)
		for _, c := range b.Changes {
			n++
			require.Equal(t, pipeline.Read, c.Op)
			id, err := strconv.ParseInt(c.Key["id"].(string), 10, 64)
			require.NoError(t, err)
			require.Greater(t, id, prev, "key order")
			require.Zero(t, id%2)
			prev = id
			seen[id] = true
		}
	}
	require.Equal(t, n, total)
	for id := int64(102); id <= 2600; id += 2 {
		require.True(t, seen[id], "prefilled row %d", id)
	}
	require.Greater(t, len(batches), 12, "2500/2 prefilled rows, 100 a batch")
	checkStream(t, f, w, newModel(), col.snapshot())
}

// Where errors: a ';', what the server refuses (nothing handed over, the
// server's message quoted), a write in the read-only transaction, a WHERE
// that undoes the pagination; an unknown table lists the tables; a short
// name of a table of public is taken.
func TestBackfillRefuses(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.backfillTables(25)
	f.exec(fmt.Sprintf(`CREATE SEQUENCE %[1]s.s; CREATE TABLE %[1]s.side (x int);
CREATE FUNCTION %[1]s.w() RETURNS bool LANGUAGE sql AS 'INSERT INTO %[1]s.side VALUES (1) RETURNING true'`, f.schema))
	cfg := f.config("n", "c")
	cfg.BatchSize = 10
	src := f.source(cfg)
	ctx := testCtx(t)
	n := f.schema + ".n"

	for _, tc := range []struct{ where, says string }{
		{"id = 1; DROP TABLE " + n, "';'"},
		{"nope = 1", `column "nope" does not exist`},
		{"id = ", "syntax error"},
		{"id = 'x'", "invalid input syntax"},
		{fmt.Sprintf("nextval('%s.s') > 0", f.schema), "read-only transaction"},
		{fmt.Sprintf("%s.w()", f.schema), "read-only transaction"},
		{"$1 IS NULL", "parameter $1"},
	} {
		r := backfill(ctx, src, n, tc.where)
		require.ErrorIs(t, r.err, pgsource.ErrInvalidWhere, tc.where)
		require.ErrorContains(t, r.err, tc.says)
		require.ErrorContains(t, r.err, fmt.Sprintf("%q", strings.TrimSpace(tc.where)), "the error quotes the WHERE")
		require.Empty(t, r.batches, tc.where)
		require.Zero(t, r.total)
	}
	var side int
	require.NoError(t, f.admin.QueryRow(bg, fmt.Sprintf("SELECT count(*) FROM %s.side", f.schema)).Scan(&side))
	require.Zero(t, side, "nothing was written")

	// A WHERE that closes its parentheses would read the first rows again
	// and again: refused at the second batch.
	r := backfill(ctx, src, n, "id > 0) OR (true")
	require.ErrorIs(t, r.err, pgsource.ErrInvalidWhere)
	require.Len(t, r.batches, 1)
	require.EqualValues(t, 10, r.total)

	// A condition that fails on some row is the WHERE's fault too.
	r = backfill(ctx, src, n, "10 / (id - 15) IS NOT NULL")
	require.ErrorIs(t, r.err, pgsource.ErrInvalidWhere)
	require.ErrorContains(t, r.err, "division by zero")

	r = backfill(ctx, src, f.schema+".nope", "")
	require.ErrorIs(t, r.err, pgsource.ErrUnknownTable)
	require.ErrorContains(t, r.err, n+", "+f.schema+".c")
	r = backfill(ctx, src, "n", "")
	require.ErrorIs(t, r.err, pgsource.ErrUnknownTable, "n is public.n")

	// A table of public may be named as Config.Tables may.
	pub := "backfill_" + randHex(6)
	f.exec(fmt.Sprintf("CREATE TABLE public.%s (id int PRIMARY KEY); INSERT INTO public.%[1]s SELECT generate_series(1, 5)", pub))
	t.Cleanup(func() { f.exec("DROP TABLE public." + pub) })
	// Never Run: no slot nor publication to drop.
	src2 := f.source(pgsource.Config{DSN: f.dsn, Pipeline: "test_" + randHex(6), Tables: []string{pub}, Logger: f.logger})
	for _, name := range []string{pub, "public." + pub} {
		r = backfill(ctx, src2, name, "id > 2")
		require.NoError(t, r.err)
		require.EqualValues(t, 3, r.total)
		require.Equal(t, "public."+pub, r.batches[0].Changes[0].Table)
	}
}

// emit's error stops the backfill and is returned; so does ctx's end.
func TestBackfillStops(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.backfillTables(50)
	cfg := f.config("n")
	cfg.BatchSize = 10
	src := f.source(cfg)
	n := f.schema + ".n"

	boom := errors.New("boom")
	calls := 0
	total, err := src.Backfill(testCtx(t), pipeline.BackfillRequest{Table: n}, func(context.Context, pipeline.Batch) error {
		calls++
		if calls == 2 {
			return boom
		}
		return nil
	}, nil)
	require.ErrorIs(t, err, boom)
	require.Equal(t, 2, calls)
	require.EqualValues(t, 10, total, "the batch refused is not counted")

	ctx, cancel := context.WithCancel(testCtx(t))
	calls = 0
	total, err = src.Backfill(ctx, pipeline.BackfillRequest{Table: n, Where: "id > 5"}, func(context.Context, pipeline.Batch) error {
		calls++
		if calls == 2 {
			cancel()
		}
		return nil
	}, nil)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 2, calls)
	require.EqualValues(t, 20, total)
}
