package host_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/host"
)

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		prefix, template string
		patterns         []string
	}{
		{"api", "orders", []string{"/api/orders"}},
		{"api", "/orders/{id}/", []string{"/api/orders/{id}"}},
		{"", "orders/{id:int?}", []string{"/orders/{id}", "/orders"}},
		{"api/v2", "files/{*path}", []string{"/api/v2/files/{path...}"}},
		{"api", "", []string{"/api"}},
	} {
		r, err := host.ParseRoute(tc.prefix, tc.template)
		require.NoError(t, err, tc.template)
		require.Equal(t, tc.patterns, r.Patterns, tc.template)
	}
	for template, want := range map[string]string{
		"a//b":         "empty segment",
		"a/{x}{y}":     "whole segment",
		"a/x{y}":       "whole segment",
		"a/{1x}":       "a name is letters",
		"a/{x:foo}":    "unknown constraint",
		"a/{x}/{X}":    "appears twice",
		"a/{x?}/b":     "only the last segment",
		"a/{*x}/b":     "only the last segment",
		"a?b":          "without '?' or '#'",
		"a/{x:min(1)}": "not supported",
	} {
		_, err := host.ParseRoute("api", template)
		require.ErrorContains(t, err, want, template)
	}
}

func TestRouteConstraints(t *testing.T) {
	r, err := host.ParseRoute("", "p/{id:int}/{g:guid}/{name:alpha?}")
	require.NoError(t, err)
	mux := http.NewServeMux()
	matched := false
	for _, p := range r.Patterns {
		mux.HandleFunc(p, func(w http.ResponseWriter, req *http.Request) { matched = r.Match(req) })
	}
	for path, want := range map[string]bool{
		"/p/12/3f2504e0-4f89-11d3-9a0c-0305e82c3301/abc": true,
		"/p/12/3f2504e0-4f89-11d3-9a0c-0305e82c3301":     true,
		"/p/x/3f2504e0-4f89-11d3-9a0c-0305e82c3301":      false,
		"/p/12/not-a-guid":                               false,
		"/p/12/3f2504e0-4f89-11d3-9a0c-0305e82c3301/a1":  false,
	} {
		matched = false
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
		require.Equal(t, want, matched, path)
	}
}

// FuzzParseRoute: templates come from function.json. Parsing never panics,
// and every pattern of a route it takes can be served.
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"orders/{id:int?}", "files/{*path}", "a/{x}/b", "{a}/{b:guid}", "x{y}", "a/{*}", "/{?}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, template string) {
		r, err := host.ParseRoute("api", template)
		if err != nil {
			return
		}
		mux := http.NewServeMux()
		for _, p := range r.Patterns {
			func() {
				defer func() {
					if rec := recover(); rec != nil {
						t.Fatalf("template %q gave pattern %q that ServeMux refuses: %v", template, p, rec)
					}
				}()
				mux.Handle("GET "+p, http.NotFoundHandler())
			}()
		}
	})
}
