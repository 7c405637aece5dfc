package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseScope(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "admin", want: "admin"},
		{in: "read", want: "read"},
		{in: "deadletters", want: "deadletters"},
		{in: "breakers", want: "breakers"},
		{in: "publish:telemetry", want: "publish:telemetry"},
		{in: "publish", want: "publish:*"},
		{in: "send:orders-*", want: "send:orders-*"},
		{in: "docs:*", want: "docs:*"},
		{in: " receive:q ", want: "receive:q"},
		{in: "replay:h.1_x", want: "replay:h.1_x"},
		{in: "blobs:staging", want: "blobs:staging"},
		{in: "read:x", err: "read takes no resource"},
		{in: "write", err: "unknown"},
		{in: "", err: "unknown"},
		{in: "publish:", err: "resource is empty"},
		{in: "publish:a*b", err: "'*' only at the end"},
		{in: "publish:a b", err: "use letters"},
		{in: "publish:" + strings.Repeat("a", 300), err: "longer than 256"},
	} {
		s, err := ParseScope(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, s.String())
	}
}

func TestScopeAllows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		scope string
		need  Need
		want  bool
	}{
		{"admin", Need{Verb: VerbPublish, Resource: "x"}, true},
		{"admin", Need{Verb: VerbBreakers}, true},
		{"read", Need{Verb: VerbRead}, true},
		{"read", Need{Verb: VerbPublish, Resource: "x"}, false},
		{"read", Need{Verb: VerbAdmin}, false},
		{"read", Need{}, true},
		{"publish:telemetry", Need{Verb: VerbPublish, Resource: "telemetry"}, true},
		{"publish:telemetry", Need{Verb: VerbPublish, Resource: "telemetry2"}, false},
		{"publish:telemetry", Need{Verb: VerbSend, Resource: "telemetry"}, false},
		{"publish:tele*", Need{Verb: VerbPublish, Resource: "telemetry"}, true},
		{"publish:tele*", Need{Verb: VerbPublish, Resource: "tel"}, false},
		{"publish:*", Need{Verb: VerbPublish, Resource: "anything"}, true},
		{"publish", Need{Verb: VerbPublish, Resource: "anything"}, true},
		{"publish:*", Need{Verb: VerbRead}, false},
		{"deadletters", Need{Verb: VerbDeadLetters}, true},
		{"deadletters", Need{Verb: VerbBreakers}, false},
		{"docs:devices", Need{Verb: VerbDocs, Resource: "devices"}, true},
		{"docs:devices", Need{Verb: VerbAdmin}, false},
	} {
		s, err := ParseScope(tc.scope)
		require.NoError(t, err)
		require.Equal(t, tc.want, s.Allows(tc.need), "%s allows %s", tc.scope, tc.need)
	}
}

func TestTokenFormat(t *testing.T) {
	t.Parallel()
	tok := NewToken()
	id, secret, err := ParseToken(tok)
	require.NoError(t, err)
	require.Len(t, id, idLen)
	require.Len(t, secret, secretLen)
	require.Equal(t, tok, FormatToken(id, secret))
	require.NotEqual(t, tok, NewToken())
	for _, bad := range []string{"", "sluice_", tok[:len(tok)-1], tok + "0", strings.ToUpper(tok),
		"sluice_" + id + "-" + secret, "other_" + id + "_" + secret, strings.Replace(tok, secret[:1], "g", 1)} {
		_, _, err := ParseToken(bad)
		require.Error(t, err, bad)
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newBucket(t *testing.T, eng *engine.Engine) jetstream.KeyValue {
	t.Helper()
	name := enginetest.Name("keys")
	kv, err := eng.JS.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: name, History: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.JS.DeleteKeyValue(context.Background(), name) })
	return kv
}

func openKeys(t *testing.T, kv jetstream.KeyValue, clock *fakeClock) *Keys {
	t.Helper()
	k, err := OpenKeys(context.Background(), kv, KeysOptions{Now: clock.Now, LastUsedEvery: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, k.Stop(context.Background())) })
	return k
}

