package filesink

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
)

var bg = context.Background()

type file struct {
	data        []byte
	contentType string
}

// memStore is a Store in memory.
type memStore struct {
	mu    sync.Mutex
	files map[string]file
	puts  []string
	// fail, when set, is returned by Put of names it matches.
	fail func(name string) error
}

func newStore() *memStore { return &memStore{files: map[string]file{}} }

func (m *memStore) Put(_ context.Context, name string, data []byte, contentType string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		if err := m.fail(name); err != nil {
			return err
		}
	}
	m.puts = append(m.puts, name)
	m.files[name] = file{data: slices.Clone(data), contentType: contentType}
	return nil
}

func (m *memStore) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.files))
}

func (m *memStore) get(t *testing.T, name string) file {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[name]
	require.True(t, ok, "no file %s; files: %v", name, slices.Sorted(maps.Keys(m.files)))
	return f
}

func setup(t *testing.T, cfg Config) (*Sink, *memStore) {
	t.Helper()
	st := newStore()
	cfg.Store = st
	s, err := New(cfg)
	require.NoError(t, err)
	return s, st
}

var ordersTable = pipeline.Table{Name: "public.orders", Columns: []pipeline.Column{
	{Name: "id", Type: "int8", Key: true},
	{Name: "region", Type: "text", Key: true},
	{Name: "note", Type: "text"},
	{Name: "amount", Type: "numeric"},
	{Name: "paid", Type: "bool"},
	{Name: "meta", Type: "jsonb"},
	{Name: "gone", Type: "text"},
}}

var at = time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.UTC)

func changeSet(seq int64) pipeline.ChangeSet {
	return pipeline.ChangeSet{Pipeline: "orders", Seq: seq, Position: "0/10",
		Tables: map[string]pipeline.Table{"public.orders": ordersTable}}
}

// mixedChanges are changes of two tables, interleaved; numbers are
// json.Number, as decoding gives them.
func mixedChanges(n int) []pipeline.Change {
	var out []pipeline.Change
	for i := range n {
		id := json.Number(fmt.Sprint(i))
		table := "public.orders"
		if i%3 == 2 {
			table = "public.items"
		}
		c := pipeline.Change{Op: pipeline.Update, Table: table, Key: pipeline.Row{"id": id, "region": "eu"},
			After: pipeline.Row{"id": id, "region": "eu", "note": fmt.Sprintf("n%d, \"q\" <b>", i), "amount": json.Number("1.50"),
				"paid": i%2 == 0, "meta": map[string]any{"z": []any{json.Number("1"), "x"}, "a": nil}, "gone": nil},
			Before:     pipeline.Row{"id": id, "region": "eu", "note": "old"},
			Position:   fmt.Sprintf("0/%X", i),
			CommitTime: at.Add(time.Duration(i) * time.Millisecond)}
		if i%5 == 4 {
			c.Op, c.After, c.Before = pipeline.Delete, nil, nil
			c.CommitTime = time.Time{}
		}
		out = append(out, c)
	}
	return out
}

func byTable(changes []pipeline.Change, table string) []pipeline.Change {
	var out []pipeline.Change
	for _, c := range changes {
		if c.Table == table {
			out = append(out, c)
		}
	}
	return out
}

func TestNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{}, []string{"public.items/00000000000000000007.ndjson", "public.orders/00000000000000000007.ndjson"}},
		{Config{Prefix: "lake/orders/", Format: CSV},
			[]string{"lake/orders/public.items/00000000000000000007.csv", "lake/orders/public.orders/00000000000000000007.csv"}},
		{Config{Prefix: "x-", Gzip: true},
			[]string{"x-public.items/00000000000000000007.ndjson.gz", "x-public.orders/00000000000000000007.ndjson.gz"}},
	} {
		s, st := setup(t, tc.cfg)
		_, err := s.Apply(bg, changeSet(7), mixedChanges(10))
		require.NoError(t, err)
		require.Equal(t, tc.want, st.names())
	}

	s, _ := setup(t, Config{})
	require.Equal(t, "a%2Fb/00000000000000000001.ndjson", s.Name("a/b", 1))
	require.Equal(t, "%2E%2E/00000000000000000001.ndjson", s.Name("..", 1))
	require.Equal(t, "%2E/00000000000000000001.ndjson", s.Name(".", 1))
	require.Equal(t, "%00/00000000000000000001.ndjson", s.Name("", 1))
	require.Equal(t, "dbo.Order%20Lines$1/00000000000000000001.ndjson", s.Name("dbo.Order Lines$1", 1))
	require.Equal(t, "caf%C3%A9/00000000000000000001.ndjson", s.Name("café", 1))
}

