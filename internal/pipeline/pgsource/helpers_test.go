package pgsource_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/pgsource"
	"github.com/sluicehq/sluice/internal/testlog"
)

var bg = context.Background()

// dsnOrSkip is the test database, from SLUICE_TEST_POSTGRES. It must have
// wal_level = logical (but for TestNotLogical).
func dsnOrSkip(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("SLUICE_TEST_POSTGRES is not set: set it to the URL of a PostgreSQL server with wal_level = logical " +
			"(like postgres://postgres@127.0.0.1:5433/postgres?sslmode=disable) to run the PostgreSQL source tests")
	}
	return dsn
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testCtx ends a little before the test's deadline: what waits on it
// fails with a message instead of the test binary timing out.
func testCtx(t *testing.T) context.Context {
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-15*time.Second))
		t.Cleanup(cancel)
	}
	return ctx
}

// fixture is a fresh schema of the test database, and a logger whose
// records are shown when the test fails.
type fixture struct {
	t      *testing.T
	dsn    string
	schema string
	admin  *pgx.Conn
	logger *slog.Logger
}

func setup(t *testing.T) *fixture {
	t.Helper()
	dsn := dsnOrSkip(t)
	f := &fixture{t: t, dsn: dsn, schema: "pgsource_" + randHex(6)}
	f.admin = connect(t, dsn)
	var level string
	require.NoError(t, f.admin.QueryRow(bg, "SHOW wal_level").Scan(&level))
	if level != "logical" {
		t.Skipf("the server of SLUICE_TEST_POSTGRES has wal_level = %s: these tests need logical", level)
	}
	f.exec("CREATE SCHEMA " + f.schema)
	t.Cleanup(func() {
		_, err := f.admin.Exec(bg, "DROP SCHEMA IF EXISTS "+f.schema+" CASCADE")
		require.NoError(t, err)
	})
	var buf *testlog.Buffer
	f.logger, buf = testlog.New(slog.LevelDebug)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("source log:\n%s", buf.String())
		}
	})
	return f
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(bg, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(bg) })
	return conn
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	_, err := f.admin.Exec(bg, sql, args...)
	require.NoError(f.t, err, sql)
}

// config is a Config of a pipeline of its own reading the tables (names
// within the fixture's schema); its slot and publication are dropped at
// the end.
func (f *fixture) config(tables ...string) pgsource.Config {
	cfg := pgsource.Config{DSN: f.dsn, Pipeline: "test_" + randHex(6), Logger: f.logger}
	for _, name := range tables {
		cfg.Tables = append(cfg.Tables, f.schema+"."+name)
	}
	f.t.Cleanup(func() { require.NoError(f.t, pgsource.Drop(bg, cfg)) })
	return cfg
}

func (f *fixture) source(cfg pgsource.Config) *pgsource.Source {
	f.t.Helper()
	src, err := pgsource.New(cfg)
	require.NoError(f.t, err)
	return src
}

// collector records the batches a Run hands over.
type collector struct {
	mu      sync.Mutex
	batches []pipeline.Batch
	changed chan struct{}
	// hook, when set, is called before a batch is recorded, with the
	// number of batches recorded before it; an error refuses the batch.
	hook func(ctx context.Context, b pipeline.Batch, n int) error
}

func newCollector() *collector { return &collector{changed: make(chan struct{})} }

func (c *collector) emit(ctx context.Context, b pipeline.Batch) error {
	c.mu.Lock()
	n := len(c.batches)
	c.mu.Unlock()
	if c.hook != nil {
		if err := c.hook(ctx, b, n); err != nil {
			return err
		}
	}
	c.record(b)
	return nil
}

// record records b as handed over.
func (c *collector) record(b pipeline.Batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches = append(c.batches, b)
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *collector) snapshot() []pipeline.Batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.batches)
}

