// Command reliable-processing is the seeds' "reliable event processing"
// scenario on Sluice's Go SDK: orders arrive on a hub at a steady rate,
// some of them corrupt; a function posts each order to a downstream system
// that can go offline. Nothing is lost and nothing is posted twice:
//
//   - a corrupt event is dead-lettered with its reason, and the rest of its
//     batch goes on (sluice.DeadLetter);
//   - a downstream failure fails the batch, which is retried with
//     exponential backoff while its partition waits (order is kept);
//   - repeated failures, counted over every instance, open the function's
//     circuit breaker everywhere: no instance takes new batches, the
//     partitions hold at their checkpoints, and a notify function tells
//     the operator; after a cool-down one probe batch runs, and when it
//     succeeds every instance resumes from the checkpoints, in order;
//   - delivery is at-least-once (a retried batch, a crash before the
//     checkpoint), so each order is posted under an idempotency key
//     (App.Once): a redelivered order is not posted again.
//
// One binary plays every part:
//
//	reliable-processing [flags]             an instance (processor, API, optional producer)
//	reliable-processing downstream [flags]  the downstream system
//	reliable-processing send [flags]        publish a fixed number of orders through the API
//
// See README.md for a walk-through.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/examples/internal/cmdline"
)

func main() {
	var err error
	cmd, args := "", os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "":
		err = runInstance(args)
	case "downstream":
		err = runDownstream(args)
	case "send":
		err = runSend(args)
	default:
		err = fmt.Errorf("unknown command %q: run an instance (no command), downstream or send; -h for help", cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliable-processing:", err)
		os.Exit(1)
	}
}

// The hub, the function and its idempotency keys.
const (
	ordersHub  = "orders"
	deliverFn  = "deliver"
	keyPrefix  = "orders/"
	partitions = 4
)

