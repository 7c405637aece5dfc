package crashtest

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/queue"
)

// messageCount is the queue crash test's message count:
// SLUICE_CRASH_MESSAGES, default 20000.
func messageCount(t *testing.T) int {
	t.Helper()
	n := 20_000
	if s := os.Getenv("SLUICE_CRASH_MESSAGES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("SLUICE_CRASH_MESSAGES=%q: want a positive number", s)
		}
		n = v
	}
	return n
}

// TestQueueConsumerCrash kills a queue consumer again and again while it
// works through a backlog in which some messages always fail, and proves
// from what it recorded and what the store holds afterwards that every
// message was completed or dead-lettered, that only the failing ones were
// dead-lettered, and that redeliveries stayed within what the kills can
// explain.
func TestQueueConsumerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the queue crash test takes about 25s; it runs without -short")
	}
	const (
		queueName   = "work"
		lock        = time.Second
		batchSize   = 16
		concurrency = 8
		maxDequeue  = 3
		poisonEvery = 64 // message i is poison when i%poisonEvery == 0
		midKills    = 4  // kills while processing
		earlyKills  = 3  // kills during start-up: store recovery, the first fetches
		// The backlog takes at least this long (see MessageDelay), longer
		// than the processing the killed runs can do: midKills × (lock +
		// 1.5s) plus early kills that come after processing began.
		minProcessing = 14 * time.Second
	)
	total := messageCount(t)
	rng := seeded(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")

	testStart := time.Now()
	sent := sendQueueMessages(t, data, queueName, lock, total, poisonEvery)
	poison := 0
	for _, m := range sent {
		if m.poison {
			poison++
		}
	}
	t.Logf("sent %d messages (%d marked poison) in %v", total, poison, time.Since(testStart).Round(time.Millisecond))

	base := childConfig{
		Role: roleQueueConsumer, DataDir: data, InstanceID: "queue-consumer", Queue: queueName, Lock: lock,
		BatchSize: batchSize, Concurrency: concurrency, MaxDequeueCount: maxDequeue,
		MessageDelay: time.Duration(float64(minProcessing) * concurrency / float64(total)),
	}
	tr := newQueueTracker(sent, maxDequeue)
	var children []*child
	start := func(name string) (*child, *queueOut) {
		cfg := base
		cfg.Out = filepath.Join(dir, name+".messages")
		c := startChild(t, dir, name, cfg)
		children = append(children, c)
		return c, tr.watch(cfg.Out)
	}

	// The early kills go into distinct gaps between the runs killed while
	// processing, never two in a row: a run killed mid-stream lives longer
	// than a lock after it began processing, so it completes what the run
	// before it left locked. A message is then caught in flight by at
	// most two kills in a row and is delivered at most maxDequeue times
	// without completing, so none is poisoned for the kills alone.
	var plan []string
	gaps := rng.Perm(midKills + 1)[:earlyKills]
	for g := range midKills + 1 {
		if slices.Contains(gaps, g) {
			plan = append(plan, "early")
		}
		if g < midKills {
			plan = append(plan, "mid")
		}
	}
	kills := 0
	for i, kind := range plan {
		name := fmt.Sprintf("run-%02d", i)
		c, w := start(name)
		started := time.Now()
		if kind == "early" {
			d := between(rng, 0, 800*time.Millisecond)
			time.Sleep(d)
			c.kill(t)
			kills++
			tr.poll(t)
			t.Logf("%s: killed %v after start (in start-up or just after); it completed %d messages and failed %d",
				name, d.Round(time.Millisecond), w.completed, w.failed)
			continue
		}
		waitFor(t, 90*time.Second, 10*time.Millisecond, func() bool {
			c.requireAlive(t)
			tr.poll(t)
			return w.completed+w.failed > 0
		}, func() string { return name + " processed nothing\n" + c.logTail(30) })
		working := time.Since(started)
		d := between(rng, lock+300*time.Millisecond, lock+1500*time.Millisecond)
		time.Sleep(d)
		c.kill(t)
		kills++
		tr.poll(t)
		t.Logf("%s: processing began %v after start, killed %v later; it completed %d messages and failed %d; %d of %d good messages done so far",
			name, working.Round(time.Millisecond), d.Round(time.Millisecond), w.completed, w.failed, tr.goodDone, total-poison)
		if tr.goodDone >= total-poison {
			t.Fatalf("every message was completed before kill %d: the kills did not land mid-stream", kills)
		}
	}

	// The last run goes on until the queue is empty, as the child sees it,
	// and then stops gracefully. The child records a message before its
	// function returns, so before the message is completed, and reports
	// the depth after that, in the same file: a good message not recorded
	// by the time the queue is empty was lost (checked below).
	c, w := start("final")
	began := time.Now()
	waitFor(t, 3*time.Minute, 10*time.Millisecond, func() bool {
		c.requireAlive(t)
		tr.poll(t)
		return w.left == 0
	}, func() string {
		return fmt.Sprintf("%d of %d good messages completed, %d messages left in the queue (-1: not reported yet)\n%s",
			tr.goodDone, total-poison, w.left, c.logTail(30))
	})
	t.Logf("final: completed %d messages and failed %d; the queue was empty %v after its start, with %d of %d good messages completed",
		w.completed, w.failed, time.Since(began).Round(time.Millisecond), tr.goodDone, total-poison)
	c.terminate(t, time.Minute)
	tr.poll(t)
	checkChildLogs(t, children)
	for _, p := range tr.problems[:min(20, len(tr.problems))] {
		t.Error(p)
	}
	if n := len(tr.problems); n > 20 {
		t.Errorf("and %d more problems like these", n-20)
	}

	// What the store holds now, read with every child gone.
	left, letters := readQueueAndPoison(t, data, queueName)
	if left != "" {
		t.Errorf("after the final run stopped gracefully with the queue empty, a restart finds it not empty: %s", left)
	}
	lettersOf := map[string]int{}
	crashPoisoned := 0
	for _, l := range letters {
		body := string(l.Body)
		m, ok := sent[body]
		switch {
		case !ok:
			t.Errorf("dead letter %d holds %q, which was never sent", l.ID, body)
			continue
		case !m.poison:
			t.Errorf("message %s (id %d), which the function never fails, was dead-lettered after %d deliveries: %s",
				body, m.id, l.Attempts, l.Reason)
		}
		lettersOf[body]++
		if l.Source.Kind != "queue" || l.Source.Queue != queueName || l.Source.MessageID != m.id || l.Function != queueFunction {
			t.Errorf("dead letter %d of %s says function %q, source %+v; want function %q, queue %s, message id %d",
				l.ID, body, l.Function, l.Source, queueFunction, queueName, m.id)
		}
		if l.Attempts < maxDequeue {
			t.Errorf("message %s was dead-lettered after %d deliveries, fewer than maxDequeueCount %d: %s", body, l.Attempts, maxDequeue, l.Reason)
		}
		if l.Attempts > maxDequeue {
			crashPoisoned++ // delivered too often without finishing: kills, not failures
		}
	}

	var lost []string
	letterDuplicates, completedPoison := 0, 0
	for body, m := range sent {
		switch {
		case m.poison && lettersOf[body] == 0:
			lost = append(lost, fmt.Sprintf("%s (id %d, poison, failed %d times, no dead letter)", body, m.id, tr.failed[body]))
		case m.poison:
			letterDuplicates += lettersOf[body] - 1
		case tr.completed[body] == 0:
			lost = append(lost, fmt.Sprintf("%s (id %d, never completed)", body, m.id))
		}
		if m.poison && tr.completed[body] > 0 {
			completedPoison++
		}
	}
	slices.Sort(lost)
	if len(lost) > 0 {
		t.Errorf("%d messages were lost, e.g.:\n%s", len(lost), strings.Join(lost[:min(10, len(lost))], "\n"))
	}
	if completedPoison > 0 {
		t.Errorf("%d poison messages were recorded as completed, but the function fails every one", completedPoison)
	}

	// At-least-once: after a kill, what was locked is delivered again: up
	// to concurrency messages in the function and about two batches
	// fetched ahead. So is what the server had delivered and completed
	// but not yet written to the consumer's state, which nats-server
	// writes about every 100ms, even with sync always: at the function's
	// pace, up to rate × stateWindow more messages per kill.
	const stateWindow = 300 * time.Millisecond // 100ms, and slack for a slow write
	rate := float64(concurrency) / base.MessageDelay.Seconds()
	perKill := concurrency + 2*batchSize + int(math.Ceil(rate*stateWindow.Seconds()))
	lines, distinct := 0, 0
	for _, n := range tr.completed {
		lines += n
		distinct++
	}
	duplicates := lines - distinct
	sameRun, forgotten := 0, 0
	for _, d := range tr.deliveries {
		for i := 1; i < len(d); i++ {
			if d[i].run == d[i-1].run {
				sameRun++
			}
			if d[i].dequeued <= d[i-1].dequeued {
				forgotten++
			}
		}
	}
	bound := kills * perKill
	t.Logf("%d messages: %d completion lines, %d distinct, %d duplicates after %d kills (bound %d = kills × (concurrency %d + 2 × batch %d + %.0f/s × %v))",
		total, lines, distinct, duplicates, kills, bound, concurrency, batchSize, rate, stateWindow)
	t.Logf("of the duplicates, %d came at a dequeue count no higher than the delivery before (the server had not written that delivery before the kill), %d in the same run (a lock ran out while the function held the message)",
		forgotten, sameRun)
	if duplicates > bound {
		t.Errorf("%d duplicate completions exceed the bound of %d", duplicates, bound)
	}

	// A kill can catch up to concurrency messages between keeping their
	// dead letter and completing them; and every poison message delivered
	// again after a kill (at most one in poisonEvery of them, and one)
	// can be dead-lettered once more.
	failures := 0
	for _, n := range tr.failed {
		failures += n
	}
	letterBound := kills * (concurrency + perKill/poisonEvery + 1)
	t.Logf("%d poison messages: %d failed deliveries (%d without kills), %d dead letters, %d duplicates (bound %d = kills × (concurrency %d + %d/%d + 1)), %d poisoned for being delivered more than %d times",
		poison, failures, poison*maxDequeue, len(letters), letterDuplicates, letterBound, concurrency, perKill, poisonEvery, crashPoisoned, maxDequeue)
	if letterDuplicates > letterBound {
		t.Errorf("%d duplicate dead letters exceed the bound of %d", letterDuplicates, letterBound)
	}
	t.Logf("%d kills; %v in all", kills, time.Since(testStart).Round(time.Millisecond))
}

