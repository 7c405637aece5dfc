package bench

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/funcapp"
	"github.com/sluicehq/sluice/internal/handler"
)

// HandlerOptions configure the handler workload.
type HandlerOptions struct {
	// DataDir holds one directory per case, named after the case, which
	// must not exist yet; each is removed when its case ends. Required.
	DataDir string
	// Handler is the handler executable to measure: it must answer every
	// POST with {"Outputs":{}}. A name without a slash is looked up on the
	// PATH. Default: the trivial handler of internal/bench/handlerapp, built with
	// the Go toolchain (`go` on the PATH) into a temporary directory.
	Handler string
	// Messages are queued for each batch-1 case. Default 20,000.
	Messages int64
	// Events are published for each batch-100 case. Default 200,000.
	Events int64
	// EventSize is the size of each message's and event's body in bytes,
	// a JSON object padded to it. Default 256.
	EventSize int
	// Partitions of the hub. Default 4.
	Partitions int
	// QueueBatchSize is host.json's extensions.queues.batchSize (1..32):
	// the messages fetched at once; BatchSize/2 per CPU are invoked at
	// once. Default 16, as Azure.
	QueueBatchSize int
	// Mode is the payload encoding of the handler cases. Default compat.
	Mode handler.Mode
	// Sync is the engine's durability (engine.SyncAlways by default).
	Sync string
	// Cases to run, from HandlerCases; they run in that order. Default
	// all. A handler case whose baseline case is not among them measures
	// the baseline anyway, without reporting it.
	Cases []string
	// Progress, if set, is called with a line of progress now and then.
	Progress func(string)
}

// HandlerCases are the cases of the handler workload, in the order they
// run: the in-process baselines first, so that the handler cases can be
// reported beside them.
//
//   - sdk-batch-100: an in-process Go function on a hub, batches of 100.
//   - sdk-batch-1: an in-process Go function on a queue, one message each.
//   - batch-1: the handler on a queue (queueTrigger), one message per
//     invocation.
//   - batch-100: the handler on a hub (eventHubTrigger, cardinality many,
//     maxEventBatchSize 100).
var HandlerCases = []string{"sdk-batch-100", "sdk-batch-1", "batch-1", "batch-100"}

// baselineOf is the in-process case a handler case is compared with: the
// same workload run by a Go function in the process.
func baselineOf(c string) string { return "sdk-" + c }

// The workload's resources and its one function.
const (
	handlerHub      = "bench-hub"
	handlerQueue    = "bench-queue"
	handlerFunction = "noop"
	hubBatch        = 100
	// fillBatch is the events of each publish, and the messages of each
	// send (a queue stores up to 1,000 as one atomic batch), that fill
	// a case's hub or queue; fillers of them run at once.
	fillBatch, fillers = 1000, 4
	// stallAfter fails a case when nothing was processed for this long.
	stallAfter = time.Minute
)

