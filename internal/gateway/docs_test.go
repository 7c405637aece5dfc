package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/sqlite"
	"github.com/sluicehq/sluice/internal/gateway"
)

// docsFixture is an API server on a real SQLite document store.
type docsFixture struct {
	*fixture
	store *sqlite.Store
}

func setupDocs(t *testing.T, configure ...func(*gateway.Config)) *docsFixture {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "docs.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	cfg := gateway.Config{
		Docs:            store,
		Logger:          slog.New(slog.DiscardHandler),
		MaxRequestBytes: maxRequestBytes,
	}
	for _, fn := range configure {
		fn(&cfg)
	}
	srv := httptest.NewServer(gateway.NewServer(cfg))
	t.Cleanup(srv.Close)
	return &docsFixture{fixture: &fixture{url: srv.URL}, store: store}
}

func (f *docsFixture) createContainer(t *testing.T, body string) gateway.ContainerJSON {
	t.Helper()
	var c gateway.ContainerJSON
	f.doJSON(t, http.StatusCreated, &c, "POST", "/api/v1/containers", []byte(body), jsonType...)
	return c
}

func (f *docsFixture) containers(t *testing.T) []gateway.ContainerJSON {
	t.Helper()
	var list struct{ Containers []gateway.ContainerJSON }
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/containers", nil)
	require.NotNil(t, list.Containers, "containers is an array, never null")
	return list.Containers
}

// changes is a container's whole change feed, read from the store: what
// it holds, with every document's LSN and ETag.
func (f *docsFixture) changes(t *testing.T, container string) []docstore.Document {
	t.Helper()
	docs, err := f.store.Feed(context.Background(), container, docstore.FeedStart{}, 1<<20)
	require.NoError(t, err)
	return docs
}

// write sends a document write and expects code; it checks the ETag header.
func (f *docsFixture) write(t *testing.T, code int, method, path, body string, header ...string) docstore.Document {
	t.Helper()
	var d docstore.Document
	f.doJSON(t, code, &d, method, path, []byte(body), append(header, jsonType...)...)
	r := f.do(t, "GET", docPath(containerOf(path), d.PartitionKey, d.ID), nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.Equal(t, d.ETag, r.Header.Get("ETag"))
	require.JSONEq(t, string(d.Body), string(r.Body), "the answer shows the document as stored")
	return d
}

// read reads a document and returns its body and ETag header.
func (f *docsFixture) read(t *testing.T, container, pk, id string) (map[string]any, string) {
	t.Helper()
	r := f.do(t, "GET", docPath(container, pk, id), nil)
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m))
	return m, r.Header.Get("ETag")
}

func (f *docsFixture) feed(t *testing.T, container, query string) gateway.FeedResponse {
	t.Helper()
	var resp gateway.FeedResponse
	f.doJSON(t, http.StatusOK, &resp, "GET", "/api/v1/containers/"+container+"/feed"+query, nil)
	require.NotNil(t, resp.Changes, "changes is an array, never null")
	return resp
}

func docsPath(container string) string { return "/api/v1/containers/" + container + "/docs" }

func docPath(container, pk, id string) string {
	return docsPath(container) + "/" + pathSegment(pk) + "/" + pathSegment(id)
}

// pathSegment escapes s as one path segment, "." and ".." included.
func pathSegment(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	return url.PathEscape(s)
}

// containerOf is the container of a path under /api/v1/containers/.
func containerOf(path string) string {
	rest := strings.TrimPrefix(path, "/api/v1/containers/")
	name, _, _ := strings.Cut(rest, "/")
	return name
}

func ifMatchHeader(etag string) []string { return []string{"If-Match", etag} }

