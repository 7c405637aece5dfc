package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/resilience"
)

// The cross-origin attack harness: a page of another origin (an attacker's
// site the operator happens to visit) tries every state-changing route of
// the API, in every way a page can send a request without the server's
// consent, and the server's state must not change (DESIGN.md, invariant
// 8). See testdata/attack/attack.js for the ways.

// attack is one request the attacker's page tries.
type attack struct {
	Name   string `json:"name"` // the route's name, as gateway.Route.Name
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   string `json:"body,omitempty"`
}

// attacks are the requests the page tries, in this order: each would
// succeed if the server served it (the control in TestCrossOriginAttack
// checks that), creations first and deletions last, so that as many as
// possible find what they act on. A text/plain form can only send a body
// of the shape name=value: a body ending in a string member survives that
// with a '=' at the end of the string.
//
// Every route of the API but GET and HEAD ones must be here: the test
// fails when a route is missing, so that a new route is attacked too.
var attacks = []attack{
	{"hubs.create", "POST", "/api/v1/hubs", `{"partitions":1,"name":"csrf"}`},
	{"queues.create", "POST", "/api/v1/queues", `{"name":"csrf"}`},
	{"containers.create", "POST", "/api/v1/containers", `{"partition_key_path":"/pk","name":"csrf"}`},
	{"blobs.containers.create", "POST", "/api/v1/blobs", `{"name":"csrf"}`},
	{"hubs.publish", "POST", "/api/v1/hubs/telemetry/events", `{"device":"d01","temp":99,"by":"csrf"}`},
	{"hubs.replay", "POST", "/api/v1/hubs/telemetry/groups/$Default/replay", `{"earliest":true}`},
	{"queues.send", "POST", "/api/v1/queues/orders/messages", `{"messages":[{"body_text":"csrf"}]}`},
	{"queues.receive", "POST", "/api/v1/queues/orders/receive", ``},
	{"queues.renew", "POST", "/api/v1/queues/orders/renew", `{"lock_token":"csrf"}`},
	{"queues.abandon", "POST", "/api/v1/queues/orders/abandon", `{"lock_token":"csrf"}`},
	{"queues.complete", "POST", "/api/v1/queues/orders/complete", `{"lock_token":"csrf"}`},
	{"docs.create", "POST", "/api/v1/containers/devices/docs", `{"deviceId":"csrf","id":"csrf"}`},
	{"docs.upsert", "PUT", "/api/v1/containers/devices/docs", `{"deviceId":"d01","temp":99,"id":"d01"}`},
	{"docs.bulk", "POST", "/api/v1/containers/devices/docs/bulk", `{"documents":[{"deviceId":"csrf","id":"csrf-bulk"}]}`},
	{"docs.replace", "PUT", "/api/v1/containers/devices/docs/d01/d01", `{"deviceId":"d01","temp":98,"id":"d01"}`},
	{"docs.patch", "PATCH", "/api/v1/containers/devices/docs/d01/d01", `{"temp":97}`},
	{"docs.query", "POST", "/api/v1/containers/devices/query", `{"query":"SELECT * FROM c"}`},
	{"docs.delete", "DELETE", "/api/v1/containers/devices/docs/d02/d02", ``},
	{"blobs.put", "PUT", "/api/v1/blobs/files/csrf.txt", `csrf`},
	{"blobs.delete", "DELETE", "/api/v1/blobs/files/report.txt", ``},
	{"breakers.open", "POST", "/api/v1/breakers/decode/open", `{"by":"csrf","reason":"csrf"}`},
	{"breakers.close", "POST", "/api/v1/breakers/decode/close", `{"by":"csrf","reason":"csrf"}`},
	{"deadletters.redrive", "POST", "/api/v1/deadletters/redrive", `{"all":true}`},
	{"deadletters.purge", "POST", "/api/v1/deadletters/purge", `{"all":true}`},
	{"queues.purge", "POST", "/api/v1/queues/orders/purge", ``},
	{"hubs.delete", "DELETE", "/api/v1/hubs/telemetry", ``},
	{"queues.delete", "DELETE", "/api/v1/queues/orders", ``},
	{"containers.delete", "DELETE", "/api/v1/containers/devices", ``},
	{"blobs.containers.delete", "DELETE", "/api/v1/blobs/files", ``},
	{"keys.revoke", "DELETE", "/api/v1/keys/spare", ``},
	{"keys.create", "POST", "/api/v1/keys", `{"scopes":["admin"],"name":"csrf"}`},
}

