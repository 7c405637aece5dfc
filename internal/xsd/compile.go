package xsd

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// Options configure Compile.
type Options struct {
	// Resolve returns the schema an xs:include or xs:import names, by its
	// schemaLocation, or by namespace when it has none, from the schemas
	// registered in Sluice. A relative location in an included or imported
	// schema is first joined to that schema's own location, so Resolve
	// sees locations relative to the schema given to Compile. A namespace
	// is imported once. Nil refuses includes and imports. Imports of the
	// XML namespace never reach Resolve: its attributes (xml:lang,
	// xml:space, xml:base, xml:id) are built in.
	Resolve func(location, namespace string) ([]byte, error)
}

// Schema is a compiled schema. It is never changed after Compile returns,
// so one Schema may validate in many goroutines at once.
type Schema struct {
	elems  map[qname]*elemDecl
	attrs  map[qname]*attrDecl
	types  map[qname]any // *simpleType or *complexType
	hasID  bool
	hasIDC bool
}

// Error is a schema Compile refuses: its line (0 when the schema is not
// well-formed XML at all), the schema it is in (empty for the one given to
// Compile, else its schemaLocation), and why.
type Error struct {
	Location string
	Line     int
	Reason   string

	unsupported bool
}

func (e *Error) Error() string {
	s := ""
	if e.Location != "" {
		s = "schema " + strconv.Quote(e.Location) + ": "
	}
	if e.Line > 0 {
		s += "line " + strconv.Itoa(e.Line) + ": "
	}
	return s + e.Reason
}

// ErrUnsupported is wrapped by the errors for schema constructs this
// package does not implement.
var ErrUnsupported = errors.New("not supported")

// Unwrap gives ErrUnsupported for a construct this package does not
// implement.
func (e *Error) Unwrap() error {
	if e.unsupported {
		return ErrUnsupported
	}
	return nil
}

type schemaDoc struct {
	location      string
	tns           string
	elemQualified bool
	attrQualified bool
	chameleon     bool
	blockDefault  string
	finalDefault  string
}

type def struct {
	n   *xmltree.Node
	doc *schemaDoc
}

type compiler struct {
	opts      Options
	loaded    map[string]bool
	elemDefs  map[qname]def
	attrDefs  map[qname]def
	typeDefs  map[qname]def
	groupDefs map[qname]def
	agDefs    map[qname]def

	elems  map[qname]*elemDecl
	attrs  map[qname]*attrDecl
	sts    map[qname]*simpleType
	cts    map[qname]*complexType
	groups map[qname]*modelGroup
	ags    map[qname]*attrGroup
	busy   map[any]bool

	allTypes []*complexType
	hasID    bool
	idcs     map[qname]*idc
	idcOrder []*idc
	// order lists the global definitions as the schemas give them.
	order []def
}

type attrGroup struct {
	uses []*attrUse
	wild *wildcard
}

// failure carries a compile error up through the recursive descent.
type failure struct{ err error }

func (c *compiler) fail(d *schemaDoc, n *xmltree.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	loc := ""
	if d != nil {
		loc = d.location
	}
	panic(failure{&Error{Location: loc, Line: line, Reason: fmt.Sprintf(format, args...)}})
}

func (c *compiler) unsupported(d *schemaDoc, n *xmltree.Node, what string) {
	loc := ""
	if d != nil {
		loc = d.location
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	panic(failure{&Error{Location: loc, Line: line, Reason: what + " is not supported", unsupported: true}})
}

// Compile reads a schema, and the schemas it includes and imports through
// opts.Resolve, into a Schema. Schemas that are not valid, and constructs
// this package does not implement, are refused with an *Error giving the
// line and naming the construct.
func Compile(schema []byte, opts Options) (s *Schema, err error) {
	c := &compiler{
		opts:      opts,
		loaded:    map[string]bool{},
		elemDefs:  map[qname]def{},
		attrDefs:  map[qname]def{},
		typeDefs:  map[qname]def{},
		groupDefs: map[qname]def{},
		agDefs:    map[qname]def{},
		elems:     map[qname]*elemDecl{},
		attrs:     map[qname]*attrDecl{},
		sts:       map[qname]*simpleType{},
		cts:       map[qname]*complexType{},
		groups:    map[qname]*modelGroup{},
		ags:       map[qname]*attrGroup{},
		busy:      map[any]bool{},
		idcs:      map[qname]*idc{},
	}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			s, err = nil, f.err
		}
	}()
	c.load(schema, "", nil, "", false)
	// Resolve every global component, used or not, as libxml2 does, so a
	// broken schema is refused whatever the documents hold; in document
	// order, so the same schema always gets the same error.
	for _, g := range c.order {
		q := qname{g.doc.tns, attr(g.n, "name")}
		switch g.n.Local {
		case "simpleType", "complexType":
			c.typeByName(q, nil, nil)
		case "element":
			c.element(q)
		case "attribute":
			c.attribute(q)
		case "group":
			c.group(q, nil, nil)
		case "attributeGroup":
			c.attrGroup(q, nil, nil)
		}
	}
	c.substitutionGroups()
	for _, k := range c.idcOrder {
		if k.kind != idcKeyref {
			continue
		}
		r := c.idcs[k.referQ]
		switch {
		case r == nil:
			c.fail(k.doc, k.node, "xs:keyref %q refers to %q, which is not a key or unique constraint", k.name.local, k.referQ.String())
		case r.kind == idcKeyref:
			c.fail(k.doc, k.node, "xs:keyref %q refers to the keyref %q; it must refer to a key or unique constraint", k.name.local, r.name.local)
		case len(r.fields) != len(k.fields):
			c.fail(k.doc, k.node, "xs:keyref %q has %d fields but %s %q has %d", k.name.local, len(k.fields), r.kind, r.name.local, len(r.fields))
		}
		k.refer = r
	}
	for _, ct := range c.allTypes {
		if ct.particle != nil {
			if r := checkUPA(ct.particle); r != "" {
				c.fail(ct.doc, ct.node, "the content model of %s is not deterministic (Unique Particle Attribution): %s", ct.displayName(), r)
			}
			ct.particle.computeFirst()
			ct.localElems = map[qname]*elemDecl{}
			collectElems(ct.particle, ct.localElems)
		}
	}
	s = &Schema{elems: c.elems, attrs: c.attrs, types: map[qname]any{}, hasID: c.hasID, hasIDC: len(c.idcs) > 0}
	for q, t := range c.sts {
		s.types[q] = t
	}
	for q, t := range c.cts {
		s.types[q] = t
	}
	return s, nil
}

func collectElems(p *particle, m map[qname]*elemDecl) {
	switch {
	case p.elem != nil:
		for _, e := range append([]*elemDecl{p.elem}, p.elem.substitutes...) {
			if _, ok := m[e.name]; !ok {
				m[e.name] = e
			}
		}
	case p.group != nil:
		for _, q := range p.group.parts {
			collectElems(q, m)
		}
	}
}

// refused names the schema elements Compile refuses and why.
var refused = map[string]string{
	"redefine":           "xs:redefine",
	"override":           "xs:override (XSD 1.1)",
	"assert":             "xs:assert (XSD 1.1)",
	"assertion":          "xs:assertion (XSD 1.1)",
	"alternative":        "xs:alternative (XSD 1.1)",
	"openContent":        "xs:openContent (XSD 1.1)",
	"defaultOpenContent": "xs:defaultOpenContent (XSD 1.1)",
	"notation":           "xs:notation",
	"explicitTimezone":   "xs:explicitTimezone (XSD 1.1)",
}

func (c *compiler) checkRefused(d *schemaDoc, n *xmltree.Node) {
	for _, k := range n.Children {
		if k.Kind != xmltree.Element {
			continue
		}
		if k.Space == XSDNamespace {
			if k.Local == "annotation" {
				continue
			}
			if what, ok := refused[k.Local]; ok {
				c.unsupported(d, k, what)
			}
		}
		c.checkRefused(d, k)
	}
}

func attr(n *xmltree.Node, name string) string {
	v, _ := n.Attr("", name)
	return v
}

