package sqlsink

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/pgsource"
)

// An UPDATE that changes a row's primary key, captured by pgsource from
// PostgreSQL's logical replication and applied by the sink: the
// destination ends equal to the source (the old key gone, the new one
// there), with the default replica identity (the server sends the old key
// only), with REPLICA IDENTITY FULL (the whole old row), and with a
// composite key.
func TestKeyChangeFromPostgresSource(t *testing.T) {
	t.Parallel()
	src := newKeySource(t, postgresURLOrSkip(t))
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		src.check(t, newTarget(t, postgresURLOrSkip(t)))
	})
	t.Run("MySQL", func(t *testing.T) {
		t.Parallel()
		src.check(t, newTarget(t, mysqlURLOrSkip(t)))
	})
}

// keySource is a source schema whose changes were captured once; each
// destination applies them.
type keySource struct {
	schema  string
	batches []pipeline.Batch
	// want: table → its rows as simpleRows or compositeRows read them.
	want map[string]map[string]string
}

// The source tables: d (default replica identity), f (REPLICA IDENTITY
// FULL), c (a composite key, default identity) and cf (a composite key,
// FULL).
var keyTables = map[string]string{
	"d":  `CREATE TABLE %[1]s.d (id int8 PRIMARY KEY, v text, n int4, p text)`,
	"f":  `CREATE TABLE %[1]s.f (id int8 PRIMARY KEY, v text, n int4, p text); ALTER TABLE %[1]s.f REPLICA IDENTITY FULL`,
	"c":  `CREATE TABLE %[1]s.c (a text, b int4, v text, PRIMARY KEY (a, b))`,
	"cf": `CREATE TABLE %[1]s.cf (a text, b int4, v text, PRIMARY KEY (a, b)); ALTER TABLE %[1]s.cf REPLICA IDENTITY FULL`,
}

func newKeySource(t *testing.T, base string) *keySource {
	ctx := t.Context()
	ks := &keySource{schema: randomName(), want: map[string]map[string]string{}}
	admin, err := pgx.Connect(ctx, base)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close(bg) })
	var level string
	require.NoError(t, admin.QueryRow(ctx, "SHOW wal_level").Scan(&level))
	if level != "logical" {
		t.Skipf("the server of SLUICE_TEST_POSTGRES has wal_level = %s: this test needs logical", level)
	}
	exec := func(q string) {
		t.Helper()
		_, err := admin.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	exec("CREATE SCHEMA " + ks.schema)
	t.Cleanup(func() {
		_, err := admin.Exec(bg, "DROP SCHEMA IF EXISTS "+ks.schema+" CASCADE")
		require.NoError(t, err)
	})
	var names []string
	for name, ddl := range keyTables {
		exec(fmt.Sprintf(ddl, ks.schema))
		names = append(names, ks.schema+"."+name)
	}
	slices.Sort(names)
	s := ks.schema
	for _, tb := range []string{"d", "f"} {
		exec(fmt.Sprintf(`INSERT INTO %s.%s (id, v, n) SELECT g, 'row ' || g, g FROM generate_series(1, 10) g`, s, tb))
	}
	for _, tb := range []string{"c", "cf"} {
		exec(fmt.Sprintf(`INSERT INTO %s.%s (a, b, v) SELECT 'x', g, 'row ' || g FROM generate_series(1, 10) g`, s, tb))
	}

	// The pipeline's own slot and publication, dropped at the end.
	cfg := pgsource.Config{DSN: base, Pipeline: "test_" + ks.schema, Tables: names, Logger: slog.New(slog.DiscardHandler)}
	t.Cleanup(func() { require.NoError(t, pgsource.Drop(bg, cfg)) })
	source, err := pgsource.New(cfg)
	require.NoError(t, err)
	var (
		mu      sync.Mutex
		changed = make(chan struct{})
	)
	emit := func(_ context.Context, b pipeline.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		ks.batches = append(ks.batches, b)
		close(changed)
		changed = make(chan struct{})
		return nil
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- source.Run(runCtx, "", emit) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			require.ErrorIs(t, <-done, context.Canceled)
		}
	}
	t.Cleanup(stop)
	wait := func(what string, cond func(pipeline.Batch) bool) {
		t.Helper()
		for {
			mu.Lock()
			ok := slices.ContainsFunc(ks.batches, cond)
			ch := changed
			mu.Unlock()
			if ok {
				return
			}
			select {
			case <-ch:
			case err := <-done:
				stopped = true
				t.Fatalf("the source returned (%v) before %s", err, what)
			case <-ctx.Done():
				t.Fatalf("still waiting for %s", what)
			}
		}
	}
	wait("the snapshot", func(b pipeline.Batch) bool { return strings.HasPrefix(b.Position, "snapshot-done:") })

	// Each table: a row moves to a new key; another moves, then changes
	// again under its new key, in one transaction; a third takes the key
	// the first left; one moves and moves back.
	for _, tb := range []string{"d", "f"} {
		exec(fmt.Sprintf(`UPDATE %s.%s SET id = id + 1000 WHERE id = 5`, s, tb))
		exec(fmt.Sprintf(`BEGIN; UPDATE %[1]s.%[2]s SET id = 2000, v = 'moved' WHERE id = 6; UPDATE %[1]s.%[2]s SET n = 66 WHERE id = 2000; COMMIT`, s, tb))
		exec(fmt.Sprintf(`UPDATE %s.%s SET id = 5, v = 'took 5' WHERE id = 7`, s, tb))
		exec(fmt.Sprintf(`BEGIN; UPDATE %[1]s.%[2]s SET id = 3000 WHERE id = 8; UPDATE %[1]s.%[2]s SET id = 8, n = 88 WHERE id = 3000; COMMIT`, s, tb))
	}
	// A large value, stored out of line (TOASTed), that a move leaves
	// alone: the server does not send it in the new row, and only REPLICA
	// IDENTITY FULL's old row has it (see pgsource's warning).
	exec(fmt.Sprintf(`UPDATE %s.f SET p = (SELECT string_agg(md5(g::text || random()::text), '') FROM generate_series(1, 4000) g) WHERE id = 4`, s))
	exec(fmt.Sprintf(`UPDATE %s.f SET id = 4000 WHERE id = 4`, s))
	for _, tb := range []string{"c", "cf"} {
		exec(fmt.Sprintf(`UPDATE %s.%s SET b = b + 1000 WHERE a = 'x' AND b = 5`, s, tb))
		exec(fmt.Sprintf(`UPDATE %s.%s SET a = 'y', v = 'moved' WHERE a = 'x' AND b = 6`, s, tb))
		exec(fmt.Sprintf(`UPDATE %s.%s SET b = 5 WHERE a = 'x' AND b = 7`, s, tb))
	}
	exec(fmt.Sprintf(`INSERT INTO %s.d (id, v) VALUES (9999, 'fence')`, s))
	wait("the fence", func(b pipeline.Batch) bool {
		return slices.ContainsFunc(b.Changes, func(c pipeline.Change) bool { return c.After["v"] == "fence" })
	})
	stop()

	// The source's side of the contract: Key is the old key, After the
	// new row; Before the old row under REPLICA IDENTITY FULL only.
	var moves int
	for _, b := range ks.batches {
		for _, c := range b.Changes {
			if c.Op != pipeline.Update || c.Key["id"] != "5" && c.Key["b"] != "5" {
				continue
			}
			moves++
			table := strings.TrimPrefix(c.Table, s+".")
			switch table {
			case "d", "f":
				require.Equal(t, pipeline.Row{"id": "5"}, c.Key, c.Table)
				require.Equal(t, "1005", c.After["id"], c.Table)
			case "c", "cf":
				require.Equal(t, pipeline.Row{"a": "x", "b": "5"}, c.Key, c.Table)
				require.Equal(t, "1005", c.After["b"], c.Table)
			}
			if table == "f" || table == "cf" {
				require.Equal(t, c.Key, keyOf(c.Before, c.Key), c.Table)
				require.Equal(t, "row 5", c.Before["v"], c.Table)
			} else {
				require.Nil(t, c.Before, c.Table)
			}
		}
	}
	require.Equal(t, 4, moves, "each table's first move")

	for tb := range keyTables {
		ks.want[tb] = ks.read(t, admin, tb)
	}
	return ks
}

