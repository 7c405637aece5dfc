package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// StartKind says where reading a partition begins.
type StartKind int

const (
	// StartEarliest reads from the oldest stored event.
	StartEarliest StartKind = iota
	// StartLatest reads only events stored after the reader opens.
	StartLatest
	// StartTime reads from the first record enqueued at or after Time.
	StartTime
	// StartAfter reads the events after sequence number After.
	StartAfter
)

// Start is a reading position.
type Start struct {
	Kind  StartKind
	Time  time.Time
	After int64
}

// CorruptRecordError is returned by Reader.Next for a stored record that
// cannot be decoded. The reader has moved past it; Data holds its bytes so
// the caller can keep them (dead-letter them) before going on.
type CorruptRecordError struct {
	Partition int
	// Sequence is the sequence number of the record's first event slot.
	Sequence int64
	Data     []byte
	Err      error
}

func (e *CorruptRecordError) Error() string {
	return fmt.Sprintf("partition %d sequence %d: %v", e.Partition, e.Sequence, e.Err)
}

func (e *CorruptRecordError) Unwrap() error { return e.Err }

// Reader reads one partition in order, a record at a time: from the store,
// and once caught up from the tail when the Service has one (see tail.go).
type Reader struct {
	s         *Service
	hub       string
	partition int
	stream    string
	it        jetstream.MessagesContext // nil while reading the tail
	cons      jetstream.Consumer        // it's consumer
	tail      *tailSub                  // nil without a tail
	last      uint64                    // stream sequence of the last record read
	delivered uint64                    // it's delivery sequence of the last record read
	from      jetstream.ConsumerConfig  // the start position's, for a new consumer before the first record
	// Events of record skipRec below skipIdx are before the start position.
	skipRec uint64
	skipIdx int
	// want is the first record the reader asked for; a larger first
	// delivered record means older records expired unread.
	want    uint64
	gapSeen bool
	// OnGap, if set, is called once when records between the start position
	// and the first stored record had already expired.
	OnGap func(wantRecord, gotRecord uint64)
}

// tailIdleCheck is how long a reader on the tail waits for a record before
// it asks the store whether someone else wrote one.
const tailIdleCheck = time.Second

// OpenReader starts reading a partition at from.
func (s *Service) OpenReader(ctx context.Context, name string, partition int, from Start) (*Reader, error) {
	cfg := jetstream.ConsumerConfig{}
	r := &Reader{s: s, hub: name, partition: partition, stream: StreamName(name, partition)}
	switch from.Kind {
	case StartEarliest:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case StartLatest:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	case StartTime:
		t := from.Time
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &t
	case StartAfter:
		rec, idx := SplitSequence(from.After + 1)
		if from.After < 0 {
			rec, idx = 1, 0
		}
		if rec == 0 {
			rec, idx = 1, 0
		}
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = rec
		r.skipRec, r.skipIdx, r.want = rec, idx, rec
	default:
		return nil, fmt.Errorf("%w start kind %d", ErrInvalid, from.Kind)
	}
	if s.tails != nil {
		// Subscribe before reading the store, so that every record stored
		// after the store's last one at switch-over is on the tail.
		r.tail = s.tails.subscribe(r.stream)
	}
	r.from = cfg
	if err := r.follow(ctx, cfg); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// readPullExpiry is how long one pull request of a reader lasts. A pull the
// engine loses (seen on a cluster's fresh stream, and when a leader
// moves) is noticed by its missing heartbeats, at half of it, or replaced
// at its end: nats.go's default of 30 s stalled a partition that long.
const readPullExpiry = 5 * time.Second

// readerInactive is how long the server keeps a reader's consumer after its
// last pull, when the reader could not delete it (its process died).
const readerInactive = 5 * time.Minute

// follow (re)starts reading the store, from cfg's start position, on an
// ephemeral consumer of its own: one copy in memory, acknowledging
// nothing. A failure (the consumer lost with its server, heartbeats
// missing while a leader is elected) ends Next with an error, and the
// caller opens a new reader from where it is: unlike nats.go's ordered
// consumer, whose recovery retries without end and without a context, a
// reader here never waits on the engine beyond its caller's context.
func (r *Reader) follow(ctx context.Context, cfg jetstream.ConsumerConfig) error {
	cfg.Name = "sluice-read-" + nuid.Next()
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.MemoryStorage = true
	cfg.Replicas = 1
	cfg.InactiveThreshold = readerInactive
	cons, err := r.s.opts.ReadJS.CreateConsumer(ctx, r.stream, cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: %s (partition %d)", ErrNotFound, r.hub, r.partition)
	}
	if err != nil {
		return fmt.Errorf("hub: open reader on %s partition %d: %w", r.hub, r.partition, unavailable(err))
	}
	it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(512, r.s.readBytes), jetstream.PullExpiry(readPullExpiry),
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return fmt.Errorf("hub: open reader on %s partition %d: %w", r.hub, r.partition, err)
	}
	r.it, r.cons, r.delivered = it, cons, 0
	return nil
}

