package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/gateway"
)

// maxBlobBytes is the blob size limit of the servers under test: small,
// but more than a few chunks.
const maxBlobBytes = 600 << 10

// blobFixture is an API server on a real blob service on an embedded
// engine.
type blobFixture struct {
	*fixture
	blobs *blob.Service
}

func setupBlobs(t *testing.T) *blobFixture {
	t.Helper()
	eng := enginetest.Embedded(t)
	bs := blob.Open(eng.JS, blob.Options{MaxBlobBytes: maxBlobBytes, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(gateway.NewServer(gateway.Config{Blobs: bs, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	return &blobFixture{fixture: &fixture{url: srv.URL}, blobs: bs}
}

func (f *blobFixture) createContainer(t *testing.T, name string) gateway.BlobContainerJSON {
	t.Helper()
	var c gateway.BlobContainerJSON
	f.doJSON(t, http.StatusCreated, &c, "POST", "/api/v1/blobs", []byte(`{"name":"`+name+`"}`), jsonType...)
	return c
}

// putBlob stores a blob and checks the answer; header is name, value pairs.
func (f *blobFixture) putBlob(t *testing.T, path string, body []byte, header ...string) gateway.BlobJSON {
	t.Helper()
	var info gateway.BlobJSON
	r := f.do(t, "PUT", "/api/v1/blobs/"+path, body, header...)
	require.Equal(t, http.StatusCreated, r.Code, "PUT %s: %s", path, r.Body)
	require.NoError(t, json.Unmarshal(r.Body, &info))
	require.Equal(t, `"`+info.ETag+`"`, r.Header.Get("ETag"))
	require.Equal(t, info.Modified.Format(http.TimeFormat), r.Header.Get("Last-Modified"))
	return info
}

func (f *blobFixture) list(t *testing.T, container, query string) []string {
	t.Helper()
	var out gateway.BlobListResponse
	f.doJSON(t, http.StatusOK, &out, "GET", "/api/v1/blobs/"+container+query, nil)
	require.NotNil(t, out.Blobs, "blobs is an array, never null")
	require.Equal(t, container, out.Container)
	names := []string{}
	for _, b := range out.Blobs {
		names = append(names, b.Name)
	}
	return names
}

func TestBlobRoutesNeedTheService(t *testing.T) {
	t.Parallel()
	f := setup(t)
	requireError(t, f.do(t, "GET", "/api/v1/blobs", nil), http.StatusNotFound, "no such endpoint")
}

func TestBlobContainerAdmin(t *testing.T) {
	t.Parallel()
	f := setupBlobs(t)
	staging := f.createContainer(t, "staging")
	require.Equal(t, "staging", staging.Name)
	require.WithinDuration(t, time.Now(), staging.Created, time.Minute)
	f.createContainer(t, "cdc-2")

	var list struct{ Containers []gateway.BlobContainerJSON }
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/blobs", nil)
	require.Len(t, list.Containers, 2)
	require.Equal(t, "cdc-2", list.Containers[0].Name, "sorted by name")
	require.Equal(t, staging.Created, list.Containers[1].Created)

	for _, c := range []struct {
		body  string
		code  int
		parts []string
	}{
		{`{"name":"staging"}`, 409, []string{"already exists", "staging"}},
		{`{"name":"Staging"}`, 400, []string{`container name "Staging"`, "1-63 lowercase letters, digits and '-'"}},
		{`{"name":"-x"}`, 400, []string{`container name "-x"`}},
		{`{"name":""}`, 400, []string{`container name ""`}},
		{`{}`, 400, []string{`container name ""`}},
		{``, 400, []string{"body is empty"}},
		{`{"name":"x",`, 400, []string{"not valid JSON"}},
		{`{"nam":"x"}`, 400, []string{`unknown field "nam"`}},
	} {
		requireError(t, f.do(t, "POST", "/api/v1/blobs", []byte(c.body), jsonType...), c.code, c.parts...)
	}

	f.putBlob(t, "staging/a", []byte("a"))
	r := f.do(t, "DELETE", "/api/v1/blobs/staging", nil)
	require.Equal(t, http.StatusNoContent, r.Code, "%s", r.Body)
	require.Empty(t, r.Body)
	requireError(t, f.do(t, "DELETE", "/api/v1/blobs/staging", nil), http.StatusNotFound,
		"blob container staging not found", "POST /api/v1/blobs", "sluice blob container create staging")
	requireError(t, f.do(t, "DELETE", "/api/v1/blobs/Bad", nil), http.StatusBadRequest, `container name "Bad"`)
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/blobs", nil)
	require.Len(t, list.Containers, 1)
	// The name is free again; the container is new and empty.
	f.createContainer(t, "staging")
	require.Empty(t, f.list(t, "staging", ""))
}

func TestBlobs(t *testing.T) {
	t.Parallel()
	f := setupBlobs(t)
	f.createContainer(t, "staging")

	// PUT with a content type and metadata.
	body := []byte(`{"op":"insert","id":1}`)
	info := f.putBlob(t, "staging/incoming/2026/11/file.json", body,
		"Content-Type", "application/json", "X-Sluice-Meta-Source", "cdc", "x-sluice-meta-batch-id", "42")
	require.Equal(t, gateway.BlobJSON{Container: "staging", Name: "incoming/2026/11/file.json", Size: int64(len(body)),
		ContentType: "application/json", Metadata: map[string]string{"source": "cdc", "batch-id": "42"},
		Modified: info.Modified, Digest: info.Digest, ETag: info.ETag}, info)
	require.True(t, strings.HasPrefix(info.Digest, "SHA-256="))

	// GET streams the content with its headers; HEAD gives the headers.
	for _, method := range []string{"GET", "HEAD"} {
		r := f.do(t, method, "/api/v1/blobs/staging/incoming/2026/11/file.json", nil)
		require.Equal(t, http.StatusOK, r.Code, "%s: %s", method, r.Body)
		if method == "GET" {
			require.Equal(t, body, r.Body)
		} else {
			require.Empty(t, r.Body)
		}
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		require.Equal(t, strconv.Itoa(len(body)), r.Header.Get("Content-Length"))
		require.Equal(t, `"`+info.ETag+`"`, r.Header.Get("ETag"))
		require.Equal(t, info.Modified.Format(http.TimeFormat), r.Header.Get("Last-Modified"))
		require.Equal(t, info.Digest, r.Header.Get("X-Sluice-Digest"))
		require.Equal(t, "cdc", r.Header.Get("X-Sluice-Meta-Source"))
		require.Equal(t, "42", r.Header.Get("X-Sluice-Meta-Batch-Id"))

		// Conditional: unchanged since the ETag the client has.
		r = f.do(t, method, "/api/v1/blobs/staging/incoming/2026/11/file.json", nil, "If-None-Match", `"other", "`+info.ETag+`"`)
		require.Equal(t, http.StatusNotModified, r.Code)
		require.Empty(t, r.Body)
		r = f.do(t, method, "/api/v1/blobs/staging/incoming/2026/11/file.json", nil, "If-None-Match", `"other"`)
		require.Equal(t, http.StatusOK, r.Code)
	}

	// Several chunks, binary, no content type; an escaped name.
	big := make([]byte, 500<<10)
	_, _ = rand.Read(big)
	bigInfo := f.putBlob(t, "staging/raw/b%C3%A4r%20%231.bin", big)
	require.Equal(t, "raw/bär #1.bin", bigInfo.Name)
	require.Equal(t, blob.DefaultContentType, bigInfo.ContentType)
	r := f.do(t, "GET", "/api/v1/blobs/staging/raw/b%C3%A4r%20%231.bin", nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.True(t, bytes.Equal(big, r.Body))
	require.Equal(t, blob.DefaultContentType, r.Header.Get("Content-Type"))

	// An empty blob.
	empty := f.putBlob(t, "staging/raw/empty", nil, "Content-Type", "text/plain")
	require.Zero(t, empty.Size)
	r = f.do(t, "GET", "/api/v1/blobs/staging/raw/empty", nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.Empty(t, r.Body)
	require.Equal(t, "0", r.Header.Get("Content-Length"))

	// Overwrite: a new ETag; metadata is per version.
	v2 := f.putBlob(t, "staging/incoming/2026/11/file.json", []byte("v2"), "Content-Type", "text/plain")
	require.NotEqual(t, info.ETag, v2.ETag)
	r = f.do(t, "GET", "/api/v1/blobs/staging/incoming/2026/11/file.json", nil, "If-None-Match", `"`+info.ETag+`"`)
	require.Equal(t, http.StatusOK, r.Code, "changed since")
	require.Equal(t, "v2", string(r.Body))
	require.Empty(t, r.Header.Get("X-Sluice-Meta-Source"))

	// List, with a prefix.
	require.Equal(t, []string{"incoming/2026/11/file.json", "raw/bär #1.bin", "raw/empty"}, f.list(t, "staging", ""))
	require.Equal(t, []string{"raw/bär #1.bin", "raw/empty"}, f.list(t, "staging", "?prefix=raw/"))
	require.Equal(t, []string{}, f.list(t, "staging", "?prefix=none"))
	var listed gateway.BlobListResponse
	f.doJSON(t, http.StatusOK, &listed, "GET", "/api/v1/blobs/staging?prefix=incoming/", nil)
	require.Equal(t, gateway.BlobListResponse{Container: "staging", Prefix: "incoming/", Blobs: []gateway.BlobJSON{v2}}, listed)

	// Delete.
	r = f.do(t, "DELETE", "/api/v1/blobs/staging/raw/empty", nil)
	require.Equal(t, http.StatusNoContent, r.Code, "%s", r.Body)
	require.Empty(t, r.Body)
	requireError(t, f.do(t, "GET", "/api/v1/blobs/staging/raw/empty", nil), http.StatusNotFound,
		`blob "raw/empty" not found in container staging`, "GET /api/v1/blobs/staging")
	requireError(t, f.do(t, "DELETE", "/api/v1/blobs/staging/raw/empty", nil), http.StatusNotFound, `blob "raw/empty" not found`)
	r = f.do(t, "HEAD", "/api/v1/blobs/staging/raw/empty", nil)
	require.Equal(t, http.StatusNotFound, r.Code)
	require.Equal(t, []string{"incoming/2026/11/file.json", "raw/bär #1.bin"}, f.list(t, "staging", ""))
}

func TestBlobErrors(t *testing.T) {
	t.Parallel()
	f := setupBlobs(t)
	f.createContainer(t, "staging")
	kept := f.putBlob(t, "staging/kept", []byte("kept"))

	for _, c := range []struct {
		method, path string
		body         []byte
		header       []string
		code         int
		parts        []string
	}{
		{"PUT", "/api/v1/blobs/missing/a", []byte("x"), nil, 404, []string{"blob container missing not found", "sluice blob container create missing"}},
		{"GET", "/api/v1/blobs/missing/a", nil, nil, 404, []string{"blob container missing not found"}},
		{"DELETE", "/api/v1/blobs/missing/a", nil, nil, 404, []string{"blob container missing not found"}},
		{"GET", "/api/v1/blobs/missing", nil, nil, 404, []string{"blob container missing not found"}},
		{"GET", "/api/v1/blobs/staging/nope", nil, nil, 404, []string{`blob "nope" not found in container staging`}},
		{"PUT", "/api/v1/blobs/Bad/a", []byte("x"), nil, 400, []string{`container name "Bad"`}},
		{"GET", "/api/v1/blobs/Bad", nil, nil, 400, []string{`container name "Bad"`}},
		{"PUT", "/api/v1/blobs/staging/", []byte("x"), nil, 400, []string{"blob name: it is empty"}},
		{"PUT", "/api/v1/blobs/staging/a/", []byte("x"), nil, 400, []string{`blob name "a/"`, "empty path segment"}},
		{"PUT", "/api/v1/blobs/staging/a/%2E%2E/b", []byte("x"), nil, 400, []string{`blob name "a/../b"`, `must not be ".."`}},
		{"PUT", "/api/v1/blobs/staging/%2Fa", []byte("x"), nil, 400, []string{"must not start with '/'"}},
		{"PUT", "/api/v1/blobs/staging/a%00b", []byte("x"), nil, 400, []string{"control character U+0000"}},
		{"GET", "/api/v1/blobs/staging/a%0Ab", nil, nil, 400, []string{"control character U+000A"}},
		{"PUT", "/api/v1/blobs/staging/big", make([]byte, maxBlobBytes+1), nil, 413, []string{"the body is 614401 bytes, over the limit of 614400 bytes per blob"}},
		{"PUT", "/api/v1/blobs/staging/m", []byte("x"), []string{"X-Sluice-Meta-A_B!", "x"}, 400, []string{`metadata name "a_b!"`}},
		{"PUT", "/api/v1/blobs/staging/m", []byte("x"), []string{"X-Sluice-Meta-K", strings.Repeat("v", 9000)}, 400, []string{"more than 8192"}},
		{"PUT", "/api/v1/blobs/staging/kept", make([]byte, maxBlobBytes+1), nil, 413, []string{"over the limit"}},
		{"POST", "/api/v1/blobs/staging/a", []byte("x"), nil, 405, []string{"method POST is not allowed", "use GET, HEAD, PUT, DELETE"}},
	} {
		requireError(t, f.do(t, c.method, c.path, c.body, c.header...), c.code, c.parts...)
	}

	// Too large without a Content-Length: refused while streaming.
	req, err := http.NewRequest("PUT", f.url+"/api/v1/blobs/staging/streamed", io.MultiReader(bytes.NewReader(make([]byte, maxBlobBytes)), strings.NewReader("!")))
	require.NoError(t, err)
	require.Equal(t, int64(0), req.ContentLength, "sent chunked")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	requireError(t, response{Code: resp.StatusCode, Header: resp.Header, Body: data}, http.StatusRequestEntityTooLarge,
		"blob too large: blob streamed of container staging is over the limit of 614400 bytes; nothing was stored")

	// None of it stored anything, and the blob refused over "kept" left it.
	list, err := f.blobs.List(context.Background(), "staging", "")
	require.NoError(t, err)
	require.Equal(t, []blob.Info{kept}, list)
}

// TestBlobsServedAsDownloads: a blob is never a page of the API's origin.
// One stored as HTML is a sandboxed attachment, even when asked inline;
// only safe types are shown inline, and only when asked.
func TestBlobsServedAsDownloads(t *testing.T) {
	t.Parallel()
	f := setupBlobs(t)
	f.createContainer(t, "web")
	page := []byte(`<script>fetch("/api/v1/keys", {method: "POST"})</script>`)
	f.putBlob(t, "web/site/index.html", page, "Content-Type", "text/html; charset=utf-8")
	f.putBlob(t, "web/pic.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), "Content-Type", "image/svg+xml")
	f.putBlob(t, "web/dir/photo.png", []byte("\x89PNG"), "Content-Type", "image/png")
	f.putBlob(t, "web/notes.txt", []byte("hi"), "Content-Type", "Text/Plain; charset=utf-8")
	f.putBlob(t, "web/clip", []byte("x"), "Content-Type", "video/mp4")
	f.putBlob(t, "web/odd", []byte("x"), "Content-Type", "application/x-unknown")
	f.putBlob(t, `web/dir/r%C3%A9sum%C3%A9%20%22final%22.pdf`, []byte("%PDF"), "Content-Type", "application/pdf")
	f.putBlob(t, `web/a%5Cb%3B.txt`, []byte("x"), "Content-Type", "text/plain")

	for _, c := range []struct {
		path, disposition string
	}{
		{"site/index.html", `attachment; filename="index.html"`},
		{"site/index.html?inline=1", `attachment; filename="index.html"`},
		{"pic.svg?inline=1", `attachment; filename="pic.svg"`},
		{"odd?inline=1", `attachment; filename="odd"`},
		{"dir/photo.png", `attachment; filename="photo.png"`},
		{"dir/photo.png?inline=0", `attachment; filename="photo.png"`},
		{"dir/photo.png?inline=1", `inline; filename="photo.png"`},
		{"notes.txt?inline=true", `inline; filename="notes.txt"`},
		{"clip?inline=1", `inline; filename="clip"`},
		{"dir/r%C3%A9sum%C3%A9%20%22final%22.pdf?inline=1",
			`inline; filename="r_sum_ \"final\".pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf`},
		{"a%5Cb%3B.txt", `attachment; filename="a\\b;.txt"`},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			r := f.do(t, method, "/api/v1/blobs/web/"+c.path, nil)
			require.Equal(t, http.StatusOK, r.Code, "%s %s: %s", method, c.path, r.Body)
			require.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"), "%s %s", method, c.path)
			require.Equal(t, "sandbox", r.Header.Get("Content-Security-Policy"), "%s %s", method, c.path)
			require.Equal(t, c.disposition, r.Header.Get("Content-Disposition"), "%s %s", method, c.path)
		}
	}
	// The stored type is answered as it is: the headers make it safe.
	r := f.do(t, "GET", "/api/v1/blobs/web/site/index.html", nil)
	require.Equal(t, "text/html; charset=utf-8", r.Header.Get("Content-Type"))
	require.Equal(t, page, r.Body)

	// A 304 has them too; a bad inline value is refused.
	info, err := f.blobs.Stat(context.Background(), "web", "site/index.html")
	require.NoError(t, err)
	r = f.do(t, "GET", "/api/v1/blobs/web/site/index.html", nil, "If-None-Match", `"`+info.ETag+`"`)
	require.Equal(t, http.StatusNotModified, r.Code)
	require.Equal(t, "sandbox", r.Header.Get("Content-Security-Policy"))
	requireError(t, f.do(t, "GET", "/api/v1/blobs/web/dir/photo.png?inline=yes", nil), http.StatusBadRequest, `inline="yes"`, "inline=1")
}
