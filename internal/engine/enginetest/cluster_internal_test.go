package enginetest

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	RunNodeIfAsked()
	goleak.VerifyTestMain(m)
}

// A test binary whose TestMain lacks the hook exits without the handshake;
// Cluster says what is missing instead of timing out.
func TestClusterNamesTheMissingHook(t *testing.T) {
	t.Parallel()
	noHook, err := exec.LookPath("true") // exits at once, says nothing
	if err != nil {
		t.Skip("no true(1) here")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = startCluster(ctx, t, 3, func(c *clusterConfig) { c.exe = noHook })
	require.ErrorContains(t, err, "must call enginetest.RunNodeIfAsked()")
}

// A port another process binds between the harness's check and the node's
// bind makes the node fail; the harness starts again on other ports.
func TestClusterRetriesATakenPort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS nodes")
	}
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	held := l.Addr().(*net.TCPAddr).Port
	calls := 0
	pick := func(taken map[int]bool) (int, error) {
		calls++
		if calls == 1 {
			taken[held] = true
			return held, nil // as if it had been free when checked
		}
		return freePort(taken)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := startCluster(ctx, t, 1, func(c *clusterConfig) { c.freePort = pick })
	require.NoError(t, err)
	require.Greater(t, calls, 3, "a second set of ports")
	require.NotEqual(t, "nats://127.0.0.1:"+strconv.Itoa(held), c.NodeURL(0))
	require.Contains(t, c.LogTail(0, 100), "address already in use", "the first run's failure is in the log")
}
