package xsd

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// Violation is one way a document breaks its schema.
type Violation struct {
	// Path is the XPath location (xmltree's Path) of the element or
	// attribute at fault.
	Path string
	// Line is the line of the element (attributes share their element's).
	Line int
	// Reason says what is wrong and what was expected.
	Reason string

	order int
}

func (v Violation) String() string {
	return "line " + strconv.Itoa(v.Line) + ": " + v.Path + ": " + v.Reason
}

type validator struct {
	s   *Schema
	out []Violation
	ids map[string]bool
	m   matcher
	val value // scratch for the value being checked
	// For identity constraints: the elements that have them, and the
	// types nodes were validated against (only when the schema has any).
	hosts   []idcHost
	types   map[*xmltree.Node]*simpleType
	reached map[*xmltree.Node]bool
	// unassessed counts the enclosing elements checked only for their
	// own errors, past a content model error.
	unassessed int
	// paths caches element paths, and positions the [n] of elements
	// among same-named siblings, so a document with many violations
	// costs linear time (xmltree's Path counts siblings each time).
	paths     map[*xmltree.Node]string
	positions map[*xmltree.Node]int
}

// path is xmltree's Path of n, from caches.
func (v *validator) path(n *xmltree.Node) string {
	switch n.Kind {
	case xmltree.Attribute:
		return v.path(n.Parent) + "/@" + n.Name()
	case xmltree.Element:
	default:
		return n.Path()
	}
	if p, ok := v.paths[n]; ok {
		return p
	}
	if v.paths == nil {
		v.paths, v.positions = map[*xmltree.Node]string{}, map[*xmltree.Node]int{}
	}
	prefix, step := "", n.Name()
	if par := n.Parent; par != nil {
		if par.Kind == xmltree.Element {
			prefix = v.path(par)
		}
		pos, ok := v.positions[n]
		if !ok {
			v.indexChildren(par)
			pos = v.positions[n]
		}
		if pos > 0 {
			step += "[" + strconv.Itoa(pos) + "]"
		}
	}
	p := prefix + "/" + step
	v.paths[n] = p
	return p
}

// indexChildren records the position of each element child of par among
// its same-named siblings, or 0 when it has none.
func (v *validator) indexChildren(par *xmltree.Node) {
	count := map[qname]int{}
	for _, k := range par.Children {
		if k.Kind == xmltree.Element {
			count[qname{k.Space, k.Local}]++
		}
	}
	seen := map[qname]int{}
	for _, k := range par.Children {
		if k.Kind != xmltree.Element {
			continue
		}
		q := qname{k.Space, k.Local}
		seen[q]++
		if count[q] > 1 {
			v.positions[k] = seen[q]
		} else {
			v.positions[k] = 0
		}
	}
}

var validators = sync.Pool{New: func() any { return new(validator) }}

// Validate checks a parsed document (its document node or root element)
// against the schema and returns every violation found, in document order,
// or nil when the document is valid. After an error in an element's
// content, its other children are still checked against their
// declarations, but the content model reports only its first error.
func (s *Schema) Validate(doc *xmltree.Node) []Violation {
	root := doc
	if doc.Kind == xmltree.Document {
		root = doc.Root()
	}
	if root == nil || root.Kind != xmltree.Element {
		return []Violation{{Path: "/", Line: 1, Reason: "the document has no root element"}}
	}
	v := validators.Get().(*validator)
	v.s = s
	decl := s.elems[qname{root.Space, root.Local}]
	if decl == nil {
		v.report(root, "no global element declaration matches the root element "+describeName(root))
	} else {
		v.element(root, decl)
	}
	if len(v.hosts) > 0 {
		v.identity()
	}
	out := v.out
	v.out, v.s, v.val, v.unassessed = nil, nil, value{}, 0
	clear(v.hosts)
	v.hosts = v.hosts[:0]
	clear(v.types)
	clear(v.reached)
	v.paths, v.positions = nil, nil
	clear(v.ids)
	v.m.reset()
	validators.Put(v)
	if len(out) > 1 {
		slices.SortStableFunc(out, func(a, b Violation) int { return a.order - b.order })
	}
	return out
}