func TestDocRoutesNeedTheStore(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(gateway.NewServer(gateway.Config{Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	f := &fixture{url: srv.URL}
	requireError(t, f.do(t, "GET", "/api/v1/containers", nil), http.StatusNotFound, "no such endpoint")
}

func TestContainerAdmin(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)

	devices := f.createContainer(t, `{"name":"devices","partition_key_path":"/deviceId","default_ttl":"24h"}`)
	require.Equal(t, gateway.ContainerJSON{Name: "devices", PartitionKeyPath: "/deviceId", DefaultTTL: "24h0m0s", Created: devices.Created}, devices)
	require.WithinDuration(t, time.Now(), devices.Created, time.Minute)
	views := f.createContainer(t, `{"name":"Views_2","partition_key_path":"/address/country"}`)
	require.Empty(t, views.DefaultTTL, "kept until deleted")
	r := f.do(t, "GET", "/api/v1/containers/Views_2", nil)
	require.NotContains(t, string(r.Body), "default_ttl")
	zero := f.createContainer(t, `{"name":"zero","partition_key_path":"/k","default_ttl":"0s"}`)
	require.Empty(t, zero.DefaultTTL)

	require.Equal(t, []gateway.ContainerJSON{views, devices, zero}, f.containers(t), "sorted by name")
	var got gateway.ContainerJSON
	f.doJSON(t, http.StatusOK, &got, "GET", "/api/v1/containers/devices", nil)
	require.Equal(t, devices, got)

	// Delete; then the container and its documents are gone everywhere.
	f.write(t, http.StatusCreated, "POST", docsPath("devices"), `{"id":"a","deviceId":"d1"}`)
	r = f.do(t, "DELETE", "/api/v1/containers/devices", nil)
	require.Equal(t, http.StatusNoContent, r.Code, "%s", r.Body)
	require.Empty(t, r.Body)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/containers/devices", ""},
		{"DELETE", "/api/v1/containers/devices", ""},
		{"POST", "/api/v1/containers/devices/docs", `{"id":"a","deviceId":"d1"}`},
		{"PUT", "/api/v1/containers/devices/docs", `{"id":"a","deviceId":"d1"}`},
		{"POST", "/api/v1/containers/devices/docs/bulk", `{"documents":[{"id":"a","deviceId":"d1"}]}`},
		{"GET", "/api/v1/containers/devices/docs/d1/a", ""},
		{"PUT", "/api/v1/containers/devices/docs/d1/a", `{"id":"a","deviceId":"d1"}`},
		{"PATCH", "/api/v1/containers/devices/docs/d1/a", `{"x":1}`},
		{"DELETE", "/api/v1/containers/devices/docs/d1/a", ""},
		{"POST", "/api/v1/containers/devices/query", `{"query":"c.x = 1"}`},
		{"GET", "/api/v1/containers/devices/feed", ""},
	} {
		requireError(t, f.do(t, c.method, c.path, []byte(c.body), jsonType...), http.StatusNotFound,
			"container devices not found", "POST /api/v1/containers", "sluice docs container create devices --partition-key")
	}
	require.Len(t, f.containers(t), 2)

	// The name is free again, and the old documents are not back.
	f.createContainer(t, `{"name":"devices","partition_key_path":"/deviceId"}`)
	requireError(t, f.do(t, "GET", docPath("devices", "d1", "a"), nil), http.StatusNotFound, `document "a" not found in partition "d1" of container devices`)
}

func TestCreateContainerErrors(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"taken","partition_key_path":"/a"}`)

	cases := []struct {
		name   string
		header []string
		body   string
		code   int
		parts  []string
	}{
		{"missing content type", nil, `{"name":"c1","partition_key_path":"/k"}`, 415, []string{"missing Content-Type", "application/json"}},
		{"form content type", []string{"Content-Type", "application/x-www-form-urlencoded"}, `name=c1`, 415, []string{`unsupported Content-Type "application/x-www-form-urlencoded"`}},
		{"empty body", jsonType, ``, 400, []string{"body is empty"}},
		{"malformed", jsonType, `{"name":"c1",`, 400, []string{"not valid JSON"}},
		{"not an object", jsonType, `["c1"]`, 400, []string{"not valid JSON", "array"}},
		{"unknown field", jsonType, `{"name":"c1","partitionKey":"/k"}`, 400, []string{`unknown field "partitionKey"`}},
		{"trailing data", jsonType, `{"name":"c1","partition_key_path":"/k"} {}`, 400, []string{"after the JSON object"}},
		{"no name", jsonType, `{"partition_key_path":"/k"}`, 400, []string{`container name ""`, "letters, digits"}},
		{"name with dot", jsonType, `{"name":"a.b","partition_key_path":"/k"}`, 400, []string{`container name "a.b"`}},
		{"name too long", jsonType, `{"name":"` + strings.Repeat("a", 65) + `","partition_key_path":"/k"}`, 400, []string{"1-64"}},
		{"no partition key path", jsonType, `{"name":"c1"}`, 400, []string{"partition key path", "/deviceId"}},
		{"relative path", jsonType, `{"name":"c1","partition_key_path":"deviceId"}`, 400, []string{"partition key path", `"deviceId"`}},
		{"empty path field", jsonType, `{"name":"c1","partition_key_path":"/a//b"}`, 400, []string{"empty field"}},
		{"bad ttl", jsonType, `{"name":"c1","partition_key_path":"/k","default_ttl":"1 day"}`, 400, []string{`default_ttl "1 day" is not a duration`, `"24h"`}},
		{"ttl as a number", jsonType, `{"name":"c1","partition_key_path":"/k","default_ttl":3600}`, 400, []string{"default_ttl"}},
		{"negative ttl", jsonType, `{"name":"c1","partition_key_path":"/k","default_ttl":"-1s"}`, 400, []string{"default ttl -1s", "must not be negative"}},
		{"duplicate", jsonType, `{"name":"taken","partition_key_path":"/b"}`, 409, []string{"already exists", "taken"}},
		{"too large", jsonType, `{"name":"big","partition_key_path":"/k","default_ttl":"` + strings.Repeat(" ", 1<<20) + `"}`, 413, []string{"over the limit of 1048576 bytes"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireError(t, f.do(t, "POST", "/api/v1/containers", []byte(c.body), c.header...), c.code, c.parts...)
		})
	}
	// Nothing was created, and the existing container was left as it was.
	list := f.containers(t)
	require.Len(t, list, 1)
	require.Equal(t, "/a", list[0].PartitionKeyPath)
}

func TestDocuments(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"devices","partition_key_path":"/deviceId"}`)

	// Create: 201, with the stored document and its ETag.
	before := time.Now().Add(-time.Second)
	created := f.write(t, http.StatusCreated, "POST", docsPath("devices"), `{"id":"a","deviceId":"d1","battery":80,"mode":"flight","_etag":"ignored"}`)
	require.Equal(t, "a", created.ID)
	require.Equal(t, "d1", created.PartitionKey)
	require.Equal(t, int64(1), created.LSN)
	require.True(t, created.TS.After(before))
	body, etag := f.read(t, "devices", "d1", "a")
	require.Equal(t, created.ETag, etag)
	require.Equal(t, map[string]any{"id": "a", "deviceId": "d1", "battery": float64(80), "mode": "flight",
		"_etag": created.ETag, "_ts": float64(created.TS.Unix()), "_lsn": float64(1)}, body, "system fields are the store's")
	requireError(t, f.do(t, "POST", docsPath("devices"), []byte(`{"id":"a","deviceId":"d1"}`), jsonType...), http.StatusConflict,
		"already exists", `document "a" in partition "d1"`, "upsert or replace")

	// Upsert creates or replaces: 200.
	up := f.write(t, http.StatusOK, "PUT", docsPath("devices"), `{"id":"a","deviceId":"d1","battery":70}`)
	require.Greater(t, up.LSN, created.LSN)
	require.NotEqual(t, created.ETag, up.ETag)
	other := f.write(t, http.StatusOK, "PUT", docsPath("devices"), `{"id":"a","deviceId":"d2"}`)
	require.Equal(t, "d2", other.PartitionKey, "the same id in another partition is another document")

	// Partition keys with any characters, numbers and booleans, in the path percent-encoded.
	odd := f.write(t, http.StatusCreated, "POST", docsPath("devices"), `{"id":"b c é","deviceId":"eu/west 1?#"}`)
	require.Equal(t, "eu/west 1?#", odd.PartitionKey)
	num := f.write(t, http.StatusCreated, "POST", docsPath("devices"), `{"id":"n","deviceId":42}`)
	require.Equal(t, "42", num.PartitionKey)
	body, _ = f.read(t, "devices", "42", "n")
	require.Equal(t, float64(42), body["deviceId"])
	dots := f.write(t, http.StatusCreated, "POST", docsPath("devices"), `{"id":"..","deviceId":"."}`)
	require.Equal(t, docsPath("devices")+"/%2E/%2E%2E", docPath("devices", ".", ".."), "dot segments escaped are names")
	r := f.do(t, "DELETE", docPath("devices", dots.PartitionKey, dots.ID), nil)
	require.Equal(t, http.StatusNoContent, r.Code, "%s", r.Body)

	// Replace, unconditionally and with If-Match ("*" means any version).
	rep := f.write(t, http.StatusOK, "PUT", docPath("devices", "d1", "a"), `{"id":"a","deviceId":"d1","battery":60}`, ifMatchHeader(up.ETag)...)
	requireError(t, f.do(t, "PUT", docPath("devices", "d1", "a"), []byte(`{"id":"a","deviceId":"d1","battery":1}`), append(ifMatchHeader(up.ETag), jsonType...)...),
		http.StatusPreconditionFailed, "etag does not match", "has ETag "+rep.ETag, "read it again and retry")
	rep = f.write(t, http.StatusOK, "PUT", docPath("devices", "d1", "a"), `{"id":"a","deviceId":"d1","battery":50,"mode":"sleep"}`)
	rep = f.write(t, http.StatusOK, "PUT", docPath("devices", "d1", "a"), `{"id":"a","deviceId":"d1","battery":50,"mode":"sleep","pos":{"lat":1}}`, ifMatchHeader("*")...)

	// Patch top-level fields; null removes one.
	patched := f.write(t, http.StatusOK, "PATCH", docPath("devices", "d1", "a"), `{"battery":45,"mode":null}`, ifMatchHeader(rep.ETag)...)
	body, _ = f.read(t, "devices", "d1", "a")
	require.Equal(t, float64(45), body["battery"])
	require.NotContains(t, body, "mode")
	require.Equal(t, map[string]any{"lat": float64(1)}, body["pos"], "untouched fields stay")
	var merged docstore.Document
	f.doJSON(t, http.StatusOK, &merged, "PATCH", docPath("devices", "d1", "a"), []byte(`{"battery":44}`), "Content-Type", "application/merge-patch+json")
	require.Greater(t, merged.LSN, patched.LSN)
	requireError(t, f.do(t, "PATCH", docPath("devices", "d1", "a"), []byte(`{"battery":1}`), append(ifMatchHeader(patched.ETag), jsonType...)...),
		http.StatusPreconditionFailed, "etag does not match")

	// Delete: 204, a tombstone in the feed, and the id can be created again.
	requireError(t, f.do(t, "DELETE", docPath("devices", "d1", "a"), nil, ifMatchHeader(patched.ETag)...), http.StatusPreconditionFailed, "etag does not match")
	r = f.do(t, "DELETE", docPath("devices", "d1", "a"), nil, ifMatchHeader(merged.ETag)...)
	require.Equal(t, http.StatusNoContent, r.Code, "%s", r.Body)
	require.Empty(t, r.Body)
	requireError(t, f.do(t, "GET", docPath("devices", "d1", "a"), nil), http.StatusNotFound,
		`document "a" not found in partition "d1" of container devices`, "value at /deviceId")
	requireError(t, f.do(t, "DELETE", docPath("devices", "d1", "a"), nil), http.StatusNotFound, `document "a" not found`)
	r = f.do(t, "DELETE", docPath("devices", "42", "n"), nil)
	require.Equal(t, http.StatusNoContent, r.Code, "%s", r.Body)

	feed := f.feed(t, "devices", "")
	require.Equal(t, []string{"a", "b c é", "..", "a", "n"}, changeIDs(feed))
	for i, d := range feed.Changes {
		require.Equal(t, i >= 2, d.Deleted, "the deletes are tombstones")
		require.Equal(t, i < 2, d.Body != nil, "without a body")
	}
	require.Equal(t, feed.Changes[4].LSN, feed.Continuation)
	f.write(t, http.StatusCreated, "POST", docsPath("devices"), `{"id":"a","deviceId":"d1"}`)
}

