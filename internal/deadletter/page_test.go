package deadletter_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/queue"
)

// bodies are the letters' bodies, in order.
func bodies(letters []deadletter.Letter) []string {
	out := make([]string, len(letters))
	for i, l := range letters {
		out[i] = string(l.Body)
	}
	return out
}

// pageSetup keeps letters "1" to "n" in the order of their names, in
// sluice-deadletters and the poison queue of "orders" by turns (every
// third in the poison queue), each kept after the one before.
func pageSetup(t *testing.T, n int) (*deadletter.Store, []string) {
	t.Helper()
	s, _, _ := setup(t)
	var all []string
	for i := 1; i <= n; i++ {
		body := strconv.Itoa(i)
		if i%3 == 0 {
			l := letter("q", "in", body, 0)
			l.Source = deadletter.Source{Kind: "queue", Queue: "orders"}
			require.NoError(t, s.Poison(bg, l))
		} else {
			require.NoError(t, s.Put(bg, []deadletter.Letter{letter(fmt.Sprint("f", i%2), "in", body, int64(i))}))
		}
		all = append(all, body)
	}
	return s, all
}

func page(t *testing.T, s *deadletter.Store, f deadletter.Filter, o deadletter.PageOptions) deadletter.Page {
	t.Helper()
	p, err := s.ListPage(bg, f, o)
	require.NoError(t, err)
	return p
}

// TestPagesNewestFirst: pages of the letters of every dead-letter queue,
// newest first, go to the oldest and back; letters kept meanwhile are on
// the newer side.
func TestPagesNewestFirst(t *testing.T) {
	t.Parallel()
	s, all := pageSetup(t, 10)
	newest := slices.Clone(all)
	slices.Reverse(newest)

	p1 := page(t, s, deadletter.Filter{}, deadletter.PageOptions{Order: deadletter.NewestFirst, Limit: 4})
	require.Equal(t, newest[:4], bodies(p1.Letters), "the newest of both queues, merged")
	require.True(t, p1.HasOlder)
	require.False(t, p1.HasNewer, "the first page is the newest")
	require.Equal(t, "orders-poison", p1.Letters[1].DeadLetterQueue)

	p2 := page(t, s, deadletter.Filter{}, deadletter.PageOptions{Order: deadletter.NewestFirst, Before: &p1.Older, Limit: 4})
	require.Equal(t, newest[4:8], bodies(p2.Letters))
	require.True(t, p2.HasOlder)
	require.True(t, p2.HasNewer)
	p3 := page(t, s, deadletter.Filter{}, deadletter.PageOptions{Order: deadletter.NewestFirst, Before: &p2.Older, Limit: 4})
	require.Equal(t, newest[8:], bodies(p3.Letters))
	require.False(t, p3.HasOlder, "the last page")

	// Back to newer pages from the oldest.
	back := page(t, s, deadletter.Filter{}, deadletter.PageOptions{Order: deadletter.NewestFirst, After: &p3.Newer, Limit: 4})
	require.Equal(t, newest[4:8], bodies(back.Letters), "the letters just newer, newest first")
	require.True(t, back.HasNewer)
	back = page(t, s, deadletter.Filter{}, deadletter.PageOptions{Order: deadletter.NewestFirst, After: &back.Newer, Limit: 4})
	require.Equal(t, newest[:4], bodies(back.Letters))
	require.False(t, back.HasNewer)

	// A letter kept now is newer than every page made before: not on
	// an older page, but the next newer one.
	require.NoError(t, s.Put(bg, []deadletter.Letter{letter("f1", "in", "11", 11)}))
	again := page(t, s, deadletter.Filter{}, deadletter.PageOptions{Order: deadletter.NewestFirst, Before: &p1.Older, Limit: 4})
	require.Equal(t, newest[4:8], bodies(again.Letters), "the same page as before")
	newer := page(t, s, deadletter.Filter{}, deadletter.PageOptions{Order: deadletter.NewestFirst, After: &p1.Newer, Limit: 4})
	require.Equal(t, []string{"11"}, bodies(newer.Letters))
	first := page(t, s, deadletter.Filter{}, deadletter.PageOptions{Order: deadletter.NewestFirst, Limit: 4})
	require.Equal(t, []string{"11", "10", "9", "8"}, bodies(first.Letters))

	// The cursor's text is how a client gives it back.
	text := p1.Older.String()
	require.Contains(t, text, deadletter.Queue+":")
	require.Contains(t, text, "orders-poison:")
	c, err := deadletter.ParseCursor(text)
	require.NoError(t, err)
	require.Equal(t, p2.Letters, page(t, s, deadletter.Filter{}, deadletter.PageOptions{Order: deadletter.NewestFirst, Before: &c, Limit: 4}).Letters)
}

// TestPagesOldestFirst: the same pages the other way.
func TestPagesOldestFirst(t *testing.T) {
	t.Parallel()
	s, all := pageSetup(t, 7)
	p1 := page(t, s, deadletter.Filter{}, deadletter.PageOptions{Limit: 3})
	require.Equal(t, all[:3], bodies(p1.Letters))
	require.True(t, p1.HasNewer)
	require.False(t, p1.HasOlder)
	p2 := page(t, s, deadletter.Filter{}, deadletter.PageOptions{After: &p1.Newer, Limit: 3})
	require.Equal(t, all[3:6], bodies(p2.Letters))
	p3 := page(t, s, deadletter.Filter{}, deadletter.PageOptions{After: &p2.Newer, Limit: 3})
	require.Equal(t, all[6:], bodies(p3.Letters))
	require.False(t, p3.HasNewer)
	back := page(t, s, deadletter.Filter{}, deadletter.PageOptions{Before: &p3.Older, Limit: 3})
	require.Equal(t, all[3:6], bodies(back.Letters), "oldest first still")
}

