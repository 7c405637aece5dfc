package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/itchyny/gojq"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/xmltree"
	"github.com/sluicehq/sluice/internal/xsd"
	"github.com/sluicehq/sluice/internal/xslt"
)

// PartnerOptions configure the partner workload.
type PartnerOptions struct {
	// DataDir holds one directory per case, removed when it ends. Required.
	DataDir string
	// Messages per inbound case; Deliveries for the delivery case.
	// Defaults 50,000 and 20,000.
	Messages, Deliveries int64
	// Clients are the concurrent HTTP clients (and in-process senders).
	// Default 64.
	Clients int
	// BatchSize is the messages per request of the batch cases. Default
	// 100.
	BatchSize int
	Sync      string
	// Cases to run, from PartnerCases. Default all.
	Cases    []string
	Progress func(string)
}

// PartnerCases are the cases of the partner workload.
//
//   - json, xml: partners' messages posted to the API, one per request,
//     accepted durably (JSON Schema + jq + target schema on 1 KiB JSON;
//     XSD + XSLT + target XSD on a 2 KiB purchase order); baseline: the
//     same validation and transform by the libraries in a plain loop on
//     every core.
//   - json-batch, xml-batch: the same messages, BatchSize per request to
//     the batch route.
//   - delivery: a delivery function posting each message, signed, to a
//     loopback endpoint that verifies the signatures; baseline: a plain
//     Go HTTP client posting the same bodies to the same endpoint. Its
//     latency (publish → verified at the endpoint) is measured at half
//     the measured rate.
var PartnerCases = []string{"json", "xml", "json-batch", "xml-batch", "delivery"}

