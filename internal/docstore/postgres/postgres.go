// Package postgres is the document store on PostgreSQL (pgx), for
// instances that share documents. It behaves like the sqlite backend and
// passes the same conformance suite (docstoretest).
//
// Everything lives in one schema (Options.Schema, default "sluice"), in
// two tables (and schema_migrations, the versions of the schema):
// containers, and documents whose body column is JSONB holding each
// document with its system fields, so
//
//	psql -c "select body->>'battery' from sluice.documents where container = 'devices'"
//
// works.
//
// # LSNs and the change feed
//
// The feed of a container is its documents ordered by LSN, read with
// `lsn > last LSN seen`. That is only correct if a change can never become
// visible with an LSN at or below one a reader has already passed. Writers
// on PostgreSQL run concurrently, so LSNs must not be handed out before
// the transactions that use them commit in the same order.
//
// The rule used here: each writing transaction takes its LSNs with
//
//	UPDATE containers SET last_lsn = last_lsn + n WHERE name = $1 RETURNING ...
//
// as its last statement before writing the rows that carry them, and then
// commits. The UPDATE locks the container's row until the transaction
// ends, and PostgreSQL makes a commit visible before it releases the
// transaction's locks. So the next writer of the container gets its LSNs
// only after the previous writer's rows are visible: per container, LSNs
// become visible in increasing order, and a snapshot that shows a change
// shows every change with a lower LSN. No reader can skip a committed
// change, and no change is shown twice (a row has one LSN at a time).
// Writers that roll back give their LSNs back with the row update.
//
// The lock is held for the short end of a write only: the reservation,
// one statement writing the rows, and the commit. Everything that can be
// done before is done before: documents are parsed and validated first,
// and the NOTIFY is queued first. Checks against the stored document
// (Create's "not there", If-Match, Patch's merge base) are conditions of
// that one writing statement, which under the lock sees the latest
// committed version: no row lock is ever taken before the container lock,
// so writers cannot deadlock. Patch reads the document before the lock and
// retries if it changed in between.
//
// A cheaper-looking design, a sequence or a reservation in its own
// transaction, lets a later LSN commit before an earlier one; the feed
// would then have to hold back every LSN at or above the lowest one still
// in flight, which needs the in-flight set shared by every process. The
// row lock gives the same guarantee with no shared state, at the cost of
// serializing commits per container (not across containers).
//
// # Waking readers
//
// Every writing transaction calls pg_notify('sluice_docs', '<schema>.<container>');
// PostgreSQL delivers it at commit, to every process. Each Store holds one
// listening connection that closes the channels returned by Changed, so
// writes by other instances wake readers too. The schema in the payload
// keeps several schemas in one database apart. While the listening
// connection is down, readers fall back to their poll; when it is back,
// every reader is woken once, since notifications may have been missed.
//
// # Time, TTL and cleaning
//
// A document's ts (and its "_ts") is the database's clock, read under the
// container's lock: it grows with the LSN whichever instance wrote, so a
// feed read from a time is consistent. Reads and queries skip documents
// past their container's DefaultTTL; writes trigger, at most once a
// minute per store, a cleaner that deletes them (without a tombstone) and
// tombstones past TombstoneRetention, in batches that skip rows writers
// hold.
package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluicehq/sluice/internal/docstore"
)

// Options tune the store. Zero values mean the defaults.
type Options struct {
	// MaxDocumentBytes bounds a document. Default
	// docstore.DefaultMaxDocumentBytes (2 MiB).
	MaxDocumentBytes int
	// TombstoneRetention is how long deletes stay in the change feed.
	// Default 7 days.
	TombstoneRetention time.Duration
	// Schema is the PostgreSQL schema that holds the tables, created if
	// needed. Default "sluice". Lower-case letters, digits and '_' (so
	// psql needs no quotes), at most 63 characters, not starting with a
	// digit or "pg_".
	Schema string
}

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (o Options) withDefaults() Options {
	o.MaxDocumentBytes = cmp.Or(o.MaxDocumentBytes, docstore.DefaultMaxDocumentBytes)
	o.TombstoneRetention = cmp.Or(o.TombstoneRetention, 7*24*time.Hour)
	o.Schema = cmp.Or(o.Schema, "sluice")
	return o
}

func (o Options) validate() error {
	if o.MaxDocumentBytes < 0 {
		return fmt.Errorf("docstore: MaxDocumentBytes %d: must not be negative", o.MaxDocumentBytes)
	}
	if o.TombstoneRetention < 0 {
		return fmt.Errorf("docstore: TombstoneRetention %s: must not be negative", o.TombstoneRetention)
	}
	if !schemaRE.MatchString(o.Schema) || strings.HasPrefix(o.Schema, "pg_") {
		return fmt.Errorf("docstore: Schema %q: use 1-63 lower-case letters, digits or '_', not starting with a digit or \"pg_\"", o.Schema)
	}
	return nil
}

