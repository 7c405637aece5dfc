package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

// idHub opens a Service on a fresh embedded engine and creates a
// one-partition hub.
func idHub(t *testing.T) (*Service, string) {
	t.Helper()
	eng := enginetest.Embedded(t)
	s, err := Open(context.Background(), eng.JS, eng.MaxPayload(), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Stop(context.Background())) })
	name := enginetest.Name("ids")
	_, err = s.Create(context.Background(), Config{Name: name, Partitions: 1})
	require.NoError(t, err)
	return s, name
}

// putEntry writes a message id's entry by hand, as another publisher would.
func putEntry(t *testing.T, s *Service, name, id string, e idEntry) uint64 {
	t.Helper()
	v, err := json.Marshal(e)
	require.NoError(t, err)
	rev, err := s.ids.Put(context.Background(), idKey(name, id), v)
	require.NoError(t, err)
	return rev
}

func getEntry(t *testing.T, s *Service, name, id string) idEntry {
	t.Helper()
	e, err := s.ids.Get(context.Background(), idKey(name, id))
	require.NoError(t, err)
	var v idEntry
	require.NoError(t, json.Unmarshal(e.Value(), &v))
	return v
}

// countClock makes s count how often it reads its clock. A publisher
// waiting for a pending id reads it on every look at the id: a count that
// grows shows the wait under way.
func countClock(s *Service) *atomic.Int64 {
	var n atomic.Int64
	s.now = func() time.Time { n.Add(1); return time.Now() }
	return &n
}

func storedRecords(t *testing.T, s *Service, name string) uint64 {
	t.Helper()
	_, parts, err := s.Describe(context.Background(), name)
	require.NoError(t, err)
	return parts[0].Records
}

func TestMessageIDEntryLifecycle(t *testing.T) {
	t.Parallel()
	s, name := idHub(t)
	pos, err := s.Publish(context.Background(), name, []Event{{Body: []byte("x"), MessageID: "id-x"}})
	require.NoError(t, err)
	require.Equal(t, idEntry{State: stateStored, Partition: pos[0].Partition, Sequence: pos[0].Sequence},
		getEntry(t, s, name, "id-x"), "marked stored with its position once Publish returns")
	require.Len(t, idKey(name, "id-x"), len(name)+1+idHashChars)
}

func TestMessageIDWaitsForAPublisherStoringIt(t *testing.T) {
	t.Parallel()
	s, name := idHub(t)
	// Another publisher has claimed the id and is storing its event.
	rev := putEntry(t, s, name, "id-x", idEntry{State: statePending, At: time.Now()})
	looks := countClock(s)
	type result struct {
		pos []Position
		err error
	}
	done := make(chan result, 1)
	go func() {
		pos, err := s.Publish(context.Background(), name, []Event{{Body: []byte("x"), MessageID: "id-x"}, {Body: []byte("other")}})
		done <- result{pos, err}
	}()
	// The claim, the first look, and looks while waiting.
	waitFor(t, "the publisher to wait", func() bool { return looks.Load() >= 5 })
	select {
	case r := <-done:
		t.Fatalf("Publish returned while the id was pending: %+v", r)
	default:
	}
	// The other publisher stores its event.
	v, _ := json.Marshal(idEntry{State: stateStored, Partition: 0, Sequence: 12345})
	_, err := s.ids.Update(context.Background(), idKey(name, "id-x"), v, rev)
	require.NoError(t, err)
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, Position{Partition: 0, Sequence: 12345}, r.pos[0])
	require.Equal(t, uint64(1), storedRecords(t, s, name), "only the event without an id was stored")
}

