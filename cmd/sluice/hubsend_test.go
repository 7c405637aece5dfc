package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/gateway"
)

// tailBodies returns the bodies of a hub's events, oldest first.
func tailBodies(t *testing.T, srv, hub string) []string {
	t.Helper()
	out, _ := runOK(t, srv, "hub", "tail", hub, "--json", "--limit", "1000")
	var bodies []string
	for l := range strings.Lines(out) {
		var e gateway.EventJSON
		require.NoError(t, json.Unmarshal([]byte(l), &e))
		if e.Body == nil {
			bodies = append(bodies, "base64:"+string(e.BodyBase64))
			continue
		}
		bodies = append(bodies, *e.Body)
	}
	return bodies
}

// TestHubSendRawBodies: bodies that are not JSON are sent as their bytes,
// several at once too, mixed with JSON ones, with or without --lines.
func TestHubSendRawBodies(t *testing.T) {
	srv := startInstance(t)
	runOK(t, srv, "hub", "create", "logs", "--partitions", "1")

	out, _ := runOK(t, srv, "hub", "send", "logs", "GET /index.html 200", "GET /missing 404")
	require.Equal(t, 2, strings.Count(out, "stored in partition 0"), out)
	runOK(t, srv, "hub", "send", "logs", `{"level":"info"}`, "plain, after JSON", "--partition", "0")
	withInput(t, "\xff\xfe not UTF-8")
	runOK(t, srv, "hub", "send", "logs")
	withInput(t, "line one\r\n{\"n\": 2}\n\n   \nline \xff three\nlast line without a newline")
	out, _ = runOK(t, srv, "hub", "send", "logs", "--lines")
	require.Equal(t, 4, strings.Count(out, "stored in partition 0"), "blank lines are not events: %s", out)

	require.Equal(t, []string{
		"GET /index.html 200", "GET /missing 404",
		`{"level":"info"}`, "plain, after JSON",
		"base64:\xff\xfe not UTF-8",
		"line one", `{"n":2}`, "base64:line \xff three", "last line without a newline",
	}, tailBodies(t, srv, "logs"))
}

// TestHubSendLinesStreams: with --lines, events are sent while standard
// input is still open, a batch at a time, as tail -f | sluice hub send
// --lines needs; the command ends when the input does.
func TestHubSendLinesStreams(t *testing.T) {
	srv := startInstance(t)
	runOK(t, srv, "hub", "create", "logs", "--partitions", "1")
	old := linesLinger
	linesLinger = 10 * time.Millisecond
	t.Cleanup(func() { linesLinger = old })
	in, w := io.Pipe()
	oldIn := stdin
	stdin = in
	t.Cleanup(func() { stdin = oldIn })

	out := &watchedWriter{wrote: make(chan struct{}, 1)}
	var errOut strings.Builder
	done := make(chan int, 1)
	go func() { done <- run([]string{"hub", "send", "logs", "--lines", "--server", srv}, out, &errOut) }()

	_, err := io.WriteString(w, "first\n")
	require.NoError(t, err)
	out.waitFor(t, "stored in partition 0 at sequence")
	_, err = io.WriteString(w, "second\nthird\n")
	require.NoError(t, err)
	for strings.Count(out.String(), "stored in partition") < 3 {
		select {
		case <-out.wrote:
		case <-time.After(time.Minute):
			t.Fatalf("the second and third lines were not sent before the input ended: %s", out.String())
		}
	}
	require.NoError(t, w.Close())
	select {
	case code := <-done:
		require.Equal(t, 0, code, errOut.String())
	case <-time.After(time.Minute):
		t.Fatal("hub send --lines did not end with its input")
	}
	require.Equal(t, 3, strings.Count(out.String(), "stored in partition"))
	require.Equal(t, []string{"first", "second", "third"}, tailBodies(t, srv, "logs"))
}

func TestHubSendRefusals(t *testing.T) {
	srv := startInstance(t)
	runOK(t, srv, "hub", "create", "logs", "--partitions", "2")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--partition", "-5", "x"}, "--partition -5: give a partition number, 0 or more"},
		{[]string{"--partition", "1", "--key", "k", "x"}, "give --key or --partition, not both"},
		{[]string{"--lines", "x"}, "give BODY arguments or --lines, not both"},
		{[]string{"--lines", "--message-id", "m"}, "--message-id names one event"},
	} {
		code, out, errOut := sluiceCmd(t, append(append([]string{"hub", "send", "logs"}, tc.args...), "--server", srv)...)
		require.Equal(t, 2, code, "sluice hub send %v: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.msg)
		require.Empty(t, out)
	}
	withInput(t, "\n\n")
	code, _, errOut := sluiceCmd(t, "hub", "send", "logs", "--lines", "--server", srv)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "no events: standard input has no lines")
	withInput(t, "ok\n"+strings.Repeat("x", gateway.DefaultMaxEventBytes+1)+"\n")
	code, out, errOut := sluiceCmd(t, "hub", "send", "logs", "--lines", "--server", srv)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "line 2 is longer than 1048576 bytes")
	require.Contains(t, out, "stored in partition", "the lines before were sent")
	require.Empty(t, tailBodies(t, srv, "logs")[1:])
}

// TestServerAddress: --server may leave out the scheme, and an answer that
// is not the Sluice API's is summarised, not printed whole.
func TestServerAddress(t *testing.T) {
	srv := startInstance(t)
	out, _ := runOK(t, strings.TrimPrefix(srv, "http://"), "hub", "list")
	require.Contains(t, out, "NAME")

	page := "<!DOCTYPE html>\n<html><head><title>Grafana</title></head>\n<body>" + strings.Repeat("<div>lots of markup</div>\n", 200) + "</body></html>"
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/hubs":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"message":"Not found","status":404}`)
		case "/api/v1/queues":
			_, _ = io.WriteString(w, page) // 200
		default:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, page)
		}
	}))
	t.Cleanup(other.Close)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"hub", "send", "logs", "x"}, `answered 404 Not Found: "Grafana", which is not an answer of the Sluice API`},
		{[]string{"hub", "list"}, `answered 404 Not Found: "{\"message\":\"Not found\",\"status\":404}", which is not`},
		{[]string{"queue", "list"}, `answered 200 OK: "Grafana", which is not an answer of the Sluice API`},
		{[]string{"blob", "stat", "staging", "a.txt"}, `answered 404 Not Found: "Grafana"`},
	} {
		code, out, errOut := sluiceCmd(t, append(tc.args, "--server", other.URL)...)
		require.Equal(t, 1, code, "sluice %v: %s", tc.args, errOut)
		require.Empty(t, out)
		require.Contains(t, errOut, other.URL+" "+tc.want)
		require.Contains(t, errOut, "is --server (or SLUICE_SERVER) the address of a sluice instance?")
		require.NotContains(t, errOut, "markup", "the page is not printed")
		require.Less(t, len(errOut), 400, "a short summary: %s", errOut)
	}
}

func TestVersionFlag(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-v", "-version"} {
		code, out, errOut := sluiceCmd(t, arg)
		require.Equal(t, 0, code, "sluice %s: %s", arg, errOut)
		require.Equal(t, "sluice "+version+"\n", out, "sluice %s", arg)
	}
}
