package xslt

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// sheetGen builds a stylesheet from fuzz bytes: each byte chooses the next
// construct among XSLT instructions and, for expressions and names, among
// lists that stay clear of known XPath-level differences with libxml2
// (computed non-integers, exponents, navigating result tree fragments).
type sheetGen struct {
	data  []byte
	b     strings.Builder
	nvars int
	depth int
	p     *sheetProfile
}

// sheetProfile is the vocabulary for one input document.
type sheetProfile struct {
	input                                          string
	header                                         []string // namespace declarations and exclusions of xsl:stylesheet
	selects, values, tests, patterns, names, sorts []string
	keyMatch, keyUse                               string
}

func (g *sheetGen) next(n int) int {
	if len(g.data) == 0 {
		return 0
	}
	c := int(g.data[0])
	g.data = g.data[1:]
	return c % n
}

func (g *sheetGen) pick(list []string) string { return list[g.next(len(list))] }

var (
	genSelects = []string{"Item", "*", "node()", "@*", "Item[@qty > 4]", "Item[last()]", "Carrier", "Item/@sku",
		"key('po', 'PO-1001')", "Item[@po = 'PO-1002']", "text()", "..", ".", "Item[position() mod 2 = 1]",
		"preceding-sibling::Item[1]", "//Item[@pallet='P3']", "comment()", "/"}
	genValues = []string{".", "@sku", "@qty", "count(Item)", "sum(Item/@qty)", "concat(@po, '-', @sku)", "position()",
		"last()", "name()", "local-name(..)", "string-length(@sku)", "translate(@sku, 'AB', 'ab')", "@qty * 2",
		"substring(@po, 4)", "normalize-space(Carrier)", "$v0", "$p", "floor(@qty div 4)", "round(@qty div 3)",
		"count(key('po', @po))", "generate-id() = generate-id(.)", "not(@pallet)", "format-number(@qty, '#,##0.00')",
		"format-number(sum(//@qty), '000.0')", "'lit &amp; &lt;x&gt;'", "@qty &gt; 5 and @po != 'PO-1003'", "true()", "-@qty"}
	genTests = []string{"@qty > 4", "position() = 1", "position() = last()", "@po = 'PO-1001'", "Item", "not(*)",
		"$v0", "count(Item) > 3", "contains(@sku, '-')", "@pallet = 'P2' or @qty < 2", "string($p)"}
	genPatterns = []string{"Item", "*", "ShipNotice", "Item[@qty > 5]", "Item[1]", "@*", "@qty", "text()", "node()",
		"Carrier|Item[@po='PO-1003']", "ShipNotice/Item", "/", "Item[@pallet='P1']", "comment()", "*[@sku]"}
	genNames = []string{"row", "a", "x:el", "Line", "n", "data"}
	genSorts = []string{`<xsl:sort select="@sku"/>`, `<xsl:sort select="@qty" data-type="number" order="descending"/>`,
		`<xsl:sort select="@po"/><xsl:sort select="@qty" data-type="number"/>`, `<xsl:sort select="name()" order="descending"/>`}
	genOutputs = []string{``, `<xsl:output indent="yes"/>`, `<xsl:output method="text"/>`, `<xsl:output omit-xml-declaration="yes"/>`,
		`<xsl:output method="html"/>`, `<xsl:output indent="no" encoding="UTF-8"/>`, `<xsl:output cdata-section-elements="data"/>`}
)

func (g *sheetGen) body(n int) {
	g.depth++
	defer func() { g.depth-- }()
	for i := 0; i < n && len(g.data) > 0; i++ {
		g.instruction()
	}
}