func (o *HandlerOptions) defaults() {
	o.Messages = cmp.Or(o.Messages, 20_000)
	o.Events = cmp.Or(o.Events, 200_000)
	o.EventSize = cmp.Or(o.EventSize, 256)
	o.Partitions = cmp.Or(o.Partitions, 4)
	o.QueueBatchSize = cmp.Or(o.QueueBatchSize, funcapp.DefaultQueueBatchSize)
	o.Sync = cmp.Or(o.Sync, engine.SyncAlways)
	if len(o.Cases) == 0 {
		o.Cases = HandlerCases
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
}

func (o *HandlerOptions) validate() error {
	for _, c := range o.Cases {
		if !slices.Contains(HandlerCases, c) {
			return fmt.Errorf("unknown case %q (cases: %s)", c, strings.Join(HandlerCases, ", "))
		}
	}
	switch {
	case o.DataDir == "":
		return errors.New("DataDir is required")
	case o.Messages < 1 || o.Events < 1 || o.EventSize < 1 || o.Partitions < 1:
		return errors.New("the options Messages, Events, EventSize and Partitions must be at least 1")
	case o.QueueBatchSize < 1 || o.QueueBatchSize > funcapp.MaxQueueBatchSize:
		return fmt.Errorf("the option QueueBatchSize must be 1 to %d (host.json extensions.queues.batchSize)", funcapp.MaxQueueBatchSize)
	}
	return nil
}

// RunHandler runs the handler workload: a trivial custom handler (or
// o.Handler) invoked over the custom-handler protocol, one queue message
// per invocation and batches of 100 hub events, beside the same work done
// by an in-process Go function. Each case fills its queue or hub first,
// with no function running, then starts an app whose function drains it;
// the clock starts when the app has started and stops when every message
// or event was processed. A case fails unless all were processed and none
// was dead-lettered.
func RunHandler(ctx context.Context, o HandlerOptions, report func(Result)) error {
	o.defaults()
	if err := o.validate(); err != nil {
		return err
	}
	withHandler := slices.ContainsFunc(o.Cases, func(c string) bool { return !isSDKCase(c) })
	exe := ""
	if withHandler {
		var cleanup func()
		var err error
		if exe, cleanup, err = handlerExecutable(ctx, o); err != nil {
			return err
		}
		defer cleanup()
	}
	run := map[string]handlerRun{}
	failed := &failures{workload: "handler"}
	for _, c := range HandlerCases {
		asked := slices.Contains(o.Cases, c)
		needed := slices.ContainsFunc(o.Cases, func(h string) bool { return !isSDKCase(h) && baselineOf(h) == c })
		if !asked && !needed {
			continue
		}
		if !asked {
			o.Progress(c + ": measured as the baseline of the handler cases, not reported")
		}
		hr, err := runHandlerCase(ctx, o, c, exe)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed.add(report, c, err) // cases measured against it report no ratio
			continue
		}
		run[c] = hr
		o.Progress(fmt.Sprintf("%s: %.0f %s/s", c, rate(hr.events, hr.took), hr.unit()))
		if asked {
			report(handlerResult(o, c, run))
		}
	}
	return failed.err()
}

func isSDKCase(c string) bool { return strings.HasPrefix(c, "sdk-") }

func isHubCase(c string) bool { return strings.HasSuffix(c, "-100") }

// handlerRun is what one case measured.
type handlerRun struct {
	hub bool
	// total were filled and processed; events of them were processed
	// while the clock ran, which took took; the rest were processed
	// while the app started, which took started.
	total, events  int64
	took, started  time.Duration
	cpu, childCPU  time.Duration // this process's CPU while timed; the handler's while it ran
	handler, where string        // the handler executable; how the inputs were stored
}

func (r handlerRun) unit() string {
	if r.hub {
		return "events"
	}
	return "messages"
}

func handlerResult(o HandlerOptions, c string, run map[string]handlerRun) Result {
	hr := run[c]
	r := Result{Workload: "handler", Case: c, Events: hr.events, Seconds: hr.took.Seconds(), EventsPerSec: rate(hr.events, hr.took), Sync: o.Sync}
	var note []string
	switch {
	case c == "sdk-batch-100":
		note = append(note, fmt.Sprintf("in-process Go function (sluice.HubTrigger, MaxBatchSize %d), doing nothing, on a hub of %d partitions", hubBatch, o.Partitions))
	case c == "sdk-batch-1":
		note = append(note, fmt.Sprintf("in-process Go queue function (sluice.QueueTrigger, BatchSize %d), doing nothing", o.QueueBatchSize))
	case c == "batch-1":
		note = append(note, fmt.Sprintf("%s over the custom-handler protocol (%s payloads): queueTrigger, one message per invocation, host.json queues.batchSize %d; events_per_sec is invocations/s", handlerName(o), o.Mode, o.QueueBatchSize))
	default:
		note = append(note, fmt.Sprintf("%s over the custom-handler protocol (%s payloads): eventHubTrigger, cardinality many, maxEventBatchSize %d, on a hub of %d partitions; events_per_sec counts events (invocations/s is about a %dth of it)",
			handlerName(o), o.Mode, hubBatch, o.Partitions, hubBatch))
	}
	note = append(note, fmt.Sprintf("%d %s of %d bytes %s before the app started; timed from the end of app start (%s, not timed; %d processed during it, not counted) until all were processed",
		hr.total, hr.unit(), o.EventSize, hr.where, hr.started.Round(time.Millisecond), hr.total-hr.events))
	cpu := fmt.Sprintf("CPU while timed: sluice %.2fs", hr.cpu.Seconds())
	if !isSDKCase(c) {
		cpu += fmt.Sprintf(", handler process %.2fs (its whole run)", hr.childCPU.Seconds())
	}
	note = append(note, cpu)
	if base, ok := run[baselineOf(c)]; ok && !isSDKCase(c) {
		r.setBaseline(baselineOf(c), base.events, base.took)
		note = append(note, "the ratio compares it with the same workload run by an in-process Go function doing nothing ("+baselineOf(c)+")")
	}
	r.Note = strings.Join(note, "; ")
	r.PeakRSSMiB = PeakRSSMiB()
	return r
}

