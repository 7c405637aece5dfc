// Package docstoretest is the conformance suite of document store backends:
// every behaviour of docstore.Store, run against each backend.
package docstoretest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
)

var bg = context.Background()

// Run runs the suite; open returns a fresh, empty store for each test.
func Run(t *testing.T, open func(t *testing.T) docstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s docstore.Store)
	}{
		{"Containers", testContainers},
		{"CreateReadSystemFields", testCreateRead},
		{"UpsertReplaceIfMatch", testUpsertReplace},
		{"Patch", testPatch},
		{"DeleteLeavesATombstone", testDelete},
		{"ReadMany", testReadMany},
		{"ReadManyBadKeys", testReadManyBadKeys},
		{"CountDocuments", testCountDocuments},
		{"BulkUpsertIsAllOrNothing", testBulk},
		{"BadDocumentsWriteNothing", testBadDocuments},
		{"DeepOrDuplicateDocumentsWriteNothing", testDocumentShape},
		{"ClosedStoreIsUnavailable", testClosed},
		{"FeedOrderContinuationTime", testFeed},
		{"FeedRangesAndLastLSN", testFeedRanges},
		{"ChangedWakesReaders", testChanged},
		{"DefaultTTL", testTTL},
		{"Query", testQuery},
		{"QueryLimits", testQueryLimits},
		{"QueryStopsWhenItsContextEnds", testQueryCancel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func container(t *testing.T, s docstore.Store, name string) {
	t.Helper()
	_, err := s.CreateContainer(bg, docstore.Container{Name: name, PartitionKeyPath: "/deviceId"})
	require.NoError(t, err)
}

func fields(t *testing.T, d docstore.Document) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(d.Body, &m))
	return m
}

func feed(t *testing.T, s docstore.Store, c string, from docstore.FeedStart) []docstore.Document {
	t.Helper()
	docs, err := s.Feed(bg, c, from, 1000)
	require.NoError(t, err)
	return docs
}

func testContainers(t *testing.T, s docstore.Store) {
	c, err := s.CreateContainer(bg, docstore.Container{Name: "devices", PartitionKeyPath: "/deviceId", DefaultTTL: time.Hour})
	require.NoError(t, err)
	require.False(t, c.Created.IsZero())
	_, err = s.CreateContainer(bg, docstore.Container{Name: "devices", PartitionKeyPath: "/x"})
	require.ErrorIs(t, err, docstore.ErrExists)
	for _, bad := range []docstore.Container{
		{Name: "bad name", PartitionKeyPath: "/x"},
		{Name: "ok", PartitionKeyPath: "x"},
		{Name: "ok", PartitionKeyPath: "/a//b"},
		{Name: "ok", PartitionKeyPath: "/x", DefaultTTL: -time.Second},
	} {
		_, err := s.CreateContainer(bg, bad)
		require.ErrorIs(t, err, docstore.ErrInvalid, "%+v", bad)
	}
	_, err = s.CreateContainer(bg, docstore.Container{Name: "views", PartitionKeyPath: "/address/country"})
	require.NoError(t, err)
	list, err := s.ListContainers(bg)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "devices", list[0].Name)
	require.Equal(t, time.Hour, list[0].DefaultTTL)
	got, err := s.GetContainer(bg, "views")
	require.NoError(t, err)
	require.Equal(t, "/address/country", got.PartitionKeyPath)

	_, err = s.Upsert(bg, "views", []byte(`{"id":"1","address":{"country":"NL"}}`))
	require.NoError(t, err)
	require.NoError(t, s.DeleteContainer(bg, "views"))
	_, err = s.GetContainer(bg, "views")
	require.ErrorIs(t, err, docstore.ErrNotFound)
	_, err = s.Read(bg, "views", "NL", "1")
	require.ErrorIs(t, err, docstore.ErrNotFound)
	_, err = s.ReadMany(bg, "views", []docstore.Key{{PartitionKey: "NL", ID: "1"}})
	require.ErrorIs(t, err, docstore.ErrNotFound, "a deleted container")
	require.ErrorIs(t, s.DeleteContainer(bg, "views"), docstore.ErrNotFound)
	_, err = s.Upsert(bg, "nope", []byte(`{"id":"1","deviceId":"d"}`))
	require.ErrorIs(t, err, docstore.ErrNotFound)
}

