package pgsource

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// relation is a table as the stream's last Relation message for it
// described it.
type relation struct {
	// skip: not a configured table (a publication FOR ALL TABLES made by
	// hand): its changes are left out.
	skip bool
	desc pipeline.Table
	key  []string
}

// streamer reads the slot's changes and hands them over in batches of
// whole transactions.
type streamer struct {
	*run
	byName map[string]*tableInfo
	rels   map[uint32]*relation

	// from: transactions committed below it were staged before; they are
	// skipped when the slot sends them again.
	from pglogrepl.LSN
	// confirmed is the position reported to the server as written,
	// flushed and applied: the end of the last transaction staged, or
	// further while nothing is pending (see advance). sent is the last
	// one reported.
	confirmed, sent pglogrepl.LSN
	nextStatus      time.Time

	// The transaction being received.
	inTxn     bool
	skipTxn   bool
	txn       []pipeline.Change
	txnTables map[string]pipeline.Table
	txnLSN    pglogrepl.LSN
	txnTime   time.Time
	txnWarned bool

	// The batch being filled: whole transactions, handed over when full
	// or at flushAt.
	batch       []pipeline.Change
	batchTables map[string]pipeline.Table
	batchLast   pglogrepl.LSN // commit LSN of its last transaction
	batchEnd    pglogrepl.LSN // end of its last transaction (or of an empty one after it)
	flushAt     time.Time
}

func (r *run) stream(ctx context.Context, from, confirmed pglogrepl.LSN) error {
	s := r.src
	st := &streamer{run: r, byName: map[string]*tableInfo{}, rels: map[uint32]*relation{},
		from: from, confirmed: confirmed, txnTables: map[string]pipeline.Table{}, batchTables: map[string]pipeline.Table{}}
	for _, t := range r.tables {
		st.byName[t.desc.Name] = t
	}
	// Start at 0: the server starts at the slot's confirmed position, and
	// anything it sends again below from is skipped here.
	err := pglogrepl.StartReplication(ctx, r.repl, s.slot, 0, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names '" + s.slot + "'"},
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("pgsource: start replication from slot %s: %w", s.slot, err)
	}
	s.log.Info("pgsource: streaming", "from", from.String(), "confirmed", confirmed.String())
	// Tell the server at once how far things are staged: it may not know
	// yet (Run ended between staging and confirming).
	if err := st.sendStatus(); err != nil {
		return err
	}
	for {
		if err := st.step(ctx); err != nil {
			if ctx.Err() != nil {
				// Confirm what was staged on the way out (what is
				// pending is not: the server sends it again).
				if st.confirmed > st.sent {
					_ = st.sendStatus()
				}
				return ctx.Err()
			}
			return err
		}
	}
}

// step waits for the next message (or for a deadline: a status update or
// a partial batch to hand over) and handles it.
func (st *streamer) step(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	if len(st.batch) > 0 && !now.Before(st.flushAt) {
		if err := st.flush(ctx); err != nil {
			return err
		}
	}
	if !now.Before(st.nextStatus) || st.confirmed > st.sent {
		if err := st.sendStatus(); err != nil {
			return err
		}
	}
	deadline := st.nextStatus
	if len(st.batch) > 0 && st.flushAt.Before(deadline) {
		deadline = st.flushAt
	}
	rctx, cancel := context.WithDeadline(ctx, deadline)
	msg, err := st.repl.ReceiveMessage(rctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && pgconn.Timeout(err) {
			return nil
		}
		return fmt.Errorf("pgsource: receive from slot %s: %w", st.src.slot, err)
	}
	switch msg := msg.(type) {
	case *pgproto3.CopyData:
		return st.copyData(ctx, msg.Data)
	case *pgproto3.ErrorResponse:
		return fmt.Errorf("pgsource: slot %s: %w", st.src.slot, pgconn.ErrorResponseToPgError(msg))
	case *pgproto3.CopyDone:
		return fmt.Errorf("pgsource: the server ended the replication from slot %s", st.src.slot)
	}
	return nil
}

func (st *streamer) copyData(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("pgsource: slot %s: %w", st.src.slot, err)
		}
		// The server sent every transaction that commits below its WAL
		// end before this message. If nothing is pending, all of them are
		// staged (or skipped), so the slot may move up to it.
		st.advance(ka.ServerWALEnd)
		if ka.ReplyRequested {
			return st.sendStatus()
		}
		return nil
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("pgsource: slot %s: %w", st.src.slot, err)
		}
		return st.message(ctx, xld.WALData)
	}
	return nil
}

// advance moves the confirmed position to lsn if nothing is pending: no
// transaction being received, no batch waiting to be handed over.
func (st *streamer) advance(lsn pglogrepl.LSN) {
	if !st.inTxn && len(st.batch) == 0 && lsn > st.confirmed {
		st.confirmed = lsn
	}
}

