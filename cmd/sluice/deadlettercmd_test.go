package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/gateway"
)

func TestDeadLetterCommands(t *testing.T) {
	srv := startInstance(t)
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return sluiceCmd(t, append(args, "--server", srv)...)
	}
	ok := func(args ...string) string {
		t.Helper()
		code, out, errOut := run(args...)
		require.Equal(t, 0, code, "sluice %v: %s", args, errOut)
		return out
	}
	out, note := runOK(t, srv, "deadletters", "list")
	require.Empty(t, out)
	require.Equal(t, "no dead letters\n", note)
	// A message put into a poison queue directly is a dead letter too.
	ok("queue", "create", "jobs")
	ok("queue", "create", "jobs-poison")
	ok("queue", "send", "jobs-poison", "job 1", "--property", "tenant=acme")
	list := ok("deadletters", "list", "--source", "jobs")
	require.Contains(t, list, "jobs-poison")
	require.Contains(t, list, "queue jobs#")

	var listed struct {
		DeadLetters []gateway.DeadLetterJSON `json:"dead_letters"`
	}
	require.NoError(t, json.Unmarshal([]byte(ok("deadletters", "list", "--json")), &listed))
	require.Len(t, listed.DeadLetters, 1)
	id := strconv.FormatUint(listed.DeadLetters[0].ID, 10)
	show := ok("deadletters", "show", "jobs-poison", id)
	require.Contains(t, show, "job 1")
	require.Regexp(t, `property tenant +acme`, show)
	require.Regexp(t, `last failure +-`, show, "unknown times are shown as such")

	code, _, errOut := run("deadletters", "redrive")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `"all": true`)
	code, _, errOut = run("deadletters", "redrive", "jobs-poison")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "give the IDs")
	code, _, errOut = run("deadletters", "show", "jobs-poison", "999")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "dead letter jobs-poison/999 not found")

	require.Contains(t, ok("deadletters", "redrive", "jobs-poison", id), "redrove 1 dead letters")
	require.Contains(t, ok("queue", "peek", "jobs"), "job 1")
	require.Contains(t, ok("deadletters", "purge", "--all"), "purged 0 dead letters")
}

// A redrive of many dead letters goes a chunk at a time, with progress.
func TestDeadLettersRedriveManyShowsProgress(t *testing.T) {
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	app.Queue(sluice.QueueConfig{Name: "jobs"})
	app.Queue(sluice.QueueConfig{Name: "jobs-poison"})
	require.NoError(t, app.Start(context.Background()))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	msgs := make([]sluice.OutgoingMessage, 600)
	for i := range msgs {
		msgs[i] = sluice.OutgoingMessage{Body: []byte("job " + strconv.Itoa(i))}
	}
	for range 2 {
		_, err := app.Send(context.Background(), "jobs-poison", msgs...)
		require.NoError(t, err)
	}
	code, out, errOut := sluiceCmd(t, "deadletters", "redrive", "--queue", "jobs-poison", "--server", "http://"+app.Addr())
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "redrove 1200 dead letters")
	require.Contains(t, errOut, "redrive: 1,200/1,200 (100%)")
	out, errOut = runOK(t, "http://"+app.Addr(), "deadletters", "list", "--queue", "jobs-poison")
	require.Empty(t, out)
	require.Contains(t, errOut, "no dead letters")
}
