package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/postgres"
	"github.com/sluicehq/sluice/internal/docstore/sqlite" // also registers the database/sql driver "sqlite" of the baselines
)

// DocsOptions configure the document store workload.
type DocsOptions struct {
	// DataDir holds the SQLite cases' databases, docs.db (the store) and
	// baseline.db; neither may exist yet. Required by the SQLite cases.
	DataDir string
	// PostgresDSN is the database of the PostgreSQL cases, which are
	// skipped when it is empty. A run works in a schema of its own,
	// sluice_bench_<random>, dropped at the end.
	PostgresDSN string
	// Docs is the number of documents upserted per upsert case, and by its
	// baseline. Default 1,000,000.
	Docs int64
	// Batch is the documents of each BulkUpsert call, and the rows of each
	// baseline transaction. Default 1,000.
	Batch int
	// DocSize is each document's size in bytes: its id and partition key,
	// padded. Default 256.
	DocSize int
	// FeedBatch is the limit of each change feed read. Default 1,000.
	FeedBatch int
	// Partitions is the number of partition keys the documents spread
	// over, round robin. Default 100. Each batch touches about
	// min(Batch, Partitions) places of the primary key's B-tree.
	Partitions int
	// Cases to run, from DocsCases; they run in that order. Default all.
	Cases []string
	// Progress, if set, is called with a line of progress now and then.
	Progress func(string)
}

// DocsCases are the cases of the document store workload, in the order
// they run: the feed cases read what the upsert cases wrote.
var DocsCases = []string{"sqlite-upsert", "postgres-upsert", "sqlite-feed", "postgres-feed"}

func (o *DocsOptions) defaults() {
	o.Docs = cmp.Or(o.Docs, 1_000_000)
	o.Batch = cmp.Or(o.Batch, 1000)
	o.DocSize = cmp.Or(o.DocSize, 256)
	o.FeedBatch = cmp.Or(o.FeedBatch, 1000)
	o.Partitions = cmp.Or(o.Partitions, 100)
	if len(o.Cases) == 0 {
		o.Cases = DocsCases
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
}

func (o *DocsOptions) validate() error {
	for _, c := range o.Cases {
		if !slices.Contains(DocsCases, c) {
			return fmt.Errorf("unknown case %q (cases: %s)", c, strings.Join(DocsCases, ", "))
		}
	}
	if o.Docs < 0 || o.Batch < 0 || o.DocSize < 0 || o.FeedBatch < 0 || o.Partitions < 0 {
		return errors.New("the options Docs, Batch, DocSize, FeedBatch and Partitions must not be negative")
	}
	return nil
}

// docsContainer is the workload's container.
const docsContainer = "bench"

// RunDocs runs the document store workload: bulk upserts, half of them
// replacing documents written before, then reading the whole change feed,
// on SQLite and (with a DSN) PostgreSQL, each beside a baseline of plain
// SQL through the same driver, in the same run.
func RunDocs(ctx context.Context, o DocsOptions, report func(Result)) (err error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return err
	}
	backends := map[string]*docsBackend{}
	defer func() {
		for _, b := range backends {
			err = errors.Join(err, b.close())
		}
	}()
	failed := &failures{workload: "docs"}
	for _, c := range DocsCases {
		if !slices.Contains(o.Cases, c) {
			continue
		}
		kind, op, _ := strings.Cut(c, "-")
		if kind == "postgres" && o.PostgresDSN == "" {
			o.Progress(c + ": skipped: no PostgreSQL database given (--postgres, or SLUICE_TEST_POSTGRES)")
			continue
		}
		b := backends[kind]
		if b == nil {
			if kind == "sqlite" {
				b, err = openSQLiteDocs(ctx, o)
			} else {
				b, err = openPostgresDocs(ctx, o)
			}
			if err != nil {
				failed.add(report, c, err)
				continue
			}
			backends[kind] = b
		}
		var r Result
		if op == "upsert" {
			r, err = benchDocsUpsert(ctx, b, o, c)
		} else {
			r, err = benchDocsFeed(ctx, b, o, c)
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed.add(report, c, err)
			continue
		}
		r.Workload, r.Case = "docs", c
		r.PeakRSSMiB = PeakRSSMiB()
		report(r)
	}
	return failed.err()
}