// xsChildren are the XSD-namespace element children of n, without
// annotations; anything else is an error.
func (c *compiler) xsChildren(d *schemaDoc, n *xmltree.Node) []*xmltree.Node {
	var out []*xmltree.Node
	sawAnnotation := false
	for _, k := range n.Children {
		switch k.Kind {
		case xmltree.Element:
			if k.Space != XSDNamespace {
				c.fail(d, k, "element <%s> is not allowed in <xs:%s>", k.Name(), n.Local)
			}
			if k.Local != "annotation" {
				out = append(out, k)
				continue
			}
			if n.Local != "schema" && (len(out) > 0 || sawAnnotation) {
				c.fail(d, k, "xs:annotation must come first in <xs:%s>, and only once", n.Local)
			}
			sawAnnotation = true
			for _, a := range k.Children {
				if a.Kind == xmltree.Element && (a.Space != XSDNamespace || a.Local != "appinfo" && a.Local != "documentation") {
					c.fail(d, a, "xs:annotation may contain only xs:appinfo and xs:documentation, not <%s>", a.Name())
				}
			}
		case xmltree.Text:
			if strings.TrimSpace(k.Data) != "" {
				c.fail(d, n, "text is not allowed in <xs:%s>", n.Local)
			}
		}
	}
	return out
}

var builtinXMLSchema = `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="http://www.w3.org/XML/1998/namespace">
 <xs:attribute name="lang"><xs:simpleType><xs:union memberTypes="xs:language"><xs:simpleType><xs:restriction base="xs:string"><xs:enumeration value=""/></xs:restriction></xs:simpleType></xs:union></xs:simpleType></xs:attribute>
 <xs:attribute name="space"><xs:simpleType><xs:restriction base="xs:NCName"><xs:enumeration value="default"/><xs:enumeration value="preserve"/></xs:restriction></xs:simpleType></xs:attribute>
 <xs:attribute name="base" type="xs:anyURI"/>
 <xs:attribute name="id" type="xs:ID"/>
 <xs:attributeGroup name="specialAttrs"><xs:attribute ref="xml:base"/><xs:attribute ref="xml:lang"/><xs:attribute ref="xml:space"/><xs:attribute ref="xml:id"/></xs:attributeGroup>
</xs:schema>`

// load reads one schema document and registers its global definitions.
func (c *compiler) load(data []byte, location string, from *schemaDoc, wantNS string, include bool) {
	doc, err := xmltree.Parse(data, xmltree.Limits{})
	if err != nil {
		var xe *xmltree.Error
		if errors.As(err, &xe) {
			panic(failure{&Error{Location: location, Line: xe.Line, Reason: "the schema is not well-formed XML: " + xe.Reason}})
		}
		panic(failure{&Error{Location: location, Reason: err.Error()}})
	}
	root := doc.Root()
	d := &schemaDoc{location: location}
	if root.Space != XSDNamespace || root.Local != "schema" {
		c.fail(d, root, "the root element is <%s>, not xs:schema (namespace %s)", root.Name(), XSDNamespace)
	}
	c.checkAttrs(d, root)
	tns, hasTNS := root.Attr("", "targetNamespace")
	if hasTNS && tns == "" {
		c.fail(d, root, "targetNamespace must not be empty (leave it out for no namespace)")
	}
	d.tns = tns
	if from != nil {
		switch {
		case include && tns == "" && from.tns != "":
			d.tns, d.chameleon = from.tns, true
		case include && tns != from.tns:
			c.fail(from, nil, "the schema %q included has targetNamespace %q, not %q", location, tns, from.tns)
		case !include && tns != wantNS:
			c.fail(from, nil, "the schema %q imported for namespace %q has targetNamespace %q", location, wantNS, tns)
		}
	}
	d.blockDefault = attr(root, "blockDefault")
	d.finalDefault = attr(root, "finalDefault")
	d.elemQualified = c.form(d, root, "elementFormDefault")
	d.attrQualified = c.form(d, root, "attributeFormDefault")
	c.checkRefused(d, root)
	for _, k := range c.xsChildren(d, root) {
		c.checkAttrs(d, k)
		for _, a := range globalOnlyNot[k.Local] {
			if _, ok := k.Attr("", a); ok {
				c.fail(d, k, "the attribute %q is not allowed on a global xs:%s", a, k.Local)
			}
		}
		switch k.Local {
		case "include", "import":
			c.loadRef(d, k)
			continue
		}
		name := attr(k, "name")
		var defs map[qname]def
		switch k.Local {
		case "element":
			defs = c.elemDefs
		case "attribute":
			defs = c.attrDefs
		case "simpleType", "complexType":
			defs = c.typeDefs
		case "group":
			defs = c.groupDefs
		case "attributeGroup":
			defs = c.agDefs
		default:
			c.fail(d, k, "xs:%s is not allowed at the top level of a schema", k.Local)
		}
		if !isNCName(name) {
			c.fail(d, k, "a global xs:%s needs a name that is an NCName (name=%q)", k.Local, name)
		}
		q := qname{d.tns, name}
		if prev, dup := defs[q]; dup {
			if prev.n == k {
				continue
			}
			c.fail(d, k, "xs:%s %q is defined twice (also at line %d)", k.Local, name, prev.n.Line)
		}
		defs[q] = def{k, d}
		c.order = append(c.order, def{k, d})
	}
}

func (c *compiler) form(d *schemaDoc, n *xmltree.Node, name string) bool {
	v, ok := n.Attr("", name)
	if !ok {
		return false
	}
	switch v {
	case "qualified":
		return true
	case "unqualified":
		return false
	}
	c.fail(d, n, "%s must be qualified or unqualified, not %q", name, v)
	return false
}

func (c *compiler) loadRef(d *schemaDoc, n *xmltree.Node) {
	loc := attr(n, "schemaLocation")
	ns, hasNS := n.Attr("", "namespace")
	include := n.Local == "include"
	if include {
		if loc == "" {
			c.fail(d, n, "xs:include needs a schemaLocation")
		}
		ns = d.tns
	} else {
		if hasNS && ns == d.tns {
			c.fail(d, n, "xs:import of namespace %q, the schema's own targetNamespace", ns)
		}
		if !hasNS && d.tns == "" {
			c.fail(d, n, "xs:import without namespace in a schema with no targetNamespace")
		}
	}
	loc = joinLocation(d.location, loc)
	key := loc + "\x00" + ns
	if !include {
		// As libxml2 does, import a namespace once, whichever schema
		// location later imports give.
		key = "\x00import\x00" + ns
	}
	if c.loaded[key] {
		return
	}
	c.loaded[key] = true
	var data []byte
	var err error
	switch {
	case !include && ns == xmltree.XMLNamespace:
		// The XML namespace's attributes are fixed by the W3C; its
		// published xml.xsd has a DTD, which the parser refuses, so use
		// the built-in declarations whatever the location says.
		data = []byte(builtinXMLSchema)
	case c.opts.Resolve != nil:
		data, err = c.opts.Resolve(loc, ns)
	default:
		c.fail(d, n, "xs:%s of %q: includes and imports are refused (no resolver was given)", n.Local, cmpOr(loc, ns))
	}
	if err != nil {
		c.fail(d, n, "xs:%s of %q: %v", n.Local, cmpOr(loc, ns), err)
	}
	c.load(data, cmpOr(loc, ns), d, ns, include)
}

