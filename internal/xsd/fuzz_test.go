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

// gen writes an instance of a corpus schema, steered by fuzz bytes:
// structure from the compiled declarations, values from pools harvested
// from the corpus instances (valid ones first), and now and then a
// mutation (a missing or extra element, a swapped pair, a missing or
// unknown attribute, stray text). Each element starts a line, so
// violations' lines compare with libxml2's.
type gen struct {
	in     []byte
	out    strings.Builder
	pools  map[string][]string
	prefix map[string]string
	depth  int
	// derived lists the named, non-abstract complex types derived from
	// each complex type, for xsi:type.
	derived map[*complexType][]*complexType
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

// pick chooses one of n; the first once the input is spent.
func (g *gen) pick(n int) int {
	if n <= 1 || len(g.in) == 0 {
		return 0
	}
	return int(g.byte()) % n
}

// value picks a lexical value for a node named key (an element's local
// name, or "@" and an attribute's).
func (g *gen) value(key string, t *simpleType) string {
	pool := g.pools[key]
	if len(pool) == 0 {
		if t != nil && t.facets != nil && len(t.facets.enumSrc) > 0 {
			pool = t.facets.enumSrc
		} else {
			pool = []string{"x"}
		}
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

func (g *gen) name(q qname) string {
	if q.ns == "" {
		return q.local
	}
	return g.prefix[q.ns] + ":" + q.local
}

func (g *gen) element(e *elemDecl, depth int, root bool) {
	g.indent(depth)
	name := g.name(e.name)
	g.out.WriteString("<" + name)
	if root {
		for ns, p := range g.prefix {
			if p != "xml" {
				g.out.WriteString(" xmlns:" + p + `="` + ns + `"`)
			}
		}
		g.out.WriteString(` xmlns:xsi="` + XSINamespace + `"`)
	}
	st, ct := e.st, e.ct
	// xsi:type: a type derived from the declared one, always when the
	// declared type is abstract.
	if ct != nil && len(g.derived[ct]) > 0 && (ct.abstract || g.chance(64)) {
		d := g.derived[ct][g.pick(len(g.derived[ct]))]
		g.out.WriteString(` xsi:type="` + g.name(d.name) + `"`)
		ct = d
	}
	if ct != nil {
		for _, u := range ct.attrs {
			if u.required && g.chance(3) || !u.required && g.chance(128) {
				continue
			}
			g.out.WriteString(" " + g.name(u.decl.name) + `="` + xmlEscape(g.value("@"+u.decl.name.local, u.decl.typ)) + `"`)
		}
		if g.chance(3) {
			g.out.WriteString(` unknown="1"`)
		}
	}
	if e.nillable && g.chance(24) {
		g.out.WriteString(` xsi:nil="true">`)
		if g.chance(64) {
			g.out.WriteString("x") // content in a nil element
		}
		g.out.WriteString("</" + name + ">")
		return
	}
	g.out.WriteString(">")
	g.depth++
	switch {
	case st != nil:
		g.out.WriteString(xmlEscape(g.value(e.name.local, st)))
	case ct.kind == ctSimple:
		g.out.WriteString(xmlEscape(g.value(e.name.local, ct.simple)))
	case ct.particle != nil && g.depth < 12:
		if g.chance(2) {
			g.out.WriteString("stray")
		}
		g.particle(ct.particle, depth+1)
		g.indent(depth)
	}
	g.depth--
	g.out.WriteString("</" + name + ">")
}

func (g *gen) particle(p *particle, depth int) {
	if p.wild != nil {
		return
	}
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
			e := p.elem
			if len(e.substitutes) > 0 && g.chance(128) {
				e = e.substitutes[g.pick(len(e.substitutes))]
			}
			if e.abstract && len(e.substitutes) > 0 && !g.chance(3) {
				e = e.substitutes[0]
			}
			g.element(e, depth, false)
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

// fuzzSchema is a corpus schema with its root declaration and value pools.
type fuzzSchema struct {
	path    string
	s       *Schema
	root    *elemDecl
	pools   map[string][]string
	prefix  map[string]string
	derived map[*complexType][]*complexType
}

// fuzzSchemas are the corpus schemas FuzzValidateDifferential generates
// instances of.
var fuzzSchemas = []string{"purchase-order", "shipment-notice", "customer-master", "insurance-claim", "transport-order", "invoice-ubl", "substitution-groups", "identity-constraints", "derivation", "xsi-type-block"}

func loadFuzzSchema(t testing.TB, dir string) *fuzzSchema {
	path, _ := filepath.Abs(filepath.Join("testdata", dir, "schema.xsd"))
	s, err := compileFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	fs := &fuzzSchema{path: path, s: s, pools: map[string][]string{}, prefix: map[string]string{xmltree.XMLNamespace: "xml"}}
	docs, _ := filepath.Glob(filepath.Join("testdata", dir, "*.xml"))
	slices.SortFunc(docs, func(a, b string) int {
		// Values from valid instances first: a pool's first value is the
		// one used unless a mutation picks another.
		av, bv := strings.Contains(a, "/valid"), strings.Contains(b, "/valid")
		switch {
		case av && !bv:
			return -1
		case bv && !av:
			return 1
		}
		return strings.Compare(a, b)
	})
	var roots []*elemDecl
	for _, d := range docs {
		data, _ := os.ReadFile(d)
		tree, err := xmltree.Parse(data, xmltree.Limits{})
		if err != nil {
			continue
		}
		r := tree.Root()
		if e := s.elems[qname{r.Space, r.Local}]; e != nil && !strings.Contains(d, "/bad") {
			roots = append(roots, e)
		}
		harvest(r, fs.pools)
	}
	if len(roots) == 0 {
		t.Fatalf("%s: no valid instance names a root", dir)
	}
	fs.root = roots[0]
	fs.derived = map[*complexType][]*complexType{}
	var names []qname
	for q := range s.types {
		names = append(names, q)
	}
	slices.SortFunc(names, func(a, b qname) int { return strings.Compare(a.String(), b.String()) })
	for _, q := range names {
		d, ok := s.types[q].(*complexType)
		if !ok || d.abstract {
			continue
		}
		for b := d.base; b != nil && b != anyType; b = b.base {
			fs.derived[b] = append(fs.derived[b], d)
		}
		if _, ok := fs.prefix[q.ns]; !ok && q.ns != "" {
			fs.prefix[q.ns] = "t" + strconv.Itoa(len(fs.prefix))
		}
	}
	n := 0
	for _, e := range s.elems {
		for _, q := range reachableNamespaces(e) {
			if _, ok := fs.prefix[q]; !ok && q != "" {
				fs.prefix[q] = "n" + strconv.Itoa(n)
				n++
			}
		}
	}
	return fs
}

func harvest(n *xmltree.Node, pools map[string][]string) {
	add := func(k, v string) {
		if !slices.Contains(pools[k], v) {
			pools[k] = append(pools[k], v)
		}
	}
	for _, a := range n.Attrs {
		if a.Space != XSINamespace {
			add("@"+a.Local, a.Data)
		}
	}
	if len(n.Elements()) == 0 {
		add(n.Local, n.Text())
	}
	for _, k := range n.Elements() {
		harvest(k, pools)
	}
}

// reachableNamespaces lists the namespaces of an element's type's
// declarations (enough for the corpus schemas).
func reachableNamespaces(e *elemDecl) []string {
	seen := map[*elemDecl]bool{}
	var out []string
	var walk func(*elemDecl)
	var walkP func(*particle)
	walk = func(e *elemDecl) {
		if seen[e] {
			return
		}
		seen[e] = true
		out = append(out, e.name.ns)
		for _, m := range e.substitutes {
			walk(m)
		}
		if e.ct != nil {
			for _, u := range e.ct.attrs {
				out = append(out, u.decl.name.ns)
			}
			if e.ct.particle != nil {
				walkP(e.ct.particle)
			}
		}
	}
	walkP = func(p *particle) {
		switch {
		case p.elem != nil:
			walk(p.elem)
		case p.group != nil:
			for _, q := range p.group.parts {
				walkP(q)
			}
		}
	}
	walk(e)
	return out
}

func FuzzValidateDifferential(f *testing.F) {
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("SLUICE_TEST_LIBXML2") == "required" {
			f.Fatalf("xmllint is required (SLUICE_TEST_LIBXML2=required) but not found: %v", err)
		}
		f.Skip("xmllint not installed")
	}
	var schemas []*fuzzSchema
	for _, d := range fuzzSchemas {
		schemas = append(schemas, loadFuzzSchema(f, d))
	}
	for i := range schemas {
		f.Add([]byte{byte(i)})
		f.Add(append([]byte{byte(i)}, bytes.Repeat([]byte{3, 200, 7, 100, 1}, 40)...))
	}
	f.Add(bytes.Repeat([]byte{255}, 64))
	f.Add([]byte("\x00\x05\x10\x80\xff\x03\x07\x01\x02\x09\x10\x40"))
	f.Fuzz(func(t *testing.T, in []byte) {
		fs := schemas[0]
		if len(in) > 0 {
			fs = schemas[int(in[0])%len(schemas)]
			in = in[1:]
		}
		g := &gen{in: in, pools: fs.pools, prefix: fs.prefix, derived: fs.derived}
		g.out.WriteString(`<?xml version="1.0"?>`)
		g.element(fs.root, 0, true)
		g.out.WriteByte('\n')
		doc := g.out.String()
		tree, err := xmltree.Parse([]byte(doc), xmltree.Limits{})
		if err != nil {
			t.Fatalf("generated a document that does not parse: %v\n%s", err, doc)
		}
		vs := fs.s.Validate(tree)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--noout", "--nonet", "--schema", fs.path, "-")
		cmd.Dir = filepath.Dir(fs.path)
		cmd.Stdin = strings.NewReader(doc)
		out, _ := cmd.CombinedOutput()
		text := string(out)
		valid := strings.Contains(text, "- validates")
		if !valid && !strings.Contains(text, "- fails to validate") {
			t.Fatalf("xmllint: %s", text)
		}
		if valid != (len(vs) == 0) {
			t.Fatalf("%s: libxml2 valid=%v, we found %v\n%s\nlibxml2:\n%s", fs.path, valid, vs, doc, text)
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
			t.Fatalf("%s: our first violation is on line %d, libxml2's on line %d\nours: %v\n%s\nlibxml2:\n%s", fs.path, vs[0].Line, first, vs, doc, text)
		}
	})
}