func testCreateRead(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	before := time.Now().Add(-time.Second)
	d, err := s.Create(bg, "c", []byte(`{"id":"a","deviceId":"dev-1","battery":80,"_etag":"ignored","_lsn":99}`))
	require.NoError(t, err)
	require.Equal(t, "a", d.ID)
	require.Equal(t, "dev-1", d.PartitionKey)
	require.NotEmpty(t, d.ETag)
	require.Positive(t, d.LSN)
	require.True(t, d.TS.After(before))
	m := fields(t, d)
	require.Equal(t, "a", m["id"])
	require.Equal(t, float64(80), m["battery"])
	require.Equal(t, d.ETag, m[docstore.FieldETag])
	require.Equal(t, float64(d.LSN), m[docstore.FieldLSN])
	require.Equal(t, float64(d.TS.Unix()), m[docstore.FieldTS])

	got, err := s.Read(bg, "c", "dev-1", "a")
	require.NoError(t, err)
	require.Equal(t, d.ETag, got.ETag)
	require.JSONEq(t, string(d.Body), string(got.Body))

	_, err = s.Create(bg, "c", []byte(`{"id":"a","deviceId":"dev-1"}`))
	require.ErrorIs(t, err, docstore.ErrExists)
	// The same id in another partition is another document.
	_, err = s.Create(bg, "c", []byte(`{"id":"a","deviceId":"dev-2"}`))
	require.NoError(t, err)
	// Numbers and booleans are partition keys too.
	n, err := s.Create(bg, "c", []byte(`{"id":"n","deviceId":42}`))
	require.NoError(t, err)
	require.Equal(t, "42", n.PartitionKey)
	_, err = s.Read(bg, "c", "dev-3", "a")
	require.ErrorIs(t, err, docstore.ErrNotFound)
}

func testUpsertReplace(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	d1, err := s.Upsert(bg, "c", []byte(`{"id":"a","deviceId":"d","v":1}`))
	require.NoError(t, err)
	d2, err := s.Upsert(bg, "c", []byte(`{"id":"a","deviceId":"d","v":2}`))
	require.NoError(t, err)
	require.Greater(t, d2.LSN, d1.LSN)
	require.NotEqual(t, d1.ETag, d2.ETag)

	_, err = s.Replace(bg, "c", []byte(`{"id":"a","deviceId":"d","v":3}`), d1.ETag)
	require.ErrorIs(t, err, docstore.ErrPrecondition, "a stale ETag")
	require.ErrorContains(t, err, "read it again")
	d3, err := s.Replace(bg, "c", []byte(`{"id":"a","deviceId":"d","v":3}`), d2.ETag)
	require.NoError(t, err)
	d4, err := s.Replace(bg, "c", []byte(`{"id":"a","deviceId":"d","v":4}`), "")
	require.NoError(t, err, "no If-Match: unconditional")
	require.Greater(t, d4.LSN, d3.LSN)
	_, err = s.Replace(bg, "c", []byte(`{"id":"zz","deviceId":"d"}`), "")
	require.ErrorIs(t, err, docstore.ErrNotFound)
	got, err := s.Read(bg, "c", "d", "a")
	require.NoError(t, err)
	require.Equal(t, float64(4), fields(t, got)["v"])
}