// docsBackend is a store under measurement and the plain SQL of its
// baselines.
type docsBackend struct {
	store docstore.Store
	raw   rawDocs
	where string // for progress lines
	// sync and note describe the durability of writes for results;
	// warmed what is done before the feed is measured.
	sync, note, warmed string
	// upsertBaseline and feedBaseline name the baselines in results.
	upsertBaseline, feedBaseline string
	// loaded is the number of distinct documents in the store's container
	// (0 until something wrote them).
	loaded int64
	close  func() error
}

// rawDocs is a baseline: the same rows written and read with plain SQL
// through the store's driver.
type rawDocs interface {
	// upsert writes a batch of documents atomically, assigning LSNs from
	// a counter of its own, into a table shaped like the store's.
	upsert(ctx context.Context, keys []docKey, docs [][]byte) error
	// rows counts the rows upsert wrote.
	rows(ctx context.Context) (int64, error)
	// settle gathers the planner's statistics on the store's table.
	settle(ctx context.Context) error
	// feed reads the store's container's changes after an LSN, in LSN
	// order, and returns how many it read and the last one's LSN.
	feed(ctx context.Context, after int64, limit int) (n int, last int64, err error)
}

func benchDocsUpsert(ctx context.Context, b *docsBackend, o DocsOptions, name string) (Result, error) {
	o.Progress(fmt.Sprintf("%s: upsert %d documents of %d bytes, %d per BulkUpsert call, half of them new and half existing, into %s",
		name, o.Docs, o.DocSize, o.Batch, b.where))
	g := newDocGen(o)
	elapsed, lat, err := upsertDocs(g, o.Docs, func(_ []docKey, docs [][]byte) error {
		_, err := b.store.BulkUpsert(ctx, docsContainer, docs)
		return err
	})
	if err != nil {
		return Result{}, err
	}
	b.loaded = g.written
	if last, err := b.store.LastLSN(ctx, docsContainer); err != nil || last != g.upserted {
		return Result{}, fmt.Errorf("the container's last LSN is %d (%v), want %d", last, err, g.upserted)
	}
	r := Result{Events: o.Docs, Seconds: elapsed.Seconds(), EventsPerSec: rate(o.Docs, elapsed), Sync: b.sync}
	r.P50ms, r.P99ms = percentiles(lat)
	r.LatencyAtRate = r.EventsPerSec

	o.Progress(fmt.Sprintf("%s: %.0f upserts/s; baseline: %s", name, r.EventsPerSec, b.upsertBaseline))
	g = newDocGen(o)
	elapsed, _, err = upsertDocs(g, o.Docs, func(keys []docKey, docs [][]byte) error { return b.raw.upsert(ctx, keys, docs) })
	if err != nil {
		return Result{}, fmt.Errorf("baseline: %w", err)
	}
	if n, err := b.raw.rows(ctx); err != nil || n != g.written {
		return Result{}, fmt.Errorf("baseline: %d rows (%v), want %d", n, err, g.written)
	}
	r.setBaseline(b.upsertBaseline, o.Docs, elapsed)
	r.Note = fmt.Sprintf("%s; batches of %d, half new ids, half existing, over %d partition keys; one writer; latency per call", b.note, o.Batch, o.Partitions)
	return r, nil
}

