package sluice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/partner"
)

// securedApp starts an app with one of everything the API serves: hub h,
// queue q with a message, container c with a document, blob container b
// with a blob, and function f with a breaker.
func securedApp(t *testing.T, cfg sluice.Config) *sluice.App {
	t.Helper()
	ctx := context.Background()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Logger = quiet()
	app := sluice.New(cfg)
	app.Hub(sluice.HubConfig{Name: "h", Partitions: 2})
	app.Queue(sluice.QueueConfig{Name: "q"})
	app.Container(sluice.ContainerConfig{Name: "c", PartitionKeyPath: "/pk"})
	app.BlobContainer("b")
	app.Partner(sluice.PartnerConfig{ID: "pa", Types: []sluice.MessageTypeConfig{{Name: "ty", Format: "json", Hub: "h"}}})
	app.Pipeline("pl", sluice.PipelineConfig{Container: "c", Destinations: []sluice.PipelineDestination{
		{Name: "copy", Files: &sluice.FilesDestination{Container: "pl-files"}}}})
	app.Function("f", sluice.HubTrigger{Hub: "h"}, func(context.Context, []sluice.Event) error { return nil },
		sluice.WithBreaker(sluice.BreakerPolicy{ConsecutiveFailures: 5}))
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	_, err := app.Send(ctx, "q", sluice.OutgoingMessage{Body: []byte("m")})
	require.NoError(t, err)
	_, err = app.Docs().Upsert(ctx, "c", map[string]any{"id": "d", "pk": "p"})
	require.NoError(t, err)
	_, err = app.Blobs().Put(ctx, "b", "x.txt", []byte("blob"), "text/plain")
	require.NoError(t, err)
	_, err = app.Publish(ctx, "h", sluice.Event{Body: []byte(`{"n":1}`)})
	require.NoError(t, err)
	_, err = app.PartnerToken(ctx, "pa", "main", 0)
	require.NoError(t, err)
	return app
}