// notifyChannel is the LISTEN/NOTIFY channel of every store; payloads are
// "<schema>.<container>".
const notifyChannel = "sluice_docs"

// Store is a document store on PostgreSQL.
type Store struct {
	pool   *pgxpool.Pool
	opts   Options
	q      queries
	prefix string // of this store's notification payloads: "<schema>."

	mu      sync.Mutex
	signals docstore.Signals
	cache   map[string]docstore.Container

	lastClean time.Time
	closed    bool
	cleaning  sync.WaitGroup

	stop       context.CancelFunc // the listener's and the cleaner's
	stopCtx    context.Context
	listenDone chan struct{}
	closeOnce  sync.Once
}

var _ docstore.Store = (*Store)(nil)

// queries are the statements, with the schema filled in.
type queries struct {
	createContainer, getContainer, listContainers, deleteContainer, deleteDocuments        string
	reserve, current, create, upsert, replace, remove, bulk, read, readMany, feed, lastLSN string
	count, live, query, cleanTombstones, cleanExpired                                      string
}

func newQueries(schema string) queries {
	s := pgx.Identifier{schema}.Sanitize()
	r := strings.NewReplacer("{s}", s)
	const docCols = `pk, id, body, etag, ts, lsn, deleted`
	const dCols = `d.pk, d.id, d.body, d.etag, d.ts, d.lsn, d.deleted`
	// live is the condition of a document d of container c that has not
	// outlived c's TTL (and is removed soon by the cleaner). A document
	// past it is gone for reads and writes alike.
	const live = `(c.default_ttl_ms = 0 OR d.ts >= statement_timestamp() - c.default_ttl_ms * interval '1 millisecond')`
	// liveRow is the condition of a live row in the writing statements:
	// not a tombstone, and not expired at $now for a TTL of $ttl ms.
	liveRow := func(now, ttl string) string {
		return `(NOT documents.deleted AND (` + ttl + `::bigint = 0 OR documents.ts >= ` + now + `::timestamptz - ` + ttl + `::bigint * interval '1 millisecond'))`
	}
	const set = `SET body = excluded.body, etag = excluded.etag, ts = excluded.ts, lsn = excluded.lsn, deleted = false`
	return queries{
		createContainer: r.Replace(`INSERT INTO {s}.containers (name, partition_key_path, default_ttl_ms) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO NOTHING RETURNING created`),
		getContainer:    r.Replace(`SELECT name, partition_key_path, default_ttl_ms, created FROM {s}.containers WHERE name = $1`),
		listContainers:  r.Replace(`SELECT name, partition_key_path, default_ttl_ms, created FROM {s}.containers ORDER BY name`),
		deleteContainer: r.Replace(`DELETE FROM {s}.containers WHERE name = $1 RETURNING name`),
		deleteDocuments: r.Replace(`DELETE FROM {s}.documents WHERE container = $1`),

		// The LSN reservation, and the time of the write: taken under the
		// container's lock, so ts grows with the LSN, across processes.
		reserve: r.Replace(`UPDATE {s}.containers SET last_lsn = last_lsn + $2 WHERE name = $1
			RETURNING last_lsn, partition_key_path, default_ttl_ms, clock_timestamp()`),
		// current tells an expired document as deleted.
		current: r.Replace(`SELECT d.etag, d.deleted OR NOT ` + live + `, d.body FROM {s}.documents d JOIN {s}.containers c ON c.name = d.container
			WHERE d.container = $1 AND d.pk = $2 AND d.id = $3`),
		// create writes unless a live document is there.
		// The single-document writes take the partition key's hash as $8.
		create: r.Replace(`INSERT INTO {s}.documents (container, pk, id, body, etag, ts, lsn, deleted, pk_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, false, $8)
			ON CONFLICT (container, pk, id) DO UPDATE ` + set + ` WHERE NOT ` + liveRow("$6", "$9")),
		upsert: r.Replace(`INSERT INTO {s}.documents (container, pk, id, body, etag, ts, lsn, deleted, pk_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, false, $8)
			ON CONFLICT (container, pk, id) DO UPDATE ` + set),
		// replace writes over a live document whose ETag is $10, or any if $10 is empty.
		replace: r.Replace(`UPDATE {s}.documents SET body = $4, etag = $5, ts = $6, lsn = $7, pk_hash = $8
			WHERE container = $1 AND pk = $2 AND id = $3 AND ` + liveRow("$6", "$9") + ` AND ($10 = '' OR etag = $10)`),
		remove: r.Replace(`UPDATE {s}.documents SET body = NULL, deleted = true, etag = $4, ts = $5, lsn = $6
			WHERE container = $1 AND pk = $2 AND id = $3 AND ` + liveRow("$5", "$7") + ` AND ($8 = '' OR etag = $8)`),
		// bulk upserts rows given as arrays; a key must not repeat.
		bulk: r.Replace(`INSERT INTO {s}.documents (container, pk, id, body, etag, ts, lsn, deleted, pk_hash)
			SELECT $1::text, d.pk, d.id, d.body::jsonb, d.etag, $2::timestamptz, d.lsn, false, d.pk_hash
			FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[]) AS d (pk, id, body, etag, lsn, pk_hash)
			ON CONFLICT (container, pk, id) DO UPDATE ` + set),
		live: live,
		// query is the start of a query's statement; the container follows.
		query: r.Replace(`SELECT ` + dCols + ` FROM {s}.documents d JOIN {s}.containers c ON c.name = d.container WHERE d.container = `),
		read: r.Replace(`SELECT ` + dCols + ` FROM {s}.documents d JOIN {s}.containers c ON c.name = d.container
			WHERE d.container = $1 AND d.pk = $2 AND d.id = $3 AND NOT d.deleted AND ` + live),
		// readMany reads the documents of keys given as arrays of pk ($2)
		// and id ($3). The LIMIT keeps the subquery a subquery: each key
		// is one probe of the primary key (EXPLAIN: Nested Loop, Function
		// Scan on k, Limit, Index Scan using documents_pkey), and a key
		// never finds two rows. As a join, the planner hashed the whole
		// container when it knew the number of keys: 8 ms instead of 1 ms
		// for 200 keys of 10,000 documents.
		readMany: r.Replace(`SELECT ` + dCols + ` FROM {s}.containers c
			CROSS JOIN unnest($2::text[], $3::text[]) AS k (pk, id)
			CROSS JOIN LATERAL (SELECT * FROM {s}.documents WHERE container = $1 AND pk = k.pk AND id = k.id AND NOT deleted LIMIT 1) d
			WHERE c.name = $1 AND ` + live),
		// feed is the start of a feed read: changes after $2; Feed adds
		// docstore.FeedConditions.
		feed:    r.Replace(`SELECT ` + docCols + ` FROM {s}.documents WHERE container = $1 AND lsn > $2`),
		lastLSN: r.Replace(`SELECT last_lsn FROM {s}.containers WHERE name = $1`),
		count: r.Replace(`SELECT count(*) FROM {s}.documents d JOIN {s}.containers c ON c.name = d.container
			WHERE d.container = $1 AND NOT d.deleted AND ` + live),

		// The cleaner deletes in batches, skipping rows that writers hold:
		// it never waits for a writer, so they cannot deadlock, and a row
		// written again meanwhile is re-checked and kept.
		cleanTombstones: r.Replace(`DELETE FROM {s}.documents WHERE (container, pk, id) IN (
			SELECT container, pk, id FROM {s}.documents WHERE deleted AND ts < now() - $1::bigint * interval '1 millisecond'
			LIMIT $2 FOR UPDATE SKIP LOCKED)`),
		cleanExpired: r.Replace(`DELETE FROM {s}.documents WHERE (container, pk, id) IN (
			SELECT d.container, d.pk, d.id FROM {s}.documents d JOIN {s}.containers c ON c.name = d.container
			WHERE NOT d.deleted AND NOT ` + live + `
			LIMIT $1 FOR UPDATE OF d SKIP LOCKED)`),
	}
}

