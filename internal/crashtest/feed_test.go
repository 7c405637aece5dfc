package crashtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/postgres"
	"github.com/sluicehq/sluice/internal/docstore/sqlite"
)

// TestFeedCrashAndTakeover runs two instances of a change-feed function on
// one container while documents are written, kills each of them with
// SIGKILL in turn while it works, restarts it, and proves that the survivor
// took the dead one's ranges over, that every change (the last version of
// every document, deletes as tombstones) was processed, and that each
// partition key's changes came in order within each ownership of its
// range. It runs on SQLite (the instances share the file) and, when
// SLUICE_TEST_POSTGRES is set, on PostgreSQL.
func TestFeedCrashAndTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("the feed crash test takes about 20s per store; it runs without -short")
	}
	t.Run("sqlite", func(t *testing.T) { testFeedCrash(t, "") })
	if dsn := os.Getenv("SLUICE_TEST_POSTGRES"); dsn != "" {
		t.Run("postgres", func(t *testing.T) { testFeedCrash(t, dsn) })
	}
}

func testFeedCrash(t *testing.T, dsn string) {
	const (
		ranges   = 4
		keys     = 120
		perKey   = 80
		batch    = 20
		expiry   = 2 * time.Second
		maxItems = 20
	)
	rng := seeded(t)
	dir := t.TempDir()
	shared := filepath.Join(dir, "shared")
	ctx := background(t, 5*time.Minute)
	container := fmt.Sprintf("crash%d", time.Now().UnixNano())

	// The server names the children's document store: instances sharing
	// a NATS server must share one (Sluice refuses another SQLite file).
	server := sluice.New(sluice.Config{
		DataDir: shared, DocStore: dsn, NATSListen: "127.0.0.1:0", InstanceID: "server", Logger: testLogger(t),
	})
	if err := server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Stop(context.Background()) })

	// The writer uses the store directly, as another process would.
	var store docstore.Store
	var err error
	if dsn == "" {
		if err = os.MkdirAll(shared, 0o755); err == nil {
			store, err = sqlite.Open(filepath.Join(shared, "docs.db"), sqlite.Options{})
		}
	} else {
		store, err = postgres.Open(ctx, dsn, postgres.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if _, err := store.CreateContainer(ctx, docstore.Container{Name: container, PartitionKeyPath: "/deviceId"}); err != nil {
		t.Fatal(err)
	}
	if dsn != "" {
		t.Cleanup(func() { _ = store.DeleteContainer(context.Background(), container) })
	}

	// Write perKey documents per key, a batch at a time, and delete every
	// tenth one a little later; pace it so that it spans the kills.
	var writeErr error
	var wg sync.WaitGroup
	var written atomic.Bool // the writer is done
	wg.Go(func() {
		defer written.Store(true)
		tick := time.NewTicker(4 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for i := 0; i < keys*perKey; i += batch {
			<-tick.C
			var docs [][]byte
			for j := i; j < i+batch; j++ {
				docs = append(docs, fmt.Appendf(nil, `{"id":"doc-%d","deviceId":"dev-%d","n":%d}`, j, j%keys, j))
			}
			if _, err := store.BulkUpsert(ctx, container, docs); err != nil {
				writeErr = err
				return
			}
			if i >= 10*batch {
				for j := i - 10*batch; j < i-9*batch; j += 10 {
					if err := store.Delete(ctx, container, fmt.Sprintf("dev-%d", j%keys), fmt.Sprintf("doc-%d", j), ""); err != nil {
						writeErr = err
						return
					}
					n++
				}
			}
		}
		t.Logf("writer: %d documents, %d deleted", keys*perKey, n)
	})

	base := childConfig{
		Role: roleFeedConsumer, DataDir: shared, NATSURL: server.NATSURL(), DocStore: dsn, Container: container,
		Ranges: ranges, MaxBatchSize: maxItems, BatchDelay: 15 * time.Millisecond, LeaseExpiry: expiry,
		PollInterval: 50 * time.Millisecond,
	}
	var outs []string
	start := func(name, instance string) *child {
		cfg := base
		cfg.InstanceID = instance
		cfg.Out = filepath.Join(dir, name+".changes")
		outs = append(outs, cfg.Out)
		return startChild(t, dir, name, cfg)
	}
	// owned returns the ranges a child's file says it acquired.
	owned := func(c *child) map[int]bool {
		out := map[int]bool{}
		for _, l := range readLines(t, c.cfg.Out) {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "A" {
				r, _ := strconv.Atoi(f[1])
				out[r] = true
			}
		}
		return out
	}
	processed := func(c *child) int {
		n := 0
		for _, l := range readLines(t, c.cfg.Out) {
			if strings.HasPrefix(l, "C ") {
				n++
			}
		}
		return n
	}
	describe := func(cs ...*child) func() string {
		return func() string {
			var b strings.Builder
			for _, c := range cs {
				fmt.Fprintf(&b, "%s owns %v, processed %d\n%s\n", c.name, owned(c), processed(c), c.logTail(10))
			}
			return b.String()
		}
	}

	a := start("a1", "a")
	b := start("b1", "b")
	waitFor(t, 30*time.Second, 20*time.Millisecond, func() bool {
		return len(owned(a)) > 0 && len(owned(b)) > 0 && processed(a) > 100 && processed(b) > 100
	}, describe(a, b))

	// Kill a mid-feed: b takes every range over after the lease expiry.
	time.Sleep(between(rng, 0, 300*time.Millisecond))
	a.kill(t)
	t.Logf("killed a after %d changes", processed(a))
	waitFor(t, 30*time.Second, 20*time.Millisecond, func() bool { return len(owned(b)) == ranges }, describe(b))

	// a comes back and gets ranges again; then b dies mid-feed (or after
	// it, when the writer finished first: a then has nothing to process).
	a = start("a2", "a")
	waitFor(t, 30*time.Second, 20*time.Millisecond, func() bool {
		return len(owned(a)) > 0 && (processed(a) > 50 || written.Load())
	}, describe(a, b))
	time.Sleep(between(rng, 0, 300*time.Millisecond))
	b.kill(t)
	t.Logf("killed b after %d changes", processed(b))
	waitFor(t, 30*time.Second, 20*time.Millisecond, func() bool { return len(owned(a)) == ranges }, describe(a))
	b = start("b2", "b")

	wg.Wait()
	if writeErr != nil {
		t.Fatalf("writer: %v", writeErr)
	}
	// The last change of every document, as the store has it.
	want := map[string]int64{} // "pk/id" -> LSN
	deletes := 0
	for after := int64(0); ; {
		page, err := store.Feed(ctx, container, docstore.FeedStart{AfterLSN: after}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, d := range page {
			want[d.PartitionKey+"/"+d.ID] = d.LSN
			if d.Deleted {
				deletes++
			}
		}
		after = page[len(page)-1].LSN
	}
	if len(want) != keys*perKey {
		t.Fatalf("the store has %d documents, want %d", len(want), keys*perKey)
	}
	missing := func() []string {
		seen := map[string]bool{}
		for _, o := range outs {
			for _, l := range readLines(t, o) {
				if f := strings.Fields(l); len(f) == 5 && f[0] == "C" {
					seen[f[2]+"/"+f[3]+"@"+f[1]] = true
				}
			}
		}
		var out []string
		for doc, lsn := range want {
			if !seen[doc+"@"+strconv.FormatInt(lsn, 10)] {
				out = append(out, fmt.Sprintf("%s@%d", doc, lsn))
			}
		}
		return out
	}
	waitFor(t, 60*time.Second, 100*time.Millisecond, func() bool { return len(missing()) == 0 }, func() string {
		m := missing()
		return fmt.Sprintf("%d changes not processed, like %v\n%s", len(m), m[:min(5, len(m))], describe(a, b)())
	})
	a.terminate(t, 30*time.Second)
	b.terminate(t, 30*time.Second)
	checkChildLogs(t, []*child{a, b})

	// Order: within one ownership of a range (from an A line on), a
	// partition key's changes come in LSN order.
	total, dups := 0, 0
	seen := map[string]bool{}
	for _, o := range outs {
		last := map[string]int64{}
		for _, l := range readLines(t, o) {
			f := strings.Fields(l)
			switch {
			case len(f) == 3 && f[0] == "A":
				r, _ := strconv.Atoi(f[1])
				for pk := range last {
					if (docstore.FeedRange{Count: ranges, Index: r}).Contains(pk) {
						delete(last, pk)
					}
				}
			case len(f) == 5 && f[0] == "C":
				lsn, _ := strconv.ParseInt(f[1], 10, 64)
				pk := f[2]
				if lsn <= last[pk] {
					t.Fatalf("%s: partition key %s got change %d after %d", filepath.Base(o), pk, lsn, last[pk])
				}
				last[pk] = lsn
				total++
				if seen[f[1]] {
					dups++
				}
				seen[f[1]] = true
			}
		}
	}
	t.Logf("%d changes (%d deletes) processed %d times, %d again after the kills", len(want), deletes, total, dups)
	if deletes == 0 {
		t.Fatal("no delete was written: the test proves nothing about tombstones")
	}
}

// readLines returns a file's complete lines (a kill can leave the last one
// cut short).
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if i := strings.LastIndexByte(string(b), '\n'); i >= 0 {
		b = b[:i]
	} else {
		return nil
	}
	return strings.Split(string(b), "\n")
}