func TestNDJSONLinesDecodeBackToTheChanges(t *testing.T) {
	t.Parallel()
	s, st := setup(t, Config{})
	changes := mixedChanges(100)
	rej, err := s.Apply(bg, changeSet(3), changes)
	require.NoError(t, err)
	require.Nil(t, rej)

	total := 0
	for _, table := range []string{"public.orders", "public.items"} {
		f := st.get(t, s.Name(table, 3))
		require.Equal(t, "application/x-ndjson", f.contentType)
		lines := strings.Split(strings.TrimSuffix(string(f.data), "\n"), "\n")
		var got []pipeline.Change
		for _, line := range lines {
			dec := json.NewDecoder(strings.NewReader(line))
			dec.UseNumber()
			var c pipeline.Change
			require.NoError(t, dec.Decode(&c))
			got = append(got, c)
			var fields map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &fields))
			require.Contains(t, fields, "op")
			require.Contains(t, fields, "key")
			require.Equal(t, table, fields["table"])
		}
		require.Equal(t, byTable(changes, table), got, table)
		total += len(got)
	}
	require.Equal(t, len(changes), total)
}

func TestCSVCells(t *testing.T) {
	t.Parallel()
	s, st := setup(t, Config{Format: CSV})
	changes := []pipeline.Change{
		{Op: pipeline.Insert, Table: "public.orders", Key: pipeline.Row{"id": json.Number("1"), "region": "eu"},
			After: pipeline.Row{"id": json.Number("1"), "region": "eu", "note": "a, b", "amount": json.Number("12.50"),
				"paid": true, "meta": map[string]any{"b": []any{json.Number("1"), "two"}, "a": nil}, "gone": nil,
				"added": "not described"},
			Position: "0/1", CommitTime: at},
		{Op: pipeline.Update, Table: "public.orders", Key: pipeline.Row{"id": json.Number("2"), "region": "us"},
			After: pipeline.Row{"id": json.Number("2"), "region": "us", "note": "say \"hi\"\nthen leave", "amount": json.Number("-3e2"),
				"paid": false, "meta": []any{}, "gone": ""},
			Position: "0/2", CommitTime: at.In(time.FixedZone("X", 3600))},
		{Op: pipeline.Delete, Table: "public.orders", Key: pipeline.Row{"id": json.Number("3"), "region": "eu"},
			Before:   pipeline.Row{"id": json.Number("3"), "region": "eu", "note": "gone now"},
			Position: "0/3"},
		{Op: pipeline.Read, Table: "public.orders", Key: pipeline.Row{"id": json.Number("4"), "region": " lead"},
			After:    pipeline.Row{"id": json.Number("4"), "region": " lead", "note": "x"},
			Position: "0/4", CommitTime: at},
	}
	_, err := s.Apply(bg, changeSet(9), changes)
	require.NoError(t, err)
	f := st.get(t, s.Name("public.orders", 9))
	require.Equal(t, "text/csv; charset=utf-8", f.contentType)

	records, err := csv.NewReader(bytes.NewReader(f.data)).ReadAll()
	require.NoError(t, err)
	ts := "2026-05-01T10:00:00.123456789Z"
	require.Equal(t, [][]string{
		{"_op", "_position", "_commit_time", "id", "region", "note", "amount", "paid", "meta", "gone", "added"},
		{"insert", "0/1", ts, "1", "eu", "a, b", "12.50", "true", `{"a":null,"b":[1,"two"]}`, "", "not described"},
		{"update", "0/2", ts, "2", "us", "say \"hi\"\nthen leave", "-3e2", "false", "[]", "", ""},
		{"delete", "0/3", "", "3", "eu", "", "", "", "", "", ""},
		{"read", "0/4", ts, "4", " lead", "x", "", "", "", "", ""},
	}, records)
	// Quoting as RFC 4180 says.
	require.Contains(t, string(f.data), `"a, b"`)
	require.Contains(t, string(f.data), "\"say \"\"hi\"\"\nthen leave\"")
	require.Contains(t, string(f.data), `"{""a"":null,""b"":[1,""two""]}"`)
}

// An update that moved its row to a new key (Key the old one, After the
// new row) is a delete of the old key, then the new row.
func TestCSVMovedRow(t *testing.T) {
	t.Parallel()
	s, st := setup(t, Config{Format: CSV})
	changes := []pipeline.Change{
		{Op: pipeline.Update, Table: "public.orders", Key: pipeline.Row{"id": "5"},
			After: pipeline.Row{"id": "1005", "note": "moved"}, Position: "0/9"},
		{Op: pipeline.Update, Table: "public.orders", Key: pipeline.Row{"id": "6"},
			After: pipeline.Row{"id": "6", "note": "stayed"}, Position: "0/9"},
	}
	_, err := s.Apply(bg, changeSet(3), changes)
	require.NoError(t, err)
	records, err := csv.NewReader(bytes.NewReader(st.get(t, s.Name("public.orders", 3)).data)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, [][]string{
		{"_op", "_position", "_commit_time", "id", "region", "note", "amount", "paid", "meta", "gone"},
		{"delete", "0/9", "", "5", "", "", "", "", "", ""},
		{"update", "0/9", "", "1005", "", "moved", "", "", "", ""},
		{"update", "0/9", "", "6", "", "stayed", "", "", "", ""},
	}, records)
}