func TestKeysCreateVerifyRevoke(t *testing.T) {
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		clock := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
		kv := newBucket(t, eng)
		a := openKeys(t, kv, clock)
		require.False(t, a.Any())

		key, token, err := a.Create(ctx, CreateOptions{Name: "ci", Scopes: []string{"publish:telemetry", "read", "read"}, CreatedBy: "test"})
		require.NoError(t, err)
		require.True(t, a.Any())
		require.Equal(t, []string{"publish:telemetry", "read"}, key.Scopes)
		require.NotContains(t, key.Hash, token)

		// The record holds the hash, never the secret.
		kve, err := kv.Get(ctx, "key."+key.ID)
		require.NoError(t, err)
		_, secret, _ := ParseToken(token)
		require.NotContains(t, string(kve.Value()), secret)

		p, err := a.Verify(token)
		require.NoError(t, err)
		require.Equal(t, "ci", p.Name)
		require.True(t, p.Allows(Need{Verb: VerbPublish, Resource: "telemetry"}))
		require.False(t, p.Allows(Need{Verb: VerbPublish, Resource: "other"}))

		// A second instance, started later, honours the key; a wrong
		// secret with the right id is refused.
		b := openKeys(t, kv, clock)
		_, err = b.Verify(token)
		require.NoError(t, err)
		id, _, _ := ParseToken(token)
		_, err = b.Verify(FormatToken(id, strings.Repeat("0", secretLen)))
		require.ErrorIs(t, err, ErrInvalidKey)
		_, err = b.Verify("garbage")
		require.ErrorIs(t, err, ErrInvalidKey)

		// Revoked on b: refused on b at once, and on a once the watch
		// delivers the deletion.
		_, err = b.Revoke(ctx, "ci")
		require.NoError(t, err)
		_, err = b.Verify(token)
		require.ErrorIs(t, err, ErrInvalidKey)
		require.Eventually(t, func() bool { _, err := a.Verify(token); return err != nil }, 30*time.Second, 5*time.Millisecond)
		require.False(t, a.Any())

		_, err = b.Revoke(ctx, "ci")
		require.ErrorIs(t, err, ErrKeyNotFound)
	})
}

func TestKeysExpiryAndLastUse(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	kv := newBucket(t, eng)
	k := openKeys(t, kv, clock)
	key, token, err := k.Create(ctx, CreateOptions{Name: "temp", Scopes: []string{"read"}, TTL: time.Hour})
	require.NoError(t, err)
	require.Equal(t, clock.Now().Add(time.Hour), key.Expires)

	_, err = k.Verify(token)
	require.NoError(t, err)
	k.FlushLastUsed(ctx)
	stored := func() Key {
		for _, l := range k.List() {
			if l.ID == key.ID {
				return l
			}
		}
		t.Fatal("key gone")
		return Key{}
	}
	require.Equal(t, clock.Now(), stored().LastUsed)

	// Uses within a minute are not written again.
	rev := func() uint64 {
		kve, err := kv.Get(ctx, "key."+key.ID)
		require.NoError(t, err)
		return kve.Revision()
	}
	before := rev()
	clock.Advance(30 * time.Second)
	_, err = k.Verify(token)
	require.NoError(t, err)
	k.FlushLastUsed(ctx)
	require.Equal(t, before, rev())
	clock.Advance(31 * time.Second)
	_, err = k.Verify(token)
	require.NoError(t, err)
	k.FlushLastUsed(ctx)
	require.Greater(t, rev(), before)

	clock.Advance(time.Hour)
	_, err = k.Verify(token)
	require.ErrorIs(t, err, ErrInvalidKey)
	require.ErrorContains(t, err, "expired")

	// A use pending when the key is revoked does not bring it back.
	_, token2, err := k.Create(ctx, CreateOptions{Name: "other", Scopes: []string{"read"}})
	require.NoError(t, err)
	_, err = k.Verify(token2)
	require.NoError(t, err)
	id2, _, _ := ParseToken(token2)
	require.NoError(t, kv.Delete(ctx, "key."+id2)) // revoked elsewhere
	k.FlushLastUsed(ctx)
	_, err = kv.Get(ctx, "key."+id2)
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound)
}

func TestKeysBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	kv := newBucket(t, eng)
	k := openKeys(t, kv, &fakeClock{t: time.Now()})
	for _, o := range []CreateOptions{
		{Name: "", Scopes: []string{"read"}},
		{Name: "a b", Scopes: []string{"read"}},
		{Name: "ok"},
		{Name: "ok", Scopes: []string{"write"}},
		{Name: "ok", Scopes: []string{"read"}, TTL: -time.Second},
	} {
		_, _, err := k.Create(ctx, o)
		require.Error(t, err, "%+v", o)
	}
	keys, err := kv.ListKeys(ctx)
	require.NoError(t, err)
	n := 0
	for range keys.Keys() {
		n++
	}
	require.Zero(t, n)
	require.False(t, k.Any())
}

func TestKeysImport(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	k := openKeys(t, newBucket(t, eng), &fakeClock{t: time.Now()})
	tok := NewToken()
	o := CreateOptions{Name: "bootstrap", Scopes: []string{"admin"}}
	first, err := k.Import(ctx, tok, o)
	require.NoError(t, err)
	again, err := k.Import(ctx, tok, o)
	require.NoError(t, err)
	require.Equal(t, first.ID, again.ID)
	require.Len(t, k.List(), 1)
	id, _, _ := ParseToken(tok)
	_, err = k.Import(ctx, FormatToken(id, strings.Repeat("1", secretLen)), o)
	require.ErrorContains(t, err, "different key")
	_, err = k.Import(ctx, "not-a-key", o)
	require.Error(t, err)
	p, err := k.Verify(tok)
	require.NoError(t, err)
	require.True(t, p.Allows(Need{Verb: VerbAdmin}))
}

// Instances started together with one key file import it at the same
// moment: every import succeeds with the one stored key.
func TestKeysImportedTogether(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	kv := newBucket(t, eng)
	tok := NewToken()
	o := CreateOptions{Name: "bootstrap", Scopes: []string{"admin"}}
	const n = 8
	var keys [n]*Keys
	for i := range keys {
		keys[i] = openKeys(t, kv, &fakeClock{t: time.Now()})
	}
	var wg sync.WaitGroup
	got, errs := make([]Key, n), make([]error, n)
	for i := range keys {
		wg.Go(func() { got[i], errs[i] = keys[i].Import(ctx, tok, o) })
	}
	wg.Wait()
	for i := range keys {
		require.NoError(t, errs[i], "instance %d", i)
		require.Equal(t, got[0].ID, got[i].ID)
		require.Equal(t, got[0].Created, got[i].Created, "the one stored key")
	}
}

func TestCredential(t *testing.T) {
	t.Parallel()
	tok := NewToken()
	for _, tc := range []struct {
		name    string
		h       http.Header
		key     string
		present bool
		err     string
	}{
		{name: "none", h: http.Header{}},
		{name: "bearer", h: http.Header{"Authorization": {"Bearer " + tok}}, key: tok, present: true},
		{name: "bearer lowercase", h: http.Header{"Authorization": {"bearer  " + tok + " "}}, key: tok, present: true},
		{name: "header", h: http.Header{"X-Sluice-Key": {tok}}, key: tok, present: true},
		{name: "basic", h: http.Header{"Authorization": {"Basic abc"}}, present: true, err: "Bearer"},
		{name: "two", h: http.Header{"Authorization": {"Bearer " + tok}, "X-Sluice-Key": {tok}}, present: true, err: "more than one"},
		{name: "empty", h: http.Header{"X-Sluice-Key": {""}}, present: true, err: "empty"},
		{name: "empty bearer", h: http.Header{"Authorization": {"Bearer "}}, present: true, err: "Bearer"},
		{name: "long", h: http.Header{"X-Sluice-Key": {strings.Repeat("a", 2000)}}, present: true, err: "too long"},
		{name: "control", h: http.Header{"X-Sluice-Key": {"a\x01b"}}, present: true, err: "control"},
	} {
		key, present, err := Credential(tc.h)
		require.Equal(t, tc.present, present, tc.name)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.name)
			require.NotContains(t, err.Error(), tok)
			continue
		}
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.key, key, tc.name)
	}
}

