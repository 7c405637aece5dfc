package cursorsource_test

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/cursorsource"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	exercise(t, setupPostgres)
}

func TestMariaDB(t *testing.T) {
	t.Parallel()
	exercise(t, setupMySQL)
}

// exercise is the conformance suite every database runs.
func exercise(t *testing.T, setup setupFunc) {
	t.Run("ConcurrentWriters", func(t *testing.T) { t.Parallel(); testConcurrentWriters(t, setup(t)) })
	t.Run("SharedCursor", func(t *testing.T) { t.Parallel(); testSharedCursor(t, setup(t)) })
	t.Run("Restart", func(t *testing.T) { t.Parallel(); testRestart(t, setup(t)) })
	t.Run("LateCommit", func(t *testing.T) { t.Parallel(); testLateCommit(t, setup(t), time.Second) })
	t.Run("LateCommitWithoutLag", func(t *testing.T) { t.Parallel(); testLateCommit(t, setup(t), -1) })
	t.Run("FullRefresh", func(t *testing.T) { t.Parallel(); testFullRefresh(t, setup(t)) })
	t.Run("DeleteCheck", func(t *testing.T) { t.Parallel(); testDeleteCheck(t, setup(t)) })
	t.Run("Errors", func(t *testing.T) { t.Parallel(); testErrors(t, setup(t)) })
	t.Run("Backfill", func(t *testing.T) { t.Parallel(); testBackfill(t, setup(t)) })
	t.Run("BackfillWhileReading", func(t *testing.T) { t.Parallel(); testBackfillWhileReading(t, setup(t)) })
	t.Run("BackfillRefuses", func(t *testing.T) { t.Parallel(); testBackfillRefuses(t, setup(t)) })
	t.Run("BackfillStops", func(t *testing.T) { t.Parallel(); testBackfillStops(t, setup(t)) })
}

const tableT = `CREATE TABLE %s (id bigint PRIMARY KEY, v bigint NOT NULL, note varchar(100), deleted boolean NOT NULL DEFAULT false,
	updated_at {ts} NOT NULL DEFAULT {now})`

var colsT = []string{"id", "v", "note", "deleted", "updated_at"}

