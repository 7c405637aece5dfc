package xpath

import (
	"testing"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// benchOrder is a purchase order of about 2 KiB.
const benchOrder = `<?xml version="1.0" encoding="UTF-8"?>
<po:Order xmlns:po="urn:example:po" number="4500012345" date="2026-11-02">
  <po:Buyer id="BUY-0042"><po:Name>Acme Retail GmbH</po:Name><po:City>Munich</po:City></po:Buyer>
  <po:Seller id="SUP-0917"><po:Name>Northwind Components Ltd.</po:Name><po:City>Leeds</po:City></po:Seller>
  <po:Lines>
    <po:Line no="1" status="open"><po:Sku>NW-1001</po:Sku><po:Desc>Hex bolt M8 x 40</po:Desc><po:Qty unit="EA">500</po:Qty><po:Price>0.12</po:Price></po:Line>
    <po:Line no="2" status="open"><po:Sku>NW-1002</po:Sku><po:Desc>Washer M8</po:Desc><po:Qty unit="EA">1000</po:Qty><po:Price>0.03</po:Price></po:Line>
    <po:Line no="3" status="backorder"><po:Sku>NW-2040</po:Sku><po:Desc>Hydraulic hose 2 m</po:Desc><po:Qty unit="M">25.5</po:Qty><po:Price>14.90</po:Price></po:Line>
    <po:Line no="4" status="open"><po:Sku>NW-3100</po:Sku><po:Desc>Cable tie 200 mm</po:Desc><po:Qty unit="EA">2000</po:Qty><po:Price>0.02</po:Price></po:Line>
    <po:Line no="5" status="open"><po:Sku>NW-3101</po:Sku><po:Desc>Cable tie 300 mm</po:Desc><po:Qty unit="EA">1500</po:Qty><po:Price>0.03</po:Price></po:Line>
    <po:Line no="6" status="cancelled"><po:Sku>NW-9999</po:Sku><po:Desc>Sample kit</po:Desc><po:Qty unit="EA">1</po:Qty><po:Price>0</po:Price></po:Line>
    <po:Line no="7" status="open"><po:Sku>NW-4410</po:Sku><po:Desc>Spring washer M10</po:Desc><po:Qty unit="EA">800</po:Qty><po:Price>0.05</po:Price></po:Line>
    <po:Line no="8" status="open"><po:Sku>NW-4420</po:Sku><po:Desc>Lock nut M10</po:Desc><po:Qty unit="EA">800</po:Qty><po:Price>0.09</po:Price></po:Line>
  </po:Lines>
  <po:Notes>Deliver to gate 3 before 14:00; call ahead.</po:Notes>
</po:Order>`

var benchOpts = Options{Namespaces: func(p string) (string, bool) { return "urn:example:po", p == "po" }}

func benchEval(b *testing.B, src string) {
	b.Helper()
	doc, err := xmltree.Parse([]byte(benchOrder), xmltree.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	e := MustCompile(src, benchOpts)
	c := &Context{Node: doc, Position: 1, Size: 1}
	if _, err := e.Eval(c); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Eval(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvalChildPath(b *testing.B) {
	benchEval(b, "/po:Order/po:Buyer/po:Name")
}

func BenchmarkEvalAttribute(b *testing.B) { benchEval(b, "string(/po:Order/@number)") }

func BenchmarkEvalDescendant(b *testing.B) { benchEval(b, "//po:Line") }

func BenchmarkEvalCount(b *testing.B) { benchEval(b, "count(//po:Line)") }

func BenchmarkEvalPredicate(b *testing.B) {
	benchEval(b, "//po:Line[@status = 'open']/po:Sku")
}

func BenchmarkEvalFirst(b *testing.B) { benchEval(b, "(//po:Line)[1]/po:Sku") }

func BenchmarkEvalChildFirst(b *testing.B) { benchEval(b, "/po:Order/po:Lines/po:Line[1]") }

func BenchmarkEvalLast(b *testing.B) { benchEval(b, "/po:Order/po:Lines/po:Line[last()]") }

func BenchmarkEvalSum(b *testing.B) { benchEval(b, "sum(//po:Line/po:Qty)") }

func BenchmarkEvalArithmeticPredicate(b *testing.B) {
	benchEval(b, "count(//po:Line[po:Qty * po:Price > 10])")
}

func BenchmarkEvalCompareSets(b *testing.B) {
	benchEval(b, "//po:Line/po:Sku = //po:Line[@status = 'cancelled']/po:Sku")
}

func BenchmarkEvalStrings(b *testing.B) {
	benchEval(b, "concat(substring-before(/po:Order/@date, '-'), '/', normalize-space(//po:Notes))")
}

func BenchmarkEvalReverseAxis(b *testing.B) {
	benchEval(b, "//po:Line[last()]/preceding-sibling::po:Line[2]/@no")
}

func BenchmarkEvalUnion(b *testing.B) {
	benchEval(b, "//po:Buyer/po:Name | //po:Seller/po:Name | //po:Notes")
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile("//po:Line[@status = 'open' and po:Qty > 100]/po:Sku | /po:Order/@number", benchOpts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPatternMatch(b *testing.B) {
	doc, err := xmltree.Parse([]byte(benchOrder), xmltree.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := CompilePattern("po:Lines/po:Line[@status = 'open']/po:Sku", benchOpts)
	if err != nil {
		b.Fatal(err)
	}
	nodes := MustCompile("//node()", Options{}).root
	v, _ := nodes.eval(&Context{Node: doc})
	all := v.(NodeSet)
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range all {
			if _, err := p.Match(n, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}
