package host

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/resilience"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// QueueHandler processes one queue message. Returning nil completes it; a
// *RetryLaterError moves it to be delivered again at a later time; a
// *DeadLetterError gives up on it at once; any other error fails this
// delivery, which the retry policy and MaxDequeueCount then govern.
type QueueHandler func(ctx context.Context, m *queue.Message) error

// QueueTrigger binds a function to a queue. Every instance takes messages
// from the queue; a message is locked by one of them while it is processed.
type QueueTrigger struct {
	Queue string
	// BatchSize is how many messages are fetched at once. Default 16.
	BatchSize int
	// Concurrency bounds the messages processed at once on this instance.
	// Default BatchSize/2 × the number of CPUs (at least 1).
	Concurrency int
	// MaxDequeueCount is how many deliveries a message gets, counting the
	// first, before it moves to the poison queue (`<queue>-poison`). Default 5.
	MaxDequeueCount int
	// TargetPerInstance is how many messages of the queue (visible or
	// locked) one instance should have: the divisor of the desired
	// instance count an autoscaler is told (see Scaled). Default
	// Concurrency, the messages an instance processes at once, as Azure's
	// Service Bus scaler divides by maxConcurrentCalls.
	TargetPerInstance int
}

// QueueFunction is a function triggered by a queue.
type QueueFunction struct {
	Name    string
	Trigger QueueTrigger
	// Retry, when set, gives the delay before each redelivery of a failed
	// message (its MaxRetryCount also bounds the deliveries). Other
	// messages go on meanwhile. Default: redeliver at once.
	Retry resilience.Retry
	// Breaker and Timeout: as for hub functions (Function). While the
	// breaker is open, no message is taken and a message that fails is put
	// back without counting the delivery.
	Breaker resilience.BreakerPolicy
	Timeout time.Duration
	Handler QueueHandler
}

// RetryLaterError asks for the input to be delivered again at At, without
// counting as a failure (for example when a partner system is down).
type RetryLaterError struct {
	At     time.Time
	Reason string
}

func (e *RetryLaterError) Error() string {
	return fmt.Sprintf("retry at %s: %s", e.At.UTC().Format(time.RFC3339), e.Reason)
}

type queueFunction struct {
	QueueFunction
	// giveUp, when set, keeps a message the function gave up on instead of
	// the poison queue (for hub functions' retry queues: see retrylater.go).
	giveUp    func(ctx context.Context, m *queue.Message, reason error, now time.Time) error
	lock      time.Duration
	processed *atomicCounter
	breaker   *resilience.Breaker
	duration  prometheus.Observer
	failures  prometheus.Counter
	outcomes  map[string]prometheus.Counter
}

// RegisterQueue is Register of a queue function: the host's Config.Queues
// must be set.
func (h *Host) RegisterQueue(f QueueFunction) error { return h.Register(f) }

var _ Trigger = QueueFunction{}

func (f QueueFunction) functionName() string { return f.Name }

func (f QueueFunction) bind(h *Host) (bound, error) {
	t := &f.Trigger
	t.BatchSize = cmp.Or(t.BatchSize, 16)
	t.Concurrency = cmp.Or(t.Concurrency, max(1, t.BatchSize/2*runtime.NumCPU()))
	t.MaxDequeueCount = cmp.Or(t.MaxDequeueCount, 5)
	t.TargetPerInstance = cmp.Or(t.TargetPerInstance, t.Concurrency)
	switch {
	case h.cfg.Queues == nil:
		return nil, fmt.Errorf("host: function %s reads a queue, but the host has no queue service", f.Name)
	case f.Name == "":
		return nil, errors.New("host: a function needs a name")
	case f.Handler == nil:
		return nil, fmt.Errorf("host: function %s has no handler", f.Name)
	case t.BatchSize < 1 || t.BatchSize > 1000:
		return nil, fmt.Errorf("host: function %s: batchSize %d must be between 1 and 1000", f.Name, t.BatchSize)
	case t.Concurrency < 1:
		return nil, fmt.Errorf("host: function %s: concurrency %d must be at least 1", f.Name, t.Concurrency)
	case t.MaxDequeueCount < 1:
		return nil, fmt.Errorf("host: function %s: maxDequeueCount %d must be at least 1", f.Name, t.MaxDequeueCount)
	case t.TargetPerInstance < 1:
		return nil, fmt.Errorf("host: function %s: target per instance %d must be at least 1 (0: concurrency)", f.Name, t.TargetPerInstance)
	}
	if err := queue.ValidateName(t.Queue); err != nil {
		return nil, fmt.Errorf("host: function %s: %w", f.Name, err)
	}
	if err := h.checkNew(f.Name, f.Retry, f.Breaker, f.Timeout); err != nil {
		return nil, err
	}
	b, err := h.newBreaker(f.Name, f.Breaker, f.Timeout)
	if err != nil {
		return nil, err
	}
	return h.newQueueFunction(f, &atomicCounter{}, b), nil
}

