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
