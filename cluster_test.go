package sluice_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
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
	done := &processedSet{seen: map[string]int{}, more: make(chan struct{}, 1)}
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), NATSURL: cluster.URL(), Logger: testLogger(t)})
	app.Hub(sluice.HubConfig{Name: "in", Partitions: 2})
	app.Function("f", sluice.HubTrigger{Hub: "in"}, func(_ context.Context, events []sluice.Event) error {
		done.add(events)
		return nil
	})
	require.NoError(t, app.Start(ctx))
	defer app.Stop(context.Background())

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
	waitProcessed := func() {
		for missing := done.missing(acked); len(missing) > 0; missing = done.missing(acked) {
			select {
			case <-done.more:
			case <-ctx.Done():
				t.Fatalf("%d acknowledged events never processed, e.g. %v", len(missing), missing[:min(5, len(missing))])
			}
		}
	}

	for i := range 100 {
		publish(i)
	}
	waitProcessed()
	leader, err := cluster.StreamLeader(ctx, hub.StreamName("in", 0))
	require.NoError(t, err)
	require.NoError(t, cluster.Kill(leader))
	for i := 100; i < 200; i++ {
		publish(i)
	}
	waitProcessed()
	require.NoError(t, cluster.Restart(ctx, leader))
	for i := 200; i < 300; i++ {
		publish(i)
	}
	require.NoError(t, cluster.WaitCurrent(ctx, hub.StreamName("in", 0)))
	waitProcessed()
	require.Zero(t, notFound, "a publish during the failover answered 'hub not found'")
	t.Logf("node-%d killed: %d failed publish attempts, %v of publishing held up in all; all %d acknowledged events processed; the failures said %v",
		leader, failures, failedFor.Round(time.Millisecond), len(acked), kinds)
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
