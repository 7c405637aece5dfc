package sluice_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/sluicehq/sluice"

// imports returns the module's packages that the non-test Go files under
// dir import, with the file that imports each.
func imports(t *testing.T, dir string) map[string]string {
	t.Helper()
	found := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, spec := range f.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			if p == module || strings.HasPrefix(p, module+"/") {
				found[p] = path
			}
		}
		return nil
	})
	require.NoError(t, err)
	return found
}

// TestLayering: the app-folder adapters (funcapp, handler) stand on the
// public SDK as an outside program would, examples are user code, and the
// binary runs no example.
func TestLayering(t *testing.T) {
	t.Parallel()
	adapters := map[string]bool{
		module: true, module + "/internal/funcapp": true,
		// The one way every background service starts and stops: no
		// layer of the engine.
		module + "/internal/service": true,
	}
	for _, dir := range []string{"internal/funcapp", "internal/handler"} {
		for p, file := range imports(t, dir) {
			require.True(t, adapters[p], "%s imports %s: an app-folder adapter uses the public SDK only; export what it needs from package sluice", file, p)
		}
	}
	for p, file := range imports(t, "examples") {
		require.False(t, strings.HasPrefix(p, module+"/internal/"), "%s imports %s: an example is user code, which cannot", file, p)
	}
	for p, file := range imports(t, "cmd") {
		require.False(t, strings.HasPrefix(p, module+"/examples/"), "%s imports %s: the binary runs its own code (internal/demo), not an example", file, p)
	}
}
