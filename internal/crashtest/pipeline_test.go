package crashtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluicehq/sluice"
)

// runPipeline runs a pipeline from PostgreSQL to a SQL destination until
// ctx ends.
func runPipeline(ctx context.Context, cfg childConfig) error {
	app := sluice.New(sluice.Config{
		DataDir: cfg.DataDir, Sync: cfg.Sync, InstanceID: cfg.InstanceID, ShutdownTimeout: 20 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Pipelines: map[string]sluice.PipelineConfig{cfg.Pipeline: {
			Postgres: &sluice.PostgresSource{URL: cfg.SourceURL, Tables: cfg.Tables}, BatchSize: 200,
			Destinations: []sluice.PipelineDestination{{Name: "reporting", SQL: &sluice.SQLDestination{URL: cfg.DestURL, CreateTables: true},
				RetryBackoff: 50 * time.Millisecond, MaxRetryBackoff: 500 * time.Millisecond}},
		}},
	})
	if err := app.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return app.Stop(context.Background())
}

// TestPipelineCrash SIGKILLs the instance running a PostgreSQL pipeline
// several times while 8 writers change the source: the SQL destination
// ends equal to the source, no change set is applied twice (a trigger
// records any write that does not raise a row's version), and the slot
// never passes a change that was not staged (nothing is missing).
func TestPipelineCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the pipeline crash test takes about 30s; it runs without -short")
	}
	dsn := os.Getenv("SLUICE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("SLUICE_TEST_POSTGRES is not set: set it to a PostgreSQL URL with wal_level = logical to run the pipeline crash test")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var level string
	if err := pool.QueryRow(ctx, "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		t.Skipf("the test database has wal_level = %s; set it to logical (.ci/run does)", level)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	tag := hex.EncodeToString(b)
	src, dst, name := "crash_src_"+tag, "crash_dst_"+tag, "crash"+tag
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", "sluice_"+name)
		_, _ = pool.Exec(context.Background(), "DROP PUBLICATION IF EXISTS sluice_"+name)
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+src+" CASCADE")
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+dst+" CASCADE")
	})
	exec("CREATE SCHEMA " + src)
	exec("CREATE SCHEMA " + dst)
	exec("CREATE TABLE " + src + ".accounts (id bigint PRIMARY KEY, version bigint NOT NULL, balance bigint NOT NULL)")
	exec("INSERT INTO " + src + ".accounts SELECT g, 1, 100 FROM generate_series(1, 200) g")
	// The destination table, made here so that it carries the trigger
	// that catches a change applied twice: every write must raise the
	// row's version.
	exec("CREATE TABLE " + dst + ".accounts (id bigint PRIMARY KEY, version bigint NOT NULL, balance bigint NOT NULL)")
	exec("CREATE TABLE " + dst + ".repeats (id bigint, old_version bigint, new_version bigint)")
	exec(`CREATE FUNCTION ` + dst + `.check_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.version <= OLD.version THEN
    INSERT INTO ` + dst + `.repeats VALUES (NEW.id, OLD.version, NEW.version);
  END IF;
  RETURN NEW;
END $$`)
	exec("CREATE TRIGGER check_version BEFORE UPDATE ON " + dst + ".accounts FOR EACH ROW EXECUTE FUNCTION " + dst + ".check_version()")

	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", dst)
	u.RawQuery = q.Encode()
	dir := t.TempDir()
	// No instance id: each child takes the data directory's, which it
	// holds locked, so it takes the leases of the killed one back at once.
	cfg := childConfig{Role: rolePipeline, DataDir: filepath.Join(dir, "data"), Sync: "always", Out: filepath.Join(dir, "out"),
		Pipeline: name, SourceURL: dsn, Tables: []string{src + ".accounts"}, DestURL: u.String()}

	// 8 writers: transfers between two accounts (a two-row transaction),
	// new accounts, and closed ones, until told to stop.
	var stop atomic.Bool
	var writes atomic.Int64
	var wg sync.WaitGroup
	rng := seeded(t)
	var rngMu sync.Mutex
	randN := func(n int64) int64 { rngMu.Lock(); defer rngMu.Unlock(); return rng.Int64N(n) }
	for w := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				a, b := 1+randN(200), 1+randN(200)
				var err error
				switch {
				case i%10 == 9:
					id := int64(10_000 + w*100_000 + i)
					_, err = pool.Exec(ctx, "INSERT INTO "+src+".accounts VALUES ($1, 1, 5)", id)
				case i%10 == 8:
					_, err = pool.Exec(ctx, "DELETE FROM "+src+".accounts WHERE id = $1", int64(10_000+w*100_000+i-9))
				default:
					err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, "UPDATE "+src+".accounts SET balance = balance - 1, version = version + 1 WHERE id = $1", min(a, b)); err != nil {
							return err
						}
						_, err := tx.Exec(ctx, "UPDATE "+src+".accounts SET balance = balance + 1, version = version + 1 WHERE id = $1", max(a, b))
						return err
					})
				}
				if err != nil && !strings.Contains(err.Error(), "deadlock") {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				writes.Add(1)
				time.Sleep(2 * time.Millisecond) // the load's pace, not a synchronisation
			}
		})
	}
	defer func() { stop.Store(true); wg.Wait() }()

	applied := func() int64 {
		var n int64
		err := pool.QueryRow(ctx, "SELECT coalesce(max(seq), 0) FROM "+dst+".sluice_pipeline_positions").Scan(&n)
		if err != nil {
			return 0 // the table is made by the first change set
		}
		return n
	}
	const kills = 4
	var children []*child
	for k := range kills {
		c := startChild(t, dir, fmt.Sprintf("pipeline-%d", k), cfg)
		children = append(children, c)
		before := applied()
		waitFor(t, 2*time.Minute, 10*time.Millisecond, func() bool { c.requireAlive(t); return applied() > before+3 },
			func() string { return fmt.Sprintf("child %d applied nothing: at change set %d", k, applied()) })
		time.Sleep(time.Duration(randN(int64(300 * time.Millisecond)))) // where the kill lands, not a synchronisation
		c.kill(t)
		t.Logf("killed child %d at change set %d, %d writes", k, applied(), writes.Load())
	}
	stop.Store(true)
	wg.Wait()
	last := startChild(t, dir, "pipeline-last", cfg)
	children = append(children, last)
	rows := func(table string) string {
		var s string
		if err := pool.QueryRow(ctx, "SELECT coalesce(string_agg(id || ':' || version || ':' || balance, ',' ORDER BY id), '') FROM "+table).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	want := rows(src + ".accounts")
	waitFor(t, 3*time.Minute, 50*time.Millisecond, func() bool { last.requireAlive(t); return rows(dst+".accounts") == want },
		func() string {
			return fmt.Sprintf("the destination is not equal to the source (at change set %d)", applied())
		})
	last.terminate(t, 30*time.Second)
	checkChildLogs(t, children)
	var repeats int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+dst+".repeats").Scan(&repeats); err != nil {
		t.Fatal(err)
	}
	if repeats > 0 {
		t.Errorf("%d writes to the destination did not raise a row's version: a change applied twice", repeats)
	}
	t.Logf("%d writes, %d kills: destination equal to the source at change set %d, no change applied twice", writes.Load(), kills, applied())
}