// routeRequest makes a request for a route pattern, its path values filled
// with the securedApp's resources, and a JSON body for the methods that take
// one.
func routeRequest(t *testing.T, base string, r gateway.Route) *http.Request {
	t.Helper()
	method, path, _ := strings.Cut(r.Pattern, " ")
	for param, value := range map[string]string{
		"{hub}": "h", "{queue}": "q", "{container}": "c", "{function}": "f", "{group}": "$Default",
		"{partition}": "0", "{pk}": "p", "{id}": "d", "{name...}": "x.txt", "{key}": "nokey",
		"{partner}": "pa", "{type}": "ty", "{token}": "notoken", "{pipeline}": "pl", "{destination}": "copy",
	} {
		path = strings.ReplaceAll(path, param, value)
	}
	if strings.HasPrefix(r.Pattern, "GET /api/v1/deadletters/") || strings.HasPrefix(r.Pattern, "GET /api/v1/blobs/{container}/") {
		// Other resources use these names; keep them consistent.
		path = strings.Replace(path, "/q/", "/sluice-deadletters/", 1)
		path = strings.Replace(path, "/c/", "/b/", 1)
	}
	if strings.Contains(r.Pattern, "/blobs/") {
		path = strings.Replace(path, "/blobs/c", "/blobs/b", 1)
	}
	var body io.Reader
	if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequest(method, base+path, body)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func do(t *testing.T, req *http.Request, key string) (int, string) {
	t.Helper()
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// createKey makes an API key through the API.
func createKey(t *testing.T, base, adminKey, name string, scopes ...string) string {
	t.Helper()
	body, _ := json.Marshal(gateway.CreateKeyRequest{Name: name, Scopes: scopes})
	req, err := http.NewRequest("POST", base+"/api/v1/keys", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	code, out := do(t, req, adminKey)
	require.Equal(t, http.StatusCreated, code, out)
	var resp gateway.CreateKeyResponse
	require.NoError(t, json.Unmarshal([]byte(out), &resp))
	require.True(t, strings.HasPrefix(resp.Key, "sluice_"), out)
	return resp.Key
}

// stateOf is what the API's state-changing routes could change, read
// through the SDK and, with key, the API.
func stateOf(t *testing.T, app *sluice.App, key string) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	get := func(path string, v any) {
		req, _ := http.NewRequest("GET", app.URL()+path, nil)
		code, out := do(t, req, key)
		require.Equal(t, http.StatusOK, code, "%s: %s", path, out)
		require.NoError(t, json.Unmarshal([]byte(out), v))
	}
	var hubs struct{ Hubs []gateway.HubJSON }
	get("/api/v1/hubs", &hubs)
	for _, h := range hubs.Hubs {
		fmt.Fprintf(&b, "hub %s\n", h.Name)
	}
	var queues struct{ Queues []gateway.QueueJSON }
	get("/api/v1/queues", &queues)
	for _, q := range queues.Queues {
		var d gateway.QueueJSON
		get("/api/v1/queues/"+q.Name, &d)
		fmt.Fprintf(&b, "queue %s depth %d\n", q.Name, d.Stats.Depth)
	}
	var containers struct{ Containers []gateway.ContainerJSON }
	get("/api/v1/containers", &containers)
	for _, c := range containers.Containers {
		fmt.Fprintf(&b, "container %s\n", c.Name)
	}
	var partners struct{ Partners []gateway.PartnerJSON }
	get("/api/v1/partners", &partners)
	for _, p := range partners.Partners {
		fmt.Fprintf(&b, "partner %s enabled %v tokens %d\n", p.ID, p.Enabled, len(p.Tokens))
	}
	var types struct{ Types []partner.MessageType }
	get("/api/v1/message-types", &types)
	for _, mt := range types.Types {
		fmt.Fprintf(&b, "message type %s\n", mt.TypeKey())
	}
	var blobCtrs struct{ Containers []gateway.BlobContainerJSON }
	get("/api/v1/blobs", &blobCtrs)
	for _, c := range blobCtrs.Containers {
		fmt.Fprintf(&b, "blob container %s\n", c.Name)
	}
	var pipelines struct{ Pipelines []sluice.PipelineStatus }
	get("/api/v1/pipelines", &pipelines)
	for _, p := range pipelines.Pipelines {
		fmt.Fprintf(&b, "pipeline %s backfill %v\n", p.Name, p.Backfill != nil)
		for _, d := range p.Destinations {
			fmt.Fprintf(&b, "  destination %s paused %v\n", d.Name, d.Paused)
		}
	}
	var keys struct{ Keys []gateway.KeyJSON }
	get("/api/v1/keys", &keys)
	for _, k := range keys.Keys {
		fmt.Fprintf(&b, "key %s %v\n", k.ID, k.Scopes)
	}
	lag, err := app.Lag(ctx, "h", "")
	require.NoError(t, err)
	fmt.Fprintf(&b, "lag %d\n", lag)
	page, err := app.Docs().Query(ctx, "c", sluice.QueryRequest{Text: "SELECT * FROM c"})
	require.NoError(t, err)
	for _, d := range page.Documents {
		fmt.Fprintf(&b, "doc %s %s\n", d.ID, d.ETag)
	}
	blobs, err := app.Blobs().List(ctx, "b", "")
	require.NoError(t, err)
	fmt.Fprintf(&b, "blobs %d\n", len(blobs))
	brs, err := app.Breakers(ctx)
	require.NoError(t, err)
	for _, br := range brs {
		fmt.Fprintf(&b, "breaker %s %s\n", br.Function, br.State)
	}
	dls, err := app.DeadLetters(ctx, sluice.DeadLetterFilter{}, 100)
	require.NoError(t, err)
	fmt.Fprintf(&b, "dead letters %d\n", len(dls))
	return b.String()
}

// TestEveryRouteNeedsTheRightKey: once keys exist, every route of the API
// but the health checks answers 401 without a key, with a wrong one and
// with a revoked one, 403 with a key lacking the route's scope, and serves
// a key holding exactly that scope. The refused requests change nothing.
func TestEveryRouteNeedsTheRightKey(t *testing.T) {
	t.Parallel()
	app := securedApp(t, sluice.Config{})
	base := app.URL()
	admin := createKey(t, base, "", "root", "admin")
	revoked := createKey(t, base, admin, "gone", "admin")
	req, _ := http.NewRequest("DELETE", base+"/api/v1/keys/gone", nil)
	code, out := do(t, req, admin)
	require.Equal(t, http.StatusOK, code, out)
	wrong := auth.NewToken()

	// A key with exactly the scope each route needs, and one without it.
	keys := map[string]string{}
	keyFor := func(scope string) string {
		if keys[scope] == "" {
			keys[scope] = createKey(t, base, admin, "k"+fmt.Sprint(len(keys)), scope)
		}
		return keys[scope]
	}
	routes := app.APIRoutes()
	require.Greater(t, len(routes), 50)
	type want struct {
		route       gateway.Route
		right, lack string
	}
	var cases []want
	for _, r := range routes {
		if r.Verb == "" {
			if strings.HasPrefix(r.Name, "partners.messages.") {
				// A partner's routes take its token; no API key, not even
				// the admin's, stands in for one.
				for _, key := range []string{"", wrong, admin} {
					code, out := do(t, routeRequest(t, base, r), key)
					require.Equal(t, http.StatusUnauthorized, code, "%s with API key %q: %s", r.Pattern, key, out)
				}
				continue
			}
			require.Contains(t, []string{"healthz", "readyz"}, r.Name, "only health checks and partners' own routes are public")
			continue
		}
		scope, lack := r.Verb, auth.VerbRead
		if r.Param != "" {
			// The path values routeRequest fills in.
			res := map[string]string{"hub": "h", "queue": "q", "container": "c"}[r.Param]
			if strings.Contains(r.Pattern, "/blobs/") {
				res = "b"
			}
			scope += ":" + res
			lack = r.Verb + ":other" // the same verb on another resource
		}
		if r.Verb == auth.VerbRead {
			lack = "publish:h"
		}
		cases = append(cases, want{route: r, right: keyFor(scope), lack: keyFor(lack)})
	}

	before := stateOf(t, app, admin)
	for _, c := range cases {
		for _, tc := range []struct {
			name, key string
			status    int
		}{
			{"no key", "", http.StatusUnauthorized},
			{"wrong key", wrong, http.StatusUnauthorized},
			{"revoked key", revoked, http.StatusUnauthorized},
			{"key without the scope", c.lack, http.StatusForbidden},
		} {
			code, out := do(t, routeRequest(t, base, c.route), tc.key)
			require.Equal(t, tc.status, code, "%s with %s: %s", c.route.Pattern, tc.name, out)
			if !strings.HasPrefix(c.route.Pattern, "HEAD") {
				require.Contains(t, out, `"error"`, c.route.Pattern)
			}
		}
	}
	require.Equal(t, before, stateOf(t, app, admin), "refused requests changed something")

	// The right key gets past authorization (the handler may still find
	// the empty test body wrong). Deleting routes go last.
	slices.SortStableFunc(cases, func(a, b want) int {
		return strings.Compare(fmt.Sprint(strings.HasPrefix(a.route.Pattern, "DELETE")), fmt.Sprint(strings.HasPrefix(b.route.Pattern, "DELETE")))
	})
	for _, c := range cases {
		code, out := do(t, routeRequest(t, base, c.route), c.right)
		require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, code, "%s with its scope: %s", c.route.Pattern, out)
	}

	// Health checks need nothing.
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
	}
}

