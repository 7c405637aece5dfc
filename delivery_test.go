package sluice_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/partner"
)

// fakePartner is a partner's receiving endpoint: it verifies signatures,
// applies each idempotency key's effect once, and can be down.
type fakePartner struct {
	t      *testing.T
	secret string
	down   atomic.Bool
	posts  atomic.Int64

	mu      sync.Mutex
	seen    map[string]bool     // idempotency keys applied
	byKey   map[string][]string // message ids per partition key, in the order applied
	dupes   int
	badSigs int
}

func newFakePartner(t *testing.T) (*fakePartner, *httptest.Server) {
	f := &fakePartner{t: t, secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("a partner's signing secret, 32 b")),
		seen: map[string]bool{}, byKey: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakePartner) serve(w http.ResponseWriter, r *http.Request) {
	f.posts.Add(1)
	body, _ := io.ReadAll(r.Body)
	if f.down.Load() {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	if err := partner.Verify(f.secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		f.mu.Lock()
		f.badSigs++
		f.mu.Unlock()
		http.Error(w, "bad signature: "+err.Error(), http.StatusUnauthorized)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen[key] {
		f.dupes++ // a repeat: answered, not applied again
		w.WriteHeader(http.StatusOK)
		return
	}
	f.seen[key] = true
	var msg struct{ Key, ID string }
	_, _ = fmt.Sscanf(string(body), "%s %s", &msg.Key, &msg.ID)
	f.byKey[msg.Key] = append(f.byKey[msg.Key], msg.ID)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakePartner) applied() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

func TestDeliveryParksWhilePartnerIsDownAndDeliversInOrderAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fp, srv := newFakePartner(t)
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "post-to-partner", Partitions: 2})
	app.Partner(sluice.PartnerConfig{ID: "acme", Endpoints: []sluice.PartnerEndpoint{{
		Name: "main", URL: srv.URL + "/hooks", SigningSecrets: []string{fp.secret}, Ordered: true, Timeout: 5 * time.Second,
	}}})
	app.Delivery("deliver", sluice.DeliveryConfig{Hub: "post-to-partner", RetrySchedule: "00:00:01",
		RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 100 * time.Millisecond,
		Breaker: sluice.BreakerPolicy{ConsecutiveFailures: 3, CoolDown: 300 * time.Millisecond}})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })

	const keys = 5
	next := map[string]int{}
	var want = map[string][]string{}
	publish := func(n int) {
		t.Helper()
		for i := range n {
			k := fmt.Sprintf("k%d", i%keys)
			id := fmt.Sprintf("%s-%03d", k, next[k])
			next[k]++
			want[k] = append(want[k], id)
			_, err := app.Publish(ctx, "post-to-partner", sluice.Event{Body: []byte(k + " " + id), PartitionKey: k,
				Properties: map[string]string{sluice.PropPartner: "acme", sluice.PropMessageType: "order", sluice.PropMessageID: id}})
			require.NoError(t, err)
		}
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			select {
			case <-tick.C:
			case <-t.Context().Done():
				t.Fatalf("gave up waiting for %s", what)
			}
		}
	}

	publish(20)
	waitUntil("the first 20 deliveries", func() bool { return fp.applied() == 20 })

	// The partner goes down: deliveries are parked, none is lost.
	fp.down.Store(true)
	before := fp.posts.Load()
	publish(20)
	waitUntil("failed posts while the partner is down", func() bool { return fp.posts.Load() > before+3 })
	fp.down.Store(false)
	waitUntil("every message delivered once the partner is back", func() bool { return fp.applied() == 40 })

	fp.mu.Lock()
	defer fp.mu.Unlock()
	require.Zero(t, fp.badSigs, "every delivery is signed")
	for k, ids := range want {
		require.Equal(t, ids, fp.byKey[k], "the order of key %s", k)
	}
	t.Logf("posts %d for 40 messages; %d repeats answered without effect", fp.posts.Load(), fp.dupes)
}