// attackerPath is where the attacker's servers serve the page.
const attackerPath = "/attacker/"

// tokenRoutes need a lock token that only a receiver has: the attack's
// made-up one is refused by the handler even when the request is served.
var tokenRoutes = []string{"queues.renew", "queues.abandon", "queues.complete"}

// apiRoutes are the routes of the API with every part configured.
func apiRoutes() []gateway.Route {
	srv := gateway.NewServer(gateway.Config{Queues: &queue.Service{}, Blobs: &blob.Service{}, Docs: noDocs{},
		Breakers: &resilience.Breakers{}, Logger: slog.New(slog.DiscardHandler)})
	srv.HandleKeys(&auth.Keys{})
	return srv.Routes()
}

// noDocs stands in for a document store where only the routes are needed.
type noDocs struct{ docstore.Store }

// routeOf matches requests to the API's routes, by name.
type routeOf struct {
	mux   *http.ServeMux
	names map[string]string // pattern → name
}

func newRouteOf(routes []gateway.Route) *routeOf {
	r := &routeOf{mux: http.NewServeMux(), names: map[string]string{}}
	for _, rt := range routes {
		r.mux.HandleFunc(rt.Pattern, func(http.ResponseWriter, *http.Request) {})
		r.names[rt.Pattern] = rt.Name
	}
	return r
}

// name is the name of the route that serves method and path, or "".
func (r *routeOf) name(method, path string) string {
	req := httptest.NewRequest(method, path, nil)
	_, pattern := r.mux.Handler(req)
	return r.names[pattern]
}

// TestAttackCoversEveryRoute: the attacker's page tries every route of the
// API that is not a GET or HEAD, each with a path the route serves. It
// runs without a browser.
func TestAttackCoversEveryRoute(t *testing.T) {
	t.Parallel()
	routes := apiRoutes()
	of := newRouteOf(routes)
	var want []string
	for _, rt := range routes {
		method, _, _ := strings.Cut(rt.Pattern, " ")
		if method != http.MethodGet && method != http.MethodHead {
			want = append(want, rt.Name)
		}
	}
	var got []string
	for _, a := range attacks {
		require.Equal(t, a.Name, of.name(a.Method, a.Path), "the attack %s %s is not served by the route %s", a.Method, a.Path, a.Name)
		got = append(got, a.Name)
	}
	require.ElementsMatch(t, want, got, "every route that is not a GET or HEAD must be attacked: add the missing ones to attacks")
}