// Open connects to the database at dsn (a PostgreSQL URL or key=value
// string; pool settings like pool_max_conns apply) and creates the schema
// and its tables if needed, or brings those of an earlier release up to
// date. It refuses a schema written by a newer release
// (NewerSchemaError).
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("docstore: postgres dsn: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("docstore: connect to postgres: %w", err)
	}
	s := &Store{
		pool:       pool,
		opts:       opts,
		q:          newQueries(opts.Schema),
		prefix:     opts.Schema + ".",
		cache:      map[string]docstore.Container{},
		listenDone: make(chan struct{}),
	}
	if err := migrate(ctx, pool, opts.Schema, migrations); err != nil {
		pool.Close()
		if _, ok := errors.AsType[*NewerSchemaError](err); ok {
			return nil, fmt.Errorf("docstore: %w", err)
		}
		return nil, fmt.Errorf("docstore: prepare schema %s: %w", opts.Schema, err)
	}
	// Listen before returning, so that every write after Open wakes readers.
	conn, err := s.listen(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("docstore: listen for changes: %w", err)
	}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	go s.listenLoop(s.stopCtx, conn)
	return s, nil
}

// Close stops listening and cleaning and closes the pool. It is safe to
// call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.stop()
		<-s.listenDone
		s.cleaning.Wait()
		s.pool.Close()
	})
	return nil
}

// cleanEvery is how often, at most, writes trigger removing expired
// documents and old tombstones.
const cleanEvery = time.Minute

// cleanBatch bounds the rows one cleaning statement deletes.
const cleanBatch = 1000

