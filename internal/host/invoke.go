package host

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/resilience"
)

// batchRun is what invokeBatch needs to run one function on batches of T
// (hub events, feed changes) held in order by one owner.
type batchRun[T any] struct {
	name      string
	kind      string // of the source, for metrics: "hub" or "container"
	retry     resilience.Retry
	m         *fnMetrics
	processed *atomicCounter
	handler   func(ctx context.Context, batch []T) error
	// position is an input's position: the key of DeadLetterError.Reasons.
	position func(T) int64
	letter   func(in T, reason error, attempts int, first, last time.Time) DeadLetter
	// later sets a batch aside to be retried later; nil when the trigger
	// cannot, and a *RetryLaterError is then a failure.
	later func(ctx context.Context, batch []T, later *RetryLaterError) bool
	// breaker, when set, is told every attempt's outcome and holds the
	// batch while it is open; timeout bounds each attempt.
	breaker *resilience.Breaker
	timeout time.Duration
}

// retryMemo keeps the retry state of a unit's (a hub partition's, a feed
// range's) failing batch where the unit's next owner finds it, in the
// unit's checkpoint: a restart or a takeover does not give the batch a
// fresh retry budget.
type retryMemo struct {
	// found is the state read with the unit's checkpoint. It is the first
	// batch's if that batch starts where the failing one did.
	found *hub.RetryState
	// save keeps the state of a batch about to wait for its next attempt:
	// it writes the unit's checkpoint just before the batch, with st.
	save func(ctx context.Context, st hub.RetryState) error
}

// resume returns the state found for the unit's first batch, which starts
// at pos, or nil. It answers once: later batches are new.
func (m *retryMemo) resume(pos int64) *hub.RetryState {
	if m == nil || m.found == nil {
		return nil
	}
	st := m.found
	m.found = nil
	if st.First != pos || st.Attempts < 1 {
		return nil
	}
	return st
}

// maxRetryReason bounds the error text kept with a retry state (a
// panic's carries its stack).
const maxRetryReason = 1024

// invokeBatch runs the function on a batch under its retry policy, and
// dead-letters what it gives up on. permit is the breaker's for the first
// attempt. It returns false when it was aborted before the batch was
// finished with (nothing may be checkpointed). memo, when not nil, keeps
// the batch's retry state across owners.
//
// A failure while the function's breaker is open (or one that opens it)
// neither retries nor dead-letters: the batch waits for the breaker, then
// starts over with a fresh retry budget.
func invokeBatch[T any](h *Host, ctx context.Context, r *batchRun[T], batch []T, permit resilience.Permit, log *slog.Logger, memo *retryMemo) bool {
	var first time.Time
	var last error
	attempt := 1
	if st := memo.resume(r.position(batch[0])); st != nil {
		// An earlier owner tried the batch and was waiting to try again:
		// go on from there. The wait left is bounded by what the policy
		// allows, should the earlier owner's clock be ahead.
		attempt, first = st.Attempts+1, st.FirstFailure
		if st.Reason != "" {
			last = errors.New(st.Reason)
		}
		most, _ := r.retry.Next(st.Attempts, func() float64 { return 1 }) // 0: the policy allows no more
		wait := min(time.Until(st.Next), most)
		log.Info("the batch goes on with its retries from before a restart or takeover", "failed_attempts", st.Attempts,
			"first_position", st.First, "first_failure", st.FirstFailure, "retry_in", max(wait, 0))
		// The attempt is a retry: the breaker admits it after the wait.
		r.breaker.Release(permit)
		if !h.retryWait(ctx, wait) {
			return false
		}
	}
	for ; ; attempt++ {
		if attempt > 1 && r.breaker != nil {
			p, waited, ok := h.readmit(ctx, r.breaker)
			if !ok {
				return false
			}
			if waited {
				log.Info("breaker admits work again; the held batch starts over", "inputs", len(batch),
					"first_position", r.position(batch[0]), "probe", p.Probe)
				attempt, first, last = 1, time.Time{}, nil
			}
			permit = p
		}
		start := time.Now()
		err := callBatch(h, withAttempt(ctx, Attempt{Number: attempt, MaxRetries: r.retry.MaxRetryCount, Last: last}), r, batch)
		last = err
		r.m.duration.Observe(time.Since(start).Seconds())
		r.m.size.Observe(float64(len(batch)))
		if err == nil {
			h.done(r.breaker, permit, false)
			h.processed(r.m, r.processed, len(batch))
			return true
		}
		if ctx.Err() != nil || h.hardCtx.Err() != nil {
			// Cancelled by a lost lease or a forced stop, not a failure of
			// the function: leave the batch for redelivery.
			r.breaker.Release(permit)
			return false
		}
		if dle, ok := deadLettersOf(err); ok {
			h.done(r.breaker, permit, false)
			var letters []DeadLetter
			now := time.Now().UTC()
			for _, in := range batch {
				if reason, ok := dle.Reasons[r.position(in)]; ok {
					letters = append(letters, r.letter(in, withState(reason, dle.State), attempt, now, now))
				}
			}
			if !h.putDeadLetters(ctx, r.name, r.kind, letters, log) {
				return false
			}
			h.processed(r.m, r.processed, len(batch))
			return true
		}
		if later, ok := errors.AsType[*RetryLaterError](err); ok && r.later != nil && r.later(ctx, batch, later) {
			h.done(r.breaker, permit, false)
			h.processed(r.m, r.processed, len(batch))
			return true
		}
		if ctx.Err() != nil {
			r.breaker.Release(permit)
			return false
		}
		r.m.failures.Inc()
		h.done(r.breaker, permit, true)
		if !r.breaker.Admits() {
			log.Warn("function failed while its breaker is open; the batch waits for the breaker to close (no retry, no dead letter)",
				"err", err, "inputs", len(batch), "first_position", r.position(batch[0]))
			continue
		}
		if first.IsZero() {
			first = start.UTC()
		}
		delay, retry := r.retry.Next(attempt, rand.Float64)
		log.Warn("function failed", "err", err, "attempt", attempt, "inputs", len(batch),
			"first_position", r.position(batch[0]), "retry", retry, "retry_in", delay)
		if !retry {
			now := time.Now().UTC()
			letters := make([]DeadLetter, len(batch))
			for i, in := range batch {
				letters[i] = r.letter(in, err, attempt, first, now)
			}
			if !h.putDeadLetters(ctx, r.name, r.kind, letters, log) {
				return false
			}
			h.processed(r.m, r.processed, len(batch))
			return true
		}
		r.m.retries.Inc()
		if memo != nil && memo.save != nil {
			st := hub.RetryState{First: r.position(batch[0]), Attempts: attempt, FirstFailure: first,
				Next: time.Now().Add(delay).UTC(), Reason: truncate(err.Error(), maxRetryReason)}
			if err := memo.save(ctx, st); err != nil && ctx.Err() == nil {
				log.Warn("cannot keep the batch's retry state: if this instance stops before the batch is done, its next owner starts its retries over",
					"err", err, "first_position", st.First)
			}
		}
		if !h.retryWait(ctx, delay) {
			return false
		}
	}
}

