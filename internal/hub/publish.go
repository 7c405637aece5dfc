package hub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/sluicehq/sluice/internal/service"
)

// Position is where an event was stored.
type Position struct {
	Partition int   `json:"partition"`
	Sequence  int64 `json:"sequence"`
}

// maxInflightRecords bounds the records of one partition sent but not yet
// acknowledged: enough to keep the store busy, few enough to bound memory
// (each record holds up to MaxRecordBytes until it is acknowledged).
const maxInflightRecords = 16

// HeaderEvents is the NATS header carrying a record's event count, so that
// lag can be counted from headers alone.
const HeaderEvents = "Sluice-Events"

// hubState is what publishing needs to know about a hub, cached.
type hubState struct {
	info    Info
	rr      atomic.Uint32
	deleted atomic.Bool
	// gone is closed when the hub is deleted (see forget): its batchers
	// then stop as soon as no publish is handing them events.
	gone chan struct{}

	startMu sync.Mutex // guards parts and each batcher's retirement
	parts   []*batcher // nil: no batcher runs for the partition
}

func (s *Service) state(ctx context.Context, name string) (*hubState, error) {
	s.mu.Lock()
	st := s.cache[name]
	s.mu.Unlock()
	if st != nil {
		return st, nil
	}
	info, err := s.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st = s.cache[name]; st == nil {
		st = &hubState{info: info, parts: make([]*batcher, info.Partitions), gone: make(chan struct{})}
		s.cache[name] = st
	}
	return st, nil
}

// forget drops a hub from the cache and tells its batchers to stop. It
// returns the batchers running at that moment.
func (s *Service) forget(name string) []*batcher {
	s.mu.Lock()
	st := s.cache[name]
	if st != nil {
		delete(s.cache, name)
	}
	s.mu.Unlock()
	if st == nil || !st.deleted.CompareAndSwap(false, true) {
		return nil
	}
	close(st.gone)
	st.startMu.Lock()
	defer st.startMu.Unlock()
	var running []*batcher
	for _, b := range st.parts {
		if b != nil {
			running = append(running, b)
		}
	}
	return running
}

// defaultBatcherIdle is how long a partition's batcher waits for events
// before it stops (Service.batcherIdle); the next publish to the partition
// starts another. Partitions no longer published to, and hubs deleted by
// another instance, hold no goroutines.
const defaultBatcherIdle = time.Minute

// batcher returns partition p's batcher, starting one if none runs, with a
// use taken: the caller hands it its events, then calls release. It returns
// nil when none runs and the service is stopping.
func (s *Service) batcher(st *hubState, p int) *batcher {
	st.startMu.Lock()
	defer st.startMu.Unlock()
	if b := st.parts[p]; b != nil {
		b.users.Add(1)
		return b
	}
	b := &batcher{
		s:       s,
		st:      st,
		hub:     st.info.Name,
		stream:  StreamName(st.info.Name, p),
		subj:    subject(st.info.Name, p),
		p:       p,
		in:      make(chan piece, 1024),
		acks:    make(chan *sentRecord, maxInflightRecords),
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
		// A record id only needs to be unique within the stream's
		// duplicate window.
		idPrefix: nuid.Next() + ".",
	}
	started := s.life.Go(func() {
		var acks sync.WaitGroup
		acks.Go(b.ack)
		b.run()
		acks.Wait()
	})
	if !started {
		return nil
	}
	b.users.Add(1)
	st.parts[p] = b
	return b
}

