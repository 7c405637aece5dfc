package deadletter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/queue"
)

// Paging through the dead letters of every dead-letter queue at once,
// newest or oldest first.
//
// The letters of all queues are merged by when each was kept (its
// message's enqueued time), newest first or oldest first. A page ends at a
// [Cursor], which marks, in each dead-letter queue, where the letters
// older than the page end: paging goes on from there exactly, however the
// queues' times interleave, and letters kept meanwhile come on the newer
// side of every cursor made before.
//
// A queue is read from either end without reading the rest of it: pages
// of the newest letters cost about what they list, even in a queue of
// millions (a filter that matches few letters reads until it has found
// enough, as List does).

// Order is the order of a page.
type Order int

const (
	// OldestFirst lists the letters kept first first.
	OldestFirst Order = iota
	// NewestFirst lists the letters kept last first.
	NewestFirst
)

// Cursor marks a place among the dead letters: in each dead-letter queue,
// the letters before it are older, those from it on newer. The zero
// Cursor is before every letter. Its text (String, ParseCursor) is how
// clients get it back: "<queue>:<position>,...", an opaque token to them.
type Cursor struct {
	// at is, per dead-letter queue, the storage position (queue.Message.Seq)
	// of the first letter on the newer side; a queue without an entry has
	// every letter on the newer side.
	at map[string]uint64
}

// String is the cursor's text: its queues in order, "" for the zero
// Cursor.
func (c Cursor) String() string {
	parts := make([]string, 0, len(c.at))
	for _, q := range slices.Sorted(maps.Keys(c.at)) {
		parts = append(parts, q+":"+strconv.FormatUint(c.at[q], 10))
	}
	return strings.Join(parts, ",")
}

// IsZero reports whether the cursor is before every letter.
func (c Cursor) IsZero() bool { return len(c.at) == 0 }

// maxCursorQueues bounds the queues of a parsed cursor (a client could
// send anything): a queue's poison queue each, and more.
const maxCursorQueues = 10000

// ParseCursor reads a cursor's text (see Cursor.String). Errors wrap
// queue.ErrInvalid.
func ParseCursor(s string) (Cursor, error) {
	c := Cursor{at: map[string]uint64{}}
	if s == "" {
		return c, nil
	}
	bad := func(why string) (Cursor, error) {
		return Cursor{}, fmt.Errorf("%w cursor %q: %s; pass back a cursor as an answer gave it", queue.ErrInvalid, short(s), why)
	}
	for part := range strings.SplitSeq(s, ",") {
		if len(c.at) == maxCursorQueues {
			return bad("too many queues")
		}
		q, pos, ok := strings.Cut(part, ":")
		if !ok {
			return bad("want <queue>:<position>, separated by commas")
		}
		if !isDeadLetterQueue(q) || queue.ValidateName(q) != nil {
			return bad(fmt.Sprintf("%q is not a dead-letter queue", short(q)))
		}
		n, err := strconv.ParseUint(pos, 10, 64)
		if err != nil {
			return bad(fmt.Sprintf("position %q is not a number", short(pos)))
		}
		if _, dup := c.at[q]; dup {
			return bad(fmt.Sprintf("queue %s twice", q))
		}
		c.at[q] = n
	}
	return c, nil
}

// short shortens outside input for a message.
func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// isDeadLetterQueue reports whether a queue of this name holds dead
// letters: Queue, or a poison queue.
func isDeadLetterQueue(name string) bool {
	return name == Queue || strings.HasSuffix(name, queue.PoisonSuffix)
}

// PageOptions choose a page.
type PageOptions struct {
	Order Order
	// Before, when set, lists the letters older than it (a Page's Older);
	// After the letters newer than it (a Page's Newer). At most one is
	// set; neither lists from the newest or oldest letter by Order.
	Before, After *Cursor
	// Limit is the most letters listed, at least 1.
	Limit int
}

// Page is a page of dead letters and where the pages around it start.
type Page struct {
	// Letters are in the order asked for.
	Letters []Letter
	// Older lists the letters older than the page's (as
	// PageOptions.Before), Newer those newer (as PageOptions.After).
	Older, Newer Cursor
	// HasOlder reports that letters older than the page exist. HasNewer
	// reports that letters newer than the page exist, or did when the
	// cursor the page was asked with was made.
	HasOlder, HasNewer bool
}

