// Command telemetry is Azure's serverless event processing reference
// architecture on Sluice's Go SDK (package pipeline): a simulated fleet of
// drones sends telemetry to the hub telemetry; the function
// telemetry-decode decodes each batch, keeps each drone's latest state in
// the container devices and dead-letters the corrupt events;
// GET /api/devices/<id> answers a drone's state. It prints its progress
// every second. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/examples/telemetry/pipeline"
)

func main() {
	err := run(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "telemetry:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("telemetry", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: telemetry [flags]

Run Sluice with the telemetry pipeline and a simulator of drones sending
to it. Try, in another terminal (sluice's --server defaults to this
program's --http):

  curl -s 127.0.0.1:7070/api/devices/drone-0001
  sluice hub lag telemetry
  sluice deadletters list --limit 5

Flags:
`)
		fs.PrintDefaults()
	}
	dataDir := fs.String("data-dir", filepath.Join(os.TempDir(), "sluice-telemetry"), "data directory")
	httpAddr := fs.String("http", "127.0.0.1:7070", "address of the Sluice HTTP API and of /api/devices/<id>")
	rate := fs.Int("rate", 2000, "events per second the simulator sends (0: no simulator)")
	devices := fs.Int("devices", 1000, "simulated drones")
	corrupt := fs.Float64("corrupt", 0.01, "share of corrupt events, 0 to 1")
	seed := fs.Uint64("seed", 1, "seed of the simulator: the same seed, the same frames")
	batch := fs.Int("batch", 0, "most events of one invocation (default 500)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q; -h for help", fs.Arg(0))
	case *rate < 0 || *devices < 1 || *corrupt < 0 || *corrupt > 1 || *batch < 0:
		return errors.New("--rate and --batch must not be negative, --devices is at least 1, --corrupt is between 0 and 1")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := pipeline.Options{MaxBatchSize: *batch}.WithDefaults()
	// Warnings and errors only: the corrupt events show as one summary of
	// dead letters every 10 s.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	app := sluice.New(sluice.Config{DataDir: *dataDir, HTTPAddr: *httpAddr, Logger: log})
	p := pipeline.Declare(app, opts)
	if err := app.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "telemetry: Sluice at http://%s, data in %s; %d drones, %g%% corrupt, %d events/s. Ctrl-C stops.\n",
		app.Addr(), *dataDir, *devices, *corrupt*100, *rate)

	var sent atomic.Int64
	simDone := make(chan error, 1)
	if *rate > 0 {
		sim := pipeline.NewSimulator(*devices, *corrupt, *seed)
		go func() {
			simDone <- sim.Run(ctx, app, p.Options().Hub, *rate, func(n int) { sent.Add(int64(n)) })
		}()
	}
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	last, lastAt := int64(0), time.Now()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case err := <-simDone:
			if err != nil {
				fmt.Fprintln(os.Stderr, "telemetry: the simulator stopped:", err)
			}
		case now := <-ticker.C:
			s := p.Stats()
			processed := s.Processed()
			rate := float64(processed-last) / now.Sub(lastAt).Seconds()
			last, lastAt = processed, now
			fmt.Printf("sent %d · processed %d (%.0f/s) · lag %d · dead letters %d · device writes %d\n",
				sent.Load(), processed, rate, max(sent.Load()-processed, 0), s.DeadLettered(), s.DevicesUpdated())
		}
	}
	stop()
	fmt.Fprintln(os.Stderr, "telemetry: stopping; in-flight batches finish first")
	return app.Stop(context.Background())
}
