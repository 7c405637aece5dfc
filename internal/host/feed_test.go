package host_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/sqlite"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/lease"
	"github.com/sluicehq/sluice/internal/resilience"
)

var bg = context.Background()

// fenv is a document store with a container "c" (partition key /deviceId),
// on an embedded engine that holds leases and feed checkpoints.
type fenv struct {
	eng   *engine.Engine
	docs  docstore.Store
	sink  *memSink
	feeds jetstream.KeyValue
	kv    jetstream.KeyValue
}

func setupFeed(t *testing.T) *fenv {
	t.Helper()
	eng := enginetest.Embedded(t)
	docs, err := sqlite.Open(filepath.Join(t.TempDir(), "docs.db"), sqlite.Options{SyncNormal: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = docs.Close() })
	_, err = docs.CreateContainer(bg, docstore.Container{Name: "c", PartitionKeyPath: "/deviceId"})
	require.NoError(t, err)
	feeds, err := eng.JS.CreateOrUpdateKeyValue(bg, jetstream.KeyValueConfig{Bucket: "feeds", History: 1})
	require.NoError(t, err)
	kv, err := eng.JS.CreateOrUpdateKeyValue(bg, jetstream.KeyValueConfig{Bucket: "leases", History: 1})
	require.NoError(t, err)
	return &fenv{eng: eng, docs: docs, sink: &memSink{}, feeds: feeds, kv: kv}
}

// newHost starts a host (instance id) with the feed functions.
func (e *fenv) newHost(t *testing.T, id string, fns ...host.FeedFunction) *host.Host {
	t.Helper()
	lm := newLeases(t, e.kv, id)
	h, err := host.New(host.Config{InstanceID: id, Leases: lm, Docs: e.docs, FeedState: e.feeds, DeadLetters: e.sink, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	for _, f := range fns {
		require.NoError(t, h.RegisterFeed(f))
	}
	require.NoError(t, h.Start(bg))
	t.Cleanup(func() { h.Stop(bg) })
	return h
}

// write creates (or, for an existing id, updates) documents device-k/i.
func (e *fenv) write(t *testing.T, docs ...string) []docstore.Document {
	t.Helper()
	var raw [][]byte
	for _, d := range docs {
		raw = append(raw, []byte(d))
	}
	out, err := e.docs.BulkUpsert(bg, "c", raw)
	require.NoError(t, err)
	return out
}

func devDoc(dev, i int) string {
	return fmt.Sprintf(`{"id":"d%d-%d","deviceId":"dev-%d","i":%d}`, dev, i, dev, i)
}

// changes records the changes a feed function is given.
type changes struct {
	mu      sync.Mutex
	all     []docstore.Document
	batches []int
}

func (c *changes) handle(_ context.Context, ch []docstore.Document) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, ch...)
	c.batches = append(c.batches, len(ch))
	return nil
}

func (c *changes) snapshot() []docstore.Document {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]docstore.Document(nil), c.all...)
}

func (c *changes) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.all)
}

// latest is each document's last change in the store's feed.
func (e *fenv) latest(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	var after int64
	for {
		page, err := e.docs.Feed(bg, "c", docstore.FeedStart{AfterLSN: after}, 1000)
		require.NoError(t, err)
		if len(page) == 0 {
			return out
		}
		for _, d := range page {
			out[d.PartitionKey+"/"+d.ID] = d.LSN
		}
		after = page[len(page)-1].LSN
	}
}

// requireComplete checks that the recorded changes hold every document's
// last change, and that each partition key's changes came in LSN order.
func requireComplete(t *testing.T, e *fenv, got []docstore.Document) {
	t.Helper()
	want := e.latest(t)
	seen := map[string]int64{}
	last := map[string]int64{}
	for _, d := range got {
		require.Greater(t, d.LSN, last[d.PartitionKey], "partition key %s: change %d after %d", d.PartitionKey, d.LSN, last[d.PartitionKey])
		last[d.PartitionKey] = d.LSN
		seen[d.PartitionKey+"/"+d.ID] = d.LSN
	}
	require.Equal(t, want, seen)
}

