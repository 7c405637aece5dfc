package xpath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzDoc is the document FuzzCompile evaluates on: small, so that even a
// nested expression stays quick.
const fuzzSmallDoc = `<r xmlns:x="urn:x"><a n="1">t<b/></a><x:a n="2"/><!--c--></r>`

// FuzzCompile compiles any string: no panic, and an error is a
// *SyntaxError; what compiles is evaluated (when it is small enough to be
// quick) without a panic, and errors are *EvalError.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"", "/", "//", "//a[1]", "(//a)[last()]", "a | b", "1 div 0", "-0", "-(-(1))", "$x", "$p:x",
		"f(1, 'a', $v)", "x:f()", "count(//x:a/@n)", "substring('12345', 1.5, 2.6)", "div div div",
		"* * *", "a/*/ * * 2", "processing-instruction('p')", "node()/text()", "namespace::*",
		"ancestor-or-self::node()[2]", "@*[. = 1]", "'unterminated", `"x" = 'y'`, "1 < 2 <= 3 > 4 >= 5 != 6",
		"a[", "a]", "::", "a::b", "child::", ".5", "5.", "..", "...", "a!=b", "a!b", "$", "@", "1e3",
		strings.Repeat("(", 250) + "1" + strings.Repeat(")", 250), "x:*", "x:", ":a", "\u00e9l\u00e8ve", "a\x00b",
	} {
		f.Add(s)
	}
	doc := mustParse(f, fuzzSmallDoc)
	opts := Options{Namespaces: func(p string) (string, bool) { return "urn:x", p == "x" || p == "p" }}
	en := &env{vars: map[string]Value{"|x": 1.0, "urn:x|x": "s", "|v": NodeSet{doc.Root()}}}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Compile(src, opts)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Compile(%q) returned %T, not a *SyntaxError: %v", src, err, err)
			}
			if se.Offset < 0 || se.Offset > len(src) {
				t.Fatalf("Compile(%q): offset %d out of range", src, se.Offset)
			}
			return
		}
		if e.String() != src {
			t.Fatalf("String() = %q, want %q", e.String(), src)
		}
		// Nested predicates multiply: evaluate only modest expressions.
		if strings.Count(src, "[")+strings.Count(src, "(") > 4 || len(src) > 200 {
			return
		}
		v, err := e.Eval(&Context{Node: doc, Position: 1, Size: 1, Env: en})
		if err != nil {
			var ee *EvalError
			if !errors.As(err, &ee) {
				t.Fatalf("Eval(%q) returned %T, not an *EvalError: %v", src, err, err)
			}
			return
		}
		switch x := v.(type) {
		case NodeSet:
			for i := 1; i < len(x); i++ {
				if x[i].Order <= x[i-1].Order {
					t.Fatalf("Eval(%q): node-set not in document order", src)
				}
			}
		case string, float64, bool:
		default:
			t.Fatalf("Eval(%q) = %T", src, v)
		}
	})
}

// fuzzDiffDoc is the document of FuzzEvalDifferential: namespaces,
// attributes, mixed content, a comment and a PI, xml:lang and xml:id, no
// attribute named id, no minus sign in the text (a lone "-" is a number
// to libxml2; see the known divergences in libxml2_test.go).
const fuzzDiffDoc = `<?xml version="1.0"?>
<r xmlns:x="urn:x" xml:lang="en">
 <a n="1" x:t="u">one<b>2</b><b n="3">three</b></a>
 <x:a n="2.5" xml:id="k1"><c/><!--c1--><?p d?>tail</x:a>
 <a n="07" xml:lang="fr"><b>4</b>  <c>x y</c><b n="x"/></a>
 <c n="10">Metal 10</c>
</r>`

// exprGen turns fuzz bytes into an expression by choices in a typed XPath
// grammar. Typed, so that no number with a fraction is turned into a
// string (libxml2 writes those with other digits); following and preceding
// are not used where the context may be an attribute (see libxml2_test.go).
type exprGen struct {
	data  []byte
	i     int
	depth int
}