// ListPage returns a page of the letters matching f. f.IDs select within
// f.Queue as with List.
func (s *Store) ListPage(ctx context.Context, f Filter, o PageOptions) (Page, error) {
	if o.Before != nil && o.After != nil {
		return Page{}, fmt.Errorf("%w: give a cursor before or after, not both", queue.ErrInvalid)
	}
	if o.Limit < 1 {
		return Page{}, fmt.Errorf("%w limit %d: list at least 1 dead letter", queue.ErrInvalid, o.Limit)
	}
	queues, err := s.pageQueues(ctx, f)
	if err != nil {
		return Page{}, err
	}
	// Newest first reads backwards, unless it pages to newer letters;
	// oldest first likewise.
	backwards := o.Before != nil || (o.After == nil && o.Order == NewestFirst)
	page := Page{}
	readers := make([]reader, 0, len(queues))
	for _, q := range queues {
		var r reader
		switch {
		case backwards && o.Before != nil:
			if hi := o.Before.at[q]; hi > 0 {
				var first uint64
				if first, _, err = s.nextSeq(ctx, q, 0); first > 0 {
					r = newBackward(s, q, f, first, hi, o.Limit)
				}
			}
		case backwards:
			var first, last uint64
			if first, last, err = s.bounds(ctx, q); last > 0 {
				setCut(&page.Newer, q, last+1)
				r = newBackward(s, q, f, first, last+1, o.Limit)
			}
		default:
			var from uint64
			if o.After != nil {
				from = o.After.at[q]
			}
			r = &forward{s: s, q: q, f: f, next: from, chunk: min(o.Limit+1, peekMax)}
		}
		if errors.Is(err, queue.ErrNotFound) && f.Queue == "" {
			err = nil // deleted meanwhile: no letters
			continue
		}
		if err != nil {
			return Page{}, err
		}
		if r != nil {
			readers = append(readers, r)
		}
	}

	// Merge the queues: the newest (oldest) head of all is next.
	after := func(a, b Letter) bool { // a comes after b going backwards
		return cmp.Or(a.kept.Compare(b.kept), strings.Compare(a.DeadLetterQueue, b.DeadLetterQueue), cmp.Compare(a.seq, b.seq)) > 0
	}
	next := func() (int, error) {
		best := -1
		var bestL Letter
		for i, r := range readers {
			l, ok, err := r.head(ctx)
			if err != nil {
				return -1, err
			}
			if ok && (best < 0 || after(l, bestL) == backwards) {
				best, bestL = i, l
			}
		}
		return best, nil
	}
	for len(page.Letters) < o.Limit {
		i, err := next()
		if err != nil {
			return Page{}, err
		}
		if i < 0 {
			break
		}
		page.Letters = append(page.Letters, readers[i].pop())
	}
	i, err := next()
	if err != nil {
		return Page{}, err
	}
	more := i >= 0

	if backwards {
		for _, r := range readers {
			setCut(&page.Older, r.queue(), r.cut())
		}
		page.HasOlder = more
		if o.Before != nil {
			page.Newer, page.HasNewer = *o.Before, true
		}
	} else {
		for _, r := range readers {
			setCut(&page.Newer, r.queue(), r.cut())
		}
		page.HasNewer = more
		if o.After != nil {
			page.Older, page.HasOlder = *o.After, true
		}
	}
	if backwards != (o.Order == NewestFirst) {
		slices.Reverse(page.Letters)
	}
	return page, nil
}

func setCut(c *Cursor, q string, at uint64) {
	if at == 0 {
		return // the same as no entry
	}
	if c.at == nil {
		c.at = map[string]uint64{}
	}
	c.at[q] = at
}

// pageQueues are the dead-letter queues f reads.
func (s *Store) pageQueues(ctx context.Context, f Filter) ([]string, error) {
	if f.Queue == "" {
		return s.DeadLetterQueues(ctx)
	}
	if !isDeadLetterQueue(f.Queue) {
		return nil, fmt.Errorf("%w dead-letter queue %q: dead letters are in %s and in <queue>%s queues", queue.ErrInvalid, f.Queue, Queue, queue.PoisonSuffix)
	}
	if _, err := s.Queues.Get(ctx, f.Queue); err != nil {
		if errors.Is(err, queue.ErrNotFound) {
			return nil, fmt.Errorf("dead-letter queue %s not found: no dead letter was kept there yet (%w)", f.Queue, err)
		}
		return nil, err
	}
	return []string{f.Queue}, nil
}

// peekMax is the most messages one queue.Service.PeekAfter returns.
const peekMax = 1000

// reader yields one dead-letter queue's letters that match a filter, in
// one direction.
type reader interface {
	queue() string
	// head is the next letter, without taking it; false at the end.
	head(ctx context.Context) (Letter, bool, error)
	// pop takes the letter head returned.
	pop() Letter
	// cut is where the letters taken end: the position of the first
	// letter on the newer side of them.
	cut() uint64
}

// forward reads a queue oldest first, from position next on.
type forward struct {
	s     *Store
	q     string
	f     Filter
	next  uint64   // positions before it are read
	chunk int      // messages read at a time
	buf   []Letter // read and not taken, oldest first
	done  bool
}

var _ reader = (*forward)(nil)

func (r *forward) queue() string { return r.q }

func (r *forward) head(ctx context.Context) (Letter, bool, error) {
	for len(r.buf) == 0 && !r.done {
		msgs, err := r.s.Queues.PeekAfter(ctx, r.q, max(r.next, 1)-1, r.chunk)
		if err != nil {
			return Letter{}, false, err
		}
		r.done = len(msgs) < r.chunk
		for _, m := range msgs {
			r.next = m.Seq + 1
			if l := Decode(r.q, m); r.f.match(l) {
				r.buf = append(r.buf, l)
			}
		}
		if len(r.buf) == 0 {
			r.chunk = min(2*r.chunk, peekMax) // a filter that matches few: read on faster
		}
	}
	if len(r.buf) == 0 {
		return Letter{}, false, nil
	}
	return r.buf[0], true, nil
}