// retryWait waits d before a retry. It reports false when ctx ended or the
// host is stopping first: the batch is then left for redelivery.
func (h *Host) retryWait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil && !h.stopping()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	case <-h.soft:
		return false
	}
}

// truncate shortens s to at most n bytes, on a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func (h *Host) processed(m *fnMetrics, c *atomicCounter, n int) {
	m.events.Add(float64(n))
	c.n.Add(int64(n))
}

// callBatch runs the handler, turning a panic into an error. The
// handler's context ends when the lease is lost, the host stops hard or
// the function's timeout passes.
func callBatch[T any](h *Host, ctx context.Context, r *batchRun[T], batch []T) error {
	hctx, cancel := context.WithCancel(h.hardCtx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	if a, ok := AttemptOf(ctx); ok {
		hctx = withAttempt(hctx, a)
	}
	return h.call(hctx, r.name, r.timeout, func(ctx context.Context) error { return r.handler(ctx, batch) })
}

// putDeadLetters stores dead letters, retrying until it succeeds or ctx
// ends: an input is never checkpointed past without being kept.
func (h *Host) putDeadLetters(ctx context.Context, function, kind string, letters []DeadLetter, log *slog.Logger) bool {
	if len(letters) == 0 {
		return true
	}
	if !untilDone(ctx, log, "cannot store dead letters; the partition waits", func() error { return h.cfg.DeadLetters.Put(ctx, letters) }) {
		return false
	}
	h.cfg.Metrics.DeadLettered.WithLabelValues(function, kind).Add(float64(len(letters)))
	// One line per letter at DEBUG; the WARN lines sum them up per
	// function (see deadletterlog.go).
	if log.Enabled(ctx, slog.LevelDebug) {
		for _, dl := range letters {
			// log already carries the source's name and partition or range.
			if dl.Source.Kind == "container" {
				log.Debug("change dead-lettered", "lsn", dl.Source.LSN, "id", dl.Source.DocumentID, "reason", dl.Reason, "attempts", dl.Attempts)
			} else {
				log.Debug("event dead-lettered", "sequence", dl.Source.Sequence, "reason", dl.Reason, "attempts", dl.Attempts)
			}
		}
	}
	h.deadLetterLog.add(function, letters)
	return true
}

// untilDone calls fn until it succeeds or ctx ends, logging each failure
// with msg and backing off from 100ms to 10s between tries. It reports
// whether fn succeeded.
func untilDone(ctx context.Context, log *slog.Logger, msg string, fn func() error) bool {
	backoff := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return true
		}
		log.Error(msg, "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}