// TestCrossOriginAttack loads an attacker's page in Chromium from two
// origins other than the server's (the same site: 127.0.0.1 on another
// port; another site: localhost, whose page has no-referrer, so that some
// requests say Origin: null), which fires every state-changing request at
// a running server, and checks that the server's state did not change:
//
//   - without API keys;
//   - without API keys, through a proxy that removes the headers by which
//     a browser says where a request comes from (Origin, Sec-Fetch-*,
//     Referer), as a browser that sends none would: the Content-Type rule
//     alone refuses what the page can send;
//   - without API keys, after DNS rebinding: the page comes from the
//     attacker's name (rebind.test), which then resolves to 127.0.0.1 (the
//     browser's host resolver rules), and its requests are same-origin, so
//     the browser sends them all, JSON and PUT and DELETE included; only
//     the Host check stands (a front on the attacker's port serves the
//     page and passes everything else to the server untouched);
//   - with API keys, the victim's tab holding an admin key in the
//     dashboard (which still works afterwards).
//
// Last, a control: the same page through a proxy that also says yes to
// preflights, gives forms' bodies the JSON type and adds the admin key, as
// a server without any of those checks would see it: every route is then
// served and succeeds (but those that need a real lock token), so the
// page's requests are ones that would change the state.
func TestCrossOriginAttack(t *testing.T) {
	browser := chromium(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)

	p := startPipeline(t, ctx, func(app *sluice.App) {
		app.Queue(sluice.QueueConfig{Name: "orders"}) // no function: its message stays
		app.BlobContainer("files")
	})
	app := p.app
	base := "http://" + app.Addr()
	server, err := url.Parse(base)
	require.NoError(t, err)
	for i := range 8 {
		d := fmt.Sprintf("d%02d", i)
		body, _ := json.Marshal(reading{Device: d, Temp: 20, Seq: int64(i)})
		_, err := app.Publish(ctx, "telemetry", sluice.Event{Body: body, PartitionKey: d})
		require.NoError(t, err)
	}
	for i := 1; i <= 3; i++ {
		_, err := app.Publish(ctx, "telemetry", sluice.Event{Body: fmt.Appendf(nil, "corrupt-%d", i), PartitionKey: "broken"})
		require.NoError(t, err)
	}
	_, err = app.Send(ctx, "orders", sluice.OutgoingMessage{Body: []byte(`{"order":1}`)})
	require.NoError(t, err)
	_, err = app.Blobs().Put(ctx, "files", "report.txt", []byte("quarterly"), "text/plain")
	require.NoError(t, err)

	// The attacker's server: the page, its script and the requests,
	// under attackerPath.
	plan, err := json.Marshal(attacks)
	require.NoError(t, err)
	files := http.StripPrefix(attackerPath, http.FileServer(http.Dir("testdata/attack")))
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "localhost:") {
			w.Header().Set("Referrer-Policy", "no-referrer")
		}
		if r.URL.Path == attackerPath+"requests.json" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(plan)
			return
		}
		files.ServeHTTP(w, r)
	})
	attacker := httptest.NewServer(page)
	t.Cleanup(attacker.Close)
	_, port, _ := net.SplitHostPort(attacker.Listener.Addr().String())
	origins := []string{"http://127.0.0.1:" + port, "http://localhost:" + port}

	// The rebinding front: the page under attackerPath, everything else
	// passed to the server as it came, Host included.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, attackerPath) {
			page.ServeHTTP(w, r)
			return
		}
		(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(server)
			pr.Out.Host = pr.In.Host
		}}).ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	_, frontPort, _ := net.SplitHostPort(front.Listener.Addr().String())
	rebound := "http://rebind.test:" + frontPort

	tb := openTab(t, ctx, browser, chromedp.Flag("host-resolver-rules", "MAP rebind.test 127.0.0.1"))
	tr := followTraffic(t, tb)
	routes := newRouteOf(apiRoutes())

	// attackFrom loads the page from origin against target, and waits
	// until everything it sent to target is answered.
	attackFrom := func(origin, target string) {
		t.Helper()
		// Leave the page before (the dashboard's calls are not the
		// attack's).
		tb.run("leave the page", chromedp.Navigate("about:blank"))
		tr.reset(strings.TrimPrefix(target, "http://"))
		tb.run("load the attacker's page", chromedp.Navigate(origin+attackerPath+"?target="+url.QueryEscape(target)))
		var done struct{ Requests, Forms, Beacons int }
		raw := tb.poll("the attacker's page to send everything", `window.attackFailed ? {failed: window.attackFailed} : window.attackDone`)
		require.NoError(t, json.Unmarshal(raw, &done))
		require.Equal(t, len(attacks), done.Requests, "the page failed: %s", raw)
		tr.wait(ctx, done.Forms, done.Beacons)
		var tries []map[string]string
		tb.eval("the page's log", `window.attackLog`, &tries)
		t.Logf("from %s: %d requests in %d ways, %d forms, %d beacons; the browser sent %s",
			origin, done.Requests, len(tries), done.Forms, done.Beacons, tr.summary())
	}

	// Without keys.
	quiet := waitQuiet(t, ctx, base, "", 3)
	for _, origin := range origins {
		attackFrom(origin, base)
		tr.refused(t, routes)
		require.Equal(t, quiet, readState(t, ctx, base, ""), "the attack from %s changed the server's state (no API keys)", origin)
	}
	anonymous := httptest.NewServer(&proxy{target: server, routes: routes})
	t.Cleanup(anonymous.Close)
	attackFrom(origins[1], anonymous.URL)
	tr.refused(t, routes)
	require.Equal(t, quiet, readState(t, ctx, base, ""), "the attack without Origin and Sec-Fetch-* changed the server's state (no API keys)")
	attackFrom(rebound, rebound)
	tr.refused(t, routes)
	require.Equal(t, quiet, readState(t, ctx, base, ""), "the attack after DNS rebinding changed the server's state (no API keys)")

	// With keys, and the victim's tab holding an admin key.
	admin := createKey(t, ctx, base, "", "admin", "admin")
	createKey(t, ctx, base, admin, "spare", "read")
	tb.run("open the dashboard", chromedp.Navigate(base+"/"))
	tb.poll("the key form", `!document.querySelector('#key-form').hidden`)
	tb.run("enter the key", chromedp.SetValue(chromedp.CSS(`#key-input`), admin), chromedp.Click(chromedp.CSS(`#key-form button[type="submit"]`)))
	dashboardWorks := cellValue("containers-table", "devices", "documents") + ` === 8 && document.querySelector('#key-form').hidden && document.querySelector('#error').hidden`
	tb.poll("the dashboard with the key", dashboardWorks)
	quiet = waitQuiet(t, ctx, base, admin, 3)
	for _, origin := range origins {
		attackFrom(origin, base)
		tr.refused(t, routes)
		require.Equal(t, quiet, readState(t, ctx, base, admin), "the attack from %s changed the server's state (with API keys)", origin)
	}
	tb.run("back to the dashboard", chromedp.Navigate(base+"/"))
	tb.poll("the dashboard, still with its key", dashboardWorks)

	// The control: with none of the checks, the same page changes
	// everything.
	control := &proxy{target: server, routes: routes, naked: true, key: admin}
	naked := httptest.NewServer(control)
	t.Cleanup(naked.Close)
	attackFrom(origins[1], naked.URL)
	served := control.served()
	t.Logf("control: the answers by route: %v", served)
	for _, a := range attacks {
		st := served[a.Name]
		if slices.Contains(tokenRoutes, a.Name) {
			require.True(t, slices.ContainsFunc(st, func(code int) bool { return !guardStatus(code) }),
				"control: %s was never served (answers %v)", a.Name, st)
			continue
		}
		require.True(t, slices.ContainsFunc(st, func(code int) bool { return code < 300 }),
			"control: %s %s never succeeded (answers %v): the attack does not send what the route takes", a.Method, a.Path, st)
	}
	require.NotEqual(t, quiet, readState(t, ctx, base, admin), "control: the state did not change")
	tb.noExceptions()
}