func (o *PartnerOptions) defaults() {
	o.Messages = cmp.Or(o.Messages, 50_000)
	o.Deliveries = cmp.Or(o.Deliveries, 20_000)
	o.Clients = cmp.Or(o.Clients, 64)
	o.BatchSize = cmp.Or(o.BatchSize, 100)
	o.Sync = cmp.Or(o.Sync, sluice.SyncAlways)
	if len(o.Cases) == 0 {
		o.Cases = PartnerCases
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
}

// RunPartner runs the partner workload and reports one Result per case.
func RunPartner(ctx context.Context, o PartnerOptions, report func(Result)) error {
	o.defaults()
	for _, c := range o.Cases {
		if !slices.Contains(PartnerCases, c) {
			return fmt.Errorf("unknown case %q (cases: %s)", c, strings.Join(PartnerCases, ", "))
		}
	}
	if o.DataDir == "" {
		return errors.New("DataDir is required")
	}
	failed := &failures{workload: "partner"}
	for _, c := range o.Cases {
		o.Progress(c)
		var r Result
		var err error
		switch c {
		case "json", "xml", "json-batch", "xml-batch":
			r, err = partnerInbound(ctx, o, c)
		case "delivery":
			r, err = partnerDelivery(ctx, o)
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed.add(report, c, err)
			continue
		}
		r.PeakRSSMiB = PeakRSSMiB()
		report(r)
	}
	return failed.err()
}

const benchOrderSchema = `{"type": "object", "required": ["id", "customer", "items"],
 "properties": {"id": {"type": "string", "pattern": "^G-[0-9]+$"}, "customer": {"type": "string", "minLength": 1},
  "items": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["product", "quantity", "unitPrice"],
   "properties": {"product": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"}, "quantity": {"type": "integer", "minimum": 1},
    "unitPrice": {"type": "number", "exclusiveMinimum": 0}, "note": {"type": "string"}}}}}}`

const benchOrderJQ = `{orderId: .id, buyer: .customer, lines: [.items[] | {sku: .product, qty: .quantity, price: .unitPrice}]}`

const benchCanonicalSchema = `{"type": "object", "required": ["orderId", "buyer", "lines"],
 "properties": {"orderId": {"type": "string"}, "lines": {"type": "array", "minItems": 1}}}`

// benchJSONMessage is a Globex-like order of about 1 KiB.
func benchJSONMessage(n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id": "G-%08d", "customer": "customer-%d", "items": [`, n, n%100)
	for i := range 8 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"product": "SKU-%04d", "quantity": %d, "unitPrice": %d.25, "note": "line %d of the order, gift wrapped"}`, i, i+1, i+3, i)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

const benchPOSchema = `<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="urn:bench:po" targetNamespace="urn:bench:po" elementFormDefault="qualified">
  <xs:element name="PurchaseOrder">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Buyer" type="xs:string"/>
        <xs:element name="OrderDate" type="xs:date"/>
        <xs:element name="Line" maxOccurs="unbounded">
          <xs:complexType>
            <xs:sequence>
              <xs:element name="Sku"><xs:simpleType><xs:restriction base="xs:string"><xs:pattern value="[A-Z]{3}-[0-9]{4}"/></xs:restriction></xs:simpleType></xs:element>
              <xs:element name="Description" type="xs:string"/>
              <xs:element name="Qty" type="xs:positiveInteger"/>
              <xs:element name="Price" type="xs:decimal"/>
            </xs:sequence>
            <xs:attribute name="no" type="xs:positiveInteger" use="required"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
      <xs:attribute name="number" type="xs:string" use="required"/>
      <xs:attribute name="currency" use="required"><xs:simpleType><xs:restriction base="xs:string"><xs:enumeration value="EUR"/><xs:enumeration value="USD"/></xs:restriction></xs:simpleType></xs:attribute>
    </xs:complexType>
  </xs:element>
</xs:schema>`

const benchPOXSLT = `<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:po="urn:bench:po" exclude-result-prefixes="po">
  <xsl:output method="xml"/>
  <xsl:template match="/po:PurchaseOrder">
    <Order id="{@number}" currency="{@currency}" buyer="{po:Buyer}">
      <xsl:for-each select="po:Line">
        <xsl:sort select="@no" data-type="number"/>
        <Item sku="{po:Sku}" qty="{po:Qty}" amount="{format-number(po:Qty * po:Price, '0.00')}"/>
      </xsl:for-each>
    </Order>
  </xsl:template>
</xsl:stylesheet>`

const benchCanonicalXSD = `<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="Order">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Item" maxOccurs="unbounded">
          <xs:complexType>
            <xs:attribute name="sku" type="xs:string" use="required"/>
            <xs:attribute name="qty" type="xs:positiveInteger" use="required"/>
            <xs:attribute name="amount" type="xs:decimal" use="required"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
      <xs:attribute name="id" type="xs:string" use="required"/>
      <xs:attribute name="currency" type="xs:string" use="required"/>
      <xs:attribute name="buyer" type="xs:string" use="required"/>
    </xs:complexType>
  </xs:element>
</xs:schema>`

// benchXMLMessage is a purchase order of about 2 KiB.
func benchXMLMessage(n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<PurchaseOrder xmlns="urn:bench:po" number="PO-%08d" currency="EUR">
  <Buyer>buyer-%d</Buyer>
  <OrderDate>2026-12-07</OrderDate>
`, n, n%100)
	for i := range 12 {
		fmt.Fprintf(&b, `  <Line no="%d"><Sku>SKU-%04d</Sku><Description>line %d</Description><Qty>%d</Qty><Price>%d.50</Price></Line>
`, 12-i, i, i, i+1, i+2)
	}
	b.WriteString("</PurchaseOrder>\n")
	return []byte(b.String())
}

