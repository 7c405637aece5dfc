package cursorsource_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/cursorsource"
)

// backfillTables makes b (a key of one column, soft-deleted rows) and c
// (a composite key of a string and an int), with rows rows each.
func (f *fixture) backfillTables(rows int) {
	series := f.pick(fmt.Sprintf("generate_series(1, %d) AS s(g)", rows), fmt.Sprintf("(SELECT seq AS g FROM seq_1_to_%d) AS s", rows))
	f.exec("CREATE TABLE " + f.name("b") + ` (id bigint PRIMARY KEY, v bigint, note varchar(100), amount decimal(10,2),
		deleted boolean NOT NULL DEFAULT false, updated_at {ts} NOT NULL DEFAULT {now})`)
	f.exec("INSERT INTO " + f.name("b") + ` (id, v, note, amount, deleted)
		SELECT g, g % 7, CASE WHEN g % 5 = 0 THEN NULL ELSE CONCAT('note ', g) END, g * 1.25, g % 11 = 0 FROM ` + series)
	f.exec("CREATE TABLE " + f.name("c") + " (k1 varchar(10), k2 int, v bigint, PRIMARY KEY (k1, k2))")
	f.exec("INSERT INTO " + f.name("c") + ` (k1, k2, v)
		SELECT CASE g % 3 WHEN 0 THEN 'a' WHEN 1 THEN 'b' ELSE 'B' END, g, g FROM ` + series)
}

// keysWhere are the keys (columns joined by "|") of table's rows where
// cond holds, in the server's key order.
func (f *fixture) keysWhere(table, key, cond string) []string {
	f.t.Helper()
	rows, err := f.db.QueryContext(bg, fmt.Sprintf("SELECT CONCAT_WS('|', %s) FROM %s WHERE %s ORDER BY %s", key, f.name(table), cond, key))
	require.NoError(f.t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		require.NoError(f.t, rows.Scan(&k))
		out = append(out, k)
	}
	require.NoError(f.t, rows.Err())
	return out
}

func keyText(c pipeline.Change, cols []string) string {
	parts := make([]string, len(cols))
	for i, k := range cols {
		parts[i] = fmt.Sprint(c.Key[k])
	}
	return strings.Join(parts, "|")
}

type backfillResult struct {
	batches  []pipeline.Batch
	progress []int64
	total    int64
	err      error
}

func backfill(ctx context.Context, src *cursorsource.Source, table, where string) backfillResult {
	var r backfillResult
	r.total, r.err = src.Backfill(ctx, pipeline.BackfillRequest{Table: table, Where: where}, func(_ context.Context, b pipeline.Batch) error {
		r.batches = append(r.batches, b)
		return nil
	}, func(n int64) { r.progress = append(r.progress, n) })
	return r
}

// checkBackfill checks a backfill's batches: exactly the keys wanted, in
// key order, each change equal to Run's of the row (a Read, or a Delete of
// a soft-deleted row), batches of size changes but the last, described as
// Run's, progress told after each batch.
func checkBackfill(t *testing.T, r backfillResult, table string, desc pipeline.Table, run map[string]pipeline.Change, want []string, size int) {
	t.Helper()
	require.NoError(t, r.err)
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
			k := keyText(c, desc.KeyColumns())
			got = append(got, k)
			rc, ok := run[k]
			require.True(t, ok, "Run read row %s", k)
			require.Equal(t, rc, c, "row %s as Run read it", k)
		}
		sum += int64(len(b.Changes))
		require.Equal(t, sum, r.progress[i], "progress after batch %d", i)
	}
	require.Len(t, r.progress, len(r.batches))
	require.Equal(t, want, got)
	require.Equal(t, int64(len(want)), r.total)
}

