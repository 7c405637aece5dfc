package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/claim"
	"github.com/sluicehq/sluice/internal/resilience"
)

// Schedule says when a timer fires (schedule.Schedule implements it).
type Schedule interface {
	// Next is the first occurrence after t, or the zero time if none.
	Next(t time.Time) time.Time
	String() string
}

// TimerInfo is what a timer function is given.
type TimerInfo struct {
	// Scheduled is the occurrence this invocation is for.
	Scheduled time.Time
	// IsPastDue is true when the occurrence was missed (every instance
	// down, or the one running it died) and runs late.
	IsPastDue bool
	// Last, Next and LastUpdated are the schedule's status (zero without
	// UseMonitor): the last completed occurrence, the next one, and when
	// they were written.
	Last, Next, LastUpdated time.Time
	// Startup is true for the run RunOnStartup asks for.
	Startup bool
}

// TimerHandler runs one occurrence of a timer.
type TimerHandler func(ctx context.Context, info TimerInfo) error

// TimerTrigger fires a function on a schedule. Across all instances, each
// occurrence runs once: the instance that claims it in the shared state
// runs it, and a timer never runs alongside itself (occurrences that pass
// while it runs are skipped).
type TimerTrigger struct {
	Schedule Schedule
	// RunOnStartup runs the function once when this instance starts.
	RunOnStartup bool
	// UseMonitor records the schedule's status, so that an occurrence
	// missed while every instance was down (or whose run died) runs once,
	// late, with IsPastDue.
	UseMonitor bool
}

// TimerFunction is a function triggered by a timer.
type TimerFunction struct {
	Name    string
	Trigger TimerTrigger
	// Retry governs failed runs; after it runs out the occurrence is
	// dead-lettered (kind "timer"), and the schedule goes on.
	Retry resilience.Retry
	// Timeout bounds one run, as for hub functions. Zero: no bound.
	Timeout time.Duration
	Handler TimerHandler
}

type timerFunction struct {
	TimerFunction
	m         fnMetrics
	processed *atomicCounter
}

// timerState is a timer's shared state, a KV entry named for the function.
type timerState struct {
	Last        time.Time `json:"last,omitzero"`
	Next        time.Time `json:"next,omitzero"`
	LastUpdated time.Time `json:"last_updated,omitzero"`
	// The claim (package claim) of the instance running Occurrence, valid
	// until Until.
	Owner      string    `json:"owner,omitempty"`
	Occurrence time.Time `json:"occurrence,omitzero"`
	Until      time.Time `json:"until,omitzero"`
}

// timerClaim is how long a claim lasts without renewal; it is renewed
// every third of it while the function runs.
const timerClaim = 30 * time.Second

// heldOccurrence is this instance's claim on an occurrence, and the state
// it wrote with it.
type heldOccurrence struct {
	claim *claim.Claim
	state timerState
}

// RegisterTimer is Register of a timer function: the host's
// Config.TimerState or JS must be set.
func (h *Host) RegisterTimer(f TimerFunction) error { return h.Register(f) }

// TimerBucket is the KV bucket of timers' shared state, unless
// Config.TimerState gives another.
const TimerBucket = "sluice-timers"

var _ Trigger = TimerFunction{}

func (f TimerFunction) functionName() string { return f.Name }

func (f TimerFunction) bind(h *Host) (bound, error) {
	switch {
	case h.cfg.TimerState == nil && h.cfg.JS == nil:
		return nil, fmt.Errorf("host: function %s is a timer, but the host has no timer state bucket", f.Name)
	case f.Name == "":
		return nil, errors.New("host: a function needs a name")
	case f.Handler == nil:
		return nil, fmt.Errorf("host: function %s has no handler", f.Name)
	case f.Trigger.Schedule == nil:
		return nil, fmt.Errorf("host: timer function %s has no schedule", f.Name)
	}
	if err := h.checkNew(f.Name, f.Retry, resilience.BreakerPolicy{}, f.Timeout); err != nil {
		return nil, err
	}
	return &timerFunction{TimerFunction: f, processed: &atomicCounter{},
		m: h.newFnMetrics(f.Name, h.cfg.Metrics.EventsProcessed.WithLabelValues(f.Name, "", ""))}, nil
}

var _ bound = (*timerFunction)(nil)

// start runs the timer's occurrences until the host stops.
func (f *timerFunction) start(ctx context.Context, h *Host) error {
	if err := h.bucket(ctx, &h.cfg.TimerState, TimerBucket); err != nil {
		return err
	}
	h.active.Add(1)
	go func() {
		defer h.active.Done()
		h.runTimer(f)
	}()
	return nil
}