// TestPagesFilterAndQueue: a filter selects within the pages; a queue
// reads that dead-letter queue only.
func TestPagesFilterAndQueue(t *testing.T) {
	t.Parallel()
	s, _ := pageSetup(t, 12)
	// f1: the odd letters not in the poison queue: 1 5 7 11.
	p := page(t, s, deadletter.Filter{Function: "f1"}, deadletter.PageOptions{Order: deadletter.NewestFirst, Limit: 3})
	require.Equal(t, []string{"11", "7", "5"}, bodies(p.Letters))
	require.True(t, p.HasOlder)
	p = page(t, s, deadletter.Filter{Function: "f1"}, deadletter.PageOptions{Order: deadletter.NewestFirst, Before: &p.Older, Limit: 3})
	require.Equal(t, []string{"1"}, bodies(p.Letters))
	require.False(t, p.HasOlder)

	p = page(t, s, deadletter.Filter{Queue: "orders-poison"}, deadletter.PageOptions{Order: deadletter.NewestFirst, Limit: 10})
	require.Equal(t, []string{"12", "9", "6", "3"}, bodies(p.Letters))

	_, err := s.ListPage(bg, deadletter.Filter{Queue: "orders"}, deadletter.PageOptions{Limit: 1})
	require.ErrorIs(t, err, queue.ErrInvalid)
	_, err = s.ListPage(bg, deadletter.Filter{Queue: "nope-poison"}, deadletter.PageOptions{Limit: 1})
	require.ErrorIs(t, err, queue.ErrNotFound)
	require.ErrorContains(t, err, "dead-letter queue nope-poison not found")
	_, err = s.ListPage(bg, deadletter.Filter{}, deadletter.PageOptions{Before: &p.Older, After: &p.Newer, Limit: 1})
	require.ErrorIs(t, err, queue.ErrInvalid)
}

// TestPagesOverGaps: letters redriven or purged from a large queue leave
// gaps in its positions; pages read past them, newest first from the true
// last letter.
func TestPagesOverGaps(t *testing.T) {
	t.Parallel()
	s, _, _ := setup(t)
	var in []deadletter.Letter
	for i := 1; i <= 3000; i++ {
		in = append(in, letter("f", "in", strconv.Itoa(i), int64(i)))
	}
	for batch := range slices.Chunk(in, 1000) {
		require.NoError(t, s.Put(bg, batch))
	}
	all, err := s.List(bg, deadletter.Filter{}, 10000)
	require.NoError(t, err)
	require.Len(t, all, 3000)
	// Keep 1-10, 1500, 2990-3000 but 2995: purge the rest.
	var purge []uint64
	var want []string
	for i, l := range all {
		n := i + 1
		if n <= 10 || n == 1500 || (n >= 2990 && n != 2995) {
			want = append(want, string(l.Body))
			continue
		}
		purge = append(purge, l.ID)
	}
	for ids := range slices.Chunk(purge, 1000) {
		_, err = s.Purge(bg, deadletter.Filter{Queue: deadletter.Queue, IDs: ids})
		require.NoError(t, err)
	}
	slices.Reverse(want)

	var got []string
	o := deadletter.PageOptions{Order: deadletter.NewestFirst, Limit: 7}
	for {
		p := page(t, s, deadletter.Filter{}, o)
		got = append(got, bodies(p.Letters)...)
		if !p.HasOlder {
			break
		}
		o.Before = &p.Older
	}
	require.Equal(t, want, got)

	// The last letters purged too: the newest page starts below them.
	_, err = s.Purge(bg, deadletter.Filter{Queue: deadletter.Queue, IDs: []uint64{all[2999].ID, all[2998].ID}})
	require.NoError(t, err)
	p := page(t, s, deadletter.Filter{}, deadletter.PageOptions{Order: deadletter.NewestFirst, Limit: 2})
	require.Equal(t, []string{"2998", "2997"}, bodies(p.Letters))
}

func TestParseCursor(t *testing.T) {
	t.Parallel()
	c, err := deadletter.ParseCursor("")
	require.NoError(t, err)
	require.True(t, c.IsZero())
	c, err = deadletter.ParseCursor("sluice-deadletters:12,orders-poison:3")
	require.NoError(t, err)
	require.Equal(t, "orders-poison:3,sluice-deadletters:12", c.String())
	for _, bad := range []string{"x", "orders:1", "orders-poison:", "orders-poison:-1", "orders-poison:1,orders-poison:2", "sluice-deadletters:1,"} {
		_, err := deadletter.ParseCursor(bad)
		require.ErrorIs(t, err, queue.ErrInvalid, bad)
		require.ErrorContains(t, err, "cursor")
	}
}

func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "sluice-deadletters:12,orders-poison:3", "a-poison:18446744073709551615", "x:1", ",", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := deadletter.ParseCursor(s)
		if err != nil {
			require.ErrorIs(t, err, queue.ErrInvalid)
			return
		}
		// A parsed cursor says the same in its own text.
		again, err := deadletter.ParseCursor(c.String())
		require.NoError(t, err)
		require.Equal(t, c.String(), again.String())
		require.Equal(t, strings.Count(c.String(), ":"), strings.Count(again.String(), ":"))
	})
}
