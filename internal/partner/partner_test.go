package partner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/hub"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	eng  *engine.Engine
	reg  *Registry
	hubs *hub.Service
	svc  *Service
	clk  *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	eng := enginetest.Embedded(t)
	clk := &clock{now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	kv, err := OpenBucket(ctx, eng.JS)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := Open(ctx, kv, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop(context.Background()) })
	hubs, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hubs.Stop(context.Background()) })
	for _, h := range []string{"process", "other"} {
		if _, err := hubs.Create(ctx, hub.Config{Name: h, Partitions: 1}); err != nil {
			t.Fatal(err)
		}
	}
	log, err := OpenRejectionLog(ctx, eng.JS)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{eng: eng, reg: reg, hubs: hubs, clk: clk,
		svc: &Service{Registry: reg, Hubs: hubs, Rejections: log, Now: clk.Now}}
}

// partner registers an enabled partner with one token.
func (f *fixture) partner(t *testing.T, id string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := f.reg.CreatePartner(ctx, Partner{ID: id, Name: strings.ToUpper(id), Enabled: true}); err != nil {
		t.Fatal(err)
	}
	_, token, err := f.reg.AddToken(ctx, id, "main", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// events reads every event of a hub's partition 0.
func (f *fixture) events(t *testing.T, name string) []hub.StoredEvent {
	t.Helper()
	ctx := context.Background()
	_, parts, err := f.hubs.Describe(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if parts[0].LastSequence < 0 {
		return nil
	}
	r, err := f.hubs.OpenReader(ctx, name, 0, hub.Start{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []hub.StoredEvent
	for len(out) == 0 || out[len(out)-1].Sequence < parts[0].LastSequence {
		evs, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
	}
	return out
}

const orderSchema = `{
  "type": "object",
  "required": ["orderId", "lines"],
  "properties": {
    "orderId": {"type": "string", "minLength": 1},
    "date": {"type": "string", "format": "date"},
    "lines": {"type": "array", "minItems": 1, "items": {
      "type": "object", "required": ["sku", "qty"],
      "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}
    }}
  }
}`

const canonicalSchema = `{"type": "object", "required": ["id", "partner", "items"],
  "properties": {"items": {"type": "integer", "minimum": 1}}}`

func jsonType(partnerID string) MessageType {
	return MessageType{Partner: partnerID, Name: "order", Format: FormatJSON, Schema: orderSchema,
		Transform:    `{id: .orderId, partner: "acme", items: (.lines | length), qty: ([.lines[].qty] | add)}`,
		TargetSchema: canonicalSchema, Hub: "process", PartitionKey: ".id"}
}

func TestAcceptJSON(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	token := f.partner(t, "acme")
	if _, err := f.reg.PutType(ctx, jsonType("acme"), true); err != nil {
		t.Fatal(err)
	}
	body := `{"orderId": "PO-1", "date": "2026-12-07", "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 3}]}`
	acc, err := f.svc.Accept(ctx, Inbound{Partner: "acme", Type: "order", Token: token, Body: []byte(body), MessageID: "m-1"})
	if err != nil {
		t.Fatal(err)
	}
	if acc.MessageID != "m-1" || acc.Hub != "process" || acc.Partner != "acme" {
		t.Errorf("accepted = %+v", acc)
	}
	evs := f.events(t, "process")
	if len(evs) != 1 {
		t.Fatalf("hub holds %d events, want 1", len(evs))
	}
	e := evs[0]
	if got := string(e.Body); got != `{"id":"PO-1","items":2,"partner":"acme","qty":5}` {
		t.Errorf("published body = %s", got)
	}
	if e.PartitionKey != "PO-1" {
		t.Errorf("partition key = %q", e.PartitionKey)
	}
	want := map[string]string{PropPartner: "acme", PropType: "order", PropMessageID: "m-1",
		PropReceived: "2026-12-07T12:00:00Z", PropContentType: "application/json"}
	for k, v := range want {
		if e.Properties[k] != v {
			t.Errorf("property %s = %q, want %q", k, e.Properties[k], v)
		}
	}
	if e.Sequence != acc.Sequence {
		t.Errorf("answered sequence %d, stored %d", acc.Sequence, e.Sequence)
	}

	// The same message id again: the first answer, nothing stored again.
	again, err := f.svc.Accept(ctx, Inbound{Partner: "acme", Type: "order", Token: token, Body: []byte(body), MessageID: "m-1"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Sequence != acc.Sequence || again.Partition != acc.Partition {
		t.Errorf("repeated id answered %+v, first %+v", again, acc)
	}
	// Without an id: one is made, and each send is stored.
	noID, err := f.svc.Accept(ctx, Inbound{Partner: "acme", Type: "order", Token: token, Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	if len(noID.MessageID) != 32 {
		t.Errorf("made message id %q", noID.MessageID)
	}
	if n := len(f.events(t, "process")); n != 2 {
		t.Errorf("hub holds %d events, want 2", n)
	}
}

// A message that fails is refused with every problem and its location,
// nothing is published, and the rejection is in the partner's log.
func TestRejectionsListEveryProblemAndPublishNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	token := f.partner(t, "acme")
	if _, err := f.reg.PutType(ctx, jsonType("acme"), true); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, body string
		status     int
		stage      string
		locations  []string
	}{
		{"malformed", `{"orderId": "PO-1", `, http.StatusBadRequest, StageParse, nil},
		{"trailing data", `{"orderId": "PO-1"} {}`, http.StatusBadRequest, StageParse, nil},
		{"schema", `{"orderId": "", "date": "07/12/2026", "lines": [{"sku": "A", "qty": 0}, {"qty": "x"}]}`,
			http.StatusUnprocessableEntity, StageSchema, []string{"/orderId", "/date", "/lines/0/qty", "/lines/1", "/lines/1/qty"}},
		{"target schema", `{"orderId": "PO-2", "lines": []}`, http.StatusUnprocessableEntity, StageSchema, []string{"/lines"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.svc.Accept(ctx, Inbound{Partner: "acme", Type: "order", Token: token, Body: []byte(c.body), MessageID: "bad-" + c.name})
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("err = %v, want a *Rejection", err)
			}
			if Status(err) != c.status || rej.Stage != c.stage {
				t.Errorf("status %d stage %s, want %d %s: %v", Status(err), rej.Stage, c.status, c.stage, err)
			}
			got := map[string]bool{}
			for _, p := range rej.Problems {
				got[p.Location] = true
				if p.Reason == "" {
					t.Errorf("problem at %s has no reason", p.Location)
				}
			}
			for _, l := range c.locations {
				if !got[l] {
					t.Errorf("no problem at %s; problems: %+v", l, rej.Problems)
				}
			}
		})
	}
	if n := len(f.events(t, "process")); n != 0 {
		t.Errorf("refused messages published %d events", n)
	}
	recs, err := f.svc.Rejections.List(ctx, "acme", time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(cases) {
		t.Fatalf("rejection log has %d records, want %d", len(recs), len(cases))
	}
	if recs[0].MessageID != "bad-target schema" || recs[len(recs)-1].MessageID != "bad-malformed" {
		t.Errorf("log order (newest first): %s … %s", recs[0].MessageID, recs[len(recs)-1].MessageID)
	}
	if recs[1].Stage != StageSchema || len(recs[1].Problems) < 5 || !strings.Contains(recs[1].Body, "07/12/2026") {
		t.Errorf("schema rejection record = %+v", recs[1])
	}
	// The limit keeps the newest.
	if two, _ := f.svc.Rejections.List(ctx, "acme", time.Time{}, 2); len(two) != 2 || two[0].MessageID != recs[0].MessageID || two[1].MessageID != recs[1].MessageID {
		t.Errorf("limit 2 gave %+v", two)
	}
	if other, _ := f.svc.Rejections.List(ctx, "globex", time.Time{}, 10); len(other) != 0 {
		t.Errorf("another partner's log has %d records", len(other))
	}
}

func TestTransformFailures(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	token := f.partner(t, "acme")
	typ := jsonType("acme")
	typ.Transform = `{id: .orderId, partner: "acme", items: 0}` // breaks the target schema
	if _, err := f.reg.PutType(ctx, typ, true); err != nil {
		t.Fatal(err)
	}
	multi := MessageType{Partner: "acme", Name: "multi", Format: FormatJSON, Transform: `.lines[]`, Hub: "process"}
	if _, err := f.reg.PutType(ctx, multi, true); err != nil {
		t.Fatal(err)
	}
	keyless := MessageType{Partner: "acme", Name: "keyless", Format: FormatJSON, Hub: "process", PartitionKey: ".missing"}
	if _, err := f.reg.PutType(ctx, keyless, true); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"orderId": "PO-1", "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]}`)
	for _, c := range []struct{ typ, stage, says string }{
		{"order", StageTargetSchema, "/items"},
		{"multi", StageTransform, "more than one result"},
		{"keyless", StagePartitionKey, "null"},
	} {
		_, err := f.svc.Accept(ctx, Inbound{Partner: "acme", Type: c.typ, Token: token, Body: body})
		var rej *Rejection
		if !errors.As(err, &rej) || rej.Stage != c.stage || !strings.Contains(err.Error(), c.says) {
			t.Errorf("type %s: err = %v, want a rejection at %s saying %q", c.typ, err, c.stage, c.says)
		}
	}
	if n := len(f.events(t, "process")); n != 0 {
		t.Errorf("published %d events", n)
	}
}

func TestTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.partner(t, "acme")
	other := f.partner(t, "globex")
	if _, err := f.reg.PutType(ctx, jsonType("acme"), true); err != nil {
		t.Fatal(err)
	}
	sharedType := MessageType{Name: "invoice", Format: FormatJSON, Hub: "process", Partners: []string{"acme"}}
	if _, err := f.reg.PutType(ctx, sharedType, true); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"orderId": "PO-1", "lines": [{"sku": "A", "qty": 1}]}`)
	send := func(partnerID, typ, token string) error {
		_, err := f.svc.Accept(ctx, Inbound{Partner: partnerID, Type: typ, Token: token, Body: body})
		return err
	}
	if err := send("acme", "order", first); err != nil {
		t.Fatal(err)
	}
	expect := func(name string, err error, target error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Errorf("%s: err = %v, want %v", name, err, target)
		}
	}
	expect("no token", send("acme", "order", ""), ErrUnauthorized)
	expect("an API key", send("acme", "order", "sluice_0123456789ab_"+strings.Repeat("0", 64)), ErrUnauthorized)
	wrong := first[:len(first)-1] + map[bool]string{true: "0", false: "1"}[first[len(first)-1] != '0']
	expect("wrong secret", send("acme", "order", wrong), ErrUnauthorized)
	expect("another partner's token", send("acme", "order", other), ErrUnauthorized)
	expect("another partner's type", send("globex", "order", other), ErrNotFound)
	expect("a shared type not open to the partner", send("globex", "invoice", other), ErrForbidden)
	if err := send("acme", "invoice", first); err != nil {
		t.Errorf("shared type open to acme: %v", err)
	}
	expect("unknown type", send("acme", "nope", first), ErrNotFound)

	// Rotation: a second token; both work until the first is revoked.
	tok2, second, err := f.reg.AddToken(ctx, "acme", "rotated", f.clk.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := send("acme", "order", first); err != nil {
		t.Errorf("first token during the overlap: %v", err)
	}
	if err := send("acme", "order", second); err != nil {
		t.Errorf("second token during the overlap: %v", err)
	}
	p, _ := f.reg.Partner("acme")
	if _, err := f.reg.RevokeToken(ctx, "acme", p.Tokens[0].ID); err != nil {
		t.Fatal(err)
	}
	expect("revoked", send("acme", "order", first), ErrUnauthorized)
	if err := send("acme", "order", second); err != nil {
		t.Errorf("second token after the revocation: %v", err)
	}
	// Expiry.
	f.clk.Add(time.Hour)
	err = send("acme", "order", second)
	expect("expired", err, ErrUnauthorized)
	if err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), tok2.ID) {
		t.Errorf("expiry error = %v", err)
	}
	// Disabled partner.
	third, _, _ := f.reg.AddToken(ctx, "acme", "third", time.Time{})
	_ = third
	_, tok3, err := f.reg.AddToken(ctx, "acme", "fourth", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.UpdatePartner(ctx, "acme", func(p *Partner) error { p.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	expect("disabled partner", send("acme", "order", tok3), ErrForbidden)
	if Status(send("acme", "order", tok3)) != http.StatusForbidden || Status(send("acme", "order", "x")) != http.StatusUnauthorized {
		t.Error("statuses of disabled partner / bad token")
	}
	// Hashes never leave the registry; uses are recorded.
	f.reg.FlushLastUsed(ctx)
	p, _ = f.reg.Partner("globex")
	for _, tk := range p.Tokens {
		if tk.Hash != "" {
			t.Error("Partner returned a token hash")
		}
	}
	if p.Tokens[0].LastUsed.IsZero() {
		t.Error("globex's token use was not recorded")
	}
}

// A registry on another instance (another Registry on the same bucket)
// sees partners, tokens and types change without a restart.
func TestRegistryChangesLive(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	kv, err := OpenBucket(ctx, f.eng.JS)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, kv, Options{Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Stop(ctx)
	token := f.partner(t, "acme")
	if _, err := f.reg.PutType(ctx, jsonType("acme"), true); err != nil {
		t.Fatal(err)
	}
	svc := &Service{Registry: other, Hubs: f.hubs, Now: f.clk.Now}
	body := []byte(`{"orderId": "PO-1", "lines": [{"sku": "A", "qty": 1}]}`)
	waitFor(t, "the other instance to accept acme's order", func() bool {
		_, err := svc.Accept(ctx, Inbound{Partner: "acme", Type: "order", Token: token, Body: body})
		return err == nil
	})
	p, _ := f.reg.Partner("acme")
	if _, err := f.reg.RevokeToken(ctx, "acme", p.Tokens[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other instance to refuse the revoked token", func() bool {
		_, err := svc.Accept(ctx, Inbound{Partner: "acme", Type: "order", Token: token, Body: body})
		return errors.Is(err, ErrUnauthorized)
	})
}

// waitFor polls cond until it holds; the test's own timeout bounds it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// Definitions that cannot work are refused when registered, saying why,
// and nothing is stored.
func TestBadDefinitionsAreRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.partner(t, "acme")
	base := func() MessageType {
		return MessageType{Partner: "acme", Name: "t", Format: FormatJSON, Hub: "process"}
	}
	cases := []struct {
		name string
		mod  func(*MessageType)
		says string
	}{
		{"bad name", func(m *MessageType) { m.Name = "Bad Name" }, "lowercase"},
		{"format", func(m *MessageType) { m.Format = "csv" }, `"json" or "xml"`},
		{"no hub", func(m *MessageType) { m.Hub = "" }, "hub"},
		{"schema not JSON", func(m *MessageType) { m.Schema = "{" }, "schema is not JSON"},
		{"schema invalid", func(m *MessageType) { m.Schema = `{"type": 12}` }, "not a valid JSON Schema"},
		{"schema loads a file", func(m *MessageType) { m.Schema = `{"$ref": "file:///etc/passwd"}` }, "cannot load files or URLs"},
		{"schema loads a URL", func(m *MessageType) { m.Schema = `{"$ref": "http://169.254.169.254/x.json"}` }, "cannot load files or URLs"},
		{"jq syntax", func(m *MessageType) { m.Transform = ".a | {" }, "not a jq program"},
		{"jq unknown function", func(m *MessageType) { m.Transform = "nosuch(1)" }, "jq"},
		{"partition key", func(m *MessageType) { m.PartitionKey = "][" }, "partition_key"},
		{"json to xml", func(m *MessageType) { m.TargetFormat = FormatXML }, "cannot have an XML target"},
		{"unknown partner", func(m *MessageType) { m.Partner = "nobody" }, "not found"},
		{"partners on an owned type", func(m *MessageType) { m.Partners = []string{"x"} }, "shared type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			c.mod(&m)
			_, err := f.reg.PutType(ctx, m, true)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("err = %v, want one saying %q", err, c.says)
			}
		})
	}
	if n := len(f.reg.Types("")); n != 0 {
		t.Errorf("%d types stored", n)
	}
	if _, err := f.reg.PutType(ctx, base(), true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.PutType(ctx, base(), true); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v", err)
	}
	if _, err := f.reg.CreatePartner(ctx, Partner{ID: "acme"}); !errors.Is(err, ErrExists) {
		t.Errorf("second partner create: %v", err)
	}
}

// jq programs cannot read the server's environment.
func TestJQCannotReadTheEnvironment(t *testing.T) {
	t.Setenv("SLUICE_ADMIN_KEY", "secret-value")
	f := newFixture(t)
	ctx := context.Background()
	token := f.partner(t, "acme")
	if _, err := f.reg.PutType(ctx, MessageType{Partner: "acme", Name: "env", Format: FormatJSON, Hub: "process", Transform: `{e: $ENV, f: env}`}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Accept(ctx, Inbound{Partner: "acme", Type: "env", Token: token, Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if body := string(f.events(t, "process")[0].Body); strings.Contains(body, "secret-value") {
		t.Errorf("the jq transform read the environment: %s", body)
	}
}

// XML messages are parsed safely: entity tricks, depth and size are
// refused before anything else runs.
func TestXMLIsParsedSafely(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	token := f.partner(t, "acme")
	if _, err := f.reg.PutType(ctx, MessageType{Partner: "acme", Name: "po", Format: FormatXML, Hub: "process", MaxBytes: 4096}, true); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, body string
		status     int
		says       string
	}{
		{"billion laughs", `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>`, 400, "DOCTYPE"},
		{"external entity", `<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`, 400, "DOCTYPE"},
		{"malformed", `<order><line></order>`, 400, "line 1"},
		{"too deep", strings.Repeat("<a>", 101) + strings.Repeat("</a>", 101), 400, "deep"},
		{"too large", "<a>" + strings.Repeat("x", 5000) + "</a>", 413, "limit"},
	}
	for _, c := range cases {
		_, err := f.svc.Accept(ctx, Inbound{Partner: "acme", Type: "po", Token: token, Body: []byte(c.body)})
		if Status(err) != c.status || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: status %d err %v, want %d saying %q", c.name, Status(err), err, c.status, c.says)
		}
	}
	if n := len(f.events(t, "process")); n != 0 {
		t.Errorf("published %d events", n)
	}
	if _, err := f.svc.Accept(ctx, Inbound{Partner: "acme", Type: "po", Token: token, Body: []byte(`<order id="1"/>`)}); err != nil {
		t.Fatal(err)
	}
	if e := f.events(t, "process")[0]; string(e.Body) != `<order id="1"/>` || e.Properties[PropContentType] != "application/xml" {
		t.Errorf("published %s %v", e.Body, e.Properties)
	}
}

// A batch: every message is checked on its own, the good ones are stored
// together in the order sent, the bad ones are refused with their reasons
// and logged, and a repeated id stores nothing twice.
func TestAcceptBatch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	token := f.partner(t, "acme")
	if _, err := f.reg.PutType(ctx, jsonType("acme"), true); err != nil {
		t.Fatal(err)
	}
	order := func(n int) []byte {
		return fmt.Appendf(nil, `{"orderId": "PO-%d", "lines": [{"sku": "A", "qty": %d}]}`, n, n)
	}
	var msgs []BatchMessage
	for n := range 40 {
		m := BatchMessage{MessageID: fmt.Sprintf("b-%d", n), Body: order(n + 1)}
		switch n {
		case 7:
			m.Body = []byte(`{"orderId": "", "lines": []}`)
		case 23:
			m.MessageID = "bad\x01id"
		case 31:
			m.MessageID = "" // one is made
		}
		msgs = append(msgs, m)
	}
	b := Batch{Partner: "acme", Type: "order", Token: token, Messages: msgs, Remote: "192.0.2.1:5"}
	res, err := f.svc.AcceptBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(msgs) {
		t.Fatalf("%d results for %d messages", len(res), len(msgs))
	}
	evs := f.events(t, "process")
	if len(evs) != 38 {
		t.Fatalf("hub holds %d events, want 38", len(evs))
	}
	stored := 0
	for i, r := range res {
		switch i {
		case 7, 23:
			var rej *Rejection
			if !errors.As(r.Err, &rej) {
				t.Errorf("message %d: err = %v, want a rejection", i, r.Err)
			}
			continue
		}
		if r.Err != nil {
			t.Errorf("message %d refused: %v", i, r.Err)
			continue
		}
		// Stored in the order sent, each at the sequence it was told.
		e := evs[stored]
		stored++
		if e.Sequence != r.Accepted.Sequence || e.Properties[PropMessageID] != r.Accepted.MessageID {
			t.Errorf("message %d answered %+v, stored %d with id %q", i, r.Accepted, e.Sequence, e.Properties[PropMessageID])
		}
		if want := fmt.Sprintf("PO-%d", i+1); e.PartitionKey != want {
			t.Errorf("message %d: partition key %q, want %q", i, e.PartitionKey, want)
		}
	}
	if id := res[31].Accepted.MessageID; len(id) != 32 {
		t.Errorf("made message id %q", id)
	}
	recs, err := f.svc.Rejections.List(ctx, "acme", time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[1].MessageID != "b-7" || recs[1].Stage != StageSchema || recs[0].Stage != StageParse {
		t.Errorf("rejection log = %+v", recs)
	}

	// The batch again: the ids it had are not stored again, and each
	// answer is the first one's.
	again, err := f.svc.AcceptBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.events(t, "process")); n != 39 {
		t.Errorf("hub holds %d events after the batch again, want 39 (only the message without id is new)", n)
	}
	if again[5].Accepted.Sequence != res[5].Accepted.Sequence {
		t.Errorf("repeated id answered %+v, first %+v", again[5].Accepted, res[5].Accepted)
	}

	// Refusals of the whole batch store nothing.
	before := len(f.events(t, "process"))
	for _, c := range []struct {
		name string
		b    Batch
		want error
	}{
		{"bad token", Batch{Partner: "acme", Type: "order", Token: "sluicep_nope", Messages: msgs}, ErrUnauthorized},
		{"unknown type", Batch{Partner: "acme", Type: "invoice", Token: token, Messages: msgs}, ErrNotFound},
		{"empty", Batch{Partner: "acme", Type: "order", Token: token}, ErrInvalid},
		{"too many", Batch{Partner: "acme", Type: "order", Token: token, Messages: make([]BatchMessage, MaxBatchMessages+1)}, ErrTooLarge},
	} {
		if _, err := f.svc.AcceptBatch(ctx, c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	if n := len(f.events(t, "process")); n != before {
		t.Errorf("refused batches stored %d events", n-before)
	}
}
