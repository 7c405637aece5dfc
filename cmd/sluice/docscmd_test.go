package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/gateway"
)

// writeFile writes a file for put and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestDocsCommands(t *testing.T) {
	srv := startInstance(t)
	ok := func(args ...string) string {
		t.Helper()
		code, out, errOut := sluiceCmd(t, append(args, "--server", srv)...)
		require.Equal(t, 0, code, "sluice %v: %s", args, errOut)
		return out
	}
	okJSON := func(out any, args ...string) {
		t.Helper()
		raw := ok(append(args, "--json")...)
		require.NoError(t, json.Unmarshal([]byte(raw), out), "sluice %v printed %s", args, raw)
	}

	// Containers.
	require.Equal(t, "created container devices: partition key /deviceId, documents kept until deleted\n",
		ok("docs", "container", "create", "devices", "--partition-key", "/deviceId"))
	var created gateway.ContainerJSON
	okJSON(&created, "docs", "container", "create", "sessions", "--partition-key", "/user/id", "--ttl", "24h")
	require.Equal(t, "24h0m0s", created.DefaultTTL)
	list := ok("docs", "container", "list")
	require.Contains(t, list, "NAME")
	require.Regexp(t, `devices\s+/deviceId\s+until deleted`, list)
	require.Regexp(t, `sessions\s+/user/id\s+24h0m0s`, list)
	var listed struct{ Containers []gateway.ContainerJSON }
	okJSON(&listed, "docs", "container", "list")
	require.Len(t, listed.Containers, 2)

	// Put: standard input, a file, an array, --create, --if-match.
	withInput(t, `{"id":"r1","deviceId":"dev-1","battery":17,"mode":"flight"}`)
	require.Equal(t, `stored document r1 in partition dev-1 of container devices: etag "1", lsn 1`+"\n", ok("docs", "put", "devices"))
	withInput(t, `{"id":"r2","deviceId":"dev-1","battery":60}`)
	require.Contains(t, ok("docs", "put", "devices", "-"), "stored document r2")
	require.Equal(t, `created document r3 in partition dev 2/x of container devices: etag "3", lsn 3`+"\n",
		ok("docs", "put", "devices", writeFile(t, "r3.json", `{"id":"r3","deviceId":"dev 2/x","battery":5}`), "--create"))
	seed := writeFile(t, "seed.json", `[{"id":"s1","deviceId":"dev-3","battery":90},{"id":"s2","deviceId":"dev-3","battery":10}]`)
	require.Equal(t, "stored 2 documents in container devices: lsn 4 to 5\n", ok("docs", "put", "devices", seed))
	var stored docstore.Document
	okJSON(&stored, "docs", "put", "devices", writeFile(t, "r1.json", `{"id":"r1","deviceId":"dev-1","battery":16,"mode":"flight"}`), "--if-match", "1")
	require.Equal(t, int64(6), stored.LSN, "an unquoted ETag is quoted")
	require.Equal(t, `replaced document r1 in partition dev-1 of container devices: etag "7", lsn 7`+"\n",
		ok("docs", "put", "devices", writeFile(t, "r1b.json", `{"id":"r1","deviceId":"dev-1","battery":15,"mode":"flight"}`), "--if-match", stored.ETag))

	// Get: indented text, or the document as stored.
	got := ok("docs", "get", "devices", "dev-1", "r1")
	require.Contains(t, got, "\n  \"battery\": 15,\n")
	var body map[string]any
	okJSON(&body, "docs", "get", "devices", "dev 2/x", "r3")
	require.Equal(t, map[string]any{"id": "r3", "deviceId": "dev 2/x", "battery": float64(5),
		"_etag": `"3"`, "_lsn": float64(3), "_ts": body["_ts"]}, body)

	// Query: one document per line; pages.
	low := ok("docs", "query", "devices", "c.battery < 20")
	require.Equal(t, 3, strings.Count(low, "\n"), low)
	for _, id := range []string{`"id":"r1"`, `"id":"r3"`, `"id":"s2"`} {
		require.Contains(t, low, id)
	}
	require.Equal(t, 1, strings.Count(ok("docs", "query", "devices", "c.battery < 20", "--partition-key", "dev-1"), "\n"))
	out, errOut := runOK(t, srv, "docs", "query", "devices", "c.battery > 100")
	require.Empty(t, out)
	require.Equal(t, "no documents match in container devices\n", errOut)
	// Standard output holds only the documents, one JSON object per
	// line, for jq; the hint is on standard error.
	paged, hint := runOK(t, srv, "docs", "query", "devices", "--max", "2")
	require.Equal(t, 2, strings.Count(paged, "\n"))
	for l := range strings.Lines(paged) {
		require.True(t, json.Valid([]byte(l)), "not JSON: %q", l)
	}
	require.Contains(t, hint, "more results: add --all, or --continuation ")
	require.Equal(t, 5, strings.Count(ok("docs", "query", "devices", "--max", "2", "--all"), "\n"))
	var page docstore.Page
	okJSON(&page, "docs", "query", "devices", "SELECT * FROM c WHERE c.battery >= 60 ORDER BY c.battery DESC")
	require.Len(t, page.Documents, 2)
	require.Equal(t, "s1", page.Documents[0].ID)

	// Delete, with and without If-Match.
	code, _, errOut := sluiceCmd(t, "docs", "delete", "devices", "dev-1", "r2", "--if-match", `"1"`, "--server", srv)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `etag does not match: document "r2" has ETag "2", not "1": read it again and retry`)
	require.Equal(t, "deleted document r2 in partition dev-1 of container devices\n", ok("docs", "delete", "devices", "dev-1", "r2", "--if-match", `"2"`))
	var deleted map[string]string
	okJSON(&deleted, "docs", "delete", "devices", "dev-3", "s1")
	require.Equal(t, map[string]string{"container": "devices", "partition_key": "dev-3", "deleted": "s1"}, deleted)

	// The feed: each document once, as it is now; tombstones; continuations.
	feed, resume := runOK(t, srv, "docs", "feed", "devices")
	lines := strings.Split(strings.TrimSpace(feed), "\n")
	require.Len(t, lines, 5, feed)
	require.Regexp(t, `^3  \S+ \S+  dev 2/x  r3  \{"id":"r3",.*"_etag":"\\"3\\"",.*"_lsn":3\}$`, lines[0])
	require.Regexp(t, `^9  \S+ \S+  dev-3  s1  deleted$`, lines[4])
	require.Equal(t, "5 changes; continue after lsn 9 with --after 9\n", resume, "where to resume is a note, on standard error")
	feed, resume = runOK(t, srv, "docs", "feed", "devices", "--after", "5", "--limit", "2")
	require.Equal(t, 2, strings.Count(feed, "\n"))
	require.Equal(t, "2 changes; continue after lsn 8 with --after 8\n", resume)
	for _, from := range []string{"now", time.Now().Add(time.Hour).Format(time.RFC3339)} {
		feed, resume = runOK(t, srv, "docs", "feed", "devices", "--from", from)
		require.Empty(t, feed)
		require.Equal(t, "0 changes; continue after lsn 9 with --after 9\n", resume)
	}
	_, resume = runOK(t, srv, "docs", "feed", "devices", "--from", "1h")
	require.Contains(t, resume, "5 changes")
	jsonLines := strings.Split(strings.TrimSpace(ok("docs", "feed", "devices", "--after", "7", "--json")), "\n")
	require.Len(t, jsonLines, 2, "one JSON object per change")
	var change docstore.Document
	require.NoError(t, json.Unmarshal([]byte(jsonLines[1]), &change))
	require.Equal(t, docstore.Document{ID: "s1", PartitionKey: "dev-3", ETag: `"9"`, TS: change.TS, LSN: 9, Deleted: true}, change)

	// Ids and partition keys "." and ".." are names, not path steps.
	withInput(t, `{"id":"..","deviceId":"."}`)
	ok("docs", "put", "devices", "--create")
	require.Contains(t, ok("docs", "get", "devices", ".", ".."), `"id": ".."`)
	ok("docs", "delete", "devices", ".", "..")

	// Delete the containers.
	require.Equal(t, "deleted container devices\n", ok("docs", "container", "delete", "devices", "--yes"))
	var deletedContainer map[string]string
	okJSON(&deletedContainer, "docs", "container", "delete", "sessions", "--yes")
	require.Equal(t, map[string]string{"deleted": "sessions"}, deletedContainer)
	require.NotContains(t, ok("docs", "container", "list"), "devices")
}

