package sqlsink

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	testConformance(t, postgresURLOrSkip(t))
}

func TestMySQL(t *testing.T) {
	t.Parallel()
	testConformance(t, mysqlURLOrSkip(t))
}

// testConformance is what every destination does, on the server of base.
func testConformance(t *testing.T, base string) {
	t.Run("AppliesLikeTheModel", func(t *testing.T) { t.Parallel(); testModel(t, base) })
	t.Run("KeyOrder", func(t *testing.T) { t.Parallel(); testKeyOrder(t, base) })
	t.Run("CrashCancelled", func(t *testing.T) { t.Parallel(); testCrash(t, base, false) })
	t.Run("CrashKilled", func(t *testing.T) { t.Parallel(); testCrash(t, base, true) })
	t.Run("TwoSinks", func(t *testing.T) { t.Parallel(); testTwoSinks(t, base) })
	t.Run("Rejected", func(t *testing.T) { t.Parallel(); testRejected(t, base) })
	t.Run("Reordered", func(t *testing.T) { t.Parallel(); testReordered(t, base) })
	t.Run("CreateTables", func(t *testing.T) { t.Parallel(); testCreateTables(t, base) })
	t.Run("NoTable", func(t *testing.T) { t.Parallel(); testNoTable(t, base) })
	t.Run("Values", func(t *testing.T) { t.Parallel(); testValues(t, base) })
}

// randomChanges are n changes of keys 1..keys: full upserts, updates of
// some columns, deletes.
func randomChanges(r *rand.Rand, n, keys int) []pipeline.Change {
	var out []pipeline.Change
	for range n {
		id := 1 + r.IntN(keys)
		switch p := r.IntN(10); {
		case p < 2:
			out = append(out, del(id))
		case p < 3:
			out = append(out, upsert(pipeline.Update, id, pipeline.Row{"n": num(r.IntN(1000))}))
		default:
			ops := []pipeline.Op{pipeline.Insert, pipeline.Update, pipeline.Read}
			var name any = fmt.Sprintf("name %d ' \" ` \\ é", r.IntN(1000))
			if r.IntN(8) == 0 {
				name = nil
			}
			out = append(out, upsert(ops[r.IntN(3)], id, pipeline.Row{
				"name": name,
				"n":    num(r.IntN(1000) - 500),
				"doc":  map[string]any{"seq": num(r.IntN(10)), "tags": []any{"a", true, nil}},
			}))
		}
	}
	return out
}

func testModel(t *testing.T, base string) {
	tg := newTarget(t, base)
	s := tg.sink(t, Config{CreateTables: true, MaxBatchRows: 7})
	r := rand.New(rand.NewPCG(1, 2))
	want := model{}
	var sets [][]pipeline.Change
	for seq := int64(1); seq <= 20; seq++ {
		changes := randomChanges(r, 60, 40)
		sets = append(sets, changes)
		rej, err := s.Apply(bg, changeSet(seq, itemsTable), changes)
		require.NoError(t, err)
		require.Empty(t, rej)
		want.apply(changes)
		require.Equal(t, want, tg.items(t), "after change set %d", seq)
		require.Equal(t, seq, position(t, s))

		// Applied again (a crash before the pipeline learned it was):
		// nothing changes.
		rej, err = s.Apply(bg, changeSet(seq, itemsTable), changes)
		require.NoError(t, err)
		require.Empty(t, rej)
		require.Equal(t, want, tg.items(t), "after change set %d again", seq)
	}
	// An earlier change set after a later one: nothing.
	rej, err := s.Apply(bg, changeSet(5, itemsTable), sets[4])
	require.NoError(t, err)
	require.Empty(t, rej)
	require.Equal(t, want, tg.items(t))
	require.Equal(t, int64(20), position(t, s))

	// A replay: the destination lost its rows; without Reset applying
	// again does nothing, after Reset(0) (replay from change set 1) it
	// restores them.
	tg.exec(t, "DELETE FROM "+tg.quote("items"))
	_, err = s.Apply(bg, changeSet(1, itemsTable), sets[0])
	require.NoError(t, err)
	require.Empty(t, tg.items(t))
	require.NoError(t, s.Reset(bg, 0))
	require.Equal(t, int64(0), position(t, s))
	for i, changes := range sets {
		_, err := s.Apply(bg, changeSet(int64(i+1), itemsTable), changes)
		require.NoError(t, err)
	}
	require.Equal(t, want, tg.items(t))
	require.Equal(t, int64(20), position(t, s))

	// Reset never moves the position forward.
	require.NoError(t, s.Reset(bg, 7))
	require.Equal(t, int64(7), position(t, s))
	require.NoError(t, s.Reset(bg, 15))
	require.Equal(t, int64(7), position(t, s))
	require.Error(t, s.Reset(bg, -1))
	// Replaying from change set 8 applies it again.
	tg.exec(t, "DELETE FROM "+tg.quote("items"))
	_, err = s.Apply(bg, changeSet(8, itemsTable), sets[7])
	require.NoError(t, err)
	replayed := model{}
	replayed.apply(sets[7])
	require.Equal(t, replayed, tg.items(t))
	require.Equal(t, int64(8), position(t, s))

	// Another pipeline's change set is refused.
	cs := changeSet(21, itemsTable)
	cs.Pipeline = "other"
	_, err = s.Apply(bg, cs, sets[0])
	require.ErrorIs(t, err, ErrPipeline)
}