func TestDocumentErrors(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"c","partition_key_path":"/deviceId"}`)
	doc := f.write(t, http.StatusCreated, "POST", docsPath("c"), `{"id":"a","deviceId":"d1","battery":80}`)
	f.write(t, http.StatusCreated, "POST", docsPath("c"), `{"id":"b","deviceId":"d1"}`)
	before := f.changes(t, "c")

	big := `{"id":"x","deviceId":"d1","big":"` + strings.Repeat("x", docstore.DefaultMaxDocumentBytes) + `"}`
	plain := []string{"Content-Type", "text/plain"}
	withETag := func(etag string) []string { return append(ifMatchHeader(etag), jsonType...) }
	one := docPath("c", "d1", "a")
	type request struct {
		method, path string
		header       []string
		body         string
	}
	cases := []struct {
		name  string
		req   request
		code  int
		parts []string
	}{
		// Create and upsert.
		{"create: missing content type", request{"POST", docsPath("c"), nil, `{"id":"x","deviceId":"d1"}`}, 415, []string{"missing Content-Type", "application/json"}},
		{"upsert: text", request{"PUT", docsPath("c"), plain, `{"id":"x","deviceId":"d1"}`}, 415, []string{`unsupported Content-Type "text/plain"`}},
		{"create: empty", request{"POST", docsPath("c"), jsonType, ``}, 400, []string{"body is empty", `"id"`, "partition key at /deviceId"}},
		{"create: malformed", request{"POST", docsPath("c"), jsonType, `{"id":"x","deviceId":}`}, 400, []string{"invalid JSON at byte offset 21"}},
		{"upsert: two values", request{"PUT", docsPath("c"), jsonType, `{"id":"x","deviceId":"d1"} {}`}, 400, []string{"invalid JSON at byte offset 27"}},
		{"create: invalid utf-8", request{"POST", docsPath("c"), jsonType, "{\"id\":\"x\",\"deviceId\":\"\xff\"}"}, 400, []string{"invalid UTF-8 at byte offset 22"}},
		{"create: an array", request{"POST", docsPath("c"), jsonType, `[{"id":"x","deviceId":"d1"}]`}, 400, []string{"not a JSON object"}},
		{"upsert: a string", request{"PUT", docsPath("c"), jsonType, `"x"`}, 400, []string{"not a JSON object"}},
		{"create: no id", request{"POST", docsPath("c"), jsonType, `{"deviceId":"d1"}`}, 400, []string{`needs an "id"`}},
		{"upsert: number id", request{"PUT", docsPath("c"), jsonType, `{"id":7,"deviceId":"d1"}`}, 400, []string{`needs an "id" that is a non-empty string`}},
		{"create: id with slash", request{"POST", docsPath("c"), jsonType, `{"id":"a/b","deviceId":"d1"}`}, 400, []string{`id "a/b"`, "without '/'"}},
		{"create: no partition key", request{"POST", docsPath("c"), jsonType, `{"id":"x"}`}, 400, []string{"no partition key at /deviceId"}},
		{"upsert: object partition key", request{"PUT", docsPath("c"), jsonType, `{"id":"x","deviceId":{"a":1}}`}, 400, []string{"string, number or boolean"}},
		{"create: too large", request{"POST", docsPath("c"), jsonType, big}, 413, []string{"over the limit of 2097152 bytes", "at most 2097152 bytes (2 MiB)"}},
		{"upsert: too large", request{"PUT", docsPath("c"), jsonType, big}, 413, []string{"over the limit of 2097152 bytes"}},
		{"create: exists", request{"POST", docsPath("c"), jsonType, `{"id":"a","deviceId":"d1"}`}, 409, []string{"already exists"}},
		{"create: if-match", request{"POST", docsPath("c"), withETag(doc.ETag), `{"id":"x","deviceId":"d1"}`}, 400, []string{"If-Match applies to one document", "PUT /api/v1/containers/c/docs/{partition key}/{id}"}},
		{"upsert: if-match", request{"PUT", docsPath("c"), withETag(doc.ETag), `{"id":"a","deviceId":"d1"}`}, 400, []string{"If-Match applies to one document"}},
		{"create: unknown container", request{"POST", docsPath("nope"), jsonType, `{"id":"x","deviceId":"d1"}`}, 404, []string{"container nope not found"}},

		// Replace.
		{"replace: other id", request{"PUT", one, jsonType, `{"id":"b","deviceId":"d1"}`}, 400, []string{`the document has id "b" and partition key "d1" (at /deviceId)`, `the path names id "a" in partition "d1"`}},
		{"replace: other partition", request{"PUT", one, jsonType, `{"id":"a","deviceId":"d2"}`}, 400, []string{`partition key "d2"`, "cannot rename or move"}},
		{"replace: stale etag", request{"PUT", one, withETag(`"zz"`), `{"id":"a","deviceId":"d1"}`}, 412, []string{"etag does not match", "read it again"}},
		{"replace: unquoted etag", request{"PUT", one, withETag(strings.Trim(doc.ETag, `"`)), `{"id":"a","deviceId":"d1"}`}, 400, []string{"If-Match 1", "in double quotes"}},
		{"replace: weak etag", request{"PUT", one, withETag("W/" + doc.ETag), `{"id":"a","deviceId":"d1"}`}, 400, []string{"in double quotes"}},
		{"replace: etag list", request{"PUT", one, withETag(doc.ETag + `, "2"`), `{"id":"a","deviceId":"d1"}`}, 400, []string{"give one ETag"}},
		{"replace: two if-match", request{"PUT", one, append(withETag(doc.ETag), "If-Match", doc.ETag), `{"id":"a","deviceId":"d1"}`}, 400, []string{"If-Match is given 2 times"}},
		{"replace: missing", request{"PUT", docPath("c", "d1", "zz"), jsonType, `{"id":"zz","deviceId":"d1"}`}, 404, []string{`document "zz" not found in partition "d1" of container c`}},
		{"replace: malformed", request{"PUT", one, jsonType, `{"id":"a",`}, 400, []string{"invalid JSON at byte offset 10"}},
		{"replace: no partition key", request{"PUT", one, jsonType, `{"id":"a"}`}, 400, []string{"no partition key at /deviceId"}},
		{"replace: too large", request{"PUT", one, jsonType, big}, 413, []string{"over the limit of 2097152 bytes"}},
		{"replace: content type", request{"PUT", one, plain, `{"id":"a","deviceId":"d1"}`}, 415, []string{"unsupported Content-Type"}},
		{"replace: unknown container", request{"PUT", docPath("nope", "d1", "a"), jsonType, `{"id":"a","deviceId":"d1"}`}, 404, []string{"container nope not found"}},

		// Patch.
		{"patch: an array", request{"PATCH", one, jsonType, `[{"battery":1}]`}, 400, []string{"the patch is a JSON array", "top-level fields", "null removes"}},
		{"patch: null", request{"PATCH", one, jsonType, `null`}, 400, []string{"the patch is a JSON null"}},
		{"patch: empty object", request{"PATCH", one, jsonType, `{}`}, 400, []string{"the patch is empty"}},
		{"patch: empty body", request{"PATCH", one, jsonType, ``}, 400, []string{"body is empty"}},
		{"patch: malformed", request{"PATCH", one, jsonType, `{"battery":}`}, 400, []string{"invalid JSON at byte offset 11"}},
		{"patch: system field", request{"PATCH", one, jsonType, `{"_etag":"x"}`}, 400, []string{`"_etag" is a system field`}},
		{"patch: id", request{"PATCH", one, jsonType, `{"id":"b"}`}, 400, []string{`"id" is a system field`}},
		{"patch: move partition", request{"PATCH", one, jsonType, `{"deviceId":"d2"}`}, 400, []string{"would change the partition key", "delete and create"}},
		{"patch: remove partition key", request{"PATCH", one, jsonType, `{"deviceId":null}`}, 400, []string{"no partition key at /deviceId"}},
		{"patch: too large", request{"PATCH", one, jsonType, `{"big":"` + strings.Repeat("x", docstore.DefaultMaxDocumentBytes) + `"}`}, 413, []string{"over the limit of 2097152 bytes"}},
		{"patch: document too large", request{"PATCH", one, jsonType, `{"big":"` + strings.Repeat("x", docstore.DefaultMaxDocumentBytes-20) + `"}`}, 413, []string{"the limit is 2097152 bytes"}},
		{"patch: stale etag", request{"PATCH", one, withETag(`"zz"`), `{"battery":1}`}, 412, []string{"etag does not match"}},
		{"patch: content type", request{"PATCH", one, []string{"Content-Type", "application/json-patch+json"}, `[{"op":"remove","path":"/battery"}]`}, 415, []string{"application/json or application/merge-patch+json"}},
		{"patch: missing", request{"PATCH", docPath("c", "d2", "a"), jsonType, `{"battery":1}`}, 404, []string{`document "a" not found in partition "d2"`}},
		{"patch: unknown container", request{"PATCH", docPath("nope", "d1", "a"), jsonType, `{"battery":1}`}, 404, []string{"container nope not found"}},

		// Delete and read.
		{"delete: stale etag", request{"DELETE", one, ifMatchHeader(`"zz"`), ``}, 412, []string{"etag does not match", "has ETag " + doc.ETag}},
		{"delete: unquoted etag", request{"DELETE", one, ifMatchHeader("zz"), ``}, 400, []string{"in double quotes"}},
		{"delete: missing", request{"DELETE", docPath("c", "d1", "zz"), nil, ``}, 404, []string{`document "zz" not found`}},
		{"delete: unknown container", request{"DELETE", docPath("nope", "d1", "a"), nil, ``}, 404, []string{"container nope not found"}},
		{"read: missing", request{"GET", docPath("c", "d2", "a"), nil, ``}, 404, []string{`document "a" not found in partition "d2" of container c`, "value at /deviceId"}},
		{"read: unknown container", request{"GET", docPath("nope", "d1", "a"), nil, ``}, 404, []string{"container nope not found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireError(t, f.do(t, c.req.method, c.req.path, []byte(c.req.body), c.req.header...), c.code, c.parts...)
			require.Equal(t, before, f.changes(t, "c"), "a rejected request writes nothing")
		})
	}
	require.Len(t, f.containers(t), 1, "no container was created")
}

