package crashtest

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/lease"
)

// TestRebalance runs three consumers on one server, kills one while events
// keep arriving, and proves that the survivors take its partitions over
// after the lease expiry, that nothing published is lost or reordered, and
// that no partition was processed by two consumers at once.
func TestRebalance(t *testing.T) {
	rebalance(t, func(cfg sluice.Config) sluice.Config {
		cfg.NATSListen = "127.0.0.1:0"
		return cfg
	})
}

// TestRebalanceOnACluster is TestRebalance on a 3-node NATS cluster with
// every stream and bucket at three copies: the consumers and the
// publishing instance are processes of their own against the cluster, and
// the publishing instance, a survivor, never fails a publish while one
// consumer dies and its partitions move.
func TestRebalanceOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	cluster := enginetest.Cluster(t, 3)
	rebalance(t, func(cfg sluice.Config) sluice.Config {
		cfg.NATSURL = cluster.URL()
		return cfg
	})
}

// rebalance is TestRebalance with the publishing instance's engine set up
// by withEngine: embedded and listening (the consumers connect to it), or
// an external URL.
func rebalance(t *testing.T, withEngine func(sluice.Config) sluice.Config) {
	const (
		hubName    = "rb"
		partitions = 8
		keys       = 100
		expiry     = 2 * time.Second
		tick       = 50 * time.Millisecond // one event per key per tick
	)
	rng := seeded(t)
	dir := t.TempDir()
	ctx := background(t, 5*time.Minute)

	server, url := startServer(t, ctx, withEngine(sluice.Config{DataDir: filepath.Join(dir, "server"), InstanceID: "server", Logger: testLogger(t)}),
		hubName, partitions)
	ownership := leaseOwnership(t, ctx, url, hubName, expiry)
	published, stopPub, pubDone := publishTicks(ctx, server, hubName, keys, tick)
	stopPublishing := func() int {
		close(stopPub)
		if err := <-pubDone; err != nil {
			t.Fatalf("publish: %v", err)
		}
		return int(published.Load())
	}

	// The consumers join one after another, so that partitions are also
	// handed over gracefully (released to rebalance) before the kill. Each
	// batch takes a little time, so that the kill finds work in flight.
	tr := newTracker()
	names := []string{"c0", "c1", "c2"}
	children := map[string]*child{}
	watches := map[string]*watched{}
	var all []*child
	alive := func(names []string) {
		for _, n := range names {
			children[n].requireAlive(t)
		}
	}
	var own map[int]string
	for i, name := range names {
		out := filepath.Join(dir, name+".events")
		c := startChild(t, dir, name, childConfig{
			// A data directory of its own: the app keeps its document store
			// there even with an external engine.
			Role: roleConsumer, NATSURL: url, DataDir: filepath.Join(dir, name+".data"), InstanceID: name, Hub: hubName, Partitions: partitions,
			LeaseExpiry: expiry, MaxBatchSize: 100, BatchDelay: 20 * time.Millisecond, Out: out,
		})
		children[name], watches[name] = c, tr.watch(out)
		all = append(all, c)

		// Everyone so far works and holds a fair share: 8, then 4 and 4,
		// then 2 or 3 each.
		members := names[:i+1]
		began := time.Now()
		waitFor(t, 90*time.Second, 50*time.Millisecond, func() bool {
			alive(members)
			tr.poll(t)
			for _, n := range members {
				if watches[n].events == 0 {
					return false
				}
			}
			own = ownership()
			return balanced(own, members, partitions)
		}, func() string { return fmt.Sprintf("not balanced: ownership %v, events %v", own, eventCounts(watches)) })
		t.Logf("%s joined; balanced after %v: %s", name, time.Since(began).Round(time.Millisecond), byOwner(own))
	}

	// Kill one at a random moment while events arrive.
	time.Sleep(between(rng, 300*time.Millisecond, 2*time.Second))
	victim := names[rng.IntN(len(names))]
	survivors := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == victim })
	own = ownership()
	var lostParts []int
	for p, o := range own {
		if o == victim {
			lostParts = append(lostParts, p)
		}
	}
	slices.Sort(lostParts)
	killAt := time.Now()
	children[victim].kill(t)
	t.Logf("killed %s, owner of partitions %v", victim, lostParts)

	// The survivors take its partitions and process them.
	waitFor(t, 60*time.Second, 50*time.Millisecond, func() bool {
		alive(survivors)
		tr.poll(t)
		own = ownership()
		if !balanced(own, survivors, partitions) {
			return false
		}
		for _, p := range lostParts {
			if !slices.ContainsFunc(survivors, func(n string) bool { return watches[n].lastAt[p] > killAt.UnixNano() }) {
				return false
			}
		}
		return true
	}, func() string {
		return fmt.Sprintf("no takeover of %v: ownership %v", lostParts, own)
	})
	t.Logf("survivors own %v, %v after the kill (lease expiry %v)", byOwner(own), time.Since(killAt).Round(time.Millisecond), expiry)

	// Keep publishing a little (40 more ticks, however long they take),
	// then let the survivors finish.
	more := published.Load() + 40
	waitFor(t, time.Minute, 20*time.Millisecond, func() bool {
		alive(survivors)
		return published.Load() >= more
	}, func() string { return fmt.Sprintf("published %d of %d ticks", published.Load(), more) })
	ticks := stopPublishing()
	total := ticks * keys
	waitFor(t, 2*time.Minute, 100*time.Millisecond, func() bool {
		alive(survivors)
		tr.poll(t)
		return len(tr.seen) >= total
	}, func() string { return fmt.Sprintf("%d of %d published events processed", len(tr.seen), total) })
	for _, n := range survivors {
		children[n].terminate(t, time.Minute)
	}
	checkChildLogs(t, all)

	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = watches[n].path
	}
	r, segs := checkOutputs(t, paths, names, partitions)
	if missing := missingKeyed(r.seen, keys, ticks); len(missing) > 0 {
		t.Errorf("%d published events were never processed, e.g. %s", len(missing), strings.Join(missing[:min(10, len(missing))], " "))
	}
	if r.distinct != total {
		t.Errorf("%d distinct events processed, want %d", r.distinct, total)
	}
	t.Logf("%d events published, %d event lines, %d duplicates, %d ownerships; processed per consumer: %v",
		total, r.lines, r.duplicates, len(segs), eventCounts(watches))
	for _, o := range r.overlaps {
		t.Errorf("two consumers processed a partition at the same time: %s", o)
	}

	// When did each of the victim's partitions move, and to whom? Nobody
	// may take one before the victim's lease could have expired.
	for _, p := range lostParts {
		first := int64(0)
		by := ""
		for _, sg := range segs {
			if sg.partition == p && sg.source != victim && sg.start > killAt.UnixNano() && (first == 0 || sg.start < first) {
				first, by = sg.start, sg.source
			}
		}
		if first == 0 {
			t.Errorf("partition %d of %s was never acquired by a survivor", p, victim)
			continue
		}
		after := time.Duration(first - killAt.UnixNano())
		t.Logf("partition %d: acquired by %s %v after the kill", p, by, after.Round(time.Millisecond))
		if after < expiry/2 {
			t.Errorf("partition %d was taken over %v after its owner was killed, before its lease (expiry %v) could have expired", p, after, expiry)
		}
	}
}