// handlerName names the handler measured, for notes.
func handlerName(o HandlerOptions) string {
	if o.Handler != "" {
		return "handler " + o.Handler
	}
	return "the trivial Go handler of internal/bench/handlerapp (net/http, answers {\"Outputs\":{}} without decoding)"
}

// runHandlerCase runs case c in a data directory of its own: it fills the
// case's queue or hub with an app running no function, then starts an app
// whose function processes them (through the handler exe, unless c is an
// SDK case), and times it. Each phase's CPU samples carry the profiler
// labels case=<c> and phase=fill or phase=run, for
// `go tool pprof -tagfocus phase=run`.
func runHandlerCase(ctx context.Context, o HandlerOptions, c, exe string) (hr handlerRun, err error) {
	dir := filepath.Join(o.DataDir, c)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return hr, fmt.Errorf("make the case's directory (it must not exist yet): %w", err)
	}
	defer os.RemoveAll(dir)
	hr = handlerRun{hub: isHubCase(c), total: o.Messages, handler: exe}
	if hr.hub {
		hr.total = o.Events
	}
	config := sluice.Config{DataDir: filepath.Join(dir, "data"), InstanceID: "bench", Sync: o.Sync, Logger: slog.New(slog.DiscardHandler)}
	pprof.Do(ctx, pprof.Labels("case", c, "phase", "fill"), func(ctx context.Context) { err = fillCase(ctx, o, c, config, &hr) })
	if err != nil {
		return hr, fmt.Errorf("fill: %w", err)
	}
	pprof.Do(ctx, pprof.Labels("case", c, "phase", "run"), func(ctx context.Context) { err = drainCase(ctx, o, c, config, dir, &hr) })
	return hr, err
}

// fillCase fills the case's hub or queue with an app running no function.
func fillCase(ctx context.Context, o HandlerOptions, c string, config sluice.Config, hr *handlerRun) error {
	fill := sluice.New(config)
	if hr.hub {
		fill.Hub(sluice.HubConfig{Name: handlerHub, Partitions: o.Partitions})
	} else {
		fill.Queue(sluice.QueueConfig{Name: handlerQueue})
	}
	if err := fill.Start(ctx); err != nil {
		return err
	}
	if hr.hub {
		hr.where = fmt.Sprintf("published to the hub in publishes of %d", fillBatch)
		o.Progress(fmt.Sprintf("%s: publish %d events of %d bytes to a hub of %d partitions", c, hr.total, o.EventSize, o.Partitions))
	} else {
		hr.where = fmt.Sprintf("sent to the queue in sends of %d", fillBatch)
		o.Progress(fmt.Sprintf("%s: send %d messages of %d bytes to a queue", c, hr.total, o.EventSize))
	}
	err := fillApp(ctx, fill, hr.hub, hr.total, benchBody(o.EventSize))
	return errors.Join(err, fill.Stop(context.Background()))
}

