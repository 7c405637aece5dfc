package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// QueueOptions configure the queue workload.
type QueueOptions struct {
	DataDir string
	NATSURL string
	Sync    string
	// Messages per case. Default 500,000.
	Messages int64
	// BaselineMessages for the raw JetStream baseline. Default 100,000.
	BaselineMessages int64
	// MessageSize in bytes. Default 256.
	MessageSize int
	// Senders are concurrent senders; Batch the messages of each send call.
	// Defaults 4 and 1,000.
	Senders int
	Batch   int
	// Cases: "plain-2", "plain-32" (workers), "retries" (32 workers, 10% of
	// messages fail their first delivery). Default all.
	Cases    []string
	Progress func(string)
}

func (o *QueueOptions) defaults() {
	o.Sync = cmp.Or(o.Sync, engine.SyncAlways)
	o.Messages = cmp.Or(o.Messages, 500_000)
	o.BaselineMessages = cmp.Or(o.BaselineMessages, 100_000)
	o.MessageSize = cmp.Or(o.MessageSize, 256)
	o.Senders = cmp.Or(o.Senders, 4)
	o.Batch = cmp.Or(o.Batch, 1000)
	if len(o.Cases) == 0 {
		o.Cases = []string{"plain-2", "plain-32", "retries"}
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
}

// RunQueue runs the queue workload: messages are sent while a no-op
// queue-triggered function completes them, and the case ends when every
// message is completed.
func RunQueue(ctx context.Context, o QueueOptions, report func(Result)) error {
	o.defaults()
	eng, err := engine.Start(ctx, engine.Config{URL: o.NATSURL, DataDir: o.DataDir, Sync: o.Sync})
	if err != nil {
		return err
	}
	defer eng.Close()
	q := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{Logger: slog.New(slog.DiscardHandler)})
	defer q.Stop(context.Background())
	failed := &failures{workload: "queue"}
	for _, c := range o.Cases {
		var workers int
		var failShare int64
		switch c {
		case "plain-2":
			workers = 2
		case "plain-32":
			workers = 32
		case "retries":
			workers, failShare = 32, 10
		default:
			return fmt.Errorf("unknown case %q (cases: plain-2, plain-32, retries)", c)
		}
		r, err := benchQueue(ctx, q, o, c, workers, failShare)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed.add(report, c, err)
			continue
		}
		o.Progress(c + ": baseline: a JetStream work queue, one async publish and one ack per message")
		base, err := baselineQueue(ctx, eng, o)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			r.Note = "the baseline failed: " + err.Error() + "; " + r.Note
			failed.errs = append(failed.errs, fmt.Errorf("case %s baseline: %w", c, err))
		} else {
			r.setBaseline("jetstream-workqueue-publish-async-and-ack", o.BaselineMessages, base)
		}
		r.Workload, r.Case, r.Sync = "queue", c, o.Sync
		engineNote := "embedded engine"
		if !eng.Embedded() {
			engineNote = "external engine " + engine.RedactURL(o.NATSURL)
		}
		r.Note = strings.TrimSuffix(fmt.Sprintf("%s; %d workers; sends of %d; %s", engineNote, workers, o.Batch, r.Note), "; ")
		r.PeakRSSMiB = PeakRSSMiB()
		report(r)
	}
	return failed.err()
}

// benchQueue sends o.Messages while a function with the given number of
// workers completes them; every failShare-th message (when failShare > 0)
// fails its first delivery.
func benchQueue(ctx context.Context, q *queue.Service, o QueueOptions, name string, workers int, failShare int64) (Result, error) {
	qname := fmt.Sprintf("bench-%s-%d", name, time.Now().UnixNano())
	if _, err := q.Create(ctx, queue.Config{Name: qname}); err != nil {
		return Result{}, err
	}
	defer q.Delete(context.Background(), qname)
	h, err := host.New(host.Config{InstanceID: "bench", Queues: q, DeadLetters: discardSink{},
		Metrics: telemetry.NewMetrics(), LagEvery: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return Result{}, err
	}
	var failed atomic.Int64
	if err := h.RegisterQueue(host.QueueFunction{Name: "noop",
		Trigger: host.QueueTrigger{Queue: qname, BatchSize: max(16, workers), Concurrency: workers},
		Handler: func(_ context.Context, m *queue.Message) error {
			if failShare > 0 && m.ID%uint64(failShare) == 0 && m.DequeueCount == 1 {
				failed.Add(1)
				return errors.New("fails once")
			}
			return nil
		}}); err != nil {
		return Result{}, err
	}
	if err := h.Start(ctx); err != nil {
		return Result{}, err
	}
	defer h.Stop(context.Background())
	o.Progress(fmt.Sprintf("%s: send %d messages while %d workers complete them", name, o.Messages, workers))
	start := time.Now()
	sendErr := make(chan error, 1)
	go func() { sendErr <- sendAll(ctx, q, qname, o) }()
	for h.Processed("noop") < o.Messages {
		select {
		case err := <-sendErr:
			if err != nil {
				return Result{}, err
			}
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	r := Result{Events: o.Messages, Seconds: elapsed.Seconds(), EventsPerSec: rate(o.Messages, elapsed)}
	if failShare > 0 {
		r.Note = fmt.Sprintf("%d deliveries failed and were retried", failed.Load())
	}
	return r, nil
}

// sendAll sends o.Messages from o.Senders goroutines in calls of o.Batch.
func sendAll(ctx context.Context, q *queue.Service, name string, o QueueOptions) error {
	body := make([]byte, o.MessageSize)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, o.Senders)
	for range o.Senders {
		wg.Go(func() {
			msgs := make([]queue.Outgoing, o.Batch)
			for i := range msgs {
				msgs[i].Body = body
			}
			for {
				n := min(int64(o.Batch), o.Messages-next.Add(int64(o.Batch))+int64(o.Batch))
				if n <= 0 {
					return
				}
				if _, err := q.Send(ctx, name, msgs[:n]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

type discardSink struct{}

func (discardSink) Put(context.Context, []host.DeadLetter) error  { return nil }
func (discardSink) Poison(context.Context, host.DeadLetter) error { return nil }

// baselineQueue publishes BaselineMessages to a JetStream work-queue
// stream, one async publish each, while a pull consumer acks each, and
// returns the time until all were acknowledged.
func baselineQueue(ctx context.Context, eng *engine.Engine, o QueueOptions) (time.Duration, error) {
	name := fmt.Sprintf("benchwq%d", time.Now().UnixNano())
	st, err := eng.JS.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	if err != nil {
		return 0, err
	}
	defer eng.JS.DeleteStream(context.Background(), name)
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1 << 16})
	if err != nil {
		return 0, err
	}
	var got atomic.Int64
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		got.Add(1)
	}, jetstream.PullMaxMessages(512))
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	body := make([]byte, o.MessageSize)
	start := time.Now()
	for range o.BaselineMessages {
		if err := publishAsync(eng.JS, name, body); err != nil {
			return 0, err
		}
	}
	for got.Load() < o.BaselineMessages {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}