// joinLocation resolves a schemaLocation against the location of the
// schema that gives it: relative paths are joined to its directory, so
// that Resolve sees every location relative to the first schema.
func joinLocation(base, loc string) string {
	if base == "" || loc == "" {
		return loc
	}
	if u, err := url.Parse(loc); err != nil || u.Scheme != "" || strings.HasPrefix(loc, "/") {
		return loc
	}
	if b, err := url.Parse(base); err == nil && b.Scheme != "" {
		u, _ := url.Parse(loc)
		return b.ResolveReference(u).String()
	}
	return path.Join(path.Dir(base), loc)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// globalOnlyNot lists attributes that local declarations may have but
// global ones may not.
var globalOnlyNot = map[string][]string{
	"element":        {"ref", "minOccurs", "maxOccurs", "form"},
	"attribute":      {"ref", "use", "form"},
	"group":          {"ref", "minOccurs", "maxOccurs"},
	"attributeGroup": {"ref"},
}

// allowedAttrs lists each schema element's attributes (besides id and
// attributes in other namespaces).
var allowedAttrs = map[string]string{
	"schema":         "targetNamespace version finalDefault blockDefault attributeFormDefault elementFormDefault xml:lang",
	"include":        "schemaLocation",
	"import":         "namespace schemaLocation",
	"element":        "name ref type substitutionGroup minOccurs maxOccurs default fixed nillable abstract final block form",
	"attribute":      "name ref type use default fixed form",
	"complexType":    "name mixed abstract final block",
	"simpleType":     "name final",
	"group":          "name ref minOccurs maxOccurs",
	"attributeGroup": "name ref",
	"sequence":       "minOccurs maxOccurs",
	"choice":         "minOccurs maxOccurs",
	"all":            "minOccurs maxOccurs",
	"any":            "namespace processContents minOccurs maxOccurs",
	"anyAttribute":   "namespace processContents",
	"complexContent": "mixed",
	"simpleContent":  "",
	"restriction":    "base",
	"extension":      "base",
	"list":           "itemType",
	"union":          "memberTypes",
	"unique":         "name",
	"key":            "name",
	"keyref":         "name refer",
	"selector":       "xpath",
	"field":          "xpath",
}

func (c *compiler) checkAttrs(d *schemaDoc, n *xmltree.Node) {
	if annotationOnly[n.Local] && len(c.xsChildren(d, n)) > 0 {
		c.fail(d, n, "xs:%s may contain only xs:annotation", n.Local)
	}
	allowed, ok := allowedAttrs[n.Local]
	if !ok {
		if annotationOnly[n.Local] { // a facet
			allowed = "value fixed"
		} else {
			return
		}
	}
	for _, a := range n.Attrs {
		if a.Space != "" || a.Local == "id" {
			continue
		}
		if !strings.Contains(" "+allowed+" ", " "+a.Local+" ") {
			c.fail(d, n, "the attribute %q is not allowed on xs:%s", a.Local, n.Local)
		}
		if methods, ok := derivationSets[n.Local+"/"+a.Local]; ok && !validDerivationSet(a.Data, methods) {
			c.fail(d, n, "%s=%q on xs:%s must be #all or a list of: %s", a.Local, a.Data, n.Local, methods)
		}
	}
}

// derivationSets are the methods block, final and their defaults list.
var derivationSets = map[string]string{
	"schema/blockDefault": "extension restriction substitution",
	"schema/finalDefault": "extension restriction list union",
	"element/block":       "extension restriction substitution",
	"element/final":       "extension restriction",
	"complexType/block":   "extension restriction",
	"complexType/final":   "extension restriction",
	"simpleType/final":    "list union restriction",
}

func validDerivationSet(v, methods string) bool {
	f := strings.Fields(v)
	if len(f) == 1 && f[0] == "#all" {
		return true
	}
	for _, m := range f {
		if !strings.Contains(" "+methods+" ", " "+m+" ") {
			return false
		}
	}
	return true
}

// annotationOnly are the schema elements whose only content is an
// optional xs:annotation.
var annotationOnly = map[string]bool{
	"enumeration": true, "pattern": true, "length": true, "minLength": true, "maxLength": true,
	"minInclusive": true, "maxInclusive": true, "minExclusive": true, "maxExclusive": true,
	"totalDigits": true, "fractionDigits": true, "whiteSpace": true,
	"selector": true, "field": true, "include": true, "import": true, "any": true, "anyAttribute": true,
}

// resolveQName reads a QName-valued schema attribute.
func (c *compiler) resolveQName(d *schemaDoc, n *xmltree.Node, v string) qname {
	v = strings.TrimSpace(v)
	if !isQNameLex(v) {
		c.fail(d, n, "%q is not a valid QName", v)
	}
	prefix, local := "", v
	if i := strings.IndexByte(v, ':'); i >= 0 {
		prefix, local = v[:i], v[i+1:]
	}
	ns, ok := n.LookupPrefix(prefix)
	if !ok {
		c.fail(d, n, "the prefix %q of %q is not declared", prefix, v)
	}
	if ns == "" && d.chameleon {
		ns = d.tns
	}
	return qname{ns, local}
}

// Global components, resolved on first use. Each is registered before its
// parts are read, so recursive element structures work; derivation and
// group cycles are refused through busy.

func (c *compiler) element(q qname) *elemDecl {
	if e := c.elems[q]; e != nil {
		return e
	}
	df, ok := c.elemDefs[q]
	if !ok {
		return nil
	}
	e := &elemDecl{name: q, global: true, line: df.n.Line}
	c.elems[q] = e
	c.elementBody(df.doc, df.n, e)
	return e
}

func (c *compiler) attribute(q qname) *attrDecl {
	if a := c.attrs[q]; a != nil {
		return a
	}
	df, ok := c.attrDefs[q]
	if !ok {
		return nil
	}
	if c.busy[df.n] {
		c.fail(df.doc, df.n, "circular attribute definition")
	}
	c.busy[df.n] = true
	a := c.attrBody(df.doc, df.n, q)
	c.attrs[q] = a
	return a
}

// typeByName returns a *simpleType or *complexType; from and at locate the
// reference for the error when there is no such type (nil: must exist).
func (c *compiler) typeByName(q qname, d *schemaDoc, at *xmltree.Node) any {
	if q.ns == XSDNamespace {
		if q.local == "anyType" {
			return anyType
		}
		if t := builtins[q.local]; t != nil {
			return t
		}
		switch q.local {
		case "NOTATION":
			c.unsupported(d, at, "the type xs:NOTATION")
		}
		c.fail(d, at, "xs:%s is not a built-in type", q.local)
	}
	if t := c.sts[q]; t != nil {
		if c.busy[t] {
			c.fail(d, at, "the simple type %q is derived from itself", q.local)
		}
		return t
	}
	if t := c.cts[q]; t != nil {
		if !t.ready && c.busy[t] && at != nil && (at.Local == "restriction" || at.Local == "extension") {
			c.fail(d, at, "the complex type %q is derived from itself", q.local)
		}
		return t
	}
	df, ok := c.typeDefs[q]
	if !ok {
		c.fail(d, at, "the type %q is not defined", q.String())
	}
	if df.n.Local == "simpleType" {
		t := &simpleType{name: q, line: df.n.Line}
		c.sts[q] = t
		c.busy[t] = true
		c.simpleBody(df.doc, df.n, t)
		delete(c.busy, t)
		return t
	}
	t := &complexType{name: q, line: df.n.Line}
	c.cts[q] = t
	c.busy[t] = true
	c.complexBody(df.doc, df.n, t)
	delete(c.busy, t)
	return t
}

func (c *compiler) simpleTypeRef(d *schemaDoc, n *xmltree.Node, v string) *simpleType {
	t := c.typeByName(c.resolveQName(d, n, v), d, n)
	st, ok := t.(*simpleType)
	if !ok {
		c.fail(d, n, "%q is a complex type; a simple type is needed here", v)
	}
	return st
}

var anyType = func() *complexType {
	w := &wildcard{any: true, process: pcLax}
	t := &complexType{name: qname{XSDNamespace, "anyType"}, kind: ctMixed, anyAttr: w, ready: true,
		particle: &particle{min: 0, max: -1, wild: w}}
	t.particle.computeFirst()
	t.localElems = map[qname]*elemDecl{}
	return t
}()

func (c *compiler) elementBody(d *schemaDoc, n *xmltree.Node, e *elemDecl) {
	if _, ok := n.Attr("", "ref"); ok && e.global {
		c.fail(d, n, "a global xs:element cannot have ref")
	}
	if sg, ok := n.Attr("", "substitutionGroup"); ok {
		if !e.global {
			c.fail(d, n, "only a global xs:element can have a substitutionGroup")
		}
		q := c.resolveQName(d, n, sg)
		if c.busy[e] {
			c.fail(d, n, "the substitution group of %q is circular", e.name.local)
		}
		c.busy[e] = true
		head := c.element(q)
		delete(c.busy, e)
		if head == nil {
			c.fail(d, n, "the substitution group head %q is not declared", q.String())
		}
		if head == e || head.st == nil && head.ct == nil {
			c.fail(d, n, "the substitution group of %q is circular", e.name.local)
		}
		e.substHead = head
	}
	e.block = attr(n, "block")
	if _, ok := n.Attr("", "block"); !ok {
		e.block = d.blockDefault
	}
	typeAttr, hasType := n.Attr("", "type")
	var anon *xmltree.Node
	for _, k := range c.xsChildren(d, n) {
		c.checkAttrs(d, k)
		switch k.Local {
		case "unique", "key", "keyref":
			e.idcs = append(e.idcs, c.identityConstraint(d, k))
			continue
		case "simpleType", "complexType":
			if len(e.idcs) > 0 {
				c.fail(d, k, "xs:%s must come before the identity constraints", k.Local)
			}
			if anon != nil || hasType {
				c.fail(d, k, "xs:element %q has more than one type", e.name.local)
			}
			anon = k
		default:
			c.fail(d, k, "xs:%s is not allowed in xs:element", k.Local)
		}
	}
	switch {
	case hasType:
		switch t := c.typeByName(c.resolveQName(d, n, typeAttr), d, n).(type) {
		case *simpleType:
			e.st = t
		case *complexType:
			e.ct = t
		}
	case anon != nil && anon.Local == "simpleType":
		if _, ok := anon.Attr("", "name"); ok {
			c.fail(d, anon, "a local xs:simpleType cannot have a name")
		}
		e.st = &simpleType{line: anon.Line}
		c.simpleBody(d, anon, e.st)
	case anon != nil:
		if _, ok := anon.Attr("", "name"); ok {
			c.fail(d, anon, "a local xs:complexType cannot have a name")
		}
		e.ct = &complexType{line: anon.Line}
		c.complexBody(d, anon, e.ct)
	default:
		e.ct = anyType
		if head := e.substHead; head != nil {
			// A member without a type has its head's.
			if head.st == nil && head.ct == nil {
				c.fail(d, n, "the substitution group of %q is circular", e.name.local)
			}
			e.st, e.ct = head.st, head.ct
		}
	}
	if head := e.substHead; head != nil && !validSubstitute(e, head) {
		c.fail(d, n, "the type of %q is not derived from the type of its substitution group head %q", e.name.local, head.name.local)
	}
	e.nillable = c.boolAttr(d, n, "nillable")
	e.abstract = c.boolAttr(d, n, "abstract")
	def, hasDef := n.Attr("", "default")
	fixed, hasFixed := n.Attr("", "fixed")
	if hasDef && hasFixed {
		c.fail(d, n, "xs:element %q has both default and fixed", e.name.local)
	}
	if hasDef || hasFixed {
		v := def
		if hasFixed {
			v = fixed
		}
		st := e.st
		if st == nil {
			switch {
			case e.ct.kind == ctSimple:
				st = e.ct.simple
			case e.ct.kind == ctMixed && (e.ct.particle == nil || e.ct.particle.nullable || particleEmptiable(e.ct.particle)):
				st = builtins["string"]
			default:
				c.fail(d, n, "xs:element %q has a default or fixed value but its type does not have simple or mixed content", e.name.local)
			}
		}
		val, r := validateValue(st, v, n)
		if r != "" {
			c.fail(d, n, "the default or fixed value of xs:element %q is not valid: %s", e.name.local, r)
		}
		if hasDef {
			e.def = &def
		} else {
			e.fixed, e.fixedVal = &fixed, val
		}
	}
}

func particleEmptiable(p *particle) bool {
	if p.min == 0 {
		return true
	}
	switch {
	case p.group != nil:
		switch p.group.kind {
		case choice:
			for _, q := range p.group.parts {
				if particleEmptiable(q) {
					return true
				}
			}
			return len(p.group.parts) == 0
		default:
			for _, q := range p.group.parts {
				if !particleEmptiable(q) {
					return false
				}
			}
			return true
		}
	}
	return false
}

func (c *compiler) boolAttr(d *schemaDoc, n *xmltree.Node, name string) bool {
	v, ok := n.Attr("", name)
	if !ok {
		return false
	}
	switch strings.TrimSpace(v) {
	case "true", "1":
		return true
	case "false", "0":
		return false
	}
	c.fail(d, n, "%s must be true or false, not %q", name, v)
	return false
}

func (c *compiler) attrBody(d *schemaDoc, n *xmltree.Node, q qname) *attrDecl {
	a := &attrDecl{name: q}
	typeAttr, hasType := n.Attr("", "type")
	for _, k := range c.xsChildren(d, n) {
		c.checkAttrs(d, k)
		if k.Local != "simpleType" || hasType || a.typ != nil {
			c.fail(d, k, "xs:%s is not allowed here in xs:attribute %q", k.Local, q.local)
		}
		if _, ok := k.Attr("", "name"); ok {
			c.fail(d, k, "a local xs:simpleType cannot have a name")
		}
		a.typ = &simpleType{line: k.Line}
		c.simpleBody(d, k, a.typ)
	}
	if hasType {
		a.typ = c.simpleTypeRef(d, n, typeAttr)
	}
	if a.typ == nil {
		a.typ = builtins["anySimpleType"]
	}
	if a.typ.idKind() == isID {
		c.hasID = true
	}
	def, hasDef := n.Attr("", "default")
	fixed, hasFixed := n.Attr("", "fixed")
	if hasDef && hasFixed {
		c.fail(d, n, "xs:attribute %q has both default and fixed", q.local)
	}
	if hasDef {
		if _, r := validateValue(a.typ, def, n); r != "" {
			c.fail(d, n, "the default value of xs:attribute %q is not valid: %s", q.local, r)
		}
		a.def = &def
	}
	if hasFixed {
		v, r := validateValue(a.typ, fixed, n)
		if r != "" {
			c.fail(d, n, "the fixed value of xs:attribute %q is not valid: %s", q.local, r)
		}
		a.fixed, a.fixedVal = &fixed, v
	}
	return a
}

func (t *simpleType) idKind() idKind {
	for ; t != nil; t = t.base {
		if t.id != notID {
			return t.id
		}
		if t.variety != atomic {
			return notID
		}
	}
	return notID
}

// simpleBody reads an xs:simpleType into t.
func (c *compiler) simpleBody(d *schemaDoc, n *xmltree.Node, t *simpleType) {
	t.final = d.finalDefault
	if f, ok := n.Attr("", "final"); ok {
		t.final = f
	}
	kids := c.xsChildren(d, n)
	if len(kids) != 1 {
		c.fail(d, n, "xs:simpleType needs exactly one of xs:restriction, xs:list or xs:union")
	}
	k := kids[0]
	c.checkAttrs(d, k)
	switch k.Local {
	case "restriction":
		c.restriction(d, k, t, nil)
	case "list":
		t.variety, t.ws, t.prim = list, wsCollapse, pString
		t.base = builtins["anySimpleType"]
		itemAttr, hasItem := k.Attr("", "itemType")
		for _, kk := range c.xsChildren(d, k) {
			if kk.Local != "simpleType" || hasItem || t.item != nil {
				c.fail(d, kk, "xs:%s is not allowed here in xs:list", kk.Local)
			}
			t.item = &simpleType{line: kk.Line}
			c.simpleBody(d, kk, t.item)
		}
		if hasItem {
			t.item = c.simpleTypeRef(d, k, itemAttr)
		}
		if t.item == nil {
			c.fail(d, k, "xs:list needs an itemType or a simpleType")
		}
		c.checkFinal(d, k, t.item, "list")
		if t.item.variety == list {
			c.fail(d, k, "the item type of a list cannot be a list")
		}
		if t.item.variety == union {
			for _, m := range t.item.members {
				if m.variety == list {
					c.fail(d, k, "the item type of a list cannot be a union with list members")
				}
			}
		}
	case "union":
		t.variety, t.prim = union, pAnySimple
		t.base = builtins["anySimpleType"]
		t.ws = wsCollapse
		for _, m := range strings.Fields(attr(k, "memberTypes")) {
			t.members = append(t.members, c.simpleTypeRef(d, k, m))
		}
		for _, kk := range c.xsChildren(d, k) {
			if kk.Local != "simpleType" {
				c.fail(d, kk, "xs:%s is not allowed in xs:union", kk.Local)
			}
			m := &simpleType{line: kk.Line}
			c.simpleBody(d, kk, m)
			t.members = append(t.members, m)
		}
		if len(t.members) == 0 {
			c.fail(d, k, "xs:union needs member types")
		}
		for _, m := range t.members {
			c.checkFinal(d, k, m, "union")
		}
		// A union's members see the value before their own whitespace
		// handling, so keep it as written when any member preserves it.
		for _, m := range t.members {
			if m.ws < t.ws {
				t.ws = m.ws
			}
		}
	default:
		c.fail(d, k, "xs:%s is not allowed in xs:simpleType", k.Local)
	}
}

// facet applicability by primitive.
func facetAllowed(t *simpleType, facet string) bool {
	switch facet {
	case "pattern", "whiteSpace":
		return true
	case "enumeration":
		return t.variety != atomic || t.prim != pBoolean
	}
	if t.variety == union {
		return false
	}
	if t.variety == list {
		return facet == "length" || facet == "minLength" || facet == "maxLength"
	}
	switch t.prim {
	case pString, pAnyURI, pQName, pHexBinary, pBase64Binary, pAnySimple:
		return facet == "length" || facet == "minLength" || facet == "maxLength"
	case pBoolean:
		return false
	case pDecimal:
		return facet != "length" && facet != "minLength" && facet != "maxLength"
	}
	return strings.HasPrefix(facet, "min") && facet != "minLength" || strings.HasPrefix(facet, "max") && facet != "maxLength"
}

// restriction reads an xs:restriction of a simple type (for simpleContent,
// base is given: the content type of the complex base).
func (c *compiler) restriction(d *schemaDoc, n *xmltree.Node, t *simpleType, base *simpleType) {
	baseAttr, hasBase := n.Attr("", "base")
	kids := c.xsChildren(d, n)
	if len(kids) > 0 && kids[0].Local == "simpleType" {
		if hasBase && base == nil {
			c.fail(d, kids[0], "xs:restriction has both a base and a simpleType")
		}
		base = &simpleType{line: kids[0].Line}
		c.checkAttrs(d, kids[0])
		c.simpleBody(d, kids[0], base)
		kids = kids[1:]
	} else if base == nil {
		if !hasBase {
			c.fail(d, n, "xs:restriction needs a base or a simpleType")
		}
		base = c.simpleTypeRef(d, n, baseAttr)
		if base == builtins["anySimpleType"] {
			c.fail(d, n, "a simple type cannot restrict xs:anySimpleType directly")
		}
		c.checkFinal(d, n, base, "restriction")
	}
	t.base, t.variety, t.prim, t.ws, t.item, t.members = base, base.variety, base.prim, base.ws, base.item, base.members
	f := newFacets()
	any := false
	for _, k := range kids {
		c.checkAttrs(d, k)
		v, ok := k.Attr("", "value")
		if !ok && k.Local != "attribute" && k.Local != "attributeGroup" && k.Local != "anyAttribute" {
			c.fail(d, k, "xs:%s needs a value", k.Local)
		}
		switch k.Local {
		case "attribute", "attributeGroup", "anyAttribute":
			continue // attribute uses of a simpleContent restriction
		case "enumeration", "pattern", "length", "minLength", "maxLength", "minInclusive", "maxInclusive",
			"minExclusive", "maxExclusive", "totalDigits", "fractionDigits", "whiteSpace":
		default:
			c.fail(d, k, "xs:%s is not a facet", k.Local)
		}
		if !facetAllowed(t, k.Local) {
			c.fail(d, k, "the facet xs:%s does not apply to %s", k.Local, base.displayName())
		}
		any = true
		switch k.Local {
		case "enumeration":
			val, r := validateValue(base, v, k)
			if r != "" {
				c.fail(d, k, "the enumeration value %q is not valid for the base type: %s", v, r)
			}
			f.enums = append(f.enums, val)
			f.enumSrc = append(f.enumSrc, v)
		case "pattern":
			src, err := translateRegex(v)
			if err != nil {
				if strings.Contains(err.Error(), "not supported") || strings.Contains(err.Error(), "cannot express") {
					panic(failure{&Error{Location: d.location, Line: k.Line, Reason: fmt.Sprintf("xs:pattern %q: %v", v, err), unsupported: true}})
				}
				c.fail(d, k, "xs:pattern %q is not a valid XSD regular expression: %v", v, err)
			}
			re, err := regexp.Compile(src)
			if err != nil {
				panic(failure{&Error{Location: d.location, Line: k.Line, Reason: fmt.Sprintf("xs:pattern %q is not supported: Go's regexp package (RE2) refuses its translation: %v", v, err), unsupported: true}})
			}
			f.patterns = append(f.patterns, re)
			f.patternSrc = append(f.patternSrc, v)
		case "length", "minLength", "maxLength", "totalDigits", "fractionDigits":
			n64, err := strconv.ParseUint(strings.TrimSpace(v), 10, 31)
			if err != nil || k.Local == "totalDigits" && n64 == 0 {
				c.fail(d, k, "xs:%s must be a non-negative integer, not %q", k.Local, v)
			}
			n := int(n64)
			switch k.Local {
			case "length":
				f.length = n
			case "minLength":
				f.minLength = n
			case "maxLength":
				f.maxLength = n
			case "totalDigits":
				f.totalDigits = n
			case "fractionDigits":
				f.fracDigits = n
			}
		case "minInclusive", "maxInclusive", "minExclusive", "maxExclusive":
			val, r := validateValue(base, v, k)
			if r != "" {
				c.fail(d, k, "the xs:%s value %q is not valid for the base type: %s", k.Local, v, r)
			}
			val.s = strings.TrimSpace(v)
			switch k.Local {
			case "minInclusive":
				f.minInc = &val
			case "maxInclusive":
				f.maxInc = &val
			case "minExclusive":
				f.minExc = &val
			case "maxExclusive":
				f.maxExc = &val
			}
		case "whiteSpace":
			switch v {
			case "preserve":
				t.ws = wsPreserve
			case "replace":
				t.ws = wsReplace
			case "collapse":
				t.ws = wsCollapse
			default:
				c.fail(d, k, "xs:whiteSpace must be preserve, replace or collapse, not %q", v)
			}
			if t.ws < base.ws {
				c.fail(d, k, "xs:whiteSpace %q is weaker than the base type's", v)
			}
		}
	}
	switch {
	case f.length >= 0 && (f.minLength >= 0 || f.maxLength >= 0):
		c.fail(d, n, "xs:length cannot be used with xs:minLength or xs:maxLength in the same restriction")
	case f.minLength >= 0 && f.maxLength >= 0 && f.minLength > f.maxLength:
		c.fail(d, n, "xs:minLength %d is greater than xs:maxLength %d", f.minLength, f.maxLength)
	case f.minInc != nil && f.minExc != nil:
		c.fail(d, n, "xs:minInclusive and xs:minExclusive cannot both be given")
	case f.maxInc != nil && f.maxExc != nil:
		c.fail(d, n, "xs:maxInclusive and xs:maxExclusive cannot both be given")
	case f.totalDigits >= 0 && f.fracDigits > f.totalDigits:
		c.fail(d, n, "xs:fractionDigits is greater than xs:totalDigits")
	}
	lo, hi := f.minInc, f.maxInc
	if lo == nil {
		lo = f.minExc
	}
	if hi == nil {
		hi = f.maxExc
	}
	if lo != nil && hi != nil {
		if cmp, ok := lo.compare(hi); ok && (cmp > 0 || cmp == 0 && (f.minExc != nil || f.maxExc != nil)) {
			c.fail(d, n, "the lower bound %s is above the upper bound %s", lo.s, hi.s)
		}
	}
	if base.facets != nil && !base.builtin {
		c.checkNarrowing(d, n, base, f)
	}
	if len(f.enums) > 8 {
		f.enumIndex = make(map[string]struct{}, len(f.enums))
		for i := range f.enums {
			f.enumIndex[f.enums[i].key()] = struct{}{}
		}
	}
	if any {
		t.facets = f
	}
}

// checkNarrowing refuses length facets that widen the base's, as libxml2
// does.
func (c *compiler) checkNarrowing(d *schemaDoc, n *xmltree.Node, base *simpleType, f *facets) {
	for b := base; b != nil && !b.builtin; b = b.base {
		bf := b.facets
		if bf == nil {
			continue
		}
		if f.maxLength >= 0 && bf.maxLength >= 0 && f.maxLength > bf.maxLength {
			c.fail(d, n, "xs:maxLength %d is greater than the base type's %d", f.maxLength, bf.maxLength)
		}
		if f.minLength >= 0 && bf.minLength >= 0 && f.minLength < bf.minLength {
			c.fail(d, n, "xs:minLength %d is less than the base type's %d", f.minLength, bf.minLength)
		}
		if f.length >= 0 && bf.length >= 0 && f.length != bf.length {
			c.fail(d, n, "xs:length %d differs from the base type's %d", f.length, bf.length)
		}
		if f.totalDigits >= 0 && bf.totalDigits >= 0 && f.totalDigits > bf.totalDigits {
			c.fail(d, n, "xs:totalDigits %d is greater than the base type's %d", f.totalDigits, bf.totalDigits)
		}
	}
}

// complexBody reads an xs:complexType into t.
func (c *compiler) complexBody(d *schemaDoc, n *xmltree.Node, t *complexType) {
	defer func() { t.ready = true }()
	t.doc, t.node = d, n
	c.allTypes = append(c.allTypes, t)
	mixed := c.boolAttr(d, n, "mixed")
	t.abstract = c.boolAttr(d, n, "abstract")
	t.block = d.blockDefault
	if b, ok := n.Attr("", "block"); ok {
		t.block = b
	}
	t.final = d.finalDefault
	if f, ok := n.Attr("", "final"); ok {
		t.final = f
	}
	kids := c.xsChildren(d, n)
	if len(kids) > 0 && (kids[0].Local == "simpleContent" || kids[0].Local == "complexContent") {
		if len(kids) > 1 {
			c.fail(d, kids[1], "xs:%s is not allowed after xs:%s", kids[1].Local, kids[0].Local)
		}
		cc := kids[0]
		c.checkAttrs(d, cc)
		if v, ok := cc.Attr("", "mixed"); ok {
			mixed = v == "true" || v == "1"
		}
		inner := c.xsChildren(d, cc)
		if len(inner) != 1 || inner[0].Local != "extension" && inner[0].Local != "restriction" {
			c.fail(d, cc, "xs:%s needs one xs:extension or xs:restriction", cc.Local)
		}
		der := inner[0]
		c.checkAttrs(d, der)
		baseAttr, ok := der.Attr("", "base")
		if !ok {
			c.fail(d, der, "xs:%s needs a base", der.Local)
		}
		base := c.typeByName(c.resolveQName(d, der, baseAttr), d, der)
		c.checkFinal(d, der, base, der.Local)
		if cc.Local == "simpleContent" {
			c.simpleContent(d, der, t, base)
		} else {
			c.complexContent(d, der, t, base, mixed)
		}
	} else {
		t.base, t.derivation = anyType, derRestriction
		rest := c.particleAndAttrs(d, n, t, kids)
		t.particle = rest
		t.kind = contentKindOf(rest, mixed)
	}
	c.indexAttrs(t)
}

func contentKindOf(p *particle, mixed bool) contentKind {
	switch {
	case mixed:
		return ctMixed
	case p == nil:
		return ctEmpty
	}
	return ctElementOnly
}

func (c *compiler) indexAttrs(t *complexType) {
	if len(t.attrs) > 8 {
		t.attrIndex = make(map[qname]*attrUse, len(t.attrs))
		for _, u := range t.attrs {
			t.attrIndex[u.decl.name] = u
		}
	}
}

// particleAndAttrs reads (group|all|choice|sequence)? then attribute uses,
// adding the uses to t, and returns the particle (nil when empty).
func (c *compiler) particleAndAttrs(d *schemaDoc, n *xmltree.Node, t *complexType, kids []*xmltree.Node) *particle {
	var p *particle
	if len(kids) > 0 {
		switch kids[0].Local {
		case "group", "all", "choice", "sequence":
			p = c.particle(d, kids[0], t)
			kids = kids[1:]
		}
	}
	uses, wild := c.attrUses(d, n, kids)
	for _, u := range uses {
		t.attrs = addUse(t.attrs, u)
	}
	t.anyAttr = wild
	if p != nil && p.group != nil && len(p.group.parts) == 0 && p.group.kind != choice {
		p = nil // an empty sequence or all is empty content
	}
	return p
}

func addUse(list []*attrUse, u *attrUse) []*attrUse {
	for i, o := range list {
		if o.decl.name == u.decl.name {
			out := append([]*attrUse(nil), list...)
			out[i] = u
			return out
		}
	}
	return append(list, u)
}

func (c *compiler) simpleContent(d *schemaDoc, der *xmltree.Node, t *complexType, base any) {
	t.kind = ctSimple
	switch b := base.(type) {
	case *simpleType:
		if der.Local == "restriction" {
			c.fail(d, der, "a simpleContent restriction needs a complex base type with simple content, not %s", b.displayName())
		}
		t.baseSimple, t.simple, t.derivation = b, b, derExtension
	case *complexType:
		if !b.ready && c.busy[b] {
			c.fail(d, der, "the complex type %q is derived from itself", b.name.local)
		}
		t.base = b
		switch {
		case b.kind == ctSimple:
			t.simple = b.simple
		case b.kind == ctMixed && der.Local == "restriction" && (b.particle == nil || particleEmptiable(b.particle)):
			t.simple = builtins["string"]
		default:
			c.fail(d, der, "the base type %s of a simpleContent %s does not have simple content", b.displayName(), der.Local)
		}
		t.attrs = append(t.attrs, b.attrs...)
		t.anyAttr = b.anyAttr
	}
	var kids []*xmltree.Node
	if der.Local == "restriction" {
		t.derivation = derRestriction
		st := &simpleType{line: der.Line}
		c.restriction(d, der, st, t.simple)
		if st.facets != nil || st.base != t.simple {
			t.simple = st
		}
		for _, k := range c.xsChildren(d, der) {
			switch k.Local {
			case "attribute", "attributeGroup", "anyAttribute":
				kids = append(kids, k)
			}
		}
	} else {
		t.derivation = derExtension
		kids = c.xsChildren(d, der)
	}
	uses, wild := c.attrUses(d, der, kids)
	if b, ok := base.(*complexType); ok && der.Local == "restriction" {
		c.checkAttrRestriction(d, der, b, uses)
	}
	for _, u := range uses {
		t.attrs = addUse(t.attrs, u)
	}
	t.attrs = dropProhibited(t.attrs)
	if der.Local == "restriction" {
		t.anyAttr = wild
	} else {
		t.anyAttr = unionWild(t.anyAttr, wild)
	}
}

func (c *compiler) complexContent(d *schemaDoc, der *xmltree.Node, t *complexType, base any, mixed bool) {
	b, ok := base.(*complexType)
	if !ok {
		c.fail(d, der, "the base of a complexContent %s must be a complex type", der.Local)
	}
	if !b.ready && c.busy[b] {
		c.fail(d, der, "the complex type %q is derived from itself", b.name.local)
	}
	if b.kind == ctSimple {
		c.fail(d, der, "the base type %s has simple content; derive from it with xs:simpleContent", b.displayName())
	}
	t.base = b
	own := &complexType{}
	p := c.particleAndAttrs(d, der, own, c.xsChildren(d, der))
	if der.Local == "extension" {
		t.derivation = derExtension
		switch {
		case p == nil:
			t.particle = b.particle
		case b.particle == nil:
			t.particle = p
		default:
			t.particle = &particle{min: 1, max: 1, group: &modelGroup{kind: sequence, parts: []*particle{b.particle, p}}}
			if p.group != nil && p.group.kind == all || b.particle.group != nil && b.particle.group.kind == all {
				c.fail(d, der, "an extension cannot add to or extend an xs:all content model")
			}
		}
		t.kind = contentKindOf(t.particle, mixed || b.kind == ctMixed && p == nil)
		if b.kind == ctMixed && t.kind != ctMixed && t.particle != nil {
			c.fail(d, der, "an extension of a mixed type must be mixed")
		}
		if b.kind == ctElementOnly && mixed {
			c.fail(d, der, "an extension of an element-only type cannot be mixed")
		}
		t.attrs = append([]*attrUse(nil), b.attrs...)
		for _, u := range own.attrs {
			t.attrs = addUse(t.attrs, u)
		}
		t.anyAttr = unionWild(b.anyAttr, own.anyAttr)
	} else {
		t.derivation = derRestriction
		t.particle = p
		t.kind = contentKindOf(p, mixed)
		if t.kind == ctMixed && b.kind != ctMixed {
			c.fail(d, der, "a restriction of a type that is not mixed cannot be mixed")
		}
		c.checkAttrRestriction(d, der, b, own.attrs)
		t.attrs = append([]*attrUse(nil), b.attrs...)
		for _, u := range own.attrs {
			t.attrs = addUse(t.attrs, u)
		}
		t.anyAttr = own.anyAttr
	}
	t.attrs = dropProhibited(t.attrs)
}

// checkAttrRestriction refuses a restriction whose attribute uses are not
// a restriction of the base's (derivation-ok-restriction 2 and 3).
func (c *compiler) checkAttrRestriction(d *schemaDoc, der *xmltree.Node, base *complexType, own []*attrUse) {
	for _, u := range own {
		var bu *attrUse
		for _, x := range base.attrs {
			if x.decl.name == u.decl.name {
				bu = x
			}
		}
		prohibited := u.decl.typ == nil
		switch {
		case bu == nil && !prohibited && (base.anyAttr == nil || !base.anyAttr.allows(u.decl.name.ns)):
			c.fail(d, der, "the restriction adds the attribute %q, which the base type %s does not have", u.decl.name.local, base.displayName())
		case bu != nil && bu.required && (prohibited || !u.required):
			c.fail(d, der, "the restriction makes the attribute %q, required in the base type %s, optional or prohibited", u.decl.name.local, base.displayName())
		case bu != nil && !prohibited && !simpleDerivedFrom(u.decl.typ, bu.decl.typ):
			c.fail(d, der, "the type of the attribute %q, %s, is not derived from its type in the base type %s, %s", u.decl.name.local, u.decl.typ.displayName(), base.displayName(), bu.decl.typ.displayName())
		}
	}
}

func dropProhibited(list []*attrUse) []*attrUse {
	out := list[:0:0]
	for _, u := range list {
		if u.decl != nil && u.decl.typ != nil {
			out = append(out, u)
		}
	}
	return out
}

// unionWild is the attribute wildcard of an extension.
func unionWild(a, b *wildcard) *wildcard {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.any || b.any:
		return &wildcard{any: true, process: b.process}
	case a.not != nil || b.not != nil:
		return &wildcard{any: true, process: b.process}
	}
	return &wildcard{ns: append(append([]string(nil), a.ns...), b.ns...), process: b.process}
}