// A backfill hands over the rows its WHERE selects, in key order, in
// batches of BatchSize, as Run reads them.
func testBackfill(t *testing.T, f *fixture) {
	const rows = 2500
	f.backfillTables(rows)
	b, c := f.name("b"), f.name("c")
	cfg := cursorsource.Config{
		Tables: []cursorsource.TableConfig{
			{Name: b, Cursor: "updated_at", SoftDelete: "deleted"},
			{Name: c, FullRefresh: true},
		},
		PollInterval: 10 * time.Millisecond, BatchSize: 1000, Lag: -1,
	}
	src := f.source(cfg)

	// What Run reads of each row, and how it describes the tables.
	run := start(t, src, "")
	byKey := map[string]map[string]pipeline.Change{b: {}, c: {}}
	descs := map[string]pipeline.Table{}
	collect := func(bs []pipeline.Batch) bool {
		for _, bt := range bs {
			for name, d := range bt.Tables {
				descs[name] = d
			}
			for _, ch := range bt.Changes {
				k := keyText(ch, descs[ch.Table].KeyColumns())
				if _, ok := byKey[ch.Table][k]; !ok {
					byKey[ch.Table][k] = ch
				}
			}
		}
		return len(byKey[b]) == rows && len(byKey[c]) == rows
	}
	run.wait("every row read", collect)
	run.stop()
	require.Equal(t, pipeline.Delete, byKey[b]["22"].Op, "a soft-deleted row")

	ctx := testCtx(t)
	r := backfill(ctx, src, b, "id % 3 = 0")
	checkBackfill(t, r, b, descs[b], byKey[b], f.keysWhere("b", "id", "id % 3 = 0"), 1000)
	require.Len(t, r.batches, 1)
	require.Len(t, r.batches[0].Changes, 833)
	var deletes int
	for _, ch := range r.batches[0].Changes {
		if ch.Op == pipeline.Delete {
			deletes++
			require.Nil(t, ch.After)
		} else {
			require.Equal(t, pipeline.Read, ch.Op)
		}
	}
	require.Equal(t, 833/11, deletes, "ids divisible by 33 are soft-deleted")

	r = backfill(ctx, src, b, "")
	checkBackfill(t, r, b, descs[b], byKey[b], f.keysWhere("b", "id", "1 = 1"), 1000)
	require.Len(t, r.batches, 3, "1000, 1000, 500")
	r = backfill(ctx, src, b, "id <= 2000")
	checkBackfill(t, r, b, descs[b], byKey[b], f.keysWhere("b", "id", "id <= 2000"), 1000)
	require.Len(t, r.batches, 2, "a full last batch, and no empty one after it")
	r = backfill(ctx, src, b, " id % 3 = 0 AND note IS NULL -- a comment\n")
	checkBackfill(t, r, b, descs[b], byKey[b], f.keysWhere("b", "id", "id % 3 = 0 AND note IS NULL"), 1000)
	require.NotEmpty(t, r.batches)
	r = backfill(ctx, src, b, "id > 1000000")
	require.NoError(t, r.err)
	require.Empty(t, r.batches)

	r = backfill(ctx, src, c, "k2 % 3 = 0")
	checkBackfill(t, r, c, descs[c], byKey[c], f.keysWhere("c", "k1, k2", "k2 % 3 = 0"), 1000)
	r = backfill(ctx, src, c, "")
	checkBackfill(t, r, c, descs[c], byKey[c], f.keysWhere("c", "k1, k2", "1 = 1"), 1000)

	// Smaller batches: many pages of a WHERE, with a composite key.
	cfg.BatchSize = 100
	src2 := f.source(cfg)
	r = backfill(ctx, src2, b, "id % 3 = 0")
	checkBackfill(t, r, b, descs[b], byKey[b], f.keysWhere("b", "id", "id % 3 = 0"), 100)
	require.Len(t, r.batches, 9)
	r = backfill(ctx, src2, c, "k2 % 3 = 0 OR k1 = 'b'")
	checkBackfill(t, r, c, descs[c], byKey[c], f.keysWhere("c", "k1, k2", "k2 % 3 = 0 OR k1 = 'b'"), 100)
	require.Greater(t, len(r.batches), 10)
}