func (g *sheetGen) instruction() {
	b := &g.b
	if g.depth > 4 {
		fmt.Fprintf(b, `<xsl:value-of select="%s"/>`, g.pick(g.p.values))
		return
	}
	switch g.next(21) {
	case 0:
		name := g.pick(g.p.names)
		fmt.Fprintf(b, `<%s k="{%s}">`, name, g.pick(g.p.values))
		g.body(g.next(3))
		fmt.Fprintf(b, `</%s>`, name)
	case 1:
		fmt.Fprintf(b, `<xsl:value-of select="%s"/>`, g.pick(g.p.values))
	case 2:
		fmt.Fprintf(b, `<xsl:apply-templates select="%s"`, g.pick(g.p.selects))
		if g.next(3) == 0 {
			b.WriteString(` mode="m"`)
		}
		b.WriteString(">")
		if g.next(3) == 0 {
			b.WriteString(g.pick(g.p.sorts))
		}
		b.WriteString("</xsl:apply-templates>")
	case 3:
		fmt.Fprintf(b, `<xsl:for-each select="%s">`, g.pick(g.p.selects))
		if g.next(2) == 0 {
			b.WriteString(g.pick(g.p.sorts))
		}
		g.body(1 + g.next(3))
		b.WriteString("</xsl:for-each>")
	case 4:
		fmt.Fprintf(b, `<xsl:if test="%s">`, g.pick(g.p.tests))
		g.body(1 + g.next(2))
		b.WriteString("</xsl:if>")
	case 5:
		fmt.Fprintf(b, `<xsl:choose><xsl:when test="%s">`, g.pick(g.p.tests))
		g.body(1 + g.next(2))
		b.WriteString("</xsl:when><xsl:otherwise>")
		g.body(g.next(2))
		b.WriteString("</xsl:otherwise></xsl:choose>")
	case 6:
		fmt.Fprintf(b, `<xsl:element name="%s"%s>`, g.pick([]string{"{concat('e', string-length(name()))}", "e", "x:e", "{name()}", "{local-name()}"}),
			g.pick([]string{"", "", ` namespace="urn:x"`, ` namespace=""`, ` namespace="urn:other"`, ` namespace="{namespace-uri()}"`}))
		g.body(g.next(3))
		b.WriteString("</xsl:element>")
	case 7:
		fmt.Fprintf(b, `<xsl:attribute name="%s"%s>`, g.pick([]string{"at", "qty", "x:at", "id", "{name()}"}),
			g.pick([]string{"", "", ` namespace="urn:x"`, ` namespace="urn:other"`}))
		g.body(g.next(2))
		b.WriteString("</xsl:attribute>")
	case 8:
		b.WriteString("<xsl:copy>")
		g.body(g.next(3))
		b.WriteString("</xsl:copy>")
	case 9:
		fmt.Fprintf(b, `<xsl:copy-of select="%s"/>`, g.pick(append([]string{"$v0"}, g.p.selects...)))
	case 10:
		b.WriteString(g.pick([]string{"<xsl:text> t </xsl:text>", "text ", "<xsl:text>&#10;</xsl:text>", "é&amp;"}))
	case 11:
		b.WriteString(g.pick([]string{"<xsl:comment>c</xsl:comment>", `<xsl:processing-instruction name="pi">d</xsl:processing-instruction>`}))
	case 12:
		v := fmt.Sprintf("l%d", g.nvars)
		g.nvars++
		if g.next(2) == 0 {
			fmt.Fprintf(b, `<xsl:variable name="%s" select="%s"/>`, v, g.pick(g.p.values))
		} else {
			fmt.Fprintf(b, `<xsl:variable name="%s">`, v)
			g.body(1 + g.next(2))
			b.WriteString("</xsl:variable>")
		}
		fmt.Fprintf(b, `<xsl:value-of select="$%s"/>`, v)
	case 13:
		fmt.Fprintf(b, `<xsl:call-template name="named"><xsl:with-param name="p" select="%s"/></xsl:call-template>`, g.pick(g.p.values))
	case 14:
		b.WriteString(g.pick([]string{`<xsl:number/>`, `<xsl:number level="any" count="Item" format="a. "/>`,
			`<xsl:number level="multiple" count="*" format="1.1"/>`, `<xsl:number value="position()" format="i"/>`}))
	case 15:
		b.WriteString(`<xsl:message>m</xsl:message>`)
	case 16:
		fmt.Fprintf(b, `<%s xsl:use-attribute-sets="set"/>`, g.pick(g.p.names))
	case 17:
		b.WriteString(g.pick([]string{`<xsl:text disable-output-escaping="yes">&lt;raw/&gt;</xsl:text>`,
			`<xsl:value-of select="'&lt;v&gt;'" disable-output-escaping="yes"/>`}))
	case 18:
		v := fmt.Sprintf("r%d", g.nvars)
		g.nvars++
		fmt.Fprintf(b, `<xsl:variable name="%s">`, v)
		g.body(1 + g.next(3))
		fmt.Fprintf(b, `</xsl:variable><xsl:copy-of select="$%s"/><xsl:value-of select="count(exsl:node-set($%s)/node())"/>`, v, v)
	case 19:
		fmt.Fprintf(b, `<xsl:apply-templates select="%s"><xsl:with-param name="p" select="%s"/></xsl:apply-templates>`, g.pick(g.p.selects), g.pick(g.p.values))
	case 20:
		fmt.Fprintf(b, `<xsl:number value="%s" format="%s"/>`, g.pick([]string{"position()", "@qty", "count(*)", "last() * 3"}),
			g.pick([]string{"1", "01", "a", "I", "1.", "(i)", "A-1"}))
	}
}