// running is a Run going on in a goroutine.
type running struct {
	t      *testing.T
	col    *collector
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// start runs src in a goroutine until ctx ends or stop.
func start(t *testing.T, ctx context.Context, src *pgsource.Source, after string, col *collector) *running {
	ctx, cancel := context.WithCancel(ctx)
	r := &running{t: t, col: col, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = src.Run(ctx, after, col.emit)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait waits until cond holds of the batches recorded, failing the test
// if the Run returns first or the test runs out of time.
func (r *running) wait(what string, cond func([]pipeline.Batch) bool) {
	r.t.Helper()
	ctx := testCtx(r.t)
	for {
		r.col.mu.Lock()
		ok := cond(r.col.batches)
		ch := r.col.changed
		r.col.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-r.done:
			r.col.mu.Lock()
			ok := cond(r.col.batches)
			r.col.mu.Unlock()
			if !ok {
				r.t.Fatalf("Run returned (%v) before %s", r.err, what)
			}
			return
		case <-ctx.Done():
			r.t.Fatalf("still waiting for %s: %v", what, ctx.Err())
		}
	}
}

// requireRunning fails the test, with the Run's error, if the Run has
// returned before what was seen.
func (r *running) requireRunning(what string) {
	r.t.Helper()
	select {
	case <-r.done:
		r.t.Fatalf("Run returned (%v) before %s", r.err, what)
	default:
	}
}

// stop cancels the Run and returns its error.
func (r *running) stop() error {
	r.t.Helper()
	r.cancel()
	return r.returned()
}

// returned waits for the Run to return and returns its error.
func (r *running) returned() error {
	r.t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-testCtx(r.t).Done():
		r.t.Fatal("Run did not return")
		return nil
	}
}

func snapshotDone(bs []pipeline.Batch) bool {
	return slices.ContainsFunc(bs, func(b pipeline.Batch) bool { return strings.HasPrefix(b.Position, "snapshot-done:") })
}

// sawTx reports whether a change of transaction tx was handed over.
func sawTx(tx string) func([]pipeline.Batch) bool {
	return func(bs []pipeline.Batch) bool {
		for _, b := range bs {
			for _, c := range b.Changes {
				if c.After["tx"] == tx {
					return true
				}
			}
		}
		return false
	}
}

// The tables the writers write: a (DEFAULT replica identity, a primary
// key, a TOASTable payload) and b (REPLICA IDENTITY FULL, a composite
// key, assorted types).
const (
	tableA = `CREATE TABLE %[1]s.a (id int8 PRIMARY KEY, v int8 NOT NULL, tx text, payload text)`
	tableB = `CREATE TABLE %[1]s.b (k1 text, k2 int4, v int8 NOT NULL, tx text, flag bool, amount numeric(10,2), at timestamptz, note varchar(40),
		PRIMARY KEY (k1, k2));
	ALTER TABLE %[1]s.b REPLICA IDENTITY FULL`
	sharedKeys = 8 // rows of a every writer updates: a.id 1..8
)

var keyCols = map[string][]string{"a": {"id"}, "b": {"k1", "k2"}}

func (f *fixture) createTables() {
	f.exec(fmt.Sprintf(tableA, f.schema))
	f.exec(fmt.Sprintf(tableB, f.schema))
	f.exec(fmt.Sprintf(`INSERT INTO %s.a (id, v, tx) SELECT g, 0, 'init' FROM generate_series(1, %d) g`, f.schema, sharedKeys))
}

// prefill adds rows to both tables, outside the writers' key ranges.
func (f *fixture) prefill(n int) {
	f.exec(fmt.Sprintf(`INSERT INTO %s.a (id, v, tx, payload) SELECT 100 + g, 0, 'init', md5(g::text) FROM generate_series(1, %d) g`, f.schema, n))
	f.exec(fmt.Sprintf(`INSERT INTO %s.b (k1, k2, v, tx, flag, amount, at, note)
		SELECT 'init', g, 0, 'init', g %% 2 = 0, g * 1.25, now(), 'n' || g FROM generate_series(1, %d) g`, f.schema, n))
}

// writers commit transactions on a and b from several connections.
type writers struct {
	f *fixture
	// committed: transaction tag → rows it changed; required: the tags
	// that must appear in the stream.
	mu        sync.Mutex
	committed map[string]int
	required  map[string]bool
	// afterMark: transactions that begin from now on are required (the
	// snapshot test sets it once the snapshot is being read).
	afterMark atomic.Bool
	// stopping: the writers commit no more transactions.
	stopping atomic.Bool
	commits  atomic.Int64
	changed  chan struct{}
	wg       sync.WaitGroup
	errs     chan error
}

func newWriters(f *fixture) *writers {
	return &writers{f: f, committed: map[string]int{}, required: map[string]bool{}, changed: make(chan struct{}), errs: make(chan error, 64)}
}

// start starts n writers, each committing (or rolling back) txns
// transactions, or fewer if stopped first.
func (w *writers) start(ctx context.Context, n, txns int) {
	for i := range n {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			if err := w.write(ctx, i, txns); err != nil {
				w.errs <- fmt.Errorf("writer %d: %w", i, err)
			}
		}()
	}
}