func (g *exprGen) pick(n int) int {
	if g.i >= len(g.data) {
		return 0
	}
	b := g.data[g.i]
	g.i++
	return int(b) % n
}

func (g *exprGen) oneOf(opts ...string) string { return opts[g.pick(len(opts))] }

func (g *exprGen) deep() bool { return g.depth >= 4 }

// nodeSet makes a node-set expression; attr: the context may be an
// attribute; pred: inside a predicate (position() and last() exist).
func (g *exprGen) nodeSet(attr, pred bool) string {
	g.depth++
	defer func() { g.depth-- }()
	if g.deep() {
		return g.oneOf("//b", "/r/a", "//@n", "//c")
	}
	switch g.pick(8) {
	case 0, 1:
		s, _ := g.steps(attr, pred)
		return s
	case 2:
		s, _ := g.steps(false, pred)
		return "/" + s
	case 3:
		s, _ := g.stepsFrom(false, pred, true)
		return "//" + s
	case 4:
		return g.nodeSet(attr, pred) + " | " + g.nodeSet(attr, pred)
	case 5:
		return "(" + g.nodeSet(attr, pred) + ")[" + g.predicate(true) + "]"
	case 6:
		return "id(" + g.oneOf("'k1'", "'k1 k2'", "'nope'", "//@n", "//x:a/@xml:id") + ")"
	}
	return "/"
}

var fuzzAxes = []string{"child", "descendant", "descendant-or-self", "parent", "ancestor", "ancestor-or-self",
	"following-sibling", "preceding-sibling", "following", "preceding", "attribute", "self"}

func (g *exprGen) steps(attr, pred bool) (string, bool) { return g.stepsFrom(attr, pred, false) }

// stepsFrom makes a relative location path; multi: its first step starts
// from several nodes (after //).
func (g *exprGen) stepsFrom(attr, pred, multi bool) (string, bool) {
	var b strings.Builder
	n := 1 + g.pick(3)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(g.oneOf("/", "/", "//"))
		}
		var s string
		s, attr = g.step(attr, multi || i > 0)
		b.WriteString(s)
	}
	return b.String(), attr
}

// step makes one step; it reports whether its nodes may be attributes.
// multi: the step may start from several nodes, where libxml2 can leave
// the results of the sibling, following and preceding axes, and of steps
// with positional predicates, out of document order (see
// libxml2_test.go): descendant-or-self takes the place of those axes, and
// predicates do not use positions.
func (g *exprGen) step(attr, multi bool) (string, bool) {
	var s string
	outAttr := false
	switch g.pick(6) {
	case 0:
		return ".", attr
	case 1:
		return "..", false
	case 2:
		s = "@" + g.oneOf("n", "x:t", "*", "xml:lang", "nope")
		outAttr = true
	default:
		ax := fuzzAxes[g.pick(len(fuzzAxes))]
		if attr && (ax == "following" || ax == "preceding") {
			ax = "ancestor"
		}
		if multi && (strings.HasPrefix(ax, "following") || strings.HasPrefix(ax, "preceding")) {
			ax = "descendant-or-self"
		}
		switch ax {
		case "attribute":
			outAttr = true
		case "self", "descendant-or-self", "ancestor-or-self":
			outAttr = attr
		}
		s = ax + "::" + g.oneOf("a", "b", "c", "r", "x:a", "n", "*", "x:*", "node()", "text()", "comment()",
			"processing-instruction()", "processing-instruction('p')", "nope")
	}
	for k := g.pick(3); k > 0 && !g.deep(); k-- {
		if multi {
			// libxml2 also loses document order with positional
			// predicates on steps from several nodes.
			s += "[" + g.oneOf(g.boolean(outAttr, false), g.nodeSet(outAttr, false)) + "]"
			continue
		}
		s += "[" + g.predicateFor(outAttr) + "]"
	}
	return s, outAttr
}

