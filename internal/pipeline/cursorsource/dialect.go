package cursorsource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sluicehq/sluice/internal/pipeline/sqlurl"
)

// column is a column as the catalog describes it.
type column struct {
	name string
	// typ is the type name changes carry ("timestamp with time zone",
	// "varchar(40)"); base is the bare type, lowercase ("timestamptz",
	// "varchar").
	typ, base string
	// orderable: the type sorts meaningfully (numbers, times, strings);
	// timestamp: the safety lag applies; boolean: a soft delete is its
	// truth.
	orderable, timestamp, boolean bool
	// timeZone: PostgreSQL timestamptz (compared with now(), not
	// localtimestamp).
	timeZone bool
}

// dialect is what differs between PostgreSQL and MariaDB.
type dialect interface {
	// describe returns the table's columns in order and its primary key's
	// columns in key order; found is false when there is no such table.
	describe(ctx context.Context, db *sql.DB, schema, table string) (cols []column, key []string, found bool, err error)
	// defaultSchema is where a bare table name is.
	defaultSchema(ctx context.Context, db *sql.DB) (string, error)
	quote(name string) string
	// text selects a column as text.
	text(c column) string
	// param is placeholder i (from 1) of a text value of c's type.
	param(i int, c column) string
	// horizon is an expression of the latest cursor value a read takes
	// under the safety lag, given placeholder i of lagArg.
	horizon(c column, i int) string
	lagArg(lag time.Duration) any
	// noSuchTable: hint of the fix when a table is missing.
	noSuchTable() string
	// conditionError is the server's message of err when err is one a
	// condition makes (a syntax error, an unknown column or function, a
	// bad value, a write refused in a read-only transaction); ok is false
	// for the others (a lost connection, a privilege).
	conditionError(err error) (msg string, ok bool)
}

// open connects to the database of cfg.URL.
func open(ctx context.Context, k kind, raw string) (*sql.DB, dialect, error) {
	var db *sql.DB
	var d dialect
	switch k {
	case postgresKind:
		cc, err := pgx.ParseConfig(raw)
		if err != nil {
			return nil, nil, configError("URL", "%v", err)
		}
		db, d = stdlib.OpenDB(*cc), postgresDialect{}
	case mysqlKind:
		mc, err := mysqlConfig(raw)
		if err != nil {
			return nil, nil, err
		}
		conn, err := mysql.NewConnector(mc)
		if err != nil {
			return nil, nil, configError("URL", "%v", err)
		}
		db, d = sql.OpenDB(conn), mysqlDialect{}
	}
	// One read at a time; a second connection for the catalog is not needed.
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("cursorsource: connect: %w", err)
	}
	return db, d, nil
}

// mysqlConfig is the driver's configuration of a mysql:// URL: TCP to
// host:port (3306 by default), the database of the path, the query's
// parameters as the driver reads them in a DSN. Unlike the SQL sink it
// keeps the server's time zone unless the URL sets time_zone: DATETIME
// cursors written with NOW() are in the writers' session time zone, which
// is the server's unless they change it, and the safety lag compares them
// with this session's NOW(). Values are read as text (parseTime off).
func mysqlConfig(raw string) (*mysql.Config, error) {
	mc, err := sqlurl.MySQL(raw)
	if err != nil {
		return nil, configError("URL", "%v", err)
	}
	mc.ParseTime = false
	return mc, nil
}

type postgresDialect struct{}

func (postgresDialect) defaultSchema(context.Context, *sql.DB) (string, error) { return "public", nil }

func (postgresDialect) quote(name string) string { return pgx.Identifier{name}.Sanitize() }

func (d postgresDialect) text(c column) string { return d.quote(c.name) + "::text" }

func (postgresDialect) param(i int, c column) string {
	return "$" + strconv.Itoa(i) + "::text::" + c.typ
}

func (postgresDialect) horizon(c column, i int) string {
	now := "localtimestamp"
	if c.timeZone {
		now = "now()"
	}
	return fmt.Sprintf("%s - $%d::text::interval", now, i)
}