var sheetProfiles = []*sheetProfile{
	{
		input:    "asn-grouping.xml",
		header:   []string{""},
		selects:  genSelects,
		values:   genValues,
		tests:    genTests,
		patterns: genPatterns,
		names:    genNames,
		sorts:    genSorts,
		keyMatch: "Item", keyUse: "@po",
	},
	{
		input: "ns-copy.xml",
		header: []string{` xmlns:o="urn:acme:orders:2" xmlns:c="urn:acme:common"`,
			` xmlns:o="urn:acme:orders:2" xmlns:c="urn:acme:common" exclude-result-prefixes="o"`,
			` xmlns:o="urn:acme:orders:2" xmlns:c="urn:acme:common" xmlns="urn:acme:common" exclude-result-prefixes="#default c"`,
			` xmlns:o="urn:acme:orders:2" xmlns:c="urn:acme:common" xmlns="urn:d"`},
		selects: []string{"//o:Order", "*", "node()", "@*", "//c:Id", "//*[local-name()='Extra']", "..", ".", "//o:Routing",
			"//@*", "o:Order[1]/*", "//c:Amount/@currency", "/", "//*[namespace-uri()='urn:acme:common']"},
		values: []string{".", "name()", "local-name()", "namespace-uri()", "count(*)", "@currency", "position()", "$v0", "$p",
			"count(key('po', 'A-1'))", "concat(name(..), '/', name())", "string(@o:priority)"},
		tests: []string{"self::o:Order", "@*", "position() = 1", "c:Id = 'A-2'", "not(*)", "namespace-uri() = 'urn:acme:common'", "$v0"},
		patterns: []string{"o:Order", "*", "c:Id", "@*", "c:*", "o:OrderBatch/o:Order", "text()", "node()", "/",
			"*[local-name()='Extra']", "@currency", "o:*"},
		names:    []string{"row", "x:el", "o:Line", "c:Id", "data"},
		sorts:    []string{`<xsl:sort select="local-name()"/>`, `<xsl:sort select="." order="descending"/>`},
		keyMatch: "c:Id", keyUse: ".",
	},
}

