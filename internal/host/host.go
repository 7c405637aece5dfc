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

// Leaser hands out partitions to this instance. run is called for each unit
// acquired, with a context cancelled when the lease is lost or released.
type Leaser interface {
	Join(name string, units int, run func(ctx context.Context, unit int)) error
	// Leave gives up the set name: its run funcs are cancelled and waited
	// for.
	Leave(name string)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Config configures a host.
type Config struct {
	InstanceID string
	// JS is where the host opens the KV buckets it keeps state in that are
	// not given below: Open opens the breakers' (BreakerBucket), and each
	// kind of function opens its own when it starts (FeedBucket,
	// TimerBucket, BlobReceiptBucket).
	JS jetstream.JetStream
	// Hubs and Leases are needed by hub-triggered functions, Queues by
	// queue-triggered ones.
	Hubs   *hub.Service
	Leases Leaser
	Queues *queue.Service
	// Docs and FeedState (a KV bucket for feed checkpoints, or JS) are
	// needed by change-feed functions, with Leases.
	Docs      docstore.Store
	FeedState jetstream.KeyValue
	// TimerState (a KV bucket, or JS) is needed by timer functions.
	TimerState jetstream.KeyValue
	// Blobs and BlobReceipts (a KV bucket, or JS) are needed by blob
	// functions, with Leases.
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

// Host runs functions. Create it with New or Open, Register functions, then
// Start.
type Host struct {
	cfg Config
	log *slog.Logger
	// fns are the registered functions of every kind, in the order of
	// registration (see Trigger); fnsMu guards it once functions can be
	// added and removed while the host runs (AddFunction).
	fnsMu sync.RWMutex
	fns   []bound
	// addMu orders AddFunction and RemoveFunction.
	addMu sync.Mutex
	// leased: a function joined a lease set while starting, so Start
	// starts the leases. anyBreaker: a function has a breaker.
	leased     atomic.Bool
	anyBreaker bool
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

type atomicCounter struct{ n atomic.Int64 }

// fnMetrics are a function's metric series, looked up once rather than on
// every batch.
type fnMetrics struct {
	duration, size            prometheus.Observer
	failures, retries, events prometheus.Counter
}

// New creates a host with the KV buckets cfg gives (see Open).
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

// Open is New for a host that opens the KV buckets it keeps state in, in
// cfg.JS, where cfg gives none: the breakers' now, and each kind of
// function's when it starts.
func Open(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.BreakerState == nil {
		kv, err := openBucket(ctx, cfg.JS, BreakerBucket)
		if err != nil {
			return nil, err
		}
		cfg.BreakerState = kv
	}
	return New(cfg)
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

// Start starts every registered function, in the order registered (what
// each reads must exist: hubs, queues, containers), then the leases the
// functions joined. Calling it again does nothing (and returns what the
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
	for _, f := range h.functions() {
		if err := f.start(ctx, h); err != nil {
			return err
		}
	}
	if !h.leased.Load() {
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
	switch cause := context.Cause(lctx); {
	case lctx.Err() == nil || h.stopping():
		log.Info(unit + " released")
	case errors.Is(cause, lease.ErrReleased):
		log.Info(unit+" handed over to another instance (rebalance)", "reason", cause)
	default:
		log.Warn(unit+" lease lost; processing stopped", "reason", cause)
	}
	working = false
	h.active.Done()
	// Hold the lease until the lease manager releases it on Stop, so that
	// the unit is not taken over while this instance shuts down.
	<-lctx.Done()
}

// every calls fn every d, with a context bounded by d, until the host
// stops hard.
func (h *Host) every(d time.Duration, fn func(ctx context.Context)) {
	h.everyUntil(h.hardCtx, d, fn)
}

// everyUntil calls fn every d, with a context bounded by d, until life
// ends.
func (h *Host) everyUntil(life context.Context, d time.Duration, fn func(ctx context.Context)) {
	ticker := time.NewTicker(d)
	defer ticker.Stop()
	for {
		select {
		case <-life.Done():
			return
		case <-ticker.C:
		}
		ctx, cancel := context.WithTimeout(life, d)
		fn(ctx)
		cancel()
	}
}
