package xpath

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/xmltree"
)

const patternDoc = `<?xml version="1.0"?>
<order xmlns:p="urn:p" xml:id="o1">
  <item sku="a" p:flag="1"><name>A</name><qty>1</qty></item>
  <item sku="b"><name>B</name><qty>5</qty></item>
  <p:item sku="c"><name>C</name></p:item>
  <notes><item sku="d"/><!--c--><?pi x?>text</notes>
</order>`

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	doc := mustParse(t, patternDoc)
	opts := Options{Namespaces: func(p string) (string, bool) { return "urn:p", p == "p" }}
	keyEnv := &env{funcs: map[string]Func{
		"|key": func(c *Context, args []Value) (Value, error) {
			if String(args[0]) != "by-sku" {
				return nil, errors.New("no such key")
			}
			v, err := MustCompile("//*[@sku = '"+String(args[1])+"']", Options{}).Eval(&Context{Node: c.Node})
			return v, err
		},
	}, vars: map[string]Value{"|n": 2.0}}
	all := evalOn(t, doc, "//node() | //@* | /").(NodeSet)
	tests := []struct {
		pattern string
		want    string // the matching nodes, described by describeNode, in document order
	}{
		{"/", "/"},
		{"item", "item[a] item[b] item[d]"},
		{"order/item", "item[a] item[b]"},
		{"/order/item", "item[a] item[b]"},
		{"//item", "item[a] item[b] item[d]"},
		{"order//item", "item[a] item[b] item[d]"},
		{"/order//name", "name[A] name[B] name[C]"},
		{"/item", ""},
		{"item[1]", "item[a] item[d]"},
		{"item[2]", "item[b]"},
		{"item[last()]", "item[b] item[d]"},
		{"item[$n]", "item[b]"},
		{"item[qty > 2]", "item[b]"},
		{"*[@sku][2]", "item[b]"},
		{"p:item", "p:item[c]"},
		{"p:*", "p:item[c]"},
		{"*", "order item[a] name[A] qty[1] item[b] name[B] qty[5] p:item[c] name[C] notes item[d]"},
		{"@sku", "@sku=a @sku=b @sku=c @sku=d"},
		{"@*", "@xml:id=o1 @sku=a @p:flag=1 @sku=b @sku=c @sku=d"},
		{"@p:*", "@p:flag=1"},
		{"item/@sku", "@sku=a @sku=b @sku=d"},
		{"attribute::sku[. = 'b']", "@sku=b"},
		{"@sku[2]", ""},
		{"@*[2]", "@p:flag=1"},
		{"@*[last()]", "@xml:id=o1 @p:flag=1 @sku=b @sku=c @sku=d"},
		{"*[@*]/@*[1]", "@xml:id=o1 @sku=a @sku=b @sku=c @sku=d"},
		{"*//*", "item[a] name[A] qty[1] item[b] name[B] qty[5] p:item[c] name[C] notes item[d]"},
		{"child::name", "name[A] name[B] name[C]"},
		{"text()", "A 1 B 5 C text[text]"},
		{"comment()", "comment[c]"},
		{"processing-instruction()", "pi[pi]"},
		{"processing-instruction('pi')", "pi[pi]"},
		{"processing-instruction('other')", ""},
		{"notes/node()", "item[d] comment[c] pi[pi] text[text]"},
		{"item | name", "item[a] name[A] item[b] name[B] name[C] item[d]"},
		{"id('o1')", "order"},
		{"id('o1')/item", "item[a] item[b]"},
		{"id('o1')//item", "item[a] item[b] item[d]"},
		{"key('by-sku', 'b')", "item[b]"},
		{"key('by-sku', 'c')/name", "name[C]"},
		{"key('by-sku', 'c')//name", "name[C]"},
		{"item[name = 'B']/qty", "qty[5]"},
		{"order/*[2]/name", "name[B]"},
		{"node()", "order item[a] name[A] A qty[1] 1 item[b] name[B] B qty[5] 5 p:item[c] name[C] C notes item[d] comment[c] pi[pi] text[text]"},
	}
	for _, tt := range tests {
		p, err := CompilePattern(tt.pattern, opts)
		if err != nil {
			t.Errorf("CompilePattern(%q): %v", tt.pattern, err)
			continue
		}
		var got []string
		for _, n := range all {
			ok, err := p.Match(n, keyEnv)
			if err != nil {
				t.Errorf("%s: Match(%s): %v", tt.pattern, describeNode(n), err)
				break
			}
			if ok {
				got = append(got, describeNode(n))
			}
		}
		// Whitespace text nodes are left out of the description.
		var kept []string
		for _, g := range got {
			if g != "ws" {
				kept = append(kept, g)
			}
		}
		if s := strings.Join(kept, " "); s != tt.want {
			t.Errorf("%s matches\n  %s\nwant\n  %s", tt.pattern, s, tt.want)
		}
	}
}