// wrote runs after each committed write: at most every cleanEvery, it
// starts removing documents past their container's TTL (without a
// tombstone, as Cosmos DB does) and tombstones past the retention.
// Several instances may clean at once; they skip each other's rows.
func (s *Store) wrote() {
	s.mu.Lock()
	due := !s.closed && time.Since(s.lastClean) > cleanEvery
	if due {
		s.lastClean = time.Now()
		s.cleaning.Add(1)
	}
	s.mu.Unlock()
	if !due {
		return
	}
	go func() {
		defer s.cleaning.Done()
		ctx, cancel := context.WithTimeout(s.stopCtx, time.Minute)
		defer cancel()
		for _, clean := range []func() (pgconn.CommandTag, error){
			func() (pgconn.CommandTag, error) {
				return s.pool.Exec(ctx, s.q.cleanTombstones, s.opts.TombstoneRetention.Milliseconds(), cleanBatch)
			},
			func() (pgconn.CommandTag, error) { return s.pool.Exec(ctx, s.q.cleanExpired, cleanBatch) },
		} {
			for {
				tag, err := clean()
				if err != nil || tag.RowsAffected() < cleanBatch {
					break
				}
			}
		}
	}()
}

// listen opens the listening connection. Its application_name ends in
// "docs listener <schema>", to find it in pg_stat_activity.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	cfg := s.pool.Config().ConnConfig
	cfg.RuntimeParams["application_name"] = cmp.Or(cfg.RuntimeParams["application_name"], "sluice") + " docs listener " + s.opts.Schema
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		_ = conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}

// listenLoop turns notifications into wake-ups until ctx ends,
// reconnecting (with backoff) when the connection fails.
func (s *Store) listenLoop(ctx context.Context, conn *pgx.Conn) {
	defer close(s.listenDone)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			if name, ok := strings.CutPrefix(n.Payload, s.prefix); ok {
				s.notify(name)
			}
			continue
		}
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(closeCtx)
		cancel()
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			if conn, err = s.listen(ctx); err == nil {
				break
			}
		}
		s.notifyAll() // notifications sent while we were away are lost
	}
}

// Changed implements docstore.Store. The channel closes at the next
// committed write to the container by any process using this schema.
func (s *Store) Changed(container string) <-chan struct{} { return s.signals.Wait(container) }

func (s *Store) notify(container string) { s.signals.Notify(container) }

func (s *Store) notifyAll() { s.signals.NotifyAll() }

// CreateContainer implements docstore.Store.
func (s *Store) CreateContainer(ctx context.Context, c docstore.Container) (docstore.Container, error) {
	if err := c.Validate(); err != nil {
		return docstore.Container{}, err
	}
	err := s.pool.QueryRow(ctx, s.q.createContainer, c.Name, c.PartitionKeyPath, c.DefaultTTL.Milliseconds()).Scan(&c.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return docstore.Container{}, fmt.Errorf("%w: container %s", docstore.ErrExists, c.Name)
	}
	if err != nil {
		return docstore.Container{}, classify(fmt.Errorf("docstore: create container %s: %w", c.Name, err))
	}
	c.Created = c.Created.UTC()
	s.remember(c)
	return c, nil
}

// GetContainer implements docstore.Store. It always asks the database,
// since another instance may have deleted the container.
func (s *Store) GetContainer(ctx context.Context, name string) (docstore.Container, error) {
	c, err := scanContainer(s.pool.QueryRow(ctx, s.q.getContainer, name))
	if errors.Is(err, pgx.ErrNoRows) {
		s.forget(name)
		return docstore.Container{}, fmt.Errorf("%w: container %s", docstore.ErrNotFound, name)
	}
	if err != nil {
		return docstore.Container{}, classify(fmt.Errorf("docstore: get container %s: %w", name, err))
	}
	s.remember(c)
	return c, nil
}

// DocumentsDDL creates a table of the documents table's shape, with its
// indexes, named table (schema-qualified; benchmarks compare the store with
// plain SQL on one). It is the shape the migrations make (a test holds
// them to it).
func DocumentsDDL(table string) string {
	return `
CREATE TABLE IF NOT EXISTS ` + table + ` (
	container text NOT NULL,
	pk text NOT NULL,
	id text NOT NULL,
	body jsonb,
	etag text NOT NULL,
	ts timestamptz NOT NULL,
	lsn bigint NOT NULL,
	deleted boolean NOT NULL DEFAULT false,
	pk_hash bigint,
	PRIMARY KEY (container, pk, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS ` + table[strings.LastIndex(table, ".")+1:] + `_feed ON ` + table + ` (container, lsn);`
}

// container is GetContainer from the cache when it can. Writes check the
// cached definition under the container's lock (see reserve); reads that
// find nothing check the container is still there.
func (s *Store) container(ctx context.Context, name string) (docstore.Container, error) {
	s.mu.Lock()
	c, ok := s.cache[name]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	return s.GetContainer(ctx, name)
}