// balanced reports whether the partitions are all owned, by the given
// instances only, each holding its fair share (n/len or one more).
func balanced(own map[int]string, names []string, partitions int) bool {
	if len(own) != partitions {
		return false
	}
	counts := map[string]int{}
	for _, o := range own {
		if !slices.Contains(names, o) {
			return false
		}
		counts[o]++
	}
	lo := partitions / len(names)
	hi := (partitions + len(names) - 1) / len(names)
	for _, n := range names {
		if counts[n] < lo || counts[n] > hi {
			return false
		}
	}
	return true
}

func byOwner(own map[int]string) string {
	parts := map[string][]int{}
	for p, o := range own {
		parts[o] = append(parts[o], p)
	}
	var b strings.Builder
	for _, o := range slices.Sorted(maps.Keys(parts)) {
		slices.Sort(parts[o])
		fmt.Fprintf(&b, "%s=%v ", o, parts[o])
	}
	return strings.TrimSpace(b.String())
}

func eventCounts(watches map[string]*watched) map[string]int {
	out := map[string]int{}
	for n, w := range watches {
		out[n] = w.events
	}
	return out
}

// startServer starts the instance that holds the hub (and, embedded, the
// engine the children connect to), and returns it with the engine's URL.
func startServer(t *testing.T, ctx context.Context, cfg sluice.Config, hubName string, partitions int) (*sluice.App, string) {
	t.Helper()
	server := sluice.New(cfg)
	server.Hub(sluice.HubConfig{Name: hubName, Partitions: partitions})
	if err := server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Stop(context.Background()) })
	url := cmp.Or(cfg.NATSURL, server.NATSURL())
	if url == "" {
		t.Fatal("the server has no client URL")
	}
	return server, url
}

// leaseOwnership returns a function that reads who owns each partition of
// the hub's default group, as the lease bucket says, the way any instance
// would.
func leaseOwnership(t *testing.T, ctx context.Context, url, hubName string, expiry time.Duration) func() map[int]string {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "sluice-leases")
	if err != nil {
		t.Fatal(err)
	}
	observer, err := lease.New(kv, lease.Config{InstanceID: "observer", Expiry: expiry})
	if err != nil {
		t.Fatal(err)
	}
	return func() map[int]string {
		own, err := observer.Ownership(ctx, hubName+"."+"$Default")
		if err != nil {
			t.Logf("read ownership: %v", err)
		}
		return own
	}
}

// publishTicks publishes one event per key every tick, index by index,
// until stop is closed; published counts the acknowledged ticks, and done
// gets nil once stopped, or the error that ended publishing.
func publishTicks(ctx context.Context, server *sluice.App, hubName string, keys int, tick time.Duration) (published *atomic.Int64, stop chan struct{}, done chan error) {
	published, stop, done = new(atomic.Int64), make(chan struct{}), make(chan error, 1)
	go func() {
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			case <-tk.C:
			}
			events := make([]sluice.Event, keys)
			for k := range keys {
				events[k] = sluice.Event{Body: fmt.Appendf(nil, "%s/%d", keyName(k), i), PartitionKey: keyName(k)}
			}
			if _, err := server.Publish(ctx, hubName, events...); err != nil {
				done <- err
				return
			}
			published.Store(int64(i + 1))
		}
	}()
	return published, stop, done
}
