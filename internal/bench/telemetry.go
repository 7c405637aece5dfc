package bench

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
)

// TelemetryOptions configure the telemetry workload: the reference
// pipeline of the seeds end to end (HTTP ingestion in batches → hub →
// function decoding and merging device state → bulk upsert), beside the
// same pipeline built directly on the engines.
type TelemetryOptions struct {
	// DataDir holds one directory per case, removed when it ends. Required.
	DataDir string
	// PostgresDSN, when set, adds the postgres case.
	PostgresDSN string
	// Duration of the throughput phase of each case. Default 60s.
	Duration time.Duration
	// LatencyFor is the duration of the latency phase, at half the rate the
	// throughput phase reached. Default Duration/2 (at least 5s).
	LatencyFor time.Duration
	// Devices sending telemetry; Corrupt is the share of corrupt events.
	// Defaults 1,000 and 0.01.
	Devices int
	Corrupt float64
	// Producers are concurrent HTTP clients, each sending RequestEvents
	// events per request. Defaults 8 and 500.
	Producers, RequestEvents int
	// MaxBatchSize of the function. Default 1,000.
	MaxBatchSize int
	// Partitions of the hub. Default 4.
	Partitions int
	Sync       string
	// Cases to run, from TelemetryCases; postgres needs PostgresDSN.
	// Default sqlite (and postgres when PostgresDSN is set); the engines
	// baseline always runs.
	Cases    []string
	Progress func(string)
}

// TelemetryCases are the cases of the telemetry workload.
var TelemetryCases = []string{"sqlite", "postgres"}

func (o *TelemetryOptions) defaults() {
	o.Duration = cmp.Or(o.Duration, time.Minute)
	o.LatencyFor = cmp.Or(o.LatencyFor, max(o.Duration/2, 5*time.Second))
	o.Devices = cmp.Or(o.Devices, 1000)
	if o.Corrupt == 0 {
		o.Corrupt = 0.01
	}
	o.Producers = cmp.Or(o.Producers, 8)
	o.RequestEvents = cmp.Or(o.RequestEvents, 500)
	o.MaxBatchSize = cmp.Or(o.MaxBatchSize, 1000)
	o.Partitions = cmp.Or(o.Partitions, 4)
	o.Sync = cmp.Or(o.Sync, sluice.SyncAlways)
	if len(o.Cases) == 0 {
		o.Cases = []string{"sqlite"}
		if o.PostgresDSN != "" {
			o.Cases = TelemetryCases
		}
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
}

// telemetryTarget is a pipeline under load.
type telemetryTarget struct {
	url, contentType string
	processed        func() int64 // events finished with (stored or dead-lettered)
	failure          func() error // a failure of the pipeline, if any
	close            func()
}

// telemetryRun is what one case measured.
type telemetryRun struct {
	events     int64         // processed in the throughput window
	took       time.Duration // the throughput window
	cpu        time.Duration // this process's CPU in the window
	latRate    float64       // the rate of the latency phase
	p50, p99   float64
	latSamples int
}

// RunTelemetry runs the telemetry workload and reports one Result per
// case, with the engines pipeline as its baseline.
func RunTelemetry(ctx context.Context, o TelemetryOptions, report func(Result)) error {
	o.defaults()
	for _, c := range o.Cases {
		if !slices.Contains(TelemetryCases, c) {
			return fmt.Errorf("unknown case %q (cases: %s)", c, strings.Join(TelemetryCases, ", "))
		}
		if c == "postgres" && o.PostgresDSN == "" {
			return errors.New("the postgres case needs a PostgreSQL URL")
		}
	}
	switch {
	case o.DataDir == "":
		return errors.New("DataDir is required")
	case o.Corrupt < 0 || o.Corrupt >= 1:
		return fmt.Errorf("corrupt share %g must be in [0, 1)", o.Corrupt)
	case o.Devices < 1 || o.Producers < 1 || o.RequestEvents < 1 || o.MaxBatchSize < 1 || o.Partitions < 1:
		return errors.New("the options Devices, Producers, RequestEvents, MaxBatchSize and Partitions must be at least 1")
	case o.Duration < time.Second || o.LatencyFor < time.Second:
		return errors.New("the options Duration and LatencyFor must be at least 1s")
	}
	failed := &failures{workload: "telemetry"}
	o.Progress("engines: the same pipeline on JetStream and SQLite directly (the baseline)")
	base, err := runTelemetryCase(ctx, o, "engines")
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		failed.add(report, "engines", err) // the cases are reported without a ratio
	}
	for _, c := range o.Cases {
		o.Progress(c + ": the Sluice pipeline")
		run, err := runTelemetryCase(ctx, o, c)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed.add(report, c, err)
			continue
		}
		r := Result{Workload: "telemetry", Case: c, Events: run.events, Seconds: run.took.Seconds(), EventsPerSec: rate(run.events, run.took),
			P50ms: run.p50, P99ms: run.p99, LatencyAtRate: run.latRate, Sync: o.Sync}
		baseNote := "baseline engines: failed"
		if base.took > 0 {
			r.setBaseline("engines", base.events, base.took)
			baseNote = fmt.Sprintf("baseline engines: %.0f events/s, p50 %.1f ms, p99 %.1f ms at %.0f events/s", rate(base.events, base.took), base.p50, base.p99, base.latRate)
		}
		r.Note = strings.Join([]string{
			fmt.Sprintf("HTTP ingestion (%d producers, %d events per request, envelope JSON) → hub of %d partitions → Go function (JSON decode, merge into each device's state, one bulk upsert per batch of up to %d) → %s; %d devices, %.1f%% corrupt events dead-lettered",
				o.Producers, o.RequestEvents, o.Partitions, o.MaxBatchSize, c, o.Devices, o.Corrupt*100),
			fmt.Sprintf("throughput over %s after a warm-up, the producers kept at most %d events ahead of processing; CPU %.1f µs per event (this process: ingestion, engine, function, store)", run.took.Round(time.Millisecond), maxAhead, float64(run.cpu.Microseconds())/float64(max(run.events, 1))),
			fmt.Sprintf("latency from the request's send to the device's document written, %d samples at %.0f events/s (half the measured rate)", run.latSamples, run.latRate),
			baseNote,
		}, "; ")
		r.PeakRSSMiB = PeakRSSMiB()
		report(r)
	}
	return failed.err()
}

