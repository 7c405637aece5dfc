package hub_test

import (
	"context"
	"fmt"
	"github.com/sluicehq/sluice/internal/testlog"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/hub"
)

// readEverything reads every stored event of a hub, partition by partition.
func readEverything(t *testing.T, s *hub.Service, name string) []hub.StoredEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, parts, err := s.Describe(ctx, name)
	require.NoError(t, err)
	var out []hub.StoredEvent
	for _, p := range parts {
		if p.Records == 0 {
			continue
		}
		r, err := s.OpenReader(ctx, name, p.Partition, hub.Start{Kind: hub.StartEarliest})
		require.NoError(t, err)
		for done := false; !done; {
			evs, err := r.Next(ctx)
			require.NoError(t, err)
			out = append(out, evs...)
			done = evs[len(evs)-1].Sequence >= p.LastSequence
		}
		r.Close()
	}
	return out
}

// bodyCounts counts the stored events by body.
func bodyCounts(evs []hub.StoredEvent) map[string]int {
	n := map[string]int{}
	for _, e := range evs {
		n[string(e.Body)]++
	}
	return n
}

func TestMessageIDStoresAnEventOnce(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		s, name := setup(t, eng, hub.Config{Partitions: 3})

		first, err := s.Publish(ctx, name, []hub.Event{
			{Body: []byte("a"), MessageID: "id-a"},
			{Body: []byte("b"), MessageID: "id-b", PartitionKey: "k"},
			{Body: []byte("plain-1")},
		})
		require.NoError(t, err)

		// Published again, with new events beside them.
		again, err := s.Publish(ctx, name, []hub.Event{
			{Body: []byte("plain-2")},
			{Body: []byte("b again"), MessageID: "id-b"},
			{Body: []byte("a again"), MessageID: "id-a", Partition: 2, HasPartition: true},
			{Body: []byte("c"), MessageID: "id-c"},
		})
		require.NoError(t, err)
		require.Equal(t, first[1], again[1], "a duplicate answers with the stored event's position")
		require.Equal(t, first[0], again[2], "wherever the duplicate was bound")
		require.NotEqual(t, first[0], again[3])

		// The same id twice in one call.
		twice, err := s.Publish(ctx, name, []hub.Event{
			{Body: []byte("d"), MessageID: "id-d"},
			{Body: []byte("e"), MessageID: "id-e"},
			{Body: []byte("d again"), MessageID: "id-d"},
		})
		require.NoError(t, err)
		require.Equal(t, twice[0], twice[2])
		require.NotEqual(t, twice[0], twice[1])

		// Ids are per hub.
		other, otherName := setup(t, eng, hub.Config{Partitions: 1})
		_, err = other.Publish(ctx, otherName, []hub.Event{{Body: []byte("a elsewhere"), MessageID: "id-a"}})
		require.NoError(t, err)
		require.Equal(t, map[string]int{"a elsewhere": 1}, bodyCounts(readEverything(t, other, otherName)))

		require.Equal(t, map[string]int{"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "plain-1": 1, "plain-2": 1},
			bodyCounts(readEverything(t, s, name)))
	})
}

