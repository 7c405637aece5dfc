package xpath

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// coreFunc is a function of the XPath core library (§4). It receives its
// arguments unevaluated.
type coreFunc struct {
	name     string
	min, max int  // max < 0: any number
	nodeArgs bool // every argument must be a node-set
	ret      vtype
	fn       func(c *Context, args []expr) (Value, error)
}

func (f *coreFunc) arity() string {
	switch {
	case f.min == f.max:
		if f.min == 1 {
			return "1 argument"
		}
		return strconv.Itoa(f.min) + " arguments"
	case f.max < 0:
		return "at least " + strconv.Itoa(f.min) + " arguments"
	}
	return fmt.Sprintf("%d to %d arguments", f.min, f.max)
}

type coreCall struct {
	f    *coreFunc
	args []expr
}

func (e *coreCall) typ() vtype                     { return e.f.ret }
func (e *coreCall) eval(c *Context) (Value, error) { return e.f.fn(c, e.args) }

// extCall is a function the caller supplies through Env.
type extCall struct {
	space, local, name string
	args               []expr
}

func (*extCall) typ() vtype { return tyAny }
func (e *extCall) eval(c *Context) (Value, error) {
	var f Func
	ok := false
	if c.Env != nil {
		f, ok = c.Env.Function(e.space, e.local)
	}
	if !ok || f == nil {
		return nil, fmt.Errorf("unknown function %s()", e.name)
	}
	args := make([]Value, len(e.args))
	for i, a := range e.args {
		v, err := a.eval(c)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	v, err := f(c, args)
	if err != nil {
		return nil, fmt.Errorf("%s(): %w", e.name, err)
	}
	return normalize(v, "the result of "+e.name+"()")
}

var coreFuncs map[string]*coreFunc

func init() {
	list := []*coreFunc{
		{name: "last", ret: tyNumber, fn: fnLast},
		{name: "position", ret: tyNumber, fn: fnPosition},
		{name: "count", min: 1, max: 1, nodeArgs: true, ret: tyNumber, fn: fnCount},
		{name: "id", min: 1, max: 1, ret: tyNodeSet, fn: fnID},
		{name: "local-name", max: 1, nodeArgs: true, ret: tyString, fn: fnLocalName},
		{name: "namespace-uri", max: 1, nodeArgs: true, ret: tyString, fn: fnNamespaceURI},
		{name: "name", max: 1, nodeArgs: true, ret: tyString, fn: fnName},
		{name: "string", max: 1, ret: tyString, fn: fnString},
		{name: "concat", min: 2, max: -1, ret: tyString, fn: fnConcat},
		{name: "starts-with", min: 2, max: 2, ret: tyBool, fn: fnStartsWith},
		{name: "contains", min: 2, max: 2, ret: tyBool, fn: fnContains},
		{name: "substring-before", min: 2, max: 2, ret: tyString, fn: fnSubstringBefore},
		{name: "substring-after", min: 2, max: 2, ret: tyString, fn: fnSubstringAfter},
		{name: "substring", min: 2, max: 3, ret: tyString, fn: fnSubstring},
		{name: "string-length", max: 1, ret: tyNumber, fn: fnStringLength},
		{name: "normalize-space", max: 1, ret: tyString, fn: fnNormalizeSpace},
		{name: "translate", min: 3, max: 3, ret: tyString, fn: fnTranslate},
		{name: "boolean", min: 1, max: 1, ret: tyBool, fn: fnBoolean},
		{name: "not", min: 1, max: 1, ret: tyBool, fn: fnNot},
		{name: "true", ret: tyBool, fn: fnTrue},
		{name: "false", ret: tyBool, fn: fnFalse},
		{name: "lang", min: 1, max: 1, ret: tyBool, fn: fnLang},
		{name: "number", max: 1, ret: tyNumber, fn: fnNumber},
		{name: "sum", min: 1, max: 1, nodeArgs: true, ret: tyNumber, fn: fnSum},
		{name: "floor", min: 1, max: 1, ret: tyNumber, fn: fnFloor},
		{name: "ceiling", min: 1, max: 1, ret: tyNumber, fn: fnCeiling},
		{name: "round", min: 1, max: 1, ret: tyNumber, fn: fnRound},
	}
	coreFuncs = make(map[string]*coreFunc, len(list))
	for _, f := range list {
		coreFuncs[f.name] = f
	}
}

// fnLast and fnPosition take a zero Size or Position (a Context made
// without them) as 1: a context always holds at least its node.
func fnLast(c *Context, _ []expr) (Value, error)     { return float64(max(c.Size, 1)), nil }
func fnPosition(c *Context, _ []expr) (Value, error) { return float64(max(c.Position, 1)), nil }
func fnTrue(*Context, []expr) (Value, error)         { return true, nil }
func fnFalse(*Context, []expr) (Value, error)        { return false, nil }

func fnCount(c *Context, args []expr) (Value, error) {
	ns, err := evalNodeSet(args[0], c, "the argument of count()")
	return float64(len(ns)), err
}

func fnSum(c *Context, args []expr) (Value, error) {
	ns, err := evalNodeSet(args[0], c, "the argument of sum()")
	if err != nil {
		return nil, err
	}
	sum := 0.0
	for _, n := range ns {
		sum += parseNumber(StringValue(n))
	}
	return sum, nil
}

// nodeArg is the first node of the optional node-set argument, or the
// context node; nil for an empty node-set.
func nodeArg(c *Context, args []expr, fname string) (*xmltree.Node, error) {
	if len(args) == 0 {
		if c.Node == nil {
			return nil, errNoContext
		}
		return c.Node, nil
	}
	ns, err := evalNodeSet(args[0], c, "the argument of "+fname+"()")
	if err != nil || len(ns) == 0 {
		return nil, err
	}
	return ns[0], nil
}

func fnLocalName(c *Context, args []expr) (Value, error) {
	n, err := nodeArg(c, args, "local-name")
	if err != nil || n == nil {
		return "", err
	}
	switch n.Kind {
	case xmltree.Element, xmltree.Attribute, xmltree.ProcInst:
		return n.Local, nil
	}
	return "", nil
}

func fnNamespaceURI(c *Context, args []expr) (Value, error) {
	n, err := nodeArg(c, args, "namespace-uri")
	if err != nil || n == nil {
		return "", err
	}
	switch n.Kind {
	case xmltree.Element, xmltree.Attribute:
		return n.Space, nil
	}
	return "", nil
}

func fnName(c *Context, args []expr) (Value, error) {
	n, err := nodeArg(c, args, "name")
	if err != nil || n == nil {
		return "", err
	}
	switch n.Kind {
	case xmltree.Element, xmltree.Attribute:
		return n.Name(), nil
	case xmltree.ProcInst:
		return n.Local, nil
	}
	return "", nil
}

// stringArg is the string of the optional argument, or the string value
// of the context node.
func stringArg(c *Context, args []expr) (string, error) {
	if len(args) == 0 {
		if c.Node == nil {
			return "", errNoContext
		}
		return StringValue(c.Node), nil
	}
	return evalString(args[0], c)
}

func fnString(c *Context, args []expr) (Value, error) { return stringArg(c, args) }

func fnNumber(c *Context, args []expr) (Value, error) {
	if len(args) == 0 {
		s, err := stringArg(c, args)
		return parseNumber(s), err
	}
	return evalNumber(args[0], c)
}

func fnStringLength(c *Context, args []expr) (Value, error) {
	s, err := stringArg(c, args)
	return float64(utf8.RuneCountInString(s)), err
}

func fnNormalizeSpace(c *Context, args []expr) (Value, error) {
	s, err := stringArg(c, args)
	if err != nil {
		return nil, err
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}), " "), nil
}