func TestBulkUpsert(t *testing.T) {
	t.Parallel()
	f := setupDocs(t, func(c *gateway.Config) { c.MaxRequestBytes = 1 << 20 })
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	f.write(t, http.StatusCreated, "POST", docsPath("c"), `{"id":"old","k":"p"}`)

	var resp gateway.BulkResponse
	f.doJSON(t, http.StatusOK, &resp, "POST", docsPath("c")+"/bulk",
		[]byte(`{"documents":[{"id":"1","k":"p","v":1},{"id":"2","k":"q"},{"id":"old","k":"p","v":2}]}`), jsonType...)
	require.Equal(t, 3, resp.Count)
	require.Len(t, resp.Documents, 3)
	for i, d := range resp.Documents {
		require.Equal(t, int64(2+i), d.LSN, "one LSN per document, in request order")
		require.NotEmpty(t, d.ETag)
		require.Empty(t, d.Body, "bodies are not sent back")
	}
	require.Equal(t, "q", resp.Documents[1].PartitionKey)
	body, etag := f.read(t, "c", "p", "old")
	require.Equal(t, float64(2), body["v"], "upserted")
	require.Equal(t, resp.Documents[2].ETag, etag)

	// The limits are inclusive.
	var many strings.Builder
	many.WriteString(`{"documents":[`)
	for i := range gateway.MaxBulkDocuments {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `{"id":"%d","k":"m"}`, i)
	}
	many.WriteString("]}")
	f.doJSON(t, http.StatusOK, &resp, "POST", docsPath("c")+"/bulk", []byte(many.String()), jsonType...)
	require.Equal(t, gateway.MaxBulkDocuments, resp.Count)
}

