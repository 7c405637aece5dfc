package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func TestPipelineCommands(t *testing.T) {
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Pipelines: map[string]sluice.PipelineConfig{"devices": {Container: "devices", Destinations: []sluice.PipelineDestination{
			{Name: "copy", Container: "devices-copy"}, {Name: "events", Hub: "device-changes"}}}}})
	app.Container(sluice.ContainerConfig{Name: "devices", PartitionKeyPath: "/id"})
	app.Container(sluice.ContainerConfig{Name: "devices-copy", PartitionKeyPath: "/id"})
	app.Hub(sluice.HubConfig{Name: "device-changes", Partitions: 1})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	srv := "http://" + app.Addr()
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return sluiceCmd(t, append(args, "--server", srv)...)
	}
	for i := range 5 {
		_, err := app.Docs().Upsert(ctx, "devices", map[string]any{"id": fmt.Sprint("d", i), "n": i})
		require.NoError(t, err)
	}
	status := func() sluice.PipelineStatus {
		code, out, errOut := run("pipeline", "status", "devices", "--json")
		require.Equal(t, 0, code, errOut)
		var st sluice.PipelineStatus
		require.NoError(t, json.Unmarshal([]byte(out), &st))
		return st
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for st := status(); st.Staged == 0 || st.Destinations[0].Behind > 0 || st.Destinations[1].Behind > 0; st = status() {
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("the pipeline did not stage and apply: %+v", st)
		}
	}

	code, out, errOut := run("pipeline", "list")
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `devices +\d+ +copy +\d+ +0 +up to date`, out)
	code, out, errOut = run("pipeline", "status", "devices")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "pipeline devices: ")
	require.Contains(t, out, "source at lsn:")

	code, out, errOut = run("pipeline", "pause", "devices", "--destination", "events", "--reason", "maintenance")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "destination events of pipeline devices: paused: maintenance")
	code, out, errOut = run("pipeline", "resume", "devices", "--destination", "events")
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, out, "paused")

	// A pipeline created from a file (YAML), and deleted.
	dir := t.TempDir()
	file, bad, notMapping := dir+"/more.yaml", dir+"/bad.yaml", dir+"/list.yaml"
	require.NoError(t, os.WriteFile(file, []byte("container: devices\ndestinations:\n  events: {hub: device-changes, retryBackoff: 1s}\n"), 0o600))
	require.NoError(t, os.WriteFile(bad, []byte("container: devices\ndestinatons: {}\n"), 0o600))
	require.NoError(t, os.WriteFile(notMapping, []byte("- container\n"), 0o600))
	code, out, errOut = run("pipeline", "create", "more", "--file", file)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "created pipeline more with 1 destinations")
	code, out, errOut = run("pipeline", "list", "--json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"created": true`)
	code, out, errOut = run("pipeline", "delete", "more", "--yes")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "deleted pipeline more\n", out)

	code, out, errOut = run("pipeline", "replay", "devices", "--destination", "copy", "--change-set", "1", "--grace", "10ms")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "destination copy of pipeline devices goes on from change set 1")
	code, out, errOut = run("pipeline", "replay", "devices", "--destination", "copy", "--from", "1h", "--grace", "10ms", "--json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"from": 1`)

	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"pipeline", "status", "nope"}, 1, "neither declared"},
		{[]string{"pipeline", "replay", "devices", "--destination", "copy"}, 2, "--from or --change-set"},
		{[]string{"pipeline", "replay", "devices", "--destination", "zz", "--change-set", "1"}, 1, `no destination "zz"`},
		{[]string{"pipeline", "replay", "devices", "--destination", "copy", "--from", "noon"}, 1, "RFC 3339"},
		{[]string{"pipeline", "pause", "devices"}, 2, "--destination"},
		{[]string{"pipeline", "create", "more"}, 2, "--file"},
		{[]string{"pipeline", "create", "more", "--file", bad}, 1, `unknown field "destinatons"`},
		{[]string{"pipeline", "create", "more", "--file", notMapping}, 1, "is a mapping"},
		{[]string{"pipeline", "delete", "devices"}, 2, "--yes"},
		{[]string{"pipeline", "backfill", "devices"}, 2, "--table"},
		{[]string{"pipeline", "backfill", "devices", "--table", "devices"}, 1, "cannot backfill"},
		{[]string{"pipeline", "delete", "devices", "--yes"}, 1, "declared"},
	} {
		code, _, errOut := run(c.args...)
		require.Equal(t, c.code, code, "%v: %s", c.args, errOut)
		require.Contains(t, errOut, c.says, c.args)
	}
}