// stopStore stops reading the store and deletes the reader's consumer,
// which the server would otherwise keep, idle, for five minutes (the
// inactivity threshold of ordered consumers): a reader going over to the
// tail, or closed, leaves nothing behind.
func (r *Reader) stopStore() {
	if r.it == nil {
		return
	}
	r.it.Stop()
	r.it = nil
	info := r.cons.CachedInfo()
	r.cons = nil
	if info == nil {
		return
	}
	s, stream := r.s, r.stream
	del := func(parent context.Context) {
		ctx, cancel := context.WithTimeout(parent, 10*time.Second)
		defer cancel()
		err := s.opts.ReadJS.DeleteConsumer(ctx, stream, info.Name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			s.log.Debug("hub: cannot delete a reader's consumer; the server removes it when idle", "stream", stream, "err", err)
		}
	}
	// In the background, so that the reader goes on at once; Stop waits
	// for it (and gives it up on a hard stop). Once Stop has begun, here.
	if !s.life.Go(func() { del(s.life.Context()) }) {
		del(context.Background())
	}
}

// followAfterLast goes back to reading the store after the last record read.
func (r *Reader) followAfterLast(ctx context.Context) error {
	if r.last == 0 {
		return r.follow(ctx, r.from) // nothing read yet: from the start position
	}
	return r.follow(ctx, jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: r.last + 1})
}

// Next returns the events of the next record, waiting for one to be stored.
// It returns ctx's error when ctx ends first. A record that cannot be
// decoded is returned as a *CorruptRecordError, after which Next goes on.
func (r *Reader) Next(ctx context.Context) ([]StoredEvent, error) {
	for {
		if r.it == nil {
			rec, err := r.nextTail(ctx)
			if err != nil {
				return nil, err
			}
			if rec.data == nil {
				continue // back on the store
			}
			return r.decode(rec.data, rec.seq)
		}
		msg, err := r.it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// The consumer failed (lost with its server, or silent while a
			// leader is elected): read on from a new one, or say why not.
			r.stopStore()
			if ferr := r.followAfterLast(ctx); ferr != nil {
				return nil, fmt.Errorf("hub: read %s partition %d: %w (and again: %w)", r.hub, r.partition, unavailable(err), ferr)
			}
			continue
		}
		meta, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("hub: read %s partition %d: %w", r.hub, r.partition, err)
		}
		if meta.Sequence.Consumer != r.delivered+1 {
			// A record lost between the server and here (a slow reader's
			// messages dropped): read again from after the last one read.
			r.stopStore()
			if err := r.followAfterLast(ctx); err != nil {
				return nil, fmt.Errorf("hub: read %s partition %d after a gap in delivery: %w", r.hub, r.partition, err)
			}
			continue
		}
		r.delivered = meta.Sequence.Consumer
		seq := meta.Sequence.Stream
		if r.want > 0 && !r.gapSeen {
			r.gapSeen = true
			if seq > r.want && r.OnGap != nil {
				r.OnGap(r.want, seq)
			}
		}
		r.last = seq
		if r.tail != nil && meta.NumPending == 0 {
			// Caught up: what follows is on the tail.
			r.stopStore()
		}
		events, err := r.decode(msg.Data(), seq)
		if err == nil && seq == r.skipRec && r.skipIdx > 0 {
			if r.skipIdx >= len(events) {
				continue
			}
			events = events[r.skipIdx:]
		}
		return events, err
	}
}

func (r *Reader) decode(data []byte, seq uint64) ([]StoredEvent, error) {
	events, err := DecodeRecord(data, r.partition, seq)
	if err != nil {
		return nil, &CorruptRecordError{Partition: r.partition, Sequence: SequenceOf(seq, 0), Data: data, Err: err}
	}
	return events, nil
}

// nextTail returns the record after the last one from the tail. When the
// tail cannot provide it (a gap, or nothing arrives while the store has
// more), it goes back to the store and returns an empty record.
func (r *Reader) nextTail(ctx context.Context) (tailRecord, error) {
	idle := time.NewTimer(tailIdleCheck)
	defer idle.Stop()
	for {
		select {
		case rec, ok := <-r.tail.ch:
			if !ok {
				return tailRecord{}, r.gone()
			}
			r.tail.took(rec)
			switch {
			case rec.seq <= r.last:
				continue // already read from the store
			case rec.seq == r.last+1:
				r.last = rec.seq
				return rec, nil
			}
			return tailRecord{}, r.followAfterLast(ctx)
		case <-idle.C:
			st, err := r.s.js.Stream(ctx, r.stream)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return tailRecord{}, r.gone()
			}
			if err != nil {
				if ctx.Err() != nil {
					return tailRecord{}, ctx.Err()
				}
				return tailRecord{}, fmt.Errorf("hub: read %s partition %d: %w", r.hub, r.partition, err)
			}
			if last := st.CachedInfo().State.LastSeq; last < r.last {
				// The stream ends before what was read: it was deleted and
				// created again.
				return tailRecord{}, r.gone()
			} else if last > r.last {
				return tailRecord{}, r.followAfterLast(ctx)
			}
			idle.Reset(tailIdleCheck)
		case <-ctx.Done():
			return tailRecord{}, ctx.Err()
		}
	}
}

func (r *Reader) gone() error {
	return fmt.Errorf("%w: %s partition %d was deleted while being read", ErrNotFound, r.hub, r.partition)
}

// Close stops the reader.
func (r *Reader) Close() {
	r.stopStore()
	if r.tail != nil {
		r.s.tails.unsubscribe(r.tail)
	}
}