func (postgresDialect) lagArg(lag time.Duration) any {
	return strconv.FormatInt(lag.Microseconds(), 10) + " microseconds"
}

func (postgresDialect) noSuchTable() string {
	return "create it, or name it as schema.table (a bare name is in schema public)"
}

func (postgresDialect) describe(ctx context.Context, db *sql.DB, schema, table string) ([]column, []string, bool, error) {
	var oid uint32
	err := db.QueryRowContext(ctx, `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, schema, table).Scan(&oid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	rows, err := db.QueryContext(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname, t.typcategory
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid)
	if err != nil {
		return nil, nil, false, err
	}
	var cols []column
	for rows.Next() {
		var c column
		var category string
		if err := rows.Scan(&c.name, &c.typ, &c.base, &category); err != nil {
			rows.Close()
			return nil, nil, false, err
		}
		// Categories: N numeric, D date/time, S string; uuid sorts too.
		c.orderable = category == "N" || category == "D" || category == "S" || c.base == "uuid"
		c.timestamp = c.base == "timestamp" || c.base == "timestamptz"
		c.timeZone = c.base == "timestamptz"
		c.boolean = c.base == "bool"
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, false, err
	}
	key, err := queryStrings(ctx, db, `SELECT a.attname FROM pg_index i
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord`, oid)
	return cols, key, true, err
}

func (postgresDialect) conditionError(err error) (string, bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return "", false
	}
	switch pgErr.Code[:2] {
	case "42", "22", "21", "25", "0A", "P0":
		if pgErr.Code != "42501" { // insufficient_privilege
			return fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code), true
		}
	}
	return "", false
}

type mysqlDialect struct{}

func (mysqlDialect) conditionError(err error) (string, bool) {
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) {
		return "", false
	}
	switch string(myErr.SQLState[:2]) {
	case "42", "22", "21", "25":
		switch myErr.Number {
		case 1044, 1142, 1143, 1227: // access denied
			return "", false
		}
		return fmt.Sprintf("%s (error %d, SQLSTATE %s)", myErr.Message, myErr.Number, myErr.SQLState[:]), true
	}
	return "", false
}

func (mysqlDialect) defaultSchema(ctx context.Context, db *sql.DB) (string, error) {
	var name sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&name); err != nil {
		return "", err
	}
	if !name.Valid {
		return "", errors.New("the URL names no database: name the tables as database.table, or add the database to the URL's path")
	}
	return name.String, nil
}

func (mysqlDialect) quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// text: the driver hands every value over as text or as a number that
// database/sql renders as text.
func (d mysqlDialect) text(c column) string { return d.quote(c.name) }

func (mysqlDialect) param(int, column) string { return "?" }

func (mysqlDialect) horizon(column, int) string { return "NOW(6) - INTERVAL ? MICROSECOND" }

func (mysqlDialect) lagArg(lag time.Duration) any { return lag.Microseconds() }

func (mysqlDialect) noSuchTable() string {
	return "create it, or name it as database.table (a bare name is in the URL's database)"
}

func (mysqlDialect) describe(ctx context.Context, db *sql.DB, schema, table string) ([]column, []string, bool, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND TABLE_TYPE = 'BASE TABLE'`, schema, table).Scan(&n); err != nil {
		return nil, nil, false, err
	}
	if n == 0 {
		return nil, nil, false, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, nil, false, err
	}
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.typ, &c.base); err != nil {
			rows.Close()
			return nil, nil, false, err
		}
		c.base = strings.ToLower(c.base)
		c.boolean = strings.HasPrefix(strings.ToLower(c.typ), "tinyint(1)")
		switch c.base {
		case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "float", "double",
			"date", "datetime", "timestamp", "time", "year", "char", "varchar", "binary", "varbinary":
			c.orderable = !c.boolean
		}
		c.timestamp = c.base == "datetime" || c.base == "timestamp"
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, false, err
	}
	key, err := queryStrings(ctx, db, `SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`, schema, table)
	return cols, key, true, err
}

// queryStrings runs a query of one text column.
func queryStrings(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
