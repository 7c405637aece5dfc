// Command cdc-pipeline is the seed's data pipeline on Sluice's Go SDK: a
// PostgreSQL database of orders, written to all the time, whose changes a
// read strategy captures into change sets staged in blob storage; three
// write strategies apply them in parallel, each at its own pace:
//
//   - reporting: a PostgreSQL reporting table (exactly once, CreateTables);
//   - service: an HTTP service, sent each change set with an
//     Idempotency-Key so that a change set sent again is dropped;
//   - events: the hub order-events, where the function order-alerts
//     reacts to large orders.
//
// A destination that is down retries for ever, behind its breaker, and
// catches up by itself while the others go on; an operator can replay a
// destination from a point in time (sluice pipeline replay).
//
// One binary plays every part:
//
//	cdc-pipeline [run] [flags]      the Sluice instance with the pipeline
//	cdc-pipeline writer [flags]     a steady writer of orders into the source
//	cdc-pipeline service [flags]    the HTTP service the service destination posts to
//
// See README.md for a walk-through.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/examples/internal/cmdline"
)

func main() {
	var err error
	cmd, args := "run", os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		err = runInstance(args)
	case "writer":
		err = runWriter(args)
	case "service":
		err = runService(args)
	default:
		err = fmt.Errorf("unknown command %q: use run (the default), writer or service; -h for help", cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cdc-pipeline:", err)
		os.Exit(1)
	}
}

// The hub the events destination writes to, and the function reacting.
const (
	eventsHub = "order-events"
	alertsFn  = "order-alerts"
)

// Where the parts find each other by default.
const (
	defaultSourceURL    = "postgres://postgres@127.0.0.1:5432/orders?sslmode=disable"
	defaultReportingURL = "postgres://postgres@127.0.0.1:5432/reporting?sslmode=disable"
	defaultServiceAddr  = "127.0.0.1:8091"
	defaultWriterAddr   = "127.0.0.1:8092"
)

