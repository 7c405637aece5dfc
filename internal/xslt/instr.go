package xslt

import (
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
	"github.com/sluicehq/sluice/internal/xpath"
)

// instr is one compiled instruction of a template body.
type instr interface {
	exec(x *exec) error
}

// variable is an xsl:variable or xsl:param, global or local, or an
// xsl:with-param.
type variable struct {
	name   qname
	sel    *xpath.Expr
	body   []instr
	line   int
	param  bool
	global bool
}

type textOut struct {
	s   string
	doe bool
}

type lre struct {
	line    int
	name    qname
	prefix  string
	ns      []xmltree.NS // its own declarations, less excluded ones
	inherit []xmltree.NS // the template's, for elements at the top of it
	attrs   []lreAttr
	sets    []qname
	body    []instr
}

type lreAttr struct {
	name   qname
	prefix string
	v      avt
}

type avt struct {
	parts []avtPart
}

type avtPart struct {
	lit string
	e   *xpath.Expr
}

type withParam struct {
	name qname
	v    *variable
}

type sortKey struct {
	sel                        *xpath.Expr
	order, dataType, caseOrder avt
}

type applyTemplates struct {
	line   int
	sel    *xpath.Expr
	mode   qname
	sorts  []sortKey
	params []withParam
}

type callTemplate struct {
	line   int
	name   qname
	params []withParam
}

type applyImports struct{ line int }

type forEach struct {
	line  int
	sel   *xpath.Expr
	sorts []sortKey
	body  []instr
}

type valueOf struct {
	line int
	sel  *xpath.Expr
	doe  bool
}

type copyOf struct {
	line int
	sel  *xpath.Expr
}

type copyI struct {
	line int
	sets []qname
	body []instr
}

type ifI struct {
	line int
	test *xpath.Expr
	body []instr
}

type when struct {
	test *xpath.Expr
	body []instr
}

type choose struct {
	line      int
	whens     []when
	otherwise []instr
}

type elementI struct {
	line  int
	name  avt
	ns    *avt
	scope *xmltree.Node // for the prefix of name
	sets  []qname
	body  []instr
}

type attributeI struct {
	key   string // namespace and local name when constant, for attribute sets
	line  int
	name  avt
	ns    *avt
	scope *xmltree.Node
	body  []instr
}

type commentI struct {
	line int
	body []instr
}

type piI struct {
	line int
	name avt
	body []instr
}

type localVar struct{ v *variable }

type message struct {
	line      int
	terminate bool
	body      []instr
}

// fallbackI runs the xsl:fallback children of an instruction this
// processor does not know.
type fallbackI struct{ body []instr }

type numberI struct {
	line        int
	level       string
	count, from *xpath.Pattern
	value       *xpath.Expr
	format      avt
	groupSep    *avt
	groupSize   *avt
}

// body compiles the children of n. Leading xsl:param elements become the
// template's parameters when params is set.
func (c *compiler) body(n *xmltree.Node, t *template, params bool) ([]instr, error) {
	var out []instr
	mark := len(c.locals)
	defer func() { c.locals = c.locals[:mark] }()
	preserve := spacePreserved(n)
	for i, ch := range n.Children {
		switch ch.Kind {
		case xmltree.Text:
			if !preserve && isBlank(ch.Data) {
				continue
			}
			out = append(out, &textOut{s: ch.Data})
			continue
		case xmltree.Element:
		default:
			continue
		}
		if isXSL(ch, "param") {
			if !params || precededByNonParam(n.Children[:i]) {
				return nil, c.errf(ch, "xsl:param is allowed only at the start of xsl:template")
			}
			v, err := c.variable(ch, t)
			if err != nil {
				return nil, err
			}
			if err := c.bind(ch, v.name); err != nil {
				return nil, err
			}
			t.params = append(t.params, v)
			continue
		}
		in, err := c.instruction(ch, t)
		if err != nil {
			return nil, err
		}
		if in != nil {
			out = append(out, in)
		}
	}
	return out, nil
}

func precededByNonParam(prev []*xmltree.Node) bool {
	for _, p := range prev {
		switch {
		case p.Kind == xmltree.Element && !isXSL(p, "param"):
			return true
		case p.Kind == xmltree.Text && !isBlank(p.Data):
			return true
		}
	}
	return false
}

// spacePreserved reports whether xml:space="preserve" is in force at n.
func spacePreserved(n *xmltree.Node) bool {
	for e := n; e != nil && e.Kind == xmltree.Element; e = e.Parent {
		if v, ok := e.Attr(xmltree.XMLNamespace, "space"); ok {
			return v == "preserve"
		}
	}
	return false
}