func benchDocsFeed(ctx context.Context, b *docsBackend, o DocsOptions, name string) (Result, error) {
	if b.loaded == 0 {
		o.Progress(fmt.Sprintf("%s: fill the feed first: upsert %d documents into %s", name, o.Docs, b.where))
		g := newDocGen(o)
		if _, _, err := upsertDocs(g, o.Docs, func(_ []docKey, docs [][]byte) error {
			_, err := b.store.BulkUpsert(ctx, docsContainer, docs)
			return err
		}); err != nil {
			return Result{}, err
		}
		b.loaded = g.written
	}
	// Measure the steady state of a feed, not the first read of fresh
	// rows, which pays for settling them (PostgreSQL sets hint bits and
	// prunes replaced versions; both engines fill caches), nor plans made
	// without statistics, which autovacuum has not yet gathered on a table
	// this young.
	o.Progress(fmt.Sprintf("%s: warm up: %s", name, b.warmed))
	if err := b.raw.settle(ctx); err != nil {
		return Result{}, fmt.Errorf("warm up: %w", err)
	}
	if n, _, err := readFeed(o.FeedBatch, func(after int64) (int, int64, error) { return b.raw.feed(ctx, after, o.FeedBatch) }); err != nil || n != b.loaded {
		return Result{}, fmt.Errorf("warm up: read %d changes (%v), want %d", n, err, b.loaded)
	}
	o.Progress(fmt.Sprintf("%s: read the change feed of %d documents from the start, %d per Feed call", name, b.loaded, o.FeedBatch))
	n, elapsed, err := readFeed(o.FeedBatch, func(after int64) (int, int64, error) {
		docs, err := b.store.Feed(ctx, docsContainer, docstore.FeedStart{AfterLSN: after}, o.FeedBatch)
		if err != nil || len(docs) == 0 {
			return 0, after, err
		}
		return len(docs), docs[len(docs)-1].LSN, nil
	})
	if err != nil {
		return Result{}, err
	}
	if n != b.loaded {
		return Result{}, fmt.Errorf("read %d changes, want %d", n, b.loaded)
	}
	r := Result{Events: n, Seconds: elapsed.Seconds(), EventsPerSec: rate(n, elapsed)}

	o.Progress(fmt.Sprintf("%s: %.0f changes/s; baseline: %s", name, r.EventsPerSec, b.feedBaseline))
	n, elapsed, err = readFeed(o.FeedBatch, func(after int64) (int, int64, error) { return b.raw.feed(ctx, after, o.FeedBatch) })
	if err != nil {
		return Result{}, fmt.Errorf("baseline: %w", err)
	}
	if n != b.loaded {
		return Result{}, fmt.Errorf("baseline: read %d changes, want %d", n, b.loaded)
	}
	r.setBaseline(b.feedBaseline, n, elapsed)
	r.Note = fmt.Sprintf("%s; reads of %d after the last LSN read; %s", b.note, o.FeedBatch, b.warmed)
	return r, nil
}

// upsertDocs writes the generator's first half batch (untimed: from then
// on, every batch has ids to replace), then total documents in batches,
// and returns how long those took and each call's latency.
func upsertDocs(g *docGen, total int64, put func(keys []docKey, docs [][]byte) error) (time.Duration, []time.Duration, error) {
	if keys, docs := g.next(g.batch/2, 0); len(docs) > 0 {
		if err := put(keys, docs); err != nil {
			return 0, nil, err
		}
	}
	lat := make([]time.Duration, 0, total/int64(g.batch)+1)
	start := time.Now()
	for done := int64(0); done < total; {
		n := int(min(int64(g.batch), total-done))
		keys, docs := g.next(n, n/2)
		t := time.Now()
		if err := put(keys, docs); err != nil {
			return 0, nil, err
		}
		lat = append(lat, time.Since(t))
		done += int64(n)
	}
	return time.Since(start), lat, nil
}

// readFeed reads a feed from the start until a read returns fewer than
// limit changes, and returns how many it read and how long that took.
func readFeed(limit int, read func(after int64) (n int, last int64, err error)) (int64, time.Duration, error) {
	var total, after int64
	start := time.Now()
	for {
		n, last, err := read(after)
		if err != nil {
			return 0, 0, err
		}
		total, after = total+int64(n), last
		if n < limit {
			return total, time.Since(start), nil
		}
	}
}

// docKey is a document's partition key and id.
type docKey struct{ pk, id string }

// docGen makes the workload's documents, like
// {"id":"doc-1234","deviceId":"dev-234","v":7,"pad":"xxxx..."}: a batch
// has new ids and ids written before (a run of them from a random place),
// so that those upserts replace documents. Two generators made alike make
// the same documents, so that a case and its baseline write the same.
type docGen struct {
	batch, size, partitions int
	rng                     *mrand.Rand
	// written is the number of distinct ids so far; upserted counts
	// documents.
	written, upserted int64
	round             int64
	buf               []byte
	pad               string
	keys              []docKey
	docs              [][]byte
}

