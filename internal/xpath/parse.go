package xpath

import (
	"fmt"
)

// Limits against hostile expressions.
const (
	// MaxExprLen is the longest expression or pattern accepted, in bytes.
	MaxExprLen = 10000
	// MaxDepth is the deepest nesting of parentheses, predicates,
	// function arguments and unary minus accepted.
	MaxDepth = 200
)

type parser struct {
	src   string
	toks  []token
	i     int
	opts  Options
	depth int
}

func newParser(src string, opts Options) (*parser, error) {
	if len(src) > MaxExprLen {
		return nil, &SyntaxError{Src: src, Offset: MaxExprLen, Msg: fmt.Sprintf("the expression is longer than %d bytes", MaxExprLen)}
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	return &parser{src: src, toks: toks, opts: opts}, nil
}

func (p *parser) peek() token       { return p.toks[p.i] }
func (p *parser) peekKind() tokKind { return p.toks[p.i].kind }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errAt(pos int, format string, args ...any) error {
	return &SyntaxError{Src: p.src, Offset: pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) expect(k tokKind, what string) (token, error) {
	t := p.next()
	if t.kind != k {
		return t, p.errAt(t.pos, "expected %s, found %s", what, t.describe())
	}
	return t, nil
}

func (p *parser) enter(pos int) error {
	p.depth++
	if p.depth > MaxDepth {
		return p.errAt(pos, "the expression is nested more than %d levels deep", MaxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) resolve(prefix string, pos int) (string, error) {
	if prefix == "" {
		return "", nil
	}
	if p.opts.Namespaces != nil {
		if uri, ok := p.opts.Namespaces(prefix); ok {
			return uri, nil
		}
	}
	if prefix == "xml" {
		return xmlNS, nil
	}
	return "", p.errAt(pos, "the namespace prefix %q is not declared", prefix)
}

func (p *parser) parseTop() (expr, error) {
	e, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t.pos, "unexpected %s after a complete expression", t.describe())
	}
	return e, nil
}

func (p *parser) parseExpr() (expr, error) {
	if err := p.enter(p.peek().pos); err != nil {
		return nil, err
	}
	defer p.leave()
	return p.parseOr()
}

func (p *parser) parseOr() (expr, error) {
	a, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.peekKind() == tOr {
		p.next()
		b, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		a = &orExpr{a, b}
	}
	return a, nil
}

func (p *parser) parseAnd() (expr, error) {
	a, err := p.parseEquality()
	if err != nil {
		return nil, err
	}
	for p.peekKind() == tAnd {
		p.next()
		b, err := p.parseEquality()
		if err != nil {
			return nil, err
		}
		a = &andExpr{a, b}
	}
	return a, nil
}

func (p *parser) parseEquality() (expr, error) {
	a, err := p.parseRelational()
	if err != nil {
		return nil, err
	}
	for k := p.peekKind(); k == tEq || k == tNeq; k = p.peekKind() {
		p.next()
		b, err := p.parseRelational()
		if err != nil {
			return nil, err
		}
		op := opEq
		if k == tNeq {
			op = opNeq
		}
		a = &cmpExpr{op, a, b}
	}
	return a, nil
}

func (p *parser) parseRelational() (expr, error) {
	a, err := p.parseAdditive()
	if err != nil {
		return nil, err
	}
	for {
		var op cmpOp
		switch p.peekKind() {
		case tLt:
			op = opLt
		case tLe:
			op = opLe
		case tGt:
			op = opGt
		case tGe:
			op = opGe
		default:
			return a, nil
		}
		p.next()
		b, err := p.parseAdditive()
		if err != nil {
			return nil, err
		}
		a = &cmpExpr{op, a, b}
	}
}

func (p *parser) parseAdditive() (expr, error) {
	a, err := p.parseMultiplicative()
	if err != nil {
		return nil, err
	}
	for k := p.peekKind(); k == tPlus || k == tMinus; k = p.peekKind() {
		p.next()
		b, err := p.parseMultiplicative()
		if err != nil {
			return nil, err
		}
		op := byte('+')
		if k == tMinus {
			op = '-'
		}
		a = &arithExpr{op, a, b}
	}
	return a, nil
}

func (p *parser) parseMultiplicative() (expr, error) {
	a, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		var op byte
		switch p.peekKind() {
		case tMul:
			op = '*'
		case tDiv:
			op = '/'
		case tMod:
			op = '%'
		default:
			return a, nil
		}
		p.next()
		b, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		a = &arithExpr{op, a, b}
	}
}

func (p *parser) parseUnary() (expr, error) {
	if t := p.peek(); t.kind == tMinus {
		p.next()
		if err := p.enter(t.pos); err != nil {
			return nil, err
		}
		defer p.leave()
		a, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &negExpr{a}, nil
	}
	return p.parseUnion()
}

func (p *parser) parseUnion() (expr, error) {
	start := p.peek().pos
	a, err := p.parsePath()
	if err != nil {
		return nil, err
	}
	if p.peekKind() != tPipe {
		return a, nil
	}
	if err := p.needNodeSet(a, start, "an operand of |"); err != nil {
		return nil, err
	}
	u := &unionExpr{parts: []expr{a}}
	for p.peekKind() == tPipe {
		p.next()
		start := p.peek().pos
		b, err := p.parsePath()
		if err != nil {
			return nil, err
		}
		if err := p.needNodeSet(b, start, "an operand of |"); err != nil {
			return nil, err
		}
		u.parts = append(u.parts, b)
	}
	return u, nil
}

func (p *parser) needNodeSet(e expr, pos int, what string) error {
	if t := e.typ(); t != tyNodeSet && t != tyAny {
		return p.errAt(pos, "%s must be a node-set, not a %s", what, t)
	}
	return nil
}

func canStartStep(k tokKind) bool {
	switch k {
	case tName, tStar, tPrefixStar, tNodeType, tAxis, tAt, tDot, tDDot:
		return true
	}
	return false
}

func (p *parser) parsePath() (expr, error) {
	t := p.peek()
	switch t.kind {
	case tVar, tLParen, tLiteral, tNumber, tFuncName:
		f, err := p.parseFilter()
		if err != nil {
			return nil, err
		}
		k := p.peekKind()
		if k != tSlash && k != tDSlash {
			return f, nil
		}
		if err := p.needNodeSet(f, t.pos, "the expression before "+k.String()); err != nil {
			return nil, err
		}
		steps, err := p.parseRelative(nil)
		if err != nil {
			return nil, err
		}
		return newPath(f, false, steps), nil
	case tSlash:
		p.next()
		if !canStartStep(p.peekKind()) {
			return newPath(nil, true, nil), nil
		}
		steps, err := p.parseRelative(nil)
		if err != nil {
			return nil, err
		}
		return newPath(nil, true, steps), nil
	case tDSlash:
		p.next()
		steps, err := p.parseRelative([]*step{descOrSelfStep()})
		if err != nil {
			return nil, err
		}
		return newPath(nil, true, steps), nil
	}
	if !canStartStep(t.kind) {
		return nil, p.errAt(t.pos, "expected an expression, found %s", t.describe())
	}
	steps, err := p.parseRelative(nil)
	if err != nil {
		return nil, err
	}
	return newPath(nil, false, steps), nil
}

func descOrSelfStep() *step {
	return &step{axis: axisDescendantOrSelf, test: nodeTest{kind: testNode}}
}

// parseRelative parses a relative location path (after a leading / or //
// has been consumed, or after a filter expression followed by / or //,
// which it consumes).
func (p *parser) parseRelative(steps []*step) ([]*step, error) {
	switch p.peekKind() {
	case tSlash:
		p.next()
	case tDSlash:
		p.next()
		steps = append(steps, descOrSelfStep())
	}
	for {
		s, err := p.parseStep()
		if err != nil {
			return nil, err
		}
		steps = append(steps, s)
		switch p.peekKind() {
		case tSlash:
			p.next()
		case tDSlash:
			p.next()
			steps = append(steps, descOrSelfStep())
		default:
			return steps, nil
		}
	}
}

var axisNames = map[string]axis{
	"ancestor": axisAncestor, "ancestor-or-self": axisAncestorOrSelf, "attribute": axisAttribute,
	"child": axisChild, "descendant": axisDescendant, "descendant-or-self": axisDescendantOrSelf,
	"following": axisFollowing, "following-sibling": axisFollowingSibling, "parent": axisParent,
	"preceding": axisPreceding, "preceding-sibling": axisPrecedingSibling, "self": axisSelf,
}

func (p *parser) parseStep() (*step, error) {
	t := p.next()
	s := &step{axis: axisChild}
	switch t.kind {
	case tDot:
		s.axis, s.test = axisSelf, nodeTest{kind: testNode}
		return s, nil
	case tDDot:
		s.axis, s.test = axisParent, nodeTest{kind: testNode}
		return s, nil
	case tAt:
		s.axis = axisAttribute
		t = p.next()
	case tAxis:
		if t.text == "namespace" {
			return nil, p.errAt(t.pos, "the namespace axis is not supported")
		}
		a, ok := axisNames[t.text]
		if !ok {
			return nil, p.errAt(t.pos, "unknown axis %q", t.text)
		}
		s.axis = a
		if _, err := p.expect(tDColon, "'::'"); err != nil {
			return nil, err
		}
		t = p.next()
	}
	test, err := p.parseNodeTest(t)
	if err != nil {
		return nil, err
	}
	s.test = test
	s.preds, err = p.parsePredicates()
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (p *parser) parseNodeTest(t token) (nodeTest, error) {
	switch t.kind {
	case tStar:
		return nodeTest{kind: testAny}, nil
	case tPrefixStar:
		uri, err := p.resolve(t.prefix, t.pos)
		return nodeTest{kind: testSpace, space: uri}, err
	case tName:
		uri, err := p.resolve(t.prefix, t.pos)
		return nodeTest{kind: testName, space: uri, local: t.text}, err
	case tNodeType:
		if _, err := p.expect(tLParen, "'('"); err != nil {
			return nodeTest{}, err
		}
		var nt nodeTest
		switch t.text {
		case "node":
			nt.kind = testNode
		case "text":
			nt.kind = testText
		case "comment":
			nt.kind = testComment
		case "processing-instruction":
			nt.kind = testPI
			if p.peekKind() == tLiteral {
				nt.kind = testPITarget
				nt.local = p.next().text
			}
		}
		if _, err := p.expect(tRParen, "')'"); err != nil {
			return nodeTest{}, err
		}
		return nt, nil
	case tFuncName:
		return nodeTest{}, p.errAt(t.pos, "%s is not a node test (a function call cannot start a step)", t.describe())
	}
	return nodeTest{}, p.errAt(t.pos, "expected a node test, found %s", t.describe())
}

func (p *parser) parsePredicates() ([]*pred, error) {
	var preds []*pred
	for p.peekKind() == tLBracket {
		t := p.next()
		if err := p.enter(t.pos); err != nil {
			return nil, err
		}
		e, err := p.parseExpr()
		p.leave()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tRBracket, "']'"); err != nil {
			return nil, err
		}
		preds = append(preds, newPred(e))
	}
	return preds, nil
}

func (p *parser) parseFilter() (expr, error) {
	start := p.peek().pos
	e, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	if p.peekKind() != tLBracket {
		return e, nil
	}
	if err := p.needNodeSet(e, start, "an expression with a predicate"); err != nil {
		return nil, err
	}
	preds, err := p.parsePredicates()
	if err != nil {
		return nil, err
	}
	return &filterExpr{e, preds}, nil
}

func (p *parser) parsePrimary() (expr, error) {
	t := p.next()
	switch t.kind {
	case tVar:
		uri, err := p.resolve(t.prefix, t.pos)
		if err != nil {
			return nil, err
		}
		return &varRef{space: uri, local: t.text, name: qn(t.prefix, t.text)}, nil
	case tLParen:
		e, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tRParen, "')'"); err != nil {
			return nil, err
		}
		return e, nil
	case tLiteral:
		return stringLit(t.text), nil
	case tNumber:
		return numberLit(t.num), nil
	case tFuncName:
		return p.parseCall(t)
	}
	return nil, p.errAt(t.pos, "expected an expression, found %s", t.describe())
}