func (s *Store) remember(c docstore.Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache[c.Name] = c
}

func (s *Store) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cache, name)
}

func scanContainer(row pgx.Row) (docstore.Container, error) {
	var c docstore.Container
	var ttl int64
	if err := row.Scan(&c.Name, &c.PartitionKeyPath, &ttl, &c.Created); err != nil {
		return c, err
	}
	c.DefaultTTL = time.Duration(ttl) * time.Millisecond
	c.Created = c.Created.UTC()
	return c, nil
}

// ListContainers implements docstore.Store.
func (s *Store) ListContainers(ctx context.Context) ([]docstore.Container, error) {
	rows, err := s.pool.Query(ctx, s.q.listContainers)
	if err != nil {
		return nil, classify(fmt.Errorf("docstore: list containers: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (docstore.Container, error) { return scanContainer(row) })
	if err != nil {
		return nil, classify(fmt.Errorf("docstore: list containers: %w", err))
	}
	return out, nil
}

// DeleteContainer implements docstore.Store. Deleting the container's row
// first takes its lock, so writers in flight finish before and writers
// after find no container.
func (s *Store) DeleteContainer(ctx context.Context, name string) error {
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, s.q.deleteContainer, name).Scan(&name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.q.deleteDocuments, name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, s.prefix+name)
		return err
	})
	s.forget(name)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: container %s", docstore.ErrNotFound, name)
	}
	if err != nil {
		return classify(fmt.Errorf("docstore: delete container %s: %w", name, err))
	}
	return nil
}

// errRetry asks for a write to be run again: the container's cached
// definition was stale, or (Patch) the document changed since it was read.
var errRetry = errors.New("retry")

// write runs one writing transaction of n documents to container c. It
// queues the notification, then reserves the LSNs as its last statement
// before put writes the rows, then commits: the container's lock is held
// from the reservation to the commit only.
func (s *Store) write(ctx context.Context, c docstore.Container, n int, put func(tx pgx.Tx, r reservation) error) error {
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, s.prefix+c.Name); err != nil {
			return err
		}
		var last int64
		var path string
		var r reservation
		err := tx.QueryRow(ctx, s.q.reserve, c.Name, n).Scan(&last, &path, &r.ttl, &r.now)
		if errors.Is(err, pgx.ErrNoRows) {
			s.forget(c.Name)
			return fmt.Errorf("%w: container %s", docstore.ErrNotFound, c.Name)
		}
		if err != nil {
			return err
		}
		if path != c.PartitionKeyPath {
			// Deleted and created again elsewhere: the documents were
			// parsed with the old partition key path.
			s.forget(c.Name)
			return errRetry
		}
		r.first, r.now = last-int64(n)+1, r.now.UTC()
		return put(tx, r)
	})
	if err == nil {
		s.wrote()
	}
	return err
}

// reservation is what a write gets under the container's lock.
type reservation struct {
	first int64     // its first LSN
	now   time.Time // its time
	ttl   int64     // the container's TTL in milliseconds (0: none)
}

// retry runs fn until it succeeds or fails for another reason than
// errRetry. Each retry means another writer made progress.
func retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, errRetry) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// classify marks an error that says PostgreSQL cannot be used now as
// docstore.ErrUnavailable: no connection (refused, reset, timed out), the
// store closed, or the server shutting down or out of connections.
func classify(err error) error {
	var ce *pgconn.ConnectError
	var ne net.Error
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.As(err, &pe) && unavailableCode(pe.Code),
		strings.Contains(err.Error(), "closed pool"), strings.Contains(err.Error(), "conn closed"):
		return docstore.Unavailable(err)
	}
	return err
}

// unavailableCode reports whether a PostgreSQL error code says the server
// cannot serve now: connection exceptions (class 08), too many
// connections, shutting down or starting up.
func unavailableCode(code string) bool {
	return strings.HasPrefix(code, "08") || code == "53300" || code == "57P01" || code == "57P02" || code == "57P03"
}

func wrap(container string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, docstore.ErrNotFound) || errors.Is(err, docstore.ErrExists) || errors.Is(err, docstore.ErrPrecondition) ||
		errors.Is(err, docstore.ErrInvalid) || errors.Is(err, docstore.ErrTooLarge) || errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &pgErr) && isDataError(pgErr.Code):
		// JSON PostgreSQL cannot store (like "\u0000" in a string), a
		// NUL byte in an id or partition key, an overlong partition key.
		return fmt.Errorf("%w document: PostgreSQL cannot store it: %s", docstore.ErrInvalid, pgErr.Message)
	}
	return classify(fmt.Errorf("docstore: write to %s: %w", container, err))
}

func isDataError(code string) bool {
	switch code {
	case "22P02", // invalid_text_representation
		"22P05", // untranslatable_character
		"22021", // character_not_in_repertoire
		"54000": // program_limit_exceeded: index row too large
		return true
	}
	return false
}

