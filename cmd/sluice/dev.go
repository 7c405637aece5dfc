package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluicehq/sluice"
)

// instanceFlags are the flags shared by dev and serve.
type instanceFlags struct {
	dataDir, natsURL, natsListen, http, sync, logLevel, docStore string
	breakerWebhook, configFile                                   string
	leaseExpiry                                                  time.Duration
	fs                                                           *flag.FlagSet
}

func addInstanceFlags(fs *flag.FlagSet, dataDir string) *instanceFlags {
	f := &instanceFlags{fs: fs}
	fs.StringVar(&f.configFile, "config", os.Getenv("SLUICE_CONFIG"), "configuration file: any of these flags by name, and functions' breaker and timeout settings (env SLUICE_CONFIG; default: "+defaultConfigFile+" if it exists)")
	fs.StringVar(&f.dataDir, "data-dir", envOr("SLUICE_DATA_DIR", dataDir), "data directory of the embedded engine (env SLUICE_DATA_DIR)")
	fs.StringVar(&f.natsURL, "nats-url", os.Getenv("SLUICE_NATS_URL"), "use an external NATS server or cluster instead of the embedded one (env SLUICE_NATS_URL)")
	fs.StringVar(&f.natsListen, "nats-listen", os.Getenv("SLUICE_NATS_LISTEN"), "let other instances reach the embedded NATS at host:port (env SLUICE_NATS_LISTEN; default: no port)")
	fs.StringVar(&f.docStore, "docstore", os.Getenv("SLUICE_DOCSTORE"), "PostgreSQL URL of the document store, shared by instances (env SLUICE_DOCSTORE; default: SQLite, docs.db in the data directory)")
	fs.StringVar(&f.http, "http", envOr("SLUICE_HTTP", "127.0.0.1:7070"), "address of the HTTP API, /metrics and health checks (env SLUICE_HTTP)")
	fs.StringVar(&f.sync, "sync", envOr("SLUICE_SYNC", sluice.SyncAlways), "durability: always (acknowledged = fsynced) or interval (fsync every second)")
	fs.DurationVar(&f.leaseExpiry, "lease-expiry", 30*time.Second, "how long a dead instance keeps its partitions before others take over")
	fs.StringVar(&f.breakerWebhook, "breaker-webhook", os.Getenv("SLUICE_BREAKER_WEBHOOK"), "URL that receives every circuit breaker transition as a JSON POST (env SLUICE_BREAKER_WEBHOOK)")
	fs.StringVar(&f.logLevel, "log-level", envOr("SLUICE_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	return f
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (f *instanceFlags) config() (sluice.Config, error) {
	path := cmp.Or(f.configFile, defaultConfigFile)
	fns, err := loadConfigFile(f.fs, path, f.configFile != "")
	if err != nil {
		return sluice.Config{}, err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return sluice.Config{}, usagef("--log-level %q: use debug, info, warn or error", f.logLevel)
	}
	if f.sync != sluice.SyncAlways && f.sync != sluice.SyncInterval {
		return sluice.Config{}, usagef("--sync %q: use always or interval", f.sync)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return sluice.Config{
		DataDir: f.dataDir, NATSURL: f.natsURL, NATSListen: f.natsListen, HTTPAddr: f.http, DocStore: f.docStore,
		Sync: f.sync, LeaseExpiry: f.leaseExpiry, Logger: logger, BreakerWebhook: f.breakerWebhook, Functions: fns,
		FunctionKeys: splitList(os.Getenv("SLUICE_FUNCTION_KEYS")), AdminKey: os.Getenv("SLUICE_ADMIN_KEY"),
	}, nil
}

// signalContext is cancelled on the first SIGINT or SIGTERM, which starts a
// graceful shutdown; a second signal exits at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "\nstopping: finishing in-flight batches (press Ctrl-C again to exit at once)")
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "exiting now")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(sigs); cancel() }
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func runServe(args []string) error {
	fs := flagSet("serve", "sluice serve [flags]", `
Run a Sluice instance: the engine (embedded, or external with --nats-url),
the HTTP API at --http, /metrics, /healthz and /readyz. Several instances
pointed at the same NATS server share the work.

With --app, it also runs an Azure Functions app folder written for custom
handlers: it starts the folder's handler process and wires each function's
trigger (eventHubTrigger, queueTrigger, cosmosDBTrigger, timerTrigger,
httpTrigger) and outputs to Sluice hubs, queues, containers and routes of
the same names. HTTP functions that ask for a key take the keys in
SLUICE_FUNCTION_KEYS (comma-separated) and SLUICE_ADMIN_KEY.

Example:
  sluice serve --app ./myapp --create`)
	inst := addInstanceFlags(fs, "sluice-data")
	af := addAppFlags(fs, false)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := inst.config()
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	app := sluice.New(cfg)
	r, err := af.prepare(app, cfg)
	if err != nil {
		return err
	}
	return af.runWithApp(ctx, app, r)
}

func runDev(args []string) error {
	fs := flagSet("dev", "sluice dev [flags]", `
Run the whole platform in one process with embedded engines and a demo:
a hub "demo" with 4 partitions, a simulator sending device readings to it
(about 1% of them corrupt), and a function "demo-decode" that decodes each
batch and dead-letters the corrupt readings. Progress is printed every
second. Try, in another terminal:

  sluice hub list
  sluice hub lag demo
  sluice hub tail demo --limit 5
  sluice hub replay demo --time 1m
  curl -s 127.0.0.1:7070/metrics | grep sluice_

With --app ./myapp it runs that Azure Functions app folder instead of the
demo, creating the hubs, queues and containers it names (see sluice serve
--help).

Stop with Ctrl-C: in-flight batches finish and are checkpointed first.`)
	inst := addInstanceFlags(fs, "sluice-data")
	af := addAppFlags(fs, true)
	rate := fs.Int("rate", 2000, "demo events per second (0: no simulator)")
	devices := fs.Int("devices", 100, "number of simulated devices")
	corrupt := fs.Float64("corrupt", 0.01, "share of corrupt demo events")
	noDemo := fs.Bool("no-demo", false, "run the platform without the demo hub and function")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := inst.config()
	if err != nil {
		return err
	}
	if *corrupt < 0 || *corrupt > 1 {
		return usagef("--corrupt %g: give a share between 0 and 1", *corrupt)
	}
	ctx, stop := signalContext()
	defer stop()
	app := sluice.New(cfg)
	if af.dir != "" {
		r, err := af.prepare(app, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "sluice dev is running app %s: HTTP at http://%s, data in %s\n", af.dir, cfg.HTTPAddr, cfg.DataDir)
		return af.runWithApp(ctx, app, r)
	}
	var demo *demoPipeline
	if !*noDemo {
		demo = &demoPipeline{app: app, devices: max(*devices, 1), corrupt: *corrupt}
		demo.declare()
	}
	if err := app.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "sluice dev is running: HTTP API at http://%s, data in %s\n", app.Addr(), cfg.DataDir)
	if demo != nil && *rate > 0 {
		go demo.simulate(ctx, *rate)
		go demo.progress(ctx)
	}
	<-ctx.Done()
	return app.Stop(context.Background())
}

// demoPipeline is the demo of sluice dev: device readings through a hub
// into a decoding function.
type demoPipeline struct {
	app          *sluice.App
	devices      int
	corrupt      float64
	sent         atomic.Int64
	processed    atomic.Int64
	deadLettered atomic.Int64
}

type reading struct {
	Device  string  `json:"device"`
	Seq     int64   `json:"seq"`
	Battery float64 `json:"battery"`
	Temp    float64 `json:"temp"`
}

func (d *demoPipeline) declare() {
	d.app.Hub(sluice.HubConfig{Name: "demo", Partitions: 4, Retention: 24 * time.Hour})
	d.app.Function("demo-decode", sluice.HubTrigger{Hub: "demo", MaxBatchSize: 100},
		func(ctx context.Context, events []sluice.Event) error {
			var bad []sluice.Event
			for _, e := range events {
				var r reading
				if err := json.Unmarshal(e.Body, &r); err != nil || r.Device == "" {
					bad = append(bad, e)
				}
			}
			d.processed.Add(int64(len(events)))
			if len(bad) > 0 {
				d.deadLettered.Add(int64(len(bad)))
				return sluice.DeadLetter(errors.New("corrupt reading: not a JSON object with a device id"), bad...)
			}
			return nil
		},
		sluice.WithRetry(sluice.ExponentialBackoff(3, 100*time.Millisecond, 2*time.Second)))
}

func (d *demoPipeline) simulate(ctx context.Context, rate int) {
	const batch = 50
	interval := time.Second * batch / time.Duration(rate)
	ticker := time.NewTicker(max(interval, time.Millisecond))
	defer ticker.Stop()
	var seq int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		dev := fmt.Sprintf("device-%03d", rand.IntN(d.devices))
		events := make([]sluice.Event, batch)
		for i := range events {
			seq++
			body, _ := json.Marshal(reading{Device: dev, Seq: seq, Battery: 20 + rand.Float64()*80, Temp: 15 + rand.Float64()*10})
			if rand.Float64() < d.corrupt {
				body = []byte("\x00garbled frame")
			}
			events[i] = sluice.Event{Body: body, PartitionKey: dev}
		}
		if _, err := d.app.Publish(ctx, "demo", events...); err != nil {
			if ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "demo: publish failed:", err)
			}
			continue
		}
		d.sent.Add(batch)
	}
}

func (d *demoPipeline) progress(ctx context.Context) {
	tty := isTerminal(os.Stdout)
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	var last int64
	lastT := time.Now()
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(stdout)
			}
			return
		case now := <-ticker.C:
			p := d.processed.Load()
			rate := float64(p-last) / now.Sub(lastT).Seconds()
			last, lastT = p, now
			line := fmt.Sprintf("demo: sent %d · processed %d (%.0f/s) · behind %d · dead-lettered %d",
				d.sent.Load(), p, rate, max(d.sent.Load()-p, 0), d.deadLettered.Load())
			if tty {
				fmt.Fprintf(stdout, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(stdout, line)
			}
		}
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
