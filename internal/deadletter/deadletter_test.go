package deadletter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/sqlite"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

func setup(t *testing.T) (*deadletter.Store, *hub.Service, *queue.Service) {
	t.Helper()
	eng := enginetest.Embedded(t)
	hubs, err := hub.Open(bg, eng.JS, eng.MaxPayload(), hub.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, hubs.Stop(context.Background())) })
	q := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{})
	t.Cleanup(func() { require.NoError(t, q.Stop(context.Background())) })
	return &deadletter.Store{Queues: q, Hubs: hubs}, hubs, q
}

func letter(fn, hubName, body string, seq int64) deadletter.Letter {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return deadletter.Letter{Function: fn, Reason: "bad " + body, Attempts: 3, FirstFailure: now.Add(-time.Second), LastFailure: now,
		Source: deadletter.Source{Kind: "hub", Hub: hubName, Group: "$Default", Partition: 0, Sequence: seq, PartitionKey: "k"},
		Body:   []byte(body), Properties: map[string]string{"p": body}, State: []byte(`{"step":2}`)}
}

func TestPutListGetRedrivePurge(t *testing.T) {
	t.Parallel()
	s, hubs, _ := setup(t)
	_, err := hubs.Create(bg, hub.Config{Name: "in", Partitions: 1})
	require.NoError(t, err)
	in := []deadletter.Letter{letter("f1", "in", "a", 65536), letter("f2", "in", "b", 131072), letter("f1", "in", "c", 196608)}
	require.NoError(t, s.Put(bg, in))

	all, err := s.List(bg, deadletter.Filter{}, 100)
	require.NoError(t, err)
	require.Len(t, all, 3)
	got := all[0]
	require.Equal(t, deadletter.Queue, got.DeadLetterQueue)
	require.NotZero(t, got.ID)
	got.DeadLetterQueue, got.ID = "", 0
	got.FirstFailure, got.LastFailure = got.FirstFailure.UTC(), got.LastFailure.UTC()
	want, _ := json.Marshal(in[0])
	have, _ := json.Marshal(got)
	require.JSONEq(t, string(want), string(have), "everything kept: function, reason, source, attempts, times, state, body, properties")

	f1, err := s.List(bg, deadletter.Filter{Function: "f1"}, 100)
	require.NoError(t, err)
	require.Len(t, f1, 2)
	one, err := s.Get(bg, deadletter.Queue, all[1].ID)
	require.NoError(t, err)
	require.Equal(t, "b", string(one.Body))
	_, err = s.Get(bg, deadletter.Queue, 999999)
	require.ErrorIs(t, err, queue.ErrNotFound)
	_, err = s.List(bg, deadletter.Filter{Queue: "orders"}, 10)
	require.ErrorIs(t, err, queue.ErrInvalid, "only dead-letter queues hold dead letters")

	n, err := s.Redrive(bg, deadletter.Filter{Function: "f1"}, deadletter.RedriveOptions{}, nil)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	r, err := hubs.OpenReader(bg, "in", 0, hub.Start{Kind: hub.StartEarliest})
	require.NoError(t, err)
	defer r.Close()
	var evs []hub.StoredEvent
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	for len(evs) < 2 {
		more, err := r.Next(ctx)
		require.NoError(t, err)
		evs = append(evs, more...)
	}
	require.Equal(t, "a", string(evs[0].Body))
	require.Equal(t, map[string]string{"p": "a", deadletter.PropRedrive: "1"}, evs[0].Properties, "properties preserved, redrive recorded")
	require.Equal(t, "k", evs[0].PartitionKey)
	require.Equal(t, "c", string(evs[1].Body))

	left, err := s.List(bg, deadletter.Filter{}, 100)
	require.NoError(t, err)
	require.Len(t, left, 1, "redriven letters are removed")
	require.Equal(t, "f2", left[0].Function)
	n, err = s.Purge(bg, deadletter.Filter{})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	left, err = s.List(bg, deadletter.Filter{}, 100)
	require.NoError(t, err)
	require.Empty(t, left)
}

func TestPoisonLettersRedriveToTheirQueue(t *testing.T) {
	t.Parallel()
	s, _, q := setup(t)
	_, err := q.Create(bg, queue.Config{Name: "orders"})
	require.NoError(t, err)
	l := deadletter.Letter{Function: "f", Reason: "boom", Attempts: 5,
		Source: deadletter.Source{Kind: "queue", Queue: "orders", MessageID: 7},
		Body:   []byte("order 7"), Properties: map[string]string{"customer": "x"}}
	require.NoError(t, s.Poison(bg, l))
	// A message put into the poison queue by someone else is listed too.
	_, err = q.Send(bg, "orders-poison", []queue.Outgoing{{Body: []byte("raw")}})
	require.NoError(t, err)

	all, err := s.List(bg, deadletter.Filter{Source: "orders"}, 10)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "orders-poison", all[0].DeadLetterQueue)
	require.Equal(t, "boom", all[0].Reason)
	require.Equal(t, "raw", string(all[1].Body))
	require.Equal(t, "queue", all[1].Source.Kind)

	n, err := s.Redrive(bg, deadletter.Filter{Queue: "orders-poison"}, deadletter.RedriveOptions{}, nil)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	msgs, err := q.Receive(bg, "orders", 10, time.Second)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	require.Equal(t, "order 7", string(msgs[0].Body))
	require.Equal(t, map[string]string{"customer": "x", deadletter.PropRedrive: "1"}, msgs[0].Properties)
	st, err := q.Stats(bg, "orders-poison")
	require.NoError(t, err)
	require.Zero(t, st.Depth)
}

