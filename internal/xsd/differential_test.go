package xsd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// The differential corpus: testdata/<case>/schema.xsd is a schema (the
// other .xsd files there are what it includes and imports) and every
// <case>/*.xml an instance. Each instance gets the same verdict from
// Validate as from libxml2 (xmllint --schema), and for an invalid one our
// first violation is on the first line libxml2 reports an error on.
// testdata/invalid-schemas/*.xsd are schemas libxml2 refuses: Compile
// refuses them too.

func xmllintPath(t testing.TB) string {
	p, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("SLUICE_TEST_LIBXML2") == "required" {
			t.Fatalf("xmllint is required (SLUICE_TEST_LIBXML2=required) but not found: %v", err)
		}
		t.Skip("xmllint not installed; set SLUICE_TEST_LIBXML2=required to fail instead")
	}
	return p
}

// lintResult is libxml2's verdict on one instance.
type lintResult struct {
	valid bool
	lines []int // lines of the errors it reported
	text  string
}

var lintLine = regexp.MustCompile(`^(.*?):(\d+): (?:element|Schemas|parser)`)

// xmllint validates files against schema in one run; a nil map and an
// error when libxml2 cannot compile the schema.
func xmllint(ctx context.Context, bin, dir, schema string, files []string) (map[string]*lintResult, string, error) {
	args := append([]string{"--noout", "--nonet", "--schema", schema}, files...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	if strings.Contains(text, "failed to compile") {
		return nil, text, errors.New("schema refused")
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return nil, text, err
	}
	res := map[string]*lintResult{}
	for _, f := range files {
		res[f] = &lintResult{}
	}
	for _, line := range strings.Split(text, "\n") {
		for _, f := range files {
			switch line {
			case f + " validates":
				res[f].valid = true
				continue
			case f + " fails to validate":
				continue
			}
			if m := lintLine.FindStringSubmatch(line); m != nil && m[1] == f {
				n, _ := strconv.Atoi(m[2])
				res[f].lines = append(res[f].lines, n)
				res[f].text += line + "\n"
			}
		}
	}
	return res, text, nil
}

func dirResolver(dir string) func(string, string) ([]byte, error) {
	return func(loc, ns string) ([]byte, error) {
		if loc == "" || strings.Contains(loc, "://") || strings.Contains(loc, "..") {
			return nil, fmt.Errorf("no registered schema for %q", cmpOr(loc, ns))
		}
		return os.ReadFile(filepath.Join(dir, loc))
	}
}

func compileFile(t testing.TB, path string) (*Schema, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Compile(data, Options{Resolve: dirResolver(filepath.Dir(path))})
}

type corpusCase struct {
	dir    string
	schema string
	docs   []string
}

func corpus(t testing.TB) []corpusCase {
	dirs, err := filepath.Glob("testdata/*/schema.xsd")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	var out []corpusCase
	for _, s := range dirs {
		dir := filepath.Dir(s)
		docs, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
		for i := range docs {
			docs[i] = filepath.Base(docs[i])
		}
		sort.Strings(docs)
		out = append(out, corpusCase{dir: dir, schema: s, docs: docs})
	}
	return out
}

// verdictDivergences lists instances on which we deliberately disagree with
// libxml2, and why; the test checks the verdicts still differ.
var verdictDivergences = map[string]string{
	"payment-numbers/valid-rate-49-1-5E.xml": "libxml2 accepts a float exponent without digits (1.5E); XSD does not",
}

func TestDifferentialCorpus(t *testing.T) {
	bin := xmllintPath(t)
	cases := corpus(t)
	type lintOut struct {
		res  map[string]*lintResult
		text string
		err  error
	}
	results := make([]lintOut, len(cases))
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i, c := range cases {
		wg.Go(func() {
			res, text, err := xmllint(ctx, bin, c.dir, "schema.xsd", c.docs)
			results[i] = lintOut{res, text, err}
		})
	}
	wg.Wait()
	total, invalid := 0, 0
	for i, c := range cases {
		t.Run(filepath.Base(c.dir), func(t *testing.T) {
			lo := results[i]
			s, cerr := compileFile(t, c.schema)
			if lo.err != nil {
				if cerr == nil {
					t.Fatalf("libxml2 refuses the schema but Compile accepts it:\n%s", lo.text)
				}
				return
			}
			if cerr != nil {
				t.Fatalf("Compile: %v (libxml2 accepts the schema)", cerr)
			}
			for _, name := range c.docs {
				total++
				data, err := os.ReadFile(filepath.Join(c.dir, name))
				if err != nil {
					t.Fatal(err)
				}
				doc, err := xmltree.Parse(data, xmltree.Limits{})
				if err != nil {
					t.Errorf("%s: parse: %v", name, err)
					continue
				}
				vs := s.Validate(doc)
				lr := lo.res[name]
				if why := verdictDivergences[filepath.Base(c.dir)+"/"+name]; why != "" {
					if lr.valid == (len(vs) == 0) {
						t.Errorf("%s: listed as a divergence (%s) but libxml2 and Validate now agree", name, why)
					}
					continue
				}
				if lr.valid != (len(vs) == 0) {
					t.Errorf("%s: libxml2 says valid=%v, we found %d violations: %v\nlibxml2:\n%s", name, lr.valid, len(vs), vs, lr.text)
					continue
				}
				if lr.valid {
					continue
				}
				invalid++
				if len(lr.lines) > 0 {
					if first := slices.Min(lr.lines); vs[0].Line != first && !sameStartTag(data, vs[0].Line, first) {
						t.Errorf("%s: our first violation is on line %d, libxml2's on line %d\nours: %v\nlibxml2:\n%s", name, vs[0].Line, first, vs, lr.text)
					}
				}
			}
		})
	}
	t.Logf("%d schemas, %d instances (%d invalid) agree with libxml2", len(cases), total, invalid)
}

func TestInvalidSchemasRefused(t *testing.T) {
	bin := xmllintPath(t)
	files, _ := filepath.Glob("testdata/invalid-schemas/*.xsd")
	if len(files) == 0 {
		t.Fatal("no invalid schemas")
	}
	dummy := filepath.Join(t.TempDir(), "d.xml")
	if err := os.WriteFile(dummy, []byte("<x/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() {
			abs, _ := filepath.Abs(f)
			_, _, errs[i] = xmllint(context.Background(), bin, "", abs, []string{dummy})
		})
	}
	wg.Wait()
	for i, f := range files {
		if errs[i] == nil {
			t.Errorf("%s: libxml2 accepts this schema; it does not belong in invalid-schemas", f)
			continue
		}
		if _, err := compileFile(t, f); err == nil {
			t.Errorf("%s: libxml2 refuses this schema but Compile accepts it", f)
		} else {
			t.Logf("%s: %v", filepath.Base(f), err)
		}
	}
}

