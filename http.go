package sluice

import (
	"cmp"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// Authorization levels of an HTTP trigger, as in Azure Functions.
const (
	// AuthAnonymous routes need no key.
	AuthAnonymous = "anonymous"
	// AuthFunction routes need a function key or the admin key (the
	// default).
	AuthFunction = "function"
	// AuthAdmin routes need the admin key.
	AuthAdmin = "admin"
)

// HTTPTrigger serves a function at a route of the app's HTTP server, under
// Config.HTTPRoutePrefix (default "api"): "products/{category:alpha}/{id:int?}"
// is served at /api/products/books/7 and /api/products/books. Route values
// are read with r.PathValue("id"). As in Azure Functions, routes match
// without regard to case (/API/Products/books) and with a trailing slash;
// when routes overlap, the most specific serves (products/new before
// products/{id}).
type HTTPTrigger struct {
	// Route is an ASP.NET-style template, as Azure takes: parameters
	// {name}, optional {name?} and catch-all {*name} as the last segment,
	// and constraints {id:int} (int, long, bool, double, float, decimal,
	// guid, alpha, datetime). Default: the function's name.
	Route string
	// Methods are the HTTP methods served. Default: all.
	Methods []string
	// AuthLevel is AuthAnonymous, AuthFunction (default) or AuthAdmin. A
	// key is given as ?code=<key> or the x-functions-key header. Keys are
	// enforced when Config.FunctionKeys or Config.AdminKey are set; without
	// any, every route is open (as Azure's local tools do) and Start logs a
	// warning.
	AuthLevel string
}

type httpFunction struct {
	name    string
	trigger HTTPTrigger
	handler http.Handler
}

// HTTPFunction declares a function served at an HTTP route. It needs
// Config.HTTPAddr. Problems with the declaration are reported by Start.
func (a *App) HTTPFunction(name string, trigger HTTPTrigger, handler http.Handler) {
	a.fns = append(a.fns, &declared{name: name, http: &httpFunction{name: name, trigger: trigger, handler: handler}})
}

// reservedPaths are served by Sluice itself ("/ui": the dashboard's files),
// exactly as written: only HTTP functions match without regard to case.
var reservedPaths = []string{"/api/v1", "/healthz", "/readyz", "/metrics", "/ui"}

// httpRoutes adds the HTTP functions to mux.
//
// They are matched as the Azure Functions host matches them (route's
// MatchPath): without regard to case and with a trailing slash tolerated,
// which ServeMux patterns cannot express. So one router serves them all,
// registered on mux for every path but "/" (and "/" too when a route can
// match it), under Sluice's own paths, which stay exact.
func (a *App) httpRoutes(mux *http.ServeMux) error {
	prefix := cmp.Or(a.cfg.HTTPRoutePrefix, "api")
	if prefix == "/" {
		prefix = ""
	}
	keyed := len(a.cfg.FunctionKeys) > 0 || a.cfg.AdminKey != "" || a.guard.Required()
	var open []string
	rt := &httpRouter{}
	for _, d := range a.fns {
		f := d.http
		if f == nil {
			continue
		}
		level := cmp.Or(strings.ToLower(f.trigger.AuthLevel), AuthFunction)
		switch {
		case f.handler == nil:
			return fmt.Errorf("sluice: HTTP function %s has no handler", f.name)
		case !slices.Contains([]string{AuthAnonymous, AuthFunction, AuthAdmin}, level):
			return fmt.Errorf("sluice: HTTP function %s: authLevel %q: use anonymous, function or admin", f.name, f.trigger.AuthLevel)
		}
		route, err := parseRoute(prefix, cmp.Or(f.trigger.Route, f.name))
		if err != nil {
			return fmt.Errorf("sluice: HTTP function %s: %w", f.name, err)
		}
		fixed := strings.ToLower(route.FixedPrefix())
		for _, r := range reservedPaths {
			if fixed == r || strings.HasPrefix(fixed, r+"/") {
				return fmt.Errorf("sluice: HTTP function %s: route %s would be served at %s, which Sluice serves itself; change the route or the route prefix", f.name, route.Template, route.Patterns[0])
			}
		}
		if level != AuthAnonymous && !keyed {
			open = append(open, f.name)
		}
		var methods []string
		for _, m := range f.trigger.Methods {
			if m = strings.ToUpper(strings.TrimSpace(m)); m != "" && !slices.Contains(methods, m) {
				methods = append(methods, m)
			}
		}
		if err := rt.add(httpRoute{name: f.name, route: route, methods: methods, handler: a.httpInvoker(f.name, level, f.handler)}); err != nil {
			return err
		}
		a.httpInfo = append(a.httpInfo, gateway.HTTPFunction{Name: f.name, Route: path.Join("/", prefix, strings.Trim(route.Template, "/")), Methods: methods})
	}
	if len(rt.routes) == 0 {
		return nil
	}
	for _, p := range []string{"/{first}", "/{first}/"} {
		if err := handle(mux, p, rt); err != nil {
			return fmt.Errorf("sluice: HTTP functions: %w", err)
		}
	}
	if slices.ContainsFunc(rt.routes, func(r httpRoute) bool { return r.route.MatchesRoot() }) {
		if err := handle(mux, "/{$}", rt); err != nil {
			return fmt.Errorf("sluice: HTTP functions: %w", err)
		}
	}
	if len(open) > 0 {
		a.log.Warn("no function or admin keys are set, so HTTP functions that ask for a key are open to anyone who reaches the server; set FunctionKeys/AdminKey (SLUICE_FUNCTION_KEYS, SLUICE_ADMIN_KEY)",
			"functions", open)
	}
	return nil
}

// httpRouter serves the HTTP functions' routes.
type httpRouter struct {
	// routes, most specific first (routePrecedence), then in the order
	// of declaration.
	routes []httpRoute
}

// httpRoute is a function's route.
type httpRoute struct {
	name  string
	route route
	// methods are upper-case; none: every method.
	methods []string
	handler http.Handler
}

func (r httpRoute) allows(method string) bool {
	return len(r.methods) == 0 || slices.Contains(r.methods, method)
}

// add adds a route, refusing one that matches the same paths as another
// for a method both serve.
func (rt *httpRouter) add(r httpRoute) error {
	for _, o := range rt.routes {
		if o.route.Shape() != r.route.Shape() {
			continue
		}
		overlap := len(o.methods) == 0 || len(r.methods) == 0 ||
			slices.ContainsFunc(r.methods, func(m string) bool { return slices.Contains(o.methods, m) })
		if overlap {
			return fmt.Errorf("sluice: HTTP function %s: route %s matches the same requests as route %s of function %s; give them different routes or methods",
				r.name, r.route.Template, o.route.Template, o.name)
		}
	}
	i, _ := slices.BinarySearchFunc(rt.routes, r, func(o, r httpRoute) int {
		if c := routePrecedence(o.route, r.route); c != 0 {
			return c
		}
		return -1 // after the routes declared before it
	})
	rt.routes = slices.Insert(rt.routes, i, r)
	return nil
}

// ServeHTTP runs the function of the first route that matches the path and
// serves the method. A path some route matches with other methods only
// gets 405 and the methods in Allow; HEAD is a method like the others: a
// route serves it only when its methods say so, as in Azure.
func (rt *httpRouter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	path := req.URL.EscapedPath()
	var allow []string
	for _, r := range rt.routes {
		values, ok := r.route.MatchPath(path)
		if !ok {
			continue
		}
		if !r.allows(req.Method) {
			allow = append(allow, r.methods...)
			continue
		}
		for _, p := range r.route.Params {
			// Every parameter is set, those left out empty: the path the
			// request came by may have values of its own.
			req.SetPathValue(p.Name, values[p.Name])
		}
		r.handler.ServeHTTP(w, req)
		return
	}
	if len(allow) == 0 {
		http.NotFound(w, req)
		return
	}
	slices.Sort(allow)
	w.Header().Set("Allow", strings.Join(slices.Compact(allow), ", "))
	http.Error(w, fmt.Sprintf("method %s is not allowed here; use %s", req.Method, strings.Join(slices.Compact(allow), ", ")), http.StatusMethodNotAllowed)
}

// handle registers a pattern, turning ServeMux's panic on a conflict into
// an error.
func handle(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// httpInvoker checks the key, bounds the body, counts the invocation and
// runs the handler.
func (a *App) httpInvoker(name, level string, h http.Handler) http.Handler {
	maxBody := cmp.Or(a.cfg.MaxHTTPBodyBytes, 100<<20)
	// HTTP functions have metric families of their own: requests by
	// status (refused ones included) and durations.
	duration := a.metrics.HTTPFunctionDuration.WithLabelValues(name)
	answered := func(code int) {
		a.metrics.HTTPFunctionRequests.WithLabelValues(name, telemetry.HTTPCodeLabel(code)).Inc()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if level != AuthAnonymous && a.keysEnforced() && !a.keyAllows(r, level) {
			w.Header().Set("WWW-Authenticate", `Key realm="sluice"`)
			http.Error(w, fmt.Sprintf("function %s needs %s key: pass it as ?code=<key> or in the x-functions-key header", name, map[string]string{AuthFunction: "a function", AuthAdmin: "an admin"}[level]), http.StatusUnauthorized)
			answered(http.StatusUnauthorized)
			return
		}
		if r.ContentLength > maxBody {
			http.Error(w, fmt.Sprintf("the body is %d bytes; function %s takes at most %d", r.ContentLength, name, maxBody), http.StatusRequestEntityTooLarge)
			answered(http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			if rec := recover(); rec != nil {
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				a.log.Error("HTTP function panicked", "function", name, "panic", rec)
				if !sw.wrote {
					http.Error(w, "the function failed", http.StatusInternalServerError)
				}
				sw.status = http.StatusInternalServerError
			}
			duration.Observe(time.Since(start).Seconds())
			answered(cmp.Or(sw.status, http.StatusOK))
		}()
		h.ServeHTTP(sw, r)
	})
}

// keysEnforced reports whether HTTP functions that ask for a key get one:
// when function or admin keys are configured, and whenever the API needs
// keys (API keys exist, or the server listens beyond loopback).
func (a *App) keysEnforced() bool {
	return len(a.cfg.FunctionKeys) > 0 || a.cfg.AdminKey != "" || a.guard.Required()
}

// keyAllows reports whether the request carries a key for level: a
// function key (function level), the admin key, or an API key with the
// admin scope (any level), as in the x-functions-key header, ?code= or
// the API's own headers.
func (a *App) keyAllows(r *http.Request, level string) bool {
	key := cmp.Or(r.Header.Get("x-functions-key"), r.URL.Query().Get("code"))
	if key == "" {
		if k, _, err := auth.Credential(r.Header); err == nil {
			key = k
		}
	}
	if key == "" {
		return false
	}
	eq := func(k string) bool { return k != "" && subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 }
	if level == AuthFunction && slices.ContainsFunc(a.cfg.FunctionKeys, eq) {
		return true
	}
	return a.guard.IsAdmin(key) // the admin key (SLUICE_ADMIN_KEY) or an admin API key
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var errNoHTTPServer = errors.New("sluice: HTTP functions need an HTTP server: set Config.HTTPAddr (--http)")
