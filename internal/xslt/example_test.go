package xslt_test

import (
	"fmt"

	"github.com/sluicehq/sluice/internal/xmltree"
	"github.com/sluicehq/sluice/internal/xslt"
)

// A partner's purchase order becomes Sluice's internal order: compile the
// stylesheet once, then transform each message.
func Example() {
	stylesheet := []byte(`<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output omit-xml-declaration="yes"/>
  <xsl:param name="partner"/>
  <xsl:template match="/PO">
    <order id="{@no}" partner="{$partner}">
      <xsl:for-each select="Line">
        <xsl:sort select="@sku"/>
        <line sku="{@sku}" amount="{format-number(@qty * @price, '0.00')}"/>
      </xsl:for-each>
    </order>
  </xsl:template>
</xsl:stylesheet>`)
	s, err := xslt.Compile(stylesheet, xslt.Options{})
	if err != nil {
		panic(err)
	}
	doc, err := xmltree.Parse([]byte(`<PO no="88"><Line sku="B" qty="3" price="1.5"/><Line sku="A" qty="1" price="9.99"/></PO>`), xmltree.Limits{})
	if err != nil {
		panic(err)
	}
	out, err := s.Transform(doc, map[string]string{"partner": "acme"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s (%s)\n", out, s.MediaType())
	// Output:
	// <order id="88" partner="acme"><line sku="A" amount="9.99"/><line sku="B" amount="4.50"/></order>
	//  (application/xml)
}

// Compile refuses what a stylesheet may not do, naming the line and the
// construct.
func ExampleCompile_refused() {
	_, err := xslt.Compile([]byte(`<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><xsl:copy-of select="document('http://example.com/prices.xml')"/></xsl:template>
</xsl:stylesheet>`), xslt.Options{})
	fmt.Println(err)
	// Output:
	// line 2: xsl:copy-of select="document('http://example.com/prices.xml')": document() is not available: stylesheets cannot read files or URLs
}