func TestBulkUpsertErrors(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	f.write(t, http.StatusCreated, "POST", docsPath("c"), `{"id":"a","k":"p"}`)
	before := f.changes(t, "c")

	tooMany := `{"documents":[` + strings.Repeat(`{},`, gateway.MaxBulkDocuments) + `{}]}`
	cases := []struct {
		name   string
		path   string
		header []string
		body   string
		code   int
		parts  []string
	}{
		{"missing content type", "c", nil, `{"documents":[{"id":"x","k":"p"}]}`, 415, []string{"missing Content-Type"}},
		{"ndjson", "c", []string{"Content-Type", "application/x-ndjson"}, `{"id":"x","k":"p"}`, 415, []string{`unsupported Content-Type "application/x-ndjson"`}},
		{"empty", "c", jsonType, ``, 400, []string{"body is empty", `{"documents": [...]}`}},
		{"malformed", "c", jsonType, `{"documents":[{"id":"x"},]}`, 400, []string{"invalid JSON at byte offset 25"}},
		{"invalid utf-8", "c", jsonType, "{\"documents\":[{\"id\":\"\xff\",\"k\":\"p\"}]}", 400, []string{"invalid UTF-8 at byte offset 21"}},
		{"an array", "c", jsonType, `[{"id":"x","k":"p"}]`, 400, []string{"not a bulk request", `{"documents": [...]}`}},
		{"unknown field", "c", jsonType, `{"documents":[{"id":"x","k":"p"}],"mode":"create"}`, 400, []string{`unknown field "mode"`}},
		{"no documents field", "c", jsonType, `{}`, 400, []string{"no documents"}},
		{"no documents", "c", jsonType, `{"documents":[]}`, 400, []string{"no documents"}},
		{"documents not an array", "c", jsonType, `{"documents":{"id":"x"}}`, 400, []string{"not a bulk request"}},
		{"bad document", "c", jsonType, `{"documents":[{"id":"x","k":"p"},{"id":"y","k":"p"},{"id":"z"}]}`, 400, []string{"document 2", "no partition key at /k"}},
		{"not an object", "c", jsonType, `{"documents":[{"id":"x","k":"p"},7]}`, 400, []string{"document 1", "not a JSON object"}},
		{"document too large", "c", jsonType, `{"documents":[{"id":"x","k":"p","big":"` + strings.Repeat("x", docstore.DefaultMaxDocumentBytes) + `"}]}`, 413, []string{"over the limit of 65536 bytes", "send fewer documents"}},
		{"too many", "c", jsonType, tooMany, 413, []string{"10001 documents in one request, more than 10000"}},
		{"if-match", "c", append(ifMatchHeader(before[0].ETag), jsonType...), `{"documents":[{"id":"a","k":"p"}]}`, 400, []string{"If-Match applies to one document"}},
		{"unknown container", "nope", jsonType, `{"documents":[{"id":"x","k":"p"}]}`, 404, []string{"container nope not found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireError(t, f.do(t, "POST", docsPath(c.path)+"/bulk", []byte(c.body), c.header...), c.code, c.parts...)
			require.Equal(t, before, f.changes(t, "c"), "a rejected bulk upsert writes nothing")
		})
	}
}

