package xslt

import (
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/xmltree"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZCPU(t *testing.T) {
	if os.Getenv("ZZCPU") == "" {
		t.Skip()
	}
	src, _ := os.ReadFile("testdata/po-internal.xsl")
	input, _ := os.ReadFile("testdata/po-internal.xml")
	s, _ := Compile(src, Options{})
	doc, _ := xmltree.Parse(input, xmltree.Limits{})
	runtime.GOMAXPROCS(1)
	for range 2000 {
		s.Transform(doc, nil)
	}
	runtime.GC()
	const n = 20000
	c0 := cpuNow()
	for range n {
		s.Transform(doc, nil)
	}
	c1 := cpuNow()
	t.Logf("CPU per transform (incl. GC): %v", (c1-c0)/n)
	c0 = cpuNow()
	for range n {
		xmltree.Parse(input, xmltree.Limits{})
	}
	t.Logf("CPU per xmltree.Parse of the same 2 KiB: %v", (cpuNow()-c0)/n)
}
