package sluice

import (
	"cmp"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/host"
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
// are read with r.PathValue("id").
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
	a.hfns = append(a.hfns, httpFunction{name: name, trigger: trigger, handler: handler})
}

// reservedPaths are served by Sluice itself ("/ui": the dashboard's files).
var reservedPaths = []string{"/api/v1", "/healthz", "/readyz", "/metrics", "/ui"}

// httpRoutes adds the HTTP functions to mux.
func (a *App) httpRoutes(mux *http.ServeMux) error {
	prefix := cmp.Or(a.cfg.HTTPRoutePrefix, "api")
	if prefix == "/" {
		prefix = ""
	}
	keyed := len(a.cfg.FunctionKeys) > 0 || a.cfg.AdminKey != "" || a.guard.Required()
	var open []string
	for _, f := range a.hfns {
		level := cmp.Or(strings.ToLower(f.trigger.AuthLevel), AuthFunction)
		switch {
		case f.handler == nil:
			return fmt.Errorf("sluice: HTTP function %s has no handler", f.name)
		case !slices.Contains([]string{AuthAnonymous, AuthFunction, AuthAdmin}, level):
			return fmt.Errorf("sluice: HTTP function %s: authLevel %q: use anonymous, function or admin", f.name, f.trigger.AuthLevel)
		}
		route, err := host.ParseRoute(prefix, cmp.Or(f.trigger.Route, f.name))
		if err != nil {
			return fmt.Errorf("sluice: HTTP function %s: %w", f.name, err)
		}
		for _, p := range route.Patterns {
			for _, r := range reservedPaths {
				if p == r || strings.HasPrefix(p, r+"/") {
					return fmt.Errorf("sluice: HTTP function %s: route %s would be served at %s, which Sluice serves itself; change the route or the route prefix", f.name, route.Template, p)
				}
			}
		}
		if level != AuthAnonymous && !keyed {
			open = append(open, f.name)
		}
		h := a.httpInvoker(f.name, level, route, f.handler)
		methods := f.trigger.Methods
		if len(methods) == 0 {
			methods = []string{""}
		}
		for _, p := range route.Patterns {
			for _, m := range methods {
				pattern := strings.TrimSpace(strings.ToUpper(m) + " " + p)
				if err := handle(mux, pattern, h); err != nil {
					return fmt.Errorf("sluice: HTTP function %s: %w", f.name, err)
				}
			}
		}
	}
	if len(open) > 0 {
		a.log.Warn("no function or admin keys are set, so HTTP functions that ask for a key are open to anyone who reaches the server; set FunctionKeys/AdminKey (SLUICE_FUNCTION_KEYS, SLUICE_ADMIN_KEY)",
			"functions", open)
	}
	return nil
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

// httpInvoker checks the key and the route's constraints, bounds the body,
// counts the invocation and runs the handler.
func (a *App) httpInvoker(name, level string, route host.Route, h http.Handler) http.Handler {
	maxBody := cmp.Or(a.cfg.MaxHTTPBodyBytes, 100<<20)
	duration := a.metrics.BatchDuration.WithLabelValues(name)
	failures := a.metrics.Failures.WithLabelValues(name)
	invocations := a.metrics.EventsProcessed.WithLabelValues(name, "", "")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !route.Match(r) {
			http.NotFound(w, r)
			return
		}
		if level != AuthAnonymous && a.keysEnforced() && !a.keyAllows(r, level) {
			w.Header().Set("WWW-Authenticate", `Key realm="sluice"`)
			http.Error(w, fmt.Sprintf("function %s needs %s key: pass it as ?code=<key> or in the x-functions-key header", name, map[string]string{AuthFunction: "a function", AuthAdmin: "an admin"}[level]), http.StatusUnauthorized)
			return
		}
		if r.ContentLength > maxBody {
			http.Error(w, fmt.Sprintf("the body is %d bytes; function %s takes at most %d", r.ContentLength, name, maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			duration.Observe(time.Since(start).Seconds())
			invocations.Inc()
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
			if sw.status >= 500 {
				failures.Inc()
			}
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