// guardStatus reports whether an answer is one of the guard's refusals:
// no key or a bad one, another origin or a missing scope, a form's
// Content-Type, a Host of another name.
func guardStatus(code int) bool {
	return code == http.StatusUnauthorized || code == http.StatusForbidden ||
		code == http.StatusUnsupportedMediaType || code == http.StatusMisdirectedRequest
}

// traffic follows, through the browser's network events, what a tab
// sends to one host.
type traffic struct {
	t       *testing.T
	changed chan struct{}

	mu    sync.Mutex
	host  string
	sent  map[network.RequestID]*exchange
	order []network.RequestID
	// The extra information of requests, which may come before or after
	// the request's event.
	status map[network.RequestID]int64  // as received, also when CORS hides it
	from   map[network.RequestID]string // the Origin and Sec-Fetch-Site sent
}

// exchange is a request and what became of it.
type exchange struct {
	method, url string
	kind        network.ResourceType
	answered    bool   // the answer's headers arrived
	failure     string // why the browser gave up on it
	done        bool
}

func followTraffic(t *testing.T, tb *tab) *traffic {
	t.Helper()
	tr := &traffic{t: t, changed: make(chan struct{}, 1)}
	tr.reset("")
	require.NoError(t, chromedp.Listen(tb.ctx, tr.event))
	_, err := chromedp.Call(tb.ctx, network.Enable, network.EnableParams{})
	require.NoError(t, err)
	return tr
}

