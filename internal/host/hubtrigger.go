package host

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/resilience"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// Hub functions: a function reads a hub through a consumer group, one
// partition loop per partition this instance holds the lease of (see
// partition.go), checkpointing after each batch (checkpoint.go).

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
	// TargetPerInstance is how many unprocessed events (the group's lag)
	// one instance should have: the divisor of the desired instance count
	// an autoscaler is told (see Scaled). Default MaxBatchSize, as Azure's
	// Event Hubs scaler (targetUnprocessedEventThreshold, else
	// maxEventBatchSize).
	TargetPerInstance int
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

type function struct {
	Function
	processed *atomicCounter
	m         fnMetrics
	run       *batchRun[hub.StoredEvent]
	breaker   *resilience.Breaker
	pause     *pauseSwitch // the consumer group's
	// life ends the function's watchers and reporters: the host's hard
	// stop, or RemoveFunction for one added while the host ran (cancel).
	life   context.Context
	cancel context.CancelFunc
	// dynamic: added by AddFunction; it has no retry queue.
	dynamic bool
}

var _ Trigger = Function{}

func (f Function) functionName() string { return f.Name }

// bind checks a hub function and makes it ready to start: one consumer
// group per function.
func (f Function) bind(h *Host) (bound, error) {
	if h.cfg.Hubs == nil || h.cfg.Leases == nil {
		return nil, fmt.Errorf("host: function %s reads a hub, but the host has no hub service or leases", f.Name)
	}
	t := &f.Trigger
	t.Group = cmp.Or(t.Group, hub.DefaultGroup)
	t.MaxBatchSize = cmp.Or(t.MaxBatchSize, 100)
	t.MinBatchSize = cmp.Or(t.MinBatchSize, 1)
	t.MaxWait = cmp.Or(t.MaxWait, time.Minute)
	t.TargetPerInstance = cmp.Or(t.TargetPerInstance, t.MaxBatchSize)
	switch {
	case f.Name == "":
		return nil, errors.New("host: a function needs a name")
	case f.Handler == nil:
		return nil, fmt.Errorf("host: function %s has no handler", f.Name)
	case t.MaxBatchSize < 1:
		return nil, fmt.Errorf("host: function %s: maxBatchSize %d must be at least 1", f.Name, t.MaxBatchSize)
	case t.MinBatchSize < 1 || t.MinBatchSize > t.MaxBatchSize:
		return nil, fmt.Errorf("host: function %s: minBatchSize %d must be between 1 and maxBatchSize %d", f.Name, t.MinBatchSize, t.MaxBatchSize)
	case t.TargetPerInstance < 1:
		return nil, fmt.Errorf("host: function %s: target per instance %d must be at least 1 (0: maxBatchSize)", f.Name, t.TargetPerInstance)
	}
	if err := hub.ValidateName(t.Hub); err != nil {
		return nil, fmt.Errorf("host: function %s: %w", f.Name, err)
	}
	if err := hub.ValidateGroup(t.Group); err != nil {
		return nil, fmt.Errorf("host: function %s: %w", f.Name, err)
	}
	if err := h.checkNew(f.Name, f.Retry, f.Breaker, f.Timeout); err != nil {
		return nil, err
	}
	for g := range registered[*function](h) {
		if g.Trigger.Hub == t.Hub && g.Trigger.Group == t.Group {
			return nil, fmt.Errorf("host: functions %s and %s both read hub %s with consumer group %s; give each its own consumer group", g.Name, f.Name, t.Hub, t.Group)
		}
	}
	b, err := h.newBreaker(f.Name, f.Breaker, f.Timeout)
	if err != nil {
		return nil, err
	}
	fn := &function{Function: f, processed: &atomicCounter{}, pause: newPauseSwitch(), breaker: b, life: h.hardCtx,
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
	return fn, nil
}

var _ bound = (*function)(nil)

// start reads the hub's partitions that this instance holds leases on,
// and the function's retry queue. The hub must exist.
func (f *function) start(ctx context.Context, h *Host) error {
	t := f.Trigger
	info, err := h.cfg.Hubs.Get(ctx, t.Hub)
	if err != nil {
		return fmt.Errorf("host: function %s: %w", f.Name, err)
	}
	if err := h.cfg.Hubs.WatchGroupState(f.life, t.Hub, t.Group, func(gs hub.GroupState) { f.pause.set(gs.Paused) }); err != nil {
		return err
	}
	if err := h.join(f.leaseSet(), info.Partitions, func(lctx context.Context, p int) {
		h.runPartition(lctx, f, p)
	}); err != nil {
		return fmt.Errorf("host: function %s: %w", f.Name, err)
	}
	h.bg.Go(func() { h.reportLag(f) })
	if f.dynamic {
		return nil
	}
	return h.startRetries(ctx, f)
}

func (f *function) processedCount() int64 { return f.processed.n.Load() }

// leaseSet is the lease set of the function's partitions.
func (f *function) leaseSet() string { return f.Trigger.Hub + "." + f.Trigger.Group }

// runPartition processes one owned partition until its lease ends.
func (h *Host) runPartition(lctx context.Context, f *function, p int) {
	t := f.Trigger
	log := h.log.With("function", f.Name, "hub", t.Hub, "group", t.Group, "partition", p)
	h.runUnit(lctx, "partition", h.cfg.Metrics.OwnedPartitions.WithLabelValues(t.Hub, t.Group), log, func() error {
		return h.consume(lctx, f, p, log)
	})
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

// reportLag refreshes the checkpoint lag gauges of a function's group.
func (h *Host) reportLag(f *function) {
	h.everyUntil(f.life, h.cfg.LagEvery, func(ctx context.Context) {
		lags, err := h.cfg.Hubs.GroupLag(ctx, f.Trigger.Hub, f.Trigger.Group)
		if err != nil {
			return
		}
		for _, l := range lags {
			h.cfg.Metrics.CheckpointLag.WithLabelValues(f.Trigger.Hub, f.Trigger.Group, telemetry.PartitionLabel(l.Partition)).Set(float64(l.Events))
		}
	})
}