func TestBulkDocumentTooLarge(t *testing.T) {
	t.Parallel()
	f := setupDocs(t, func(c *gateway.Config) { c.MaxRequestBytes = 8 << 20 })
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	body := `{"documents":[{"id":"x","k":"p"},{"id":"y","k":"p","big":"` + strings.Repeat("x", docstore.DefaultMaxDocumentBytes) + `"}]}`
	requireError(t, f.do(t, "POST", docsPath("c")+"/bulk", []byte(body), jsonType...), http.StatusRequestEntityTooLarge,
		"document 1", "the limit is 2097152 bytes")
	require.Empty(t, f.changes(t, "c"))
}

func TestQuery(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"c","partition_key_path":"/deviceId"}`)
	var docs []string
	for i := range 12 {
		docs = append(docs, fmt.Sprintf(`{"id":"d%02d","deviceId":"dev-%d","battery":%d}`, i, i%2, 5*i))
	}
	f.doJSON(t, http.StatusOK, nil, "POST", docsPath("c")+"/bulk", []byte(`{"documents":[`+strings.Join(docs, ",")+`]}`), jsonType...)

	query := func(req docstore.QueryRequest) docstore.Page {
		t.Helper()
		var page docstore.Page
		f.doJSON(t, http.StatusOK, &page, "POST", "/api/v1/containers/c/query", []byte(mustJSON(t, req)), jsonType...)
		require.NotNil(t, page.Documents, "documents is an array, never null")
		return page
	}
	ids := func(page docstore.Page) []string {
		var out []string
		for _, d := range page.Documents {
			out = append(out, d.ID)
		}
		return out
	}

	page := query(docstore.QueryRequest{Text: "SELECT * FROM c WHERE c.battery < @max ORDER BY c.battery DESC", Params: map[string]any{"max": 20}})
	require.Equal(t, []string{"d03", "d02", "d01", "d00"}, ids(page))
	require.Empty(t, page.Continuation)
	var body map[string]any
	require.NoError(t, json.Unmarshal(page.Documents[0].Body, &body))
	require.Equal(t, float64(15), body["battery"], "results carry their bodies")

	pk := "dev-1"
	page = query(docstore.QueryRequest{Text: "c.battery >= 0", PartitionKey: &pk})
	require.Len(t, page.Documents, 6)

	// Paging follows continuations.
	var all []string
	req := docstore.QueryRequest{MaxItems: 5}
	for {
		page := query(req)
		all = append(all, ids(page)...)
		if page.Continuation == "" {
			break
		}
		req.Continuation = page.Continuation
	}
	require.Len(t, all, 12)

	require.Empty(t, query(docstore.QueryRequest{Text: "c.battery > 1000"}).Documents)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestQueryErrors(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	f.write(t, http.StatusCreated, "POST", docsPath("c"), `{"id":"a","k":"p"}`)
	before := f.changes(t, "c")
	cases := []struct {
		name   string
		path   string
		header []string
		body   string
		code   int
		parts  []string
	}{
		{"missing content type", "c", nil, `{"query":"c.x = 1"}`, 415, []string{"missing Content-Type"}},
		{"sql as text", "c", []string{"Content-Type", "application/sql"}, `SELECT * FROM c`, 415, []string{`unsupported Content-Type "application/sql"`}},
		{"empty", "c", jsonType, ``, 400, []string{"body is empty"}},
		{"malformed", "c", jsonType, `{"query":`, 400, []string{"not valid JSON"}},
		{"unknown field", "c", jsonType, `{"sql":"c.x = 1"}`, 400, []string{`unknown field "sql"`}},
		{"syntax error", "c", jsonType, `{"query":"SELECT * FROM c WHERE c.x = = 1"}`, 400, []string{"invalid query"}},
		{"unknown parameter", "c", jsonType, `{"query":"c.x = @y"}`, 400, []string{"invalid query", "@y"}},
		{"max items", "c", jsonType, `{"query":"","max_items":5000}`, 400, []string{"max items 5000", "1 to 1000"}},
		{"bad continuation", "c", jsonType, `{"query":"","continuation":"nonsense!"}`, 400, []string{"continuation token", "previous page"}},
		{"unknown container", "nope", jsonType, `{"query":""}`, 404, []string{"container nope not found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireError(t, f.do(t, "POST", "/api/v1/containers/"+c.path+"/query", []byte(c.body), c.header...), c.code, c.parts...)
			require.Equal(t, before, f.changes(t, "c"), "a query writes nothing")
		})
	}
}

// storeWithoutQueries hides the Querier of a store.
type storeWithoutQueries struct{ docstore.Store }

func TestQueryNeedsAQuerier(t *testing.T) {
	t.Parallel()
	f := setupDocs(t, func(c *gateway.Config) { c.Docs = storeWithoutQueries{c.Docs} })
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	requireError(t, f.do(t, "POST", "/api/v1/containers/c/query", []byte(`{"query":""}`), jsonType...), http.StatusNotImplemented,
		"does not run queries", "change feed")
}

func TestFeed(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	empty := f.feed(t, "c", "")
	require.Empty(t, empty.Changes)
	require.Zero(t, empty.Continuation)
	require.Zero(t, f.feed(t, "c", "?from=now").Continuation)

	for i := range 5 {
		f.write(t, http.StatusCreated, "POST", docsPath("c"), fmt.Sprintf(`{"id":"%d","k":"p"}`, i))
	}
	all := f.feed(t, "c", "?from=start")
	require.Len(t, all.Changes, 5)
	require.Equal(t, int64(5), all.Continuation)
	require.Equal(t, all, f.feed(t, "c", ""), "from=start is the default")

	// Pages follow the continuation.
	first := f.feed(t, "c", "?limit=2")
	require.Len(t, first.Changes, 2)
	require.Equal(t, int64(2), first.Continuation)
	rest := f.feed(t, "c", "?limit=100&after="+strconv.FormatInt(first.Continuation, 10))
	require.Equal(t, []string{"2", "3", "4"}, changeIDs(rest))
	caughtUp := f.feed(t, "c", "?after=5")
	require.Empty(t, caughtUp.Changes)
	require.Equal(t, int64(5), caughtUp.Continuation, "with no change, the continuation stays")

	// An update moves a document to the end; a delete leaves a tombstone.
	f.write(t, http.StatusOK, "PUT", docsPath("c"), `{"id":"0","k":"p","v":2}`)
	r := f.do(t, "DELETE", docPath("c", "p", "1"), nil)
	require.Equal(t, http.StatusNoContent, r.Code)
	latest := f.feed(t, "c", "?after=5")
	require.Equal(t, []string{"0", "1"}, changeIDs(latest))
	require.False(t, latest.Changes[0].Deleted)
	require.NotEmpty(t, latest.Changes[0].Body)
	require.True(t, latest.Changes[1].Deleted)
	raw := f.do(t, "GET", "/api/v1/containers/c/feed?after=6", nil)
	require.Contains(t, string(raw.Body), `"deleted":true`)
	require.Len(t, f.feed(t, "c", "").Changes, 5, "the latest version of each document")

	// from=now reads nothing old; its continuation reads what comes next.
	now := f.feed(t, "c", "?from=now")
	require.Empty(t, now.Changes)
	require.Equal(t, int64(7), now.Continuation)
	f.write(t, http.StatusCreated, "POST", docsPath("c"), `{"id":"new","k":"p"}`)
	require.Equal(t, []string{"new"}, changeIDs(f.feed(t, "c", "?after=7")))

	// from=TIME reads the changes written at or after it.
	mark := time.Now()
	f.write(t, http.StatusCreated, "POST", docsPath("c"), `{"id":"later","k":"p"}`)
	since := f.feed(t, "c", "?from="+url.QueryEscape(mark.Format(time.RFC3339Nano)))
	require.Equal(t, []string{"later"}, changeIDs(since))
	future := f.feed(t, "c", "?from="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)))
	require.Empty(t, future.Changes)
	require.Equal(t, since.Continuation, future.Continuation, "with no change since the time, the continuation is the newest LSN")
}

func changeIDs(resp gateway.FeedResponse) []string {
	out := []string{}
	for _, d := range resp.Changes {
		out = append(out, d.ID)
	}
	return out
}

// TestFeedFromNow checks that from=now finds the newest LSN however the
// LSNs are spread: updates leave gaps where documents were before.
func TestFeedFromNow(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	ctx := context.Background()
	for i := range 70 {
		d, err := f.store.Upsert(ctx, "c", fmt.Appendf(nil, `{"id":"%d","k":"p"}`, i%9))
		require.NoError(t, err)
		require.Equal(t, d.LSN, f.feed(t, "c", "?from=now").Continuation, "after write %d", i)
	}
	_, err := f.store.BulkUpsert(ctx, "c", [][]byte{[]byte(`{"id":"x","k":"p"}`), []byte(`{"id":"y","k":"p"}`)})
	require.NoError(t, err)
	require.Equal(t, int64(72), f.feed(t, "c", "?from=now").Continuation)
}

// askingStore is a document store that tells when a feed read asks to be
// woken by a change: a waiting read does before each look at the feed.
type askingStore struct {
	docstore.Store
	asked chan struct{}
}

func (s *askingStore) Changed(container string) <-chan struct{} {
	ch := s.Store.Changed(container)
	select {
	case s.asked <- struct{}{}:
	default:
	}
	return ch
}

func TestFeedWaits(t *testing.T) {
	t.Parallel()
	asked := make(chan struct{}, 1)
	f := setupDocs(t, func(c *gateway.Config) { c.Docs = &askingStore{Store: c.Docs, asked: asked} })
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	f.write(t, http.StatusCreated, "POST", docsPath("c"), `{"id":"a","k":"p"}`)

	start := time.Now()
	resp := f.feed(t, "c", "?after=1&wait=300ms")
	require.Empty(t, resp.Changes)
	require.Equal(t, int64(1), resp.Continuation)
	require.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "waited for a change")

	// A write while the read waits answers it: with 20s to wait, a read
	// that answers with the change did not wait them out (a read whose
	// wait runs out answers with no change).
	select {
	case <-asked: // the read above
	default:
	}
	got := make(chan gateway.FeedResponse, 1)
	go func() {
		defer close(got)
		r, err := http.Get(f.url + "/api/v1/containers/c/feed?from=now&wait=20s")
		if err != nil {
			t.Error(err)
			return
		}
		defer r.Body.Close()
		var resp gateway.FeedResponse
		if err := json.NewDecoder(r.Body).Decode(&resp); err != nil {
			t.Error(err)
			return
		}
		got <- resp
	}()
	<-asked // the read has fixed where "now" is and looks for changes
	_, err := f.store.Upsert(context.Background(), "c", []byte(`{"id":"late","k":"p"}`))
	require.NoError(t, err)
	resp, ok := <-got
	require.True(t, ok)
	require.Equal(t, []string{"late"}, changeIDs(resp))

	// Stored changes answer at once, wait or not: a read that waited its
	// 30s out would have answered with no change.
	require.Len(t, f.feed(t, "c", "?wait=30s").Changes, 2)
}

func TestFeedErrors(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	f.write(t, http.StatusCreated, "POST", docsPath("c"), `{"id":"a","k":"p"}`)
	before := f.changes(t, "c")
	cases := []struct {
		path, query string
		parts       []string
	}{
		{"c", "?after=1&from=start", []string{"give after", "or from", "not both"}},
		{"c", "?after=-1", []string{`after="-1"`, "continuation of the previous read"}},
		{"c", "?after=x", []string{`after="x"`}},
		{"c", "?after=", []string{`after=""`}},
		{"c", "?from=yesterday", []string{`from="yesterday"`, "start, now, or an RFC 3339 time"}},
		{"c", "?from=2026-01-02", []string{`from="2026-01-02"`}},
		{"c", "?from=1900-01-01T00:00:00Z", []string{"between 1970 and 2262"}},
		{"c", "?limit=0", []string{`limit="0"`, "1 to 1000"}},
		{"c", "?limit=1001", []string{`limit="1001"`}},
		{"c", "?limit=all", []string{`limit="all"`}},
		{"c", "?wait=31s", []string{`wait="31s"`, "from 0s to 30s"}},
		{"c", "?wait=-1s", []string{`wait="-1s"`}},
		{"c", "?wait=5", []string{`wait="5"`}},
	}
	for _, c := range cases {
		requireError(t, f.do(t, "GET", "/api/v1/containers/"+c.path+"/feed"+c.query, nil), http.StatusBadRequest, c.parts...)
	}
	requireError(t, f.do(t, "GET", "/api/v1/containers/nope/feed", nil), http.StatusNotFound, "container nope not found")
	requireError(t, f.do(t, "POST", "/api/v1/containers/c/feed", nil), http.StatusMethodNotAllowed, "method POST is not allowed", "use GET, HEAD")
	require.Equal(t, before, f.changes(t, "c"))
}

func TestDocRouteMetrics(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"m","partition_key_path":"/k"}`)
	f.do(t, "GET", docPath("m", "p", "nope"), nil)
	r := f.do(t, "GET", "/metrics", nil)
	require.Contains(t, string(r.Body), `sluice_http_requests_total{code="201",route="containers.create"} 1`)
	require.Contains(t, string(r.Body), `sluice_http_requests_total{code="404",route="docs.read"} 1`)
}