// generateSheet is a whole stylesheet: output settings, a key, an
// attribute set, a global variable, a root template, rules and a named
// template.
func generateSheet(data []byte, p *sheetProfile) []byte {
	g := &sheetGen{data: data, p: p}
	b := &g.b
	fmt.Fprintf(b, `<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:x="urn:x" xmlns:exsl="http://exslt.org/common" extension-element-prefixes="exsl"%s>`, g.pick(p.header))
	b.WriteString(g.pick(genOutputs))
	if g.next(2) == 0 {
		b.WriteString(`<xsl:strip-space elements="*"/>`)
	}
	fmt.Fprintf(b, `<xsl:key name="po" match="%s" use="%s"/><xsl:attribute-set name="set"><xsl:attribute name="s">1</xsl:attribute></xsl:attribute-set>`, p.keyMatch, p.keyUse)
	fmt.Fprintf(b, `<xsl:variable name="v0" select="%s"/>`, g.pick([]string{"count(//*)", "'g'", "(//*)[3]", "/"}))
	b.WriteString(`<xsl:template match="/"><root>`)
	g.body(1 + g.next(4))
	b.WriteString(`</root></xsl:template>`)
	for n := g.next(4); n > 0; n-- {
		fmt.Fprintf(b, `<xsl:template match="%s"`, g.pick(g.p.patterns))
		if g.next(3) == 0 {
			b.WriteString(` mode="m"`)
		}
		if g.next(4) == 0 {
			fmt.Fprintf(b, ` priority="%d"`, g.next(5)-2)
		}
		b.WriteString(`><xsl:param name="p" select="'dp'"/>`)
		g.body(g.next(4))
		b.WriteString(`</xsl:template>`)
	}
	b.WriteString(`<xsl:template name="named"><xsl:param name="p"/>`)
	g.nvars += 100
	g.body(g.next(3))
	b.WriteString(`</xsl:template></xsl:stylesheet>`)
	return []byte(b.String())
}

// sheetOptions bound generated stylesheets that recurse without end (as
// xsltproc's --maxdepth does, deeper), and allow more output than any
// generated stylesheet that ends writes, so a limit is never a difference.
var sheetOptions = Options{MaxDepth: 40, MaxOutput: 4 << 20}

// FuzzStylesheetDifferential compiles generated stylesheets and compares
// their output on the ASN corpus document with xsltproc's.
func FuzzStylesheetDifferential(f *testing.F) {
	needXsltproc(f)
	f.Add([]byte{3, 1, 2, 0, 1, 1, 3, 2, 1, 0, 4, 2, 0, 12, 1, 5, 6})
	f.Add([]byte("stylesheets generated from the XSLT instructions"))
	f.Add([]byte{0, 0, 1, 2, 2, 3, 3, 4, 5, 2, 1, 9, 9, 9, 14, 1, 13, 2, 8, 3, 16, 0, 4})
	docs := make([]*xmltree.Node, len(sheetProfiles))
	for i, p := range sheetProfiles {
		src, err := os.ReadFile(filepath.Join("testdata", p.input))
		if err != nil {
			f.Fatal(err)
		}
		if docs[i], err = xmltree.Parse(src, xmltree.Limits{}); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		i := int(data[0]) % len(sheetProfiles)
		p, doc, input := sheetProfiles[i], docs[i], filepath.Join("testdata", sheetProfiles[i].input)
		sheet := generateSheet(data[1:], p)
		dir := t.TempDir()
		path := filepath.Join(dir, "s.xsl")
		if err := os.WriteFile(path, sheet, 0o600); err != nil {
			t.Fatal(err)
		}
		want, wantOK, stderr := xsltprocFiles(path, input, nil)
		s, err := Compile(sheet, sheetOptions)
		var got []byte
		if err == nil {
			got, err = s.Transform(doc, nil)
		}
		switch {
		case !wantOK && err == nil:
			t.Fatalf("xsltproc failed (%s) but this package gave:\n%s\nstylesheet:\n%s", stderr, got, sheet)
		case wantOK && err != nil:
			t.Fatalf("this package failed: %v\nxsltproc gave:\n%s\nstylesheet:\n%s", err, want, sheet)
		case wantOK && !bytes.Equal(got, want):
			t.Fatalf("output differs\n--- xsltproc\n%s\n--- this package\n%s\nstylesheet:\n%s", want, got, sheet)
		}
	})
}
