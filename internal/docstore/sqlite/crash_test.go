package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/sqlite"
)

const childEnv = "SLUICE_SQLITE_CRASH_CHILD"

// TestCrashChild is the child of TestWritesSurviveKill: it upserts
// documents and prints each id once its write returned, until killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("only run as the child of TestWritesSurviveKill")
	}
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		doc := fmt.Appendf(nil, `{"id":"d%d","k":"p%d","i":%d}`, i, i%10, i)
		if i%3 == 0 {
			_, err = s.BulkUpsert(context.Background(), "c", [][]byte{doc})
		} else {
			_, err = s.Upsert(context.Background(), "c", doc)
		}
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Fprintf(out, "ok d%d p%d\n", i, i%10)
		out.Flush()
	}
}

// Invariant 1 for documents: a write that returned survives SIGKILL of
// the writing process.
func TestWritesSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process")
	}
	path := filepath.Join(t.TempDir(), "docs.db")
	s, err := sqlite.Open(path, sqlite.Options{})
	require.NoError(t, err)
	_, err = s.CreateContainer(context.Background(), docstore.Container{Name: "c", PartitionKeyPath: "/k"})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	acked := map[string]string{}
	sc := bufio.NewScanner(stdout)
	// However slow the machine: the kill comes after 2,000 acknowledged
	// writes (the test binary's -timeout bounds a child that hangs).
	for len(acked) < 2000 && sc.Scan() {
		f := strings.Fields(sc.Text())
		require.Equal(t, "ok", f[0], sc.Text())
		acked[f[1]] = f[2]
	}
	require.Len(t, acked, 2000, "the child stopped writing early")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	for sc.Scan() { // what it acknowledged before dying
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "ok" {
			acked[f[1]] = f[2]
		}
	}
	_ = cmd.Wait()

	s, err = sqlite.Open(path, sqlite.Options{})
	require.NoError(t, err)
	defer s.Close()
	for id, pk := range acked {
		_, err := s.Read(context.Background(), "c", pk, id)
		require.NoError(t, err, "document %s was acknowledged before the kill", id)
	}
	changes, err := s.Feed(context.Background(), "c", docstore.FeedStart{}, 1_000_000)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(changes), len(acked))
	for i := 1; i < len(changes); i++ {
		require.Greater(t, changes[i].LSN, changes[i-1].LSN)
	}
	t.Logf("%d acknowledged writes, %d in the feed after SIGKILL", len(acked), len(changes))
}
