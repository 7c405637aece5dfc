// Package sqlite is the embedded document store: one SQLite database (pure
// Go driver, WAL mode) under the data directory.
//
// Documents live in one table, `documents`, whose `body` column holds each
// document's JSON with its system fields, so `sqlite3 docs.db "select
// json_extract(body, '$.battery') from documents where container =
// 'devices'"` works. Writes go through one connection, so LSNs are
// committed in order: the change feed is simply the rows ordered by LSN.
//
// The schema has a version (table schema_migrations): Open brings a
// database of an earlier release up to date with the migrations after its
// version, and refuses one written by a newer release (NewerSchemaError).
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // and the database/sql driver "sqlite"

	"github.com/sluicehq/sluice/internal/docstore"
)

// Options tune the store. Zero values mean the defaults.
type Options struct {
	// MaxDocumentBytes bounds a document. Default 2 MiB.
	MaxDocumentBytes int
	// TombstoneRetention is how long deletes stay in the change feed.
	// Default 7 days.
	TombstoneRetention time.Duration
	// SyncNormal trades durability on power loss (not on process crash)
	// for speed: SQLite's synchronous=NORMAL instead of FULL.
	SyncNormal bool
}

// Store is a document store on SQLite.
type Store struct {
	w, r *sql.DB
	opts Options

	mu        sync.Mutex
	signals   docstore.Signals
	cache     map[string]docstore.Container
	lastClean time.Time
	cleaning  sync.WaitGroup
	upserts   map[int]*sql.Stmt // prepared upserts of n rows, on the writer
	readManys map[int]*sql.Stmt // prepared ReadMany statements of n keys, on the readers
	// read is the prepared point read, on the readers: parsing it took
	// half of a read's time.
	read *sql.Stmt
}

const readQuery = `SELECT pk, id, body, etag, ts, lsn, deleted FROM documents WHERE container = ? AND pk = ? AND id = ? AND deleted = 0 AND ts >= ?`

var _ docstore.Store = (*Store)(nil)

// DocumentsDDL creates a table of the documents table's shape, with its
// indexes, named table (benchmarks compare the store with plain SQL on
// one). It is the shape the migrations make (a test holds them to it).
func DocumentsDDL(table string) string {
	return `
CREATE TABLE IF NOT EXISTS ` + table + ` (` + documentColumns + `);
CREATE UNIQUE INDEX IF NOT EXISTS ` + table + `_key ON ` + table + ` (container, pk, id);
CREATE UNIQUE INDEX IF NOT EXISTS ` + table + `_feed ON ` + table + ` (container, lsn);
`
}

// documentColumns are the columns of the documents table. It is a rowid
// table with a unique index on the key: documents are far larger than the
// 1/20 of a page that a WITHOUT ROWID table's rows should stay under, and
// as one they made every B-tree level hold whole documents.
const documentColumns = `
	container TEXT NOT NULL,
	pk TEXT NOT NULL,
	id TEXT NOT NULL,
	body TEXT,
	etag TEXT NOT NULL,
	ts INTEGER NOT NULL,
	lsn INTEGER NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0,
	pk_hash INTEGER
`

// tuning keeps a statement's journal in memory: a bulk upsert is one
// statement of many rows, and SQLite journals every page it changes so the
// statement can be undone on its own; in a temporary file that was a fifth
// of its time.
const tuning = "&_pragma=temp_store(MEMORY)"

// writerCache gives the writer a page cache of 64 MiB instead of 2 MiB, so
// the indexes of a large container stay in memory while it writes. Readers
// keep the default: there are several of them.
const writerCache = "&_pragma=cache_size(-65536)"