func testPatch(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	d, err := s.Upsert(bg, "c", []byte(`{"id":"a","deviceId":"d","battery":80,"mode":"flight","pos":{"lat":1}}`))
	require.NoError(t, err)
	p, err := s.Patch(bg, "c", "d", "a", map[string]json.RawMessage{"battery": json.RawMessage(`75`), "mode": json.RawMessage(`null`)}, d.ETag)
	require.NoError(t, err)
	m := fields(t, p)
	require.Equal(t, float64(75), m["battery"])
	require.NotContains(t, m, "mode", "null removes a field")
	require.Equal(t, map[string]any{"lat": float64(1)}, m["pos"], "untouched fields stay")

	_, err = s.Patch(bg, "c", "d", "a", map[string]json.RawMessage{"battery": json.RawMessage(`1`)}, d.ETag)
	require.ErrorIs(t, err, docstore.ErrPrecondition)
	_, err = s.Patch(bg, "c", "d", "a", map[string]json.RawMessage{"_etag": json.RawMessage(`"x"`)}, "")
	require.ErrorIs(t, err, docstore.ErrInvalid)
	_, err = s.Patch(bg, "c", "d", "a", map[string]json.RawMessage{"deviceId": json.RawMessage(`"other"`)}, "")
	require.ErrorIs(t, err, docstore.ErrInvalid, "a patch cannot move a document to another partition")
	_, err = s.Patch(bg, "c", "d", "missing", map[string]json.RawMessage{"x": json.RawMessage(`1`)}, "")
	require.ErrorIs(t, err, docstore.ErrNotFound)
}

func testDelete(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	d, err := s.Upsert(bg, "c", []byte(`{"id":"a","deviceId":"d"}`))
	require.NoError(t, err)
	require.ErrorIs(t, s.Delete(bg, "c", "d", "a", `"stale"`), docstore.ErrPrecondition)
	require.NoError(t, s.Delete(bg, "c", "d", "a", d.ETag))
	_, err = s.Read(bg, "c", "d", "a")
	require.ErrorIs(t, err, docstore.ErrNotFound)
	require.ErrorIs(t, s.Delete(bg, "c", "d", "a", ""), docstore.ErrNotFound)

	changes := feed(t, s, "c", docstore.FeedStart{})
	require.Len(t, changes, 1, "the feed shows the document's latest version: its tombstone")
	require.True(t, changes[0].Deleted)
	require.Equal(t, "a", changes[0].ID)
	require.Greater(t, changes[0].LSN, d.LSN)

	_, err = s.Create(bg, "c", []byte(`{"id":"a","deviceId":"d"}`))
	require.NoError(t, err, "a deleted id can be created again")
}

// readMany is ReadMany's result as keys "pk/id", checked against Read.
func readMany(t *testing.T, s docstore.Store, c string, keys ...docstore.Key) []string {
	t.Helper()
	docs, err := s.ReadMany(bg, c, keys)
	require.NoError(t, err)
	require.NotNil(t, docs, "an empty result is an empty slice")
	out := make([]string, len(docs))
	for i, d := range docs {
		one, err := s.Read(bg, c, d.PartitionKey, d.ID)
		require.NoError(t, err)
		require.Equal(t, one, d, "ReadMany returns what Read does")
		out[i] = d.PartitionKey + "/" + d.ID
	}
	return out
}

func testReadMany(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	for _, doc := range []string{
		`{"id":"a","deviceId":"d1","v":1}`, `{"id":"b","deviceId":"d1","v":2}`, `{"id":"a","deviceId":"d2","v":3}`,
		`{"id":"n","deviceId":42}`, `{"id":"gone","deviceId":"d1"}`,
	} {
		_, err := s.Upsert(bg, "c", []byte(doc))
		require.NoError(t, err)
	}
	require.NoError(t, s.Delete(bg, "c", "d1", "gone", ""))
	key := func(pk, id string) docstore.Key { return docstore.Key{PartitionKey: pk, ID: id} }

	require.Equal(t, []string{"d2/a", "d1/a", "42/n"},
		readMany(t, s, "c", key("d2", "a"), key("d1", "missing"), key("d1", "a"), key("d1", "gone"), key("d2", "a"), key("42", "n"), key("d3", "a")),
		"in the keys' order, each document once, without missing, deleted or repeated keys")
	require.Equal(t, []string{"d1/b"}, readMany(t, s, "c", key("d1", "b")))
	require.Empty(t, readMany(t, s, "c", key("d1", "gone")), "a tombstone is not a document")
	require.Empty(t, readMany(t, s, "c"), "no keys")
	require.Empty(t, readMany(t, s, "c", key("d1\x00", "a"), key("d1", "\xff")),
		"keys no document can have are not found (PostgreSQL cannot hold them)")

	// As many keys as a call takes, found ones among them in reverse order.
	var docs [][]byte
	for i := range 300 {
		docs = append(docs, fmt.Appendf(nil, `{"id":"%d","deviceId":"p%d"}`, i, i%7))
	}
	_, err := s.BulkUpsert(bg, "c", docs)
	require.NoError(t, err)
	var keys []docstore.Key
	var want []string
	for i := 299; i >= 0; i-- {
		keys = append(keys, key(fmt.Sprintf("p%d", i%7), fmt.Sprint(i)))
		want = append(want, fmt.Sprintf("p%d/%d", i%7, i))
	}
	require.Equal(t, want, readMany(t, s, "c", keys...))
	for i := len(keys); i < docstore.MaxReadManyKeys; i++ {
		keys = append(keys, key("p0", fmt.Sprint("missing-", i)))
	}
	require.Equal(t, want, readMany(t, s, "c", keys...))
}