func (c *compiler) variable(n *xmltree.Node, t *template) (*variable, error) {
	name, ok := attr(n, "name")
	if !ok {
		return nil, c.errf(n, "xsl:%s has no name attribute", n.Local)
	}
	q, err := c.qname(n, name, false)
	if err != nil {
		return nil, err
	}
	v := &variable{name: q, line: n.Line, param: n.Local == "param"}
	if s, ok := attr(n, "select"); ok {
		if hasContent(n) {
			return nil, c.errf(n, "xsl:%s %s has both a select attribute and content", n.Local, name)
		}
		if v.sel, err = c.expr(n, "select", s); err != nil {
			return nil, err
		}
		return v, nil
	}
	if t == nil {
		t = &template{line: n.Line}
	}
	if v.body, err = c.body(n, t, false); err != nil {
		return nil, err
	}
	return v, nil
}

func hasContent(n *xmltree.Node) bool {
	for _, ch := range n.Children {
		if ch.Kind == xmltree.Element || ch.Kind == xmltree.Text && !isBlank(ch.Data) {
			return true
		}
	}
	return false
}

func (c *compiler) avt(n *xmltree.Node, attrName, s string) (avt, error) {
	var a avt
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case ch == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case ch == '}':
			return a, c.errf(n, "%s %s=%q: a } outside an expression must be doubled", n.Name(), attrName, s)
		case ch == '{':
			end := -1
			var quote byte
			for j := i + 1; j < len(s); j++ {
				switch {
				case quote != 0:
					if s[j] == quote {
						quote = 0
					}
				case s[j] == '\'' || s[j] == '"':
					quote = s[j]
				case s[j] == '}':
					end = j
				}
				if end >= 0 {
					break
				}
			}
			if end < 0 {
				return a, c.errf(n, "%s %s=%q: an expression has no closing }", n.Name(), attrName, s)
			}
			e, err := c.expr(n, attrName, s[i+1:end])
			if err != nil {
				return a, err
			}
			if lit.Len() > 0 {
				a.parts = append(a.parts, avtPart{lit: lit.String()})
				lit.Reset()
			}
			a.parts = append(a.parts, avtPart{e: e})
			i = end
		default:
			lit.WriteByte(ch)
		}
	}
	if lit.Len() > 0 {
		a.parts = append(a.parts, avtPart{lit: lit.String()})
	}
	return a, nil
}

// constant reports whether a has no expressions, and its value.
func (a avt) constant() (string, bool) {
	var b strings.Builder
	for _, p := range a.parts {
		if p.e != nil {
			return "", false
		}
		b.WriteString(p.lit)
	}
	return b.String(), true
}

