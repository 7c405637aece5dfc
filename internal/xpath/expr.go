package xpath

import (
	"errors"
	"fmt"
	"math"

	"github.com/sluicehq/sluice/internal/xmltree"
)

const xmlNS = xmltree.XMLNamespace

// vtype is the static type of an expression, when it is known at compile
// time.
type vtype uint8

const (
	tyAny vtype = iota
	tyNodeSet
	tyString
	tyNumber
	tyBool
)

func (t vtype) String() string {
	switch t {
	case tyNodeSet:
		return "node-set"
	case tyString:
		return "string"
	case tyNumber:
		return "number"
	case tyBool:
		return "boolean"
	}
	return "value"
}

// expr is a compiled (sub)expression. Implementations are immutable, so a
// compiled tree may be evaluated by many goroutines.
type expr interface {
	eval(c *Context) (Value, error)
	typ() vtype
}

// EvalError is an expression that failed while being evaluated: a value
// of the wrong type, an undefined variable or function, or an error from a
// caller's function.
type EvalError struct {
	Src string // the expression
	Err error
}

func (e *EvalError) Error() string {
	return "xpath: evaluating " + quoteSrc(e.Src) + ": " + e.Err.Error()
}
func (e *EvalError) Unwrap() error { return e.Err }

var errNoContext = errors.New("there is no context node")

// literal is a number or string literal, boxed once at compile time so
// that evaluating it does not allocate.
type literal struct {
	v Value
	t vtype
}

func numberLit(f float64) *literal { return &literal{v: f, t: tyNumber} }
func stringLit(s string) *literal  { return &literal{v: s, t: tyString} }

func (l *literal) eval(*Context) (Value, error) { return l.v, nil }
func (l *literal) typ() vtype                   { return l.t }

type varRef struct{ space, local, name string }

func (v *varRef) typ() vtype { return tyAny }
func (v *varRef) eval(c *Context) (Value, error) {
	if c.Env != nil {
		if val, ok := c.Env.Variable(v.space, v.local); ok {
			if ns, ok := val.(NodeSet); ok {
				return ns, nil // in document order, as Env promises
			}
			return normalize(val, "the variable $"+v.name)
		}
	}
	return nil, fmt.Errorf("the variable $%s is not defined", v.name)
}

// normalize checks a value from outside (a variable or a caller's
// function) and puts a node-set in document order.
func normalize(v Value, what string) (Value, error) {
	switch x := v.(type) {
	case NodeSet:
		return Sort(x), nil
	case string, float64, bool:
		return v, nil
	case []*xmltree.Node:
		return Sort(x), nil
	case *xmltree.Node:
		if x == nil {
			return NodeSet(nil), nil
		}
		return NodeSet{x}, nil
	case int:
		return float64(x), nil
	case nil:
		return nil, fmt.Errorf("%s has no value", what)
	}
	return nil, fmt.Errorf("%s is a %T, not an XPath value", what, v)
}

type orExpr struct{ a, b expr }

func (*orExpr) typ() vtype { return tyBool }
func (e *orExpr) eval(c *Context) (Value, error) {
	v, err := e.a.eval(c)
	if err != nil || Boolean(v) {
		return true, err
	}
	v, err = e.b.eval(c)
	return Boolean(v), err
}

type andExpr struct{ a, b expr }

func (*andExpr) typ() vtype { return tyBool }
func (e *andExpr) eval(c *Context) (Value, error) {
	v, err := e.a.eval(c)
	if err != nil || !Boolean(v) {
		return false, err
	}
	v, err = e.b.eval(c)
	return Boolean(v), err
}

type arithExpr struct {
	op   byte // + - * / %
	a, b expr
}

func (*arithExpr) typ() vtype { return tyNumber }
func (e *arithExpr) eval(c *Context) (Value, error) {
	x, err := evalNumber(e.a, c)
	if err != nil {
		return nil, err
	}
	y, err := evalNumber(e.b, c)
	if err != nil {
		return nil, err
	}
	switch e.op {
	case '+':
		return x + y, nil
	case '-':
		return x - y, nil
	case '*':
		return x * y, nil
	case '/':
		return x / y, nil
	}
	return math.Mod(x, y), nil
}

