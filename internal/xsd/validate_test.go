package xsd

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/xmltree"
)

const xsHead = `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
`

func TestCompileRefusesUnsupported(t *testing.T) {
	t.Parallel()
	cases := []struct{ schema, want string }{
		{`<xs:redefine schemaLocation="x.xsd"/>`, "line 2: xs:redefine is not supported"},
		{`<xs:override schemaLocation="x.xsd"/>`, "line 2: xs:override (XSD 1.1) is not supported"},
		{`<xs:notation name="gif" public="image/gif"/>`, "line 2: xs:notation is not supported"},
		{`<xs:element name="a" type="xs:NOTATION"/>`, "line 2: the type xs:NOTATION is not supported"},
		{`<xs:complexType name="t"><xs:sequence/><xs:assert test="true()"/></xs:complexType>`, "line 2: xs:assert (XSD 1.1) is not supported"},
		{`<xs:element name="a"><xs:alternative type="xs:string"/></xs:element>`, "line 2: xs:alternative (XSD 1.1) is not supported"},
		{`<xs:complexType name="t"><xs:openContent/></xs:complexType>`, "line 2: xs:openContent (XSD 1.1) is not supported"},
		{`<xs:simpleType name="t"><xs:restriction base="xs:string"><xs:pattern value="[a-z-[aeiou]]"/></xs:restriction></xs:simpleType>`, "line 2: xs:pattern \"[a-z-[aeiou]]\": character class subtraction"},
		{`<xs:simpleType name="t"><xs:restriction base="xs:string"><xs:pattern value="\p{IsTibetan}"/></xs:restriction></xs:simpleType>`, "Unicode block"},
	}
	for _, c := range cases {
		_, err := Compile([]byte(xsHead+"  "+c.schema+"\n</xs:schema>"), Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\nerror %v, want one containing %q", c.schema, err, c.want)
			continue
		}
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%v: not ErrUnsupported", err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		schema string
		opts   Options
		want   string
	}{
		{`<xs:include schemaLocation="common.xsd"/>`, Options{}, `line 2: xs:include of "common.xsd": includes and imports are refused (no resolver was given)`},
		{`<xs:import namespace="urn:x" schemaLocation="x.xsd"/>`, Options{Resolve: func(loc, ns string) ([]byte, error) {
			return nil, fmt.Errorf("no schema %q registered", loc)
		}}, `line 2: xs:import of "x.xsd": no schema "x.xsd" registered`},
		{`<xs:import namespace="urn:x" schemaLocation="x.xsd"/>`, Options{Resolve: func(loc, ns string) ([]byte, error) {
			return []byte(`<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:y"/>`), nil
		}}, `imported for namespace "urn:x" has targetNamespace "urn:y"`},
		{`<xs:import namespace="urn:x" schemaLocation="x.xsd"/>`, Options{Resolve: func(loc, ns string) ([]byte, error) {
			return []byte(`<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:x">
<xs:element name="a" type="nope"/></xs:schema>`), nil
		}}, `schema "x.xsd": line 2: the type "nope" is not defined`},
		{`<xs:element name="a" type="Missing"/>`, Options{}, `line 2: the type "Missing" is not defined`},
		{`<xs:element name="a" minOccurs="1"/>`, Options{}, `line 2: the attribute "minOccurs" is not allowed on a global xs:element`},
		{`<xs:element name="a"><xs:keyref name="r" refer="k"><xs:selector xpath="b"/><xs:field xpath="@id"/></xs:keyref></xs:element>`, Options{}, `line 2: xs:keyref "r" refers to "k", which is not a key or unique constraint`},
		{`<xs:element name="a"><xs:key name="k"><xs:selector xpath="b"/><xs:field xpath="@x"/><xs:field xpath="@y"/></xs:key>
  <xs:keyref name="r" refer="k"><xs:selector xpath="c"/><xs:field xpath="@id"/></xs:keyref></xs:element>`, Options{}, `line 3: xs:keyref "r" has 1 fields but key "k" has 2`},
		{`<xs:element name="a"><xs:unique name="u"><xs:selector xpath="b/@id"/><xs:field xpath="@id"/></xs:unique></xs:element>`, Options{}, `line 2: xs:selector xpath "b/@id": an attribute step is allowed only at the end of a field`},
		{`<xs:element name="a"><xs:unique name="u"><xs:selector xpath="b[1]"/><xs:field xpath="@id"/></xs:unique></xs:element>`, Options{}, `is not a name test of the XPath subset XSD allows`},
		{`<xs:element name="a"><xs:unique name="u"><xs:selector xpath="p:b"/><xs:field xpath="@id"/></xs:unique></xs:element>`, Options{}, `the prefix "p" is not declared`},
		{`<xs:element name="a"><xs:unique name="u"><xs:field xpath="@id"/></xs:unique></xs:element>`, Options{}, `xs:field is not allowed here in xs:unique`},
	}
	for _, c := range cases {
		_, err := Compile([]byte(xsHead+"  "+c.schema+"\n</xs:schema>"), c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\nerror %v, want one containing %q", c.schema, err, c.want)
		}
	}
	if _, err := Compile([]byte("<schema/>"), Options{}); err == nil || !strings.Contains(err.Error(), "not xs:schema") {
		t.Errorf("non-schema root: %v", err)
	}
}

