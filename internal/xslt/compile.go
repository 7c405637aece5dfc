package xslt

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/sluicehq/sluice/internal/xmltree"
	"github.com/sluicehq/sluice/internal/xpath"
)

// Namespaces the processor knows.
const (
	xslNS  = "http://www.w3.org/1999/XSL/Transform"
	exslNS = "http://exslt.org/common"
)

// Options configure [Compile].
type Options struct {
	// Resolve returns the stylesheet that xsl:include or xsl:import names
	// by href (stylesheets registered in Sluice under a name); nil means
	// include and import are refused.
	Resolve func(href string) ([]byte, error)
	// MaxDepth bounds nested template calls, applies and variable
	// evaluations (default 1000): a looping stylesheet fails with an
	// error instead of exhausting the stack.
	MaxDepth int
	// MaxOutput bounds the bytes a transformation builds, its output and
	// its variables (default 16 MiB). Work is bounded with it: a
	// transformation may execute at most 8 instructions per allowed byte
	// (plus 1M), so a stylesheet that loops without output also stops.
	MaxOutput int
	// Message receives the text of each xsl:message; nil discards it.
	Message func(msg string)
}

func (o Options) withDefaults() Options {
	if o.MaxDepth <= 0 {
		o.MaxDepth = 1000
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = 16 << 20
	}
	return o
}

// qname is an expanded name.
type qname struct{ space, local string }

func (q qname) String() string {
	if q.space == "" {
		return q.local
	}
	return "{" + q.space + "}" + q.local
}

// Stylesheet is a compiled stylesheet; it is safe for concurrent use.
type Stylesheet struct {
	opts       Options
	modes      map[qname]*mode
	named      map[qname]*template
	globals    []*variable
	globalIdx  map[qname]*variable
	keys       map[qname][]*keyDef
	attrSets   map[qname]*attrSet
	decFormats map[qname]*decimalFormat
	out        output
	strip      []spaceRule
	aliases    map[string]xmltree.NS // stylesheet namespace URI → result prefix and URI
	// scopes are the stylesheet elements of expressions that call
	// functions taking a QName as a string (key(), format-number(), …),
	// so its prefix is resolved where the expression was written.
	scopes   map[*xpath.Expr]*xmltree.Node
	pictures pictureCache
	outHint  atomic.Int64 // the size of a recent output, to size the next
	modules  []*module
}

// module is one stylesheet document of the import tree (included ones
// share their includer's).
type module struct {
	href string
	// prec is the import precedence, higher wins; the modules imported
	// (directly or not) by this one have precedences in [lo, prec).
	lo, prec int
}

type template struct {
	name      qname
	mode      qname
	match     string
	line      int
	mod       *module
	params    []*variable
	body      []instr
	nsInherit []xmltree.NS // namespaces copied to the template's top-level literal result elements
}

func (t *template) String() string {
	if t == nil {
		return "built-in template"
	}
	if t.match != "" {
		return fmt.Sprintf("template match=%q (line %d)", t.match, t.line)
	}
	return fmt.Sprintf("template name=%q (line %d)", t.name.local, t.line)
}

type keyDef struct {
	match *xpath.Pattern
	use   *xpath.Expr
	line  int
}

// attrSet is an xsl:attribute-set: the definitions of each import
// precedence, resolved as xsltproc does (see resolveSet).
type attrSet struct {
	name     qname
	chunks   []setChunk
	line     int
	state    int // 0 unresolved, 1 resolving, 2 resolved
	resolved []*attributeI
}

type setChunk struct {
	prec  int
	use   []qname
	attrs []*attributeI
}

type spaceRule struct {
	space, local string // local "*" for any; space "*" for any namespace
	strip        bool
	prec         int
	prio         float64
}

type output struct {
	method        string // xml, text or html
	version       string
	encoding      string
	omitDecl      bool
	standalone    string
	doctypePublic string
	doctypeSystem string
	cdata         map[qname]bool
	indent        bool
	indentSet     bool
	mediaType     string
	set           map[string]int // attribute → precedence that set it
}