// TestLoopbackWithoutKeys: with no key, the API serves clients on this
// machine, but refuses a POST a web page could send (no JSON type, no key
// header), a page of another origin, and a foreign Host.
func TestLoopbackWithoutKeys(t *testing.T) {
	t.Parallel()
	app := securedApp(t, sluice.Config{})
	base := app.URL()
	before := stateOf(t, app, "")
	for _, r := range app.APIRoutes() {
		method, _, _ := strings.Cut(r.Pattern, " ")
		if method == http.MethodPost {
			for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
				req := routeRequest(t, base, r)
				req.Header.Del("Content-Type")
				if ct != "" {
					req.Header.Set("Content-Type", ct)
				}
				code, out := do(t, req, "")
				want := http.StatusUnsupportedMediaType
				if strings.HasPrefix(r.Name, "partners.messages.") {
					want = http.StatusUnauthorized // the partner's token is missing
				}
				require.Equal(t, want, code, "%s as %q: %s", r.Pattern, ct, out)
			}
		}
		if r.Verb == "" && !strings.HasPrefix(r.Name, "partners.messages.") {
			continue
		}
		req := routeRequest(t, base, r)
		req.Header.Set("Origin", "http://127.0.0.1:9")
		code, out := do(t, req, "")
		require.Equal(t, http.StatusForbidden, code, "%s from another origin: %s", r.Pattern, out)
		req = routeRequest(t, base, r)
		req.Host = "rebind.attacker.example"
		code, out = do(t, req, "")
		require.Equal(t, http.StatusMisdirectedRequest, code, "%s with a foreign Host: %s", r.Pattern, out)
	}
	require.Equal(t, before, stateOf(t, app, ""), "refused requests changed something")

	// The same requests as a local client sends them are served.
	req, _ := http.NewRequest("POST", base+"/api/v1/hubs/h/events", strings.NewReader(`{"n":2}`))
	req.Header.Set("Content-Type", "application/json")
	code, out := do(t, req, "")
	require.Equal(t, http.StatusOK, code, out)
	req, _ = http.NewRequest("DELETE", base+"/api/v1/queues/q", nil)
	req.Header.Set("Origin", base) // the dashboard's own origin
	code, out = do(t, req, "")
	require.Equal(t, http.StatusNoContent, code, out)
}