func TestCSVOfATableNotDescribed(t *testing.T) {
	t.Parallel()
	s, st := setup(t, Config{Format: CSV})
	changes := []pipeline.Change{
		{Op: pipeline.Insert, Table: "public.misc", Key: pipeline.Row{"k": "a"}, After: pipeline.Row{"k": "a", "z": json.Number("1"), "b": "x"}},
		{Op: pipeline.Update, Table: "public.misc", Key: pipeline.Row{"k": "b"}, After: pipeline.Row{"k": "b", "m": true}},
		{Op: pipeline.Delete, Table: "public.misc", Key: pipeline.Row{"k": "c"}},
	}
	_, err := s.Apply(bg, changeSet(1), changes)
	require.NoError(t, err)
	records, err := csv.NewReader(bytes.NewReader(st.get(t, s.Name("public.misc", 1)).data)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, [][]string{
		{"_op", "_position", "_commit_time", "b", "k", "m", "z"},
		{"insert", "", "", "x", "a", "", "1"},
		{"update", "", "", "", "b", "true", ""},
		{"delete", "", "", "", "c", "", ""},
	}, records)
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	out, err := io.ReadAll(zr)
	require.NoError(t, err)
	return out
}

func TestGzipRoundTrip(t *testing.T) {
	t.Parallel()
	for _, format := range []string{NDJSON, CSV} {
		plain, plainStore := setup(t, Config{Format: format})
		zipped, zipStore := setup(t, Config{Format: format, Gzip: true})
		changes := mixedChanges(200)
		_, err := plain.Apply(bg, changeSet(2), changes)
		require.NoError(t, err)
		_, err = zipped.Apply(bg, changeSet(2), changes)
		require.NoError(t, err)
		for _, table := range []string{"public.orders", "public.items"} {
			f := zipStore.get(t, zipped.Name(table, 2))
			require.Equal(t, "application/gzip", f.contentType)
			require.True(t, strings.HasSuffix(zipped.Name(table, 2), "."+format+".gz"))
			require.Equal(t, plainStore.get(t, plain.Name(table, 2)).data, gunzip(t, f.data), format)
		}
	}
}

func TestWritingAgainGivesTheSameBytes(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{}, {Format: CSV}, {Gzip: true}, {Format: CSV, Gzip: true}} {
		s, st := setup(t, cfg)
		changes := mixedChanges(300)
		_, err := s.Apply(bg, changeSet(5), changes)
		require.NoError(t, err)
		first := map[string][]byte{}
		for _, n := range st.names() {
			first[n] = st.get(t, n).data
		}
		// Again, into the same store (a retry) and into another (a
		// sink of another process).
		_, err = s.Apply(bg, changeSet(5), changes)
		require.NoError(t, err)
		other, otherStore := setup(t, cfg)
		_, err = other.Apply(bg, changeSet(5), changes)
		require.NoError(t, err)

		require.Len(t, st.puts, 4, "the same names overwritten")
		require.Equal(t, st.puts[:2], st.puts[2:])
		require.Equal(t, slices.Sorted(maps.Keys(first)), otherStore.names())
		for n, data := range first {
			require.Equal(t, data, st.get(t, n).data, n)
			require.Equal(t, data, otherStore.get(t, n).data, n)
		}
	}
}

func TestStoreErrorIsReturned(t *testing.T) {
	t.Parallel()
	s, st := setup(t, Config{})
	boom := errors.New("store down")
	st.fail = func(name string) error {
		if strings.HasPrefix(name, "public.orders/") {
			return boom
		}
		return nil
	}
	rej, err := s.Apply(bg, changeSet(4), mixedChanges(10))
	require.ErrorIs(t, err, boom)
	require.Nil(t, rej)
	require.Contains(t, err.Error(), "public.orders/00000000000000000004.ndjson")
	require.Contains(t, err.Error(), "change set 4")
}

func TestEmptyChangeSetWritesNothing(t *testing.T) {
	t.Parallel()
	s, st := setup(t, Config{})
	rej, err := s.Apply(bg, changeSet(1), nil)
	require.NoError(t, err)
	require.Nil(t, rej)
	require.Empty(t, st.puts)
}

func TestConfigIsValidated(t *testing.T) {
	t.Parallel()
	good := Config{Store: newStore(), Prefix: "lake/x/"}
	require.NoError(t, good.validate())
	for _, tc := range []struct {
		field  string
		modify func(*Config)
	}{
		{"Store", func(c *Config) { c.Store = nil }},
		{"Format", func(c *Config) { c.Format = "parquet" }},
		{"Format", func(c *Config) { c.Format = "CSV" }},
		{"Prefix", func(c *Config) { c.Prefix = "/abs/" }},
		{"Prefix", func(c *Config) { c.Prefix = "a/../b/" }},
		{"Prefix", func(c *Config) { c.Prefix = `a\b` }},
		{"Prefix", func(c *Config) { c.Prefix = "a\nb" }},
	} {
		c := good
		tc.modify(&c)
		_, err := New(c)
		require.ErrorIs(t, err, ErrConfig, tc.field)
		require.Contains(t, err.Error(), ": "+tc.field+": ")
	}
	_, err := New(Config{Store: newStore(), Format: "parquet"})
	require.ErrorContains(t, err, `"parquet" is not a format: use "ndjson" (the default) or "csv"`)
	require.Equal(t, NDJSON, Config{}.withDefaults().Format)
}