// sentMessage is what the parent knows of a message it sent.
type sentMessage struct {
	id     uint64
	poison bool
}

// sendQueueMessages creates a queue and sends it total messages with bodies
// "msg-NNNNNN", marking every poisonEvery-th one with poisonProperty, from
// this process, and stops the app so that children can use its data
// directory. It returns the messages by body.
func sendQueueMessages(t *testing.T, dataDir, name string, lock time.Duration, total, poisonEvery int) map[string]sentMessage {
	t.Helper()
	ctx := background(t, 5*time.Minute)
	app := sluice.New(sluice.Config{DataDir: dataDir, InstanceID: "sender", Logger: testLogger(t)})
	app.Queue(sluice.QueueConfig{Name: name, Lock: lock})
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = app.Stop(context.Background()) }()
	sent := make(map[string]sentMessage, total)
	seen := make(map[uint64]bool, total)
	const chunk = 1000 // the most one Send stores all or none
	for i := 0; i < total; i += chunk {
		var msgs []sluice.OutgoingMessage
		for j := i; j < min(i+chunk, total); j++ {
			m := sluice.OutgoingMessage{Body: fmt.Appendf(nil, "msg-%06d", j)}
			if j%poisonEvery == 0 {
				m.Properties = map[string]string{poisonProperty: "yes"}
			}
			msgs = append(msgs, m)
		}
		ids, err := app.Send(ctx, name, msgs...)
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		for k, id := range ids {
			if id == 0 || seen[id] {
				t.Fatalf("Send returned id %d for message %d: want unique non-zero ids", id, i+k)
			}
			seen[id] = true
			sent[string(msgs[k].Body)] = sentMessage{id: id, poison: msgs[k].Properties != nil}
		}
	}
	return sent
}