func (c *compiler) attrUses(d *schemaDoc, parent *xmltree.Node, kids []*xmltree.Node) ([]*attrUse, *wildcard) {
	var uses []*attrUse
	var wild, groupWild *wildcard
	for _, k := range kids {
		c.checkAttrs(d, k)
		if wild != nil {
			c.fail(d, k, "xs:%s is not allowed after xs:anyAttribute", k.Local)
		}
		switch k.Local {
		case "attribute":
			u := c.attrUseOf(d, k)
			dup := false
			for _, o := range uses {
				if o.decl.name == u.decl.name {
					if o.decl.typ != nil && u.decl.typ != nil {
						c.fail(d, k, "the attribute %q is declared twice", u.decl.name.local)
					}
					dup = true // a repeated prohibition is ignored, as libxml2 does
				}
			}
			if !dup {
				uses = append(uses, u)
			}
		case "attributeGroup":
			ref, ok := k.Attr("", "ref")
			if !ok {
				c.fail(d, k, "a local xs:attributeGroup needs a ref")
			}
			if len(c.xsChildren(d, k)) > 0 {
				c.fail(d, k, "xs:attributeGroup with ref may contain only xs:annotation")
			}
			g := c.attrGroup(c.resolveQName(d, k, ref), d, k)
			for _, u := range g.uses {
				for _, o := range uses {
					if o.decl.name == u.decl.name {
						c.fail(d, k, "the attribute %q is declared twice (through xs:attributeGroup %q)", u.decl.name.local, ref)
					}
				}
				uses = append(uses, u)
			}
			if g.wild != nil && groupWild == nil {
				groupWild = g.wild
			}
		case "anyAttribute":
			wild = c.wildcard(d, k)
		default:
			c.fail(d, k, "xs:%s is not allowed in <xs:%s> here", k.Local, parent.Local)
		}
	}
	if wild == nil {
		// XSD intersects the group wildcards with the local one; the
		// schemas seen use one at most, so take it.
		wild = groupWild
	}
	return uses, wild
}

