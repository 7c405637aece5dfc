package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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

// Reader reads one partition in order, a record at a time.
type Reader struct {
	hub       string
	partition int
	cons      jetstream.Consumer
	it        jetstream.MessagesContext
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

// OpenReader starts reading a partition at from.
func (s *Service) OpenReader(ctx context.Context, name string, partition int, from Start) (*Reader, error) {
	cfg := jetstream.OrderedConsumerConfig{}
	r := &Reader{hub: name, partition: partition}
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
	cons, err := s.opts.ReadJS.OrderedConsumer(ctx, StreamName(name, partition), cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: %s (partition %d)", ErrNotFound, name, partition)
	}
	if err != nil {
		return nil, fmt.Errorf("hub: open reader on %s partition %d: %w", name, partition, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(512, s.readBytes))
	if err != nil {
		return nil, fmt.Errorf("hub: open reader on %s partition %d: %w", name, partition, err)
	}
	r.cons, r.it = cons, it
	return r, nil
}

// Next returns the events of the next record, waiting for one to be stored.
// It returns ctx's error when ctx ends first. A record that cannot be
// decoded is returned as a *CorruptRecordError, after which Next goes on.
func (r *Reader) Next(ctx context.Context) ([]StoredEvent, error) {
	for {
		msg, err := r.it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("hub: read %s partition %d: %w", r.hub, r.partition, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("hub: read %s partition %d: %w", r.hub, r.partition, err)
		}
		seq := meta.Sequence.Stream
		if r.want > 0 && !r.gapSeen {
			r.gapSeen = true
			if seq > r.want && r.OnGap != nil {
				r.OnGap(r.want, seq)
			}
		}
		events, err := DecodeRecord(msg.Data(), r.partition, seq)
		if err != nil {
			return nil, &CorruptRecordError{Partition: r.partition, Sequence: SequenceOf(seq, 0), Data: msg.Data(), Err: err}
		}
		if seq == r.skipRec && r.skipIdx > 0 {
			if r.skipIdx >= len(events) {
				continue
			}
			events = events[r.skipIdx:]
		}
		return events, nil
	}
}

// Close stops the reader.
func (r *Reader) Close() {
	if r.it != nil {
		r.it.Stop()
	}
}
