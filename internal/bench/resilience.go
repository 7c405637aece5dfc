package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
)

// ResilienceOptions configure the resilience workload: what a closed
// circuit breaker and the idempotency helper cost on the hub pipeline.
type ResilienceOptions struct {
	// DataDir holds one directory per case and round, removed when it
	// ends. Required.
	DataDir string
	// Events are published for the plain and breaker cases; OnceEvents for
	// the once case, whose events each cost two KV writes. Defaults
	// 200,000 and 20,000.
	Events, OnceEvents int64
	// EventSize is each event's body size. Default 256.
	EventSize int
	// Partitions of the hub. Default 4.
	Partitions int
	// Rounds: each case runs this many times, interleaved with the others,
	// and the median round is reported. Default 3.
	Rounds int
	Sync   string
	// Cases to run, from ResilienceCases. Default all.
	Cases    []string
	Progress func(string)
}

// ResilienceCases are the cases of the resilience workload.
//
//   - hub: a Go function on a hub, batches of 100, touching each event:
//     the baseline.
//   - hub-breaker: the same function with a circuit breaker that stays
//     closed (every invocation asks it for a permit and reports its outcome).
//   - hub-once: the same function running each event's work through
//     App.Once, keyed by partition and sequence number.
var ResilienceCases = []string{"hub", "hub-breaker", "hub-once"}

func (o *ResilienceOptions) defaults() {
	o.Events = cmp.Or(o.Events, 200_000)
	o.OnceEvents = cmp.Or(o.OnceEvents, 20_000)
	o.EventSize = cmp.Or(o.EventSize, 256)
	o.Partitions = cmp.Or(o.Partitions, 4)
	o.Rounds = cmp.Or(o.Rounds, 3)
	o.Sync = cmp.Or(o.Sync, sluice.SyncAlways)
	if len(o.Cases) == 0 {
		o.Cases = ResilienceCases
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
}

// RunResilience runs the resilience workload and reports one Result per
// case: its median round, with the hub case as the baseline of the others.
func RunResilience(ctx context.Context, o ResilienceOptions, report func(Result)) error {
	o.defaults()
	for _, c := range o.Cases {
		if !slices.Contains(ResilienceCases, c) {
			return fmt.Errorf("unknown case %q (cases: %s)", c, strings.Join(ResilienceCases, ", "))
		}
	}
	switch {
	case o.DataDir == "":
		return errors.New("DataDir is required")
	case o.Events < 1 || o.OnceEvents < 1 || o.EventSize < 1 || o.Partitions < 1 || o.Rounds < 1:
		return errors.New("the options Events, OnceEvents, EventSize, Partitions and Rounds must be at least 1")
	}
	cases := o.Cases
	if !slices.Contains(cases, "hub") {
		cases = append([]string{"hub"}, cases...) // the baseline is measured anyway
	}
	runs := map[string][]handlerRun{}
	failed := &failures{workload: "resilience"}
	broken := map[string]bool{} // cases that failed a round: not run again
	for round := range o.Rounds {
		for _, c := range cases {
			if broken[c] {
				continue
			}
			o.Progress(fmt.Sprintf("round %d of %d: %s", round+1, o.Rounds, c))
			hr, err := runResilienceCase(ctx, o, c, round)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				broken[c] = true
				failed.add(report, c, fmt.Errorf("round %d: %w", round+1, err))
				continue
			}
			runs[c] = append(runs[c], hr)
		}
	}
	for _, c := range o.Cases {
		if broken[c] {
			continue
		}
		hr := median(runs[c])
		r := Result{Workload: "resilience", Case: c, Events: hr.events, Seconds: hr.took.Seconds(), EventsPerSec: rate(hr.events, hr.took), Sync: o.Sync}
		var rates []string
		for _, run := range runs[c] {
			rates = append(rates, strconv.FormatFloat(rate(run.events, run.took), 'f', 0, 64))
		}
		note := []string{fmt.Sprintf("median of %d rounds (events/s: %s), the cases interleaved", o.Rounds, strings.Join(rates, ", ")),
			fmt.Sprintf("%d events of %d bytes published before the app started, on a hub of %d partitions; a Go function, batches of %d", hr.total, o.EventSize, o.Partitions, hubBatch),
			fmt.Sprintf("CPU while timed %.2fs (%.1f µs per event)", hr.cpu.Seconds(), float64(hr.cpu.Microseconds())/float64(hr.events))}
		switch c {
		case "hub-breaker":
			note = append(note, "with a circuit breaker that stays closed (WithBreaker)")
		case "hub-once":
			note = append(note, "each event's work run through App.Once (a KV create and a KV update per event)")
			if !broken["hub"] {
				base := median(runs["hub"])
				perEvent := hr.took.Seconds()/float64(hr.events) - base.took.Seconds()/float64(base.events)
				note = append(note, fmt.Sprintf("%.1f µs more per event than the baseline", perEvent*1e6))
			}
		}
		if c != "hub" && !broken["hub"] {
			base := median(runs["hub"])
			r.setBaseline("hub", base.events, base.took)
		}
		r.Note = strings.Join(note, "; ")
		r.PeakRSSMiB = PeakRSSMiB()
		report(r)
	}
	return failed.err()
}

