package xpath

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// xsltprocPath finds xsltproc or skips the test; SLUICE_TEST_LIBXML2=required
// makes its absence a failure (libxslt comes with libxml2 in CI).
func xsltprocPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("xsltproc")
	if err != nil {
		if os.Getenv("SLUICE_TEST_LIBXML2") == "required" {
			t.Fatalf("xsltproc is required (SLUICE_TEST_LIBXML2=required) but not found: %v", err)
		}
		t.Skip("xsltproc is not installed; set SLUICE_TEST_LIBXML2=required to fail instead")
	}
	return p
}

func readPatterns(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "patterns.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

func attrEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", `"`, "&quot;")
	return r.Replace(s)
}

// nodeFingerprint names a node the same way on both sides, without
// relying on the order of a node-set: libxslt orders attributes and other
// nodes differently in one set (xsl:for-each over / | //node() | //@*).
const nodeFingerprint = "concat(name(), '|', count(ancestor::node()), '|', count(preceding::node()), '|', count(self::*), count(preceding-sibling::node()))"

// patternStylesheet makes a stylesheet that, for each node of the document
// (the root, //node() and //@*), writes "fingerprint=k;" for each pattern
// k that matches it. Pattern k is the match of the only template in mode
// mk, besides a catch-all of priority -100.
func patternStylesheet(patterns []string, ns map[string]string) string {
	var b strings.Builder
	b.WriteString(`<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"`)
	for p, uri := range ns {
		fmt.Fprintf(&b, ` xmlns:%s="%s"`, p, uri)
	}
	b.WriteString(">\n<xsl:output method=\"text\"/>\n")
	b.WriteString(`<xsl:key name="k" match="*" use="@*"/>` + "\n")
	b.WriteString(`<xsl:template match="/"><xsl:for-each select="/ | //node() | //@*">`)
	fmt.Fprintf(&b, `<xsl:variable name="f" select="%s"/>`, attrEscape(nodeFingerprint))
	for k := range patterns {
		fmt.Fprintf(&b, `<xsl:apply-templates select="." mode="m%d"><xsl:with-param name="f" select="$f"/></xsl:apply-templates>`, k)
	}
	b.WriteString("</xsl:for-each></xsl:template>\n")
	for k, p := range patterns {
		fmt.Fprintf(&b, `<xsl:template match="%s" mode="m%d"><xsl:param name="f"/><xsl:value-of select="$f"/>=%d;</xsl:template>`+"\n", attrEscape(p), k, k)
		fmt.Fprintf(&b, `<xsl:template match="/ | node() | @*" mode="m%d" priority="-100"/>`+"\n", k)
	}
	b.WriteString("</xsl:stylesheet>\n")
	return b.String()
}

// keyEnv supplies key('k', v) as the stylesheet declares it: the elements
// with an attribute whose value is v.
type keyEnv struct{}

func (keyEnv) Variable(string, string) (Value, bool) { return nil, false }
func (keyEnv) Function(space, local string) (Func, bool) {
	if space != "" || local != "key" {
		return nil, false
	}
	return func(c *Context, args []Value) (Value, error) {
		v := String(args[1])
		var out NodeSet
		walkDescendants(rootOf(c.Node), func(n *xmltree.Node) bool {
			if n.Kind == xmltree.Element {
				for _, a := range n.Attrs {
					if a.Data == v {
						out = append(out, n)
						break
					}
				}
			}
			return true
		})
		return out, nil
	}, true
}

// TestPatternDifferentialLibxslt matches every pattern of
// testdata/patterns.txt against every node of the documents of testdata,
// here and with libxslt (xsltproc), and compares which nodes match.
func TestPatternDifferentialLibxslt(t *testing.T) {
	t.Parallel()
	xsltproc := xsltprocPath(t)
	patterns := readPatterns(t)
	opts := nsOptions(diffNamespaces)
	compiled := make([]*Pattern, len(patterns))
	for k, p := range patterns {
		var err error
		if compiled[k], err = CompilePattern(p, opts); err != nil {
			t.Fatalf("CompilePattern(%q): %v", p, err)
		}
	}
	sheet := filepath.Join(t.TempDir(), "patterns.xsl")
	if err := os.WriteFile(sheet, []byte(patternStylesheet(patterns, diffNamespaces)), 0o600); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			doc := parseFile(t, file)
			nodes := MustCompile("/ | //node() | //@*", Options{}).root
			v, err := nodes.eval(&Context{Node: doc})
			if err != nil {
				t.Fatal(err)
			}
			fingerprint := MustCompile(nodeFingerprint, Options{})
			ours := map[string]bool{}
			names := map[string]string{} // fingerprint → path, for messages
			for _, n := range v.(NodeSet) {
				fv, err := fingerprint.Eval(&Context{Node: n})
				if err != nil {
					t.Fatal(err)
				}
				f := String(fv)
				names[f] = n.Path()
				for k, p := range compiled {
					ok, err := p.Match(n, keyEnv{})
					if err != nil {
						t.Fatalf("%s on %s: %v", patterns[k], n.Path(), err)
					}
					if ok {
						ours[f+"="+strconv.Itoa(k)] = true
					}
				}
			}
			cmd := exec.Command(xsltproc, "--nonet", sheet, file)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Run(); err != nil {
				t.Fatalf("xsltproc: %v: %s", err, errOut.String())
			}
			theirs := map[string]bool{}
			for _, m := range strings.Split(out.String(), ";") {
				if m = strings.TrimSpace(m); m != "" {
					theirs[m] = true
				}
			}
			report := map[int][2][]string{}
			for m := range ours {
				if !theirs[m] {
					f, k, _ := strings.Cut(m, "=")
					ki, _ := strconv.Atoi(k)
					r := report[ki]
					r[0] = append(r[0], names[f])
					report[ki] = r
				}
			}
			for m := range theirs {
				if !ours[m] {
					f, k, _ := strings.Cut(m, "=")
					ki, _ := strconv.Atoi(k)
					r := report[ki]
					name := names[f]
					if name == "" {
						name = "(" + f + ")"
					}
					r[1] = append(r[1], name)
					report[ki] = r
				}
			}
			for k, p := range patterns {
				if r, ok := report[k]; ok {
					sort.Strings(r[0])
					sort.Strings(r[1])
					t.Errorf("%s: matched only here: %v; only by libxslt: %v", p, r[0], r[1])
				}
			}
			t.Logf("%d patterns on %d nodes: %d matches here, %d by libxslt", len(patterns), len(v.(NodeSet)), len(ours), len(theirs))
		})
	}
}