func (g *exprGen) predicate(attr bool) string { return g.predicateFor(attr) }

func (g *exprGen) predicateFor(attr bool) string {
	g.depth++
	defer func() { g.depth-- }()
	switch g.pick(6) {
	case 0:
		return g.oneOf("1", "2", "3", "last()", "last() - 1", "0", "1.5")
	case 1:
		return g.number(attr, true)
	case 2:
		return g.nodeSet(attr, true)
	case 3:
		return "position() " + g.oneOf("=", "!=", "<", ">", "<=", ">=") + " " + g.oneOf("1", "2", "last()")
	}
	return g.boolean(attr, true)
}

// intNumber makes a number expression whose value is an integer (or NaN,
// or infinite), so that converting it to a string is the same in both.
func (g *exprGen) intNumber(attr, pred bool) string {
	if pred && g.pick(3) == 0 {
		return g.oneOf("position()", "last()")
	}
	switch g.pick(4) {
	case 0:
		return "count(" + g.nodeSet(attr, pred) + ")"
	case 1:
		return "string-length(" + g.str(attr, pred) + ")"
	case 2:
		return g.oneOf("round", "floor", "ceiling") + "(" + g.oneOf("1.5", "-0.5", "2", "0 div 0", "1 div 0", "-2.5") + ")"
	}
	return g.oneOf("0", "1", "7", "-3")
}

func (g *exprGen) number(attr, pred bool) string {
	g.depth++
	defer func() { g.depth-- }()
	if g.deep() {
		return g.oneOf("1", "2.5", "count(//b)", "-1")
	}
	switch g.pick(9) {
	case 0:
		return g.oneOf("0", "1", "2", "3", "0.5", "1.5", "10", "100", ".25")
	case 1:
		return g.intNumber(attr, pred)
	case 2:
		return "sum(" + g.nodeSet(attr, pred) + ")"
	case 3:
		return "number(" + g.oneOf(g.str(attr, pred), g.nodeSet(attr, pred)) + ")"
	case 4:
		return g.number(attr, pred) + " " + g.oneOf("+", "-", "*", "div", "mod") + " " + g.number(attr, pred)
	case 5:
		return "-" + g.number(attr, pred)
	case 6:
		return g.oneOf("round", "floor", "ceiling") + "(" + g.number(attr, pred) + ")"
	case 7:
		return "(" + g.number(attr, pred) + ")"
	}
	return g.nodeSet(attr, pred) + " * 1"
}

func (g *exprGen) str(attr, pred bool) string {
	g.depth++
	defer func() { g.depth-- }()
	if g.deep() {
		return g.oneOf("'a'", "''", "string(//c)", "name(/*)")
	}
	switch g.pick(12) {
	case 0:
		return g.oneOf("''", "'a'", "'one'", "' x  y '", "'Metal 10'", "'2'", "'k1'", "'en'", "'FR'", "'abc'", "'b'")
	case 1:
		return "string(" + g.nodeSet(attr, pred) + ")"
	case 2:
		return g.oneOf("name", "local-name", "namespace-uri") + "(" + g.nodeSet(attr, pred) + ")"
	case 3:
		return "concat(" + g.str(attr, pred) + ", " + g.str(attr, pred) + ", " + g.intNumber(attr, pred) + ")"
	case 4:
		s := "substring(" + g.str(attr, pred) + ", " + g.number(attr, pred)
		if g.pick(2) == 0 {
			s += ", " + g.number(attr, pred)
		}
		return s + ")"
	case 5:
		return g.oneOf("substring-before", "substring-after") + "(" + g.str(attr, pred) + ", " + g.str(attr, pred) + ")"
	case 6:
		return "translate(" + g.str(attr, pred) + ", " + g.oneOf("'abc'", "'ne'", "' '", "''") + ", " + g.oneOf("'ABC'", "'x'", "''") + ")"
	case 7:
		return "normalize-space(" + g.str(attr, pred) + ")"
	case 8:
		if pred {
			return g.oneOf("string()", "name()", "normalize-space()", "local-name()")
		}
		return "string(" + g.intNumber(attr, pred) + ")"
	case 9:
		return "string(" + g.boolean(attr, pred) + ")"
	}
	return g.nodeSet(attr, pred)
}