func (c *compiler) attrUseOf(d *schemaDoc, k *xmltree.Node) *attrUse {
	u := &attrUse{}
	use := attr(k, "use")
	switch use {
	case "", "optional":
	case "required":
		u.required = true
	case "prohibited":
	default:
		c.fail(d, k, "use must be optional, required or prohibited, not %q", use)
	}
	if ref, ok := k.Attr("", "ref"); ok {
		if _, hasName := k.Attr("", "name"); hasName {
			c.fail(d, k, "xs:attribute cannot have both name and ref")
		}
		if _, hasType := k.Attr("", "type"); hasType {
			c.fail(d, k, "xs:attribute with ref cannot have a type")
		}
		if len(c.xsChildren(d, k)) > 0 {
			c.fail(d, k, "xs:attribute with ref may contain only xs:annotation")
		}
		q := c.resolveQName(d, k, ref)
		a := c.attribute(q)
		if a == nil {
			c.fail(d, k, "the attribute %q is not declared", q.String())
		}
		u.decl = a
		if fixed, ok := k.Attr("", "fixed"); ok {
			v, r := validateValue(a.typ, fixed, k)
			if r != "" {
				c.fail(d, k, "the fixed value of attribute %q is not valid: %s", q.local, r)
			}
			if a.fixed != nil && !v.equal(&a.fixedVal) {
				c.fail(d, k, "the fixed value of attribute %q differs from its declaration's", q.local)
			}
			u.fixed, u.fixedVal = &fixed, v
		}
	} else {
		name := attr(k, "name")
		if !isNCName(name) || name == "xmlns" {
			c.fail(d, k, "xs:attribute needs a name that is an NCName (name=%q)", name)
		}
		q := qname{"", name}
		qualified := d.attrQualified
		if _, ok := k.Attr("", "form"); ok {
			qualified = c.form(d, k, "form")
		}
		if qualified {
			q.ns = d.tns
		}
		u.decl = c.attrBody(d, k, q)
	}
	if _, hasDef := k.Attr("", "default"); hasDef && use != "" && use != "optional" {
		c.fail(d, k, "an attribute with a default value must be optional")
	}
	if use == "prohibited" {
		u.decl = &attrDecl{name: u.decl.name} // no type: dropped after deriving
	}
	return u
}

