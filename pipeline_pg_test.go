package sluice_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// pgTestDB is the test database, from SLUICE_TEST_POSTGRES; the test
// skips without it.
func pgTestDB(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("SLUICE_TEST_POSTGRES is not set: set it to a PostgreSQL URL (postgres://postgres@127.0.0.1:5432/test?sslmode=disable) with wal_level = logical to run the pipeline tests")
	}
	return dsn
}

// logicalDB is the test database, from SLUICE_TEST_POSTGRES, with a pool
// closed at the test's end; the test skips without it or when its
// wal_level is not logical.
func logicalDB(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	dsn := pgTestDB(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var level string
	require.NoError(t, pool.QueryRow(context.Background(), "SHOW wal_level").Scan(&level))
	if level != "logical" {
		t.Skipf("the test database has wal_level = %s: set it to logical (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL; .ci/run does)", level)
	}
	return dsn, pool
}

// dropSlotAtEnd drops pipeline name's slot and publication at the test's
// end (after the app stopped: register it before the app's Stop).
func dropSlotAtEnd(t *testing.T, pool *pgxpool.Pool, name string) {
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", "sluice_"+name)
		_, _ = pool.Exec(context.Background(), "DROP PUBLICATION IF EXISTS sluice_"+name)
	})
}

// ordersSource makes a schema holding an orders table (id, customer,
// total) with rows rows, dropped at the test's end, and names a pipeline
// after it.
func ordersSource(t *testing.T, pool *pgxpool.Pool, rows int) (schema, pipelineName string) {
	t.Helper()
	schema = pgSchema(t, pool, "sluice_src")
	_, err := pool.Exec(context.Background(), "CREATE TABLE "+schema+".orders (id bigint PRIMARY KEY, customer text NOT NULL, total numeric(12,2))")
	require.NoError(t, err)
	_, err = pool.Exec(context.Background(), "INSERT INTO "+schema+".orders SELECT g, 'c' || g % 10, g * 1.5 FROM generate_series(1, $1) g", rows)
	require.NoError(t, err)
	return schema, "pg" + strings.TrimPrefix(schema, "sluice_src_")
}

