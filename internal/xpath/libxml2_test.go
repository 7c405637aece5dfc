package xpath

// The differential tests compare this package with libxml2's XPath engine,
// driven through xmllint's shell (xmllint --shell), which can register
// namespace prefixes (setns) and evaluate many expressions in one process:
// one process per document per phase keeps the tests to a few seconds.
//
// What differs only by presentation, and how it is normalized:
//
//   - The shell evaluates with no context position and size, so last()
//     and position() at the top level fail there; the corpus does not use
//     them outside predicates.
//
//   - The shell prints at most 40 bytes of a string, with each blank
//     (space, tab, CR, LF) as a space and each byte >= 0x80 as #XX. So every
//     string is fetched as 9-character substrings (at most 36 bytes), and
//     compared with our string put in the same form.
//   - libxml2 writes numbers with 15 significant digits and uses an
//     exponent for magnitudes from 1e9 (non-integers, or integers beyond
//     the int range) or below 1e-5 (0.1+0.2 is 0.3, 1e10 is 1e+10);
//     XPath 1.0 §4.2 asks for as many digits as make the number unique and
//     never an exponent, which is what NumberToString does. A number result
//     is compared as a number (equal, both NaN, or within a relative 1e-14),
//     and a string that differs is accepted when it differs only in numbers
//     that are so close.
//   - CDATA sections are separate text nodes in libxml2 unless --nocdata
//     merges them into the text around them, as the XPath data model (and
//     xmltree) do; the tests pass --nocdata.
//
// Known divergences, which the corpus and the generated expressions avoid
// (unit tests cover our side):
//
//   - The following axis of an attribute: XPath 1.0 puts the element's
//     children after its attributes in document order and they are not the
//     attribute's descendants, so they are on the attribute's following
//     axis; libxml2 starts after the element's end.
//   - id(): without a DTD libxml2 knows only xml:id attributes as IDs; we
//     also take attributes named id (DTDs are refused by xmltree, so there
//     is no other way to declare an ID).
//   - Steps from several context nodes on the following-sibling,
//     preceding-sibling, following and preceding axes, or with a
//     positional predicate: libxml2 can leave the result out of document
//     order, so positions and string() see another node. With
//     <r> <a>one<b>2</b><b/></a> <c/> </r>, (//following::node()[1])[2]
//     is the first b (a text node with libxml2), and
//     (/*/*/preceding::node())[last()] the space before c (the last b with
//     libxml2). The corpus keeps such expressions to forms libxml2 gets
//     right; the fuzz grammar avoids them.
//   - id() with leading whitespace in its argument: libxml2 finds only
//     some of the IDs (count(id('  a  b ')) is 1 for two elements).
//   - Numbers: libxml2 accepts an exponent (1e3) in expressions and in
//     number(), and reads a lone minus sign as 0; to XPath 1.0
//     number('1e3') and number('-') are NaN, and 1e3 is a syntax error.

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// xmllintPath finds xmllint or skips the test; SLUICE_TEST_LIBXML2=required
// makes its absence a failure.
func xmllintPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("SLUICE_TEST_LIBXML2") == "required" {
			t.Fatalf("xmllint is required (SLUICE_TEST_LIBXML2=required) but not found: %v", err)
		}
		t.Skip("xmllint (libxml2-utils) is not installed; set SLUICE_TEST_LIBXML2=required to fail instead")
	}
	return p
}

// maxShellArg is the longest expression xmllint's shell takes (its
// argument buffer has 400 bytes); a longer one is cut.
const maxShellArg = 399

// maxCheckLen is the longest check expression that still fits once
// wrapped for the shell: string(string-length(E)) or substring(E, n, 9).
const maxCheckLen = maxShellArg - len("string(string-length())")

