package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluicehq/sluice"
)

// CDCOptions configure the CDC workload: a PostgreSQL table's changes
// carried by a Sluice pipeline (logical replication → change log → SQL
// destination) into another PostgreSQL database, beside a plain Go program
// doing the same with pglogrepl and batched upserts.
type CDCOptions struct {
	// URL is a PostgreSQL server's database, postgres://user@host:5432/db.
	// The server needs wal_level = logical; the user must be able to
	// create databases and to replicate (a superuser can). The run
	// creates the databases sluice_bench_cdc_src and sluice_bench_cdc_dst
	// on that server and drops them (and the replication slots in them)
	// before and after. Required.
	URL string
	// Changes is the number of row changes of the throughput phase, and of
	// the baseline. Default 1,000,000.
	Changes int64
	// Writers are the concurrent writers of the source table, each with
	// ids of its own. Default 8.
	Writers int
	// RowsPerStatement is the rows each INSERT, UPDATE and DELETE
	// statement changes (each its own transaction). Default 100.
	RowsPerStatement int
	// DataDir holds the Sluice app's data, in the subdirectory cdc,
	// removed before and after. Required.
	DataDir string
	// Progress, if set, is called with a line of progress now and then.
	Progress func(string)
}

func (o *CDCOptions) defaults() {
	o.Changes = cmp.Or(o.Changes, 1_000_000)
	o.Writers = cmp.Or(o.Writers, 8)
	o.RowsPerStatement = cmp.Or(o.RowsPerStatement, 100)
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
}

func (o *CDCOptions) validate() error {
	switch {
	case o.URL == "":
		return errors.New("cdc: give a PostgreSQL URL (--postgres, or SLUICE_TEST_POSTGRES), e.g. postgres://postgres@127.0.0.1:5432/postgres")
	case o.DataDir == "":
		return errors.New("cdc: DataDir is required")
	case o.Changes < 1 || o.Writers < 1 || o.RowsPerStatement < 1:
		return errors.New("cdc: Changes, Writers and RowsPerStatement must be at least 1")
	}
	return nil
}

// The names the workload creates, so that it can find and drop them.
const (
	cdcSourceDB     = "sluice_bench_cdc_src"
	cdcDestDB       = "sluice_bench_cdc_dst"
	cdcPipeline     = "benchcdc" // its slot and publication: sluice_benchcdc
	cdcBaselineSlot = "sluice_bench_baseline"
	cdcBaselineName = "pglogrepl + batched upserts"
)

// The half-load phase writes at most this many changes, and at most
// cdcHalfLoadFor's worth at its rate.
const (
	cdcHalfLoadMax = 200_000
	cdcHalfLoadFor = 20 * time.Second
)

// cdcStall is how long the destination may apply nothing while it is
// behind before the run fails.
const cdcStall = time.Minute

// RunCDC runs the CDC workload and reports its one case, postgres:
// changes/s end to end through a Sluice pipeline (from the writers' start
// until the destination has every change), the p50/p99 latency from
// source write to destination apply at half that rate, and the same
// changes through the baseline program. Figures are measured, never
// checked against targets; the destination is checked equal to the source
// after each phase.
func RunCDC(ctx context.Context, o CDCOptions, report func(Result)) error {
	o.defaults()
	if err := o.validate(); err != nil {
		return err
	}
	failed := &failures{workload: "cdc"}
	r, err := runCDC(ctx, o)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		failed.add(report, "postgres", err)
		return failed.err()
	}
	report(r)
	return nil
}

func runCDC(ctx context.Context, o CDCOptions) (r Result, err error) {
	env, err := openCDC(ctx, o)
	if err != nil {
		return r, err
	}
	dir := filepath.Join(o.DataDir, "cdc")
	defer func() {
		err = errors.Join(err, env.close(), os.RemoveAll(dir))
	}()
	if err := os.RemoveAll(dir); err != nil {
		return r, err
	}

	s, err := env.runSluice(ctx, o, dir)
	if err != nil {
		return r, err
	}
	r = Result{Workload: "cdc", Case: "postgres", Events: o.Changes, Seconds: s.took.Seconds(), EventsPerSec: rate(o.Changes, s.took),
		LatencyAtRate: s.halfRate, Sync: sluice.SyncAlways}
	r.P50ms, r.P99ms = percentiles(s.latencies)

	o.Progress(fmt.Sprintf("baseline (%s): %d changes", cdcBaselineName, o.Changes))
	took, err := env.runBaseline(ctx, o)
	if err != nil {
		return r, fmt.Errorf("baseline: %w", err)
	}
	r.setBaseline(cdcBaselineName, o.Changes, took)
	r.PeakRSSMiB = PeakRSSMiB()
	r.Note = fmt.Sprintf("%d writers, %d rows per statement (~60%% insert, 30%% update, 10%% delete); latency: destination apply time - source write time of the last change of the %d rows left of %d changes at half load; targets: 50000 changes/s or more, 0.7 of the baseline or more, p99 250ms or less",
		o.Writers, o.RowsPerStatement, len(s.latencies), s.halfChanges)
	return r, nil
}

