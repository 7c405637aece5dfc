package pgsource_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/pgsource"
)

func noEmit(t *testing.T) pipeline.Emit {
	return func(context.Context, pipeline.Batch) error {
		t.Error("nothing should be handed over")
		return nil
	}
}

func TestConfigIsValidated(t *testing.T) {
	t.Parallel()
	good := pgsource.Config{DSN: "postgres://u@localhost/db", Pipeline: "orders", Tables: []string{"orders"}}
	for name, change := range map[string]func(*pgsource.Config){
		"no DSN":          func(c *pgsource.Config) { c.DSN = "" },
		"bad DSN":         func(c *pgsource.Config) { c.DSN = "postgres://u@localhost:notaport/db" },
		"no pipeline":     func(c *pgsource.Config) { c.Pipeline = " " },
		"no tables":       func(c *pgsource.Config) { c.Tables = nil },
		"empty table":     func(c *pgsource.Config) { c.Tables = []string{"public."} },
		"twice":           func(c *pgsource.Config) { c.Tables = []string{"orders", "public.orders"} },
		"negative batch":  func(c *pgsource.Config) { c.BatchSize = -1 },
		"negative wait":   func(c *pgsource.Config) { c.MaxWait = -1 },
		"negative status": func(c *pgsource.Config) { c.StandbyTimeout = -1 },
	} {
		cfg := good
		change(&cfg)
		_, err := pgsource.New(cfg)
		require.ErrorIs(t, err, pgsource.ErrInvalidConfig, name)
	}
	src, err := pgsource.New(good)
	require.NoError(t, err)
	require.Equal(t, "sluice_orders", src.Slot())

	good.Pipeline = "Orders-EU.2026 ünï"
	src, err = pgsource.New(good)
	require.NoError(t, err)
	require.Equal(t, "sluice_orders_eu_2026__n_", src.Slot())

	good.Pipeline = strings.Repeat("x", 100)
	src, err = pgsource.New(good)
	require.NoError(t, err)
	require.Len(t, src.Slot(), 63)
}

func TestBadPosition(t *testing.T) {
	t.Parallel()
	src, err := pgsource.New(pgsource.Config{DSN: "postgres://u@localhost/db", Pipeline: "p", Tables: []string{"t"}})
	require.NoError(t, err)
	for _, after := range []string{"16/B374D848", "lsn:", "lsn:zz/1", "snapshot:0/1:0", "snapshot:0/1:a:3", "snapshot-done:1"} {
		require.ErrorIs(t, src.Run(bg, after, noEmit(t)), pgsource.ErrBadPosition, after)
	}
}

// Each setup problem fails Run with its error, saying how to fix it, and
// before anything is created.
func TestSetupErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.exec(fmt.Sprintf(`CREATE TABLE %[1]s.nopk (x int);
		CREATE TABLE %[1]s.nothing (id int PRIMARY KEY); ALTER TABLE %[1]s.nothing REPLICA IDENTITY NOTHING;
		CREATE TABLE %[1]s.ok (id int PRIMARY KEY);
		CREATE VIEW %[1]s.v AS SELECT 1 AS x`, f.schema))
	for _, tc := range []struct {
		table string
		err   error
		hint  string
	}{
		{"missing", pgsource.ErrTableNotFound, "does not exist"},
		{"OK", pgsource.ErrTableNotFound, "case-sensitive"},
		{"v", pgsource.ErrTableNotFound, "is a view"},
		{"nopk", pgsource.ErrNoPrimaryKey, "ADD PRIMARY KEY (<columns>); or have PostgreSQL log whole old rows: ALTER TABLE"},
		{"nothing", pgsource.ErrNoPrimaryKey, `."nothing" REPLICA IDENTITY DEFAULT;`},
	} {
		cfg := f.config("ok", tc.table)
		src := f.source(cfg)
		err := src.Run(testCtx(t), "", noEmit(t))
		require.ErrorIs(t, err, tc.err, tc.table)
		require.ErrorContains(t, err, tc.hint)
		var n int
		require.NoError(t, f.admin.QueryRow(bg, "SELECT count(*) FROM pg_publication WHERE pubname = $1", src.Slot()).Scan(&n))
		require.Zero(t, n, "no publication for %s", tc.table)
	}
}

// A role without REPLICATION gets ErrNoReplicationRight, with the ALTER
// ROLE that fixes it.
func TestNoReplicationRight(t *testing.T) {
	t.Parallel()
	f := setup(t)
	role := "sluice_norepl_" + randHex(4)
	f.exec("CREATE ROLE " + role + " LOGIN NOREPLICATION")
	t.Cleanup(func() { f.exec("DROP ROLE " + role) })
	u, err := url.Parse(f.dsn)
	require.NoError(t, err)
	u.User = url.User(role)
	f.exec(fmt.Sprintf("CREATE TABLE %s.ok (id int PRIMARY KEY)", f.schema))
	cfg := f.config("ok")
	cfg.DSN = u.String()
	err = f.source(cfg).Run(testCtx(t), "", noEmit(t))
	require.ErrorIs(t, err, pgsource.ErrNoReplicationRight)
	require.ErrorContains(t, err, "ALTER ROLE "+role+" WITH REPLICATION")
}