func newDocGen(o DocsOptions) *docGen {
	return &docGen{
		batch: o.Batch, size: o.DocSize, partitions: o.Partitions,
		rng:  mrand.New(mrand.NewPCG(1, 2)),
		buf:  make([]byte, o.Batch*o.DocSize),
		pad:  strings.Repeat("x", o.DocSize),
		keys: make([]docKey, o.Batch),
		docs: make([][]byte, o.Batch),
	}
}

// next makes n documents, of which existing replace documents made
// before (at most as many as were made). The slices are reused by the
// next call.
func (g *docGen) next(n, existing int) ([]docKey, [][]byte) {
	existing = int(min(int64(existing), g.written))
	from := g.rng.Int64N(g.written - int64(existing) + 1)
	for j := range existing {
		g.make(j, from+int64(j))
	}
	for j := existing; j < n; j++ {
		g.make(j, g.written)
		g.written++
	}
	g.round++
	g.upserted += int64(n)
	return g.keys[:n], g.docs[:n]
}

func (g *docGen) make(j int, n int64) {
	id := "doc-" + strconv.FormatInt(n, 10)
	pk := "dev-" + strconv.FormatInt(n%int64(g.partitions), 10)
	b := g.buf[j*g.size : j*g.size : (j+1)*g.size]
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","deviceId":"`...)
	b = append(b, pk...)
	b = append(b, `","v":`...)
	b = strconv.AppendInt(b, g.round, 10)
	const padField = `,"pad":""}`
	if pad := g.size - len(b) - len(padField); pad > 0 {
		b = append(b, `,"pad":"`...)
		b = append(b, g.pad[:pad]...)
		b = append(b, '"')
	}
	b = append(b, '}')
	g.keys[j], g.docs[j] = docKey{pk: pk, id: id}, b
}

// The SQLite cases.

// sqlitePragmas are the store's settings: WAL, synchronous FULL, statement
// journals in memory; its writer has a page cache of 64 MiB.
const sqlitePragmas = "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_pragma=synchronous(FULL)&_pragma=temp_store(MEMORY)"

func openSQLiteDocs(ctx context.Context, o DocsOptions) (*docsBackend, error) {
	if o.DataDir == "" {
		return nil, errors.New("no data directory for the SQLite databases")
	}
	storePath, basePath := filepath.Join(o.DataDir, "docs.db"), filepath.Join(o.DataDir, "baseline.db")
	for _, p := range []string{storePath, basePath} {
		if _, err := os.Stat(p); err == nil {
			return nil, fmt.Errorf("%s exists already: give a data directory without docs.db and baseline.db", p)
		}
	}
	s, err := sqlite.Open(storePath, sqlite.Options{})
	if err != nil {
		return nil, err
	}
	raw, err := openSQLiteRaw(storePath, basePath)
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	if _, err := s.CreateContainer(ctx, docstore.Container{Name: docsContainer, PartitionKeyPath: "/deviceId"}); err != nil {
		return nil, errors.Join(err, s.Close(), raw.close())
	}
	return &docsBackend{
		store: s, raw: raw, where: storePath,
		sync: "full", note: "SQLite WAL, synchronous=FULL", warmed: "an untimed read of the feed first",
		upsertBaseline: "sqlite-multirow-insert-on-conflict",
		feedBaseline:   "sqlite-select-order-by-lsn",
		close:          func() error { return errors.Join(s.Close(), raw.close()) },
	}, nil
}

// sqliteRaw writes the baseline's rows into baseline.db and reads the
// store's docs.db, with the store's driver and settings.
type sqliteRaw struct {
	w, r  *sql.DB
	stmts map[int]*sql.Stmt // multi-row INSERTs by their number of rows
	args  []any
	lsn   int64
}

// sqliteMaxRows bounds the rows of one INSERT: SQLite takes at most 32,766
// parameters, and a row has 8.
const sqliteMaxRows = 32766 / 8

