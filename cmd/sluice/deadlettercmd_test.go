package main

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

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
	require.Contains(t, ok("deadletters", "list"), "no dead letters")
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
	require.Contains(t, errOut, "dead letter 999")

	require.Contains(t, ok("deadletters", "redrive", "jobs-poison", id), "redrove 1 dead letters")
	require.Contains(t, ok("queue", "peek", "jobs"), "job 1")
	require.Contains(t, ok("deadletters", "purge", "--all"), "purged 0 dead letters")
}