// runTimer runs a timer's occurrences until the host stops.
func (h *Host) runTimer(f *timerFunction) {
	log := h.log.With("function", f.Name, "schedule", f.Trigger.Schedule.String())
	// ctx ends at a graceful stop: no new occurrences, no more retries. A
	// run in flight goes on until the host stops hard.
	ctx, cancel := context.WithCancel(h.hardCtx)
	defer cancel()
	go func() {
		select {
		case <-h.soft:
			cancel()
		case <-ctx.Done():
		}
	}()
	if f.Trigger.RunOnStartup {
		st, _, _ := h.timerState(ctx, f.Name)
		h.runOccurrence(ctx, f, h.timerInfo(f, st, time.Now().UTC(), false, true), nil, log)
	}
	// After a start, an occurrence the status says is due runs at once.
	occ, pastDue := time.Time{}, false
	if st, _, err := h.timerState(ctx, f.Name); err == nil && f.Trigger.UseMonitor && !st.Next.IsZero() && st.Next.Before(time.Now()) {
		occ, pastDue = st.Next, true
	}
	for {
		if occ.IsZero() {
			if occ = f.Trigger.Schedule.Next(time.Now()).UTC(); occ.IsZero() {
				log.Warn("the schedule has no more occurrences")
				return
			}
		}
		if !sleepUntil(ctx, occ) {
			return
		}
		st, held, heldUntil := h.claim(ctx, f, occ, log)
		for held == nil && !heldUntil.IsZero() {
			// Another instance claimed this occurrence. While it runs,
			// it renews its claim; if it died, the claim lapses and the
			// occurrence runs here, late.
			if !sleepUntil(ctx, heldUntil) {
				return
			}
			st, held, heldUntil = h.claim(ctx, f, occ, log)
			if held != nil {
				pastDue = true
				log.Warn("the instance that claimed this occurrence stopped renewing its claim; running it here, late", "occurrence", occ)
			}
		}
		if held != nil {
			if f.Trigger.UseMonitor && !st.Next.IsZero() && st.Next.Before(occ) {
				pastDue = true // a recorded occurrence was never run
			}
			info := h.timerInfo(f, st, occ, pastDue, false)
			h.runOccurrence(ctx, f, info, held, log)
			h.complete(ctx, f, occ, log)
		}
		if ctx.Err() != nil {
			return
		}
		// The next occurrence is the first after now, the same now the
		// recorded next occurrence is compared with: were the clock read
		// again, an occurrence passing in between would be neither run
		// past due nor waited for, but lost.
		now := time.Now()
		occ, pastDue = f.Trigger.Schedule.Next(now).UTC(), false
		if st, _, err := h.timerState(ctx, f.Name); err == nil && f.Trigger.UseMonitor && !st.Next.IsZero() &&
			!st.Next.After(now) && (st.Owner == "" || claim.Expired(now, st.Until)) {
			// A recorded occurrence passed unrun (the instance that
			// claimed it died before completing, or every instance was
			// late): run it once now.
			occ, pastDue = st.Next, true
		}
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (h *Host) timerInfo(f *timerFunction, st timerState, occ time.Time, pastDue, startup bool) TimerInfo {
	info := TimerInfo{Scheduled: occ, IsPastDue: pastDue, Startup: startup}
	if f.Trigger.UseMonitor {
		info.Last, info.LastUpdated = st.Last, st.LastUpdated
		info.Next = f.Trigger.Schedule.Next(occ).UTC()
	}
	return info
}

func (h *Host) timerState(ctx context.Context, name string) (timerState, uint64, error) {
	var st timerState
	e, err := h.cfg.TimerState.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, err
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return st, 0, fmt.Errorf("timer state of %s: %w", name, err)
	}
	return st, e.Revision(), nil
}

// putTimerState writes st if the entry is still at rev (0: absent).
func (h *Host) putTimerState(ctx context.Context, name string, st timerState, rev uint64) error {
	b, _ := json.Marshal(st)
	_, err := claim.Write(ctx, h.cfg.TimerState, name, b, rev)
	return err
}

// claim takes occurrence occ for this instance, unless it has run or
// another instance holds a live claim. It returns the state before the
// claim and, on success, the claim; when another instance holds a live
// claim on occ itself, when that claim ends unless renewed.
func (h *Host) claim(ctx context.Context, f *timerFunction, occ time.Time, log *slog.Logger) (st timerState, held *heldOccurrence, heldUntil time.Time) {
	for ctx.Err() == nil {
		st, rev, err := h.timerState(ctx, f.Name)
		if err != nil {
			log.Warn("read timer state", "err", err)
			if !sleepUntil(ctx, time.Now().Add(time.Second)) {
				return st, nil, time.Time{}
			}
			continue
		}
		now := time.Now().UTC()
		switch {
		case !st.Last.Before(occ):
			return st, nil, time.Time{} // run already
		case st.Owner != "" && st.Owner != h.cfg.InstanceID && !claim.Expired(now, st.Until):
			if st.Occurrence.Equal(occ) {
				return st, nil, st.Until // running elsewhere
			}
			return st, nil, time.Time{} // an older occurrence running elsewhere
		}
		claimed := st
		claimed.Owner, claimed.Occurrence, claimed.Until = h.cfg.InstanceID, occ, now.Add(timerClaim)
		b, _ := json.Marshal(claimed)
		if c, err := claim.Take(ctx, h.cfg.TimerState, f.Name, rev, now, b, claim.Terms{TTL: timerClaim}); err == nil {
			return st, &heldOccurrence{claim: c, state: claimed}, time.Time{}
		}
		// Another instance wrote first: look again.
		if !sleepUntil(ctx, time.Now().Add(time.Duration(rand.IntN(20))*time.Millisecond)) {
			return st, nil, time.Time{}
		}
	}
	return timerState{}, nil, time.Time{}
}

// complete records occurrence occ as run and drops the claim.
func (h *Host) complete(ctx context.Context, f *timerFunction, occ time.Time, log *slog.Logger) {
	ctx = context.WithoutCancel(ctx)
	for attempt := 0; attempt < 20; attempt++ {
		st, rev, err := h.timerState(ctx, f.Name)
		if err == nil {
			if st.Owner != h.cfg.InstanceID || !st.Occurrence.Equal(occ) {
				log.Warn("the timer's claim was lost while it ran (it ran longer than the claim and another instance took it)", "occurrence", occ)
				return
			}
			now := time.Now().UTC()
			st.Last, st.LastUpdated = occ, now
			st.Next = f.Trigger.Schedule.Next(now).UTC()
			st.Owner, st.Occurrence, st.Until = "", time.Time{}, time.Time{}
			if err = h.putTimerState(ctx, f.Name, st, rev); err == nil {
				return
			}
		}
		log.Warn("record the timer's run", "err", err)
		time.Sleep(50 * time.Millisecond)
	}
}

// runOccurrence runs the function for one occurrence under its retry
// policy, renewing held (nil for the startup run) until it returns.
func (h *Host) runOccurrence(ctx context.Context, f *timerFunction, info TimerInfo, held *heldOccurrence, log *slog.Logger) {
	if held != nil {
		stop := held.claim.KeepAlive(timerClaim/3, func(now time.Time) []byte {
			st := held.state
			st.Until = now.UTC().Add(timerClaim)
			b, _ := json.Marshal(st)
			return b
		}, nil)
		defer stop()
	}
	var last error
	var first time.Time
	for attempt := 1; ; attempt++ {
		start := time.Now()
		if first.IsZero() {
			first = start.UTC()
		}
		err := h.callTimer(withAttempt(h.hardCtx, Attempt{Number: attempt, MaxRetries: f.Retry.MaxRetryCount, Last: last}), f, info)
		last = err
		f.m.duration.Observe(time.Since(start).Seconds())
		if err == nil {
			h.processed(&f.m, f.processed, 1)
			return
		}
		if ctx.Err() != nil {
			return
		}
		f.m.failures.Inc()
		delay, retry := f.Retry.Next(attempt, rand.Float64)
		log.Warn("timer function failed", "err", err, "attempt", attempt, "occurrence", info.Scheduled, "retry", retry, "retry_in", delay)
		if !retry {
			// Kept, like any input given up on: the letter names the
			// occurrence. It can be read and purged; there is nothing to
			// send again.
			body, _ := json.Marshal(info)
			h.putDeadLetters(ctx, f.Name, "timer", []DeadLetter{{Function: f.Name, Reason: err.Error(), Attempts: attempt,
				FirstFailure: first, LastFailure: time.Now().UTC(), Body: body,
				Source: Source{Kind: "timer", EnqueuedTime: info.Scheduled}}}, log)
			return
		}
		f.m.retries.Inc()
		if !sleepUntil(ctx, time.Now().Add(delay)) {
			return
		}
	}
}

// callTimer runs the handler, turning a panic into an error. The
// handler's context ends when the host stops hard or the timeout passes.
func (h *Host) callTimer(ctx context.Context, f *timerFunction, info TimerInfo) error {
	return h.call(ctx, f.Name, f.Timeout, func(ctx context.Context) error { return f.Handler(ctx, info) })
}