func fnConcat(c *Context, args []expr) (Value, error) {
	var b strings.Builder
	for _, a := range args {
		s, err := evalString(a, c)
		if err != nil {
			return nil, err
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

func twoStrings(c *Context, args []expr) (string, string, error) {
	a, err := evalString(args[0], c)
	if err != nil {
		return "", "", err
	}
	b, err := evalString(args[1], c)
	return a, b, err
}

func fnStartsWith(c *Context, args []expr) (Value, error) {
	a, b, err := twoStrings(c, args)
	return strings.HasPrefix(a, b), err
}

func fnContains(c *Context, args []expr) (Value, error) {
	a, b, err := twoStrings(c, args)
	return strings.Contains(a, b), err
}

func fnSubstringBefore(c *Context, args []expr) (Value, error) {
	a, b, err := twoStrings(c, args)
	if err != nil {
		return nil, err
	}
	if i := strings.Index(a, b); i >= 0 {
		return a[:i], nil
	}
	return "", nil
}

func fnSubstringAfter(c *Context, args []expr) (Value, error) {
	a, b, err := twoStrings(c, args)
	if err != nil {
		return nil, err
	}
	if i := strings.Index(a, b); i >= 0 {
		return a[i+len(b):], nil
	}
	return "", nil
}

// fnSubstring keeps the characters whose position p (from 1) satisfies
// round(start) <= p < round(start) + round(length), in IEEE arithmetic, so
// NaN and infinities fall out of the comparisons as the spec shows.
func fnSubstring(c *Context, args []expr) (Value, error) {
	s, err := evalString(args[0], c)
	if err != nil {
		return nil, err
	}
	start, err := evalNumber(args[1], c)
	if err != nil {
		return nil, err
	}
	from := xpathRound(start)
	to := math.Inf(1)
	if len(args) == 3 {
		n, err := evalNumber(args[2], c)
		if err != nil {
			return nil, err
		}
		to = from + xpathRound(n)
	}
	if !(from < to) {
		return "", nil
	}
	begin, end := -1, len(s)
	p := 0
	for i := range s {
		p++
		fp := float64(p)
		if begin < 0 {
			if fp >= from && fp < to {
				begin = i
			}
			continue
		}
		if !(fp < to) {
			end = i
			break
		}
	}
	if begin < 0 {
		return "", nil
	}
	return s[begin:end], nil
}

func fnTranslate(c *Context, args []expr) (Value, error) {
	s, err := evalString(args[0], c)
	if err != nil {
		return nil, err
	}
	from, to, err := twoStrings(c, args[1:])
	if err != nil {
		return nil, err
	}
	toRunes := []rune(to)
	mapping := map[rune]rune{} // -1: remove
	i := 0
	for _, r := range from {
		if _, seen := mapping[r]; !seen {
			if i < len(toRunes) {
				mapping[r] = toRunes[i]
			} else {
				mapping[r] = -1
			}
		}
		i++
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if m, ok := mapping[r]; ok {
			if m >= 0 {
				b.WriteRune(m)
			}
			continue
		}
		b.WriteRune(r)
	}
	return b.String(), nil
}

func fnBoolean(c *Context, args []expr) (Value, error) {
	v, err := args[0].eval(c)
	return Boolean(v), err
}

func fnNot(c *Context, args []expr) (Value, error) {
	v, err := args[0].eval(c)
	return !Boolean(v), err
}

// fnLang is true when the xml:lang of the context node (on it or its
// nearest ancestor) is the argument, or a sub-language of it, ignoring
// case.
func fnLang(c *Context, args []expr) (Value, error) {
	want, err := evalString(args[0], c)
	if err != nil {
		return nil, err
	}
	if c.Node == nil {
		return nil, errNoContext
	}
	for n := c.Node; n != nil; n = n.Parent {
		if n.Kind != xmltree.Element {
			continue
		}
		if lang, ok := n.Attr(xmlNS, "lang"); ok {
			return strings.EqualFold(lang, want) ||
				len(lang) > len(want) && lang[len(want)] == '-' && strings.EqualFold(lang[:len(want)], want), nil
		}
	}
	return false, nil
}

func fnFloor(c *Context, args []expr) (Value, error) {
	f, err := evalNumber(args[0], c)
	return math.Floor(f), err
}

func fnCeiling(c *Context, args []expr) (Value, error) {
	f, err := evalNumber(args[0], c)
	return math.Ceil(f), err
}

func fnRound(c *Context, args []expr) (Value, error) {
	f, err := evalNumber(args[0], c)
	return xpathRound(f), err
}

// xpathRound is round() of §4.4: the closest integer, the one toward
// positive infinity of two; NaN, infinities and zeros unchanged; negative
// zero for -0.5 <= f < 0.
func xpathRound(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) || f == 0 {
		return f
	}
	if f < 0 && f >= -0.5 {
		return math.Copysign(0, -1)
	}
	r := math.Floor(f)
	if f-r >= 0.5 {
		r++
	}
	return r
}

// fnID selects the elements of the context node's document whose ID is
// one of the whitespace-separated tokens of the argument (of each node's
// string value, for a node-set). Without DTDs (xmltree refuses them), an
// ID is the value of an attribute named id (in no namespace) or xml:id.
func fnID(c *Context, args []expr) (Value, error) {
	v, err := args[0].eval(c)
	if err != nil {
		return nil, err
	}
	if c.Node == nil {
		return nil, errNoContext
	}
	want := map[string]bool{}
	add := func(s string) {
		for _, t := range strings.FieldsFunc(s, func(r rune) bool {
			return r == ' ' || r == '\t' || r == '\n' || r == '\r'
		}) {
			want[t] = true
		}
	}
	if ns, ok := v.(NodeSet); ok {
		for _, n := range ns {
			add(StringValue(n))
		}
	} else {
		add(String(v))
	}
	return idLookup(rootOf(c.Node), want), nil
}

func idLookup(root *xmltree.Node, want map[string]bool) NodeSet {
	out := NodeSet{}
	if len(want) == 0 {
		return out
	}
	found := map[string]bool{}
	walkDescendants(root, func(n *xmltree.Node) bool {
		if n.Kind != xmltree.Element {
			return true
		}
		for _, a := range n.Attrs {
			if a.Local == "id" && (a.Space == "" || a.Space == xmlNS) {
				id := strings.Trim(a.Data, " \t\r\n")
				if want[id] && !found[id] {
					found[id] = true
					out = append(out, n)
					break
				}
			}
		}
		return len(found) < len(want)
	})
	return out
}
