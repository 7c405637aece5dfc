package cursorsource

import "errors"

var (
	// ErrInvalidConfig is returned by New for a Config that cannot work;
	// the message names the field.
	ErrInvalidConfig = errors.New("cursorsource: invalid config")
	// ErrTableNotFound is returned by Run when a configured table does not
	// exist (or is not an ordinary table).
	ErrTableNotFound = errors.New("cursorsource: table not found")
	// ErrColumnNotFound is returned by Run when a table's Cursor or
	// SoftDelete column does not exist.
	ErrColumnNotFound = errors.New("cursorsource: column not found")
	// ErrCursorType is returned by Run when a table's Cursor column is of a
	// type that does not order rows by change (json, bool, binary...).
	ErrCursorType = errors.New("cursorsource: cursor column cannot order")
	// ErrNoPrimaryKey is returned by Run when a table has no primary key:
	// without one, rows sharing a cursor value cannot be told apart, nor
	// can a destination update them.
	ErrNoPrimaryKey = errors.New("cursorsource: table has no primary key")
	// ErrUnknownTable is returned by Backfill when the table asked for is
	// not one of Config.Tables; the message lists them.
	ErrUnknownTable = errors.New("cursorsource: not a table of the source")
	// ErrInvalidWhere is returned by Backfill when its Where is not one
	// condition the server accepts: it holds a ';', or the server refused
	// it (a syntax error, an unknown column or function, a write in the
	// read-only transaction...; the message quotes the server's), or it
	// undoes the key order.
	ErrInvalidWhere = errors.New("cursorsource: invalid backfill WHERE")
	// ErrBadPosition is returned by Run when after is not a position this
	// source wrote.
	ErrBadPosition = errors.New("cursorsource: bad position")
)
