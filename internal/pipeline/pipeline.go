// Package pipeline holds what every part of a data pipeline shares: the
// changes a source reads, the change sets they are staged in, and the
// interfaces of sources (read strategies) and sinks (write strategies).
//
// A pipeline runs one source. The source reads a system's changes and hands
// them over in batches, each ending at a position the source can resume
// after (a transaction's commit, a cursor value, a delta token); the
// pipeline stages each batch as a change set (a compressed blob plus one
// event on the pipeline's change-log hub) before the source may confirm
// its position to the system. Each destination is a consumer group of the
// change-log hub: it reads change sets in order and applies them with its
// sink, at its own pace, and can be moved back to replay.
package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Op is what a change did to a row.
type Op string

const (
	// Insert: a new row (After holds it).
	Insert Op = "insert"
	// Update: a changed row (After holds it; Before the old one where the
	// source gives it).
	Update Op = "update"
	// Delete: a removed row (Key says which; Before holds it where the
	// source gives it).
	Delete Op = "delete"
	// Read: a row as a snapshot, a backfill or a cursor read saw it
	// (After holds it). Sinks apply it as an upsert.
	Read Op = "read"
)

// Valid reports whether op is one of the four.
func (op Op) Valid() bool {
	switch op {
	case Insert, Update, Delete, Read:
		return true
	}
	return false
}

// Row is a row's columns: column name → value. Values are what JSON
// carries: nil (SQL NULL), string, bool, json.Number, or nested
// map[string]any and []any for JSON columns. Sources that read text (as
// PostgreSQL's pgoutput does) give every non-null value as its text form;
// the table's column types say what it is.
type Row map[string]any

// Change is one row's change.
type Change struct {
	Op Op `json:"op"`
	// Table is the source's name of the table, schema-qualified where the
	// source has schemas ("public.orders").
	Table string `json:"table"`
	// Key holds the primary key's columns of the row the change applies
	// to, as it was before the change: for an insert or a read the new
	// row's key, for a delete the removed row's, for an update the old
	// key. An update whose After has a key column with another value than
	// Key's moved the row to a new key: a sink removes (or moves) the row
	// of Key and writes After under its own key, so that no row stays
	// behind under the old key.
	Key Row `json:"key"`
	// After is the row after an insert, update or read; nil for a
	// delete. It holds the new key's columns (a column it lacks, such as
	// an unchanged large value a source does not send, kept its value).
	After Row `json:"after,omitempty"`
	// Before is the row before an update or a delete where the source
	// gives it (PostgreSQL with REPLICA IDENTITY FULL), else nil. Its key
	// columns, when it has them, are Key's.
	Before Row `json:"before,omitempty"`
	// Position is the source's position of the change (for PostgreSQL the
	// LSN of its transaction's commit, as "16/B374D848").
	Position string `json:"position,omitempty"`
	// CommitTime is when the source committed it (zero when unknown).
	CommitTime time.Time `json:"commit_time,omitzero"`
}

// Moved reports whether an update moved its row to a new key: a key
// column of After differs from Key's.
func (c Change) Moved() bool {
	if c.Op == Delete {
		return false
	}
	for col, old := range c.Key {
		if v, ok := c.After[col]; ok && fmt.Sprint(v) != fmt.Sprint(old) {
			return true
		}
	}
	return false
}

// NewKey is the key the change leaves its row under: Key, or, for an
// update that moved the row, Key with After's values of its columns.
func (c Change) NewKey() Row {
	if !c.Moved() {
		return c.Key
	}
	key := make(Row, len(c.Key))
	for col, old := range c.Key {
		key[col] = old
		if v, ok := c.After[col]; ok {
			key[col] = v
		}
	}
	return key
}

// Column is a column of a table as the source describes it.
type Column struct {
	Name string `json:"name"`
	// Type is the source's type name ("int8", "text", "timestamptz",
	// "varchar(40)"...).
	Type string `json:"type"`
	// Key: the column is part of the primary key (or replica identity).
	Key bool `json:"key,omitempty"`
}

// Table describes a table whose changes a batch holds.
type Table struct {
	Name    string   `json:"name"`
	Columns []Column `json:"columns"`
}

// KeyColumns are the names of the table's key columns, in order.
func (t Table) KeyColumns() []string {
	var out []string
	for _, c := range t.Columns {
		if c.Key {
			out = append(out, c.Name)
		}
	}
	return out
}

// Batch is what a source hands over at once: changes in the source's
// order, ending at a point the source can resume after.
type Batch struct {
	Changes []Change
	// Tables describes every table the changes name.
	Tables map[string]Table
	// Position is where the source resumes after this batch: reading
	// again from it gives only later changes. Opaque to the pipeline.
	Position string
	// Snapshot: the changes are part of an initial snapshot (or a
	// backfill), not of the stream of changes.
	Snapshot bool
}

// Emit stages a batch durably. It returns once the change set is stored:
// only then may the source confirm the batch's position to its system.
type Emit func(ctx context.Context, b Batch) error

