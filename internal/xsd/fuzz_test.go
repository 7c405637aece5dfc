package xsd

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/xmltree"
)

func FuzzCompile(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.xsd")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:include schemaLocation="a"/></xs:schema>`))
	included := []byte(`<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:simpleType name="T"><xs:restriction base="xs:string"/></xs:simpleType></xs:schema>`)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Compile(data, Options{Resolve: func(string, string) ([]byte, error) { return included, nil }})
		if err != nil {
			if s != nil {
				t.Fatal("a Schema with an error")
			}
			return
		}
		// A schema that compiles validates a document without panicking.
		doc, _ := xmltree.Parse([]byte(`<a xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><b x="1">t</b><c/></a>`), xmltree.Limits{})
		s.Validate(doc)
	})
}

// gen writes an instance of the purchase-order schema, steered by fuzz
// bytes: structure from the compiled declarations, values from pools of
// valid and invalid lexical forms, and now and then a mutation (a missing
// or extra element, a bad or missing attribute, stray text). Each element
// starts a line, so violations' lines compare with libxml2's.
type gen struct {
	in  []byte
	out strings.Builder
}

// byte is the next input byte; 255 once the input is spent, so that every
// chance is false and the rest of the document is valid.
func (g *gen) byte() byte {
	if len(g.in) == 0 {
		return 255
	}
	b := g.in[0]
	g.in = g.in[1:]
	return b
}

// chance is true with probability n/256 (false once the input is spent):
// mutations happen by chance.
func (g *gen) chance(n int) bool { return int(g.byte()) < n }

func (g *gen) pick(n int) int {
	if n <= 1 {
		return 0
	}
	return int(g.byte()) % n
}

// Value pools: per named type of the schema, else per built-in. The first
// entries are valid. Values on which we deliberately differ from libxml2
// (see verdictDivergences) are left out.
var valuePools = map[string][]string{
	`"OrderNumberType"`:  {"PO-2026-000123", "PO-0000-999999", "PO-26-1", "po-2026-000123"},
	`"CurrencyCode"`:     {"EUR", " USD ", "CHF", "JPY", "eur"},
	`"PriorityType"`:     {"low", "normal", "high", "urgent", " high"},
	`"NonEmptyString"`:   {"Acme", "x", "", strings.Repeat("n", 71)},
	`"GLNType"`:          {"4012345000009", "401234500000", "40123450000090"},
	`"EmailType"`:        {"a@b.de", "jane.doe@example.com", "a@b", "a b@c.de"},
	`"CountryCode"`:      {"DE", "GB", "D", "de", "DEU"},
	`"UnitCode"`:         {"EA", "KGM", " LTR ", "PCS"},
	`"MoneyType"`:        {"0", "12.50", "1000000.1", "-1", "1.234", "abc", "1234567890123"},
	"xs:positiveInteger": {"1", "+7", "0010", "0", "-3", "1.5", "x"},
	"xs:date":            {"2026-12-07", "2024-02-29", "2026-02-29", "2026-13-01", "07.12.2026"},
	"xs:token":           {"W-100", " spaced  token "},
	"xs:string":          {"text", "", " spaced "},
	"xs:NCName":          {"buyer1", "b", "1buyer", "a:b"},
}

func (g *gen) value(t *simpleType) string {
	pool := valuePools[t.displayName()]
	if pool == nil {
		pool = []string{"x"}
	}
	if !g.chance(12) {
		return pool[0]
	}
	return pool[g.pick(len(pool))]
}

func (g *gen) indent(depth int) {
	g.out.WriteByte('\n')
	g.out.WriteString(strings.Repeat("  ", depth))
}