func (r *forward) pop() Letter {
	l := r.buf[0]
	r.buf = r.buf[1:]
	return l
}

// cut: the letters not taken are newer, from the first one read and not
// taken, or from where reading stopped.
func (r *forward) cut() uint64 {
	if len(r.buf) > 0 {
		return r.buf[0].seq
	}
	return r.next
}

// backward reads a queue newest first, from before position hi down, a
// window of positions at a time (queue.Service peeks forwards only).
type backward struct {
	s     *Store
	q     string
	f     Filter
	hi    uint64   // positions from hi on are read (or not wanted)
	floor uint64   // the first letter's position: none before it
	span  uint64   // positions read at a time
	buf   []Letter // read and not taken, oldest first: the head is last
}

var _ reader = (*backward)(nil)

// newBackward reads queue q backwards from before position hi, to its
// first letter's position first, for pages of want letters.
func newBackward(s *Store, q string, f Filter, first, hi uint64, want int) *backward {
	return &backward{s: s, q: q, f: f, hi: hi, floor: first, span: uint64(max(want+1, 16))}
}

func (r *backward) queue() string { return r.q }

func (r *backward) head(ctx context.Context) (Letter, bool, error) {
	for len(r.buf) == 0 && r.hi > r.floor {
		lo := max(r.floor, r.hi-min(r.span, r.hi))
		msgs, err := r.s.peekRange(ctx, r.q, lo, r.hi)
		if err != nil {
			return Letter{}, false, err
		}
		r.hi = lo
		for _, m := range msgs {
			if l := Decode(r.q, m); r.f.match(l) {
				r.buf = append(r.buf, l)
			}
		}
		if uint64(len(msgs)) < r.span/2 {
			// Sparse (letters redriven or purged), or a filter that
			// matches few: wider windows.
			r.span *= 2
		}
	}
	if len(r.buf) == 0 {
		return Letter{}, false, nil
	}
	return r.buf[len(r.buf)-1], true, nil
}

func (r *backward) pop() Letter {
	l := r.buf[len(r.buf)-1]
	r.buf = r.buf[:len(r.buf)-1]
	return l
}

// cut: the letters not taken are older: up to the newest one read and not
// taken, or to where reading stopped.
func (r *backward) cut() uint64 {
	if len(r.buf) > 0 {
		return r.buf[len(r.buf)-1].seq + 1
	}
	return r.hi
}

// peekRange returns the messages of dlq at positions lo to hi-1, oldest
// first.
func (s *Store) peekRange(ctx context.Context, dlq string, lo, hi uint64) ([]*queue.Message, error) {
	var out []*queue.Message
	after := max(lo, 1) - 1
	for after+1 < hi {
		// At most this many messages are in (after, hi): asking for no
		// more bounds how many past hi are read for nothing.
		n := int(min(hi-after-1, peekMax))
		page, err := s.Queues.PeekAfter(ctx, dlq, after, n)
		if err != nil {
			return nil, err
		}
		for _, m := range page {
			if m.Seq >= hi {
				return out, nil
			}
			out = append(out, m)
			after = m.Seq
		}
		if len(page) < n {
			break
		}
	}
	return out, nil
}

// nextSeq is the position of the first message of dlq after position
// after; false when there is none.
func (s *Store) nextSeq(ctx context.Context, dlq string, after uint64) (uint64, bool, error) {
	page, err := s.Queues.PeekAfter(ctx, dlq, after, 1)
	if err != nil || len(page) == 0 {
		return 0, false, err
	}
	return page[0].Seq, true, nil
}

// bounds are the positions of the first and the last message of dlq, 0
// when it is empty. The queue's depth tells where the last is when no
// letter was removed from between (a probe confirms it); else it is
// searched for, in about 2·log2(gap) probes.
func (s *Store) bounds(ctx context.Context, dlq string) (first, last uint64, err error) {
	first, ok, err := s.nextSeq(ctx, dlq, 0)
	if err != nil || !ok {
		return 0, 0, err
	}
	lo := first
	// A letter is at lo; hi, once known, has none after it.
	var hi uint64
	st, err := s.Queues.Stats(ctx, dlq)
	if err != nil {
		return 0, 0, err
	}
	if guess := lo + st.Depth - 1; st.Depth > 1 {
		// Without gaps the last letter is at guess; with gaps after it.
		n, ok, err := s.nextSeq(ctx, dlq, guess-1)
		switch {
		case err != nil:
			return 0, 0, err
		case ok:
			lo = n
		default:
			hi = guess - 1 // removed meanwhile
		}
	}
	if hi == 0 {
		for step := uint64(1); ; step *= 2 {
			n, ok, err := s.nextSeq(ctx, dlq, lo+step-1)
			if err != nil {
				return 0, 0, err
			}
			if !ok {
				hi = lo + step - 1
				break
			}
			lo = n
		}
	}
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		n, ok, err := s.nextSeq(ctx, dlq, mid-1)
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			hi = mid - 1
		} else {
			lo = n
		}
	}
	return first, lo, nil
}
