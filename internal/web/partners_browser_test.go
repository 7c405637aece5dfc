package web_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// TestDashboardPartners: the partners section lists each partner with its
// accepted and rejected messages and its endpoints' breakers; its details
// show the latest rejections with their reasons, the parked deliveries
// and the delivery log, and a button tries the parked deliveries again.
func TestDashboardPartners(t *testing.T) {
	browser := chromium(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	var down atomic.Bool
	down.Store(true)
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(endpoint.Close)
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	app.Hub(sluice.HubConfig{Name: "process", Partitions: 1})
	app.Hub(sluice.HubConfig{Name: "out", Partitions: 1})
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the dashboard test's secret key!"))
	app.Partner(sluice.PartnerConfig{ID: "acme", Name: "ACME", Endpoints: []sluice.PartnerEndpoint{{Name: "main", URL: endpoint.URL, SigningSecrets: []string{secret}}},
		Types: []sluice.MessageTypeConfig{{Name: "order", Format: "json", Hub: "process",
			Schema: `{"type": "object", "required": ["orderId"], "properties": {"orderId": {"type": "string"}}}`}}})
	// Retries wait an hour: the parked delivery stays parked until the
	// button asks.
	app.Delivery("deliver", sluice.DeliveryConfig{Hub: "out", RetrySchedule: "00:00:01", RetryBackoff: time.Hour, MaxRetryBackoff: time.Hour,
		Breaker: sluice.BreakerPolicy{ConsecutiveFailures: 1000}})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	token, err := app.PartnerToken(ctx, "acme", "t", 0)
	require.NoError(t, err)
	base := app.URL()
	post := func(body string) int {
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/partners/acme/messages/order", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusAccepted, post(`{"orderId": "PO-1"}`))
	require.Equal(t, http.StatusAccepted, post(`{"orderId": "PO-2"}`))
	require.Equal(t, http.StatusUnprocessableEntity, post(`{"orderId": 7}`))
	_, err = app.Publish(ctx, "out", sluice.Event{Body: []byte(`{"ok": true}`),
		Properties: map[string]string{sluice.PropPartner: "acme", sluice.PropMessageType: "confirmation", sluice.PropMessageID: "conf-1"}})
	require.NoError(t, err)

	tb := openTab(t, ctx, browser)
	run, poll := tb.run, tb.poll
	run("load the dashboard", chromedp.Navigate(base+"/"))
	row := `document.querySelector('#partners-table tbody tr[data-key="acme"]')`
	poll("acme listed with 2 accepted, 1 rejected", fmt.Sprintf(`%s && %s.querySelector('[data-col="accepted"]').textContent === '2' && %s.querySelector('[data-col="rejected"]').textContent === '1'`, row, row, row))
	poll("its endpoint and breaker", fmt.Sprintf(`%s.querySelector('[data-col="endpoints"]').textContent === 'main (closed)'`, row))
	poll("the delivery parked", `fetch('/api/v1/deliveries?partner=acme').then((r) => r.json()).then((d) => window.__parked = d.count) && window.__parked === 1`)
	run("open acme's details", chromedp.Click(chromedp.CSS(`#partners-table tbody tr[data-key="acme"] button`)))
	poll("the rejection with its reason", `document.querySelector('#partner-rejections tbody').textContent.includes('/orderId: got number, want string')`)
	poll("the parked delivery", `document.querySelector('#partner-parked tbody').textContent.includes('conf-1')`)
	poll("the failed attempt in the log", `document.querySelector('#partner-log tbody').textContent.includes('retry')`)
	down.Store(false)
	run("retry the parked deliveries", chromedp.Click(chromedp.CSS(`#partner-retry`)))
	poll("the status says so", `document.querySelector('#status').textContent.includes('1 deliveries to acme will be tried again now')`)
	poll("the delivery counted", fmt.Sprintf(`%s.querySelector('[data-col="delivered"]').textContent === '1' && %s.querySelector('[data-col="failed"]').textContent === '1'`, row, row))
	poll("delivered: nothing parked", `fetch('/api/v1/deliveries?partner=acme').then((r) => r.json()).then((d) => window.__parked = d.count) && window.__parked === 0`)
	tb.noExceptions()
	run("scroll to the partners", chromedp.Evaluate[chromedp.Void](`document.querySelector('#partners').scrollIntoView()`))
	tb.shot("partners.png")
}