func (h *Host) newQueueFunction(f QueueFunction, processed *atomicCounter, breaker *resilience.Breaker) *queueFunction {
	m := h.cfg.Metrics
	qf := &queueFunction{QueueFunction: f, processed: processed, breaker: breaker,
		duration: m.BatchDuration.WithLabelValues(f.Name), failures: m.Failures.WithLabelValues(f.Name),
		outcomes: map[string]prometheus.Counter{}}
	for _, o := range []string{"dequeued", "completed", "abandoned", "poisoned", "moved", telemetry.OutcomeHeld} {
		qf.outcomes[o] = m.QueueMessages.WithLabelValues(f.Name, f.Trigger.Queue, o)
	}
	return qf
}

var _ bound = (*queueFunction)(nil)

// start takes messages for a queue function. The queue must exist.
func (f *queueFunction) start(ctx context.Context, h *Host) error {
	info, err := h.cfg.Queues.Get(ctx, f.Trigger.Queue)
	if err != nil {
		return fmt.Errorf("host: function %s: %w", f.Name, err)
	}
	f.lock = info.Lock
	it, err := h.cfg.Queues.Messages(ctx, f.Trigger.Queue, f.Trigger.BatchSize)
	if err != nil {
		return fmt.Errorf("host: function %s: %w", f.Name, err)
	}
	h.active.Add(1)
	go h.runQueue(f, it)
	h.bg.Go(func() { h.reportQueue(f) })
	return nil
}

func (f *queueFunction) processedCount() int64 { return f.processed.n.Load() }

// queueLoop takes a queue function's messages for its workers until the
// host stops. While the function's breaker is open it takes none; when
// half-open, it takes one for the probe.
type queueLoop struct {
	h       *Host
	f       *queueFunction
	log     *slog.Logger
	fetch   *fetcher
	workers *workerPool
}

// runQueue runs a queue function, from the iterator first, until the host
// stops.
func (h *Host) runQueue(f *queueFunction, first *queue.Iterator) {
	defer h.active.Done()
	q := &queueLoop{h: h, f: f, log: h.log.With("function", f.Name, "queue", f.Trigger.Queue), fetch: newFetcher(first)}
	q.workers = startWorkers(f.Trigger.Concurrency, func(w queueWork) { h.handleMessage(f, w.m, w.permit, q.log) })
	defer q.workers.stop()
	defer q.fetch.close()
	go q.fetch.watchStop(h.soft, h.hardCtx.Done())
	if f.breaker != nil {
		go q.fetch.watchBreaker(f.breaker)
	}
	for q.workers.reserve(q.fetch.stopped) {
		if !q.take() {
			return
		}
	}
}

// take takes a message for the worker reserved, or gives the reservation
// back. It reports false when the loop ends.
func (q *queueLoop) take() bool {
	if !q.f.breaker.Admits() {
		return q.whileOpen()
	}
	it, ok := q.iterator()
	if it == nil {
		return ok
	}
	m, err := it.Next()
	if err != nil {
		q.workers.unreserve()
		return q.nextFailed(err)
	}
	q.f.outcomes["dequeued"].Inc()
	q.workers.run(queueWork{m: m})
	return true
}

// iterator returns the iterator, taking a new one when there is none. When
// it cannot, it gives the reservation back and returns nil and whether the
// loop goes on.
func (q *queueLoop) iterator() (messageIterator, bool) {
	if it := q.fetch.current(); it != nil {
		return it, true
	}
	next, err := q.h.cfg.Queues.Messages(q.h.hardCtx, q.f.Trigger.Queue, q.f.Trigger.BatchSize)
	if err != nil {
		q.workers.unreserve()
		q.log.Error("cannot take messages; retrying", "err", err)
		return nil, q.rest(time.Second)
	}
	if !q.fetch.replace(next) {
		q.workers.unreserve()
		return nil, false
	}
	return next, true
}

// nextFailed handles an iterator's failure to give a message. It reports
// false when the loop ends.
func (q *queueLoop) nextFailed(err error) bool {
	if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, queue.ErrStopped) {
		if q.fetch.isStopped() {
			return false
		}
		// Paused for the breaker: take messages again once it admits
		// work.
		q.fetch.drop()
		return true
	}
	q.log.Error("cannot take messages; retrying", "err", err)
	return q.rest(time.Second)
}

