package host

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/resilience"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// Circuit breakers and invocation timeouts.
//
// A function with a breaker policy gets a resilience.Breaker whose state
// all instances share (KV bucket Config.BreakerState). Its triggers ask
// the breaker before each invocation:
//   - hub partitions and feed ranges hold their next batch while it is open:
//     the finished batches' checkpoint is written, nothing after it, so the
//     partition resumes in order from there;
//   - queue functions take no messages while it is open: messages fetched
//     ahead, and messages that fail while it is open, are put back without
//     counting the delivery;
//   - a batch that fails while the breaker is (or becomes) open is neither
//     retried nor dead-lettered: it waits for the breaker to close and is
//     then tried again with a fresh retry budget. An outage therefore
//     dead-letters nothing once the breaker has opened.
//
// Each transition is announced once, by the instance that made it: to the
// logs, as an event on the hub BreakerEventsHub, and to
// Config.BreakerWebhook when set.

// BreakerEventsHub is the hub where breaker transitions are published,
// created when a function with a breaker starts.
const BreakerEventsHub = "sluice-breaker-events"

// BreakerEvent is the body of a breaker transition's event.
type BreakerEvent struct {
	Type     string                  `json:"type"` // breaker.opened, breaker.half-opened, breaker.closed
	Function string                  `json:"function"`
	From     resilience.BreakerState `json:"from"`
	To       resilience.BreakerState `json:"to"`
	Reason   string                  `json:"reason"`
	By       string                  `json:"by"`
	At       time.Time               `json:"at"`
	// Until is when an open breaker lets a probe through; absent when it
	// was opened by hand.
	Until *time.Time `json:"until,omitempty"`
}

func eventType(to resilience.BreakerState) string {
	switch to {
	case resilience.Open:
		return "breaker.opened"
	case resilience.HalfOpen:
		return "breaker.half-opened"
	}
	return "breaker.closed"
}

// BreakerBucket is the KV bucket of the shared breaker state, unless
// Config.BreakerState gives another.
const BreakerBucket = "sluice-breakers"

// Breakers are the host's breakers, for the API; nil when the host has no
// breaker state bucket.
func (h *Host) Breakers() *resilience.Breakers { return h.breakers }

// newBreaker makes the breaker of a function being registered; nil when
// its policy has none.
func (h *Host) newBreaker(name string, p resilience.BreakerPolicy, timeout time.Duration) (*resilience.Breaker, error) {
	if !p.Enabled() {
		return nil, nil
	}
	if h.breakers == nil {
		return nil, fmt.Errorf("host: function %s has a breaker, but the host has no breaker state bucket", name)
	}
	// A probe that takes longer than this is taken over by another
	// instance: well past the function's own timeout.
	probe := time.Minute
	if timeout > 0 {
		probe = max(probe, 2*timeout)
	}
	var b *resilience.Breaker
	var err error
	if h.started.Load() {
		// A function added while the host runs (AddFunction): its breaker
		// joins the running ones and reads the shared state.
		ctx, cancel := context.WithTimeout(h.hardCtx, 10*time.Second)
		b, err = h.breakers.Add(ctx, name, p, probe)
		cancel()
	} else {
		b, err = h.breakers.Register(name, p, probe)
	}
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	h.cfg.Metrics.BreakerState.WithLabelValues(name).Set(telemetry.BreakerClosed)
	h.anyBreaker = true
	return b, nil
}

// breakerChanged announces a transition this instance made.
func (h *Host) breakerChanged(rec resilience.Record, t resilience.Transition) {
	h.cfg.Metrics.BreakerTransitions.WithLabelValues(rec.Function, string(t.To)).Inc()
	ev := BreakerEvent{Type: eventType(t.To), Function: rec.Function, From: t.From, To: t.To, Reason: t.Reason, By: t.By, At: t.At.UTC()}
	if t.To == resilience.Open && !rec.Until.IsZero() {
		until := rec.Until.UTC()
		ev.Until = &until
	}
	log := h.log.With("function", rec.Function, "from", t.From, "to", t.To, "reason", t.Reason, "by", t.By)
	switch t.To {
	case resilience.Open:
		if ev.Until != nil {
			log.Warn("breaker opened: the function takes no new work on any instance until it closes", "probe_at", *ev.Until)
		} else {
			log.Warn("breaker opened by hand: the function takes no new work on any instance until it is closed (sluice breaker close)")
		}
	case resilience.HalfOpen:
		log.Info("breaker half-open: one probe invocation decides whether it closes")
	default:
		log.Info("breaker closed: the function takes work again, from where it stopped")
	}
	body, _ := json.Marshal(ev)
	if h.cfg.Hubs != nil {
		h.bg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := h.cfg.Hubs.Publish(ctx, BreakerEventsHub, []hub.Event{{Body: body, PartitionKey: rec.Function,
				Properties: map[string]string{"type": ev.Type, "function": rec.Function}}}); err != nil {
				h.log.Warn("cannot publish the breaker event", "hub", BreakerEventsHub, "function", rec.Function, "err", err)
			}
		})
	}
	if url := h.cfg.BreakerWebhook; url != "" {
		h.bg.Go(func() { h.postWebhook(url, body, rec.Function) })
	}
}