// cdcEnv is the server and the workload's two databases on it.
type cdcEnv struct {
	admin          *pgxpool.Pool // the URL's database: creates and drops the others
	srcURL, dstURL string
	src, dst       *pgxpool.Pool // nil between reset and open
	writers        int
}

// openCDC checks the server and the user, and makes the databases afresh.
func openCDC(ctx context.Context, o CDCOptions) (*cdcEnv, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, errors.New("cdc: the PostgreSQL URL must be a URL, postgres://user@host:5432/db")
	}
	if db := u.Path; db == "/"+cdcSourceDB || db == "/"+cdcDestDB {
		return nil, fmt.Errorf("cdc: the URL names %s, a database the benchmark drops: name another one on that server (e.g. postgres)", u.Path[1:])
	}
	admin, err := pgxpool.New(ctx, o.URL)
	if err != nil {
		return nil, fmt.Errorf("cdc: %w", err)
	}
	env := &cdcEnv{admin: admin, writers: o.Writers}
	with := func(db string) string {
		v := *u
		v.Path = "/" + db
		return v.String()
	}
	env.srcURL, env.dstURL = with(cdcSourceDB), with(cdcDestDB)
	var level string
	var createDB, replicate bool
	err = admin.QueryRow(ctx, `SELECT current_setting('wal_level'), rolsuper OR rolcreatedb, rolsuper OR rolreplication
FROM pg_roles WHERE rolname = current_user`).Scan(&level, &createDB, &replicate)
	switch {
	case err != nil:
		err = fmt.Errorf("cdc: connect to PostgreSQL: %w", err)
	case level != "logical":
		err = fmt.Errorf("cdc: the server has wal_level = %s; logical replication needs logical: run ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL", level)
	case !createDB:
		err = errors.New("cdc: the URL's user may not create databases, which the benchmark does: connect as a superuser, or run ALTER ROLE <user> CREATEDB")
	case !replicate:
		err = errors.New("cdc: the URL's user may not replicate: connect as a superuser, or run ALTER ROLE <user> REPLICATION")
	}
	if err != nil {
		admin.Close()
		return nil, err
	}
	if err := env.reset(ctx); err != nil {
		return nil, errors.Join(err, env.close())
	}
	return env, nil
}

// reset drops the workload's databases (and the replication slots in
// them) and creates them again with their tables.
func (e *cdcEnv) reset(ctx context.Context) error {
	if err := e.drop(ctx); err != nil {
		return err
	}
	for _, db := range []string{cdcSourceDB, cdcDestDB} {
		if _, err := e.admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			return fmt.Errorf("cdc: create database %s: %w", db, err)
		}
	}
	var err error
	if e.src, err = e.pool(ctx, e.srcURL); err != nil {
		return err
	}
	if e.dst, err = e.pool(ctx, e.dstURL); err != nil {
		return err
	}
	const table = `CREATE TABLE orders (
	id bigint PRIMARY KEY,
	customer text NOT NULL,
	status text NOT NULL,
	amount numeric(12,2) NOT NULL,
	note text NOT NULL,
	written_at timestamptz NOT NULL DEFAULT clock_timestamp()`
	if _, err := e.src.Exec(ctx, table+")"); err != nil {
		return fmt.Errorf("cdc: create the source table: %w", err)
	}
	// The destination stamps each row as it is written: the latency of a
	// change is applied_at - written_at, both by the server's clock.
	for _, q := range []string{table + ",\n\tapplied_at timestamptz)",
		`CREATE FUNCTION stamp_applied() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.applied_at := clock_timestamp(); RETURN NEW; END$$`,
		`CREATE TRIGGER stamp_applied BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION stamp_applied()`,
	} {
		if _, err := e.dst.Exec(ctx, q); err != nil {
			return fmt.Errorf("cdc: create the destination table: %w", err)
		}
	}
	// Begin each phase from a clean WAL (best effort: it needs superuser
	// or pg_checkpoint).
	_, _ = e.admin.Exec(ctx, "CHECKPOINT")
	return nil
}

