package xmltree

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTree(t *testing.T) {
	src := `<?xml version="1.0" encoding="UTF-8"?>
<po:Order xmlns:po="urn:po" xmlns="urn:default" id="7" po:rev="2">
  <!-- lines -->
  <Line qty="1">a<![CDATA[<b>]]>c</Line>
  <Line qty="2"/>
  <?audit keep?>
</po:Order>`
	doc, err := Parse([]byte(src), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	root := doc.Root()
	if root.Space != "urn:po" || root.Local != "Order" || root.Prefix != "po" {
		t.Fatalf("root = %+v", root)
	}
	if v, _ := root.Attr("", "id"); v != "7" {
		t.Errorf("id = %q", v)
	}
	if v, _ := root.Attr("urn:po", "rev"); v != "2" {
		t.Errorf("po:rev = %q", v)
	}
	lines := root.Elements()
	if len(lines) != 2 || lines[0].Space != "urn:default" {
		t.Fatalf("lines = %d, space %q", len(lines), lines[0].Space)
	}
	if got := lines[0].Text(); got != "a<b>c" {
		t.Errorf("text = %q (CDATA merges with the text around it)", got)
	}
	if got := lines[1].Path(); got != "/po:Order/Line[2]" {
		t.Errorf("path = %q", got)
	}
	if got := lines[1].Attrs[0].Path(); got != "/po:Order/Line[2]/@qty" {
		t.Errorf("attribute path = %q", got)
	}
	if lines[0].Line != 4 {
		t.Errorf("line = %d, want 4", lines[0].Line)
	}
	// Document order: element, then its attributes, then its children.
	prev := -1
	var walk func(n *Node)
	walk = func(n *Node) {
		if n.Order <= prev && n.Kind != Document {
			t.Fatalf("order %d after %d at %s", n.Order, prev, n.Path())
		}
		prev = n.Order
		for _, a := range n.Attrs {
			walk(a)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(doc)
	var kinds []string
	for _, c := range root.Children {
		if c.Kind != Text {
			kinds = append(kinds, c.Kind.String())
		}
	}
	if strings.Join(kinds, ",") != "comment,element,element,processing-instruction" {
		t.Errorf("children = %v", kinds)
	}
	if uri, ok := lines[0].LookupPrefix("po"); !ok || uri != "urn:po" {
		t.Errorf("po in scope = %q %v", uri, ok)
	}
	if got := len(lines[0].InScope()); got != 2 {
		t.Errorf("in scope = %d, want 2", got)
	}
}

func TestParseLatin1(t *testing.T) {
	src := append([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><n>caf`), 0xe9, '<', '/', 'n', '>')
	doc, err := Parse(src, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.Root().Text(); got != "café" {
		t.Errorf("text = %q", got)
	}
}

// Every refusal is an *Error with a reason a sender can act on, and nothing
// of the document is returned.
func TestParseRefuses(t *testing.T) {
	deep := strings.Repeat("<a>", 300) + strings.Repeat("</a>", 300)
	cases := []struct {
		name, src string
		lim       Limits
		want      string
	}{
		{"billion laughs", `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`, Limits{}, "DOCTYPE declarations are not accepted"},
		{"external entity", `<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`, Limits{}, "DOCTYPE"},
		{"undeclared entity", `<foo>&xxe;</foo>`, Limits{}, "entity"},
		{"too deep", deep, Limits{}, "nested more than 256 deep"},
		{"too large", `<a>` + strings.Repeat("x", 100) + `</a>`, Limits{MaxBytes: 50}, "too large"},
		{"too many nodes", `<a><b/><b/><b/></a>`, Limits{MaxNodes: 3}, "more than 3 nodes"},
		{"malformed", `<a><b></a>`, Limits{}, "line 1"},
		{"unclosed", `<a><b>`, Limits{}, ""},
		{"two roots", `<a/><b/>`, Limits{}, "more than one root"},
		{"text outside", `<a/>junk`, Limits{}, "outside the root"},
		{"empty", ``, Limits{}, "no root element"},
		{"undeclared prefix", `<p:a/>`, Limits{}, `prefix "p"`},
		{"undeclared attribute prefix", `<a q:x="1"/>`, Limits{}, `prefix "q"`},
		{"duplicate namespace declaration", `<a xmlns:p="u" xmlns:p="v"/>`, Limits{}, "declared twice"},
		{"duplicate default namespace", `<a xmlns="u" xmlns="v"/>`, Limits{}, ""},
		{"duplicate attribute", `<a xmlns:p="u" xmlns:q="u" p:x="1" q:x="2"/>`, Limits{}, "appears twice"},
		{"encoding", `<?xml version="1.0" encoding="EBCDIC"?><a/>`, Limits{}, "EBCDIC"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, err := Parse([]byte(c.src), c.lim)
			if err == nil {
				t.Fatalf("parsed %v", doc)
			}
			var xe *Error
			if !errors.As(err, &xe) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`<a xmlns:p="u"><p:b c="1">t<![CDATA[x]]></p:b><!--c--><?pi d?></a>`))
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>`))
	f.Add([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><a>` + "\xe9" + `</a>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse(data, Limits{MaxDepth: 32, MaxNodes: 1000})
		if err != nil {
			return
		}
		if doc.Root() == nil {
			t.Fatal("a parsed document has no root")
		}
		var walk func(n *Node, depth int)
		walk = func(n *Node, depth int) {
			if depth > 33 {
				t.Fatal("depth limit not kept")
			}
			_ = n.Path()
			for _, c := range n.Children {
				if c.Parent != n {
					t.Fatal("broken parent link")
				}
				walk(c, depth+1)
			}
		}
		walk(doc, 0)
	})
}

// Attribute values are normalized as XML 1.0 says: whitespace written in
// the value becomes spaces, whitespace written as character references
// stays (as libxml2 does).
func TestAttributeValueNormalization(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want map[string]string
	}{
		{"<a x=\"a\tb\nc\r\nd\re\"/>", map[string]string{"x": "a b c d e"}},
		{"<a y=\"p&#10;q&#9;r&#xD;s\" z='&lt;&#x20;&amp;\n' w=\"plain\"/>", map[string]string{"y": "p\nq\tr\rs", "z": "< & ", "w": "plain"}},
		{"<a xmlns:p=\"urn:p\"\n   p:v=\"1&#10;2\" q = '3\t4' />", map[string]string{"v": "1\n2", "q": "3 4"}},
	} {
		doc, err := Parse([]byte(c.doc), Limits{})
		if err != nil {
			t.Fatalf("%q: %v", c.doc, err)
		}
		root := doc.Elements()[0]
		for _, a := range root.Attrs {
			if want, ok := c.want[a.Local]; !ok || a.Data != want {
				t.Errorf("%q: @%s = %q, want %q", c.doc, a.Local, a.Data, want)
			}
		}
		if len(root.Attrs) != len(c.want) {
			t.Errorf("%q: %d attributes, want %d", c.doc, len(root.Attrs), len(c.want))
		}
	}
}
