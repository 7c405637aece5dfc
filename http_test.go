package sluice_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func TestHTTPFunction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(), HTTPAddr: "127.0.0.1:0",
		FunctionKeys: []string{"fkey"}, AdminKey: "akey", MaxHTTPBodyBytes: 16})
	app.HTTPFunction("product", sluice.HTTPTrigger{Route: "products/{category:alpha}/{id:int?}", Methods: []string{"GET", "POST"}, AuthLevel: "anonymous"},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
				return
			}
			fmt.Fprintf(w, "%s %s id=%q body=%q", r.Method, r.PathValue("category"), r.PathValue("id"), body)
		}))
	app.HTTPFunction("secret", sluice.HTTPTrigger{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secret") }))
	app.HTTPFunction("admin", sluice.HTTPTrigger{Route: "ops/{*rest}", AuthLevel: "admin"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "rest=", r.PathValue("rest"))
	}))
	app.HTTPFunction("boom", sluice.HTTPTrigger{AuthLevel: "anonymous"}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	base := "http://" + app.Addr()

	call := func(method, path, body string, header ...string) (int, string) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		method, path, body string
		header             []string
		status             int
		want               string
	}{
		{"GET", "/api/products/books/7", "", nil, 200, `GET books id="7" body=""`},
		{"GET", "/api/products/books", "", nil, 200, `GET books id="" body=""`},
		{"POST", "/api/products/books/7", "small", nil, 200, `POST books id="7" body="small"`},
		{"POST", "/api/products/books/7", "a body over sixteen bytes", nil, 413, "at most 16"},
		{"GET", "/api/products/books/x7", "", nil, 404, ""},
		{"GET", "/api/products/b00ks/7", "", nil, 404, ""},
		{"DELETE", "/api/products/books/7", "", nil, 405, ""},
		{"GET", "/api/secret", "", nil, 401, "function secret needs a function key"},
		{"GET", "/api/secret?code=wrong", "", nil, 401, ""},
		{"GET", "/api/secret?code=fkey", "", nil, 200, "secret"},
		{"GET", "/api/secret", "", []string{"x-functions-key", "akey"}, 200, "secret"},
		{"GET", "/api/ops/a/b/c?code=fkey", "", nil, 401, "needs an admin key"},
		{"GET", "/api/ops/a/b/c?code=akey", "", nil, 200, "rest=a/b/c"},
		{"GET", "/api/boom", "", nil, 500, "the function failed"},
		{"GET", "/healthz", "", nil, 200, "ok"},
	} {
		status, body := call(tc.method, tc.path, tc.body, tc.header...)
		require.Equal(t, tc.status, status, "%s %s: %s", tc.method, tc.path, body)
		require.Contains(t, body, tc.want, "%s %s", tc.method, tc.path)
	}
}

func TestHTTPFunctionDeclarationErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		trigger sluice.HTTPTrigger
		addr    string
		want    string
	}{
		{sluice.HTTPTrigger{Route: "v1/hubs"}, "127.0.0.1:0", "which Sluice serves itself"},
		{sluice.HTTPTrigger{Route: "a/{x}-{y}"}, "127.0.0.1:0", "a parameter must be a whole segment"},
		{sluice.HTTPTrigger{Route: "a/{id:regex(x)}"}, "127.0.0.1:0", "not supported"},
		{sluice.HTTPTrigger{Route: "a/{id?}/b"}, "127.0.0.1:0", "only the last segment can be optional"},
		{sluice.HTTPTrigger{AuthLevel: "user"}, "127.0.0.1:0", `authLevel "user"`},
		{sluice.HTTPTrigger{}, "", "set Config.HTTPAddr"},
	} {
		app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(), HTTPAddr: tc.addr})
		app.HTTPFunction("f", tc.trigger, http.NotFoundHandler())
		err := app.Start(context.Background())
		require.ErrorContains(t, err, tc.want, "%+v", tc.trigger)
		app.Stop(context.Background())
	}
}

