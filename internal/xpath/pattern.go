package xpath

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// Pattern is a compiled XSLT 1.0 pattern (XSLT 1.0 §5.2). It is immutable
// and safe for concurrent use.
type Pattern struct {
	src  string
	alts []*Pattern // the alternatives of a union; nil for one alternative

	// One alternative:
	start         patStart
	idArg         string // id('…')
	keyName, keyV string // key('…', '…')
	steps         []*patStep
	prio          float64
}

type patStart uint8

const (
	startRelative patStart = iota // a/b
	startRoot                     // /a/b, and / alone
	startAnywhere                 // //a/b
	startID                       // id('x')/a
	startKey                      // key('k', 'v')/a
)

type patStep struct {
	attr  bool // the attribute axis (else child)
	test  nodeTest
	preds []*pred
	// descendant: the step is separated from the one before (or from the
	// start) by //, not /.
	descendant bool
}

// CompilePattern parses an XSLT 1.0 pattern: location path patterns
// separated by |, each made of steps on the child and attribute axes
// joined by / and //, with predicates, optionally starting with /, //,
// id('literal') or key('literal', 'literal'). key() is called through the
// Env given to Match, as the function key in no namespace.
func CompilePattern(src string, opts Options) (*Pattern, error) {
	p, err := newParser(src, opts)
	if err != nil {
		return nil, err
	}
	var alts []*Pattern
	for {
		from := p.peek().pos
		alt, err := p.parsePathPattern()
		if err != nil {
			return nil, err
		}
		alt.src = strings.TrimSpace(src[from:p.peek().pos])
		alts = append(alts, alt)
		if p.peekKind() != tPipe {
			break
		}
		p.next()
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t.pos, "unexpected %s in a pattern", t.describe())
	}
	if len(alts) == 1 {
		alts[0].src = src
		return alts[0], nil
	}
	u := &Pattern{src: src, alts: alts, prio: alts[0].prio}
	for _, a := range alts[1:] {
		u.prio = max(u.prio, a.prio)
	}
	return u, nil
}

func (p *parser) parsePathPattern() (*Pattern, error) {
	pat := &Pattern{prio: 0.5}
	descendant := false
	t := p.peek()
	switch t.kind {
	case tSlash:
		p.next()
		pat.start = startRoot
		if !canStartStep(p.peekKind()) {
			return pat, nil
		}
	case tDSlash:
		p.next()
		pat.start, descendant = startAnywhere, true
	case tFuncName:
		if t.prefix != "" || t.text != "id" && t.text != "key" {
			return nil, p.errAt(t.pos, "a pattern can only start with the functions id() and key(), not %s", t.describe())
		}
		p.next()
		p.next() // (
		lit, err := p.expect(tLiteral, "a string literal")
		if err != nil {
			return nil, err
		}
		if t.text == "id" {
			pat.start, pat.idArg = startID, lit.text
		} else {
			if _, err := p.expect(tComma, "','"); err != nil {
				return nil, err
			}
			val, err := p.expect(tLiteral, "a string literal")
			if err != nil {
				return nil, err
			}
			pat.start, pat.keyName, pat.keyV = startKey, lit.text, val.text
		}
		if _, err := p.expect(tRParen, "')'"); err != nil {
			return nil, err
		}
		switch p.peekKind() {
		case tSlash:
			p.next()
		case tDSlash:
			p.next()
			descendant = true
		default:
			return pat, nil
		}
	}
	for {
		s, err := p.parsePatternStep()
		if err != nil {
			return nil, err
		}
		s.descendant = descendant
		pat.steps = append(pat.steps, s)
		switch p.peekKind() {
		case tSlash:
			p.next()
			descendant = false
		case tDSlash:
			p.next()
			descendant = true
		default:
			if pat.start == startRelative && len(pat.steps) == 1 && len(s.preds) == 0 {
				switch s.test.kind {
				case testName, testPITarget:
					pat.prio = 0
				case testSpace:
					pat.prio = -0.25
				default:
					pat.prio = -0.5
				}
			}
			return pat, nil
		}
	}
}

func (p *parser) parsePatternStep() (*patStep, error) {
	t := p.next()
	s := &patStep{}
	switch t.kind {
	case tAt:
		s.attr = true
		t = p.next()
	case tAxis:
		switch t.text {
		case "child":
		case "attribute":
			s.attr = true
		default:
			return nil, p.errAt(t.pos, "a pattern can only use the child and attribute axes, not %s", t.text)
		}
		if _, err := p.expect(tDColon, "'::'"); err != nil {
			return nil, err
		}
		t = p.next()
	case tDot, tDDot:
		return nil, p.errAt(t.pos, "%s is not allowed in a pattern", t.describe())
	}
	test, err := p.parseNodeTest(t)
	if err != nil {
		return nil, err
	}
	s.test = test
	if s.preds, err = p.parsePredicates(); err != nil {
		return nil, err
	}
	return s, nil
}

// Alternatives splits a union pattern into its alternatives (a pattern
// without | gives itself), each with its own default priority.
func (p *Pattern) Alternatives() []*Pattern {
	if p.alts == nil {
		return []*Pattern{p}
	}
	return p.alts
}

