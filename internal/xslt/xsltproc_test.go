package xslt

import (
	"bytes"
	"os"
	osexec "os/exec"
	"testing"
)

// xsltprocPath is libxml2's xsltproc, the reference the corpus is
// compared with.
const xsltprocPath = "/usr/bin/xsltproc"

// needXsltproc skips the test when xsltproc is missing, unless
// SLUICE_TEST_LIBXML2=required (as in CI), where it fails.
func needXsltproc(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(xsltprocPath); err != nil {
		if os.Getenv("SLUICE_TEST_LIBXML2") == "required" {
			t.Fatalf("xsltproc is required (SLUICE_TEST_LIBXML2=required) but missing: %v", err)
		}
		t.Skipf("xsltproc is not installed (%v); set SLUICE_TEST_LIBXML2=required to fail instead", err)
	}
}

// xsltprocFiles runs xsltproc on files (a stylesheet's imports are found
// beside it).
func xsltprocFiles(ss, in string, params map[string]string) (out []byte, ok bool, stderr string) {
	args := []string{"--nonet", "--nowrite", "--maxdepth", "1000"}
	for k, v := range params {
		args = append(args, "--stringparam", k, v)
	}
	args = append(args, ss, in)
	cmd := osexec.Command(xsltprocPath, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.Bytes(), err == nil, e.String()
}
