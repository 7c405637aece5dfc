// Package auth decides who may do what through Sluice's HTTP API.
//
// Two layers protect every route Sluice serves itself (the API under
// /api/v1, /metrics and the dashboard; HTTP functions keep their own
// Azure-style auth levels):
//
//   - [Guard.Protect] refuses what no legitimate client sends: a Host that
//     is not one of the server's names (DNS rebinding), a request from a
//     page of another origin (Origin, Sec-Fetch-Site), and paths that are
//     not canonical (the server never redirects an API call elsewhere).
//   - [Guard.Authorize] checks, per route, the permission ([Need]) the route
//     needs. Once API keys exist ([Keys], shared by all instances through a
//     KV bucket), every route but the health checks needs a key whose
//     [Scope]s grant it. Without keys (a laptop, loopback only), a POST
//     must still be one that a browser cannot send from another site
//     without asking first: a JSON (or other non-form) body, or a key
//     header.
//
// A key is a random token shown once ("sluice_<id>_<secret>"); only its
// SHA-256 is stored, and it is compared in constant time.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// GuardConfig configures a Guard.
type GuardConfig struct {
	// Keys are the API keys; nil: none can exist.
	Keys *Keys
	// AdminKey, when set, is a key that grants admin (SLUICE_ADMIN_KEY,
	// which HTTP functions also take). Any string; compared in constant
	// time.
	AdminKey string
	// RequireKeys makes every route need a key even while no key exists:
	// set when the server listens beyond loopback, so that revoking the
	// last key never opens it.
	RequireKeys bool
	// PublicHosts are the names clients use to reach the server besides
	// IP addresses and localhost ("sluice.example.com", "*.example.com").
	PublicHosts []string
	Logger      *slog.Logger
}

// Guard protects Sluice's own routes. See the package comment.
type Guard struct {
	cfg       GuardConfig
	adminHash [sha256.Size]byte
	hosts     []string // lowercase; "*.x" matches subdomains of x
	log       *slog.Logger
}

// NewGuard checks the configuration and returns a Guard.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	g := &Guard{cfg: cfg, log: cfg.Logger}
	if g.log == nil {
		g.log = slog.Default()
	}
	if cfg.AdminKey != "" {
		g.adminHash = sha256.Sum256([]byte(cfg.AdminKey))
	}
	for _, h := range cfg.PublicHosts {
		name := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		if err := validHostPattern(name); err != nil {
			return nil, fmt.Errorf("public host %q: %w", h, err)
		}
		g.hosts = append(g.hosts, name)
	}
	return g, nil
}

func validHostPattern(name string) error {
	rest := strings.TrimPrefix(name, "*.")
	if rest == "" || strings.Contains(rest, "*") {
		return fmt.Errorf("give a host name such as sluice.example.com or *.example.com, without port or scheme")
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("give a host name such as sluice.example.com or *.example.com, without port or scheme")
		}
	}
	return nil
}

// Required reports whether requests need a key now.
func (g *Guard) Required() bool {
	return g.cfg.RequireKeys || g.cfg.AdminKey != "" || (g.cfg.Keys != nil && g.cfg.Keys.Any())
}

// Keys returns the key store, or nil.
func (g *Guard) Keys() *Keys { return g.cfg.Keys }

// Authorize decides whether r may do need. It returns nil or an *Error.
func (g *Guard) Authorize(r *http.Request, need Need) error {
	if need.Public() {
		return nil
	}
	token, present, err := Credential(r.Header)
	if !g.Required() {
		// No key exists: a credential header, even one that is not ours
		// (a proxy's), only shows that the request is not a simple one a
		// page of any origin could send.
		if !present && r.Method == http.MethodPost && simpleBody(r.Header) {
			return errorf(http.StatusUnsupportedMediaType,
				"a POST whose Content-Type is %q could come from any web page, so it is refused: send the body as application/json (curl -H 'Content-Type: application/json'), or send an API key",
				contentTypeOrNone(r.Header))
		}
		return nil
	}
	if err != nil {
		return unauthorized(err.Error())
	}
	if !present {
		return unauthorized("this server requires an API key: send it as 'Authorization: Bearer <key>' or in the X-Sluice-Key header (the CLI takes SLUICE_KEY or --api-key); an admin creates keys with sluice key create")
	}
	p, err := g.Verify(token)
	if err != nil {
		return unauthorized(err.Error())
	}
	if !p.Allows(need) {
		scope := need.String()
		if need.Verb != VerbAdmin {
			scope += " (or admin)"
		}
		return errorf(http.StatusForbidden, "%s may not do this: it needs the scope %s, and the key has %s",
			p, scope, scopeList(p.Scopes))
	}
	return nil
}

