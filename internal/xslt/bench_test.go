package xslt

import (
	"os"
	"testing"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// BenchmarkTransformPurchaseOrder transforms a 2 KiB purchase order into
// the internal order format (testdata/po-internal.xsl: namespaces, AVTs,
// format-number, a recursive total).
func BenchmarkTransformPurchaseOrder(b *testing.B) {
	src, err := os.ReadFile("testdata/po-internal.xsl")
	if err != nil {
		b.Fatal(err)
	}
	input, err := os.ReadFile("testdata/po-internal.xml")
	if err != nil {
		b.Fatal(err)
	}
	s, err := Compile(src, Options{})
	if err != nil {
		b.Fatal(err)
	}
	doc, err := xmltree.Parse(input, xmltree.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Transform(doc, nil); err != nil {
			b.Fatal(err)
		}
	}
}