func TestFeedFunctionProcessesEveryChangeInOrderAndCheckpoints(t *testing.T) {
	t.Parallel()
	e := setupFeed(t)
	var before []string
	for i := range 300 {
		before = append(before, devDoc(i%30, i))
	}
	e.write(t, before...)

	rec := &changes{}
	fn := host.FeedFunction{Name: "follow", Handler: rec.handle,
		Trigger: host.FeedTrigger{Container: "c", From: host.FeedFromBeginning, MaxItems: 7, Ranges: 4}}
	h := e.newHost(t, "one", fn)
	// Writes while it runs: new documents, updates and deletes.
	for i := range 100 {
		e.write(t, devDoc(i%30, 300+i), devDoc(i%30, i))
		if i%10 == 0 {
			j := 100 + i
			require.NoError(t, e.docs.Delete(bg, "c", fmt.Sprintf("dev-%d", j%30), fmt.Sprintf("d%d-%d", j%30, j), ""))
		}
	}
	want := len(e.latest(t))
	eventually(t, "every change processed", func() bool { return len(uniqueDocs(rec.snapshot())) == want })
	requireComplete(t, e, rec.snapshot())
	rec.mu.Lock()
	for _, n := range rec.batches {
		require.LessOrEqual(t, n, 7, "maxItemsPerInvocation")
	}
	rec.mu.Unlock()
	deleted := 0
	for _, d := range rec.snapshot() {
		if d.Deleted {
			deleted++
			require.Empty(t, d.Body)
		}
	}
	require.Equal(t, 10, deleted, "deletes come as tombstones")
	h.Stop(bg)

	// The checkpoints cover everything: a new host starts after it.
	rec2 := &changes{}
	fn.Handler = rec2.handle
	e.newHost(t, "two", fn)
	// A new change on every device, so in every range: each range takes
	// its changes in order, so once these are processed, anything a range
	// would process twice would have come before.
	var news []string
	for dev := range 30 {
		news = append(news, devDoc(dev, 1000+dev))
	}
	e.write(t, news...)
	eventually(t, "the new changes", func() bool { return rec2.count() >= len(news) })
	ids := map[string]bool{}
	for _, d := range rec2.snapshot() {
		ids[d.ID] = true
	}
	require.Len(t, ids, len(news))
	require.Len(t, rec2.snapshot(), len(news), "nothing is processed twice after a graceful stop")
	for dev := range 30 {
		require.True(t, ids[fmt.Sprintf("d%d-%d", dev, 1000+dev)])
	}
}

// rangesStarted reports whether each of the n ranges of container c for
// lease prefix has a checkpoint.
func (e *fenv) rangesStarted(t *testing.T, prefix string, n int) bool {
	t.Helper()
	for r := range n {
		_, err := e.feeds.Get(bg, fmt.Sprintf("c.%s.%d", prefix, r))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false
		}
		require.NoError(t, err)
	}
	return true
}

func uniqueDocs(ds []docstore.Document) map[string]bool {
	out := map[string]bool{}
	for _, d := range ds {
		out[d.PartitionKey+"/"+d.ID] = true
	}
	return out
}

func TestFeedStartsFromNowOrFromATime(t *testing.T) {
	t.Parallel()
	e := setupFeed(t)
	first := e.write(t, devDoc(1, 1), devDoc(2, 2))
	// Just after the first writes, and before the next ones (written later,
	// they are stamped later).
	mark := first[len(first)-1].TS.Add(time.Nanosecond)
	later := e.write(t, devDoc(3, 3), devDoc(4, 4))
	require.False(t, later[0].TS.Before(mark))

	now, since, all := &changes{}, &changes{}, &changes{}
	e.newHost(t, "one",
		host.FeedFunction{Name: "now", Handler: now.handle, Trigger: host.FeedTrigger{Container: "c"}},
		host.FeedFunction{Name: "since", Handler: since.handle, Trigger: host.FeedTrigger{Container: "c", From: host.FeedFromTime, FromTime: mark}},
		host.FeedFunction{Name: "all", Handler: all.handle, Trigger: host.FeedTrigger{Container: "c", From: host.FeedFromBeginning}},
	)
	eventually(t, "from the beginning", func() bool { return all.count() == 4 })
	eventually(t, "from the time", func() bool { return since.count() == 2 })
	// "now" starts each range where the feed is when it first takes the
	// range, and stores that as the range's checkpoint: the next change
	// must come after that, or it is not "after the start".
	eventually(t, `"now" has started its ranges`, func() bool { return e.rangesStarted(t, "now", 4) })
	e.write(t, devDoc(5, 5))
	eventually(t, "the change after the start", func() bool { return now.count() == 1 && all.count() == 5 && since.count() == 3 })
	require.Equal(t, "d5-5", now.snapshot()[0].ID, "from now skips what was there before")
}