// release gives back a use taken by Service.batcher, once the caller's
// events are handed over (or will not be).
func (b *batcher) release() {
	if b.users.Add(-1) == 0 && b.retiring.Load() {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// retire removes the batcher from its hub if nobody is handing it events
// and it holds none, and reports whether it did: run then returns.
// Records in flight are still acknowledged by ack.
func (b *batcher) retire() bool {
	b.st.startMu.Lock()
	defer b.st.startMu.Unlock()
	// A publisher takes its use under startMu before sending: with no use
	// taken and nothing queued, nothing more can reach this batcher once
	// it is no longer in parts.
	if b.users.Load() > 0 || len(b.in) > 0 || b.curCount > 0 {
		return false
	}
	if b.st.parts[b.p] == b {
		b.st.parts[b.p] = nil
	}
	return true
}

// detach removes the batcher from its hub if nobody is handing it events,
// and reports whether it did: as retire, but with events queued, for a
// stop. New publishes then find no batcher and, the service stopping,
// start none.
func (b *batcher) detach() bool {
	b.st.startMu.Lock()
	defer b.st.startMu.Unlock()
	if b.users.Load() > 0 {
		return false
	}
	if b.st.parts[b.p] == b {
		b.st.parts[b.p] = nil
	}
	return true
}

// call is one Publish call waiting for its events to be stored.
type call struct {
	pos       []Position
	acked     []bool // nil unless the caller asked which events were stored
	remaining atomic.Int64
	done      chan struct{}
	errMu     sync.Mutex
	err       error
}

func (c *call) finish(n int, err error) {
	if err != nil {
		c.errMu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.errMu.Unlock()
	}
	if c.remaining.Add(-int64(n)) == 0 {
		close(c.done)
	}
}

// piece is a run of one call's events bound for one partition.
type piece struct {
	c      *call
	events []*Event
	idx    []int32 // index of each event in c.pos
}

// Publish stores events in the hub and returns their positions, in the order
// given. It returns once every event is stored under the server's sync
// setting. Events with a partition key go to the key's partition; events with
// neither key nor explicit partition go, all together, to the next partition
// in turn. Every event is validated before any is written: on a validation
// error nothing is stored. Publish does not retain events after it returns.
//
// An event with a MessageID that the hub stored within its duplicate window,
// or that an earlier event of the same call carries, is not stored again:
// its position is the stored event's (see dedupe.go). Events without one
// cost nothing more.
func (s *Service) Publish(ctx context.Context, name string, events []Event) ([]Position, error) {
	if len(events) == 0 {
		return nil, nil
	}
	st, err := s.state(ctx, name)
	if err != nil {
		return nil, err
	}
	n := st.info.Partitions
	target := make([]int32, len(events))
	rr := -1
	single, withIDs := true, false
	for i := range events {
		e := &events[i]
		if size := e.Size(); size > s.opts.MaxEventBytes {
			return nil, fmt.Errorf("%w: event %d is %d bytes, the limit is %d bytes: split it or store the payload elsewhere and send a reference", ErrTooLarge, i, size, s.opts.MaxEventBytes)
		}
		switch {
		case e.HasPartition:
			if e.Partition < 0 || e.Partition >= n {
				return nil, fmt.Errorf("%w partition %d for event %d: hub %s has partitions 0 to %d", ErrInvalid, e.Partition, i, name, n-1)
			}
			target[i] = int32(e.Partition)
		case e.PartitionKey != "":
			target[i] = int32(PartitionForKey(e.PartitionKey, n))
		default:
			if rr < 0 {
				rr = int(st.rr.Add(1) % uint32(n))
			}
			target[i] = int32(rr)
		}
		if target[i] != target[0] {
			single = false
		}
		if e.MessageID != "" {
			if err := ValidateMessageID(e.MessageID); err != nil {
				return nil, fmt.Errorf("event %d: %w", i, err)
			}
			withIDs = true
		}
	}
	if withIDs {
		return s.publishOnce(ctx, st, events, target)
	}
	c, err := s.enqueue(ctx, st, events, target, single, nil)
	if err != nil {
		return nil, err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("hub: publish to %s: %w", name, ctx.Err())
	}
	if c.err != nil {
		if errors.Is(c.err, ErrNotFound) {
			s.forget(name)
		}
		return nil, c.err
	}
	return c.pos, nil
}

// enqueue hands events, bound for partitions target (all target[0] when
// single), to their partitions' batchers as one call. If acked is not nil,
// acked[i] is set once event i is stored. When not every piece could be
// handed over, the others are finished with the error: the call still
// completes once the pieces handed over are stored (or failed).
func (s *Service) enqueue(ctx context.Context, st *hubState, events []Event, target []int32, single bool, acked []bool) (*call, error) {
	c := &call{pos: make([]Position, len(events)), acked: acked, done: make(chan struct{})}
	c.remaining.Store(int64(len(events)))
	var pieces map[int32]*piece
	if single {
		pc := &piece{c: c, events: make([]*Event, len(events)), idx: make([]int32, len(events))}
		for i := range events {
			pc.events[i], pc.idx[i] = &events[i], int32(i)
		}
		pieces = map[int32]*piece{target[0]: pc}
	} else {
		pieces = make(map[int32]*piece)
		for i := range events {
			pc := pieces[target[i]]
			if pc == nil {
				pc = &piece{c: c}
				pieces[target[i]] = pc
			}
			pc.events = append(pc.events, &events[i])
			pc.idx = append(pc.idx, int32(i))
		}
	}
	var err error
	stopping := s.life.Stopping()
	for p, pc := range pieces {
		select {
		case <-stopping:
			// Take no new work, even where a batcher still runs.
			err = cmp.Or(err, s.stoppedErr(st))
		default:
		}
		if err == nil {
			b := s.batcher(st, int(p))
			if b == nil {
				err = s.stoppedErr(st)
				c.finish(len(pc.events), err)
				continue
			}
			select {
			case b.in <- *pc:
				b.release()
				continue
			case <-ctx.Done():
				// Pieces already handed over are still stored; the caller
				// only learns that the publish did not complete.
				err = fmt.Errorf("hub: publish to %s: %w", st.info.Name, ctx.Err())
			case <-stopping:
				err = s.stoppedErr(st)
			}
			b.release()
		}
		c.finish(len(pc.events), err)
	}
	return c, err
}

// batcher packs the pieces sent to one partition into records.
type batcher struct {
	s        *Service
	st       *hubState
	hub      string
	stream   string
	subj     string
	p        int
	in       chan piece
	acks     chan *sentRecord
	inflight atomic.Int32
	// users counts the publishers handing events to the batcher (see
	// Service.batcher); retiring is set once its hub is deleted, and wake
	// then tells run when the last publisher is done.
	users    atomic.Int32
	retiring atomic.Bool
	wake     chan struct{}
	stopped  chan struct{} // closed when run and ack have returned

	cur      []piece
	curBytes int
	curCount int
	// Each record's Nats-Msg-Id is idPrefix (unique to this batcher) and
	// the count of records it sent.
	idPrefix string
	sent     uint64

	// Of the ack goroutine: when streamGone last asked, and the answer.
	checkedAt time.Time
	gone      bool
}

type sentRecord struct {
	msg    *nats.Msg // carries the record's Nats-Msg-Id, for a resend
	sentAt time.Time
	fut    jetstream.PubAckFuture
	err    error
	pieces []piece
	buf    *[]byte // the record's bytes, pooled again once acknowledged
}

// duplicateWindow is the hub streams' JetStream duplicate window: a
// record sent again with the same Nats-Msg-Id within it is not stored
// twice, and its acknowledgement gives the stored copy's sequence.
const duplicateWindow = time.Minute

// defaultResendFor bounds how long after its first send a record whose
// acknowledgement was lost is sent again (Service.resendFor): well inside
// duplicateWindow, so that a resend can never store it twice.
const defaultResendFor = duplicateWindow * 2 / 3

// recordBufs recycles record buffers: large, so allocating and zeroing one
// per record costs more than the rest of packing.
var recordBufs = sync.Pool{New: func() any { return new([]byte) }}

func (s *Service) stoppedErr(st *hubState) error {
	return fmt.Errorf("hub: publish to %s: the service is %w", st.info.Name, service.ErrStopped)
}

func (b *batcher) run() {
	defer close(b.acks)
	stopping := b.s.life.Stopping()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	idle := time.NewTimer(b.s.batcherIdle)
	defer idle.Stop()
	gone := b.st.gone
	for {
		select {
		case pc := <-b.in:
			b.add(pc)
		case <-stopping:
			// Once no publisher is handing it events and none can get it
			// any more, store what it holds and end.
			b.retiring.Store(true)
			for !b.detach() {
				<-b.wake
			}
			b.drain()
			b.flush()
			return
		case <-gone:
			gone = nil // closed: select it once
			b.retiring.Store(true)
			if b.retire() {
				return
			}
			continue
		case <-b.wake:
			if b.retire() {
				return
			}
			continue
		case <-idle.C:
			if b.retire() {
				return
			}
			idle.Reset(b.s.batcherIdle)
			continue
		}
		if b.inflight.Load() == 0 {
			// Nothing in flight: store what is queued right away, so an
			// idle partition adds no linger to a publish.
			b.drain()
			b.flush()
		} else {
			linger.Reset(b.s.opts.Linger)
		collect:
			for b.curCount > 0 {
				select {
				case pc := <-b.in:
					b.add(pc)
				case <-linger.C:
					break collect
				case <-stopping:
					break collect
				}
			}
			linger.Stop()
			b.flush()
		}
		if b.retiring.Load() && b.retire() {
			return
		}
		idle.Reset(b.s.batcherIdle)
	}
}

func (b *batcher) drain() {
	for {
		select {
		case pc := <-b.in:
			b.add(pc)
		default:
			return
		}
	}
}

// add appends a piece to the current record, storing records as they fill.
func (b *batcher) add(pc piece) {
	maxBytes := b.s.opts.MaxRecordBytes
	for len(pc.events) > 0 {
		fit := 0
		for fit < len(pc.events) && b.curCount+fit < MaxEventsPerRecord {
			e := pc.events[fit]
			sz := e.Size() + recordOverhead(e)
			if b.curCount+fit > 0 && b.curBytes+sz > maxBytes {
				break
			}
			b.curBytes += sz
			fit++
		}
		if fit == 0 {
			b.flush()
			continue
		}
		b.cur = append(b.cur, piece{c: pc.c, events: pc.events[:fit], idx: pc.idx[:fit]})
		b.curCount += fit
		pc.events, pc.idx = pc.events[fit:], pc.idx[fit:]
		if len(pc.events) > 0 {
			b.flush()
		}
	}
	if b.curCount >= MaxEventsPerRecord || b.curBytes >= maxBytes {
		b.flush()
	}
}

func (b *batcher) flush() {
	if b.curCount == 0 {
		return
	}
	events := make([]*Event, 0, b.curCount)
	for _, pc := range b.cur {
		events = append(events, pc.events...)
	}
	buf := recordBufs.Get().(*[]byte)
	data := appendRecord((*buf)[:0], time.Now(), events)
	*buf = data
	b.sent++
	msg := &nats.Msg{Subject: b.subj, Data: data, Header: nats.Header{
		HeaderEvents:          []string{strconv.Itoa(b.curCount)},
		jetstream.MsgIDHeader: []string{b.idPrefix + strconv.FormatUint(b.sent, 36)},
	}}
	sentAt := time.Now()
	fut, err := b.s.publishAsync(msg, jetstream.WithExpectStream(b.stream))
	b.inflight.Add(1)
	b.acks <- &sentRecord{msg: msg, sentAt: sentAt, fut: fut, err: err, pieces: b.cur, buf: buf}
	b.cur, b.curBytes, b.curCount = nil, 0, 0
}

// ack completes the calls of stored records, in the order they were sent.
func (b *batcher) ack() {
	defer close(b.stopped)
	hard := b.s.life.Context().Done()
	for sr := range b.acks {
		seq, err := b.await(sr, hard)
		if err != nil {
			err = b.publishError(err)
		}
		i := 0
		for _, pc := range sr.pieces {
			for j := range pc.events {
				pc.c.pos[pc.idx[j]] = Position{Partition: b.p, Sequence: SequenceOf(seq, i)}
				if err == nil && pc.c.acked != nil {
					pc.c.acked[pc.idx[j]] = true
				}
				i++
			}
			pc.c.finish(len(pc.events), err)
		}
		// Once acknowledged, the server holds its own copy: the bytes go to
		// the tail's readers or back to the pool. (After an error the
		// client may still hold the message; leave it.)
		if err == nil && (b.s.tails == nil || !b.s.tails.publish(b.stream, seq, *sr.buf)) {
			recordBufs.Put(sr.buf)
		}
		b.inflight.Add(-1)
	}
}

// await waits for a record's acknowledgement and returns its sequence.
// When the acknowledgement is lost (the engine stored the record, or not,
// and the answer never came), the record is sent again with the same
// Nats-Msg-Id until an answer comes, for at most Service.resendFor after the first
// send: a record stored the first time is not stored again, and the
// answer, the first copy's sequence, is exact. A record lost before the
// engine stored it is stored by the resend, after the records sent since:
// events of one partition keep their order except across such a loss.
func (b *batcher) await(sr *sentRecord, hard <-chan struct{}) (uint64, error) {
	if sr.err != nil {
		return 0, sr.err
	}
	stopped := errors.New("the service stopped before the record was acknowledged")
	fut, resent := sr.fut, false
	pause := 100 * time.Millisecond
	for {
		var err error
		select {
		case a := <-fut.Ok():
			return a.Sequence, nil
		case err = <-fut.Err():
		case <-hard:
			return 0, stopped
		}
		lost := errors.Is(err, jetstream.ErrAsyncPublishTimeout)
		// Any other answer to the first send means the engine did not
		// store the record. After a lost acknowledgement, though, a
		// resend that finds nobody to answer says nothing of the first
		// send: keep trying.
		if !lost && (!resent || !IsEngineDown(err)) {
			return 0, err
		}
		if time.Since(sr.sentAt) >= b.s.resendFor {
			return 0, err
		}
		if !lost {
			select {
			case <-time.After(pause):
			case <-hard:
				return 0, stopped
			}
			pause = min(2*pause, 2*time.Second)
		}
		b.s.resends.Add(1)
		resent = true
		if fut, err = b.s.publishAsync(sr.msg, jetstream.WithExpectStream(b.stream)); err != nil {
			fut = failedFuture{err}
		}
	}
}

// failedFuture is the future of a resend that could not be sent.
type failedFuture struct{ err error }

func (f failedFuture) Ok() <-chan *jetstream.PubAck { return nil }
func (f failedFuture) Err() <-chan error {
	c := make(chan error, 1)
	c <- f.err
	return c
}
func (f failedFuture) Msg() *nats.Msg { return nil }

// publishAsync publishes msg asynchronously, waiting while the connection's
// window of unacknowledged publishes is full (backpressure). The wait is
// bounded: acknowledgements that do not come time out (PublishAckTimeout)
// and free the window, and a hard stop ends it.
func (s *Service) publishAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	fut, err := s.js.PublishMsgAsync(msg, opts...)
	for errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
		select {
		case <-s.js.PublishAsyncComplete():
		case <-time.After(100 * time.Millisecond):
		case <-s.life.Context().Done():
			return nil, fmt.Errorf("the service stopped while the engine's window of unacknowledged records was full: %w", err)
		}
		fut, err = s.js.PublishMsgAsync(msg, opts...)
	}
	return fut, err
}

