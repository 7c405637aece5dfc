package xslt

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/internal/xmltree"
	"github.com/sluicehq/sluice/internal/xpath"
)

// exec is the state of one transformation.
type exec struct {
	ss *Stylesheet
	// The context: node (also XSLT's current node), position and size.
	node      *xmltree.Node
	pos, size int
	templ     *template // the current template rule, for apply-imports
	mode      qname
	vars      []binding
	frame     int // vars[frame:] are visible; below belong to callers
	globals   map[*variable]*gstate
	params    map[string]string
	out       *builder
	depth     int
	steps     int
	maxSteps  int
	budget    int // output bytes left
	keys      map[qname]map[*xmltree.Node]map[string][]*xmltree.Node
	nextOrder int
	doc       *xmltree.Node
	raw       map[*xmltree.Node]bool // text nodes written with disable-output-escaping
	ctxs      []*xpath.Context       // free contexts, reused by eval
	globalErr error                  // see takeGlobalErr
	pstack    []binding              // parameter values being passed (see withParams)
	scope     *xmltree.Node          // the stylesheet element of the expression evaluated, if it matters
	slab      []xmltree.Node         // the rest of the current slab (see newNode)
	slabs     []*[]xmltree.Node      // the slabs taken
}

// newNode allocates a result tree node.
func (x *exec) newNode() *xmltree.Node {
	if len(x.slab) == 0 {
		p, _ := slabPool.Get().(*[]xmltree.Node)
		if p == nil {
			s := make([]xmltree.Node, slabSize)
			p = &s
		}
		x.slabs = append(x.slabs, p)
		x.slab = *p
	}
	n := &x.slab[0]
	x.slab = x.slab[1:]
	return n
}

// Result tree nodes come in slabs, recycled when a transformation ends:
// nothing built escapes it (the output is bytes).
const slabSize = 32

var slabPool sync.Pool // of *[]xmltree.Node, cleared

// release returns the slabs to the pool.
// execPool keeps the state of finished transformations (their stacks
// and slabs) for the next ones.
var execPool sync.Pool // of *exec, reset

// release returns the slabs to their pool and x, emptied, to its own.
func (x *exec) release() {
	for _, p := range x.slabs {
		clear(*p)
		slabPool.Put(p)
	}
	clear(x.slabs)
	clear(x.vars[:cap(x.vars)])
	clear(x.pstack[:cap(x.pstack)])
	for _, c := range x.ctxs {
		*c = xpath.Context{}
	}
	*x = exec{vars: x.vars[:0], pstack: x.pstack[:0], ctxs: x.ctxs, slabs: x.slabs[:0]}
	execPool.Put(x)
}

type binding struct {
	name qname
	v    xpath.Value
}

type gstate struct {
	busy, done bool
	v          xpath.Value
}

// runtimeError is a transformation error; it says where.
func (x *exec) errf(line int, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	msg := err.Error()
	if x.templ != nil {
		msg += " (in " + x.templ.String() + ")"
	}
	return &Error{Line: line, Msg: msg, Err: errors.Unwrap(err)}
}

// ErrTerminated is wrapped by the error of a transformation stopped by
// xsl:message terminate="yes".
var ErrTerminated = errors.New("xsl:message terminated the transformation")

// ErrLimit is wrapped by the error of a transformation over
// Options.MaxDepth, Options.MaxOutput or the work bound.
var ErrLimit = errors.New("transformation limit reached")