// Open opens (creating if needed) the database at path.
func Open(path string, opts Options) (*Store, error) {
	opts.MaxDocumentBytes = cmp.Or(opts.MaxDocumentBytes, docstore.DefaultMaxDocumentBytes)
	opts.TombstoneRetention = cmp.Or(opts.TombstoneRetention, 7*24*time.Hour)
	sync := "FULL"
	if opts.SyncNormal {
		sync = "NORMAL"
	}
	// busy_timeout first: the pragmas run in order when a connection opens,
	// and journal_mode(WAL) waits for other openers' locks only once it is
	// set (else concurrent opens failed at once with SQLITE_BUSY).
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(ON)&_pragma=synchronous(" + sync + ")" + tuning
	w, err := sql.Open("sqlite", dsn+writerCache+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("docstore: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	if err := migrate(context.Background(), w, path, migrations); err != nil {
		w.Close()
		if _, ok := errors.AsType[*NewerSchemaError](err); ok {
			return nil, fmt.Errorf("docstore: %w", err)
		}
		return nil, fmt.Errorf("docstore: prepare %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(ON)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("docstore: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	read, err := r.Prepare(readQuery)
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("docstore: prepare %s: %w", path, err)
	}
	return &Store{w: w, r: r, opts: opts, cache: map[string]docstore.Container{}, upserts: map[int]*sql.Stmt{},
		readManys: map[int]*sql.Stmt{}, read: read}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.cleaning.Wait()
	s.mu.Lock()
	var errs []error
	for _, st := range s.upserts {
		errs = append(errs, st.Close())
	}
	for _, st := range s.readManys {
		errs = append(errs, st.Close())
	}
	s.upserts, s.readManys = nil, nil
	s.mu.Unlock()
	return errors.Join(append(errs, s.read.Close(), s.r.Close(), s.w.Close())...)
}

// Changed implements docstore.Store.
func (s *Store) Changed(container string) <-chan struct{} { return s.signals.Wait(container) }

func (s *Store) notify(container string) {
	s.signals.Notify(container)
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); now.Sub(s.lastClean) > cleanEvery {
		s.lastClean = now
		s.cleaning.Go(s.clean)
	}
}

// cleanEvery is how often, at most, writes trigger removing expired
// documents and old tombstones.
const cleanEvery = time.Minute

// liveSince is the oldest write time of a container's live documents:
// older ones have outlived the container's TTL (and are removed soon).
func liveSince(c docstore.Container) int64 {
	if c.DefaultTTL <= 0 {
		return 0
	}
	return time.Now().Add(-c.DefaultTTL).UnixNano()
}

// clean removes documents past their container's TTL (without a
// tombstone, as Cosmos DB does) and tombstones past the retention.
func (s *Store) clean() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now()
	_, _ = s.w.ExecContext(ctx, `DELETE FROM documents WHERE deleted = 1 AND ts < ?`, now.Add(-s.opts.TombstoneRetention).UnixNano())
	_, _ = s.w.ExecContext(ctx, `DELETE FROM documents WHERE deleted = 0 AND ts < ? - (SELECT default_ttl_ms FROM containers WHERE name = documents.container) * 1000000
		AND (SELECT default_ttl_ms FROM containers WHERE name = documents.container) > 0`, now.UnixNano())
}

// CreateContainer implements docstore.Store.
func (s *Store) CreateContainer(ctx context.Context, c docstore.Container) (docstore.Container, error) {
	if err := c.Validate(); err != nil {
		return docstore.Container{}, err
	}
	c.Created = time.Now().UTC().Truncate(time.Millisecond)
	_, err := s.w.ExecContext(ctx, `INSERT INTO containers (name, partition_key_path, default_ttl_ms, created) VALUES (?, ?, ?, ?)`,
		c.Name, c.PartitionKeyPath, c.DefaultTTL.Milliseconds(), c.Created.Format(time.RFC3339Nano))
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return docstore.Container{}, fmt.Errorf("%w: container %s", docstore.ErrExists, c.Name)
	}
	if err != nil {
		return docstore.Container{}, classify(fmt.Errorf("docstore: create container %s: %w", c.Name, err))
	}
	return c, nil
}

