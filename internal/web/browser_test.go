package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/sluicehq/sluice/internal/testlog"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// The browser test drives Debian's chromium, headless, through the Chrome
// DevTools protocol. Without a browser it skips, unless
// SLUICE_TEST_BROWSER=required (CI), which makes a missing browser a
// failure. SLUICE_TEST_CHROMIUM names the browser binary; screenshots go to
// SLUICE_TEST_ARTIFACTS/<test> when set, else to the test's artifact
// directory with go test -artifacts, else under the system's temp
// directory; the test logs where.

// chromium returns the browser to drive, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	required := os.Getenv("SLUICE_TEST_BROWSER") == "required"
	if p := os.Getenv("SLUICE_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found: install Debian's chromium package (apt-get install chromium) or set SLUICE_TEST_CHROMIUM to a Chrome binary"
	if required {
		t.Fatal(msg + " (SLUICE_TEST_BROWSER=required)")
	}
	t.Skip(msg + "; SLUICE_TEST_BROWSER=required makes this a failure")
	return ""
}

// artifacts returns the directory where the test keeps its screenshots.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := ""
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	switch {
	case os.Getenv("SLUICE_TEST_ARTIFACTS") != "":
		dir = filepath.Join(os.Getenv("SLUICE_TEST_ARTIFACTS"), name)
	case flag.Lookup("test.artifacts") != nil && flag.Lookup("test.artifacts").Value.String() == "true":
		dir = t.ArtifactDir()
	default:
		dir = filepath.Join(os.TempDir(), "sluice-test-artifacts", name)
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// reading is what the demo's devices send.
type reading struct {
	Device string  `json:"device"`
	Temp   float64 `json:"temp"`
	Seq    int64   `json:"seq"`
}

// pipeline is a small telemetry pipeline like the demo's: readings go to
// hub "telemetry"; "decode" keeps each device's latest reading in the
// container "devices" and dead-letters corrupt readings; "alert" reads the
// queue "alerts". A corrupt reading that is
// redriven is accepted: it becomes the document "redriven-<body>".
type pipeline struct {
	app      *sluice.App
	redriven chan string // bodies of redriven readings, once processed
	sent     atomic.Int64
}

// startPipeline starts the pipeline, with what declare adds to it.
func startPipeline(t *testing.T, ctx context.Context, declare ...func(*sluice.App)) *pipeline {
	t.Helper()
	p := &pipeline{redriven: make(chan string, 16)}
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Sync: sluice.SyncInterval,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	app.Hub(sluice.HubConfig{Name: "telemetry", Partitions: 4})
	app.Queue(sluice.QueueConfig{Name: "alerts"})
	app.Container(sluice.ContainerConfig{Name: "devices", PartitionKeyPath: "/deviceId"})
	app.Function("decode", sluice.HubTrigger{Hub: "telemetry", MaxBatchSize: 50}, func(ctx context.Context, events []sluice.Event) error {
		var corrupt []sluice.Event
		docs := app.Docs() // not before Start
		for _, e := range events {
			var r reading
			if err := json.Unmarshal(e.Body, &r); err != nil || r.Device == "" {
				if e.Properties["sluice.redrive"] == "" {
					corrupt = append(corrupt, e)
					continue
				}
				// Fixed by hand and sent again: accept it.
				if _, err := docs.Upsert(ctx, "devices", map[string]any{"id": "redriven-" + string(e.Body), "deviceId": "redriven", "body": string(e.Body)}); err != nil {
					return err
				}
				select {
				case p.redriven <- string(e.Body):
				default: // delivered again (at least once): already told
				}
				continue
			}
			if _, err := docs.Upsert(ctx, "devices", map[string]any{"id": r.Device, "deviceId": r.Device, "temp": r.Temp, "seq": r.Seq}); err != nil {
				return err
			}
		}
		if len(corrupt) > 0 {
			return sluice.DeadLetter(errors.New("corrupt reading: not a JSON object with a device"), corrupt...)
		}
		return nil
	}, sluice.WithBreaker(sluice.BreakerPolicy{ConsecutiveFailures: 1000}))
	app.QueueFunction("alert", sluice.QueueTrigger{Queue: "alerts"}, func(ctx context.Context, m *sluice.Message) error { return nil })
	for _, d := range declare {
		d(app)
	}
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = app.Stop(sctx)
	})
	p.app = app
	return p
}