// Transform applies the stylesheet to doc and returns the serialized
// result. params set top-level xsl:param values (as strings) by name.
func (s *Stylesheet) Transform(doc *xmltree.Node, params map[string]string) ([]byte, error) {
	if doc == nil {
		return nil, errors.New("xslt: no document")
	}
	for doc.Parent != nil {
		doc = doc.Parent
	}
	x, _ := execPool.Get().(*exec)
	if x == nil {
		x = &exec{vars: make([]binding, 0, 32), pstack: make([]binding, 0, 32)}
	}
	x.ss, x.params = s, params
	x.budget, x.maxSteps = s.opts.MaxOutput, 8*s.opts.MaxOutput+1_000_000
	x.nextOrder = 1 << 40
	defer x.release()
	if len(s.strip) > 0 {
		doc = x.stripSpace(doc)
	}
	x.doc = doc
	x.out = x.newBuilder()
	x.node, x.pos, x.size = doc, 1, 1
	// Globals are evaluated when first used, but all of them are
	// evaluated so their errors (and messages) are not skipped.
	for _, g := range s.globals {
		if _, err := x.global(g); err != nil {
			return nil, err
		}
	}
	if err := x.applyTemplates(xpath.NodeSet{doc}, qname{}, nil, 0); err != nil {
		return nil, err
	}
	root := x.out.finish()
	return x.serialize(root)
}

func (x *exec) step() error {
	x.steps++
	if x.steps > x.maxSteps {
		return fmt.Errorf("%w: more than %d instructions executed (Options.MaxOutput bounds the work too)", ErrLimit, x.maxSteps)
	}
	return nil
}

func (x *exec) run(body []instr) error {
	mark := len(x.vars)
	for _, in := range body {
		x.steps++
		if x.steps > x.maxSteps {
			return x.step()
		}
		if err := in.exec(x); err != nil {
			var xe *Error
			if !errors.As(err, &xe) {
				err = x.errf(0, "%w", err)
			}
			return err
		}
	}
	x.vars = x.vars[:mark]
	return nil
}

// Variable implements xpath.Env.
func (x *exec) Variable(space, local string) (xpath.Value, bool) {
	q := qname{space, local}
	for i := len(x.vars) - 1; i >= x.frame; i-- {
		if x.vars[i].name == q {
			return x.vars[i].v, true
		}
	}
	g, ok := x.ss.globalIdx[q]
	if !ok {
		return nil, false
	}
	v, err := x.global(g)
	if err != nil {
		// Env cannot return an error: it is kept, and the evaluation
		// that asked reports it when it returns.
		if x.globalErr == nil {
			x.globalErr = err
		}
		return "", true
	}
	return v, true
}

// takeGlobalErr returns (and clears) the error of a global variable
// evaluated during the last XPath evaluation.
func (x *exec) takeGlobalErr() error {
	err := x.globalErr
	x.globalErr = nil
	return err
}

func (x *exec) global(g *variable) (xpath.Value, error) {
	if x.globals == nil {
		x.globals = map[*variable]*gstate{}
	}
	st := x.globals[g]
	if st == nil {
		st = &gstate{}
		x.globals[g] = st
	}
	if st.done {
		return st.v, nil
	}
	if st.busy {
		return nil, &Error{Line: g.line, Msg: fmt.Sprintf("the global variable %s depends on itself", g.name)}
	}
	st.busy = true
	if g.param {
		if s, ok := x.params[g.name.local]; ok && g.name.space == "" {
			st.v, st.done, st.busy = s, true, false
			return s, nil
		}
	}
	saved := x.save()
	x.node, x.pos, x.size = x.doc, 1, 1
	x.frame = len(x.vars)
	x.templ = nil
	v, err := x.value(g)
	x.restore(saved)
	st.busy = false
	if err != nil {
		return nil, err
	}
	st.v, st.done = v, true
	return v, nil
}

type saved struct {
	node      *xmltree.Node
	pos, size int
	templ     *template
	mode      qname
	frame     int
	nvars     int
}

func (x *exec) save() saved {
	return saved{x.node, x.pos, x.size, x.templ, x.mode, x.frame, len(x.vars)}
}

func (x *exec) restore(s saved) {
	x.node, x.pos, x.size, x.templ, x.mode, x.frame = s.node, s.pos, s.size, s.templ, s.mode, s.frame
	x.vars = x.vars[:s.nvars]
}