// runTelemetryCase starts the case's pipeline, finds its highest rate, then
// measures latency at half of it.
func runTelemetryCase(ctx context.Context, o TelemetryOptions, c string) (telemetryRun, error) {
	var run telemetryRun
	dir := filepath.Join(o.DataDir, "telemetry-"+c)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return run, fmt.Errorf("make the case's directory (it must not exist yet): %w", err)
	}
	defer os.RemoveAll(dir)
	lat := &latencies{}
	target, err := startTelemetryTarget(ctx, o, c, dir, lat)
	if err != nil {
		return run, err
	}
	defer target.close()

	// Throughput: as fast as the producers can, counted after a warm-up.
	load := newTelemetryLoad(o, target)
	load.start(ctx, 0)
	warm := min(o.Duration/5, 5*time.Second)
	if err := sleepCtx(ctx, warm); err != nil {
		return run, err
	}
	n0, t0, cpu0 := target.processed(), time.Now(), cpuSelf()
	deadline := t0.Add(o.Duration - warm)
	for time.Now().Before(deadline) {
		if err := cmp.Or(load.failure(), target.failure()); err != nil {
			load.stop()
			return run, err
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			load.stop()
			return run, err
		}
		o.Progress(fmt.Sprintf("%s: %d sent, %d processed (%.0f/s)", c, load.sent.Load(), target.processed(),
			float64(target.processed()-n0)/time.Since(t0).Seconds()))
	}
	run.events, run.took, run.cpu = target.processed()-n0, time.Since(t0), cpuSelf()-cpu0
	load.stop()
	if err := drain(ctx, load, target); err != nil {
		return run, err
	}

	// Latency at half the rate reached.
	run.latRate = rate(run.events, run.took) / 2
	o.Progress(fmt.Sprintf("%s: latency at %.0f events/s for %s", c, run.latRate, o.LatencyFor))
	load = newTelemetryLoad(o, target)
	lat.start()
	load.start(ctx, run.latRate)
	if err := sleepCtx(ctx, o.LatencyFor); err != nil {
		load.stop()
		return run, err
	}
	load.stop()
	if err := drain(ctx, load, target); err != nil {
		return run, err
	}
	samples := lat.stop()
	run.latSamples = len(samples)
	run.p50, run.p99 = percentiles(samples)
	return run, cmp.Or(load.failure(), target.failure())
}

