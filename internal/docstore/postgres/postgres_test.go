package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/docstoretest"
	"github.com/sluicehq/sluice/internal/docstore/postgres"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var bg = context.Background()

// dsnOrSkip is the test database, from SLUICE_TEST_POSTGRES.
func dsnOrSkip(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("SLUICE_TEST_POSTGRES is not set: set it to a PostgreSQL URL (like postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	return dsn
}

// freshSchema names a schema of its own for the test and drops it at the
// end.
func freshSchema(t *testing.T, dsn string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "sluice_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		conn, err := pgx.Connect(bg, dsn)
		require.NoError(t, err)
		defer conn.Close(bg)
		_, err = conn.Exec(bg, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		require.NoError(t, err)
	})
	return schema
}

func open(t *testing.T, dsn, schema string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(bg, dsn, postgres.Options{Schema: schema})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	dsn := dsnOrSkip(t)
	docstoretest.Run(t, func(t *testing.T) docstore.Store {
		return open(t, dsn, freshSchema(t, dsn))
	})
}

func TestOptionsAreValidated(t *testing.T) {
	t.Parallel()
	for _, bad := range []postgres.Options{
		{Schema: "Sluice"},
		{Schema: "pg_docs"},
		{Schema: "1docs"},
		{Schema: `docs"; drop table x; --`},
		{MaxDocumentBytes: -1},
		{TombstoneRetention: -time.Second},
	} {
		_, err := postgres.Open(bg, "postgres://127.0.0.1:1/none", bad)
		require.Error(t, err, "%+v", bad)
		require.NotContains(t, err.Error(), "connect", "validated before connecting: %+v", bad)
	}
}

// TestPsqlCanQueryDocuments: the tables are meant to be read by people.
func TestPsqlCanQueryDocuments(t *testing.T) {
	t.Parallel()
	dsn := dsnOrSkip(t)
	schema := freshSchema(t, dsn)
	s := open(t, dsn, schema)
	_, err := s.CreateContainer(bg, docstore.Container{Name: "devices", PartitionKeyPath: "/deviceId"})
	require.NoError(t, err)
	_, err = s.Upsert(bg, "devices", []byte(`{"id":"a","deviceId":"d1","battery":80}`))
	require.NoError(t, err)

	conn, err := pgx.Connect(bg, dsn)
	require.NoError(t, err)
	defer conn.Close(bg)
	var battery string
	require.NoError(t, conn.QueryRow(bg, "select body->>'battery' from "+schema+".documents where container = 'devices'").Scan(&battery))
	require.Equal(t, "80", battery)

	// What JSON allows and PostgreSQL cannot store is bad input, not a
	// server error.
	_, err = s.Upsert(bg, "devices", []byte(`{"id":"b","deviceId":"d1","name":"a\u0000b"}`))
	require.ErrorIs(t, err, docstore.ErrInvalid)
	require.ErrorContains(t, err, "PostgreSQL cannot store it")
	_, err = s.Upsert(bg, "devices", []byte(`{"id":"b\u0000","deviceId":"d1"}`))
	require.ErrorIs(t, err, docstore.ErrInvalid)
}

// TestOtherInstances: two stores on one schema are two instances of
// sluice. Writes of one wake the other's readers through LISTEN/NOTIFY,
// and container changes made by one are seen by the other.
func TestOtherInstances(t *testing.T) {
	t.Parallel()
	dsn := dsnOrSkip(t)
	schema := freshSchema(t, dsn)
	a, b := open(t, dsn, schema), open(t, dsn, schema)
	for _, name := range []string{"c", "d"} {
		_, err := a.CreateContainer(bg, docstore.Container{Name: name, PartitionKeyPath: "/deviceId"})
		require.NoError(t, err)
	}

	// A write in another schema of the same database does not wake b:
	// notifications arrive in commit order, so once a later write to
	// "d" woke b, the other schema's write to "c" was seen and ignored.
	other := open(t, dsn, freshSchema(t, dsn))
	_, err := other.CreateContainer(bg, docstore.Container{Name: "c", PartitionKeyPath: "/deviceId"})
	require.NoError(t, err)
	chC, chD := b.Changed("c"), b.Changed("d")
	_, err = other.Upsert(bg, "c", []byte(`{"id":"x","deviceId":"d"}`))
	require.NoError(t, err)
	_, err = a.Upsert(bg, "d", []byte(`{"id":"x","deviceId":"d"}`))
	require.NoError(t, err)
	select {
	case <-chD:
	case <-time.After(20 * time.Second):
		t.Fatal("a write by another store did not wake the reader")
	}
	select {
	case <-chC:
		t.Fatal("a write in another schema woke the reader")
	default:
	}

	for i := range 3 {
		ch := b.Changed("c")
		d, err := a.Upsert(bg, "c", fmt.Appendf(nil, `{"id":"%d","deviceId":"d"}`, i))
		require.NoError(t, err)
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatal("a write by another store did not wake the reader")
		}
		got, err := b.Feed(bg, "c", docstore.FeedStart{AfterLSN: d.LSN - 1}, 10)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, d.LSN, got[0].LSN)
	}

	// b has the container cached; a deletes it and creates it again
	// with another partition key path.
	_, err = b.Upsert(bg, "c", []byte(`{"id":"y","deviceId":"d"}`))
	require.NoError(t, err)
	ch := b.Changed("c")
	require.NoError(t, a.DeleteContainer(bg, "c"))
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal("deleting the container did not wake the reader")
	}
	_, err = b.Feed(bg, "c", docstore.FeedStart{}, 10)
	require.ErrorIs(t, err, docstore.ErrNotFound)
	_, err = b.Upsert(bg, "c", []byte(`{"id":"y","deviceId":"d"}`))
	require.ErrorIs(t, err, docstore.ErrNotFound)

	_, err = a.CreateContainer(bg, docstore.Container{Name: "c", PartitionKeyPath: "/deviceId"})
	require.NoError(t, err)
	_, err = b.Upsert(bg, "c", []byte(`{"id":"y","deviceId":"d"}`))
	require.NoError(t, err)
	require.NoError(t, a.DeleteContainer(bg, "c"))
	_, err = a.CreateContainer(bg, docstore.Container{Name: "c", PartitionKeyPath: "/site"})
	require.NoError(t, err)
	d, err := b.Upsert(bg, "c", []byte(`{"id":"y","deviceId":"d","site":"s1"}`))
	require.NoError(t, err)
	require.Equal(t, "s1", d.PartitionKey, "b uses the new partition key path")
}