func (tr *traffic) reset(host string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.host = host
	tr.sent = map[network.RequestID]*exchange{}
	tr.order = nil
	tr.status = map[network.RequestID]int64{}
	tr.from = map[network.RequestID]string{}
}

// event runs on the tab's reader goroutine: quick, no calls.
func (tr *traffic) event(ev any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		u, err := url.Parse(ev.Request.URL)
		if err != nil || u.Host != tr.host || strings.HasPrefix(u.Path, attackerPath) {
			return // not to the target, or the page's own (after rebinding)
		}
		if _, ok := tr.sent[ev.RequestID]; !ok {
			tr.order = append(tr.order, ev.RequestID)
		}
		tr.sent[ev.RequestID] = &exchange{method: ev.Request.Method, url: ev.Request.URL, kind: ev.Type}
	case *network.EventRequestWillBeSentExtraInfo:
		var origin, site any
		for k, v := range ev.Headers {
			switch strings.ToLower(k) {
			case "origin":
				origin = v
			case "sec-fetch-site":
				site = v
			}
		}
		tr.from[ev.RequestID] = fmt.Sprintf("Origin %v, Sec-Fetch-Site %v", origin, site)
	case *network.EventResponseReceivedExtraInfo:
		tr.status[ev.RequestID] = ev.StatusCode
	case *network.EventResponseReceived:
		if x := tr.sent[ev.RequestID]; x != nil {
			x.answered = true
			if _, ok := tr.status[ev.RequestID]; !ok && ev.Response != nil {
				tr.status[ev.RequestID] = ev.Response.Status
			}
		}
	case *network.EventLoadingFinished:
		if x := tr.sent[ev.RequestID]; x != nil {
			x.done = true
		}
	case *network.EventLoadingFailed:
		if x := tr.sent[ev.RequestID]; x != nil {
			x.done, x.failure = true, ev.ErrorText
		}
	default:
		return
	}
	select {
	case tr.changed <- struct{}{}:
	default:
	}
}

// finished reports whether the browser is done with a request: loaded,
// failed, or (a frame's document, whose end is the frame's) answered.
func (x *exchange) finished() bool {
	return x.done || x.kind == network.ResourceTypeDocument && x.answered
}

// wait waits until the browser finished every request it sent to the
// host, among them at least forms form posts and beacons beacons.
func (tr *traffic) wait(ctx context.Context, forms, beacons int) {
	tr.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		tr.mu.Lock()
		nForms, nBeacons, pending := 0, 0, 0
		for _, x := range tr.sent {
			switch x.kind {
			case network.ResourceTypeDocument:
				nForms++
			case network.ResourceTypePing:
				nBeacons++
			}
			if !x.finished() {
				pending++
			}
		}
		tr.mu.Unlock()
		if nForms >= forms && nBeacons >= beacons && pending == 0 {
			return
		}
		select {
		case <-tr.changed:
		case <-ctx.Done():
			tr.t.Fatalf("the browser did not finish the attack's requests: %d of %d forms and %d of %d beacons seen, %d unfinished; %s",
				nForms, forms, nBeacons, beacons, pending, tr.summary())
		}
	}
}