// value evaluates a variable's select or content.
func (x *exec) value(v *variable) (xpath.Value, error) {
	if v.sel != nil {
		return x.eval(v.sel, v.line)
	}
	if len(v.body) == 0 {
		return "", nil
	}
	return x.fragment(v.body, v.line)
}

// fragment instantiates body into a result tree fragment: a document node
// in a NodeSet, so exsl:node-set() and XPath can navigate it.
func (x *exec) fragment(body []instr, line int) (xpath.Value, error) {
	if err := x.enter(line); err != nil {
		return nil, err
	}
	out := x.out
	x.out = x.newBuilder()
	err := x.run(body)
	root := x.out.finish()
	x.out = out
	x.depth--
	if err != nil {
		return nil, err
	}
	x.number(root)
	return xpath.NodeSet{root}, nil
}

// stringContent instantiates body for its string value (the content of
// xsl:attribute, xsl:comment, xsl:processing-instruction, xsl:message):
// the text it writes, at any depth, without building a tree.
func (x *exec) stringContent(body []instr, line int) (string, error) {
	if len(body) == 1 {
		if t, ok := body[0].(*textOut); ok {
			return t.s, nil
		}
	}
	if err := x.enter(line); err != nil {
		return "", err
	}
	out := x.out
	b := &builder{x: x, strOnly: true}
	x.out = b
	err := x.run(body)
	x.out = out
	x.depth--
	if err != nil {
		return "", err
	}
	return b.pending.String(), nil
}

