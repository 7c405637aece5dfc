package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/lease"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// HubOptions configure the hub workload.
type HubOptions struct {
	// DataDir holds the embedded engine's store (a fresh directory).
	DataDir string
	// NATSURL, when set, measures an external server instead.
	NATSURL string
	// Replicas of the hub's streams on an external cluster (0: the
	// engine's default, the cluster's size up to 3).
	Replicas int
	Sync     string
	// Events per case. Default 2,000,000.
	Events int64
	// BaselineEvents for the per-message JetStream baseline. Default 200,000.
	BaselineEvents int64
	// EventSize in bytes. Default 256.
	EventSize  int
	Partitions int // default 4
	// Publishers are concurrent publishing goroutines; Batch the events of
	// each publish call. Defaults 64 and 100.
	Publishers int
	Batch      int
	// LatencyFor is how long the latency-at-half-rate phase runs. Default 3s.
	LatencyFor time.Duration
	// Linger is the hub publishers' linger window (default: the hub's).
	Linger time.Duration
	// Cases to run: "publish", "consume", "drain", "http" (HTTP
	// ingestion without and with an API key: cases http and http-key),
	// and "dr" (the replication lag of a DR secondary at half the
	// publish case's rate; see benchDR). Default publish, consume and
	// drain.
	Cases []string
	// HTTP configures the http case.
	HTTP HTTPOptions
	// Progress, if set, is called with a line of progress now and then.
	Progress func(string)
}

func (o *HubOptions) defaults() {
	o.Sync = cmp.Or(o.Sync, engine.SyncAlways)
	o.Events = cmp.Or(o.Events, 2_000_000)
	o.BaselineEvents = cmp.Or(o.BaselineEvents, 200_000)
	o.EventSize = cmp.Or(o.EventSize, 256)
	o.Partitions = cmp.Or(o.Partitions, 4)
	o.Publishers = cmp.Or(o.Publishers, 64)
	o.Batch = cmp.Or(o.Batch, 100)
	o.LatencyFor = cmp.Or(o.LatencyFor, 3*time.Second)
	if len(o.Cases) == 0 {
		o.Cases = []string{"publish", "consume", "drain"}
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
}

// RunHub runs the hub workload and reports each case's result.
func RunHub(ctx context.Context, o HubOptions, report func(Result)) error {
	o.defaults()
	eng, err := engine.Start(ctx, engine.Config{URL: o.NATSURL, DataDir: o.DataDir, Sync: o.Sync, Replicas: o.Replicas})
	if err != nil {
		return err
	}
	defer eng.Close()
	svc, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{Linger: o.Linger, ReadJS: eng.ReadJS, Tail: eng.Private()})
	if err != nil {
		return err
	}
	defer svc.Stop(context.Background())
	failed := &failures{workload: "hub"}
	var publishRate float64 // what the publish case reached, for the dr case
	for _, c := range o.Cases {
		var r Result
		switch c {
		case "dr":
			r, err = benchDR(ctx, o, publishRate/2)
		case "http", "http-key":
			if err := runHubHTTP(ctx, o, report); err != nil {
				failed.add(report, "http", err)
			}
			continue
		case "publish":
			r, err = benchPublish(ctx, eng, svc, o)
			publishRate = r.EventsPerSec
		case "consume":
			r, err = benchConsume(ctx, eng, svc, o, false)
		case "drain":
			r, err = benchConsume(ctx, eng, svc, o, true)
		default:
			return fmt.Errorf("unknown case %q (cases: publish, consume, drain, http, dr)", c)
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed.add(report, c, err)
			continue
		}
		r.Workload, r.Case, r.Sync = "hub", c, o.Sync
		if c == "dr" {
			// benchDR says what it ran on.
		} else if eng.Embedded() {
			r.Note = "embedded engine"
		} else {
			r.Note = fmt.Sprintf("external engine %s, %d replicas", engine.RedactURL(o.NATSURL), eng.Replicas())
		}
		r.PeakRSSMiB = PeakRSSMiB()
		report(r)
	}
	return failed.err()
}

func newHub(ctx context.Context, svc *hub.Service, o HubOptions) (string, error) {
	name := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	_, err := svc.Create(ctx, hub.Config{Name: name, Partitions: o.Partitions, RetentionAge: time.Hour})
	return name, err
}