type negExpr struct{ a expr }

func (*negExpr) typ() vtype { return tyNumber }
func (e *negExpr) eval(c *Context) (Value, error) {
	x, err := evalNumber(e.a, c)
	return -x, err
}

func evalNumber(e expr, c *Context) (float64, error) {
	v, err := e.eval(c)
	if err != nil {
		return 0, err
	}
	return Number(v), nil
}

func evalString(e expr, c *Context) (string, error) {
	v, err := e.eval(c)
	if err != nil {
		return "", err
	}
	return String(v), nil
}

func evalNodeSet(e expr, c *Context, what string) (NodeSet, error) {
	v, err := e.eval(c)
	if err != nil {
		return nil, err
	}
	ns, ok := v.(NodeSet)
	if !ok {
		return nil, fmt.Errorf("%s must be a node-set, not a %s", what, typeName(v))
	}
	return ns, nil
}

func typeName(v Value) string {
	switch v.(type) {
	case NodeSet:
		return "node-set"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

type unionExpr struct{ parts []expr }

func (*unionExpr) typ() vtype { return tyNodeSet }
func (e *unionExpr) eval(c *Context) (Value, error) {
	var all NodeSet
	for _, p := range e.parts {
		ns, err := evalNodeSet(p, c, "an operand of |")
		if err != nil {
			return nil, err
		}
		all = append(all, ns...)
	}
	return sortOwned(all), nil
}

// filterExpr is a primary expression with predicates: (//a)[1], $v[@x].
type filterExpr struct {
	primary expr
	preds   []*pred
}

func (*filterExpr) typ() vtype { return tyNodeSet }
func (e *filterExpr) eval(c *Context) (Value, error) {
	ns, err := evalNodeSet(e.primary, c, "an expression with a predicate")
	if err != nil {
		return nil, err
	}
	own := make(NodeSet, len(ns))
	copy(own, ns)
	return applyPreds(e.preds, own, &Context{Env: c.Env})
}

// pred is a predicate; constant positions ([1], [3]) and [last()] are
// recognized so they need not evaluate an expression per node.
type pred struct {
	e     expr
	pos   int  // > 0: the predicate is the constant position pos
	never bool // a constant number that is no position (0, 1.5, -1)
	last  bool // [last()]
	// independent: the predicate's value for a node does not depend on
	// the node's position or the context size.
	independent bool
}

func newPred(e expr) *pred {
	p := &pred{e: e}
	switch x := e.(type) {
	case *literal:
		if f, ok := x.v.(float64); ok {
			if f >= 1 && f == math.Trunc(f) && f < math.MaxInt32 {
				p.pos = int(f)
			} else {
				p.never = true
			}
		}
	case *coreCall:
		if x.f.name == "last" {
			p.last = true
		}
	}
	p.independent = !p.never && p.pos == 0 && !p.last && e.typ() != tyNumber && e.typ() != tyAny && !usesPosition(e)
	return p
}

// usesPosition reports whether e may depend on the context position or
// size: it calls position() or last() outside any inner predicate, or a
// caller's function (which might look), and so whether a predicate of e
// gives the same answer for a node whatever its position.
func usesPosition(e expr) bool {
	switch x := e.(type) {
	case *literal, *varRef:
		return false
	case *coreCall:
		if x.f.name == "position" || x.f.name == "last" {
			return true
		}
		for _, a := range x.args {
			if usesPosition(a) {
				return true
			}
		}
		return false
	case *orExpr:
		return usesPosition(x.a) || usesPosition(x.b)
	case *andExpr:
		return usesPosition(x.a) || usesPosition(x.b)
	case *cmpExpr:
		return usesPosition(x.a) || usesPosition(x.b)
	case *arithExpr:
		return usesPosition(x.a) || usesPosition(x.b)
	case *negExpr:
		return usesPosition(x.a)
	case *unionExpr:
		for _, p := range x.parts {
			if usesPosition(p) {
				return true
			}
		}
		return false
	case *filterExpr:
		return usesPosition(x.primary)
	case *pathExpr:
		return x.filter != nil && usesPosition(x.filter)
	}
	return true
}

// filter keeps the nodes of ns (in the axis' order) that satisfy the
// predicate, reusing ns. pc is a scratch context.
func (p *pred) filter(ns NodeSet, pc *Context) (NodeSet, error) {
	switch {
	case p.never:
		return ns[:0], nil
	case p.pos > 0:
		if p.pos > len(ns) {
			return ns[:0], nil
		}
		ns[0] = ns[p.pos-1]
		return ns[:1], nil
	case p.last:
		if len(ns) == 0 {
			return ns, nil
		}
		ns[0] = ns[len(ns)-1]
		return ns[:1], nil
	}
	size := len(ns)
	j := 0
	for i, n := range ns {
		pc.Node, pc.Position, pc.Size = n, i+1, size
		v, err := p.e.eval(pc)
		if err != nil {
			return nil, err
		}
		var keep bool
		if f, ok := v.(float64); ok {
			keep = f == float64(i+1)
		} else {
			keep = Boolean(v)
		}
		if keep {
			ns[j] = n
			j++
		}
	}
	return ns[:j], nil
}

func applyPreds(preds []*pred, ns NodeSet, pc *Context) (NodeSet, error) {
	var err error
	for _, p := range preds {
		if len(ns) == 0 {
			break
		}
		if ns, err = p.filter(ns, pc); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// pathExpr is a location path, absolute or relative, or a filter
// expression followed by a relative location path.
type pathExpr struct {
	filter   expr
	absolute bool
	steps    []*step
}

// newPath builds a path, turning descendant-or-self::node()/child::x
// (which is what //x abbreviates) into descendant::x where no predicate
// of the child step depends on positions (//x[1] is not
// /descendant::x[1]), which selects the same nodes without sorting.
func newPath(filter expr, absolute bool, steps []*step) *pathExpr {
	var out []*step
	for i := 0; i < len(steps); i++ {
		s := steps[i]
		if s.axis == axisDescendantOrSelf && s.test.kind == testNode && len(s.preds) == 0 &&
			i+1 < len(steps) && steps[i+1].axis == axisChild && allIndependent(steps[i+1].preds) {
			out = append(out, &step{axis: axisDescendant, test: steps[i+1].test, preds: steps[i+1].preds})
			i++
			continue
		}
		out = append(out, s)
	}
	return &pathExpr{filter: filter, absolute: absolute, steps: out}
}

func allIndependent(preds []*pred) bool {
	for _, p := range preds {
		if !p.independent {
			return false
		}
	}
	return true
}

func (*pathExpr) typ() vtype { return tyNodeSet }
func (e *pathExpr) eval(c *Context) (Value, error) {
	var cur NodeSet
	single := true
	var pc *Context // the scratch context of predicates, shared by the steps
	steps := e.steps
	switch {
	case e.filter != nil:
		ns, err := evalNodeSet(e.filter, c, "the expression before /")
		if err != nil {
			return nil, err
		}
		cur, single = ns, sameTree(ns)
	case c.Node == nil:
		return nil, errNoContext
	default:
		start := c.Node
		if e.absolute {
			start = rootOf(start)
		}
		if len(steps) == 0 {
			return NodeSet{start}, nil
		}
		var err error
		if cur, err = steps[0].applyOne(start, c, &pc); err != nil {
			return nil, err
		}
		steps = steps[1:]
	}
	var err error
	for _, s := range steps {
		if len(cur) == 0 {
			break
		}
		if cur, err = s.apply(cur, c, single, &pc); err != nil {
			return nil, err
		}
	}
	if cur == nil {
		cur = NodeSet{}
	}
	return cur, nil
}

func rootOf(n *xmltree.Node) *xmltree.Node {
	for n.Parent != nil {
		n = n.Parent
	}
	return n
}

type step struct {
	axis  axis
	test  nodeTest
	preds []*pred
}

// selectFrom appends to buf the nodes the step selects from n, in the
// axis' order (reverse document order for reverse axes).
func (s *step) selectFrom(n *xmltree.Node, buf NodeSet, pc *Context) (NodeSet, error) {
	start := len(buf)
	principal := xmltree.Element
	if s.axis == axisAttribute {
		principal = xmltree.Attribute
	}
	want := 0 // a first predicate [k]: stop at the k-th node
	if len(s.preds) > 0 && s.preds[0].pos > 0 {
		want = s.preds[0].pos
	}
	switch s.axis {
	case axisChild, axisAttribute:
		list := n.Children
		if s.axis == axisAttribute {
			list = n.Attrs
		}
		count := 0
		for _, m := range list {
			if !s.test.match(m, principal) {
				continue
			}
			count++
			if want > 0 && count < want {
				continue
			}
			buf = append(buf, m)
			if want > 0 {
				break
			}
		}
	case axisSelf, axisParent:
		m := n
		if s.axis == axisParent {
			m = n.Parent
		}
		if m != nil && want <= 1 && s.test.match(m, principal) {
			buf = append(buf, m)
		}
	default:
		count := 0
		walkAxis(s.axis, n, func(m *xmltree.Node) bool {
			if !s.test.match(m, principal) {
				return true
			}
			count++
			if want > 0 && count < want {
				return true
			}
			buf = append(buf, m)
			return want == 0
		})
	}
	if len(s.preds) == 0 || len(buf) == start {
		return buf, nil
	}
	preds := s.preds
	if want > 0 {
		preds = preds[1:]
	}
	got, err := applyPreds(preds, buf[start:], pc)
	if err != nil {
		return nil, err
	}
	return buf[:start+len(got)], nil
}

func (s *step) scratch(c *Context, pc **Context) *Context {
	if len(s.preds) > 0 && *pc == nil {
		*pc = &Context{Env: c.Env}
	}
	return *pc
}

// applyOne evaluates the step from one node; the result is in document
// order.
func (s *step) applyOne(n *xmltree.Node, c *Context, pc **Context) (NodeSet, error) {
	out, err := s.selectFrom(n, nil, s.scratch(c, pc))
	if err != nil {
		return nil, err
	}
	if s.axis.reverse() {
		reverseNodes(out)
	}
	return out, nil
}

// apply evaluates the step from each node of in (in document order, all of
// one tree if single) and returns the union in document order.
func (s *step) apply(in NodeSet, c *Context, single bool, pcp **Context) (NodeSet, error) {
	if len(in) == 1 {
		return s.applyOne(in[0], c, pcp)
	}
	pc := s.scratch(c, pcp)
	reverse := s.axis.reverse()
	var out NodeSet
	var err error
	// Descendants of a node inside the subtree of the node before it are
	// already there: skip it (when no predicate makes the context matter).
	skipNested := single && allIndependent(s.preds) && (s.axis == axisDescendant || s.axis == axisDescendantOrSelf)
	lastStart, lastEnd := -1, -1
	for _, n := range in {
		if skipNested && n.Kind != xmltree.Attribute {
			if n.Order > lastStart && n.Order <= lastEnd {
				continue
			}
			lastStart, lastEnd = n.Order, subtreeEnd(n)
		}
		start := len(out)
		if out, err = s.selectFrom(n, out, pc); err != nil {
			return nil, err
		}
		if reverse {
			reverseNodes(out[start:])
		}
	}
	if !single {
		return sortOwned(out), nil
	}
	for i := 1; i < len(out); i++ {
		if out[i].Order <= out[i-1].Order {
			return sortSameTree(out), nil
		}
	}
	return out, nil
}

func subtreeEnd(n *xmltree.Node) int {
	for len(n.Children) > 0 {
		n = n.Children[len(n.Children)-1]
	}
	return n.Order
}

func reverseNodes(ns NodeSet) {
	for i, j := 0, len(ns)-1; i < j; i, j = i+1, j-1 {
		ns[i], ns[j] = ns[j], ns[i]
	}
}

type testKind uint8

const (
	testNode     testKind = iota // node()
	testAny                      // *
	testName                     // QName
	testSpace                    // prefix:*
	testText                     // text()
	testComment                  // comment()
	testPI                       // processing-instruction()
	testPITarget                 // processing-instruction('target')
)

type nodeTest struct {
	kind         testKind
	space, local string
}

func (t *nodeTest) match(n *xmltree.Node, principal xmltree.Kind) bool {
	switch t.kind {
	case testNode:
		return true
	case testAny:
		return n.Kind == principal
	case testName:
		return n.Kind == principal && n.Local == t.local && n.Space == t.space
	case testSpace:
		return n.Kind == principal && n.Space == t.space
	case testText:
		return n.Kind == xmltree.Text
	case testComment:
		return n.Kind == xmltree.Comment
	case testPI:
		return n.Kind == xmltree.ProcInst
	case testPITarget:
		return n.Kind == xmltree.ProcInst && n.Local == t.local
	}
	return false
}

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNeq
	opLt
	opLe
	opGt
	opGe
)

// mirror is the operator with its operands swapped: a < b is b > a.
func (op cmpOp) mirror() cmpOp {
	switch op {
	case opLt:
		return opGt
	case opLe:
		return opGe
	case opGt:
		return opLt
	case opGe:
		return opLe
	}
	return op
}

type cmpExpr struct {
	op   cmpOp
	a, b expr
}

func (*cmpExpr) typ() vtype { return tyBool }
func (e *cmpExpr) eval(c *Context) (Value, error) {
	a, err := e.a.eval(c)
	if err != nil {
		return nil, err
	}
	b, err := e.b.eval(c)
	if err != nil {
		return nil, err
	}
	return compare(e.op, a, b), nil
}

func compareNumbers(op cmpOp, x, y float64) bool {
	switch op {
	case opEq:
		return x == y
	case opNeq:
		return x != y
	case opLt:
		return x < y
	case opLe:
		return x <= y
	case opGt:
		return x > y
	}
	return x >= y
}

// compare applies the rules of XPath 1.0 §3.4.
func compare(op cmpOp, a, b Value) bool {
	na, aIsSet := a.(NodeSet)
	nb, bIsSet := b.(NodeSet)
	switch {
	case aIsSet && bIsSet:
		return compareSets(op, na, nb)
	case aIsSet:
		return compareSetValue(op, na, b)
	case bIsSet:
		return compareSetValue(op.mirror(), nb, a)
	}
	if op == opEq || op == opNeq {
		_, ab := a.(bool)
		_, bb := b.(bool)
		_, af := a.(float64)
		_, bf := b.(float64)
		switch {
		case ab || bb:
			return (Boolean(a) == Boolean(b)) == (op == opEq)
		case af || bf:
			return compareNumbers(op, Number(a), Number(b))
		}
		return (String(a) == String(b)) == (op == opEq)
	}
	return compareNumbers(op, Number(a), Number(b))
}

func compareSetValue(op cmpOp, ns NodeSet, v Value) bool {
	switch x := v.(type) {
	case bool:
		return compare(op, Boolean(ns), x)
	case float64:
		for _, n := range ns {
			if compareNumbers(op, parseNumber(StringValue(n)), x) {
				return true
			}
		}
		return false
	}
	s := String(v)
	if op == opEq || op == opNeq {
		for _, n := range ns {
			if (StringValue(n) == s) == (op == opEq) {
				return true
			}
		}
		return false
	}
	y := parseNumber(s)
	for _, n := range ns {
		if compareNumbers(op, parseNumber(StringValue(n)), y) {
			return true
		}
	}
	return false
}

func compareSets(op cmpOp, a, b NodeSet) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	if op == opEq || op == opNeq {
		set := make(map[string]struct{}, len(b))
		for _, n := range b {
			set[StringValue(n)] = struct{}{}
		}
		for _, n := range a {
			_, in := set[StringValue(n)]
			if op == opEq && in || op == opNeq && (len(set) > 1 || !in) {
				return true
			}
		}
		return false
	}
	minA, maxA, okA := numberRange(a)
	minB, maxB, okB := numberRange(b)
	if !okA || !okB {
		return false
	}
	switch op {
	case opLt:
		return minA < maxB
	case opLe:
		return minA <= maxB
	case opGt:
		return maxA > minB
	}
	return maxA >= minB
}

// numberRange is the least and greatest number of the nodes' string
// values, ignoring NaN; ok is false when every one is NaN.
func numberRange(ns NodeSet) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, n := range ns {
		f := parseNumber(StringValue(n))
		if math.IsNaN(f) {
			continue
		}
		ok = true
		lo, hi = math.Min(lo, f), math.Max(hi, f)
	}
	return lo, hi, ok
}
