package crashtest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/hub"
)

// seeded returns the random source of a test, seeded from the clock unless
// SLUICE_CRASH_SEED repeats an earlier run. The seed is logged.
func seeded(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SLUICE_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (set SLUICE_CRASH_SEED=%d to repeat the random choices)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed>>1|1))
}

// between returns a random duration in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// testLogger sends warnings and errors of an in-process app to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// child is a running child process.
type child struct {
	name    string
	cfg     childConfig
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error // set when done is closed
}

// startChild starts the test binary as a child running cfg. Its stdout and
// stderr go to <dir>/<name>.log. The child is killed when the test ends.
func startChild(t *testing.T, dir, name string, cfg childConfig) *child {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildMain$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), envChild+"="+string(raw))
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		_ = lf.Close()
		t.Fatalf("start child %s: %v", name, err)
	}
	c := &child{name: name, cfg: cfg, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		_ = lf.Close()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// requireAlive fails the test with the child's log if it has exited.
func (c *child) requireAlive(t *testing.T) {
	t.Helper()
	if c.exited() {
		checkChildLogs(t, []*child{c})
		t.Fatalf("child %s exited on its own: %v\n%s", c.name, c.waitErr, c.logTail(40))
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill(t *testing.T) {
	t.Helper()
	c.requireAlive(t)
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child %s: %v", c.name, err)
	}
	<-c.done
}

// terminate sends SIGTERM and requires a graceful exit with status 0 within
// timeout. A failure is reported, and the test goes on: the child is gone
// either way, and what it recorded is still worth checking.
func (c *child) terminate(t *testing.T, timeout time.Duration) {
	t.Helper()
	c.requireAlive(t)
	start := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM child %s: %v", c.name, err)
	}
	select {
	case <-c.done:
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.done
		t.Errorf("child %s did not stop within %v of SIGTERM\n%s", c.name, timeout, c.logTail(40))
		return
	}
	if c.waitErr != nil {
		t.Errorf("child %s exited with %v after SIGTERM (its log is checked at the end)\n%s", c.name, c.waitErr, c.logTail(10))
		return
	}
	t.Logf("%s stopped gracefully in %v", c.name, time.Since(start).Round(time.Millisecond))
}

// termThenKill sends SIGTERM and, grace later, SIGKILL, to kill the child
// during its graceful stop. It reports false if the child had already
// exited by then, which must have been with status 0.
func (c *child) termThenKill(t *testing.T, grace time.Duration) bool {
	t.Helper()
	c.requireAlive(t)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM child %s: %v", c.name, err)
	}
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	status, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ok && status.Signaled() && status.Signal() == syscall.SIGKILL {
		return true
	}
	if c.waitErr != nil {
		checkChildLogs(t, []*child{c})
		t.Fatalf("child %s exited with %v after SIGTERM\n%s", c.name, c.waitErr, c.logTail(40))
	}
	return false
}

func (c *child) logTail(n int) string {
	b, _ := os.ReadFile(c.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- " + c.name + " log (last lines) ---\n" + strings.Join(lines, "\n")
}

// checkChildLogs fails the test for every data race or panic a child
// reported, killed children included (the race detector prints at once).
func checkChildLogs(t *testing.T, children []*child) {
	t.Helper()
	for _, c := range children {
		b, err := os.ReadFile(c.logPath)
		if err != nil {
			t.Errorf("read log of %s: %v", c.name, err)
			continue
		}
		for _, bad := range []string{"WARNING: DATA RACE", "panic: ", "fatal error: "} {
			if i := bytes.Index(b, []byte(bad)); i >= 0 {
				t.Errorf("child %s reported %q:\n%s", c.name, bad, b[i:min(len(b), i+4000)])
			}
		}
	}
}

// waitFor polls cond every interval until it returns true, and fails the
// test with what(), a description of the state, after timeout.
func waitFor(t *testing.T, timeout, interval time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", timeout, what())
		}
		time.Sleep(interval)
	}
}

// tail reads the complete lines appended to a file since the last call.
type tail struct {
	path    string
	off     int64
	partial []byte
}