// DefaultPriority is the default priority of XSLT 1.0 §5.5: 0 for QName,
// @QName and processing-instruction('literal'); -0.25 for NCName:* and
// @NCName:*; -0.5 for the other node tests alone (*, @*, node(), text(),
// …); 0.5 for anything else. For a union, which XSLT treats as one rule per
// alternative, it is the highest of the alternatives' priorities.
func (p *Pattern) DefaultPriority() float64 { return p.prio }

// String is the source of the pattern.
func (p *Pattern) String() string { return p.src }

// Match reports whether n matches the pattern: whether n would be selected
// by the pattern, read as an expression, from some context. Predicates are
// evaluated with env, which also supplies key() for key patterns.
func (p *Pattern) Match(n *xmltree.Node, env Env) (bool, error) {
	if n == nil {
		return false, nil
	}
	if p.alts != nil {
		for _, a := range p.alts {
			if ok, err := a.Match(n, env); ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	}
	ok, err := p.match(n, env)
	if err != nil {
		return false, &EvalError{Src: p.src, Err: err}
	}
	return ok, nil
}

func (p *Pattern) match(n *xmltree.Node, env Env) (bool, error) {
	if len(p.steps) == 0 {
		switch p.start {
		case startRoot:
			return n.Kind == xmltree.Document && n.Parent == nil, nil
		case startID, startKey:
			set, err := p.startSet(n, env)
			return contains(set, n), err
		}
		return false, nil
	}
	return p.matchStep(n, len(p.steps)-1, env)
}

func (p *Pattern) matchStep(n *xmltree.Node, i int, env Env) (bool, error) {
	s := p.steps[i]
	if ok, err := s.match(n, env); !ok || err != nil {
		return false, err
	}
	if i == 0 {
		switch p.start {
		case startRelative:
			return true, nil
		case startRoot:
			return n.Parent != nil && n.Parent.Kind == xmltree.Document && n.Parent.Parent == nil, nil
		case startAnywhere:
			return rootOf(n).Kind == xmltree.Document, nil
		}
		set, err := p.startSet(n, env)
		if err != nil {
			return false, err
		}
		for a := n.Parent; a != nil; a = a.Parent {
			if contains(set, a) {
				return true, nil
			}
			if !s.descendant {
				break
			}
		}
		return false, nil
	}
	for a := n.Parent; a != nil; a = a.Parent {
		if ok, err := p.matchStep(a, i-1, env); ok || err != nil {
			return ok, err
		}
		if !s.descendant {
			break
		}
	}
	return false, nil
}

// startSet is the node-set of an id() or key() start, evaluated in n's
// document.
func (p *Pattern) startSet(n *xmltree.Node, env Env) (NodeSet, error) {
	if p.start == startID {
		want := map[string]bool{}
		for _, t := range strings.Fields(p.idArg) {
			want[t] = true
		}
		return idLookup(rootOf(n), want), nil
	}
	var f Func
	ok := false
	if env != nil {
		f, ok = env.Function("", "key")
	}
	if !ok || f == nil {
		return nil, fmt.Errorf("the pattern uses key(), which is not defined here")
	}
	v, err := f(&Context{Node: n, Position: 1, Size: 1, Env: env}, []Value{p.keyName, p.keyV})
	if err != nil {
		return nil, fmt.Errorf("key(): %w", err)
	}
	v, err = normalize(v, "the result of key()")
	if err != nil {
		return nil, err
	}
	ns, isSet := v.(NodeSet)
	if !isSet {
		return nil, fmt.Errorf("key() returned a %s, not a node-set", typeName(v))
	}
	return ns, nil
}

func contains(ns NodeSet, n *xmltree.Node) bool {
	for _, m := range ns {
		if m == n {
			return true
		}
	}
	return false
}

// match reports whether n is selected by the step from its parent.
func (s *patStep) match(n *xmltree.Node, env Env) (bool, error) {
	principal := xmltree.Element
	if s.attr {
		if n.Kind != xmltree.Attribute {
			return false, nil
		}
		principal = xmltree.Attribute
	} else {
		switch n.Kind {
		case xmltree.Element, xmltree.Text, xmltree.Comment, xmltree.ProcInst:
		default:
			return false, nil
		}
	}
	if n.Parent == nil || !s.test.match(n, principal) {
		return false, nil
	}
	if len(s.preds) == 0 {
		return true, nil
	}
	if allIndependent(s.preds) {
		// No predicate looks at positions: test n alone.
		pc := &Context{Node: n, Position: 1, Size: 1, Env: env}
		for _, p := range s.preds {
			v, err := p.e.eval(pc)
			if err != nil || !Boolean(v) {
				return false, err
			}
		}
		return true, nil
	}
	sibs := n.Parent.Children
	if s.attr {
		sibs = n.Parent.Attrs
	}
	var cands NodeSet
	for _, m := range sibs {
		if s.test.match(m, principal) {
			cands = append(cands, m)
		}
	}
	cands, err := applyPreds(s.preds, cands, &Context{Env: env})
	if err != nil {
		return false, err
	}
	return contains(cands, n), nil
}