func (c *compiler) attrGroup(q qname, d *schemaDoc, at *xmltree.Node) *attrGroup {
	if g := c.ags[q]; g != nil {
		return g
	}
	df, ok := c.agDefs[q]
	if !ok {
		c.fail(d, at, "the attribute group %q is not defined", q.String())
	}
	if c.busy[df.n] {
		c.fail(df.doc, df.n, "the attribute group %q refers to itself", q.local)
	}
	c.busy[df.n] = true
	defer delete(c.busy, df.n)
	g := &attrGroup{}
	kids := c.xsChildren(df.doc, df.n)
	for _, k := range kids {
		c.checkAttrs(df.doc, k)
	}
	g.uses, g.wild = c.attrUses(df.doc, df.n, kids)
	c.ags[q] = g
	return g
}

func (c *compiler) wildcard(d *schemaDoc, k *xmltree.Node) *wildcard {
	w := &wildcard{}
	switch pc := attr(k, "processContents"); pc {
	case "", "strict":
	case "lax":
		w.process = pcLax
	case "skip":
		w.process = pcSkip
	default:
		c.fail(d, k, "processContents must be strict, lax or skip, not %q", pc)
	}
	ns, ok := k.Attr("", "namespace")
	ns = strings.TrimSpace(ns)
	switch {
	case !ok || ns == "##any":
		w.any = true
	case ns == "##other":
		w.not = []string{d.tns, ""}
	default:
		w.ns = []string{}
		for _, f := range strings.Fields(ns) {
			switch f {
			case "##targetNamespace":
				w.ns = append(w.ns, d.tns)
			case "##local":
				w.ns = append(w.ns, "")
			case "##any", "##other":
				c.fail(d, k, "%s cannot be combined with other namespaces", f)
			default:
				w.ns = append(w.ns, f)
			}
		}
	}
	return w
}

