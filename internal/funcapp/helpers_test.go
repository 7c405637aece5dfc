package funcapp

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// minimalHost is a host.json that loads with a "handler" executable.
const minimalHost = `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}}}`

// writeApp writes files (slash-separated paths relative to a new app folder)
// and returns the folder. A "handler" executable is added unless files has
// one (an empty string value deletes it from the set).
func writeApp(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	if _, ok := files["handler"]; !ok {
		files["handler"] = "#!/bin/sh\n"
	}
	for name, body := range files {
		if name == "handler" && body == "" {
			continue
		}
		path := filepath.Join(root, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		mode := os.FileMode(0o644)
		if name == "handler" || strings.HasSuffix(name, "/handler") {
			mode = 0o755
		}
		require.NoError(t, os.WriteFile(path, []byte(body), mode))
	}
	return root
}

// load loads root with an empty environment and no schedule check.
func load(t *testing.T, root string) (*App, error) {
	t.Helper()
	return Load(root, Options{Env: map[string]string{}})
}

// mustLoad loads root and fails the test on any error.
func mustLoad(t *testing.T, root string, opts Options) *App {
	t.Helper()
	if opts.Env == nil {
		opts.Env = map[string]string{}
	}
	app, err := Load(root, opts)
	require.NoError(t, err)
	require.NotNil(t, app)
	return app
}

// problems returns "file: field" of each error in err.
func problems(err error) []string {
	var out []string
	for _, e := range Errors(err) {
		out = append(out, e.File+": "+e.Field)
	}
	return out
}

// findError returns the error of err at file and field, failing the test
// when there is none.
func findError(t *testing.T, err error, file, field string) *Error {
	t.Helper()
	require.Error(t, err)
	for _, e := range Errors(err) {
		if e.File == file && e.Field == field {
			return e
		}
	}
	require.Failf(t, "no error at "+file+": "+field, "errors:\n%v", err)
	return nil
}

// requireRaw checks a binding's Raw against the JSON it should hold, then
// clears it so that the rest of the binding can be compared with Equal.
func requireRaw(t *testing.T, want string, b *Binding) {
	t.Helper()
	got, err := json.Marshal(b.Raw)
	require.NoError(t, err)
	require.JSONEq(t, want, string(got))
	b.Raw = nil
}

func ptr[T any](v T) *T { return &v }
