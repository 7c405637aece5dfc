// Package pgsource is a [pipeline.Source] that reads a PostgreSQL
// database's changes through logical replication: a publication of the
// pipeline's tables, a replication slot, and the built-in pgoutput plugin
// (protocol version 1), spoken with github.com/jackc/pglogrepl. Tested
// with PostgreSQL 15; it needs 12 or later.
//
// # Setup
//
// [Source.Run] first checks what would otherwise fail later or silently,
// and says how to fix it: wal_level must be logical ([ErrNotLogical]);
// the role must be allowed replication connections
// ([ErrNoReplicationRight]); every table must exist ([ErrTableNotFound])
// and have a primary key, or REPLICA IDENTITY FULL or USING INDEX
// ([ErrNoPrimaryKey]). It creates the publication "sluice_<pipeline>"
// for the tables, or sets an existing one to exactly them.
//
// # Snapshot
//
// When nothing was staged yet (after is empty), or the last snapshot was
// cut short, Run drops the slot if there is one, creates it again with
// EXPORT_SNAPSHOT, and reads every table (in key order) in the exported
// snapshot, on an ordinary connection, while the replication connection
// that exported it waits. The rows are handed over as [pipeline.Read]
// changes in batches marked Snapshot, each change's Position being the
// slot's consistent point. Then it streams from that point: the snapshot
// holds exactly the transactions that committed before it, the stream
// those that commit at or after it, so none is lost or repeated at the
// handoff. A snapshot cut short is taken again from the start: reads are
// upserts downstream, so reading rows again is harmless. Creating the
// slot waits for the transactions running at that moment to end.
//
// # Stream
//
// The slot's transactions are handed over whole and in commit order;
// a batch holds whole transactions, up to BatchSize changes, except that
// a larger transaction makes a batch of its own (it is held in memory
// until its commit). A partial batch is handed over MaxWait after its
// first transaction came. Each change's Position is its transaction's
// commit LSN ("16/B374D848") and CommitTime its commit time.
//
// Values are text, as the server's output functions write them (the same
// in the snapshot and the stream); SQL NULL is nil. An unchanged TOASTed
// value (a large value that an update did not touch) is not sent by the
// server: its column is left out of After. A change's Key holds the key
// columns: from the new row, or, for a delete or an update that changed
// the key, from the old key the server sends (so an update whose After
// has other key values than its Key moved the row: see
// [pipeline.Change]). Before holds the old row when the server sends it
// whole (REPLICA IDENTITY FULL). An update that moves a row to a new key
// and leaves a TOASTed value alone carries that value nowhere unless the
// table has REPLICA IDENTITY FULL: Run logs a warning. TRUNCATE is logged
// and not carried over. Generated columns are not sent.
//
// # Positions
//
// Batch.Position is one of:
//
//   - "snapshot:<consistent LSN>:<table index>:<rows>": a snapshot batch
//     before the last; the table index (in Config.Tables) of its last
//     row and how many rows of that table have been handed over. Run
//     given it takes the snapshot again from the start.
//   - "snapshot-done:<consistent LSN>": the snapshot's last batch (an
//     empty one when the tables were). Run given it streams the
//     transactions that commit at or after the consistent LSN.
//   - "lsn:<commit LSN>": a stream batch, the commit LSN of its last
//     transaction. Run given it streams the transactions that commit
//     after it: those at or before it, which the slot sends again when it
//     had not heard they were staged, are skipped.
//
// LSNs are written as PostgreSQL does, "16/B374D848".
//
// # Confirming
//
// The source reports a position to the server (as written, flushed and
// applied, in standby status updates) only once emit returned nil for
// the batch it ends: the end of the batch's last transaction. The server
// keeps the WAL from the position confirmed last, and sends the
// transactions after it again on the next Run.
//
// A slot that sees no changes of its tables still has to move, or the
// server keeps all its WAL. The server's keepalive messages carry its WAL
// end, and it has sent every transaction committed before it (in order,
// on the same connection) before the keepalive. When a keepalive comes
// while nothing is pending (no transaction being received, no batch
// waiting to be staged), every transaction committed below that WAL end
// has been staged or skipped, so the source confirms it. A transaction
// still open on the server is not affected: it commits later, and the
// slot sends every transaction that commits after the confirmed
// position, whenever it began. The same holds for the end of a
// transaction that changed none of the tables.
//
// # Backfill
//
// [Source.Backfill] (a [pipeline.Backfiller]) reads a table's rows again,
// as they are now: those its Where selects, or all of them. The table is
// one of Config.Tables, named as changes name it ("public.orders") or as
// Config.Tables may ("orders" for public.orders); another name is refused
// with [ErrUnknownTable], which lists the source's tables. Where is one
// SQL condition on the table's columns, put in parentheses; one holding a
// ';' is refused ([ErrInvalidWhere]). The rows are read in key order (the
// primary key's, or the replica identity index's), by keyset pagination:
// each batch is one query
//
//	SELECT … FROM ONLY t WHERE (<where>) AND (key…) > (last key…) ORDER BY key… LIMIT BatchSize
//
// in a transaction of its own, BEGIN READ ONLY (so that the condition
// cannot write), on a connection of its own (Backfill may run while Run
// streams; it shares nothing with it). A batch is handed over once its
// transaction ended, as a [pipeline.Batch] of [pipeline.Read] changes
// (Key the key columns, After the row, no Position nor CommitTime), its
// Tables describing the table as the snapshot does, Snapshot set and
// Position empty: values are text, exactly as the snapshot gives them.
// progress, if not nil, is told the rows handed over after each batch;
// Backfill returns them, and stops at the first batch shorter than
// BatchSize (no empty batch is handed over).
//
// A condition the server refuses (a syntax error, an unknown column, a
// write refused in the read-only transaction) fails the first query, so
// nothing is handed over: the error wraps [ErrInvalidWhere] and quotes the
// server's message. A condition that fails on some row only (a division
// by zero) fails the batch that reaches it, after the earlier ones. So
// that a condition that closes its parentheses early ("x) OR (y") cannot
// undo the pagination and hand the same rows over without end, every row
// after the first batch is checked to come after the last key read. A
// table of REPLICA IDENTITY FULL without a key index is read in ctid
// order instead (its Key, as in the snapshot, is every column): a row
// updated meanwhile may be read twice or not at all, and its update comes
// through the stream anyway; a VACUUM FULL or CLUSTER of it meanwhile can
// make the backfill miss rows.
//
// # Limits
//
//   - A table added to Config.Tables of a pipeline that has streamed
//     already joins the publication, but its existing rows are not read
//     (that needs a backfill, or starting the pipeline over).
//   - TRUNCATE is logged, not carried over.
//   - A transaction is held in memory until its commit (protocol 1 has no
//     streaming of transactions in progress).
//   - emit must return within the server's wal_sender_timeout (60s by
//     default): the connection sends nothing to the server meanwhile, and
//     the server drops it after that long (Run fails; the next Run goes
//     on from the last position confirmed).
//   - A snapshot runs in one REPEATABLE READ transaction: the server keeps
//     the row versions it may see (vacuum waits) until it ends.
//   - Partitioned tables are refused: name their partitions.
//
// Only one Run may stream from a slot at a time: Run waits a while for a
// previous one's connection to go, then fails with [ErrSlotInUse].
// [Drop] removes the slot and the publication; [Source.Lag] reads how
// much WAL the slot keeps.
package pgsource