type compiler struct {
	opts  Options
	ss    *Stylesheet
	prec  int
	seq   int
	stack []string // hrefs being loaded, for cycles
	// forwards is set while compiling a module with version other than 1.0.
	forwards bool
	gprec    map[qname]int
	hrefs    map[*xmltree.Node]string // document nodes of included and imported stylesheets
	// guarded are the extension functions the stylesheet tests with
	// function-available('p:f'): compiled, and refused only if called.
	guarded map[qname]bool
	// locals are the local variables and parameters in scope where the
	// compiler is, to refuse one that shadows another of its template.
	locals []localName
}

type localName struct {
	name qname
	line int
}

// bind records a local variable or parameter, refusing a second binding
// of the name in scope.
func (c *compiler) bind(n *xmltree.Node, q qname) error {
	for _, l := range c.locals {
		if l.name == q {
			return c.errf(n, "the variable or parameter %s is already bound at line %d (XSLT 1.0 forbids shadowing a local binding)", q, l.line)
		}
	}
	c.locals = append(c.locals, localName{q, n.Line})
	return nil
}

// Error is a stylesheet refused by Compile, or a transformation that failed.
type Error struct {
	Line int    // the stylesheet line, 0 if unknown
	Href string // the included or imported stylesheet, "" for the main one
	Msg  string
	Err  error // the cause, if any: ErrLimit, ErrTerminated, …
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	var b strings.Builder
	if e.Href != "" {
		b.WriteString(e.Href)
		b.WriteString(": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (c *compiler) errf(n *xmltree.Node, format string, args ...any) error {
	e := &Error{Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
		top := n
		for top.Parent != nil {
			top = top.Parent
		}
		e.Href = c.hrefs[top]
	}
	return e
}

// Compile reads a stylesheet. Constructs the processor does not support are
// refused here, with the line and the construct.
func Compile(src []byte, opts Options) (*Stylesheet, error) {
	opts = opts.withDefaults()
	ss := &Stylesheet{
		opts:       opts,
		modes:      map[qname]*mode{},
		named:      map[qname]*template{},
		globalIdx:  map[qname]*variable{},
		keys:       map[qname][]*keyDef{},
		attrSets:   map[qname]*attrSet{},
		decFormats: map[qname]*decimalFormat{},
		aliases:    map[string]xmltree.NS{},
		out:        output{set: map[string]int{}, cdata: map[qname]bool{}},
	}
	c := &compiler{opts: opts, ss: ss, gprec: map[qname]int{}}
	doc, err := xmltree.Parse(src, xmltree.Limits{})
	if err != nil {
		return nil, fmt.Errorf("stylesheet: %w", err)
	}
	c.stack = []string{""}
	c.findGuards(doc)
	if err := c.module(doc.Root(), ""); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	return ss, nil
}

// MediaType is the media type of the output: xsl:output's media-type, or
// that of its method.
func (s *Stylesheet) MediaType() string {
	if s.out.mediaType != "" {
		return s.out.mediaType
	}
	switch s.out.method {
	case "text":
		return "text/plain"
	case "html":
		return "text/html"
	}
	return "application/xml"
}

func isXSL(n *xmltree.Node, local string) bool {
	return n.Kind == xmltree.Element && n.Space == xslNS && n.Local == local
}

func attr(n *xmltree.Node, name string) (string, bool) {
	return n.Attr("", name)
}

// module compiles one stylesheet document: its imports first (they take
// lower precedences), then its declarations and those of what it includes.
func (c *compiler) module(root *xmltree.Node, href string) error {
	if root.Space != xslNS || (root.Local != "stylesheet" && root.Local != "transform") {
		if v, ok := root.Attr(xslNS, "version"); ok {
			return c.simplified(root, v)
		}
		return c.errf(root, "<%s> is not a stylesheet (xsl:stylesheet or xsl:transform, or a literal result element with xsl:version)", root.Name())
	}
	v, ok := attr(root, "version")
	if !ok {
		return c.errf(root, "xsl:%s has no version attribute", root.Local)
	}
	var decls, imports []*xmltree.Node
	if err := c.flatten(root, &decls, &imports, 0); err != nil {
		return err
	}
	lo := c.prec
	for _, imp := range imports {
		if err := c.load(imp, func(r *xmltree.Node, h string) error { return c.module(r, h) }); err != nil {
			return err
		}
	}
	m := &module{href: href, lo: lo, prec: c.prec}
	c.prec++
	c.ss.modules = append(c.ss.modules, m)
	_ = v
	// Aliases first: literal result elements before them use them too.
	for _, d := range decls {
		if isXSL(d, "namespace-alias") {
			if err := c.decl(d, m); err != nil {
				return err
			}
		}
	}
	for _, d := range decls {
		if isXSL(d, "namespace-alias") {
			continue
		}
		saved := c.forwards
		c.forwards = forwardsCompatible(d)
		err := c.decl(d, m)
		c.forwards = saved
		if err != nil {
			return err
		}
	}
	return nil
}

// forwardsCompatible reports whether n is in forwards-compatible mode: the
// nearest version (xsl:version on a literal result element, version on the
// stylesheet) is not 1.0.
func forwardsCompatible(n *xmltree.Node) bool {
	for e := n; e != nil && e.Kind == xmltree.Element; e = e.Parent {
		var v string
		var ok bool
		if e.Space == xslNS {
			if e.Parent != nil && e.Parent.Kind == xmltree.Document {
				v, ok = attr(e, "version")
			}
		} else {
			v, ok = e.Attr(xslNS, "version")
		}
		if ok {
			return strings.TrimSpace(v) != "1.0"
		}
	}
	return false
}

// flatten lists the top-level declarations of root and of the stylesheets
// it includes, in order, and the imports of all of them.
func (c *compiler) flatten(root *xmltree.Node, decls, imports *[]*xmltree.Node, depth int) error {
	seenOther := false
	for _, n := range root.Children {
		switch n.Kind {
		case xmltree.Text:
			if !isBlank(n.Data) {
				return c.errf(n, "text %q is not allowed at the top level of a stylesheet", strings.TrimSpace(n.Data))
			}
			continue
		case xmltree.Element:
		default:
			continue
		}
		switch {
		case isXSL(n, "import"):
			if seenOther {
				return c.errf(n, "xsl:import must come before the other declarations")
			}
			*imports = append(*imports, n)
		case isXSL(n, "include"):
			seenOther = true
			err := c.load(n, func(r *xmltree.Node, _ string) error {
				if r.Space != xslNS || (r.Local != "stylesheet" && r.Local != "transform") {
					return c.errf(r, "an included stylesheet must be xsl:stylesheet or xsl:transform")
				}
				return c.flatten(r, decls, imports, depth+1)
			})
			if err != nil {
				return err
			}
		default:
			seenOther = true
			*decls = append(*decls, n)
		}
	}
	return nil
}

// load fetches the stylesheet that xsl:include or xsl:import n names and
// passes its root element to f.
func (c *compiler) load(n *xmltree.Node, f func(root *xmltree.Node, href string) error) error {
	href, ok := attr(n, "href")
	if !ok {
		return c.errf(n, "xsl:%s has no href attribute", n.Local)
	}
	if c.opts.Resolve == nil {
		return c.errf(n, "xsl:%s href=%q is refused: no stylesheets can be included or imported here", n.Local, href)
	}
	if slices.Contains(c.stack, href) {
		return c.errf(n, "xsl:%s href=%q includes or imports itself", n.Local, href)
	}
	if len(c.stack) > 32 {
		return c.errf(n, "xsl:%s href=%q: includes and imports nested more than 32 deep", n.Local, href)
	}
	src, err := c.opts.Resolve(href)
	if err != nil {
		return c.errf(n, "xsl:%s href=%q: %v", n.Local, href, err)
	}
	doc, err := xmltree.Parse(src, xmltree.Limits{})
	if err != nil {
		return c.errf(n, "xsl:%s href=%q: %v", n.Local, href, err)
	}
	if c.hrefs == nil {
		c.hrefs = map[*xmltree.Node]string{}
	}
	c.hrefs[doc] = href
	c.findGuards(doc)
	c.stack = append(c.stack, href)
	defer func() { c.stack = c.stack[:len(c.stack)-1] }()
	return f(doc.Root(), href)
}

// simplified compiles a literal result element as the stylesheet: one
// template matching "/".
func (c *compiler) simplified(root *xmltree.Node, version string) error {
	m := &module{lo: c.prec, prec: c.prec}
	c.prec++
	c.ss.modules = append(c.ss.modules, m)
	c.forwards = strings.TrimSpace(version) != "1.0"
	t := &template{match: "/", line: root.Line, mod: m}
	body, err := c.body(&xmltree.Node{Kind: xmltree.Element, Children: []*xmltree.Node{root}}, t, false)
	if err != nil {
		return err
	}
	t.body = body
	p, err := xpath.CompilePattern("/", xpath.Options{})
	if err != nil {
		return c.errf(root, "%v", err)
	}
	c.addRule(t, p, root)
	return nil
}

func (c *compiler) decl(n *xmltree.Node, m *module) error {
	if n.Space == "" {
		return c.errf(n, "<%s> at the top level must be in a namespace (user data) or be an XSLT declaration", n.Local)
	}
	if n.Space != xslNS {
		return nil // user data: ignored
	}
	switch n.Local {
	case "template":
		return c.template(n, m)
	case "variable", "param":
		saved := c.locals
		c.locals = nil
		v, err := c.variable(n, nil)
		c.locals = saved
		if err != nil {
			return err
		}
		v.global = true
		if p, ok := c.gprec[v.name]; ok {
			if p == m.prec {
				return c.errf(n, "the global variable or parameter %s is declared twice", v.name)
			}
			if p > m.prec {
				return nil
			}
			old := c.ss.globalIdx[v.name]
			c.ss.globals = slices.DeleteFunc(c.ss.globals, func(x *variable) bool { return x == old })
		}
		c.gprec[v.name] = m.prec
		c.ss.globalIdx[v.name] = v
		c.ss.globals = append(c.ss.globals, v)
		return nil
	case "key":
		return c.key(n)
	case "output":
		return c.output(n, m)
	case "strip-space", "preserve-space":
		els, ok := attr(n, "elements")
		if !ok {
			return c.errf(n, "xsl:%s has no elements attribute", n.Local)
		}
		for _, tok := range strings.Fields(els) {
			r := spaceRule{strip: n.Local == "strip-space", prec: m.prec}
			switch {
			case tok == "*":
				r.space, r.local, r.prio = "*", "*", -0.5
			case strings.HasSuffix(tok, ":*"):
				uri, ok := n.LookupPrefix(strings.TrimSuffix(tok, ":*"))
				if !ok {
					return c.errf(n, "xsl:%s: the prefix of %q is not declared", n.Local, tok)
				}
				r.space, r.local, r.prio = uri, "*", -0.25
			default:
				q, err := c.qname(n, tok, false)
				if err != nil {
					return err
				}
				r.space, r.local = q.space, q.local
			}
			c.ss.strip = append(c.ss.strip, r)
		}
		return nil
	case "attribute-set":
		return c.attributeSet(n, m)
	case "decimal-format":
		return c.decimalFormat(n)
	case "namespace-alias":
		sp, _ := attr(n, "stylesheet-prefix")
		rp, _ := attr(n, "result-prefix")
		from, ok1 := lookupNS(n, sp)
		to, ok2 := lookupNS(n, rp)
		if !ok1 || !ok2 {
			return c.errf(n, "xsl:namespace-alias: a prefix is not declared")
		}
		if rp == "#default" {
			rp = ""
		}
		c.ss.aliases[from] = xmltree.NS{Prefix: rp, URI: to}
		return nil
	}
	if c.forwards {
		return nil
	}
	return c.errf(n, "xsl:%s is not an XSLT 1.0 declaration", n.Local)
}

func lookupNS(n *xmltree.Node, prefix string) (string, bool) {
	if prefix == "#default" {
		prefix = ""
	}
	return n.LookupPrefix(prefix)
}

// qname resolves a QName written in the stylesheet at n. The default
// namespace applies only if useDefault.
func (c *compiler) qname(n *xmltree.Node, s string, useDefault bool) (qname, error) {
	s = strings.TrimSpace(s)
	prefix, local, ok := strings.Cut(s, ":")
	if !ok {
		local, prefix = prefix, ""
	}
	if !isNCName(local) || (ok && !isNCName(prefix)) {
		return qname{}, c.errf(n, "%q is not a QName", s)
	}
	if prefix == "" {
		if useDefault {
			uri, _ := n.LookupPrefix("")
			return qname{uri, local}, nil
		}
		return qname{"", local}, nil
	}
	uri, found := n.LookupPrefix(prefix)
	if !found {
		return qname{}, c.errf(n, "the prefix %q of %q is not declared", prefix, s)
	}
	return qname{uri, local}, nil
}

func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 0x7f && r != 0xB7:
		case i > 0 && (r == '-' || r == '.' || r >= '0' && r <= '9' || r == 0xB7):
		default:
			return false
		}
	}
	return true
}