// whileOpen handles the reservation while the breaker admits no work: it
// puts back what was fetched ahead, then waits for the breaker to change,
// or takes a message for the probe when this instance may probe.
func (q *queueLoop) whileOpen() bool {
	if it := q.fetch.drop(); it != nil {
		q.holdFetched(it)
	}
	if changed := q.f.breaker.Changed(); !q.f.breaker.MayProbe() {
		q.workers.unreserve()
		select {
		case <-changed:
			return true
		case <-q.fetch.stopped:
			return false
		}
	}
	return q.probe()
}

// holdFetched puts back what it fetched ahead, without counting a
// delivery.
func (q *queueLoop) holdFetched(it messageIterator) {
	it.Pause()
	for {
		m, err := it.Next()
		if err != nil {
			return
		}
		q.h.holdMessage(q.f, m, q.log)
	}
}

// probe takes a message for the breaker's probe: the message first, so
// that a queue without work leaves the probe to another trigger or
// instance.
func (q *queueLoop) probe() bool {
	msgs, err := q.h.cfg.Queues.Receive(q.h.hardCtx, q.f.Trigger.Queue, 1, time.Second)
	if err != nil || len(msgs) == 0 {
		q.workers.unreserve()
		if err != nil {
			q.log.Error("cannot take a message for the breaker's probe; retrying", "err", err)
			return q.rest(time.Second)
		}
		return true
	}
	p, ok, _ := q.f.breaker.Acquire(q.h.hardCtx)
	if !ok {
		q.h.holdMessage(q.f, msgs[0], q.log)
		q.workers.unreserve()
		return true
	}
	q.f.outcomes["dequeued"].Inc()
	q.workers.run(queueWork{msgs[0], p})
	return true
}

// rest waits d before the loop tries again; false when the host stops
// first.
func (q *queueLoop) rest(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-q.fetch.stopped:
		return false
	}
}

// holdMessage puts a message back unprocessed while the function's
// breaker is open, without counting the delivery.
func (h *Host) holdMessage(f *queueFunction, m *queue.Message, log *slog.Logger) {
	if err := h.cfg.Queues.Move(h.hardCtx, f.Trigger.Queue, m, time.Now()); err != nil {
		log.Warn("cannot put a message back while the breaker is open; its lock will expire", "message_id", m.ID, "err", err)
		return
	}
	f.outcomes[telemetry.OutcomeHeld].Inc()
}

// handleMessage invokes the function on one message, renewing its lock
// meanwhile, and settles the message by the result.
func (h *Host) handleMessage(f *queueFunction, m *queue.Message, permit resilience.Permit, base *slog.Logger) {
	// The message's attributes are added only when something is logged.
	log := func() *slog.Logger { return base.With("message_id", m.ID, "dequeue_count", m.DequeueCount) }
	q := h.cfg.Queues
	name := f.Trigger.Queue
	ctx := h.hardCtx
	if m.DequeueCount > f.Trigger.MaxDequeueCount {
		// Delivered more often than allowed without finishing (crashes or
		// lost locks): poison it without another try.
		h.poison(ctx, f, m, fmt.Errorf("delivered %d times without completing (maxDequeueCount %d)", m.DequeueCount, f.Trigger.MaxDequeueCount), log())
		return
	}
	if !permit.Probe && !f.breaker.Admits() {
		h.holdMessage(f, m, base)
		return
	}
	start := time.Now()
	err := h.callQueue(f, m)
	f.duration.Observe(time.Since(start).Seconds())
	if h.hardCtx.Err() != nil {
		f.breaker.Release(permit)
		return // forced stop: the message's lock runs out and it is delivered again
	}
	var later *RetryLaterError
	var dle *DeadLetterError
	failed := err != nil && !errors.As(err, &later) && !errors.As(err, &dle)
	h.done(f.breaker, permit, failed)
	switch {
	case failed && !f.breaker.Admits():
		f.failures.Inc()
		log().Warn("function failed while its breaker is open; the message is put back (the delivery does not count)", "err", err)
		h.holdMessage(f, m, base)
	case err == nil:
		if err := q.CompleteAsync(ctx, name, m); err != nil {
			log().Warn("cannot complete message; it will be delivered again", "err", err)
			return
		}
		f.outcomes["completed"].Inc()
		f.processed.n.Add(1)
	case later != nil:
		if err := q.Move(ctx, name, m, later.At); err != nil {
			log().Warn("cannot move message to later; it will be delivered again", "err", err)
			return
		}
		log().Info("message moved to be tried later", "at", later.At, "reason", later.Reason)
		f.outcomes["moved"].Inc()
	case dle != nil:
		reason := error(dle)
		for _, r := range dle.Reasons {
			reason = r
		}
		h.poison(ctx, f, m, withState(reason, dle.State), log())
	default:
		f.failures.Inc()
		delay, retry := time.Duration(0), true
		if f.Retry.Strategy != "" {
			delay, retry = f.Retry.Next(m.DequeueCount, rand.Float64)
		}
		if !retry || m.DequeueCount >= f.Trigger.MaxDequeueCount {
			h.poison(ctx, f, m, err, log())
			return
		}
		log().Warn("function failed; the message will be delivered again", "err", err, "retry_in", delay)
		if err := q.Abandon(ctx, name, m, delay); err != nil {
			log().Warn("cannot release message; its lock will expire", "err", err)
			return
		}
		f.outcomes["abandoned"].Inc()
	}
}