func FuzzCredential(f *testing.F) {
	f.Add("Bearer sluice_0123456789ab_"+strings.Repeat("c", 64), "")
	f.Add("", "sluice_x")
	f.Add("bearer\t x", "y")
	f.Add("Basic Zm9vOmJhcg==", "")
	f.Fuzz(func(t *testing.T, authz, key string) {
		h := http.Header{}
		if authz != "" {
			h.Set("Authorization", authz)
		}
		if key != "" {
			h.Set(HeaderKey, key)
		}
		got, present, err := Credential(h)
		if present != (authz != "" || key != "") {
			t.Fatalf("present = %v for %q %q", present, authz, key)
		}
		if err != nil {
			if got != "" {
				t.Fatalf("a key %q with an error", got)
			}
			return
		}
		if present && (got == "" || strings.ContainsAny(got, " \t\r\n") || len(got) > maxCredential) {
			t.Fatalf("accepted a bad key %q", got)
		}
		// A parsed key goes through token parsing without panicking.
		_, _, _ = ParseToken(got)
	})
}

func TestGuardProtect(t *testing.T) {
	t.Parallel()
	g, err := NewGuard(GuardConfig{PublicHosts: []string{"sluice.example.com", "*.corp.example"}})
	require.NoError(t, err)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	api, page := g.Protect(ok, true), g.Protect(ok, false)
	for _, tc := range []struct {
		name, method, target, host string
		header                     http.Header
		h                          http.Handler
		want                       int
	}{
		{"loopback ip", "GET", "/api/v1/hubs", "127.0.0.1:7070", nil, api, http.StatusTeapot},
		{"ipv6", "GET", "/api/v1/hubs", "[::1]:7070", nil, api, http.StatusTeapot},
		{"localhost", "GET", "/api/v1/hubs", "localhost:7070", nil, api, http.StatusTeapot},
		{"sub.localhost", "GET", "/api/v1/hubs", "a.localhost", nil, api, http.StatusTeapot},
		{"public", "GET", "/api/v1/hubs", "Sluice.Example.com.", nil, api, http.StatusTeapot},
		{"wildcard", "GET", "/api/v1/hubs", "a.corp.example:443", nil, api, http.StatusTeapot},
		{"wildcard base", "GET", "/api/v1/hubs", "corp.example", nil, api, http.StatusMisdirectedRequest},
		{"rebinding", "DELETE", "/api/v1/hubs/x", "rebind.attacker.example", nil, api, http.StatusMisdirectedRequest},
		{"rebinding page", "GET", "/", "rebind.attacker.example:7070", nil, page, http.StatusMisdirectedRequest},
		{"same origin", "POST", "/api/v1/hubs", "127.0.0.1:7070", http.Header{"Origin": {"http://127.0.0.1:7070"}, "Sec-Fetch-Site": {"same-origin"}}, api, http.StatusTeapot},
		{"other port", "POST", "/api/v1/hubs", "127.0.0.1:7070", http.Header{"Origin": {"http://127.0.0.1:8080"}}, api, http.StatusForbidden},
		{"null origin", "POST", "/api/v1/hubs", "127.0.0.1:7070", http.Header{"Origin": {"null"}}, api, http.StatusForbidden},
		{"same-site", "GET", "/api/v1/hubs", "127.0.0.1:7070", http.Header{"Sec-Fetch-Site": {"same-site"}}, api, http.StatusForbidden},
		{"cross-site", "GET", "/api/v1/overview", "127.0.0.1:7070", http.Header{"Sec-Fetch-Site": {"cross-site"}}, api, http.StatusForbidden},
		{"typed url", "GET", "/api/v1/overview", "127.0.0.1:7070", http.Header{"Sec-Fetch-Site": {"none"}}, api, http.StatusTeapot},
		{"link to dashboard", "GET", "/", "127.0.0.1:7070", http.Header{"Sec-Fetch-Site": {"cross-site"}}, page, http.StatusTeapot},
		{"post to dashboard", "POST", "/", "127.0.0.1:7070", http.Header{"Sec-Fetch-Site": {"cross-site"}}, page, http.StatusForbidden},
		{"dot dot", "DELETE", "/api/v1/queues/../hubs/x", "127.0.0.1:7070", nil, api, http.StatusBadRequest},
		{"double slash", "DELETE", "/api/v1//hubs/x", "127.0.0.1:7070", nil, api, http.StatusBadRequest},
		{"dot", "GET", "/api/v1/./hubs", "127.0.0.1:7070", nil, api, http.StatusBadRequest},
		{"trailing slash", "GET", "/ui/", "127.0.0.1:7070", nil, page, http.StatusTeapot},
		{"escaped dots are names", "GET", "/api/v1/containers/d/docs/%2E/%2E%2E", "127.0.0.1:7070", nil, api, http.StatusTeapot},
	} {
		r := httptest.NewRequest(tc.method, "http://x"+tc.target, nil)
		r.Host = tc.host
		for k, v := range tc.header {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		tc.h.ServeHTTP(w, r)
		require.Equal(t, tc.want, w.Code, "%s: %s", tc.name, w.Body.String())
		if tc.want != http.StatusTeapot {
			require.Contains(t, w.Header().Get("Content-Type"), "application/json", tc.name)
			require.Contains(t, w.Body.String(), `"error"`, tc.name)
		}
	}
	_, err = NewGuard(GuardConfig{PublicHosts: []string{"https://x.example"}})
	require.ErrorContains(t, err, "without port or scheme")
}

func TestGuardAuthorize(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	clock := &fakeClock{t: time.Now()}
	keys := openKeys(t, newBucket(t, eng), clock)
	g, err := NewGuard(GuardConfig{Keys: keys})
	require.NoError(t, err)
	publish := Need{Verb: VerbPublish, Resource: "telemetry"}
	req := func(method, ctype string, h http.Header) *http.Request {
		r := httptest.NewRequest(method, "/api/v1/hubs/telemetry/events", strings.NewReader("{}"))
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		for k, v := range h {
			r.Header[k] = v
		}
		return r
	}
	status := func(err error) int {
		if err == nil {
			return http.StatusOK
		}
		return err.(*Error).Status
	}

	// No keys: everything but a POST a form could send.
	require.False(t, g.Required())
	require.Equal(t, http.StatusOK, status(g.Authorize(req("POST", "application/json", nil), publish)))
	require.Equal(t, http.StatusOK, status(g.Authorize(req("POST", "application/x-ndjson", nil), publish)))
	require.Equal(t, http.StatusOK, status(g.Authorize(req("DELETE", "", nil), publish)))
	require.Equal(t, http.StatusOK, status(g.Authorize(req("GET", "", nil), Need{Verb: VerbRead})))
	for _, ct := range []string{"", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "bad/;;"} {
		err := g.Authorize(req("POST", ct, nil), publish)
		require.Equal(t, http.StatusUnsupportedMediaType, status(err), ct)
		require.ErrorContains(t, err, "application/json")
	}
	require.Equal(t, http.StatusOK, status(g.Authorize(req("POST", "text/plain", http.Header{"X-Sluice-Key": {"anything"}}), publish)))
	require.Equal(t, http.StatusOK, status(g.Authorize(req("POST", "text/plain", http.Header{"Authorization": {"Basic a proxy's"}}), publish)))

	// With a key: every route needs one with the scope.
	_, pub, err := keys.Create(ctx, CreateOptions{Name: "pub", Scopes: []string{"publish:telemetry"}})
	require.NoError(t, err)
	_, admin, err := keys.Create(ctx, CreateOptions{Name: "root", Scopes: []string{"admin"}})
	require.NoError(t, err)
	require.True(t, g.Required())
	bearer := func(k string) http.Header { return http.Header{"Authorization": {"Bearer " + k}} }
	require.Equal(t, http.StatusOK, status(g.Authorize(req("POST", "application/json", bearer(pub)), publish)))
	require.Equal(t, http.StatusOK, status(g.Authorize(req("POST", "text/plain", bearer(pub)), publish)))
	require.Equal(t, http.StatusOK, status(g.Authorize(req("GET", "", nil), Need{})))
	err = g.Authorize(req("POST", "application/json", nil), publish)
	require.Equal(t, http.StatusUnauthorized, status(err))
	require.Equal(t, `Bearer realm="sluice"`, err.(*Error).Header.Get("WWW-Authenticate"))
	err = g.Authorize(req("GET", "", bearer(pub)), Need{Verb: VerbRead})
	require.Equal(t, http.StatusForbidden, status(err))
	require.ErrorContains(t, err, `key "pub"`)
	require.ErrorContains(t, err, "needs the scope read")
	require.Equal(t, http.StatusForbidden, status(g.Authorize(req("POST", "application/json", bearer(pub)), Need{Verb: VerbPublish, Resource: "other"})))
	require.Equal(t, http.StatusUnauthorized, status(g.Authorize(req("POST", "application/json", bearer(NewToken())), publish)))
	require.Equal(t, http.StatusUnauthorized, status(g.Authorize(req("POST", "application/json", http.Header{"Authorization": {"Basic x"}}), publish)))
	require.Equal(t, http.StatusOK, status(g.Authorize(req("DELETE", "", http.Header{"X-Sluice-Key": {admin}}), Need{Verb: VerbAdmin})))
	require.True(t, g.IsAdmin(admin))
	require.False(t, g.IsAdmin(pub))

	// The legacy admin key grants admin.
	g2, err := NewGuard(GuardConfig{AdminKey: "s3cret-admin"})
	require.NoError(t, err)
	require.True(t, g2.Required())
	require.Equal(t, http.StatusOK, status(g2.Authorize(req("DELETE", "", bearer("s3cret-admin")), Need{Verb: VerbAdmin})))
	require.Equal(t, http.StatusUnauthorized, status(g2.Authorize(req("DELETE", "", bearer("s3cret-admiN")), Need{Verb: VerbAdmin})))

	// RequireKeys holds even when no key exists.
	g3, err := NewGuard(GuardConfig{RequireKeys: true})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, status(g3.Authorize(req("GET", "", nil), Need{Verb: VerbRead})))
}