func (st *streamer) sendStatus() error {
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), st.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: st.confirmed,
		WALFlushPosition: st.confirmed,
		WALApplyPosition: st.confirmed,
	})
	if err != nil {
		return fmt.Errorf("pgsource: send a status update to slot %s: %w", st.src.slot, err)
	}
	st.sent = st.confirmed
	st.nextStatus = time.Now().Add(st.src.cfg.StandbyTimeout)
	return nil
}

var errProtocol = errors.New("pgsource: unexpected replication message")

func (st *streamer) message(ctx context.Context, data []byte) error {
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return fmt.Errorf("pgsource: slot %s: decode: %w", st.src.slot, err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return st.relation(ctx, m)
	case *pglogrepl.BeginMessage:
		if st.inTxn {
			return fmt.Errorf("%w: Begin of %s within a transaction", errProtocol, m.FinalLSN)
		}
		st.inTxn = true
		st.skipTxn = m.FinalLSN < st.from
		st.txn = st.txn[:0]
		clear(st.txnTables)
		st.txnLSN, st.txnTime = m.FinalLSN, m.CommitTime.UTC()
		st.txnWarned = false
		return nil
	case *pglogrepl.InsertMessage:
		rel, err := st.change(m.RelationID)
		if rel == nil || err != nil {
			return err
		}
		after, err := decodeTuple(rel, m.Tuple)
		if err != nil {
			return err
		}
		st.add(rel, pipeline.Change{Op: pipeline.Insert, Key: keyOf(after, rel.key), After: after})
		return nil
	case *pglogrepl.UpdateMessage:
		rel, err := st.change(m.RelationID)
		if rel == nil || err != nil {
			return err
		}
		after, err := decodeTuple(rel, m.NewTuple)
		if err != nil {
			return err
		}
		c := pipeline.Change{Op: pipeline.Update, Key: keyOf(after, rel.key), After: after}
		if m.OldTuple != nil {
			// The old key (the key changed) or the old row (REPLICA
			// IDENTITY FULL).
			old, err := decodeTuple(rel, m.OldTuple)
			if err != nil {
				return err
			}
			c.Key = keyOf(old, rel.key)
			if m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld {
				c.Before = old
			} else if len(after) < len(rel.desc.Columns) {
				// The row moved to a new key with a large value left
				// alone: the server sent neither it nor the old row, so
				// a destination that moves the row by key cannot have it.
				st.src.log.Warn("pgsource: an update moved a row to a new key and left a large (TOASTed) value out: destinations that write rows by key lose that value; set REPLICA IDENTITY FULL on the table so that the old row carries it",
					"table", rel.desc.Name, "commit_lsn", st.txnLSN.String())
			}
		}
		st.add(rel, c)
		return nil
	case *pglogrepl.DeleteMessage:
		rel, err := st.change(m.RelationID)
		if rel == nil || err != nil {
			return err
		}
		old, err := decodeTuple(rel, m.OldTuple)
		if err != nil {
			return err
		}
		c := pipeline.Change{Op: pipeline.Delete, Key: keyOf(old, rel.key)}
		if m.OldTupleType == pglogrepl.DeleteMessageTupleTypeOld {
			c.Before = old
		}
		st.add(rel, c)
		return nil
	case *pglogrepl.TruncateMessage:
		if !st.inTxn || st.skipTxn {
			return nil
		}
		var names []string
		for _, id := range m.RelationIDs {
			if rel := st.rels[id]; rel != nil && !rel.skip {
				names = append(names, rel.desc.Name)
			}
		}
		if len(names) > 0 {
			st.src.log.Warn("pgsource: TRUNCATE is not carried over: the destinations keep the rows; start the pipeline over to take a new snapshot if they should not",
				"tables", names, "commit_lsn", st.txnLSN.String())
		}
		return nil
	case *pglogrepl.CommitMessage:
		return st.commit(ctx, m)
	}
	// Type, Origin and logical decoding messages say nothing a batch needs.
	return nil
}

func (st *streamer) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	name := m.Namespace + "." + m.RelationName
	info := st.byName[name]
	if info == nil {
		st.rels[m.RelationID] = &relation{skip: true}
		return nil
	}
	desc := pipeline.Table{Name: name, Columns: make([]pipeline.Column, len(m.Columns))}
	// Key columns: the ones the server flags (the primary key's or the
	// replica identity index's), except that with REPLICA IDENTITY FULL
	// it flags every column: then the primary key's, if there is one.
	usePK := m.ReplicaIdentity == 'f' && info.indexed
	for i, c := range m.Columns {
		typ, err := st.types.name(ctx, c.DataType, c.TypeModifier)
		if err != nil {
			return err
		}
		key := c.Flags&1 != 0
		if usePK {
			key = slices.Contains(info.key, c.Name)
		}
		desc.Columns[i] = pipeline.Column{Name: c.Name, Type: typ, Key: key}
	}
	rel := &relation{desc: desc}
	// Key order: the index's where known.
	for _, k := range info.key {
		if slices.ContainsFunc(desc.Columns, func(c pipeline.Column) bool { return c.Key && c.Name == k }) {
			rel.key = append(rel.key, k)
		}
	}
	for _, c := range desc.Columns {
		if c.Key && !slices.Contains(rel.key, c.Name) {
			rel.key = append(rel.key, c.Name)
		}
	}
	// A batch describes each table once: if the table changed shape,
	// hand over the batch of its earlier shape first.
	if old, ok := st.batchTables[name]; ok && !tablesEqual(old, desc) {
		if err := st.flush(ctx); err != nil {
			return err
		}
	}
	st.rels[m.RelationID] = rel
	return nil
}