// drainCase starts an app on the filled data whose function processes
// what fillCase stored, and times it until all were processed.
func drainCase(ctx context.Context, o HandlerOptions, c string, config sluice.Config, dir string, hr *handlerRun) error {
	app := sluice.New(config)
	var runner *handler.Runner
	if isSDKCase(c) {
		declareSDK(app, o, hr.hub)
	} else {
		appDir := filepath.Join(dir, "app")
		if err := writeHandlerApp(appDir, hr.handler, o, hr.hub); err != nil {
			return err
		}
		fa, err := funcapp.Load(appDir, funcapp.Options{Env: map[string]string{}})
		if err != nil {
			return fmt.Errorf("load the app folder: %w", err)
		}
		if runner, err = handler.Prepare(app, fa, handler.AppOptions{Mode: o.Mode, Create: true, Partitions: o.Partitions, Logger: config.Logger}); err != nil {
			return err
		}
	}
	childBefore := cpuChildren()
	if runner != nil {
		o.Progress(fmt.Sprintf("%s: start the handler %s", c, hr.handler))
		if err := runner.Start(ctx); err != nil {
			return err
		}
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = app.Stop(context.Background())
			if runner != nil {
				_ = runner.Stop(context.Background())
			}
		}
	}
	defer stop()
	o.Progress(fmt.Sprintf("%s: start the app; its function processes the %d %s", c, hr.total, hr.unit()))
	begin := time.Now()
	if err := app.Start(ctx); err != nil {
		return err
	}
	start, cpu0 := time.Now(), cpuSelf()
	done := app.Processed(handlerFunction)
	if err := waitProcessed(ctx, app, hr.total); err != nil {
		return err
	}
	hr.took, hr.cpu = time.Since(start), cpuSelf()-cpu0
	hr.started, hr.events = start.Sub(begin), hr.total-done

	// Every input was processed once, and none failed for good.
	if n := app.Processed(handlerFunction); n != hr.total {
		return fmt.Errorf("%d %s processed, want %d", n, hr.unit(), hr.total)
	}
	letters, err := app.DeadLetters(ctx, sluice.DeadLetterFilter{Function: handlerFunction}, 1)
	if err != nil {
		return fmt.Errorf("list dead letters: %w", err)
	}
	if len(letters) > 0 {
		return fmt.Errorf("the function dead-lettered %s (after %d attempts: %s); the handler must answer every POST with {\"Outputs\":{}}",
			hr.unit(), letters[0].Attempts, letters[0].Reason)
	}
	stop()
	hr.childCPU = cpuChildren() - childBefore
	return nil
}

// benchBody is a JSON object of size bytes (at least its braces).
func benchBody(size int) []byte {
	const head, tail = `{"pad":"`, `"}`
	pad := max(size-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("x", pad) + tail)
}

