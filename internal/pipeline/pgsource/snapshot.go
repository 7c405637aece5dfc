package pgsource

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// snapshot creates the slot, exporting the snapshot of its consistent
// point, and hands over every row of the tables in that snapshot. It
// returns the consistent point: the slot streams exactly the transactions
// that commit at or after it.
//
// The exported snapshot lives as long as the replication connection that
// made it stays open and idle, so the rows are read on the ordinary
// connection before anything else is sent on the replication one.
func (r *run) snapshot(ctx context.Context) (pglogrepl.LSN, error) {
	s := r.src
	res, err := pglogrepl.CreateReplicationSlot(ctx, r.repl, s.slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		return 0, fmt.Errorf("pgsource: create replication slot %s: %w", s.slot, err)
	}
	consistent, err := parseLSN(res.ConsistentPoint)
	if err != nil {
		return 0, fmt.Errorf("pgsource: replication slot %s: consistent point: %w", s.slot, err)
	}
	if res.SnapshotName == "" || strings.Trim(res.SnapshotName, "0123456789ABCDEFabcdef-") != "" {
		return 0, fmt.Errorf("pgsource: replication slot %s: unexpected snapshot name %q", s.slot, res.SnapshotName)
	}
	s.log.Info("pgsource: created the replication slot; taking the snapshot", "consistent_point", consistent.String(), "snapshot", res.SnapshotName)

	tx, err := r.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, fmt.Errorf("pgsource: begin the snapshot: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read only; the connection closes anyway
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+res.SnapshotName+"'"); err != nil {
		return 0, fmt.Errorf("pgsource: use the slot's snapshot: %w", err)
	}

	b := snapshotBatcher{emit: r.emit, size: s.cfg.BatchSize}
	var total int64
	for i, t := range r.tables {
		cols := make([]string, len(t.desc.Columns))
		for j, c := range t.desc.Columns {
			cols[j] = pgx.Identifier{c.Name}.Sanitize()
		}
		q := "SELECT " + strings.Join(cols, ", ") + " FROM ONLY " + t.name.sql()
		if t.indexed {
			// A primary key or an index: read in its order. (A table of
			// REPLICA IDENTITY FULL without either is read as it comes:
			// its columns may have no order.)
			keys := make([]string, len(t.key))
			for j, k := range t.key {
				keys[j] = pgx.Identifier{k}.Sanitize()
			}
			q += " ORDER BY " + strings.Join(keys, ", ")
		}
		// Text results: each value as its type's output function writes
		// it, as pgoutput sends them in the stream.
		rows, err := tx.Query(ctx, q, pgx.QueryResultFormats{pgx.TextFormatCode})
		if err != nil {
			return 0, fmt.Errorf("pgsource: snapshot of %s: %w", t.name, err)
		}
		var n int64
		for rows.Next() {
			row := textRow(rows.RawValues(), t.desc.Columns)
			n++
			c := pipeline.Change{Op: pipeline.Read, Table: t.desc.Name, Key: keyOf(row, t.key), After: row, Position: consistent.String()}
			if err := b.add(ctx, c, t.desc, position{kind: posSnapshot, lsn: consistent, table: i, rows: n}); err != nil {
				rows.Close()
				return 0, err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("pgsource: snapshot of %s: %w", t.name, err)
		}
		s.log.Debug("pgsource: read a table of the snapshot", "table", t.desc.Name, "rows", n)
		total += n
	}
	if err := b.finish(ctx, position{kind: posSnapshotDone, lsn: consistent}); err != nil {
		return 0, err
	}
	s.log.Info("pgsource: snapshot done", "rows", total, "consistent_point", consistent.String())
	return consistent, nil
}

// snapshotBatcher batches the snapshot's reads. It hands a full batch
// over only when the next row comes, so that the last batch, whatever its
// size, is the one that says the snapshot is done.
type snapshotBatcher struct {
	emit    pipeline.Emit
	size    int
	changes []pipeline.Change
	tables  map[string]pipeline.Table
	pos     position
}

func (b *snapshotBatcher) add(ctx context.Context, c pipeline.Change, desc pipeline.Table, pos position) error {
	if len(b.changes) >= b.size {
		if err := b.hand(ctx, b.pos); err != nil {
			return err
		}
	}
	if b.tables == nil {
		b.tables = map[string]pipeline.Table{}
	}
	b.changes = append(b.changes, c)
	b.tables[desc.Name] = desc
	b.pos = pos
	return nil
}

// finish hands the last batch over with the position done; when the
// tables were empty, it is an empty batch.
func (b *snapshotBatcher) finish(ctx context.Context, done position) error { return b.hand(ctx, done) }

func (b *snapshotBatcher) hand(ctx context.Context, pos position) error {
	batch := pipeline.Batch{Changes: b.changes, Tables: b.tables, Position: pos.String(), Snapshot: true}
	if batch.Tables == nil {
		batch.Tables = map[string]pipeline.Table{}
	}
	if err := b.emit(ctx, batch); err != nil {
		return fmt.Errorf("pgsource: stage the snapshot batch ending at %s: %w", batch.Position, err)
	}
	b.changes, b.tables = nil, nil
	return nil
}

// textRow is a row read in text format (its values as their types'
// output functions write them, as pgoutput sends them): the first
// len(cols) values, by column, SQL NULL as nil.
func textRow(raw [][]byte, cols []pipeline.Column) pipeline.Row {
	row := make(pipeline.Row, len(cols))
	for j, c := range cols {
		if raw[j] == nil {
			row[c.Name] = nil
		} else {
			row[c.Name] = string(raw[j])
		}
	}
	return row
}

// keyOf is the key columns of row (those it holds).
func keyOf(row pipeline.Row, key []string) pipeline.Row {
	out := make(pipeline.Row, len(key))
	for _, k := range key {
		if v, ok := row[k]; ok {
			out[k] = v
		}
	}
	return out
}
