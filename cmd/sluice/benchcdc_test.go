package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// sluice bench cdc explains what it measures and how to set the server up,
// and refuses a run without a server. (The workload itself is tested in
// internal/bench: both use the same databases, so they cannot run at once.)
func TestBenchCDCCommand(t *testing.T) {
	t.Setenv("SLUICE_TEST_POSTGRES", "")
	code, out, _ := sluiceCmd(t, "bench", "cdc", "--help")
	require.Equal(t, 0, code)
	for _, want := range []string{"--postgres", "--changes", "--writers", "--json", "--data-dir", "ALTER SYSTEM SET wal_level = logical", "p99_ms"} {
		require.Contains(t, out, want)
	}
	_, out, _ = sluiceCmd(t, "bench", "--help")
	require.Contains(t, out, "cdc")

	code, _, errOut := sluiceCmd(t, "bench", "cdc")
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "--postgres")
	code, _, errOut = sluiceCmd(t, "bench", "cdc", "--postgres", "postgres://x@127.0.0.1:1/db", "--changes", "0")
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "--changes and --writers must be at least 1")
}
