package hub

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

// tailHub opens a Service with the tail on a fresh embedded engine and
// creates a one-partition hub.
func tailHub(t *testing.T) (*Service, string) {
	t.Helper()
	eng := enginetest.Embedded(t)
	s, err := Open(context.Background(), eng.JS, eng.MaxPayload(), Options{Tail: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Stop(context.Background())) })
	name := enginetest.Name("tail")
	_, err = s.Create(context.Background(), Config{Name: name, Partitions: 1})
	require.NoError(t, err)
	return s, name
}

func publishBodies(t *testing.T, s *Service, name string, bodies ...string) []Position {
	t.Helper()
	evs := make([]Event, len(bodies))
	for i, b := range bodies {
		evs[i] = Event{Body: []byte(b)}
	}
	pos, err := s.Publish(context.Background(), name, evs)
	require.NoError(t, err)
	return pos
}

func nextEvents(t *testing.T, r *Reader) []StoredEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	evs, err := r.Next(ctx)
	require.NoError(t, err)
	return evs
}

// caughtUpReader opens a reader at the start of a partition holding one
// record and reads it, which puts the reader on the tail.
func caughtUpReader(t *testing.T, s *Service, name string) *Reader {
	t.Helper()
	r, err := s.OpenReader(context.Background(), name, 0, Start{Kind: StartEarliest})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	nextEvents(t, r)
	require.Nil(t, r.it, "the last stored record was read: the reader is on the tail")
	return r
}

func TestTailCarriesRecordsOnceCaughtUp(t *testing.T) {
	t.Parallel()
	s, name := tailHub(t)
	publishBodies(t, s, name, "a", "b")
	r, err := s.OpenReader(context.Background(), name, 0, Start{Kind: StartEarliest})
	require.NoError(t, err)
	defer r.Close()

	evs := nextEvents(t, r)
	require.Len(t, evs, 2)
	require.Nil(t, r.it, "the last stored record was read: the reader is on the tail")

	for i := range 20 {
		pos := publishBodies(t, s, name, "x", "y")
		evs := nextEvents(t, r)
		require.Nil(t, r.it, "record %d came from the tail", i)
		require.Len(t, evs, 2)
		require.Equal(t, "x", string(evs[0].Body))
		require.Equal(t, pos[0].Sequence, evs[0].Sequence)
		require.Equal(t, pos[1].Sequence, evs[1].Sequence)
	}
}

func TestTailFallsBackToTheStoreWhenTheReaderFallsBehind(t *testing.T) {
	t.Parallel()
	s, name := tailHub(t)
	publishBodies(t, s, name, "first")
	r := caughtUpReader(t, s, name)

	// More than the tail holds, while the reader does not read.
	big := make([]byte, 900<<10)
	n := tailBytes/len(big) + 8
	for i := range n {
		big[0] = byte(i)
		_, err := s.Publish(context.Background(), name, []Event{{Body: big}})
		require.NoError(t, err)
	}
	for i := range n {
		evs := nextEvents(t, r)
		require.Len(t, evs, 1)
		require.Equal(t, byte(i), evs[0].Body[0], "record %d in order, none lost or repeated", i)
	}
	// Caught up again, the reader returns to the tail.
	publishBodies(t, s, name, "after")
	evs := nextEvents(t, r)
	require.Equal(t, "after", string(evs[0].Body))
	require.Nil(t, r.it)
}

func TestTailReaderSeesAnotherWritersRecords(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	s, err := Open(ctx, eng.JS, eng.MaxPayload(), Options{Tail: true})
	require.NoError(t, err)
	defer s.Stop(context.Background())
	other, err := Open(ctx, eng.JS, eng.MaxPayload(), Options{})
	require.NoError(t, err)
	defer other.Stop(context.Background())
	name := enginetest.Name("tail")
	_, err = s.Create(ctx, Config{Name: name, Partitions: 1})
	require.NoError(t, err)

	publishBodies(t, s, name, "mine")
	r := caughtUpReader(t, s, name)

	publishBodies(t, other, name, "theirs")
	publishBodies(t, s, name, "mine again")
	require.Equal(t, "theirs", string(nextEvents(t, r)[0].Body))
	require.Equal(t, "mine again", string(nextEvents(t, r)[0].Body))
	require.Nil(t, r.it)
	// Nothing on the tail at all: the reader asks the store when idle.
	publishBodies(t, other, name, "theirs only")
	require.Equal(t, "theirs only", string(nextEvents(t, r)[0].Body))
}

func TestTailGivesEachReaderItsOwnBytes(t *testing.T) {
	t.Parallel()
	s, name := tailHub(t)
	publishBodies(t, s, name, "start")
	var readers []*Reader
	for range 2 {
		readers = append(readers, caughtUpReader(t, s, name))
	}
	publishBodies(t, s, name, "payload")
	a, b := nextEvents(t, readers[0]), nextEvents(t, readers[1])
	copy(a[0].Body, "XXXXXXX")
	require.Equal(t, "payload", string(b[0].Body), "one reader's handler changing a body must not change another's")
}

func TestTailReaderLearnsItsHubWasDeleted(t *testing.T) {
	t.Parallel()
	s, name := tailHub(t)
	publishBodies(t, s, name, "a")
	r := caughtUpReader(t, s, name)
	require.NoError(t, s.Delete(context.Background(), name))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := r.Next(ctx)
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, "was deleted while being read")
}