func TestLargeLettersFit(t *testing.T) {
	t.Parallel()
	s, _, _ := setup(t)
	big := letter("f", "in", "x", 1)
	big.Body = make([]byte, 1<<20) // a maximum-size hub event
	require.NoError(t, s.Put(bg, []deadletter.Letter{big}))
	all, err := s.List(bg, deadletter.Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Len(t, all[0].Body, 1<<20)
}

// A letter's reason is kept to 16 KiB, so that a letter of the largest
// event fits its queue whatever the error said; the cut is marked.
func TestLongReasonsAreCut(t *testing.T) {
	t.Parallel()
	l := letter("f", "in", "x", 1)
	l.Reason = strings.Repeat("é", 50_000) // 100,000 bytes, two per rune
	got := deadletter.Decode(deadletter.Queue, &queue.Message{Body: l.Body, Properties: deadletter.Encode(l).Properties})
	require.LessOrEqual(t, len(got.Reason), 16<<10)
	require.True(t, utf8.ValidString(got.Reason))
	require.True(t, strings.HasPrefix(got.Reason, "éé"))
	require.True(t, strings.HasSuffix(got.Reason, "(cut)"))
	l.Reason = "short"
	got = deadletter.Decode(deadletter.Queue, &queue.Message{Body: l.Body, Properties: deadletter.Encode(l).Properties})
	require.Equal(t, "short", got.Reason)
}

// A change of a container's feed is redriven by writing its document again,
// unchanged, so that it comes through the feed once more; a delete, or a
// document gone since, cannot be redriven and says so.
func TestContainerLettersRedriveByRewritingTheDocument(t *testing.T) {
	t.Parallel()
	s, _, _ := setup(t)
	docs, err := sqlite.Open(filepath.Join(t.TempDir(), "docs.db"), sqlite.Options{})
	require.NoError(t, err)
	defer docs.Close()
	s.Docs = docs
	_, err = docs.CreateContainer(bg, docstore.Container{Name: "devices", PartitionKeyPath: "/deviceId"})
	require.NoError(t, err)
	d, err := docs.Upsert(bg, "devices", []byte(`{"id":"a","deviceId":"dev-1","battery":40}`))
	require.NoError(t, err)
	change := func(id string, lsn int64, deleted bool) deadletter.Letter {
		return deadletter.Letter{Function: "view", Reason: "downstream down", Attempts: 3,
			Source: deadletter.Source{Kind: "container", Container: "devices", DocumentID: id, PartitionKey: "dev-1", LSN: lsn, Deleted: deleted},
			Body:   d.Body}
	}
	require.NoError(t, s.Put(bg, []deadletter.Letter{change("a", d.LSN, false), change("gone", 1, false), change("b", 2, true)}))
	all, err := s.List(bg, deadletter.Filter{Source: "devices"}, 10)
	require.NoError(t, err)
	require.Len(t, all, 3)
	require.Equal(t, "a", all[0].Source.DocumentID)
	require.Equal(t, d.LSN, all[0].Source.LSN)

	n, err := s.Redrive(bg, deadletter.Filter{Queue: deadletter.Queue, IDs: []uint64{all[0].ID}}, deadletter.RedriveOptions{}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	changes, err := docs.Feed(bg, "devices", docstore.FeedStart{AfterLSN: d.LSN}, 10)
	require.NoError(t, err)
	require.Len(t, changes, 1, "the document comes through the feed again")
	require.Equal(t, "a", changes[0].ID)
	var body map[string]any
	require.NoError(t, json.Unmarshal(changes[0].Body, &body))
	require.Equal(t, 40.0, body["battery"], "unchanged")

	_, err = s.Redrive(bg, deadletter.Filter{Queue: deadletter.Queue, IDs: []uint64{all[1].ID}}, deadletter.RedriveOptions{}, nil)
	require.ErrorContains(t, err, "no longer in container devices")
	_, err = s.Redrive(bg, deadletter.Filter{Queue: deadletter.Queue, IDs: []uint64{all[2].ID}}, deadletter.RedriveOptions{}, nil)
	require.ErrorContains(t, err, "a delete cannot be redriven")
	left, err := s.List(bg, deadletter.Filter{Source: "devices"}, 10)
	require.NoError(t, err)
	require.Len(t, left, 2, "letters that could not be redriven are kept")
}

// TestRedriveChecksEveryLetterFirst: a redrive whose selection holds a
// letter that cannot be redriven, or names an ID that does not exist,
// sends nothing; the error names each.
func TestRedriveChecksEveryLetterFirst(t *testing.T) {
	t.Parallel()
	s, hubs, q := setup(t)
	_, err := hubs.Create(bg, hub.Config{Name: "in", Partitions: 1})
	require.NoError(t, err)
	_, err = q.Create(bg, queue.Config{Name: "small", MaxMessageBytes: 1024})
	require.NoError(t, err)
	big := letter("f", "in", "big", 1)
	big.Source = deadletter.Source{Kind: "queue", Queue: "small"}
	big.Body = make([]byte, 2000)
	unknown := letter("f", "in", "u", 1)
	unknown.Source = deadletter.Source{}
	require.NoError(t, s.Put(bg, []deadletter.Letter{letter("f", "in", "ok", 1), letter("f", "gone", "lost", 2), big, unknown}))
	all, err := s.List(bg, deadletter.Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, all, 4)
	ref := func(i int) string { return fmt.Sprintf("%s/%d", deadletter.Queue, all[i].ID) }

	_, err = s.Redrive(bg, deadletter.Filter{Function: "f"}, deadletter.RedriveOptions{}, nil)
	require.ErrorIs(t, err, queue.ErrInvalid)
	require.ErrorContains(t, err, "nothing was redriven")
	require.ErrorContains(t, err, ref(1)+": hub gone no longer exists")
	require.ErrorContains(t, err, ref(2)+": it is 2032 bytes with its properties, over the limit of 1024 bytes of queue small")
	require.ErrorContains(t, err, ref(3)+": it comes from an unknown source")
	require.NotContains(t, err.Error(), ref(0)+":")

	_, err = s.Redrive(bg, deadletter.Filter{Queue: deadletter.Queue, IDs: []uint64{all[0].ID, 999998, 999999}}, deadletter.RedriveOptions{}, nil)
	require.ErrorIs(t, err, deadletter.ErrNotFound)
	require.ErrorIs(t, err, queue.ErrNotFound)
	require.EqualError(t, err, fmt.Sprintf("dead letters %s/999998, %s/999999 not found", deadletter.Queue, deadletter.Queue))
	_, err = s.Get(bg, "orders-poison", 5)
	require.EqualError(t, err, "dead letter orders-poison/5 not found")
	_, err = s.Purge(bg, deadletter.Filter{Queue: deadletter.Queue, IDs: []uint64{all[0].ID, 999999}})
	require.ErrorIs(t, err, deadletter.ErrNotFound)

	// Nothing was sent or removed.
	st, err := q.Stats(bg, "small")
	require.NoError(t, err)
	require.Zero(t, st.Depth)
	_, parts, err := hubs.Describe(bg, "in")
	require.NoError(t, err)
	require.Zero(t, parts[0].Records)
	left, err := s.List(bg, deadletter.Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, left, 4)
}

// TestRedriveSaysWhatWasRedriven: when a write fails after the checks,
// the error says which letters were redriven and which not.
func TestRedriveSaysWhatWasRedriven(t *testing.T) {
	t.Parallel()
	s, hubs, _ := setup(t)
	for _, name := range []string{"a", "b"} {
		_, err := hubs.Create(bg, hub.Config{Name: name, Partitions: 1})
		require.NoError(t, err)
	}
	require.NoError(t, s.Put(bg, []deadletter.Letter{letter("f", "a", "1", 1), letter("f", "b", "2", 2), letter("f", "a", "3", 3)}))
	all, err := s.List(bg, deadletter.Filter{}, 10)
	require.NoError(t, err)
	require.Len(t, all, 3)

	// Hub b goes away after the first letter is redriven.
	n, err := s.Redrive(bg, deadletter.Filter{Function: "f"}, deadletter.RedriveOptions{}, func(done int) {
		if done == 1 {
			require.NoError(t, hubs.Delete(bg, "b"))
		}
	})
	require.Equal(t, 1, n)
	var rerr *deadletter.RedriveError
	require.ErrorAs(t, err, &rerr)
	require.Equal(t, []deadletter.Ref{all[0].Ref()}, rerr.Redriven)
	require.Equal(t, []deadletter.Ref{all[1].Ref(), all[2].Ref()}, rerr.NotRedriven)
	require.ErrorIs(t, err, hub.ErrNotFound)
	require.ErrorContains(t, err, "redrive stopped after 1 of 3 dead letters")
	require.ErrorContains(t, err, fmt.Sprintf("redrive %s to hub b", all[1].Ref()))
	require.ErrorContains(t, err, "redriven (sent back and removed): "+all[0].Ref().String())
	require.ErrorContains(t, err, fmt.Sprintf("not redriven (still dead letters, redrive them again): %s, %s", all[1].Ref(), all[2].Ref()))
	left, err := s.List(bg, deadletter.Filter{}, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{all[1].ID, all[2].ID}, []uint64{left[0].ID, left[1].ID})
}