// Eight writers insert, update and soft-delete rows while the source
// reads: applied in order, the changes give the table's live rows.
func testConcurrentWriters(t *testing.T, f *fixture) {
	f.exec(fmt.Sprintf(tableT, f.name("t")))
	src := f.source(cursorsource.Config{
		Tables:       []cursorsource.TableConfig{{Name: f.name("t"), Cursor: "updated_at", SoftDelete: "deleted"}},
		PollInterval: 10 * time.Millisecond, BatchSize: 25,
		// Autocommitted writes take their cursor value when they start: a
		// lag of 2s tolerates commits up to 2s late on a busy machine.
		Lag: 2 * time.Second,
	})
	r := start(t, src, "")

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			if err := write(t.Context(), f, w, 40); err != nil {
				errs <- fmt.Errorf("writer %d: %w", w, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	r.wait("the last row", f.reached("t", "updated_at"))
	r.stop()

	m := model{}
	for _, c := range changesOf(r.col.snapshot()) {
		m.apply(t, c)
	}
	require.Equal(t, map[string]pipeline.Row(f.textRows("t", colsT, "NOT deleted")), map[string]pipeline.Row(m))
	for _, b := range r.col.snapshot() {
		require.False(t, b.Snapshot)
		require.Equal(t, colsT, columnNames(b.Tables[f.name("t")]))
		require.Equal(t, []string{"id"}, b.Tables[f.name("t")].KeyColumns())
	}
}

func columnNames(t pipeline.Table) []string {
	var out []string
	for _, c := range t.Columns {
		out = append(out, c.Name)
	}
	return out
}

// write makes n changes to rows of its own, each in a transaction of its
// own.
func write(ctx context.Context, f *fixture, w, n int) error {
	rnd := mrand.New(mrand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	var live []int64
	next := int64(w) * 1_000_000
	for range n {
		var q string
		var args []any
		switch k := rnd.IntN(10); {
		case k < 4 || len(live) == 0:
			next++
			live = append(live, next)
			q, args = "INSERT INTO "+f.name("t")+" (id, v, note, updated_at) VALUES (?, 0, ?, {now})", []any{next, "new " + strconv.Itoa(rnd.IntN(100))}
		case k < 8:
			var note any = "upd " + strconv.Itoa(rnd.IntN(100))
			if k == 7 {
				note = nil
			}
			q, args = "UPDATE "+f.name("t")+" SET v = v + 1, note = ?, updated_at = {now} WHERE id = ?", []any{note, live[rnd.IntN(len(live))]}
		default:
			j := rnd.IntN(len(live))
			q, args = "UPDATE "+f.name("t")+" SET deleted = true, updated_at = {now} WHERE id = ?", []any{live[j]}
			live = slices.Delete(live, j, j+1)
		}
		if _, err := f.db.ExecContext(ctx, f.sql(q), args...); err != nil {
			return err
		}
	}
	return nil
}

// Many rows share each cursor value (an integer version here) across
// small batches: each is read once, in (cursor, key) order.
func testSharedCursor(t *testing.T, f *fixture) {
	f.exec("CREATE TABLE " + f.name("s") + " (id bigint PRIMARY KEY, ver bigint NOT NULL, name varchar(20))")
	insert := func(from, to int, ver int) {
		for id := from; id <= to; id++ {
			f.exec("INSERT INTO "+f.name("s")+" (id, ver, name) VALUES (?, ?, ?)", id, ver, "n"+strconv.Itoa(id))
		}
	}
	insert(1, 40, 1)
	insert(41, 60, 2)
	insert(61, 75, 1) // later keys, same cursor
	src := f.source(cursorsource.Config{
		Tables:       []cursorsource.TableConfig{{Name: f.name("s"), Cursor: "ver"}},
		PollInterval: 10 * time.Millisecond, BatchSize: 7,
	})
	r := start(t, src, "")
	r.wait("the first 75 rows", f.reached("s", "ver"))
	f.exec("UPDATE " + f.name("s") + " SET ver = 3, name = 'again' WHERE id % 10 = 0")
	r.wait("the updates", f.reached("s", "ver"))
	r.stop()

	type read struct{ ver, id int }
	var got []read
	for _, c := range changesOf(r.col.snapshot()) {
		require.Equal(t, pipeline.Read, c.Op)
		ver, _ := strconv.Atoi(c.After["ver"].(string))
		id, _ := strconv.Atoi(c.Key["id"].(string))
		got = append(got, read{ver, id})
	}
	var want []read
	for id := 1; id <= 75; id++ {
		ver := 1
		if id > 40 && id <= 60 {
			ver = 2
		}
		want = append(want, read{ver, id})
	}
	slices.SortFunc(want, func(a, b read) int { return cmpRead(a.ver, a.id, b.ver, b.id) })
	for id := 10; id <= 70; id += 10 {
		want = append(want, read{3, id})
	}
	require.Equal(t, want, got, "every row once, in (cursor, key) order; the updated rows again")
}

func cmpRead(av, ai, bv, bi int) int {
	if av != bv {
		return av - bv
	}
	return ai - bi
}

// A Run cut short and resumed from its last position hands over the rest
// of every table: nothing again, nothing missing.
func testRestart(t *testing.T, f *fixture) {
	tables := []string{"r", "r2"}
	for _, name := range tables {
		f.exec("CREATE TABLE " + f.name(name) + " (id bigint PRIMARY KEY, updated_at {ts} NOT NULL)")
	}
	// Ten rows a second, in 2020: far behind the safety lag.
	add := func(from, to int) {
		for _, name := range tables {
			for id := from; id <= to; id++ {
				f.exec("INSERT INTO "+f.name(name)+" (id, updated_at) VALUES (?, ?)", id, fmt.Sprintf("2020-01-01 00:00:%02d", id/10))
			}
		}
	}
	add(1, 60)
	cfg := cursorsource.Config{
		Tables: []cursorsource.TableConfig{
			{Name: f.name("r"), Cursor: "updated_at"},
			{Name: f.name("r2"), Cursor: "updated_at"},
		},
		PollInterval: 10 * time.Millisecond, BatchSize: 9,
	}
	r1 := start(t, f.source(cfg), "")
	r1.wait("three batches", func(bs []pipeline.Batch) bool { return len(bs) >= 3 })
	r1.stop()
	first := r1.col.snapshot()
	after := first[len(first)-1].Position
	for _, name := range tables {
		require.NotNil(t, progressOf(t, after, f.name(name)).Cursor, "the position holds %s's progress", name)
	}

	add(61, 80)
	r2 := start(t, f.source(cfg), after)
	reachedR, reachedR2 := f.reached("r", "updated_at"), f.reached("r2", "updated_at")
	r2.wait("the last rows", func(bs []pipeline.Batch) bool { return reachedR(bs) && reachedR2(bs) })
	r2.stop()

	ids := map[string][]string{}
	for _, b := range append(first, r2.col.snapshot()...) {
		for _, c := range b.Changes {
			require.Contains(t, b.Tables, c.Table)
			ids[c.Table] = append(ids[c.Table], c.Key["id"].(string))
		}
	}
	var want []string
	for id := 1; id <= 80; id++ {
		want = append(want, strconv.Itoa(id))
	}
	for _, name := range tables {
		require.Equal(t, want, ids[f.name(name)], "each row of %s once, in order, across the restart", name)
	}
}

// A transaction that takes its cursor value before a later one commits,
// but commits after the source read the later one: with the safety lag
// its row is still read (as long as it commits within the lag of its
// cursor value); without, it is skipped for good.
func testLateCommit(t *testing.T, f *fixture, lag time.Duration) {
	f.exec("CREATE TABLE " + f.name("l") + " (id bigint PRIMARY KEY, updated_at {ts} NOT NULL, tag varchar(20))")
	src := f.source(cursorsource.Config{
		Tables:       []cursorsource.TableConfig{{Name: f.name("l"), Cursor: "updated_at"}},
		PollInterval: 5 * time.Millisecond, Lag: lag,
	})
	var polls atomic.Int64
	cursorsource.SetAfterPoll(src, func() { polls.Add(1) })
	r := start(t, src, "")
	seen := func(id string) func([]pipeline.Batch) bool {
		return func(bs []pipeline.Batch) bool {
			return slices.ContainsFunc(changesOf(bs), func(c pipeline.Change) bool { return c.Key["id"] == id })
		}
	}

	late, err := f.db.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	defer late.Rollback() //nolint:errcheck // committed below, unless the test fails
	_, err = late.ExecContext(t.Context(), f.sql("INSERT INTO "+f.name("l")+" VALUES (1, {now}, 'late')"))
	require.NoError(t, err)
	var cursor string
	require.NoError(t, late.QueryRowContext(t.Context(), f.sql("SELECT {text:updated_at} FROM "+f.name("l")+" WHERE id = 1")).Scan(&cursor))
	f.exec("INSERT INTO " + f.name("l") + " VALUES (2, {now}, 'early')")

	if lag < 0 {
		// The trap: the source reads the early row, then the late one
		// commits below it.
		r.wait("the early row", seen("2"))
		require.NoError(t, late.Commit())
		f.exec("INSERT INTO " + f.name("l") + " VALUES (3, {now}, 'fence')")
		r.wait("the fence", seen("3"))
		require.False(t, seen("1")(r.col.snapshot()), "without a lag the late row is skipped")
		return
	}
	// Let the source read at least once after the early row committed.
	p := polls.Load()
	eventually(t, "two polls", func() bool { return polls.Load() >= p+2 })
	var within bool
	require.NoError(t, f.db.QueryRowContext(t.Context(), f.sql(f.pick(
		"SELECT ?::timestamptz > now() - ?::interval",
		"SELECT CAST(? AS DATETIME(6)) > NOW(6) - INTERVAL ? MICROSECOND")),
		cursor, f.pick(fmt.Sprintf("%d microseconds", lag.Microseconds()), strconv.FormatInt(lag.Microseconds(), 10))).Scan(&within))
	require.NoError(t, late.Commit())
	r.wait("the early row", seen("2"))
	if !within {
		t.Skipf("the machine was too slow: the late transaction committed more than the lag (%s) after its cursor value", lag)
	}
	got := changesOf(r.col.snapshot())
	require.Equal(t, "1", got[0].Key["id"], "the late row is read, before the early one")
	require.Equal(t, "2", got[1].Key["id"])
}

// eventually waits until cond holds, asking every few milliseconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := testCtx(t)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("still waiting for %s: %v", what, ctx.Err())
		}
	}
}