// publish sends a few readings every 50 ms until ctx ends.
func (p *pipeline) publish(ctx context.Context) {
	var seq int64
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		events := make([]sluice.Event, 10)
		for i := range events {
			seq++
			d := fmt.Sprintf("d%02d", seq%20)
			body, _ := json.Marshal(reading{Device: d, Temp: 15 + float64(seq%25), Seq: seq})
			events[i] = sluice.Event{Body: body, PartitionKey: d}
		}
		if _, err := p.app.Publish(ctx, "telemetry", events...); err == nil {
			p.sent.Add(int64(len(events)))
		}
		// An alert now and then. (Not sent by decode: App.Send from a
		// handler blocks App.Stop while the batch is in flight.)
		if seq%100 == 0 {
			_, _ = p.app.Send(ctx, "alerts", sluice.OutgoingMessage{Body: []byte(`{"device":"d00","temp":41}`)})
		}
	}
}

// tab is a headless Chromium tab and the helpers the tests drive it with.
// Uncaught exceptions of its pages are collected (see noExceptions); when
// the test fails, a screenshot and the browser's output are kept.
type tab struct {
	t   *testing.T
	ctx context.Context // the tab's chromedp context

	mu         sync.Mutex
	exceptions []string
}

// openTab starts a browser with one tab, closed when the test ends.
func openTab(t *testing.T, ctx context.Context, browser string, extra ...chromedp.ExecAllocatorOption) *tab {
	t.Helper()
	browserLog := &testlog.Buffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.DisableGPU, chromedp.WindowSize(1400, 1000),
		chromedp.CombinedOutput(browserLog))
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	tb := &tab{t: t, ctx: bctx}
	tb.watchExceptions()
	t.Cleanup(func() {
		if t.Failed() {
			tb.shot("failure.png")
			t.Logf("browser output:\n%s", browserLog.String())
		}
	})
	return tb
}

// watchExceptions collects the uncaught exceptions of the tab's pages.
func (tb *tab) watchExceptions() {
	msgs := chromedp.Console(tb.ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() {
				tb.mu.Lock()
				tb.exceptions = append(tb.exceptions, m.String())
				tb.mu.Unlock()
			}
		}
	}()
}

// noExceptions fails the test if a page of the tab threw.
func (tb *tab) noExceptions() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	require.Empty(tb.t, tb.exceptions, "the page threw")
}

// shot saves a screenshot of the page under the test's artifacts.
func (tb *tab) shot(name string) {
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(artifacts(tb.t), name)
	require.NoError(tb.t, os.WriteFile(path, png, 0o644))
	tb.t.Logf("screenshot: %s", path)
}

func (tb *tab) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	require.NoError(tb.t, chromedp.Do(tb.ctx, actions...), what)
}

// poll waits (generously: the machine may be loaded) for a JavaScript
// expression to be truthy, and returns its value.
func (tb *tab) poll(what, expr string) json.RawMessage {
	tb.t.Helper()
	for i := 0; ; i++ {
		v, err := chromedp.Run(tb.ctx, chromedp.Poll[json.RawMessage](expr, chromedp.WithPollingInterval(100*time.Millisecond),
			chromedp.WithPollingTimeout(90*time.Second)))
		// Right after a navigation to another site (another renderer
		// process), chromedp may still hold the previous page's
		// execution context: ask again once it has the new one.
		if err != nil && strings.Contains(err.Error(), "Cannot find context with specified id") && i < 100 {
			continue
		}
		require.NoError(tb.t, err, "waiting for %s", what)
		return v
	}
}

// value polls for a number.
func (tb *tab) value(what, expr string) float64 {
	tb.t.Helper()
	var n float64
	require.NoError(tb.t, json.Unmarshal(tb.poll(what, expr), &n), what)
	return n
}