func testKeyOrder(t *testing.T, base string) {
	tg := newTarget(t, base)
	s := tg.sink(t, Config{CreateTables: true})
	doc := map[string]any{"a": num(1)}
	changes := []pipeline.Change{
		upsert(pipeline.Insert, 1, pipeline.Row{"name": "first", "n": num(1), "doc": doc}),
		upsert(pipeline.Insert, 2, pipeline.Row{"name": "two", "n": num(2), "doc": doc}),
		upsert(pipeline.Update, 1, pipeline.Row{"name": "second", "n": num(2), "doc": doc}),
		del(1),
		del(2),
		upsert(pipeline.Insert, 1, pipeline.Row{"name": "third", "n": num(3), "doc": doc}),
		// Some columns only: the others keep their values.
		upsert(pipeline.Update, 1, pipeline.Row{"n": num(4)}),
		upsert(pipeline.Insert, 3, pipeline.Row{"name": "three", "n": num(3), "doc": doc}),
		upsert(pipeline.Read, 3, pipeline.Row{"name": "three read", "n": num(33), "doc": doc}),
		upsert(pipeline.Insert, 5, pipeline.Row{"name": "five", "n": num(5), "doc": doc}),
	}
	// An update of the key moves the row: Key is the old key, After the
	// new row (as pgsource gives it without REPLICA IDENTITY FULL).
	move := upsert(pipeline.Update, 6, pipeline.Row{"name": "five moved", "n": num(6), "doc": doc})
	move.Key = pipeline.Row{"id": num(5)}
	changes = append(changes, move)
	// With the old row in Before, the new row takes what After lacks from
	// it (an unchanged TOASTed value).
	move = upsert(pipeline.Update, 7, pipeline.Row{"n": num(7)})
	move.Key = pipeline.Row{"id": num(6)}
	move.Before = pipeline.Row{"id": num(6), "name": "five moved", "n": num(6), "doc": doc}
	changes = append(changes, move)
	rej, err := s.Apply(bg, changeSet(1, itemsTable), changes)
	require.NoError(t, err)
	require.Empty(t, rej)
	require.Equal(t, model{
		"1": `name=third;n=4;doc={"a":1}`,
		"3": `name=three read;n=33;doc={"a":1}`,
		"7": `name=five moved;n=7;doc={"a":1}`,
	}, tg.items(t))
	want := model{}
	want.apply(changes)
	require.Equal(t, want, tg.items(t))
}