// docRequest is a request of the document tests.
type docRequest struct {
	method, path string
	header       []string
	body         string
}

func (c docRequest) send(t *testing.T, f *fixture) response {
	t.Helper()
	var body []byte
	if c.body != "" {
		body = []byte(c.body)
	}
	return f.do(t, c.method, c.path, body, c.header...)
}

// deepDoc is a document of container c (partition key /k) whose value at
// "v" makes it depth levels deep.
func deepDoc(id string, depth int) string {
	return `{"id":"` + id + `","k":"p","v":` + strings.Repeat("[", depth-1) + "1" + strings.Repeat("]", depth-1) + `}`
}

// TestDeepDocumentsAreRefused: a document nested deeper than 128 levels
// is refused by every write with 400 stating the limit, and nothing is
// written.
func TestDeepDocumentsAreRefused(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	kept := f.write(t, http.StatusOK, "PUT", docsPath("c"), `{"id":"a","k":"p","n":1}`)
	f.write(t, http.StatusOK, "PUT", docsPath("c"), deepDoc("max", docstore.MaxDepth))
	before := f.changes(t, "c")

	limit := "more than 128 levels deep, the limit"
	for _, depth := range []int{docstore.MaxDepth + 1, 1001, 9000} {
		for _, c := range []docRequest{
			{"POST", docsPath("c"), jsonType, deepDoc("b", depth)},
			{"PUT", docsPath("c"), jsonType, deepDoc("a", depth)},
			{"PUT", docPath("c", "p", "a"), jsonType, deepDoc("a", depth)},
			{"PATCH", docPath("c", "p", "a"), jsonType, `{"v":` + strings.Repeat("[", depth-1) + "1" + strings.Repeat("]", depth-1) + `}`},
			{"POST", docsPath("c") + "/bulk", jsonType, `{"documents":[{"id":"b","k":"p"},` + deepDoc("c", depth) + `]}`},
		} {
			requireError(t, c.send(t, f.fixture), http.StatusBadRequest, "invalid document", limit)
		}
	}
	require.Equal(t, before, f.changes(t, "c"), "nothing was written")
	m, etag := f.read(t, "c", "p", "a")
	require.Equal(t, kept.ETag, etag)
	require.Equal(t, 1.0, m["n"])
}

