package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/gateway"
)

// withInput makes queue send read in as its standard input.
func withInput(t *testing.T, in string) {
	t.Helper()
	old := stdin
	stdin = strings.NewReader(in)
	t.Cleanup(func() { stdin = old })
}

func TestQueueCommands(t *testing.T) {
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

	require.Contains(t, ok("queue", "create", "orders", "--lock", "5s"), "created queue orders: lock 5s, messages kept 168h0m0s")
	var created gateway.QueueJSON
	okJSON(&created, "queue", "create", "keep", "--ttl", "-1s", "--max-message-bytes", "1000")
	require.Equal(t, "-1s", created.TTL)
	require.Equal(t, 1000, created.MaxMessageBytes)
	list := ok("queue", "list")
	require.Contains(t, list, "orders")
	require.Contains(t, list, "until completed")
	var listed struct{ Queues []gateway.QueueJSON }
	okJSON(&listed, "queue", "list")
	require.GreaterOrEqual(t, len(listed.Queues), 2)

	// Send: arguments, standard input ('-' or none), properties, delay.
	require.Equal(t, "sent message 1 to queue orders\n", ok("queue", "send", "orders", `{"order":1}`, "--property", "tenant=acme", "--property", "k=v=w"))
	withInput(t, "from stdin\n")
	require.Contains(t, ok("queue", "send", "orders"), "sent message 2")
	withInput(t, "\xff\x00binary")
	require.Contains(t, ok("queue", "send", "orders", "-", "--ttl", "1h"), "sent message 3")
	var sent gateway.QueueSendResponse
	okJSON(&sent, "queue", "send", "orders", "a", "b")
	require.Equal(t, gateway.QueueSendResponse{Count: 2, IDs: []uint64{4, 5}}, sent)
	require.Contains(t, ok("queue", "send", "orders", "later", "--delay", "1h"), "visible in 1h0m0s")

	require.Contains(t, ok("queue", "depth", "orders"), "queue orders: 5 messages (0 locked, 5 visible), 1 delayed; oldest enqueued")
	var stats gateway.QueueStatsJSON
	okJSON(&stats, "queue", "depth", "orders")
	require.Equal(t, uint64(5), stats.Depth)
	require.Equal(t, uint64(1), stats.Delayed)
	desc := ok("queue", "describe", "orders")
	require.Contains(t, desc, "queue orders: lock 5s")
	require.Contains(t, desc, "DEPTH")

	// Peek shows bodies and properties, and locks nothing.
	peek := ok("queue", "peek", "orders", "--max", "3")
	require.Contains(t, peek, "message 1 ")
	require.Contains(t, peek, "k=v=w  tenant=acme")
	require.Contains(t, peek, `{"order":1}`)
	require.Contains(t, peek, "from stdin\n")
	require.Contains(t, peek, "<binary, 8 bytes")
	require.NotContains(t, peek, "lock token")
	require.NotContains(t, peek, "message 4")

	// Receive prints lock tokens; complete and abandon take them.
	var got gateway.QueueMessagesResponse
	okJSON(&got, "queue", "receive", "orders", "--max", "2")
	require.Len(t, got.Messages, 2)
	require.Equal(t, `{"order":1}`, *got.Messages[0].BodyText)
	require.Equal(t, map[string]string{"tenant": "acme", "k": "v=w"}, got.Messages[0].Properties)
	require.Equal(t, "from stdin\n", *got.Messages[1].BodyText)
	require.Contains(t, ok("queue", "depth", "orders"), "(2 locked, 3 visible)")
	require.Equal(t, "completed 1 message(s) of queue orders\n", ok("queue", "complete", "orders", got.Messages[0].LockToken))
	var abandoned map[string]int
	okJSON(&abandoned, "queue", "abandon", "orders", got.Messages[1].LockToken)
	require.Equal(t, map[string]int{"abandoned": 1}, abandoned)

	// The abandoned message is stored again, behind the others.
	text := ok("queue", "receive", "orders", "--max", "2", "--wait", "1s")
	require.Equal(t, 2, strings.Count(text, "lock token: $JS.ACK."), text)
	require.Contains(t, text, "message 3 ")

	// Drain with --complete; the two locked ones stay.
	drained, note := runOK(t, srv, "queue", "receive", "orders", "--max", "10", "--complete")
	require.Contains(t, drained, "from stdin")
	require.Contains(t, drained, "dequeue count 2", "the abandoned message comes again, counting its delivery")
	require.Contains(t, drained, "message 2 ", "with its ID")
	require.Equal(t, "completed 2 message(s)\n", note)
	require.Contains(t, ok("queue", "depth", "orders"), "2 messages (2 locked, 0 visible)")
	out, note := runOK(t, srv, "queue", "receive", "orders")
	require.Empty(t, out)
	require.Contains(t, note, "no messages")
	okJSON(&got, "queue", "receive", "orders")
	require.Empty(t, got.Messages)

	// Purge removes the locked and delayed ones too.
	require.Equal(t, "purged 3 messages from queue orders\n", ok("queue", "purge", "orders", "--yes"))
	okJSON(&stats, "queue", "depth", "orders")
	require.Zero(t, stats.Depth+stats.Delayed)
	var purged gateway.QueuePurgeResponse
	okJSON(&purged, "queue", "purge", "orders", "--yes")
	require.Zero(t, purged.Purged)

	require.Equal(t, "deleted queue orders\n", ok("queue", "delete", "orders", "--yes"))
	var deleted map[string]string
	okJSON(&deleted, "queue", "delete", "keep", "--yes")
	require.Equal(t, map[string]string{"deleted": "keep"}, deleted)
	require.NotContains(t, ok("queue", "list"), "orders")
}