func TestDocsCommandErrors(t *testing.T) {
	srv := startInstance(t)
	code, _, errOut := sluiceCmd(t, "docs", "container", "create", "c", "--partition-key", "/k", "--server", srv)
	require.Equal(t, 0, code, errOut)
	withInput(t, `{"id":"a","k":"p"}`)
	code, _, errOut = sluiceCmd(t, "docs", "put", "c", "--server", srv)
	require.Equal(t, 0, code, errOut)
	feed := func() string {
		t.Helper()
		code, out, errOut := sluiceCmd(t, "docs", "feed", "c", "--json", "--server", srv)
		require.Equal(t, 0, code, errOut)
		return out
	}
	before := feed()

	good := writeFile(t, "good.json", `{"id":"b","k":"p"}`)
	array := writeFile(t, "array.json", `[{"id":"b","k":"p"}]`)
	for _, tc := range []struct {
		args  []string
		stdin string
		code  int
		msg   string
	}{
		{[]string{"docs", "frobnicate"}, "", 2, "unknown verb \"frobnicate\"; run 'sluice docs --help'"},
		{[]string{"docs", "container"}, "", 2, "missing verb"},
		{[]string{"docs", "container", "frobnicate"}, "", 2, "run 'sluice docs container --help'"},
		{[]string{"docs", "container", "create"}, "", 2, "give exactly one container name"},
		{[]string{"docs", "container", "create", "x"}, "", 2, "give --partition-key"},
		{[]string{"docs", "container", "create", "x", "--partition-key", "/k", "--ttl", "forever"}, "", 2, "invalid value"},
		{[]string{"docs", "container", "create", "bad name", "--partition-key", "/k", "--server", srv}, "", 1, `container name "bad name"`},
		{[]string{"docs", "container", "create", "x", "--partition-key", "k", "--server", srv}, "", 1, "partition key path"},
		{[]string{"docs", "container", "create", "c", "--partition-key", "/k", "--server", srv}, "", 1, "already exists"},
		{[]string{"docs", "container", "delete", "c"}, "", 2, "add --yes to confirm"},
		{[]string{"docs", "container", "delete", "nope", "--yes", "--server", srv}, "", 1, "container nope not found"},
		{[]string{"docs", "get", "c", "p"}, "", 2, "give the container, the document's partition key and its id"},
		{[]string{"docs", "get", "nope", "p", "a", "--server", srv}, "", 1, "container nope not found: create it"},
		{[]string{"docs", "get", "c", "q", "a", "--server", srv}, "", 1, `document "a" not found in partition "q" of container c`},
		{[]string{"docs", "put"}, "", 2, "give the container"},
		{[]string{"docs", "put", "nope", good, "--server", srv}, "", 1, "container nope not found"},
		{[]string{"docs", "put", "c", writeFile(t, "bad.json", `{"id":"b",`), "--server", srv}, "", 1, "invalid JSON at byte offset 10"},
		{[]string{"docs", "put", "c", "--server", srv}, `{"id": "b", "k": tru}`, 1, "invalid JSON at byte offset 20"},
		{[]string{"docs", "put", "c", "-", "--server", srv}, `{"id":"b"}`, 1, "no partition key at /k"},
		{[]string{"docs", "put", "c", "--server", srv}, "  \n", 2, "standard input is empty"},
		{[]string{"docs", "put", "c", filepath.Join(t.TempDir(), "missing.json"), "--server", srv}, "", 1, "read the document"},
		{[]string{"docs", "put", "c", good, "--create", "--if-match", `"1"`}, "", 2, "--create and --if-match exclude each other"},
		{[]string{"docs", "put", "c", array, "--create"}, "", 2, "holds an array"},
		{[]string{"docs", "put", "c", writeFile(t, "bad-array.json", `[{"id":"b","k":"p"},{"id":"c"}]`), "--server", srv}, "", 1, "document 1: invalid document: it has no partition key at /k"},
		{[]string{"docs", "put", "c", "--create", "--server", srv}, `{"id":"a","k":"p"}`, 1, "already exists"},
		{[]string{"docs", "put", "c", "--if-match", `"9"`, "--server", srv}, `{"id":"a","k":"p"}`, 1, "etag does not match"},
		{[]string{"docs", "put", "c", "--if-match", `"1"`, "--server", srv}, `{"id":"a"}`, 1, "standard input: invalid document: it has no partition key at /k"},
		{[]string{"docs", "put", "c", "--if-match", `"1"`, "--server", srv}, `{"id":"zz","k":"p"}`, 1, `document "zz" not found`},
		{[]string{"docs", "put", "nope", "--if-match", `"1"`, "--server", srv}, `{"id":"a","k":"p"}`, 1, "container nope not found"},
		{[]string{"docs", "delete", "c", "p"}, "", 2, "give the container"},
		{[]string{"docs", "delete", "c", "p", "zz", "--server", srv}, "", 1, `document "zz" not found`},
		{[]string{"docs", "delete", "c", "p", "a", "--if-match", "7", "--server", srv}, "", 1, "etag does not match"},
		{[]string{"docs", "query"}, "", 2, "give the container"},
		{[]string{"docs", "query", "c", "c.x", "= 1"}, "", 2, "one query (quote it"},
		{[]string{"docs", "query", "nope", "--server", srv}, "", 1, "container nope not found"},
		{[]string{"docs", "query", "c", "c.x = = 1", "--server", srv}, "", 1, "invalid query"},
		{[]string{"docs", "query", "c", "--max", "5000", "--server", srv}, "", 1, "max items 5000: use 1 to 1000"},
		{[]string{"docs", "query", "c", "--max", "many"}, "", 2, "invalid value"},
		{[]string{"docs", "feed", "nope", "--server", srv}, "", 1, "container nope not found"},
		{[]string{"docs", "feed", "c", "--from", "yesterday"}, "", 2, `--from "yesterday": use start, now`},
		{[]string{"docs", "feed", "c", "--from", "now", "--after", "3"}, "", 2, "not both"},
		{[]string{"docs", "feed", "c", "--after", "-1"}, "", 2, "--after -1"},
		{[]string{"docs", "feed", "c", "--limit", "0"}, "", 2, "--limit 0"},
		{[]string{"docs", "feed", "c", "--follow=maybe"}, "", 2, "invalid boolean value"},
		{[]string{"docs", "container", "list", "--server", "http://127.0.0.1:1"}, "", 1, "is 'sluice dev' or 'sluice serve' running"},
	} {
		withInput(t, tc.stdin)
		code, _, errOut := sluiceCmd(t, tc.args...)
		require.Equal(t, tc.code, code, "sluice %v: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.msg, "sluice %v", tc.args)
		require.True(t, strings.HasPrefix(errOut, "sluice docs: "), errOut)
	}
	require.Equal(t, before, feed(), "nothing was written")
}

func TestDocsHelp(t *testing.T) {
	for _, args := range [][]string{
		{"docs", "container", "create"}, {"docs", "container", "list"}, {"docs", "container", "delete"},
		{"docs", "get"}, {"docs", "put"}, {"docs", "delete"}, {"docs", "query"}, {"docs", "feed"},
	} {
		code, out, _ := sluiceCmd(t, append(args, "--help")...)
		require.Equal(t, 0, code, "sluice %v --help", args)
		require.Contains(t, out, "Usage: sluice "+strings.Join(args, " "))
		require.Contains(t, out, "Example")
		require.Contains(t, out, "-json")
	}
	for _, args := range [][]string{{"docs", "--help"}, {"docs", "container", "--help"}} {
		code, out, _ := sluiceCmd(t, args...)
		require.Equal(t, 0, code)
		require.Contains(t, out, "Commands:")
	}
	_, out, _ := sluiceCmd(t, "--help")
	require.Contains(t, out, "docs")
}

// watchedWriter is an output that a test can wait on.
type watchedWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (w *watchedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return w.buf.Write(p)
}

func (w *watchedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the output contains s.
func (w *watchedWriter) waitFor(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for !strings.Contains(w.String(), s) {
		select {
		case <-w.wrote:
		case <-timeout:
			t.Fatalf("the output has no %q: %s", s, w.String())
		}
	}
}

func TestDocsFeedFollow(t *testing.T) {
	srv := startInstance(t)
	code, _, errOut := sluiceCmd(t, "docs", "container", "create", "c", "--partition-key", "/k", "--server", srv)
	require.Equal(t, 0, code, errOut)
	put := func(doc string) {
		t.Helper()
		// Through the API: the CLI's output is a package variable, which the
		// following command uses meanwhile.
		resp, err := http.Post(srv+"/api/v1/containers/c/docs", "application/json", strings.NewReader(doc))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
	}
	put(`{"id":"a","k":"p"}`)

	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	old := interruptContext
	interruptContext = func() (context.Context, context.CancelFunc) { return ctx, func() {} }
	t.Cleanup(func() { interruptContext = old })

	out := &watchedWriter{wrote: make(chan struct{}, 1)}
	var errBuf bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run([]string{"docs", "feed", "c", "--follow", "--server", srv}, out, &errBuf) }()
	out.waitFor(t, "  p  a  {")
	put(`{"id":"b","k":"p"}`)
	out.waitFor(t, "  p  b  {")

	interrupt()
	select {
	case code := <-done:
		require.Equal(t, 0, code, errBuf.String())
	case <-time.After(30 * time.Second):
		t.Fatal("feed --follow did not stop when interrupted")
	}
	require.Equal(t, 2, strings.Count(out.String(), "\n"), out.String())
	require.Equal(t, "2 changes; continue after lsn 2 with --after 2\n", errBuf.String())
}
