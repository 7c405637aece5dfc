package sluice

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/resilience"
)

// declared is a function the app declares, of any kind: the declaration
// methods (App.Function, QueueFunction, FeedFunction, TimerFunction,
// BlobFunction, HTTPFunction) each make one, and Start applies
// Config.Functions to them and registers them with the host.
type declared struct {
	name string
	// trigger is what the host runs; nil for an HTTP function (http),
	// which the app's own router serves.
	trigger host.Trigger
	http    *httpFunction
	// breaker and timeout point into trigger, for Config.Functions to
	// override; nil when the kind takes no such setting.
	breaker *resilience.BreakerPolicy
	timeout *time.Duration
}

// declare adds a function the host runs; breaker and timeout are its
// settings (nil: the kind takes none).
func (a *App) declare(name string, t host.Trigger, breaker *resilience.BreakerPolicy, timeout *time.Duration) {
	a.fns = append(a.fns, &declared{name: name, trigger: t, breaker: breaker, timeout: timeout})
}

// registerFunctions registers the functions the host runs, in the order
// they were declared.
func (a *App) registerFunctions() error {
	for _, f := range a.fns {
		if f.trigger == nil {
			continue
		}
		if err := a.host.Register(f.trigger); err != nil {
			return err
		}
	}
	return nil
}

// scaled lists the hub and queue functions the host runs, with their
// targets per instance, for the scale endpoint and gauges.
func (a *App) scaled() []gateway.ScaledFunction {
	var out []gateway.ScaledFunction
	for _, f := range a.host.Scaled() {
		out = append(out, gateway.ScaledFunction{Name: f.Function, Hub: f.Hub, Group: f.Group, Queue: f.Queue,
			TargetPerInstance: f.TargetPerInstance})
	}
	return out
}

// hasHTTPFunctions reports whether an HTTP function is declared.
func (a *App) hasHTTPFunctions() bool {
	return slices.ContainsFunc(a.fns, func(f *declared) bool { return f.http != nil })
}

// applySettings applies Config.Functions to the declared functions.
func (a *App) applySettings() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(a.cfg.Functions)) {
		s := a.cfg.Functions[name]
		found, breakerOK := false, true
		for _, f := range a.fns {
			if f.name != name {
				continue
			}
			found = true
			if f.http != nil {
				errs = append(errs, fmt.Errorf("sluice: settings of function %s: HTTP functions take no breaker or timeout settings", name))
				continue
			}
			if s.Breaker != nil {
				if f.breaker == nil {
					breakerOK = false
				} else {
					*f.breaker = s.Breaker.internal()
				}
			}
			if s.Timeout != 0 && f.timeout != nil {
				*f.timeout = s.Timeout
			}
		}
		switch {
		case !found:
			errs = append(errs, fmt.Errorf("sluice: settings of function %s: no function of that name is declared", name))
		case !breakerOK:
			errs = append(errs, fmt.Errorf("sluice: settings of function %s: breakers are for hub, queue and change-feed functions", name))
		}
	}
	return errors.Join(errs...)
}
