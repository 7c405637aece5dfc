package xslt

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestZZProbe(t *testing.T) {
	dir := os.Getenv("PROBEDIR")
	if dir == "" {
		t.Skip()
	}
	names, _ := filepath.Glob(dir + "/*.xsl")
	for _, name := range names {
		ss, _ := os.ReadFile(name)
		in := filepath.Join(dir, "in.xml")
		if _, err := os.Stat(name[:len(name)-4] + ".xml"); err == nil {
			in = name[:len(name)-4] + ".xml"
		}
		input, _ := os.ReadFile(in)
		want, ok, stderr := xsltprocFiles(name, in, nil)
		got, err := transform(ss, input, nil)
		if !ok || err != nil {
			if ok != (err == nil) {
				t.Errorf("%s: xsltproc ok=%v (%s) ours err=%v\nwant:\n%s\ngot:\n%s", name, ok, stderr, err, want, got)
			}
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n--- xsltproc\n%s\n--- ours\n%s", name, want, got)
		}
	}
}
