package partner

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// An XML partner's purchase order: XSD, XSLT to JSON (text output), a JSON
// target schema and a jq key; and XSLT to canonical XML with a target XSD
// and an XPath key.
func TestAcceptXML(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	token := f.partner(t, "acme")
	toJSON := MessageType{Partner: "acme", Name: "po", Format: FormatXML, Schema: testdata(t, "po.xsd"),
		Transform: testdata(t, "po-to-json.xsl"), TargetFormat: FormatJSON,
		TargetSchema: `{"type": "object", "required": ["orderId", "lines"], "properties": {"total": {"type": "integer"}}}`,
		Hub:          "process", PartitionKey: ".orderId"}
	if _, err := f.reg.PutType(ctx, toJSON, true); err != nil {
		t.Fatal(err)
	}
	toXML := MessageType{Partner: "acme", Name: "po-canonical", Format: FormatXML, Schema: testdata(t, "po.xsd"),
		Transform: testdata(t, "po-to-canonical.xsl"), TargetSchema: testdata(t, "canonical.xsd"),
		Hub: "other", PartitionKey: "/Order/@id"}
	if _, err := f.reg.PutType(ctx, toXML, true); err != nil {
		t.Fatal(err)
	}
	po := testdata(t, "po.xml")
	if _, err := f.svc.Accept(ctx, Inbound{Partner: "acme", Type: "po", Token: token, Body: []byte(po)}); err != nil {
		t.Fatal(err)
	}
	e := f.events(t, "process")[0]
	want := `{"buyer":"ACME Retail","currency":"EUR","lines":[{"amount":3.50,"qty":10,"sku":"NUT-0001"},{"amount":6.00,"qty":5,"sku":"BLT-0002"}],"orderId":"PO-4711","total":15}`
	if string(e.Body) != want || e.PartitionKey != "PO-4711" || e.Properties[PropContentType] != "application/json" {
		t.Errorf("published %s key %q %v", e.Body, e.PartitionKey, e.Properties)
	}
	if _, err := f.svc.Accept(ctx, Inbound{Partner: "acme", Type: "po-canonical", Token: token, Body: []byte(po)}); err != nil {
		t.Fatal(err)
	}
	e = f.events(t, "other")[0]
	if !strings.Contains(string(e.Body), `<Order id="PO-4711" currency="EUR"><Item sku="BLT-0002" qty="5"/>`) || e.PartitionKey != "PO-4711" {
		t.Errorf("published %s key %q", e.Body, e.PartitionKey)
	}

	// An invalid order: every violation, with its XPath and line.
	bad := strings.NewReplacer(`currency="EUR"`, `currency="GBP"`, "<Sku>NUT-0001</Sku>", "<Sku>nut</Sku>",
		"<Qty>5</Qty>", "<Qty>-5</Qty>").Replace(po)
	_, err := f.svc.Accept(ctx, Inbound{Partner: "acme", Type: "po", Token: token, Body: []byte(bad)})
	var rej *Rejection
	if !errors.As(err, &rej) || rej.Stage != StageSchema || Status(err) != http.StatusUnprocessableEntity {
		t.Fatalf("err = %v", err)
	}
	locs := map[string]bool{}
	for _, p := range rej.Problems {
		locs[strings.Fields(p.Location)[0]] = true
	}
	for _, l := range []string{"/PurchaseOrder/@currency", "/PurchaseOrder/Line[1]/Qty", "/PurchaseOrder/Line[2]/Sku"} {
		if !locs[l] {
			t.Errorf("no problem at %s: %+v", l, rej.Problems)
		}
	}
	if n := len(f.events(t, "process")); n != 1 {
		t.Errorf("the invalid order published: %d events", n)
	}
}

func TestBadXMLDefinitionsAreRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.partner(t, "acme")
	for _, c := range []struct {
		name string
		t    MessageType
		says string
	}{
		{"not a schema", MessageType{Schema: "<nope/>"}, "schema is not a schema"},
		{"schema construct", MessageType{Schema: `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:redefine schemaLocation="x.xsd"/></xs:schema>`}, "redefine"},
		{"document()", MessageType{Transform: `<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/"><xsl:copy-of select="document('file:///etc/passwd')"/></xsl:template></xsl:stylesheet>`}, "document()"},
		{"bad XPath key", MessageType{PartitionKey: "/Order/@"}, "partition_key"},
		{"unbound prefix", MessageType{PartitionKey: "/po:Order/@id"}, "namespaces"},
		{"JSON target without transform", MessageType{TargetFormat: FormatJSON}, "needs a transform"},
	} {
		mt := c.t
		mt.Partner, mt.Name, mt.Format, mt.Hub = "acme", "t", FormatXML, "process"
		_, err := f.reg.PutType(ctx, mt, true)
		if c.says == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: err = %v, want one saying %q", c.name, err, c.says)
		}
	}
}