func (e *cdcEnv) pool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("cdc: %w", err)
	}
	pc.MaxConns = int32(e.writers + 2)
	p, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("cdc: %w", err)
	}
	return p, nil
}

// drop closes the pools of the workload's databases and drops them, with
// the replication slots in them (all the workload's: its own databases
// hold no one else's).
func (e *cdcEnv) drop(ctx context.Context) error {
	for _, p := range []*pgxpool.Pool{e.src, e.dst} {
		if p != nil {
			p.Close()
		}
	}
	e.src, e.dst = nil, nil
	for _, db := range []string{cdcSourceDB, cdcDestDB} {
		if err := e.dropSlots(ctx, db); err != nil {
			return err
		}
		if _, err := e.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("cdc: drop database %s: %w", db, err)
		}
	}
	return nil
}

// dropSlots drops the replication slots of database db, ending the
// sessions that use them first.
func (e *cdcEnv) dropSlots(ctx context.Context, db string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left int
		err := e.admin.QueryRow(ctx, `WITH ended AS (
	SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL
), dropped AS (
	SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active
)
SELECT (SELECT count(*) FROM ended) + (SELECT count(*) FROM dropped)`, db).Scan(&left)
		if err == nil {
			err = e.admin.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE database = $1", db).Scan(&left)
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "55006" {
			// A slot became active again before it was dropped.
			err, left = nil, -1
		}
		if err != nil {
			return fmt.Errorf("cdc: drop the replication slots of database %s: %w", db, err)
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cdc: drop the replication slots of database %s: %d still in use after 30s; drop them with SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '%s'",
				db, left, db)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// close drops the databases and closes the admin pool. It runs even when
// the caller's context has ended.
func (e *cdcEnv) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := e.drop(ctx)
	e.admin.Close()
	return err
}

// sluiceRun is what the Sluice phases measured.
type sluiceRun struct {
	took        time.Duration // the throughput phase
	halfRate    float64       // the half-load phase's rate
	halfChanges int64
	latencies   []time.Duration
}

// runSluice measures the pipeline: flat out, then at half that rate.
func (e *cdcEnv) runSluice(ctx context.Context, o CDCOptions, dir string) (sluiceRun, error) {
	var s sluiceRun
	app := sluice.New(sluice.Config{DataDir: dir, InstanceID: "bench", Sync: sluice.SyncAlways,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	app.Pipeline(cdcPipeline, sluice.PipelineConfig{
		Postgres:     &sluice.PostgresSource{URL: e.srcURL, Tables: []string{"public.orders"}},
		Destinations: []sluice.PipelineDestination{{Name: "db", SQL: &sluice.SQLDestination{URL: e.dstURL}}},
	})
	if err := app.Start(ctx); err != nil {
		return s, fmt.Errorf("start the app: %w", err)
	}
	defer func() { _ = app.Stop(context.Background()) }()
	progress := func(ctx context.Context) (int64, string, error) {
		st, err := app.PipelineStatus(ctx, cdcPipeline)
		if err != nil {
			return 0, "", err
		}
		line := fmt.Sprintf("change set %d of %d applied", st.Destinations[0].Applied, st.Staged)
		if st.SourceError != "" {
			line += "; the source failed: " + st.SourceError
		}
		return st.Destinations[0].Applied, line, nil
	}

	// The pipeline streams once a first row written now arrives.
	o.Progress("sluice: waiting for the pipeline to stream")
	if err := e.sentinel(ctx, o, "sluice", cdcReadyID, progress); err != nil {
		return s, err
	}
	o.Progress(fmt.Sprintf("sluice: %d changes flat out", o.Changes))
	var err error
	if s.took, err = e.phase(ctx, o, "sluice", cdcLoad{phase: 1, changes: o.Changes}, progress); err != nil {
		return s, err
	}
	eps := rate(o.Changes, s.took)
	s.halfRate = eps / 2
	s.halfChanges = max(1, min(o.Changes, cdcHalfLoadMax, int64(s.halfRate*cdcHalfLoadFor.Seconds())))
	o.Progress(fmt.Sprintf("sluice: %.0f changes/s; now %d changes at %.0f/s", eps, s.halfChanges, s.halfRate))
	if _, err := e.phase(ctx, o, "sluice", cdcLoad{phase: 2, changes: s.halfChanges, rate: s.halfRate}, progress); err != nil {
		return s, err
	}
	s.latencies, err = e.latencies(ctx, 2)
	return s, err
}

// The sentinel rows' ids: a row written after the writers of a phase
// finished, so the destination has every change of the phase once it has
// the sentinel (a pipeline applies transactions in commit order).
const cdcReadyID = -1

func cdcSentinelID(phase int) int64 { return -1 - int64(phase) }

// progressFunc reads how far the destination got: a number that grows
// while it applies, and a line for progress.
type progressFunc func(ctx context.Context) (int64, string, error)

// phase writes a load and waits until the destination has all of it; it
// returns the time from the writers' start until then, and checks the
// destination equal to the source.
func (e *cdcEnv) phase(ctx context.Context, o CDCOptions, who string, l cdcLoad, progress progressFunc) (time.Duration, error) {
	var written atomic.Int64
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				o.Progress(fmt.Sprintf("%s: %d of %d changes written", who, written.Load(), l.changes))
			}
		}
	}()
	start := time.Now()
	if err := writeCDC(ctx, e.src, o, l, &written); err != nil {
		return 0, err
	}
	if err := e.sentinel(ctx, o, who, cdcSentinelID(l.phase), progress); err != nil {
		return 0, err
	}
	took := time.Since(start)
	return took, e.compare(ctx)
}