// xpathOpts resolves prefixes in the scope of n.
func (c *compiler) xpathOpts(n *xmltree.Node) xpath.Options {
	return xpath.Options{
		Namespaces: func(prefix string) (string, bool) {
			if prefix == "" {
				return "", true
			}
			return n.LookupPrefix(prefix)
		},
		HasFunction: func(space, local string) bool {
			return hasFunction(space, local) || c.guarded[qname{space, local}]
		},
	}
}

// findGuards records the functions named by function-available('…')
// literals in the stylesheet: a stylesheet written for several processors
// calls msxsl:node-set() only where function-available() says it exists,
// so such a call is compiled and fails only if it is reached.
func (c *compiler) findGuards(doc *xmltree.Node) {
	var walk func(n *xmltree.Node)
	walk = func(n *xmltree.Node) {
		for _, a := range n.Attrs {
			v := a.Data
			for {
				i := strings.Index(v, "function-available")
				if i < 0 {
					break
				}
				v = strings.TrimLeft(v[i+len("function-available"):], " \t\r\n")
				if !strings.HasPrefix(v, "(") {
					continue
				}
				v = strings.TrimLeft(v[1:], " \t\r\n")
				if v == "" || v[0] != '\'' && v[0] != '"' {
					continue
				}
				end := strings.IndexByte(v[1:], v[0])
				if end < 0 {
					break
				}
				name := strings.TrimSpace(v[1 : 1+end])
				if prefix, local, ok := strings.Cut(name, ":"); ok {
					if uri, found := n.LookupPrefix(prefix); found {
						if c.guarded == nil {
							c.guarded = map[qname]bool{}
						}
						c.guarded[qname{uri, local}] = true
					}
				}
				v = v[1+end:]
			}
		}
		for _, ch := range n.Children {
			if ch.Kind == xmltree.Element {
				walk(ch)
			}
		}
	}
	if r := doc.Root(); r != nil {
		walk(r)
	}
}

