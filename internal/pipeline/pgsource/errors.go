package pgsource

import "errors"

var (
	// ErrNotLogical is returned by Run when the server's wal_level is not
	// logical: logical decoding needs it.
	ErrNotLogical = errors.New("pgsource: wal_level is not logical")
	// ErrNoReplicationRight is returned by Run when the role may not open a
	// replication connection (it has neither REPLICATION nor SUPERUSER).
	ErrNoReplicationRight = errors.New("pgsource: the role lacks the REPLICATION attribute")
	// ErrTableNotFound is returned by Run when a configured table does not
	// exist (or is not an ordinary table: a view, a partitioned table...).
	ErrTableNotFound = errors.New("pgsource: table not found")
	// ErrNoPrimaryKey is returned by Run when a table's updates and
	// deletes would not say which row they change: it has no primary key
	// and its REPLICA IDENTITY is neither FULL nor USING INDEX.
	ErrNoPrimaryKey = errors.New("pgsource: table has no primary key or replica identity")
	// ErrSlotLost is returned by Run when it is to resume from a position
	// but the replication slot is gone (dropped by hand, or invalidated):
	// the changes since the position cannot be read any more, and the
	// pipeline has to start over with a new snapshot (an empty position).
	ErrSlotLost = errors.New("pgsource: replication slot lost")
	// ErrSlotInUse is returned by Run and Drop when another connection
	// keeps streaming from the slot (another instance of the pipeline)
	// for longer than they wait for it to stop.
	ErrSlotInUse = errors.New("pgsource: replication slot in use")
	// ErrBadPosition is returned by Run when after is not a position this
	// source wrote.
	ErrBadPosition = errors.New("pgsource: bad position")
	// ErrUnknownTable is returned by Backfill when the table asked for is
	// not one of Config.Tables; the message lists them.
	ErrUnknownTable = errors.New("pgsource: not a table of the source")
	// ErrInvalidWhere is returned by Backfill when its Where is not one
	// condition the server accepts: it holds a ';', or the server refused
	// it (a syntax error, an unknown column or function, a write in the
	// read-only transaction, a value of the wrong type...; the message
	// quotes the server's), or it undoes the key order.
	ErrInvalidWhere = errors.New("pgsource: invalid backfill WHERE")
	// ErrInvalidConfig is returned by New (and Drop) for a Config that
	// cannot work; the message names the field.
	ErrInvalidConfig = errors.New("pgsource: invalid config")
)