// GetContainer implements docstore.Store.
func (s *Store) GetContainer(ctx context.Context, name string) (docstore.Container, error) {
	s.mu.Lock()
	c, ok := s.cache[name]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := scanContainer(s.r.QueryRowContext(ctx, `SELECT name, partition_key_path, default_ttl_ms, created FROM containers WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return docstore.Container{}, fmt.Errorf("%w: container %s", docstore.ErrNotFound, name)
	}
	if err != nil {
		return docstore.Container{}, classify(fmt.Errorf("docstore: get container %s: %w", name, err))
	}
	s.mu.Lock()
	s.cache[name] = c
	s.mu.Unlock()
	return c, nil
}

type scanner interface{ Scan(...any) error }

func scanContainer(row scanner) (docstore.Container, error) {
	var c docstore.Container
	var ttl int64
	var created string
	if err := row.Scan(&c.Name, &c.PartitionKeyPath, &ttl, &created); err != nil {
		return c, err
	}
	c.DefaultTTL = time.Duration(ttl) * time.Millisecond
	c.Created, _ = time.Parse(time.RFC3339Nano, created)
	return c, nil
}

// ListContainers implements docstore.Store.
func (s *Store) ListContainers(ctx context.Context) ([]docstore.Container, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, partition_key_path, default_ttl_ms, created FROM containers ORDER BY name`)
	if err != nil {
		return nil, classify(fmt.Errorf("docstore: list containers: %w", err))
	}
	defer rows.Close()
	var out []docstore.Container
	for rows.Next() {
		c, err := scanContainer(rows)
		if err != nil {
			return nil, classify(fmt.Errorf("docstore: list containers: %w", err))
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteContainer implements docstore.Store.
func (s *Store) DeleteContainer(ctx context.Context, name string) error {
	if _, err := s.GetContainer(ctx, name); err != nil {
		return err
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM documents WHERE container = ?`, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM containers WHERE name = ?`, name)
		return err
	})
	s.mu.Lock()
	delete(s.cache, name)
	s.mu.Unlock()
	s.notify(name)
	if err != nil {
		return classify(fmt.Errorf("docstore: delete container %s: %w", name, err))
	}
	return nil
}

func (s *Store) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// nextLSNs reserves n LSNs of a container and returns the first.
func nextLSNs(ctx context.Context, tx *sql.Tx, container string, n int) (int64, error) {
	var last int64
	err := tx.QueryRowContext(ctx, `UPDATE containers SET last_lsn = last_lsn + ? WHERE name = ? RETURNING last_lsn`, n, container).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: container %s", docstore.ErrNotFound, container)
	}
	return last - int64(n) + 1, err
}

// current is a stored row's version: its ETag, whether it is a tombstone,
// and its fields.
type current struct {
	found   bool
	deleted bool
	etag    string
	body    []byte
}

func (s *Store) current(ctx context.Context, tx *sql.Tx, container, pk, id string) (current, error) {
	var c current
	var body sql.NullString
	var ts int64
	err := tx.QueryRowContext(ctx, `SELECT etag, deleted, body, ts FROM documents WHERE container = ? AND pk = ? AND id = ?`, container, pk, id).
		Scan(&c.etag, &c.deleted, &body, &ts)
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil
	}
	c.found, c.body = err == nil, []byte(body.String)
	if cont, cerr := s.GetContainer(ctx, container); cerr == nil && ts < liveSince(cont) {
		// Past the container's TTL: gone, though not yet removed.
		c.deleted = true
	}
	return c, err
}

func (s *Store) put(ctx context.Context, tx *sql.Tx, container string, p docstore.Prepared, lsn int64, now time.Time) (docstore.Document, error) {
	etag := docstore.ETagFor(lsn)
	body := p.Render(etag, now, lsn)
	_, err := tx.ExecContext(ctx, upsertStatement(1),
		container, p.PartitionKey, p.ID, string(body), etag, now.UnixNano(), lsn, docstore.PartitionKeyHash(p.PartitionKey))
	return docstore.Document{ID: p.ID, PartitionKey: p.PartitionKey, ETag: etag, TS: now, LSN: lsn, Body: body}, err
}

// bulkRows bounds the rows of one statement of a bulk upsert: 8 bound
// parameters each, under SQLite's limit of 32766.
const bulkRows = 2000