func (c *compiler) expr(n *xmltree.Node, attrName, src string) (*xpath.Expr, error) {
	if err := checkFunctions(src); err != nil {
		return nil, c.errf(n, "%s %s=%q: %v", n.Name(), attrName, src, err)
	}
	e, err := xpath.Compile(src, c.xpathOpts(n))
	if err != nil {
		return nil, c.errf(n, "%s %s=%q: %v", n.Name(), attrName, src, err)
	}
	for _, f := range qnameFunctions {
		if strings.Contains(src, f) {
			if c.ss.scopes == nil {
				c.ss.scopes = map[*xpath.Expr]*xmltree.Node{}
			}
			c.ss.scopes[e] = n
			break
		}
	}
	return e, nil
}

func (c *compiler) pattern(n *xmltree.Node, attrName, src string) (*xpath.Pattern, error) {
	if err := checkFunctions(src); err != nil {
		return nil, c.errf(n, "%s %s=%q: %v", n.Name(), attrName, src, err)
	}
	p, err := xpath.CompilePattern(src, c.xpathOpts(n))
	if err != nil {
		return nil, c.errf(n, "%s %s=%q: %v", n.Name(), attrName, src, err)
	}
	return p, nil
}

// qnameFunctions take a QName as a string argument.
var qnameFunctions = []string{"key", "format-number", "system-property", "function-available", "element-available"}