func runInstance(args []string) error {
	fs := flag.NewFlagSet("reliable-processing", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: reliable-processing [flags]
       reliable-processing downstream [flags]   (see downstream -h)
       reliable-processing send [flags]         (see send -h)

Run an instance: the hub orders, the function deliver that posts each order
to the downstream, the Sluice API, and a producer of orders. Instances
joined by NATS share the hub's partitions and the breaker:

  reliable-processing --instance a --nats-listen 127.0.0.1:4333
  reliable-processing --instance b --http 127.0.0.1:7073 --nats nats://127.0.0.1:4333 --rate 0

Every flag can also be given as an environment variable RP_<FLAG>, such as
RP_DOWNSTREAM=http://127.0.0.1:8090.

Flags:
`)
		fs.PrintDefaults()
	}
	instance := fs.String("instance", "a", "this instance's name, unique among the instances")
	dataDir := fs.String("data-dir", "", "the instance's data directory (default $TMPDIR/reliable-processing/<instance>)")
	httpAddr := fs.String("http", "127.0.0.1:7072", "address of the Sluice HTTP API (for the sluice CLI)")
	natsListen := fs.String("nats-listen", "", "let other instances join this one's embedded NATS at host:port")
	natsURL := fs.String("nats", "", "join the instance whose NATS listens at this URL instead of embedding one")
	downstreamURL := fs.String("downstream", "http://127.0.0.1:8090", "URL of the downstream system")
	rate := fs.Float64("rate", 100, "events per second the built-in producer publishes; 0: no producer")
	events := fs.Int("events", 0, "stop the producer after this many events; 0: no end")
	corrupt := fs.Float64("corrupt", 0.01, "share of corrupt events the producer makes, 0 to 1")
	customers := fs.Int("customers", 20, "customers (partition keys) the producer's orders spread over")
	retries := fs.Int("retries", 10, "retries of a failed batch (exponential backoff, 250ms up to 10s) before it is dead-lettered")
	coolDown := fs.Duration("cool-down", 30*time.Second, "how long the breaker stays open before a probe")
	timeout := fs.Duration("timeout", 30*time.Second, "bound of one invocation of deliver")
	webhook := fs.String("breaker-webhook", "", "URL that receives each breaker transition as a JSON POST")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *natsListen != "" && *natsURL != "":
		return errors.New("give --nats-listen (this instance hosts NATS) or --nats (join another), not both")
	case *rate < 0 || *events < 0 || *corrupt < 0 || *corrupt > 1:
		return errors.New("--rate and --events must not be negative, --corrupt is between 0 and 1")
	}
	if *dataDir == "" {
		*dataDir = filepath.Join(os.TempDir(), "reliable-processing", *instance)
	}
	log := newLogger()

	app := sluice.New(sluice.Config{
		DataDir: *dataDir, HTTPAddr: *httpAddr, NATSListen: *natsListen, NATSURL: *natsURL,
		InstanceID: *instance, BreakerWebhook: *webhook, Logger: log,
	})
	app.Hub(sluice.HubConfig{Name: ordersHub, Partitions: partitions})
	p := &processor{app: app, log: log, ordersURL: strings.TrimSuffix(*downstreamURL, "/") + "/orders",
		client: &http.Client{Timeout: 10 * time.Second}}
	app.Function(deliverFn, sluice.HubTrigger{Hub: ordersHub, MaxBatchSize: 100}, p.deliver,
		sluice.WithRetry(sluice.ExponentialBackoff(*retries, 250*time.Millisecond, 10*time.Second)),
		// The architecture's rule (more than 100 failures within 30s, over all
		// instances), and a quicker one for a downstream that is plainly
		// gone: 5 failures in a row, well before a batch runs out of its
		// retries, so an outage dead-letters nothing.
		sluice.WithBreaker(sluice.BreakerPolicy{FailureThreshold: 101, Window: 30 * time.Second,
			ConsecutiveFailures: 5, CoolDown: *coolDown}),
		sluice.WithTimeout(*timeout))
	// The architecture's Logic App: told of every transition, it tells a
	// human.
	// The hub has one partition, so one instance at a time does this.
	app.Function("notify", sluice.HubTrigger{Hub: sluice.BreakerEventsHub}, notify(log, *httpAddr))

	ctx, stop := signalContext()
	defer stop()
	if err := app.Start(ctx); err != nil {
		return err
	}
	if url := app.NATSURL(); url != "" {
		log.Info("other instances can join with --nats " + url)
	}
	go p.report(ctx)
	if *rate > 0 {
		go func() {
			g := newGenerator(*customers, *corrupt)
			log.Info("producing orders", "producer", g.run, "rate", *rate, "events", *events, "corrupt_share", *corrupt)
			err := pace(ctx, g, *rate, *events, func(ctx context.Context, evs []sluice.Event) error {
				_, err := app.Publish(ctx, ordersHub, evs...)
				if err == nil {
					p.produced.Add(int64(len(evs)))
				}
				return err
			}, func(err error) { log.Warn("cannot publish; trying again", "err", err) })
			if err == nil {
				log.Info("producer done", "producer", g.run, "events", *events, "orders", g.Orders, "corrupt", g.Corrupt)
			}
		}()
	}
	<-ctx.Done()
	log.Info("stopping: finishing in-flight batches (Ctrl-C again to exit at once)")
	return app.Stop(context.Background())
}

// processor is the function deliver and what it counts.
type processor struct {
	app       *sluice.App
	log       *slog.Logger
	ordersURL string
	client    *http.Client

	produced, posted, skipped, corrupt, failed atomic.Int64
}

// deliver posts a batch of orders, in order, to the downstream. A corrupt
// event is set aside as a dead letter; a downstream failure fails the
// batch, to be retried (or held by the breaker) from its first event, and
// the idempotency keys make the orders already posted go by.
func (p *processor) deliver(ctx context.Context, events []sluice.Event) error {
	var bad []sluice.Event
	var faults []string
	for _, e := range events {
		o, err := decodeOrder(e.Body)
		if err != nil {
			bad = append(bad, e)
			if !slices.Contains(faults, err.Error()) {
				faults = append(faults, err.Error())
			}
			continue
		}
		ran, err := p.app.Once(ctx, keyPrefix+o.ID, 0, func(ctx context.Context) error { return p.post(ctx, o) })
		if errors.Is(err, sluice.ErrOnceNotRecorded) {
			// Posted, but the key could not be marked done: going on is
			// right (retrying the batch would wait out the claim and post
			// it again).
			p.log.Warn("order posted; its idempotency key was not recorded", "order", o.ID, "err", err)
			err = nil
		}
		if err != nil {
			p.failed.Add(1)
			return fmt.Errorf("order %s (partition %d, sequence %d): %w", o.ID, e.Partition, e.SequenceNumber, err)
		}
		if ran {
			p.posted.Add(1)
		} else {
			p.skipped.Add(1)
		}
	}
	if len(bad) > 0 {
		// One reason for all of them: the faults of the batch's corrupt
		// events (usually one).
		p.corrupt.Add(int64(len(bad)))
		return sluice.DeadLetter(fmt.Errorf("corrupt event: %s", strings.Join(faults, "; ")), bad...)
	}
	return nil
}

func (p *processor) post(ctx context.Context, o order) error {
	body, err := json.Marshal(o)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.ordersURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("downstream unreachable: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("downstream answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// report logs what this instance did every 10s while it changes.
func (p *processor) report(ctx context.Context) {
	var last [5]int64
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := [5]int64{p.produced.Load(), p.posted.Load(), p.skipped.Load(), p.corrupt.Load(), p.failed.Load()}
		if now == last {
			continue
		}
		last = now
		p.log.Info("progress", "produced", now[0], "posted", now[1], "skipped_already_posted", now[2],
			"corrupt_dead_lettered", now[3], "failed_posts", now[4], "events_finished", p.app.Processed(deliverFn))
	}
}

// notify tells the operator about breaker transitions: in the reference
// architecture, the Logic App's e-mail with a link to restart processing.
func notify(log *slog.Logger, httpAddr string) sluice.HubHandler {
	log = log.With("function", "notify")
	return func(_ context.Context, events []sluice.Event) error {
		for _, e := range events {
			var ev sluice.BreakerEvent
			if err := json.Unmarshal(e.Body, &ev); err != nil {
				log.Warn("not a breaker event", "err", err)
				continue
			}
			switch ev.To {
			case "open":
				msg := fmt.Sprintf("NOTIFY on-call: %s stopped taking orders on every instance: %s.", ev.Function, ev.Reason)
				if ev.Until != nil {
					msg += fmt.Sprintf(" A probe runs at %s.", ev.Until.Local().Format(time.TimeOnly))
				}
				msg += fmt.Sprintf(" Inspect: sluice breaker show %s --server http://%s; resume now: sluice breaker close %s --server http://%s",
					ev.Function, httpAddr, ev.Function, httpAddr)
				log.Warn(msg)
			case "closed":
				log.Info(fmt.Sprintf("NOTIFY on-call: %s resumed from its checkpoints: %s", ev.Function, ev.Reason))
			}
		}
		return nil
	}
}

func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func parseFlags(fs *flag.FlagSet, args []string) error { return cmdline.ParseFlags(fs, args, "RP_") }

func signalContext() (context.Context, context.CancelFunc) {
	return cmdline.SignalContext("reliable-processing")
}
