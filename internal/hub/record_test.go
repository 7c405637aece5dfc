package hub

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 123456789).UTC()
	events := []*Event{
		{Body: []byte("hello")},
		{Body: nil, PartitionKey: "device-1", Properties: map[string]string{"a": "1", "b": ""}},
		{Body: make([]byte, 70000), PartitionKey: "ü"},
	}
	rec := appendRecord(nil, now, events)
	got, err := DecodeRecord(rec, 3, 42)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, e := range events {
		require.Equal(t, len(e.Body), len(got[i].Body))
		require.Equal(t, string(e.Body), string(got[i].Body))
		require.Equal(t, e.PartitionKey, got[i].PartitionKey)
		if len(e.Properties) == 0 {
			require.Nil(t, got[i].Properties)
		} else {
			require.Equal(t, e.Properties, got[i].Properties)
		}
		require.Equal(t, 3, got[i].Partition)
		require.Equal(t, SequenceOf(42, i), got[i].Sequence)
		require.True(t, now.Equal(got[i].EnqueuedTime))
	}
	n, err := RecordCount(rec)
	require.NoError(t, err)
	require.Equal(t, 3, n)
}

func TestRecordOverheadBound(t *testing.T) {
	t.Parallel()
	e := &Event{Body: make([]byte, 300), PartitionKey: "k", Properties: map[string]string{"x": "yy", "z": ""}}
	rec := appendRecord(nil, time.Now(), []*Event{e})
	require.LessOrEqual(t, len(rec), recordHeaderMax+e.Size()+recordOverhead(e))
}

func TestDecodeRecordRejectsCorruption(t *testing.T) {
	t.Parallel()
	good := appendRecord(nil, time.Now(), []*Event{{Body: []byte("abc"), PartitionKey: "k"}})
	cases := map[string][]byte{
		"empty":       nil,
		"bad magic":   append([]byte{0}, good[1:]...),
		"bad version": append([]byte{recordMagic, 9}, good[2:]...),
		"truncated":   good[:len(good)-1],
		"trailing":    append(append([]byte{}, good...), 0),
		"zero events": appendRecord(nil, time.Now(), nil),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeRecord(data, 0, 1)
			require.ErrorIs(t, err, ErrCorruptRecord)
		})
	}
}

func TestSequenceIsMonotonic(t *testing.T) {
	t.Parallel()
	prev := int64(-1)
	for rec := uint64(1); rec < 4; rec++ {
		for _, idx := range []int{0, 1, MaxEventsPerRecord - 1} {
			s := SequenceOf(rec, idx)
			require.Greater(t, s, prev)
			r, i := SplitSequence(s)
			require.Equal(t, rec, r)
			require.Equal(t, idx, i)
			prev = s
		}
	}
}

// The partition of a key is an on-disk contract: these values must never change.
func TestPartitionForKeyIsStable(t *testing.T) {
	t.Parallel()
	// FNV-1a of the empty string is its offset basis 0x811c9dc5, which is 1 modulo 4.
	require.Equal(t, 1, PartitionForKey("", 4))
	want := map[string]int{}
	for i := range 8 {
		k := fmt.Sprintf("device-%d", i)
		want[k] = PartitionForKey(k, 32)
	}
	require.Equal(t, map[string]int{
		"device-0": 30, "device-1": 17, "device-2": 24, "device-3": 11,
		"device-4": 10, "device-5": 29, "device-6": 4, "device-7": 23,
	}, want)
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, time.Unix(5, 0), []*Event{{Body: []byte("x"), PartitionKey: "k", Properties: map[string]string{"p": "v"}}}))
	f.Add([]byte{recordMagic, recordVersion, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := DecodeRecord(data, 1, 7)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to a record that decodes the same.
		in := make([]*Event, len(events))
		for i := range events {
			in[i] = &Event{Body: events[i].Body, PartitionKey: events[i].PartitionKey, Properties: events[i].Properties}
		}
		again, err := DecodeRecord(appendRecord(nil, events[0].EnqueuedTime, in), 1, 7)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if len(again) != len(events) {
			t.Fatalf("re-encoded record has %d events, want %d", len(again), len(events))
		}
	})
}
