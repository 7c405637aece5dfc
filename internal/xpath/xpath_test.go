package xpath

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/xmltree"
)

const testDoc = `<?xml version="1.0"?>
<doc xmlns:n="urn:n" xml:lang="en">
  <chapter id="c1" n:role="intro"><title>One</title>
    <para>p1</para><para>p2</para>
    <section><para>p3</para><para>p4</para></section>
  </chapter>
  <chapter id="c2"><title>Two</title>
    <para>p5</para>
    <!--note--><?pi data?>
    <n:para>p6</n:para>
  </chapter>
  <div>1</div><div>2</div><div>3</div>
  <num a="1" b="2.5" c="-3" d="x"/>
</doc>`

func mustParse(t testing.TB, s string) *xmltree.Node {
	t.Helper()
	doc, err := xmltree.Parse([]byte(s), xmltree.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

var testOpts = Options{Namespaces: func(p string) (string, bool) {
	if p == "n" {
		return "urn:n", true
	}
	return "", false
}}

func evalOn(t *testing.T, doc *xmltree.Node, src string) Value {
	t.Helper()
	e, err := Compile(src, testOpts)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	v, err := e.Eval(&Context{Node: doc, Position: 1, Size: 1})
	if err != nil {
		t.Fatalf("Eval(%q): %v", src, err)
	}
	return v
}

// show renders a value for comparison in tables: node-sets as their
// string values joined by commas.
func show(v Value) string {
	if ns, ok := v.(NodeSet); ok {
		var parts []string
		for _, n := range ns {
			parts = append(parts, StringValue(n))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return String(v)
}

func TestEval(t *testing.T) {
	t.Parallel()
	doc := mustParse(t, testDoc)
	tests := []struct{ expr, want string }{
		// Numbers and arithmetic (IEEE 754, §3.5).
		{"1 div 0", "Infinity"},
		{"-1 div 0", "-Infinity"},
		{"0 div 0", "NaN"},
		{"-0", "0"},
		{"1 div -0", "-Infinity"},
		{"1 div (0 * -1)", "-Infinity"},
		{"5 mod 2", "1"},
		{"5 mod -2", "1"},
		{"-5 mod 2", "-1"},
		{"-5 mod -2", "-1"},
		{"5.5 mod 2", "1.5"},
		{"1 mod 0", "NaN"},
		{"0.1 + 0.2", "0.30000000000000004"},
		{"1 div 3", "0.3333333333333333"},
		{"1000000 * 1000000 * 1000000 * 1000000", "1000000000000000000000000"},
		{"1 div 1000000000", "0.000000001"},
		{"- - 3", "3"},
		{"3 - -3", "6"},
		{"2+3*4", "14"},
		{"(2+3)*4", "20"},
		{"8 div 2 div 2", "2"},
		{".5 + 1.", "1.5"},
		// round, floor, ceiling (§4.4).
		{"round(-0.5)", "0"},
		{"1 div round(-0.5)", "-Infinity"},
		{"1 div round(-0.2)", "-Infinity"},
		{"1 div round(0.2)", "Infinity"},
		{"round(0.5)", "1"},
		{"round(2.5)", "3"},
		{"round(-2.5)", "-2"},
		{"round(-1.6)", "-2"},
		{"round(0.49999999999999994)", "0"},
		{"round(1 div 0)", "Infinity"},
		{"round(0 div 0)", "NaN"},
		{"floor(-1.5)", "-2"},
		{"ceiling(-1.5)", "-1"},
		{"1 div ceiling(-0.5)", "-Infinity"},
		// substring (§4.2) with the spec's examples.
		{`substring("12345", 2, 3)`, "234"},
		{`substring("12345", 2)`, "2345"},
		{`substring("12345", 1.5, 2.6)`, "234"},
		{`substring("12345", 0, 3)`, "12"},
		{`substring("12345", 0 div 0, 3)`, ""},
		{`substring("12345", 1, 0 div 0)`, ""},
		{`substring("12345", -42, 1 div 0)`, "12345"},
		{`substring("12345", -1 div 0, 1 div 0)`, ""},
		{`substring("12345", 5)`, "5"},
		{`substring("12345", 6)`, ""},
		{`substring("héllo", 2, 2)`, "él"},
		{`substring-before("1999/04/01", "/")`, "1999"},
		{`substring-after("1999/04/01", "/")`, "04/01"},
		{`substring-after("abc", "")`, "abc"},
		{`substring-before("abc", "")`, ""},
		{`substring-after("abc", "x")`, ""},
		{`translate("bar", "abc", "ABC")`, "BAr"},
		{`translate("--aaa--", "abc-", "ABC")`, "AAA"},
		{`translate("aba", "aa", "xy")`, "xbx"},
		{"normalize-space(\"  a \t b\n\nc  \")", "a b c"},
		{`string-length("héllo")`, "5"},
		{`concat("a", 1, true())`, "a1true"},
		{`starts-with("abc", "")`, "true"},
		{`contains("abc", "bc")`, "true"},
		// Conversions.
		{`number(" 12 ")`, "12"},
		{`number("-1.5")`, "-1.5"},
		{`number("+1")`, "NaN"},
		{`number("1e3")`, "NaN"},
		{`number("1.2.3")`, "NaN"},
		{`number("")`, "NaN"},
		{`number("-")`, "NaN"},
		{`number(".")`, "NaN"},
		{`number("- 1")`, "NaN"},
		{`number(true())`, "1"},
		{`boolean("false")`, "true"},
		{`boolean(0 div 0)`, "false"},
		{`boolean(-0)`, "false"},
		{`boolean(//nothing)`, "false"},
		{`string(1 = 1)`, "true"},
		// Comparisons (§3.4).
		{`"1" = 1`, "true"},
		{`"1.0" = "1"`, "false"},
		{`true() = "x"`, "true"},
		{`false() = ""`, "true"},
		{`0 div 0 = 0 div 0`, "false"},
		{`0 div 0 != 0 div 0`, "true"},
		{`1 < 2 < 3`, "true"},
		{`3 > 2 > 1`, "false"},
		{`"abc" < "abd"`, "false"},
		{`//div = 2`, "true"},
		{`//div != 2`, "true"},
		{`//div = "3"`, "true"},
		{`//div > 2`, "true"},
		{`//div > 3`, "false"},
		{`2 < //div`, "true"},
		{`3 < //div`, "false"},
		{`//div = //para`, "false"},
		{`//div != //para`, "true"},
		{`//div = //div`, "true"},
		{`//div < //div`, "true"},
		{`//nothing = //nothing`, "false"},
		{`//nothing != //nothing`, "false"},
		{`//nothing = ""`, "false"},
		{`//nothing != ""`, "false"},
		{`//nothing = false()`, "true"},
		{`//div = true()`, "true"},
		{`//div < true()`, "false"},
		{`//num/@* = -3`, "true"},
		{`//num/@* > 2`, "true"},
		{`//num/@d = "x"`, "true"},
		// Positions: //para[1] is every first para child; (//para)[1]
		// the first para of the document.
		{`//para[1]`, "{p1,p3,p5}"},
		{`(//para)[1]`, "{p1}"},
		{`//para[last()]`, "{p2,p4,p5}"},
		{`(//para)[last()]`, "{p5}"},
		{`//para[position() = 2]`, "{p2,p4}"},
		{`/descendant::para[3]`, "{p3}"},
		{`//chapter/descendant::para[1]`, "{p1,p5}"},
		{`//para[. = "p4"]/preceding::para[1]`, "{p3}"},
		{`//para[. = "p4"]/preceding::para[last()]`, "{p1}"},
		{`//para[. = "p4"]/ancestor::*[1]/@id`, "{}"},
		{`name(//para[. = "p4"]/ancestor::*[1])`, "section"},
		{`name(//para[. = "p4"]/ancestor::*[2])`, "chapter"},
		{`name(//para[. = "p4"]/ancestor::*[last()])`, "doc"},
		{`//para[. = "p5"]/preceding-sibling::*[1]`, "{Two}"},
		{`//para[. = "p2"]/preceding-sibling::para[1]`, "{p1}"},
		{`(//para[. = "p4"]/preceding::para)[1]`, "{p1}"},
		{`//div[2]/following-sibling::*[1]`, "{3}"},
		{`//div[2]/preceding-sibling::*[1]`, "{1}"},
		{`//div[3]/preceding-sibling::div`, "{1,2}"},
		{`//div[position() > 1][1]`, "{2}"},
		{`//div[1][position() = 1]`, "{1}"},
		{`//div[2.0]`, "{2}"},
		{`//div[1.5]`, "{}"},
		{`//div[0]`, "{}"},
		{`//div["x"]`, "{1,2,3}"},
		{`//div[last() - 1]`, "{2}"},
		{`//div[position() = last()]`, "{3}"},
		{`(//div | //para)[1]`, "{p1}"},
		// Unions are in document order, without duplicates.
		{`//div[3] | //div[1] | //div[1]`, "{1,3}"},
		{`//title | //chapter/para`, "{One,p1,p2,Two,p5}"},
		{`count(//para | //section/para)`, "5"},
		{`count(//* | //node())`, "41"},
		// Axes.
		{`count(//section/ancestor-or-self::*)`, "3"},
		{`count(//chapter[1]/descendant-or-self::para)`, "4"},
		{`count(//chapter[1]/following::*)`, "8"},
		{`count(//chapter[2]/preceding::*)`, "7"},
		{`count(/doc/chapter/para/..)`, "2"},
		{`count(//para/self::para)`, "5"},
		{`count(//@*)`, "8"},
		{`count(//chapter[1]/@*)`, "2"},
		{`name(//chapter[1]/@*[2])`, "n:role"},
		{`local-name(//chapter[1]/@*[2])`, "role"},
		{`namespace-uri(//chapter[1]/@*[2])`, "urn:n"},
		{`//n:para`, "{p6}"},
		{`count(//n:*)`, "1"},
		{`count(//@n:*)`, "1"},
		{`count(//chapter/node())`, "16"},
		{`count(//comment())`, "1"},
		{`//comment()`, "{note}"},
		{`//processing-instruction()`, "{data}"},
		{`count(//processing-instruction("pi"))`, "1"},
		{`count(//processing-instruction("other"))`, "0"},
		{`name(//processing-instruction())`, "pi"},
		{`count(//text()[normalize-space()])`, "11"},
		// The following axis of an attribute starts with its element's
		// children (XPath 1.0 §2.2; libxml2 differs).
		{`//chapter[1]/@id/following::*[1]`, "{One}"},
		{`count(//chapter[1]/@id/preceding::*)`, "0"},
		{`count(//chapter[1]/@id/following-sibling::node())`, "0"},
		{`count(//chapter[1]/@id/ancestor::*)`, "2"},
		{`count(//chapter[1]/@id/parent::chapter)`, "1"},
		// Functions of the context.
		{`count(//para[position() = last()])`, "3"},
		{`lang("en")`, "false"},
		{`count(//para[lang("en")])`, "5"},
		{`count(//para[lang("EN")])`, "5"},
		{`count(//para[lang("e")])`, "0"},
		{`name(id("c2"))`, "chapter"},
		{`count(id("c2 c1 nothing c1"))`, "2"},
		{`id("  c1 ")/title`, "{One}"},
		{`id(//chapter/@id)/title`, "{One,Two}"},
		{`sum(//div)`, "6"},
		{`sum(//num/@*)`, "NaN"},
		{`sum(//nothing)`, "0"},
		{`count(//para[string()])`, "5"},
		{`string(//num/@b * 2)`, "5"},
		// §3.7: operator names, * and node types used as names.
		{`count(//div[. = 2] | //div[. = 1])`, "2"},
		{`count(/doc/div)`, "3"},
		{`count(doc/div)`, "3"}, {`count(div)`, "0"},
		{`count(//*[self::div or self::num])`, "4"},
		{`2*3`, "6"},
		{`count(//div[1]/*)`, "0"},
	}
	for _, tt := range tests {
		got := show(evalOn(t, doc, tt.expr))
		if got != tt.want {
			t.Errorf("%s = %s, want %s", tt.expr, got, tt.want)
		}
	}
}

// TestNameDisambiguation covers §3.7: names that are operators, node
// types and axes, used as element names.
func TestNameDisambiguation(t *testing.T) {
	t.Parallel()
	doc := mustParse(t, `<div><div>3</div><mod>2</mod><and>1</and><text>t</text><node>n</node><child>c</child><or/></div>`)
	tests := []struct{ expr, want string }{
		{`div div div`, "NaN"},
		{`div/div div div/div`, "1"},
		{`div/mod mod div/mod`, "0"},
		{`div/and and div/and`, "true"},
		{`count(div/text)`, "1"},
		{`count(div/text())`, "0"},
		{`div/node`, "{n}"},
		{`count(div/node())`, "7"},
		{`div/child`, "{c}"},
		{`div/child::child`, "{c}"},
		{`count(div/or)`, "1"},
		{`count(div/*)`, "7"},
		{`div/div * 2`, "6"},
		{`count(div/*) * count(div/*)`, "49"},
		{`div/div*2`, "6"},
	}
	for _, tt := range tests {
		if got := show(evalOn(t, doc, tt.expr)); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.expr, got, tt.want)
		}
	}
}

func TestNumberToString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-1, "-1"}, {1.5, "1.5"}, {-0.25, "-0.25"},
		{math.NaN(), "NaN"}, {math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"},
		{1e21, "1000000000000000000000"}, {1e-7, "0.0000001"}, {123456789012, "123456789012"},
		{0.1, "0.1"}, {1.0 / 3, "0.3333333333333333"}, {1e300 * 10, "1" + strings.Repeat("0", 301)},
		{1 << 62, "4611686018427388000"}, {-(1 << 53), "-9007199254740992"}, {1 << 63, "9223372036854776000"},
	}
	for _, tt := range tests {
		if got := NumberToString(tt.f); got != tt.want {
			t.Errorf("NumberToString(%v) = %q, want %q", tt.f, got, tt.want)
		}
	}
}