// occurs reads minOccurs and maxOccurs.
func (c *compiler) occurs(d *schemaDoc, n *xmltree.Node) (int, int) {
	min, max := 1, 1
	if v, ok := n.Attr("", "minOccurs"); ok {
		m, err := strconv.ParseUint(strings.TrimSpace(v), 10, 63)
		if err != nil {
			c.fail(d, n, "minOccurs must be a non-negative integer, not %q", v)
		}
		min = int(min64(m))
	}
	if v, ok := n.Attr("", "maxOccurs"); ok {
		if strings.TrimSpace(v) == "unbounded" {
			max = -1
		} else {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 10, 63)
			if err != nil {
				c.fail(d, n, "maxOccurs must be a non-negative integer or unbounded, not %q", v)
			}
			max = int(min64(m))
		}
	}
	if max >= 0 && min > max {
		c.fail(d, n, "minOccurs %d is greater than maxOccurs %d", min, max)
	}
	return min, max
}

func min64(v uint64) uint64 {
	if v > math.MaxInt32 {
		return math.MaxInt32
	}
	return v
}

// particle reads an element, group ref, compositor or wildcard particle.
func (c *compiler) particle(d *schemaDoc, n *xmltree.Node, owner *complexType) *particle {
	c.checkAttrs(d, n)
	min, max := c.occurs(d, n)
	p := &particle{min: min, max: max}
	switch n.Local {
	case "element":
		if ref, ok := n.Attr("", "ref"); ok {
			if len(c.xsChildren(d, n)) > 0 {
				c.fail(d, n, "xs:element with ref may contain only xs:annotation")
			}
			for _, a := range []string{"name", "type", "nillable", "default", "fixed", "form", "block"} {
				if _, has := n.Attr("", a); has {
					c.fail(d, n, "xs:element with ref cannot have %s", a)
				}
			}
			q := c.resolveQName(d, n, ref)
			e := c.element(q)
			if e == nil {
				c.fail(d, n, "the element %q is not declared", q.String())
			}
			p.elem = e
		} else {
			name := attr(n, "name")
			if !isNCName(name) {
				c.fail(d, n, "xs:element needs a name that is an NCName (name=%q)", name)
			}
			q := qname{"", name}
			qualified := d.elemQualified
			if _, ok := n.Attr("", "form"); ok {
				qualified = c.form(d, n, "form")
			}
			if qualified {
				q.ns = d.tns
			}
			if _, ok := n.Attr("", "abstract"); ok {
				c.fail(d, n, "a local xs:element cannot be abstract")
			}
			e := &elemDecl{name: q, line: n.Line}
			c.elementBody(d, n, e)
			p.elem = e
		}
	case "any":
		p.wild = c.wildcard(d, n)
	case "group":
		ref, ok := n.Attr("", "ref")
		if !ok {
			c.fail(d, n, "a local xs:group needs a ref")
		}
		if len(c.xsChildren(d, n)) > 0 {
			c.fail(d, n, "xs:group with ref may contain only xs:annotation")
		}
		p.group = c.group(c.resolveQName(d, n, ref), d, n)
		if p.group.kind == all && (max != 1 || min > 1) {
			c.fail(d, n, "a group with xs:all must have maxOccurs 1")
		}
	case "sequence", "choice", "all":
		g := &modelGroup{line: n.Line}
		switch n.Local {
		case "choice":
			g.kind = choice
		case "all":
			g.kind = all
			if max != 1 || min > 1 {
				c.fail(d, n, "xs:all must have maxOccurs 1 and minOccurs 0 or 1")
			}
		}
		for _, k := range c.xsChildren(d, n) {
			switch k.Local {
			case "element", "any", "group", "sequence", "choice":
				if g.kind == all && k.Local != "element" {
					c.fail(d, k, "xs:all can only contain xs:element")
				}
			case "all":
				c.fail(d, k, "xs:all must be the whole content model")
			default:
				c.fail(d, k, "xs:%s is not allowed in xs:%s", k.Local, n.Local)
			}
			q := c.particle(d, k, owner)
			if k.Local == "group" && q.group.kind == all {
				c.fail(d, k, "the group %q holds an xs:all, which cannot be inside xs:%s", attr(k, "ref"), n.Local)
			}
			if g.kind == all && q.max > 1 {
				c.fail(d, k, "an element in xs:all can occur at most once")
			}
			if q.max != 0 {
				g.parts = append(g.parts, q)
			}
		}
		p.group = g
	default:
		c.fail(d, n, "xs:%s is not allowed here", n.Local)
	}
	return p
}

