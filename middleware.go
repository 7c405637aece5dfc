package sluice

import (
	"context"
	"fmt"
	"slices"
)

// The trigger kinds, as Invocation.Trigger names them.
const (
	TriggerHub        = "hub"
	TriggerQueue      = "queue"
	TriggerChangeFeed = "changefeed"
	TriggerTimer      = "timer"
	TriggerBlob       = "blob"
)

// Invocation is one attempt of a function, as middleware sees it.
type Invocation struct {
	// Function is the function's name.
	Function string
	// Trigger is its kind: TriggerHub, TriggerQueue, TriggerChangeFeed,
	// TriggerTimer or TriggerBlob.
	Trigger string
	// Input is what the function is invoked with: []Event for a hub
	// function, *Message for a queue function, []Document for a
	// change-feed function, TimerInfo for a timer function and Blob for a
	// blob function. A middleware may replace it with another value of the
	// same type (a filtered batch, say); a value of another type fails the
	// attempt.
	Input any
}

// Invoke runs an invocation: the next middleware, or the function itself.
type Invoke func(ctx context.Context, inv Invocation) error

// Middleware wraps the invocations of functions: it gets the next step and
// returns a step that does its own work around it (logging, tracing,
// metrics, enrichment, authorisation, a filter that calls next with part
// of the input or not at all). See WithMiddleware for where it runs.
type Middleware func(next Invoke) Invoke

// WithMiddleware wraps a function's invocations with mw, the first one
// outermost. Middleware added to the whole app with App.Use wraps these.
//
// Middleware runs inside each attempt, so the policies built into the host
// surround it, in this order from the outside in:
//
//  1. the circuit breaker (WithBreaker) admits or holds the batch or
//     message, and is told each attempt's outcome;
//  2. the retry policy (WithRetry) runs attempts, and dead-letters what the
//     last one failed on;
//  3. the timeout (WithTimeout) bounds each attempt: ctx carries its
//     deadline, and a panic anywhere below is recovered as the attempt's
//     failure;
//  4. the app's middleware (App.Use), in the order added;
//  5. the function's middleware (WithMiddleware), in the order given;
//  6. the function, with its output bindings (UpsertTo) inside it.
//
// An error a middleware returns fails the attempt exactly as the
// function's own would (it counts for the breaker and is retried), and
// returning nil without calling next completes the input unprocessed.
// HTTP functions are plain http.Handlers, wrapped with HTTP middleware by
// the usual means; WithMiddleware and App.Use do not apply to them.
func WithMiddleware(mw ...Middleware) FunctionOption {
	return func(o *functionOptions) { o.middleware = append(o.middleware, mw...) }
}

// Use adds middleware around the invocations of every function of the app
// except HTTP functions, declared before or after, the first one
// outermost (see WithMiddleware for the order). It must be called before
// Start: Use on a started app panics.
func (a *App) Use(mw ...Middleware) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started || a.stopping {
		panic("sluice: App.Use after Start: add middleware before the app starts")
	}
	a.middleware = append(a.middleware, mw...)
}

// chained is one function's invocation path through its middleware.
type chained struct {
	name  string
	own   []Middleware
	inner Invoke
	// call is the whole chain, built by Start; nil when the function has
	// no middleware, so that it is called directly.
	call Invoke
}

// withMiddleware returns h wrapped in the middleware of the function name
// (own) and of the app, which Start puts together.
func withMiddleware[T any](a *App, name, trigger string, own []Middleware, h func(context.Context, T) error) func(context.Context, T) error {
	c := &chained{name: name, own: own, inner: func(ctx context.Context, inv Invocation) error {
		in, ok := inv.Input.(T)
		if !ok {
			var want T
			return fmt.Errorf("sluice: the middleware of %s function %s passed %T as its input; it takes %T", trigger, name, inv.Input, want)
		}
		return h(ctx, in)
	}}
	a.chains = append(a.chains, c)
	return func(ctx context.Context, in T) error {
		if c.call == nil {
			return h(ctx, in)
		}
		return c.call(ctx, Invocation{Function: name, Trigger: trigger, Input: in})
	}
}

// buildChains puts every function's middleware together, the app's
// outermost. Called by Start before any function runs.
func (a *App) buildChains() error {
	for _, c := range a.chains {
		all := slices.Concat(a.middleware, c.own)
		if len(all) == 0 {
			continue
		}
		call := c.inner
		for i, mw := range slices.Backward(all) {
			if mw == nil {
				return fmt.Errorf("sluice: function %s: middleware %d of %d is nil", c.name, i+1, len(all))
			}
			if call = mw(call); call == nil {
				return fmt.Errorf("sluice: function %s: middleware %d of %d returned a nil Invoke; it must return a function that calls next", c.name, i+1, len(all))
			}
		}
		c.call = call
	}
	return nil
}
