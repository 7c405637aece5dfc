package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// runBaseline measures the baseline on fresh databases: the same load,
// carried by a plain program reading its own slot.
func (e *cdcEnv) runBaseline(ctx context.Context, o CDCOptions) (time.Duration, error) {
	if err := e.reset(ctx); err != nil {
		return 0, err
	}
	if _, err := e.src.Exec(ctx, "CREATE PUBLICATION "+cdcBaselineSlot+" FOR TABLE orders"); err != nil {
		return 0, fmt.Errorf("create the publication: %w", err)
	}
	b, err := startBaseline(ctx, e.srcURL, e.dstURL)
	if err != nil {
		return 0, err
	}
	defer b.stop()
	progress := func(context.Context) (int64, string, error) {
		if err := b.failed(); err != nil {
			return 0, "", err
		}
		n := b.applied.Load()
		return n, fmt.Sprintf("%d changes applied", n), nil
	}
	o.Progress("baseline: waiting for the replication to stream")
	if err := e.sentinel(ctx, o, "baseline", cdcReadyID, progress); err != nil {
		return 0, err
	}
	return e.phase(ctx, o, "baseline", cdcLoad{phase: 1, changes: o.Changes}, progress)
}

// cdcBaselineBatch is the most changes the baseline applies in one
// transaction (more when a source transaction is larger).
const cdcBaselineBatch = 1000

// cdcColumns are the replicated columns of orders, in the order the
// baseline keeps a row's values.
var cdcColumns = []string{"id", "customer", "status", "amount", "note", "written_at"}

// cdcBaseline is the baseline program: a reader decodes the slot's
// pgoutput stream into transactions; an applier takes what has arrived
// (up to cdcBaselineBatch changes, or whatever is there when the stream
// is idle), keeps each row's last change, and writes the batch in one
// transaction with unnest upserts and an ANY delete; the reader confirms
// the end of the last transaction applied.
type cdcBaseline struct {
	repl *pgconn.PgConn
	dst  *pgx.Conn
	txns chan cdcTxn
	// flushed is the end LSN of the last transaction applied; applied
	// counts the changes applied.
	flushed atomic.Uint64
	applied atomic.Int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
}

// cdcTxn is a source transaction's changes and its end.
type cdcTxn struct {
	changes []cdcChange
	end     pglogrepl.LSN
}

// cdcChange is an upsert of a row's values, in cdcColumns order, or a
// delete of its id (vals[0]).
type cdcChange struct {
	del  bool
	vals [6]string
}

// cdcRelation maps a relation's columns to cdcColumns (-1: not kept).
type cdcRelation []int

func startBaseline(ctx context.Context, srcURL, dstURL string) (*cdcBaseline, error) {
	cc, err := pgconn.ParseConfig(srcURL)
	if err != nil {
		return nil, err
	}
	cc.RuntimeParams["replication"] = "database"
	repl, err := pgconn.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("open a replication connection: %w", err)
	}
	// A temporary slot: the server drops it when the connection ends.
	slot, err := pglogrepl.CreateReplicationSlot(ctx, repl, cdcBaselineSlot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: true, Mode: pglogrepl.LogicalReplication})
	if err != nil {
		_ = repl.Close(ctx)
		return nil, fmt.Errorf("create the slot %s: %w", cdcBaselineSlot, err)
	}
	from, err := pglogrepl.ParseLSN(slot.ConsistentPoint)
	if err == nil {
		err = pglogrepl.StartReplication(ctx, repl, cdcBaselineSlot, from, pglogrepl.StartReplicationOptions{
			Mode: pglogrepl.LogicalReplication, PluginArgs: []string{"proto_version '1'", "publication_names '" + cdcBaselineSlot + "'"}})
	}
	if err != nil {
		_ = repl.Close(ctx)
		return nil, fmt.Errorf("start the replication: %w", err)
	}
	dst, err := pgx.Connect(ctx, dstURL)
	if err != nil {
		_ = repl.Close(ctx)
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b := &cdcBaseline{repl: repl, dst: dst, txns: make(chan cdcTxn, 256), cancel: cancel}
	b.flushed.Store(uint64(from))
	b.wg.Go(func() { b.fail(rctx, b.read(rctx)) })
	b.wg.Go(func() { b.fail(rctx, b.apply(rctx)) })
	return b, nil
}

func (b *cdcBaseline) fail(ctx context.Context, err error) {
	if err == nil || ctx.Err() != nil {
		return
	}
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	b.cancel()
}

// failed is the first error of the reader or the applier.
func (b *cdcBaseline) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *cdcBaseline) stop() {
	b.cancel()
	b.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.repl.Close(ctx)
	_ = b.dst.Close(ctx)
}

