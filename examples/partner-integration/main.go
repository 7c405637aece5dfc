// Command partner-integration is the seeds' serverless integration
// pattern on Sluice's Go SDK: partners post their orders, ACME as XML
// (checked against its XSD, transformed by its XSLT) and Globex as JSON
// (checked against its JSON Schema, transformed by its jq program), each
// with its own token. Both become the same canonical order on the hub
// process. A business function prices each order once (App.OnceBatch, so
// a redelivered batch changes nothing) and hands it to the hub db-update,
// whose functions keep it in the container orders and, when a PostgreSQL
// database is given, in its table partner_orders (UpsertRows, one
// transaction per batch); and to the hub post-to-partner, whose delivery
// function posts a signed confirmation to the partner's endpoint, parking
// it while the partner is down and posting it again later, in order per
// buyer.
//
// One binary plays every part:
//
//	partner-integration [flags]          an instance (the API on --http)
//	partner-integration partner [flags]  the partners' receiving endpoint (checks signatures)
//	partner-integration send [flags]     post orders as the partners do, some invalid
//
// See README.md for a walk-through.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/sluicehq/sluice"
)

//go:embed registry
var registry embed.FS

// demoSecret signs the confirmations when --secret is not given: the
// partner endpoint of this example checks it. A real partner gives its own.
var demoSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("partner-integration demo secret!"))

func main() {
	var err error
	cmd, args := "", os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "":
		err = runInstance(args)
	case "partner":
		err = runPartner(args)
	case "send":
		err = runSend(args)
	default:
		err = fmt.Errorf("unknown command %q: use partner-integration [flags], partner or send", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "partner-integration:", err)
		os.Exit(1)
	}
}

func file(name string) string {
	b, err := registry.ReadFile("registry/" + name)
	if err != nil {
		panic(err) // embedded: cannot be missing
	}
	return string(b)
}

// Order is the canonical order both partners' messages become.
type Order struct {
	OrderID  string `json:"orderId"`
	Partner  string `json:"partner"`
	Buyer    string `json:"buyer"`
	Currency string `json:"currency"`
	Lines    []struct {
		SKU   string  `json:"sku"`
		Qty   int     `json:"qty"`
		Price float64 `json:"price"`
	} `json:"lines"`
}

// Confirmation is what a partner gets back for each order.
type Confirmation struct {
	OrderID  string  `json:"orderId"`
	Buyer    string  `json:"buyer"`
	Status   string  `json:"status"`
	Total    float64 `json:"total"`
	Currency string  `json:"currency"`
}

