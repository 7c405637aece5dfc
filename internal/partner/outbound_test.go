package partner

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func secret(s string) string { return "whsec_" + base64.StdEncoding.EncodeToString([]byte(s)) }

// Each auth kind reaches the endpoint as it should: a bearer token; an
// OAuth2 access token fetched once with the client credentials and reused;
// signatures by every secret during a rotation, each verifying alone.
func TestPosterAuth(t *testing.T) {
	var tokenFetches atomic.Int64
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenFetches.Add(1)
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" {
			http.Error(w, "bad grant", http.StatusBadRequest)
			return
		}
		id, pw, ok := r.BasicAuth()
		if !ok {
			id, pw = r.Form.Get("client_id"), r.Form.Get("client_secret")
		}
		if id != "sluice" || pw != "client-secret" {
			http.Error(w, "bad client", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "access-1", "token_type": "Bearer", "expires_in": 3600})
	}))
	defer tokens.Close()
	var seen []http.Header
	var bodies [][]byte
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = append(seen, r.Header.Clone())
		bodies = append(bodies, b)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer endpoint.Close()
	p := &Poster{}
	m := Message{Partner: "acme", Type: "order", ID: "m-1", Body: []byte(`{"n":1}`), ContentType: "application/json"}
	oldS, newS := secret("the old secret of the partner!!!"), secret("the new secret of the partner!!!")
	cases := []struct {
		name  string
		auth  EndpointAuth
		check func(h http.Header, body []byte)
	}{
		{"bearer", EndpointAuth{Kind: AuthBearer, Token: "tok"}, func(h http.Header, _ []byte) {
			if h.Get("Authorization") != "Bearer tok" {
				t.Errorf("bearer: Authorization = %q", h.Get("Authorization"))
			}
		}},
		{"oauth2", EndpointAuth{Kind: AuthOAuth2, TokenURL: tokens.URL, ClientID: "sluice", ClientSecret: "client-secret", Scopes: []string{"orders"}},
			func(h http.Header, _ []byte) {
				if h.Get("Authorization") != "Bearer access-1" {
					t.Errorf("oauth2: Authorization = %q", h.Get("Authorization"))
				}
			}},
		{"hmac rotation", EndpointAuth{Kind: AuthHMAC, Secrets: []string{newS, oldS}}, func(h http.Header, body []byte) {
			if n := len(strings.Fields(h.Get("webhook-signature"))); n != 2 {
				t.Errorf("hmac: %d signatures during a rotation, want 2", n)
			}
			for _, s := range []string{newS, oldS} {
				if err := Verify(s, h, body, time.Now(), time.Minute); err != nil {
					t.Errorf("hmac: a receiver with one of the secrets refuses it: %v", err)
				}
			}
			if err := Verify(secret("a secret the partner never had!!"), h, body, time.Now(), time.Minute); err == nil {
				t.Error("hmac: a wrong secret verifies")
			}
			if err := Verify(oldS, h, append(body, ' '), time.Now(), time.Minute); err == nil {
				t.Error("hmac: a changed body verifies")
			}
			if err := Verify(oldS, h, body, time.Now().Add(10*time.Minute), 5*time.Minute); err == nil {
				t.Error("hmac: a replay outside the tolerance verifies")
			}
		}},
	}
	for _, c := range cases {
		ep := Endpoint{Name: "main", URL: endpoint.URL, Auth: c.auth}
		if err := ep.check(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for range 2 {
			if out, att := p.Post(context.Background(), ep, m); out != Delivered {
				t.Fatalf("%s: %v %+v", c.name, out, att)
			}
		}
		h, body := seen[len(seen)-1], bodies[len(bodies)-1]
		if h.Get("Idempotency-Key") != "acme/main/order/m-1" || h.Get("Content-Type") != "application/json" {
			t.Errorf("%s: headers %v", c.name, h)
		}
		c.check(h, body)
	}
	if n := tokenFetches.Load(); n != 1 {
		t.Errorf("the OAuth2 token was fetched %d times for 2 deliveries, want once", n)
	}
}

// Answers are classified: 2xx delivered; no answer, 408, 429 and 5xx
// retried; other 4xx refused.
func TestPosterOutcomes(t *testing.T) {
	var status atomic.Int64
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status.Load() == 0 {
			<-r.Context().Done() // never answers: the timeout ends it
			return
		}
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte(strings.Repeat("x", 2000)))
	}))
	defer endpoint.Close()
	p := &Poster{}
	ep := Endpoint{Name: "main", URL: endpoint.URL, Timeout: "200ms"}
	m := Message{Partner: "acme", ID: "m"}
	for _, c := range []struct {
		status int
		want   Outcome
	}{{200, Delivered}, {204, Delivered}, {408, Retry}, {429, Retry}, {500, Retry}, {503, Retry}, {400, Refused}, {401, Refused}, {422, Refused}, {0, Retry}} {
		status.Store(int64(c.status))
		out, att := p.Post(context.Background(), ep, m)
		if out != c.want {
			t.Errorf("status %d: %v, want %v (%+v)", c.status, out, c.want, att)
		}
		if len(att.Response) > maxResponse {
			t.Errorf("status %d: kept %d bytes of the answer", c.status, len(att.Response))
		}
		if c.status == 0 && !strings.Contains(att.Error, "timeout") {
			t.Errorf("no answer: error %q", att.Error)
		}
	}
}

// The rate limit spaces an endpoint's POSTs: at 5/s, after a burst of 5
// the next waits 200ms (checked on the limiter's clock, not the wall's).
func TestPosterRateLimit(t *testing.T) {
	p := &Poster{}
	ep := Endpoint{Name: "main", URL: "http://127.0.0.1:9/hooks", RatePerSecond: 5}
	st := p.state("acme", ep)
	if st.limiter == nil || st.limiter.Limit() != 5 || st.limiter.Burst() != 5 {
		t.Fatalf("limiter %+v", st.limiter)
	}
	// The limiter's own accounting, without waiting on the wall clock:
	// after a burst of 5 at one instant, the 6th must wait 200ms.
	now := time.Now()
	for i := range 5 {
		if !st.limiter.AllowN(now, 1) {
			t.Fatalf("POST %d of the burst refused", i+1)
		}
	}
	if st.limiter.AllowN(now, 1) {
		t.Error("a 6th POST in the same instant allowed at 5/s")
	}
	if r := st.limiter.ReserveN(now, 1); r.DelayFrom(now) < 190*time.Millisecond {
		t.Errorf("the 6th POST waits %s, want about 200ms", r.DelayFrom(now))
	}
	// The same configuration (read again from the registry) keeps it.
	if p.state("acme", Endpoint{Name: "main", URL: ep.URL, RatePerSecond: 5}) != st {
		t.Error("an unchanged endpoint got a new state")
	}
	// A changed endpoint gets a new state.
	ep.RatePerSecond = 10
	if p.state("acme", ep) == st {
		t.Error("the state survived a change of the endpoint")
	}
}