func keyOf(row, key pipeline.Row) pipeline.Row {
	out := pipeline.Row{}
	for k := range key {
		out[k] = row[k]
	}
	return out
}

// read reads a source table as target.rows reads a destination's.
func (ks *keySource) read(t *testing.T, conn *pgx.Conn, table string) map[string]string {
	q := fmt.Sprintf(`SELECT id::text, 'v=' || coalesce(v, 'NULL') || ';n=' || coalesce(n::text, 'NULL') || ';p=' || coalesce(md5(p), 'NULL') FROM %s.%s`, ks.schema, table)
	if table == "c" || table == "cf" {
		q = fmt.Sprintf(`SELECT a || '/' || b, 'v=' || coalesce(v, 'NULL') FROM %s.%s`, ks.schema, table)
	}
	rows, err := conn.Query(t.Context(), q)
	require.NoError(t, err)
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		require.NoError(t, rows.Scan(&k, &v))
		out[k] = v
	}
	require.NoError(t, rows.Err())
	return out
}

// check applies the captured change sets to tg and compares its tables
// with the source's.
func (ks *keySource) check(t *testing.T, tg *target) {
	s := tg.sink(t, Config{CreateTables: true})
	for i, b := range ks.batches {
		cs := pipeline.ChangeSet{Pipeline: "p", Seq: int64(i + 1), Position: b.Position, Tables: b.Tables, Snapshot: b.Snapshot, Count: len(b.Changes), Staged: time.Unix(0, 0)}
		rej, err := s.Apply(bg, cs, b.Changes)
		require.NoError(t, err)
		require.Empty(t, rej)
	}
	for table, want := range ks.want {
		var got map[string]string
		if table == "c" || table == "cf" {
			got = tg.compositeRows(t, table)
		} else {
			got = tg.simpleRows(t, table)
		}
		require.Equal(t, want, got, "table %s", table)
	}
}

// simpleRows reads d or f of tg: "id" → "v=…;n=…;p=<md5>".
func (tg *target) simpleRows(t *testing.T, table string) map[string]string {
	rs, err := tg.db.Query("SELECT id, v, n, md5(p) FROM " + tg.quote(table))
	require.NoError(t, err)
	defer rs.Close()
	out := map[string]string{}
	for rs.Next() {
		var id string
		var v, n, p sql.NullString
		require.NoError(t, rs.Scan(&id, &v, &n, &p))
		str := func(s sql.NullString) string { return cmp.Or(s.String, "NULL") }
		out[id] = "v=" + str(v) + ";n=" + str(n) + ";p=" + str(p)
	}
	require.NoError(t, rs.Err())
	return out
}

// compositeRows reads c or cf of tg: "a/b" → "v=…".
func (tg *target) compositeRows(t *testing.T, table string) map[string]string {
	rs, err := tg.db.Query("SELECT a, b, v FROM " + tg.quote(table))
	require.NoError(t, err)
	defer rs.Close()
	out := map[string]string{}
	for rs.Next() {
		var a, b, v string
		require.NoError(t, rs.Scan(&a, &b, &v))
		out[a+"/"+b] = "v=" + v
	}
	require.NoError(t, rs.Err())
	return out
}
