package xslt

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/xmltree"
)

const xslHead = `<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:exsl="http://exslt.org/common" xmlns:str="http://exslt.org/strings" exclude-result-prefixes="exsl str">
`

func mustParse(t testing.TB, s string) *xmltree.Node {
	t.Helper()
	doc, err := xmltree.Parse([]byte(s), xmltree.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestCompileRefuses checks that what is not supported, or not XSLT, is
// refused by Compile with the line and the construct named.
func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, body, want string }{
		{"document", `<xsl:template match="/"><xsl:value-of select="document('http://x/y.xml')/a"/></xsl:template>`,
			`line 2: xsl:value-of select="document('http://x/y.xml')/a": document() is not available: stylesheets cannot read files or URLs`},
		{"document in a pattern", `<xsl:template match="a[document('f')]"/>`, "document() is not available"},
		{"document in an AVT", `<xsl:template match="/"><a href="{document('f')}"/></xsl:template>`, "document() is not available"},
		{"include without Resolve", `<xsl:include href="common.xsl"/>`, `line 2: xsl:include href="common.xsl" is refused`},
		{"import without Resolve", `<xsl:import href="base.xsl"/>`, `line 2: xsl:import href="base.xsl" is refused`},
		{"unknown instruction", `<xsl:template match="/"><xsl:frobnicate/></xsl:template>`, "line 2: xsl:frobnicate is not an XSLT 1.0 instruction"},
		{"unknown declaration", `<xsl:frobnicate/>`, "line 2: xsl:frobnicate is not an XSLT 1.0 declaration"},
		{"extension element", `<xsl:template match="/"><exsl:document href="out.xml"/></xsl:template>`, "line 2: the extension element <exsl:document> is not supported"},
		{"extension function", `<xsl:template match="/"><xsl:value-of select="str:tokenize('a b')"/></xsl:template>`, "line 2: xsl:value-of select=\"str:tokenize('a b')\""},
		{"output encoding", `<xsl:output encoding="ISO-8859-1"/>`, `line 2: xsl:output encoding="ISO-8859-1" is not supported`},
		{"output method", `<xsl:output method="xhtml"/>`, `line 2: xsl:output method="xhtml" is not supported`},
		{"letter-value traditional", `<xsl:template match="/"><xsl:number value="1" letter-value="traditional"/></xsl:template>`, `line 2: xsl:number letter-value="traditional" is not supported`},
		{"bad XPath", `<xsl:template match="/"><xsl:value-of select="1 +"/></xsl:template>`, `line 2: xsl:value-of select="1 +"`},
		{"bad pattern", `<xsl:template match="a/following::b"/>`, `line 2: xsl:template match="a/following::b"`},
		{"template without match or name", `<xsl:template/>`, "line 2: xsl:template needs a match or a name attribute"},
		{"duplicate named template", `<xsl:template name="t"/><xsl:template name="t"/>`, `a template named "t" is already defined at line 2`},
		{"param not first", `<xsl:template name="t"><a/><xsl:param name="p"/></xsl:template>`, "xsl:param is allowed only at the start of xsl:template"},
		{"choose without when", `<xsl:template match="/"><xsl:choose/></xsl:template>`, "xsl:choose has no xsl:when"},
		{"undeclared prefix", `<xsl:template match="p:a"/>`, `line 2: xsl:template match="p:a"`},
		{"attribute set cycle", `<xsl:attribute-set name="a" use-attribute-sets="b"/><xsl:attribute-set name="b" use-attribute-sets="a"/>`, "uses itself"},
		{"select and content", `<xsl:variable name="v" select="1">x</xsl:variable>`, "has both a select attribute and content"},
		{"shadowed local", `<xsl:template match="/"><xsl:variable name="v" select="1"/><xsl:for-each select="*"><xsl:variable name="v" select="2"/></xsl:for-each></xsl:template>`, "line 2: the variable or parameter v is already bound at line 2"},
		{"param twice", `<xsl:template name="t"><xsl:param name="p"/><xsl:param name="p"/></xsl:template>`, "the variable or parameter p is already bound"},
		{"unclosed AVT", `<xsl:template match="/"><a b="{x"/></xsl:template>`, "an expression has no closing }"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile([]byte(xslHead+c.body+"\n</xsl:stylesheet>"), Options{})
			if err == nil {
				t.Fatalf("Compile accepted it; want an error with %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestNotAStylesheet(t *testing.T) {
	t.Parallel()
	for _, src := range []string{`<a/>`, `<xsl:template xmlns:xsl="http://www.w3.org/1999/XSL/Transform"/>`, `not xml`} {
		if _, err := Compile([]byte(src), Options{}); err == nil {
			t.Errorf("Compile(%q) accepted it", src)
		}
	}
}

func transformString(t *testing.T, ss string, opts Options, input string) ([]byte, error) {
	t.Helper()
	s, err := Compile([]byte(ss), opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s.Transform(mustParse(t, input), nil)
}

func TestRecursionLimit(t *testing.T) {
	t.Parallel()
	ss := xslHead + `<xsl:template match="/"><xsl:call-template name="loop"/></xsl:template>
<xsl:template name="loop"><x><xsl:call-template name="loop"/></x></xsl:template>
</xsl:stylesheet>`
	_, err := transformString(t, ss, Options{MaxDepth: 50}, `<a/>`)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), `template name="loop"`) || !strings.Contains(err.Error(), "more than 50 deep") {
		t.Fatalf("got %v, want the depth limit with the template and line", err)
	}
	// Apply-templates recursion too, at the default limit.
	ss = xslHead + `<xsl:template match="*"><xsl:apply-templates select="."/></xsl:template></xsl:stylesheet>`
	if _, err = transformString(t, ss, Options{}, `<a/>`); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "1000") {
		t.Fatalf("got %v, want the default depth limit", err)
	}
	// A variable defined by itself through a template.
	ss = xslHead + `<xsl:variable name="v"><xsl:value-of select="$v"/></xsl:variable><xsl:template match="/"><xsl:value-of select="$v"/></xsl:template></xsl:stylesheet>`
	if _, err = transformString(t, ss, Options{}, `<a/>`); err == nil || !strings.Contains(err.Error(), "depends on itself") {
		t.Fatalf("got %v, want a circular variable", err)
	}
}

func TestOutputLimit(t *testing.T) {
	t.Parallel()
	// Each level doubles the output: 2^40 bytes without the limit.
	ss := xslHead + `<xsl:template match="/"><xsl:call-template name="grow"><xsl:with-param name="n" select="40"/></xsl:call-template></xsl:template>
<xsl:template name="grow"><xsl:param name="n"/><xsl:choose><xsl:when test="$n = 0">xxxxxxxx</xsl:when><xsl:otherwise>
<xsl:call-template name="grow"><xsl:with-param name="n" select="$n - 1"/></xsl:call-template>
<xsl:call-template name="grow"><xsl:with-param name="n" select="$n - 1"/></xsl:call-template></xsl:otherwise></xsl:choose></xsl:template>
</xsl:stylesheet>`
	_, err := transformString(t, ss, Options{MaxOutput: 1 << 16}, `<a/>`)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "over 65536 bytes") {
		t.Fatalf("got %v, want the output limit", err)
	}
	// Work without output is bounded too.
	ss = xslHead + `<xsl:template match="/"><xsl:call-template name="spin"><xsl:with-param name="n" select="40"/></xsl:call-template></xsl:template>
<xsl:template name="spin"><xsl:param name="n"/><xsl:if test="$n > 0">
<xsl:call-template name="spin"><xsl:with-param name="n" select="$n - 1"/></xsl:call-template>
<xsl:call-template name="spin"><xsl:with-param name="n" select="$n - 1"/></xsl:call-template></xsl:if></xsl:template>
</xsl:stylesheet>`
	_, err = transformString(t, ss, Options{MaxOutput: 1 << 10}, `<a/>`)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "instructions") {
		t.Fatalf("got %v, want the work limit", err)
	}
}