// read decodes the stream into transactions until ctx ends.
func (b *cdcBaseline) read(ctx context.Context) error {
	rels := map[uint32]cdcRelation{}
	var txn []cdcChange
	next := time.Now()
	for {
		if now := time.Now(); !now.Before(next) {
			if err := b.status(ctx); err != nil {
				return err
			}
			next = now.Add(time.Second)
		}
		rctx, cancel := context.WithDeadline(ctx, next)
		msg, err := b.repl.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		var data []byte
		switch msg := msg.(type) {
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(msg)
		case *pgproto3.CopyData:
			data = msg.Data
		default:
			continue
		}
		if len(data) == 0 {
			continue
		}
		switch data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
			if err != nil {
				return err
			}
			if ka.ReplyRequested {
				next = time.Now()
			}
			continue
		case pglogrepl.XLogDataByteID:
		default:
			continue
		}
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return err
		}
		m, err := pglogrepl.Parse(xld.WALData)
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *pglogrepl.RelationMessage:
			rel := make(cdcRelation, len(m.Columns))
			for i, c := range m.Columns {
				rel[i] = -1
				for j, name := range cdcColumns {
					if c.Name == name {
						rel[i] = j
					}
				}
			}
			rels[m.RelationID] = rel
		case *pglogrepl.BeginMessage:
			txn = make([]cdcChange, 0, len(txn))
		case *pglogrepl.InsertMessage:
			c, err := cdcRow(rels[m.RelationID], m.Tuple)
			if err != nil {
				return err
			}
			txn = append(txn, c)
		case *pglogrepl.UpdateMessage:
			c, err := cdcRow(rels[m.RelationID], m.NewTuple)
			if err != nil {
				return err
			}
			txn = append(txn, c)
		case *pglogrepl.DeleteMessage:
			c, err := cdcRow(rels[m.RelationID], m.OldTuple)
			if err != nil {
				return err
			}
			c.del = true
			txn = append(txn, c)
		case *pglogrepl.CommitMessage:
			select {
			case b.txns <- cdcTxn{changes: txn, end: m.TransactionEndLSN}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// cdcRow is a tuple's values (a delete's tuple has the key only).
func cdcRow(rel cdcRelation, t *pglogrepl.TupleData) (cdcChange, error) {
	var c cdcChange
	if rel == nil || t == nil {
		return c, errors.New("a change of an unknown relation, or without its row")
	}
	for i, col := range t.Columns {
		if i >= len(rel) || rel[i] < 0 {
			continue
		}
		switch col.DataType {
		case pglogrepl.TupleDataTypeText:
			c.vals[rel[i]] = string(col.Data)
		case pglogrepl.TupleDataTypeNull:
		default:
			return c, fmt.Errorf("column %s came as %q, not as text", cdcColumns[rel[i]], col.DataType)
		}
	}
	return c, nil
}

// status confirms the end of the last transaction applied.
func (b *cdcBaseline) status(ctx context.Context) error {
	lsn := pglogrepl.LSN(b.flushed.Load())
	return pglogrepl.SendStandbyStatusUpdate(ctx, b.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: lsn, WALFlushPosition: lsn, WALApplyPosition: lsn})
}

const cdcUpsert = `INSERT INTO orders (id, customer, status, amount, note, written_at)
SELECT u.id::bigint, u.customer, u.status, u.amount::numeric, u.note, u.written_at::timestamptz
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(id, customer, status, amount, note, written_at)
ON CONFLICT (id) DO UPDATE SET customer = EXCLUDED.customer, status = EXCLUDED.status, amount = EXCLUDED.amount,
	note = EXCLUDED.note, written_at = EXCLUDED.written_at`

// apply writes batches of the transactions read until ctx ends.
func (b *cdcBaseline) apply(ctx context.Context) error {
	var batch []cdcChange
	last := map[string]int{} // id → index in rows
	var rows []cdcChange
	for {
		var end pglogrepl.LSN
		select {
		case t := <-b.txns:
			batch, end = append(batch[:0], t.changes...), t.end
		case <-ctx.Done():
			return nil
		}
	more:
		for len(batch) < cdcBaselineBatch {
			select {
			case t := <-b.txns:
				batch, end = append(batch, t.changes...), t.end
			default:
				break more
			}
		}
		// Each row's last change is its state.
		clear(last)
		rows = rows[:0]
		for _, c := range batch {
			if i, ok := last[c.vals[0]]; ok {
				rows[i] = c
				continue
			}
			last[c.vals[0]] = len(rows)
			rows = append(rows, c)
		}
		var dels []string
		var cols [6][]string
		for _, c := range rows {
			if c.del {
				dels = append(dels, c.vals[0])
				continue
			}
			for i := range cols {
				cols[i] = append(cols[i], c.vals[i])
			}
		}
		err := pgx.BeginFunc(ctx, b.dst, func(tx pgx.Tx) error {
			if len(dels) > 0 {
				if _, err := tx.Exec(ctx, "DELETE FROM orders WHERE id = ANY($1::text[]::bigint[])", dels); err != nil {
					return err
				}
			}
			if len(cols[0]) > 0 {
				if _, err := tx.Exec(ctx, cdcUpsert, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("apply %d changes: %w", len(batch), err)
		}
		b.flushed.Store(uint64(end))
		b.applied.Add(int64(len(batch)))
	}
}
