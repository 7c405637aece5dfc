package pipeline

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestEncodeDecode(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 123_000_000, time.UTC)
	in := []Change{
		{Op: Insert, Table: "public.orders", Key: Row{"id": "1"}, After: Row{"id": "1", "total": "9.50", "note": nil}, Position: "0/16B3748", CommitTime: at},
		{Op: Update, Table: "public.orders", Key: Row{"id": "1"}, After: Row{"id": "1", "total": "10"}, Before: Row{"id": "1", "total": "9.50"}},
		{Op: Delete, Table: "public.orders", Key: Row{"id": json.Number("2")}},
		{Op: Read, Table: "orders", Key: Row{"id": "3"}, After: Row{"doc": map[string]any{"a": []any{true, "<&>"}}}},
	}
	data, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("decoded\n%+v\nwant\n%+v", out, in)
	}
	if _, err := Decode([]byte("not zstd")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("garbage: err = %v, want ErrCorrupt", err)
	}
	if got := BlobName(42); got != "changes/00000000000000000042.jsonl.zst" {
		t.Errorf("BlobName = %q", got)
	}
}

// An update whose After has a key column other than Key's moved its row;
// its new key takes After's values.
func TestChangeMoved(t *testing.T) {
	for _, c := range []struct {
		change Change
		moved  bool
		key    Row
	}{
		{Change{Op: Update, Key: Row{"id": "5", "r": "eu"}, After: Row{"id": "1005", "r": "eu", "v": "x"}},
			true, Row{"id": "1005", "r": "eu"}},
		{Change{Op: Update, Key: Row{"id": "5"}, After: Row{"id": "5", "v": "x"}}, false, Row{"id": "5"}},
		{Change{Op: Update, Key: Row{"id": "5"}, After: Row{"v": "x"}}, false, Row{"id": "5"}},
		{Change{Op: Delete, Key: Row{"id": "5"}, After: Row{"id": "6"}}, false, Row{"id": "5"}},
	} {
		if c.change.Moved() != c.moved || !reflect.DeepEqual(c.change.NewKey(), c.key) {
			t.Errorf("%+v: moved %v, new key %v; want %v, %v", c.change, c.change.Moved(), c.change.NewKey(), c.moved, c.key)
		}
	}
}