// Verify checks a key: the admin key, or one of Keys.
func (g *Guard) Verify(token string) (*Principal, error) {
	if g.cfg.AdminKey != "" {
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], g.adminHash[:]) == 1 {
			return &Principal{Name: "the admin key (SLUICE_ADMIN_KEY)", Scopes: []Scope{{Verb: VerbAdmin}}}, nil
		}
	}
	if g.cfg.Keys == nil {
		return nil, ErrInvalidKey
	}
	return g.cfg.Keys.Verify(token)
}

// IsAdmin reports whether token is a key that grants admin: HTTP functions
// take such keys as their admin (master) key.
func (g *Guard) IsAdmin(token string) bool {
	p, err := g.Verify(token)
	return err == nil && p.Allows(Need{Verb: VerbAdmin})
}

func unauthorized(msg string) *Error {
	e := errorf(http.StatusUnauthorized, "%s", msg)
	e.Header = http.Header{"Www-Authenticate": {`Bearer realm="sluice"`}}
	return e
}

func scopeList(scopes []Scope) string {
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = s.String()
	}
	return strings.Join(names, ", ")
}

// simpleBody reports whether a request's Content-Type is one a page of any
// origin may send without the browser asking the server first.
func simpleBody(h http.Header) bool {
	ct := h.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return true // unparsable: treat as the browser would not
	}
	switch mt {
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return true
	}
	return false
}

func contentTypeOrNone(h http.Header) string {
	if ct := h.Get("Content-Type"); ct != "" {
		return ct
	}
	return "(none)"
}

// Protect wraps Sluice's own handlers. It refuses a Host that is not one
// of the server's names, a path that is not canonical, and a request made
// by a page of another origin: always for the API (api), and for unsafe
// methods elsewhere (the dashboard's page may be opened from a link).
func (g *Guard) Protect(next http.Handler, api bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.check(r, api); err != nil {
			w.Header().Set("X-Content-Type-Options", "nosniff")
			writeError(w, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (g *Guard) check(r *http.Request, api bool) *Error {
	// The escaped path: a segment written %2E%2E is a name, not a step.
	if p := r.URL.EscapedPath(); !canonicalPath(p) {
		return errorf(http.StatusBadRequest, "the path %q is not canonical (it has an empty, '.' or '..' segment); Sluice does not redirect API calls: send the path you mean (percent-encode a name that is . or ..)", p)
	}
	if !g.HostAllowed(r.Host) {
		return errorf(http.StatusMisdirectedRequest,
			"the Host %q is not a name of this server, so the request is refused (this protects against DNS rebinding); if clients reach the server by that name, start it with --public-host %s",
			r.Host, hostOnly(r.Host))
	}
	if (api || !safeMethod(r.Method)) && crossSite(r) {
		return errorf(http.StatusForbidden, "a request from a page of another origin (%s) is refused: the API serves the dashboard of this server and clients that are not browsers",
			originOf(r))
	}
	return nil
}

func writeError(w http.ResponseWriter, e *Error) {
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	fmt.Fprintf(w, "{\n  \"error\": %q\n}\n", e.Msg)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// canonicalPath reports whether p has no empty, "." or ".." segment (but
// for a trailing slash).
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return p == "" || p == "*"
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if s == "." || s == ".." || (s == "" && i != len(segs)-1) {
			return false
		}
	}
	return true
}

// HostAllowed reports whether a request's Host names this server: an IP
// address (a page whose origin is an IP address is this server's own),
// localhost, or one of the public hosts. A rebinding attack needs a name
// of the attacker's, which is none of these.
func (g *Guard) HostAllowed(hostport string) bool {
	if hostport == "" {
		return true // HTTP/1.0 without Host: not a browser
	}
	host := strings.TrimSuffix(strings.ToLower(hostOnly(hostport)), ".")
	if net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, h := range g.hosts {
		if h == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(h, "*"); ok && strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
			return true
		}
	}
	return false
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// crossSite reports whether a browser says the request comes from a page
// of another origin. Clients that are not browsers send neither header.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host)
}

func originOf(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		return "Origin " + o
	}
	return "Sec-Fetch-Site " + r.Header.Get("Sec-Fetch-Site")
}