// pgSchema makes a schema for the test, dropped at its end.
func pgSchema(t *testing.T, pool *pgxpool.Pool, prefix string) string {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	_, err := pool.Exec(context.Background(), "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	})
	return schema
}

// withSearchPath is dsn with its search_path set to schema.
func withSearchPath(t *testing.T, dsn, schema string) string {
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// tableRows reads a table as text rows, ordered by id.
func tableRows(t *testing.T, pool *pgxpool.Pool, table string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT id::text || '|' || coalesce(customer, '-') || '|' || coalesce(total::text, '-') FROM "+table+" ORDER BY id")
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// PostgreSQL to PostgreSQL: 16 writers insert, update and delete rows, in
// single- and multi-row transactions, while the pipeline runs from an
// initial snapshot; the SQL destination ends equal to the source, and the
// hub destination gets every change.
func TestPipelinePostgresToPostgres(t *testing.T) {
	dsn, pool := logicalDB(t)
	ctx := context.Background()
	var err error
	src, name := ordersSource(t, pool, 300) // rows before the pipeline starts: the snapshot's
	dst := pgSchema(t, pool, "sluice_dst")
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "order-changes", Partitions: 2})
	app.Pipeline(name, sluice.PipelineConfig{
		Postgres: &sluice.PostgresSource{URL: dsn, Tables: []string{src + ".orders"}},
		Destinations: []sluice.PipelineDestination{
			{Name: "reporting", SQL: &sluice.SQLDestination{URL: withSearchPath(t, dsn, dst), CreateTables: true}},
			{Name: "events", Hub: "order-changes"},
		}})
	require.NoError(t, app.Start(ctx))
	dropSlotAtEnd(t, pool, name)
	t.Cleanup(func() { _ = app.Stop(context.Background()) })

	// 16 writers: each owns ids of its own, plus contended ones.
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 40 {
				id := int64(1000 + w*100 + i%20)
				shared := int64(1 + (w*7+i)%300)
				tx, err := pool.Begin(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				stmts := []string{
					fmt.Sprintf("INSERT INTO %s.orders VALUES (%d, 'w%d', %d) ON CONFLICT (id) DO UPDATE SET total = orders.total + 1", src, id, w, i),
					fmt.Sprintf("UPDATE %s.orders SET total = total + 1, customer = 'w%d' WHERE id = %d", src, w, shared),
				}
				if i%5 == 4 {
					stmts = append(stmts, fmt.Sprintf("DELETE FROM %s.orders WHERE id = %d", src, id-3))
				}
				if n, _ := rand.Int(rand.Reader, big.NewInt(3)); n.Int64() == 0 {
					stmts = stmts[:1] // a one-statement transaction
				}
				for _, s := range stmts {
					if _, err := tx.Exec(ctx, s); err != nil {
						_ = tx.Rollback(ctx)
						if strings.Contains(err.Error(), "deadlock") {
							goto next
						}
						t.Error(err)
						return
					}
				}
				if err := tx.Commit(ctx); err != nil && !strings.Contains(err.Error(), "deadlock") {
					t.Error(err)
					return
				}
			next:
			}
		})
	}
	wg.Wait()
	want := tableRows(t, pool, src+".orders")
	waitUntil(t, "the destination table equals the source", func() bool {
		var exists bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", dst+".orders").Scan(&exists))
		return exists && slicesEqual(tableRows(t, pool, dst+".orders"), want)
	})
	var st sluice.PipelineStatus
	waitUntil(t, "both destinations apply every change set", func() bool {
		st, err = app.PipelineStatus(ctx, name)
		require.NoError(t, err)
		return st.Destinations[0].Behind == 0 && st.Destinations[1].Behind == 0 && st.Destinations[0].Applied == st.Staged
	})
	require.True(t, strings.HasPrefix(st.Position, "lsn:") || strings.HasPrefix(st.Position, "snapshot-done:"), st.Position)
	require.NotNil(t, st.SourceLag, "a PostgreSQL source tells its slot's lag")
	require.GreaterOrEqual(t, st.SourceLag.Bytes, int64(0))
	require.Zero(t, st.Destinations[0].LagSeconds, "a destination with nothing to apply has no lag")
	// Each change set applied once: the recorded position is the last one.
	var recorded int64
	require.NoError(t, pool.QueryRow(ctx, "SELECT seq FROM "+dst+".sluice_pipeline_positions WHERE pipeline = $1 AND destination = 'reporting'", name).Scan(&recorded))
	require.Equal(t, st.Staged, recorded)
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// MariaDB to PostgreSQL: a table read by cursor (rows updated after the
// pipeline started, one soft-deleted) ends in a PostgreSQL table.
func TestPipelineMariaDBCursorToPostgres(t *testing.T) {
	dsn := pgTestDB(t)
	myURL := os.Getenv("SLUICE_TEST_MYSQL")
	if myURL == "" {
		t.Skip("SLUICE_TEST_MYSQL is not set: set it to a MariaDB URL (mysql://root@127.0.0.1:3306/test) to run the cursor pipeline test")
	}
	ctx := context.Background()
	u, err := url.Parse(myURL)
	require.NoError(t, err)
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	dbName := "sluice_test_" + hex.EncodeToString(b)
	admin, err := sql.Open("mysql", fmt.Sprintf("%s@tcp(%s)/", u.User.String(), u.Host))
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })
	_, err = admin.ExecContext(ctx, "CREATE DATABASE "+dbName)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+dbName) })
	my, err := sql.Open("mysql", fmt.Sprintf("%s@tcp(%s)/%s", u.User.String(), u.Host, dbName))
	require.NoError(t, err)
	t.Cleanup(func() { _ = my.Close() })
	_, err = my.ExecContext(ctx, "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, updated_at DATETIME(6) NOT NULL, deleted_at DATETIME(6) NULL)")
	require.NoError(t, err)
	for i := 1; i <= 20; i++ {
		_, err = my.ExecContext(ctx, "INSERT INTO customers VALUES (?, ?, NOW(6), NULL)", i, fmt.Sprint("customer ", i))
		require.NoError(t, err)
	}

	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	dst := pgSchema(t, pool, "sluice_dst")
	myDB := *u
	myDB.Path = "/" + dbName
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Pipeline("crm", sluice.PipelineConfig{
		SQL: &sluice.SQLSource{URL: myDB.String(), Lag: -1, PollInterval: 20 * time.Millisecond,
			Tables: []sluice.SQLSourceTable{{Name: "customers", Cursor: "updated_at", SoftDelete: "deleted_at"}}},
		Destinations: []sluice.PipelineDestination{{Name: "warehouse", SQL: &sluice.SQLDestination{URL: withSearchPath(t, dsn, dst), CreateTables: true}}}})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })

	_, err = my.ExecContext(ctx, "UPDATE customers SET name = CONCAT(name, ' (vip)'), updated_at = NOW(6) WHERE id <= 5")
	require.NoError(t, err)
	_, err = my.ExecContext(ctx, "UPDATE customers SET deleted_at = NOW(6), updated_at = NOW(6) WHERE id = 20")
	require.NoError(t, err)
	var want []string
	for i := 1; i < 20; i++ {
		name := fmt.Sprint("customer ", i)
		if i <= 5 {
			name += " (vip)"
		}
		want = append(want, fmt.Sprintf("%d|%s", i, name))
	}
	slices.Sort(want)
	waitUntil(t, "the PostgreSQL table has every customer but the deleted one", func() bool {
		var exists bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", dst+".customers").Scan(&exists))
		if !exists {
			return false
		}
		rows, err := pool.Query(ctx, "SELECT id::text || '|' || name FROM "+dst+".customers")
		require.NoError(t, err)
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		slices.Sort(got)
		return slicesEqual(got, want)
	})
}