func TestConversions(t *testing.T) {
	t.Parallel()
	doc := mustParse(t, `<a>  42 <b>x</b></a>`)
	ns := NodeSet{doc.Root()}
	if got := String(ns); got != "  42 x" {
		t.Errorf("String = %q", got)
	}
	if got := Number(NodeSet{doc.Root().Children[0]}); got != 42 {
		t.Errorf("Number = %v", got)
	}
	if !math.IsNaN(Number(ns)) || !math.IsNaN(Number(NodeSet{})) {
		t.Errorf("Number of non-numeric node-sets is not NaN")
	}
	if String(NodeSet{}) != "" || Boolean(NodeSet{}) || !Boolean(ns) || Boolean("") || !Boolean("0") {
		t.Errorf("conversions of empty values are wrong")
	}
	if String(3.0) != "3" || String(true) != "true" || Number("  -7 ") != -7 || Number(false) != 0 {
		t.Errorf("simple conversions are wrong")
	}
}

func TestSyntaxErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr   string
		offset int
		msg    string
	}{
		{"", 0, "expected an expression"},
		{"1 +", 3, "expected an expression"},
		{"foo(", 4, "expected an expression"},
		{"//", 2, "expected a node test"},
		{"a[1", 3, "expected ']'"},
		{"(1", 2, "expected ')'"},
		{"'abc", 0, "unterminated string literal"},
		{"a b", 2, `expected an operator, found "b"`},
		{"namespace::*", 0, "the namespace axis is not supported"},
		{"foo::a", 0, `unknown axis "foo"`},
		{"p:a", 0, `the namespace prefix "p" is not declared`},
		{"$p:v", 0, `the namespace prefix "p" is not declared`},
		{"count()", 0, "count() takes 1 argument, not 0"},
		{"concat('a')", 0, "at least 2 arguments"},
		{"count(1)", 6, "must be a node-set"},
		{"1/a", 0, "must be a node-set"},
		{"'a'[1]", 0, "must be a node-set"},
		{"1 | a", 0, "must be a node-set"},
		{"a!b", 1, "'!' must be followed by '='"},
		{"1e3", 1, `expected an operator, found "e3"`},
		{"a/", 2, "expected a node test"},
		{"@", 1, "expected a node test"},
		{"a::", 0, `unknown axis "a"`},
		{"child::", 7, "expected a node test"},
		{"processing-instruction(1)", 23, "expected ')'"},
		{"1 2", 2, "unexpected the number 2 after a complete expression"},
		{"$", 0, "'$' must be followed by a variable name"},
		{"#", 0, "unexpected character"},
		{"a:", 1, "unexpected ':'"}, {"a:1", 2, "must be followed by a local name"},
		{"f(a,)", 4, "expected an expression"},
		{"a[]", 2, "expected an expression"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.expr, testOpts)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Compile(%q) = %v, want a SyntaxError", tt.expr, err)
			continue
		}
		if se.Offset != tt.offset || !strings.Contains(se.Msg, tt.msg) {
			t.Errorf("Compile(%q): offset %d %q, want offset %d %q", tt.expr, se.Offset, se.Msg, tt.offset, tt.msg)
		}
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	if _, err := Compile(strings.Repeat("(", 201)+"1"+strings.Repeat(")", 201), Options{}); err == nil || !strings.Contains(err.Error(), "nested more than 200") {
		t.Errorf("deep nesting: %v", err)
	}
	if _, err := Compile(strings.Repeat("(", 150)+"1"+strings.Repeat(")", 150), Options{}); err != nil {
		t.Errorf("150 levels: %v", err)
	}
	if _, err := Compile(strings.Repeat("-", 300)+"1", Options{}); err == nil {
		t.Errorf("300 unary minus accepted")
	}
	if _, err := Compile(strings.Repeat("a[", 300)+"1"+strings.Repeat("]", 300), Options{}); err == nil {
		t.Errorf("300 nested predicates accepted")
	}
	long := "1" + strings.Repeat("+1", 5000)
	if _, err := Compile(long, Options{}); err == nil || !strings.Contains(err.Error(), "longer than 10000") {
		t.Errorf("long expression: %v", err)
	}
	if e, err := Compile("1"+strings.Repeat("+1", 4000), Options{}); err != nil {
		t.Errorf("a long flat sum: %v", err)
	} else if v, _ := e.Eval(nil); v != 4001.0 {
		t.Errorf("a long flat sum = %v", v)
	}
}

