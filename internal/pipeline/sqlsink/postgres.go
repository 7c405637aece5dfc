package sqlsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// postgres writes through pgx. Upserts send one text array per column and
// cast the unnested text to the destination's types: the statement's text
// depends only on the table and its columns, so pgx prepares it once per
// connection, whatever the number of rows, and there is no parameter
// limit to mind.
type postgres struct {
	pool *pgxpool.Pool
}

func openPostgres(ctx context.Context, cfg Config) (*postgres, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, configError("URL", "%v", err)
	}
	pc.MaxConns = int32(min(cfg.MaxConns, 1<<20))
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("sqlsink: connect to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("sqlsink: connect to PostgreSQL: %w", err)
	}
	return &postgres{pool: pool}, nil
}

func (*postgres) quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func (*postgres) ph(i int) string           { return "$" + strconv.Itoa(i) }
func (*postgres) colKey(name string) string { return name }
func (*postgres) now() string               { return "now()" }

func (p *postgres) currentSchema(ctx context.Context) (string, error) {
	var schema *string
	if err := p.pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return "", fmt.Errorf("sqlsink: current schema: %w", err)
	}
	if schema == nil {
		return "", configError("Schema", "required: the connection's search_path names no existing schema")
	}
	return *schema, nil
}

func (p *postgres) positionsDDL(qname string) string {
	return "CREATE TABLE IF NOT EXISTS " + qname + ` (
	pipeline text NOT NULL,
	destination text NOT NULL,
	seq bigint NOT NULL,
	position text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (pipeline, destination)
)`
}

func (p *postgres) ensureRowSQL(qname string) string {
	return "INSERT INTO " + qname + ` (pipeline, destination, seq, position, applied_at) VALUES ($1, $2, 0, '', now())
ON CONFLICT (pipeline, destination) DO NOTHING`
}

// ddlLock is the advisory lock sinks take to create tables: concurrent
// CREATE TABLE IF NOT EXISTS of one table can fail in PostgreSQL.
const ddlLock = 0x736c75696365_01 // "sluice", 1

func (p *postgres) ddl(ctx context.Context, stmts ...string) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(ddlLock)); err != nil {
			return err
		}
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
}

func (p *postgres) exec(ctx context.Context, q string, args ...any) error {
	_, err := p.pool.Exec(ctx, q, args...)
	return err
}

func (p *postgres) queryInt(ctx context.Context, q string, args ...any) (int64, bool, error) {
	return pgQueryInt(p.pool.QueryRow(ctx, q, args...))
}

func pgQueryInt(row pgx.Row) (int64, bool, error) {
	var n int64
	err := row.Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return n, err == nil, err
}

func (p *postgres) begin(ctx context.Context) (dbTx, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return pgTx{tx}, nil
}

type pgTx struct{ tx pgx.Tx }

func (t pgTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.Exec(ctx, q, args...)
	return err
}

func (t pgTx) queryInt(ctx context.Context, q string, args ...any) (int64, bool, error) {
	return pgQueryInt(t.tx.QueryRow(ctx, q, args...))
}

func (t pgTx) commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t pgTx) rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

