package xpath

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// diffNamespaces are the prefixes the corpus expressions use, registered
// on both sides.
var diffNamespaces = map[string]string{
	"po":   "urn:example:po:2",
	"addr": "urn:example:address",
	"inv":  "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
	"cac":  "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
	"cbc":  "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
	"asn":  "urn:example:asn:1",
	"geo":  "urn:example:geo",
	"x":    "urn:example:ext",
}

func nsOptions(ns map[string]string) Options {
	return Options{Namespaces: func(p string) (string, bool) {
		uri, ok := ns[p]
		return uri, ok
	}}
}

// readCorpus reads testdata/expressions.txt: the expressions for every
// document ("== all") and those for one document ("== FILE").
func readCorpus(t *testing.T) (all []string, perDoc map[string][]string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "expressions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	perDoc = map[string][]string{}
	section := ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "== "):
			section = strings.TrimPrefix(line, "== ")
		case section == "all":
			all = append(all, line)
		case section != "":
			perDoc[section] = append(perDoc[section], line)
		default:
			t.Fatalf("expression outside a section: %q", line)
		}
	}
	return all, perDoc
}

func parseFile(t testing.TB, path string) *xmltree.Node {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := xmltree.Parse(data, xmltree.Limits{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

func evaluator(doc *xmltree.Node, opts Options) func(string) (Value, error) {
	return func(src string) (Value, error) {
		e, err := Compile(src, opts)
		if err != nil {
			return nil, err
		}
		return e.Eval(&Context{Node: doc, Position: 1, Size: 1})
	}
}

// TestDifferentialLibxml2 evaluates the corpus of testdata/expressions.txt
// on each document of testdata with this package and with libxml2
// (xmllint), and compares the results as libxml2_test.go describes.
func TestDifferentialLibxml2(t *testing.T) {
	t.Parallel()
	xmllint := xmllintPath(t)
	all, perDoc := readCorpus(t)
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no documents in testdata: %v", err)
	}
	for doc := range perDoc {
		if _, err := os.Stat(filepath.Join("testdata", doc)); err != nil {
			t.Errorf("expressions.txt has a section for %s, which is not in testdata", doc)
		}
	}
	opts := nsOptions(diffNamespaces)
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			doc := parseFile(t, file)
			var cases []diffCase
			for _, e := range append(append([]string(nil), all...), perDoc[name]...) {
				cases = append(cases, diffCase{label: e, expr: e})
			}
			diffs, n, err := compareWithLibxml2(xmllint, file, diffNamespaces, cases, evaluator(doc, opts))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range diffs {
				t.Errorf("%s\n  check:   %s\n  ours:    %q\n  libxml2: %q", d.label, d.expr, d.ours, d.theirs)
			}
			t.Logf("%d expressions, %d checks against libxml2, %d differences", len(cases), n, len(diffs))
		})
	}
}