func testReadManyBadKeys(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	_, err := s.ReadMany(bg, "nope", []docstore.Key{{PartitionKey: "d", ID: "a"}})
	require.ErrorIs(t, err, docstore.ErrNotFound, "an unknown container")
	_, readErr := s.Read(bg, "nope", "d", "a")
	require.Equal(t, readErr.Error(), err.Error(), "the error of Read")
	_, err = s.ReadMany(bg, "nope", nil)
	require.ErrorIs(t, err, docstore.ErrNotFound, "an unknown container, without keys")

	tooMany := make([]docstore.Key, docstore.MaxReadManyKeys+1)
	for i := range tooMany {
		tooMany[i] = docstore.Key{PartitionKey: "d", ID: "a"}
	}
	_, err = s.ReadMany(bg, "c", tooMany)
	require.ErrorIs(t, err, docstore.ErrInvalid)
	require.ErrorContains(t, err, fmt.Sprintf("at most %d", docstore.MaxReadManyKeys))
	require.ErrorContains(t, err, "split")
	for _, bad := range []docstore.Key{{PartitionKey: "d"}, {ID: "a"}, {}} {
		_, err = s.ReadMany(bg, "c", []docstore.Key{{PartitionKey: "d", ID: "a"}, bad})
		require.ErrorIs(t, err, docstore.ErrInvalid, "%+v", bad)
		require.ErrorContains(t, err, "key 1")
	}
}

func testBulk(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	var docs [][]byte
	for i := range 100 {
		docs = append(docs, fmt.Appendf(nil, `{"id":"%d","deviceId":"d%d","i":%d}`, i, i%7, i))
	}
	out, err := s.BulkUpsert(bg, "c", docs)
	require.NoError(t, err)
	require.Len(t, out, 100)
	for i := 1; i < len(out); i++ {
		require.Equal(t, out[i-1].LSN+1, out[i].LSN, "one LSN per document, in order")
	}
	bad := append(docs[:10:10], []byte(`{"id":"x"}`))
	_, err = s.BulkUpsert(bg, "c", bad)
	require.ErrorIs(t, err, docstore.ErrInvalid)
	require.ErrorContains(t, err, "document 10")
	require.Len(t, feed(t, s, "c", docstore.FeedStart{}), 100, "a rejected bulk upsert writes nothing")
}

func testBadDocuments(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	for _, c := range []struct {
		doc  string
		want error
		text string
	}{
		{`[1,2]`, docstore.ErrInvalid, "not a JSON object"},
		{`{"id":"a","deviceId":"d"} {}`, docstore.ErrInvalid, "more than one"},
		{`{"deviceId":"d"}`, docstore.ErrInvalid, `"id"`},
		{`{"id":5,"deviceId":"d"}`, docstore.ErrInvalid, `"id"`},
		{`{"id":"a/b","deviceId":"d"}`, docstore.ErrInvalid, "without '/'"},
		{`{"id":"a"}`, docstore.ErrInvalid, "no partition key at /deviceId"},
		{`{"id":"a","deviceId":""}`, docstore.ErrInvalid, "must not be empty"},
		{`{"id":"a","deviceId":{"x":1}}`, docstore.ErrInvalid, "string, number or boolean"},
		{`{"id":"a","deviceId":"d","big":"` + strings.Repeat("x", docstore.DefaultMaxDocumentBytes) + `"}`, docstore.ErrTooLarge, "the limit is"},
		{`not json`, docstore.ErrInvalid, "not a JSON object"},
	} {
		_, err := s.Upsert(bg, "c", []byte(c.doc))
		require.ErrorIs(t, err, c.want, "%.60s", c.doc)
		require.ErrorContains(t, err, c.text)
	}
	require.Empty(t, feed(t, s, "c", docstore.FeedStart{}))
}

