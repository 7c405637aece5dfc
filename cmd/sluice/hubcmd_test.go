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
