package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
)

// order is an event of the hub orders, and what the downstream records.
// A producer run numbers each customer's orders 1, 2, 3…, so that the
// downstream can tell a duplicate or a gap.
type order struct {
	// ID is "<producer>-<customer>-<seq>": unique, and the idempotency
	// key of its delivery.
	ID       string `json:"id"`
	Producer string `json:"producer"`
	// Customer is the event's partition key: a customer's orders stay in
	// one partition, in order.
	Customer    string `json:"customer"`
	Seq         int    `json:"seq"`
	AmountCents int    `json:"amount_cents"`
}

// stream names the sequence an order belongs to.
func (o order) stream() string { return o.Producer + "/" + o.Customer }

// decodeOrder reads an order, and says what is wrong with a body that is
// not one.
func decodeOrder(body []byte) (order, error) {
	var o order
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return o, fmt.Errorf("not a JSON order: %w", err)
	}
	if dec.More() {
		return o, errors.New("not a JSON order: data after the object")
	}
	if o.ID == "" || o.Producer == "" || o.Customer == "" || o.Seq < 1 {
		return o, errors.New("not an order: id, producer, customer and seq (from 1) are required")
	}
	return o, nil
}

// generator makes the events of one producer run: orders of a few
// customers, and every so often a corrupt event (a truncated order), at
// the same places for the same share so that a run can be checked.
type generator struct {
	run       string
	customers int
	corrupt   float64
	rnd       *rand.Rand
	made      int
	seq       map[string]int
	// Orders and Corrupt count what was made so far.
	Orders, Corrupt int
}

func newGenerator(customers int, corruptShare float64) *generator {
	b := make([]byte, 2)
	_, _ = crand.Read(b)
	return &generator{run: hex.EncodeToString(b), customers: max(customers, 1), corrupt: corruptShare,
		rnd: rand.New(rand.NewPCG(uint64(b[0]), uint64(b[1]))), seq: map[string]int{}}
}

// isCorrupt reports whether event i of a run is corrupt: the events where
// i·share crosses a whole number, so a share of 0.01 makes events 99, 199,
// 299… corrupt.
func isCorrupt(i int, share float64) bool {
	return share > 0 && int(float64(i+1)*share) > int(float64(i)*share)
}

func (g *generator) next() sluice.Event {
	i := g.made
	g.made++
	customer := fmt.Sprintf("c%02d", g.rnd.IntN(g.customers))
	if isCorrupt(i, g.corrupt) {
		g.Corrupt++
		// What a publisher that crashed mid-write leaves: half an order.
		body := fmt.Sprintf(`{"id":"%s-%s-?","producer":"%s","customer":"%s","amount_cents":`, g.run, customer, g.run, customer)
		return sluice.Event{Body: []byte(body), PartitionKey: customer}
	}
	g.Orders++
	g.seq[customer]++
	o := order{Producer: g.run, Customer: customer, Seq: g.seq[customer], AmountCents: 100 + g.rnd.IntN(99_900)}
	o.ID = fmt.Sprintf("%s-%s-%d", o.Producer, o.Customer, o.Seq)
	body, _ := json.Marshal(o)
	return sluice.Event{Body: body, PartitionKey: customer}
}

// batch makes n events.
func (g *generator) batch(n int) []sluice.Event {
	out := make([]sluice.Event, n)
	for i := range out {
		out[i] = g.next()
	}
	return out
}

// pace calls publish with the events due at rate per second (all at once
// when rate is 0), until total events were published (0: no end) or ctx
// ends. A batch that fails to publish is tried again as it was.
func pace(ctx context.Context, g *generator, rate float64, total int, publish func(context.Context, []sluice.Event) error, onError func(error)) error {
	const tick, maxBatch = 100 * time.Millisecond, 500
	start, sent := time.Now(), 0
	var pending []sluice.Event
	for total == 0 || sent < total {
		due := total
		if rate > 0 {
			due = int(rate * time.Since(start).Seconds())
			if total > 0 {
				due = min(due, total)
			}
		}
		if len(pending) == 0 && due > sent {
			pending = g.batch(min(due-sent, maxBatch))
		}
		wait := tick
		if len(pending) > 0 {
			if err := publish(ctx, pending); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				onError(err)
				wait = time.Second
			} else {
				sent += len(pending)
				pending = nil
				if due > sent {
					continue // behind: publish the next batch at once
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return nil
}

// runSend is `reliable-processing send`: it publishes a fixed number of
// events to the hub orders through a Sluice instance's HTTP API.
func runSend(args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: reliable-processing send [flags]

Publish orders (and some corrupt events) to the hub orders through the HTTP
API of a running instance, then print what was sent.

Flags:
`)
		fs.PrintDefaults()
	}
	server := fs.String("server", "http://127.0.0.1:7072", "URL of a running instance's Sluice API")
	events := fs.Int("events", 1000, "how many events to publish")
	rate := fs.Float64("rate", 0, "events per second; 0 sends them as fast as the API takes them")
	corrupt := fs.Float64("corrupt", 0.01, "share of corrupt events, 0 to 1")
	customers := fs.Int("customers", 20, "how many customers (partition keys) the orders spread over")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *events < 1 || *corrupt < 0 || *corrupt > 1 || *rate < 0 {
		return errors.New("send: --events must be at least 1, --corrupt between 0 and 1, --rate not negative")
	}
	ctx, stop := signalContext()
	defer stop()
	g := newGenerator(*customers, *corrupt)
	client := &http.Client{Timeout: 30 * time.Second}
	url := strings.TrimSuffix(*server, "/") + "/api/v1/hubs/orders/events"
	err := pace(ctx, g, *rate, *events, func(ctx context.Context, evs []sluice.Event) error {
		return postEvents(ctx, client, url, evs)
	}, func(err error) {
		// Safe to repeat: a batch stored twice is delivered twice, and
		// deliver's idempotency keys post each order once.
		fmt.Fprintf(os.Stderr, "send: %v; trying again\n", err)
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"producer": g.run, "events": *events, "orders": g.Orders, "corrupt": g.Corrupt})
	}
	fmt.Printf("sent %d events to the hub orders (producer %s): %d orders, %d corrupt\n", *events, g.run, g.Orders, g.Corrupt)
	return nil
}

// postEvents publishes events in Sluice's envelope format, which carries a
// partition key per event.
func postEvents(ctx context.Context, client *http.Client, url string, evs []sluice.Event) error {
	type envelope struct {
		Body         json.RawMessage `json:"body,omitempty"`
		BodyText     *string         `json:"body_text,omitempty"`
		PartitionKey string          `json:"partition_key"`
	}
	out := make([]envelope, len(evs))
	for i, e := range evs {
		out[i].PartitionKey = e.PartitionKey
		if json.Valid(e.Body) {
			out[i].Body = e.Body
		} else {
			s := string(e.Body)
			out[i].BodyText = &s
		}
	}
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/vnd.sluice.events+json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