func TestFeedRetriesThenDeadLettersWithTheChangesPosition(t *testing.T) {
	t.Parallel()
	e := setupFeed(t)
	rec := &changes{}
	var mu sync.Mutex
	attempts := 0
	fn := host.FeedFunction{Name: "picky",
		Trigger: host.FeedTrigger{Container: "c", From: host.FeedFromBeginning, MaxItems: 1, Ranges: 1},
		Retry:   resilience.Retry{Strategy: resilience.FixedDelay, MaxRetryCount: 2, Delay: 10 * time.Millisecond},
		Handler: func(ctx context.Context, ch []docstore.Document) error {
			if ch[0].ID == "bad" {
				mu.Lock()
				attempts++
				mu.Unlock()
				return errors.New("downstream refused it")
			}
			if ch[0].ID == "poison" {
				return &host.DeadLetterError{Reasons: map[int64]error{ch[0].LSN: errors.New("cannot parse")}}
			}
			return rec.handle(ctx, ch)
		}}
	docs := e.write(t, devDoc(1, 1), `{"id":"bad","deviceId":"dev-9","x":1}`, `{"id":"poison","deviceId":"dev-8"}`, devDoc(1, 2))
	e.newHost(t, "one", fn)
	eventually(t, "the good changes", func() bool { return rec.count() == 2 })
	eventually(t, "two dead letters", func() bool { return len(e.sink.all()) == 2 })
	letters := e.sink.all()
	require.Equal(t, 3, attempts, "the first try and two retries")
	bad, poison := letters[0], letters[1]
	require.Equal(t, host.Source{Kind: "container", Container: "c", DocumentID: "bad", PartitionKey: "dev-9", LSN: docs[1].LSN, EnqueuedTime: docs[1].TS}, bad.Source)
	require.Equal(t, "downstream refused it", bad.Reason)
	require.Equal(t, 3, bad.Attempts)
	require.JSONEq(t, string(docs[1].Body), string(bad.Body))
	require.Equal(t, "poison", poison.Source.DocumentID)
	require.Equal(t, docs[2].LSN, poison.Source.LSN)
	require.Equal(t, "cannot parse", poison.Reason)
	require.Equal(t, []string{"d1-1", "d1-2"}, []string{rec.snapshot()[0].ID, rec.snapshot()[1].ID}, "later changes waited for the retries, in order")
}

// Two hosts share the ranges; when one stops, the other takes them all
// over and nothing is missed. (The crash test kills one with SIGKILL.)
func TestFeedRangesAreSharedAndTakenOver(t *testing.T) {
	t.Parallel()
	e := setupFeed(t)
	recA, recB := &changes{}, &changes{}
	fn := func(rec *changes) host.FeedFunction {
		return host.FeedFunction{Name: "shared", Handler: rec.handle,
			Trigger: host.FeedTrigger{Container: "c", From: host.FeedFromBeginning, Ranges: 4, MaxItems: 10}}
	}
	a := e.newHost(t, "a", fn(recA))
	e.newHost(t, "b", fn(recB))
	write := func(from, to int) {
		for i := from; i < to; i++ {
			e.write(t, devDoc(i%40, i))
		}
	}
	write(0, 200)
	eventually(t, "both hosts working", func() bool {
		return len(uniqueDocs(append(recA.snapshot(), recB.snapshot()...))) == 200 && recA.count() > 0 && recB.count() > 0
	})
	// Ranges moved from a to b as b joined; graceful hand-overs repeat
	// nothing.
	requireOnce(t, append(recA.snapshot(), recB.snapshot()...))
	a.Stop(bg)
	write(200, 400)
	eventually(t, "b took a's ranges over", func() bool { return len(uniqueDocs(append(recA.snapshot(), recB.snapshot()...))) == 400 })
	all := append(recA.snapshot(), recB.snapshot()...)
	requireOnce(t, all)
	require.Len(t, all, 400)
}

func requireOnce(t *testing.T, ds []docstore.Document) {
	t.Helper()
	seen := map[int64]bool{}
	for _, d := range ds {
		require.False(t, seen[d.LSN], "change %d (%s) processed twice", d.LSN, d.ID)
		seen[d.LSN] = true
	}
}