// env is a test Env with a map of variables and functions.
type env struct {
	vars  map[string]Value
	funcs map[string]Func
}

func (e *env) Variable(space, local string) (Value, bool) {
	v, ok := e.vars[space+"|"+local]
	return v, ok
}

func (e *env) Function(space, local string) (Func, bool) {
	f, ok := e.funcs[space+"|"+local]
	return f, ok
}

func TestEnv(t *testing.T) {
	t.Parallel()
	doc := mustParse(t, testDoc)
	divs := evalOn(t, doc, "//div").(NodeSet)
	en := &env{
		vars: map[string]Value{
			"|x":      2.0,
			"urn:n|s": "hello",
			"|divs":   NodeSet{divs[0], divs[2]},
			"|bad":    struct{}{},
		},
		funcs: map[string]Func{
			"|current": func(c *Context, args []Value) (Value, error) { return NodeSet{c.Node}, nil },
			"urn:n|twice": func(c *Context, args []Value) (Value, error) {
				return Number(args[0]) * 2, nil
			},
			"|fail": func(*Context, []Value) (Value, error) { return nil, errors.New("boom") },
			"|unordered": func(*Context, []Value) (Value, error) {
				return NodeSet{divs[2], divs[0], divs[2]}, nil // out of order, duplicated
			},
			"|nodes":    func(*Context, []Value) (Value, error) { return []*xmltree.Node{divs[1]}, nil },
			"|one-node": func(*Context, []Value) (Value, error) { return divs[1], nil },
			"|int":      func(*Context, []Value) (Value, error) { return 7, nil },
		},
	}
	eval := func(src string, opts Options) (Value, error) {
		e, err := Compile(src, opts)
		if err != nil {
			return nil, err
		}
		return e.Eval(&Context{Node: doc, Position: 1, Size: 1, Env: en})
	}
	tests := []struct{ expr, want string }{
		{"$x * 3", "6"},
		{"$n:s", "hello"},
		{"$divs", "{1,3}"},
		{"$divs[1]", "{1}"},
		{"$divs[last()]", "{3}"},
		{"$divs/following-sibling::*[1]", "{2,<num>}"},
		{"n:twice($x)", "4"},
		{"count(current())", "1"},
		{"//div[. = $x]", "{2}"},
		{"//div[n:twice(.) = 6]", "{3}"},
		{"(//div)[$x]", "{2}"},
		{"unordered()", "{1,3}"},
		{"unordered()[2]", "{3}"},
		{"nodes()", "{2}"},
		{"one-node()", "{2}"}, {"count(node())", "1"},
		{"one-node() | nodes()", "{2}"},
		{"int() + 1", "8"},
		{"count(//div[position() = last()])", "1"},
		{"//div[$x]", "{2}"},
	}
	for _, tt := range tests {
		v, err := eval(tt.expr, testOpts)
		if err != nil {
			t.Errorf("%s: %v", tt.expr, err)
			continue
		}
		got := show(v)
		got = strings.Replace(got, ",}", ",<num>}", 1)
		if got != tt.want {
			t.Errorf("%s = %s, want %s", tt.expr, got, tt.want)
		}
	}
	for _, tt := range []struct{ expr, err string }{
		{"$nothing", "the variable $nothing is not defined"},
		{"$bad", "not an XPath value"},
		{"nothing()", "unknown function nothing()"},
		{"fail()", "fail(): boom"},
		{"$x/a", "must be a node-set, not a number"},
		{"$x[1]", "must be a node-set, not a number"},
		{"count($x)", "must be a node-set"},
		{"$x | //a", "must be a node-set"},
	} {
		_, err := eval(tt.expr, testOpts)
		var ee *EvalError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want an EvalError with %q", tt.expr, err, tt.err)
		}
	}
	var ee *EvalError
	if _, err := eval("fail()", testOpts); !errors.As(err, &ee) || ee.Err == nil || !strings.Contains(errors.Unwrap(ee.Err).Error(), "boom") {
		t.Errorf("the Func's error is not wrapped: %v", err)
	}
	strict := testOpts
	strict.HasFunction = func(space, local string) bool { return space == "" && local == "current" }
	if _, err := Compile("nothing()", strict); err == nil || !strings.Contains(err.Error(), "unknown function nothing()") {
		t.Errorf("HasFunction: %v", err)
	}
	if _, err := Compile("current()", strict); err != nil {
		t.Errorf("HasFunction: %v", err)
	}
	if _, err := Compile("count(//a)", strict); err != nil {
		t.Errorf("core functions need no HasFunction: %v", err)
	}
}

