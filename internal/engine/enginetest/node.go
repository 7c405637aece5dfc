package enginetest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// A cluster node is the test binary itself, run again with envNode naming
// the node's config file. This keeps the server the one in go.mod (no
// separate nats-server binary to build or install) and costs one exec per
// node: the test binary is already built. The price is a hook in TestMain,
// since only TestMain runs before the testing package takes over:
//
//	func TestMain(m *testing.M) {
//		enginetest.RunNodeIfAsked()
//		goleak.VerifyTestMain(m)
//	}
//
// The node speaks to the harness through handshake lines on stdout: one as
// soon as the hook has read its config, one when the server accepts
// connections, or an error. A test binary without the hook runs its (empty,
// -test.run=^$) test list and exits without a word, which Cluster reports
// as the missing hook.
//
// The node's stdin is a pipe from the harness. The node starts its server
// only when the harness writes a line to it, so that Cluster decides when
// each server starts (exec and start-up of a test binary take seconds on a
// loaded machine; see startAll). After that line, the pipe's end means the
// test process died, however it died: the node exits instead of outliving
// it.
const envNode = "SLUICE_ENGINETEST_NODE"

const (
	handshakeHello = "sluice-enginetest-node: configured"
	handshakeReady = "sluice-enginetest-node: ready"
	handshakeError = "sluice-enginetest-node: error: "
)

// RunNodeIfAsked turns this test binary into a NATS node when the harness
// started it as one (see Cluster), and never returns then. Otherwise it
// returns at once. Call it first in TestMain of every package that uses
// Cluster.
func RunNodeIfAsked() {
	conf := os.Getenv(envNode)
	if conf == "" {
		return
	}
	os.Exit(runNode(conf))
}

// runNode runs a NATS server from the config file until SIGTERM or SIGINT
// (a graceful shutdown: the server hands its Raft leaderships over first),
// until stdin closes, or until the server stops by itself. SIGKILL just
// kills the process, which is the point.
func runNode(conf string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stdout, handshakeError+format+"\n", args...)
		return 1
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		return fail("read %s: %v", conf, err)
	}
	opts.NoSigs = true // the signals are handled here
	srv, err := server.NewServer(opts)
	if err != nil {
		return fail("configure the server: %v", err)
	}
	fmt.Fprintln(os.Stdout, handshakeHello)
	stdin := bufio.NewReader(os.Stdin)
	if _, err := stdin.ReadString('\n'); err != nil {
		return 1 // the harness is gone before it released this node
	}
	// Logs go to stderr, which the harness points at the node's log file.
	// A port taken since the harness checked it makes the server log
	// "address already in use" and exit from its logger.
	srv.ConfigureLogger()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	orphaned := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(orphaned)
	}()

	srv.Start()
	if !srv.ReadyForConnections(time.Minute) {
		srv.Shutdown()
		return fail("the server did not accept connections within a minute")
	}
	stopped := make(chan struct{})
	go func() {
		srv.WaitForShutdown()
		close(stopped)
	}()
	fmt.Fprintln(os.Stdout, handshakeReady)

	select {
	case sig := <-signals:
		srv.Noticef("enginetest node: %v received, shutting down", sig)
		srv.Shutdown()
		return 0
	case <-orphaned:
		// The test process is gone: go as abruptly as a SIGKILL would.
		return 1
	case <-stopped:
		return fail("the server stopped by itself")
	}
}

// process is one run of a node, from start until it has been reaped.
type process struct {
	cmd   *exec.Cmd
	stdin *os.File      // the harness's end; closing it makes the node exit
	hello chan struct{} // closed when the node has read its config
	ready chan struct{} // closed when the node said it is ready
	done  chan struct{} // closed when the node has exited and been reaped

	mu      sync.Mutex
	failure string   // the node's error line, if it sent one
	output  []string // the last lines on stdout that were not the handshake
	waitErr error    // how it exited, once done is closed
}

// startProcess runs exe as the node of config file conf, logging to logPath.
func startProcess(exe, conf, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer stdinR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		stdinW.Close()
		return nil, err
	}
	defer outW.Close()

	// -test.run=^$: a test binary without the hook runs no test, and exits.
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envNode+"="+conf)
	// Files, not writers: exec starts no copying goroutines, and the node
	// writes its log straight into the file.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, outW, logFile
	if err := cmd.Start(); err != nil {
		stdinW.Close()
		outR.Close()
		return nil, err
	}
	p := &process{cmd: cmd, stdin: stdinW, hello: make(chan struct{}), ready: make(chan struct{}), done: make(chan struct{})}
	go p.watch(outR)
	return p, nil
}

// watch reads the node's stdout until it closes (the node exited), then
// reaps the node. It is the one goroutine of a process; it ends with it.
func (p *process) watch(out *os.File) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		switch {
		case line == handshakeHello:
			close(p.hello)
		case line == handshakeReady:
			close(p.ready)
		case strings.HasPrefix(line, handshakeError):
			p.failure = strings.TrimPrefix(line, handshakeError)
		default:
			if len(p.output) == 10 {
				p.output = p.output[1:]
			}
			p.output = append(p.output, line)
		}
		p.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, out) // after a line too long to scan
	out.Close()
	err := p.cmd.Wait()
	p.mu.Lock()
	p.waitErr = err
	p.mu.Unlock()
	p.stdin.Close()
	close(p.done)
}

// signal sends sig to the node unless it has already exited.
func (p *process) signal(sig os.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// exited describes how the node ended; valid once done is closed.
func (p *process) exited() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	if p.waitErr != nil {
		b.WriteString(p.waitErr.Error())
	} else {
		b.WriteString("exit status 0")
	}
	if p.failure != "" {
		fmt.Fprintf(&b, ": %s", p.failure)
	}
	if len(p.output) > 0 {
		fmt.Fprintf(&b, " (its output: %q)", strings.Join(p.output, " | "))
	}
	return b.String()
}

// handshook reports whether the node said it runs the hook: a binary
// without it says nothing.
func (p *process) handshook() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failure != "" {
		return true
	}
	select {
	case <-p.hello:
		return true
	default:
		return false
	}
}

// release lets the node start its server.
func (p *process) release() {
	// An error means the node has exited, which waiting for it reports.
	_, _ = p.stdin.WriteString("start\n")
}