// TestListenerReconnects: when the listening connection dies, the store
// connects again and wakes every reader, since it may have missed
// notifications; later writes wake readers again.
func TestListenerReconnects(t *testing.T) {
	t.Parallel()
	dsn := dsnOrSkip(t)
	schema := freshSchema(t, dsn)
	s := open(t, dsn, schema)
	_, err := s.CreateContainer(bg, docstore.Container{Name: "c", PartitionKeyPath: "/deviceId"})
	require.NoError(t, err)

	conn, err := pgx.Connect(bg, dsn)
	require.NoError(t, err)
	defer conn.Close(bg)
	ch := s.Changed("c")
	var killed int
	require.NoError(t, conn.QueryRow(bg, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE $1`,
		"% docs listener "+schema).Scan(&killed))
	require.Equal(t, 1, killed, "the store's listening connection")
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal("readers were not woken after the listener reconnected")
	}
	ch = s.Changed("c")
	_, err = s.Upsert(bg, "c", []byte(`{"id":"a","deviceId":"d"}`))
	require.NoError(t, err)
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal("a write after the reconnection did not wake the reader")
	}
}

// TestConcurrentWritersFeedSeesEveryChangeOnce runs 16 writers against
// one container while a reader of another store follows the feed. If
// LSNs could become visible out of order, the reader would pass over a
// change that commits later with a lower LSN, and its view would miss
// that change for good. SLUICE_TEST_FEED_WRITES sets the writes per
// writer (default 10,000).
func TestConcurrentWritersFeedSeesEveryChangeOnce(t *testing.T) {
	dsn := dsnOrSkip(t)
	perWriter := 10_000
	if v := os.Getenv("SLUICE_TEST_FEED_WRITES"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "SLUICE_TEST_FEED_WRITES")
		perWriter = n
	}
	const (
		writers       = 16
		partitionKeys = 100
		hotDocs       = 20 // written by every writer
	)
	schema := freshSchema(t, dsn)
	ws, rs := open(t, dsn, schema), open(t, dsn, schema)
	_, err := ws.CreateContainer(bg, docstore.Container{Name: "c", PartitionKeyPath: "/pk"})
	require.NoError(t, err)
	// No deadline of its own: how long 160,000 writes take depends on the
	// machine and its load; the test binary's -timeout bounds a hang.
	ctx, cancel := context.WithCancel(bg)
	defer cancel()

	type key struct{ pk, id string }
	type change struct {
		W   int `json:"w"`
		Seq int `json:"seq"`
	}

	// The reader.
	var (
		target              atomic.Int64 // the last LSN written, once the writers are done
		readerLast          = map[key]int64{}
		seen                int
		reads, woken, polls int
		readerErrs          []string
	)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		fail := func(format string, args ...any) {
			if len(readerErrs) < 20 {
				readerErrs = append(readerErrs, fmt.Sprintf(format, args...))
			}
		}
		lastSeq := map[[2]string]int{} // per partition key and writer
		var after int64
		for {
			ch := rs.Changed("c")
			docs, err := rs.Feed(ctx, "c", docstore.FeedStart{AfterLSN: after}, 500)
			if err != nil {
				fail("feed: %v", err)
				return
			}
			reads++
			for _, d := range docs {
				if d.LSN <= after {
					fail("LSN %d after %d: the feed went back or repeated", d.LSN, after)
				}
				after = d.LSN
				seen++
				var c change
				if err := json.Unmarshal(d.Body, &c); err != nil {
					fail("change %d: %v", d.LSN, err)
					continue
				}
				pw := [2]string{d.PartitionKey, strconv.Itoa(c.W)}
				if c.Seq <= lastSeq[pw] {
					fail("partition %s: writer %d's write %d came after its write %d", d.PartitionKey, c.W, c.Seq, lastSeq[pw])
				}
				lastSeq[pw] = c.Seq
				readerLast[key{d.PartitionKey, d.ID}] = d.LSN
			}
			if len(docs) > 0 {
				continue
			}
			if t := target.Load(); t > 0 && after >= t {
				return
			}
			select {
			case <-ch:
				woken++
			case <-time.After(50 * time.Millisecond):
				polls++
			case <-ctx.Done():
				fail("gave up at LSN %d: %v", after, ctx.Err())
				return
			}
		}
	}()

	// The writers: single upserts and small bulk upserts, of new
	// documents, of their own earlier ones, and of documents every writer
	// writes.
	start := time.Now()
	var wg sync.WaitGroup
	finals := make([]map[key]int64, writers) // per writer: the LSN of each document's last write
	txs := make([]int, writers)
	writeErrs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(w), 42))
			final := map[key]int64{}
			finals[w] = final
			var own []key
			seq := 0
			for seq < perWriter {
				n := 1
				if rng.IntN(4) > 0 {
					n = min(2+rng.IntN(11), perWriter-seq)
				}
				keys := make([]key, n)
				docs := make([][]byte, n)
				for i := range n {
					switch r := rng.IntN(10); {
					case r == 0:
						h := rng.IntN(hotDocs)
						keys[i] = key{fmt.Sprintf("p%02d", h*partitionKeys/hotDocs), fmt.Sprintf("hot-%d", h)}
					case r < 5 || len(own) == 0:
						keys[i] = key{fmt.Sprintf("p%02d", rng.IntN(partitionKeys)), fmt.Sprintf("w%d-%d", w, seq)}
						own = append(own, keys[i])
					default:
						keys[i] = own[rng.IntN(len(own))]
					}
					seq++
					docs[i] = fmt.Appendf(nil, `{"id":%q,"pk":%q,"w":%d,"seq":%d}`, keys[i].id, keys[i].pk, w, seq)
				}
				var out []docstore.Document
				var err error
				if n == 1 && rng.IntN(2) == 0 {
					var d docstore.Document
					d, err = ws.Upsert(ctx, "c", docs[0])
					out = []docstore.Document{d}
				} else {
					out, err = ws.BulkUpsert(ctx, "c", docs)
				}
				if err != nil {
					writeErrs[w] = err
					return
				}
				txs[w]++
				for i, d := range out {
					final[keys[i]] = max(final[keys[i]], d.LSN)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range writeErrs {
		require.NoError(t, err)
	}
	want := map[key]int64{}
	var last int64
	for _, final := range finals {
		for k, lsn := range final {
			want[k] = max(want[k], lsn)
			last = max(last, lsn)
		}
	}
	target.Store(last)
	<-readerDone
	require.Empty(t, readerErrs)

	// The stored documents: every write's final state.
	stored := map[key]int64{}
	for after := int64(0); ; {
		docs, err := ws.Feed(bg, "c", docstore.FeedStart{AfterLSN: after}, 5000)
		require.NoError(t, err)
		if len(docs) == 0 {
			break
		}
		for _, d := range docs {
			stored[key{d.PartitionKey, d.ID}] = d.LSN
		}
		after = docs[len(docs)-1].LSN
	}
	require.Equal(t, len(want), len(stored), "documents written and stored")
	missed := 0
	for k, lsn := range want {
		require.Equal(t, lsn, stored[k], "%v: its last write and its stored version", k)
		if readerLast[k] != lsn {
			if missed < 10 {
				t.Errorf("%v: the reader's last change has LSN %d, the document's final version %d", k, readerLast[k], lsn)
			}
			missed++
		}
	}
	require.Zero(t, missed, "documents whose final version the reader missed")
	require.Len(t, readerLast, len(want))

	totalTx := 0
	for _, n := range txs {
		totalTx += n
	}
	writes := writers * perWriter
	t.Logf("%d writers: %d writes of %d documents in %d transactions in %s (%.0f writes/s, %.0f tx/s); last LSN %d",
		writers, writes, len(want), totalTx, elapsed.Round(time.Millisecond), float64(writes)/elapsed.Seconds(), float64(totalTx)/elapsed.Seconds(), last)
	t.Logf("reader: %d changes in %d reads; woken %d times by NOTIFY, %d by its poll", seen, reads, woken, polls)
	require.Positive(t, woken, "the reader's store was woken by another store's writes")
}
