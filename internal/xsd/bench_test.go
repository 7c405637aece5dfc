package xsd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// benchOrder is a 2 KiB purchase order (testdata/purchase-order).
func benchOrder(b *testing.B) (*Schema, *xmltree.Node, int) {
	s, err := compileFile(b, "testdata/purchase-order/schema.xsd")
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("testdata/purchase-order", "valid-basic.xml"))
	if err != nil {
		b.Fatal(err)
	}
	// Pad to 2 KiB with more lines, as a typical order has.
	line := `
    <Line number="3" unit="EA">
      <SKU>W-300</SKU>
      <Description>Green widget</Description>
      <Quantity>4</Quantity>
      <UnitPrice>1.25</UnitPrice>
    </Line>`
	src := string(data)
	for len(src) < 2048 {
		src = strings.Replace(src, "\n  </Lines>", line+"\n  </Lines>", 1)
	}
	doc, err := xmltree.Parse([]byte(src), xmltree.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	if vs := s.Validate(doc); vs != nil {
		b.Fatalf("the benchmark order is invalid: %v", vs)
	}
	return s, doc, len(src)
}

func BenchmarkValidatePurchaseOrder(b *testing.B) {
	s, doc, n := benchOrder(b)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		if s.Validate(doc) != nil {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkValidatePurchaseOrderParallel(b *testing.B) {
	s, doc, n := benchOrder(b)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if s.Validate(doc) != nil {
				b.Error("invalid")
				return
			}
		}
	})
}

func BenchmarkCompilePurchaseOrder(b *testing.B) {
	data, err := os.ReadFile("testdata/purchase-order/schema.xsd")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
