package crashtest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
)

// TestCrashLoopTakesItsPartitionsBack kills one of two consumers again and
// again, moments after each start (some during start-up), on the same data
// directory, then starts it for good: every incarnation, and the last one,
// takes the partitions the dead one held back at once. The leases last 10
// minutes, so a takeover that waited for a dead incarnation's lease, or a
// balance that counted dead incarnations as members, would hold
// partitions idle past the test's deadline. (Quick successive crashes used
// to stretch a takeover to 54.6s for a 30s expiry.) Nothing published is
// lost, and no partition is processed by two consumers at once.
func TestCrashLoopTakesItsPartitionsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a consumer process repeatedly")
	}
	const (
		hubName    = "loop"
		partitions = 8
		keys       = 64
		expiry     = 10 * time.Minute
		tick       = 50 * time.Millisecond
		kills      = 4
	)
	rng := seeded(t)
	dir := t.TempDir()
	ctx := background(t, 4*time.Minute)
	server, url := startServer(t, ctx, sluice.Config{DataDir: filepath.Join(dir, "server"), NATSListen: "127.0.0.1:0", InstanceID: "server",
		Logger: testLogger(t)}, hubName, partitions)
	ownership := leaseOwnership(t, ctx, url, hubName, expiry)
	published, stopPub, pubDone := publishTicks(ctx, server, hubName, keys, tick)

	tr := newTracker()
	var all []*child
	var paths, names []string
	start := func(name, dataDir, instanceID string) (*child, *watched) {
		out := filepath.Join(dir, name+".events")
		c := startChild(t, dir, name, childConfig{
			Role: roleConsumer, NATSURL: url, DataDir: dataDir, InstanceID: instanceID, Hub: hubName, Partitions: partitions,
			LeaseExpiry: expiry, MaxBatchSize: 100, BatchDelay: 10 * time.Millisecond, Out: out,
		})
		all, paths, names = append(all, c), append(paths, out), append(names, name)
		return c, tr.watch(out)
	}
	// The looping consumer has no configured ID: it takes its data
	// directory's, the same in every incarnation.
	loopDir := filepath.Join(dir, "loop.data")
	steady, _ := start("steady", filepath.Join(dir, "steady.data"), "steady")
	var own map[int]string
	balancedWith := func(c *child, w *watched, since int64) {
		t.Helper()
		waitFor(t, 2*time.Minute, 50*time.Millisecond, func() bool {
			steady.requireAlive(t)
			c.requireAlive(t)
			tr.poll(t)
			own = ownership()
			if len(own) != partitions {
				return false
			}
			// Every partition processed since, by whoever owns it now.
			for p := range partitions {
				done := false
				for _, f := range tr.files {
					done = done || f.lastAt[p] > since
				}
				if !done {
					return false
				}
			}
			return w.events > 0
		}, func() string { return fmt.Sprintf("partitions idle: ownership %v\n%s", own, c.logTail(30)) })
	}

	began := time.Now()
	for i := range kills + 1 {
		name := fmt.Sprintf("loop-%02d", i)
		c, w := start(name, loopDir, "")
		if i < kills {
			d := between(rng, 0, 1500*time.Millisecond)
			time.Sleep(d)
			c.kill(t)
			t.Logf("%s killed %v after its start", name, d.Round(time.Millisecond))
			continue
		}
		at := time.Now()
		balancedWith(c, w, at.UnixNano())
		t.Logf("%s: every partition processed %v after its start (lease expiry %v): %s", name, time.Since(at).Round(time.Millisecond), expiry, byOwner(own))
	}
	close(stopPub)
	if err := <-pubDone; err != nil {
		t.Fatalf("publish: %v", err)
	}
	ticks := int(published.Load())
	total := ticks * keys
	waitFor(t, 2*time.Minute, 100*time.Millisecond, func() bool {
		tr.poll(t)
		return len(tr.seen) >= total
	}, func() string { return fmt.Sprintf("%d of %d published events processed", len(tr.seen), total) })
	for _, c := range all {
		if !c.exited() {
			c.terminate(t, time.Minute)
		}
	}
	checkChildLogs(t, all)
	r, segs := checkOutputs(t, paths, names, partitions)
	if missing := missingKeyed(r.seen, keys, ticks); len(missing) > 0 {
		t.Errorf("%d published events were never processed, e.g. %s", len(missing), strings.Join(missing[:min(10, len(missing))], " "))
	}
	for _, o := range r.overlaps {
		t.Errorf("two consumers processed a partition at the same time: %s", o)
	}
	t.Logf("%d events over %v, %d duplicates, %d ownerships, %d event lines", total, time.Since(began).Round(time.Millisecond),
		r.duplicates, len(segs), r.lines)
}