// Source is a read strategy.
type Source interface {
	// Run reads changes and hands them to emit, in order, until ctx ends
	// or it fails. after is the Position of the last batch staged (empty
	// when nothing was): Run never hands over a change at or before it,
	// even when the system (a replication slot that was not yet confirmed)
	// sends it again. A source that has to start over (its snapshot was
	// cut short) hands its reads over again, as Read changes, which sinks
	// apply idempotently.
	Run(ctx context.Context, after string, emit Emit) error
}

// ChangeSet is a staged batch: what a change-log event and its blob hold.
type ChangeSet struct {
	// Pipeline and Seq name it: Seq counts the pipeline's change sets
	// from 1.
	Pipeline string `json:"pipeline"`
	Seq      int64  `json:"seq"`
	// Blob is the name of the blob holding the changes, in the pipeline's
	// container.
	Blob     string           `json:"blob"`
	Count    int              `json:"count"`
	Tables   map[string]Table `json:"tables"`
	Position string           `json:"position"`
	Snapshot bool             `json:"snapshot,omitempty"`
	// First and Last are the earliest and latest commit times of its
	// changes (zero when the source gives none).
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Staged is when the pipeline stored it.
	Staged time.Time `json:"staged"`
}

// BlobName is the blob of change set seq: sortable by seq.
func BlobName(seq int64) string { return fmt.Sprintf("changes/%020d.jsonl.zst", seq) }

var (
	encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
)

// Encode writes changes as zstd-compressed JSON lines, one change per line.
func Encode(changes []Change) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range changes {
		if err := enc.Encode(&changes[i]); err != nil {
			return nil, fmt.Errorf("pipeline: encode change %d of %s: %w", i, changes[i].Table, err)
		}
	}
	return encoder.EncodeAll(buf.Bytes(), make([]byte, 0, buf.Len()/4)), nil
}

// ErrCorrupt: a change set's blob cannot be read back.
var ErrCorrupt = errors.New("pipeline: corrupt change set")

// Decode reads what Encode wrote. Numbers come back as json.Number.
func Decode(data []byte) ([]Change, error) {
	raw, err := decoder.DecodeAll(data, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	var out []Change
	dec := json.NewDecoder(bufio.NewReader(bytes.NewReader(raw)))
	dec.UseNumber()
	for {
		var c Change
		err := dec.Decode(&c)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: change %d: %v", ErrCorrupt, len(out), err)
		}
		out = append(out, c)
	}
}

// SourceLag is how far a source is behind its system.
type SourceLag struct {
	// Bytes the system keeps for the source past what it confirmed (a
	// PostgreSQL slot's WAL).
	Bytes int64 `json:"bytes"`
	// Seconds between the system writing a change and the source
	// confirming it (0 when caught up).
	Seconds float64 `json:"seconds"`
}

// Lagger is a source that can say how far behind its system it is.
type Lagger interface {
	Lag(ctx context.Context) (SourceLag, error)
}

// BackfillRequest asks a source to read rows of one of its tables again
// (a partial backfill, as Sequin and Debezium's incremental snapshots
// offer): the rows Where selects, or all of them.
type BackfillRequest struct {
	// Table is one of the source's tables, as its changes name it
	// ("public.orders"); the SQL sources also take the short form their
	// config takes ("orders").
	Table string `json:"table"`
	// Where is one SQL condition on the table's columns, in the source
	// database's dialect ("created_at >= '2026-12-01'"); empty: every
	// row. It is put in parentheses and runs in a read-only transaction;
	// one holding ';' is refused.
	Where string `json:"where,omitempty"`
}

// Backfiller is a source that can backfill: read a table's rows as they
// are now and hand them over as Read changes (Batch.Snapshot set,
// Position empty: the pipeline keeps its stream position; Tables
// described as the source's other batches), in key order, in batches of
// the source's batch size, each read by one keyset query in a short
// read-only transaction of its own, on connections of its own: Backfill
// may run while Run does, from another goroutine. Rows changed meanwhile
// also come through the stream after the backfill's rows, so a
// destination ends equal to the source. It returns the rows handed over
// (those before a failure, when it fails); progress, if not nil, is told
// the count after each batch. An unknown table, or a Where the database
// refuses, fails before anything is handed over, with an error that says
// so; an error of emit, or the end of ctx, stops it and is returned.
type Backfiller interface {
	Backfill(ctx context.Context, req BackfillRequest, emit Emit, progress func(rows int64)) (int64, error)
}

// Rejected is a change a sink refused for good (a row its destination
// cannot take), with the reason: it is dead-lettered, and the rest of the
// change set is applied.
type Rejected struct {
	Change Change
	Reason string
}

// Sink is a write strategy: it applies change sets to a destination.
//
// A sink must not modify the changes (nor their rows) it is given: the
// destinations of a pipeline share them.
type Sink interface {
	// Apply applies a change set's changes. Change sets come in Seq order,
	// but after a crash or a replay a sink gets again change sets it has
	// applied: their effect must not repeat (an SQL sink records the last
	// Seq applied in the same transaction as the rows and skips what it
	// has; the others write idempotently, by key). An error means nothing
	// durable can be assumed and the whole change set is tried again
	// later; rows refused for good are returned instead, and the others
	// applied.
	Apply(ctx context.Context, cs ChangeSet, changes []Change) ([]Rejected, error)
}