// Run against a server whose wal_level is not logical gets ErrNotLogical.
// The other tests need logical, so this one runs only when
// SLUICE_TEST_POSTGRES names another server.
func TestNotLogical(t *testing.T) {
	t.Parallel()
	dsn := dsnOrSkip(t)
	conn := connect(t, dsn)
	var level string
	require.NoError(t, conn.QueryRow(bg, "SHOW wal_level").Scan(&level))
	if level == "logical" {
		t.Skip("wal_level is logical on the server of SLUICE_TEST_POSTGRES: point it at a server with wal_level = replica to run this test")
	}
	src, err := pgsource.New(pgsource.Config{DSN: dsn, Pipeline: "test_" + randHex(6), Tables: []string{"anything"}})
	require.NoError(t, err)
	err = src.Run(testCtx(t), "", noEmit(t))
	require.ErrorIs(t, err, pgsource.ErrNotLogical)
	require.ErrorContains(t, err, "ALTER SYSTEM SET wal_level = logical;")
}

// A table of REPLICA IDENTITY FULL without a primary key is read with
// every column as its key; an existing publication is set to the
// configured tables; Drop removes the slot and the publication.
func TestFullIdentityPublicationAndDrop(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.exec(fmt.Sprintf(`CREATE TABLE %[1]s.full (x int, y jsonb); ALTER TABLE %[1]s.full REPLICA IDENTITY FULL;
		INSERT INTO %[1]s.full VALUES (1, '{"a": 1}');
		CREATE TABLE %[1]s.other (id int PRIMARY KEY)`, f.schema))
	cfg := f.config("full")
	src := f.source(cfg)
	pub := pgx.Identifier{src.Slot()}.Sanitize()
	f.exec(fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s.other WITH (publish = 'insert')", pub, f.schema))

	ctx := testCtx(t)
	col := newCollector()
	run := start(t, ctx, src, "", col)
	run.wait("the snapshot", snapshotDone)
	f.exec(fmt.Sprintf(`UPDATE %[1]s.full SET y = '{"a": 2}'; INSERT INTO %[1]s.other VALUES (1); DELETE FROM %[1]s.full`, f.schema))
	run.wait("the delete", func(bs []pipeline.Batch) bool {
		return slices.ContainsFunc(bs, func(b pipeline.Batch) bool {
			return slices.ContainsFunc(b.Changes, func(c pipeline.Change) bool { return c.Op == pipeline.Delete })
		})
	})
	require.ErrorIs(t, run.stop(), context.Canceled)

	var changes []pipeline.Change
	for _, b := range col.snapshot() {
		changes = append(changes, b.Changes...)
		for name, desc := range b.Tables {
			require.Equal(t, f.schema+".full", name)
			require.Equal(t, []pipeline.Column{{Name: "x", Type: "int4", Key: true}, {Name: "y", Type: "jsonb", Key: true}}, desc.Columns)
		}
	}
	table := f.schema + ".full"
	require.Len(t, changes, 3, "the other table's insert is not read")
	require.Equal(t, pipeline.Change{Op: pipeline.Read, Table: table, Key: pipeline.Row{"x": "1", "y": `{"a": 1}`},
		After: pipeline.Row{"x": "1", "y": `{"a": 1}`}, Position: changes[0].Position}, changes[0])
	require.Equal(t, pipeline.Update, changes[1].Op)
	require.Equal(t, pipeline.Row{"x": "1", "y": `{"a": 1}`}, changes[1].Key, "the old row's key")
	require.Equal(t, pipeline.Row{"x": "1", "y": `{"a": 1}`}, changes[1].Before)
	require.Equal(t, pipeline.Row{"x": "1", "y": `{"a": 2}`}, changes[1].After)
	require.Equal(t, pipeline.Delete, changes[2].Op)
	require.Equal(t, pipeline.Row{"x": "1", "y": `{"a": 2}`}, changes[2].Before)

	var tables []string
	rows, err := f.admin.Query(bg, "SELECT tablename FROM pg_publication_tables WHERE pubname = $1", src.Slot())
	require.NoError(t, err)
	tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"full"}, tables)

	require.NoError(t, pgsource.Drop(ctx, cfg))
	var n int
	require.NoError(t, f.admin.QueryRow(bg, `SELECT (SELECT count(*) FROM pg_publication WHERE pubname = $1)
		+ (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)`, src.Slot()).Scan(&n))
	require.Zero(t, n)
	_, err = src.Lag(ctx)
	require.ErrorIs(t, err, pgsource.ErrNoSlot)
}

// REPLICA IDENTITY USING INDEX: the index's columns are the key.
func TestIdentityUsingIndex(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.exec(fmt.Sprintf(`CREATE TABLE %[1]s.ui (id int PRIMARY KEY, code text NOT NULL, n int);
		CREATE UNIQUE INDEX ui_code ON %[1]s.ui (code); ALTER TABLE %[1]s.ui REPLICA IDENTITY USING INDEX ui_code;
		INSERT INTO %[1]s.ui VALUES (1, 'one', 0)`, f.schema))
	src := f.source(f.config("ui"))
	col := newCollector()
	run := start(t, testCtx(t), src, "", col)
	run.wait("the snapshot", snapshotDone)
	f.exec(fmt.Sprintf(`UPDATE %[1]s.ui SET code = 'uno', n = 1 WHERE id = 1`, f.schema))
	run.wait("the update", func(bs []pipeline.Batch) bool { return len(bs) == 2 })
	require.ErrorIs(t, run.stop(), context.Canceled)
	bs := col.snapshot()
	require.Equal(t, []string{"code"}, bs[0].Tables[f.schema+".ui"].KeyColumns())
	require.Equal(t, pipeline.Row{"code": "one"}, bs[0].Changes[0].Key)
	require.Equal(t, []string{"code"}, bs[1].Tables[f.schema+".ui"].KeyColumns())
	c := bs[1].Changes[0]
	require.Equal(t, pipeline.Update, c.Op)
	require.Equal(t, pipeline.Row{"code": "one"}, c.Key, "the old key")
	require.Equal(t, pipeline.Row{"id": "1", "code": "uno", "n": "1"}, c.After)
	require.Nil(t, c.Before)
}