func (g *exprGen) boolean(attr, pred bool) string {
	g.depth++
	defer func() { g.depth-- }()
	if g.deep() {
		return g.oneOf("true()", "false()", "boolean(//b)")
	}
	operand := func() string {
		switch g.pick(4) {
		case 0:
			return g.nodeSet(attr, pred)
		case 1:
			return g.number(attr, pred)
		case 2:
			return g.str(attr, pred)
		}
		return g.oneOf("true()", "false()")
	}
	switch g.pick(8) {
	case 0, 1, 2:
		return operand() + " " + g.oneOf("=", "!=", "<", "<=", ">", ">=") + " " + operand()
	case 3:
		return g.boolean(attr, pred) + " " + g.oneOf("and", "or") + " " + g.boolean(attr, pred)
	case 4:
		return "not(" + operand() + ")"
	case 5:
		return g.oneOf("contains", "starts-with") + "(" + g.str(attr, pred) + ", " + g.str(attr, pred) + ")"
	case 6:
		if pred {
			return "lang(" + g.oneOf("'en'", "'fr'", "'EN'", "''", "'e'") + ")"
		}
		return "boolean(" + operand() + ")"
	}
	return "boolean(" + operand() + ")"
}

// generate makes the expression for data: a node-set, number, string or
// boolean at the top.
func generateExpr(data []byte) string {
	g := &exprGen{data: data}
	switch g.pick(4) {
	case 0:
		return g.number(false, false)
	case 1:
		return g.str(false, false)
	case 2:
		return g.boolean(false, false)
	}
	return g.nodeSet(false, false)
}

// FuzzEvalDifferential draws an expression from a grammar (see exprGen)
// and compares its value on a fixed document with libxml2's, as
// TestDifferentialLibxml2 does.
func FuzzEvalDifferential(f *testing.F) {
	xmllint := xmllintPath(f)
	for _, seed := range []string{
		"\x03\x00\x00\x05", "\x03\x03\x01\x02\x04", "\x00\x02\x01\x03", "\x01\x03\x04\x02\x05\x03",
		"\x02\x00\x00\x01\x02\x03\x04\x05\x06", "\x03\x05\x00\x01\x03\x02\x01\x00\x04",
		"\x03\x04\x00\x03\x08\x02\x00\x03\x09\x05\x02", "\x01\x04\x01\x03\x0a\x0b\x02",
		"\x00\x04\x02\x01\x05\x00\x09\x02", "\x02\x06\x01\x00\x00\x01", "\x03\x06\x03", "\x03\x01\x05\x0b\x02\x01",
		"hello, fuzzer", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4",
	} {
		f.Add([]byte(seed))
	}
	file := filepath.Join(f.TempDir(), "doc.xml")
	if err := os.WriteFile(file, []byte(fuzzDiffDoc), 0o600); err != nil {
		f.Fatal(err)
	}
	doc := mustParse(f, fuzzDiffDoc)
	ns := map[string]string{"x": "urn:x"}
	eval := evaluator(doc, nsOptions(ns))
	f.Fuzz(func(t *testing.T, data []byte) {
		expr := generateExpr(data)
		if len("string()")+len(expr) > maxCheckLen {
			return // too long for xmllint's shell once wrapped
		}
		diffs, _, err := compareWithLibxml2(xmllint, file, ns, []diffCase{{label: expr, expr: expr}}, eval)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		for _, d := range diffs {
			t.Errorf("%s\n  check:   %s\n  ours:    %q\n  libxml2: %q", d.label, d.expr, d.ours, d.theirs)
		}
	})
}