func describeName(n *xmltree.Node) string {
	s := strconv.Quote(n.Local)
	if n.Space != "" {
		s += " in namespace " + strconv.Quote(n.Space)
	} else if n.Kind == xmltree.Element {
		s += " (no namespace)"
	}
	return s
}

func (v *validator) report(n *xmltree.Node, reason string) {
	v.out = append(v.out, Violation{Path: v.path(n), Line: n.Line, Reason: reason, order: n.Order})
}

func (v *validator) reportElem(n *xmltree.Node, reason string) {
	v.report(n, "element "+strconv.Quote(n.Local)+": "+reason)
}

// xsiAttrs reads xsi:type and xsi:nil.
func xsiAttrs(n *xmltree.Node) (typ, nilv *xmltree.Node) {
	for _, a := range n.Attrs {
		if a.Space == XSINamespace {
			switch a.Local {
			case "type":
				typ = a
			case "nil":
				nilv = a
			}
		}
	}
	return
}

// element validates n against its declaration.
func (v *validator) element(n *xmltree.Node, decl *elemDecl) {
	st, ct := decl.st, decl.ct
	if len(decl.idcs) > 0 && v.unassessed == 0 {
		v.hosts = append(v.hosts, idcHost{n, decl})
	}
	if v.s.hasIDC && v.unassessed == 0 {
		if v.reached == nil {
			v.reached = map[*xmltree.Node]bool{}
		}
		v.reached[n] = true
	}
	xt, xn := xsiAttrs(n)
	if decl.abstract {
		v.reportElem(n, "the element is declared abstract, so it cannot appear in a document")
		return
	}
	if xt != nil {
		t, reason := v.xsiType(n, xt, decl)
		if reason != "" {
			v.report(xt, reason)
			return
		}
		st, ct = nil, nil
		switch t := t.(type) {
		case *simpleType:
			st = t
		case *complexType:
			ct = t
		}
	}
	if ct != nil && ct.abstract {
		v.reportElem(n, "its type "+ct.displayName()+" is abstract; use xsi:type to name a type derived from it")
		return
	}
	if xn != nil {
		val := normalizeSpace(xn.Data, wsCollapse)
		isNil := val == "true" || val == "1"
		if val != "true" && val != "false" && val != "1" && val != "0" {
			v.report(xn, "xsi:nil: "+strconv.Quote(xn.Data)+" is not a valid xs:boolean")
			return
		}
		if !decl.nillable {
			v.reportElem(n, "xsi:nil is given but the element is not nillable")
			return
		}
		if isNil {
			if ct != nil {
				v.attributes(n, ct)
			} else {
				v.simpleAttrs(n)
			}
			if decl.fixed != nil {
				v.reportElem(n, "the element has a fixed value, so it cannot be nil")
			}
			for _, k := range n.Children {
				if k.Kind == xmltree.Element || k.Kind == xmltree.Text {
					v.reportElem(n, "the element is nil (xsi:nil=\"true\"), so it must be empty")
					break
				}
			}
			return
		}
	}
	if st != nil {
		v.simpleAttrs(n)
		v.simpleContent(n, st, decl)
		return
	}
	v.attributes(n, ct)
	switch ct.kind {
	case ctEmpty:
		for _, k := range n.Children {
			if k.Kind == xmltree.Element {
				v.report(k, "unexpected element "+describeName(k)+"; the content of "+strconv.Quote(n.Local)+" must be empty")
				return
			}
			if k.Kind == xmltree.Text {
				// Whitespace too, as libxml2 and the spec (cvc-complex-type.2.1) have it.
				v.reportElem(n, "text is not allowed: the content must be empty")
				return
			}
		}
	case ctSimple:
		v.simpleContent(n, ct.simple, decl)
	default:
		v.children(n, ct, decl)
	}
}