// TestAPIIsNoWayAroundFunctionKeys: a document an admin-level HTTP function
// guards cannot be read through /api/v1 without a key either.
func TestAPIIsNoWayAroundFunctionKeys(t *testing.T) {
	t.Parallel()
	app := securedApp(t, sluice.Config{AdminKey: "the-admin-key", FunctionKeys: []string{"fkey"}})
	base := app.URL()
	doc := base + "/api/v1/containers/c/docs/p/d"
	req, _ := http.NewRequest("GET", doc, nil)
	code, out := do(t, req, "")
	require.Equal(t, http.StatusUnauthorized, code, out)
	req, _ = http.NewRequest("GET", doc, nil)
	code, _ = do(t, req, "fkey")
	require.Equal(t, http.StatusUnauthorized, code, "a function key is not an API key")
	req, _ = http.NewRequest("GET", doc, nil)
	code, out = do(t, req, "the-admin-key")
	require.Equal(t, http.StatusOK, code, out)
}

// TestAdminAPIKeyOpensAdminFunctions: an API key with the admin scope is
// an HTTP function's admin key; once keys exist, functions that ask for a
// key get one even without function keys configured.
func TestAdminAPIKeyOpensAdminFunctions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet()})
	app.HTTPFunction("ops", sluice.HTTPTrigger{AuthLevel: sluice.AuthAdmin}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ops") }))
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	base := app.URL()
	get := func(key string) int {
		req, _ := http.NewRequest("GET", base+"/api/ops", nil)
		if key != "" {
			req.Header.Set("x-functions-key", key)
		}
		code, _ := do(t, req, "")
		return code
	}
	require.Equal(t, http.StatusOK, get(""), "no keys anywhere: open, as Azure's local tools")
	admin := createKey(t, base, "", "root", "admin")
	reader := createKey(t, base, admin, "reader", "read")
	require.Equal(t, http.StatusUnauthorized, get(""))
	require.Equal(t, http.StatusUnauthorized, get(reader))
	require.Equal(t, http.StatusOK, get(admin))
}