func (s *Store) prepare(ctx context.Context, container string, doc []byte) (docstore.Container, docstore.Prepared, error) {
	c, err := s.container(ctx, container)
	if err != nil {
		return c, docstore.Prepared{}, err
	}
	p, err := docstore.Prepare(c, doc, s.opts.MaxDocumentBytes)
	return c, p, err
}

func notFound(pk, id string) error {
	return fmt.Errorf("%w: document %q in partition %q", docstore.ErrNotFound, id, pk)
}

func preconditionFailed(id, etag, ifMatch string) error {
	return fmt.Errorf("%w: document %q has ETag %s, not %s: read it again and retry", docstore.ErrPrecondition, id, etag, ifMatch)
}

// current is a stored row's version: its ETag, whether it is a tombstone,
// and its body.
type current struct {
	found   bool
	deleted bool
	etag    string
	body    []byte
}

func (s *Store) current(ctx context.Context, db interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, container, pk, id string) (current, error) {
	var c current
	err := db.QueryRow(ctx, s.q.current, container, pk, id).Scan(&c.etag, &c.deleted, &c.body)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, nil
	}
	c.found = err == nil
	return c, err
}

// checkMatch explains why a conditional write to a document found
// nothing to write over.
func checkMatch(cur current, ifMatch, pk, id string) error {
	if !cur.found || cur.deleted {
		return notFound(pk, id)
	}
	if ifMatch != "" && ifMatch != cur.etag {
		return preconditionFailed(id, cur.etag, ifMatch)
	}
	return nil
}

// putOne writes one document with the statement q, whose arguments from
// $8 on (if any) are cond; it reports whether a row was written.
func putOne(ctx context.Context, tx pgx.Tx, q, container string, p docstore.Prepared, r reservation, cond ...any) (docstore.Document, bool, error) {
	etag := docstore.ETagFor(r.first)
	body := p.Render(etag, r.now, r.first)
	args := append([]any{container, p.PartitionKey, p.ID, []byte(body), etag, r.now, r.first, docstore.PartitionKeyHash(p.PartitionKey)}, cond...)
	tag, err := tx.Exec(ctx, q, args...)
	doc := docstore.Document{ID: p.ID, PartitionKey: p.PartitionKey, ETag: etag, TS: r.now, LSN: r.first, Body: body}
	return doc, err == nil && tag.RowsAffected() == 1, err
}

// Create implements docstore.Store.
func (s *Store) Create(ctx context.Context, container string, doc []byte) (docstore.Document, error) {
	var out docstore.Document
	err := retry(ctx, func() error {
		c, p, err := s.prepare(ctx, container, doc)
		if err != nil {
			return err
		}
		return s.write(ctx, c, 1, func(tx pgx.Tx, r reservation) error {
			d, ok, err := putOne(ctx, tx, s.q.create, container, p, r, r.ttl)
			if err == nil && !ok {
				err = fmt.Errorf("%w: document %q in partition %q (use upsert or replace)", docstore.ErrExists, p.ID, p.PartitionKey)
			}
			out = d
			return err
		})
	})
	if err != nil {
		return docstore.Document{}, wrap(container, err)
	}
	return out, nil
}

// Upsert implements docstore.Store.
func (s *Store) Upsert(ctx context.Context, container string, doc []byte) (docstore.Document, error) {
	var out docstore.Document
	err := retry(ctx, func() error {
		c, p, err := s.prepare(ctx, container, doc)
		if err != nil {
			return err
		}
		return s.write(ctx, c, 1, func(tx pgx.Tx, r reservation) (err error) {
			out, _, err = putOne(ctx, tx, s.q.upsert, container, p, r)
			return err
		})
	})
	if err != nil {
		return docstore.Document{}, wrap(container, err)
	}
	return out, nil
}

// Replace implements docstore.Store.
func (s *Store) Replace(ctx context.Context, container string, doc []byte, ifMatch string) (docstore.Document, error) {
	var out docstore.Document
	err := retry(ctx, func() error {
		c, p, err := s.prepare(ctx, container, doc)
		if err != nil {
			return err
		}
		return s.write(ctx, c, 1, func(tx pgx.Tx, r reservation) error {
			d, ok, err := putOne(ctx, tx, s.q.replace, container, p, r, r.ttl, ifMatch)
			if err == nil && !ok {
				err = s.explain(ctx, tx, container, p.PartitionKey, p.ID, ifMatch)
			}
			out = d
			return err
		})
	})
	if err != nil {
		return docstore.Document{}, wrap(container, err)
	}
	return out, nil
}