func (c *compiler) group(q qname, d *schemaDoc, at *xmltree.Node) *modelGroup {
	if g := c.groups[q]; g != nil {
		return g
	}
	df, ok := c.groupDefs[q]
	if !ok {
		c.fail(d, at, "the group %q is not defined", q.String())
	}
	if c.busy[df.n] {
		c.fail(df.doc, df.n, "the group %q refers to itself", q.local)
	}
	c.busy[df.n] = true
	defer delete(c.busy, df.n)
	kids := c.xsChildren(df.doc, df.n)
	if len(kids) != 1 || kids[0].Local != "sequence" && kids[0].Local != "choice" && kids[0].Local != "all" {
		c.fail(df.doc, df.n, "xs:group %q needs exactly one xs:sequence, xs:choice or xs:all", q.local)
	}
	if _, ok := kids[0].Attr("", "minOccurs"); ok {
		c.fail(df.doc, kids[0], "the compositor of a named group cannot have minOccurs")
	}
	if _, ok := kids[0].Attr("", "maxOccurs"); ok {
		c.fail(df.doc, kids[0], "the compositor of a named group cannot have maxOccurs")
	}
	p := c.particle(df.doc, kids[0], nil)
	c.groups[q] = p.group
	return p.group
}

// validateValue is validate for schema values (facets, defaults).
func validateValue(t *simpleType, raw string, ns nsContext) (value, string) {
	var v value
	r := t.validate(raw, ns, &v)
	return v, r
}

// identityConstraint reads an xs:unique, xs:key or xs:keyref.
func (c *compiler) identityConstraint(d *schemaDoc, n *xmltree.Node) *idc {
	name := attr(n, "name")
	if !isNCName(name) {
		c.fail(d, n, "xs:%s needs a name that is an NCName (name=%q)", n.Local, name)
	}
	k := &idc{name: qname{d.tns, name}, line: n.Line, doc: d, node: n}
	switch n.Local {
	case "key":
		k.kind = idcKey
	case "keyref":
		k.kind = idcKeyref
		ref, ok := n.Attr("", "refer")
		if !ok {
			c.fail(d, n, "xs:keyref %q needs refer", name)
		}
		k.referQ = c.resolveQName(d, n, ref)
	}
	if prev := c.idcs[k.name]; prev != nil {
		c.fail(d, n, "the identity constraint %q is defined twice (also at line %d)", name, prev.line)
	}
	c.idcs[k.name] = k
	c.idcOrder = append(c.idcOrder, k)
	for i, kid := range c.xsChildren(d, n) {
		c.checkAttrs(d, kid)
		expr, ok := kid.Attr("", "xpath")
		if !ok {
			c.fail(d, kid, "xs:%s needs an xpath", kid.Local)
		}
		switch {
		case kid.Local == "selector" && i == 0:
			p, err := parseXPath(expr, false, kid)
			if err != nil {
				c.fail(d, kid, "xs:selector xpath %q: %v", expr, err)
			}
			k.selector = p
		case kid.Local == "field" && i > 0:
			p, err := parseXPath(expr, true, kid)
			if err != nil {
				c.fail(d, kid, "xs:field xpath %q: %v", expr, err)
			}
			k.fields = append(k.fields, p)
		default:
			c.fail(d, kid, "xs:%s is not allowed here in xs:%s (one xs:selector, then xs:field)", kid.Local, n.Local)
		}
	}
	if k.selector == nil || len(k.fields) == 0 {
		c.fail(d, n, "xs:%s %q needs an xs:selector and at least one xs:field", n.Local, name)
	}
	return k
}

// substitutionGroups gives each head the members that may replace it
// (transitively), leaving out those its block attribute excludes.
func (c *compiler) substitutionGroups() {
	for _, e := range c.elems {
		if e.substHead == nil {
			continue
		}
		derivs := derivationMethods(e, e.substHead)
		for h := e.substHead; h != nil; h = h.substHead {
			if blocked(h.block, "substitution") || blocked(h.block, "extension") && derivs&derExtensionBit != 0 || blocked(h.block, "restriction") && derivs&derRestrictionBit != 0 {
				continue
			}
			h.substitutes = append(h.substitutes, e)
		}
	}
	for _, e := range c.elems {
		// Document order does not matter, but a stable order keeps
		// messages stable.
		slices.SortFunc(e.substitutes, func(a, b *elemDecl) int { return a.line - b.line })
	}
}

func blocked(block, method string) bool {
	for _, f := range strings.Fields(block) {
		if f == "#all" || f == method {
			return true
		}
	}
	return false
}

const (
	derExtensionBit = 1 << iota
	derRestrictionBit
)

// derivationMethods are the methods on the chain from e's type up to
// head's.
func derivationMethods(e, head *elemDecl) int {
	m := 0
	if e.ct != nil {
		for t := e.ct; t != nil && t != head.ct && t != anyType; t = t.base {
			if t.derivation == derExtension {
				m |= derExtensionBit
			} else {
				m |= derRestrictionBit
			}
		}
	}
	if e.st != nil && e.st != head.st {
		m |= derRestrictionBit
	}
	return m
}

// validSubstitute: a member's type must be derived from its head's.
func validSubstitute(e, head *elemDecl) bool {
	switch {
	case head.ct == anyType:
		return true
	case head.ct != nil && e.ct != nil:
		for t := e.ct; t != nil; t = t.base {
			if t == head.ct {
				return true
			}
			if t == anyType {
				break
			}
		}
		return false
	case head.ct != nil && e.st != nil:
		return false
	case head.st != nil && e.st != nil:
		for t := e.st; t != nil; t = t.base {
			if t == head.st {
				return true
			}
		}
		return false
	case head.ct != nil && head.ct.kind == ctSimple && e.ct != nil:
		return true
	}
	// A complex type with simple content derived from a simple head type.
	if head.st != nil && e.ct != nil && e.ct.kind == ctSimple {
		for t := e.ct; t != nil; t = t.base {
			if t.baseSimple == head.st || t.simple == head.st {
				return true
			}
		}
	}
	return false
}

// checkFinal refuses a derivation the base type's final (or the schema's
// finalDefault) forbids.
func (c *compiler) checkFinal(d *schemaDoc, at *xmltree.Node, base any, method string) {
	final, name := "", ""
	switch b := base.(type) {
	case *simpleType:
		final, name = b.final, b.displayName()
	case *complexType:
		final, name = b.final, b.displayName()
	}
	if blocked(final, method) {
		c.fail(d, at, "the type %s is final for %s, so it cannot be derived from by %s", name, method, method)
	}
}

// simpleDerivedFrom reports whether t is base or derived from it by
// restriction (every simple type is derived from xs:anySimpleType).
func simpleDerivedFrom(t, base *simpleType) bool {
	if base == builtins["anySimpleType"] {
		return true
	}
	for ; t != nil; t = t.base {
		if t == base {
			return true
		}
	}
	return false
}