// drain waits until the target processed every event sent.
func drain(ctx context.Context, load *telemetryLoad, target *telemetryTarget) error {
	want := load.sent.Load()
	last, since := int64(-1), time.Now()
	for {
		n := target.processed()
		if n >= want {
			return nil
		}
		if err := target.failure(); err != nil {
			return err
		}
		if n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > stallAfter {
			return fmt.Errorf("stalled: %d of %d events processed", n, want)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// latencies collects end-to-end latencies while started.
type latencies struct {
	on atomic.Bool
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) start() {
	l.mu.Lock()
	l.d = l.d[:0]
	l.mu.Unlock()
	l.on.Store(true)
}

func (l *latencies) stop() []time.Duration {
	l.on.Store(false)
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.d)
}

// addSent records the latency of frames sent at the given unix
// nanoseconds, written now.
func (l *latencies) addSent(sent []int64) {
	if !l.on.Load() || len(sent) == 0 {
		return
	}
	now := time.Now().UnixNano()
	l.mu.Lock()
	for _, ts := range sent {
		if ts > 0 {
			l.d = append(l.d, time.Duration(now-ts))
		}
	}
	l.mu.Unlock()
}

// maxAhead bounds the events sent but not yet processed while producers
// run unpaced.
const maxAhead = 200_000

// telemetryLoad is the producers: HTTP clients POSTing batches of frames.
type telemetryLoad struct {
	o      TelemetryOptions
	target *telemetryTarget
	client *http.Client
	sent   atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
}

func newTelemetryLoad(o TelemetryOptions, target *telemetryTarget) *telemetryLoad {
	tr := &http.Transport{MaxIdleConnsPerHost: o.Producers, MaxConnsPerHost: o.Producers}
	return &telemetryLoad{o: o, target: target, client: &http.Client{Transport: tr}}
}

// start starts the producers, at eventsPerSec in all (0: as fast as they
// can).
func (l *telemetryLoad) start(ctx context.Context, eventsPerSec float64) {
	ctx, l.cancel = context.WithCancel(ctx)
	for i := range l.o.Producers {
		l.wg.Go(func() { l.produce(ctx, uint64(i), eventsPerSec) })
	}
}

func (l *telemetryLoad) stop() {
	l.cancel()
	l.wg.Wait()
	l.client.CloseIdleConnections()
}

func (l *telemetryLoad) failure() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.err
}

func (l *telemetryLoad) produce(ctx context.Context, seed uint64, eventsPerSec float64) {
	gen := newBodyGen(l.o.Devices, l.o.Corrupt, seed)
	var tick *time.Ticker
	if eventsPerSec > 0 {
		every := time.Duration(float64(time.Second) * float64(l.o.RequestEvents*l.o.Producers) / eventsPerSec)
		tick = time.NewTicker(max(every, time.Millisecond))
		defer tick.Stop()
	}
	var body bytes.Buffer
	for ctx.Err() == nil {
		// Unpaced producers send faster than the pipeline processes; more
		// than maxAhead events in the hub would only grow its backlog
		// (and the drain after the phase), not the rate measured.
		for l.sent.Load()-l.target.processed() > maxAhead && ctx.Err() == nil {
			time.Sleep(2 * time.Millisecond)
		}
		if tick != nil {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		body.Reset()
		gen.request(&body, l.o.RequestEvents, time.Now().UnixNano())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, l.target.url, bytes.NewReader(body.Bytes()))
		req.Header.Set("Content-Type", l.target.contentType)
		resp, err := l.client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				l.setErr(err)
			}
			return
		}
		msg := new(bytes.Buffer)
		_, _ = msg.ReadFrom(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode >= 300 {
			l.setErr(fmt.Errorf("ingestion answered %s: %s", resp.Status, strings.TrimSpace(msg.String())))
			return
		}
		l.sent.Add(int64(l.o.RequestEvents))
	}
}

func (l *telemetryLoad) setErr(err error) {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	if l.err == nil {
		l.err = err
	}
}