// errDocument is the refusal of document().
var errDocument = errors.New("document() is not available: stylesheets cannot read files or URLs")

// checkFunctions refuses document() before the expression is compiled, so
// the refusal says why whatever the XPath compiler says of the name.
func checkFunctions(src string) error {
	for i := 0; ; {
		j := strings.Index(src[i:], "document")
		if j < 0 {
			return nil
		}
		k := i + j
		end := k + len("document")
		before := byte(' ')
		if k > 0 {
			before = src[k-1]
		}
		rest := strings.TrimLeft(src[end:], " \t\r\n")
		if !isNameByte(before) && before != ':' && before != '$' && before != '\'' && before != '"' && strings.HasPrefix(rest, "(") && !inQuotes(src, k) {
			return errDocument
		}
		i = end
	}
}

func isNameByte(b byte) bool {
	return b == '_' || b == '-' || b == '.' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b >= 0x80
}

func inQuotes(s string, at int) bool {
	var q byte
	for i := 0; i < at; i++ {
		switch {
		case q == 0 && (s[i] == '\'' || s[i] == '"'):
			q = s[i]
		case q != 0 && s[i] == q:
			q = 0
		}
	}
	return q != 0
}

func (c *compiler) template(n *xmltree.Node, m *module) error {
	t := &template{line: n.Line, mod: m}
	match, hasMatch := attr(n, "match")
	name, hasName := attr(n, "name")
	if !hasMatch && !hasName {
		return c.errf(n, "xsl:template needs a match or a name attribute")
	}
	if mo, ok := attr(n, "mode"); ok {
		if !hasMatch {
			return c.errf(n, "xsl:template with mode needs a match attribute")
		}
		q, err := c.qname(n, mo, false)
		if err != nil {
			return err
		}
		t.mode = q
	}
	t.nsInherit = c.inheritedNS(n)
	saved := c.locals
	c.locals = nil
	body, err := c.body(n, t, true)
	c.locals = saved
	if err != nil {
		return err
	}
	t.body = body
	if hasName {
		q, err := c.qname(n, name, false)
		if err != nil {
			return err
		}
		t.name = q
		if old, ok := c.ss.named[q]; ok && old.mod.prec == m.prec {
			return c.errf(n, "a template named %q is already defined at line %d", name, old.line)
		} else if !ok || old.mod.prec < m.prec {
			c.ss.named[q] = t
		}
	}
	if hasMatch {
		t.match = match
		p, err := c.pattern(n, "match", match)
		if err != nil {
			return err
		}
		prio := math.NaN()
		if ps, ok := attr(n, "priority"); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(ps), 64)
			if err != nil || strings.ContainsAny(ps, "eE") || math.IsInf(f, 0) || math.IsNaN(f) {
				return c.errf(n, "xsl:template priority=%q is not a number", ps)
			}
			prio = f
		}
		for _, alt := range p.Alternatives() {
			r := &rule{t: t, pat: alt, prec: m.prec, seq: c.seq, prio: prio}
			c.seq++
			if math.IsNaN(prio) {
				r.prio = alt.DefaultPriority()
			}
			c.ss.mode(t.mode).add(r, n)
		}
	}
	return nil
}