// partnerInbound measures partners' messages through the API, one per
// request or in batches, and the libraries' baseline.
func partnerInbound(ctx context.Context, o PartnerOptions, c string) (Result, error) {
	format, batched := strings.CutSuffix(c, "-batch")
	msg, typ := benchJSONMessage, sluice.MessageTypeConfig{Name: "order", Format: "json", Schema: benchOrderSchema,
		Transform: benchOrderJQ, TargetSchema: benchCanonicalSchema, Hub: "process", PartitionKey: ".orderId"}
	ct := "application/json"
	if format == "xml" {
		msg, typ = benchXMLMessage, sluice.MessageTypeConfig{Name: "order", Format: "xml", Schema: benchPOSchema,
			Transform: benchPOXSLT, TargetSchema: benchCanonicalXSD, Hub: "process", PartitionKey: "/Order/@id"}
		ct = "application/xml"
	}
	base, err := libraryBaseline(format, msg, o.Messages)
	if err != nil {
		return Result{}, fmt.Errorf("baseline: %w", err)
	}
	app := sluice.New(sluice.Config{DataDir: filepath.Join(o.DataDir, "partner-"+c), HTTPAddr: "127.0.0.1:0", Sync: o.Sync,
		Logger: slog.New(slog.DiscardHandler), MaxConnections: o.Clients + 16})
	app.Hub(sluice.HubConfig{Name: "process", Partitions: 4})
	app.Partner(sluice.PartnerConfig{ID: "bench", Types: []sluice.MessageTypeConfig{typ}})
	if err := app.Start(ctx); err != nil {
		return Result{}, err
	}
	defer func() { _ = app.Stop(context.Background()) }()
	token, err := app.PartnerToken(ctx, "bench", "bench", 0)
	if err != nil {
		return Result{}, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Clients, MaxConnsPerHost: o.Clients}}
	url := app.URL() + "/api/v1/partners/bench/messages/order"
	// Requests of per messages each: bodies[i] is the i-th kind.
	per := int64(1)
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = msg(i)
	}
	size := len(bodies[0])
	if batched {
		per, url, ct = int64(o.BatchSize), url+"/batch", "application/json"
		bodies = benchBatches(bodies, o.BatchSize, format == "xml")
	}
	requests := (o.Messages + per - 1) / per
	var next atomic.Int64
	var failed atomic.Pointer[error]
	start := time.Now()
	cpu0 := cpuSelf()
	var wg sync.WaitGroup
	for range o.Clients {
		wg.Go(func() {
			for {
				n := next.Add(1) - 1
				if n >= requests || ctx.Err() != nil || failed.Load() != nil {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(bodies[n%int64(len(bodies))]))
				req.Header.Set("Content-Type", ct)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						err = fmt.Errorf("request %d: %s", n, resp.Status)
					}
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	cpu := cpuSelf() - cpu0
	if p := failed.Load(); p != nil {
		return Result{}, *p
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	messages := requests * per
	r := Result{Workload: "partner", Case: c, Events: messages, Seconds: took.Seconds(), EventsPerSec: rate(messages, took), Sync: o.Sync}
	r.setBaseline(base.name, base.events, base.took)
	how := "one per HTTP request"
	if batched {
		how = fmt.Sprintf("%d per HTTP request", per)
	}
	r.Note = fmt.Sprintf("%d messages of %d bytes, %s from %d clients, each answered 202 once durable in the hub (4 partitions); "+
		"CPU %.1f µs per message (%d cores); baseline: %s", messages, size, how, o.Clients,
		float64(cpu.Microseconds())/float64(messages), runtime.GOMAXPROCS(0), base.note)
	return r, nil
}

// benchBatches packs messages into batch bodies of per messages each, as
// the batch route takes them (XML documents as JSON strings).
func benchBatches(msgs [][]byte, per int, xml bool) [][]byte {
	out := make([][]byte, 0, 8)
	for b := range cap(out) {
		buf := []byte{'['}
		for i := range per {
			if i > 0 {
				buf = append(buf, ',')
			}
			m := msgs[(b*per+i)%len(msgs)]
			buf = append(buf, `{"body":`...)
			if xml {
				q, _ := json.Marshal(string(m))
				buf = append(buf, q...)
			} else {
				buf = append(buf, m...)
			}
			buf = append(buf, '}')
		}
		out = append(out, append(buf, ']'))
	}
	return out
}

type baselineRun struct {
	name, note string
	events     int64
	took       time.Duration
}

// libraryBaseline validates and transforms n messages with the libraries
// directly, in a plain loop on every core.
func libraryBaseline(c string, msg func(int) []byte, n int64) (baselineRun, error) {
	var one func(body []byte) error
	switch c {
	case "json":
		in, err := benchJSONSchema(benchOrderSchema)
		if err != nil {
			return baselineRun{}, err
		}
		out, err := benchJSONSchema(benchCanonicalSchema)
		if err != nil {
			return baselineRun{}, err
		}
		q, err := gojq.Parse(benchOrderJQ)
		if err != nil {
			return baselineRun{}, err
		}
		code, err := gojq.Compile(q)
		if err != nil {
			return baselineRun{}, err
		}
		one = func(body []byte) error {
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
			if err != nil {
				return err
			}
			if err := in.Validate(v); err != nil {
				return err
			}
			res, _ := code.Run(v).Next()
			if err, ok := res.(error); ok {
				return err
			}
			if err := out.Validate(res); err != nil {
				return err
			}
			_, err = json.Marshal(res)
			return err
		}
	case "xml":
		in, err := xsd.Compile([]byte(benchPOSchema), xsd.Options{})
		if err != nil {
			return baselineRun{}, err
		}
		out, err := xsd.Compile([]byte(benchCanonicalXSD), xsd.Options{})
		if err != nil {
			return baselineRun{}, err
		}
		sheet, err := xslt.Compile([]byte(benchPOXSLT), xslt.Options{})
		if err != nil {
			return baselineRun{}, err
		}
		one = func(body []byte) error {
			doc, err := xmltree.Parse(body, xmltree.Limits{})
			if err != nil {
				return err
			}
			if vs := in.Validate(doc); len(vs) > 0 {
				return errors.New(vs[0].String())
			}
			res, err := sheet.Transform(doc, nil)
			if err != nil {
				return err
			}
			tdoc, err := xmltree.Parse(res, xmltree.Limits{})
			if err != nil {
				return err
			}
			if vs := out.Validate(tdoc); len(vs) > 0 {
				return errors.New(vs[0].String())
			}
			return nil
		}
	}
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = msg(i)
	}
	var next atomic.Int64
	var first atomic.Pointer[error]
	start := time.Now()
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				if err := one(bodies[i%int64(len(bodies))]); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return baselineRun{}, *p
	}
	note := "jsonschema/v6 + gojq + jsonschema/v6 and encoding, on every core, no I/O"
	if c == "xml" {
		note = "xmltree + xsd + xslt + xmltree + xsd, on every core, no I/O"
	}
	return baselineRun{name: c + "-libraries", note: note, events: n, took: time.Since(start)}, nil
}

func benchJSONSchema(src string) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(src))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("bench.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("bench.json")
}