// runShell evaluates each expression with libxml2 on the document file and
// returns what the shell printed for each, after "Object is ".
func runShell(xmllint, file string, ns map[string]string, exprs []string) ([]string, error) {
	var in bytes.Buffer
	for p, uri := range ns {
		fmt.Fprintf(&in, "setns %s=%s\n", p, uri)
	}
	for _, e := range exprs {
		if strings.ContainsAny(e, "\n\r") || len(e) > maxShellArg {
			return nil, fmt.Errorf("expression too long or on several lines for xmllint's shell: %q", e)
		}
		fmt.Fprintf(&in, "xpath %s\n", e)
	}
	cmd := exec.Command(xmllint, "--nocdata", "--shell", file)
	cmd.Stdin = &in
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("xmllint: %v: %s", err, errOut.String())
	}
	var res []string
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for strings.HasPrefix(line, "/ > ") {
			line = line[4:]
		}
		if line == "" || line == "/ >" {
			continue
		}
		obj, ok := strings.CutPrefix(line, "Object is ")
		if !ok {
			return nil, fmt.Errorf("unexpected xmllint output line %q", line)
		}
		res = append(res, obj)
	}
	if len(res) != len(exprs) {
		return nil, fmt.Errorf("xmllint printed %d results for %d expressions", len(res), len(exprs))
	}
	return res, nil
}

const libString = "a string : "