func TestNoContext(t *testing.T) {
	t.Parallel()
	v, err := MustCompile("1 + 2", Options{}).Eval(nil)
	if err != nil || v != 3.0 {
		t.Errorf("1 + 2 = %v, %v", v, err)
	}
	if _, err := MustCompile("a", Options{}).Eval(&Context{}); err == nil {
		t.Errorf("a path without a context node did not fail")
	}
}

func TestMustCompilePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Errorf("MustCompile did not panic")
		}
	}()
	MustCompile("(", Options{})
}

func TestString(t *testing.T) {
	t.Parallel()
	if s := MustCompile(" a | b ", Options{}).String(); s != " a | b " {
		t.Errorf("String() = %q", s)
	}
}

// TestSortAcrossTrees checks document order within a tree and a stable
// order between trees.
func TestSortAcrossTrees(t *testing.T) {
	t.Parallel()
	a := mustParse(t, `<a><x/><y/></a>`)
	b := mustParse(t, `<b><x/><y/></b>`)
	ax, ay := a.Root().Children[0], a.Root().Children[1]
	bx, by := b.Root().Children[0], b.Root().Children[1]
	first := Sort(NodeSet{by, ay, bx, ax, ay})
	if len(first) != 4 {
		t.Fatalf("Sort kept %d nodes", len(first))
	}
	if first[0].Parent != first[1].Parent || first[2].Parent != first[3].Parent ||
		first[0].Order > first[1].Order || first[2].Order > first[3].Order {
		t.Errorf("Sort did not keep trees together in document order")
	}
	again := Sort(NodeSet{ax, bx, ay, by})
	for i := range again {
		if again[i] != first[i] {
			t.Errorf("the order between trees changed")
		}
	}
	in := NodeSet{ay, ax}
	Sort(in)
	if in[0] != ay {
		t.Errorf("Sort modified its argument")
	}
	sorted := NodeSet{ax, ay}
	if out := Sort(sorted); &out[0] != &sorted[0] {
		t.Errorf("Sort copied a sorted set")
	}
	// A union of node-sets of two trees, through variables.
	en := &env{vars: map[string]Value{"|a": NodeSet{ax, ay}, "|b": NodeSet{bx, by}}}
	v, err := MustCompile("$b | $a", Options{}).Eval(&Context{Env: en})
	if err != nil || len(v.(NodeSet)) != 4 {
		t.Fatalf("union across trees: %v %v", v, err)
	}
	for i, n := range v.(NodeSet) {
		if n != first[i] {
			t.Errorf("union across trees is not in the order of Sort")
		}
	}
}