func (c *compiler) addRule(t *template, p *xpath.Pattern, n *xmltree.Node) {
	for _, alt := range p.Alternatives() {
		r := &rule{t: t, pat: alt, prec: t.mod.prec, seq: c.seq, prio: alt.DefaultPriority()}
		c.seq++
		c.ss.mode(t.mode).add(r, n)
	}
}

// inheritedNS lists the namespaces in scope at n that literal result
// elements copy: innermost element first, each element's in its order,
// without the XSLT namespace, excluded prefixes and extension prefixes.
func (c *compiler) inheritedNS(n *xmltree.Node) []xmltree.NS {
	excluded := excludedURIs(n)
	var out []xmltree.NS
	seen := map[string]bool{}
	for e := n; e != nil && e.Kind == xmltree.Element; e = e.Parent {
		for _, d := range e.Decls {
			if seen[d.Prefix] {
				continue
			}
			seen[d.Prefix] = true
			if d.URI == "" || d.URI == xslNS || excluded[d.URI] {
				continue
			}
			out = append(out, d)
		}
	}
	return out
}

// excludedURIs are the namespaces excluded from the result at n: by
// exclude-result-prefixes and extension-element-prefixes on the stylesheet
// element and (xsl:-prefixed) on enclosing literal result elements.
func excludedURIs(n *xmltree.Node) map[string]bool {
	ex := map[string]bool{}
	for e := n; e != nil && e.Kind == xmltree.Element; e = e.Parent {
		for _, name := range []string{"exclude-result-prefixes", "extension-element-prefixes"} {
			var v string
			var ok bool
			if e.Space == xslNS {
				if e.Local == "stylesheet" || e.Local == "transform" {
					v, ok = attr(e, name)
				}
			} else {
				v, ok = e.Attr(xslNS, name)
			}
			if !ok {
				continue
			}
			for _, p := range strings.Fields(v) {
				if p == "#all" {
					for _, d := range e.InScope() {
						ex[d.URI] = true
					}
					continue
				}
				if uri, ok := lookupNS(e, p); ok && uri != "" {
					ex[uri] = true
				}
			}
		}
	}
	return ex
}

