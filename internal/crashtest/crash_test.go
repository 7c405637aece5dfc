package crashtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/hub"
)

// eventCount is the consumer crash test's event count: SLUICE_CRASH_EVENTS,
// default 200000, rounded up to a multiple of keys.
func eventCount(t *testing.T, keys int) int {
	t.Helper()
	n := 200_000
	if s := os.Getenv("SLUICE_CRASH_EVENTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("SLUICE_CRASH_EVENTS=%q: want a positive number", s)
		}
		n = v
	}
	return (n + keys - 1) / keys * keys
}

// TestConsumerCrash kills a consumer again and again while it works through
// a backlog, and proves from what it recorded that nothing was lost, nothing
// skipped, order held, and redelivery stayed within the in-flight batches.
func TestConsumerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the consumer crash test takes about 40s; it runs without -short")
	}
	const (
		hubName    = "crash"
		partitions = 4
		keys       = 100
		maxBatch   = 100
		midKills   = 6 // kills while processing
		earlyKills = 2 // kills during start-up: store recovery, lease wait
		stopKills  = 1 // kills during a graceful stop
		expiry     = 2 * time.Second
	)
	total := eventCount(t, keys)
	perKey := total / keys
	rng := seeded(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")

	began := time.Now()
	publishKeyed(t, data, hubName, partitions, keys, perKey)
	t.Logf("published %d events (%d keys × %d) in %v", total, keys, perKey, time.Since(began).Round(time.Millisecond))

	// Pace the consumer so that the kills land mid-stream on any machine:
	// each batch takes at least batchDelay, and a partition has one batch
	// in flight, so at most partitions × maxBatch events are processed per
	// batchDelay, and the whole backlog takes at least minProcessing: more
	// than the killed runs can last ((mid+stop) × 2.1s + early × 0.8s).
	const minProcessing = 20 * time.Second
	batchDelay := time.Duration(float64(minProcessing) * partitions * maxBatch / float64(total))
	base := childConfig{
		Role: roleConsumer, DataDir: data, InstanceID: "consumer", Hub: hubName, Partitions: partitions,
		LeaseExpiry: expiry, MaxBatchSize: maxBatch, BatchDelay: batchDelay,
	}
	tr := newTracker()
	var children []*child
	var outs []string
	start := func(name string) (*child, *watched) {
		cfg := base
		cfg.Out = filepath.Join(dir, name+".events")
		outs = append(outs, cfg.Out)
		c := startChild(t, dir, name, cfg)
		children = append(children, c)
		return c, tr.watch(cfg.Out)
	}

	var plan []string
	for kind, n := range map[string]int{"mid": midKills, "early": earlyKills, "stop": stopKills} {
		for range n {
			plan = append(plan, kind)
		}
	}
	slices.Sort(plan) // map order is random but not seeded
	rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
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
			t.Logf("%s: killed %v after start, during start-up; it processed %d events", name, d.Round(time.Millisecond), w.events)
			continue
		}
		waitFor(t, 90*time.Second, 10*time.Millisecond, func() bool {
			c.requireAlive(t)
			tr.poll(t)
			return w.events > 0
		}, func() string { return name + " processed nothing\n" + c.logTail(30) })
		working := time.Since(started)
		d := between(rng, 300*time.Millisecond, 2*time.Second)
		time.Sleep(d)
		how := "killed"
		if kind == "stop" {
			grace := between(rng, 0, 80*time.Millisecond)
			if c.termThenKill(t, grace) {
				how = fmt.Sprintf("sent SIGTERM, killed %v into its graceful stop", grace.Round(time.Millisecond))
				kills++
			} else {
				how = "sent SIGTERM, it stopped gracefully before the kill"
			}
		} else {
			c.kill(t)
			kills++
		}
		tr.poll(t)
		t.Logf("%s: processing began %v after start, %v later %s; it processed %d events; %d of %d distinct so far",
			name, working.Round(time.Millisecond), d.Round(time.Millisecond), how, w.events, len(tr.seen), total)
		if len(tr.seen) >= total {
			t.Fatalf("everything was processed before kill %d: the kills did not land mid-stream", kills)
		}
	}

	// The last run goes to the end and stops gracefully. The stop comes
	// as soon as the last events are recorded, while their batch is still
	// in the handler: the graceful stop must let it finish and checkpoint it.
	c, w := start("final")
	began = time.Now()
	waitFor(t, 3*time.Minute, 5*time.Millisecond, func() bool {
		c.requireAlive(t)
		tr.poll(t)
		return len(tr.seen) >= total
	}, func() string {
		return fmt.Sprintf("%d of %d events processed\n%s", len(tr.seen), total, c.logTail(30))
	})
	t.Logf("final: processed %d events; all %d done %v after its start", w.events, total, time.Since(began).Round(time.Millisecond))
	c.terminate(t, time.Minute)
	tr.poll(t)

	// A graceful stop checkpoints everything: a new run would have nothing
	// to do. (The store says so; a new run waited on for a while could
	// only say that it had done nothing yet.)
	requireCheckpointed(t, data, hubName)

	checkChildLogs(t, children)
	names := make([]string, len(children))
	for i, c := range children {
		names[i] = c.name
	}
	r, _ := checkOutputs(t, outs, names, partitions)
	for _, o := range r.overlaps {
		t.Errorf("overlap: %s", o)
	}
	if missing := missingKeyed(r.seen, keys, perKey); len(missing) > 0 {
		t.Errorf("%d events were never processed, e.g. %s", len(missing), strings.Join(missing[:min(10, len(missing))], " "))
	}
	if r.distinct != total {
		t.Errorf("%d distinct events processed, want %d", r.distinct, total)
	}
	bound := kills * partitions * host.MaxRedeliveredBatches * maxBatch
	t.Logf("%d event lines, %d distinct, %d duplicates after %d kills (bound %d = kills × %d partitions × %d batches × %d)",
		r.lines, r.distinct, r.duplicates, kills, bound, partitions, host.MaxRedeliveredBatches, maxBatch)
	if r.duplicates > bound {
		t.Errorf("%d duplicates exceed the bound of %d: more than %d batches per partition were redelivered after a kill", r.duplicates, bound, host.MaxRedeliveredBatches)
	}
}

