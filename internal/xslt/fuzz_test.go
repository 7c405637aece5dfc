package xslt

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// fuzzOptions keep each execution to milliseconds: the bounds on a
// transformation are MaxDepth and MaxOutput (which also bounds the work),
// never the wall clock.
var fuzzOptions = Options{MaxDepth: 40, MaxOutput: 1 << 14}

var fuzzDoc = `<Feed xmlns:p="urn:p"><Catalog><Product code="A" category="x"><Name>n</Name><Price>1.5</Price></Product></Catalog>
<Orders><Order id="O-1" customer="c"><Ref code="A" qty="2"/>text<p:x/></Order></Orders><!-- c --><?pi d?></Feed>`

// FuzzCompile compiles arbitrary stylesheets and runs those that compile
// on a small document: no panic, no hang.
func FuzzCompile(f *testing.F) {
	names, _ := filepath.Glob("testdata/*.xsl")
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(xslHead + `<xsl:template match="/"><xsl:apply-templates select="//*"/></xsl:template></xsl:stylesheet>`))
	f.Add([]byte(`<r xsl:version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:value-of select="1"/></r>`))
	doc, err := xmltree.Parse([]byte(fuzzDoc), xmltree.Limits{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := Compile(src, fuzzOptions)
		if err != nil {
			if s != nil {
				t.Fatal("a Stylesheet with an error")
			}
			return
		}
		_ = s.MediaType()
		_, _ = s.Transform(doc, map[string]string{"p": "v"})
	})
}

// fuzzStylesheets are the corpus stylesheets FuzzTransformDifferential
// applies, with the root element each expects.
var fuzzStylesheets = []struct{ name, root string }{
	{"asn-grouping", "ShipNotice"},
	{"routing-choose", "ShipNotice"},
	{"priority-conflict", "ShipNotice"},
	{"sort-multi", "Feed"},
	{"key-lookup", "Feed"},
	{"number-lines", "Manual"},
	{"strip-space", "Manual"},
	{"identity-tweak", "PurchaseOrder"},
	{"modes", "Manual"},
	{"builtin-rules", "Manual"},
	{"html-invoice", "Invoice"},
	{"invoice-json", "Invoice"},
	{"attr-sets", "Invoice"},
	{"element-avt", "Invoice"},
	{"variables-scope", "Invoice"},
	{"copy-of-mix", "Invoice"},
}

// The vocabulary of generated documents: the corpus's names and values.
var (
	fuzzElements = []string{"Item", "Carrier", "Product", "Name", "Price", "Weight", "Order", "Ref", "Catalog", "Orders",
		"Chapter", "Section", "Title", "Para", "b", "i", "Appendix", "Line", "Qty", "SKU", "Notes", "Header",
		"Seller", "Buyer", "VAT", "Payment", "Item", "Item"}
	fuzzAttrs = []string{"po", "sku", "qty", "pallet", "code", "category", "customer", "id", "no", "scac", "price", "unit",
		"tax", "price", "qty", "number", "issued", "terms", "paid"}
	fuzzValues = []string{"PO-1001", "PO-1002", "PO-1003", "A-1", "B-8", "P1", "P2", "P3", "1", "2", "10", "0", "-3", "2.5",
		"0.125", "x", "", "alpha", "Zeta", "é", "a&amp;b", "&lt;t&gt;", "&quot;q&quot;", "NaN", "1e3", " 7 ", "AX-100"}
	fuzzTexts = []string{"text", " ", "\n  ", "12", "3.5", "é ü", "a &amp; b", "&lt;x&gt;", "]]&gt;", "Dock  booking", "\t", "0.1"}
)

// fuzzInput builds a document from data: each byte chooses what comes
// next, so the fuzzer explores structure, not XML syntax.
func fuzzInput(data []byte, root string) []byte {
	var b bytes.Buffer
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		c := int(data[0])
		data = data[1:]
		return c
	}
	nodes := 0
	var element func(name string, depth int)
	element = func(name string, depth int) {
		nodes++
		b.WriteString("<" + name)
		for n := next() % 4; n > 0; n-- {
			a := fuzzAttrs[next()%len(fuzzAttrs)]
			if strings.Contains(b.String()[strings.LastIndex(b.String(), "<"):], " "+a+"=") {
				continue
			}
			b.WriteString(" " + a + `="` + fuzzValues[next()%len(fuzzValues)] + `"`)
		}
		b.WriteString(">")
		for n := next() % 5; n > 0 && nodes < 60 && len(data) > 0; n-- {
			switch c := next(); {
			case c%8 == 0:
				b.WriteString(fuzzTexts[next()%len(fuzzTexts)])
			case c%16 == 1:
				b.WriteString("<!--c-->")
			case depth < 5:
				element(fuzzElements[next()%len(fuzzElements)], depth+1)
			}
		}
		b.WriteString("</" + name + ">")
	}
	element(root, 0)
	return b.Bytes()
}

// FuzzTransformDifferential transforms generated documents with corpus
// stylesheets and compares with xsltproc.
func FuzzTransformDifferential(f *testing.F) {
	needXsltproc(f)
	f.Add([]byte{0, 3, 1, 4, 0, 2, 0, 9, 3, 1, 7, 2, 0, 0, 4, 2, 5, 1, 6})
	f.Add([]byte{3, 2, 2, 4, 5, 1, 3, 9, 9, 9, 2, 0, 8, 1})
	f.Add([]byte{5, 4, 1, 7, 2, 4, 10, 11, 12, 13, 4, 14, 9, 9, 0, 16, 3})
	f.Add([]byte("generated documents for every stylesheet of the differential corpus"))
	type compiled struct {
		s    *Stylesheet
		path string
		root string
	}
	var sheets []compiled
	for _, fs := range fuzzStylesheets {
		path := filepath.Join("testdata", fs.name+".xsl")
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		s, err := Compile(src, Options{Resolve: testdataResolve})
		if err != nil {
			f.Fatal(err)
		}
		sheets = append(sheets, compiled{s, path, fs.root})
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		sh := sheets[int(data[0])%len(sheets)]
		input := fuzzInput(data[1:], sh.root)
		// The namespace of identity-tweak's input.
		if sh.root == "PurchaseOrder" {
			input = bytes.Replace(input, []byte("<PurchaseOrder"), []byte(`<PurchaseOrder xmlns="urn:partner:po:1"`), 1)
		}
		doc, err := xmltree.Parse(input, xmltree.Limits{})
		if err != nil {
			t.Fatalf("generated input does not parse: %v\n%s", err, input)
		}
		got, gotErr := sh.s.Transform(doc, nil)
		dir := t.TempDir()
		in := filepath.Join(dir, "in.xml")
		if err := os.WriteFile(in, input, 0o600); err != nil {
			t.Fatal(err)
		}
		want, wantOK, stderr := xsltprocFiles(sh.path, in, nil)
		switch {
		case !wantOK && gotErr == nil:
			t.Fatalf("%s: xsltproc failed (%s) but this package gave:\n%s\ninput:\n%s", sh.path, stderr, got, input)
		case wantOK && gotErr != nil:
			t.Fatalf("%s: this package failed: %v\nxsltproc gave:\n%s\ninput:\n%s", sh.path, gotErr, want, input)
		case wantOK && !bytes.Equal(got, want):
			t.Fatalf("%s: output differs\n--- xsltproc\n%s\n--- this package\n%s\ninput:\n%s", sh.path, want, got, input)
		}
	})
}
