package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHubSendMessageID(t *testing.T) {
	srv := startInstance(t)
	send := func(args ...string) (code int, out, errOut string) {
		t.Helper()
		return sluiceCmd(t, append(append([]string{"hub", "send", "orders"}, args...), "--server", srv, "--json")...)
	}
	position := func(args ...string) string {
		t.Helper()
		code, out, errOut := send(args...)
		require.Equal(t, 0, code, "sluice hub send %v: %s", args, errOut)
		var resp struct {
			Events []json.RawMessage
		}
		require.NoError(t, json.Unmarshal([]byte(out), &resp))
		require.Len(t, resp.Events, 1)
		return string(resp.Events[0])
	}
	code, _, errOut := sluiceCmd(t, "hub", "create", "orders", "--partitions", "2", "--server", srv)
	require.Equal(t, 0, code, errOut)

	// JSON, raw and enveloped (with properties) bodies: each sent twice,
	// stored once.
	paid := position(`{"order":17,"paid":true}`, "--message-id", "o-17-paid")
	require.Equal(t, paid, position(`{"order":17,"paid":true}`, "--message-id", "o-17-paid"))
	note := position("plain note", "--message-id", "o-17-note")
	require.Equal(t, note, position("plain note", "--message-id", "o-17-note"))
	require.NotEqual(t, paid, note)
	shipped := position("shipped", "--property", "by=cli", "--message-id", "o-17-shipped")
	require.Equal(t, shipped, position("shipped", "--property", "by=cli", "--message-id", "o-17-shipped"))

	code, out, errOut := sluiceCmd(t, "hub", "tail", "orders", "--json", "--server", srv)
	require.Equal(t, 0, code, errOut)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 3, "three events stored: %s", out)

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"a", "b", "--message-id", "m"}, "--message-id names one event, but there are 2"},
		{[]string{"a", "--message-id", strings.Repeat("m", 129)}, "129 bytes, the limit is 128"},
		{[]string{"a", "--message-id", "a\tb"}, "control character"},
	} {
		code, _, errOut := send(tc.args...)
		require.Equal(t, 2, code, "sluice hub send %v", tc.args)
		require.Contains(t, errOut, tc.msg)
	}
}

// TestHubReplayErrors: the server's refusals are printed as they are, with
// the CLI's flag where the API's member is named.
func TestHubReplayErrors(t *testing.T) {
	srv := startInstance(t)
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return sluiceCmd(t, append(append([]string{"hub"}, args...), "--server", srv)...)
	}
	code, _, errOut := run("create", "events", "--partitions", "1")
	require.Equal(t, 0, code, errOut)
	code, _, errOut = run("send", "events", "1", "2")
	require.Equal(t, 0, code, errOut)

	for _, tc := range []struct {
		args []string
		msg  []string
	}{
		{[]string{"replay", "events", "--group", "audit", "--earliest", "--grace", "0s"},
			[]string{"consumer group audit of hub events not found", "it has none yet", "give --create"}},
		{[]string{"replay", "events", "--sequence", "0=1099511627776", "--grace", "0s"},
			[]string{"replay sequence 1099511627776 for partition 0", "past the partition's last event"}},
		{[]string{"replay", "events", "--time", "1969-07-20T20:17:00Z", "--grace", "0s"},
			[]string{`time "1969-07-20T20:17:00Z" is before 1970`}},
		{[]string{"lag", "events", "--group", "audit"}, []string{"consumer group audit of hub events not found"}},
	} {
		code, _, errOut := run(tc.args...)
		require.Equal(t, 1, code, "sluice hub %v", tc.args)
		for _, m := range tc.msg {
			require.Contains(t, errOut, m, "sluice hub %v", tc.args)
		}
		require.NotContains(t, errOut, `"create": true`)
	}
	code, out, errOut := run("replay", "events", "--group", "audit", "--earliest", "--grace", "0s", "--create")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "consumer group audit of hub events moved")
	code, out, errOut = run("lag", "events", "--group", "audit")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "2 events behind")
}
