package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/bench"
	"github.com/sluicehq/sluice/internal/handler"
)

func runBench(args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		usage(stdout, "sluice bench", "Measure Sluice against the same work done directly on the engine, in the same run.",
			[]command{
				{"hub", "publish and consume through hubs vs. one JetStream message per event", nil},
				{"queue", "send, receive and complete through queues vs. a raw JetStream work queue", nil},
				{"docs", "bulk upserts and change feed reads of the document store vs. plain SQL, on SQLite and PostgreSQL", nil},
				{"handler", "invocations of a trivial custom handler (any language) vs. an in-process Go function", nil},
				{"resilience", "the hub pipeline with a closed circuit breaker and with idempotency keys vs. without", nil},
				{"partner", "partners' JSON and XML messages through the API, and signed deliveries, vs. the libraries and a plain HTTP client", nil},
				{"telemetry", "the reference pipeline end to end (HTTP → hub → decode and merge → bulk upsert) vs. the same on JetStream and SQLite directly", nil},
				{"cdc", "a PostgreSQL → PostgreSQL pipeline (logical replication) vs. a plain pglogrepl program with batched upserts", nil},
			})
		if len(args) == 0 {
			return usagef("missing workload")
		}
		return nil
	}
	switch args[0] {
	case "hub":
	case "queue":
		return runBenchQueue(args[1:])
	case "docs":
		return runBenchDocs(args[1:])
	case "handler":
		return runBenchHandler(args[1:])
	case "resilience":
		return runBenchResilience(args[1:])
	case "partner":
		return runBenchPartner(args[1:])
	case "telemetry":
		return runBenchTelemetry(args[1:])
	case "cdc":
		return runBenchCDC(args[1:])
	default:
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
	cases := fs.String("cases", "publish,consume,drain", "cases to run: publish, consume (publish and process at once), drain (process a backlog), http (HTTP ingestion without and with an API key), dr (replication lag of a DR secondary at half the publish rate: run with publish, e.g. --cases publish,dr)")
	httpEvents := fs.Int64("http-events", 300_000, "http case: events per round and variant")
	httpRounds := fs.Int("http-rounds", 5, "http case: interleaved rounds (the median is reported)")
	httpProducers := fs.Int("http-producers", 16, "http case: concurrent HTTP clients")
	dataDir := fs.String("data-dir", "", "data directory (default: a temporary one, removed afterwards)")
	natsURL := fs.String("nats-url", "", "measure an external NATS server instead")
	replicas := fs.Int("replicas", 0, "with --nats-url on a cluster: copies of the benchmark's streams (default: the cluster's size up to 3)")
	latencyFor := fs.Duration("latency-duration", 3*time.Second, "how long to measure latency at half rate")
	linger := fs.Duration("linger", 0, "publishers' linger window (default: the hub default, 1ms)")
	prof := profileFlags(fs)
	if _, err := parse(fs, args[1:]); err != nil {
		return err
	}
	return prof.run(dataDir, *natsURL, func(ctx context.Context) error {
		return bench.RunHub(ctx, bench.HubOptions{
			DataDir: *dataDir, NATSURL: *natsURL, Replicas: *replicas, Sync: *syncMode, Events: *events, BaselineEvents: *baseEvents,
			EventSize: *size, Partitions: *partitions, Publishers: *publishers, Batch: *batch,
			LatencyFor: *latencyFor, Linger: *linger, Cases: strings.Split(*cases, ","),
			HTTP:     bench.HTTPOptions{Events: *httpEvents, Rounds: *httpRounds, Producers: *httpProducers},
			Progress: benchProgress,
		}, reporter(*asJSON))
	})
}

// benchProgress shows what a benchmark is doing: on a terminal, one line
// redrawn in place (the results print below it); otherwise a line each.
func benchProgress(s string) {
	benchLine.Lock()
	defer benchLine.Unlock()
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		fmt.Fprintf(stderr, "\r\033[Kbench: %s", s)
		benchLine.open = true
		return
	}
	fmt.Fprintln(stderr, "bench:", s)
}

// benchLine is the state of the terminal's progress line.
var benchLine struct {
	sync.Mutex
	open bool
}

// endProgressLine clears an open progress line before results print.
func endProgressLine() {
	benchLine.Lock()
	defer benchLine.Unlock()
	if benchLine.open {
		fmt.Fprint(stderr, "\r\033[K")
		benchLine.open = false
	}
}

