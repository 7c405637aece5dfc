package hub

import (
	"fmt"
	"hash/fnv"
	"time"
	"unicode/utf8"
)

// Event is one event as a producer hands it to a hub.
type Event struct {
	// Body is the opaque payload.
	Body []byte
	// Properties are application properties carried with the event.
	Properties map[string]string
	// PartitionKey, when set, selects the partition by hash (see PartitionForKey).
	// Events with the same key always land in the same partition.
	PartitionKey string
	// Partition is an explicit target partition, used when HasPartition is set.
	// An explicit partition wins over the partition key.
	Partition    int
	HasPartition bool
	// MessageID, when set, makes the publish idempotent: an event whose id
	// the hub has stored within its duplicate window (Options.DuplicateWindow)
	// is not stored again, and Publish returns the position of the stored
	// one. The id is not part of the stored event. Empty means none. See
	// ValidateMessageID for the allowed ids.
	MessageID string
}

// MaxMessageIDBytes bounds Event.MessageID.
const MaxMessageIDBytes = 128

// ValidateMessageID reports whether id can be an event's message id: at most
// MaxMessageIDBytes bytes of UTF-8 without control characters (U+0000 to
// U+001F, U+007F to U+009F), so that it prints and travels in an HTTP
// header. The empty id (none) is valid.
func ValidateMessageID(id string) error {
	if len(id) > MaxMessageIDBytes {
		return fmt.Errorf("%w message id: it is %d bytes, the limit is %d bytes", ErrInvalid, len(id), MaxMessageIDBytes)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w message id %q: it is not valid UTF-8", ErrInvalid, id)
	}
	for _, r := range id {
		if r < 0x20 || r >= 0x7f && r <= 0x9f {
			return fmt.Errorf("%w message id %q: it contains the control character U+%04X", ErrInvalid, id, r)
		}
	}
	return nil
}

// Size is the number of bytes the event occupies in a record, the figure
// compared with the hub's maximum event size.
func (e *Event) Size() int {
	n := len(e.Body) + len(e.PartitionKey)
	for k, v := range e.Properties {
		n += len(k) + len(v)
	}
	return n
}

// StoredEvent is an event as it was stored: the producer's event plus the
// position and time the hub assigned.
type StoredEvent struct {
	Body         []byte
	Properties   map[string]string
	PartitionKey string
	Partition    int
	// Sequence is monotonic per partition (see SequenceOf); it is not dense.
	Sequence     int64
	EnqueuedTime time.Time
}

// PartitionForKey maps a partition key to a partition: the 32-bit FNV-1a hash
// of the key's UTF-8 bytes, modulo the partition count. It is part of the
// on-disk contract and must never change: the same key must reach the same
// partition across versions and instances.
func PartitionForKey(key string, partitions int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(partitions))
}

// An event's sequence number is derived from the stream sequence of the
// record holding it and its index in that record, so it is monotonic per
// partition without any coordination between publishers:
//
//	sequence = recordSeq << indexBits | index
const (
	indexBits = 16
	// MaxEventsPerRecord bounds how many events one record may hold.
	MaxEventsPerRecord = 1 << indexBits
)

// SequenceOf returns the sequence number of the event at index in the record
// stored at stream sequence recordSeq.
func SequenceOf(recordSeq uint64, index int) int64 {
	return int64(recordSeq<<indexBits | uint64(index))
}

// SplitSequence is the inverse of SequenceOf.
func SplitSequence(seq int64) (recordSeq uint64, index int) {
	return uint64(seq) >> indexBits, int(seq & (MaxEventsPerRecord - 1))
}