const poSchema = xsHead + `  <xs:element name="Order">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Line" maxOccurs="unbounded">
          <xs:complexType>
            <xs:sequence>
              <xs:element name="Qty" type="xs:positiveInteger"/>
              <xs:element name="Price" type="xs:decimal"/>
            </xs:sequence>
            <xs:attribute name="sku" type="xs:token" use="required"/>
          </xs:complexType>
        </xs:element>
        <xs:element name="Total" type="xs:decimal"/>
      </xs:sequence>
      <xs:attribute name="currency" type="xs:string" use="required"/>
    </xs:complexType>
  </xs:element>
</xs:schema>`

func TestViolations(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, poSchema)
	doc := mustParse(t, `<Order>
  <Line sku="a">
    <Qty>abc</Qty>
    <Price>1</Price>
  </Line>
  <Line sku="b" colour="red">
    <Qty>2</Qty>
    <Price>x</Price>
  </Line>
  <Foo/>
  <Total>3</Total>
</Order>`)
	got := s.Validate(doc)
	want := []Violation{
		{Path: "/Order", Line: 1, Reason: `missing required attribute "currency"`},
		{Path: "/Order/Line[1]/Qty", Line: 3, Reason: `element "Qty": "abc" is not a valid xs:positiveInteger`},
		{Path: "/Order/Line[2]/@colour", Line: 6, Reason: `attribute "colour" is not allowed on element "Line"; expected one of: sku`},
		{Path: "/Order/Line[2]/Price", Line: 8, Reason: `element "Price": "x" is not a valid xs:decimal`},
		{Path: "/Order/Foo", Line: 10, Reason: `unexpected element "Foo"; expected one of: Line, Total`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d violations, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		g.order = 0
		if g != want[i] {
			t.Errorf("violation %d:\n got %+v\nwant %+v", i, g, want[i])
		}
	}
}

func TestValidDocumentHasNoViolations(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, poSchema)
	if vs := s.Validate(mustParse(t, `<Order currency="EUR"><Line sku="a"><Qty>1</Qty><Price>2</Price></Line><Total>2</Total></Order>`)); vs != nil {
		t.Fatalf("violations: %v", vs)
	}
}

func TestMissingChildAndNoCascade(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, poSchema)
	// Lines out of order: one content violation for the parent, not one per
	// following sibling; the siblings' own content is still checked.
	doc := mustParse(t, `<Order currency="EUR">
  <Total>1</Total>
  <Line sku="a"><Qty>0</Qty><Price>1</Price></Line>
  <Line sku="b"><Qty>1</Qty><Price>1</Price></Line>
  <Line sku="c"><Qty>1</Qty><Price>1</Price></Line>
</Order>`)
	got := s.Validate(doc)
	if len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	if got[0].Path != "/Order/Total" || !strings.Contains(got[0].Reason, `unexpected element "Total"`) || !strings.Contains(got[0].Reason, `expected Line`) {
		t.Errorf("first: %+v", got[0])
	}
	if got[1].Path != "/Order/Line[1]/Qty" {
		t.Errorf("second: %+v", got[1])
	}
	got = s.Validate(mustParse(t, `<Order currency="EUR"><Line sku="a"><Qty>1</Qty></Line></Order>`))
	if len(got) != 2 || got[0].Reason != `element "Order": missing child element; expected one of: Line, Total` || got[1].Reason != `element "Line": missing child element; expected Price` {
		t.Errorf("missing: %v", got)
	}
}