func TestQueueCommandErrors(t *testing.T) {
	srv := startInstance(t)
	code, _, errOut := sluiceCmd(t, "queue", "create", "small", "--max-message-bytes", "10", "--server", srv)
	require.Equal(t, 0, code, errOut)
	const token = "$JS.ACK.queue-small.sluice.1.1.1.1.0"
	for _, tc := range []struct {
		args  []string
		input string
		code  int
		msg   string
	}{
		{[]string{"queue"}, "", 2, "missing verb"},
		{[]string{"queue", "frobnicate"}, "", 2, "unknown verb"},
		{[]string{"queue", "create"}, "", 2, "give exactly one queue name"},
		{[]string{"queue", "create", "a", "b"}, "", 2, "give exactly one queue name"},
		{[]string{"queue", "create", "x", "--lock", "soon"}, "", 2, "invalid value"},
		{[]string{"queue", "create", "x", "--lokc", "5s"}, "", 2, "flag provided but not defined: -lokc"},
		{[]string{"queue", "create", "bad.name", "--server", srv}, "", 1, `queue name "bad.name"`},
		{[]string{"queue", "create", "x", "--lock", "10ms", "--server", srv}, "", 1, "lock 10ms: must be between 1s and 12h"},
		{[]string{"queue", "create", "small", "--server", srv}, "", 1, "already exists"},
		{[]string{"queue", "describe", "missing", "--server", srv}, "", 1, "queue missing not found: create it"},
		{[]string{"queue", "depth", "missing", "--server", srv}, "", 1, "sluice queue create missing"},
		{[]string{"queue", "send", "missing", "x", "--server", srv}, "", 1, "queue missing not found"},
		{[]string{"queue", "peek", "missing", "--server", srv}, "", 1, "queue missing not found"},
		{[]string{"queue", "receive", "missing", "--server", srv}, "", 1, "queue missing not found"},
		{[]string{"queue", "complete", "missing", token, "--server", srv}, "", 1, "queue missing not found"},
		{[]string{"queue", "purge", "missing", "--yes", "--server", srv}, "", 1, "queue missing not found"},
		{[]string{"queue", "delete", "missing", "--yes", "--server", srv}, "", 1, "queue missing not found"},
		{[]string{"queue", "send"}, "", 2, "give the queue name"},
		{[]string{"queue", "send", "small", "x", "--property", "novalue"}, "", 2, "name=value"},
		{[]string{"queue", "send", "small", "x", "--delay", "-1s"}, "", 2, "--delay -1s: must not be negative"},
		{[]string{"queue", "send", "small", "-", "-"}, "x", 2, "can be given once"},
		{[]string{"queue", "send", "small", "--server", srv}, "", 2, "standard input is empty"},
		{[]string{"queue", "send", "small", "far too long for this queue", "--server", srv}, "", 1, "limit of queue small is 10 bytes"},
		{[]string{"queue", "send", "small", "x", "--ttl", "10ms", "--server", srv}, "", 1, "ttl 10ms for message 0: must be at least 1s"},
		{[]string{"queue", "receive", "small", "--max", "0", "--server", srv}, "", 1, `max="0": give a number from 1 to 1000`},
		{[]string{"queue", "receive", "small", "--wait", "1m", "--server", srv}, "", 1, `wait="1m0s": give a duration from 0s to 30s`},
		{[]string{"queue", "receive", "small", "--wait", "later"}, "", 2, "invalid value"},
		{[]string{"queue", "peek", "small", "--max", "1001", "--server", srv}, "", 1, `max="1001"`},
		{[]string{"queue", "complete", "small"}, "", 2, "lock token"},
		{[]string{"queue", "complete", "small", "nonsense", "--server", srv}, "", 1, "not a lock token of queue small"},
		{[]string{"queue", "abandon", "small", token, "--delay", "-1s"}, "", 2, "must not be negative"},
		{[]string{"queue", "purge", "small"}, "", 2, "--yes"},
		{[]string{"queue", "delete", "small"}, "", 2, "--yes"},
		{[]string{"queue", "list", "--server", "http://127.0.0.1:1"}, "", 1, "is 'sluice dev' or 'sluice serve' running"},
	} {
		withInput(t, tc.input)
		code, _, errOut := sluiceCmd(t, tc.args...)
		require.Equal(t, tc.code, code, "sluice %v: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.msg, "sluice %v", tc.args)
		require.True(t, strings.HasPrefix(errOut, "sluice queue: "), "sluice %v: %s", tc.args, errOut)
	}
	// None of it wrote a message.
	code, out, errOut := sluiceCmd(t, "queue", "depth", "small", "--json", "--server", srv)
	require.Equal(t, 0, code, errOut)
	var stats gateway.QueueStatsJSON
	require.NoError(t, json.Unmarshal([]byte(out), &stats))
	require.Zero(t, stats.Depth+stats.Delayed)
}

func TestQueueHelp(t *testing.T) {
	withInput(t, "")
	for _, verb := range queueCommands() {
		code, out, _ := sluiceCmd(t, "queue", verb.name, "--help")
		require.Equal(t, 0, code, "sluice queue %s --help", verb.name)
		require.Contains(t, out, "Usage: sluice queue "+verb.name, "sluice queue %s --help", verb.name)
		require.Contains(t, out, "-server", "sluice queue %s --help", verb.name)
		require.Contains(t, out, "-json", "sluice queue %s --help", verb.name)
	}
	for _, verb := range []string{"create", "send", "receive", "complete", "abandon", "depth"} {
		_, out, _ := sluiceCmd(t, "queue", verb, "-h")
		require.Contains(t, out, "sluice queue "+verb+" ", "an example")
	}
	code, out, _ := sluiceCmd(t, "queue", "--help")
	require.Equal(t, 0, code)
	for _, c := range queueCommands() {
		require.Contains(t, out, c.name)
	}
	_, out, _ = sluiceCmd(t, "--help")
	require.Contains(t, out, "queue")
}