func (c *compiler) optAVT(n *xmltree.Node, name string) (*avt, error) {
	s, ok := attr(n, name)
	if !ok {
		return nil, nil
	}
	a, err := c.avt(n, name, s)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

func (c *compiler) selectAttr(n *xmltree.Node, required bool) (*xpath.Expr, error) {
	s, ok := attr(n, "select")
	if !ok {
		if required {
			return nil, c.errf(n, "xsl:%s has no select attribute", n.Local)
		}
		return nil, nil
	}
	return c.expr(n, "select", s)
}

// instruction compiles one element of a template body.
func (c *compiler) instruction(n *xmltree.Node, t *template) (instr, error) {
	if n.Space != xslNS {
		return c.literal(n, t)
	}
	var err error
	switch n.Local {
	case "apply-templates":
		a := &applyTemplates{line: n.Line}
		if a.sel, err = c.selectAttr(n, false); err != nil {
			return nil, err
		}
		if m, ok := attr(n, "mode"); ok {
			if a.mode, err = c.qname(n, m, false); err != nil {
				return nil, err
			}
		}
		a.sorts, a.params, err = c.sortsAndParams(n, t, true)
		return a, err
	case "call-template":
		name, ok := attr(n, "name")
		if !ok {
			return nil, c.errf(n, "xsl:call-template has no name attribute")
		}
		ct := &callTemplate{line: n.Line}
		if ct.name, err = c.qname(n, name, false); err != nil {
			return nil, err
		}
		_, ct.params, err = c.sortsAndParams(n, t, false)
		return ct, err
	case "apply-imports":
		return &applyImports{line: n.Line}, nil
	case "for-each":
		f := &forEach{line: n.Line}
		if f.sel, err = c.selectAttr(n, true); err != nil {
			return nil, err
		}
		var rest []*xmltree.Node
		for _, ch := range n.Children {
			if isXSL(ch, "sort") {
				if len(rest) > 0 {
					return nil, c.errf(ch, "xsl:sort must come first in xsl:for-each")
				}
				k, err := c.sortKey(ch)
				if err != nil {
					return nil, err
				}
				f.sorts = append(f.sorts, k)
				continue
			}
			if ch.Kind == xmltree.Element || ch.Kind == xmltree.Text && !isBlank(ch.Data) {
				rest = append(rest, ch)
			}
		}
		f.body, err = c.bodyExcept(n, t, "sort")
		return f, err
	case "value-of":
		v := &valueOf{line: n.Line, doe: yes(n, "disable-output-escaping")}
		v.sel, err = c.selectAttr(n, true)
		return v, err
	case "copy-of":
		v := &copyOf{line: n.Line}
		v.sel, err = c.selectAttr(n, true)
		return v, err
	case "copy":
		v := &copyI{line: n.Line}
		if v.sets, err = c.useSets(n, ""); err != nil {
			return nil, err
		}
		v.body, err = c.body(n, t, false)
		return v, err
	case "if":
		s, ok := attr(n, "test")
		if !ok {
			return nil, c.errf(n, "xsl:if has no test attribute")
		}
		v := &ifI{line: n.Line}
		if v.test, err = c.expr(n, "test", s); err != nil {
			return nil, err
		}
		v.body, err = c.body(n, t, false)
		return v, err
	case "choose":
		return c.choose(n, t)
	case "element":
		name, ok := attr(n, "name")
		if !ok {
			return nil, c.errf(n, "xsl:element has no name attribute")
		}
		v := &elementI{line: n.Line, scope: n}
		if v.name, err = c.avt(n, "name", name); err != nil {
			return nil, err
		}
		if v.ns, err = c.optAVT(n, "namespace"); err != nil {
			return nil, err
		}
		if v.sets, err = c.useSets(n, ""); err != nil {
			return nil, err
		}
		v.body, err = c.body(n, t, false)
		return v, err
	case "attribute":
		name, ok := attr(n, "name")
		if !ok {
			return nil, c.errf(n, "xsl:attribute has no name attribute")
		}
		v := &attributeI{line: n.Line, scope: n}
		if v.name, err = c.avt(n, "name", name); err != nil {
			return nil, err
		}
		if v.ns, err = c.optAVT(n, "namespace"); err != nil {
			return nil, err
		}
		if nm, ok := v.name.constant(); ok {
			prefix, local, hasPrefix := strings.Cut(nm, ":")
			if !hasPrefix {
				prefix, local = "", nm
			}
			uri := ""
			if v.ns != nil {
				uri, ok = v.ns.constant()
			} else if prefix != "" {
				uri, ok = n.LookupPrefix(prefix)
			}
			if ok {
				v.key = uri + " " + local
			}
		}
		v.body, err = c.body(n, t, false)
		return v, err
	case "text":
		var b strings.Builder
		for _, ch := range n.Children {
			if ch.Kind == xmltree.Element {
				return nil, c.errf(ch, "xsl:text may contain only text")
			}
			if ch.Kind == xmltree.Text {
				b.WriteString(ch.Data)
			}
		}
		if b.Len() == 0 {
			return nil, nil
		}
		return &textOut{s: b.String(), doe: yes(n, "disable-output-escaping")}, nil
	case "comment":
		v := &commentI{line: n.Line}
		v.body, err = c.body(n, t, false)
		return v, err
	case "processing-instruction":
		name, ok := attr(n, "name")
		if !ok {
			return nil, c.errf(n, "xsl:processing-instruction has no name attribute")
		}
		v := &piI{line: n.Line}
		if v.name, err = c.avt(n, "name", name); err != nil {
			return nil, err
		}
		v.body, err = c.body(n, t, false)
		return v, err
	case "variable":
		v, err := c.variable(n, t)
		if err != nil {
			return nil, err
		}
		if err := c.bind(n, v.name); err != nil {
			return nil, err
		}
		return &localVar{v}, nil
	case "message":
		v := &message{line: n.Line, terminate: yes(n, "terminate")}
		v.body, err = c.body(n, t, false)
		return v, err
	case "fallback":
		return nil, nil // only for instructions this processor does not know
	case "number":
		return c.number(n)
	case "param":
		return nil, c.errf(n, "xsl:param is allowed only at the start of xsl:template")
	case "sort":
		return nil, c.errf(n, "xsl:sort is allowed only in xsl:apply-templates and xsl:for-each")
	case "with-param":
		return nil, c.errf(n, "xsl:with-param is allowed only in xsl:apply-templates and xsl:call-template")
	case "when", "otherwise":
		return nil, c.errf(n, "xsl:%s is allowed only in xsl:choose", n.Local)
	}
	if c.forwards || forwardsCompatible(n) {
		return c.fallback(n, t, "xsl:"+n.Local+" is not an XSLT 1.0 instruction")
	}
	return nil, c.errf(n, "xsl:%s is not an XSLT 1.0 instruction", n.Local)
}

// fallback compiles the xsl:fallback children of an instruction that is
// not supported; without any, the instruction is refused.
func (c *compiler) fallback(n *xmltree.Node, t *template, why string) (instr, error) {
	var body []instr
	found := false
	for _, ch := range n.Children {
		if isXSL(ch, "fallback") {
			found = true
			b, err := c.body(ch, t, false)
			if err != nil {
				return nil, err
			}
			body = append(body, b...)
		}
	}
	if !found {
		return nil, c.errf(n, "%s", why)
	}
	return &fallbackI{body: body}, nil
}

func yes(n *xmltree.Node, name string) bool {
	v, _ := attr(n, name)
	return strings.TrimSpace(v) == "yes"
}

// bodyExcept compiles the children of n other than the xsl:skip ones.
func (c *compiler) bodyExcept(n *xmltree.Node, t *template, skip string) ([]instr, error) {
	cp := *n
	cp.Children = nil
	for _, ch := range n.Children {
		if !isXSL(ch, skip) {
			cp.Children = append(cp.Children, ch)
		}
	}
	return c.body(&cp, t, false)
}

func (c *compiler) sortKey(n *xmltree.Node) (sortKey, error) {
	var k sortKey
	var err error
	s, ok := attr(n, "select")
	if !ok {
		s = "."
	}
	if k.sel, err = c.expr(n, "select", s); err != nil {
		return k, err
	}
	for _, a := range []struct {
		name string
		dst  *avt
	}{{"order", &k.order}, {"data-type", &k.dataType}, {"case-order", &k.caseOrder}} {
		if v, ok := attr(n, a.name); ok {
			if *a.dst, err = c.avt(n, a.name, v); err != nil {
				return k, err
			}
		}
	}
	if v, ok := k.dataType.constant(); ok && v != "" && v != "text" && v != "number" {
		if !strings.Contains(v, ":") {
			return k, c.errf(n, "xsl:sort data-type=%q is not text or number", v)
		}
	}
	if v, ok := k.order.constant(); ok && v != "" && v != "ascending" && v != "descending" {
		return k, c.errf(n, "xsl:sort order=%q is not ascending or descending", v)
	}
	return k, nil
}

func (c *compiler) sortsAndParams(n *xmltree.Node, t *template, sorts bool) ([]sortKey, []withParam, error) {
	var ks []sortKey
	var ps []withParam
	for _, ch := range n.Children {
		switch {
		case ch.Kind == xmltree.Text && !isBlank(ch.Data):
			return nil, nil, c.errf(ch, "xsl:%s may not contain text", n.Local)
		case ch.Kind != xmltree.Element:
		case sorts && isXSL(ch, "sort"):
			k, err := c.sortKey(ch)
			if err != nil {
				return nil, nil, err
			}
			ks = append(ks, k)
		case isXSL(ch, "with-param"):
			v, err := c.variable(ch, t)
			if err != nil {
				return nil, nil, err
			}
			for _, p := range ps {
				if p.name == v.name {
					return nil, nil, c.errf(ch, "xsl:with-param %s is given twice", v.name)
				}
			}
			ps = append(ps, withParam{name: v.name, v: v})
		case isXSL(ch, "fallback"):
		default:
			return nil, nil, c.errf(ch, "<%s> is not allowed in xsl:%s", ch.Name(), n.Local)
		}
	}
	return ks, ps, nil
}

func (c *compiler) choose(n *xmltree.Node, t *template) (instr, error) {
	ch := &choose{line: n.Line}
	seenOtherwise := false
	for _, e := range n.Children {
		switch {
		case e.Kind == xmltree.Text && !isBlank(e.Data):
			return nil, c.errf(e, "xsl:choose may not contain text")
		case e.Kind != xmltree.Element:
		case isXSL(e, "when"):
			if seenOtherwise {
				return nil, c.errf(e, "xsl:when after xsl:otherwise")
			}
			s, ok := attr(e, "test")
			if !ok {
				return nil, c.errf(e, "xsl:when has no test attribute")
			}
			test, err := c.expr(e, "test", s)
			if err != nil {
				return nil, err
			}
			body, err := c.body(e, t, false)
			if err != nil {
				return nil, err
			}
			ch.whens = append(ch.whens, when{test, body})
		case isXSL(e, "otherwise"):
			if seenOtherwise {
				return nil, c.errf(e, "xsl:choose has two xsl:otherwise")
			}
			seenOtherwise = true
			body, err := c.body(e, t, false)
			if err != nil {
				return nil, err
			}
			ch.otherwise = body
		default:
			return nil, c.errf(e, "<%s> is not allowed in xsl:choose", e.Name())
		}
	}
	if len(ch.whens) == 0 {
		return nil, c.errf(n, "xsl:choose has no xsl:when")
	}
	return ch, nil
}

func (c *compiler) useSets(n *xmltree.Node, space string) ([]qname, error) {
	s, ok := n.Attr(space, "use-attribute-sets")
	if !ok {
		return nil, nil
	}
	qs, err := c.qnames(n, s)
	if err != nil {
		return nil, err
	}
	return qs, nil
}

// literal compiles a literal result element, or refuses an extension
// element (running its xsl:fallback if it has one).
func (c *compiler) literal(n *xmltree.Node, t *template) (instr, error) {
	if ext := extensionURIs(n); ext[n.Space] {
		return c.fallback(n, t, "the extension element <"+n.Name()+"> is not supported")
	}
	if n.Space == exslNS {
		return c.fallback(n, t, "the extension element <"+n.Name()+"> is not supported")
	}
	excluded := excludedURIs(n)
	l := &lre{line: n.Line, name: qname{n.Space, n.Local}, prefix: n.Prefix}
	// namespace-alias changes the URI; xsltproc keeps the prefix.
	if a, ok := c.ss.aliases[n.Space]; ok {
		l.name.space = a.URI
	}
	for _, d := range n.Decls {
		if d.URI == xslNS || excluded[d.URI] || d.URI == "" {
			continue
		}
		if a, ok := c.ss.aliases[d.URI]; ok {
			d = xmltree.NS{Prefix: d.Prefix, URI: a.URI}
		}
		l.ns = append(l.ns, d)
	}
	if n.Parent != nil && n.Parent.Space == xslNS && n.Parent.Local == "template" {
		for _, d := range t.nsInherit {
			if a, ok := c.ss.aliases[d.URI]; ok {
				d = xmltree.NS{Prefix: d.Prefix, URI: a.URI}
			}
			l.inherit = append(l.inherit, d)
		}
	}
	for _, a := range n.Attrs {
		if a.Space == xslNS {
			switch a.Local {
			case "use-attribute-sets":
				qs, err := c.qnames(n, a.Data)
				if err != nil {
					return nil, err
				}
				l.sets = qs
			case "version", "exclude-result-prefixes", "extension-element-prefixes":
			default:
				if !c.forwards {
					return nil, c.errf(n, "the attribute xsl:%s is not allowed on a literal result element", a.Local)
				}
			}
			continue
		}
		v, err := c.avt(n, a.Name(), a.Data)
		if err != nil {
			return nil, err
		}
		la := lreAttr{name: qname{a.Space, a.Local}, prefix: a.Prefix, v: v}
		if al, ok := c.ss.aliases[a.Space]; ok && a.Space != "" {
			la.name.space = al.URI
		}
		l.attrs = append(l.attrs, la)
	}
	body, err := c.body(n, t, false)
	if err != nil {
		return nil, err
	}
	l.body = body
	return l, nil
}

// extensionURIs are the extension namespaces declared at n.
func extensionURIs(n *xmltree.Node) map[string]bool {
	ex := map[string]bool{}
	for e := n; e != nil && e.Kind == xmltree.Element; e = e.Parent {
		var v string
		var ok bool
		if e.Space == xslNS {
			v, ok = attr(e, "extension-element-prefixes")
		} else {
			v, ok = e.Attr(xslNS, "extension-element-prefixes")
		}
		if !ok {
			continue
		}
		for _, p := range strings.Fields(v) {
			if uri, ok := lookupNS(e, p); ok {
				ex[uri] = true
			}
		}
	}
	return ex
}