// number gives the nodes of a built tree their document order, after
// every tree numbered before.
func (x *exec) number(root *xmltree.Node) {
	var walk func(n *xmltree.Node)
	walk = func(n *xmltree.Node) {
		n.Order = x.nextOrder
		x.nextOrder++
		for _, a := range n.Attrs {
			a.Order = x.nextOrder
			x.nextOrder++
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(root)
}

func (x *exec) enter(line int) error {
	x.depth++
	if x.depth > x.ss.opts.MaxDepth {
		return x.errf(line, "%w: templates or variables nested more than %d deep (Options.MaxDepth); the stylesheet probably recurses without end", ErrLimit, x.ss.opts.MaxDepth)
	}
	return nil
}

func (x *exec) eval(e *xpath.Expr, line int) (xpath.Value, error) {
	var c *xpath.Context
	if n := len(x.ctxs); n > 0 {
		c = x.ctxs[n-1]
		x.ctxs = x.ctxs[:n-1]
	} else {
		c = new(xpath.Context)
	}
	*c = xpath.Context{Node: x.node, Position: x.pos, Size: x.size, Env: x}
	if len(x.ss.scopes) > 0 {
		if sc, ok := x.ss.scopes[e]; ok {
			saved := x.scope
			x.scope = sc
			defer func() { x.scope = saved }()
		}
	}
	v, err := e.Eval(c)
	x.ctxs = append(x.ctxs, c)
	if gerr := x.takeGlobalErr(); gerr != nil {
		return nil, gerr
	}
	if err != nil {
		var xe *Error
		if errors.As(err, &xe) {
			return nil, err
		}
		return nil, x.errf(line, "%s: %w", e.String(), err)
	}
	return v, nil
}

func (x *exec) evalString(e *xpath.Expr, line int) (string, error) {
	v, err := x.eval(e, line)
	if err != nil {
		return "", err
	}
	return stringOf(v), nil
}

func (x *exec) evalNodes(e *xpath.Expr, line int) (xpath.NodeSet, error) {
	v, err := x.eval(e, line)
	if err != nil {
		return nil, err
	}
	ns, ok := v.(xpath.NodeSet)
	if !ok {
		return nil, x.errf(line, "%s is not a node-set", e.String())
	}
	return ns, nil
}

func (x *exec) match(p *xpath.Pattern, n *xmltree.Node) (bool, error) {
	saved := x.node
	x.node = n
	ok, err := p.Match(n, x)
	x.node = saved
	if gerr := x.takeGlobalErr(); gerr != nil {
		return false, gerr
	}
	return ok, err
}

func (x *exec) avt(a avt, line int) (string, error) {
	if len(a.parts) == 1 && a.parts[0].e == nil {
		return a.parts[0].lit, nil
	}
	var b strings.Builder
	for _, p := range a.parts {
		if p.e == nil {
			b.WriteString(p.lit)
			continue
		}
		s, err := x.evalString(p.e, line)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// findRule is the best rule of the mode matching n among precedences in
// [lo, hi).
func (x *exec) findRule(m *mode, n *xmltree.Node, lo, hi int) (*rule, error) {
	if m == nil {
		return nil, nil
	}
	for _, r := range m.candidates(n) {
		if r.prec < lo || r.prec >= hi {
			continue
		}
		ok, err := x.match(r.pat, n)
		if err != nil {
			return nil, x.errf(r.t.line, "match=%q: %w", r.t.match, err)
		}
		if ok {
			return r, nil
		}
	}
	return nil, nil
}

func (x *exec) applyTemplates(nodes xpath.NodeSet, mode qname, params []binding, line int) error {
	m := x.ss.modes[mode]
	saved := x.save()
	defer x.restore(saved)
	for i, n := range nodes {
		x.node, x.pos, x.size = n, i+1, len(nodes)
		r, err := x.findRule(m, n, math.MinInt, math.MaxInt)
		if err != nil {
			return err
		}
		if err := x.applyOne(r, n, mode, params, line); err != nil {
			return err
		}
	}
	return nil
}

func (x *exec) applyOne(r *rule, n *xmltree.Node, mode qname, params []binding, line int) error {
	if r == nil {
		return x.builtin(n, mode, params, line)
	}
	x.mode = mode
	x.templ = r.t
	return x.invoke(r.t, params, line)
}

// builtin is the built-in template rule for n.
func (x *exec) builtin(n *xmltree.Node, mode qname, params []binding, line int) error {
	switch n.Kind {
	case xmltree.Document, xmltree.Element:
		if err := x.enter(line); err != nil {
			return err
		}
		err := x.applyTemplates(n.Children, mode, params, line)
		x.depth--
		return err
	case xmltree.Text, xmltree.Attribute:
		return x.out.text(n.Data, false)
	}
	return nil
}

// invoke instantiates template t for the context node with the given
// parameter values.
func (x *exec) invoke(t *template, params []binding, line int) error {
	if err := x.enter(line); err != nil {
		return err
	}
	saved := x.save()
	x.frame = len(x.vars)
	x.templ = t
	for _, p := range t.params {
		found := false
		for _, b := range params {
			if b.name == p.name {
				x.vars = append(x.vars, b)
				found = true
				break
			}
		}
		if found {
			continue
		}
		v, err := x.value(p)
		if err != nil {
			return err
		}
		x.vars = append(x.vars, binding{p.name, v})
	}
	if err := x.run(t.body); err != nil {
		return err
	}
	x.restore(saved)
	x.depth--
	return nil
}

// withParams evaluates xsl:with-param values onto x.pstack; the caller
// truncates x.pstack to its length before the call when done.
func (x *exec) withParams(ps []withParam) ([]binding, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	start := len(x.pstack)
	for _, p := range ps {
		v, err := x.value(p.v)
		if err != nil {
			return nil, err
		}
		x.pstack = append(x.pstack, binding{p.name, v})
	}
	return x.pstack[start:], nil
}

func (a *applyTemplates) exec(x *exec) error {
	var nodes xpath.NodeSet
	if a.sel == nil {
		nodes = x.node.Children
	} else {
		var err error
		if nodes, err = x.evalNodes(a.sel, a.line); err != nil {
			return err
		}
	}
	if len(nodes) == 0 {
		return nil // xsltproc evaluates no parameter for no node
	}
	mark := len(x.pstack)
	defer func() { x.pstack = x.pstack[:mark] }()
	params, err := x.withParams(a.params)
	if err != nil {
		return err
	}
	if len(a.sorts) > 0 {
		if nodes, err = x.sort(nodes, a.sorts, a.line); err != nil {
			return err
		}
	}
	return x.applyTemplates(nodes, a.mode, params, a.line)
}

func (ct *callTemplate) exec(x *exec) error {
	t, ok := x.ss.named[ct.name]
	if !ok {
		return x.errf(ct.line, "xsl:call-template: no template is named %s", ct.name)
	}
	mark := len(x.pstack)
	params, err := x.withParams(ct.params)
	if err != nil {
		return err
	}
	err = x.invoke(t, params, ct.line)
	x.pstack = x.pstack[:mark]
	return err
}

func (ai *applyImports) exec(x *exec) error {
	if x.templ == nil {
		return x.errf(ai.line, "xsl:apply-imports is not allowed here (no current template rule)")
	}
	mod := x.templ.mod
	r, err := x.findRule(x.ss.modes[x.mode], x.node, mod.lo, mod.prec)
	if err != nil {
		return err
	}
	saved := x.save()
	defer x.restore(saved)
	return x.applyOne(r, x.node, x.mode, nil, ai.line)
}

func (f *forEach) exec(x *exec) error {
	nodes, err := x.evalNodes(f.sel, f.line)
	if err != nil {
		return err
	}
	if len(f.sorts) > 0 {
		if nodes, err = x.sort(nodes, f.sorts, f.line); err != nil {
			return err
		}
	}
	saved := x.save()
	for i, n := range nodes {
		x.node, x.pos, x.size = n, i+1, len(nodes)
		if err := x.run(f.body); err != nil {
			return err
		}
	}
	x.restore(saved)
	return nil
}

// sort orders nodes by the keys, stably, as xsltproc does: text compares
// by code points (case-order is not applied), numbers put NaN first.
func (x *exec) sort(nodes xpath.NodeSet, keys []sortKey, line int) (xpath.NodeSet, error) {
	type spec struct {
		desc, num bool
	}
	specs := make([]spec, len(keys))
	for i, k := range keys {
		o, err := x.avt(k.order, line)
		if err != nil {
			return nil, err
		}
		d, err := x.avt(k.dataType, line)
		if err != nil {
			return nil, err
		}
		specs[i] = spec{desc: o == "descending", num: d == "number"}
	}
	type item struct {
		n    *xmltree.Node
		strs []string
		nums []float64
	}
	items := make([]item, len(nodes))
	saved := x.save()
	for i, n := range nodes {
		x.node, x.pos, x.size = n, i+1, len(nodes)
		it := item{n: n, strs: make([]string, len(keys)), nums: make([]float64, len(keys))}
		for j, k := range keys {
			v, err := x.eval(k.sel, line)
			if err != nil {
				return nil, err
			}
			if specs[j].num {
				it.nums[j] = xpath.Number(v)
			} else {
				it.strs[j] = stringOf(v)
			}
		}
		items[i] = it
	}
	x.restore(saved)
	slices.SortStableFunc(items, func(a, b item) int {
		for j, s := range specs {
			var c int
			if s.num {
				an, bn := a.nums[j], b.nums[j]
				switch {
				case math.IsNaN(an) && math.IsNaN(bn):
				case math.IsNaN(an):
					c = -1
				case math.IsNaN(bn):
					c = 1
				default:
					c = cmp.Compare(an, bn)
				}
			} else {
				c = strings.Compare(a.strs[j], b.strs[j])
			}
			if s.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	out := make(xpath.NodeSet, len(items))
	for i, it := range items {
		out[i] = it.n
	}
	return out, nil
}

func (t *textOut) exec(x *exec) error { return x.out.text(t.s, t.doe) }

func (v *valueOf) exec(x *exec) error {
	s, err := x.evalString(v.sel, v.line)
	if err != nil {
		return err
	}
	return x.out.text(s, v.doe)
}

func (l *localVar) exec(x *exec) error {
	v, err := x.value(l.v)
	if err != nil {
		return err
	}
	x.vars = append(x.vars, binding{l.v.name, v})
	return nil
}

func (i *ifI) exec(x *exec) error {
	v, err := x.eval(i.test, i.line)
	if err != nil {
		return err
	}
	if xpath.Boolean(v) {
		return x.run(i.body)
	}
	return nil
}

func (c *choose) exec(x *exec) error {
	for _, w := range c.whens {
		v, err := x.eval(w.test, c.line)
		if err != nil {
			return err
		}
		if xpath.Boolean(v) {
			return x.run(w.body)
		}
	}
	return x.run(c.otherwise)
}

func (f *fallbackI) exec(x *exec) error { return x.run(f.body) }

func (m *message) exec(x *exec) error {
	v, err := x.stringContent(m.body, m.line)
	if err != nil {
		return err
	}
	msg := v
	if m.terminate {
		return x.errf(m.line, "%w: %s", ErrTerminated, msg)
	}
	if x.ss.opts.Message != nil {
		x.ss.opts.Message(msg)
	}
	return nil
}

func (l *lre) exec(x *exec) error {
	b := x.out
	if err := b.startElement(l.name.space, l.name.local, l.prefix); err != nil {
		return x.errf(l.line, "%w", err)
	}
	for _, d := range l.ns {
		b.declare(d.Prefix, d.URI)
	}
	b.fixElement()
	for _, d := range l.inherit {
		b.declare(d.Prefix, d.URI)
	}
	if err := x.useSets(l.sets, l.line); err != nil {
		return err
	}
	for _, a := range l.attrs {
		v, err := x.avt(a.v, l.line)
		if err != nil {
			return err
		}
		if err := b.attribute(a.name.space, a.name.local, a.prefix, v); err != nil {
			return x.errf(l.line, "%w", err)
		}
	}
	if err := x.run(l.body); err != nil {
		return err
	}
	b.endElement()
	return nil
}

func (x *exec) useSets(sets []qname, line int) error {
	for _, q := range sets {
		as, ok := x.ss.attrSets[q]
		if !ok {
			return x.errf(line, "the attribute set %s is not defined", q)
		}
		// Attribute sets see only global variables.
		saved := x.save()
		x.frame = len(x.vars)
		for _, a := range as.resolved {
			if err := a.exec(x); err != nil {
				return err
			}
		}
		x.restore(saved)
	}
	return nil
}

func (e *elementI) exec(x *exec) error {
	name, err := x.avt(e.name, e.line)
	if err != nil {
		return err
	}
	prefix, local, space, err := x.resolveName(name, e.ns, e.scope, true, e.line)
	if err != nil {
		return err
	}
	if local == "" {
		// xsltproc skips an element with an invalid name, with its content.
		return x.errf(e.line, "xsl:element: %q is not a valid element name", name)
	}
	b := x.out
	if err := b.startElement(space, local, prefix); err != nil {
		return x.errf(e.line, "%w", err)
	}
	b.fixElement()
	if err := x.useSets(e.sets, e.line); err != nil {
		return err
	}
	if err := x.run(e.body); err != nil {
		return err
	}
	b.endElement()
	return nil
}

// resolveName splits a computed QName and finds its namespace: the
// namespace attribute if given, else the prefix's in the stylesheet scope
// (the default namespace for elements).
func (x *exec) resolveName(name string, ns *avt, scope *xmltree.Node, element bool, line int) (prefix, local, space string, err error) {
	name = strings.TrimSpace(name)
	prefix, local, ok := strings.Cut(name, ":")
	if !ok {
		prefix, local = "", name
	}
	if !isNCName(local) || ok && !isNCName(prefix) {
		return "", "", "", nil
	}
	if ns != nil {
		space, err = x.avt(*ns, line)
		if err != nil {
			return "", "", "", err
		}
		if space == "" {
			prefix = ""
		}
		return prefix, local, space, nil
	}
	if prefix == "" && !element {
		return "", local, "", nil
	}
	space, found := scope.LookupPrefix(prefix)
	if !found {
		return "", "", "", x.errf(line, "the prefix %q of the name %q is not declared", prefix, name)
	}
	if a, ok := x.ss.aliases[space]; ok {
		space = a.URI
	}
	return prefix, local, space, nil
}

func (a *attributeI) exec(x *exec) error {
	// As xsltproc: an attribute with no element to go to (at the top of
	// the output or of a fragment) is skipped before its name and content
	// are evaluated; one after the element's children is an error.
	if b := x.out; !b.strOnly {
		if b.cur.Kind != xmltree.Element {
			return nil
		}
		if len(b.cur.Children) > 0 || b.pending.Len() > 0 || b.hasText {
			return x.errf(a.line, "xsl:attribute: cannot add an attribute to <%s> after its children", b.cur.Name())
		}
	}
	name, err := x.avt(a.name, a.line)
	if err != nil {
		return err
	}
	prefix, local, space, err := x.resolveName(name, a.ns, a.scope, false, a.line)
	if err != nil {
		return err
	}
	if local == "" || name == "xmlns" || prefix == "xmlns" {
		return x.errf(a.line, "xsl:attribute: %q is not a valid attribute name", name)
	}
	v, err := x.stringContent(a.body, a.line)
	if err != nil {
		return err
	}
	if err := x.out.attribute(space, local, prefix, v); err != nil {
		return x.errf(a.line, "xsl:attribute: %w", err)
	}
	return nil
}

func (c *commentI) exec(x *exec) error {
	v, err := x.stringContent(c.body, c.line)
	if err != nil {
		return err
	}
	s := v
	if strings.Contains(s, "--") || strings.HasSuffix(s, "-") {
		return x.errf(c.line, "xsl:comment: '--' or a final '-' is not allowed in a comment: %q", s)
	}
	if s == "" {
		return nil // xsltproc writes no empty comment
	}
	return x.out.comment(s)
}

func (p *piI) exec(x *exec) error {
	name, err := x.avt(p.name, p.line)
	if err != nil {
		return err
	}
	// xsltproc writes any target, even an empty one or xml.
	v, err := x.stringContent(p.body, p.line)
	if err != nil {
		return err
	}
	s := v
	if strings.Contains(s, "?>") {
		return x.errf(p.line, "xsl:processing-instruction: '?>' is not allowed in its content: %q", s)
	}
	return x.out.pi(name, s)
}

func (c *copyI) exec(x *exec) error {
	n := x.node
	b := x.out
	switch n.Kind {
	case xmltree.Document:
		return x.run(c.body)
	case xmltree.Element:
		if err := b.startElement(n.Space, n.Local, n.Prefix); err != nil {
			return x.errf(c.line, "%w", err)
		}
		for _, d := range n.Decls {
			b.declare(d.Prefix, d.URI)
		}
		b.fixElement()
		if err := x.useSets(c.sets, c.line); err != nil {
			return err
		}
		if err := x.run(c.body); err != nil {
			return err
		}
		b.endElement()
		return nil
	case xmltree.Attribute:
		if err := b.copyAttribute(n); err != nil {
			return x.errf(c.line, "xsl:copy: %w", err)
		}
		return nil
	case xmltree.Text:
		return b.text(n.Data, false)
	case xmltree.Comment:
		return b.comment(n.Data)
	case xmltree.ProcInst:
		return b.pi(n.Local, n.Data)
	}
	return nil
}

func (c *copyOf) exec(x *exec) error {
	v, err := x.eval(c.sel, c.line)
	if err != nil {
		return err
	}
	ns, ok := v.(xpath.NodeSet)
	if !ok {
		return x.out.text(stringOf(v), false)
	}
	for _, n := range ns {
		if err := x.out.copyNode(n, true); err != nil {
			return x.errf(c.line, "xsl:copy-of: %w", err)
		}
	}
	return nil
}