// postWebhook POSTs a breaker event, trying three times.
func (h *Host) postWebhook(url string, body []byte, function string) {
	var err error
	for i, wait := range []time.Duration{0, time.Second, 5 * time.Second} {
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-h.hardCtx.Done():
				return
			}
		}
		err = func() error {
			ctx, cancel := context.WithTimeout(h.hardCtx, 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode >= 300 {
				return fmt.Errorf("the webhook answered %s", resp.Status)
			}
			return nil
		}()
		if err == nil {
			return
		}
		h.log.Warn("cannot deliver the breaker event to the webhook", "function", function, "attempt", i+1, "err", err)
	}
}

// breakerSeen follows a breaker's state on this instance.
func (h *Host) breakerSeen(rec resilience.Record) {
	v := telemetry.BreakerClosed
	switch rec.State {
	case resilience.Open:
		v = telemetry.BreakerOpen
	case resilience.HalfOpen:
		v = telemetry.BreakerHalfOpen
	}
	h.cfg.Metrics.BreakerState.WithLabelValues(rec.Function).Set(float64(v))
}

// breakerCtx bounds the KV writes of recording an outcome.
func (h *Host) breakerCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(h.hardCtx), 5*time.Second)
}

// done records an invocation's outcome with its breaker.
func (h *Host) done(b *resilience.Breaker, p resilience.Permit, failed bool) {
	if b == nil {
		return
	}
	if !failed && !p.Probe {
		// The common case writes nothing: no context needed.
		b.Done(context.Background(), p, false)
		return
	}
	ctx, cancel := h.breakerCtx()
	defer cancel()
	b.Done(ctx, p, failed)
}

// hold waits until b admits an invocation of a partition's (or range's)
// next batch. While it waits, the finished batches' checkpoint is made
// durable and nothing after it. It returns the permit, or false and what
// the unit's consume must return: on a lost lease its release, on a stop
// nil, and errReload when reload fires (a paused group).
func (h *Host) hold(ctx, lctx context.Context, b *resilience.Breaker, cpw *checkpointer, reload <-chan struct{}) (resilience.Permit, bool, error) {
	for {
		p, ok, wake := b.Acquire(ctx)
		if ok {
			return p, true, nil
		}
		if err := cpw.flush(); err != nil {
			return p, false, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return p, false, cpw.release(lctx)
		case <-h.soft:
			return p, false, nil
		case <-reload:
			return p, false, errReload
		}
	}
}

// readmit waits until b admits an invocation, for a batch being retried.
// waited reports that it had to wait (the breaker was open); ok is false
// when ctx ended or the host is stopping.
func (h *Host) readmit(ctx context.Context, b *resilience.Breaker) (p resilience.Permit, waited, ok bool) {
	for {
		p, admitted, wake := b.Acquire(ctx)
		if admitted {
			return p, waited, true
		}
		waited = true
		select {
		case <-wake:
		case <-ctx.Done():
			return p, waited, false
		case <-h.soft:
			return p, waited, false
		}
	}
}

// TimeoutError is the failure of an invocation that reached its
// function's timeout.
type TimeoutError struct {
	Function string
	Timeout  time.Duration
	Err      error // what the function returned
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("function %s timed out after %s: %v", e.Function, e.Timeout, e.Err)
}

func (e *TimeoutError) Unwrap() error { return e.Err }

// errTimedOut is the cause of a timed-out invocation's context.
var errTimedOut = errors.New("the function's timeout was reached")

// call runs fn with a context that ends when parent ends or timeout (if
// any) passes, turning a panic into an error. An invocation that reaches
// its timeout fails with a *TimeoutError, whatever it returns; one that
// still runs a grace period after it ignores its context and is reported
// (it cannot be stopped: the invocation waits for it).
func (h *Host) call(parent context.Context, name string, timeout time.Duration, fn func(ctx context.Context) error) (err error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	if timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, timeout, errTimedOut)
		defer stop()
		start := time.Now()
		grace := cmp.Or(h.cfg.OverrunGrace, 5*time.Second)
		overrun := time.AfterFunc(timeout+grace, func() {
			h.cfg.Metrics.Overruns.WithLabelValues(name).Inc()
			h.log.Error("function ignores cancellation: still running after its timeout; the invocation waits for it (make the function return when its context is done)",
				"function", name, "timeout", timeout, "running_for", time.Since(start).Round(time.Millisecond))
		})
		defer func() {
			if !overrun.Stop() {
				h.log.Warn("function returned long after its timeout", "function", name, "timeout", timeout,
					"ran_for", time.Since(start).Round(time.Millisecond))
			}
			if errors.Is(context.Cause(ctx), errTimedOut) {
				// Reached its timeout: a failure, even if it then
				// returned nil.
				h.cfg.Metrics.Timeouts.WithLabelValues(name).Inc()
				err = &TimeoutError{Function: name, Timeout: timeout, Err: cmp.Or(err, context.DeadlineExceeded)}
			}
		}()
	}
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("panic: %v\n%s", rec, debug.Stack())
		}
	}()
	return fn(ctx)
}

// startBreakers follows the shared breaker state (so a breaker left open
// holds work from the first batch) and creates the events hub.
func (h *Host) startBreakers(ctx context.Context) error {
	if h.breakers == nil {
		return nil
	}
	if h.anyBreaker && h.cfg.Hubs != nil {
		_, err := h.cfg.Hubs.Create(ctx, hub.Config{Name: BreakerEventsHub, Partitions: 1})
		if err != nil && !errors.Is(err, hub.ErrExists) {
			return fmt.Errorf("host: breaker events hub: %w", err)
		}
	}
	if err := h.breakers.Start(ctx); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	return nil
}
