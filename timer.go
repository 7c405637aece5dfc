package sluice

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/schedule"
)

// TimerTrigger fires a function on a schedule. Across every instance of
// the app, each occurrence runs once, on one instance; a timer never runs
// alongside itself, and occurrences that pass while it runs are skipped.
type TimerTrigger struct {
	// Schedule is a six-field NCRONTAB expression, seconds first
	// ("0 */5 * * * *": every five minutes), or a TimeSpan interval
	// ("00:05:00"), as in Azure Functions.
	Schedule string
	// Location is the time zone the NCRONTAB fields are read in. Default
	// UTC.
	Location *time.Location
	// RunOnStartup runs the function once when this instance starts.
	RunOnStartup bool
	// UseMonitor keeps the schedule's status in the shared state, so an
	// occurrence missed while every instance was down runs once when one
	// is back (with IsPastDue). nil means Azure's default: on when the
	// schedule's occurrences are at least a minute apart.
	UseMonitor *bool
}

// TimerInfo is what a timer function is given: the occurrence it runs
// for, whether it runs late, and the schedule's status.
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

// TimerHandler runs one occurrence of a timer. An error fails it: the
// retry policy then governs it, and after that the occurrence is kept as a
// dead letter (source kind "timer"; it can be read and purged, not sent
// again), and the schedule goes on.
type TimerHandler func(ctx context.Context, info TimerInfo) error

// TimerFunction declares a function triggered by a timer. Problems with
// the declaration (a bad schedule) are reported by Start.
func (a *App) TimerFunction(name string, trigger TimerTrigger, handler TimerHandler, opts ...FunctionOption) {
	o := applyOptions(opts)
	if o.breaker.Enabled() {
		a.errs = append(a.errs, fmt.Errorf("sluice: timer function %s: breakers are for hub, queue and change-feed functions", name))
		return
	}
	f := host.TimerFunction{Name: name, Retry: o.retry, Timeout: o.timeout}
	if handler != nil {
		h := withMiddleware(a, name, TriggerTimer, o.middleware, (func(context.Context, TimerInfo) error)(handler))
		f.Handler = func(ctx context.Context, info host.TimerInfo) error { return h(ctx, TimerInfo(info)) }
	}
	s, err := schedule.Parse(trigger.Schedule, trigger.Location)
	if err != nil {
		a.errs = append(a.errs, fmt.Errorf("sluice: timer function %s: %w", name, err))
		return
	}
	monitor := schedule.MinInterval(s) >= time.Minute
	if trigger.UseMonitor != nil {
		monitor = *trigger.UseMonitor
	}
	f.Trigger = host.TimerTrigger{Schedule: s, RunOnStartup: trigger.RunOnStartup, UseMonitor: monitor}
	a.declare(name, &f, nil, &f.Timeout)
}
