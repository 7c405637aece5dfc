package sluice

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
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
		r, err := parseRoute(tc.prefix, tc.template)
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
		_, err := parseRoute("api", template)
		require.ErrorContains(t, err, want, template)
	}
}

func TestRouteConstraints(t *testing.T) {
	r, err := parseRoute("", "p/{id:int}/{g:guid}/{name:alpha?}")
	require.NoError(t, err)
	for path, want := range map[string]bool{
		"/p/12/3f2504e0-4f89-11d3-9a0c-0305e82c3301/abc": true,
		"/p/12/3f2504e0-4f89-11d3-9a0c-0305e82c3301":     true,
		"/p/x/3f2504e0-4f89-11d3-9a0c-0305e82c3301":      false,
		"/p/12/not-a-guid":                               false,
		"/p/12/3f2504e0-4f89-11d3-9a0c-0305e82c3301/a1":  false,
	} {
		_, matched := r.MatchPath(path)
		require.Equal(t, want, matched, path)
	}
}

func TestRouteParams(t *testing.T) {
	t.Parallel()
	names, err := RouteParams("orders/{id:int}/{part?}")
	require.NoError(t, err)
	require.Equal(t, []string{"id", "part"}, names)
	names, err = RouteParams("files/{*path}")
	require.NoError(t, err)
	require.Equal(t, []string{"path"}, names)
	names, err = RouteParams("")
	require.NoError(t, err)
	require.Empty(t, names)
	_, err = RouteParams("a/{x}/{X}")
	require.ErrorContains(t, err, "appears twice")
}

// FuzzParseRoute: templates come from function.json. Parsing never panics,
// and every pattern of a route it takes can be served.
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"orders/{id:int?}", "files/{*path}", "a/{x}/b", "{a}/{b:guid}", "x{y}", "a/{*}", "/{?}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, template string) {
		r, err := parseRoute("api", template)
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

// TestRouteMatchPath: requests match as in Azure Functions (ASP.NET Core
// routing): fixed segments, the prefix's too, without regard to case, a
// trailing slash tolerated, constraints kept, values as sent.
func TestRouteMatchPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		prefix, template, path string
		want                   map[string]string
		ok                     bool
	}{
		{"api", "orders", "/api/orders", nil, true},
		{"api", "orders", "/API/Orders", nil, true},
		{"api", "orders", "/api/orders/", nil, true},
		{"api", "orders", "/api/orders//", nil, false},
		{"api", "orders", "/api/orders/x", nil, false},
		{"api", "orders", "/api", nil, false},
		{"api", "Hello/{name}", "/api/hello/Ada", map[string]string{"name": "Ada"}, true},
		{"api", "Hello/{name}", "/API/HELLO/Ada/", map[string]string{"name": "Ada"}, true},
		{"api", "hello/{name}", "/api/hello/a%20b", map[string]string{"name": "a b"}, true},
		{"api", "hello/{name}", "/api/hello/", nil, false},
		{"api", "p/{id:int?}", "/api/p", nil, true},
		{"api", "p/{id:int?}", "/api/P/", nil, true},
		{"api", "p/{id:int?}", "/api/p/12", map[string]string{"id": "12"}, true},
		{"api", "p/{id:int?}", "/api/p/x", nil, false},
		{"api", "files/{*rest}", "/api/files", nil, true},
		{"api", "files/{*rest}", "/api/Files/a/b/c", map[string]string{"rest": "a/b/c"}, true},
		{"api", "files/{*rest}", "/api/files/a/b/", map[string]string{"rest": "a/b"}, true},
		{"", "", "/", nil, true},
		{"", "", "/x", nil, false},
		{"", "{x?}", "/", nil, true},
		{"", "{x?}", "/Y", map[string]string{"x": "Y"}, true},
	} {
		r, err := parseRoute(tc.prefix, tc.template)
		require.NoError(t, err)
		got, ok := r.MatchPath(tc.path)
		require.Equal(t, tc.ok, ok, "%s/%s at %s", tc.prefix, tc.template, tc.path)
		require.Equal(t, tc.want, got, "%s/%s at %s", tc.prefix, tc.template, tc.path)
	}
}

func TestRoutePrecedence(t *testing.T) {
	t.Parallel()
	parse := func(template string) route {
		r, err := parseRoute("api", template)
		require.NoError(t, err)
		return r
	}
	// Each goes before the next.
	ordered := []string{"products/new", "products/new/{x?}", "products/{id:int}", "products/{id}", "products/{*rest}", "{a}/new"}
	for i := range ordered {
		for j := range ordered {
			got := routePrecedence(parse(ordered[i]), parse(ordered[j]))
			switch {
			case i < j:
				require.Negative(t, got, "%s before %s", ordered[i], ordered[j])
			case i > j:
				require.Positive(t, got, "%s after %s", ordered[i], ordered[j])
			default:
				require.Zero(t, got)
			}
		}
	}
	require.Equal(t, parse("Products/{a}").Shape(), parse("products/{b}").Shape())
	require.NotEqual(t, parse("products/{a}").Shape(), parse("products/{a:int}").Shape())
	require.Equal(t, "/api/products", parse("products/{a}/x").FixedPrefix())
}

// FuzzRouteMatchPath: request paths come from anyone. Matching never
// panics, and a match gives every parameter that is not optional, each
// keeping its constraint.
func FuzzRouteMatchPath(f *testing.F) {
	for _, s := range []string{"/api/p/12/abc", "/API/P/", "/api/p/%zz", "/api/p/1/a/b/c", "//", "", "/api/p/%2F/x"} {
		f.Add(s)
	}
	routes := []string{"p/{id:int}/{name:alpha?}", "p/{*rest}", "p/{a}/{b}", "P"}
	f.Fuzz(func(t *testing.T, path string) {
		for _, template := range routes {
			r, err := parseRoute("api", template)
			require.NoError(t, err)
			values, ok := r.MatchPath(path)
			if !ok {
				continue
			}
			for _, p := range r.Params {
				v, given := values[p.Name]
				require.True(t, given || p.Optional || p.CatchAll, "%s at %q: %s missing", template, path, p.Name)
				if given && p.Constraint == "int" {
					_, err := strconv.Atoi(v)
					require.NoError(t, err, "%s at %q", template, path)
				}
			}
		}
	})
}
