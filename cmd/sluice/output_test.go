package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/gateway"
)

// requireOnlyJSON fails unless out is nothing but JSON objects (one per
// line, or indented), as jq reads them.
func requireOnlyJSON(t *testing.T, out string, args []string) {
	t.Helper()
	require.NotEmpty(t, strings.TrimSpace(out), "sluice %v printed nothing", args)
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var v json.RawMessage
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(t, err, "sluice %v: standard output is not only JSON:\n%s", args, out)
		require.True(t, bytes.HasPrefix(v, []byte("{")), "sluice %v printed a JSON value that is not an object: %s", args, v)
	}
}

// TestStdoutHoldsOnlyData: every command whose output may go to a pipe
// prints, with --json, only JSON on standard output; hints, progress and
// notes go to standard error. Without --json, commands that print data
// line by line (documents, changes, events) print nothing else either.
func TestStdoutHoldsOnlyData(t *testing.T) {
	srv := startInstance(t)
	ok := func(args ...string) string {
		t.Helper()
		out, _ := runOK(t, srv, args...)
		return out
	}
	ok("hub", "create", "orders", "--partitions", "2")
	ok("hub", "send", "orders", `{"id":1}`, "plain text", `{"id":3}`)
	ok("queue", "create", "jobs")
	ok("queue", "send", "jobs", "job 1", "job 2")
	ok("queue", "create", "idle")
	// A message in a poison queue is a dead letter.
	ok("queue", "create", "jobs-poison")
	ok("queue", "send", "jobs-poison", "poisoned")
	ok("docs", "container", "create", "devices", "--partition-key", "/deviceId")
	withInput(t, `[{"id":"d1","deviceId":"d1","battery":10},{"id":"d2","deviceId":"d2","battery":20},{"id":"d3","deviceId":"d3","battery":30}]`)
	ok("docs", "put", "devices", "-")
	ok("blob", "container", "create", "staging")
	withInput(t, `{"rows":2}`)
	ok("blob", "put", "staging", "in/changes.json", "-")
	ok("blob", "container", "create", "empty")

	var letters struct {
		DeadLetters []gateway.DeadLetterJSON `json:"dead_letters"`
	}
	require.NoError(t, json.Unmarshal([]byte(ok("deadletters", "list", "--json")), &letters))
	require.Len(t, letters.DeadLetters, 1)
	letter := strconv.FormatUint(letters.DeadLetters[0].ID, 10)

	for _, args := range [][]string{
		{"hub", "list"},
		{"hub", "describe", "orders"},
		{"hub", "tail", "orders"},
		{"hub", "tail", "orders", "--limit", "2"},
		{"hub", "lag", "orders"},
		{"hub", "send", "orders", "more", "text"},
		{"queue", "list"},
		{"queue", "describe", "jobs"},
		{"queue", "depth", "jobs"},
		{"queue", "peek", "jobs"},
		{"queue", "peek", "idle", "--max", "1"},
		{"queue", "receive", "jobs", "--complete"},
		{"queue", "receive", "jobs", "--max", "5"},
		{"deadletters", "list"},
		{"deadletters", "list", "--function", "nobody"},
		{"deadletters", "show", "jobs-poison", letter},
		{"docs", "container", "list"},
		{"docs", "get", "devices", "d1", "d1"},
		{"docs", "query", "devices", "--max", "2"},
		{"docs", "query", "devices", "c.battery > 100"},
		{"docs", "query", "devices", "--max", "1", "--all"},
		{"docs", "feed", "devices"},
		{"docs", "feed", "devices", "--from", "now"},
		{"blob", "container", "list"},
		{"blob", "list", "staging"},
		{"blob", "list", "empty"},
		{"blob", "stat", "staging", "in/changes.json"},
		{"blob", "get", "staging", "in/changes.json", "-o", filepath.Join(t.TempDir(), "changes.json")},
		{"breaker", "list"},
		{"key", "list"},
	} {
		out, _ := runOK(t, srv, append(args, "--json")...)
		if args[0] == "docs" && args[1] == "feed" && args[len(args)-1] == "now" {
			require.Empty(t, out, "no changes: no JSON lines")
			continue
		}
		requireOnlyJSON(t, out, args)
	}

	// --lines, with --json: one answer per batch.
	withInput(t, "line 1\n{\"id\":9}\n\nline 3\n")
	out, _ := runOK(t, srv, "hub", "send", "orders", "--lines", "--json")
	requireOnlyJSON(t, out, []string{"hub", "send", "--lines"})

	// Text output that is data, one item per line: nothing else on it.
	out, errOut := runOK(t, srv, "docs", "query", "devices", "--max", "2")
	require.Equal(t, 2, strings.Count(out, "\n"))
	for l := range strings.Lines(out) {
		require.True(t, json.Valid([]byte(l)), "docs query prints documents only, one per line: %q", l)
	}
	require.Contains(t, errOut, "more results: add --all, or --continuation")
	out, errOut = runOK(t, srv, "docs", "feed", "devices")
	require.Equal(t, 3, strings.Count(out, "\n"), out)
	require.Contains(t, errOut, "3 changes; continue after lsn 3")
	out, _ = runOK(t, srv, "hub", "tail", "orders")
	require.Equal(t, 8, strings.Count(out, "\n"), "one line per event: %s", out)
	out, errOut = runOK(t, srv, "blob", "get", "staging", "in/changes.json")
	require.Equal(t, `{"rows":2}`, out, "the content, as it is")
	require.Empty(t, errOut)
}
