package xsd_test

import (
	"fmt"

	"github.com/sluicehq/sluice/internal/xmltree"
	"github.com/sluicehq/sluice/internal/xsd"
)

// A partner's schema is compiled once; each message is then validated and
// every violation reported with its location.
func Example() {
	schema, err := xsd.Compile([]byte(`<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="Order">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Line" maxOccurs="unbounded">
          <xs:complexType>
            <xs:sequence><xs:element name="Qty" type="xs:positiveInteger"/></xs:sequence>
          </xs:complexType>
        </xs:element>
        <xs:element name="Total" type="xs:decimal"/>
      </xs:sequence>
      <xs:attribute name="currency" type="xs:string" use="required"/>
    </xs:complexType>
  </xs:element>
</xs:schema>`), xsd.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	doc, err := xmltree.Parse([]byte(`<Order>
  <Line><Qty>abc</Qty></Line>
  <Foo/>
  <Total>3</Total>
</Order>`), xmltree.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, v := range schema.Validate(doc) {
		fmt.Printf("line %d %s: %s\n", v.Line, v.Path, v.Reason)
	}
	// Output:
	// line 1 /Order: missing required attribute "currency"
	// line 2 /Order/Line/Qty: element "Qty": "abc" is not a valid xs:positiveInteger
	// line 3 /Order/Foo: unexpected element "Foo"; expected one of: Line, Total
}

// Constructs the package does not implement are refused when the schema is
// compiled, naming them.
func ExampleCompile_unsupported() {
	_, err := xsd.Compile([]byte(`<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:simpleType name="Consonant">
    <xs:restriction base="xs:string"><xs:pattern value="[a-z-[aeiou]]"/></xs:restriction>
  </xs:simpleType>
</xs:schema>`), xsd.Options{})
	fmt.Println(err)
	// Output:
	// line 3: xs:pattern "[a-z-[aeiou]]": character class subtraction (-[...]) is not supported by Go's regexp package (RE2)
}