func runInstance(args []string) error {
	fs := flag.NewFlagSet("cdc-pipeline", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: cdc-pipeline [run] [flags]
       cdc-pipeline writer [flags]    (see writer -h)
       cdc-pipeline service [flags]   (see service -h)

Run a Sluice instance with the pipeline (default name orders) from the
table SCHEMA.orders of --source-url to three destinations: reporting (the
table orders in --reporting-url), service (POSTs to --service-url) and
events (the hub order-events, where the function order-alerts counts
orders over --threshold; GET /api/alerts shows its counts).

Every flag can also be given as an environment variable CDC_<FLAG>, such
as CDC_SOURCE_URL.

Flags:
`)
		fs.PrintDefaults()
	}
	dataDir := fs.String("data-dir", filepath.Join(os.TempDir(), "cdc-pipeline"), "the instance's data directory")
	httpAddr := fs.String("http", "127.0.0.1:7074", "address of the Sluice HTTP API (for the sluice CLI)")
	name := fs.String("pipeline", "orders", "the pipeline's name (lowercase letters, digits and '-'); its replication slot and publication are sluice_<name>, '-' as '_'")
	sourceURL := fs.String("source-url", defaultSourceURL, "the source database (wal_level = logical, a user with REPLICATION)")
	schema := fs.String("schema", "public", "the schema of the source table orders")
	reportingURL := fs.String("reporting-url", defaultReportingURL, "the reporting database; the table orders is created in its current schema")
	serviceURL := fs.String("service-url", "http://"+defaultServiceAddr+"/changes", "where the service destination POSTs change sets")
	threshold := fs.Float64("threshold", 800, "order-alerts alerts on orders whose total is above this")
	retryBackoff := fs.Duration("retry-backoff", time.Second, "first wait after a destination failed to apply a change set (doubling)")
	maxRetryBackoff := fs.Duration("max-retry-backoff", 30*time.Second, "longest wait between a destination's retries")
	coolDown := fs.Duration("cool-down", 15*time.Second, "how long a destination's open breaker waits before a probe (each failed probe doubles it)")
	maxCoolDown := fs.Duration("max-cool-down", time.Minute, "the longest cool-down of a destination's breaker")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log := newLogger()

	app := sluice.New(sluice.Config{DataDir: *dataDir, HTTPAddr: *httpAddr, Logger: log})
	app.Hub(sluice.HubConfig{Name: eventsHub, Partitions: 4})
	// The seed's three destination systems, each a write strategy of its
	// own: a relational database, a cloud service, a messaging service.
	breaker := sluice.BreakerPolicy{ConsecutiveFailures: 5, CoolDown: *coolDown, MaxCoolDown: *maxCoolDown}
	dest := func(d sluice.PipelineDestination) sluice.PipelineDestination {
		d.RetryBackoff, d.MaxRetryBackoff, d.Breaker = *retryBackoff, *maxRetryBackoff, breaker
		return d
	}
	app.Pipeline(*name, sluice.PipelineConfig{
		Postgres: &sluice.PostgresSource{URL: *sourceURL, Tables: []string{*schema + ".orders"}},
		Destinations: []sluice.PipelineDestination{
			dest(sluice.PipelineDestination{Name: "reporting", SQL: &sluice.SQLDestination{URL: *reportingURL, CreateTables: true}}),
			dest(sluice.PipelineDestination{Name: "service", HTTP: &sluice.HTTPDestination{URL: *serviceURL, BatchSize: 200, Timeout: 10 * time.Second}}),
			dest(sluice.PipelineDestination{Name: "events", Hub: eventsHub}),
		},
	})
	a := &alerts{log: log.With("function", alertsFn), threshold: *threshold, big: map[string]bool{}}
	app.Function(alertsFn, sluice.HubTrigger{Hub: eventsHub, MaxBatchSize: 100}, a.react)
	app.HTTPFunction("alerts", sluice.HTTPTrigger{Route: "alerts", Methods: []string{http.MethodGet}, AuthLevel: sluice.AuthAnonymous},
		http.HandlerFunc(a.serve))

	ctx, stop := signalContext()
	defer stop()
	if err := app.Start(ctx); err != nil {
		return err
	}
	log.Info("pipeline running", "pipeline", *name, "source", *schema+".orders",
		"watch", fmt.Sprintf("sluice pipeline status %s --server http://%s", *name, *httpAddr))
	<-ctx.Done()
	log.Info("stopping: finishing in-flight change sets (Ctrl-C again to exit at once)")
	return app.Stop(context.Background())
}

// change is a row's change as the events destination publishes it.
type change struct {
	Op    string         `json:"op"`
	Table string         `json:"table"`
	Key   map[string]any `json:"key"`
	After map[string]any `json:"after"`
}

// alerts is the function order-alerts: it reacts to the orders' changes
// on the hub order-events and alerts on orders whose total is above the
// threshold. The hub delivers at least once (a replay of the events
// destination, a retried batch), so it remembers the orders it alerted on.
type alerts struct {
	log       *slog.Logger
	threshold float64
	changes   atomic.Int64

	mu  sync.Mutex
	big map[string]bool // orders alerted on
}

// alertCounts is the answer of GET /api/alerts.
type alertCounts struct {
	// Changes counts the changes the function received.
	Changes int64 `json:"changes"`
	// Alerts counts the orders it alerted on, each once.
	Alerts int `json:"alerts"`
}

func (a *alerts) react(_ context.Context, events []sluice.Event) error {
	for _, e := range events {
		var c change
		if err := json.Unmarshal(e.Body, &c); err != nil {
			return sluice.DeadLetter(fmt.Errorf("not a change: %w", err), e)
		}
		a.changes.Add(1)
		if c.Op == "delete" {
			continue
		}
		total, err := strconv.ParseFloat(fmt.Sprint(c.After["total"]), 64)
		if err != nil || total <= a.threshold {
			continue
		}
		id := fmt.Sprint(c.Key["id"])
		a.mu.Lock()
		first := !a.big[id]
		a.big[id] = true
		a.mu.Unlock()
		if first {
			a.log.Info("ALERT: large order", "order", id, "customer", c.After["customer"], "total", c.After["total"], "op", c.Op)
		}
	}
	return nil
}

func (a *alerts) serve(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	n := len(a.big)
	a.mu.Unlock()
	writeJSON(w, alertCounts{Changes: a.changes.Load(), Alerts: n})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func parseFlags(fs *flag.FlagSet, args []string) error { return cmdline.ParseFlags(fs, args, "CDC_") }

func signalContext() (context.Context, context.CancelFunc) {
	return cmdline.SignalContext("cdc-pipeline")
}
