package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/web"
)

// cannedAPI serves the dashboard and an overview the test sets, so that
// the page can be shown answers a real server gives rarely (a hub that
// cannot be read).
type cannedAPI struct {
	mu sync.Mutex
	ov gateway.Overview
	// gate, when set, holds each overview request (computed already)
	// until it is closed; entered tells that one is held.
	gate    chan struct{}
	entered chan struct{}
}

// hold holds the next overview requests until release.
func (c *cannedAPI) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate, c.entered = make(chan struct{}), make(chan struct{}, 1)
}

func (c *cannedAPI) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.gate)
	c.gate = nil
}

func (c *cannedAPI) set(ov gateway.Overview) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ov = ov
}

func startCannedAPI(t *testing.T, ov gateway.Overview) (*cannedAPI, string) {
	t.Helper()
	c := &cannedAPI{ov: ov}
	mux := http.NewServeMux()
	mux.Handle("/", web.Handler())
	mux.HandleFunc("GET /api/v1/overview", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		ov, gate, entered := c.ov, c.gate, c.entered
		ov.Time = time.Now().UTC()
		body, err := json.Marshal(ov) // the answer as it is now, however long it is held
		c.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if gate != nil {
			select {
			case entered <- struct{}{}:
			default:
			}
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /api/v1/pipelines", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"pipelines": []}`))
	})
	mux.HandleFunc("POST /api/v1/breakers/{function}/open", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		for i, f := range c.ov.Functions {
			if f.Name == r.PathValue("function") {
				c.ov.Functions[i].Breaker = &gateway.BreakerOverview{State: "open", Manual: true}
			}
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"state":"open"}`))
	})
	mux.HandleFunc("GET /api/v1/deadletters", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"dead_letters":[]}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return c, srv.URL
}

// holdTimers keeps the page's timers of a second or more from firing:
// what the page shows then, it showed without waiting for its next poll.
// window.releaseTimers() runs them.
const holdTimers = `(() => {
  const real = window.setTimeout.bind(window);
  const held = [];
  window.setTimeout = (fn, ms, ...args) => {
    if (ms >= 1000) { held.push(() => fn(...args)); return 0; }
    return real(fn, ms, ...args);
  };
  window.releaseTimers = () => { const fns = held.splice(0); fns.forEach((fn) => fn()); return fns.length; };
})();`

// onNewDocument runs script in every page of the tab before the page's own.
func onNewDocument(script string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script})
		return chromedp.Void{}, err
	}
}

// cannedOverview has a hub "good", a hub "bad" that could not be read
// fully, an event function and an HTTP function.
func cannedOverview() gateway.Overview {
	part := func(p int) []hub.PartitionInfo {
		return []hub.PartitionInfo{{Partition: p, Records: 7, Bytes: 700}}
	}
	group := func(fn, owner string) []gateway.GroupOverview {
		return []gateway.GroupOverview{{Name: "$Default", Functions: []string{fn}, Lag: 1,
			Partitions: []gateway.PartitionOverview{{Partition: 0, Checkpoint: 5, Lag: 1, Owner: owner}}}}
	}
	return gateway.Overview{Instance: "canned",
		Functions: []gateway.FunctionOverview{
			{Name: "decode", Trigger: "hub", Source: "good", Group: "$Default", Processed: 42, Invocations: 3,
				Breaker: &gateway.BreakerOverview{State: "closed"}},
			{Name: "products", Trigger: "http", Source: "/api/products/{id:int?}", Methods: []string{"GET", "POST"}, Processed: 5, Invocations: 5},
			{Name: "status", Trigger: "http", Source: "/api/status"},
		},
		Hubs: []gateway.HubOverview{
			{Name: "bad", Partitions: 1, Retention: "168h0m0s", PartitionInfo: part(0), Groups: group("audit", ""),
				Error: "owners of group $Default: lease bucket unreachable"},
			{Name: "good", Partitions: 1, Retention: "168h0m0s", PartitionInfo: part(0), Groups: group("decode", "canned")},
		},
		Queues: []gateway.QueueOverview{{Name: "orders", Kind: "queue", Error: "stats of orders: timeout"},
			{Name: "sluice-deadletters", Kind: "dead-letter", QueueStatsJSON: gateway.QueueStatsJSON{Depth: 2}}},
		Containers:  []gateway.ContainerOverview{},
		DeadLetters: []gateway.DeadLetterCount{},
		Instances:   []gateway.InstanceOverview{{ID: "canned", Self: true, Partitions: []gateway.OwnedPartitions{}}},
	}
}

// TestDashboardRendersTheOverview: the page shows its first answer without
// waiting for a poll period; an HTTP function's trigger is its route; an
// error of one hub (or queue) is shown with it, not above the page, which
// keeps its banner for errors of the whole answer; an action's result is
// shown as soon as the poll under way ends, not a period later.
func TestDashboardRendersTheOverview(t *testing.T) {
	browser := chromium(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	api, base := startCannedAPI(t, cannedOverview())
	tb := openTab(t, ctx, browser)
	run, poll := tb.run, tb.poll

	// First data at once: with the page's timers held, it shows the
	// overview (and says when) all the same.
	run("hold the page's timers", onNewDocument(holdTimers))
	run("load the dashboard", chromedp.Navigate(base+"/"))
	poll("the functions", cellValue("functions-table", "decode", "processed")+` === 42`)
	poll("the first answer's time", `/^updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(document.querySelector('#updated').textContent)`)

	// An HTTP function's trigger: its methods and route.
	var trigger string
	tb.eval("the HTTP function's trigger", `document.querySelector('#functions-table tr[data-key="products"] [data-col="trigger"]').textContent`, &trigger)
	require.Equal(t, "http GET, POST /api/products/{id:int?}", trigger)
	tb.eval("an HTTP function of any method", `document.querySelector('#functions-table tr[data-key="status"] [data-col="trigger"]').textContent`, &trigger)
	require.Equal(t, "http /api/status", trigger)
	tb.eval("the hub function's trigger", `document.querySelector('#functions-table tr[data-key="decode"] [data-col="trigger"]').textContent`, &trigger)
	require.Equal(t, "hub good ($Default)", trigger)

	// The hub's error is in its card; no banner.
	var state struct {
		BadError, GoodError, QueueError, FineQueue string
		Banner                                     bool
		BadRows                                    int
	}
	tb.eval("the errors", `({
		BadError: document.querySelector('.hub[data-hub="bad"] .hub-error')?.textContent ?? '',
		GoodError: document.querySelector('.hub[data-hub="good"] .hub-error:not([hidden])')?.textContent ?? '',
		QueueError: document.querySelector('#queues-table tr[data-key="orders"] .cell-error')?.textContent ?? '',
		FineQueue: document.querySelector('#queues-table tr[data-key="sluice-deadletters"] [data-col="name"]')?.textContent ?? '',
		Banner: !document.querySelector('#error').hidden,
		BadRows: document.querySelectorAll('.hub[data-hub="bad"] tbody tr[data-key]').length,
	})`, &state)
	require.Contains(t, state.BadError, "lease bucket unreachable")
	require.Empty(t, state.GoodError)
	require.Contains(t, state.QueueError, "stats of orders: timeout")
	require.Equal(t, "sluice-deadletters", state.FineQueue, "a queue without an error: its name alone")
	require.False(t, state.Banner, "no banner for the error of one hub or queue")
	require.Equal(t, 1, state.BadRows, "what could be read of the hub is shown")

	// An error of the whole answer is above the page; the hub's error
	// goes once the hub is read.
	ov := cannedOverview()
	ov.Hubs[0].Error = ""
	ov.Errors = []string{"containers: store unreachable"}
	api.set(ov)
	var released int
	tb.eval("the next poll", `window.releaseTimers()`, &released)
	require.Positive(t, released)
	poll("the banner", `!document.querySelector('#error').hidden && document.querySelector('#error').textContent.includes('containers: store unreachable')`)
	poll("the hub's error gone", `document.querySelector('.hub[data-hub="bad"] .hub-error').hidden`)

	// An action while a poll is under way: its result is asked for once
	// that poll ends, without a timer.
	breaker := `#functions-table tbody tr[data-key="decode"] [data-col="breaker"]`
	poll("the breaker closed", fmt.Sprintf(`document.querySelector(%q).dataset.state === 'closed'`, breaker))
	api.hold()
	tb.eval("the next poll", `window.releaseTimers()`, &released)
	select {
	case <-api.entered:
	case <-ctx.Done():
		t.Fatal("the page did not poll")
	}
	run("open the breaker", chromedp.Click(chromedp.CSS(breaker+` button`)))
	poll("the breaker opened", `document.querySelector('#status').textContent.includes('The breaker of decode is open')`)
	api.release()
	poll("the breaker shown open", fmt.Sprintf(`document.querySelector(%q).dataset.state === 'open'`, breaker))
	tb.noExceptions()
	tb.shot("overview.png")
}
