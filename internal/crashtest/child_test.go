package crashtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/queue"
)

// envChild carries a child's childConfig as JSON.
const envChild = "SLUICE_CRASHTEST_CHILD"

// Child roles.
const (
	roleConsumer      = "consumer"
	rolePublisher     = "publisher"
	roleQueueConsumer = "queue-consumer"
	roleFeedConsumer  = "feed-consumer"
	roleDeliverer     = "deliverer"
	rolePipeline      = "pipeline"
)

// childConfig tells a child what to be.
type childConfig struct {
	Role string `json:"role"`
	// DataDir is the embedded engine's data directory; NATSURL, when set,
	// uses that server instead.
	DataDir string `json:"data_dir,omitempty"`
	NATSURL string `json:"nats_url,omitempty"`
	Sync    string `json:"sync,omitempty"`
	// Out is the file the child appends its lines to.
	Out        string `json:"out"`
	InstanceID string `json:"instance_id,omitempty"`
	Hub        string `json:"hub"`
	Partitions int    `json:"partitions"`

	// Consumer.
	LeaseExpiry  time.Duration `json:"lease_expiry,omitempty"`
	MaxBatchSize int           `json:"max_batch_size,omitempty"`
	// BatchDelay is how long the handler takes per batch, after recording
	// it: it paces the consumer so that kills land mid-stream, and widens
	// the window between "processed" and "checkpointed".
	BatchDelay time.Duration `json:"batch_delay,omitempty"`

	// Publisher.
	Run        string `json:"run,omitempty"` // prefix of the event ids
	Publishers int    `json:"publishers,omitempty"`
	// BatchSize is the events per Publish call (publisher) or the messages
	// fetched at once (queue consumer).
	BatchSize int `json:"batch_size,omitempty"`

	// Queue consumer.
	Queue           string        `json:"queue,omitempty"`
	Lock            time.Duration `json:"lock,omitempty"`
	Concurrency     int           `json:"concurrency,omitempty"`
	MaxDequeueCount int           `json:"max_dequeue_count,omitempty"`
	// MessageDelay is how long the function takes per completed message,
	// after recording it: it paces the consumer like BatchDelay, and
	// widens the window between "processed" and "completed".
	MessageDelay time.Duration `json:"message_delay,omitempty"`

	// Feed consumer: a function on Container's change feed, split into
	// Ranges, in the document store DocStore (PostgreSQL) or, when empty,
	// SQLite under DataDir; MaxBatchSize, BatchDelay and LeaseExpiry as for
	// the consumer.
	DocStore     string        `json:"doc_store,omitempty"`
	Container    string        `json:"container,omitempty"`
	Ranges       int           `json:"ranges,omitempty"`
	PollInterval time.Duration `json:"poll_interval,omitempty"`

	// Deliverer: publishes Messages messages (ids m-0…, idempotent, so a
	// restart publishes none twice) to Hub for the partner at PartnerURL,
	// then delivers them with a delivery function signing with Secret.
	PartnerURL string `json:"partner_url,omitempty"`
	Secret     string `json:"secret,omitempty"`
	Messages   int    `json:"messages,omitempty"`

	// Pipeline: the pipeline Pipeline reading Tables of the PostgreSQL
	// database SourceURL into the SQL destination at DestURL.
	Pipeline  string   `json:"pipeline,omitempty"`
	SourceURL string   `json:"source_url,omitempty"`
	Tables    []string `json:"tables,omitempty"`
	DestURL   string   `json:"dest_url,omitempty"`
}

// TestChildMain is the body of a child process; see the package comment. It
// is skipped unless a crash test started this process as its child.
func TestChildMain(t *testing.T) {
	raw := os.Getenv(envChild)
	if raw == "" {
		t.Skip("not a crash-test child: the crash tests start this themselves")
	}
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("bad %s: %v", envChild, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go exitWhenOrphaned()

	out, err := openOut(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	defer out.close()
	switch cfg.Role {
	case roleConsumer:
		err = runConsumer(ctx, cfg, out)
	case rolePublisher:
		err = runPublisher(ctx, cfg, out)
	case roleQueueConsumer:
		err = runQueueConsumer(ctx, cfg, out)
	case roleFeedConsumer:
		err = runFeedConsumer(ctx, cfg, out)
	case roleDeliverer:
		err = runDeliverer(ctx, cfg)
	case rolePipeline:
		err = runPipeline(ctx, cfg)
	default:
		err = fmt.Errorf("unknown role %q", cfg.Role)
	}
	if err != nil {
		t.Fatalf("%s child: %v", cfg.Role, err)
	}
}

// exitWhenOrphaned ends the child when its parent test is gone, so that a
// crashed or interrupted test run leaves nothing running.
func exitWhenOrphaned() {
	parent := os.Getppid()
	for {
		time.Sleep(250 * time.Millisecond)
		if os.Getppid() != parent {
			os.Exit(3)
		}
	}
}

// runConsumer runs one instance with a function that records every event it
// is given, until ctx ends (SIGTERM), then stops gracefully.
func runConsumer(ctx context.Context, cfg childConfig, out *outFile) error {
	logger := slog.New(&markerHandler{
		next: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}),
		out:  out,
	})
	app := sluice.New(sluice.Config{
		DataDir: cfg.DataDir, NATSURL: cfg.NATSURL, Sync: cfg.Sync,
		InstanceID: cfg.InstanceID, LeaseExpiry: cfg.LeaseExpiry,
		ShutdownTimeout: 20 * time.Second, Logger: logger,
	})
	app.Hub(sluice.HubConfig{Name: cfg.Hub, Partitions: cfg.Partitions})
	app.Function("record", sluice.HubTrigger{Hub: cfg.Hub, MaxBatchSize: cfg.MaxBatchSize},
		func(ctx context.Context, events []sluice.Event) error {
			return recordThenPace(ctx, cfg.BatchDelay, func() error { return out.events(events) })
		})
	return app.Run(ctx)
}

