package sqlsink

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluicehq/sluice/internal/pipeline/sqlurl"
)

// mysqlDB writes to MariaDB and MySQL through database/sql: multi-row
// INSERT … ON DUPLICATE KEY UPDATE and DELETE … IN, under 65535
// parameters a statement.
type mysqlDB struct {
	db *sql.DB
}

// mysqlConfig is the driver's configuration of a mysql:// URL: TCP to
// host:port (3306 by default), the database of the path, the query's
// parameters as the driver reads them in a DSN. Sessions are in UTC and
// strict mode (a value a column cannot hold is an error, not a warning
// and a changed value), unless the URL sets time_zone or sql_mode.
func mysqlConfig(raw string) (*mysql.Config, error) {
	mc, err := sqlurl.MySQL(raw)
	if err != nil {
		return nil, configError("URL", "%v", err)
	}
	mc.ParseTime = true
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	if _, ok := mc.Params["time_zone"]; !ok {
		mc.Params["time_zone"] = "'+00:00'"
	}
	if _, ok := mc.Params["sql_mode"]; !ok {
		mc.Params["sql_mode"] = "CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')"
	}
	return mc, nil
}

func openMySQL(ctx context.Context, cfg Config) (*mysqlDB, error) {
	mc, err := mysqlConfig(cfg.URL)
	if err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, configError("URL", "%v", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(cfg.MaxConns)
	db.SetMaxIdleConns(cfg.MaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlsink: connect to MariaDB/MySQL: %w", err)
	}
	return &mysqlDB{db: db}, nil
}

func (*mysqlDB) quote(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

func (*mysqlDB) ph(int) string             { return "?" }
func (*mysqlDB) colKey(name string) string { return strings.ToLower(name) }
func (*mysqlDB) now() string               { return "UTC_TIMESTAMP(6)" }

func (m *mysqlDB) currentSchema(ctx context.Context) (string, error) {
	var db sql.NullString
	if err := m.db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&db); err != nil {
		return "", fmt.Errorf("sqlsink: current database: %w", err)
	}
	if !db.Valid || db.String == "" {
		return "", configError("Schema", "required: the URL names no database (mysql://user:pass@host:port/db)")
	}
	return db.String, nil
}

func (m *mysqlDB) positionsDDL(qname string) string {
	return "CREATE TABLE IF NOT EXISTS " + qname + ` (
	` + "`pipeline`" + ` VARCHAR(191) NOT NULL,
	` + "`destination`" + ` VARCHAR(191) NOT NULL,
	` + "`seq`" + ` BIGINT NOT NULL,
	` + "`position`" + ` TEXT NOT NULL,
	` + "`applied_at`" + ` DATETIME(6) NOT NULL,
	PRIMARY KEY (` + "`pipeline`, `destination`" + `)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`
}

func (m *mysqlDB) ensureRowSQL(qname string) string {
	return "INSERT INTO " + qname + " (`pipeline`, `destination`, `seq`, `position`, `applied_at`) VALUES (?, ?, 0, '', UTC_TIMESTAMP(6))" +
		" ON DUPLICATE KEY UPDATE `seq` = `seq`"
}

// ddl: MariaDB serializes concurrent CREATE TABLE IF NOT EXISTS itself
// (and commits at each one: DDL never runs in the apply transaction).
func (m *mysqlDB) ddl(ctx context.Context, stmts ...string) error {
	for _, q := range stmts {
		if _, err := m.db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func (m *mysqlDB) exec(ctx context.Context, q string, args ...any) error {
	_, err := m.db.ExecContext(ctx, q, args...)
	return err
}

func (m *mysqlDB) queryInt(ctx context.Context, q string, args ...any) (int64, bool, error) {
	return sqlQueryInt(m.db.QueryRowContext(ctx, q, args...))
}

func sqlQueryInt(row *sql.Row) (int64, bool, error) {
	var n int64
	err := row.Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return n, err == nil, err
}

func (m *mysqlDB) begin(ctx context.Context) (dbTx, error) {
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sqlTx{tx}, nil
}

type sqlTx struct{ tx *sql.Tx }

func (t sqlTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, q, args...)
	return err
}

func (t sqlTx) queryInt(ctx context.Context, q string, args ...any) (int64, bool, error) {
	return sqlQueryInt(t.tx.QueryRowContext(ctx, q, args...))
}

func (t sqlTx) commit(context.Context) error { return t.tx.Commit() }

func (t sqlTx) rollback(context.Context) error {
	if err := t.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

func (m *mysqlDB) describe(ctx context.Context, schema, table string) ([]destColumn, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []destColumn
	for rows.Next() {
		var c destColumn
		if err := rows.Scan(&c.name, &c.typ); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (*mysqlDB) columnType(srcType string, key bool) string { return mysqlType(srcType, key) }

func (m *mysqlDB) createTable(qname string, cols []columnDef, keys []string) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + qname + " (\n")
	for _, c := range cols {
		b.WriteString("\t" + m.quote(c.name) + " " + c.typ + ",\n")
	}
	b.WriteString("\tPRIMARY KEY (" + m.list(keys) + ")\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
	return b.String()
}

func (m *mysqlDB) list(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = m.quote(n)
	}
	return strings.Join(q, ", ")
}

// tuples writes "(?, ?), (?, ?)…" for rows and returns their values.
func tuples(b *strings.Builder, ncols int, rows []item) []any {
	args := make([]any, 0, ncols*len(rows))
	tuple := "(" + strings.Repeat("?, ", ncols-1) + "?)"
	for r, it := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
		args = append(args, it.vals...)
	}
	return args
}

func (m *mysqlDB) upsert(g *group, rows []item) (string, []any) {
	var b strings.Builder
	b.WriteString("INSERT INTO " + g.t.qname + " (" + m.list(g.cols) + ") VALUES ")
	args := tuples(&b, len(g.cols), rows)
	b.WriteString(" ON DUPLICATE KEY UPDATE ")
	if len(g.cols) == g.nkeys {
		k := m.quote(g.cols[0])
		b.WriteString(k + " = " + k)
	} else {
		for i, c := range g.cols[g.nkeys:] {
			if i > 0 {
				b.WriteString(", ")
			}
			q := m.quote(c)
			b.WriteString(q + " = VALUES(" + q + ")")
		}
	}
	return b.String(), args
}

func (m *mysqlDB) delete(g *group, rows []item) (string, []any) {
	var b strings.Builder
	b.WriteString("DELETE FROM " + g.t.qname + " WHERE ")
	var args []any
	if len(g.cols) == 1 {
		b.WriteString(m.quote(g.cols[0]) + " IN (" + strings.Repeat("?, ", len(rows)-1) + "?)")
		args = make([]any, len(rows))
		for i, it := range rows {
			args[i] = it.vals[0]
		}
	} else {
		b.WriteString("(" + m.list(g.cols) + ") IN (")
		args = tuples(&b, len(g.cols), rows)
		b.WriteString(")")
	}
	return b.String(), args
}

func (*mysqlDB) maxRows(ncols int) int { return maxParams / max(ncols, 1) }

// value is v as a parameter. Strings go as they are, except where the
// source's text form is not MariaDB's: PostgreSQL's booleans ("t", "f")
// into integer columns, timestamptz (with an offset) into DATETIME and
// TIMESTAMP columns (as UTC), bytea ("\x…" hex) into binary columns.
func (*mysqlDB) value(v any, srcType, destType string) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return mysqlString(v, srcType, strings.ToLower(destType))
	case json.Number:
		return v.String(), nil
	case bool:
		return v, nil
	case map[string]any, []any:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	return fmt.Sprint(v), nil
}

func mysqlString(v, srcType, destType string) (any, error) {
	if srcType == "" {
		return v, nil
	}
	switch parseType(srcType).base {
	case "boolean":
		if !strings.Contains(destType, "int") && !strings.HasPrefix(destType, "bit") && !strings.HasPrefix(destType, "bool") {
			return v, nil
		}
		switch strings.ToLower(v) {
		case "t", "true", "y", "yes", "on", "1":
			return int64(1), nil
		case "f", "false", "n", "no", "off", "0":
			return int64(0), nil
		}
	case "timestamptz":
		if !strings.HasPrefix(destType, "datetime") && !strings.HasPrefix(destType, "timestamp") {
			return v, nil
		}
		if t, ok := parseTimestamptz(v); ok {
			return t.UTC().Format("2006-01-02 15:04:05.999999"), nil
		}
	case "bytea":
		if !strings.Contains(destType, "blob") && !strings.Contains(destType, "binary") {
			return v, nil
		}
		if h, ok := strings.CutPrefix(v, `\x`); ok {
			b, err := hex.DecodeString(h)
			if err != nil {
				return nil, fmt.Errorf("bytea value is not hex: %v", err)
			}
			return b, nil
		}
	}
	return v, nil
}

// parseTimestamptz reads PostgreSQL's text form of timestamptz
// ("2024-05-01 10:00:00.123456+02", "+05:30", "+00:00:00") and RFC 3339.
func parseTimestamptz(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05-07", "2006-01-02 15:04:05-07:00", "2006-01-02 15:04:05-07:00:00", time.RFC3339Nano} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// mysqlRowFaults are the errors of a row MariaDB/MySQL refuses for good.
var mysqlRowFaults = map[uint16]bool{
	1048: true, // column cannot be null
	1062: true, // duplicate entry (a unique index other than the key)
	1216: true, // foreign key: no parent row
	1217: true, // foreign key: a child row references it
	1264: true, // out of range
	1265: true, // data truncated
	1292: true, // incorrect date/time value
	1364: true, // no default value
	1366: true, // incorrect value
	1367: true, // illegal value
	1406: true, // data too long
	1411: true, // incorrect value for a function
	1451: true, // foreign key: a child row references it
	1452: true, // foreign key: no parent row
	1690: true, // value out of range
	3140: true, // MySQL: invalid JSON text
	3819: true, // MySQL: check constraint violated
	4025: true, // MariaDB: CONSTRAINT failed (JSON columns' json_valid)
}

func (*mysqlDB) classify(err error) errClass {
	var me *mysql.MySQLError
	if errors.As(err, &me) && mysqlRowFaults[me.Number] {
		return rowFault
	}
	return other
}

func (*mysqlDB) missingTable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1146
}

func (*mysqlDB) reason(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Error()
	}
	return err.Error()
}

func (m *mysqlDB) close() { _ = m.db.Close() }