// publishError says why a record was not stored, or not confirmed. It
// answers ErrNotFound only when the engine confirms that the partition's
// stream is gone; an engine that does not answer, or a stream without a
// leader for the moment, is ErrUnavailable, with whether anything may have
// been stored.
func (b *batcher) publishError(err error) error {
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return b.notFound()
	case errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse):
		// Nobody took the record: the stream is gone, or it has no
		// leader right now.
		if b.streamGone() {
			return b.notFound()
		}
		return fmt.Errorf("%w: partition %d of hub %s has no leader at the moment (a node is down or a leader is being elected): "+
			"nothing of this publish was stored there; retry in a few seconds", ErrUnavailable, b.p, b.hub)
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return fmt.Errorf("%w: the engine did not confirm a record of partition %d of hub %s in time: its events may or may not be stored "+
			"(publishing them again stores them twice, unless they carry message ids)", ErrUnavailable, b.p, b.hub)
	}
	return fmt.Errorf("hub: store record in %s partition %d: %w", b.hub, b.p, unavailable(err))
}

// notFound says what became of a partition the engine says is gone. A
// hub deleted (or being deleted) is ErrNotFound. A hub still defined lost
// the partition's storage: the partition is recreated (RestorePartition),
// and the publish is ErrUnavailable, to be retried. A hub deleted and
// created again meanwhile is ErrUnavailable too, and forgotten, so that a
// retry publishes to the new one.
func (b *batcher) notFound() error {
	gone := fmt.Errorf("%w: %s (partition %d is gone)", ErrNotFound, b.hub, b.p)
	ctx, cancel := context.WithTimeout(b.s.life.Context(), 5*time.Second)
	defer cancel()
	info, err := b.s.Get(ctx, b.hub)
	if errors.Is(err, ErrNotFound) {
		return gone
	}
	if err == nil && !info.Created.Equal(b.st.info.Created) {
		b.s.forget(b.hub)
		return fmt.Errorf("%w: hub %s was deleted and created again while this publish was under way: nothing of it was stored in partition %d; retry",
			ErrUnavailable, b.hub, b.p)
	}
	if err == nil {
		_, err = b.s.restoreMissing(ctx, info, b.p, 0)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return gone
	case err != nil:
		return fmt.Errorf("%w: partition %d of hub %s is missing from the engine and could not be recreated yet (%v): nothing of this publish was stored there; retry",
			ErrUnavailable, b.p, b.hub, err)
	}
	return fmt.Errorf("%w: partition %d of hub %s was missing from the engine (events stored there before are lost) and is recreated: "+
		"nothing of this publish was stored there; retry", ErrUnavailable, b.p, b.hub)
}

// streamGone reports whether the engine says the partition's stream does
// not exist. It asks at most once a second (records in flight fail
// together), and an engine that does not answer within 2s is not an
// answer: the stream is then taken to exist.
func (b *batcher) streamGone() bool {
	if now := time.Now(); now.Sub(b.checkedAt) >= time.Second {
		ctx, cancel := context.WithTimeout(b.s.life.Context(), 2*time.Second)
		_, err := b.s.js.Stream(ctx, b.stream)
		cancel()
		b.checkedAt, b.gone = now, errors.Is(err, jetstream.ErrStreamNotFound)
	}
	return b.gone
}