// sentinel writes the row id and waits until the destination has it,
// failing when the destination applies nothing for cdcStall.
func (e *cdcEnv) sentinel(ctx context.Context, o CDCOptions, who string, id int64, progress progressFunc) error {
	if _, err := e.src.Exec(ctx, "INSERT INTO orders (id, customer, status, amount, note) VALUES ($1, 'sentinel', 'new', 0, '')", id); err != nil {
		return fmt.Errorf("write to the source: %w", err)
	}
	var last int64
	var line string
	lastMoved, nextCheck := time.Now(), time.Now().Add(time.Second)
	for {
		var arrived bool
		if err := e.dst.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)", id).Scan(&arrived); err != nil {
			return fmt.Errorf("read the destination: %w", err)
		}
		if arrived {
			return nil
		}
		if now := time.Now(); now.After(nextCheck) {
			n, l, err := progress(ctx)
			if err != nil {
				return err
			}
			if n != last {
				last, lastMoved = n, now
			}
			line = l
			if now.Sub(lastMoved) > cdcStall {
				return fmt.Errorf("the destination applied nothing for %s while behind (%s)", cdcStall, line)
			}
			o.Progress(fmt.Sprintf("%s: waiting for the destination: %s", who, line))
			nextCheck = now.Add(time.Second)
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
}

// compare checks the destination's rows equal to the source's: their
// number, and sums of their amounts and of a hash of each row.
func (e *cdcEnv) compare(ctx context.Context) error {
	const q = `SELECT count(*), coalesce(sum(amount), 0)::text,
	coalesce(sum(hashtext(concat_ws('|', id, customer, status, amount, note, extract(epoch FROM written_at)))), 0)::text
FROM orders`
	type sums struct {
		n          int64
		amount, hs string
	}
	var src, dst sums
	if err := e.src.QueryRow(ctx, q).Scan(&src.n, &src.amount, &src.hs); err != nil {
		return fmt.Errorf("read the source: %w", err)
	}
	if err := e.dst.QueryRow(ctx, q).Scan(&dst.n, &dst.amount, &dst.hs); err != nil {
		return fmt.Errorf("read the destination: %w", err)
	}
	if src != dst {
		return fmt.Errorf("the destination differs from the source once caught up: source %d rows (amounts %s, hash %s), destination %d rows (amounts %s, hash %s)",
			src.n, src.amount, src.hs, dst.n, dst.amount, dst.hs)
	}
	return nil
}

// latencies are applied_at - written_at of the rows of a phase left at
// the destination.
func (e *cdcEnv) latencies(ctx context.Context, phase int) ([]time.Duration, error) {
	lo, hi := cdcIDBase(phase, 0), cdcIDBase(phase+1, 0)
	rows, err := e.dst.Query(ctx, "SELECT (extract(epoch FROM applied_at - written_at) * 1e6)::bigint FROM orders WHERE id >= $1 AND id < $2", lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read the latencies: %w", err)
	}
	us, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("read the latencies: %w", err)
	}
	out := make([]time.Duration, len(us))
	for i, v := range us {
		out[i] = time.Duration(v) * time.Microsecond
	}
	return out, nil
}