// testCrash stops a large change set's transaction in the middle (the
// caller's context cancelled, or the connection killed): nothing of it is
// visible, the position did not move, and applying it again works.
func testCrash(t *testing.T, base string, kill bool) {
	tg := newTarget(t, base)
	s := tg.sink(t, Config{CreateTables: true, MaxBatchRows: 100})
	first := []pipeline.Change{upsert(pipeline.Insert, 100000, pipeline.Row{"name": "before", "n": num(0)})}
	_, err := s.Apply(bg, changeSet(1, itemsTable), first)
	require.NoError(t, err)

	var changes []pipeline.Change
	for i := range 3000 {
		changes = append(changes, upsert(pipeline.Insert, i, pipeline.Row{"name": "row", "n": num(i), "doc": map[string]any{"i": num(i)}}))
	}
	changes = append(changes, del(100000))
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	statements := 0
	s.afterStatement = func(context.Context) {
		statements++
		if statements != 3 {
			return
		}
		if !kill {
			cancel()
			return
		}
		tg.killSinks(t)
	}
	_, err = s.Apply(ctx, changeSet(2, itemsTable), changes)
	require.Error(t, err)
	if !kill {
		require.ErrorIs(t, err, context.Canceled)
	}
	require.Equal(t, 3, statements, "the change set stopped after its third statement")
	s.afterStatement = nil

	require.Equal(t, model{"100000": "name=before;n=0;doc=NULL"}, tg.items(t))
	require.Equal(t, int64(1), position(t, s))

	rej, err := s.Apply(bg, changeSet(2, itemsTable), changes)
	require.NoError(t, err)
	require.Empty(t, rej)
	want := model{}
	want.apply(first)
	want.apply(changes)
	require.Equal(t, want, tg.items(t))
	require.Equal(t, int64(2), position(t, s))
}

