package sluice_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/hub"
)

// processedSet records the event bodies a function processed and wakes
// whoever waits for more.
type processedSet struct {
	mu   sync.Mutex
	seen map[string]int
	more chan struct{}
}

func (p *processedSet) add(events []sluice.Event) {
	p.mu.Lock()
	for _, e := range events {
		p.seen[string(e.Body)]++
	}
	p.mu.Unlock()
	select {
	case p.more <- struct{}{}:
	default:
	}
}

// waitFor waits until every one of ids was processed, failing the test
// when ctx ends first.
func (p *processedSet) waitFor(t *testing.T, ctx context.Context, ids []string) {
	t.Helper()
	for missing := p.missing(ids); len(missing) > 0; missing = p.missing(ids) {
		select {
		case <-p.more:
		case <-ctx.Done():
			t.Fatalf("%d acknowledged events never processed, e.g. %v", len(missing), missing[:min(5, len(missing))])
		}
	}
}

// startCounting starts an instance with cfg, a hub "in" of partitions and
// a function on it, and returns the instance and what its function
// processed. The instance stops when the test ends.
func startCounting(t *testing.T, ctx context.Context, cfg sluice.Config, partitions int) (*sluice.App, *processedSet) {
	t.Helper()
	done := &processedSet{seen: map[string]int{}, more: make(chan struct{}, 1)}
	app := sluice.New(cfg)
	app.Hub(sluice.HubConfig{Name: "in", Partitions: partitions})
	app.Function("f", sluice.HubTrigger{Hub: "in"}, func(_ context.Context, events []sluice.Event) error {
		done.add(events)
		return nil
	})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	return app, done
}

// repeated counts the events processed more than once.
func (p *processedSet) repeated() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.seen {
		if c > 1 {
			n++
		}
	}
	return n
}