func TestMessageIDIsClaimedAgainWhenThePendingPublisherFails(t *testing.T) {
	t.Parallel()
	s, name := idHub(t)
	rev := putEntry(t, s, name, "id-x", idEntry{State: statePending, At: time.Now()})
	looks := countClock(s)
	done := make(chan error, 1)
	go func() {
		_, err := s.Publish(context.Background(), name, []Event{{Body: []byte("x"), MessageID: "id-x"}})
		done <- err
	}()
	waitFor(t, "the publisher to wait", func() bool { return looks.Load() >= 5 })
	// The other publisher failed to store and released the id.
	require.NoError(t, s.ids.Delete(context.Background(), idKey(name, "id-x"), jetstream.LastRevision(rev)))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second): // well before the pending timeout (30s)
		t.Fatal("the waiting publisher did not claim the released id")
	}
	require.Equal(t, uint64(1), storedRecords(t, s, name))
	require.Equal(t, stateStored, getEntry(t, s, name, "id-x").State)
}

func TestMessageIDLeftPendingIsTakenOver(t *testing.T) {
	t.Parallel()
	s, name := idHub(t)
	// A publisher that died a minute ago, long past the pending timeout.
	putEntry(t, s, name, "id-dead", idEntry{State: statePending, At: time.Now().Add(-time.Minute)})
	// Well before the pending timeout (30s): not by a wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pos, err := s.Publish(ctx, name, []Event{{Body: []byte("x"), MessageID: "id-dead"}})
	require.NoError(t, err, "taken over at once")
	require.Equal(t, idEntry{State: stateStored, Sequence: pos[0].Sequence}, getEntry(t, s, name, "id-dead"))
	require.Equal(t, uint64(1), storedRecords(t, s, name))
}

func TestMessageIDPendingWithAClockAheadIsTakenOverAfterTheTimeout(t *testing.T) {
	t.Parallel()
	s, name := idHub(t)
	s.pendingTimeout = 500 * time.Millisecond
	// A dead publisher whose clock ran an hour ahead: its claim looks
	// young, but the waiter times it itself.
	putEntry(t, s, name, "id-x", idEntry{State: statePending, At: time.Now().Add(time.Hour)})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.Publish(ctx, name, []Event{{Body: []byte("x"), MessageID: "id-x"}})
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), s.pendingTimeout)
	require.Equal(t, uint64(1), storedRecords(t, s, name))
}

func TestMessageIDInjectedClock(t *testing.T) {
	t.Parallel()
	s, name := idHub(t)
	// The pending timeout is measured on the Service's clock.
	base := time.Now()
	putEntry(t, s, name, "id-x", idEntry{State: statePending, At: base})
	s.now = func() time.Time { return base.Add(defaultPendingTimeout) }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.Publish(ctx, name, []Event{{Body: []byte("x"), MessageID: "id-x"}})
	require.NoError(t, err)
	require.Equal(t, uint64(1), storedRecords(t, s, name))
}

func TestMessageIDWaitEndsWithTheContext(t *testing.T) {
	t.Parallel()
	s, name := idHub(t)
	putEntry(t, s, name, "id-x", idEntry{State: statePending, At: time.Now()})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := s.Publish(ctx, name, []Event{{Body: []byte("x"), MessageID: "id-x"}, {Body: []byte("y"), MessageID: "id-y"}})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Zero(t, storedRecords(t, s, name))
	// The id claimed meanwhile was released.
	_, err = s.ids.Get(context.Background(), idKey(name, "id-y"))
	require.Error(t, err)
}

// A call waiting for an id does not hold its other ids meanwhile: two calls
// each holding an id the other wants would wait for each other until the
// pending timeout, then both store.
func TestMessageIDWaitsHoldingNothing(t *testing.T) {
	t.Parallel()
	s, name := idHub(t)
	// Another call holds id-b and waits for id-a.
	rev := putEntry(t, s, name, "id-b", idEntry{State: statePending, At: time.Now()})
	done := make(chan error, 1)
	go func() {
		_, err := s.Publish(context.Background(), name, []Event{{Body: []byte("a"), MessageID: "id-a"}, {Body: []byte("b"), MessageID: "id-b"}})
		done <- err
	}()
	// This call claims id-a, finds id-b pending and lets id-a go: its
	// entry's last message is a delete marker.
	kvStream, err := s.js.Stream(context.Background(), "KV_"+bucketIDs)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		m, err := kvStream.GetLastMsgForSubject(context.Background(), idSubject(idKey(name, "id-a")))
		return err == nil && m.Header.Get("KV-Operation") == "DEL"
	}, 20*time.Second, time.Millisecond, "id-a is released while its call waits")
	// The other call gets id-a meanwhile.
	arev, err := s.ids.Create(context.Background(), idKey(name, "id-a"), []byte(`{"state":"pending","at":"`+time.Now().UTC().Format(time.RFC3339Nano)+`"}`))
	require.NoError(t, err)
	// It stores both and marks them.
	v, _ := json.Marshal(idEntry{State: stateStored, Sequence: 7})
	_, err = s.ids.Update(context.Background(), idKey(name, "id-a"), v, arev)
	require.NoError(t, err)
	v, _ = json.Marshal(idEntry{State: stateStored, Sequence: 8})
	_, err = s.ids.Update(context.Background(), idKey(name, "id-b"), v, rev)
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second): // well before the pending timeout (30s)
		t.Fatal("the waiting call did not finish")
	}
	require.Zero(t, storedRecords(t, s, name), "both ids were stored by the other call")
}