// switchProxy forwards TCP connections to an address while it is up; Down
// drops every connection and refuses new ones (a database that went away),
// Up lets them through again.
type switchProxy struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	down  bool
	conns []net.Conn
	wg    sync.WaitGroup
}

func newSwitchProxy(t *testing.T, to string) *switchProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &switchProxy{ln: ln, to: to}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
		}
	})
	t.Cleanup(func() {
		p.Down()
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *switchProxy) Addr() string { return p.ln.Addr().String() }

func (p *switchProxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *switchProxy) Up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// One destination's database goes away while the source keeps changing:
// the other destination keeps up meanwhile, the one that is down fails,
// its breaker opens, and once its database is back it catches up by
// itself, in order, every change set applied once.
func TestPipelineDestinationDownCatchesUp(t *testing.T) {
	dsn, pool := logicalDB(t)
	ctx := context.Background()
	var err error
	src, name := ordersSource(t, pool, 0)
	up, down := pgSchema(t, pool, "sluice_dst"), pgSchema(t, pool, "sluice_dst")

	u, err := url.Parse(dsn)
	require.NoError(t, err)
	proxy := newSwitchProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = proxy.Addr()

	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Pipeline(name, sluice.PipelineConfig{
		Postgres: &sluice.PostgresSource{URL: dsn, Tables: []string{src + ".orders"}},
		Destinations: []sluice.PipelineDestination{
			{Name: "reporting", SQL: &sluice.SQLDestination{URL: withSearchPath(t, dsn, up), CreateTables: true}},
			{Name: "flaky", SQL: &sluice.SQLDestination{URL: withSearchPath(t, viaProxy.String(), down), CreateTables: true},
				RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond,
				Breaker: sluice.BreakerPolicy{ConsecutiveFailures: 3, CoolDown: 200 * time.Millisecond}},
		}})
	require.NoError(t, app.Start(ctx))
	dropSlotAtEnd(t, pool, name)
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	write := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			_, err := pool.Exec(ctx, fmt.Sprintf("INSERT INTO %s.orders VALUES (%d, 'c%d', %d) ON CONFLICT (id) DO UPDATE SET total = orders.total + 1", src, i%40, i, i))
			require.NoError(t, err)
			if i%7 == 6 {
				_, err := pool.Exec(ctx, fmt.Sprintf("DELETE FROM %s.orders WHERE id = %d", src, (i+13)%40))
				require.NoError(t, err)
			}
		}
	}
	equal := func(schema string) func() bool {
		return func() bool {
			var exists bool
			require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", schema+".orders").Scan(&exists))
			return exists && slicesEqual(tableRows(t, pool, schema+".orders"), tableRows(t, pool, src+".orders"))
		}
	}
	write(0, 50)
	waitUntil(t, "both destinations equal the source", func() bool { return equal(up)() && equal(down)() })

	proxy.Down()
	write(50, 200)
	waitUntil(t, "the destination that is up keeps up", equal(up))
	var st sluice.PipelineStatus
	waitUntil(t, "the destination that is down falls behind and its breaker opens", func() bool {
		st, err = app.PipelineStatus(ctx, name)
		require.NoError(t, err)
		return st.Destinations[0].Behind == 0 && st.Destinations[1].Behind > 0 && st.Destinations[1].Breaker != "closed"
	})
	require.Positive(t, st.Destinations[1].LagSeconds, "a destination behind has a lag")
	require.False(t, equal(down)(), "nothing reached the destination that is down")

	proxy.Up()
	write(200, 230)
	waitUntil(t, "the destination back up catches up by itself", func() bool { return equal(up)() && equal(down)() })
	waitUntil(t, "both have applied every change set", func() bool {
		st, err = app.PipelineStatus(ctx, name)
		require.NoError(t, err)
		return st.Destinations[0].Applied == st.Staged && st.Destinations[1].Applied == st.Staged
	})
	var recorded int64
	require.NoError(t, pool.QueryRow(ctx, "SELECT seq FROM "+down+".sluice_pipeline_positions WHERE pipeline = $1 AND destination = 'flaky'", name).Scan(&recorded))
	require.Equal(t, st.Staged, recorded)
}