// stop stops the writers, then finishes.
func (w *writers) stop() {
	w.f.t.Helper()
	w.stopping.Store(true)
	w.finish()
}

// finish waits for the writers, then commits the fence transaction (tag
// "fence"): once it is in the stream, so is every transaction before it.
func (w *writers) finish() {
	t := w.f.t
	t.Helper()
	w.wg.Wait()
	close(w.errs)
	for err := range w.errs {
		require.NoError(t, err)
	}
	w.f.exec(fmt.Sprintf("INSERT INTO %s.a (id, v, tx) VALUES (99, 0, 'fence')", w.f.schema))
	w.mu.Lock()
	w.committed["fence"] = 1
	w.required["fence"] = true
	w.mu.Unlock()
}

// waitCommits waits until n transactions committed since the call (the
// writers must not run out of transactions before).
func (w *writers) waitCommits(ctx context.Context, n int64) error {
	target := w.commits.Load() + n
	for {
		w.mu.Lock()
		ch := w.changed
		w.mu.Unlock()
		if w.commits.Load() >= target {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *writers) write(ctx context.Context, id, txns int) error {
	conn, err := pgx.Connect(ctx, w.f.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(bg)
	s := w.f.schema
	rnd := mrand.New(mrand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	var liveA []int64
	var liveB []int32
	nextA, nextB := int64(1_000_000*(id+1)), int32(0)
	name := fmt.Sprintf("w%02d", id)
	for i := range txns {
		if w.stopping.Load() {
			return nil
		}
		tag := fmt.Sprintf("%s-%d", name, i)
		required := w.afterMark.Load()
		savedA, savedB := slices.Clone(liveA), slices.Clone(liveB)
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		rows := 0
		do := func(sql string, args ...any) error {
			ct, err := tx.Exec(ctx, sql, args...)
			rows += int(ct.RowsAffected())
			return err
		}
		ops := 1 + rnd.IntN(4)
		for op := range ops {
			kind := rnd.IntN(8)
			if op == 0 {
				// The first change carries the tag in its new row.
				kind = rnd.IntN(4)
			}
			switch {
			case kind == 0 || kind == 1 && len(liveA) == 0: // insert a
				nextA++
				var payload any = fmt.Sprintf("p%d", nextA)
				switch rnd.IntN(6) {
				case 0:
					payload = nil
				case 1:
					// Large and random: stored out of line (TOAST).
					payload = randHex(12000)
				}
				err = do(fmt.Sprintf("INSERT INTO %s.a (id, v, tx, payload) VALUES ($1, 0, $2, $3)", s), nextA, tag, payload)
				liveA = append(liveA, nextA)
			case kind == 1: // update own a, leaving the payload alone
				k := liveA[rnd.IntN(len(liveA))]
				err = do(fmt.Sprintf("UPDATE %s.a SET v = v + 1, tx = $1 WHERE id = $2", s), tag, k)
			case kind == 2: // update a shared row of a
				if op != 0 {
					continue // one per transaction: no deadlocks
				}
				err = do(fmt.Sprintf("UPDATE %s.a SET v = v + 1, tx = $1 WHERE id = $2", s), tag, 1+rnd.IntN(sharedKeys))
			case kind == 3 || kind == 4 && len(liveB) == 0: // insert b
				nextB++
				err = do(fmt.Sprintf("INSERT INTO %s.b (k1, k2, v, tx, flag, amount, at, note) VALUES ($1, $2, 0, $3, $4, $5, now(), $6)", s),
					name, nextB, tag, rnd.IntN(2) == 0, fmt.Sprintf("%d.%02d", rnd.IntN(10000), rnd.IntN(100)), fmt.Sprintf("note %d", rnd.IntN(100)))
				liveB = append(liveB, nextB)
			case kind == 4: // update own b
				k := liveB[rnd.IntN(len(liveB))]
				err = do(fmt.Sprintf("UPDATE %s.b SET v = v + 1, tx = $1, note = NULL WHERE k1 = $2 AND k2 = $3", s), tag, name, k)
			case kind == 5 && len(liveA) > 0: // delete own a
				j := rnd.IntN(len(liveA))
				err = do(fmt.Sprintf("DELETE FROM %s.a WHERE id = $1", s), liveA[j])
				liveA = slices.Delete(liveA, j, j+1)
			case kind == 6 && len(liveB) > 0: // delete own b
				j := rnd.IntN(len(liveB))
				err = do(fmt.Sprintf("DELETE FROM %s.b WHERE k1 = $1 AND k2 = $2", s), name, liveB[j])
				liveB = slices.Delete(liveB, j, j+1)
			case kind == 7 && len(liveA) > 0: // change the key of own a
				j := rnd.IntN(len(liveA))
				nextA++
				err = do(fmt.Sprintf("UPDATE %s.a SET id = $1, v = v + 1, tx = $2 WHERE id = $3", s), nextA, tag, liveA[j])
				liveA[j] = nextA
			case kind == 7 && len(liveB) > 0: // change the key of own b
				j := rnd.IntN(len(liveB))
				nextB++
				err = do(fmt.Sprintf("UPDATE %s.b SET k2 = $1, v = v + 1, tx = $2 WHERE k1 = $3 AND k2 = $4", s), nextB, tag, name, liveB[j])
				liveB[j] = nextB
			}
			if err != nil {
				_ = tx.Rollback(bg)
				return err
			}
		}
		if rnd.IntN(10) == 0 {
			if err := tx.Rollback(ctx); err != nil {
				return err
			}
			liveA, liveB = savedA, savedB
			continue
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		w.mu.Lock()
		w.committed[tag] = rows
		if required {
			w.required[tag] = true
		}
		w.commits.Add(1)
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
	return nil
}

// model applies changes to tables of rows, strictly: a read or an insert
// of a key it has, an update or a delete of a key it has not, an update
// that does not raise the row's version v, or a Before unlike the row it
// has, is an error (a change lost, repeated or out of order).
type model struct {
	rows map[string]map[string]pipeline.Row
}

func newModel() *model { return &model{rows: map[string]map[string]pipeline.Row{}} }

func keyString(table string, row pipeline.Row) string {
	var parts []string
	for _, k := range keyCols[table] {
		parts = append(parts, fmt.Sprint(row[k]))
	}
	return strings.Join(parts, "|")
}

func version(row pipeline.Row) int {
	v, _ := strconv.Atoi(fmt.Sprint(row["v"]))
	return v
}

func (m *model) apply(c pipeline.Change) error {
	table := c.Table[strings.LastIndexByte(c.Table, '.')+1:]
	rows := m.rows[table]
	if rows == nil {
		rows = map[string]pipeline.Row{}
		m.rows[table] = rows
	}
	k := keyString(table, c.Key)
	old, has := rows[k]
	switch c.Op {
	case pipeline.Read, pipeline.Insert:
		if has {
			return fmt.Errorf("%s of %s %s, which exists: %v", c.Op, table, k, old)
		}
		if keyString(table, c.After) != k {
			return fmt.Errorf("%s of %s: key %v, row %v", c.Op, table, c.Key, c.After)
		}
		rows[k] = c.After
	case pipeline.Update:
		if !has {
			return fmt.Errorf("update of %s %s, which does not exist", table, k)
		}
		if c.Before != nil && !rowsEqual(c.Before, old) {
			return fmt.Errorf("update of %s %s: before %v, the row was %v", table, k, c.Before, old)
		}
		if version(c.After) <= version(old) {
			return fmt.Errorf("update of %s %s from version %d to %d: out of order or repeated", table, k, version(old), version(c.After))
		}
		row := pipeline.Row{}
		for col, v := range old {
			row[col] = v // columns left out (unchanged TOAST) keep their value
		}
		for col, v := range c.After {
			row[col] = v
		}
		if nk := keyString(table, row); nk != k {
			if _, taken := rows[nk]; taken {
				return fmt.Errorf("update of %s %s to key %s, which exists", table, k, nk)
			}
			delete(rows, k)
			k = nk
		}
		rows[k] = row
	case pipeline.Delete:
		if !has {
			return fmt.Errorf("delete of %s %s, which does not exist", table, k)
		}
		if c.Before != nil && !rowsEqual(c.Before, old) {
			return fmt.Errorf("delete of %s %s: before %v, the row was %v", table, k, c.Before, old)
		}
		delete(rows, k)
	default:
		return fmt.Errorf("op %q", c.Op)
	}
	return nil
}

func rowsEqual(a, b pipeline.Row) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// tables reads the tables as the source gives rows: text values.
func (f *fixture) tables(names ...string) map[string]map[string]pipeline.Row {
	f.t.Helper()
	out := map[string]map[string]pipeline.Row{}
	for _, name := range names {
		rows, err := f.admin.Query(bg, fmt.Sprintf("SELECT * FROM %s.%s", f.schema, name), pgx.QueryResultFormats{pgx.TextFormatCode})
		require.NoError(f.t, err)
		m := map[string]pipeline.Row{}
		for rows.Next() {
			row := pipeline.Row{}
			for i, fd := range rows.FieldDescriptions() {
				if v := rows.RawValues()[i]; v != nil {
					row[fd.Name] = string(v)
				} else {
					row[fd.Name] = nil
				}
			}
			m[keyString(name, row)] = row
		}
		require.NoError(f.t, rows.Err())
		out[name] = m
	}
	return out
}

// eventually waits until cond holds, asking every few milliseconds (for
// a state only the database knows).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := testCtx(t)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("still waiting for %s: %v", what, ctx.Err())
		}
	}
}

func lsnOf(t *testing.T, s string) pglogrepl.LSN {
	t.Helper()
	lsn, err := pglogrepl.ParseLSN(s)
	require.NoError(t, err, "LSN %q", s)
	return lsn
}

// checkStream checks the batches of a pipeline's runs (the later runs'
// after the earlier's) against the writers and the tables:
//   - applied in order to a strict model, they give the tables;
//   - stream batches end at "lsn:" their last change's commit LSN, and
//     commit LSNs never go down;
//   - a transaction's changes are all in one batch, together, as many as
//     it made, and no transaction shows twice, nor a rolled-back one;
//   - every required transaction is there.
func checkStream(t *testing.T, f *fixture, w *writers, m *model, batches []pipeline.Batch) {
	t.Helper()
	for bi, b := range batches {
		for ci, c := range b.Changes {
			require.NoError(t, m.apply(c), "batch %d (%s) change %d", bi, b.Position, ci)
		}
	}
	require.Equal(t, f.tables("a", "b"), m.rows, "the changes applied give the tables")

	var last pglogrepl.LSN
	groups := map[string][]pipeline.Change{} // commit LSN → changes
	batchOf := map[string]int{}
	for bi, b := range batches {
		if b.Snapshot {
			for _, c := range b.Changes {
				require.Equal(t, pipeline.Read, c.Op)
			}
			continue
		}
		require.NotEmpty(t, b.Changes, "batch %d", bi)
		require.Equal(t, "lsn:"+b.Changes[len(b.Changes)-1].Position, b.Position, "batch %d", bi)
		for _, c := range b.Changes {
			lsn := lsnOf(t, c.Position)
			require.GreaterOrEqual(t, lsn, last, "batch %d: commit LSNs go up", bi)
			if lsn > last {
				_, seen := groups[c.Position]
				require.False(t, seen, "transaction %s comes back after another", c.Position)
			}
			last = lsn
			if prev, ok := batchOf[c.Position]; ok {
				require.Equal(t, prev, bi, "transaction %s is split across batches", c.Position)
			}
			batchOf[c.Position] = bi
			groups[c.Position] = append(groups[c.Position], c)
			require.False(t, c.CommitTime.IsZero())
			require.NotEqual(t, pipeline.Read, c.Op)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	for pos, changes := range groups {
		tags := map[string]bool{}
		for _, c := range changes {
			if c.Op != pipeline.Delete {
				tags[fmt.Sprint(c.After["tx"])] = true
			}
		}
		require.Len(t, tags, 1, "transaction %s carries one tag: %v", pos, tags)
		var tag string
		for tag = range tags {
		}
		want, ok := w.committed[tag]
		require.True(t, ok, "transaction %s (%s) was committed", pos, tag)
		require.Equal(t, want, len(changes), "transaction %s (%s) comes whole", pos, tag)
		require.False(t, seen[tag], "transaction %s shows once", tag)
		seen[tag] = true
	}
	for tag := range w.required {
		require.True(t, seen[tag], "transaction %s is in the stream", tag)
	}
	t.Logf("%d batches, %d transactions streamed (%d committed, %d required)", len(batches), len(groups), len(w.committed), len(w.required))
}