// publishAll publishes total events from o.Publishers goroutines in calls
// of o.Batch events; pace, when positive, is the interval between one
// goroutine's calls. It returns the latency of every call.
func publishAll(ctx context.Context, svc *hub.Service, name string, o HubOptions, total int64, pace time.Duration, until time.Time) ([]time.Duration, int64, error) {
	body := make([]byte, o.EventSize)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	var next, sent atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for range o.Publishers {
		wg.Go(func() {
			batch := make([]hub.Event, o.Batch)
			for i := range batch {
				batch[i] = hub.Event{Body: body}
			}
			var mine []time.Duration
			tick := time.Now()
			for {
				if total > 0 && next.Add(int64(o.Batch)) > total {
					break
				}
				if !until.IsZero() && time.Now().After(until) {
					break
				}
				if pace > 0 {
					tick = tick.Add(pace)
					if d := time.Until(tick); d > 0 {
						time.Sleep(d)
					}
				}
				start := time.Now()
				if _, err := svc.Publish(ctx, name, batch); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(start))
				sent.Add(int64(o.Batch))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return lat, sent.Load(), firstErr
}

func benchPublish(ctx context.Context, eng *engine.Engine, svc *hub.Service, o HubOptions) (Result, error) {
	name, err := newHub(ctx, svc, o)
	if err != nil {
		return Result{}, err
	}
	defer svc.Delete(context.Background(), name)
	o.Progress(fmt.Sprintf("publish: %d events of %d bytes to %d partitions, %d publishers x %d per call", o.Events, o.EventSize, o.Partitions, o.Publishers, o.Batch))
	start := time.Now()
	_, sent, err := publishAll(ctx, svc, name, o, o.Events, 0, time.Time{})
	if err != nil {
		return Result{}, err
	}
	elapsed := time.Since(start)
	r := Result{Events: sent, Seconds: elapsed.Seconds(), EventsPerSec: rate(sent, elapsed)}

	o.Progress(fmt.Sprintf("publish: %.0f events/s; baseline: %d events, one JetStream message each", r.EventsPerSec, o.BaselineEvents))
	base, err := baselinePublish(ctx, eng, o)
	if err != nil {
		return Result{}, err
	}
	r.setBaseline("jetstream-publish-async-per-event", o.BaselineEvents, base)

	// Latency at half of the measured maximum rate.
	half := r.EventsPerSec / 2
	pace := time.Duration(float64(time.Second) * float64(o.Batch*o.Publishers) / half)
	o.Progress(fmt.Sprintf("publish: latency at %.0f events/s for %s", half, o.LatencyFor))
	lat, latSent, err := publishAll(ctx, svc, name, o, 0, pace, time.Now().Add(o.LatencyFor))
	if err != nil {
		return Result{}, err
	}
	r.P50ms, r.P99ms = percentiles(lat)
	r.LatencyAtRate = rate(latSent, o.LatencyFor)
	return r, nil
}

// baselinePublish publishes events one JetStream message each, async, to
// per-partition streams on the same server, and waits for every ack.
func baselinePublish(ctx context.Context, eng *engine.Engine, o HubOptions) (time.Duration, error) {
	prefix := fmt.Sprintf("benchbase%d", time.Now().UnixNano())
	for p := range o.Partitions {
		if _, err := eng.JS.CreateStream(ctx, jetstream.StreamConfig{
			Name: prefix + "-" + strconv.Itoa(p), Subjects: []string{prefix + "." + strconv.Itoa(p)}, Storage: jetstream.FileStorage,
		}); err != nil {
			return 0, err
		}
		defer eng.JS.DeleteStream(context.Background(), prefix+"-"+strconv.Itoa(p))
	}
	body := make([]byte, o.EventSize)
	start := time.Now()
	for i := range o.BaselineEvents {
		if err := publishAsync(eng.JS, prefix+"."+strconv.Itoa(int(i)%o.Partitions), body); err != nil {
			return 0, err
		}
	}
	select {
	case <-eng.JS.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(10 * time.Minute):
		return 0, fmt.Errorf("baseline publishes not acknowledged after 10 minutes")
	}
	return time.Since(start), nil
}

// benchConsume measures the hub trigger: with drain false, events are
// published while a no-op function processes them (end to end); with drain
// true, a backlog is published first and only its processing is timed.
func benchConsume(ctx context.Context, eng *engine.Engine, svc *hub.Service, o HubOptions, drain bool) (Result, error) {
	name, err := newHub(ctx, svc, o)
	if err != nil {
		return Result{}, err
	}
	defer svc.Delete(context.Background(), name)
	// An ID of this run's own: on a shared external engine, a run never
	// waits on the leases a previous run left behind.
	id := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	leases, err := lease.Open(ctx, eng.JS, lease.Config{InstanceID: id, ExclusiveID: true, Expiry: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return Result{}, err
	}
	defer leases.Stop(context.Background())
	var processed atomic.Int64
	h, err := host.New(host.Config{InstanceID: id, Hubs: svc, Leases: leases,
		DeadLetters: discardSink{}, Metrics: telemetry.NewMetrics(), LagEvery: time.Hour,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return Result{}, err
	}
	if err := h.Register(host.Function{Name: "noop", Trigger: host.HubTrigger{Hub: name, MaxBatchSize: 100},
		Handler: func(_ context.Context, evs []hub.StoredEvent) error {
			processed.Add(int64(len(evs)))
			return nil
		}}); err != nil {
		return Result{}, err
	}
	pubErr := make(chan error, 1)
	if drain {
		o.Progress(fmt.Sprintf("drain: publish a backlog of %d events", o.Events))
		if _, _, err := publishAll(ctx, svc, name, o, o.Events, 0, time.Time{}); err != nil {
			return Result{}, err
		}
		pubErr <- nil
	}
	if err := h.Start(ctx); err != nil {
		return Result{}, err
	}
	defer h.Stop(context.Background())
	start := time.Now()
	if drain {
		o.Progress("drain: a no-op function (batch 100) processes the backlog")
	} else {
		o.Progress(fmt.Sprintf("consume: publish %d events while a no-op function (batch 100) processes them", o.Events))
		go func() {
			_, _, err := publishAll(ctx, svc, name, o, o.Events, 0, time.Time{})
			pubErr <- err
		}()
	}
	want := o.Events / int64(o.Batch) * int64(o.Batch)
	for processed.Load() < want {
		select {
		case err := <-pubErr:
			if err != nil {
				return Result{}, err
			}
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	r := Result{Events: want, Seconds: elapsed.Seconds(), EventsPerSec: rate(want, elapsed)}

	// Baseline: the same events consumed directly from JetStream, one
	// message per event, with a durable consumer and explicit acks.
	o.Progress("consume: baseline: JetStream durable consumer with acks, one message per event")
	base, err := baselineConsume(ctx, eng, o, drain)
	if err != nil {
		return Result{}, err
	}
	r.setBaseline("jetstream-publish-async-and-consume-ack-per-event", o.BaselineEvents, base)
	return r, nil
}

// baselineConsume publishes BaselineEvents one message each into one
// stream per partition while a durable consumer per stream acks them, and
// returns the time until all were acknowledged.
func baselineConsume(ctx context.Context, eng *engine.Engine, o HubOptions, drain bool) (time.Duration, error) {
	prefix := fmt.Sprintf("benchcons%d", time.Now().UnixNano())
	var got atomic.Int64
	var ccs []jetstream.ConsumeContext
	var streams []jetstream.Stream
	for p := range o.Partitions {
		sn := prefix + "-" + strconv.Itoa(p)
		st, err := eng.JS.CreateStream(ctx, jetstream.StreamConfig{Name: sn, Subjects: []string{prefix + "." + strconv.Itoa(p)}, Storage: jetstream.FileStorage})
		if err != nil {
			return 0, err
		}
		defer eng.JS.DeleteStream(context.Background(), sn)
		streams = append(streams, st)
	}
	defer func() {
		for _, cc := range ccs {
			cc.Stop()
		}
	}()
	consume := func() error {
		for _, st := range streams {
			cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000})
			if err != nil {
				return err
			}
			cc, err := cons.Consume(func(m jetstream.Msg) {
				_ = m.Ack()
				got.Add(1)
			})
			if err != nil {
				return err
			}
			ccs = append(ccs, cc)
		}
		return nil
	}
	publish := func() error {
		body := make([]byte, o.EventSize)
		for i := range o.BaselineEvents {
			if err := publishAsync(eng.JS, prefix+"."+strconv.Itoa(int(i)%o.Partitions), body); err != nil {
				return err
			}
		}
		<-eng.JS.PublishAsyncComplete()
		return nil
	}
	var start time.Time
	if drain {
		if err := publish(); err != nil {
			return 0, err
		}
		start = time.Now()
		if err := consume(); err != nil {
			return 0, err
		}
	} else {
		start = time.Now()
		if err := consume(); err != nil {
			return 0, err
		}
		if err := publish(); err != nil {
			return 0, err
		}
	}
	for got.Load() < o.BaselineEvents {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}

// publishAsync publishes one message asynchronously, waiting for
// acknowledgements when the client's window of pending publishes is full.
func publishAsync(js jetstream.JetStream, subject string, body []byte) error {
	for {
		_, err := js.PublishAsync(subject, body)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return err
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