// TestHTTPFunctionRouting: routes match as Azure's do, without regard to
// case and with a trailing slash, the most specific first, constraints
// kept; Sluice's own paths stay exact.
func TestHTTPFunctionRouting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(), HTTPAddr: "127.0.0.1:0"})
	var mu sync.Mutex
	ran := map[string]int{}
	answer := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			ran[name]++
			mu.Unlock()
			fmt.Fprintf(w, "%s id=%q rest=%q", name, r.PathValue("id"), r.PathValue("rest"))
		})
	}
	app.HTTPFunction("byID", sluice.HTTPTrigger{Route: "Products/{id}", Methods: []string{"get"}, AuthLevel: "anonymous"}, answer("byID"))
	app.HTTPFunction("new", sluice.HTTPTrigger{Route: "products/new", Methods: []string{"GET", "head"}, AuthLevel: "anonymous"}, answer("new"))
	app.HTTPFunction("num", sluice.HTTPTrigger{Route: "products/{id:int}", Methods: []string{"GET"}, AuthLevel: "anonymous"}, answer("num"))
	app.HTTPFunction("del", sluice.HTTPTrigger{Route: "products/{key}", Methods: []string{"DELETE"}, AuthLevel: "anonymous"}, answer("del"))
	app.HTTPFunction("files", sluice.HTTPTrigger{Route: "files/{*rest}", AuthLevel: "anonymous"}, answer("files"))
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	base := "http://" + app.Addr()

	for _, tc := range []struct {
		method, path string
		status       int
		want, allow  string
	}{
		{"GET", "/api/products/ab", 200, `byID id="ab"`, ""},
		{"GET", "/API/PRODUCTS/Ab", 200, `byID id="Ab"`, ""},
		{"GET", "/api/products/ab/", 200, `byID id="ab"`, ""},
		{"GET", "/api/Products/New", 200, `new id=""`, ""},
		{"GET", "/api/products/7", 200, `num id="7"`, ""},
		{"DELETE", "/api/products/7", 200, `del id="" rest=""`, ""},
		{"GET", "/api/files", 200, `files id="" rest=""`, ""},
		{"PUT", "/Api/Files/a/B/", 200, `files id="" rest="a/B"`, ""},
		{"POST", "/api/products/ab", 405, "not allowed", "DELETE, GET"},
		{"GET", "/api/products/ab/c", 404, "", ""},
		{"GET", "/api/nothing", 404, "", ""},
		{"GET", "/HEALTHZ", 404, "", ""},
		{"GET", "/healthz", 200, "ok", ""},
	} {
		req, err := http.NewRequest(tc.method, base+tc.path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, tc.status, resp.StatusCode, "%s %s: %s", tc.method, tc.path, body)
		require.Contains(t, string(body), tc.want, "%s %s", tc.method, tc.path)
		require.Equal(t, tc.allow, resp.Header.Get("Allow"), "%s %s", tc.method, tc.path)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 3, ran["byID"])
	require.Equal(t, 1, ran["new"])
}

// TestHTTPFunctionHEAD: HEAD is a method like the others: a function whose
// methods do not list it is not run (405 with the methods it serves in
// Allow), as with any other method it does not serve.
func TestHTTPFunctionHEAD(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(), HTTPAddr: "127.0.0.1:0"})
	var mu sync.Mutex
	ran := map[string]int{}
	count := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			ran[name]++
			mu.Unlock()
		})
	}
	app.HTTPFunction("get", sluice.HTTPTrigger{Route: "get", Methods: []string{"GET"}, AuthLevel: "anonymous"}, count("get"))
	app.HTTPFunction("head", sluice.HTTPTrigger{Route: "head", Methods: []string{"get", "head"}, AuthLevel: "anonymous"}, count("head"))
	app.HTTPFunction("any", sluice.HTTPTrigger{Route: "any", AuthLevel: "anonymous"}, count("any"))
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)

	for path, want := range map[string]int{"/api/get": 405, "/api/head": 200, "/api/any": 200} {
		resp, err := http.Head("http://" + app.Addr() + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode, path)
		if want == 405 {
			require.Equal(t, "GET", resp.Header.Get("Allow"), path)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string]int{"head": 1, "any": 1}, ran, "a HEAD on a GET-only route does not run the function")
}

func TestHTTPFunctionRouteConflicts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b sluice.HTTPTrigger
		want string
	}{
		{sluice.HTTPTrigger{Route: "orders/{id}", Methods: []string{"GET"}}, sluice.HTTPTrigger{Route: "Orders/{key}", Methods: []string{"get", "POST"}}, "matches the same requests"},
		{sluice.HTTPTrigger{Route: "orders"}, sluice.HTTPTrigger{Route: "orders/", Methods: []string{"PUT"}}, "matches the same requests"},
		{sluice.HTTPTrigger{Route: "orders/{id}", Methods: []string{"GET"}}, sluice.HTTPTrigger{Route: "orders/{id}", Methods: []string{"POST"}}, ""},
		{sluice.HTTPTrigger{Route: "V1/hubs"}, sluice.HTTPTrigger{Route: "x"}, "which Sluice serves itself"},
	} {
		app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(), HTTPAddr: "127.0.0.1:0"})
		app.HTTPFunction("a", tc.a, http.NotFoundHandler())
		app.HTTPFunction("b", tc.b, http.NotFoundHandler())
		err := app.Start(context.Background())
		if tc.want == "" {
			require.NoError(t, err)
		} else {
			require.ErrorContains(t, err, tc.want)
		}
		app.Stop(context.Background())
	}
}

// TestHTTPFunctionMetricsAndOverview: an HTTP function is counted in its
// own metric families by status, not as a hub function with empty labels,
// and the overview shows its route.
func TestHTTPFunctionMetricsAndOverview(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(), HTTPAddr: "127.0.0.1:0"})
	app.HTTPFunction("product", sluice.HTTPTrigger{Route: "products/{id:int}", Methods: []string{"GET"}, AuthLevel: sluice.AuthAnonymous},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.PathValue("id") == "13" {
				panic("unlucky")
			}
			fmt.Fprint(w, "ok")
		}))
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	get := func(path string) string {
		resp, err := http.Get(app.URL() + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	get("/api/products/7")
	get("/api/products/7")
	get("/api/products/13")
	metrics := get("/metrics")
	require.Contains(t, metrics, `sluice_http_function_requests_total{code="200",function="product"} 2`)
	require.Contains(t, metrics, `sluice_http_function_requests_total{code="500",function="product"} 1`)
	require.Contains(t, metrics, `sluice_http_function_duration_seconds_count{function="product"} 3`)
	require.NotContains(t, metrics, `sluice_events_processed_total{function="product"`)
	require.NotContains(t, metrics, `sluice_function_failures_total{function="product"`)
	overview := get("/api/v1/overview")
	require.Contains(t, overview, `"/api/products/{id:int}"`)
}