func tablesEqual(a, b pipeline.Table) bool {
	return a.Name == b.Name && slices.Equal(a.Columns, b.Columns)
}

// change returns the relation of a row change to hand over, or nil when
// the change is skipped.
func (st *streamer) change(id uint32) (*relation, error) {
	if !st.inTxn {
		return nil, fmt.Errorf("%w: a row change outside a transaction", errProtocol)
	}
	if st.skipTxn {
		return nil, nil
	}
	rel := st.rels[id]
	if rel == nil {
		return nil, fmt.Errorf("%w: a row change of relation %d before its Relation message", errProtocol, id)
	}
	if rel.skip {
		return nil, nil
	}
	return rel, nil
}

func (st *streamer) add(rel *relation, c pipeline.Change) {
	c.Table = rel.desc.Name
	c.Position = st.txnLSN.String()
	c.CommitTime = st.txnTime
	st.txn = append(st.txn, c)
	st.txnTables[rel.desc.Name] = rel.desc
	if len(st.txn) == 100*st.src.cfg.BatchSize && !st.txnWarned {
		st.txnWarned = true
		st.src.log.Warn("pgsource: a large transaction is held in memory until its commit", "changes", len(st.txn), "commit_lsn", st.txnLSN.String())
	}
}

func (st *streamer) commit(ctx context.Context, m *pglogrepl.CommitMessage) error {
	if !st.inTxn {
		return fmt.Errorf("%w: Commit of %s outside a transaction", errProtocol, m.CommitLSN)
	}
	if m.CommitLSN != st.txnLSN {
		return fmt.Errorf("%w: Commit of %s in the transaction that began for %s", errProtocol, m.CommitLSN, st.txnLSN)
	}
	st.inTxn = false
	if st.skipTxn || len(st.txn) == 0 {
		// Nothing to hand over (staged already, or no change of the
		// tables): the slot may move past it once what is pending is.
		if len(st.batch) > 0 {
			st.batchEnd = m.TransactionEndLSN
		} else {
			st.advance(m.TransactionEndLSN)
		}
		return nil
	}
	size := st.src.cfg.BatchSize
	if len(st.batch) > 0 && len(st.batch)+len(st.txn) > size {
		if err := st.flush(ctx); err != nil {
			return err
		}
	}
	for name, desc := range st.txnTables {
		if old, ok := st.batchTables[name]; ok && !tablesEqual(old, desc) {
			if err := st.flush(ctx); err != nil {
				return err
			}
			break
		}
	}
	if len(st.batch) == 0 {
		st.flushAt = time.Now().Add(st.src.cfg.MaxWait)
	}
	st.batch = append(st.batch, st.txn...)
	st.txn = st.txn[:0]
	maps.Copy(st.batchTables, st.txnTables)
	st.batchLast, st.batchEnd = m.CommitLSN, m.TransactionEndLSN
	if len(st.batch) >= size {
		return st.flush(ctx)
	}
	return nil
}

// flush hands the batch over and, once it is staged, confirms its end.
func (st *streamer) flush(ctx context.Context) error {
	if len(st.batch) == 0 {
		return nil
	}
	b := pipeline.Batch{
		Changes:  st.batch,
		Tables:   st.batchTables,
		Position: position{kind: posLSN, lsn: st.batchLast}.String(),
	}
	if err := st.emit(ctx, b); err != nil {
		return fmt.Errorf("pgsource: stage the batch ending at %s: %w", b.Position, err)
	}
	st.batch, st.batchTables = nil, map[string]pipeline.Table{}
	st.confirmed = max(st.confirmed, st.batchEnd)
	return nil
}

// decodeTuple reads a tuple's text values: SQL NULL as nil, an unchanged
// TOASTed value (which the server does not send) left out.
func decodeTuple(rel *relation, t *pglogrepl.TupleData) (pipeline.Row, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: a change of %s without its row", errProtocol, rel.desc.Name)
	}
	if len(t.Columns) != len(rel.desc.Columns) {
		return nil, fmt.Errorf("%w: a row of %s with %d columns, its Relation message has %d", errProtocol, rel.desc.Name, len(t.Columns), len(rel.desc.Columns))
	}
	row := make(pipeline.Row, len(t.Columns))
	for i, c := range t.Columns {
		name := rel.desc.Columns[i].Name
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
			row[name] = nil
		case pglogrepl.TupleDataTypeToast:
		case pglogrepl.TupleDataTypeText:
			row[name] = string(c.Data)
		default:
			return nil, fmt.Errorf("%w: column %s of %s in format %q", errProtocol, name, rel.desc.Name, c.DataType)
		}
	}
	return row, nil
}
