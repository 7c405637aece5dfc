package sqlsink

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
)

var bg = context.Background()

// postgresURLOrSkip is the test database, from SLUICE_TEST_POSTGRES.
func postgresURLOrSkip(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SLUICE_TEST_POSTGRES")
	if u == "" {
		t.Skip("SLUICE_TEST_POSTGRES is not set: set it to a PostgreSQL URL (like postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	return u
}

// mysqlURLOrSkip is the test server, from SLUICE_TEST_MYSQL.
func mysqlURLOrSkip(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SLUICE_TEST_MYSQL")
	if u == "" {
		t.Skip("SLUICE_TEST_MYSQL is not set: set it to a MariaDB/MySQL URL (like mysql://root@127.0.0.1:3306/test) to run the MariaDB tests")
	}
	return u
}

func randomName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "sluice_test_" + hex.EncodeToString(b)
}

// target is a destination of its own for a test: a fresh PostgreSQL
// schema or MariaDB database, dropped at the end, and the test's own
// connection to it.
type target struct {
	kind dialectKind
	// url is the sink's URL: its default schema (search_path) or
	// database is the fresh one.
	url  string
	name string // the schema or database
	app  string // PostgreSQL: the sinks' application_name
	db   *sql.DB
}

// newTarget makes a fresh destination on the server of base.
func newTarget(t testing.TB, base string) *target {
	t.Helper()
	kind, err := dialectOf(base)
	require.NoError(t, err)
	tg := &target{kind: kind, name: randomName()}
	u, err := url.Parse(base)
	require.NoError(t, err)
	switch kind {
	case postgresKind:
		admin, err := pgx.Connect(bg, base)
		require.NoError(t, err)
		_, err = admin.Exec(bg, "CREATE SCHEMA "+pgx.Identifier{tg.name}.Sanitize())
		require.NoError(t, admin.Close(bg))
		require.NoError(t, err)
		t.Cleanup(func() {
			conn, err := pgx.Connect(bg, base)
			require.NoError(t, err)
			defer conn.Close(bg)
			_, err = conn.Exec(bg, "DROP SCHEMA IF EXISTS "+pgx.Identifier{tg.name}.Sanitize()+" CASCADE")
			require.NoError(t, err)
		})
		tg.app = tg.name
		q := u.Query()
		q.Set("search_path", tg.name)
		q.Set("application_name", tg.app)
		u.RawQuery = q.Encode()
		tg.url = u.String()
		// The test's own connections are not the sinks'.
		q.Set("application_name", tg.name+"_test")
		u.RawQuery = q.Encode()
		cc, err := pgx.ParseConfig(u.String())
		require.NoError(t, err)
		tg.db = stdlib.OpenDB(*cc)
	case mysqlKind:
		admin := mysqlDBOf(t, base)
		_, err := admin.Exec("CREATE DATABASE " + "`" + tg.name + "`")
		require.NoError(t, admin.Close())
		require.NoError(t, err)
		t.Cleanup(func() {
			admin := mysqlDBOf(t, base)
			defer admin.Close()
			_, err := admin.Exec("DROP DATABASE IF EXISTS `" + tg.name + "`")
			require.NoError(t, err)
		})
		u.Path = "/" + tg.name
		tg.url = u.String()
		tg.db = mysqlDBOf(t, tg.url)
	}
	t.Cleanup(func() { require.NoError(t, tg.db.Close()) })
	return tg
}

func mysqlDBOf(t testing.TB, u string) *sql.DB {
	t.Helper()
	mc, err := mysqlConfig(u)
	require.NoError(t, err)
	conn, err := mysql.NewConnector(mc)
	require.NoError(t, err)
	return sql.OpenDB(conn)
}

func (tg *target) quote(name string) string {
	if tg.kind == postgresKind {
		return (&postgres{}).quote(name)
	}
	return (&mysqlDB{}).quote(name)
}

func (tg *target) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	_, err := tg.db.Exec(q, args...)
	require.NoError(t, err, q)
}