func (p *postgres) describe(ctx context.Context, schema, table string) ([]destColumn, error) {
	// The types by their qualified names, without modifiers: the cast of
	// the unnested text then checks nothing (a cast to varchar(5) would
	// cut a longer value silently) and the insert checks as it does for
	// any value. Not format_type: its "character" and "bit" without a
	// modifier mean char(1) and bit(1).
	rows, err := p.pool.Query(ctx, `SELECT a.attname, quote_ident(n.nspname) || '.' || quote_ident(t.typname), t.typcategory = 'A'
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, p.quote(schema)+"."+p.quote(table))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (destColumn, error) {
		var c destColumn
		err := row.Scan(&c.name, &c.typ, &c.array)
		return c, err
	})
}

func (*postgres) columnType(srcType string, _ bool) string { return postgresType(srcType) }

func (p *postgres) createTable(qname string, cols []columnDef, keys []string) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + qname + " (\n")
	for _, c := range cols {
		b.WriteString("\t" + p.quote(c.name) + " " + c.typ + ",\n")
	}
	b.WriteString("\tPRIMARY KEY (" + p.list(keys) + ")\n)")
	return b.String()
}

func (p *postgres) list(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = p.quote(n)
	}
	return strings.Join(q, ", ")
}

// unnest is "SELECT u.p1::type1, … FROM unnest($1::text[], …) AS u(p1, …)"
// for columns of the types.
func (p *postgres) unnest(types []string) string {
	var sel, arr, alias strings.Builder
	for i, typ := range types {
		if i > 0 {
			sel.WriteString(", ")
			arr.WriteString(", ")
			alias.WriteString(", ")
		}
		fmt.Fprintf(&sel, "u.p%d", i+1)
		if typ != "pg_catalog.text" {
			sel.WriteString("::" + typ)
		}
		fmt.Fprintf(&arr, "$%d::text[]", i+1)
		fmt.Fprintf(&alias, "p%d", i+1)
	}
	return "SELECT " + sel.String() + " FROM unnest(" + arr.String() + ") AS u(" + alias.String() + ")"
}

// arrays are the rows' values, a text array per column.
func (*postgres) arrays(ncols int, rows []item) []any {
	args := make([]any, ncols)
	for c := range ncols {
		col := make([]pgtype.Text, len(rows))
		for r, it := range rows {
			if s, ok := it.vals[c].(string); ok {
				col[r] = pgtype.Text{String: s, Valid: true}
			}
		}
		args[c] = col
	}
	return args
}

func (p *postgres) upsert(g *group, rows []item) (string, []any) {
	var b strings.Builder
	b.WriteString("INSERT INTO " + g.t.qname + " (" + p.list(g.cols) + ") ")
	b.WriteString(p.unnest(g.types))
	b.WriteString(" ON CONFLICT (" + p.list(g.cols[:g.nkeys]) + ") DO ")
	if len(g.cols) == g.nkeys {
		b.WriteString("NOTHING")
	} else {
		b.WriteString("UPDATE SET ")
		for i, c := range g.cols[g.nkeys:] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(p.quote(c) + " = EXCLUDED." + p.quote(c))
		}
	}
	return b.String(), p.arrays(len(g.cols), rows)
}

func (p *postgres) delete(g *group, rows []item) (string, []any) {
	var q string
	if len(g.cols) == 1 && !g.arrayKey {
		q = fmt.Sprintf("DELETE FROM %s WHERE %s = ANY($1::text[]::%s[])", g.t.qname, p.quote(g.cols[0]), g.types[0])
	} else {
		q = fmt.Sprintf("DELETE FROM %s WHERE (%s) IN (%s)", g.t.qname, p.list(g.cols), p.unnest(g.types))
	}
	return q, p.arrays(len(g.cols), rows)
}

// maxRows: a column's values are one parameter, whatever their number.
func (*postgres) maxRows(int) int { return maxParams * 16 }

// value is v as text (PostgreSQL reads any type from its text form), or
// nil for NULL.
func (*postgres) value(v any, _, _ string) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	case map[string]any, []any:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	return fmt.Sprint(v), nil
}

func (*postgres) classify(err error) errClass {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return other
	}
	switch {
	case strings.HasPrefix(pe.Code, "22"), strings.HasPrefix(pe.Code, "23"):
		return rowFault
	case pe.Code == "21000":
		return redo
	}
	return other
}

func (*postgres) missingTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42P01"
}

func (*postgres) reason(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	msg := pe.Message
	if pe.Detail != "" {
		msg += ": " + pe.Detail
	}
	return msg + " (SQLSTATE " + pe.Code + ")"
}

func (p *postgres) close() { p.pool.Close() }