// xsiType resolves an xsi:type and checks the type is derived from the
// declared one.
func (v *validator) xsiType(n, a *xmltree.Node, decl *elemDecl) (any, string) {
	raw := normalizeSpace(a.Data, wsCollapse)
	if !isQNameLex(raw) {
		return nil, "xsi:type: " + strconv.Quote(a.Data) + " is not a valid QName"
	}
	prefix, local := "", raw
	if i := strings.IndexByte(raw, ':'); i >= 0 {
		prefix, local = raw[:i], raw[i+1:]
	}
	ns, ok := n.LookupPrefix(prefix)
	if !ok {
		return nil, "xsi:type: the prefix " + strconv.Quote(prefix) + " is not declared"
	}
	q := qname{ns, local}
	var t any
	if ns == XSDNamespace {
		if local == "anyType" {
			t = anyType
		} else if b := builtins[local]; b != nil {
			t = b
		}
	} else {
		t = v.s.types[q]
	}
	if t == nil {
		return nil, "xsi:type: the type " + strconv.Quote(raw) + " is not defined in the schema"
	}
	if !derivedFrom(t, decl) {
		return nil, "xsi:type: the type " + strconv.Quote(raw) + " is not derived from the declared type of element " + strconv.Quote(n.Local)
	}
	if m := xsiBlocked(t, decl); m != "" {
		return nil, "xsi:type: the type " + strconv.Quote(raw) + " is derived by " + m + ", which the schema blocks here (block or blockDefault)"
	}
	return t, ""
}

// xsiBlocked names the derivation method that block attributes forbid
// between t and the declared type, or returns "".
func xsiBlocked(t any, decl *elemDecl) string {
	switch t := t.(type) {
	case *complexType:
		if decl.ct == nil {
			return ""
		}
		for c := t; c != nil && c != decl.ct && c != anyType; c = c.base {
			m := "restriction"
			if c.derivation == derExtension {
				m = "extension"
			}
			if blocked(decl.block, m) {
				return m
			}
			for b := c.base; b != nil; b = b.base {
				if blocked(b.block, m) {
					return m
				}
				if b == decl.ct {
					break
				}
			}
		}
	case *simpleType:
		if decl.st != nil && t != decl.st && blocked(decl.block, "restriction") {
			return "restriction"
		}
	}
	return ""
}

func derivedFrom(t any, decl *elemDecl) bool {
	if decl.ct == anyType {
		return true
	}
	switch t := t.(type) {
	case *complexType:
		if decl.ct == nil {
			return false
		}
		for b := t; b != nil; b = b.base {
			if b == decl.ct {
				return true
			}
			if b == anyType {
				break
			}
		}
	case *simpleType:
		target := decl.st
		if target == nil {
			return false
		}
		for b := t; b != nil; b = b.base {
			if b == target {
				return true
			}
		}
		if target.variety == union {
			for _, m := range target.members {
				for b := t; b != nil; b = b.base {
					if b == m {
						return true
					}
				}
			}
		}
	}
	return false
}

// simpleAttrs checks an element of simple type has no attributes but xsi's.
func (v *validator) simpleAttrs(n *xmltree.Node) {
	for _, a := range n.Attrs {
		if a.Space == XSINamespace {
			v.xsiAttr(a)
			continue
		}
		v.report(a, "attribute "+describeName(a)+" is not allowed: element "+strconv.Quote(n.Local)+" has a simple type, which has no attributes")
	}
}

func (v *validator) xsiAttr(a *xmltree.Node) {
	switch a.Local {
	case "type", "nil", "schemaLocation", "noNamespaceSchemaLocation":
		return
	}
	v.report(a, "attribute "+describeName(a)+" is not allowed: xsi has only type, nil, schemaLocation and noNamespaceSchemaLocation")
}

// text concatenates n's text children; elem reports an element child.
func text(n *xmltree.Node) (s string, elem *xmltree.Node) {
	var b *strings.Builder // only for text split by comments or PIs
	for _, k := range n.Children {
		switch k.Kind {
		case xmltree.Text:
			switch {
			case b != nil:
				b.WriteString(k.Data)
			case s == "":
				s = k.Data
			default:
				b = &strings.Builder{}
				b.WriteString(s)
				b.WriteString(k.Data)
			}
		case xmltree.Element:
			if elem == nil {
				elem = k
			}
		}
	}
	if b != nil {
		s = b.String()
	}
	return
}