// recordThenPace records a batch, unless the lease is gone (the batch is
// then not the function's to record), and then takes delay.
func recordThenPace(ctx context.Context, delay time.Duration, record func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := record(); err != nil {
		return err
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return nil
}

// runFeedConsumer runs one instance with a function on a container's
// change feed that records every change it is given (C lines), until ctx
// ends, then stops gracefully. The engine is the external one at NATSURL.
func runFeedConsumer(ctx context.Context, cfg childConfig, out *outFile) error {
	logger := slog.New(&markerHandler{
		next: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}),
		out:  out,
	})
	app := sluice.New(sluice.Config{
		DataDir: cfg.DataDir, NATSURL: cfg.NATSURL, DocStore: cfg.DocStore,
		InstanceID: cfg.InstanceID, LeaseExpiry: cfg.LeaseExpiry,
		ShutdownTimeout: 20 * time.Second, Logger: logger,
	})
	app.FeedFunction("follow", sluice.FeedTrigger{
		Container: cfg.Container, Ranges: cfg.Ranges, MaxItemsPerInvocation: cfg.MaxBatchSize,
		StartFrom: sluice.FeedFromBeginning, PollInterval: cfg.PollInterval,
	}, func(ctx context.Context, changes []sluice.Document) error {
		return recordThenPace(ctx, cfg.BatchDelay, func() error { return out.changes(changes) })
	})
	return app.Run(ctx)
}

// runPublisher publishes batches of uniquely numbered events from several
// goroutines until it is killed (or ctx ends), recording each acknowledged
// event with the position Publish returned.
func runPublisher(ctx context.Context, cfg childConfig, out *outFile) error {
	app := sluice.New(sluice.Config{
		DataDir: cfg.DataDir, NATSURL: cfg.NATSURL, Sync: cfg.Sync, InstanceID: cfg.InstanceID,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	app.Hub(sluice.HubConfig{Name: cfg.Hub, Partitions: cfg.Partitions})
	if err := app.Start(ctx); err != nil {
		return err
	}
	defer func() { _ = app.Stop(context.Background()) }()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := range cfg.Publishers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for n := 0; ctx.Err() == nil; n++ {
				events := make([]sluice.Event, cfg.BatchSize)
				// One batch in four has no partition key: those events go
				// together to the next partition in turn.
				keyed := rng.IntN(4) != 0
				for i := range events {
					events[i].Body = fmt.Appendf(nil, "%s-%02d-%06d-%02d", cfg.Run, w, n, i)
					if keyed {
						events[i].PartitionKey = "k" + strconv.Itoa(rng.IntN(100))
					}
				}
				pos, err := app.Publish(ctx, cfg.Hub, events...)
				if err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = fmt.Errorf("publish: %w", err) })
					}
					return
				}
				var b []byte
				for i, p := range pos {
					b = fmt.Appendf(b, "%s %d %d\n", events[i].Body, p.Partition, p.SequenceNumber)
				}
				if err := out.write(b); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// poisonProperty marks a message that the queue consumer's function always
// fails, so that it ends in the poison queue.
const poisonProperty = "crashtest-poison"

// queueFunction names the queue consumer's function (in its dead letters).
const queueFunction = "process"