func TestDeliveryRefusedOrMisaddressedIsDeadLettered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		if r.Header.Get("Authorization") != "Bearer partner-api-token" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		if strings.Contains(r.Header.Get("Idempotency-Key"), "bad") {
			http.Error(w, `{"error": "unknown product"}`, http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "out", Partitions: 1})
	app.Partner(sluice.PartnerConfig{ID: "acme", Endpoints: []sluice.PartnerEndpoint{{Name: "api", URL: srv.URL, BearerToken: "partner-api-token"}}})
	app.Delivery("deliver", sluice.DeliveryConfig{Hub: "out"})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	props := func(p, id string) map[string]string {
		return map[string]string{sluice.PropPartner: p, sluice.PropMessageType: "order", sluice.PropMessageID: id}
	}
	_, err := app.Publish(ctx, "out",
		sluice.Event{Body: []byte(`{}`), Properties: props("acme", "good-1")},
		sluice.Event{Body: []byte(`{}`), Properties: props("acme", "bad-1")},
		sluice.Event{Body: []byte(`{}`), Properties: props("nobody", "x-1")},
		sluice.Event{Body: []byte(`{}`)})
	require.NoError(t, err)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var dls []sluice.DeadLetterRecord
	for len(dls) < 3 {
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("dead letters: %+v", dls)
		}
		dls, err = app.DeadLetters(ctx, sluice.DeadLetterFilter{}, 10)
		require.NoError(t, err)
	}
	var reasons []string
	for _, dl := range dls {
		reasons = append(reasons, dl.Reason)
	}
	slices.Sort(reasons)
	require.Len(t, reasons, 3)
	joined := strings.Join(reasons, "\n")
	require.Contains(t, joined, "HTTP 422")
	require.Contains(t, joined, `partner "nobody"`)
	require.Contains(t, joined, `no "partner" property`)
	require.EqualValues(t, 2, got.Load(), "the good and the refused message were posted, once each")
}

// Operators see parked and given-up deliveries, retry them now, or
// cancel them, by partner and state; the delivery log shows each attempt.
func TestParkedDeliveriesOperators(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fp, srv := newFakePartner(t)
	fp.down.Store(true)
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "out", Partitions: 1})
	app.Partner(sluice.PartnerConfig{ID: "acme", Endpoints: []sluice.PartnerEndpoint{{
		Name: "main", URL: srv.URL, SigningSecrets: []string{fp.secret}, MaxAttempts: 2}}})
	app.Delivery("deliver", sluice.DeliveryConfig{Hub: "out", RetrySchedule: "00:00:01",
		RetryBackoff: time.Millisecond, MaxRetryBackoff: time.Millisecond,
		Breaker: sluice.BreakerPolicy{ConsecutiveFailures: 1000}})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	for _, id := range []string{"m-1", "m-2"} {
		_, err := app.Publish(ctx, "out", sluice.Event{Body: []byte("k " + id),
			Properties: map[string]string{sluice.PropPartner: "acme", sluice.PropMessageType: "invoice", sluice.PropMessageID: id}})
		require.NoError(t, err)
	}
	api := app.URL() + "/api/v1"
	list := func(query string) []any {
		t.Helper()
		code, out := send(t, "GET", api+"/deliveries?"+query, "", "", nil, nil)
		require.Equal(t, http.StatusOK, code, out)
		return out["deliveries"].([]any)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for len(list("partner=acme&state=dead")) < 2 {
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("deliveries never given up: %v", list("partner=acme"))
		}
	}
	d := list("state=dead")[0].(map[string]any)
	require.Equal(t, "invoice", d["type"])
	require.EqualValues(t, 2, d["attempts"])
	require.Contains(t, d["reason"], "gave up after 2 attempts")
	require.Contains(t, d["reason"], "HTTP 503")

	code, out := send(t, "POST", api+"/deliveries/cancel", "", "application/json", strings.NewReader(`{"partner": "acme", "state": "bogus"}`), nil)
	require.Equal(t, http.StatusBadRequest, code, out)
	// Retry the given-up deliveries once the partner is back.
	fp.down.Store(false)
	code, out = send(t, "POST", api+"/deliveries/retry", "", "application/json", strings.NewReader(`{"partner": "acme", "state": "dead"}`), nil)
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, 2, out["retried"])
	for fp.applied() < 2 {
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("retried deliveries not delivered: %v", list("partner=acme"))
		}
	}
	for len(list("partner=acme")) > 0 {
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("delivered deliveries still listed: %v", list("partner=acme"))
		}
	}
	code, out = send(t, "GET", api+"/partners/acme/deliveries?limit=50", "", "", nil, nil)
	require.Equal(t, http.StatusOK, code, out)
	var outcomes []string
	for _, r := range out["deliveries"].([]any) {
		outcomes = append(outcomes, r.(map[string]any)["outcome"].(string))
	}
	require.Contains(t, outcomes, "delivered")
	require.Contains(t, outcomes, "retry")

	// Cancel: a parked delivery goes away without being delivered.
	fp.down.Store(true)
	_, err := app.Publish(ctx, "out", sluice.Event{Body: []byte("k m-3"),
		Properties: map[string]string{sluice.PropPartner: "acme", sluice.PropMessageType: "invoice", sluice.PropMessageID: "m-3"}})
	require.NoError(t, err)
	for len(list("partner=acme")) == 0 {
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatal("m-3 never parked")
		}
	}
	code, out = send(t, "POST", api+"/deliveries/cancel", "", "application/json", strings.NewReader(`{"partner": "acme"}`), nil)
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, 1, out["cancelled"])
	require.Empty(t, list("partner=acme"))
}