// sameStartTag reports whether line b is still within a start tag that
// opens on line a: libxml2 numbers an element by the line its start tag
// ends on, xmltree (and so Violation.Line) by the line it starts on.
func sameStartTag(src []byte, a, b int) bool {
	if b <= a {
		return false
	}
	lines := strings.Split(string(src), "\n")
	if b > len(lines) {
		return false
	}
	first := lines[a-1]
	i := strings.LastIndexByte(first, '<')
	if i < 0 {
		return false
	}
	seg := first[i:] + "\n" + strings.Join(lines[a:b-1], "\n")
	return !strings.Contains(seg, ">")
}

// TestRefusedSchemas: schemas libxml2 accepts but that break XSD rules
// Compile enforces (minLength over maxLength, a weakened whiteSpace).
func TestRefusedSchemas(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/refused-schemas/*.xsd")
	if len(files) == 0 {
		t.Fatal("no refused schemas")
	}
	for _, f := range files {
		if _, err := compileFile(t, f); err == nil {
			t.Errorf("%s: Compile accepts it", f)
		}
	}
}

// TestContentModelDeterminism compares Compile's Unique Particle
// Attribution check with libxml2's on content models.
func TestContentModelDeterminism(t *testing.T) {
	bin := xmllintPath(t)
	models := []string{
		`<xs:sequence><xs:element name="b" minOccurs="2" maxOccurs="2"/><xs:element name="b" minOccurs="0"/></xs:sequence>`,
		`<xs:sequence><xs:element name="b" minOccurs="0"/><xs:element name="b"/></xs:sequence>`,
		`<xs:sequence><xs:element name="b" maxOccurs="unbounded"/><xs:element name="c"/></xs:sequence>`,
		`<xs:sequence><xs:element name="b" maxOccurs="3"/><xs:element name="b"/></xs:sequence>`,
		`<xs:choice><xs:element name="b"/><xs:sequence><xs:element name="b"/><xs:element name="c"/></xs:sequence></xs:choice>`,
		`<xs:choice maxOccurs="unbounded"><xs:element name="b"/><xs:element name="c"/></xs:choice>`,
		`<xs:sequence><xs:choice minOccurs="0"><xs:element name="b"/><xs:element name="c"/></xs:choice><xs:element name="c"/></xs:sequence>`,
		`<xs:sequence><xs:any namespace="##other" processContents="lax" minOccurs="0"/><xs:element name="b"/></xs:sequence>`,
		`<xs:sequence><xs:any namespace="##any" processContents="lax" minOccurs="0"/><xs:element name="b"/></xs:sequence>`,
		`<xs:sequence><xs:any namespace="##local" processContents="lax" minOccurs="0"/><xs:element name="b"/></xs:sequence>`,
		`<xs:sequence maxOccurs="2"><xs:element name="b"/><xs:element name="c" minOccurs="0"/></xs:sequence>`,
		`<xs:sequence maxOccurs="unbounded"><xs:element name="b" minOccurs="0"/><xs:element name="c" minOccurs="0"/></xs:sequence>`,
		`<xs:sequence><xs:sequence minOccurs="0"><xs:element name="b"/><xs:element name="c"/></xs:sequence><xs:element name="b"/></xs:sequence>`,
		`<xs:all><xs:element name="b"/><xs:element name="c" minOccurs="0"/></xs:all>`,
		`<xs:sequence><xs:element name="b" minOccurs="0" maxOccurs="2"/><xs:element name="c"/><xs:element name="b" minOccurs="0"/></xs:sequence>`,
		`<xs:choice><xs:any namespace="urn:x" processContents="skip"/><xs:any namespace="urn:y" processContents="skip"/></xs:choice>`,
		`<xs:choice><xs:any namespace="urn:x" processContents="skip"/><xs:any namespace="##other" processContents="skip"/></xs:choice>`,
		`<xs:choice><xs:element name="b"/><xs:element name="c"/><xs:element name="b"/></xs:choice>`,
		`<xs:choice maxOccurs="unbounded"><xs:element name="b"/><xs:element name="c"/><xs:element name="b"/></xs:choice>`,
		`<xs:sequence><xs:choice><xs:element name="b"/><xs:element name="b"/></xs:choice><xs:element name="b"/></xs:sequence>`,
	}
	dir := t.TempDir()
	dummy := filepath.Join(dir, "d.xml")
	if err := os.WriteFile(dummy, []byte("<a/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := make([]bool, len(models))
	var wg sync.WaitGroup
	for i, m := range models {
		path := filepath.Join(dir, fmt.Sprintf("m%d.xsd", i))
		src := `<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t" elementFormDefault="unqualified"><xs:element name="a"><xs:complexType>` + m + `</xs:complexType></xs:element></xs:schema>`
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			_, _, err := xmllint(context.Background(), bin, dir, path, []string{dummy})
			refused[i] = err != nil
		})
	}
	wg.Wait()
	// libxml2 accepts b{1,3},b and validates it as a nondeterministic
	// automaton; XSD's Unique Particle Attribution forbids it (which b
	// does the second one match?), and Compile refuses it.
	stricter := map[int]bool{3: true}
	for i, m := range models {
		src, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("m%d.xsd", i)))
		_, err := Compile(src, Options{})
		if stricter[i] {
			if err == nil || refused[i] {
				t.Errorf("%s: expected only Compile to refuse it; libxml2 refuses: %v; Compile: %v", m, refused[i], err)
			}
			continue
		}
		if (err != nil) != refused[i] {
			t.Errorf("%s\nlibxml2 refuses: %v; Compile: %v", m, refused[i], err)
		}
	}
}

// stricterThanLibxml2 reports whether Compile refused a schema for one of
// the reasons the package documentation lists as stricter than libxml2.
func stricterThanLibxml2(err error) bool {
	for _, why := range []string{"Unique Particle Attribution", "is greater than xs:maxLength", "is weaker than the base type"} {
		if strings.Contains(err.Error(), why) {
			return true
		}
	}
	return false
}

// TestMutatedSchemas mutates the single-file corpus schemas (a line
// removed, duplicated or swapped with the next, an attribute removed or
// given another value from the schema) and requires Compile to refuse
// every mutant libxml2 refuses. Where only Compile refuses, the reason must
// be one listed in the package documentation (stricterThanLibxml2).
func TestMutatedSchemas(t *testing.T) {
	bin := xmllintPath(t)
	dir := t.TempDir()
	if d := os.Getenv("XSD_MUTANTS_DIR"); d != "" {
		dir = d
	}
	dummy := filepath.Join(dir, "d.xml")
	if err := os.WriteFile(dummy, []byte("<x/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	attrRE := regexp.MustCompile(` [a-zA-Z]+="[^"]*"`)
	valRE := regexp.MustCompile(`="([^"]*)"`)
	rng := rand.New(rand.NewPCG(1, 2))
	var files []string
	for _, c := range corpus(t) {
		if matches, _ := filepath.Glob(filepath.Join(c.dir, "*.xsd")); len(matches) != 1 {
			continue // mutants of a schema set would need its other files
		}
		data, err := os.ReadFile(c.schema)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		var vals []string
		for _, m := range valRE.FindAllStringSubmatch(string(data), -1) {
			vals = append(vals, m[1])
		}
		for i := range 16 {
			ls := slices.Clone(lines)
			k := 2 + rng.IntN(len(ls)-3)
			switch rng.IntN(5) {
			case 0:
				ls = slices.Delete(ls, k, k+1)
			case 1:
				ls = slices.Insert(ls, k, ls[k])
			case 2:
				ls[k], ls[k+1] = ls[k+1], ls[k]
			case 3:
				if locs := attrRE.FindAllStringIndex(ls[k], -1); len(locs) > 0 {
					l := locs[rng.IntN(len(locs))]
					ls[k] = ls[k][:l[0]] + ls[k][l[1]:]
				}
			case 4:
				if locs := valRE.FindAllStringSubmatchIndex(ls[k], -1); len(locs) > 0 {
					l := locs[rng.IntN(len(locs))]
					ls[k] = ls[k][:l[2]] + vals[rng.IntN(len(vals))] + ls[k][l[3]:]
				}
			}
			f := filepath.Join(dir, fmt.Sprintf("%s-%02d.xsd", filepath.Base(c.dir), i))
			if err := os.WriteFile(f, []byte(strings.Join(ls, "\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	refused := make([]bool, len(files))
	hung := make([]bool, len(files))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, f := range files {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, _, err := xmllint(ctx, bin, dir, f, []string{dummy})
			refused[i] = err != nil
			// libxml2 can take very long over some content models;
			// those mutants are left out.
			hung[i] = ctx.Err() != nil
		})
	}
	wg.Wait()
	agree := 0
	for i, f := range files {
		if hung[i] {
			t.Logf("%s: xmllint did not finish; skipped", filepath.Base(f))
			continue
		}
		data, _ := os.ReadFile(f)
		_, err := Compile(data, Options{})
		switch {
		case (err != nil) == refused[i]:
			agree++
		case refused[i]:
			t.Errorf("%s: libxml2 refuses it, Compile accepts it", filepath.Base(f))
		case !stricterThanLibxml2(err):
			t.Errorf("%s: libxml2 accepts it, Compile refuses it: %v", filepath.Base(f), err)
		}
	}
	t.Logf("%d of %d mutated schemas get libxml2's verdict", agree, len(files))
}

// TestMutatedInstances mutates the corpus instances (a line removed,
// duplicated or swapped with the next, an attribute removed, a value
// replaced by another from the same directory) and requires Validate's
// verdict and first line to be libxml2's.
func TestMutatedInstances(t *testing.T) {
	bin := xmllintPath(t)
	rng := rand.New(rand.NewPCG(7, 8))
	attrRE := regexp.MustCompile(` [a-zA-Z:]+="[^"]*"`)
	valRE := regexp.MustCompile(`="([^"]*)"|>([^<>]+)<`)
	perDir := 12
	if n, err := strconv.Atoi(os.Getenv("XSD_MUTANTS")); err == nil {
		perDir = n
	}
	type job struct {
		c     corpusCase
		dir   string
		names []string
		res   map[string]*lintResult
		err   error
	}
	var jobs []*job
	for _, c := range corpus(t) {
		if len(c.docs) == 0 {
			continue
		}
		j := &job{c: c, dir: t.TempDir()}
		// The schema and what it includes, beside the mutants.
		xsds, _ := filepath.Glob(filepath.Join(c.dir, "*.xsd"))
		subs, _ := filepath.Glob(filepath.Join(c.dir, "*", "*.xsd"))
		for _, x := range append(xsds, subs...) {
			rel, _ := filepath.Rel(c.dir, x)
			data, _ := os.ReadFile(x)
			_ = os.MkdirAll(filepath.Dir(filepath.Join(j.dir, rel)), 0o700)
			if err := os.WriteFile(filepath.Join(j.dir, rel), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var vals []string
		var texts [][]string
		for _, d := range c.docs {
			if verdictDivergences[filepath.Base(c.dir)+"/"+d] != "" {
				continue // its values are where we differ from libxml2
			}
			data, _ := os.ReadFile(filepath.Join(c.dir, d))
			texts = append(texts, strings.Split(string(data), "\n"))
			for _, m := range valRE.FindAllStringSubmatch(string(data), -1) {
				vals = append(vals, m[1]+m[2])
			}
		}
		for i := range perDir {
			ls := slices.Clone(texts[rng.IntN(len(texts))])
			if len(ls) < 5 {
				continue
			}
			k := 2 + rng.IntN(len(ls)-3)
			switch rng.IntN(5) {
			case 0:
				ls = slices.Delete(ls, k, k+1)
			case 1:
				ls = slices.Insert(ls, k, ls[k])
			case 2:
				ls[k], ls[k+1] = ls[k+1], ls[k]
			case 3:
				if locs := attrRE.FindAllStringIndex(ls[k], -1); len(locs) > 0 {
					l := locs[rng.IntN(len(locs))]
					ls[k] = ls[k][:l[0]] + ls[k][l[1]:]
				}
			case 4:
				if locs := valRE.FindAllStringSubmatchIndex(ls[k], -1); len(locs) > 0 {
					l := locs[rng.IntN(len(locs))]
					a, b := l[2], l[3]
					if a < 0 {
						a, b = l[4], l[5]
					}
					v := strings.NewReplacer("<", "&lt;", "&", "&amp;").Replace(vals[rng.IntN(len(vals))])
					ls[k] = ls[k][:a] + v + ls[k][b:]
				}
			}
			name := fmt.Sprintf("m%02d.xml", i)
			if err := os.WriteFile(filepath.Join(j.dir, name), []byte(strings.Join(ls, "\n")), 0o600); err != nil {
				t.Fatal(err)
			}
			j.names = append(j.names, name)
		}
		jobs = append(jobs, j)
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			j.res, _, j.err = xmllint(ctx, bin, j.dir, "schema.xsd", j.names)
		})
	}
	wg.Wait()
	total, agree := 0, 0
	for _, j := range jobs {
		if j.err != nil {
			t.Fatalf("%s: %v", j.c.dir, j.err)
		}
		s, err := compileFile(t, filepath.Join(j.dir, "schema.xsd"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range j.names {
			data, _ := os.ReadFile(filepath.Join(j.dir, name))
			doc, err := xmltree.Parse(data, xmltree.Limits{})
			lr := j.res[name]
			if err != nil || strings.Contains(lr.text, "parser error") {
				continue // not well-formed (xmltree accepts a repeated xmlns:p; libxml2 does not)
			}
			total++
			vs := s.Validate(doc)
			switch {
			case lr.valid != (len(vs) == 0):
				t.Errorf("%s/%s: libxml2 valid=%v, we found %v\n%s\nlibxml2:\n%s", filepath.Base(j.c.dir), name, lr.valid, vs, data, lr.text)
			case !lr.valid && len(lr.lines) > 0 && vs[0].Line != slices.Min(lr.lines) && !sameStartTag(data, vs[0].Line, slices.Min(lr.lines)):
				t.Errorf("%s/%s: our first violation is on line %d, libxml2's on line %d\nours: %v\n%s\nlibxml2:\n%s", filepath.Base(j.c.dir), name, vs[0].Line, slices.Min(lr.lines), vs, data, lr.text)
			default:
				agree++
			}
		}
	}
	t.Logf("%d of %d mutated instances get libxml2's verdict and first line", agree, total)
}