// eval evaluates an expression once and decodes its value into v.
func (tb *tab) eval(what, expr string, v any) {
	tb.t.Helper()
	raw, err := chromedp.Run(tb.ctx, chromedp.Evaluate[json.RawMessage](expr))
	require.NoError(tb.t, err, what)
	require.NoError(tb.t, json.Unmarshal(raw, v), what)
}

// cellValue is the data-value of a cell, or null while it has none.
func cellValue(table, key, col string) string {
	return fmt.Sprintf(`(() => { const td = document.querySelector('#%s tbody tr[data-key=%q] [data-col=%q]'); `+
		`return td && td.dataset.value !== undefined ? Number(td.dataset.value) : null })()`, table, key, col)
}

// above is an expression whose value is expr's once that is above n, and
// null before.
func above(expr string, n float64) string {
	return fmt.Sprintf(`(() => { const v = %s; return v > %v ? v : null })()`, expr, n)
}

// TestDashboardInBrowser loads the dashboard in headless Chromium while
// the pipeline runs: the numbers move, a dead letter is opened and
// redriven through the page and then processed, the document viewer finds
// the result, a breaker opens and closes from the page; then it saves a
// screenshot. The server has no API keys: the page never asks for one.
func TestDashboardInBrowser(t *testing.T) {
	browser := chromium(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	p := startPipeline(t, ctx)

	// Three corrupt readings first, then a steady stream.
	for i := 1; i <= 3; i++ {
		_, err := p.app.Publish(ctx, "telemetry", sluice.Event{Body: fmt.Appendf(nil, "corrupt-%d", i), PartitionKey: "broken"})
		require.NoError(t, err)
	}
	pubCtx, stopPub := context.WithCancel(ctx)
	var pubDone sync.WaitGroup
	pubDone.Go(func() { p.publish(pubCtx) })
	defer pubDone.Wait()
	defer stopPub()

	tb := openTab(t, ctx, browser)
	base := "http://" + p.app.Addr()
	run, poll, value := tb.run, tb.poll, tb.value

	run("load the dashboard", chromedp.Navigate(base+"/"))
	title, err := chromedp.Run(tb.ctx, chromedp.Title())
	require.NoError(t, err)
	require.Equal(t, "Sluice", title)

	// The numbers move.
	processed := cellValue("functions-table", "decode", "processed")
	first := value("events processed by decode", processed+` || null`)
	second := value("more events processed", above(processed, first))
	t.Logf("decode processed %v, then %v events (%d published)", first, second, p.sent.Load())
	poll("the hub's partitions", `document.querySelectorAll('.hub[data-hub="telemetry"] tbody tr[data-key]').length === 4`)
	poll("a write rate", `[...document.querySelectorAll('.hub[data-hub="telemetry"] [data-col="write-rate"]')].some(td => Number(td.dataset.value) > 0)`)
	poll("the alerts queue", `document.querySelector('#queues-table tbody tr[data-key="alerts"]') !== null`)
	poll("documents counted", cellValue("containers-table", "devices", "documents")+` > 0`)
	poll("the instance", fmt.Sprintf(`document.querySelector('#instances-table tbody tr[data-key=%q]')?.textContent.includes('telemetry / $Default: 0, 1, 2, 3')`, p.app.InstanceID()))

	// The three corrupt readings are listed; open the first.
	poll("three dead letters", `document.querySelectorAll('#dl-table tbody tr[data-key]').length === 3 && document.querySelector('#dl-counts').dataset.total === '3'`)
	var key string
	require.NoError(t, json.Unmarshal(poll("a dead letter's key", `document.querySelector('#dl-table tbody tr[data-key]').dataset.key`), &key))
	row := fmt.Sprintf(`#dl-table tbody tr[data-key=%q]`, key)
	run("open the dead letter", chromedp.Click(chromedp.CSS(row+` [data-col="id"] button`)))
	var body string
	require.NoError(t, json.Unmarshal(poll("the dead letter's body", `(() => { const d = document.querySelector('#dl-detail'); `+
		`return !d.hidden && document.querySelector('#dl-detail-body').textContent.startsWith('corrupt-') ? document.querySelector('#dl-detail-body').textContent : null })()`), &body))
	poll("the dead letter's reason", `document.querySelector('#dl-detail-fields').textContent.includes('corrupt reading')`)

	// Redrive it through the page; it disappears and is processed.
	before := value("processed before the redrive", processed)
	run("select the dead letter", chromedp.Click(chromedp.CSS(row+` input[type="checkbox"]`)))
	poll("the redrive button enabled", `!document.querySelector('#dl-redrive').disabled`)
	run("redrive", chromedp.Click(chromedp.CSS(`#dl-redrive`)))
	poll("the redrive confirmed", `document.querySelector('#status').textContent.includes('Redrove 1 dead letter')`)
	poll("the dead letter gone", fmt.Sprintf(`document.querySelector(%q) === null && document.querySelector('#dl-counts').dataset.total === '2'`, row))
	select {
	case got := <-p.redriven:
		require.Equal(t, body, got)
	case <-time.After(90 * time.Second):
		t.Fatalf("the redriven reading %q was not processed", body)
	}
	value("processed after the redrive", above(processed, before))

	// The document viewer finds what the redriven reading became.
	run("browse the devices", chromedp.Click(chromedp.CSS(`#containers-table tbody tr[data-key="devices"] button`)))
	poll("the latest changes", `document.querySelectorAll('#viewer-table tbody tr[data-key]').length > 0`)
	run("query", chromedp.SetValue(chromedp.CSS(`#viewer-query`), `SELECT * FROM c WHERE c.deviceId = "redriven"`),
		chromedp.Click(chromedp.CSS(`#viewer-form button[type="submit"]`)))
	poll("the query's result", fmt.Sprintf(`document.querySelectorAll('#viewer-table tbody tr[data-key]').length === 1 && `+
		`document.querySelector('#viewer-table tbody').textContent.includes(%q)`, "redriven-"+body))
	run("open the document", chromedp.Click(chromedp.CSS(`#viewer-table tbody tr[data-key] button`)))
	poll("the document", fmt.Sprintf(`!document.querySelector('#viewer-doc').hidden && document.querySelector('#viewer-doc').textContent.includes(%q)`, `"body": "`+body+`"`))

	// An error of the API is shown with its message, until the next action
	// succeeds.
	run("a bad query", chromedp.SetValue(chromedp.CSS(`#viewer-query`), `SELECT * FROM c WHERE`),
		chromedp.Click(chromedp.CSS(`#viewer-form button[type="submit"]`)))
	poll("the query's error shown", `!document.querySelector('#error').hidden && document.querySelector('#error').textContent.includes('answered 400')`)
	run("the latest changes", chromedp.Click(chromedp.CSS(`#viewer-latest`)))
	poll("the error gone", `document.querySelector('#error').hidden`)

	// The breaker opens and closes from the page.
	breaker := `#functions-table tbody tr[data-key="decode"] [data-col="breaker"]`
	poll("the breaker closed", fmt.Sprintf(`document.querySelector(%q)?.dataset.state === 'closed'`, breaker))
	run("open the breaker", chromedp.Click(chromedp.CSS(breaker+` button`)))
	poll("the breaker open", fmt.Sprintf(`document.querySelector(%q).dataset.state === 'open'`, breaker))
	run("close the breaker", chromedp.Click(chromedp.CSS(breaker+` button`)))
	poll("the breaker closed again", fmt.Sprintf(`document.querySelector(%q).dataset.state === 'closed'`, breaker))
	after := value("processed after closing the breaker", processed)
	value("processing resumed", above(processed, after))

	// No error is shown, no key was asked for, nothing threw.
	poll("no error shown", `document.querySelector('#error').hidden`)
	poll("no key asked for", `getComputedStyle(document.querySelector('#key-form')).display === 'none' && document.querySelector('#key-forget').hidden && sessionStorage.length === 0`)
	tb.noExceptions()
	run("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	tb.shot("dashboard.png")
}