// queueOut is the running count of one queue consumer's output file.
type queueOut struct {
	tail
	completed int // C lines
	failed    int // F lines
	// left is the queue's depth plus its delayed messages, as the child
	// last reported them; -1 before the first report.
	left int64
}

// queueTracker follows queue consumers' output files while children run.
type queueTracker struct {
	files     []*queueOut
	sent      map[string]sentMessage
	completed map[string]int // body → C lines, over all files
	// deliveries are the C lines of each body, in the order read.
	deliveries map[string][]delivery
	failed     map[string]int // body → F lines
	goodDone   int            // distinct non-poison messages completed
	// maxDequeue is the function's MaxDequeueCount: it is never given a
	// message delivered more often.
	maxDequeue int
	// problems are what the lines show to be wrong.
	problems []string
}

// delivery is a completion line: which run (file) wrote it, and the
// message's dequeue count then.
type delivery struct{ run, dequeued int }

func newQueueTracker(sent map[string]sentMessage, maxDequeue int) *queueTracker {
	return &queueTracker{sent: sent, completed: map[string]int{}, failed: map[string]int{}, deliveries: map[string][]delivery{}, maxDequeue: maxDequeue}
}

func (tr *queueTracker) watch(path string) *queueOut {
	w := &queueOut{tail: tail{path: path}, left: -1}
	tr.files = append(tr.files, w)
	return w
}

