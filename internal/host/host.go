// Package host runs functions: it owns hub partitions through leases, reads
// each owned partition in order, hands batches to the function, retries
// failures per policy, dead-letters what cannot be processed, and writes the
// checkpoint only after the function finished with a batch.
//
// Per owned partition there is one loop and at most one batch in flight, so
// events of a partition are processed in order and a batch being retried
// holds its partition. Checkpoint writes overlap the next invocations and
// are group-committed: at most one write is outstanding and at most
// MaxUndurableBatches finished batches wait for one, so after a crash at
// most MaxRedeliveredBatches batches per partition are delivered again.
//
// A batch being retried keeps its retry state (failed attempts, first
// failure, when the next attempt is due) in its partition's (or feed
// range's) checkpoint, written before each wait: after a restart or a
// takeover, the next owner goes on with the batch's retries, after what is
// left of the wait, instead of giving it a fresh retry budget.
package host

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/lease"
	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/resilience"
	"github.com/sluicehq/sluice/internal/service"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// Handler processes a batch of events. Returning nil means every event was
// processed; a *DeadLetterError dead-letters the events it names and counts
// the rest as processed; any other error fails the whole batch, which the
// retry policy then governs.
type Handler func(ctx context.Context, events []hub.StoredEvent) error

// HubTrigger binds a function to a hub's consumer group.
type HubTrigger struct {
	Hub   string
	Group string // default hub.DefaultGroup
	// MaxBatchSize bounds the events of one invocation. Default 100.
	MaxBatchSize int
	// MinBatchSize holds back an invocation until this many events are
	// available or MaxWait has passed. Default 1.
	MinBatchSize int
	// MaxWait bounds the wait for MinBatchSize. Default 1 minute.
	MaxWait time.Duration
	// Start is where a partition is read from when the group has no
	// checkpoint yet. Default: the earliest stored event.
	Start hub.Start
}

// Function is a function triggered by a hub.
type Function struct {
	Name    string
	Trigger HubTrigger
	Retry   resilience.Retry
	// Breaker, when enabled, stops the function taking new batches on
	// every instance while its downstream fails (see breaker.go).
	Breaker resilience.BreakerPolicy
	// Timeout bounds one invocation: its context is cancelled and the
	// attempt counts as a failure. Zero: no bound.
	Timeout time.Duration
	Handler Handler
}