// Config.Deliveries declares delivery functions as App.Delivery does (the
// sluice.yaml section): an app folder's functions only publish to the hub.
func TestDeliveriesFromConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fp, srv := newFakePartner(t)
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(),
		Deliveries: map[string]sluice.DeliveryConfig{"post": {Hub: "out"}},
		Partners:   []sluice.PartnerConfig{{ID: "acme", Endpoints: []sluice.PartnerEndpoint{{Name: "main", URL: srv.URL, SigningSecrets: []string{fp.secret}}}}}})
	app.Hub(sluice.HubConfig{Name: "out", Partitions: 1})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	_, err := app.Publish(ctx, "out", sluice.Event{Body: []byte("k m-1"),
		Properties: map[string]string{sluice.PropPartner: "acme", sluice.PropMessageType: "order", sluice.PropMessageID: "m-1"}})
	require.NoError(t, err)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for fp.applied() < 1 {
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatal("the configured delivery function delivered nothing")
		}
	}
}

// Concurrency bounds the POSTs in flight of the whole function, however
// many partitions' batches deliver at once.
func TestDeliveryConcurrencyBoundsEveryPartitionTogether(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const limit, messages = 3, 40
	var mu sync.Mutex
	inFlight, most := 0, 0
	arrived := make(chan struct{}, messages)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "out", Partitions: 4})
	app.Partner(sluice.PartnerConfig{ID: "acme", Endpoints: []sluice.PartnerEndpoint{{Name: "api", URL: srv.URL}}})
	app.Delivery("deliver", sluice.DeliveryConfig{Hub: "out", Concurrency: limit})
	var events []sluice.Event
	for i := range messages {
		events = append(events, sluice.Event{Body: []byte(`{}`), PartitionKey: fmt.Sprint(i),
			Properties: map[string]string{sluice.PropPartner: "acme", sluice.PropMessageType: "order", sluice.PropMessageID: fmt.Sprint("m-", i)}})
	}
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	_, err := app.Publish(ctx, "out", events...)
	require.NoError(t, err)
	// Hold the first POSTs until as many as the bound are in flight, then
	// let one go each time another arrives.
	for i := range messages {
		select {
		case <-arrived:
		case <-t.Context().Done():
			t.Fatal("the deliveries did not all arrive")
		}
		if i >= limit-1 {
			release <- struct{}{}
		}
	}
	for range limit - 1 {
		release <- struct{}{}
	}
	mu.Lock()
	defer mu.Unlock()
	require.LessOrEqual(t, most, limit, "POSTs in flight at once")
	require.Equal(t, limit, most, "the bound is used")
}