// TestHandBuiltTree evaluates over a tree built in code, as XSLT builds
// result tree fragments.
func TestHandBuiltTree(t *testing.T) {
	t.Parallel()
	root := &xmltree.Node{Kind: xmltree.Document}
	el := &xmltree.Node{Kind: xmltree.Element, Local: "r", Parent: root, Order: 1}
	at := &xmltree.Node{Kind: xmltree.Attribute, Local: "k", Data: "v", Parent: el, Order: 2}
	tx := &xmltree.Node{Kind: xmltree.Text, Data: "hi", Parent: el, Order: 3}
	el.Attrs = []*xmltree.Node{at}
	el.Children = []*xmltree.Node{tx}
	root.Children = []*xmltree.Node{el}
	for expr, want := range map[string]string{
		"string(/r/@k)": "v", "string(/)": "hi", "count(//node())": "2", "name(text()/..)": "",
		"string(r/text()/preceding::node())": "", "count(r/@k/following::node())": "1",
	} {
		if got := show(evalOn(t, root, expr)); got != want {
			t.Errorf("%s = %s, want %s", expr, got, want)
		}
	}
}

func TestConcurrentEval(t *testing.T) {
	t.Parallel()
	doc := mustParse(t, testDoc)
	exprs := []*Expr{
		MustCompile("count(//para[position() > 1])", testOpts),
		MustCompile("string((//para)[last()])", testOpts),
		MustCompile("sum(//div) + count(//@*)", testOpts),
		MustCompile("//chapter[para = 'p5']/title", testOpts),
	}
	want := make([]string, len(exprs))
	for i, e := range exprs {
		v, err := e.Eval(&Context{Node: doc, Position: 1, Size: 1})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = show(v)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				e := exprs[i%len(exprs)]
				v, err := e.Eval(&Context{Node: doc, Position: 1, Size: 1})
				if err != nil || show(v) != want[i%len(exprs)] {
					errs <- fmt.Errorf("%s = %v, %v", e, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