// nested is a document of depth levels: its value at "v" nests arrays
// and objects depth-1 levels deep.
func nested(id string, depth int) []byte {
	var open, closing strings.Builder
	for i := range depth - 1 {
		if i%2 == 0 {
			open.WriteString(`[`)
		} else {
			open.WriteString(`{"a":`)
		}
	}
	for i := depth - 2; i >= 0; i-- {
		if i%2 == 0 {
			closing.WriteString(`]`)
		} else {
			closing.WriteString(`}`)
		}
	}
	return []byte(`{"id":"` + id + `","deviceId":"d","v":` + open.String() + `1` + closing.String() + `}`)
}

// testDocumentShape: a document nested deeper than docstore.MaxDepth, or
// with an object naming a member twice, is refused by every write, and
// nothing is written.
func testDocumentShape(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	kept, err := s.Upsert(bg, "c", []byte(`{"id":"kept","deviceId":"d","v":1}`))
	require.NoError(t, err)
	ok, err := s.Upsert(bg, "c", nested("deepest", docstore.MaxDepth))
	require.NoError(t, err, "%d levels are allowed", docstore.MaxDepth)
	last, err := s.LastLSN(bg, "c")
	require.NoError(t, err)

	requireDepth := func(t *testing.T, err error) {
		t.Helper()
		require.ErrorIs(t, err, docstore.ErrInvalid)
		var derr *docstore.DepthError
		require.ErrorAs(t, err, &derr)
		require.Equal(t, docstore.MaxDepth, derr.Max)
		require.ErrorContains(t, err, "more than 128 levels deep")
	}
	requireDuplicate := func(t *testing.T, err error, name, path string) {
		t.Helper()
		require.ErrorIs(t, err, docstore.ErrInvalid)
		var derr *docstore.DuplicateMemberError
		require.ErrorAs(t, err, &derr)
		require.Equal(t, name, derr.Name)
		require.Equal(t, path, derr.Path)
		require.ErrorContains(t, err, fmt.Sprintf("member %q appears twice", name))
	}
	for _, doc := range [][]byte{
		nested("kept", docstore.MaxDepth+1),
		nested("kept", 1001),
		nested("kept", 9000),
		[]byte(strings.Repeat("[", 20000) + strings.Repeat("]", 20000)),
	} {
		_, err := s.Create(bg, "c", doc)
		requireDepth(t, err)
		_, err = s.Upsert(bg, "c", doc)
		requireDepth(t, err)
		_, err = s.Replace(bg, "c", doc, "")
		requireDepth(t, err)
		_, err = s.BulkUpsert(bg, "c", [][]byte{[]byte(`{"id":"other","deviceId":"d"}`), doc})
		requireDepth(t, err)
		require.ErrorContains(t, err, "document 1")
	}
	// A patch whose result is too deep.
	var deepValue map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(nested("x", docstore.MaxDepth), &deepValue))
	_, err = s.Patch(bg, "c", "d", "kept", map[string]json.RawMessage{"w": []byte(`[` + string(deepValue["v"]) + `]`)}, "")
	requireDepth(t, err)

	for _, c := range []struct{ doc, name, path string }{
		{`{"id":"kept","deviceId":"d","v":1,"v":2}`, "v", ""},
		{`{"id":"kept","deviceId":"d","v":1,"\u0076":2}`, "v", ""},
		{`{"id":"kept","id":"other","deviceId":"d"}`, "id", ""},
		{`{"id":"kept","deviceId":"d","deviceId":"e"}`, "deviceId", ""},
		{`{"id":"kept","deviceId":"d","v":{"a":{"b":1,"c":[0,{"x":1,"y":2,"x":3}]}}}`, "x", "v.a.c[1]"},
		{`{"id":"kept","deviceId":"d","v":{"a b":{"k":1,"k":1}}}`, "k", `v["a b"]`},
	} {
		_, err := s.Create(bg, "c", []byte(c.doc))
		requireDuplicate(t, err, c.name, c.path)
		_, err = s.Upsert(bg, "c", []byte(c.doc))
		requireDuplicate(t, err, c.name, c.path)
		_, err = s.Replace(bg, "c", []byte(c.doc), "")
		requireDuplicate(t, err, c.name, c.path)
		_, err = s.BulkUpsert(bg, "c", [][]byte{[]byte(c.doc)})
		requireDuplicate(t, err, c.name, c.path)
	}
	many := `{"id":"kept","deviceId":"d","v":{`
	for i := range 40 {
		many += fmt.Sprintf(`"k%d":%d,`, i, i)
	}
	_, err = s.Upsert(bg, "c", []byte(many+`"k33":0}}`))
	requireDuplicate(t, err, "k33", "v")
	_, err = s.Patch(bg, "c", "d", "kept", map[string]json.RawMessage{"w": []byte(`{"a":1,"a":2}`)}, "")
	requireDuplicate(t, err, "a", "w")

	// Nothing was written.
	after, err := s.LastLSN(bg, "c")
	require.NoError(t, err)
	require.Equal(t, last, after)
	d, err := s.Read(bg, "c", "d", "kept")
	require.NoError(t, err)
	require.Equal(t, kept.ETag, d.ETag)
	_, err = s.Read(bg, "c", "d", "other")
	require.ErrorIs(t, err, docstore.ErrNotFound)
	d, err = s.Read(bg, "c", "d", "deepest")
	require.NoError(t, err)
	require.Equal(t, ok.ETag, d.ETag)
}

