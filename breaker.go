package sluice

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/resilience"
)

// BreakerEventsHub is the hub where every breaker transition is published
// once, as a JSON BreakerEvent (with properties "type" and "function"):
// subscribe a function to it to alert someone. It is created when a
// function with a breaker starts.
const BreakerEventsHub = host.BreakerEventsHub

// BreakerEvent is the body of a breaker transition's event, on
// BreakerEventsHub and POSTed to Config.BreakerWebhook. Type is
// "breaker.opened", "breaker.half-opened" or "breaker.closed".
type BreakerEvent struct {
	Type     string       `json:"type"`
	Function string       `json:"function"`
	From     BreakerState `json:"from"`
	To       BreakerState `json:"to"`
	Reason   string       `json:"reason"`
	By       string       `json:"by"`
	At       time.Time    `json:"at"`
	// Until is when an open breaker lets a probe through; absent when it
	// was opened by hand.
	Until *time.Time `json:"until,omitempty"`
}

// BreakerState is the state of a circuit breaker.
type BreakerState string

// Breaker states.
const (
	BreakerClosed   BreakerState = BreakerState(resilience.Closed)
	BreakerOpen     BreakerState = BreakerState(resilience.Open)
	BreakerHalfOpen BreakerState = BreakerState(resilience.HalfOpen)
)

// BreakerStatus is a function's circuit breaker as every instance sees it:
// its state, since when, why, the last transitions, and (for a function
// this instance runs) its policy and the failures counted over all
// instances.
type BreakerStatus struct {
	Function string       `json:"function"`
	State    BreakerState `json:"state"`
	Since    time.Time    `json:"since"`
	// Until is when an open breaker lets a probe through; zero for one
	// opened by hand (open until closed by hand).
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason,omitempty"`
	// Manual is set when the breaker was opened by hand.
	Manual bool `json:"manual,omitempty"`
	// FailedProbes counts probes that failed since the breaker last
	// closed; each doubles the cool-down.
	FailedProbes int `json:"failed_probes,omitempty"`
	// By is the instance (or "manual: <who>") that made the last change.
	By string `json:"by,omitempty"`
	// History is the last transitions, oldest first.
	History []BreakerTransition `json:"history,omitempty"`
	// Policy is the breaker's policy, when this instance runs the
	// function.
	Policy *BreakerPolicy `json:"policy,omitempty"`
	// Failures is the failures counted in the policy's window over all
	// instances, as this instance sees them; Consecutive the current run
	// of failures in a row.
	Failures    int `json:"failures"`
	Consecutive int `json:"consecutive"`
}

// BreakerTransition is one change of a breaker's state.
type BreakerTransition struct {
	At     time.Time    `json:"at"`
	From   BreakerState `json:"from"`
	To     BreakerState `json:"to"`
	Reason string       `json:"reason,omitempty"`
	By     string       `json:"by,omitempty"`
}

func breakerStatus(st resilience.Status, err error) (BreakerStatus, error) {
	out := BreakerStatus{
		Function: st.Function, State: BreakerState(st.State), Since: st.Since, Until: st.Until, Reason: st.Reason,
		Manual: st.Manual, FailedProbes: st.FailedProbes, By: st.By, Failures: st.Failures, Consecutive: st.Run,
	}
	if st.Policy != nil {
		p := BreakerPolicy(*st.Policy)
		out.Policy = &p
	}
	for _, t := range st.History {
		out.History = append(out.History, BreakerTransition{At: t.At, From: BreakerState(t.From), To: BreakerState(t.To), Reason: t.Reason, By: t.By})
	}
	return out, err
}

// Breakers returns the status of every breaker: those of the functions
// this instance runs, and any other with shared state.
func (a *App) Breakers(ctx context.Context) ([]BreakerStatus, error) {
	if err := a.running(); err != nil {
		return nil, err
	}
	list, err := a.host.Breakers().List(ctx)
	if list == nil {
		return nil, err
	}
	out := make([]BreakerStatus, len(list))
	for i, st := range list {
		out[i], _ = breakerStatus(st, nil)
	}
	return out, err
}

// Breaker returns the status of a function's breaker.
func (a *App) Breaker(ctx context.Context, function string) (BreakerStatus, error) {
	if err := a.running(); err != nil {
		return BreakerStatus{}, err
	}
	return breakerStatus(a.host.Breakers().Get(ctx, function))
}

// OpenBreaker opens a function's breaker by hand, on every instance: the
// function takes no new work until CloseBreaker. The reason is kept in the
// breaker's history.
func (a *App) OpenBreaker(ctx context.Context, function, reason string) (BreakerStatus, error) {
	if err := a.running(); err != nil {
		return BreakerStatus{}, err
	}
	if _, err := a.host.Breakers().Open(ctx, function, reason, a.cfg.InstanceID); err != nil {
		return BreakerStatus{}, err
	}
	return breakerStatus(a.host.Breakers().Get(ctx, function))
}

// CloseBreaker closes a function's breaker by hand, on every instance:
// work resumes from where it stopped, and the failures counted so far are
// forgotten.
func (a *App) CloseBreaker(ctx context.Context, function, reason string) (BreakerStatus, error) {
	if err := a.running(); err != nil {
		return BreakerStatus{}, err
	}
	if _, err := a.host.Breakers().Close(ctx, function, reason, a.cfg.InstanceID); err != nil {
		return BreakerStatus{}, err
	}
	return breakerStatus(a.host.Breakers().Get(ctx, function))
}