// explain says why a conditional write found nothing to write over. It
// runs under the container's lock, so it sees the row the write saw; only
// the clock moved on, and a document that expired since is not found
// either way.
func (s *Store) explain(ctx context.Context, tx pgx.Tx, container, pk, id, ifMatch string) error {
	cur, err := s.current(ctx, tx, container, pk, id)
	if err != nil {
		return err
	}
	if err := checkMatch(cur, ifMatch, pk, id); err != nil {
		return err
	}
	return fmt.Errorf("docstore: document %q in partition %q: conditional write failed unexpectedly", id, pk)
}

// Patch implements docstore.Store. It merges into the version it read
// before taking the container's lock, and writes only if that is still
// the stored version; otherwise it reads again and retries.
func (s *Store) Patch(ctx context.Context, container, pk, id string, set map[string]json.RawMessage, ifMatch string) (docstore.Document, error) {
	if err := docstore.CheckPatch(set); err != nil {
		return docstore.Document{}, err
	}
	var out docstore.Document
	err := retry(ctx, func() error {
		c, err := s.container(ctx, container)
		if err != nil {
			return err
		}
		cur, err := s.current(ctx, s.pool, container, pk, id)
		if err != nil {
			return err
		}
		if err := checkMatch(cur, ifMatch, pk, id); err != nil {
			return err
		}
		p, err := docstore.ApplyPatch(c, cur.body, pk, set, s.opts.MaxDocumentBytes)
		if err != nil {
			return err
		}
		return s.write(ctx, c, 1, func(tx pgx.Tx, r reservation) error {
			d, ok, err := putOne(ctx, tx, s.q.replace, container, p, r, r.ttl, cur.etag)
			if err == nil && !ok {
				return errRetry // changed since we read it
			}
			out = d
			return err
		})
	})
	if err != nil {
		return docstore.Document{}, wrap(container, err)
	}
	return out, nil
}

// Read implements docstore.Store.
func (s *Store) Read(ctx context.Context, container, pk, id string) (docstore.Document, error) {
	if _, err := s.container(ctx, container); err != nil {
		return docstore.Document{}, err
	}
	rows, err := s.pool.Query(ctx, s.q.read, container, pk, id)
	if err != nil {
		return docstore.Document{}, classify(fmt.Errorf("docstore: read from %s: %w", container, err))
	}
	docs, err := scanDocs(ctx, rows)
	if err != nil {
		return docstore.Document{}, classify(fmt.Errorf("docstore: read from %s: %w", container, err))
	}
	if len(docs) == 0 {
		if _, err := s.GetContainer(ctx, container); err != nil {
			return docstore.Document{}, err
		}
		return docstore.Document{}, notFound(pk, id)
	}
	return docs[0], nil
}

// ReadMany implements docstore.Store with one statement.
func (s *Store) ReadMany(ctx context.Context, container string, keys []docstore.Key) ([]docstore.Document, error) {
	keys, err := docstore.DistinctKeys(keys)
	if err != nil {
		return nil, err
	}
	if _, err := s.container(ctx, container); err != nil {
		return nil, err
	}
	docs := []docstore.Document{}
	if len(keys) > 0 {
		pks, ids := make([]string, 0, len(keys)), make([]string, 0, len(keys))
		for _, k := range keys {
			if storable(k.PartitionKey) && storable(k.ID) {
				pks, ids = append(pks, k.PartitionKey), append(ids, k.ID)
			}
		}
		rows, err := s.pool.Query(ctx, s.q.readMany, container, pks, ids)
		if err == nil {
			docs, err = scanDocs(ctx, rows)
		}
		if err != nil {
			return nil, classify(fmt.Errorf("docstore: read from %s: %w", container, err))
		}
	}
	if len(docs) == 0 {
		// Nothing, or the container is gone (maybe deleted by another
		// instance): as in Read, say which.
		if _, err := s.GetContainer(ctx, container); err != nil {
			return nil, err
		}
		return docs, nil
	}
	return docstore.InKeyOrder(keys, docs), nil
}

// storable tells whether PostgreSQL can hold s as text (no NUL byte,
// valid UTF-8); no document has a key it cannot, and PostgreSQL refuses
// such a key in a statement's parameters.
func storable(s string) bool { return utf8.ValidString(s) && !strings.Contains(s, "\x00") }

// scanDocs reads documents from rows, until ctx ends: a query's rows are
// made as they are read, so a reader that went away stops the query.
func scanDocs(ctx context.Context, rows pgx.Rows) ([]docstore.Document, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (docstore.Document, error) {
		if err := ctx.Err(); err != nil {
			return docstore.Document{}, err
		}
		var d docstore.Document
		var body []byte
		err := row.Scan(&d.PartitionKey, &d.ID, &body, &d.ETag, &d.TS, &d.LSN, &d.Deleted)
		d.TS = d.TS.UTC()
		if body != nil {
			d.Body = json.RawMessage(body)
		}
		return d, err
	})
}