func (tr *queueTracker) problem(format string, args ...any) {
	tr.problems = append(tr.problems, fmt.Sprintf(format, args...))
}

// poll reads what every file gained since the last poll. The lines are
// "C|F <id> <dequeue count> <body>" and "D <depth> <locked> <delayed>".
func (tr *queueTracker) poll(t *testing.T) {
	t.Helper()
	for run, w := range tr.files {
		lines, err := w.next()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range lines {
			f := strings.Fields(s)
			ok := len(f) == 4 && (f[0] == "C" || f[0] == "F" || f[0] == "D")
			var n [3]int64
			for i := range n {
				if !ok || (i == 2 && f[0] != "D") {
					break // the last field of a C or F line is the body
				}
				n[i], err = strconv.ParseInt(f[i+1], 10, 64)
				ok = err == nil
			}
			if !ok {
				t.Fatalf("%s: bad line %q", w.path, s)
			}
			if f[0] == "D" {
				w.left = n[0] + n[2]
				continue
			}
			body, id, dequeued := f[3], uint64(n[0]), int(n[1])
			m, known := tr.sent[body]
			switch {
			case !known:
				tr.problem("%s: the function was given %q, which was never sent", w.path, body)
				continue
			case id != m.id:
				tr.problem("%s: message %s was delivered with id %d; Send returned id %d", w.path, body, id, m.id)
			}
			if dequeued < 1 || dequeued > tr.maxDequeue {
				tr.problem("%s: message %s was given to the function at dequeue count %d; want 1 to maxDequeueCount", w.path, body, dequeued)
			}
			if f[0] == "F" {
				w.failed++
				tr.failed[body]++
				continue
			}
			w.completed++
			if tr.completed[body] == 0 && !m.poison {
				tr.goodDone++
			}
			tr.completed[body]++
			tr.deliveries[body] = append(tr.deliveries[body], delivery{run: run, dequeued: dequeued})
		}
	}
}

// readQueueAndPoison opens the store in dataDir and returns what is left
// in the queue ("" when nothing) and every dead letter of its poison queue.
func readQueueAndPoison(t *testing.T, dataDir, name string) (string, []deadletter.Letter) {
	t.Helper()
	ctx := background(t, 2*time.Minute)
	eng, err := engine.Start(ctx, engine.Config{DataDir: dataDir, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("restart the engine on the consumers' store: %v", err)
	}
	defer func() { _ = eng.Close() }()
	svc := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{Logger: testLogger(t)})
	st, err := svc.Stats(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var left string
	if st.Depth != 0 || st.Delayed != 0 {
		left = fmt.Sprintf("depth %d (%d locked), %d delayed", st.Depth, st.Locked, st.Delayed)
		peeked, err := svc.Peek(ctx, name, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range peeked {
			left += fmt.Sprintf("\n  %s (id %d, delivered %d times before)", m.Body, m.ID, m.DequeueCount)
		}
	}
	store := &deadletter.Store{Queues: svc}
	letters, err := store.List(ctx, deadletter.Filter{Queue: queue.PoisonName(name)}, math.MaxInt)
	if err != nil {
		t.Fatalf("list the dead letters of %s: %v", queue.PoisonName(name), err)
	}
	return left, letters
}
