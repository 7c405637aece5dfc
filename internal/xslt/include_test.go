package xslt

import (
	"errors"
	"strings"
	"testing"
)

func TestIncludeImportErrors(t *testing.T) {
	t.Parallel()
	sheets := map[string]string{
		"self.xsl":   xslHead + `<xsl:include href="self.xsl"/></xsl:stylesheet>`,
		"a.xsl":      xslHead + `<xsl:import href="b.xsl"/></xsl:stylesheet>`,
		"b.xsl":      xslHead + `<xsl:import href="a.xsl"/></xsl:stylesheet>`,
		"doc.xsl":    xslHead + "\n\n" + `<xsl:template match="/"><xsl:copy-of select="document('x.xml')"/></xsl:template></xsl:stylesheet>`,
		"lre.xsl":    `<r xsl:version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"/>`,
		"late.xsl":   xslHead + `<xsl:template match="/"/><xsl:import href="a.xsl"/></xsl:stylesheet>`,
		"broken.xsl": `<xsl:stylesheet`,
	}
	resolve := func(href string) ([]byte, error) {
		s, ok := sheets[href]
		if !ok {
			return nil, errors.New("no stylesheet is registered under this name")
		}
		return []byte(s), nil
	}
	cases := []struct{ include, want string }{
		{`<xsl:include href="self.xsl"/>`, `self.xsl: line 2: xsl:include href="self.xsl" includes or imports itself`},
		{`<xsl:import href="a.xsl"/>`, `xsl:import href="a.xsl" includes or imports itself`},
		{`<xsl:include href="doc.xsl"/>`, "doc.xsl: line 4: xsl:copy-of select=\"document('x.xml')\": document() is not available"},
		{`<xsl:include href="missing.xsl"/>`, `line 2: xsl:include href="missing.xsl": no stylesheet is registered under this name`},
		{`<xsl:include href="lre.xsl"/>`, "an included stylesheet must be xsl:stylesheet or xsl:transform"},
		{`<xsl:include href="late.xsl"/>`, "xsl:import must come before the other declarations"},
		{`<xsl:include href="broken.xsl"/>`, `xsl:include href="broken.xsl": XML`},
	}
	for _, c := range cases {
		_, err := Compile([]byte(xslHead+c.include+`</xsl:stylesheet>`), Options{Resolve: resolve})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.include, err, c.want)
		}
	}
}

// TestImportPrecedence: the importing stylesheet's template, variable and
// output settings win; apply-imports reaches the imported rule.
func TestImportPrecedence(t *testing.T) {
	t.Parallel()
	sheets := map[string]string{
		"base.xsl": xslHead + `<xsl:output indent="yes" omit-xml-declaration="yes"/><xsl:variable name="v" select="'base'"/>
<xsl:template match="a" priority="10"><base v="{$v}"/></xsl:template></xsl:stylesheet>`,
	}
	ss := xslHead + `<xsl:import href="base.xsl"/><xsl:output indent="no"/><xsl:variable name="v" select="'main'"/>
<xsl:template match="a"><main><xsl:apply-imports/></main></xsl:template></xsl:stylesheet>`
	s, err := Compile([]byte(ss), Options{Resolve: func(h string) ([]byte, error) { return []byte(sheets[h]), nil }})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Transform(mustParse(t, `<a/>`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `<main><base v="main"/></main>`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestStripSpaceSharedDocument: strip-space works on a copy, so the
// parsed document (shared by other transformations) is unchanged.
func TestStripSpaceSharedDocument(t *testing.T) {
	t.Parallel()
	doc := mustParse(t, "<a>\n  <b> x </b>\n</a>")
	strip, err := Compile([]byte(xslHead+`<xsl:strip-space elements="*"/><xsl:output method="text"/><xsl:template match="/"><xsl:value-of select="count(//text())"/></xsl:template></xsl:stylesheet>`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := strip.Transform(doc, nil)
	if err != nil || string(out) != "1" {
		t.Fatalf("got %q, %v", out, err)
	}
	if n := len(doc.Root().Children); n != 3 {
		t.Fatalf("the parsed document changed: %d children", n)
	}
}