func (v *validator) simpleContent(n *xmltree.Node, st *simpleType, decl *elemDecl) {
	s, child := text(n)
	if child != nil {
		v.report(child, "unexpected element "+describeName(child)+": element "+strconv.Quote(n.Local)+" has simple content, so it cannot have child elements")
		return
	}
	if s == "" && len(n.Children) == 0 {
		switch {
		case decl.fixed != nil:
			return
		case decl.def != nil:
			s = *decl.def
		}
	}
	if r := st.validate(s, elemNS{n}, &v.val); r != "" {
		v.reportElem(n, r)
		return
	}
	v.typed(n, st)
	// libxml2 compares an element's fixed value as a string, not in the
	// value space (" 2.1 " is not "2.1" for it); do the same.
	if decl.fixed != nil && s != *decl.fixed {
		v.reportElem(n, strconv.Quote(s)+" is not the fixed value "+strconv.Quote(*decl.fixed))
	}
	// libxml2 checks the uniqueness of attribute IDs only, not of
	// elements of type xs:ID; so do we.
}

// typed records a node's type for identity constraints' fields.
func (v *validator) typed(n *xmltree.Node, st *simpleType) {
	if !v.s.hasIDC || v.unassessed > 0 {
		return
	}
	if v.types == nil {
		v.types = map[*xmltree.Node]*simpleType{}
	}
	v.types[n] = st
}

func (v *validator) checkID(n *xmltree.Node, st *simpleType, s string) {
	if !v.s.hasID || st.idKind() != isID {
		return
	}
	if v.ids == nil {
		v.ids = map[string]bool{}
	}
	if v.ids[s] {
		v.report(n, "the ID "+strconv.Quote(s)+" is not unique in the document")
		return
	}
	v.ids[s] = true
}

// attributes checks n's attributes against a complex type's uses and
// attribute wildcard.
func (v *validator) attributes(n *xmltree.Node, ct *complexType) {
	var seenBits uint64
	var seen []bool
	if len(ct.attrs) > 64 {
		seen = make([]bool, len(ct.attrs))
	}
	for _, a := range n.Attrs {
		if a.Space == XSINamespace {
			v.xsiAttr(a)
			continue
		}
		q := qname{a.Space, a.Local}
		var u *attrUse
		idx := -1
		if ct.attrIndex != nil {
			u = ct.attrIndex[q]
			if u != nil {
				idx = slices.Index(ct.attrs, u)
			}
		} else {
			for i, c := range ct.attrs {
				if c.decl.name == q {
					u, idx = c, i
					break
				}
			}
		}
		if u != nil {
			if seen != nil {
				seen[idx] = true
			} else {
				seenBits |= 1 << idx
			}
			v.attrValue(a, u.decl, u.fixed, &u.fixedVal)
			continue
		}
		if w := ct.anyAttr; w != nil && w.allows(a.Space) {
			if w.process == pcSkip {
				continue
			}
			if d := v.s.attrs[q]; d != nil {
				v.attrValue(a, d, nil, nil)
			} else if w.process == pcStrict {
				v.report(a, "attribute "+describeName(a)+" matches a strict xs:anyAttribute but has no global declaration")
			}
			continue
		}
		v.report(a, "attribute "+describeName(a)+" is not allowed on element "+strconv.Quote(n.Local)+expectedAttrs(ct))
	}
	for i, u := range ct.attrs {
		if !u.required {
			continue
		}
		present := seen != nil && seen[i] || seen == nil && seenBits&(1<<i) != 0
		if !present {
			v.report(n, "missing required attribute "+strconv.Quote(u.decl.name.local))
		}
	}
}

func expectedAttrs(ct *complexType) string {
	if len(ct.attrs) == 0 {
		return " (it has no attributes)"
	}
	names := make([]string, 0, len(ct.attrs))
	for _, u := range ct.attrs {
		names = append(names, u.decl.name.local)
	}
	return "; expected one of: " + enumList(names)
}

func (v *validator) attrValue(a *xmltree.Node, d *attrDecl, fixed *string, fixedVal *value) {
	val := &v.val
	if r := d.typ.validate(a.Data, elemNS{a.Parent}, val); r != "" {
		v.report(a, "attribute "+strconv.Quote(a.Local)+": "+r)
		return
	}
	v.typed(a, d.typ)
	if fixed == nil && d.fixed != nil {
		fixed, fixedVal = d.fixed, &d.fixedVal
	}
	if fixed != nil && !val.equal(fixedVal) {
		v.report(a, "attribute "+strconv.Quote(a.Local)+": "+strconv.Quote(a.Data)+" is not the fixed value "+strconv.Quote(*fixed))
		return
	}
	v.checkID(a, d.typ, val.s)
}