func runInstance(args []string) error {
	fs := flag.NewFlagSet("partner-integration", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "partner-data", "the instance's data directory")
	addr := fs.String("http", "127.0.0.1:7070", "the API's address")
	partnerURL := fs.String("partner-url", "http://127.0.0.1:7171", "the partners' receiving endpoint (partner-integration partner)")
	secret := fs.String("secret", envOr("PARTNER_SIGNING_SECRET", demoSecret), "whsec_ secret that signs confirmations (env PARTNER_SIGNING_SECRET)")
	pg := fs.String("postgres", os.Getenv("PARTNER_POSTGRES"), "PostgreSQL URL: orders also go to its table partner_orders (env PARTNER_POSTGRES)")
	tokens := fs.String("tokens", "", "file to keep the partners' tokens in (default DATA-DIR/partner-tokens.json)")
	table := fs.String("table", "partner_orders", "the PostgreSQL table of orders (created if missing)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	app := sluice.New(sluice.Config{DataDir: *dataDir, HTTPAddr: *addr, Logger: log})
	define(app, strings.TrimSuffix(*partnerURL, "/"), *secret)
	var db *sql.DB
	if *pg != "" {
		var err error
		if db, err = openTable(*pg, *table); err != nil {
			return err
		}
		defer db.Close()
		app.Function("db-update-sql", sluice.HubTrigger{Hub: "db-update", ConsumerGroup: "sql", MaxBatchSize: 200},
			sluice.UpsertRows(sluice.SQLTable{DB: db, Table: *table, Key: []string{"order_id"}},
				func(ctx context.Context, events []sluice.Event) ([]map[string]any, error) {
					rows := make([]map[string]any, 0, len(events))
					for _, e := range events {
						var o pricedOrder
						if err := json.Unmarshal(e.Body, &o); err != nil {
							return nil, err
						}
						rows = append(rows, map[string]any{"order_id": o.OrderID, "partner": o.Partner, "buyer": o.Buyer,
							"currency": o.Currency, "total": o.Total, "lines": len(o.Lines)})
					}
					return rows, nil
				}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Start(ctx); err != nil {
		return err
	}
	if err := partnerTokens(ctx, app, cmpOr(*tokens, *dataDir+"/partner-tokens.json")); err != nil {
		_ = app.Stop(context.Background())
		return err
	}
	log.Info("partner integration running", "api", app.URL(), "partner_endpoint", *partnerURL, "postgres", db != nil)
	<-ctx.Done()
	return app.Stop(context.Background())
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func envOr(name, def string) string { return cmpOr(os.Getenv(name), def) }

// pricedOrder is an order with its total, on the hub db-update.
type pricedOrder struct {
	Order
	Total float64 `json:"total"`
}

// define declares the partners, hubs and functions.
func define(app *sluice.App, partnerURL, secret string) {
	for _, h := range []string{"process", "db-update", "post-to-partner"} {
		app.Hub(sluice.HubConfig{Name: h, Partitions: 4})
	}
	app.Container(sluice.ContainerConfig{Name: "orders", PartitionKeyPath: "/partner"})
	target := file("order.schema.json")
	endpoint := func(p string) []sluice.PartnerEndpoint {
		return []sluice.PartnerEndpoint{{Name: "main", URL: partnerURL + "/" + p, SigningSecrets: []string{secret}, Ordered: true,
			Types: []string{"confirmation"}, Timeout: 5 * time.Second}}
	}
	app.Partner(sluice.PartnerConfig{ID: "acme", Name: "ACME Retail (XML)", Endpoints: endpoint("acme"),
		Types: []sluice.MessageTypeConfig{{Name: "po", Format: "xml", Schema: file("acme-po.xsd"),
			Transform: file("acme-po-to-order.xsl"), TargetFormat: "json", TargetSchema: target, Hub: "process", PartitionKey: ".buyer"}}})
	app.Partner(sluice.PartnerConfig{ID: "globex", Name: "Globex (JSON)", Endpoints: endpoint("globex"),
		Types: []sluice.MessageTypeConfig{{Name: "order", Format: "json", Schema: file("globex-order.schema.json"),
			Transform: file("globex-order-to-order.jq"), TargetSchema: target, Hub: "process", PartitionKey: ".buyer"}}})

	// The business step: price each order once, and pass it on.
	app.Function("business", sluice.HubTrigger{Hub: "process", MaxBatchSize: 100},
		func(ctx context.Context, events []sluice.Event) error {
			keys := make([]string, len(events))
			for i, e := range events {
				keys[i] = "business/" + e.Properties[sluice.PropPartner] + "/" + e.Properties[sluice.PropMessageID]
			}
			_, err := app.OnceBatch(ctx, keys, 0, func(ctx context.Context, todo []int) error {
				var priced, confirmations []sluice.Event
				for _, i := range todo {
					e := events[i]
					var o Order
					if err := json.Unmarshal(e.Body, &o); err != nil {
						return sluice.DeadLetter(fmt.Errorf("not a canonical order: %w", err), e)
					}
					p := pricedOrder{Order: o}
					for _, l := range o.Lines {
						p.Total += float64(l.Qty) * l.Price
					}
					p.Total = math.Round(p.Total*100) / 100
					body, _ := json.Marshal(p)
					priced = append(priced, sluice.Event{Body: body, PartitionKey: o.OrderID, MessageID: "db/" + keys[i]})
					conf, _ := json.Marshal(Confirmation{OrderID: o.OrderID, Buyer: o.Buyer, Status: "accepted", Total: p.Total, Currency: o.Currency})
					confirmations = append(confirmations, sluice.Event{Body: conf, PartitionKey: o.Partner + "/" + o.Buyer,
						MessageID: "conf/" + keys[i], Properties: map[string]string{
							sluice.PropPartner: o.Partner, sluice.PropMessageType: "confirmation",
							sluice.PropMessageID: "conf-" + o.OrderID,
						}})
				}
				if _, err := app.Publish(ctx, "db-update", priced...); err != nil {
					return err
				}
				_, err := app.Publish(ctx, "post-to-partner", confirmations...)
				return err
			})
			return err
		})
	app.Function("db-update", sluice.HubTrigger{Hub: "db-update", MaxBatchSize: 200},
		sluice.UpsertTo(app, "orders", func(ctx context.Context, events []sluice.Event) ([]any, error) {
			docs := make([]any, 0, len(events))
			for _, e := range events {
				var o map[string]any
				if err := json.Unmarshal(e.Body, &o); err != nil {
					return nil, err
				}
				o["id"] = o["orderId"]
				docs = append(docs, o)
			}
			return docs, nil
		}))
	app.Delivery("post-to-partner", sluice.DeliveryConfig{Hub: "post-to-partner", RetrySchedule: "00:00:02",
		RetryBackoff: time.Second, MaxRetryBackoff: 30 * time.Second})
}

// openTable opens the database and creates the orders table if missing.
func openTable(dsn, table string) (*sql.DB, error) {
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("--table %q: use letters, digits and _", table)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	_, err = db.Exec(`CREATE TABLE IF NOT EXISTS ` + table + ` (order_id text PRIMARY KEY, partner text NOT NULL,
		buyer text NOT NULL, currency text NOT NULL, total numeric(12,2) NOT NULL, lines int NOT NULL)`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create the table %s: %w", table, err)
	}
	return db, nil
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// partnerTokens gives each partner a token the first time and keeps them
// in path (tokens are shown once), for partner-integration send.
func partnerTokens(ctx context.Context, app *sluice.App, path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tokens := map[string]string{}
	for _, p := range []string{"acme", "globex"} {
		t, err := app.PartnerToken(ctx, p, "demo", 0)
		if err != nil {
			return err
		}
		tokens[p] = t
	}
	data, _ := json.MarshalIndent(tokens, "", "  ")
	return os.WriteFile(path, append(data, '\n'), 0o600)
}

// runPartner is both partners' receiving endpoint: POST /acme and /globex
// take confirmations; each signature is checked, each idempotency key
// applied once. GET /received tells what arrived; POST /down and /up
// take it offline and back.
func runPartner(args []string) error {
	fs := flag.NewFlagSet("partner", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:7171", "address to listen on")
	secret := fs.String("secret", envOr("PARTNER_SIGNING_SECRET", demoSecret), "whsec_ secret the confirmations are signed with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r := &receiver{secret: *secret, seen: map[string]bool{}, Applied: map[string][]Confirmation{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{partner}", r.take)
	mux.HandleFunc("GET /received", r.report)
	mux.HandleFunc("POST /down", func(w http.ResponseWriter, _ *http.Request) { r.setDown(true); w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("POST /up", func(w http.ResponseWriter, _ *http.Request) { r.setDown(false); w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "partner endpoint") })
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
	fmt.Fprintln(os.Stderr, "partner endpoint on", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type receiver struct {
	secret string
	mu     sync.Mutex
	down   bool
	seen   map[string]bool
	// What /received reports.
	Applied       map[string][]Confirmation `json:"applied"` // per partner, in the order applied
	Posts         int                       `json:"posts"`
	Repeats       int                       `json:"repeats"` // posts of an idempotency key already applied
	BadSignatures int                       `json:"bad_signatures"`
	RefusedDown   int                       `json:"refused_while_down"`
}

func (r *receiver) setDown(d bool) { r.mu.Lock(); r.down = d; r.mu.Unlock() }

func (r *receiver) take(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Posts++
	if r.down {
		r.RefusedDown++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	if err := sluice.VerifyWebhook(r.secret, req.Header, body, 5*time.Minute); err != nil {
		r.BadSignatures++
		http.Error(w, "signature: "+err.Error(), http.StatusUnauthorized)
		return
	}
	key := req.Header.Get("Idempotency-Key")
	if r.seen[key] {
		r.Repeats++
		w.WriteHeader(http.StatusOK)
		return
	}
	var c Confirmation
	if err := json.Unmarshal(body, &c); err != nil {
		http.Error(w, "not a confirmation", http.StatusUnprocessableEntity)
		return
	}
	r.seen[key] = true
	p := req.PathValue("partner")
	r.Applied[p] = append(r.Applied[p], c)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) report(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(r)
}

// runSend posts orders as the partners do: ACME's as XML, Globex's as
// JSON, for a few buyers each, numbered in order per buyer; every tenth
// one invalid. It prints what was accepted and refused.
func runSend(args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	server := fs.String("server", "http://127.0.0.1:7070", "the instance's API")
	tokensFile := fs.String("tokens", "partner-data/partner-tokens.json", "the partners' tokens (written by the instance)")
	orders := fs.Int("orders", 40, "orders to send, half from each partner")
	from := fs.Int("from", 1, "number of the first order")
	invalidEvery := fs.Int("invalid-every", 10, "make every Nth order invalid (0: none)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := os.ReadFile(*tokensFile)
	if err != nil {
		return fmt.Errorf("the partners' tokens: %w (start the instance first)", err)
	}
	var tokens map[string]string
	if err := json.Unmarshal(data, &tokens); err != nil {
		return err
	}
	sum := struct {
		Accepted int            `json:"accepted"`
		Rejected int            `json:"rejected"`
		Reasons  map[string]int `json:"rejected_by_stage"`
	}{Reasons: map[string]int{}}
	for n := *from; n < *from+*orders; n++ {
		invalid := *invalidEvery > 0 && n%*invalidEvery == 0
		p, typ, ct, body := orderMessage(n, invalid)
		req, _ := http.NewRequest("POST", *server+"/api/v1/partners/"+p+"/messages/"+typ, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokens[p])
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Message-Id", fmt.Sprintf("%s-%d", p, n))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var out struct{ Stage string }
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusAccepted:
			sum.Accepted++
		case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnprocessableEntity:
			sum.Rejected++
			sum.Reasons[out.Stage]++
		default:
			return fmt.Errorf("order %d: %s", n, resp.Status)
		}
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(sum)
	}
	fmt.Printf("accepted %d, rejected %d %v\n", sum.Accepted, sum.Rejected, sum.Reasons)
	return nil
}

// orderMessage is order n: odd numbers from ACME (XML), even from Globex
// (JSON); buyers b0 to b2; invalid ones break the partner's schema.
func orderMessage(n int, invalid bool) (partnerID, typ, contentType string, body []byte) {
	buyer := fmt.Sprintf("b%d", n%3)
	if n%2 == 1 {
		qty := "3"
		if invalid {
			qty = "-3" // not a positiveInteger
		}
		return "acme", "po", "application/xml", fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<PurchaseOrder xmlns="urn:acme:po" number="A-%06d" currency="EUR">
  <Buyer>acme-%s</Buyer>
  <OrderDate>2026-12-07</OrderDate>
  <Line no="1"><Sku>NUT-0001</Sku><Qty>%s</Qty><Price>0.35</Price></Line>
  <Line no="2"><Sku>BLT-0002</Sku><Qty>2</Qty><Price>1.20</Price></Line>
</PurchaseOrder>
`, n, buyer, qty)
	}
	product := "NUT-0001"
	if invalid {
		product = "nut" // breaks the pattern
	}
	return "globex", "order", "application/json", fmt.Appendf(nil,
		`{"id": "G-%06d", "customer": "globex-%s", "currency": "USD", "items": [{"product": %q, "quantity": 4, "unitPrice": 2.5}]}`,
		n, buyer, product)
}
