package xsd

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// Identity constraints: xs:unique, xs:key and xs:keyref, with the XPath
// subset XSD 1.0 defines for selectors and fields (§3.11.6): child steps,
// ".", "*", "prefix:*", a leading ".//", unions with "|", and a final
// attribute step in fields.

type idcKind uint8

const (
	idcUnique idcKind = iota
	idcKey
	idcKeyref
)

func (k idcKind) String() string {
	return [...]string{"unique", "key", "keyref"}[k]
}

type idc struct {
	kind     idcKind
	name     qname
	selector []xpath
	fields   [][]xpath
	refer    *idc
	referQ   qname
	line     int
	doc      *schemaDoc
	node     *xmltree.Node
}

// xpath is one path of a selector or field.
type xpath struct {
	descendant bool // .//
	steps      []nameTest
	attr       *nameTest // a field's final @name
}

// nameTest matches a name; self is ".", any "*", and an empty local with
// a namespace "prefix:*".
type nameTest struct {
	self, any bool
	ns, local string
}

func (t nameTest) matches(n *xmltree.Node) bool {
	switch {
	case t.any:
		return true
	case t.local == "":
		return n.Space == t.ns
	}
	return n.Local == t.local && n.Space == t.ns
}

// parseXPath reads a selector (field false) or field expression.
func parseXPath(expr string, field bool, ns nsContext) ([]xpath, error) {
	var out []xpath
	for _, alt := range strings.Split(expr, "|") {
		p, err := parsePath(strings.TrimSpace(alt), field, ns)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePath(s string, field bool, ns nsContext) (xpath, error) {
	var p xpath
	if s == "" {
		return p, fmt.Errorf("empty path")
	}
	if strings.HasPrefix(s, ".//") {
		p.descendant = true
		s = s[3:]
	}
	steps := strings.Split(s, "/")
	for i, st := range steps {
		st = strings.TrimSpace(st)
		last := i == len(steps)-1
		if strings.HasPrefix(st, "child::") {
			st = strings.TrimSpace(st[len("child::"):])
		}
		isAttr := false
		switch {
		case strings.HasPrefix(st, "@"):
			isAttr, st = true, strings.TrimSpace(st[1:])
		case strings.HasPrefix(st, "attribute::"):
			isAttr, st = true, strings.TrimSpace(st[len("attribute::"):])
		}
		if isAttr && (!field || !last) {
			return p, fmt.Errorf("an attribute step is allowed only at the end of a field")
		}
		t, err := parseNameTest(st, isAttr, ns)
		if err != nil {
			return p, err
		}
		if isAttr {
			p.attr = &t
		} else {
			p.steps = append(p.steps, t)
		}
	}
	return p, nil
}

func parseNameTest(s string, isAttr bool, ns nsContext) (nameTest, error) {
	switch {
	case s == "." && !isAttr:
		return nameTest{self: true}, nil
	case s == "*":
		return nameTest{any: true}, nil
	case s == "":
		return nameTest{}, fmt.Errorf("empty step")
	}
	prefix, local := "", s
	if i := strings.IndexByte(s, ':'); i >= 0 {
		prefix, local = s[:i], s[i+1:]
		if !isNCName(prefix) {
			return nameTest{}, fmt.Errorf("bad name test %q", s)
		}
	}
	if local != "*" && !isNCName(local) {
		return nameTest{}, fmt.Errorf("%q is not a name test of the XPath subset XSD allows", s)
	}
	t := nameTest{local: local}
	if prefix != "" {
		uri, ok := ns.LookupPrefix(prefix)
		if !ok {
			return nameTest{}, fmt.Errorf("the prefix %q is not declared", prefix)
		}
		t.ns = uri
	}
	if local == "*" {
		t.local = ""
		if prefix == "" {
			t.any = true
		}
	}
	return t, nil
}

// selectNodes evaluates paths from context element e, appending the
// elements (or, for fields, attributes) selected. One path reaches each
// node once (child steps from distinct starts reach distinct nodes); a
// union may reach one twice, so its results are deduplicated.
func selectNodes(e *xmltree.Node, paths []xpath, out []*xmltree.Node) []*xmltree.Node {
	for _, p := range paths {
		starts := []*xmltree.Node{e}
		if p.descendant {
			starts = appendDescendantsOrSelf(e, nil)
		}
		for _, s := range starts {
			out = walkSteps(s, p, 0, out)
		}
	}
	if len(paths) > 1 {
		seen := make(map[*xmltree.Node]bool, len(out))
		uniq := out[:0]
		for _, n := range out {
			if !seen[n] {
				seen[n] = true
				uniq = append(uniq, n)
			}
		}
		out = uniq
		// Document order, as XPath node-sets are.
		slices.SortFunc(out, func(a, b *xmltree.Node) int { return a.Order - b.Order })
	}
	return out
}

func appendDescendantsOrSelf(e *xmltree.Node, out []*xmltree.Node) []*xmltree.Node {
	out = append(out, e)
	for _, k := range e.Children {
		if k.Kind == xmltree.Element {
			out = appendDescendantsOrSelf(k, out)
		}
	}
	return out
}

func walkSteps(n *xmltree.Node, p xpath, i int, out []*xmltree.Node) []*xmltree.Node {
	if i == len(p.steps) {
		if p.attr == nil {
			return append(out, n)
		}
		for _, a := range n.Attrs {
			if a.Space != XSINamespace && p.attr.matches(a) {
				out = append(out, a)
			}
		}
		return out
	}
	t := p.steps[i]
	if t.self {
		return walkSteps(n, p, i+1, out)
	}
	for _, k := range n.Children {
		if k.Kind == xmltree.Element && t.matches(k) {
			out = walkSteps(k, p, i+1, out)
		}
	}
	return out
}

// key is a value's identity for key-sequences: equal values (in the value
// space, so 1 and 1.0 as decimals) give equal keys.
func (v *value) key() string {
	switch v.prim {
	case pDecimal:
		return "d" + v.dec.String()
	case pFloat, pDouble:
		if math.IsNaN(v.f) {
			return "fNaN"
		}
		if v.f == 0 {
			return "f0" // -0 equals 0
		}
		return "f" + strconv.FormatFloat(v.f, 'g', -1, 64)
	case pDateTime, pTime, pDate, pGYearMonth, pGYear, pGMonthDay, pGDay, pGMonth:
		return "t" + strconv.Itoa(int(v.prim)) + ":" + strconv.FormatInt(v.dt.secs, 10) + "." + v.dt.frac + ":" + strconv.FormatBool(v.dt.hasTZ)
	case pDuration:
		m, s := v.dur.months, v.dur.secs
		if v.dur.neg {
			m, s = -m, -s
		}
		return "p" + strconv.FormatInt(m, 10) + ":" + strconv.FormatInt(s, 10) + "." + v.dur.frac
	case pAnySimple, pString:
		return "s" + v.s
	}
	return strconv.Itoa(int(v.prim)) + v.s
}

// idcHost is an element whose declaration has identity constraints.
type idcHost struct {
	n    *xmltree.Node
	decl *elemDecl
}

type idcTable struct {
	host *xmltree.Node
	keys map[string]*xmltree.Node
}

// identity checks the identity constraints of the hosts recorded during
// validation.
func (v *validator) identity() {
	tables := map[*idc][]idcTable{}
	var keyrefs []idcHost
	for _, h := range v.hosts {
		for _, c := range h.decl.idcs {
			if c.kind == idcKeyref {
				keyrefs = append(keyrefs, h)
				continue
			}
			t := idcTable{host: h.n, keys: map[string]*xmltree.Node{}}
			for _, target := range v.assessed(selectNodes(h.n, c.selector, nil)) {
				k, ok := v.keySequence(c, target)
				if !ok {
					if c.kind == idcKey {
						v.report(target, "not all fields of key "+strconv.Quote(c.name.local)+" select a value")
					}
					continue
				}
				if _, dup := t.keys[k]; dup {
					v.report(target, "duplicate key-sequence "+v.describeKey(c, target)+" in "+c.kind.String()+" "+strconv.Quote(c.name.local))
					continue
				}
				t.keys[k] = target
			}
			tables[c] = append(tables[c], t)
		}
	}
	seen := map[*xmltree.Node]bool{}
	for _, h := range keyrefs {
		if seen[h.n] {
			continue
		}
		seen[h.n] = true
		for _, c := range h.decl.idcs {
			if c.kind != idcKeyref {
				continue
			}
			// The referenced tables in scope: those of h and its
			// descendants, a run of the tables (in document order).
			ts := tables[c.refer]
			last := lastElement(h.n).Order
			lo := sort.Search(len(ts), func(i int) bool { return ts[i].host.Order >= h.n.Order })
			hi := sort.Search(len(ts), func(i int) bool { return ts[i].host.Order > last })
			scope := ts[lo:hi]
			for _, target := range v.assessed(selectNodes(h.n, c.selector, nil)) {
				k, ok := v.keySequence(c, target)
				if !ok {
					continue
				}
				found := false
				for _, t := range scope {
					if _, found = t.keys[k]; found {
						break
					}
				}
				if !found {
					v.report(target, "no match for key-sequence "+v.describeKey(c, target)+" of keyref "+strconv.Quote(c.name.local)+" (it refers to "+c.refer.kind.String()+" "+strconv.Quote(c.refer.name.local)+")")
				}
			}
		}
	}
}

// lastElement is the last element of n's subtree in document order.
func lastElement(n *xmltree.Node) *xmltree.Node {
	for {
		var last *xmltree.Node
		for i := len(n.Children) - 1; i >= 0; i-- {
			if n.Children[i].Kind == xmltree.Element {
				last = n.Children[i]
				break
			}
		}
		if last == nil {
			return n
		}
		n = last
	}
}

// keySequence evaluates c's fields at target; ok is false when a field
// selects nothing (or a node without a simple value).
func (v *validator) keySequence(c *idc, target *xmltree.Node) (string, bool) {
	var b strings.Builder
	for _, f := range c.fields {
		nodes := v.assessed(selectNodes(target, f, nil))
		if len(nodes) == 0 {
			return "", false
		}
		if len(nodes) > 1 {
			v.report(target, "a field of "+c.kind.String()+" "+strconv.Quote(c.name.local)+" selects more than one node")
			return "", false
		}
		n := nodes[0]
		st := v.types[n]
		if st == nil {
			return "", false
		}
		raw := n.Data
		if n.Kind == xmltree.Element {
			raw, _ = text(n)
		}
		var val value
		ctx := elemNS{n}
		if n.Kind == xmltree.Attribute {
			ctx = elemNS{n.Parent}
		}
		if st.validate(raw, ctx, &val) != "" {
			return "", false
		}
		k := val.key()
		b.WriteString(strconv.Itoa(len(k)))
		b.WriteByte(':')
		b.WriteString(k)
	}
	return b.String(), true
}

// assessed keeps the nodes validation reached: like libxml2, identity
// constraints ignore what sits inside an element that was not expected.
func (v *validator) assessed(nodes []*xmltree.Node) []*xmltree.Node {
	out := nodes[:0]
	for _, n := range nodes {
		if v.reached[n] || v.types[n] != nil {
			out = append(out, n)
		}
	}
	return out
}

func (v *validator) describeKey(c *idc, target *xmltree.Node) string {
	var parts []string
	for _, f := range c.fields {
		nodes := v.assessed(selectNodes(target, f, nil))
		if len(nodes) == 1 {
			s := nodes[0].Data
			if nodes[0].Kind == xmltree.Element {
				s, _ = text(nodes[0])
			}
			parts = append(parts, strconv.Quote(strings.TrimSpace(s)))
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
