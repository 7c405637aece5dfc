package sluice_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// TestDashboardMounting: the dashboard is at "/" and /ui/ beside the API,
// and a function served at "/" (route prefix "/") wins over it there.
func TestDashboardMounting(t *testing.T) {
	t.Parallel()
	type check struct {
		method, path string
		status       int
		want         string
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "function at ", r.URL.Path) })
	for _, tc := range []struct {
		name   string
		prefix string
		route  string // of the HTTP function "hello", if any
		checks []check
	}{
		{name: "no functions", checks: []check{
			{"GET", "/", 200, "<title>Sluice</title>"},
			{"HEAD", "/", 200, ""},
			{"GET", "/ui/", 200, "<title>Sluice</title>"},
			{"GET", "/ui/app.js", 200, "/api/v1/overview"},
			{"GET", "/api/v1/overview", 200, `"functions"`},
			{"GET", "/api/v1/nothing", 404, `"error": "no such endpoint`},
			{"GET", "/nothing", 404, `"error": "no such endpoint`},
			{"POST", "/", 404, `"error": "no such endpoint`},
		}},
		{name: "functions under /api", route: "hello", checks: []check{
			{"GET", "/", 200, "<title>Sluice</title>"},
			{"GET", "/ui/app.css", 200, "font"},
			{"GET", "/api/hello", 200, "function at /api/hello"},
			{"GET", "/api/v1/overview", 200, `"hello"`},
		}},
		{name: "functions at the root", prefix: "/", route: "hello", checks: []check{
			{"GET", "/", 200, "<title>Sluice</title>"},
			{"GET", "/hello", 200, "function at /hello"},
		}},
		{name: "a function serves the root", prefix: "/", route: "{*path}", checks: []check{
			{"GET", "/", 200, "function at /"},
			{"GET", "/other", 200, "function at /other"},
			{"GET", "/ui/", 200, "<title>Sluice</title>"},
			{"GET", "/ui", 200, "<title>Sluice</title>"}, // redirected
			{"GET", "/api/v1/overview", 200, `"functions"`},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(), HTTPAddr: "127.0.0.1:0", HTTPRoutePrefix: tc.prefix})
			if tc.route != "" {
				app.HTTPFunction("hello", sluice.HTTPTrigger{Route: tc.route, AuthLevel: sluice.AuthAnonymous}, hello)
			}
			require.NoError(t, app.Start(ctx))
			defer app.Stop(ctx)
			for _, c := range tc.checks {
				req, err := http.NewRequest(c.method, "http://"+app.Addr()+c.path, nil)
				require.NoError(t, err)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Equal(t, c.status, resp.StatusCode, "%s %s: %s", c.method, c.path, body)
				require.Contains(t, string(body), c.want, "%s %s", c.method, c.path)
			}
		})
	}
}

// TestDashboardPathIsReserved: a function route cannot take the
// dashboard's files.
func TestDashboardPathIsReserved(t *testing.T) {
	t.Parallel()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(), HTTPAddr: "127.0.0.1:0", HTTPRoutePrefix: "/"})
	app.HTTPFunction("ui", sluice.HTTPTrigger{Route: "ui/{name}"}, http.NotFoundHandler())
	err := app.Start(context.Background())
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "/ui/") && strings.Contains(err.Error(), "Sluice serves itself"), err.Error())
	_ = app.Stop(context.Background())
}