// dumpString is s as the shell prints it (without its 40-byte cut).
func dumpString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			b.WriteByte(' ')
		case c >= 0x80:
			fmt.Fprintf(&b, "#%X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// libNumber reads a number libxml2 wrote with string().
func libNumber(obj string) (float64, bool) {
	s, ok := strings.CutPrefix(obj, libString)
	if !ok {
		return 0, false
	}
	switch s {
	case "NaN":
		return math.NaN(), true
	case "Infinity":
		return math.Inf(1), true
	case "-Infinity":
		return math.Inf(-1), true
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

func closeNumbers(a, b float64) bool {
	if a == b || math.IsNaN(a) && math.IsNaN(b) {
		return true
	}
	if math.IsInf(a, 0) || math.IsInf(b, 0) || math.IsNaN(a) || math.IsNaN(b) {
		return false
	}
	return math.Abs(a-b) <= 1e-14*math.Max(math.Abs(a), math.Abs(b))
}

var numberRun = regexp.MustCompile(`-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?`)

// sameButNumbers reports whether two dumped strings differ only in numbers
// written with different precision or notation.
func sameButNumbers(ours, theirs string) bool {
	a, b := numberRun.FindAllStringIndex(ours, -1), numberRun.FindAllStringIndex(theirs, -1)
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	pa, pb := 0, 0
	for i := range a {
		if ours[pa:a[i][0]] != theirs[pb:b[i][0]] {
			return false
		}
		x, err1 := strconv.ParseFloat(ours[a[i][0]:a[i][1]], 64)
		y, err2 := strconv.ParseFloat(theirs[b[i][0]:b[i][1]], 64)
		if err1 != nil || err2 != nil || !closeNumbers(x, y) {
			return false
		}
		pa, pb = a[i][1], b[i][1]
	}
	return ours[pa:] == theirs[pb:]
}

// check is one comparison: a derived expression whose value, as a string
// (or as a number when num), both engines must agree on.
type check struct {
	label string // the expression from the corpus, and the document
	expr  string // what is evaluated on both sides
	num   bool
	fail  bool // ours fails to compile or evaluate: libxml2 must fail too
	ours  string
	ourN  float64

	libLen   int // string length libxml2 reports
	libFirst int // index of the first result of phase 2
}

// diffCase is an expression to compare on a document.
type diffCase struct {
	label, expr string
}

// diffResult is a difference found.
type diffResult struct {
	label, expr, ours, theirs string
}

// derive makes the checks for an expression: its value (a node-set's count,
// string value and the identity of its first, second and last nodes).
func derive(c diffCase, eval func(string) (Value, error)) []*check {
	v, err := eval(c.expr)
	if err != nil {
		return []*check{{label: c.label, expr: "string(" + c.expr + ")", fail: true, ours: err.Error()}}
	}
	var exprs []string
	var nums []bool
	switch x := v.(type) {
	case float64:
		exprs, nums = append(exprs, c.expr), append(nums, true)
	case NodeSet:
		exprs, nums = append(exprs, "count("+c.expr+")", "string("+c.expr+")"), append(nums, true, false)
		fp := func(k string) string {
			n := "(" + c.expr + ")[" + k + "]"
			return "concat(name(" + n + "), '|', count(" + n + "/preceding::node()), '|', count(" + n + "/ancestor-or-self::node()))"
		}
		for i, k := range []string{"1", "2", "last()"} {
			if i < len(x) && len(fp(k)) <= maxCheckLen {
				exprs, nums = append(exprs, fp(k)), append(nums, false)
			}
		}
	default:
		exprs, nums = append(exprs, "string("+c.expr+")"), append(nums, false)
	}
	var out []*check
	for i, e := range exprs {
		ck := &check{label: c.label, expr: e, num: nums[i]}
		v, err := eval(e)
		if err != nil {
			ck.fail, ck.ours = true, err.Error()
		} else if ck.num {
			ck.ourN = Number(v)
			ck.ours = NumberToString(ck.ourN)
		} else {
			ck.ours = String(v)
		}
		out = append(out, ck)
	}
	return out
}

func chunkExprs(e string, n int) []string {
	var out []string
	for k := 0; k*9 < n; k++ {
		out = append(out, fmt.Sprintf("substring(%s, %d, 9)", e, 9*k+1))
	}
	return out
}

// compareWithLibxml2 runs the checks of cases on one document and returns
// the differences and the number of checks made.
func compareWithLibxml2(xmllint, file string, ns map[string]string, cases []diffCase, eval func(string) (Value, error)) ([]diffResult, int, error) {
	var checks []*check
	for _, c := range cases {
		checks = append(checks, derive(c, eval)...)
	}
	// Phase 1: numbers, failures, string lengths and the chunks of our
	// strings.
	var q []string
	for _, ck := range checks {
		switch {
		case ck.fail || ck.num:
			q = append(q, "string("+ck.expr+")")
		default:
			q = append(q, "string(string-length("+ck.expr+"))")
			ck.libFirst = len(q)
			q = append(q, chunkExprs(ck.expr, utf8.RuneCountInString(ck.ours))...)
		}
	}
	res, err := runShell(xmllint, file, ns, q)
	if err != nil {
		return nil, 0, err
	}
	var diffs []diffResult
	var again []*check
	i := 0
	for _, ck := range checks {
		switch {
		case ck.fail:
			if res[i] != "empty (NULL)" {
				diffs = append(diffs, diffResult{ck.label, ck.expr, "error: " + ck.ours, res[i]})
			}
			i++
		case ck.num:
			f, ok := libNumber(res[i])
			if !ok || !closeNumbers(ck.ourN, f) {
				diffs = append(diffs, diffResult{ck.label, ck.expr, ck.ours, res[i]})
			}
			i++
		default:
			n, ok := libNumber(res[i])
			if !ok {
				diffs = append(diffs, diffResult{ck.label, ck.expr, ck.ours, res[i]})
				i += 1 + len(chunkExprs(ck.expr, utf8.RuneCountInString(ck.ours)))
				continue
			}
			ck.libLen = int(n)
			chunks := len(chunkExprs(ck.expr, utf8.RuneCountInString(ck.ours)))
			if ck.libLen != utf8.RuneCountInString(ck.ours) {
				again = append(again, ck)
			} else if d := compareChunks(ck, res[i+1:i+1+chunks]); d != nil {
				diffs = append(diffs, *d)
			}
			i += 1 + chunks
		}
	}
	if len(again) > 0 {
		// Phase 2: the strings libxml2 made of another length, in full.
		q = q[:0]
		for _, ck := range again {
			ck.libFirst = len(q)
			q = append(q, chunkExprs(ck.expr, ck.libLen)...)
		}
		if res, err = runShell(xmllint, file, ns, q); err != nil {
			return nil, 0, err
		}
		for _, ck := range again {
			n := len(chunkExprs(ck.expr, ck.libLen))
			if d := compareChunks(ck, res[ck.libFirst:ck.libFirst+n]); d != nil {
				diffs = append(diffs, *d)
			}
		}
	}
	return diffs, len(checks), nil
}

func compareChunks(ck *check, res []string) *diffResult {
	var theirs strings.Builder
	for _, r := range res {
		s, ok := strings.CutPrefix(r, libString)
		if !ok {
			return &diffResult{ck.label, ck.expr, ck.ours, r}
		}
		theirs.WriteString(s)
	}
	ours := dumpString(ck.ours)
	if ours == theirs.String() || sameButNumbers(ours, theirs.String()) {
		return nil
	}
	return &diffResult{ck.label, ck.expr, ours, theirs.String()}
}