func TestFeedLayoutAndRecreatedContainer(t *testing.T) {
	t.Parallel()
	e := setupFeed(t)
	rec := &changes{}
	fn := host.FeedFunction{Name: "f", Handler: rec.handle, Trigger: host.FeedTrigger{Container: "c", From: host.FeedFromBeginning, Ranges: 2}}
	e.write(t, devDoc(1, 1), devDoc(2, 2), devDoc(3, 3))
	h := e.newHost(t, "one", fn)
	eventually(t, "three changes", func() bool { return rec.count() == 3 })
	h.Stop(bg)

	// The number of ranges is fixed for a prefix.
	lm, err := lease.New(e.kv, lease.Config{InstanceID: "x"})
	require.NoError(t, err)
	h2, err := host.New(host.Config{InstanceID: "x", Leases: lm, Docs: e.docs, FeedState: e.feeds, DeadLetters: e.sink})
	require.NoError(t, err)
	more := fn
	more.Trigger.Ranges = 8
	require.NoError(t, h2.RegisterFeed(more))
	require.ErrorContains(t, h2.Start(bg), "split into 2 ranges")
	h2.Stop(bg)

	// A container deleted and created again starts over: its LSNs start
	// again too, so the old checkpoint must not hide its changes.
	require.NoError(t, e.docs.DeleteContainer(bg, "c"))
	_, err = e.docs.CreateContainer(bg, docstore.Container{Name: "c", PartitionKeyPath: "/deviceId"})
	require.NoError(t, err)
	e.write(t, devDoc(7, 1))
	rec2 := &changes{}
	fn.Handler = rec2.handle
	e.newHost(t, "two", fn)
	eventually(t, "the new container's change", func() bool { return rec2.count() == 1 })
	require.Equal(t, "d7-1", rec2.snapshot()[0].ID)
}

func TestRegisterFeedRejectsBadFunctions(t *testing.T) {
	t.Parallel()
	e := setupFeed(t)
	lm, err := lease.New(e.kv, lease.Config{InstanceID: "r"})
	require.NoError(t, err)
	h, err := host.New(host.Config{InstanceID: "r", Leases: lm, Docs: e.docs, FeedState: e.feeds, DeadLetters: e.sink})
	require.NoError(t, err)
	ok := func(context.Context, []docstore.Document) error { return nil }
	require.NoError(t, h.RegisterFeed(host.FeedFunction{Name: "a", Trigger: host.FeedTrigger{Container: "c"}, Handler: ok}))
	for msg, f := range map[string]host.FeedFunction{
		"needs a name":            {Trigger: host.FeedTrigger{Container: "c"}, Handler: ok},
		"has no handler":          {Name: "b", Trigger: host.FeedTrigger{Container: "c"}},
		"container name":          {Name: "b", Trigger: host.FeedTrigger{Container: "no such/name"}, Handler: ok},
		"lease prefix":            {Name: "b c", Trigger: host.FeedTrigger{Container: "c"}, Handler: ok},
		"maxItemsPerInvocation":   {Name: "b", Trigger: host.FeedTrigger{Container: "c", MaxItems: -1}, Handler: ok},
		"ranges":                  {Name: "b", Trigger: host.FeedTrigger{Container: "c", Ranges: 1000}, Handler: ok},
		"needs the time":          {Name: "b", Trigger: host.FeedTrigger{Container: "c", From: host.FeedFromTime}, Handler: ok},
		"two functions are named": {Name: "a", Trigger: host.FeedTrigger{Container: "c", LeasePrefix: "other"}, Handler: ok},
		"its own prefix":          {Name: "b", Trigger: host.FeedTrigger{Container: "c", LeasePrefix: "a"}, Handler: ok},
		"unknown strategy":        {Name: "b", Trigger: host.FeedTrigger{Container: "c"}, Handler: ok, Retry: resilience.Retry{Strategy: "linear"}},
	} {
		require.ErrorContains(t, h.RegisterFeed(f), msg)
	}
	require.NoError(t, h.RegisterFeed(host.FeedFunction{Name: "late", Trigger: host.FeedTrigger{Container: "missing"}, Handler: ok}))
	require.ErrorIs(t, h.Start(bg), docstore.ErrNotFound, "a function on a missing container fails Start")
	h.Stop(bg)
}
