package hub

import (
	"slices"
	"sync"
	"sync/atomic"
)

// The tail: when one Service is the only writer to its hubs (the embedded
// engine without a listener), a reader that has caught up with a partition
// takes the records this Service stores straight from the publisher, after
// they are durable, instead of reading them back from the store.
//
// Reading back costs the server a load, a copy and a delivery per record
// and the client another copy, and it has a worse side effect: a block the
// store has read from recently keeps its cache in memory for 10 s after it
// is full (nats-server's fixed cache expiry), so a reader that keeps up with
// a fast writer pins about 10 s of written data. Blocks that are written but
// not read back release their cache as soon as they are full.
//
// The tail is only an accelerator: a reader checks that every record follows
// the previous one and reads from the store again at any gap (a record
// dropped because the reader fell behind, or written by someone else).

// A reader's tail holds up to tailBytes of records (and at most tailRecords
// records) that it has not taken yet; further ones are dropped for it, and
// it reads them from the store. Generous, because a reader that falls back
// to the store while near its end pins the store's caches (see above).
const (
	tailBytes   = 16 << 20
	tailRecords = 1024
)

// tailRecord is a stored record: its stream sequence and its bytes.
type tailRecord struct {
	seq  uint64
	data []byte
}

type tailSub struct {
	stream string
	ch     chan tailRecord
	bytes  atomic.Int64 // of the records in ch
}

// took accounts for a record received from ch.
func (sub *tailSub) took(rec tailRecord) { sub.bytes.Add(-int64(len(rec.data))) }

// tails holds the tail subscriptions of a Service by stream.
type tails struct {
	mu   sync.Mutex
	subs map[string][]*tailSub
}

func (t *tails) subscribe(stream string) *tailSub {
	sub := &tailSub{stream: stream, ch: make(chan tailRecord, tailRecords)}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.subs == nil {
		t.subs = map[string][]*tailSub{}
	}
	t.subs[stream] = append(t.subs[stream], sub)
	return sub
}

func (t *tails) unsubscribe(sub *tailSub) {
	t.mu.Lock()
	defer t.mu.Unlock()
	subs := slices.DeleteFunc(t.subs[sub.stream], func(s *tailSub) bool { return s == sub })
	if len(subs) == 0 {
		delete(t.subs, sub.stream)
	} else {
		t.subs[sub.stream] = subs
	}
}

// end closes the stream's subscriptions: the stream is gone.
func (t *tails) end(stream string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, sub := range t.subs[stream] {
		close(sub.ch)
	}
	delete(t.subs, stream)
}

// publish offers a stored record to the stream's tail subscriptions and
// reports whether it handed data over (the caller must then not reuse it).
// Each subscription gets its own bytes, since events alias them. A full
// subscription misses the record.
func (t *tails) publish(stream string, seq uint64, data []byte) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	subs := t.subs[stream]
	given := false
	for _, sub := range subs {
		if sub.bytes.Load()+int64(len(data)) > tailBytes {
			continue
		}
		d := data
		if given {
			d = slices.Clone(data)
		}
		select {
		case sub.ch <- tailRecord{seq: seq, data: d}:
			sub.bytes.Add(int64(len(d)))
			given = true
		default:
		}
	}
	return given
}
