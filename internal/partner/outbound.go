package partner

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"
)

// Endpoint is where a partner receives deliveries, and how.
type Endpoint struct {
	// Name tells a partner's endpoints apart ("default", "invoices").
	Name string `json:"name"`
	URL  string `json:"url"`
	// Types are the message types delivered here; empty: every type.
	Types []string     `json:"types,omitempty"`
	Auth  EndpointAuth `json:"auth"`
	// Timeout bounds one POST ("10s"); default 10s.
	Timeout string `json:"timeout,omitempty"`
	// RatePerSecond bounds the POSTs per second of each instance; 0: none.
	RatePerSecond float64 `json:"rate_per_second,omitempty"`
	// Ordered keeps the order of messages with the same partition key: a
	// message whose key has a parked delivery is parked behind it.
	Ordered bool `json:"ordered,omitempty"`
	// MaxAttempts is how often a parked delivery is tried before it is
	// given up (kept as dead, for an operator); default 50.
	MaxAttempts int `json:"max_attempts,omitempty"`
}

// Kinds of outbound authentication.
const (
	AuthNone   = ""
	AuthBearer = "bearer"
	AuthOAuth2 = "oauth2"
	AuthHMAC   = "hmac"
)

// EndpointAuth is how deliveries prove they come from us.
type EndpointAuth struct {
	Kind string `json:"kind,omitempty"`
	// Token is the static bearer token.
	Token string `json:"token,omitempty"`
	// OAuth2 client credentials: tokens are fetched, cached and refreshed.
	TokenURL     string   `json:"token_url,omitempty"`
	ClientID     string   `json:"client_id,omitempty"`
	ClientSecret string   `json:"client_secret,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	// Secrets sign each delivery as Standard Webhooks do (whsec_ and
	// base64); during a rotation, give the new and the old: each signs.
	Secrets []string `json:"secrets,omitempty"`
}

// DefaultDeliveryTimeout and DefaultMaxAttempts are an endpoint's defaults.
const (
	DefaultDeliveryTimeout = 10 * time.Second
	DefaultMaxAttempts     = 50
)

// redacted stands for a secret in what the API shows.
const redacted = "(set)"

// redact hides an endpoint's secrets.
func (e Endpoint) redact() Endpoint {
	a := &e.Auth
	if a.Token != "" {
		a.Token = redacted
	}
	if a.ClientSecret != "" {
		a.ClientSecret = redacted
	}
	if len(a.Secrets) > 0 {
		s := make([]string, len(a.Secrets))
		for i := range s {
			s[i] = redacted
		}
		a.Secrets = s
	}
	return e
}

// same reports whether e and o are the same configuration. It runs for
// every delivery, so it compares fields rather than formatting them.
func (e Endpoint) same(o Endpoint) bool {
	a, b := e.Auth, o.Auth
	return e.Name == o.Name && e.URL == o.URL && e.Timeout == o.Timeout && e.RatePerSecond == o.RatePerSecond &&
		e.Ordered == o.Ordered && e.MaxAttempts == o.MaxAttempts && slices.Equal(e.Types, o.Types) &&
		a.Kind == b.Kind && a.Token == b.Token && a.TokenURL == b.TokenURL && a.ClientID == b.ClientID &&
		a.ClientSecret == b.ClientSecret && slices.Equal(a.Scopes, b.Scopes) && slices.Equal(a.Secrets, b.Secrets)
}

// TimeoutOrDefault is the endpoint's POST timeout.
func (e Endpoint) TimeoutOrDefault() time.Duration {
	if d, err := time.ParseDuration(e.Timeout); err == nil && d > 0 {
		return d
	}
	return DefaultDeliveryTimeout
}

// MaxAttemptsOrDefault is the endpoint's attempt limit.
func (e Endpoint) MaxAttemptsOrDefault() int {
	if e.MaxAttempts > 0 {
		return e.MaxAttempts
	}
	return DefaultMaxAttempts
}

// Takes reports whether messages of type typ go to e.
func (e Endpoint) Takes(typ string) bool {
	if len(e.Types) == 0 {
		return true
	}
	for _, t := range e.Types {
		if t == typ {
			return true
		}
	}
	return false
}

// check validates an endpoint; every error names the field.
func (e Endpoint) check() error {
	if err := ValidateID("endpoint", e.Name); err != nil {
		return err
	}
	u, err := url.Parse(e.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w endpoint %s: url %q: give an http:// or https:// URL", ErrInvalid, e.Name, e.URL)
	}
	if u.User != nil {
		return fmt.Errorf("%w endpoint %s: put credentials in auth, not in the URL", ErrInvalid, e.Name)
	}
	if e.Timeout != "" {
		if d, err := time.ParseDuration(e.Timeout); err != nil || d <= 0 || d > 5*time.Minute {
			return fmt.Errorf("%w endpoint %s: timeout %q: give a duration up to 5m, such as 10s", ErrInvalid, e.Name, e.Timeout)
		}
	}
	if e.RatePerSecond < 0 || e.MaxAttempts < 0 {
		return fmt.Errorf("%w endpoint %s: rate_per_second and max_attempts cannot be negative", ErrInvalid, e.Name)
	}
	a := e.Auth
	switch a.Kind {
	case AuthNone:
	case AuthBearer:
		if a.Token == "" {
			return fmt.Errorf("%w endpoint %s: bearer auth needs a token", ErrInvalid, e.Name)
		}
	case AuthOAuth2:
		if tu, err := url.Parse(a.TokenURL); err != nil || (tu.Scheme != "http" && tu.Scheme != "https") || a.ClientID == "" || a.ClientSecret == "" {
			return fmt.Errorf("%w endpoint %s: oauth2 auth needs token_url (http or https), client_id and client_secret", ErrInvalid, e.Name)
		}
	case AuthHMAC:
		if len(a.Secrets) == 0 {
			return fmt.Errorf("%w endpoint %s: hmac auth needs at least one secret (whsec_…)", ErrInvalid, e.Name)
		}
		for i, s := range a.Secrets {
			if _, err := DecodeSecret(s); err != nil {
				return fmt.Errorf("%w endpoint %s: secret %d: %v", ErrInvalid, e.Name, i+1, err)
			}
		}
	default:
		return fmt.Errorf("%w endpoint %s: auth kind %q: use bearer, oauth2, hmac, or leave it out", ErrInvalid, e.Name, a.Kind)
	}
	return nil
}

// DecodeSecret reads a Standard Webhooks secret: "whsec_" and base64 of
// 24 to 64 random bytes.
func DecodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New(`a signing secret starts with "whsec_" (then base64 of 24 to 64 bytes)`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, errors.New("a signing secret is whsec_ and the base64 of 24 to 64 bytes")
	}
	return key, nil
}

// Sign returns the webhook-signature header value of a delivery: one
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" per secret, space
// separated (Standard Webhooks).
func Sign(secrets [][]byte, id string, ts time.Time, body []byte) string {
	return newSigner(secrets).sign(id, ts, body)
}

// signer signs with an endpoint's secrets, keeping a MAC per secret for
// reuse (making one hashes the key).
type signer struct {
	macs []sync.Pool
}

func newSigner(secrets [][]byte) *signer {
	s := &signer{macs: make([]sync.Pool, len(secrets))}
	for i, key := range secrets {
		s.macs[i].New = func() any { return hmac.New(sha256.New, key) }
	}
	return s
}

func (s *signer) sign(id string, ts time.Time, body []byte) string {
	var scratch [64]byte
	out := make([]byte, 0, len(s.macs)*48)
	for i := range s.macs {
		mac := s.macs[i].Get().(hash.Hash)
		mac.Reset()
		b := append(append(scratch[:0], id...), '.')
		b = append(strconv.AppendInt(b, ts.Unix(), 10), '.')
		mac.Write(b)
		mac.Write(body)
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, "v1,"...)
		out = base64.StdEncoding.AppendEncode(out, mac.Sum(scratch[:0]))
		s.macs[i].Put(mac)
	}
	return string(out)
}

// Verify checks a delivery's Standard Webhooks headers against secret,
// with a tolerance on the timestamp (replays outside it are refused): what
// a partner's receiver does, used by tests and the example.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := DecodeSecret(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || tsText == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not Unix seconds")
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp %s is outside the tolerance of %s", ts.UTC().Format(time.RFC3339), tolerance)
	}
	want := Sign([][]byte{key}, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("no signature matches")
}

// Outcome of one delivery attempt.
type Outcome int

const (
	// Delivered: the endpoint answered 2xx.
	Delivered Outcome = iota
	// Retry: no answer, a timeout, 408, 429 or 5xx: the endpoint may take
	// it later, so the delivery is parked and tried again.
	Retry
	// Refused: any other answer (a 4xx): trying again will not help; the
	// delivery is given up, kept for an operator.
	Refused
)

func (o Outcome) String() string {
	return [...]string{"delivered", "retry", "refused"}[o]
}

// Attempt is what one POST did, for the delivery log.
type Attempt struct {
	Time     time.Time     `json:"time"`
	Outcome  string        `json:"outcome"`
	Status   int           `json:"status,omitempty"`
	Latency  time.Duration `json:"latency_ns"`
	Error    string        `json:"error,omitempty"`
	Response string        `json:"response,omitempty"` // the start of the answer
}

// Message is one message to deliver.
type Message struct {
	Partner, Type, ID string
	// Key orders an ordered endpoint's messages.
	Key         string
	Body        []byte
	ContentType string
}

// IdempotencyKey is the key partners de-duplicate deliveries by: the same
// for every attempt of a message to an endpoint.
func (m Message) IdempotencyKey(endpoint string) string {
	return m.Partner + "/" + endpoint + "/" + m.Type + "/" + m.ID
}

// Poster posts messages to endpoints, with each endpoint's auth, timeout
// and rate limit. Safe for concurrent use.
type Poster struct {
	Client *http.Client
	Now    func() time.Time

	mu    sync.RWMutex
	perEP map[[2]string]*endpointState
}

type endpointState struct {
	ep      Endpoint // the configuration it was made for
	limiter *rate.Limiter
	tokens  oauth2.TokenSource
	signer  *signer
}

func (p *Poster) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Poster) state(partnerID string, e Endpoint) *endpointState {
	k := [2]string{partnerID, e.Name}
	p.mu.RLock()
	st := p.perEP[k]
	p.mu.RUnlock()
	if st != nil && st.ep.same(e) {
		return st
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.perEP == nil {
		p.perEP = map[[2]string]*endpointState{}
	}
	if st := p.perEP[k]; st != nil && st.ep.same(e) {
		return st
	}
	st = &endpointState{ep: e}
	if e.RatePerSecond > 0 {
		st.limiter = rate.NewLimiter(rate.Limit(e.RatePerSecond), max(1, int(e.RatePerSecond)))
	}
	switch e.Auth.Kind {
	case AuthOAuth2:
		cc := clientcredentials.Config{ClientID: e.Auth.ClientID, ClientSecret: e.Auth.ClientSecret,
			TokenURL: e.Auth.TokenURL, Scopes: e.Auth.Scopes}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, p.client())
		st.tokens = oauth2.ReuseTokenSource(nil, cc.TokenSource(ctx))
	case AuthHMAC:
		var secrets [][]byte
		for _, s := range e.Auth.Secrets {
			key, _ := DecodeSecret(s) // checked when stored
			secrets = append(secrets, key)
		}
		st.signer = newSigner(secrets)
	}
	p.perEP[k] = st
	return st
}

func (p *Poster) client() *http.Client {
	if p.Client != nil {
		return p.Client
	}
	return http.DefaultClient
}

// maxResponse bounds the part of an answer kept in the log.
const maxResponse = 512

// Post delivers m to endpoint e once and says how it went.
func (p *Poster) Post(ctx context.Context, e Endpoint, m Message) (Outcome, Attempt) {
	st := p.state(m.Partner, e)
	if st.limiter != nil {
		if err := st.limiter.Wait(ctx); err != nil {
			return Retry, Attempt{Time: p.now(), Outcome: Retry.String(), Error: "rate limit wait: " + err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, e.TimeoutOrDefault())
	defer cancel()
	start := p.now()
	att := Attempt{Time: start}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(m.Body))
	if err != nil {
		att.Outcome, att.Error = Refused.String(), err.Error()
		return Refused, att
	}
	ct := m.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "sluice-delivery")
	id := m.IdempotencyKey(e.Name)
	req.Header.Set("Idempotency-Key", id)
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(start.Unix(), 10))
	switch e.Auth.Kind {
	case AuthBearer:
		req.Header.Set("Authorization", "Bearer "+e.Auth.Token)
	case AuthOAuth2:
		tok, err := st.tokens.Token()
		if err != nil {
			att.Outcome, att.Error = Retry.String(), "OAuth2 token: "+err.Error()
			att.Latency = p.now().Sub(start)
			return Retry, att
		}
		tok.SetAuthHeader(req)
	case AuthHMAC:
		req.Header.Set("webhook-signature", st.signer.sign(id, start, m.Body))
	}
	resp, err := p.client().Do(req)
	att.Latency = p.now().Sub(start)
	if err != nil {
		att.Outcome, att.Error = Retry.String(), connError(err)
		return Retry, att
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	att.Status, att.Response = resp.StatusCode, string(snippet)
	var out Outcome
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		out = Delivered
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		out = Retry
	default:
		out = Refused
	}
	att.Outcome = out.String()
	return out, att
}

// connError says why a POST got no answer, without the URL's query.
func connError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return "no answer within the endpoint's timeout"
	}
	return err.Error()
}