// Leaser hands out partitions to this instance. run is called for each unit
// acquired, with a context cancelled when the lease is lost or released.
type Leaser interface {
	Join(name string, units int, run func(ctx context.Context, unit int)) error
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Config configures a host.
type Config struct {
	InstanceID string
	// Hubs and Leases are needed by hub-triggered functions, Queues by
	// queue-triggered ones.
	Hubs   *hub.Service
	Leases Leaser
	Queues *queue.Service
	// Docs and FeedState (a KV bucket for feed checkpoints) are needed by
	// change-feed functions, with Leases.
	Docs      docstore.Store
	FeedState jetstream.KeyValue
	// TimerState (a KV bucket) is needed by timer functions.
	TimerState jetstream.KeyValue
	// Blobs and BlobReceipts (a KV bucket) are needed by blob functions,
	// with Leases.
	Blobs        *blob.Service
	BlobReceipts jetstream.KeyValue
	DeadLetters  DeadLetterSink
	// BreakerState (a KV bucket) is needed by functions with a breaker;
	// BreakerWebhook, when set, receives each breaker transition as a JSON
	// POST (see BreakerEvent).
	BreakerState   jetstream.KeyValue
	BreakerWebhook string
	// OverrunGrace is how long an invocation may run past its timeout
	// before it is reported as ignoring cancellation. Default 5s.
	OverrunGrace time.Duration
	Metrics      *telemetry.Metrics
	Logger       *slog.Logger
	// ShutdownTimeout bounds the graceful part of Stop: after it, in-flight
	// invocations are cancelled. Default 30s.
	ShutdownTimeout time.Duration
	// LagEvery is how often checkpoint lag metrics are refreshed. Default 5s.
	LagEvery time.Duration
}

// Host runs functions. Create it with New, Register functions, then Start.
type Host struct {
	cfg  Config
	log  *slog.Logger
	fns  []*function
	qfns []*queueFunction
	ffns []*feedFunction
	tfns []*timerFunction
	bfns []*blobFunction
	// breakers are the functions' circuit breakers (nil without
	// Config.BreakerState).
	breakers *resilience.Breakers
	// deadLetterLog sums up the dead letters of each function in the log.
	deadLetterLog *deadLetterLog

	life     service.Lifecycle
	soft     <-chan struct{} // closed: take no new batches (life.Stopping)
	hardCtx  context.Context // cancelled: abandon in-flight work (life.Context)
	active   sync.WaitGroup  // partition loops not yet finished with their work
	bg       sync.WaitGroup  // reporters and notifications, ended by hardCtx
	started  atomic.Bool     // Start was called: Register refuses
	activeMu sync.Mutex      // orders a partition loop's active.Add before Stop's Wait
}

type function struct {
	Function
	processed *atomicCounter
	m         fnMetrics
	run       *batchRun[hub.StoredEvent]
	breaker   *resilience.Breaker
	pause     *pauseSwitch // the consumer group's
}

type atomicCounter struct{ n atomic.Int64 }

// fnMetrics are a function's metric series, looked up once rather than on
// every batch.
type fnMetrics struct {
	duration, size            prometheus.Observer
	failures, retries, events prometheus.Counter
}

// New creates a host.
func New(cfg Config) (*Host, error) {
	if cfg.InstanceID == "" || cfg.DeadLetters == nil {
		return nil, errors.New("host: InstanceID and DeadLetters are required")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.NewMetrics()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, 30*time.Second)
	cfg.LagEvery = cmp.Or(cfg.LagEvery, 5*time.Second)
	h := &Host{cfg: cfg, log: cfg.Logger, deadLetterLog: newDeadLetterLog(cfg.Logger, DeadLetterLogEvery)}
	h.soft, h.hardCtx = h.life.Stopping(), h.life.Context()
	if cfg.BreakerState != nil {
		h.breakers = resilience.NewBreakers(cfg.BreakerState, resilience.BreakersOptions{
			Instance: cfg.InstanceID, Notify: h.breakerChanged, Observe: h.breakerSeen, Logger: cfg.Logger})
	}
	return h, nil
}

// Register adds a function. It must be called before Start.
func (h *Host) Register(f Function) error {
	if h.started.Load() {
		return fmt.Errorf("host: register %s: the host has started", f.Name)
	}
	if h.cfg.Hubs == nil || h.cfg.Leases == nil {
		return fmt.Errorf("host: function %s reads a hub, but the host has no hub service or leases", f.Name)
	}
	t := &f.Trigger
	t.Group = cmp.Or(t.Group, hub.DefaultGroup)
	t.MaxBatchSize = cmp.Or(t.MaxBatchSize, 100)
	t.MinBatchSize = cmp.Or(t.MinBatchSize, 1)
	t.MaxWait = cmp.Or(t.MaxWait, time.Minute)
	switch {
	case f.Name == "":
		return errors.New("host: a function needs a name")
	case f.Handler == nil:
		return fmt.Errorf("host: function %s has no handler", f.Name)
	case t.MaxBatchSize < 1:
		return fmt.Errorf("host: function %s: maxBatchSize %d must be at least 1", f.Name, t.MaxBatchSize)
	case t.MinBatchSize < 1 || t.MinBatchSize > t.MaxBatchSize:
		return fmt.Errorf("host: function %s: minBatchSize %d must be between 1 and maxBatchSize %d", f.Name, t.MinBatchSize, t.MaxBatchSize)
	}
	if err := hub.ValidateName(t.Hub); err != nil {
		return fmt.Errorf("host: function %s: %w", f.Name, err)
	}
	if err := hub.ValidateGroup(t.Group); err != nil {
		return fmt.Errorf("host: function %s: %w", f.Name, err)
	}
	if err := h.checkNew(f.Name, f.Retry, f.Breaker, f.Timeout); err != nil {
		return err
	}
	for _, g := range h.fns {
		if g.Trigger.Hub == t.Hub && g.Trigger.Group == t.Group {
			return fmt.Errorf("host: functions %s and %s both read hub %s with consumer group %s; give each its own consumer group", g.Name, f.Name, t.Hub, t.Group)
		}
	}
	b, err := h.newBreaker(f.Name, f.Breaker, f.Timeout)
	if err != nil {
		return err
	}
	fn := &function{Function: f, processed: &atomicCounter{}, pause: newPauseSwitch(), breaker: b,
		m: h.newFnMetrics(f.Name, h.cfg.Metrics.EventsProcessed.WithLabelValues(f.Name, t.Hub, t.Group))}
	fn.run = &batchRun[hub.StoredEvent]{
		name: f.Name, kind: "hub", retry: f.Retry, m: &fn.m, processed: fn.processed, handler: f.Handler,
		breaker: b, timeout: f.Timeout,
		position: func(e hub.StoredEvent) int64 { return e.Sequence },
		letter: func(e hub.StoredEvent, reason error, attempts int, first, last time.Time) DeadLetter {
			return h.letter(fn, e, reason, attempts, first, last)
		},
	}
	fn.run.later = func(ctx context.Context, batch []hub.StoredEvent, later *RetryLaterError) bool {
		return h.setAside(ctx, fn, batch, later, h.log.With("function", f.Name, "hub", t.Hub, "group", t.Group))
	}
	h.fns = append(h.fns, fn)
	return nil
}

// checkNew checks what every kind of function needs: valid retry and
// breaker policies and timeout, and a name no other function has.
func (h *Host) checkNew(name string, retry resilience.Retry, breaker resilience.BreakerPolicy, timeout time.Duration) error {
	if err := retry.Validate(); err != nil {
		return fmt.Errorf("host: function %s: %w", name, err)
	}
	if err := breaker.Validate(); err != nil {
		return fmt.Errorf("host: function %s: %w", name, err)
	}
	if timeout < 0 {
		return fmt.Errorf("host: function %s: timeout %s must not be negative (0: no timeout)", name, timeout)
	}
	if h.named(name) {
		return fmt.Errorf("host: two functions are named %s", name)
	}
	return nil
}

func (h *Host) newFnMetrics(name string, events prometheus.Counter) fnMetrics {
	m := h.cfg.Metrics
	return fnMetrics{
		duration: m.BatchDuration.WithLabelValues(name),
		size:     m.BatchSize.WithLabelValues(name),
		failures: m.Failures.WithLabelValues(name),
		retries:  m.Retries.WithLabelValues(name),
		events:   events,
	}
}

// Start joins the lease sets of every function's hub and starts processing.
// The hubs must exist. Calling it again does nothing (and returns what the
// first call returned); after Stop it fails.
func (h *Host) Start(ctx context.Context) error {
	return h.life.Start(func() error {
		h.started.Store(true)
		return h.start(ctx)
	})
}

func (h *Host) start(ctx context.Context) error {
	if err := h.startBreakers(ctx); err != nil {
		return err
	}
	for _, f := range h.fns {
		t := f.Trigger
		info, err := h.cfg.Hubs.Get(ctx, t.Hub)
		if err != nil {
			return fmt.Errorf("host: function %s: %w", f.Name, err)
		}
		if err := h.cfg.Hubs.WatchGroupState(h.hardCtx, t.Hub, t.Group, func(gs hub.GroupState) { f.pause.set(gs.Paused) }); err != nil {
			return err
		}
		if err := h.cfg.Leases.Join(t.Hub+"."+t.Group, info.Partitions, func(lctx context.Context, p int) {
			h.runPartition(lctx, f, p)
		}); err != nil {
			return fmt.Errorf("host: function %s: %w", f.Name, err)
		}
		h.bg.Go(func() { h.reportLag(f) })
		if err := h.startRetries(ctx, f); err != nil {
			return err
		}
	}
	for _, f := range h.qfns {
		if err := h.startQueue(ctx, f); err != nil {
			return err
		}
	}
	for _, f := range h.ffns {
		if err := h.startFeed(ctx, f); err != nil {
			return err
		}
		h.bg.Go(func() { h.reportFeedLag(f) })
	}
	for _, f := range h.tfns {
		h.startTimer(f)
	}
	for _, f := range h.bfns {
		if err := h.startBlob(ctx, f); err != nil {
			return err
		}
	}
	if len(h.fns) == 0 && len(h.ffns) == 0 && len(h.bfns) == 0 {
		return nil
	}
	// ctx bounds starting only: leases live until Stop hands them over, so
	// that cancelling a Run context is a graceful stop, not a crash.
	return h.cfg.Leases.Start(context.WithoutCancel(ctx))
}

// errShutdownTimeout ends the graceful part of Stop after
// Config.ShutdownTimeout.
var errShutdownTimeout = errors.New("host: shutdown timeout")

// Stop stops gracefully: no new batches are taken, in-flight batches finish
// and are checkpointed, then leases are released. After ShutdownTimeout (or
// when ctx ends) in-flight invocations are cancelled instead; their batches
// are not checkpointed and will be delivered again. The leases and the
// breakers' shared counts are handed over in any case, within ctx: Stop
// returns why that failed. Safe to call twice and before Start.
func (h *Host) Stop(ctx context.Context) error {
	gctx, cancel := context.WithTimeoutCause(ctx, h.cfg.ShutdownTimeout, errShutdownTimeout)
	defer cancel()
	return h.life.Stop(gctx, h.drain, func(context.Context) error {
		// Once every invocation has returned, handing over is quick and
		// safe: it gets the caller's bound, not what is left of the
		// shutdown timeout.
		return h.finish(ctx)
	})
}

// Stopped is closed once Stop has finished.
func (h *Host) Stopped() <-chan struct{} { return h.life.Stopped() }

// drain waits for the partition loops, queue loops and timers to finish
// their in-flight work; when ctx ends first, the lifecycle cancels hardCtx
// and they return without finishing it.
func (h *Host) drain(ctx context.Context) {
	// soft is closed: a loop that has not yet counted itself in active
	// sees it under activeMu and stays out; one that has is waited for.
	done := make(chan struct{})
	h.activeMu.Lock()
	go func() { h.active.Wait(); close(done) }()
	h.activeMu.Unlock()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	if errors.Is(context.Cause(ctx), errShutdownTimeout) {
		h.log.Warn("shutdown timeout: cancelling in-flight invocations", "timeout", h.cfg.ShutdownTimeout)
	} else {
		h.log.Warn("forced shutdown: cancelling in-flight invocations")
	}
	<-done
}

// finish hands over what the host holds once its loops have returned.
func (h *Host) finish(ctx context.Context) error {
	var errs []error
	if h.cfg.Leases != nil {
		errs = append(errs, h.cfg.Leases.Stop(ctx))
	}
	if h.breakers != nil {
		errs = append(errs, h.breakers.Stop(ctx))
	}
	h.bg.Wait()
	h.deadLetterLog.stop()
	return errors.Join(errs...)
}

func (h *Host) stopping() bool {
	select {
	case <-h.soft:
		return true
	default:
		return false
	}
}

// errReload means the partition's checkpoint must be read again (a replay
// moved it, or another writer did).
var errReload = errors.New("reload checkpoint")

// runPartition processes one owned partition until its lease ends.
func (h *Host) runPartition(lctx context.Context, f *function, p int) {
	t := f.Trigger
	log := h.log.With("function", f.Name, "hub", t.Hub, "group", t.Group, "partition", p)
	h.runUnit(lctx, "partition", h.cfg.Metrics.OwnedPartitions.WithLabelValues(t.Hub, t.Group), log, func() error {
		return h.consume(lctx, f, p, log)
	})
}

// runUnit runs consume for a leased unit of work (a "partition" or a
// "range"), again after errors, until the lease ends or the host stops.
func (h *Host) runUnit(lctx context.Context, unit string, owned prometheus.Gauge, log *slog.Logger, consume func() error) {
	owned.Inc()
	defer owned.Dec()
	log.Info(unit + " acquired")
	h.activeMu.Lock()
	if h.stopping() {
		h.activeMu.Unlock()
		<-lctx.Done()
		return
	}
	h.active.Add(1)
	h.activeMu.Unlock()
	working := true
	defer func() {
		if working {
			h.active.Done()
		}
	}()
	backoff := 100 * time.Millisecond
	for lctx.Err() == nil && !h.stopping() {
		err := consume()
		switch {
		case err == nil || errors.Is(err, errReload):
			backoff = 100 * time.Millisecond
			continue
		case lctx.Err() != nil || h.stopping():
		default:
			log.Error(unit+" processing failed; retrying", "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-lctx.Done():
			case <-h.soft:
			}
			backoff = min(backoff*2, 10*time.Second)
		}
	}
	if lctx.Err() != nil && !h.stopping() {
		log.Warn(unit + " lease lost; processing stopped")
	} else {
		log.Info(unit + " released")
	}
	working = false
	h.active.Done()
	// Hold the lease until the lease manager releases it on Stop, so that
	// the unit is not taken over while this instance shuts down.
	<-lctx.Done()
}

// Checkpoint writes are group-committed. While input is waiting, a
// partition writes its checkpoint once CheckpointEveryBatches batches have
// finished since the last write, or checkpointEvery has passed; when it has
// nothing more to process, it writes at once. One write is in flight at a
// time, overlapping the next invocations.
const (
	CheckpointEveryBatches = 16
	checkpointEvery        = 100 * time.Millisecond
)

// MaxUndurableBatches bounds the batches of a partition that may be
// finished but not yet covered by a durable checkpoint; past it, the
// partition waits for the write in flight.
const MaxUndurableBatches = 2 * CheckpointEveryBatches

// MaxRedeliveredBatches bounds the batches per partition that are delivered
// again after a crash: the undurable ones and the one in flight.
const MaxRedeliveredBatches = MaxUndurableBatches + 1

// checkpointer writes a partition's (or feed range's) checkpoints with at
// most one write in flight, overlapping it with the next invocations.
type checkpointer struct {
	// write stores the position pos if the checkpoint is at revision rev,
	// returning the new revision, or errReload when it was moved.
	write func(ctx context.Context, pos int64, rev uint64) (uint64, error)
	rev   uint64

	inflight chan cpResult
	covers   int       // finished batches the in-flight write makes durable
	pending  int       // finished batches after the in-flight write started
	latest   int64     // last processed sequence
	started  time.Time // when the last write started
}

type cpResult struct {
	rev uint64
	err error
}

// put records that a batch ending at seq is finished and writes or
// schedules its checkpoint.
func (c *checkpointer) put(seq int64) error {
	c.latest = seq
	c.pending++
	if c.inflight != nil {
		if c.covers+c.pending <= MaxUndurableBatches {
			select {
			case res := <-c.inflight:
				if err := c.done(res); err != nil {
					return err
				}
			default:
				return nil // covered by the next write
			}
		} else if err := c.done(<-c.inflight); err != nil {
			return err
		}
	}
	if c.pending >= CheckpointEveryBatches || time.Since(c.started) >= checkpointEvery {
		c.start()
	}
	return nil
}

// idle writes what has finished, for when the partition has nothing more
// to process right now.
func (c *checkpointer) idle() {
	if c.inflight == nil && c.pending > 0 {
		c.start()
	}
}

// ready is the in-flight write's result channel (nil when none), for
// selecting on while the partition is idle.
func (c *checkpointer) ready() <-chan cpResult { return c.inflight }

// completed handles a result received from ready and writes what finished
// meanwhile.
func (c *checkpointer) completed(res cpResult) error {
	if err := c.done(res); err != nil {
		return err
	}
	if c.pending > 0 {
		c.start()
	}
	return nil
}

func (c *checkpointer) start() {
	c.started = time.Now()
	done := make(chan cpResult, 1)
	c.inflight, c.covers, c.pending = done, c.pending, 0
	rev, pos := c.rev, c.latest
	go func() {
		// A started write is finished even during shutdown; the revision
		// check keeps it from overwriting anyone else's.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		next, err := c.write(ctx, pos, rev)
		done <- cpResult{next, err}
	}()
}

func (c *checkpointer) done(res cpResult) error {
	c.inflight, c.covers = nil, 0
	if res.err != nil {
		return res.err
	}
	c.rev = res.rev
	return nil
}

// mark writes the unit's checkpoint at once with write, given the current
// revision, after the write in flight: for a checkpoint that says more
// than a finished batch's position (the retry state of the batch after
// it). The position write stores must be at or past every finished
// batch's, which it makes durable.
func (c *checkpointer) mark(ctx context.Context, write func(ctx context.Context, rev uint64) (uint64, error)) error {
	if err := c.wait(); err != nil {
		return err
	}
	next, err := write(ctx, c.rev)
	if err != nil {
		return err
	}
	c.rev, c.pending = next, 0
	return nil
}

// wait waits for the in-flight write, writing nothing more: for when the
// lease may be lost.
func (c *checkpointer) wait() error {
	if c.inflight == nil {
		return nil
	}
	return c.done(<-c.inflight)
}

// release ends the checkpoints of a unit whose lease context ended: when
// the lease was given up to rebalance, it is still held until the unit's
// processing returns, so what finished is made durable and the next owner
// repeats nothing; when it was lost, nothing more is written.
func (c *checkpointer) release(lctx context.Context) error {
	if errors.Is(context.Cause(lctx), lease.ErrReleased) {
		return c.flush()
	}
	return c.wait()
}

// releaseAfter is release for when a batch ending at pos finished after
// the lease context ended: a released unit checkpoints it too.
func (c *checkpointer) releaseAfter(lctx context.Context, pos int64) error {
	if errors.Is(context.Cause(lctx), lease.ErrReleased) {
		c.latest = pos
		c.pending++
	}
	if err := c.release(lctx); err != nil {
		return err
	}
	return lctx.Err()
}

// flush makes every finished batch's checkpoint durable.
func (c *checkpointer) flush() error {
	if err := c.wait(); err != nil {
		return err
	}
	if c.pending == 0 {
		return nil
	}
	c.start()
	return c.wait()
}

func (h *Host) letter(f *function, e hub.StoredEvent, reason error, attempts int, first, last time.Time) DeadLetter {
	return DeadLetter{
		Function: f.Name,
		Reason:   reason.Error(),
		Source: Source{Kind: "hub", Hub: f.Trigger.Hub, Group: f.Trigger.Group, Partition: e.Partition,
			Sequence: e.Sequence, PartitionKey: e.PartitionKey, EnqueuedTime: e.EnqueuedTime},
		Attempts: attempts, FirstFailure: first, LastFailure: last,
		Body: e.Body, Properties: e.Properties, State: stateOf(reason),
	}
}

func (h *Host) deadLetterRecord(ctx context.Context, f *function, p int, ce *hub.CorruptRecordError, log *slog.Logger) bool {
	now := time.Now().UTC()
	dl := DeadLetter{
		Function: f.Name, Reason: "corrupt record: " + ce.Err.Error(),
		Source:   Source{Kind: "hub", Hub: f.Trigger.Hub, Group: f.Trigger.Group, Partition: p, Sequence: ce.Sequence},
		Attempts: 0, FirstFailure: now, LastFailure: now, Body: ce.Data,
	}
	return h.putDeadLetters(ctx, f.Name, "hub", []DeadLetter{dl}, log)
}

// Processed returns how many events the named function finished with on
// this instance.
func (h *Host) Processed(name string) int64 {
	for _, f := range h.fns {
		if f.Name == name {
			return f.processed.n.Load()
		}
	}
	for _, f := range h.qfns {
		if f.Name == name {
			return f.processed.n.Load()
		}
	}
	for _, f := range h.ffns {
		if f.Name == name {
			return f.processed.n.Load()
		}
	}
	return 0
}

// reportLag refreshes the checkpoint lag gauges of a function's group.
func (h *Host) reportLag(f *function) {
	h.every(h.cfg.LagEvery, func(ctx context.Context) {
		lags, err := h.cfg.Hubs.GroupLag(ctx, f.Trigger.Hub, f.Trigger.Group)
		if err != nil {
			return
		}
		for _, l := range lags {
			h.cfg.Metrics.CheckpointLag.WithLabelValues(f.Trigger.Hub, f.Trigger.Group, telemetry.PartitionLabel(l.Partition)).Set(float64(l.Events))
		}
	})
}

// every calls fn every d, with a context bounded by d, until the host
// stops hard.
func (h *Host) every(d time.Duration, fn func(ctx context.Context)) {
	ticker := time.NewTicker(d)
	defer ticker.Stop()
	for {
		select {
		case <-h.hardCtx.Done():
			return
		case <-ticker.C:
		}
		ctx, cancel := context.WithTimeout(h.hardCtx, d)
		fn(ctx)
		cancel()
	}
}