func (tl *tail) next() ([]string, error) {
	f, err := os.Open(tl.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(tl.off, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	tl.off += int64(len(data))
	data = append(tl.partial, data...)
	i := bytes.LastIndexByte(data, '\n')
	if i < 0 {
		tl.partial = data
		return nil, nil
	}
	tl.partial = append([]byte(nil), data[i+1:]...)
	return strings.Split(string(data[:i]), "\n"), nil
}

// line is a parsed line of a consumer's output file.
type line struct {
	acquired  bool // an A line; otherwise an E line
	partition int
	seq       int64
	at        int64 // unix nanoseconds
	body      string
}

func parseLine(s string) (line, error) {
	f := strings.Fields(s)
	var l line
	var err error
	switch {
	case len(f) == 3 && f[0] == "A":
		l.acquired = true
		if l.partition, err = strconv.Atoi(f[1]); err == nil {
			l.at, err = strconv.ParseInt(f[2], 10, 64)
		}
	case len(f) == 5 && f[0] == "E":
		if l.partition, err = strconv.Atoi(f[1]); err != nil {
			break
		}
		if l.seq, err = strconv.ParseInt(f[2], 10, 64); err != nil {
			break
		}
		l.at, err = strconv.ParseInt(f[3], 10, 64)
		l.body = f[4]
	default:
		err = errors.New("unknown line")
	}
	if err != nil {
		return line{}, fmt.Errorf("bad line %q: %v", s, err)
	}
	return l, nil
}

// keyIndex splits a body "key/index".
func keyIndex(body string) (string, int, bool) {
	k, i, ok := strings.Cut(body, "/")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.Atoi(i)
	return k, n, err == nil
}

// watched is the running count of one consumer output file.
type watched struct {
	tail
	events   int                 // E lines
	acquired map[int]int         // partition → A lines
	lastAt   map[int]int64       // partition → time of its latest E line
	seen     map[string]struct{} // shared by all files of a tracker
}

// tracker follows consumer output files while children run.
type tracker struct {
	files []*watched
	seen  map[string]struct{} // distinct bodies processed, over all files
}

func newTracker() *tracker { return &tracker{seen: make(map[string]struct{})} }

func (tr *tracker) watch(path string) *watched {
	w := &watched{tail: tail{path: path}, acquired: map[int]int{}, lastAt: map[int]int64{}, seen: tr.seen}
	tr.files = append(tr.files, w)
	return w
}

// poll reads what every file gained since the last poll.
func (tr *tracker) poll(t *testing.T) {
	t.Helper()
	for _, w := range tr.files {
		lines, err := w.next()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range lines {
			l, err := parseLine(s)
			if err != nil {
				t.Fatalf("%s: %v", w.path, err)
			}
			if l.acquired {
				w.acquired[l.partition]++
				continue
			}
			w.events++
			w.lastAt[l.partition] = max(w.lastAt[l.partition], l.at)
			w.seen[l.body] = struct{}{}
		}
	}
}

// segment is one ownership of a partition by one consumer process: the
// events it processed from an A line to the next A line of the same
// partition in the same file, or to the end of the file.
type segment struct {
	source    string
	partition int
	start     int64 // time of the A line
	marked    bool  // false: events without a preceding A line
	events    []line
}

// readSegments splits a consumer output file into segments. A trailing
// incomplete line (cut by SIGKILL) is ignored.
func readSegments(path, source string) ([]*segment, error) {
	tl := &tail{path: path}
	lines, err := tl.next()
	if err != nil {
		return nil, err
	}
	var out []*segment
	cur := map[int]*segment{}
	for _, s := range lines {
		l, err := parseLine(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if l.acquired {
			sg := &segment{source: source, partition: l.partition, start: l.at, marked: true}
			cur[l.partition] = sg
			out = append(out, sg)
			continue
		}
		sg := cur[l.partition]
		if sg == nil {
			sg = &segment{source: source, partition: l.partition, start: l.at}
			cur[l.partition] = sg
			out = append(out, sg)
		}
		sg.events = append(sg.events, l)
	}
	return out, nil
}

// report is what checkSegments found.
type report struct {
	lines      int // E lines
	distinct   int
	duplicates int // lines − distinct
	unmarked   int // segments without an A line
	violations []string
	overlaps   []string
	seen       map[string]struct{}
}

func (r *report) violate(format string, args ...any) {
	r.violations = append(r.violations, fmt.Sprintf(format, args...))
}

// checkSegments checks the order of what consumers processed, for a hub
// whose events have bodies "key/index", published in index order per key
// with every index present. Each partition's segments are taken in the
// order they started. Within a segment, every key's indexes must follow
// each other exactly (+1: in order, nothing skipped) and sequence numbers
// must increase; a segment's first index of a key must be at most one more
// than the highest index of that key processed before (a redelivery may go
// back, a handover must never skip).
func checkSegments(segs []*segment, partitions int) report {
	r := report{seen: make(map[string]struct{})}
	byPartition := map[int][]*segment{}
	for _, sg := range segs {
		byPartition[sg.partition] = append(byPartition[sg.partition], sg)
		if !sg.marked && len(sg.events) > 0 {
			r.unmarked++
		}
	}
	highest := map[string]int{} // key → highest index processed so far
	for p := range partitions {
		list := byPartition[p]
		slices.SortStableFunc(list, func(a, b *segment) int { return cmp.Compare(a.start, b.start) })
		for _, sg := range list {
			last := map[string]int{} // key → its last index in this segment
			prevSeq := int64(-1)
			for _, e := range sg.events {
				r.lines++
				r.seen[e.body] = struct{}{}
				key, idx, ok := keyIndex(e.body)
				if !ok {
					r.violate("%s: malformed body %q", sg.source, e.body)
					continue
				}
				if e.partition != p || hub.PartitionForKey(key, partitions) != p {
					r.violate("%s: event %s delivered on partition %d; its key belongs to partition %d",
						sg.source, e.body, e.partition, hub.PartitionForKey(key, partitions))
				}
				if e.seq <= prevSeq {
					r.violate("%s partition %d: sequence %d after %d within one ownership", sg.source, p, e.seq, prevSeq)
				}
				prevSeq = e.seq
				if l, ok := last[key]; ok {
					if idx != l+1 {
						r.violate("%s partition %d: key %s index %d after %d within one ownership (reordered or skipped)", sg.source, p, key, idx, l)
					}
				} else {
					h, ok := highest[key]
					if !ok {
						h = -1
					}
					if idx > h+1 {
						r.violate("%s partition %d: key %s resumed at index %d but only up to %d was processed before (skipped %d)", sg.source, p, key, idx, h, idx-h-1)
					}
				}
				last[key] = idx
				if h, ok := highest[key]; !ok || idx > h {
					highest[key] = idx
				}
			}
		}
		// Ownerships of a partition by different processes must not overlap
		// in time (invariant 4).
		for i, a := range list {
			if len(a.events) == 0 {
				continue
			}
			for _, b := range list[i+1:] {
				if len(b.events) == 0 || a.source == b.source {
					continue
				}
				aFirst, aLast := a.events[0].at, a.events[len(a.events)-1].at
				bFirst, bLast := b.events[0].at, b.events[len(b.events)-1].at
				if aFirst <= bLast && bFirst <= aLast {
					r.overlaps = append(r.overlaps, fmt.Sprintf("partition %d: %s processed it %s..%s while %s processed it %s..%s",
						p, a.source, clock(aFirst), clock(aLast), b.source, clock(bFirst), clock(bLast)))
				}
			}
		}
	}
	r.distinct = len(r.seen)
	r.duplicates = r.lines - r.distinct
	return r
}

func clock(ns int64) string { return time.Unix(0, ns).Format("15:04:05.000") }

// failViolations reports at most a screenful of violations.
func failViolations(t *testing.T, r report) {
	t.Helper()
	if len(r.violations) == 0 {
		return
	}
	shown := r.violations[:min(len(r.violations), 20)]
	t.Errorf("%d order violations, first ones:\n%s", len(r.violations), strings.Join(shown, "\n"))
}

// background is a context for setup calls that bounds them.
func background(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// checkOutputs reads the consumers' output files (paths[i] written by the
// child names[i]), checks order and ownership across all of them, and fails
// the test on any violation. It returns the report and the ownerships.
func checkOutputs(t *testing.T, paths, names []string, partitions int) (report, []*segment) {
	t.Helper()
	var segs []*segment
	for i, path := range paths {
		s, err := readSegments(path, names[i])
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, s...)
	}
	r := checkSegments(segs, partitions)
	failViolations(t, r)
	if r.unmarked > 0 {
		t.Errorf("%d ownerships have no A line: does internal/host still log %q with a partition attribute?", r.unmarked, acquiredMessage)
	}
	return r, segs
}