// upsertStatement is the statement that upserts n rows, with the
// parameters container, pk, id, body, etag, ts, lsn, pk_hash for each.
func upsertStatement(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO documents (container, pk, id, body, etag, ts, lsn, deleted, pk_hash) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?, ?, ?, ?, ?, ?, 0, ?)`)
	}
	b.WriteString(` ON CONFLICT (container, pk, id) DO UPDATE SET body = excluded.body, etag = excluded.etag, ts = excluded.ts, lsn = excluded.lsn, deleted = 0`)
	return b.String()
}

// maxPrepared bounds the prepared upsert statements kept: one for full
// statements of bulkRows, and some for the sizes of the last.
const maxPrepared = 16

// upsert is the prepared statement that upserts n rows. Parsing a
// statement of 2,000 rows took a tenth of a bulk upsert. It is prepared on
// the writer outside any transaction (the transaction holds the only
// connection); keep reports whether it is cached, so the caller closes it
// if not.
func (s *Store) upsert(ctx context.Context, n int) (st *sql.Stmt, keep bool, err error) {
	s.mu.Lock()
	st, ok := s.upserts[n]
	s.mu.Unlock()
	if ok {
		return st, true, nil
	}
	if st, err = s.w.PrepareContext(ctx, upsertStatement(n)); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.upserts[n]; ok {
		_ = st.Close()
		return other, true, nil
	}
	if s.upserts == nil || len(s.upserts) >= maxPrepared {
		return st, false, nil
	}
	s.upserts[n] = st
	return st, true, nil
}

// write runs a single-document write: check decides from the current row
// whether to write p.
func (s *Store) write(ctx context.Context, container string, p docstore.Prepared, check func(current) error) (docstore.Document, error) {
	return s.writeAs(ctx, container, p, func(cur current) (docstore.Prepared, error) { return p, check(cur) })
}

// writeAs runs a single-document write of the document key names: decide
// makes, from the current row, the document to write (or refuses).
func (s *Store) writeAs(ctx context.Context, container string, key docstore.Prepared, decide func(current) (docstore.Prepared, error)) (docstore.Document, error) {
	var doc docstore.Document
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, err := s.current(ctx, tx, container, key.PartitionKey, key.ID)
		if err != nil {
			return err
		}
		p, err := decide(cur)
		if err != nil {
			return err
		}
		lsn, err := nextLSNs(ctx, tx, container, 1)
		if err != nil {
			return err
		}
		doc, err = s.put(ctx, tx, container, p, lsn, time.Now().UTC())
		return err
	})
	if err != nil {
		return docstore.Document{}, wrap(container, err)
	}
	s.notify(container)
	return doc, nil
}

// classify marks an error that says the database cannot be used now as
// docstore.ErrUnavailable: the store is closed, or the database stayed
// locked past the busy timeout.
func classify(err error) error {
	var se *sqlite.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se) && (se.Code()&0xff == sqliteBusy || se.Code()&0xff == sqliteLocked),
		errors.Is(err, sql.ErrConnDone),
		// database/sql's errors of a closed store, which it does not export.
		strings.Contains(err.Error(), "sql: database is closed"), strings.Contains(err.Error(), "sql: statement is closed"):
		return docstore.Unavailable(err)
	}
	return err
}

// SQLite's primary result codes for a database another connection holds.
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)

func wrap(container string, err error) error {
	if errors.Is(err, docstore.ErrNotFound) || errors.Is(err, docstore.ErrExists) || errors.Is(err, docstore.ErrPrecondition) ||
		errors.Is(err, docstore.ErrInvalid) || errors.Is(err, docstore.ErrTooLarge) || errors.Is(err, context.Canceled) {
		return err
	}
	return classify(fmt.Errorf("docstore: write to %s: %w", container, err))
}

func (s *Store) prepare(ctx context.Context, container string, doc []byte) (docstore.Prepared, error) {
	c, err := s.GetContainer(ctx, container)
	if err != nil {
		return docstore.Prepared{}, err
	}
	return docstore.Prepare(c, doc, s.opts.MaxDocumentBytes)
}

func notFound(p docstore.Prepared) error {
	return fmt.Errorf("%w: document %q in partition %q", docstore.ErrNotFound, p.ID, p.PartitionKey)
}

func checkMatch(cur current, ifMatch string, p docstore.Prepared) error {
	if !cur.found || cur.deleted {
		return notFound(p)
	}
	if ifMatch != "" && ifMatch != cur.etag {
		return fmt.Errorf("%w: document %q has ETag %s, not %s: read it again and retry", docstore.ErrPrecondition, p.ID, cur.etag, ifMatch)
	}
	return nil
}

// Create implements docstore.Store.
func (s *Store) Create(ctx context.Context, container string, doc []byte) (docstore.Document, error) {
	p, err := s.prepare(ctx, container, doc)
	if err != nil {
		return docstore.Document{}, err
	}
	return s.write(ctx, container, p, func(cur current) error {
		if cur.found && !cur.deleted {
			return fmt.Errorf("%w: document %q in partition %q (use upsert or replace)", docstore.ErrExists, p.ID, p.PartitionKey)
		}
		return nil
	})
}

// Upsert implements docstore.Store.
func (s *Store) Upsert(ctx context.Context, container string, doc []byte) (docstore.Document, error) {
	p, err := s.prepare(ctx, container, doc)
	if err != nil {
		return docstore.Document{}, err
	}
	return s.write(ctx, container, p, func(current) error { return nil })
}

// Replace implements docstore.Store.
func (s *Store) Replace(ctx context.Context, container string, doc []byte, ifMatch string) (docstore.Document, error) {
	p, err := s.prepare(ctx, container, doc)
	if err != nil {
		return docstore.Document{}, err
	}
	return s.write(ctx, container, p, func(cur current) error { return checkMatch(cur, ifMatch, p) })
}

// Patch implements docstore.Store.
func (s *Store) Patch(ctx context.Context, container, pk, id string, set map[string]json.RawMessage, ifMatch string) (docstore.Document, error) {
	c, err := s.GetContainer(ctx, container)
	if err != nil {
		return docstore.Document{}, err
	}
	if err := docstore.CheckPatch(set); err != nil {
		return docstore.Document{}, err
	}
	key := docstore.Prepared{ID: id, PartitionKey: pk}
	return s.writeAs(ctx, container, key, func(cur current) (docstore.Prepared, error) {
		if err := checkMatch(cur, ifMatch, key); err != nil {
			return docstore.Prepared{}, err
		}
		return docstore.ApplyPatch(c, cur.body, pk, set, s.opts.MaxDocumentBytes)
	})
}

// Read implements docstore.Store.
func (s *Store) Read(ctx context.Context, container, pk, id string) (docstore.Document, error) {
	c, err := s.GetContainer(ctx, container)
	if err != nil {
		return docstore.Document{}, err
	}
	rows, err := s.read.QueryContext(ctx, container, pk, id, liveSince(c))
	if err != nil {
		return docstore.Document{}, classify(fmt.Errorf("docstore: read from %s: %w", container, err))
	}
	docs, err := scanDocs(ctx, rows)
	if err != nil {
		return docstore.Document{}, classify(fmt.Errorf("docstore: read from %s: %w", container, err))
	}
	if len(docs) == 0 {
		return docstore.Document{}, notFound(docstore.Prepared{ID: id, PartitionKey: pk})
	}
	return docs[0], nil
}

// ReadMany implements docstore.Store with one statement: the documents
// table's key index finds each key (see readManyStatement).
func (s *Store) ReadMany(ctx context.Context, container string, keys []docstore.Key) ([]docstore.Document, error) {
	keys, err := docstore.DistinctKeys(keys)
	if err != nil {
		return nil, err
	}
	c, err := s.GetContainer(ctx, container)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return []docstore.Document{}, nil
	}
	n := readManySize(len(keys))
	st, keep, err := s.readMany(ctx, n)
	if err != nil {
		return nil, classify(fmt.Errorf("docstore: read from %s: %w", container, err))
	}
	if !keep {
		defer st.Close()
	}
	args := make([]any, 2+2*n) // the keys short of n stay nil: NULL matches no key
	args[0], args[1] = container, liveSince(c)
	for i, k := range keys {
		args[2+2*i], args[3+2*i] = k.PartitionKey, k.ID
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, classify(fmt.Errorf("docstore: read from %s: %w", container, err))
	}
	docs, err := scanDocs(ctx, rows)
	if err != nil {
		return nil, classify(fmt.Errorf("docstore: read from %s: %w", container, err))
	}
	if docs == nil {
		return []docstore.Document{}, nil
	}
	return docstore.InKeyOrder(keys, docs), nil
}

// readManyStatement reads the live documents of up to n keys, with the
// parameters container, the oldest live write time, then the pk and id of
// each key. SQLite turns the list of keys into a temporary index and
// looks each key up in the documents_key index (EXPLAIN QUERY PLAN:
// "SEARCH documents USING INDEX documents_key (container=? AND pk=? AND
// id=?)" beside "LIST SUBQUERY"). A join with the VALUES instead made it
// scan the container's documents_feed index.
func readManyStatement(n int) string {
	var b strings.Builder
	b.WriteString(`SELECT pk, id, body, etag, ts, lsn, deleted FROM documents WHERE container = ? AND deleted = 0 AND ts >= ? AND (pk, id) IN (VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?)`)
	}
	b.WriteByte(')')
	return b.String()
}

// readManySize is the number of keys of the statement that reads n keys:
// n rounded up to a power of two, so that at most 11 statements (up to
// 1,024 keys) are prepared. Parsing a statement of 200 keys took 30% of
// its read; the NULL keys that pad it cost 2% at 200 keys of 256.
func readManySize(n int) int { return 1 << bits.Len(uint(n-1)) }

// readMany is the prepared ReadMany statement of n keys (n from
// readManySize); keep reports whether it is cached, so the caller closes
// it if not (the store is closing).
func (s *Store) readMany(ctx context.Context, n int) (st *sql.Stmt, keep bool, err error) {
	s.mu.Lock()
	st, ok := s.readManys[n]
	s.mu.Unlock()
	if ok {
		return st, true, nil
	}
	if st, err = s.r.PrepareContext(ctx, readManyStatement(n)); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.readManys[n]; ok {
		_ = st.Close()
		return other, true, nil
	}
	if s.readManys == nil {
		return st, false, nil
	}
	s.readManys[n] = st
	return st, true, nil
}

// scanDocs reads documents from rows, until ctx ends: a query's rows are
// made as they are read, so a reader that went away stops the query.
func scanDocs(ctx context.Context, rows *sql.Rows) ([]docstore.Document, error) {
	defer rows.Close()
	var out []docstore.Document
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var d docstore.Document
		var body sql.NullString
		var ts int64
		if err := rows.Scan(&d.PartitionKey, &d.ID, &body, &d.ETag, &ts, &d.LSN, &d.Deleted); err != nil {
			return nil, err
		}
		d.TS = time.Unix(0, ts).UTC()
		if body.Valid {
			d.Body = json.RawMessage(body.String)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Delete implements docstore.Store.
func (s *Store) Delete(ctx context.Context, container, pk, id, ifMatch string) error {
	if _, err := s.GetContainer(ctx, container); err != nil {
		return err
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		key := docstore.Prepared{ID: id, PartitionKey: pk}
		cur, err := s.current(ctx, tx, container, pk, id)
		if err != nil {
			return err
		}
		if err := checkMatch(cur, ifMatch, key); err != nil {
			return err
		}
		lsn, err := nextLSNs(ctx, tx, container, 1)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE documents SET body = NULL, deleted = 1, etag = ?, ts = ?, lsn = ? WHERE container = ? AND pk = ? AND id = ?`,
			docstore.ETagFor(lsn), time.Now().UnixNano(), lsn, container, pk, id)
		return err
	})
	if err != nil {
		return wrap(container, err)
	}
	s.notify(container)
	return nil
}