// A full-refresh table hands over its rows on every pass, and rows gone
// since the last pass as deletes.
func testFullRefresh(t *testing.T, f *fixture) {
	f.exec("CREATE TABLE " + f.name("f") + " (id bigint PRIMARY KEY, name varchar(20))")
	for id := 1; id <= 20; id++ {
		f.exec("INSERT INTO "+f.name("f")+" VALUES (?, ?)", id, "n"+strconv.Itoa(id))
	}
	src := f.source(cursorsource.Config{
		Tables:       []cursorsource.TableConfig{{Name: f.name("f"), FullRefresh: true}},
		PollInterval: 5 * time.Millisecond, BatchSize: 7,
	})
	r := start(t, src, "")
	m := model{}
	applied := 0
	matches := func(want map[string]pipeline.Row) func([]pipeline.Batch) bool {
		return func(bs []pipeline.Batch) bool {
			for _, c := range changesOf(bs)[applied:] {
				m.apply(t, c)
				applied++
			}
			return len(m) == len(want) && fmt.Sprint(map[string]pipeline.Row(m)) == fmt.Sprint(want)
		}
	}
	cols := []string{"id", "name"}
	r.wait("the first pass", matches(f.textRows("f", cols, "true")))
	f.exec("DELETE FROM " + f.name("f") + " WHERE id IN (3, 15)")
	f.exec("UPDATE " + f.name("f") + " SET name = 'changed' WHERE id = 5")
	f.exec("INSERT INTO " + f.name("f") + " VALUES (21, 'new')")
	r.wait("the changes", matches(f.textRows("f", cols, "true")))
	r.stop()

	var deleted []string
	for _, c := range changesOf(r.col.snapshot()) {
		if c.Op == pipeline.Delete {
			deleted = append(deleted, c.Key["id"].(string))
		}
	}
	slices.Sort(deleted)
	require.Equal(t, []string{"15", "3"}, slices.Compact(deleted), "only the rows removed come as deletes")
}