func (g *gen) element(e *elemDecl, depth int) {
	g.indent(depth)
	g.out.WriteString("<" + e.name.local)
	if e.ct != nil {
		for _, u := range e.ct.attrs {
			if u.required && g.chance(3) || !u.required && g.chance(128) {
				continue
			}
			g.out.WriteString(" " + u.decl.name.local + `="` + xmlEscape(g.value(u.decl.typ)) + `"`)
		}
		if g.chance(3) {
			g.out.WriteString(` unknown="1"`)
		}
	}
	g.out.WriteString(">")
	switch {
	case e.st != nil:
		g.out.WriteString(xmlEscape(g.value(e.st)))
	case e.ct.kind == ctSimple:
		g.out.WriteString(xmlEscape(g.value(e.ct.simple)))
	case e.ct.particle != nil:
		if g.chance(2) {
			g.out.WriteString("stray")
		}
		g.particle(e.ct.particle, depth+1)
		g.indent(depth)
	}
	g.out.WriteString("</" + e.name.local + ">")
}

func (g *gen) particle(p *particle, depth int) {
	n := p.min
	if p.max < 0 || p.max > p.min {
		n += g.pick(3)
		if p.max >= 0 && n > p.max {
			n = p.max
		}
	}
	switch {
	case g.chance(4) && n > 0:
		n-- // a required one missing
	case g.chance(3):
		n++ // one too many
	}
	for range n {
		switch {
		case p.elem != nil:
			if g.chance(2) {
				g.indent(depth)
				g.out.WriteString("<Unexpected/>")
			}
			g.element(p.elem, depth)
		case p.group.kind == choice:
			g.particle(p.group.parts[g.pick(len(p.group.parts))], depth)
		default:
			parts := slices.Clone(p.group.parts)
			if g.chance(3) && len(parts) > 1 {
				i := g.pick(len(parts) - 1)
				parts[i], parts[i+1] = parts[i+1], parts[i]
			}
			for _, q := range parts {
				g.particle(q, depth)
			}
		}
	}
}

func FuzzValidateDifferential(f *testing.F) {
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("SLUICE_TEST_LIBXML2") == "required" {
			f.Fatalf("xmllint is required (SLUICE_TEST_LIBXML2=required) but not found: %v", err)
		}
		f.Skip("xmllint not installed")
	}
	schemaPath, _ := filepath.Abs("testdata/purchase-order/schema.xsd")
	s, err := compileFile(f, schemaPath)
	if err != nil {
		f.Fatal(err)
	}
	root := s.elems[qname{"", "PurchaseOrder"}]
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{255}, 64))
	f.Add([]byte("\x00\x05\x10\x80\xff\x03\x07\x01\x02\x09\x10\x40"))
	f.Add(bytes.Repeat([]byte{3, 200, 7, 100, 1}, 40))
	f.Fuzz(func(t *testing.T, in []byte) {
		g := &gen{in: in}
		g.out.WriteString(`<?xml version="1.0"?>`)
		g.element(root, 0)
		g.out.WriteByte('\n')
		doc := g.out.String()
		tree, err := xmltree.Parse([]byte(doc), xmltree.Limits{})
		if err != nil {
			t.Fatalf("generated a document that does not parse: %v\n%s", err, doc)
		}
		vs := s.Validate(tree)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--noout", "--nonet", "--schema", schemaPath, "-")
		cmd.Stdin = strings.NewReader(doc)
		out, _ := cmd.CombinedOutput()
		text := string(out)
		valid := strings.Contains(text, "- validates")
		if !valid && !strings.Contains(text, "- fails to validate") {
			t.Fatalf("xmllint: %s", text)
		}
		if valid != (len(vs) == 0) {
			t.Fatalf("libxml2 valid=%v, we found %v\n%s\nlibxml2:\n%s", valid, vs, doc, text)
		}
		if valid {
			return
		}
		first := 0
		for _, l := range strings.Split(text, "\n") {
			if m := lintLine.FindStringSubmatch(l); m != nil && m[1] == "-" {
				if n, _ := strconv.Atoi(m[2]); first == 0 || n < first {
					first = n
				}
			}
		}
		if first > 0 && vs[0].Line != first {
			t.Fatalf("our first violation is on line %d, libxml2's on line %d\nours: %v\n%s\nlibxml2:\n%s", vs[0].Line, first, vs, doc, text)
		}
	})
}