// TestAdminKeyFile: a missing file gets a new admin key (mode 0600) that
// works; starting again with the same file keeps the same key; a file
// without a key is refused.
func TestAdminKeyFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "secrets", "admin.key")
	start := func() (*sluice.App, error) {
		app := sluice.New(sluice.Config{DataDir: filepath.Join(dir, "data"), HTTPAddr: "127.0.0.1:0", Logger: quiet(), AdminKeyFile: file})
		return app, app.Start(ctx)
	}
	app, err := start()
	require.NoError(t, err)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	st, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	key := strings.TrimSpace(string(data))
	req, _ := http.NewRequest("GET", app.URL()+"/api/v1/keys", nil)
	code, out := do(t, req, key)
	require.Equal(t, http.StatusOK, code, out)
	require.Contains(t, out, "admin-key-file")
	require.NoError(t, app.Stop(ctx))

	app, err = start()
	require.NoError(t, err)
	req, _ = http.NewRequest("GET", app.URL()+"/api/v1/keys", nil)
	code, out = do(t, req, key)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, 1, strings.Count(out, `"id"`), "the same key, not a second one")
	require.NoError(t, app.Stop(ctx))

	require.NoError(t, os.WriteFile(file, []byte("hunter2\n"), 0o600))
	_, err = start()
	require.ErrorContains(t, err, "holds no Sluice API key")
	require.NotContains(t, err.Error(), "hunter2")
}

// TestExposedAPINeedsKeys: listening beyond loopback without a key is
// refused, and allowed with one or with Insecure.
func TestExposedAPINeedsKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "0.0.0.0:0", Logger: quiet()})
	err := app.Start(ctx)
	require.ErrorContains(t, err, "listens beyond this machine, and no API key exists")
	require.ErrorContains(t, err, "--admin-key-file")
	require.ErrorContains(t, err, "--insecure")

	app = sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "0.0.0.0:0", Logger: quiet(), Insecure: true})
	require.NoError(t, app.Start(ctx))
	require.NoError(t, app.Stop(ctx))

	dir := t.TempDir()
	app = sluice.New(sluice.Config{DataDir: dir, HTTPAddr: "0.0.0.0:0", Logger: quiet(), AdminKeyFile: filepath.Join(dir, "admin.key")})
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	_, port, _ := strings.Cut(app.Addr(), "]:")
	if port == "" {
		_, port, _ = strings.Cut(app.Addr(), ":")
	}
	// Revoking every key leaves the exposed API closed, not open.
	key, err := os.ReadFile(filepath.Join(dir, "admin.key"))
	require.NoError(t, err)
	req, _ := http.NewRequest("DELETE", "http://127.0.0.1:"+port+"/api/v1/keys/admin-key-file", nil)
	code, out := do(t, req, strings.TrimSpace(string(key)))
	require.Equal(t, http.StatusOK, code, out)
	req, _ = http.NewRequest("GET", "http://127.0.0.1:"+port+"/api/v1/hubs", nil)
	code, out = do(t, req, "")
	require.Equal(t, http.StatusUnauthorized, code, out)
}

// TestDataDirectoryHasOneOwner: a second app on the same data directory is
// refused, naming the first; it starts once the first stops.
func TestDataDirectoryHasOneOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	first := sluice.New(sluice.Config{DataDir: dir, Logger: quiet(), InstanceID: "first"})
	require.NoError(t, first.Start(ctx))
	second := sluice.New(sluice.Config{DataDir: dir, Logger: quiet(), InstanceID: "second"})
	err := second.Start(ctx)
	require.ErrorContains(t, err, fmt.Sprintf("is in use by pid %d (instance first", os.Getpid()))
	require.ErrorContains(t, err, "stop it or use --data-dir")
	require.NoError(t, first.Stop(ctx))
	third := sluice.New(sluice.Config{DataDir: dir, Logger: quiet(), InstanceID: "third"})
	require.NoError(t, third.Start(ctx))
	require.NoError(t, third.Stop(ctx))
}

// TestHTTPLimitsAreChecked: negative limits are refused at start.
func TestHTTPLimitsAreChecked(t *testing.T) {
	t.Parallel()
	err := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet(),
		MaxConnections: -1, HTTPReadTimeout: -time.Second}).Start(context.Background())
	require.ErrorContains(t, err, "MaxConnections is -1")
	require.ErrorContains(t, err, "HTTPReadTimeout is -1s")
}
