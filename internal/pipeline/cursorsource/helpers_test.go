package cursorsource_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/cursorsource"
	"github.com/sluicehq/sluice/internal/testlog"
)

var bg = context.Background()

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testCtx ends a little before the test's deadline: what waits on it
// fails with a message instead of the test binary timing out.
func testCtx(t *testing.T) context.Context {
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-15*time.Second))
		t.Cleanup(cancel)
	}
	return ctx
}

// fixture is a fresh namespace (a PostgreSQL schema, a MariaDB database)
// on a test server, the test's connection to it, and a logger whose
// records are shown when the test fails.
type fixture struct {
	t      *testing.T
	pg     bool
	url    string // the source's URL
	ns     string // the schema or database
	db     *sql.DB
	logger *slog.Logger
}

type setupFunc func(t *testing.T) *fixture

func setupPostgres(t *testing.T) *fixture {
	t.Helper()
	u := os.Getenv("SLUICE_TEST_POSTGRES")
	if u == "" {
		t.Skip("SLUICE_TEST_POSTGRES is not set: set it to a PostgreSQL URL (like postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	cc, err := pgx.ParseConfig(u)
	require.NoError(t, err)
	f := &fixture{t: t, pg: true, url: u, ns: "cursorsource_" + randHex(6), db: stdlib.OpenDB(*cc)}
	t.Cleanup(func() { require.NoError(t, f.db.Close()) })
	f.exec("CREATE SCHEMA " + f.ns)
	t.Cleanup(func() {
		_, err := f.db.ExecContext(bg, "DROP SCHEMA IF EXISTS "+f.ns+" CASCADE")
		require.NoError(t, err)
	})
	f.logs()
	return f
}

func setupMySQL(t *testing.T) *fixture {
	t.Helper()
	u := os.Getenv("SLUICE_TEST_MYSQL")
	if u == "" {
		t.Skip("SLUICE_TEST_MYSQL is not set: set it to a MariaDB/MySQL URL (like mysql://root@127.0.0.1:3306/test) to run the MariaDB tests")
	}
	f := &fixture{t: t, ns: "sluice_test_" + randHex(6)}
	admin := mysqlDB(t, u)
	_, err := admin.ExecContext(bg, "CREATE DATABASE "+f.ns)
	require.NoError(t, err)
	require.NoError(t, admin.Close())
	t.Cleanup(func() {
		admin := mysqlDB(t, u)
		defer admin.Close()
		_, err := admin.ExecContext(bg, "DROP DATABASE IF EXISTS "+f.ns)
		require.NoError(t, err)
	})
	pu, err := url.Parse(u)
	require.NoError(t, err)
	pu.Path = "/" + f.ns
	f.url = pu.String()
	f.db = mysqlDB(t, f.url)
	t.Cleanup(func() { require.NoError(t, f.db.Close()) })
	f.logs()
	return f
}

// mysqlDB connects as the source does: the server's time zone, values as
// text.
func mysqlDB(t *testing.T, raw string) *sql.DB {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	host := u.Host
	if !strings.Contains(host, ":") {
		host += ":3306"
	}
	mc, err := mysql.ParseDSN("tcp(" + host + ")" + u.Path + "?" + u.RawQuery)
	require.NoError(t, err)
	if u.User != nil {
		mc.User = u.User.Username()
		mc.Passwd, _ = u.User.Password()
	}
	conn, err := mysql.NewConnector(mc)
	require.NoError(t, err)
	return sql.OpenDB(conn)
}

func (f *fixture) logs() {
	var buf *testlog.Buffer
	f.logger, buf = testlog.New(slog.LevelDebug)
	f.t.Cleanup(func() {
		if f.t.Failed() {
			f.t.Logf("source log:\n%s", buf.String())
		}
	})
}

// pick is pg's SQL on PostgreSQL, my's on MariaDB.
func (f *fixture) pick(pg, my string) string {
	if f.pg {
		return pg
	}
	return my
}

// sql rewrites ? placeholders as $n for PostgreSQL, and {ts} {now} {text:col}
// as the dialect's timestamp type, clock and column as text.
func (f *fixture) sql(q string) string {
	q = strings.ReplaceAll(q, "{ts}", f.pick("timestamptz", "DATETIME(6)"))
	q = strings.ReplaceAll(q, "{now}", f.pick("now()", "NOW(6)"))
	for {
		i := strings.Index(q, "{text:")
		if i < 0 {
			break
		}
		j := strings.IndexByte(q[i:], '}') + i
		q = q[:i] + f.pick(q[i+6:j]+"::text", q[i+6:j]) + q[j+1:]
	}
	if !f.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (f *fixture) exec(q string, args ...any) {
	f.t.Helper()
	_, err := f.db.ExecContext(bg, f.sql(q), args...)
	require.NoError(f.t, err, q)
}

// name is table's name in the fixture's namespace, as config and changes
// give it (and as SQL takes it: the names need no quotes).
func (f *fixture) name(table string) string { return f.ns + "." + table }

func (f *fixture) source(cfg cursorsource.Config) *cursorsource.Source {
	f.t.Helper()
	cfg.URL = cmpOr(cfg.URL, f.url)
	cfg.Logger = f.logger
	src, err := cursorsource.New(cfg)
	require.NoError(f.t, err)
	return src
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// textRows reads a table as text through the dialect's text casts (for
// PostgreSQL, whose driver would not give all types as the source does).
func (f *fixture) textRows(table string, cols []string, where string) map[string]pipeline.Row {
	f.t.Helper()
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = "{text:" + c + "}"
	}
	rows, err := f.db.QueryContext(bg, f.sql("SELECT "+strings.Join(sel, ", ")+" FROM "+f.name(table)+" WHERE "+where+" AND 1 = ?"), 1)
	require.NoError(f.t, err)
	defer rows.Close()
	out := map[string]pipeline.Row{}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		require.NoError(f.t, rows.Scan(dest...))
		row := pipeline.Row{}
		for i, c := range cols {
			if vals[i].Valid {
				row[c] = vals[i].String
			} else {
				row[c] = nil
			}
		}
		out[fmt.Sprint(row["id"])] = row
	}
	require.NoError(f.t, rows.Err())
	return out
}

// last is the cursor and id (as text) of the table's last row in cursor
// order.
func (f *fixture) last(table, cursor string) (string, string) {
	f.t.Helper()
	var c, id string
	err := f.db.QueryRowContext(bg, f.sql(fmt.Sprintf("SELECT {text:%s}, {text:id} FROM %s ORDER BY %s DESC, id DESC LIMIT 1", cursor, f.name(table), cursor))).Scan(&c, &id)
	require.NoError(f.t, err)
	return c, id
}

// progress is a table's progress in a position.
type progress struct {
	Cursor *string  `json:"cursor"`
	Key    []string `json:"key"`
}

func progressOf(t *testing.T, pos, table string) progress {
	t.Helper()
	rest, ok := strings.CutPrefix(pos, "cursor:")
	require.True(t, ok, pos)
	var p struct {
		Tables map[string]progress `json:"tables"`
	}
	require.NoError(t, json.Unmarshal([]byte(rest), &p), pos)
	return p.Tables[table]
}

// reached reports whether the last batch's position is at the table's
// last row.
func (f *fixture) reached(table, cursor string) func([]pipeline.Batch) bool {
	c, id := f.last(table, cursor)
	return func(bs []pipeline.Batch) bool {
		if len(bs) == 0 {
			return false
		}
		p := progressOf(f.t, bs[len(bs)-1].Position, f.name(table))
		return p.Cursor != nil && *p.Cursor == c && slices.Equal(p.Key, []string{id})
	}
}

// collector records the batches a Run hands over.
type collector struct {
	mu      sync.Mutex
	batches []pipeline.Batch
	changed chan struct{}
}

func newCollector() *collector { return &collector{changed: make(chan struct{})} }

func (c *collector) emit(_ context.Context, b pipeline.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches = append(c.batches, b)
	close(c.changed)
	c.changed = make(chan struct{})
	return nil
}

func (c *collector) snapshot() []pipeline.Batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.batches)
}