// testClosed: a closed store answers docstore.ErrUnavailable, which
// callers tell from errors of their input. (Close may be called again.)
func testClosed(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	_, err := s.Upsert(bg, "c", []byte(`{"id":"a","deviceId":"d"}`))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = s.ListContainers(bg)
	require.ErrorIs(t, err, docstore.ErrUnavailable)
	_, err = s.Read(bg, "c", "d", "a")
	require.ErrorIs(t, err, docstore.ErrUnavailable)
	_, err = s.Upsert(bg, "c", []byte(`{"id":"b","deviceId":"d"}`))
	require.ErrorIs(t, err, docstore.ErrUnavailable)
	_, err = s.Feed(bg, "c", docstore.FeedStart{}, 10)
	require.ErrorIs(t, err, docstore.ErrUnavailable)
	if q, ok := s.(docstore.Querier); ok {
		_, err = q.Query(bg, "c", docstore.QueryRequest{Text: `c.deviceId = "d"`})
		require.ErrorIs(t, err, docstore.ErrUnavailable)
	}
}

func testFeed(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	var lsns []int64
	for i := range 10 {
		d, err := s.Upsert(bg, "c", fmt.Appendf(nil, `{"id":"%d","deviceId":"d%d"}`, i, i%3))
		require.NoError(t, err)
		lsns = append(lsns, d.LSN)
	}
	all := feed(t, s, "c", docstore.FeedStart{})
	require.Len(t, all, 10)
	for i, d := range all {
		require.Equal(t, lsns[i], d.LSN)
		require.False(t, d.Deleted)
	}
	rest := feed(t, s, "c", docstore.FeedStart{AfterLSN: lsns[6]})
	require.Len(t, rest, 3, "a continuation reads what follows")
	require.Equal(t, lsns[7], rest[0].LSN)

	// An update moves the document to the feed's end: latest version only.
	u, err := s.Upsert(bg, "c", []byte(`{"id":"0","deviceId":"d0","v":2}`))
	require.NoError(t, err)
	after := feed(t, s, "c", docstore.FeedStart{AfterLSN: lsns[9]})
	require.Len(t, after, 1)
	require.Equal(t, u.LSN, after[0].LSN)
	require.Len(t, feed(t, s, "c", docstore.FeedStart{}), 10)

	time.Sleep(20 * time.Millisecond)
	mark := time.Now()
	_, err = s.Upsert(bg, "c", []byte(`{"id":"new","deviceId":"d0"}`))
	require.NoError(t, err)
	since := feed(t, s, "c", docstore.FeedStart{Time: mark})
	require.Len(t, since, 1)
	require.Equal(t, "new", since[0].ID)

	limited, err := s.Feed(bg, "c", docstore.FeedStart{}, 4)
	require.NoError(t, err)
	require.Len(t, limited, 4)
	_, err = s.Feed(bg, "c", docstore.FeedStart{}, 0)
	require.ErrorIs(t, err, docstore.ErrInvalid)
	_, err = s.Feed(bg, "nope", docstore.FeedStart{}, 10)
	require.ErrorIs(t, err, docstore.ErrNotFound)
}