// callQueue runs the handler, renewing the message's lock at half its
// duration, and turns a panic into an error.
func (h *Host) callQueue(f *queueFunction, m *queue.Message) (err error) {
	ctx, cancel := context.WithCancel(h.hardCtx)
	defer cancel()
	// A timer, not a goroutine per message: most messages finish before
	// their first renewal.
	var renew *time.Timer
	var mu sync.Mutex // orders the timer's Reset after Stop
	mu.Lock()
	renew = time.AfterFunc(f.lock/2, func() {
		_ = h.cfg.Queues.Renew(ctx, f.Trigger.Queue, m)
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() == nil {
			renew.Reset(f.lock / 2)
		}
	})
	mu.Unlock()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		cancel()
		renew.Stop()
	}()
	return h.call(withAttempt(ctx, Attempt{Number: m.DequeueCount, MaxRetries: f.Trigger.MaxDequeueCount - 1}), f.Name, f.Timeout,
		func(ctx context.Context) error { return f.Handler(ctx, m) })
}

// poison gives up on a message: it is kept as a dead letter in the queue's
// poison queue (see package deadletter), then the original is completed.
func (h *Host) poison(ctx context.Context, f *queueFunction, m *queue.Message, reason error, log *slog.Logger) {
	q := h.cfg.Queues
	name := f.Trigger.Queue
	now := time.Now().UTC()
	backoff := 100 * time.Millisecond
	for {
		err := h.keepPoisoned(ctx, f, m, reason, now)
		if err == nil {
			break
		}
		log.Error("cannot keep a poisoned message; retrying", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	f.outcomes["poisoned"].Inc()
	h.cfg.Metrics.DeadLettered.WithLabelValues(f.Name, "queue").Inc()
	// One line per message at DEBUG; the WARN lines sum them up per
	// function (see deadletterlog.go).
	log.Debug("message poisoned", "reason", reason.Error(), "poison_queue", queue.PoisonName(name))
	h.deadLetterLog.add(f.Name, []DeadLetter{{Function: f.Name, Reason: reason.Error(), Attempts: m.DequeueCount,
		Source: Source{Kind: "queue", Queue: name, MessageID: m.ID}}})

	if err := q.CompleteAsync(ctx, name, m); err != nil {
		log.Warn("cannot complete the poisoned message; it will be delivered again and poisoned again", "err", err)
	}
	f.processed.n.Add(1)
}

func (h *Host) keepPoisoned(ctx context.Context, f *queueFunction, m *queue.Message, reason error, now time.Time) error {
	if f.giveUp != nil {
		return f.giveUp(ctx, m, reason, now)
	}
	return h.cfg.DeadLetters.Poison(ctx, DeadLetter{
		Function: f.Name, Reason: reason.Error(),
		Source:   Source{Kind: "queue", Queue: f.Trigger.Queue, MessageID: m.ID, EnqueuedTime: m.Enqueued},
		Attempts: m.DequeueCount, FirstFailure: now, LastFailure: now,
		Body: m.Body, Properties: m.Properties, State: stateOf(reason),
	})
}

// reportQueue refreshes a queue's depth and oldest-age gauges.
func (h *Host) reportQueue(f *queueFunction) {
	depth := h.cfg.Metrics.QueueDepth.WithLabelValues(f.Trigger.Queue)
	age := h.cfg.Metrics.QueueOldestAge.WithLabelValues(f.Trigger.Queue)
	h.every(h.cfg.LagEvery, func(ctx context.Context) {
		if st, err := h.cfg.Queues.Stats(ctx, f.Trigger.Queue); err == nil {
			depth.Set(float64(st.Depth))
			age.Set(st.OldestAge.Seconds())
		}
	})
}