func openSQLiteRaw(storePath, basePath string) (*sqliteRaw, error) {
	w, err := sql.Open("sqlite", "file:"+basePath+sqlitePragmas+"&_pragma=cache_size(-65536)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", "file:"+storePath+sqlitePragmas+"&_pragma=query_only(ON)")
	if err != nil {
		w.Close()
		return nil, err
	}
	raw := &sqliteRaw{w: w, r: r, stmts: map[int]*sql.Stmt{}}
	if _, err := w.Exec(sqlite.DocumentsDDL("documents")); err != nil {
		return nil, errors.Join(err, raw.close())
	}
	return raw, nil
}

func (s *sqliteRaw) close() error {
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, s.w.Close(), s.r.Close())...)
}

func (s *sqliteRaw) stmt(ctx context.Context, rows int) (*sql.Stmt, error) {
	if st, ok := s.stmts[rows]; ok {
		return st, nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO documents (container, pk, id, body, etag, ts, lsn, deleted, pk_hash) VALUES `)
	for i := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, 0, ?)")
	}
	q.WriteString(` ON CONFLICT (container, pk, id) DO UPDATE SET body = excluded.body, etag = excluded.etag, ts = excluded.ts, lsn = excluded.lsn, deleted = 0`)
	st, err := s.w.PrepareContext(ctx, q.String())
	if err == nil {
		s.stmts[rows] = st
	}
	return st, err
}

func (s *sqliteRaw) upsert(ctx context.Context, keys []docKey, docs [][]byte) error {
	// Prepare first: the transaction holds the only connection.
	for from := 0; from < len(docs); from += sqliteMaxRows {
		if _, err := s.stmt(ctx, min(sqliteMaxRows, len(docs)-from)); err != nil {
			return err
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UnixNano()
	for from := 0; from < len(docs); from += sqliteMaxRows {
		to := min(from+sqliteMaxRows, len(docs))
		st := s.stmts[to-from]
		args := s.args[:0]
		for i := from; i < to; i++ {
			s.lsn++
			args = append(args, docsContainer, keys[i].pk, keys[i].id, string(docs[i]), docstore.ETagFor(s.lsn), now, s.lsn, docstore.PartitionKeyHash(keys[i].pk))
		}
		s.args = args
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (s *sqliteRaw) rows(ctx context.Context) (n int64, err error) {
	err = s.w.QueryRowContext(ctx, `SELECT count(*) FROM documents`).Scan(&n)
	return n, err
}

// settle does nothing: both reads use the feed index whatever the
// statistics.
func (s *sqliteRaw) settle(context.Context) error { return nil }

func (s *sqliteRaw) feed(ctx context.Context, after int64, limit int) (n int, last int64, err error) {
	rows, err := s.r.QueryContext(ctx, `SELECT pk, id, body, etag, ts, lsn, deleted FROM documents WHERE container = ? AND lsn > ? ORDER BY lsn LIMIT ?`,
		docsContainer, after, limit)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	last = after
	for rows.Next() {
		var pk, id, etag string
		var body []byte
		var ts int64
		var deleted bool
		if err := rows.Scan(&pk, &id, &body, &etag, &ts, &last, &deleted); err != nil {
			return 0, 0, err
		}
		n++
	}
	return n, last, rows.Err()
}

// The PostgreSQL cases.

func openPostgresDocs(ctx context.Context, o DocsOptions) (*docsBackend, error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	schema := "sluice_bench_" + hex.EncodeToString(b)
	ident := pgx.Identifier{schema}.Sanitize()
	// drop removes the schema on a connection of its own, which works
	// after ctx ends.
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, o.PostgresDSN)
		if err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+ident+" CASCADE"); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}
	s, err := postgres.Open(ctx, o.PostgresDSN, postgres.Options{Schema: schema})
	if err != nil {
		return nil, errors.Join(err, drop())
	}
	raw, note, err := openPostgresRaw(ctx, o.PostgresDSN, ident)
	if err == nil {
		_, err = s.CreateContainer(ctx, docstore.Container{Name: docsContainer, PartitionKeyPath: "/deviceId"})
	}
	if err != nil {
		if raw != nil {
			err = errors.Join(err, raw.conn.Close(context.Background()))
		}
		return nil, errors.Join(err, s.Close(), drop())
	}
	return &docsBackend{
		store: s, raw: raw, where: "schema " + schema,
		note:           note,
		warmed:         "ANALYZE and an untimed read of the feed first",
		upsertBaseline: "pgx-insert-unnest-on-conflict",
		feedBaseline:   "pgx-select-order-by-lsn",
		close: func() error {
			return errors.Join(s.Close(), raw.conn.Close(context.Background()), drop())
		},
	}, nil
}

// pgRaw writes the baseline's rows into a table of the schema shaped like
// the store's, and reads the store's, on one pgx connection.
type pgRaw struct {
	conn                        *pgx.Conn
	insert, count, sel, analyze string

	lsn                     int64
	pks, ids, bodies, etags []string
	lsns, hashes            []int64
}

// openPostgresRaw connects and creates the baseline's table in schema
// (sanitized), and returns a note on the server's durability settings.
func openPostgresRaw(ctx context.Context, dsn, schema string) (*pgRaw, string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, "", err
	}
	r := strings.NewReplacer("{s}", schema)
	p := &pgRaw{
		conn: conn,
		insert: r.Replace(`INSERT INTO {s}.baseline (container, pk, id, body, etag, ts, lsn, deleted, pk_hash)
			SELECT $1::text, d.pk, d.id, d.body::jsonb, d.etag, $2::timestamptz, d.lsn, false, d.pk_hash
			FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[]) AS d (pk, id, body, etag, lsn, pk_hash)
			ON CONFLICT (container, pk, id) DO UPDATE SET body = excluded.body, etag = excluded.etag, ts = excluded.ts, lsn = excluded.lsn, deleted = false`),
		count:   r.Replace(`SELECT count(*) FROM {s}.baseline`),
		analyze: r.Replace(`ANALYZE {s}.documents`),
		sel:     r.Replace(`SELECT pk, id, body, etag, ts, lsn, deleted FROM {s}.documents WHERE container = $1 AND lsn > $2 ORDER BY lsn LIMIT $3`),
	}
	if _, err := conn.Exec(ctx, r.Replace(postgres.DocumentsDDL("{s}.baseline"))); err != nil {
		return p, "", err
	}
	var version, fsync, syncCommit string
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')`).
		Scan(&version, &fsync, &syncCommit); err != nil {
		return p, "", err
	}
	return p, fmt.Sprintf("PostgreSQL %s, fsync=%s, synchronous_commit=%s", version, fsync, syncCommit), nil
}