func (c *compiler) key(n *xmltree.Node) error {
	name, ok1 := attr(n, "name")
	match, ok2 := attr(n, "match")
	use, ok3 := attr(n, "use")
	if !ok1 || !ok2 || !ok3 {
		return c.errf(n, "xsl:key needs name, match and use attributes")
	}
	q, err := c.qname(n, name, false)
	if err != nil {
		return err
	}
	p, err := c.pattern(n, "match", match)
	if err != nil {
		return err
	}
	e, err := c.expr(n, "use", use)
	if err != nil {
		return err
	}
	c.ss.keys[q] = append(c.ss.keys[q], &keyDef{match: p, use: e, line: n.Line})
	return nil
}

func (c *compiler) output(n *xmltree.Node, m *module) error {
	o := &c.ss.out
	for _, a := range n.Attrs {
		if a.Space != "" {
			continue
		}
		if p, ok := o.set[a.Local]; ok && p > m.prec {
			continue
		}
		v := strings.TrimSpace(a.Data)
		switch a.Local {
		case "method":
			switch v {
			case "xml", "text", "html":
			default:
				return c.errf(n, "xsl:output method=%q is not supported (xml, text or html)", v)
			}
			o.method = v
		case "version":
			o.version = v
		case "encoding":
			if !strings.EqualFold(v, "UTF-8") && !strings.EqualFold(v, "UTF8") {
				return c.errf(n, "xsl:output encoding=%q is not supported: the output is UTF-8", v)
			}
			o.encoding = v
		case "omit-xml-declaration":
			o.omitDecl = v == "yes"
		case "standalone":
			o.standalone = v
		case "doctype-public":
			o.doctypePublic = a.Data
		case "doctype-system":
			o.doctypeSystem = a.Data
		case "cdata-section-elements":
			for _, s := range strings.Fields(v) {
				q, err := c.qname(n, s, true)
				if err != nil {
					return err
				}
				o.cdata[q] = true
			}
		case "indent":
			o.indent = v == "yes"
			o.indentSet = true
		case "media-type":
			o.mediaType = v
		default:
			if !c.forwards {
				return c.errf(n, "xsl:output has no attribute %s", a.Local)
			}
		}
		o.set[a.Local] = m.prec
	}
	return nil
}

