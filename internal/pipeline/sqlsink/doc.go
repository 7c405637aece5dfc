// Package sqlsink is the SQL write strategy of data pipelines: a
// [pipeline.Sink] that applies change sets to PostgreSQL (through pgx) or
// MariaDB/MySQL (through database/sql), each exactly once.
//
// # Exactly once
//
// [Sink.Apply] runs one transaction per change set. It locks the row of
// (pipeline, destination) in the table sluice_pipeline_positions (SELECT …
// FOR UPDATE, so that two sinks of one destination apply one after the
// other), commits nothing when the change set's Seq is at or before the
// recorded one, applies the changes, records the Seq and the source
// position, and commits. A crash leaves either all of a change set or
// none of it, and the position with it; a change set applied again is
// skipped.
//
// A replay applies change sets again on purpose: before replaying from
// change set n the pipeline calls [Sink.Reset] with n-1, which moves the
// recorded position back there.
//
// # Statements
//
// Insert, Update and Read are upserts by key; Delete deletes by key. An
// Update whose After holds another key than its Key (the old key) moved
// the row: the row of the old key is deleted first, and the new one
// written whole, with what After lacks taken from Before when the change
// has it (an unchanged TOASTed value; without Before such a column is left
// to its default). The
// changes of a change set are cut into groups: changes that follow each
// other, of one table, one kind (upsert or delete) and one set of
// columns. A delete also joins the last group of deletes of its table
// when the changes since (of that table: changes of other tables keep
// their order) do not touch its key, so that upserts and deletes
// interleaved take a few statements. Each key's changes keep their order,
// and a statement never sees more rows than in the change set's order;
// what moving deletes earlier can still break (a table's foreign key to
// itself) fails and is redone in strict order. A group is one statement
// (or a few, under [Config]'s bounds and the 65535 parameters of a
// statement) holding the last change of each of its keys.
//
//   - PostgreSQL: INSERT INTO t (…) SELECT u.p1::type, … FROM
//     unnest($1::text[], …) AS u(p1, …) ON CONFLICT (key) DO UPDATE SET
//     …; DELETE FROM t WHERE k = ANY($1::text[]::type[]) (or (k1, k2) IN
//     (SELECT … FROM unnest(…))). A column's values are one text array:
//     the statement's text depends on the table and its columns only, so
//     it is prepared once per connection.
//   - MariaDB/MySQL: INSERT INTO t (…) VALUES (?, …), (?, …) ON DUPLICATE
//     KEY UPDATE c = VALUES(c), …; DELETE FROM t WHERE k IN (?, …).
//
// Values go as text (PostgreSQL reads any type from its text form;
// MariaDB converts), JSON values as JSON text, NULL as NULL.
//
// # Refused rows
//
// When the database refuses a row for good (PostgreSQL's SQLSTATE classes
// 22 and 23, MariaDB's errors of bad values, NULLs, duplicates and foreign
// keys), the transaction is rolled back and the change set applied again
// with a savepoint per group and, in a group that fails, per change: the
// changes refused are returned as [pipeline.Rejected] with the database's
// message, the rest is committed with the position. Other errors (the
// connection, a deadlock, a missing table or column) are returned: the
// change set is tried again later.
//
// # Tables
//
// Destination tables are named after the source tables without their
// schema, or as [Config.Tables] says, which also renames and picks
// columns. With [Config.CreateTables], a missing table is created from the
// change set's description of the source table (types mapped from
// PostgreSQL's type names; see the column types in the tests).
package sqlsink