// median is the run with the median rate.
func median(runs []handlerRun) handlerRun {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b handlerRun) int { return cmp.Compare(rate(a.events, a.took), rate(b.events, b.took)) })
	return s[len(s)/2]
}

// runResilienceCase fills a hub, then times an app whose function drains it.
func runResilienceCase(ctx context.Context, o ResilienceOptions, c string, round int) (hr handlerRun, err error) {
	dir := filepath.Join(o.DataDir, fmt.Sprintf("%s-%d", c, round))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return hr, fmt.Errorf("make the case's directory (it must not exist yet): %w", err)
	}
	defer os.RemoveAll(dir)
	hr = handlerRun{hub: true, total: o.Events}
	if c == "hub-once" {
		hr.total = o.OnceEvents
	}
	config := sluice.Config{DataDir: dir, InstanceID: "bench", Sync: o.Sync, Logger: slog.New(slog.DiscardHandler)}
	fill := sluice.New(config)
	fill.Hub(sluice.HubConfig{Name: handlerHub, Partitions: o.Partitions})
	if err := fill.Start(ctx); err != nil {
		return hr, err
	}
	err = fillApp(ctx, fill, true, hr.total, benchBody(o.EventSize))
	if err := errors.Join(err, fill.Stop(context.Background())); err != nil {
		return hr, fmt.Errorf("fill: %w", err)
	}

	app := sluice.New(config)
	app.Hub(sluice.HubConfig{Name: handlerHub, Partitions: o.Partitions})
	// Partitions run at once: the work each event does must be safe
	// concurrently (an unsynchronised sum was a data race).
	var sink atomic.Int64
	touch := func(e sluice.Event) { sink.Add(int64(len(e.Body))) }
	handler := func(_ context.Context, events []sluice.Event) error {
		for _, e := range events {
			touch(e)
		}
		return nil
	}
	var opts []sluice.FunctionOption
	switch c {
	case "hub-breaker":
		opts = append(opts, sluice.WithBreaker(sluice.BreakerPolicy{FailureThreshold: 1_000_000, ConsecutiveFailures: 1_000}))
	case "hub-once":
		handler = func(ctx context.Context, events []sluice.Event) error {
			for _, e := range events {
				key := strconv.Itoa(e.Partition) + "/" + strconv.FormatInt(e.SequenceNumber, 10)
				if _, err := app.Once(ctx, key, time.Hour, func(context.Context) error { touch(e); return nil }); err != nil {
					return err
				}
			}
			return nil
		}
	}
	app.Function(handlerFunction, sluice.HubTrigger{Hub: handlerHub, MaxBatchSize: hubBatch}, handler, opts...)
	if err := app.Start(ctx); err != nil {
		return hr, err
	}
	defer func() { _ = app.Stop(context.Background()) }()
	start, cpu0 := time.Now(), cpuSelf()
	done := app.Processed(handlerFunction)
	if err := waitProcessed(ctx, app, hr.total); err != nil {
		return hr, err
	}
	hr.took, hr.cpu, hr.events = time.Since(start), cpuSelf()-cpu0, hr.total-done
	letters, err := app.DeadLetters(ctx, sluice.DeadLetterFilter{Function: handlerFunction}, 1)
	if err != nil {
		return hr, err
	}
	if len(letters) > 0 {
		return hr, fmt.Errorf("the function dead-lettered events: %s", letters[0].Reason)
	}
	return hr, nil
}