// A PostgreSQL pipeline created through the API makes its slot and
// publication; deleting it drops them, so the database keeps no WAL for
// it.
func TestPipelineCreatedOnPostgresDropsItsSlotWhenDeleted(t *testing.T) {
	dsn, pool := logicalDB(t)
	ctx := context.Background()
	var err error
	src := pgSchema(t, pool, "sluice_src")
	_, err = pool.Exec(ctx, "CREATE TABLE "+src+".orders (id bigint PRIMARY KEY, total numeric(12,2))")
	require.NoError(t, err)
	name := "pg" + strings.TrimPrefix(src, "sluice_src_")
	slot := "sluice_" + name
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", slot)
		_, _ = pool.Exec(context.Background(), "DROP PUBLICATION IF EXISTS "+slot)
	})
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "order-changes", Partitions: 1})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	t.Setenv("SLUICE_TEST_ORDERS_DB", dsn)
	require.NoError(t, app.CreatePipeline(ctx, name, sluice.PipelineSpec{
		Postgres:     &sluice.PostgresSpec{URLEnv: "SLUICE_TEST_ORDERS_DB", Tables: []string{src + ".orders"}},
		Destinations: map[string]sluice.DestinationSpec{"events": {Hub: "order-changes"}}}))
	_, err = pool.Exec(ctx, "INSERT INTO "+src+".orders VALUES (1, 2.5)")
	require.NoError(t, err)
	waitUntil(t, "the insert reaches the hub", func() bool {
		lag, err := app.Lag(ctx, "order-changes", "")
		require.NoError(t, err)
		return lag == 1
	})
	count := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_publication WHERE pubname = $1)
			+ (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)`, slot).Scan(&n))
		return n
	}
	require.Equal(t, 2, count(), "its slot and publication")
	require.NoError(t, app.DeletePipeline(ctx, name))
	require.Zero(t, count(), "dropped with it")
}

// A partial backfill on PostgreSQL: rows a destination lost come back
// from the source's table (those the WHERE selects), while writes go on.
func TestPipelinePostgresBackfill(t *testing.T) {
	dsn, pool := logicalDB(t)
	ctx := context.Background()
	var err error
	src, name := ordersSource(t, pool, 500)
	dst := pgSchema(t, pool, "sluice_dst")
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Pipeline(name, sluice.PipelineConfig{BatchSize: 100,
		Postgres:     &sluice.PostgresSource{URL: dsn, Tables: []string{src + ".orders"}},
		Destinations: []sluice.PipelineDestination{{Name: "reporting", SQL: &sluice.SQLDestination{URL: withSearchPath(t, dsn, dst), CreateTables: true}}}})
	require.NoError(t, app.Start(ctx))
	dropSlotAtEnd(t, pool, name)
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	equal := func() bool {
		var exists bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", dst+".orders").Scan(&exists))
		return exists && slicesEqual(tableRows(t, pool, dst+".orders"), tableRows(t, pool, src+".orders"))
	}
	waitUntil(t, "the snapshot applied", equal)
	_, err = pool.Exec(ctx, "DELETE FROM "+dst+".orders WHERE id > 200") // the destination lost rows
	require.NoError(t, err)
	_, err = app.BackfillPipeline(ctx, name, pipeline.BackfillRequest{Table: src + ".orders", Where: "id > 200"})
	require.NoError(t, err)
	for i := range 20 { // the stream goes on meanwhile
		_, err = pool.Exec(ctx, fmt.Sprintf("UPDATE %s.orders SET total = total + 1 WHERE id = %d", src, 190+i*10))
		require.NoError(t, err)
	}
	var st sluice.PipelineStatus
	waitUntil(t, "the backfill is done", func() bool {
		st, err = app.PipelineStatus(ctx, name)
		require.NoError(t, err)
		return st.Backfill != nil && (st.Backfill.State == "done" || st.Backfill.State == "failed")
	})
	require.Equal(t, "done", st.Backfill.State, st.Backfill.Error)
	require.EqualValues(t, 300, st.Backfill.Rows)
	waitUntil(t, "the destination equals the source again", equal)

	_, err = app.BackfillPipeline(ctx, name, pipeline.BackfillRequest{Table: src + ".orders", Where: "no_such_column > 1"})
	require.NoError(t, err)
	waitUntil(t, "a bad WHERE fails the backfill", func() bool {
		st, err = app.PipelineStatus(ctx, name)
		require.NoError(t, err)
		return st.Backfill.State == "failed"
	})
	require.Contains(t, st.Backfill.Error, "no_such_column")
}