func (c *compiler) attributeSet(n *xmltree.Node, m *module) error {
	name, ok := attr(n, "name")
	if !ok {
		return c.errf(n, "xsl:attribute-set has no name attribute")
	}
	q, err := c.qname(n, name, false)
	if err != nil {
		return err
	}
	as := c.ss.attrSets[q]
	if as == nil {
		as = &attrSet{name: q, line: n.Line}
		c.ss.attrSets[q] = as
	}
	ch := setChunk{prec: m.prec}
	if u, ok := attr(n, "use-attribute-sets"); ok {
		qs, err := c.qnames(n, u)
		if err != nil {
			return err
		}
		ch.use = qs
	}
	t := &template{line: n.Line}
	for _, e := range n.Children {
		if e.Kind == xmltree.Text && isBlank(e.Data) || e.Kind == xmltree.Comment || e.Kind == xmltree.ProcInst {
			continue
		}
		if !isXSL(e, "attribute") {
			return c.errf(e, "xsl:attribute-set may contain only xsl:attribute")
		}
		in, err := c.instruction(e, t)
		if err != nil {
			return err
		}
		ch.attrs = append(ch.attrs, in.(*attributeI))
	}
	as.chunks = append(as.chunks, ch)
	return nil
}

func (c *compiler) qnames(n *xmltree.Node, s string) ([]qname, error) {
	var out []qname
	for _, f := range strings.Fields(s) {
		q, err := c.qname(n, f, false)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

// finish checks what needs the whole stylesheet: attribute sets and
// templates named by use.
func (c *compiler) finish() error {
	for _, as := range c.ss.attrSets {
		if err := c.resolveSet(as); err != nil {
			return err
		}
	}
	for _, md := range c.ss.modes {
		md.build()
	}
	return nil
}

// resolveSet computes the attributes an attribute set adds, in order, as
// xsltproc 1.1.35 does: the xsl:attribute children of the definitions of
// the highest precedence, in order; then those of the sets it uses and of
// its imported definitions, each unless an attribute of the same name is
// already listed. Applying the list sets them in order.
func (c *compiler) resolveSet(as *attrSet) error {
	switch as.state {
	case 2:
		return nil
	case 1:
		return &Error{Line: as.line, Msg: fmt.Sprintf("xsl:attribute-set %s uses itself", as.name)}
	}
	as.state = 1
	chunks := slices.Clone(as.chunks)
	slices.SortStableFunc(chunks, func(a, b setChunk) int { return b.prec - a.prec })
	var list []*attributeI
	merge := func(more []*attributeI) {
	next:
		for _, a := range more {
			for _, b := range list {
				if a.key != "" && a.key == b.key {
					continue next
				}
			}
			list = append(list, a)
		}
	}
	uses := func(qs []qname) error {
		for _, u := range qs {
			other, ok := c.ss.attrSets[u]
			if !ok {
				return &Error{Line: as.line, Msg: fmt.Sprintf("xsl:attribute-set %s uses the undefined attribute set %s", as.name, u)}
			}
			if err := c.resolveSet(other); err != nil {
				return err
			}
			merge(other.resolved)
		}
		return nil
	}
	top := chunks[0].prec
	for _, ch := range chunks {
		if ch.prec == top {
			list = append(list, ch.attrs...)
		}
	}
	for _, ch := range chunks {
		if ch.prec == top {
			if err := uses(ch.use); err != nil {
				return err
			}
		}
	}
	for _, ch := range chunks {
		if ch.prec != top {
			merge(ch.attrs)
			if err := uses(ch.use); err != nil {
				return err
			}
		}
	}
	as.resolved = list
	as.state = 2
	return nil
}