// summary counts the requests by kind, method and answer, and the
// distinct origins they said they came from.
func (tr *traffic) summary() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := map[string]int{}
	from := map[string]int{}
	for id, x := range tr.sent {
		what := fmt.Sprintf("%s %s", x.kind, x.method)
		if st, ok := tr.status[id]; ok {
			what += fmt.Sprintf(" answered %d", st)
		} else {
			what += " unanswered"
		}
		if x.failure != "" {
			what += " (" + x.failure + ")"
		}
		n[what]++
		if f, ok := tr.from[id]; ok {
			from[f]++
		}
	}
	count := func(m map[string]int) string {
		keys := slices.Sorted(maps.Keys(m))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%d %s", m[k], k)
		}
		return strings.Join(parts, "; ")
	}
	return fmt.Sprintf("%d requests: %s; headers: %s", len(tr.sent), count(n), count(from))
}

// refused checks that the browser sent a request to every route, and that
// every answer the server gave was a refusal: a preflight's that is not
// a yes, the guard's to others.
func (tr *traffic) refused(t *testing.T, routes *routeOf) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tried := map[string]bool{}
	for _, id := range tr.order {
		x := tr.sent[id]
		u, err := url.Parse(x.url)
		require.NoError(t, err)
		tried[routes.name(x.method, u.EscapedPath())] = true
		st, ok := tr.status[id]
		switch {
		case !ok:
		case x.method == http.MethodOptions:
			// A preflight that is not a 2xx stops the request.
			require.GreaterOrEqual(t, st, int64(300), "the preflight %s %s was answered %d", x.method, x.url, st)
		default:
			require.True(t, guardStatus(int(st)), "%s %s (%s) answered %d", x.method, x.url, x.kind, st)
		}
	}
	for _, a := range attacks {
		require.True(t, tried[a.Name], "the browser sent nothing to %s %s", a.Method, a.Path)
	}
}

// proxy stands between the attacker's page and the server. It removes the
// headers by which the browser says where a request comes from (Origin,
// Sec-Fetch-*, Referer). A naked proxy also shows what a server without
// any check would get: it says yes to preflights itself, gives the body
// of a form or a beacon the JSON type, and adds an API key. It records the
// server's answers by route.
type proxy struct {
	target *url.URL
	routes *routeOf
	naked  bool
	key    string

	mu       sync.Mutex
	statuses map[string][]int
}

func (px *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if px.naked {
		if origin := r.Header.Get("Origin"); origin != "" {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
		}
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", r.Header.Get("Access-Control-Request-Method"))
			w.Header().Set("Access-Control-Allow-Headers", r.Header.Get("Access-Control-Request-Headers"))
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	name := px.routes.name(r.Method, r.URL.EscapedPath())
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(px.target)
			h := pr.Out.Header
			for k := range h {
				if k == "Origin" || k == "Referer" || strings.HasPrefix(k, "Sec-Fetch-") {
					h.Del(k)
				}
			}
			if !px.naked {
				return
			}
			switch ct, _, _ := strings.Cut(h.Get("Content-Type"), ";"); ct {
			case "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data":
				h.Set("Content-Type", "application/json")
			}
			if px.key != "" {
				h.Set("Authorization", "Bearer "+px.key)
			}
		},
		ModifyResponse: func(res *http.Response) error {
			px.mu.Lock()
			defer px.mu.Unlock()
			if px.statuses == nil {
				px.statuses = map[string][]int{}
			}
			px.statuses[name] = append(px.statuses[name], res.StatusCode)
			return nil
		},
	}
	rp.ServeHTTP(w, r)
}

// served returns the server's answers by route name.
func (px *proxy) served() map[string][]int {
	px.mu.Lock()
	defer px.mu.Unlock()
	return maps.Clone(px.statuses)
}

// createKey creates an API key through the API, with the key admin (or
// none while the server has none), and returns its token.
func createKey(t *testing.T, ctx context.Context, base, admin, name string, scopes ...string) string {
	t.Helper()
	body, err := json.Marshal(gateway.CreateKeyRequest{Name: name, Scopes: scopes})
	require.NoError(t, err)
	var created gateway.CreateKeyResponse
	status, text := call(t, ctx, http.MethodPost, base+"/api/v1/keys", admin, body, &created)
	require.Equal(t, http.StatusCreated, status, text)
	require.NotEmpty(t, created.Key)
	return created.Key
}