// Ids written as atomic batches (NATS 2.12 and later): the revisions of a
// batch's entries are right, and a batch that fails on one taken id falls
// back to writing them one by one.
func TestMessageIDsWrittenAsAtomicBatches(t *testing.T) {
	t.Parallel()
	s, name := idHub(t)
	require.True(t, s.atomicIDs.Load(), "the embedded server takes atomic batches")
	// Make atomic batches look cheap.
	s.idCost.perMsg, s.idCost.perBatch = time.Second, time.Microsecond
	require.True(t, s.idCost.atomic(100))

	evs := func(from, to int) []Event {
		var out []Event
		for i := from; i < to; i++ {
			out = append(out, Event{Body: []byte(fmt.Sprint(i)), MessageID: fmt.Sprint("id-", i)})
		}
		return out
	}
	first, err := s.Publish(context.Background(), name, evs(0, 40))
	require.NoError(t, err)
	kvStream, err := s.js.Stream(context.Background(), "KV_"+bucketIDs)
	require.NoError(t, err)
	m, err := kvStream.GetLastMsgForSubject(context.Background(), idSubject(idKey(name, "id-7")))
	require.NoError(t, err)
	require.NotEmpty(t, m.Header.Get("Nats-Batch-Id"), "marked in an atomic batch")
	for i := range 40 {
		e := getEntry(t, s, name, fmt.Sprint("id-", i))
		require.Equal(t, stateStored, e.State, "marked stored: the claim's revision was right")
		require.Equal(t, first[i].Sequence, e.Sequence)
	}
	// Half taken: the atomic batch of creates fails, the ids go one by one.
	again, err := s.Publish(context.Background(), name, evs(20, 60))
	require.NoError(t, err)
	require.Equal(t, first[20:], again[:20])
	for i := 40; i < 60; i++ {
		require.Equal(t, stateStored, getEntry(t, s, name, fmt.Sprint("id-", i)).State)
	}
	_, parts, err := s.Describe(context.Background(), name)
	require.NoError(t, err)
	require.Equal(t, SequenceOf(2, 19), parts[0].LastSequence, "two records: 40 events, then 20")
}

func TestWriteCostChoosesTheCheaperWay(t *testing.T) {
	t.Parallel()
	var c writeCost
	require.False(t, c.atomic(100), "separate writes first: they work on every server")
	require.False(t, c.atomic(minAtomicWrites-1))
	// Fsynced writes: 150µs each.
	c.observe(false, 100, 15*time.Millisecond)
	require.True(t, c.atomic(100), "worth trying a batch")
	c.observe(true, 100, 5*time.Millisecond)
	require.True(t, c.atomic(100))
	require.False(t, c.atomic(20), "20 writes cost less than a batch")
	// Writes fsynced on a timer: 12µs each.
	for range 50 {
		c.observe(false, 100, 1200*time.Microsecond)
	}
	explored := 0
	for range exploreEvery {
		if c.atomic(100) {
			explored++
		}
	}
	require.Equal(t, 1, explored, "the dearer way is tried now and then")
}

// waitFor polls cond until it holds, failing the test after 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