func TestMessage(t *testing.T) {
	t.Parallel()
	ss := xslHead + `<xsl:template match="/"><xsl:message>seen <xsl:value-of select="name(*)"/></xsl:message>
<xsl:if test="not(*/@id)"><xsl:message terminate="yes">order <xsl:value-of select="name(*)"/> has no id</xsl:message></xsl:if><ok/></xsl:template></xsl:stylesheet>`
	var got []string
	opts := Options{Message: func(m string) { got = append(got, m) }}
	_, err := transformString(t, ss, opts, `<order/>`)
	if !errors.Is(err, ErrTerminated) || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "order order has no id") {
		t.Fatalf("got %v, want the termination with its message and line", err)
	}
	if len(got) != 1 || got[0] != "seen order" {
		t.Fatalf("messages %q", got)
	}
	out, err := transformString(t, ss, Options{}, `<order id="1"/>`)
	if err != nil || string(out) != "<?xml version=\"1.0\"?>\n<ok/>\n" {
		t.Fatalf("got %q, %v", out, err)
	}
}

func TestRuntimeErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, body, want string }{
		{"unknown variable", `<xsl:template match="/"><xsl:value-of select="$nope"/></xsl:template>`, "line 2"},
		{"not a node-set", `<xsl:template match="/"><xsl:for-each select="'x'"/></xsl:template>`, `line 2: 'x' is not a node-set (in template match="/" (line 2))`},
		{"unknown named template", `<xsl:template match="/"><xsl:call-template name="nope"/></xsl:template>`, "no template is named nope"},
		{"attribute after children", `<xsl:template match="/"><a><b/><xsl:attribute name="x">1</xsl:attribute></a></xsl:template>`, "xsl:attribute: cannot add an attribute to <a> after its children"},
		{"bad element name", `<xsl:template match="/"><xsl:element name="{'1x'}"/></xsl:template>`, `"1x" is not a valid element name`},
		{"guarded extension called", `<xsl:template match="/"><xsl:if test="not(function-available('str:tokenize'))"><xsl:value-of select="str:tokenize('a b')"/></xsl:if></xsl:template>`, "the extension function {http://exslt.org/strings}tokenize is not supported"},
		{"unknown key", `<xsl:template match="/"><xsl:value-of select="key('k', 'v')"/></xsl:template>`, `no xsl:key is named "k"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := transformString(t, xslHead+c.body+"\n</xsl:stylesheet>", Options{}, `<a/>`)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

func TestMediaType(t *testing.T) {
	t.Parallel()
	for method, want := range map[string]string{"": "application/xml", `method="xml"`: "application/xml", `method="text"`: "text/plain", `method="html"`: "text/html", `method="text" media-type="text/csv"`: "text/csv"} {
		s, err := Compile([]byte(xslHead+`<xsl:output `+method+`/></xsl:stylesheet>`), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.MediaType(); got != want {
			t.Errorf("%s: MediaType() = %q, want %q", method, got, want)
		}
	}
}

// TestConcurrentTransforms uses one Stylesheet from many goroutines (run
// with -race).
func TestConcurrentTransforms(t *testing.T) {
	t.Parallel()
	ss := xslHead + `<xsl:key name="k" match="i" use="@v"/><xsl:variable name="g"><x><xsl:value-of select="count(//i)"/></x></xsl:variable>
<xsl:template match="/"><r n="{count(key('k', '2'))}" g="{exsl:node-set($g)/x}"><xsl:for-each select="//i"><xsl:sort select="@v" data-type="number" order="descending"/><xsl:copy-of select="."/></xsl:for-each></r></xsl:template></xsl:stylesheet>`
	s, err := Compile([]byte(ss), Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc := mustParse(t, `<a><i v="1"/><i v="2"/><i v="3"/><i v="2"/></a>`)
	want := "<?xml version=\"1.0\"?>\n<r n=\"2\" g=\"4\"><i v=\"3\"/><i v=\"2\"/><i v=\"2\"/><i v=\"1\"/></r>\n"
	done := make(chan error)
	for range 8 {
		go func() {
			for range 50 {
				out, err := s.Transform(doc, nil)
				if err == nil && string(out) != want {
					err = errors.New("got " + string(out))
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