// call sends a request to the API as a client that is not a browser, and
// decodes a 2xx answer into out.
func call(t *testing.T, ctx context.Context, method, u, key string, body []byte, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	text, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if res.StatusCode < 300 && out != nil {
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.UseNumber()
		require.NoError(t, dec.Decode(out), "%s %s: %s", method, u, text)
	}
	return res.StatusCode, string(text)
}

// readState reads what the attack could change, through the API: hubs
// and their partitions, consumer groups' checkpoints, queues and their
// messages, containers and their documents (the change feed), blob
// containers and their blobs, breakers, dead letters and keys. Values
// that change with time alone (ages, last use of a key, failures in a
// rolling window) are left out.
func readState(t *testing.T, ctx context.Context, base, key string) map[string]any {
	t.Helper()
	get := func(path string) map[string]any {
		t.Helper()
		var v map[string]any
		status, text := call(t, ctx, http.MethodGet, base+path, key, nil, &v)
		require.Equal(t, http.StatusOK, status, "GET %s: %s (without a key, a 401 means that a key was created)", path, text)
		return v
	}
	names := func(v map[string]any, list string) []string {
		var out []string
		for _, x := range v[list].([]any) {
			out = append(out, x.(map[string]any)["name"].(string))
		}
		sort.Strings(out)
		return out
	}
	st := map[string]any{}
	for _, h := range names(get("/api/v1/hubs"), "hubs") {
		st["hub "+h] = get("/api/v1/hubs/" + url.PathEscape(h))
	}
	for _, h := range get("/api/v1/overview")["hubs"].([]any) {
		h := h.(map[string]any)
		for _, g := range h["groups"].([]any) {
			g := g.(map[string]any)
			st[fmt.Sprintf("group %s %s", h["name"], g["name"])] = g["partitions"]
		}
	}
	queues := get("/api/v1/queues")
	st["queues"] = queues
	for _, q := range names(queues, "queues") {
		st["queue "+q] = get("/api/v1/queues/" + url.PathEscape(q) + "/peek?max=1000")
	}
	containers := get("/api/v1/containers")
	st["containers"] = containers
	for _, c := range names(containers, "containers") {
		st["container "+c] = get("/api/v1/containers/" + url.PathEscape(c) + "/feed?after=0&limit=1000")
	}
	blobs := get("/api/v1/blobs")
	st["blob containers"] = blobs
	for _, c := range names(blobs, "containers") {
		st["blobs "+c] = get("/api/v1/blobs/" + url.PathEscape(c))
	}
	st["breakers"] = get("/api/v1/breakers")
	st["dead letters"] = get("/api/v1/deadletters?limit=10000")
	st["keys"] = get("/api/v1/keys")
	var scrub func(v any) any
	scrub = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range []string{"oldest_age_seconds", "last_used", "failures", "consecutive"} {
				delete(v, k)
			}
			for k, x := range v {
				v[k] = scrub(x)
			}
		case []any:
			for i, x := range v {
				v[i] = scrub(x)
			}
		}
		return v
	}
	return scrub(st).(map[string]any)
}

// waitQuiet waits until the pipeline has processed what was sent (dead
// letters counted, lag 0) and two reads of the state agree, and returns
// the state.
func waitQuiet(t *testing.T, ctx context.Context, base, key string, deadLetters int) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last map[string]any
	for {
		st := readState(t, ctx, base, key)
		settled := len(st["dead letters"].(map[string]any)["dead_letters"].([]any)) == deadLetters
		for k, v := range st {
			if strings.HasPrefix(k, "group ") {
				for _, p := range v.([]any) {
					if lag, _ := p.(map[string]any)["lag"].(json.Number).Int64(); lag != 0 {
						settled = false
					}
				}
			}
		}
		if settled && last != nil && equalJSON(last, st) {
			return st
		}
		if settled {
			last = st
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("the pipeline did not settle: last state %v", st)
		}
	}
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