func TestFacetMessages(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, xsHead+`  <xs:simpleType name="Code"><xs:restriction base="xs:string"><xs:enumeration value="A"/><xs:enumeration value="B"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="Short"><xs:restriction base="xs:string"><xs:maxLength value="3"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="Pct"><xs:restriction base="xs:decimal"><xs:minInclusive value="0"/><xs:maxExclusive value="100"/><xs:fractionDigits value="1"/><xs:totalDigits value="3"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="Id"><xs:restriction base="xs:string"><xs:pattern value="[A-Z]\d"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="Day"><xs:restriction base="xs:date"><xs:minExclusive value="2026-01-01"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="Hex2"><xs:restriction base="xs:hexBinary"><xs:length value="2"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="Words"><xs:restriction><xs:simpleType><xs:list itemType="xs:NCName"/></xs:simpleType><xs:minLength value="2"/></xs:restriction></xs:simpleType>
  <xs:element name="r"><xs:complexType><xs:sequence>
    <xs:element name="code" type="Code" minOccurs="0"/><xs:element name="short" type="Short" minOccurs="0"/>
    <xs:element name="pct" type="Pct" minOccurs="0" maxOccurs="4"/><xs:element name="id" type="Id" minOccurs="0"/>
    <xs:element name="day" type="Day" minOccurs="0"/><xs:element name="hex" type="Hex2" minOccurs="0"/>
    <xs:element name="words" type="Words" minOccurs="0"/>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>`)
	cases := []struct{ doc, want string }{
		{`<code>C</code>`, `element "code": "C" is not valid for "Code": it is not one of the allowed values: A, B`},
		{`<short>abcd</short>`, `element "short": "abcd" is not valid for "Short": the length must be at most 3 characters, not 4`},
		{`<pct>100</pct>`, `element "pct": "100" is not valid for "Pct": the value must be less than 100`},
		{`<pct>-1</pct>`, `element "pct": "-1" is not valid for "Pct": the value must be at least 0`},
		{`<pct>1.25</pct>`, `element "pct": "1.25" is not valid for "Pct": it has more than 1 fraction digits`},
		{`<pct>99.5</pct><pct>0.5</pct><pct>0050.0</pct>`, ``},
		{`<id>a1</id>`, `element "id": "a1" is not valid for "Id": it does not match the pattern [A-Z]\d`},
		{`<day>2026-01-01</day>`, `element "day": "2026-01-01" is not valid for "Day": the value must be greater than 2026-01-01`},
		{`<hex>0a0b0c</hex>`, `element "hex": "0a0b0c" is not valid for "Hex2": the length must be 2 octets, not 3`},
		{`<words>a</words>`, `element "words": "a" is not valid for "Words": the length must be at least 2 items, not 1`},
		{`<words>a 1</words>`, `element "words": "1" is not a valid xs:NCName`},
	}
	for _, c := range cases {
		vs := s.Validate(mustParse(t, "<r>"+c.doc+"</r>"))
		got := ""
		if len(vs) > 0 {
			got = vs[0].Reason
		}
		if got != c.want || len(vs) > 1 {
			t.Errorf("%s: got %v, want %q", c.doc, vs, c.want)
		}
	}
}