func testFeedRanges(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	last, err := s.LastLSN(bg, "c")
	require.NoError(t, err)
	require.Zero(t, last, "an empty container")
	_, err = s.LastLSN(bg, "nope")
	require.ErrorIs(t, err, docstore.ErrNotFound)

	// Every kind of write stores the partition key's hash.
	var bulk [][]byte
	for i := range 200 {
		bulk = append(bulk, fmt.Appendf(nil, `{"id":"b%d","deviceId":"dev-%d"}`, i, i%50))
	}
	_, err = s.BulkUpsert(bg, "c", bulk)
	require.NoError(t, err)
	for i := range 20 {
		_, err = s.Create(bg, "c", fmt.Appendf(nil, `{"id":"c%d","deviceId":"dev-%d"}`, i, i))
		require.NoError(t, err)
		_, err = s.Upsert(bg, "c", fmt.Appendf(nil, `{"id":"u%d","deviceId":"%d"}`, i, i))
		require.NoError(t, err)
	}
	_, err = s.Replace(bg, "c", []byte(`{"id":"c1","deviceId":"dev-1","v":1}`), "")
	require.NoError(t, err)
	_, err = s.Patch(bg, "c", "dev-2", "c2", map[string]json.RawMessage{"v": []byte("2")}, "")
	require.NoError(t, err)
	require.NoError(t, s.Delete(bg, "c", "dev-3", "c3", ""))

	all := feed(t, s, "c", docstore.FeedStart{})
	require.Len(t, all, 240)
	last, err = s.LastLSN(bg, "c")
	require.NoError(t, err)
	require.Equal(t, all[len(all)-1].LSN, last)
	require.Empty(t, feed(t, s, "c", docstore.FeedStart{AfterLSN: last}))

	for _, n := range []int{1, 3, 8} {
		seen := map[int64]int{}
		for i := range n {
			r := docstore.FeedRange{Count: n, Index: i}
			part := feed(t, s, "c", docstore.FeedStart{Range: r})
			for j, d := range part {
				require.True(t, r.Contains(d.PartitionKey), "range %d of %d holds %q", i, n, d.PartitionKey)
				if j > 0 {
					require.Greater(t, d.LSN, part[j-1].LSN, "a range reads in LSN order")
				}
				seen[d.LSN]++
			}
			if n == 8 {
				require.NotEmpty(t, part, "70 partition keys leave no range of 8 empty")
			}
			// A continuation inside a range.
			if len(part) > 2 {
				rest := feed(t, s, "c", docstore.FeedStart{AfterLSN: part[1].LSN, Range: r})
				require.Equal(t, part[2:], rest)
			}
		}
		require.Len(t, seen, len(all), "%d ranges together hold every change", n)
		for lsn, k := range seen {
			require.Equal(t, 1, k, "change %d is in one range of %d", lsn, n)
		}
	}
	for _, bad := range []docstore.FeedRange{{Count: 2, Index: 2}, {Count: -1}, {Count: 3, Index: -1}, {Count: docstore.MaxFeedRanges + 1}, {Index: 1}} {
		_, err := s.Feed(bg, "c", docstore.FeedStart{Range: bad}, 10)
		require.ErrorIs(t, err, docstore.ErrInvalid, "range %+v", bad)
	}
}

