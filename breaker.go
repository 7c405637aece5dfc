package sluice

import (
	"context"

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
type BreakerEvent = host.BreakerEvent

// Breaker states.
const (
	BreakerClosed   = resilience.Closed
	BreakerOpen     = resilience.Open
	BreakerHalfOpen = resilience.HalfOpen
)

// BreakerStatus is a function's circuit breaker as every instance sees it:
// its state, since when, why, the last transitions, and (for a function
// this instance runs) its policy and the failures counted over all
// instances.
type BreakerStatus = resilience.Status

// Breakers returns the status of every breaker: those of the functions
// this instance runs, and any other with shared state.
func (a *App) Breakers(ctx context.Context) ([]BreakerStatus, error) {
	if err := a.running(); err != nil {
		return nil, err
	}
	return a.host.Breakers().List(ctx)
}

// Breaker returns the status of a function's breaker.
func (a *App) Breaker(ctx context.Context, function string) (BreakerStatus, error) {
	if err := a.running(); err != nil {
		return BreakerStatus{}, err
	}
	return a.host.Breakers().Get(ctx, function)
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
	return a.host.Breakers().Get(ctx, function)
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
	return a.host.Breakers().Get(ctx, function)
}