// Run refuses tables it cannot read correctly, saying why.
func testErrors(t *testing.T, f *fixture) {
	f.exec("CREATE TABLE " + f.name("nopk") + " (id bigint, updated_at {ts})")
	f.exec("CREATE TABLE " + f.name("odd") + " (id bigint PRIMARY KEY, flag boolean, doc " + f.pick("jsonb", "blob") + ")")
	run := func(tc cursorsource.TableConfig, after string) error {
		src := f.source(cursorsource.Config{Tables: []cursorsource.TableConfig{tc}})
		return src.Run(t.Context(), after, func(context.Context, pipeline.Batch) error { return nil })
	}
	err := run(cursorsource.TableConfig{Name: f.name("missing"), Cursor: "updated_at"}, "")
	require.ErrorIs(t, err, cursorsource.ErrTableNotFound)
	require.ErrorContains(t, err, f.name("missing"))
	err = run(cursorsource.TableConfig{Name: f.name("nopk"), Cursor: "updated_at"}, "")
	require.ErrorIs(t, err, cursorsource.ErrNoPrimaryKey)
	require.ErrorContains(t, err, "ADD PRIMARY KEY")
	err = run(cursorsource.TableConfig{Name: f.name("odd"), Cursor: "updated_at"}, "")
	require.ErrorIs(t, err, cursorsource.ErrColumnNotFound)
	require.ErrorContains(t, err, `"updated_at"`)
	err = run(cursorsource.TableConfig{Name: f.name("odd"), Cursor: "id", SoftDelete: "gone"}, "")
	require.ErrorIs(t, err, cursorsource.ErrColumnNotFound)
	require.ErrorContains(t, err, "SoftDelete")
	for _, col := range []string{"flag", "doc"} {
		err = run(cursorsource.TableConfig{Name: f.name("odd"), Cursor: col}, "")
		require.ErrorIs(t, err, cursorsource.ErrCursorType, col)
		require.ErrorContains(t, err, col)
	}
	require.ErrorIs(t, run(cursorsource.TableConfig{Name: f.name("odd"), Cursor: "id"}, "lsn:0/0"), cursorsource.ErrBadPosition)
	require.ErrorIs(t, run(cursorsource.TableConfig{Name: f.name("odd"), Cursor: "id"}, "cursor:{"), cursorsource.ErrBadPosition)
	// A bare name is in the URL's database (MariaDB) or schema public.
	if !f.pg {
		f.exec("INSERT INTO " + f.name("odd") + " (id) VALUES (1)")
		src := f.source(cursorsource.Config{Tables: []cursorsource.TableConfig{{Name: "odd", Cursor: "id"}}})
		ctx, cancel := context.WithCancel(t.Context())
		err := src.Run(ctx, "", func(context.Context, pipeline.Batch) error { cancel(); return nil })
		require.ErrorIs(t, err, context.Canceled)
	}
}
