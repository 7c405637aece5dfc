package hub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// A record is what a hub stores as one JetStream message: many events packed
// together so that one store (and one fsync) carries them all.
//
// Layout (all integers are Go varints, "u" = unsigned):
//
//	byte   magic (0x53 'S')
//	byte   version (1)
//	varint enqueued time, Unix nanoseconds (shared by every event of the record)
//	uvar   event count (1..MaxEventsPerRecord)
//	per event:
//	  uvar len + bytes   partition key
//	  uvar               property count
//	  per property: uvar len + bytes key, uvar len + bytes value
//	  uvar len + bytes   body
const (
	recordMagic   = 0x53
	recordVersion = 1
)

// ErrCorruptRecord is returned by DecodeRecord when the bytes are not a
// record this version can read.
var ErrCorruptRecord = errors.New("corrupt hub record")

// appendRecord encodes events into a record appended to dst.
func appendRecord(dst []byte, enqueued time.Time, events []*Event) []byte {
	dst = append(dst, recordMagic, recordVersion)
	dst = binary.AppendVarint(dst, enqueued.UnixNano())
	dst = binary.AppendUvarint(dst, uint64(len(events)))
	for _, e := range events {
		dst = appendBytes(dst, e.PartitionKey)
		dst = binary.AppendUvarint(dst, uint64(len(e.Properties)))
		for k, v := range e.Properties {
			dst = appendBytes(dst, k)
			dst = appendBytes(dst, v)
		}
		dst = binary.AppendUvarint(dst, uint64(len(e.Body)))
		dst = append(dst, e.Body...)
	}
	return dst
}

func appendBytes[T string | []byte](dst []byte, s T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// recordOverhead is an upper bound of the bytes a record adds around an
// event beyond Event.Size: length prefixes for the key, property count,
// each property's key and value, and the body.
func recordOverhead(e *Event) int {
	return 4*binary.MaxVarintLen32 + 2*binary.MaxVarintLen32*len(e.Properties)
}

const recordHeaderMax = 2 + binary.MaxVarintLen64 + binary.MaxVarintLen32

// DecodeRecord decodes the record stored at stream sequence recordSeq of the
// given partition. Bodies alias data; keys and properties are copied.
func DecodeRecord(data []byte, partition int, recordSeq uint64) ([]StoredEvent, error) {
	d := decoder{buf: data}
	if len(data) < 2 || data[0] != recordMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorruptRecord)
	}
	if data[1] != recordVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrCorruptRecord, data[1])
	}
	d.buf = data[2:]
	nanos := d.varint()
	count := d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	// Every event takes at least 3 bytes (key length, property count, body
	// length), which bounds the allocation below by the input size.
	if count == 0 || count > MaxEventsPerRecord || count > uint64(len(d.buf))/3 {
		return nil, fmt.Errorf("%w: bad event count %d", ErrCorruptRecord, count)
	}
	enqueued := time.Unix(0, nanos).UTC()
	events := make([]StoredEvent, count)
	for i := range events {
		ev := &events[i]
		ev.PartitionKey = string(d.bytes())
		if n := d.uvarint(); n > 0 {
			if n > uint64(len(d.buf))/2 {
				return nil, fmt.Errorf("%w: bad property count %d", ErrCorruptRecord, n)
			}
			ev.Properties = make(map[string]string, n)
			for range n {
				k := string(d.bytes())
				ev.Properties[k] = string(d.bytes())
			}
		}
		ev.Body = d.bytes()
		if d.err != nil {
			return nil, d.err
		}
		ev.Partition = partition
		ev.Sequence = SequenceOf(recordSeq, i)
		ev.EnqueuedTime = enqueued
	}
	if len(d.buf) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorruptRecord, len(d.buf))
	}
	return events, nil
}

// RecordCount returns the number of events in a record without decoding them.
func RecordCount(data []byte) (int, error) {
	if len(data) < 2 || data[0] != recordMagic || data[1] != recordVersion {
		return 0, ErrCorruptRecord
	}
	d := decoder{buf: data[2:]}
	d.varint()
	n := d.uvarint()
	if d.err != nil || n == 0 || n > MaxEventsPerRecord {
		return 0, ErrCorruptRecord
	}
	return int(n), nil
}

type decoder struct {
	buf []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = fmt.Errorf("%w: truncated integer", ErrCorruptRecord)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.err = fmt.Errorf("%w: truncated integer", ErrCorruptRecord)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.err = fmt.Errorf("%w: length %d past end", ErrCorruptRecord, n)
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}
