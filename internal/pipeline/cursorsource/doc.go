// Package cursorsource is a [pipeline.Source] that captures the changes of
// any SQL table (PostgreSQL, MariaDB, MySQL) by cursor: a column that
// grows on every insert and update, like updated_at or a row version. It
// needs no replication rights nor server setup, only SELECT; it sees hard
// deletes only by comparing keys (FullRefresh, or DeleteCheck: see "Hard
// deletes"; or mark rows deleted with a SoftDelete column), and only the
// latest state of a row changed several times between reads.
//
// # Incremental reads
//
// A table is read in the order of its cursor and then of its primary key
// (from the catalog: a table without one is refused, [ErrNoPrimaryKey]).
// Each read takes the next BatchSize rows after the last one handed over:
//
//	WHERE cursor IS NOT NULL AND (cursor, pk…) > (last cursor, last pk…)
//	ORDER BY cursor, pk… LIMIT BatchSize
//
// so rows sharing a cursor value, even across batches, are read once
// each. Every row is handed over as a [pipeline.Read] change (a cursor
// read cannot tell an insert from an update; sinks apply reads as
// upserts), its Key the primary key's columns and After every column as
// text (SQL NULL as nil); a row whose SoftDelete column is true (or, for
// a column of another type than boolean, not NULL) comes as a
// [pipeline.Delete] with its Key only. Batches hold one table's rows;
// tables are read in turn, and again at once while reads come back full,
// otherwise after PollInterval.
//
// # The late commit, and the safety lag
//
// A cursor read is blind to rows committed after it with a cursor value
// below the one it reached: a transaction that set updated_at = now() at
// its start but committed after a later transaction was read. Such rows
// would be skipped for good. For timestamp cursors (PostgreSQL timestamp
// and timestamptz, MariaDB DATETIME and TIMESTAMP) a read takes only rows
// whose cursor is at least Lag (default 5s) older than the database's
// clock (now(), or localtimestamp for timestamp without time zone; NOW(6)
// for MariaDB, in the session's time zone: the server's unless the URL
// sets time_zone). A late row is then read as long as its transaction
// commits within Lag of its cursor value. The remaining risk:
//   - transactions longer than Lag (between setting the cursor and
//     committing), cursors set from clients' clocks that run behind the
//     database's by more than Lag, or DATETIME cursors written in another
//     time zone than the source's session, can still be skipped: raise Lag
//     above the longest write transaction;
//   - cursors of other types (a row version from a sequence) have no lag:
//     a version taken by a transaction that commits after a later one was
//     read is skipped. Prefer a timestamp cursor set by the database, or
//     make the version's writes short and serialised;
//   - changes show up Lag late.
//
// # Positions
//
// A batch's Position records every table's progress, as JSON after the
// prefix "cursor:":
//
//	cursor:{"tables":{"public.orders":{"cursor":"2026-12-08 10:00:00.5+00","key":["42"]}}}
//
// the cursor and primary key (as text) of the last row handed over.
// Run(after) reads each table from after its progress, so nothing at or
// before it comes again; a table missing from the position is read from
// the start.
//
// # Full refresh
//
// A FullRefresh table is read whole on every poll (at most once every
// PollInterval), in key order, BatchSize rows a batch, every row as a
// Read. Its progress is the key the pass under way reached (none between
// passes): a Run resumed in the middle of a pass finishes it. Deletes are
// found by comparing a pass's keys with the previous complete pass's,
// kept in memory: so only tables whose key set fits in memory should be
// read this way, and after a restart the first pass hands over reads only
// (rows deleted while the pipeline was down stay in the destination until
// they are deleted by hand or the destination is rebuilt).
//
// # Hard deletes
//
// A cursor read cannot see a row that is gone. With a table's DeleteCheck
// set, the source also reads the table's primary keys only, every
// DeleteCheck, between its cursor reads (on the same goroutine):
//
//	SELECT pk… FROM t WHERE (pk…) > (last pk…) ORDER BY pk… LIMIT BatchSize
//
// each query in a short read-only transaction of its own. The keys that
// the previous key pass saw, or that the cursor reads handed over (as
// Reads) since it began, and that this pass does not see, are handed over
// as [pipeline.Delete] changes of their Key, BatchSize a batch, each
// batch's Position the source's progress as it is (the cursor reads'
// progress neither moves nor is lost: resuming after such a batch is
// resuming after the last batch of reads). So:
//   - a row read, then hard-deleted before the next key pass, is deleted,
//     though no key pass saw it; a row inserted and deleted between two
//     passes before any read took it never reached the destination;
//   - a row deleted and inserted again with the same key between passes
//     is not deleted (its new version comes as a Read);
//   - a key seen by no pass but handed over by a cursor read after the
//     pass began would be a row inserted again behind the pass: it is not
//     deleted, so that the Delete cannot overtake its Read (as reads and
//     passes take turns, there is none).
//
// The first key pass of a Run comes before its first read and only
// records the keys: rows hard-deleted while the pipeline was down stay in
// the destination, as with FullRefresh. The keys are kept in memory (the
// last pass's and those read since), so the table's key set should fit.
// A pass reads the whole key index: set DeleteCheck to minutes or hours
// for large tables.
//
// # Backfill
//
// [Source.Backfill] (a [pipeline.Backfiller]) reads a table's rows again,
// as they are now: those its Where selects, or all of them. The table is
// one of Config.Tables, named as changes name it ("schema.table") or as
// its TableConfig.Name does; another name is refused with
// [ErrUnknownTable], which lists the source's tables. Where is one SQL
// condition on the table's columns in the database's dialect, put in
// parentheses; one holding a ';' is refused ([ErrInvalidWhere]). The rows
// are read in primary-key order by keyset pagination: each batch is one
// query
//
//	SELECT … FROM t WHERE (<where>) AND (pk…) > (last pk…) ORDER BY pk… LIMIT BatchSize
//
// in a transaction of its own, read only (PostgreSQL: BEGIN READ ONLY;
// MariaDB and MySQL: START TRANSACTION READ ONLY), so that the condition
// cannot write, on a connection of its own (Backfill may run while Run
// reads; it shares nothing with it). A batch is handed over once its
// transaction ended, as a [pipeline.Batch] of the table's rows read as
// Run reads them (text values; a [pipeline.Read] of each row, its Key the
// primary key's columns, or a [pipeline.Delete] of its Key when its
// SoftDelete column marks it deleted; no Position nor CommitTime), its
// Tables describing the table as Run's batches do, Snapshot set and
// Position empty. progress, if not nil, is told the rows handed over after
// each batch; Backfill returns them, and stops at the first batch shorter
// than BatchSize (no empty batch is handed over). The cursor, its safety
// lag and Run's progress play no part.
//
// A condition the server refuses (a syntax error, an unknown column, a
// write refused in the read-only transaction) fails the first query, so
// nothing is handed over: the error wraps [ErrInvalidWhere] and quotes the
// server's message. So that a condition that closes its parentheses early
// ("x) OR (y") cannot undo the pagination and hand the same rows over
// without end, every row after the first batch is checked to come after
// the last key read.
package cursorsource