// children validates element-only or mixed content: the children against
// the content model, then each child against its declaration.
func (v *validator) children(n *xmltree.Node, ct *complexType, decl *elemDecl) {
	m := &v.m
	start := len(m.kids)
	textErr := false
	hasText := false
	for _, k := range n.Children {
		switch k.Kind {
		case xmltree.Element:
			m.kids = append(m.kids, k)
		case xmltree.Text:
			hasText = true
			if ct.kind == ctElementOnly && !textErr && !isSpace(k.Data) {
				textErr = true
				v.reportElem(n, "text "+quoteShort(k.Data)+" is not allowed: the content is element-only")
			}
		}
	}
	kids := m.kids[start:]
	if decl != nil && (decl.fixed != nil || decl.def != nil) && ct.kind == ctMixed && len(kids) == 0 {
		s, _ := text(n)
		if decl.fixed != nil && hasText && s != *decl.fixed {
			v.reportElem(n, strconv.Quote(s)+" is not the fixed value "+strconv.Quote(*decl.fixed))
		}
	}
	// bindings for kids live at the same offsets in m.binds.
	for len(m.binds) < len(m.kids) {
		m.binds = append(m.binds, binding{})
	}
	binds := m.binds[start:len(m.kids)]
	for i := range binds {
		binds[i] = binding{}
	}
	failAt := m.run(ct.particle, kids, binds)
	if failAt >= 0 {
		v.contentError(n, kids, failAt)
	}
	for i, k := range kids {
		b := binds[i]
		switch {
		case i == failAt:
			continue // libxml2 does not look into an unexpected element
		case b.elem != nil:
			v.element(k, b.elem)
		case b.wild != nil:
			v.wildElement(k, b.wild)
		case failAt >= 0 && i > failAt:
			// Past a content model error: still check what can be found,
			// but (as libxml2, which stops there) leave it out of
			// identity constraints.
			q := qname{k.Space, k.Local}
			d := ct.localElems[q]
			if d == nil {
				d = v.s.elems[q]
			}
			if d != nil {
				v.unassessed++
				v.element(k, d)
				v.unassessed--
			}
		}
	}
	m.kids = m.kids[:start]
	m.binds = m.binds[:start]
}

func isSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isXMLSpace(s[i]) {
			return false
		}
	}
	return true
}

func nsName(ns string) string {
	if ns == "" {
		return "no namespace"
	}
	return "namespace " + strconv.Quote(ns)
}

func quoteShort(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 40 {
		s = s[:37] + "…"
	}
	return strconv.Quote(s)
}

func (v *validator) wildElement(k *xmltree.Node, w *wildcard) {
	if w.process == pcSkip {
		return
	}
	if d := v.s.elems[qname{k.Space, k.Local}]; d != nil {
		v.element(k, d)
		return
	}
	if w.process == pcStrict {
		v.report(k, "element "+describeName(k)+" matches a strict xs:any but has no global declaration")
		return
	}
	// lax without a declaration: look for declared elements below.
	v.laxChildren(k)
}

func (v *validator) laxChildren(n *xmltree.Node) {
	for _, k := range n.Children {
		if k.Kind != xmltree.Element {
			continue
		}
		if d := v.s.elems[qname{k.Space, k.Local}]; d != nil {
			v.element(k, d)
		} else {
			v.laxChildren(k)
		}
	}
}

func (v *validator) contentError(n *xmltree.Node, kids []*xmltree.Node, at int) {
	exp, names := v.m.expected()
	if at < len(kids) {
		k := kids[at]
		msg := "unexpected element " + strconv.Quote(k.Local)
		for _, q := range names {
			if q.local == k.Local && q.ns != k.Space {
				// The name is right but the namespace is not: say so.
				msg += " in " + nsName(k.Space) + " (" + strconv.Quote(q.local) + " is expected in " + nsName(q.ns) + ")"
				break
			}
		}
		if exp == "" {
			msg += "; no more child elements are allowed in " + strconv.Quote(n.Local)
		} else {
			msg += "; expected " + exp
		}
		v.report(k, msg)
		return
	}
	v.reportElem(n, "missing child element; expected "+exp)
}