// fillApp publishes (hub) or sends (queue) total copies of body, from
// fillers goroutines in calls of fillBatch.
func fillApp(ctx context.Context, app *sluice.App, hub bool, total int64, body []byte) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, fillers)
	for range fillers {
		wg.Go(func() {
			events := make([]sluice.Event, fillBatch)
			msgs := make([]sluice.OutgoingMessage, fillBatch)
			for i := range fillBatch {
				events[i].Body, msgs[i].Body = body, body
			}
			for {
				n := min(fillBatch, total-next.Add(fillBatch)+fillBatch)
				if n <= 0 {
					return
				}
				var err error
				if hub {
					_, err = app.Publish(ctx, handlerHub, events[:n]...)
				} else {
					_, err = app.Send(ctx, handlerQueue, msgs[:n]...)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// declareSDK declares the in-process baseline: the hub or queue and a
// function doing nothing, as the handler's app folder declares them.
func declareSDK(app *sluice.App, o HandlerOptions, hub bool) {
	if hub {
		app.Hub(sluice.HubConfig{Name: handlerHub, Partitions: o.Partitions})
		app.Function(handlerFunction, sluice.HubTrigger{Hub: handlerHub, MaxBatchSize: hubBatch},
			func(context.Context, []sluice.Event) error { return nil })
		return
	}
	app.Queue(sluice.QueueConfig{Name: handlerQueue})
	app.QueueFunction(handlerFunction, sluice.QueueTrigger{Queue: handlerQueue, BatchSize: o.QueueBatchSize, MaxDequeueCount: funcapp.DefaultMaxDequeueCount},
		func(context.Context, *sluice.Message) error { return nil })
}

// writeHandlerApp writes an app folder in dir whose one function, noop,
// is triggered by the workload's hub or queue and runs in exe.
func writeHandlerApp(dir, exe string, o HandlerOptions, hub bool) error {
	trigger := fmt.Sprintf(`{"type": "queueTrigger", "direction": "in", "name": "message", "queueName": %q, "connection": "AzureWebJobsStorage"}`, handlerQueue)
	if hub {
		trigger = fmt.Sprintf(`{"type": "eventHubTrigger", "direction": "in", "name": "events", "eventHubName": %q, "cardinality": "many", "connection": "EventHubConnection"}`, handlerHub)
	}
	files := map[string]string{
		funcapp.HostFile: fmt.Sprintf(`{
  "version": "2.0",
  "customHandler": {"description": {"defaultExecutablePath": %q}},
  "extensions": {"eventHubs": {"maxEventBatchSize": %d}, "queues": {"batchSize": %d}}
}
`, exe, hubBatch, o.QueueBatchSize),
		filepath.Join(handlerFunction, funcapp.FunctionFile): `{"bindings": [` + trigger + "]}\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// waitProcessed waits until the function processed want inputs, and fails
// when it makes no progress for stallAfter.
func waitProcessed(ctx context.Context, app *sluice.App, want int64) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	last, progressed := int64(-1), time.Now()
	for {
		n := app.Processed(handlerFunction)
		if n >= want {
			return nil
		}
		if n != last {
			last, progressed = n, time.Now()
		} else if time.Since(progressed) > stallAfter {
			return fmt.Errorf("stalled: %d of %d processed, none for %s", n, want, stallAfter)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

//go:embed handlerapp/main.go
var handlerSource []byte

// ErrNoGoToolchain is returned by RunHandler when it must build its
// trivial handler (no HandlerOptions.Handler) and `go` is not on the PATH.
var ErrNoGoToolchain = errors.New("the handler benchmark builds its trivial handler with the Go toolchain, and `go` is not on the PATH: install Go (https://go.dev/dl/), or give a handler of your own (--handler PATH) that answers every POST with {\"Outputs\":{}}")

// handlerExecutable returns the absolute path of o.Handler, or builds the
// trivial handler into a temporary directory that cleanup removes.
func handlerExecutable(ctx context.Context, o HandlerOptions) (exe string, cleanup func(), err error) {
	if o.Handler != "" {
		if exe, err = exec.LookPath(o.Handler); err == nil {
			exe, err = filepath.Abs(exe)
		}
		if err != nil {
			return "", nil, fmt.Errorf("handler %s: %w", o.Handler, err)
		}
		return exe, func() {}, nil
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", nil, ErrNoGoToolchain
	}
	o.Progress("build the trivial handler (internal/bench/handlerapp) with the Go toolchain")
	return buildHandler(ctx, handlerSource)
}

// buildHandler builds a standard-library-only main package of one file,
// src, into a temporary directory that cleanup removes.
func buildHandler(ctx context.Context, src []byte) (exe string, cleanup func(), err error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", nil, ErrNoGoToolchain
	}
	dir, err := os.MkdirTemp("", "sluice-bench-handler-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	// A module of its own, outside any workspace: nothing to download.
	err = errors.Join(
		os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644),
		os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module sluicebenchhandler\n\ngo 1.22\n"), 0o644),
	)
	if err == nil {
		exe = filepath.Join(dir, "handler")
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", exe, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
		if out, berr := cmd.CombinedOutput(); berr != nil {
			err = fmt.Errorf("build the handler with %s: %w\n%s", goTool, berr, out)
		}
	}
	if err != nil {
		cleanup()
		return "", nil, err
	}
	return exe, cleanup, nil
}