// run profiles and prepares a data directory as asked, then runs fn until
// a signal.
func (p profiling) run(dataDir *string, natsURL string, fn func(ctx context.Context) error) error {
	cleanup, err := p.start(dataDir, natsURL)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx, stop := signalContext()
	defer stop()
	return fn(ctx)
}

// reporter prints results as JSON lines or as text.
func reporter(asJSON bool) func(bench.Result) {
	enc := json.NewEncoder(stdout)
	return func(r bench.Result) {
		endProgressLine()
		if asJSON {
			_ = enc.Encode(r)
			return
		}
		if r.Error != "" {
			fmt.Fprintf(stdout, "%s/%s: FAILED: %s\n", r.Workload, r.Case, r.Error)
			return
		}
		fmt.Fprintf(stdout, "%s/%s: %d in %.2fs = %.0f/s", r.Workload, r.Case, r.Events, r.Seconds, r.EventsPerSec)
		if r.Baseline != "" {
			fmt.Fprintf(stdout, "; baseline %s %.0f/s (x%.2f)", r.Baseline, r.BaselineEventsPerSec, r.Ratio)
		}
		if l := r.DRLag; l != nil {
			fmt.Fprintf(stdout, "; DR lag at %.0f events/s: p50 %.0f events / %.1fms, p99 %.0f events / %.1fms, max %.0f events / %.1fms (%d samples; caught up %.0fms after the load)",
				r.LatencyAtRate, l.P50Events, l.P50Ms, l.P99Events, l.P99Ms, l.MaxEvents, l.MaxMs, l.Samples, l.CatchUpMs)
		} else if r.P99ms > 0 {
			fmt.Fprintf(stdout, "; latency at %.0f events/s p50 %.2fms p99 %.2fms", r.LatencyAtRate, r.P50ms, r.P99ms)
		}
		fmt.Fprintf(stdout, "; peak RSS %.0f MiB", r.PeakRSSMiB)
		if r.Note != "" {
			fmt.Fprintf(stdout, " (%s)", r.Note)
		}
		fmt.Fprintln(stdout)
	}
}

type profiling struct{ cpu, mem *string }

func profileFlags(fs *flag.FlagSet) profiling {
	return profiling{
		cpu: fs.String("cpuprofile", "", "write a CPU profile of the run to this file (for go tool pprof)"),
		mem: fs.String("memprofile", "", "write a heap profile, taken when the in-use heap peaked, to this file"),
	}
}