// upsert writes the batch with one statement, which is one transaction.
func (p *pgRaw) upsert(ctx context.Context, keys []docKey, docs [][]byte) error {
	p.pks, p.ids, p.bodies, p.etags, p.lsns, p.hashes = p.pks[:0], p.ids[:0], p.bodies[:0], p.etags[:0], p.lsns[:0], p.hashes[:0]
	for i, k := range keys {
		p.lsn++
		p.pks, p.ids, p.bodies = append(p.pks, k.pk), append(p.ids, k.id), append(p.bodies, string(docs[i]))
		p.etags, p.lsns, p.hashes = append(p.etags, docstore.ETagFor(p.lsn)), append(p.lsns, p.lsn), append(p.hashes, docstore.PartitionKeyHash(k.pk))
	}
	_, err := p.conn.Exec(ctx, p.insert, docsContainer, time.Now(), p.pks, p.ids, p.bodies, p.etags, p.lsns, p.hashes)
	return err
}

func (p *pgRaw) rows(ctx context.Context) (n int64, err error) {
	err = p.conn.QueryRow(ctx, p.count).Scan(&n)
	return n, err
}

func (p *pgRaw) settle(ctx context.Context) error {
	_, err := p.conn.Exec(ctx, p.analyze)
	return err
}

func (p *pgRaw) feed(ctx context.Context, after int64, limit int) (n int, last int64, err error) {
	rows, err := p.conn.Query(ctx, p.sel, docsContainer, after, limit)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	last = after
	for rows.Next() {
		var pk, id, etag string
		var body []byte
		var ts time.Time
		var deleted bool
		if err := rows.Scan(&pk, &id, &body, &etag, &ts, &last, &deleted); err != nil {
			return 0, 0, err
		}
		n++
	}
	return n, last, rows.Err()
}