// killSinks ends the sinks' connections from another one.
func (tg *target) killSinks(t testing.TB) {
	t.Helper()
	switch tg.kind {
	case postgresKind:
		n := tg.count(t, fmt.Sprintf("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '%s'", tg.app))
		require.NotZero(t, n)
	case mysqlKind:
		rows, err := tg.db.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()", tg.name)
		require.NoError(t, err)
		var ids []int64
		for rows.Next() {
			var id int64
			require.NoError(t, rows.Scan(&id))
			ids = append(ids, id)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		require.NotEmpty(t, ids)
		for _, id := range ids {
			tg.exec(t, fmt.Sprintf("KILL %d", id))
		}
	}
}

// testTwoSinks: two sinks of one destination apply the same change sets
// at once; a trigger counts every row written, so a change set applied
// twice would show.
func testTwoSinks(t *testing.T, base string) {
	tg := newTarget(t, base)
	tg.exec(t, "CREATE TABLE counter (n BIGINT NOT NULL)")
	tg.exec(t, "INSERT INTO counter VALUES (0)")
	tg.exec(t, "CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(40), n INT, doc TEXT)")
	switch tg.kind {
	case postgresKind:
		tg.exec(t, fmt.Sprintf(`CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE %s.counter SET n = n + 1; RETURN NEW; END $$`, tg.quote(tg.name)))
		tg.exec(t, "CREATE TRIGGER bump BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION bump()")
	case mysqlKind:
		tg.exec(t, "CREATE TRIGGER bump BEFORE INSERT ON items FOR EACH ROW UPDATE counter SET n = n + 1")
	}
	sinks := []*Sink{tg.sink(t, Config{}), tg.sink(t, Config{})}

	const sets, perSet = 40, 5
	var all [][]pipeline.Change
	for seq := range sets {
		var changes []pipeline.Change
		for i := range perSet {
			changes = append(changes, upsert(pipeline.Insert, seq*perSet+i+1, pipeline.Row{"name": "x", "n": num(seq)}))
		}
		// Every change set also writes row 0.
		changes = append(changes, upsert(pipeline.Update, 0, pipeline.Row{"name": "last", "n": num(seq)}))
		all = append(all, changes)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*sets)
	for _, s := range sinks {
		wg.Go(func() {
			var seen int64
			for i, changes := range all {
				seq := int64(i + 1)
				if _, err := s.Apply(bg, changeSet(seq, itemsTable), changes); err != nil {
					errs <- fmt.Errorf("apply %d: %w", seq, err)
					return
				}
				pos, err := s.Position(bg)
				if err != nil {
					errs <- err
					return
				}
				if pos < seq || pos < seen {
					errs <- fmt.Errorf("position %d after applying %d (and seeing %d)", pos, seq, seen)
				}
				seen = pos
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	want := model{}
	for _, changes := range all {
		want.apply(changes)
	}
	require.Equal(t, want, tg.items(t))
	require.Equal(t, int64(sets*(perSet+1)), tg.count(t, "SELECT n FROM counter"), "rows written: each change set once")
	require.Equal(t, int64(sets), position(t, sinks[0]))
}

func testRejected(t *testing.T, base string) {
	tg := newTarget(t, base)
	tg.exec(t, "CREATE TABLE strict (id BIGINT PRIMARY KEY, v VARCHAR(5) NOT NULL, n INT, c CHAR(3))")
	tg.exec(t, "INSERT INTO strict (id, v) VALUES (5, 'five')")
	s := tg.sink(t, Config{Tables: map[string]TableConfig{"public.items": {Name: "strict"}}})
	row := func(op pipeline.Op, id int, v, n, c any) pipeline.Change {
		return upsert(op, id, pipeline.Row{"v": v, "n": n, "c": c})
	}
	changes := []pipeline.Change{
		row(pipeline.Insert, 1, "ok", num(1), "abc"),
		row(pipeline.Insert, 2, nil, num(2), nil),            // NOT NULL
		row(pipeline.Insert, 3, "toolong", num(3), nil),      // varchar(5)
		row(pipeline.Insert, 4, "fine", "not a number", nil), // int
		row(pipeline.Insert, 6, "fine", num(6), "abcd"),      // char(3)
		row(pipeline.Insert, 7, "toolong", num(7), nil),      // refused, then
		row(pipeline.Update, 7, "ok7", num(7), nil),          // taken
		del(5),
		row(pipeline.Insert, 8, "ok8", num(8), "xy"),
	}
	desc := pipeline.Table{Name: "public.items", Columns: []pipeline.Column{
		{Name: "id", Type: "int8", Key: true}, {Name: "v", Type: "varchar(5)"}, {Name: "n", Type: "int4"}, {Name: "c", Type: "bpchar(3)"},
	}}
	rej, err := s.Apply(bg, changeSet(1, desc), changes)
	require.NoError(t, err)
	codes := map[dialectKind][]string{
		postgresKind: {"SQLSTATE 23502", "SQLSTATE 22001", "SQLSTATE 22P02", "SQLSTATE 22001", "SQLSTATE 22001"},
		mysqlKind:    {"Error 1048", "Error 1406", "Error 1366", "Error 1406", "Error 1406"},
	}[tg.kind]
	require.Len(t, rej, len(codes))
	for i, want := range []pipeline.Change{changes[1], changes[2], changes[3], changes[4], changes[5]} {
		require.Equal(t, want, rej[i].Change)
		require.Contains(t, rej[i].Reason, codes[i])
	}
	got := tg.rows(t, "strict", "id", "v", "n", "c")
	// PostgreSQL pads char(3).
	got["8"] = strings.Replace(got["8"], "c=xy ", "c=xy", 1)
	require.Equal(t, map[string]string{"1": "v=ok;n=1;c=abc", "7": "v=ok7;n=7;c=NULL", "8": "v=ok8;n=8;c=xy"}, got)
	require.Equal(t, int64(1), position(t, s))

	// Applied again: skipped, nothing returned.
	rej, err = s.Apply(bg, changeSet(1, desc), changes)
	require.NoError(t, err)
	require.Empty(t, rej)

	// A change without its key is refused before any statement.
	bad := pipeline.Change{Op: pipeline.Insert, Table: "public.items", After: pipeline.Row{"v": "x"}}
	rej, err = s.Apply(bg, changeSet(2, desc), []pipeline.Change{bad, row(pipeline.Insert, 9, "ok9", nil, nil)})
	require.NoError(t, err)
	require.Len(t, rej, 1)
	require.Contains(t, rej[0].Reason, "key column id")
	require.Equal(t, "v=ok9;n=NULL;c=NULL", tg.rows(t, "strict", "id", "v", "n", "c")["9"])
}

// testReordered: a delete moved earlier fails (a row still references
// the row deleted), so the change set is applied again in its order.
func testReordered(t *testing.T, base string) {
	tg := newTarget(t, base)
	tg.exec(t, "CREATE TABLE nodes (id BIGINT PRIMARY KEY, parent BIGINT REFERENCES nodes (id))")
	tg.exec(t, "INSERT INTO nodes VALUES (1, NULL), (3, NULL), (10, NULL)")
	tg.exec(t, "INSERT INTO nodes VALUES (2, 1)")
	s := tg.sink(t, Config{Tables: map[string]TableConfig{"public.items": {Name: "nodes"}}})
	changes := []pipeline.Change{del(10), upsert(pipeline.Update, 2, pipeline.Row{"parent": num(3)}), del(1)}
	rej, err := s.Apply(bg, changeSet(1), changes)
	require.NoError(t, err)
	require.Empty(t, rej)
	require.Equal(t, map[string]string{"2": "parent=3", "3": "parent=NULL"}, tg.rows(t, "nodes", "id", "parent"))
}

func testCreateTables(t *testing.T, base string) {
	tg := newTarget(t, base)
	odd := "odd \"tbl` x"
	oddCol := "col \"q` r"
	s := tg.sink(t, Config{CreateTables: true, Tables: map[string]TableConfig{
		"shop.orders": {Name: "orders_copy", Rename: map[string]string{"total": "amount"}, Columns: []string{"total", "placed"}},
		"shop.odd":    {Name: odd, Rename: map[string]string{"v": oddCol}},
	}})
	orders := pipeline.Table{Name: "shop.orders", Columns: []pipeline.Column{
		{Name: "tenant", Type: "character varying(40)", Key: true},
		{Name: "id", Type: "bigint", Key: true},
		{Name: "total", Type: "numeric(12,2)"},
		{Name: "placed", Type: "timestamp with time zone"},
		{Name: "note", Type: "text"},
	}}
	oddT := pipeline.Table{Name: "shop.odd", Columns: []pipeline.Column{{Name: "k", Type: "text", Key: true}, {Name: "v", Type: "mood"}}}
	order := func(tenant string, id int, total string) pipeline.Change {
		return pipeline.Change{Op: pipeline.Insert, Table: "shop.orders",
			Key:   pipeline.Row{"tenant": tenant, "id": num(id)},
			After: pipeline.Row{"tenant": tenant, "id": num(id), "total": total, "placed": "2024-05-01 10:00:00.25+02", "note": "dropped"}}
	}
	changes := []pipeline.Change{
		order("a", 1, "10.50"), order("b", 1, "20"), order("a", 1, "11.00"),
		{Op: pipeline.Insert, Table: "shop.odd", Key: pipeline.Row{"k": "x"}, After: pipeline.Row{"k": "x", "v": "happy"}},
	}
	cs := changeSet(1, orders, oddT)
	rej, err := s.Apply(bg, cs, changes)
	require.NoError(t, err)
	require.Empty(t, rej)

	var keys, types []string
	switch tg.kind {
	case postgresKind:
		keys = tg.strings(t, `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = 'orders_copy'::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`)
		types = tg.strings(t, `SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'orders_copy'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`)
		require.Equal(t, []string{"tenant character varying(40)", "id bigint", "amount numeric(12,2)", "placed timestamp with time zone"}, types)
	case mysqlKind:
		keys = tg.strings(t, `SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders_copy' AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`)
		types = tg.strings(t, `SELECT CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE) FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'orders_copy' ORDER BY ORDINAL_POSITION`)
		require.Equal(t, []string{"tenant varchar(40)", "id bigint(20)", "amount decimal(12,2)", "placed datetime(6)"}, types)
	}
	require.Equal(t, []string{"tenant", "id"}, keys)
	require.Equal(t, map[string]string{"a": "id=1;amount=11.00", "b": "id=1;amount=20.00"}, tg.rows(t, "orders_copy", "tenant", "id", "amount"))
	placed := tg.strings(t, "SELECT "+map[dialectKind]string{
		postgresKind: "to_char(placed AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')",
		mysqlKind:    "DATE_FORMAT(placed, '%Y-%m-%d %H:%i:%s.%f')",
	}[tg.kind]+" FROM orders_copy WHERE tenant = 'a'")
	require.True(t, strings.HasPrefix(placed[0], "2024-05-01 08:00:00.25"), placed[0])
	require.Equal(t, map[string]string{"x": oddCol + "=happy"}, tg.rows(t, odd, "k", oddCol))
}

func (tg *target) strings(t testing.TB, q string) []string {
	t.Helper()
	rows, err := tg.db.Query(q)
	require.NoError(t, err, q)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

func testNoTable(t *testing.T, base string) {
	tg := newTarget(t, base)
	s := tg.sink(t, Config{})
	_, err := s.Apply(bg, changeSet(1, itemsTable), []pipeline.Change{upsert(pipeline.Insert, 1, pipeline.Row{"name": "x"})})
	require.ErrorIs(t, err, ErrNoTable)
	require.Contains(t, err.Error(), "CreateTables")
	require.Equal(t, int64(0), position(t, s))

	// A column the destination lacks is an error too, naming it.
	tg.exec(t, "CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(40))")
	_, err = s.Apply(bg, changeSet(1, itemsTable), []pipeline.Change{upsert(pipeline.Insert, 1, pipeline.Row{"name": "x", "n": num(1)})})
	require.ErrorIs(t, err, ErrSchema)
	require.Contains(t, err.Error(), "no column n")

	// A table dropped after the sink described it.
	tg.exec(t, "ALTER TABLE items ADD COLUMN n INT")
	_, err = s.Apply(bg, changeSet(1, itemsTable), []pipeline.Change{upsert(pipeline.Insert, 1, pipeline.Row{"name": "x", "n": num(1)})})
	require.NoError(t, err)
	tg.exec(t, "DROP TABLE items")
	_, err = s.Apply(bg, changeSet(2, itemsTable), []pipeline.Change{upsert(pipeline.Insert, 1, pipeline.Row{"name": "x", "n": num(1)})})
	require.ErrorIs(t, err, ErrNoTable)
	require.Equal(t, int64(1), position(t, s))
}

// testValues: PostgreSQL's text forms of booleans, timestamps, bytea and
// JSON reach the destination's columns.
func testValues(t *testing.T, base string) {
	tg := newTarget(t, base)
	s := tg.sink(t, Config{CreateTables: true})
	desc := pipeline.Table{Name: "public.vals", Columns: []pipeline.Column{
		{Name: "id", Type: "uuid", Key: true},
		{Name: "b", Type: "bool"},
		{Name: "ts", Type: "timestamptz"},
		{Name: "bin", Type: "bytea"},
		{Name: "doc", Type: "json"},
		{Name: "f", Type: "float8"},
		{Name: "d", Type: "date"},
		{Name: "e", Type: "mood"},
	}}
	id := "6f1c8e1a-5d0b-4a53-9f5e-0a3a2d1c9b7e"
	c := pipeline.Change{Op: pipeline.Read, Table: "public.vals", Key: pipeline.Row{"id": id}, After: pipeline.Row{
		"id": id, "b": "t", "ts": "2024-01-02 03:04:05.123456+05:30", "bin": `\x00ff41`,
		"doc": `{"a": [1, 2]}`, "f": num(2), "d": "2024-02-29", "e": "sad",
	}}
	c2 := c
	c2.Key = pipeline.Row{"id": "00000000-0000-0000-0000-000000000000"}
	c2.After = pipeline.Row{"id": "00000000-0000-0000-0000-000000000000", "b": false, "f": json.Number("1.5e3")}
	rej, err := s.Apply(bg, changeSet(1, desc), []pipeline.Change{c, c2})
	require.NoError(t, err)
	require.Empty(t, rej)
	var q string
	switch tg.kind {
	case postgresKind:
		q = `SELECT concat_ws('|', b::text, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), encode(bin, 'hex'), doc::text, f, d, e) FROM vals ORDER BY id DESC`
	case mysqlKind:
		q = `SELECT CONCAT_WS('|', IF(b, 'true', 'false'), DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f'), HEX(bin), doc, f, d, e) FROM vals ORDER BY id DESC`
	}
	got := tg.strings(t, q)
	require.Len(t, got, 2)
	parts := strings.Split(got[0], "|")
	require.Equal(t, "true", parts[0])
	require.Equal(t, "2024-01-01 21:34:05.123456", parts[1])
	require.Equal(t, "00ff41", strings.ToLower(parts[2]))
	require.Equal(t, `{"a":[1,2]}`, normJSON(t, parts[3]))
	require.Equal(t, "2", parts[4])
	require.Equal(t, "2024-02-29", parts[5])
	require.Equal(t, "sad", parts[6])
	parts = strings.Split(got[1], "|")
	require.Equal(t, []string{"false", "1500"}, parts[:2])
}