func describeNode(n *xmltree.Node) string {
	switch n.Kind {
	case xmltree.Document:
		return "/"
	case xmltree.Attribute:
		return "@" + n.Name() + "=" + n.Data
	case xmltree.Text:
		if strings.TrimSpace(n.Data) == "" {
			return "ws"
		}
		if n.Parent.Local == "notes" {
			return "text[" + n.Data + "]"
		}
		return n.Data
	case xmltree.Comment:
		return "comment[" + n.Data + "]"
	case xmltree.ProcInst:
		return "pi[" + n.Local + "]"
	}
	if sku, ok := n.Attr("", "sku"); ok {
		return n.Name() + "[" + sku + "]"
	}
	if len(n.Children) == 1 && n.Children[0].Kind == xmltree.Text {
		return n.Name() + "[" + n.Children[0].Data + "]"
	}
	return n.Name()
}

func TestPatternPriority(t *testing.T) {
	t.Parallel()
	opts := Options{Namespaces: func(p string) (string, bool) { return "urn:p", p == "p" }}
	tests := []struct {
		pattern string
		want    []float64 // of each alternative
	}{
		{"item", []float64{0}},
		{"p:item", []float64{0}},
		{"@sku", []float64{0}},
		{"child::item", []float64{0}},
		{"attribute::sku", []float64{0}},
		{"processing-instruction('x')", []float64{0}},
		{"p:*", []float64{-0.25}},
		{"@p:*", []float64{-0.25}},
		{"*", []float64{-0.5}},
		{"@*", []float64{-0.5}},
		{"node()", []float64{-0.5}},
		{"text()", []float64{-0.5}},
		{"comment()", []float64{-0.5}},
		{"processing-instruction()", []float64{-0.5}},
		{"item[1]", []float64{0.5}},
		{"order/item", []float64{0.5}},
		{"/", []float64{0.5}},
		{"/item", []float64{0.5}},
		{"//item", []float64{0.5}},
		{"id('x')", []float64{0.5}},
		{"key('k', 'v')", []float64{0.5}},
		{"*[@a]", []float64{0.5}},
		{"item | * | p:* | a/b", []float64{0, -0.5, -0.25, 0.5}},
	}
	for _, tt := range tests {
		p, err := CompilePattern(tt.pattern, opts)
		if err != nil {
			t.Errorf("CompilePattern(%q): %v", tt.pattern, err)
			continue
		}
		alts := p.Alternatives()
		if len(alts) != len(tt.want) {
			t.Errorf("%s: %d alternatives, want %d", tt.pattern, len(alts), len(tt.want))
			continue
		}
		for i, a := range alts {
			if a.DefaultPriority() != tt.want[i] {
				t.Errorf("%s: alternative %q has priority %v, want %v", tt.pattern, a, a.DefaultPriority(), tt.want[i])
			}
		}
		if len(alts) == 1 && alts[0] != p {
			t.Errorf("%s: a single alternative is not the pattern itself", tt.pattern)
		}
	}
	p, _ := CompilePattern("item | * | p:* | a/b", opts)
	if got := []string{p.Alternatives()[0].String(), p.Alternatives()[3].String(), p.String()}; got[0] != "item" || got[1] != "a/b" || got[2] != "item | * | p:* | a/b" {
		t.Errorf("String() of alternatives: %q", got)
	}
}

func TestPatternErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ pattern, msg string }{
		{"", "expected a node test"},
		{"item/", "expected a node test"},
		{"..", "not allowed in a pattern"},
		{".", "not allowed in a pattern"},
		{"descendant::item", "only use the child and attribute axes"},
		{"parent::item", "only use the child and attribute axes"},
		{"count(item)", "can only start with the functions id() and key()"},
		{"id(item)", "expected a string literal"},
		{"key('k')", "expected ','"},
		{"item[", "expected an expression"},
		{"item or name", `unexpected "or" in a pattern`},
		{"1", "expected a node test"},
		{"$x", "expected a node test"},
		{"item |", "expected a node test"},
		{"q:item", "not declared"},
		{"namespace::*", "only use the child and attribute axes"},
	} {
		_, err := CompilePattern(tt.pattern, Options{})
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(se.Msg, tt.msg) {
			t.Errorf("CompilePattern(%q) = %v, want a SyntaxError with %q", tt.pattern, err, tt.msg)
		}
	}
}

func TestPatternEvalErrors(t *testing.T) {
	t.Parallel()
	doc := mustParse(t, patternDoc)
	item := doc.Root().Elements()[0]
	p, _ := CompilePattern("key('k', 'v')/name", Options{})
	if _, err := p.Match(item.Elements()[0], nil); err == nil || !strings.Contains(err.Error(), "key()") {
		t.Errorf("key() without Env: %v", err)
	}
	p, _ = CompilePattern("item[$undefined]", Options{})
	if _, err := p.Match(item, nil); err == nil || !strings.Contains(err.Error(), "$undefined") {
		t.Errorf("undefined variable: %v", err)
	}
	if ok, err := p.Match(nil, nil); ok || err != nil {
		t.Errorf("Match(nil) = %v, %v", ok, err)
	}
}