// TestDocumentAnswersAreCompact: documents are answered as stored,
// compact, without indenting their bodies; ?pretty=1 indents.
func TestDocumentAnswersAreCompact(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	r := f.do(t, "PUT", docsPath("c"), []byte(deepDoc("a", docstore.MaxDepth)), jsonType...)
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
	stored, err := f.store.Read(context.Background(), "c", "p", "a")
	require.NoError(t, err)
	require.Contains(t, string(r.Body), string(stored.Body), "the write's answer")

	for _, c := range []docRequest{
		{"GET", docPath("c", "p", "a"), nil, ""},
		{"POST", "/api/v1/containers/c/query", jsonType, `{"query":"c.k = \"p\""}`},
		{"GET", "/api/v1/containers/c/feed", nil, ""},
	} {
		r := c.send(t, f.fixture)
		require.Equal(t, http.StatusOK, r.Code, "%s %s: %s", c.method, c.path, r.Body)
		require.Contains(t, string(r.Body), string(stored.Body), "%s %s", c.method, c.path)
		require.Less(t, len(r.Body), len(stored.Body)+500, "%s %s: no indentation", c.method, c.path)

		c.path += "?pretty=1"
		r = c.send(t, f.fixture)
		require.Equal(t, http.StatusOK, r.Code, "%s %s: %s", c.method, c.path, r.Body)
		require.Contains(t, string(r.Body), "\n  ", "%s %s: indented", c.method, c.path)
		require.True(t, json.Valid(r.Body))
	}
}

// TestQueryLimits: a query over the term or size limit is refused with
// 400 naming the limit.
func TestQueryLimits(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	terms := strings.TrimSuffix(strings.Repeat("c.n = 1 OR ", docstore.MaxQueryTerms+1), " OR ")
	body, _ := json.Marshal(map[string]string{"query": terms})
	requireError(t, f.do(t, "POST", "/api/v1/containers/c/query", body, jsonType...), http.StatusBadRequest,
		"invalid query", "more than 1000 terms")
	body, _ = json.Marshal(map[string]string{"query": `c.s = "` + strings.Repeat("x", docstore.MaxQueryBytes) + `"`})
	requireError(t, f.do(t, "POST", "/api/v1/containers/c/query", body, jsonType...), http.StatusBadRequest,
		"over the limit of 65536 bytes")
}

// TestFeedContinuationOfARecreatedContainer: a continuation of a container
// deleted and created again (whose LSNs start over) answers 410 instead of
// silently skipping the new container's first changes.
func TestFeedContinuationOfARecreatedContainer(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	for i := range 5 {
		f.write(t, http.StatusCreated, "POST", docsPath("c"), fmt.Sprintf(`{"id":"%d","k":"p"}`, i))
	}
	old := f.feed(t, "c", "")
	require.Equal(t, int64(5), old.Continuation)
	require.NotEmpty(t, old.Incarnation)
	same := f.feed(t, "c", fmt.Sprintf("?after=3&incarnation=%s", old.Incarnation))
	require.Len(t, same.Changes, 2)
	require.Equal(t, old.Incarnation, same.Incarnation)

	require.Equal(t, http.StatusNoContent, f.do(t, "DELETE", "/api/v1/containers/c", nil).Code)
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	for i := range 7 {
		f.write(t, http.StatusCreated, "POST", docsPath("c"), fmt.Sprintf(`{"id":"n%d","k":"p"}`, i))
	}
	requireError(t, f.do(t, "GET", fmt.Sprintf("/api/v1/containers/c/feed?after=%d&incarnation=%s", old.Continuation, old.Incarnation), nil),
		http.StatusGone, "deleted and created again", "from=start")
	fresh := f.feed(t, "c", "")
	require.Len(t, fresh.Changes, 7)
	require.NotEqual(t, old.Incarnation, fresh.Incarnation)
}
