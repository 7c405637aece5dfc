package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/sqlite"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/lease"
	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/resilience"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// TestOverview checks GET /api/v1/overview on real engines: a hub with a
// consumer group whose partitions an instance leases, a function's
// metrics and breaker, a queue, a dead letter and a container.
func TestOverview(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := enginetest.Embedded(t)
	hubs, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, hubs.Stop(context.Background())) })
	queues := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { require.NoError(t, queues.Stop(context.Background())) })
	docs, err := sqlite.Open(filepath.Join(t.TempDir(), "docs.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = docs.Close() })

	// A hub of 2 partitions with 3 events; the group has processed the
	// first event of partition 0.
	_, err = hubs.Create(ctx, hub.Config{Name: "demo", Partitions: 2})
	require.NoError(t, err)
	pos, err := hubs.Publish(ctx, "demo", []hub.Event{
		{Body: []byte("a"), Partition: 0, HasPartition: true},
		{Body: []byte("b"), Partition: 0, HasPartition: true},
		{Body: []byte("c"), Partition: 1, HasPartition: true},
	})
	require.NoError(t, err)
	_, err = hubs.PutCheckpoint(ctx, "demo", "$Default", 0, hub.Checkpoint{Sequence: pos[0].Sequence, Owner: "i1", Updated: time.Now()}, 0)
	require.NoError(t, err)

	// Instance i1 holds both partitions of the group's lease set.
	kv, err := eng.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "leases"})
	require.NoError(t, err)
	leases, err := lease.New(kv, lease.Config{InstanceID: "i1", Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, leases.Join("demo.$Default", 2, func(ctx context.Context, _ int) { <-ctx.Done() }))
	require.NoError(t, leases.Start(ctx))
	t.Cleanup(func() { require.NoError(t, leases.Stop(context.Background())) })
	require.Eventually(t, func() bool {
		own, err := leases.Ownership(ctx, "demo.$Default")
		return err == nil && len(own) == 2
	}, 10*time.Second, 20*time.Millisecond)

	// The function decode reads the group; its breaker was opened by hand.
	m := telemetry.NewMetrics()
	m.EventsIn.WithLabelValues("demo").Add(3)
	m.EventsProcessed.WithLabelValues("decode", "demo", "$Default").Add(1000)
	for _, d := range []float64{0.001, 0.002, 0.003, 0.5} {
		m.BatchDuration.WithLabelValues("decode").Observe(d)
	}
	m.Failures.WithLabelValues("decode").Add(2)
	m.Retries.WithLabelValues("decode").Add(1)
	m.DeadLettered.WithLabelValues("decode", "hub").Add(1)
	m.QueueMessages.WithLabelValues("decode", "sluice-retry-decode", telemetry.OutcomeCompleted).Add(5) // events retried later
	m.QueueMessages.WithLabelValues("ship", "orders", telemetry.OutcomeCompleted).Add(7)
	m.QueueMessages.WithLabelValues("ship", "orders", telemetry.OutcomeDequeued).Add(9)
	m.BatchDuration.WithLabelValues("ship")
	bkv, err := eng.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "breakers"})
	require.NoError(t, err)
	breakers := resilience.NewBreakers(bkv, resilience.BreakersOptions{Logger: slog.New(slog.DiscardHandler)})
	_, err = breakers.Register("decode", resilience.BreakerPolicy{ConsecutiveFailures: 5}, time.Minute)
	require.NoError(t, err)
	_, err = breakers.Open(ctx, "decode", "maintenance", "test")
	require.NoError(t, err)

	// A queue with a message, a dead letter, a container with 2 documents.
	_, err = queues.Create(ctx, queue.Config{Name: "orders"})
	require.NoError(t, err)
	_, err = queues.Send(ctx, "orders", []queue.Outgoing{{Body: []byte("o1")}})
	require.NoError(t, err)
	store := &deadletter.Store{Queues: queues, Hubs: hubs}
	require.NoError(t, store.Put(ctx, []deadletter.Letter{{Function: "decode", Reason: "corrupt",
		Source: deadletter.Source{Kind: "hub", Hub: "demo", Partition: 0, Sequence: pos[1].Sequence}, Body: []byte("b")}}))
	_, err = docs.CreateContainer(ctx, docstore.Container{Name: "devices", PartitionKeyPath: "/deviceId"})
	require.NoError(t, err)
	for _, d := range []string{`{"id":"1","deviceId":"a"}`, `{"id":"2","deviceId":"b"}`, `{"id":"3","deviceId":"c"}`} {
		_, err = docs.Upsert(ctx, "devices", []byte(d))
		require.NoError(t, err)
	}
	require.NoError(t, docs.Delete(ctx, "devices", "c", "3", ""))

	srv := httptest.NewServer(gateway.NewServer(gateway.Config{Hubs: hubs, Queues: queues, Docs: docs, Breakers: breakers,
		Leases: leases, InstanceID: "i1", Metrics: m, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	f := &fixture{url: srv.URL}
	var ov gateway.Overview
	f.doJSON(t, http.StatusOK, &ov, "GET", "/api/v1/overview", nil)
	require.Empty(t, ov.Errors)
	require.Equal(t, "i1", ov.Instance)

	// Functions, from the metrics, with the breaker's shared state.
	require.Len(t, ov.Functions, 2)
	dec := ov.Functions[0]
	require.Equal(t, "decode", dec.Name)
	require.Equal(t, "hub", dec.Trigger)
	require.Equal(t, "demo", dec.Source)
	require.Equal(t, "$Default", dec.Group)
	require.EqualValues(t, 1005, dec.Processed)
	require.EqualValues(t, 4, dec.Invocations)
	require.EqualValues(t, 2, dec.Failures)
	require.EqualValues(t, 1, dec.Retries)
	require.EqualValues(t, 1, dec.DeadLettered)
	require.InDelta(t, 0.506/4, dec.MeanSeconds, 1e-9)
	require.Greater(t, dec.P50Seconds, 0.0004) // the 0.4 ms–1.6 ms bucket
	require.Less(t, dec.P50Seconds, 0.0064)
	require.Greater(t, dec.P99Seconds, 0.1) // the slow invocation's bucket
	require.NotEmpty(t, dec.DurationBuckets)
	require.NotNil(t, dec.Breaker)
	require.Equal(t, "open", dec.Breaker.State)
	require.True(t, dec.Breaker.Manual)
	ship := ov.Functions[1]
	require.Equal(t, "ship", ship.Name)
	require.Equal(t, "queue", ship.Trigger)
	require.Equal(t, "orders", ship.Source)
	require.EqualValues(t, 7, ship.Processed)
	require.Nil(t, ship.Breaker)

	// The hub, its partitions, and the group's lag and owners.
	require.Len(t, ov.Hubs, 1)
	h := ov.Hubs[0]
	require.Equal(t, "demo", h.Name)
	require.Equal(t, 2, h.Partitions)
	require.EqualValues(t, 3, h.EventsIn)
	require.Len(t, h.PartitionInfo, 2)
	require.Positive(t, h.Bytes)
	require.Len(t, h.Groups, 1)
	g := h.Groups[0]
	require.Equal(t, "$Default", g.Name)
	require.Equal(t, []string{"decode"}, g.Functions)
	require.EqualValues(t, 1000, g.Processed)
	require.EqualValues(t, 2, g.Lag)
	require.Len(t, g.Partitions, 2)
	require.EqualValues(t, 1, g.Partitions[0].Lag)
	require.Equal(t, pos[0].Sequence, g.Partitions[0].Checkpoint)
	require.EqualValues(t, 1, g.Partitions[1].Lag)
	require.EqualValues(t, -1, g.Partitions[1].Checkpoint)
	require.Equal(t, "i1", g.Partitions[0].Owner)
	require.Equal(t, "i1", g.Partitions[1].Owner)

	// Instances and what they own.
	require.Equal(t, []gateway.InstanceOverview{{ID: "i1", Self: true,
		Partitions: []gateway.OwnedPartitions{{Hub: "demo", Group: "$Default", Partitions: []int{0, 1}}}}}, ov.Instances)

	// Queues, dead letters, containers.
	i := slices.IndexFunc(ov.Queues, func(q gateway.QueueOverview) bool { return q.Name == "orders" })
	require.GreaterOrEqual(t, i, 0, "%+v", ov.Queues)
	require.Equal(t, "queue", ov.Queues[i].Kind)
	require.EqualValues(t, 1, ov.Queues[i].Depth)
	require.Positive(t, ov.Queues[i].OldestAgeSeconds)
	require.Equal(t, []gateway.DeadLetterCount{{Queue: deadletter.Queue, Count: 1}}, ov.DeadLetters)
	require.Len(t, ov.Containers, 1)
	require.Equal(t, "devices", ov.Containers[0].Name)
	require.EqualValues(t, 4, ov.Containers[0].LastLSN)
	require.NotNil(t, ov.Containers[0].Documents)
	require.EqualValues(t, 2, *ov.Containers[0].Documents)
}

// TestOverviewEmpty: the overview answers with empty lists when the server has
// only hubs and nothing to report.
func TestOverviewEmpty(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var ov map[string]any
	f.doJSON(t, http.StatusOK, &ov, "GET", "/api/v1/overview", nil)
	for _, k := range []string{"functions", "hubs", "queues", "containers", "dead_letters", "instances"} {
		require.Equal(t, []any{}, ov[k], k)
	}
	require.NotContains(t, ov, "errors")
}

// TestOverviewHTTPFunctions: an HTTP function's trigger is its route and
// methods (from Config.HTTPFunctions), its counters come from the HTTP
// function families, and one never called is listed too.
func TestOverviewHTTPFunctions(t *testing.T) {
	t.Parallel()
	m := telemetry.NewMetrics()
	m.HTTPFunctionRequests.WithLabelValues("products", telemetry.HTTPCodeLabel(200)).Add(3)
	m.HTTPFunctionRequests.WithLabelValues("products", telemetry.HTTPCodeLabel(404)).Add(2)
	m.HTTPFunctionRequests.WithLabelValues("products", telemetry.HTTPCodeLabel(503)).Add(1)
	for _, d := range []float64{0.001, 0.001, 0.002, 0.002, 0.003, 0.2} {
		m.HTTPFunctionDuration.WithLabelValues("products").Observe(d)
	}
	f := setup(t, func(c *gateway.Config) {
		c.Metrics = m
		c.HTTPFunctions = func() []gateway.HTTPFunction {
			return []gateway.HTTPFunction{
				{Name: "products", Route: "/api/products/{id:int?}", Methods: []string{"GET", "POST"}},
				{Name: "health", Route: "/api/health"},
			}
		}
	})
	var ov gateway.Overview
	f.doJSON(t, http.StatusOK, &ov, "GET", "/api/v1/overview", nil)
	require.Empty(t, ov.Errors)
	require.Len(t, ov.Functions, 2)
	health, products := ov.Functions[0], ov.Functions[1]
	require.Equal(t, gateway.FunctionOverview{Name: "health", Trigger: "http", Source: "/api/health"}, health)
	require.Equal(t, "products", products.Name)
	require.Equal(t, "http", products.Trigger)
	require.Equal(t, "/api/products/{id:int?}", products.Source)
	require.Equal(t, []string{"GET", "POST"}, products.Methods)
	require.EqualValues(t, 6, products.Processed)
	require.EqualValues(t, 1, products.Failures, "the 5xx answers")
	require.EqualValues(t, 6, products.Invocations)
	require.InDelta(t, 0.209/6, products.MeanSeconds, 1e-9)
	require.NotEmpty(t, products.DurationBuckets)
	require.Empty(t, products.Group)
}

// failingOwners fails to tell the owners of one lease set.
type failingOwners struct{ bad string }

func (o failingOwners) Ownership(_ context.Context, name string) (map[int]string, error) {
	if name == o.bad {
		return nil, errors.New("lease bucket unreachable")
	}
	return map[int]string{0: "i1"}, nil
}

// TestOverviewHubErrorStaysWithTheHub: a hub that cannot be read fully is
// listed with its error and what could be read; the answer has no
// page-wide error for it, and the other hubs are whole.
func TestOverviewHubErrorStaysWithTheHub(t *testing.T) {
	t.Parallel()
	m := telemetry.NewMetrics()
	m.EventsProcessed.WithLabelValues("a", "good", "$Default").Add(1)
	m.EventsProcessed.WithLabelValues("b", "bad", "$Default").Add(1)
	f := setup(t, func(c *gateway.Config) {
		c.Metrics = m
		c.Leases = failingOwners{bad: "bad.$Default"}
	})
	for _, name := range []string{"good", "bad"} {
		_, err := f.svc.Create(context.Background(), hub.Config{Name: name, Partitions: 1})
		require.NoError(t, err)
	}
	var ov gateway.Overview
	f.doJSON(t, http.StatusOK, &ov, "GET", "/api/v1/overview", nil)
	require.Empty(t, ov.Errors, "no error of the whole answer")
	require.Len(t, ov.Hubs, 2)
	bad, good := ov.Hubs[0], ov.Hubs[1]
	require.Equal(t, "bad", bad.Name)
	require.Contains(t, bad.Error, "owners of group $Default: lease bucket unreachable")
	require.Len(t, bad.PartitionInfo, 1, "what could be read is there")
	require.Len(t, bad.Groups, 1, "the lag is there, without owners")
	require.Empty(t, bad.Groups[0].Partitions[0].Owner)
	require.Equal(t, "good", good.Name)
	require.Empty(t, good.Error)
	require.Equal(t, "i1", good.Groups[0].Partitions[0].Owner)
}

// TestDeadLetterGauge: /metrics reports the dead letters waiting in each
// dead-letter queue, sluice_dead_letters{queue}.
func TestDeadLetterGauge(t *testing.T) {
	t.Parallel()
	f := setupQueues(t)
	store := &deadletter.Store{Queues: f.queues}
	ctx := context.Background()
	require.NoError(t, store.Put(ctx, []deadletter.Letter{{Function: "f", Body: []byte("1")}, {Function: "f", Body: []byte("2")}}))
	require.NoError(t, store.Poison(ctx, deadletter.Letter{Function: "q", Source: deadletter.Source{Kind: "queue", Queue: "orders"}}))
	r := f.do(t, "GET", "/metrics", nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.Contains(t, string(r.Body), "# TYPE sluice_dead_letters gauge")
	require.Contains(t, string(r.Body), `sluice_dead_letters{queue="sluice-deadletters"} 2`)
	require.Contains(t, string(r.Body), `sluice_dead_letters{queue="orders-poison"} 1`)
}
