package sqlsink

import "context"

// dialect is what differs between PostgreSQL and MariaDB/MySQL: the
// driver, the SQL, the types and the errors.
type dialect interface {
	quote(name string) string
	// ph is the i-th (from 1) parameter's placeholder.
	ph(i int) string
	// colKey is the identity of a column name: MariaDB's are not case
	// sensitive.
	colKey(name string) string
	// now is the SQL of the current time, for applied_at.
	now() string

	currentSchema(ctx context.Context) (string, error)
	positionsDDL(qname string) string
	// ensureRowSQL inserts a positions row at seq 0 ($1 pipeline, $2
	// destination) unless it exists.
	ensureRowSQL(qname string) string
	// ddl runs statements creating tables, serialized between sinks.
	ddl(ctx context.Context, stmts ...string) error
	exec(ctx context.Context, q string, args ...any) error
	queryInt(ctx context.Context, q string, args ...any) (int64, bool, error)
	begin(ctx context.Context) (dbTx, error)

	// describe is a table's columns; none when it does not exist.
	describe(ctx context.Context, schema, table string) ([]destColumn, error)
	// columnType is the column type for a source type name.
	columnType(srcType string, key bool) string
	createTable(qname string, cols []columnDef, keys []string) string

	upsert(g *group, rows []item) (string, []any)
	delete(g *group, rows []item) (string, []any)
	// maxRows bounds the rows of a statement of ncols columns.
	maxRows(ncols int) int
	// value is a change's value as a parameter, for a column of the
	// source type srcType ("" when unknown) and the destination type
	// destType.
	value(v any, srcType, destType string) (any, error)

	classify(err error) errClass
	// missingTable: err says a table does not exist.
	missingTable(err error) bool
	// reason is the database's message for a refused row, with its code.
	reason(err error) string
	close()
}

type dbTx interface {
	exec(ctx context.Context, q string, args ...any) error
	queryInt(ctx context.Context, q string, args ...any) (int64, bool, error)
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

// errClass is what an error of a statement means for the change set.
type errClass int

const (
	// other: the change set is tried again later (connection lost,
	// deadlock, timeout, a table or column missing...).
	other errClass = iota
	// redo: the statement cannot run as a whole, but row by row it can
	// (PostgreSQL: an upsert touching a row twice, when keys compare equal
	// in the database but not as text).
	redo
	// rowFault: a row the database refuses for good (a data exception,
	// an integrity violation).
	rowFault
)