// BulkUpsert implements docstore.Store.
func (s *Store) BulkUpsert(ctx context.Context, container string, docs [][]byte) ([]docstore.Document, error) {
	c, err := s.GetContainer(ctx, container)
	if err != nil {
		return nil, err
	}
	prepared := make([]docstore.Prepared, len(docs))
	for i, d := range docs {
		if prepared[i], err = docstore.Prepare(c, d, s.opts.MaxDocumentBytes); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
	}
	var stmts []*sql.Stmt
	for start := 0; start < len(docs); start += bulkRows {
		st, keep, err := s.upsert(ctx, min(bulkRows, len(docs)-start))
		if err != nil {
			return nil, wrap(container, err)
		}
		if !keep {
			defer st.Close()
		}
		stmts = append(stmts, st)
	}
	out := make([]docstore.Document, len(docs))
	err = s.tx(ctx, func(tx *sql.Tx) error {
		first, err := nextLSNs(ctx, tx, container, len(docs))
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		for i, p := range prepared {
			lsn := first + int64(i)
			etag := docstore.ETagFor(lsn)
			out[i] = docstore.Document{ID: p.ID, PartitionKey: p.PartitionKey, ETag: etag, TS: now, LSN: lsn,
				Body: p.Render(etag, now, lsn)}
		}
		// Many rows per statement: SQLite parses a statement for every
		// Exec, and that cost per row was most of a bulk upsert's. A
		// repeated key is written twice in order, the later version last.
		for start := 0; start < len(out); start += bulkRows {
			rows := out[start:min(start+bulkRows, len(out))]
			args := make([]any, 0, len(rows)*8)
			for _, d := range rows {
				args = append(args, container, d.PartitionKey, d.ID, string(d.Body), d.ETag, d.TS.UnixNano(), d.LSN, docstore.PartitionKeyHash(d.PartitionKey))
			}
			if _, err := tx.StmtContext(ctx, stmts[start/bulkRows]).ExecContext(ctx, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap(container, err)
	}
	s.notify(container)
	return out, nil
}

// Feed implements docstore.Store.
func (s *Store) Feed(ctx context.Context, container string, from docstore.FeedStart, limit int) ([]docstore.Document, error) {
	if _, err := s.GetContainer(ctx, container); err != nil {
		return nil, err
	}
	conds, args, err := docstore.FeedConditions(container, from, limit,
		func(int) string { return "?" }, func(t time.Time) any { return t.UnixNano() })
	if err != nil {
		return nil, err
	}
	q := `SELECT pk, id, body, etag, ts, lsn, deleted FROM documents WHERE container = ? AND lsn > ?` + conds
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, classify(fmt.Errorf("docstore: feed of %s: %w", container, err))
	}
	docs, err := scanDocs(ctx, rows)
	if err != nil {
		return nil, classify(fmt.Errorf("docstore: feed of %s: %w", container, err))
	}
	return docs, nil
}

// CountDocuments counts a container's live documents (not tombstones,
// not documents past the container's TTL). It reads every row of the
// container: callers should not ask often.
func (s *Store) CountDocuments(ctx context.Context, container string) (int64, error) {
	c, err := s.GetContainer(ctx, container)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.r.QueryRowContext(ctx, `SELECT count(*) FROM documents WHERE container = ? AND deleted = 0 AND ts >= ?`,
		container, liveSince(c)).Scan(&n)
	if err != nil {
		return 0, classify(fmt.Errorf("docstore: count documents of %s: %w", container, err))
	}
	return n, nil
}

// LastLSN implements docstore.Store.
func (s *Store) LastLSN(ctx context.Context, container string) (int64, error) {
	var last int64
	err := s.r.QueryRowContext(ctx, `SELECT last_lsn FROM containers WHERE name = ?`, container).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: container %s", docstore.ErrNotFound, container)
	}
	if err != nil {
		return 0, classify(fmt.Errorf("docstore: last LSN of %s: %w", container, err))
	}
	return last, nil
}