// requireCheckpointed fails the test unless the default group of the hub in
// the store at dataDir is checkpointed at every partition's last event. No
// instance may be running on the store.
func requireCheckpointed(t *testing.T, dataDir, hubName string) {
	t.Helper()
	ctx := background(t, 3*time.Minute)
	eng, err := engine.Start(ctx, engine.Config{DataDir: dataDir, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("start the engine on the consumers' store: %v", err)
	}
	defer func() { _ = eng.Close() }()
	svc, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(context.Background())
	lags, err := svc.GroupLag(ctx, hubName, hub.DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lags {
		if l.Events != 0 || l.Checkpoint != l.LastSequence {
			t.Errorf("after a graceful stop with every event processed, partition %d is checkpointed at %d, its last event is %d (%d events behind): a new instance would process them again; the stop did not checkpoint what it had processed",
				l.Partition, l.Checkpoint, l.LastSequence, l.Events)
		}
	}
}

// publishKeyed stores keys × perKey events "kNNN/i" in a new hub, in index
// order per key, from this process, and stops the app so that children can
// use its data directory.
func publishKeyed(t *testing.T, dataDir, hubName string, partitions, keys, perKey int) {
	t.Helper()
	ctx := background(t, 5*time.Minute)
	app := sluice.New(sluice.Config{DataDir: dataDir, InstanceID: "loader", Logger: testLogger(t)})
	app.Hub(sluice.HubConfig{Name: hubName, Partitions: partitions})
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = app.Stop(context.Background()) }()
	const chunk = 20 // indexes per Publish call
	for i := 0; i < perKey; i += chunk {
		events := make([]sluice.Event, 0, chunk*keys)
		for j := i; j < min(i+chunk, perKey); j++ {
			for k := range keys {
				key := keyName(k)
				events = append(events, sluice.Event{Body: fmt.Appendf(nil, "%s/%d", key, j), PartitionKey: key})
			}
		}
		if _, err := app.Publish(ctx, hubName, events...); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

func keyName(k int) string { return fmt.Sprintf("k%03d", k) }

// missingKeyed lists the events "kNNN/i" (i < perKey) not in seen.
func missingKeyed(seen map[string]struct{}, keys, perKey int) []string {
	var out []string
	for k := range keys {
		for i := range perKey {
			b := fmt.Sprintf("%s/%d", keyName(k), i)
			if _, ok := seen[b]; !ok {
				out = append(out, b)
			}
		}
	}
	return out
}