// sink opens a sink on the target; Pipeline and Destination default to
// "p" and "d".
func (tg *target) sink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	cfg.URL = tg.url
	if cfg.Pipeline == "" {
		cfg.Pipeline = "p"
	}
	if cfg.Destination == "" {
		cfg.Destination = "d"
	}
	s, err := New(bg, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// rows reads table: the first column's value → the others', as
// "col=value" joined by ";" (NULL as "NULL", JSON normalized).
func (tg *target) rows(t testing.TB, table string, cols ...string) map[string]string {
	t.Helper()
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = tg.quote(c)
	}
	rs, err := tg.db.Query("SELECT " + strings.Join(quoted, ", ") + " FROM " + tg.quote(table))
	require.NoError(t, err)
	defer rs.Close()
	out := map[string]string{}
	for rs.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rs.Scan(ptrs...))
		var parts []string
		for i, c := range cols[1:] {
			v := vals[i+1]
			s := "NULL"
			if v.Valid {
				s = v.String
				if c == "doc" {
					s = normJSON(t, s)
				}
			}
			parts = append(parts, c+"="+s)
		}
		out[vals[0].String] = strings.Join(parts, ";")
	}
	require.NoError(t, rs.Err())
	return out
}

func normJSON(t testing.TB, s string) string {
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v), s)
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func (tg *target) count(t testing.TB, q string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, tg.db.QueryRow(q).Scan(&n), q)
	return n
}

func position(t testing.TB, s *Sink) int64 {
	t.Helper()
	seq, err := s.Position(bg)
	require.NoError(t, err)
	return seq
}

// The items table of the conformance tests, as a source describes it.
var itemsTable = pipeline.Table{Name: "public.items", Columns: []pipeline.Column{
	{Name: "id", Type: "int8", Key: true},
	{Name: "name", Type: "varchar(40)"},
	{Name: "n", Type: "int4"},
	{Name: "doc", Type: "jsonb"},
}}

func changeSet(seq int64, tables ...pipeline.Table) pipeline.ChangeSet {
	cs := pipeline.ChangeSet{Pipeline: "p", Seq: seq, Position: fmt.Sprintf("0/%X", seq*16), Tables: map[string]pipeline.Table{}}
	for _, tb := range tables {
		cs.Tables[tb.Name] = tb
	}
	return cs
}

func num(i int) json.Number { return json.Number(fmt.Sprint(i)) }

func upsert(op pipeline.Op, id int, row pipeline.Row) pipeline.Change {
	row["id"] = num(id)
	return pipeline.Change{Op: op, Table: "public.items", Key: pipeline.Row{"id": num(id)}, After: row}
}

func del(id int) pipeline.Change {
	return pipeline.Change{Op: pipeline.Delete, Table: "public.items", Key: pipeline.Row{"id": num(id)}}
}

// model is what the items table should hold, as target.rows reads it.
type model map[string]string

func (m model) apply(changes []pipeline.Change) {
	for _, c := range changes {
		id := c.Key["id"].(json.Number).String()
		if c.Op == pipeline.Delete {
			delete(m, id)
			continue
		}
		cur := map[string]string{"name": "NULL", "n": "NULL", "doc": "NULL"}
		if newID, ok := c.After["id"]; ok && keyString(newID) != id {
			// An update of the key: Key is the old key. The new row
			// takes what After lacks from Before.
			delete(m, id)
			id = keyString(newID)
			for k, v := range c.Before {
				if k != "id" {
					cur[k] = modelValue(v)
				}
			}
		} else if old, ok := m[id]; ok {
			for _, kv := range strings.Split(old, ";") {
				k, v, _ := strings.Cut(kv, "=")
				cur[k] = v
			}
		}
		for k, v := range c.After {
			if k != "id" {
				cur[k] = modelValue(v)
			}
		}
		m[id] = "name=" + cur["name"] + ";n=" + cur["n"] + ";doc=" + cur["doc"]
	}
}

// modelValue is v as target.rows reads it.
func modelValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case map[string]any:
		b, _ := json.Marshal(v)
		return string(b)
	}
	return keyString(v)
}

func (tg *target) items(t testing.TB) model {
	return model(tg.rows(t, "items", "id", "name", "n", "doc"))
}