// benchEndpoint is a partner's endpoint that verifies signatures and
// records when each message arrived.
type benchEndpoint struct {
	secret  string
	got     atomic.Int64
	bad     atomic.Int64
	mu      sync.Mutex
	latency []time.Duration // publish → verified, for bodies that carry a send time
	done    chan struct{}
	want    int64
}

func (e *benchEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if e.secret != "" {
		if err := sluice.VerifyWebhook(e.secret, r.Header, body, 5*time.Minute); err != nil {
			e.bad.Add(1)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	if ts, ok := bytes.CutPrefix(body, []byte("t=")); ok {
		if end := bytes.IndexByte(ts, ' '); end > 0 {
			if ns, err := strconv.ParseInt(string(ts[:end]), 10, 64); err == nil {
				e.mu.Lock()
				e.latency = append(e.latency, time.Since(time.Unix(0, ns)))
				e.mu.Unlock()
			}
		}
	}
	if e.got.Add(1) == e.want {
		close(e.done)
	}
	w.WriteHeader(http.StatusNoContent)
}

// partnerDelivery measures a delivery function against a plain client.
func partnerDelivery(ctx context.Context, o PartnerOptions) (Result, error) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the benchmark's signing secret!!"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	ep := &benchEndpoint{}
	srv := &http.Server{Handler: ep, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/hooks"
	body := bytes.Repeat([]byte("x"), 512)

	// Baseline: a plain Go client posting the same bodies, o.Clients at once.
	ep.want, ep.done = o.Deliveries, make(chan struct{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Clients}}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range o.Clients {
		wg.Go(func() {
			for next.Add(1) <= o.Deliveries && ctx.Err() == nil {
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	baseTook := time.Since(start)

	// Sluice: publish the messages, then time the delivery function from
	// its start to the last verified arrival.
	ep.secret, ep.want, ep.done = secret, o.Deliveries, make(chan struct{})
	ep.got.Store(0)
	dir := filepath.Join(o.DataDir, "partner-delivery")
	newApp := func() *sluice.App {
		app := sluice.New(sluice.Config{DataDir: dir, Sync: o.Sync, Logger: slog.New(slog.DiscardHandler)})
		app.Hub(sluice.HubConfig{Name: "out", Partitions: 4})
		app.Partner(sluice.PartnerConfig{ID: "bench", Endpoints: []sluice.PartnerEndpoint{{Name: "main", URL: url, SigningSecrets: []string{secret}}}})
		return app
	}
	pub := newApp()
	if err := pub.Start(ctx); err != nil {
		return Result{}, err
	}
	props := map[string]string{sluice.PropPartner: "bench", sluice.PropMessageType: "confirmation"}
	for sent := int64(0); sent < o.Deliveries; {
		var evs []sluice.Event
		for range min(500, o.Deliveries-sent) {
			evs = append(evs, sluice.Event{Body: body, Properties: props})
			sent++
		}
		if _, err := pub.Publish(ctx, "out", evs...); err != nil {
			_ = pub.Stop(context.Background())
			return Result{}, err
		}
	}
	if err := pub.Stop(ctx); err != nil {
		return Result{}, err
	}
	app := newApp()
	app.Delivery("deliver", sluice.DeliveryConfig{Hub: "out", MaxBatchSize: 500, Concurrency: o.Clients})
	start = time.Now()
	cpu0 := cpuSelf()
	if err := app.Start(ctx); err != nil {
		return Result{}, err
	}
	defer func() { _ = app.Stop(context.Background()) }()
	select {
	case <-ep.done:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-time.After(10 * time.Minute):
		return Result{}, fmt.Errorf("%d of %d deliveries arrived in 10 minutes", ep.got.Load(), o.Deliveries)
	}
	took := time.Since(start)
	cpu := cpuSelf() - cpu0
	if n := ep.bad.Load(); n > 0 {
		return Result{}, fmt.Errorf("%d deliveries had a bad signature", n)
	}
	r := Result{Workload: "partner", Case: "delivery", Events: o.Deliveries, Seconds: took.Seconds(), EventsPerSec: rate(o.Deliveries, took), Sync: o.Sync}
	r.setBaseline("plain-http-client", o.Deliveries, baseTook)

	// Latency at half the rate: publish → verified at the endpoint.
	half := r.EventsPerSec / 2
	ep.want, ep.done = -1, make(chan struct{})
	ep.mu.Lock()
	ep.latency = nil
	ep.mu.Unlock()
	const latencyFor = 3 * time.Second
	tick := time.NewTicker(10 * time.Millisecond)
	per := max(1, int(half/100))
	end := time.Now().Add(latencyFor)
	for time.Now().Before(end) && ctx.Err() == nil {
		<-tick.C
		evs := make([]sluice.Event, per)
		for i := range evs {
			evs[i] = sluice.Event{Body: fmt.Appendf(nil, "t=%d %s", time.Now().UnixNano(), body[:64]), Properties: props}
		}
		if _, err := app.Publish(ctx, "out", evs...); err != nil {
			tick.Stop()
			return Result{}, err
		}
	}
	tick.Stop()
	sent := int64(per) * int64(latencyFor/(10*time.Millisecond))
	for ep.got.Load() < o.Deliveries+sent*9/10 && ctx.Err() == nil && time.Since(end) < time.Minute {
		time.Sleep(50 * time.Millisecond) // measuring only: the figures below say how many arrived
	}
	ep.mu.Lock()
	lat := slices.Clone(ep.latency)
	ep.mu.Unlock()
	r.P50ms, r.P99ms = percentiles(lat)
	r.LatencyAtRate = half
	r.Note = fmt.Sprintf("%d messages of %d bytes on a hub of 4 partitions, published before the delivery function started; "+
		"each POSTed with a Standard Webhooks signature the endpoint verifies, up to %d in flight; CPU %.1f µs per delivery; "+
		"latency publish → verified over %d messages at %.0f/s; baseline: a plain Go client, %d in flight, the same bodies, unsigned",
		o.Deliveries, len(body), o.Clients, float64(cpu.Microseconds())/float64(o.Deliveries), len(lat), half, o.Clients)
	return r, nil
}
