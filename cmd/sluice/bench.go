package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/sluicehq/sluice/bench"
)

func runBench(args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		usage(stdout, "sluice bench", "Measure Sluice against the same work done directly on the engine, in the same run.",
			[]command{{"hub", "publish and consume through hubs vs. one JetStream message per event", nil}})
		if len(args) == 0 {
			return usagef("missing workload")
		}
		return nil
	}
	if args[0] != "hub" {
		return usagef("unknown workload %q; run 'sluice bench --help'", args[0])
	}
	fs := flagSet("bench hub", "sluice bench hub [flags]", `
Measure hub publishing (packed records, durable on return) and the hub
trigger (publish -> no-op function -> checkpoint), each beside a baseline of
the same events sent as one JetStream message each on the same server.
Runs on a fresh embedded engine in a temporary directory unless --data-dir
or --nats-url is given. Prints one line per case; --json prints one JSON
object per case.`)
	asJSON := fs.Bool("json", false, "print one JSON object per case")
	events := fs.Int64("events", 2_000_000, "events per case")
	baseEvents := fs.Int64("baseline-events", 200_000, "events for the per-message baselines")
	size := fs.Int("size", 256, "event size in bytes")
	partitions := fs.Int("partitions", 4, "partitions of the benchmark hub")
	publishers := fs.Int("publishers", 64, "concurrent publishers")
	batch := fs.Int("batch", 100, "events per publish call")
	syncMode := fs.String("sync", "always", "durability: always or interval")
	cases := fs.String("cases", "publish,consume,drain", "cases to run: publish, consume (publish and process at once), drain (process a backlog)")
	dataDir := fs.String("data-dir", "", "data directory (default: a temporary one, removed afterwards)")
	natsURL := fs.String("nats-url", "", "measure an external NATS server instead")
	latencyFor := fs.Duration("latency-duration", 3*time.Second, "how long to measure latency at half rate")
	linger := fs.Duration("linger", 0, "publishers' linger window (default: the hub default, 1ms)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (for go tool pprof)")
	memProfile := fs.String("memprofile", "", "write a heap profile, taken when the in-use heap peaked, to this file")
	if _, err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *dataDir == "" && *natsURL == "" {
		dir, err := os.MkdirTemp("", "sluice-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*dataDir = dir
	}
	ctx, stop := signalContext()
	defer stop()
	if *memProfile != "" {
		done := make(chan struct{})
		defer func() { close(done) }()
		go peakHeapProfile(*memProfile, done)
	}
	enc := json.NewEncoder(stdout)
	return bench.RunHub(ctx, bench.HubOptions{
		DataDir: *dataDir, NATSURL: *natsURL, Sync: *syncMode, Events: *events, BaselineEvents: *baseEvents,
		EventSize: *size, Partitions: *partitions, Publishers: *publishers, Batch: *batch,
		LatencyFor: *latencyFor, Linger: *linger, Cases: strings.Split(*cases, ","),
		Progress: func(s string) { fmt.Fprintln(os.Stderr, "bench:", s) },
	}, func(r bench.Result) {
		if *asJSON {
			_ = enc.Encode(r)
			return
		}
		fmt.Fprintf(stdout, "%s/%s: %d events in %.2fs = %.0f events/s; baseline %s %.0f events/s (x%.1f)",
			r.Workload, r.Case, r.Events, r.Seconds, r.EventsPerSec, r.Baseline, r.BaselineEventsPerSec, r.Ratio)
		if r.P99ms > 0 {
			fmt.Fprintf(stdout, "; latency at %.0f events/s p50 %.2fms p99 %.2fms", r.LatencyAtRate, r.P50ms, r.P99ms)
		}
		fmt.Fprintf(stdout, "; peak RSS %.0f MiB\n", r.PeakRSSMiB)
	})
}

// peakHeapProfile samples the heap every 200ms and writes a heap profile to
// path each time the in-use heap reaches a new peak, until done is closed.
func peakHeapProfile(path string, done <-chan struct{}) {
	var peak uint64
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-done:
			return
		case <-ticker.C:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse <= peak {
			continue
		}
		peak = ms.HeapInuse
		if f, err := os.Create(path); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
}