func TestNamespacedViolationPaths(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:po" xmlns:po="urn:po" elementFormDefault="qualified" attributeFormDefault="qualified">
  <xs:element name="Order"><xs:complexType><xs:sequence><xs:element name="Line" maxOccurs="unbounded"><xs:complexType><xs:attribute name="qty" type="xs:int"/></xs:complexType></xs:element></xs:sequence></xs:complexType></xs:element>
</xs:schema>`)
	vs := s.Validate(mustParse(t, `<po:Order xmlns:po="urn:po"><po:Line po:qty="1"/><po:Line po:qty="x"/></po:Order>`))
	if len(vs) != 1 || vs[0].Path != "/po:Order/po:Line[2]/@po:qty" || vs[0].Reason != `attribute "qty": "x" is not a valid xs:int` {
		t.Fatalf("got %v", vs)
	}
	vs = s.Validate(mustParse(t, `<Order/>`))
	if len(vs) != 1 || vs[0].Reason != `no global element declaration matches the root element "Order" (no namespace)` {
		t.Fatalf("got %v", vs)
	}
}

// TestConcurrentValidation shares one Schema between goroutines (run with
// -race).
func TestConcurrentValidation(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, poSchema)
	good := mustParse(t, `<Order currency="EUR"><Line sku="a"><Qty>1</Qty><Price>2</Price></Line><Total>2</Total></Order>`)
	bad := mustParse(t, `<Order><Line sku="a"><Qty>x</Qty><Price>2</Price></Line><Total>2</Total></Order>`)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if (g+i)%2 == 0 {
					if vs := s.Validate(good); vs != nil {
						t.Errorf("good: %v", vs)
						return
					}
				} else if vs := s.Validate(bad); len(vs) != 2 {
					t.Errorf("bad: %v", vs)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestLargeMaxOccurs: bounds are counters, so maxOccurs="5000" costs no
// memory; the 5001st element is refused.
func TestLargeMaxOccurs(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, xsHead+`  <xs:element name="r"><xs:complexType><xs:sequence>
    <xs:sequence minOccurs="2" maxOccurs="5000"><xs:element name="a" type="xs:int"/><xs:element name="b" minOccurs="0"/></xs:sequence>
    <xs:element name="end"/>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>`)
	build := func(n int) string {
		var b strings.Builder
		b.WriteString("<r>")
		for i := range n {
			b.WriteString("<a>1</a>")
			if i%2 == 0 {
				b.WriteString("<b/>")
			}
		}
		b.WriteString("<end/></r>")
		return b.String()
	}
	for n, ok := range map[int]bool{1: false, 2: true, 5000: true, 5001: false} {
		vs := s.Validate(mustParse(t, build(n)))
		if (len(vs) == 0) != ok {
			t.Errorf("%d repetitions: %v", n, vs)
		}
	}
}

func TestXSITypeAndNil(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, xsHead+`  <xs:complexType name="Base"><xs:sequence><xs:element name="a" type="xs:string"/></xs:sequence></xs:complexType>
  <xs:complexType name="Derived"><xs:complexContent><xs:extension base="Base"><xs:sequence><xs:element name="b" type="xs:int"/></xs:sequence></xs:extension></xs:complexContent></xs:complexType>
  <xs:complexType name="Other"><xs:sequence/></xs:complexType>
  <xs:element name="r" type="Base" nillable="true"/>
</xs:schema>`)
	const xsi = ` xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`
	cases := map[string]string{
		`<r` + xsi + ` xsi:type="Derived"><a/><b>1</b></r>`: "",
		`<r` + xsi + ` xsi:type="Derived"><a/></r>`:         `element "r": missing child element; expected b`,
		`<r` + xsi + ` xsi:type="Other"/>`:                  `xsi:type: the type "Other" is not derived from the declared type of element "r"`,
		`<r` + xsi + ` xsi:type="Nope"/>`:                   `xsi:type: the type "Nope" is not defined in the schema`,
		`<r` + xsi + ` xsi:nil="true"/>`:                    "",
		`<r` + xsi + ` xsi:nil="true"><a/></r>`:             `element "r": the element is nil (xsi:nil="true"), so it must be empty`,
	}
	for doc, want := range cases {
		vs := s.Validate(mustParse(t, doc))
		got := ""
		if len(vs) > 0 {
			got = vs[0].Reason
		}
		if got != want {
			t.Errorf("%s: got %v, want %q", doc, vs, want)
		}
	}
}

func TestBuiltinXMLNamespace(t *testing.T) {
	t.Parallel()
	// xml:lang and friends need no resolver.
	s := mustCompile(t, `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:import namespace="http://www.w3.org/XML/1998/namespace" schemaLocation="http://www.w3.org/2001/xml.xsd"/>
  <xs:element name="note"><xs:complexType><xs:simpleContent><xs:extension base="xs:string"><xs:attribute ref="xml:lang"/></xs:extension></xs:simpleContent></xs:complexType></xs:element>
</xs:schema>`)
	if vs := s.Validate(mustParse(t, `<note xml:lang="en-GB">hi</note>`)); vs != nil {
		t.Error(vs)
	}
	if vs := s.Validate(mustParse(t, `<note xml:lang="not a tag">hi</note>`)); len(vs) != 1 {
		t.Error(vs)
	}
}

func TestCorpusSchemasCompileWithoutXmllint(t *testing.T) {
	t.Parallel()
	// The corpus doubles as a compile test where xmllint is absent.
	for _, c := range corpus(t) {
		if _, err := compileFile(t, c.schema); err != nil {
			t.Errorf("%s: %v", c.schema, err)
		}
	}
	if _, err := os.Stat("testdata/purchase-order/valid-basic.xml"); err != nil {
		t.Fatal(err)
	}
}

func TestJoinLocation(t *testing.T) {
	t.Parallel()
	cases := []struct{ base, loc, want string }{
		{"", "a.xsd", "a.xsd"},
		{"common/cac.xsd", "cbc.xsd", "common/cbc.xsd"},
		{"common/cac.xsd", "../x.xsd", "x.xsd"},
		{"a.xsd", "../shared/x.xsd", "../shared/x.xsd"},
		{"common/cac.xsd", "/abs/x.xsd", "/abs/x.xsd"},
		{"https://example.com/s/a.xsd", "b.xsd", "https://example.com/s/b.xsd"},
		{"common/a.xsd", "urn:x:y", "urn:x:y"},
	}
	for _, c := range cases {
		if got := joinLocation(c.base, c.loc); got != c.want {
			t.Errorf("joinLocation(%q, %q) = %q, want %q", c.base, c.loc, got, c.want)
		}
	}
}

func TestIdentityConstraints(t *testing.T) {
	t.Parallel()
	s := mustCompile(t, xsHead+`  <xs:element name="r"><xs:complexType><xs:sequence>
    <xs:element name="item" maxOccurs="unbounded"><xs:complexType><xs:sequence><xs:element name="code" type="xs:decimal" minOccurs="0"/></xs:sequence><xs:attribute name="id" type="xs:string"/></xs:complexType></xs:element>
    <xs:element name="ref" minOccurs="0" maxOccurs="unbounded"><xs:complexType><xs:attribute name="to" type="xs:string"/></xs:complexType></xs:element>
  </xs:sequence></xs:complexType>
  <xs:key name="k"><xs:selector xpath="item"/><xs:field xpath="@id"/></xs:key>
  <xs:unique name="u"><xs:selector xpath="item"/><xs:field xpath="code"/></xs:unique>
  <xs:keyref name="kr" refer="k"><xs:selector xpath="ref"/><xs:field xpath="@to"/></xs:keyref>
  </xs:element>
</xs:schema>`)
	got := s.Validate(mustParse(t, `<r>
<item id="a"><code>1</code></item>
<item id="b"><code>1.0</code></item>
<item><code>2</code></item>
<item id="a"/>
<ref to="a"/>
<ref to="z"/>
</r>`))
	want := []string{
		`line 3: /r/item[2]: duplicate key-sequence ["1.0"] in unique "u"`,
		`line 4: /r/item[3]: not all fields of key "k" select a value`,
		`line 5: /r/item[4]: duplicate key-sequence ["a"] in key "k"`,
		`line 7: /r/ref[2]: no match for key-sequence ["z"] of keyref "kr" (it refers to key "k")`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("got  %s\nwant %s", got[i], want[i])
		}
	}
}

// TestHugeContentModelCompiles: a model too large to expand for the
// Unique Particle Attribution check still compiles, and validates.
func TestHugeContentModelCompiles(t *testing.T) {
	t.Parallel()
	inner := `<xs:element name="a"/>`
	for i := range 7 {
		inner = `<xs:sequence maxOccurs="8">` + inner + `<xs:element name="b` + strconv.Itoa(i) + `" minOccurs="0"/></xs:sequence>`
	}
	s := mustCompile(t, xsHead+`<xs:element name="r"><xs:complexType>`+inner+`</xs:complexType></xs:element></xs:schema>`)
	if vs := s.Validate(mustParse(t, `<r><a/><b0/><a/><b3/></r>`)); vs != nil {
		t.Error(vs)
	}
}

func TestResolveByNamespaceAndIncludeCycle(t *testing.T) {
	t.Parallel()
	schemas := map[string]string{
		// import by namespace only
		"urn:common": `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:common">
  <xs:simpleType name="Code"><xs:restriction base="xs:token"><xs:length value="3"/></xs:restriction></xs:simpleType></xs:schema>`,
		// two includes that include each other
		"a.xsd": `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:main" xmlns:m="urn:main">
  <xs:include schemaLocation="b.xsd"/><xs:element name="A" type="m:B"/></xs:schema>`,
		"b.xsd": `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:main">
  <xs:include schemaLocation="a.xsd"/><xs:simpleType name="B"><xs:restriction base="xs:int"/></xs:simpleType></xs:schema>`,
	}
	var asked []string
	resolve := func(loc, ns string) ([]byte, error) {
		asked = append(asked, loc+"|"+ns)
		if s, ok := schemas[cmpOr(loc, ns)]; ok {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("not registered")
	}
	s, err := Compile([]byte(`<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:main" xmlns:c="urn:common">
  <xs:import namespace="urn:common"/>
  <xs:include schemaLocation="a.xsd"/>
  <xs:element name="Root" type="c:Code"/>
</xs:schema>`), Options{Resolve: resolve})
	if err != nil {
		t.Fatalf("Compile: %v (asked %v)", err, asked)
	}
	if want := []string{"|urn:common", "a.xsd|urn:main", "b.xsd|urn:main"}; !slices.Equal(asked, want) {
		t.Errorf("Resolve asked %v, want %v", asked, want)
	}
	if vs := s.Validate(mustParse(t, `<Root xmlns="urn:main">ABCD</Root>`)); len(vs) != 1 {
		t.Errorf("got %v", vs)
	}
	if vs := s.Validate(mustParse(t, `<A xmlns="urn:main">12</A>`)); vs != nil {
		t.Errorf("got %v", vs)
	}
}

// TestConcurrentCompile: Compile shares only read-only state (the built-in
// types) between calls (run with -race).
func TestConcurrentCompile(t *testing.T) {
	t.Parallel()
	cases := corpus(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, c := range cases {
				if _, err := compileFile(t, c.schema); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestLargeEnumeration: long code lists are looked up by value, with the
// same value-space equality as short ones.
func TestLargeEnumeration(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&b, `<xs:enumeration value="%d.50"/>`, i)
	}
	s := mustCompile(t, xsHead+`<xs:element name="v"><xs:simpleType><xs:restriction base="xs:decimal">`+b.String()+`</xs:restriction></xs:simpleType></xs:element></xs:schema>`)
	for v, ok := range map[string]bool{"1999.5": true, "0001.500": true, "7.50": true, "2000.5": false, "7.51": false} {
		if vs := s.Validate(mustParse(t, "<v>"+v+"</v>")); (len(vs) == 0) != ok {
			t.Errorf("%s: %v", v, vs)
		}
	}
}

// TestPathMatchesXmltree: the validator's cached paths are xmltree's.
func TestPathMatchesXmltree(t *testing.T) {
	t.Parallel()
	doc := mustParse(t, `<p:r xmlns:p="urn:p" xmlns:q="urn:q"><a/><p:a x="1"/><a q:y="2"/><b><a/><a/><c/></b><!--c--><q:a/><b/>text<a/></p:r>`)
	v := &validator{}
	var walk func(n *xmltree.Node)
	walk = func(n *xmltree.Node) {
		if got, want := v.path(n), n.Path(); got != want {
			t.Errorf("path %q, xmltree %q", got, want)
		}
		for _, a := range n.Attrs {
			walk(a)
		}
		for _, k := range n.Children {
			if k.Kind == xmltree.Element {
				walk(k)
			}
		}
	}
	walk(doc.Root())
}
