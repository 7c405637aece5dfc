package datadir

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// A child process holding the lock: the test binary run again with
// SLUICE_LOCK_CHILD set to the directory. It prints "locked" and waits.
func TestMain(m *testing.M) {
	if dir := os.Getenv("SLUICE_LOCK_CHILD"); dir != "" {
		if _, err := Acquire(dir, "child-instance"); err != nil {
			os.Stdout.WriteString("error: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("locked\n")
		select {}
	}
	os.Exit(m.Run())
}

func TestLockInProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() + "/data"
	l, err := Acquire(dir, "first")
	require.NoError(t, err)
	_, err = Acquire(dir, "second")
	require.ErrorIs(t, err, ErrInUse)
	var inUse *InUseError
	require.ErrorAs(t, err, &inUse)
	require.Equal(t, os.Getpid(), inUse.Owner.PID)
	require.Equal(t, "first", inUse.Owner.Instance)
	require.Contains(t, err.Error(), "data directory "+dir+" is in use by pid ")
	require.Contains(t, err.Error(), "stop it or use --data-dir")

	require.NoError(t, l.Unlock())
	require.NoError(t, l.Unlock())
	l2, err := Acquire(dir, "second")
	require.NoError(t, err)
	require.NoError(t, l2.Unlock())
}

// TestLockHeldByKilledProcess: a second process is refused while the first
// lives, and a SIGKILL of the first frees the directory.
func TestLockHeldByKilledProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "SLUICE_LOCK_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked", strings.TrimSpace(line))

	_, err = Acquire(dir, "parent")
	var inUse *InUseError
	require.ErrorAs(t, err, &inUse)
	require.Equal(t, cmd.Process.Pid, inUse.Owner.PID)
	require.Equal(t, "child-instance", inUse.Owner.Instance)

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	l, err := Acquire(dir, "parent")
	require.NoError(t, err, "a lock left by a killed process must not block the next start")
	require.NoError(t, l.Unlock())
}