// runQueueConsumer runs one instance with a function on a queue that
// records every message it completes (a C line) and fails every message
// marked with poisonProperty (an F line), until ctx ends (SIGTERM), then
// stops gracefully. Meanwhile it reports the queue's depth (D lines), which
// only the engine in this process can tell while it runs.
func runQueueConsumer(ctx context.Context, cfg childConfig, out *outFile) error {
	app := sluice.New(sluice.Config{
		DataDir: cfg.DataDir, InstanceID: cfg.InstanceID, ShutdownTimeout: 20 * time.Second,
		// A port of its own, for the depth reporter's connection.
		NATSListen: "127.0.0.1:0",
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	app.Queue(sluice.QueueConfig{Name: cfg.Queue, Lock: cfg.Lock})
	errPoison := errors.New("this message is marked as poison")
	app.QueueFunction(queueFunction, sluice.QueueTrigger{
		Queue: cfg.Queue, BatchSize: cfg.BatchSize, Concurrency: cfg.Concurrency, MaxDequeueCount: cfg.MaxDequeueCount,
	}, func(ctx context.Context, m *sluice.Message) error {
		if m.Properties[poisonProperty] != "" {
			if err := out.message('F', m); err != nil {
				return err
			}
			return errPoison
		}
		if err := out.message('C', m); err != nil {
			return err
		}
		if cfg.MessageDelay > 0 {
			t := time.NewTimer(cfg.MessageDelay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
		return nil
	})
	if err := app.Start(ctx); err != nil {
		return err
	}
	reportErr := reportDepth(ctx, app.NATSURL(), cfg.Queue, out)
	return errors.Join(reportErr, app.Stop(context.Background()))
}

// reportDepth writes a line "D <depth> <locked> <delayed>" with a queue's
// statistics every 100ms until ctx ends. It connects like any other client,
// through the port the embedded server listens on.
func reportDepth(ctx context.Context, url, name string, out *outFile) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("depth reporter: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("depth reporter: %w", err)
	}
	svc := queue.Open(js, nc.MaxPayload(), queue.Options{})
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := svc.Stats(sctx, name)
		cancel()
		if err != nil {
			// Reported, not fatal: the parent waits for the next line.
			if ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "depth reporter: %v\n", err)
			}
			continue
		}
		if err := out.write(fmt.Appendf(nil, "D %d %d %d\n", st.Depth, st.Locked, st.Delayed)); err != nil {
			return err
		}
	}
}

// outFile is a child's output file. Each call is one write(2) of whole
// lines, so a kill leaves at worst one incomplete line at the end.
type outFile struct {
	mu sync.Mutex
	f  *os.File
}

func openOut(path string) (*outFile, error) {
	if path == "" {
		return nil, errors.New("the child has no output file")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &outFile{f: f}, nil
}

func (o *outFile) write(b []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, err := o.f.Write(b)
	return err
}

func (o *outFile) close() { _ = o.f.Close() }

// events records a batch: one E line per event, in the batch's order.
func (o *outFile) events(evs []sluice.Event) error {
	now := time.Now().UnixNano()
	b := make([]byte, 0, len(evs)*48)
	for _, e := range evs {
		b = fmt.Appendf(b, "E %d %d %d %s\n", e.Partition, e.SequenceNumber, now, e.Body)
	}
	return o.write(b)
}

// changes records a batch of feed changes: one line "C <lsn> <partition
// key> <id> <deleted 0|1>" per change, in the batch's order.
func (o *outFile) changes(cs []sluice.Document) error {
	b := make([]byte, 0, len(cs)*40)
	for _, c := range cs {
		deleted := 0
		if c.Deleted {
			deleted = 1
		}
		b = fmt.Appendf(b, "C %d %s %s %d\n", c.LSN, c.PartitionKey, c.ID, deleted)
	}
	return o.write(b)
}

// message records a queue message given to the function: a line
// "<kind> <id> <dequeue count> <body>".
func (o *outFile) message(kind byte, m *sluice.Message) error {
	return o.write(fmt.Appendf(nil, "%c %d %d %s\n", kind, m.ID, m.DequeueCount, m.Body))
}

// acquired records that the host started processing a partition.
func (o *outFile) acquired(p int64) {
	_ = o.write(fmt.Appendf(nil, "A %d %d\n", p, time.Now().UnixNano()))
}

// markerHandler passes logs on to next and, when the host logs that it
// acquired a partition, writes an A line to the output file. The host logs
// that line before it reads the partition's checkpoint, so every event of
// the new ownership follows it in the file.
type markerHandler struct {
	next  slog.Handler
	out   *outFile
	attrs []slog.Attr
}

// What internal/host logs when it starts on a partition of a hub, or on a
// range of a change feed (with the attribute "partition" or "range").
const (
	acquiredMessage      = "partition acquired"
	rangeAcquiredMessage = "range acquired"
)

func (h *markerHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *markerHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == acquiredMessage || r.Message == rangeAcquiredMessage {
		key := "partition"
		if r.Message == rangeAcquiredMessage {
			key = "range"
		}
		p, ok := int64(-1), false
		find := func(a slog.Attr) bool {
			if a.Key == key && a.Value.Kind() == slog.KindInt64 {
				p, ok = a.Value.Int64(), true
			}
			return true
		}
		for _, a := range h.attrs {
			find(a)
		}
		r.Attrs(find)
		if ok {
			h.out.acquired(p)
		}
	}
	return h.next.Handle(ctx, r)
}

func (h *markerHandler) WithAttrs(as []slog.Attr) slog.Handler {
	attrs := append(append([]slog.Attr(nil), h.attrs...), as...)
	return &markerHandler{next: h.next.WithAttrs(as), out: h.out, attrs: attrs}
}

func (h *markerHandler) WithGroup(name string) slog.Handler {
	return &markerHandler{next: h.next.WithGroup(name), out: h.out, attrs: h.attrs}
}
