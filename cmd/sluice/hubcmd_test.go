package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/gateway"
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

// TestHubTailLimitIsATotal: --limit counts events over all partitions,
// the oldest first by enqueued time.
func TestHubTailLimitIsATotal(t *testing.T) {
	srv := startInstance(t)
	runOK(t, srv, "hub", "create", "events", "--partitions", "4")
	// One event at a time, each durable before the next is sent, so that
	// their enqueued times follow this order across the partitions.
	partitions := []string{"2", "0", "3", "1", "2", "0", "3", "1"}
	for i, p := range partitions {
		runOK(t, srv, "hub", "send", "events", fmt.Sprintf(`{"n":%d}`, i+1), "--partition", p)
	}
	bodies := func(args ...string) []string {
		t.Helper()
		out, _ := runOK(t, srv, append([]string{"hub", "tail", "events", "--json"}, args...)...)
		var got []string
		for l := range strings.Lines(out) {
			var e gateway.EventJSON
			require.NoError(t, json.Unmarshal([]byte(l), &e))
			got = append(got, *e.Body)
		}
		return got
	}
	require.Equal(t, []string{`{"n":1}`, `{"n":2}`, `{"n":3}`}, bodies("--limit", "3"))
	require.Equal(t, []string{`{"n":1}`, `{"n":2}`, `{"n":3}`, `{"n":4}`, `{"n":5}`, `{"n":6}`, `{"n":7}`, `{"n":8}`}, bodies())
	require.Equal(t, []string{`{"n":2}`, `{"n":6}`}, bodies("--partition", "0", "--limit", "5"))
	out, _ := runOK(t, srv, "hub", "tail", "events", "--limit", "3")
	require.Equal(t, 3, strings.Count(out, "\n"), "three lines of text: %s", out)
	require.Empty(t, bodies("--from", "end"))
	require.Len(t, bodies("--from", "1h"), 8)

	code, _, errOut := sluiceCmd(t, "hub", "tail", "events", "--limit", "0", "--server", srv)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--limit 0: give 1 or more")
	code, _, errOut = sluiceCmd(t, "hub", "tail", "events", "--partition", "4", "--server", srv)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "hub events has partitions 0 to 3")
}

// TestReplayLogsResume: a replay pauses the group's functions, which log
// it, and resumes them, which they log too.
func TestReplayLogsResume(t *testing.T) {
	logs := make(chan string, 100)
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0",
		Logger: slog.New(&messages{prefix: "consumer group", out: logs})})
	app.Hub(sluice.HubConfig{Name: "events", Partitions: 1})
	processed := make(chan struct{}, 100)
	app.Function("count", sluice.HubTrigger{Hub: "events"}, func(ctx context.Context, events []sluice.Event) error {
		processed <- struct{}{}
		return nil
	})
	require.NoError(t, app.Start(context.Background()))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	srv := "http://" + app.Addr()
	runOK(t, srv, "hub", "send", "events", "1")
	waitFor(t, processed, "the function processed the event")

	done := make(chan struct{})
	go func() {
		defer close(done)
		// The grace lets the function see the pause before the checkpoints
		// move and the group resumes.
		_, _, _ = sluiceCmd(t, "hub", "replay", "events", "--earliest", "--grace", "1s", "--server", srv)
	}()
	waitForLog(t, logs, "consumer group paused")
	waitForLog(t, logs, "consumer group resumed")
	waitFor(t, processed, "the function processed the event again")
	waitFor(t, done, "the replay ended")
}

// messages is a slog handler that sends the messages of records that
// start with prefix to out.
type messages struct {
	prefix string
	out    chan<- string
}

func (m *messages) Enabled(context.Context, slog.Level) bool { return true }
func (m *messages) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, m.prefix) {
		m.out <- r.Message
	}
	return nil
}
func (m *messages) WithAttrs([]slog.Attr) slog.Handler { return m }
func (m *messages) WithGroup(string) slog.Handler      { return m }

func waitForLog(t *testing.T, logs <-chan string, msg string) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case m := <-logs:
			if m == msg {
				return
			}
		case <-timeout:
			t.Fatalf("no log %q", msg)
		}
	}
}

func waitFor[T any](t *testing.T, c <-chan T, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(time.Minute):
		t.Fatalf("%s: not within a minute", what)
	}
}