func (p *processedSet) missing(ids []string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, id := range ids {
		if p.seen[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// Losing a NATS node with R3: the node leading a partition is SIGKILLed
// while events are published one by one and processed. Publishes fail for
// the election (503-class errors, never "hub not found"), a retry with the
// event's message id stores it once, every acknowledged event is processed
// and the consumers resume by themselves, before and after the node comes
// back.
func TestNodeLossWithReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and kills a node")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang's bound, not a speed's
	defer cancel()
	cluster := enginetest.Cluster(t, 3)
	app, done := startCounting(t, ctx, sluice.Config{DataDir: t.TempDir(), NATSURL: cluster.URL(), Logger: testLogger(t)}, 2)

	var acked []string
	failures, notFound := 0, 0
	kinds := map[string]int{} // what the failed publishes said
	var failedFor time.Duration
	publish := func(i int) {
		id := fmt.Sprintf("e%04d", i)
		var firstFailure time.Time
		for {
			_, err := app.Publish(ctx, "in", sluice.Event{Body: []byte(id), MessageID: id, PartitionKey: id})
			if err == nil {
				if !firstFailure.IsZero() {
					failedFor += time.Since(firstFailure)
				}
				acked = append(acked, id)
				return
			}
			require.NoError(t, ctx.Err(), "gave up on %s: %v", id, err)
			failures++
			kinds[err.Error()]++
			if errors.Is(err, sluice.ErrHubNotFound) {
				notFound++
			}
			if firstFailure.IsZero() {
				firstFailure = time.Now()
			}
			select { // a client's retry interval
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	for i := range 100 {
		publish(i)
	}
	done.waitFor(t, ctx, acked)
	leader, err := cluster.StreamLeader(ctx, hub.StreamName("in", 0))
	require.NoError(t, err)
	require.NoError(t, cluster.Kill(leader))
	for i := 100; i < 200; i++ {
		publish(i)
	}
	done.waitFor(t, ctx, acked)
	require.NoError(t, cluster.Restart(ctx, leader))
	for i := 200; i < 300; i++ {
		publish(i)
	}
	require.NoError(t, cluster.WaitCurrent(ctx, hub.StreamName("in", 0)))
	done.waitFor(t, ctx, acked)
	require.Zero(t, notFound, "a publish during the failover answered 'hub not found'")
	t.Logf("node-%d killed: %d failed publish attempts, %v of publishing held up in all; all %d acknowledged events processed, %d of them more than once; the failures said %v",
		leader, failures, failedFor.Round(time.Millisecond), len(acked), done.repeated(), kinds)
}

// testLogger logs to the file in SLUICE_TEST_LOG when set (to see what an
// instance did in a failed run), else nowhere.
func testLogger(t *testing.T) *slog.Logger {
	path := os.Getenv("SLUICE_TEST_LOG")
	if path == "" {
		return quiet()
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// A hub's partitions rescaled from one copy to three, then their leaders
// stepped down twice, while every partition is published to: publishes
// fail at most for a moment (the publisher retries with the events'
// message ids), no partition hangs, every acknowledged event is processed,
// and the instance stops gracefully within its bound. (A lost publish
// acknowledgement used to hold a partition for good here.)
func TestRescaleAndStepDownsWhilePublishing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	const partitions = 8
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang's bound, not a speed's
	defer cancel()
	cluster := enginetest.Cluster(t, 3)
	app, done := startCounting(t, ctx, sluice.Config{DataDir: t.TempDir(), NATSURL: cluster.URL(), Replicas: 1, Logger: testLogger(t)}, partitions)

	var (
		mu       sync.Mutex
		acked    []string
		failures = map[string]int{}
		rounds   [partitions]atomic.Int64
	)
	stop := make(chan struct{})
	var publishers sync.WaitGroup
	for p := range partitions {
		publishers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("p%d-%05d", p, i)
				for {
					_, err := app.PublishToPartition(ctx, "in", p, sluice.Event{Body: []byte(id), MessageID: id})
					if err == nil {
						break
					}
					if ctx.Err() != nil {
						return
					}
					mu.Lock()
					failures[err.Error()]++
					mu.Unlock()
					select {
					case <-ctx.Done():
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
				rounds[p].Add(1)
			}
		})
	}
	// progress waits until every partition has taken n more publishes.
	progress := func(n int64) {
		t.Helper()
		var from [partitions]int64
		for p := range partitions {
			from[p] = rounds[p].Load()
		}
		for p := range partitions {
			for rounds[p].Load() < from[p]+n {
				select {
				case <-ctx.Done():
					t.Fatalf("partition %d hangs: %d publishes since the disturbance; failures %v", p, rounds[p].Load()-from[p], failures)
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
	}

	progress(20)
	js := cluster.Engine(t).JS
	for p := range partitions {
		st, err := js.Stream(ctx, hub.StreamName("in", p))
		require.NoError(t, err)
		cfg := st.CachedInfo().Config
		require.Equal(t, 1, cfg.Replicas)
		cfg.Replicas = 3
		_, err = js.UpdateStream(ctx, cfg)
		require.NoError(t, err)
	}
	progress(20)
	for p := range partitions {
		require.NoError(t, cluster.WaitCurrent(ctx, hub.StreamName("in", p)))
	}
	for range 2 {
		for p := range partitions {
			_, err := cluster.StepDown(ctx, hub.StreamName("in", p))
			require.NoError(t, err)
		}
		progress(20)
	}
	close(stop)
	publishers.Wait()
	require.NoError(t, ctx.Err())

	done.waitFor(t, ctx, acked)
	stopCtx, cancelStop := context.WithTimeout(ctx, time.Minute)
	defer cancelStop()
	require.NoError(t, app.Stop(stopCtx), "the instance stops gracefully")
	t.Logf("%d events acknowledged and processed across a rescale to R3 and two step-downs of %d partitions; failed attempts: %v",
		len(acked), partitions, failures)
}

// Instances started at the same moment on a fresh cluster all start: they
// race to create the same buckets, hub and queue (two of thirteen rounds
// used to fail with "repair partition N: context deadline exceeded"), and
// share the hub's partitions afterwards.
func TestSimultaneousStartsOnAFreshCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang's bound, not a speed's
	defer cancel()
	cluster := enginetest.Cluster(t, 3)
	const instances = 3
	done := &processedSet{seen: map[string]int{}, more: make(chan struct{}, 1)}
	apps := make([]*sluice.App, instances)
	for i := range apps {
		app := sluice.New(sluice.Config{DataDir: t.TempDir(), NATSURL: cluster.URL(), Logger: testLogger(t)})
		app.Hub(sluice.HubConfig{Name: "orders", Partitions: 8})
		app.Function("f", sluice.HubTrigger{Hub: "orders"}, func(_ context.Context, events []sluice.Event) error {
			done.add(events)
			return nil
		})
		app.Queue(sluice.QueueConfig{Name: "jobs"})
		app.QueueFunction("q", sluice.QueueTrigger{Queue: "jobs"}, func(context.Context, *sluice.Message) error { return nil })
		apps[i] = app
	}
	errs := make([]error, instances)
	var starts sync.WaitGroup
	for i, app := range apps {
		starts.Go(func() { errs[i] = app.Start(ctx) })
	}
	starts.Wait()
	for i, app := range apps {
		require.NoError(t, errs[i], "instance %d", i)
		defer app.Stop(context.Background())
	}
	var ids []string
	for i := range 80 {
		id := fmt.Sprintf("e%02d", i)
		_, err := apps[i%instances].Publish(ctx, "orders", sluice.Event{Body: []byte(id), PartitionKey: id})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	done.waitFor(t, ctx, ids)
}

// A NATS outage longer than the leases' hold: the only server is SIGKILLed
// while an instance processes 8 partitions, stays down 40 s, and restarts
// on the same store. Every partition processes again once it is back, and
// every event acknowledged before and after is processed. (Two of eight
// partitions used to stay idle for about another lease expiry: a lease
// write made while disconnected was sent after the reconnect although its
// caller had given up on it.)
func TestEngineOutageLongerThanTheLeases(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps a NATS server down for 40 s")
	}
	t.Parallel()
	const partitions = 8
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang's bound, not a speed's
	defer cancel()
	server := enginetest.Cluster(t, 1)
	app, done := startCounting(t, ctx, sluice.Config{DataDir: t.TempDir(), NATSURL: server.URL(), LeaseExpiry: 20 * time.Second, Logger: testLogger(t)}, partitions)

	var acked []string
	round := func(name string) {
		for p := range partitions {
			id := fmt.Sprintf("%s-%d", name, p)
			for {
				_, err := app.PublishToPartition(ctx, "in", p, sluice.Event{Body: []byte(id), MessageID: id})
				if err == nil {
					break
				}
				require.NoError(t, ctx.Err(), "gave up on %s: %v", id, err)
				require.ErrorIs(t, err, sluice.ErrUnavailable, "publish %s", id)
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
			acked = append(acked, id)
		}
		done.waitFor(t, ctx, acked)
	}
	round("before")
	require.NoError(t, server.Kill(0))
	// The outage itself: time has to pass for the leases' hold to run out.
	time.Sleep(40 * time.Second)
	require.NoError(t, server.Restart(ctx, 0))
	back := time.Now()
	round("after")
	t.Logf("after a 40 s outage, all %d partitions processed again %v after the server was back", partitions, time.Since(back).Round(time.Millisecond))
}