func testChanged(t *testing.T, s docstore.Store) {
	container(t, s, "c")
	ch := s.Changed("c")
	select {
	case <-ch:
		t.Fatal("woke without a write")
	default:
	}
	_, err := s.Upsert(bg, "c", []byte(`{"id":"a","deviceId":"d"}`))
	require.NoError(t, err)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("a write did not wake the reader")
	}
}

func testTTL(t *testing.T, s docstore.Store) {
	// The expiry is waited for, not slept for. A read right after the
	// writes must find them only when it came within the TTL: on a busy
	// machine it may come later, and then proves nothing.
	const ttl = 2 * time.Second
	_, err := s.CreateContainer(bg, docstore.Container{Name: "short", PartitionKeyPath: "/k", DefaultTTL: ttl})
	require.NoError(t, err)
	written := time.Now() // before the writes: they expire ttl after this at the soonest
	_, err = s.Upsert(bg, "short", []byte(`{"id":"a","k":"x"}`))
	require.NoError(t, err)
	_, err = s.Upsert(bg, "short", []byte(`{"id":"b","k":"x"}`))
	require.NoError(t, err)
	_, err = s.Read(bg, "short", "x", "a")
	if time.Since(written) < ttl {
		require.NoError(t, err, "read within the TTL")
	}
	keys := []docstore.Key{{PartitionKey: "x", ID: "a"}, {PartitionKey: "x", ID: "b"}}
	docs, err := s.ReadMany(bg, "short", keys)
	require.NoError(t, err)
	if time.Since(written) < ttl {
		require.Len(t, docs, 2, "read within the TTL")
	}
	// b was written after a: wait for both to expire.
	for _, id := range []string{"a", "b"} {
		require.Eventually(t, func() bool {
			_, err = s.Read(bg, "short", "x", id)
			return errors.Is(err, docstore.ErrNotFound)
		}, time.Minute, 50*time.Millisecond, "%s expired after the container's TTL", id)
	}
	require.GreaterOrEqual(t, time.Since(written), ttl-time.Second, "not long before its TTL")
	docs, err = s.ReadMany(bg, "short", keys)
	require.NoError(t, err)
	require.Empty(t, docs, "ReadMany does not find expired documents either")
	_, err = s.Patch(bg, "short", "x", "a", map[string]json.RawMessage{"v": json.RawMessage(`1`)}, "")
	require.ErrorIs(t, err, docstore.ErrNotFound, "an expired document cannot be patched back")
	require.ErrorIs(t, s.Delete(bg, "short", "x", "a", ""), docstore.ErrNotFound)
	if q, ok := s.(docstore.Querier); ok {
		page, err := q.Query(bg, "short", docstore.QueryRequest{})
		require.NoError(t, err)
		require.Empty(t, page.Documents)
	}
	// Creating it again works; a write starts the time again.
	_, err = s.Create(bg, "short", []byte(`{"id":"a","k":"x"}`))
	require.NoError(t, err)
	_, err = s.Read(bg, "short", "x", "a")
	require.NoError(t, err)
}

// testCountDocuments counts live documents: not tombstones.
func testCountDocuments(t *testing.T, s docstore.Store) {
	_, err := s.CountDocuments(bg, "devices")
	require.ErrorIs(t, err, docstore.ErrNotFound)
	container(t, s, "devices")
	n, err := s.CountDocuments(bg, "devices")
	require.NoError(t, err)
	require.Zero(t, n)
	for _, d := range []string{`{"id":"1","deviceId":"a"}`, `{"id":"2","deviceId":"a"}`, `{"id":"1","deviceId":"b"}`, `{"id":"1","deviceId":"a","v":2}`} {
		_, err := s.Upsert(bg, "devices", []byte(d))
		require.NoError(t, err)
	}
	require.NoError(t, s.Delete(bg, "devices", "b", "1", ""))
	n, err = s.CountDocuments(bg, "devices")
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
}