func (p *parser) parseCall(name token) (expr, error) {
	if _, err := p.expect(tLParen, "'('"); err != nil {
		return nil, err
	}
	if err := p.enter(name.pos); err != nil {
		return nil, err
	}
	defer p.leave()
	var args []expr
	var argPos []int
	if p.peekKind() != tRParen {
		for {
			argPos = append(argPos, p.peek().pos)
			a, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			args = append(args, a)
			if p.peekKind() != tComma {
				break
			}
			p.next()
		}
	}
	if _, err := p.expect(tRParen, "')' or ','"); err != nil {
		return nil, err
	}
	if name.prefix == "" {
		if f, ok := coreFuncs[name.text]; ok {
			if len(args) < f.min || f.max >= 0 && len(args) > f.max {
				return nil, p.errAt(name.pos, "%s() takes %s, not %d", name.text, f.arity(), len(args))
			}
			for i, a := range args {
				if f.nodeArgs && a.typ() != tyNodeSet && a.typ() != tyAny {
					return nil, p.errAt(argPos[i], "the argument of %s() must be a node-set, not a %s", name.text, a.typ())
				}
			}
			return &coreCall{f: f, args: args}, nil
		}
	}
	uri, err := p.resolve(name.prefix, name.pos)
	if err != nil {
		return nil, err
	}
	if p.opts.HasFunction != nil && !p.opts.HasFunction(uri, name.text) {
		return nil, p.errAt(name.pos, "unknown function %s()", qn(name.prefix, name.text))
	}
	return &extCall{space: uri, local: name.text, name: qn(name.prefix, name.text), args: args}, nil
}