func changesOf(bs []pipeline.Batch) []pipeline.Change {
	var out []pipeline.Change
	for _, b := range bs {
		out = append(out, b.Changes...)
	}
	return out
}

// running is a Run going on in a goroutine.
type running struct {
	t      *testing.T
	col    *collector
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func start(t *testing.T, src *cursorsource.Source, after string) *running {
	ctx, cancel := context.WithCancel(testCtx(t))
	r := &running{t: t, col: newCollector(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = src.Run(ctx, after, r.col.emit)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait waits until cond holds of the batches recorded, failing the test
// if the Run returns first or the test runs out of time.
func (r *running) wait(what string, cond func([]pipeline.Batch) bool) {
	r.t.Helper()
	ctx := testCtx(r.t)
	for {
		r.col.mu.Lock()
		ok := cond(r.col.batches)
		ch := r.col.changed
		r.col.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-r.done:
			if cond(r.col.snapshot()) {
				return
			}
			r.t.Fatalf("Run returned (%v) before %s", r.err, what)
		case <-ctx.Done():
			r.t.Fatalf("still waiting for %s: %v", what, ctx.Err())
		}
	}
}

// stop cancels the Run and checks that it returned for that.
func (r *running) stop() {
	r.t.Helper()
	r.cancel()
	select {
	case <-r.done:
		require.ErrorIs(r.t, r.err, context.Canceled)
	case <-testCtx(r.t).Done():
		r.t.Fatal("Run did not return")
	}
}

// model applies changes: reads are upserts, deletes remove (idempotent, as
// a sink applies them).
type model map[string]pipeline.Row

func (m model) apply(t *testing.T, c pipeline.Change) {
	t.Helper()
	id := fmt.Sprint(c.Key["id"])
	switch c.Op {
	case pipeline.Read:
		require.Equal(t, c.Key["id"], c.After["id"], "key and row agree")
		m[id] = c.After
	case pipeline.Delete:
		require.Nil(t, c.After)
		delete(m, id)
	default:
		t.Fatalf("op %s", c.Op)
	}
}