// start begins profiling and, unless a data directory or server URL is
// given, makes a temporary data directory; cleanup undoes both.
func (p profiling) start(dataDir *string, natsURL string) (cleanup func(), err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	if *p.cpu != "" {
		f, err := os.Create(*p.cpu)
		if err != nil {
			return cleanup, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return cleanup, err
		}
		undo = append(undo, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if *dataDir == "" && natsURL == "" {
		dir, err := os.MkdirTemp("", "sluice-bench-")
		if err != nil {
			return cleanup, err
		}
		undo = append(undo, func() { os.RemoveAll(dir) })
		*dataDir = dir
	}
	if *p.mem != "" {
		done := make(chan struct{})
		go peakHeapProfile(*p.mem, done)
		undo = append(undo, func() { close(done) })
	}
	return cleanup, nil
}

func runBenchQueue(args []string) error {
	fs := flagSet("bench queue", "sluice bench queue [flags]", `
Measure queues: messages are sent (in atomic batches) while a no-op
queue-triggered function completes them, with 2 workers (plain-2), with 32
(plain-32), and with 32 where 10% of messages fail their first delivery and
are retried (retries). Each case is timed until every message is completed,
beside a baseline of a raw JetStream work queue (one async publish and one
ack per message) on the same server. Prints one line per case; --json prints
one JSON object per case.`)
	asJSON := fs.Bool("json", false, "print one JSON object per case")
	messages := fs.Int64("messages", 500_000, "messages per case")
	baseMessages := fs.Int64("baseline-messages", 100_000, "messages for the raw JetStream baseline")
	size := fs.Int("size", 256, "message size in bytes")
	senders := fs.Int("senders", 4, "concurrent senders")
	batch := fs.Int("batch", 1000, "messages per send call (at most 1,000 are stored as one atomic batch)")
	syncMode := fs.String("sync", "always", "durability: always or interval")
	cases := fs.String("cases", "plain-2,plain-32,retries", "cases to run: plain-2, plain-32, retries")
	dataDir := fs.String("data-dir", "", "data directory (default: a temporary one, removed afterwards)")
	natsURL := fs.String("nats-url", "", "measure an external NATS server instead")
	prof := profileFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return prof.run(dataDir, *natsURL, func(ctx context.Context) error {
		return bench.RunQueue(ctx, bench.QueueOptions{
			DataDir: *dataDir, NATSURL: *natsURL, Sync: *syncMode, Messages: *messages, BaselineMessages: *baseMessages,
			MessageSize: *size, Senders: *senders, Batch: *batch, Cases: strings.Split(*cases, ","),
			Progress: benchProgress,
		}, reporter(*asJSON))
	})
}

func runBenchDocs(args []string) error {
	fs := flagSet("bench docs", "sluice bench docs [flags]", `
Measure the document store. sqlite-upsert and postgres-upsert upsert
--docs documents in BulkUpsert calls of --batch, half of each call new
documents and half replacing existing ones; beside each, a baseline writes
the same documents with a plain batched INSERT ... ON CONFLICT DO UPDATE
through the same driver (database/sql and modernc SQLite with the store's
WAL and synchronous=FULL; pgx) into a table shaped like the store's.
sqlite-feed and postgres-feed then read the whole change feed from the
start in reads of --feed-batch, each beside a plain SELECT ... WHERE
lsn > ? ORDER BY lsn LIMIT ? on the same table.

SQLite runs in a temporary directory unless --data-dir is given (it must
not hold docs.db or baseline.db). The PostgreSQL cases run when --postgres
names a database, in a schema of their own (sluice_bench_<random>) that is
dropped afterwards; otherwise they are skipped. Prints one line per case;
--json prints one JSON object per case.

Example:
  sluice bench docs --docs 100000 --postgres 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'`)
	asJSON := fs.Bool("json", false, "print one JSON object per case")
	docs := fs.Int64("docs", 1_000_000, "documents upserted per upsert case (and by its baseline)")
	batch := fs.Int("batch", 1000, "documents per BulkUpsert call, and rows per baseline transaction")
	size := fs.Int("size", 256, "document size in bytes")
	feedBatch := fs.Int("feed-batch", 1000, "changes per change feed read")
	partitions := fs.Int("partitions", 100, "partition keys the documents spread over")
	cases := fs.String("cases", strings.Join(bench.DocsCases, ","), "cases to run, in this order: "+strings.Join(bench.DocsCases, ", "))
	dsn := fs.String("postgres", "", "PostgreSQL URL for the postgres cases (default $SLUICE_TEST_POSTGRES)")
	dataDir := fs.String("data-dir", "", "directory for the SQLite databases (default: a temporary one, removed afterwards)")
	prof := profileFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *docs < 1 || *batch < 1 || *size < 1 || *feedBatch < 1 || *partitions < 1 {
		return usagef("--docs, --batch, --size, --feed-batch and --partitions must be at least 1")
	}
	return prof.run(dataDir, "", func(ctx context.Context) error {
		return bench.RunDocs(ctx, bench.DocsOptions{
			DataDir: *dataDir, PostgresDSN: cmp.Or(*dsn, os.Getenv("SLUICE_TEST_POSTGRES")), Docs: *docs, Batch: *batch, DocSize: *size,
			FeedBatch: *feedBatch, Partitions: *partitions, Cases: strings.Split(*cases, ","), Progress: benchProgress,
		}, reporter(*asJSON))
	})
}

func runBenchHandler(args []string) error {
	fs := flagSet("bench handler", "sluice bench handler [flags]", `
Measure functions run by a custom handler, the Azure Functions protocol
Sluice runs functions in any language with (one HTTP POST per invocation),
beside the same work done by an in-process Go function:

  sdk-batch-100  in-process Go function on a hub of --partitions, batches of 100
  sdk-batch-1    in-process Go function on a queue, one message each
  batch-1        the handler on a queue (queueTrigger): one message per
                 invocation; events_per_sec is invocations/s
  batch-100      the handler on the hub (eventHubTrigger, cardinality many,
                 maxEventBatchSize 100); events_per_sec counts events

Each case first fills its queue (--messages) or hub (--events) with no
function running, then starts an app whose function processes them, timed
from the end of the app's start until all were processed. batch-1 and
batch-100 are reported with sdk-batch-100 as their baseline.

The handler is a trivial one that answers every POST with {"Outputs":{}},
built with the Go toolchain (go on the PATH) when the run starts; or give
--handler, your own handler (in any language) that answers so, to measure
its overhead. Runs in a temporary directory unless --data-dir is given.
Prints one line per case; --json prints one JSON object per case.

--cpuprofile profiles this process only (the handler's CPU time is in each
case's note); its samples carry the labels case=<case> and phase=fill or
phase=run, as in: go tool pprof -tagfocus phase=run -top sluice cpu.prof`)
	asJSON := fs.Bool("json", false, "print one JSON object per case")
	messages := fs.Int64("messages", 20_000, "messages queued for each batch-1 case")
	events := fs.Int64("events", 200_000, "events published for each batch-100 case")
	size := fs.Int("size", 256, "message and event body size in bytes (a JSON object)")
	partitions := fs.Int("partitions", 4, "partitions of the hub")
	queueBatch := fs.Int("queue-batch-size", 16, "host.json extensions.queues.batchSize (1-32): messages fetched at once; batchSize/2 per CPU invoked at once")
	payload := fs.String("payload", "compat", "payload encoding: compat (Azure's) or clean (natural JSON)")
	exe := fs.String("handler", "", "handler executable to measure, answering every POST with {\"Outputs\":{}} (default: build the trivial one with go)")
	syncMode := fs.String("sync", "always", "durability: always or interval")
	cases := fs.String("cases", strings.Join(bench.HandlerCases, ","), "cases to run, in this order: "+strings.Join(bench.HandlerCases, ", "))
	dataDir := fs.String("data-dir", "", "directory for the cases' data (default: a temporary one, removed afterwards)")
	prof := profileFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	mode, err := handler.ParseMode(*payload)
	if err != nil {
		return usagef("--payload: %v", err)
	}
	if *messages < 1 || *events < 1 || *size < 1 || *partitions < 1 || *queueBatch < 1 || *queueBatch > 32 {
		return usagef("--messages, --events, --size and --partitions must be at least 1, and --queue-batch-size 1 to 32")
	}
	return prof.run(dataDir, "", func(ctx context.Context) error {
		return bench.RunHandler(ctx, bench.HandlerOptions{
			DataDir: *dataDir, Handler: *exe, Messages: *messages, Events: *events, EventSize: *size, Partitions: *partitions,
			QueueBatchSize: *queueBatch, Mode: mode, Sync: *syncMode, Cases: strings.Split(*cases, ","), Progress: benchProgress,
		}, reporter(*asJSON))
	})
}

func runBenchResilience(args []string) error {
	fs := flagSet("bench resilience", "sluice bench resilience [flags]", `
Measure what reliability costs on the hub pipeline: the same Go function on
a hub (batches of 100, touching each event) three ways:

  hub          the baseline
  hub-breaker  with a circuit breaker that stays closed (WithBreaker)
  hub-once     each event's work run through App.Once (idempotency keys in
               the KV store, keyed by partition and sequence)

Each case publishes its events with no function running, then times an app
whose function processes them. The cases run --rounds times, interleaved,
and the median round is reported, with hub as the baseline of the others;
hub-once's note gives its extra cost per event. Runs in a temporary
directory unless --data-dir is given. --json prints one JSON object per case.`)
	asJSON := fs.Bool("json", false, "print one JSON object per case")
	events := fs.Int64("events", 200_000, "events published for the hub and hub-breaker cases")
	onceEvents := fs.Int64("once-events", 20_000, "events published for the hub-once case")
	size := fs.Int("size", 256, "event body size in bytes")
	partitions := fs.Int("partitions", 4, "partitions of the hub")
	rounds := fs.Int("rounds", 3, "rounds of each case (the median is reported)")
	syncMode := fs.String("sync", "always", "durability: always or interval")
	cases := fs.String("cases", strings.Join(bench.ResilienceCases, ","), "cases to run: "+strings.Join(bench.ResilienceCases, ", "))
	dataDir := fs.String("data-dir", "", "directory for the cases' data (default: a temporary one, removed afterwards)")
	prof := profileFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *events < 1 || *onceEvents < 1 || *size < 1 || *partitions < 1 || *rounds < 1 {
		return usagef("--events, --once-events, --size, --partitions and --rounds must be at least 1")
	}
	return prof.run(dataDir, "", func(ctx context.Context) error {
		return bench.RunResilience(ctx, bench.ResilienceOptions{
			DataDir: *dataDir, Events: *events, OnceEvents: *onceEvents, EventSize: *size, Partitions: *partitions,
			Rounds: *rounds, Sync: *syncMode, Cases: strings.Split(*cases, ","), Progress: benchProgress,
		}, reporter(*asJSON))
	})
}

func runBenchPartner(args []string) error {
	fs := flagSet("bench partner", "sluice bench partner [flags]", `
Measure the partner integration layer:

  json      1 KiB JSON messages posted to /api/v1/partners/…/messages/…,
            one per request, checked (JSON Schema), transformed (jq),
            checked again and stored in a hub; baseline: the same checks
            and transform by the libraries in a plain loop on every core
  xml       the same with 2 KiB purchase orders: XSD, XSLT, target XSD
  json-batch, xml-batch
            the same messages, --batch-size per request to the batch
            route (…/messages/{type}/batch)
  delivery  a delivery function posting each message, signed (Standard
            Webhooks), to a loopback endpoint that verifies it; baseline:
            a plain Go HTTP client posting the same bodies. Its latency
            (publish → verified) is measured at half the measured rate.

Runs in a temporary directory unless --data-dir is given. --json prints one
JSON object per case.`)
	asJSON := fs.Bool("json", false, "print one JSON object per case")
	messages := fs.Int64("messages", 50_000, "messages per inbound case")
	deliveries := fs.Int64("deliveries", 20_000, "deliveries of the delivery case")
	clients := fs.Int("clients", 64, "concurrent HTTP clients, and deliveries in flight")
	batchSize := fs.Int("batch-size", 100, "messages per request of the batch cases (at most 1000)")
	syncMode := fs.String("sync", "always", "durability: always or interval")
	cases := fs.String("cases", strings.Join(bench.PartnerCases, ","), "cases to run: "+strings.Join(bench.PartnerCases, ", "))
	dataDir := fs.String("data-dir", "", "directory for the cases' data (default: a temporary one, removed afterwards)")
	prof := profileFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *messages < 1 || *deliveries < 1 || *clients < 1 {
		return usagef("--messages, --deliveries and --clients must be at least 1")
	}
	if *batchSize < 1 || *batchSize > 1000 {
		return usagef("--batch-size must be 1 to 1000 (a batch holds at most 1000 messages)")
	}
	return prof.run(dataDir, "", func(ctx context.Context) error {
		return bench.RunPartner(ctx, bench.PartnerOptions{DataDir: *dataDir, Messages: *messages, Deliveries: *deliveries,
			Clients: *clients, BatchSize: *batchSize, Sync: *syncMode, Cases: strings.Split(*cases, ","), Progress: benchProgress}, reporter(*asJSON))
	})
}

func runBenchTelemetry(args []string) error {
	fs := flagSet("bench telemetry", "sluice bench telemetry [flags]", `
Measure the telemetry pipeline end to end, the demo of sluice dev:
HTTP producers POST batches of simulated drone telemetry (1% corrupt) to a
hub of 4 partitions; a Go function decodes each batch, merges each device's
frames into its document and writes the batch's devices with one bulk
upsert; corrupt frames are dead-lettered.

Each case first runs as fast as the producers can for --duration (the rate
is counted after a warm-up), then at half that rate for --latency-for,
measuring each frame's latency from its request's send to its device's
document written. The baseline, engines, is the same pipeline built on
JetStream and SQLite directly (one JetStream message per event, a pull
consumer per partition, one transaction per batch), measured the same way.

Cases: sqlite, and postgres when --postgres is given. Runs in a temporary
directory unless --data-dir is given. --json prints one JSON object per case.`)
	asJSON := fs.Bool("json", false, "print one JSON object per case")
	duration := fs.Duration("duration", time.Minute, "throughput phase of each case")
	latencyFor := fs.Duration("latency-for", 0, "latency phase at half rate (default: half of --duration, at least 5s)")
	devices := fs.Int("devices", 1000, "simulated devices")
	corrupt := fs.Float64("corrupt", 0.01, "share of corrupt events")
	producers := fs.Int("producers", 8, "concurrent HTTP producers")
	requestEvents := fs.Int("request-events", 500, "events per ingestion request")
	maxBatch := fs.Int("max-batch", 1000, "the function's maximum batch size")
	partitions := fs.Int("partitions", 4, "partitions of the hub")
	pg := fs.String("postgres", os.Getenv("SLUICE_TEST_POSTGRES"), "PostgreSQL URL for the postgres case (env SLUICE_TEST_POSTGRES)")
	syncMode := fs.String("sync", "always", "durability: always or interval")
	dataDir := fs.String("data-dir", "", "directory for the cases' data (default: a temporary one, removed afterwards)")
	prof := profileFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *duration < time.Second || (*latencyFor != 0 && *latencyFor < time.Second) {
		return usagef("--duration and --latency-for must be at least 1s")
	}
	if *corrupt < 0 || *corrupt >= 1 {
		return usagef("--corrupt %g: give a share from 0 to below 1", *corrupt)
	}
	return prof.run(dataDir, "", func(ctx context.Context) error {
		return bench.RunTelemetry(ctx, bench.TelemetryOptions{
			DataDir: *dataDir, PostgresDSN: *pg, Duration: *duration, LatencyFor: *latencyFor, Devices: *devices, Corrupt: *corrupt,
			Producers: *producers, RequestEvents: *requestEvents, MaxBatchSize: *maxBatch, Partitions: *partitions, Sync: *syncMode,
			Progress: benchProgress,
		}, reporter(*asJSON))
	})
}

func runBenchCDC(args []string) error {
	fs := flagSet("bench cdc", "sluice bench cdc [flags]", `
Measure a data pipeline from PostgreSQL to PostgreSQL: --writers writers
change the rows of a source table (about 200 bytes each) with multi-row
statements of 100 rows, about 60% inserts, 30% updates and 10% deletes,
each statement a transaction; a Sluice pipeline reads them by logical
replication and applies them to a table in another database.

  events_per_sec  --changes row changes over the time from the writers'
                  start until the destination has all of them
  p50_ms, p99_ms  from each row's write at the source to its apply at the
                  destination (both by the server's clock), with the
                  writers held to half the rate just measured
                  (latency_at_events_per_sec), for at most 200,000
                  changes or 20s of them
  baseline        a plain Go program doing the same on fresh databases:
                  its own replication slot read with pglogrepl, the
                  pgoutput stream decoded, and batches of up to 1,000
                  changes applied in one transaction with unnest upserts

The destination is checked equal to the source after each phase.

The run creates the databases sluice_bench_cdc_src and sluice_bench_cdc_dst
on the --postgres server, and drops them and the replication slots in them
before and after: the user must be able to create databases and to
replicate (a superuser can). The server needs wal_level = logical; if it
has not, run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL.
The app's data goes to a temporary directory unless --data-dir is given.
--json prints the case as one JSON object.

Example:
  sluice bench cdc --changes 100000 --postgres 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'`)
	asJSON := fs.Bool("json", false, "print the case as one JSON object")
	changes := fs.Int64("changes", 1_000_000, "row changes of the throughput phase, and of the baseline")
	writers := fs.Int("writers", 8, "concurrent writers of the source table")
	dsn := fs.String("postgres", "", "PostgreSQL URL of the server to measure on (default $SLUICE_TEST_POSTGRES)")
	dataDir := fs.String("data-dir", "", "directory for the app's data (default: a temporary one, removed afterwards)")
	prof := profileFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	pgURL := cmp.Or(*dsn, os.Getenv("SLUICE_TEST_POSTGRES"))
	if pgURL == "" {
		return usagef("give the PostgreSQL server with --postgres (or $SLUICE_TEST_POSTGRES), e.g. postgres://postgres@127.0.0.1:5432/postgres")
	}
	if *changes < 1 || *writers < 1 {
		return usagef("--changes and --writers must be at least 1")
	}
	return prof.run(dataDir, "", func(ctx context.Context) error {
		return bench.RunCDC(ctx, bench.CDCOptions{URL: pgURL, Changes: *changes, Writers: *writers, DataDir: *dataDir, Progress: benchProgress},
			reporter(*asJSON))
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