func TestMessageIDConcurrentPublishers(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		// The services' warnings: a call that waited for another waiting
		// for it would end in a takeover, which is logged.
		logs := &testlog.Buffer{}
		opts := hub.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
		s1, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), opts)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s1.Stop(context.Background())) })
		name := enginetest.Name("h")
		_, err = s1.Create(ctx, hub.Config{Name: name, Partitions: 2})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s1.Delete(context.Background(), name) })
		// A second Service on the same connection, as a second instance
		// would be: its own batchers, the same buckets.
		s2, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), opts)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s2.Stop(context.Background())) })

		var mu sync.Mutex
		seen := map[string]hub.Position{}
		// publish has publishers (alternating between the two services)
		// each publish every id of ids, in its own order, batch at a time.
		publish := func(ids []string, publishers, batch int) {
			var wg sync.WaitGroup
			for w := range publishers {
				s := []*hub.Service{s1, s2}[w%2]
				wg.Go(func() {
					order := rand.Perm(len(ids))
					for i := 0; i < len(ids); i += batch {
						evs := make([]hub.Event, 0, batch)
						for _, k := range order[i:min(i+batch, len(ids))] {
							evs = append(evs, hub.Event{Body: []byte(ids[k]), MessageID: ids[k]})
						}
						pos, err := s.Publish(ctx, name, evs)
						if !assertNoError(t, err) {
							return
						}
						mu.Lock()
						for j, e := range evs {
							if p, ok := seen[e.MessageID]; ok && p != pos[j] {
								t.Errorf("id %s answered at %v and at %v", e.MessageID, p, pos[j])
							}
							seen[e.MessageID] = pos[j]
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
		}
		var all []string
		ids := func(prefix string, n int) []string {
			var out []string
			for i := range n {
				out = append(out, fmt.Sprintf("%s-%d", prefix, i))
			}
			all = append(all, out...)
			return out
		}
		// Little overlap between calls: small batches of many ids.
		publish(ids("spread", 200), 8, 10)
		// Every call holds the same ids: the most contention there is.
		for round := range 5 {
			publish(ids(fmt.Sprint("same", round), 30), 8, 30)
		}
		// No call waited for another that waited for it: that ends, after
		// the pending timeout, in a takeover of a live claim (and how long
		// the calls took depends on the machine).
		require.NotContains(t, logs.String(), "taking over")

		evs := readEverything(t, s1, name)
		counts := bodyCounts(evs)
		require.Len(t, counts, len(all))
		for id, n := range counts {
			require.Equal(t, 1, n, "id %s stored %d times", id, n)
		}
		// The positions answered are where the events are.
		for _, e := range evs {
			require.Equal(t, hub.Position{Partition: e.Partition, Sequence: e.Sequence}, seen[string(e.Body)])
		}
	})
}

// assertNoError reports err from a goroutine other than the test's.
func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

func TestMessageIDIsReleasedWhenThePublishFails(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		s, name := setup(t, eng, hub.Config{Partitions: 1})
		_, err := s.Publish(ctx, name, []hub.Event{{Body: []byte("before")}})
		require.NoError(t, err)
		// The partition disappears under the publisher: the claim succeeds,
		// storing the record fails (and the partition is recreated).
		require.NoError(t, eng.JS.DeleteStream(ctx, hub.StreamName(name, 0)))
		_, err = s.Publish(ctx, name, []hub.Event{{Body: []byte("x"), MessageID: "id-x"}, {Body: []byte("y"), MessageID: "id-y"}})
		require.ErrorIs(t, err, hub.ErrUnavailable)
		require.ErrorContains(t, err, "nothing of this publish was stored")
		// A retry stores the events at once: the ids were released, not
		// left pending until the pending timeout.
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second) // well before the pending timeout (30s)
		defer cancel()
		pos, err := s.Publish(rctx, name, []hub.Event{{Body: []byte("x"), MessageID: "id-x"}, {Body: []byte("y"), MessageID: "id-y"}})
		require.NoError(t, err)
		again, err := s.Publish(rctx, name, []hub.Event{{Body: []byte("y"), MessageID: "id-y"}})
		require.NoError(t, err)
		require.Equal(t, pos[1], again[0])
		require.Equal(t, map[string]int{"x": 1, "y": 1}, bodyCounts(readEverything(t, s, name)))
	})
}

func TestMessageIDsAreForgottenAfterTheWindow(t *testing.T) {
	t.Parallel()
	// Embedded only: the window is a setting of the server's id bucket,
	// which a shared server's other tests would set back meanwhile.
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	s, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{DuplicateWindow: time.Second})
	require.NoError(t, err)
	defer s.Stop(context.Background())
	name := enginetest.Name("window")
	_, err = s.Create(ctx, hub.Config{Name: name, Partitions: 1})
	require.NoError(t, err)

	start := time.Now()
	first, err := s.Publish(ctx, name, []hub.Event{{Body: []byte("x"), MessageID: "id-x"}})
	require.NoError(t, err)
	var pos []hub.Position
	require.Eventually(t, func() bool {
		pos, err = s.Publish(ctx, name, []hub.Event{{Body: []byte("x"), MessageID: "id-x"}})
		require.NoError(t, err)
		return pos[0] != first[0]
	}, 30*time.Second, 100*time.Millisecond)
	require.GreaterOrEqual(t, time.Since(start), time.Second, "remembered for the whole window")
	require.Equal(t, map[string]int{"x": 2}, bodyCounts(readEverything(t, s, name)))
}