// BenchmarkAuthorize is the cost of checking a request's key and scope,
// beside the same request with no keys configured.
func BenchmarkAuthorize(b *testing.B) {
	eng := enginetest.Embedded(b)
	kv, err := eng.JS.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "bench-keys"})
	require.NoError(b, err)
	keys, err := OpenKeys(context.Background(), kv, KeysOptions{})
	require.NoError(b, err)
	defer keys.Stop(context.Background())
	open, err := NewGuard(GuardConfig{})
	require.NoError(b, err)
	need := Need{Verb: VerbPublish, Resource: "telemetry"}
	req := httptest.NewRequest("POST", "/api/v1/hubs/telemetry/events", nil)
	req.Header.Set("Content-Type", "application/json")
	b.Run("no-keys", func(b *testing.B) {
		for b.Loop() {
			if err := open.Authorize(req, need); err != nil {
				b.Fatal(err)
			}
		}
	})
	_, token, err := keys.Create(context.Background(), CreateOptions{Name: "bench", Scopes: []string{"read", "publish:tele*"}})
	require.NoError(b, err)
	g, err := NewGuard(GuardConfig{Keys: keys})
	require.NoError(b, err)
	req.Header.Set("Authorization", "Bearer "+token)
	b.Run("key", func(b *testing.B) {
		for b.Loop() {
			if err := g.Authorize(req, need); err != nil {
				b.Fatal(err)
			}
		}
	})
}