// Backfill reads on a connection of its own while Run reads and a writer
// changes the table: it ends, its rows are in key order and match the
// WHERE, and the rows nobody changes are all there.
func testBackfillWhileReading(t *testing.T, f *fixture) {
	f.backfillTables(1500)
	b := f.name("b")
	src := f.source(cursorsource.Config{
		Tables:       []cursorsource.TableConfig{{Name: b, Cursor: "updated_at", SoftDelete: "deleted"}},
		PollInterval: 5 * time.Millisecond, BatchSize: 50, Lag: -1,
	})
	run := start(t, src, "")
	ctx := testCtx(t)

	// The writer says each write it made on wrote; between batches the
	// backfill waits for two more.
	var stop atomic.Bool
	wrote := make(chan struct{}, 1<<16)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := int64(0); !stop.Load(); i++ {
			id := 1_000_000 + i - i%2 // inserted, then updated
			q := "INSERT INTO " + b + " (id, v) VALUES (?, 0)"
			if i%2 == 1 {
				q = "UPDATE " + b + " SET v = v + 1, updated_at = {now} WHERE id = ?"
			}
			if _, err := f.db.ExecContext(ctx, f.sql(q), id); err != nil {
				errs <- err
				return
			}
			select {
			case wrote <- struct{}{}:
			default:
			}
		}
	})
	var batches []pipeline.Batch
	total, err := src.Backfill(ctx, pipeline.BackfillRequest{Table: b, Where: "id % 2 = 0"}, func(ctx context.Context, bt pipeline.Batch) error {
		batches = append(batches, bt)
		for range 2 {
			select {
			case <-wrote:
			case err := <-errs:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}, nil)
	stop.Store(true)
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
	require.NoError(t, err)
	run.wait("a batch of Run", func(bs []pipeline.Batch) bool { return len(bs) > 0 })
	run.stop()

	var n int64
	prev := int64(-1)
	seen := map[int64]bool{}
	for _, bt := range batches {
		for _, c := range bt.Changes {
			n++
			id, err := strconv.ParseInt(c.Key["id"].(string), 10, 64)
			require.NoError(t, err)
			require.Greater(t, id, prev, "key order")
			require.Zero(t, id%2)
			prev = id
			seen[id] = true
		}
	}
	require.Equal(t, n, total)
	for id := int64(2); id <= 1500; id += 2 {
		require.True(t, seen[id], "row %d", id)
	}
}

// Where errors: a ';', what the server refuses (nothing handed over, the
// server's message quoted), a write in the read-only transaction, a WHERE
// that undoes the pagination; an unknown table lists the tables.
func testBackfillRefuses(t *testing.T, f *fixture) {
	f.backfillTables(25)
	f.exec("CREATE TABLE " + f.name("side") + " (x int)")
	if f.pg {
		f.exec(fmt.Sprintf("CREATE FUNCTION %s() RETURNS bool LANGUAGE sql AS 'INSERT INTO %s VALUES (1) RETURNING true'", f.name("w"), f.name("side")))
	} else {
		f.exec(fmt.Sprintf("CREATE FUNCTION %s() RETURNS int MODIFIES SQL DATA BEGIN INSERT INTO %s VALUES (1); RETURN 1; END", f.name("w"), f.name("side")))
	}
	b := f.name("b")
	src := f.source(cursorsource.Config{
		Tables:    []cursorsource.TableConfig{{Name: b, Cursor: "updated_at"}, {Name: f.name("c"), FullRefresh: true}},
		BatchSize: 10,
	})
	ctx := testCtx(t)
	for _, tc := range []struct{ where, says string }{
		{"id = 1; DROP TABLE " + b, "';'"},
		{"nope = 1", f.pick(`column "nope" does not exist`, "Unknown column 'nope'")},
		{"id = ", f.pick("syntax error", "SQL syntax")},
		{f.name("w") + "()" + f.pick("", " = 1"), f.pick("read-only transaction", "READ ONLY transaction")},
	} {
		r := backfill(ctx, src, b, tc.where)
		require.ErrorIs(t, r.err, cursorsource.ErrInvalidWhere, tc.where)
		require.ErrorContains(t, r.err, tc.says)
		require.ErrorContains(t, r.err, fmt.Sprintf("%q", strings.TrimSpace(tc.where)), "the error quotes the WHERE")
		require.Empty(t, r.batches, tc.where)
		require.Zero(t, r.total)
	}
	var side int
	require.NoError(t, f.db.QueryRowContext(bg, "SELECT COUNT(*) FROM "+f.name("side")).Scan(&side))
	require.Zero(t, side, "nothing was written")

	// A WHERE that closes its parentheses would read the first rows again
	// and again: refused at the second batch.
	r := backfill(ctx, src, b, "id > 0) OR (1 = 1")
	require.ErrorIs(t, r.err, cursorsource.ErrInvalidWhere)
	require.Len(t, r.batches, 1)
	require.EqualValues(t, 10, r.total)

	r = backfill(ctx, src, f.name("nope"), "")
	require.ErrorIs(t, r.err, cursorsource.ErrUnknownTable)
	require.ErrorContains(t, r.err, b+", "+f.name("c"))

	// A bare name is in the URL's database (MariaDB): a table may be named
	// as changes name it or as the config does.
	if !f.pg {
		src := f.source(cursorsource.Config{Tables: []cursorsource.TableConfig{{Name: "b", Cursor: "updated_at"}}})
		for _, name := range []string{"b", b} {
			r := backfill(ctx, src, name, "id > 20")
			require.NoError(t, r.err)
			require.EqualValues(t, 5, r.total)
			require.Equal(t, b, r.batches[0].Changes[0].Table)
		}
	}
}

// emit's error stops the backfill and is returned; so does ctx's end.
func testBackfillStops(t *testing.T, f *fixture) {
	f.backfillTables(50)
	b := f.name("b")
	src := f.source(cursorsource.Config{Tables: []cursorsource.TableConfig{{Name: b, Cursor: "updated_at"}}, BatchSize: 10})

	boom := errors.New("boom")
	calls := 0
	total, err := src.Backfill(testCtx(t), pipeline.BackfillRequest{Table: b}, func(context.Context, pipeline.Batch) error {
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
	total, err = src.Backfill(ctx, pipeline.BackfillRequest{Table: b, Where: "id > 5"}, func(context.Context, pipeline.Batch) error {
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