func TestMessageIDValidation(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	for _, w := range []time.Duration{time.Millisecond, 8 * 24 * time.Hour} {
		_, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{DuplicateWindow: w})
		require.ErrorIs(t, err, hub.ErrInvalid, "window %s", w)
	}
	s, name := setup(t, eng, hub.Config{Partitions: 1})
	for _, id := range []string{strings.Repeat("x", hub.MaxMessageIDBytes+1), "a\nb", "tab\there", "\x7f", "bad \xff utf8"} {
		_, err := s.Publish(ctx, name, []hub.Event{{Body: []byte("ok"), MessageID: "fine"}, {Body: []byte("x"), MessageID: id}})
		require.ErrorIs(t, err, hub.ErrInvalid, "id %q", id)
		require.ErrorContains(t, err, "event 1")
	}
	_, parts, err := s.Describe(ctx, name)
	require.NoError(t, err)
	require.Zero(t, parts[0].Records, "a rejected publish writes nothing")
	// Not even a claim: the valid id is still free.
	_, err = s.Publish(ctx, name, []hub.Event{{Body: []byte("ok"), MessageID: "fine"}, {Body: []byte("ü"), MessageID: strings.Repeat("ü", hub.MaxMessageIDBytes/2)}})
	require.NoError(t, err)
	require.Equal(t, map[string]int{"ok": 1, "ü": 1}, bodyCounts(readEverything(t, s, name)))
}

func TestDeletingAHubForgetsItsMessageIDs(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		s, name := setup(t, eng, hub.Config{Partitions: 1})
		_, err := s.Publish(ctx, name, []hub.Event{{Body: []byte("old"), MessageID: "id-x"}})
		require.NoError(t, err)
		require.NoError(t, s.Delete(ctx, name))
		_, err = s.Create(ctx, hub.Config{Name: name, Partitions: 1})
		require.NoError(t, err)
		_, err = s.Publish(ctx, name, []hub.Event{{Body: []byte("new"), MessageID: "id-x"}})
		require.NoError(t, err)
		require.Equal(t, map[string]int{"new": 1}, bodyCounts(readEverything(t, s, name)))
	})
}

// BenchmarkPublishBatch compares publishing batches of 100 events without
// message ids, with new ids, and with ids already stored (a producer's
// retry), under both sync modes of the embedded engine. Run it briefly:
// go test -run '^$' -bench PublishBatch -benchtime 2s.
func BenchmarkPublishBatch(b *testing.B) {
	for _, sync := range []string{engine.SyncAlways, engine.SyncInterval} {
		b.Run("sync="+sync, func(b *testing.B) { benchmarkPublishBatch(b, sync) })
	}
}

func benchmarkPublishBatch(b *testing.B, sync string) {
	eng, err := engine.Start(context.Background(), engine.Config{DataDir: b.TempDir(), Sync: sync})
	require.NoError(b, err)
	defer eng.Close()
	ctx := context.Background()
	s, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{})
	require.NoError(b, err)
	defer s.Stop(context.Background())
	const batch = 100
	body := make([]byte, 256)
	newHub := func() string {
		name := enginetest.Name("bench")
		_, err := s.Create(ctx, hub.Config{Name: name, Partitions: 4})
		require.NoError(b, err)
		return name
	}
	run := func(b *testing.B, name string, id func(n int) string) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			evs := make([]hub.Event, batch)
			for j := range evs {
				evs[j] = hub.Event{Body: body, MessageID: id(n)}
				n++
			}
			if _, err := s.Publish(ctx, name, evs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
	}
	b.Run("no-ids", func(b *testing.B) {
		run(b, newHub(), func(int) string { return "" })
	})
	b.Run("new-ids", func(b *testing.B) {
		prefix := enginetest.Name("id")
		run(b, newHub(), func(n int) string { return prefix + "-" + fmt.Sprint(n) })
	})
	b.Run("stored-ids", func(b *testing.B) {
		name := newHub()
		evs := make([]hub.Event, batch)
		for j := range evs {
			evs[j] = hub.Event{Body: body, MessageID: fmt.Sprint("id-", j)}
		}
		_, err := s.Publish(ctx, name, evs)
		require.NoError(b, err)
		run(b, name, func(n int) string { return fmt.Sprint("id-", n%batch) })
	})
}