// Delete implements docstore.Store.
func (s *Store) Delete(ctx context.Context, container, pk, id, ifMatch string) error {
	err := retry(ctx, func() error {
		c, err := s.container(ctx, container)
		if err != nil {
			return err
		}
		return s.write(ctx, c, 1, func(tx pgx.Tx, r reservation) error {
			tag, err := tx.Exec(ctx, s.q.remove, container, pk, id, docstore.ETagFor(r.first), r.now, r.first, r.ttl, ifMatch)
			if err == nil && tag.RowsAffected() == 0 {
				err = s.explain(ctx, tx, container, pk, id, ifMatch)
			}
			return err
		})
	})
	return wrap(container, err)
}

// BulkUpsert implements docstore.Store. Document i gets the i-th LSN of
// the transaction; when a key repeats, its last version is stored.
func (s *Store) BulkUpsert(ctx context.Context, container string, docs [][]byte) ([]docstore.Document, error) {
	var out []docstore.Document
	err := retry(ctx, func() error {
		c, err := s.container(ctx, container)
		if err != nil {
			return err
		}
		prepared := make([]docstore.Prepared, len(docs))
		for i, d := range docs {
			if prepared[i], err = docstore.Prepare(c, d, s.opts.MaxDocumentBytes); err != nil {
				return fmt.Errorf("document %d: %w", i, err)
			}
		}
		if len(docs) == 0 {
			out = []docstore.Document{}
			return nil
		}
		return s.write(ctx, c, len(docs), func(tx pgx.Tx, r reservation) error {
			first, now := r.first, r.now
			out = make([]docstore.Document, len(docs))
			last := make(map[[2]string]int, len(docs)) // key -> index of its last version
			for i, p := range prepared {
				lsn := first + int64(i)
				etag := docstore.ETagFor(lsn)
				out[i] = docstore.Document{ID: p.ID, PartitionKey: p.PartitionKey, ETag: etag, TS: now, LSN: lsn,
					Body: p.Render(etag, now, lsn)}
				last[[2]string{p.PartitionKey, p.ID}] = i
			}
			var pks, ids, bodies, etags []string
			var lsns, hashes []int64
			for i, d := range out {
				if last[[2]string{d.PartitionKey, d.ID}] != i {
					continue // an ON CONFLICT statement cannot write a row twice
				}
				pks, ids, bodies, etags, lsns = append(pks, d.PartitionKey), append(ids, d.ID), append(bodies, string(d.Body)), append(etags, d.ETag), append(lsns, d.LSN)
				hashes = append(hashes, docstore.PartitionKeyHash(d.PartitionKey))
			}
			_, err := tx.Exec(ctx, s.q.bulk, container, now, pks, ids, bodies, etags, lsns, hashes)
			return err
		})
	})
	if err != nil {
		return nil, wrap(container, err)
	}
	return out, nil
}

// Feed implements docstore.Store.
func (s *Store) Feed(ctx context.Context, container string, from docstore.FeedStart, limit int) ([]docstore.Document, error) {
	if _, err := s.container(ctx, container); err != nil {
		return nil, err
	}
	conds, args, err := docstore.FeedConditions(container, from, limit,
		func(n int) string { return "$" + strconv.Itoa(n) },
		// PostgreSQL keeps microseconds; a change in the same microsecond
		// as from.Time counts as at or after it.
		func(t time.Time) any { return t.Truncate(time.Microsecond) })
	if err != nil {
		return nil, err
	}
	q := s.q.feed + conds
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, classify(fmt.Errorf("docstore: feed of %s: %w", container, err))
	}
	docs, err := scanDocs(ctx, rows)
	if err != nil {
		return nil, classify(fmt.Errorf("docstore: feed of %s: %w", container, err))
	}
	if len(docs) == 0 {
		// Nothing new, or the container is gone (maybe deleted by
		// another instance): readers must learn which.
		if _, err := s.GetContainer(ctx, container); err != nil {
			return nil, err
		}
	}
	return docs, nil
}

// CountDocuments counts a container's live documents (not tombstones,
// not documents past the container's TTL). It reads every row of the
// container: callers should not ask often.
func (s *Store) CountDocuments(ctx context.Context, container string) (int64, error) {
	if _, err := s.GetContainer(ctx, container); err != nil {
		return 0, err
	}
	var n int64
	if err := s.pool.QueryRow(ctx, s.q.count, container).Scan(&n); err != nil {
		return 0, classify(fmt.Errorf("docstore: count documents of %s: %w", container, err))
	}
	return n, nil
}

// LastLSN implements docstore.Store.
func (s *Store) LastLSN(ctx context.Context, container string) (int64, error) {
	var last int64
	err := s.pool.QueryRow(ctx, s.q.lastLSN, container).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%w: container %s", docstore.ErrNotFound, container)
	}
	if err != nil {
		return 0, classify(fmt.Errorf("docstore: last LSN of %s: %w", container, err))
	}
	return last, nil
}
