package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestDashboardWithKeys loads the dashboard of a server that has API keys:
// the page asks for a key; with an admin key the numbers move and a
// breaker opens and closes; a reload of the tab keeps the key (this tab's
// sessionStorage, nowhere else); a wrong key is refused and forgotten;
// with a read-only key the page works and the breaker's button shows the
// server's refusal; a key revoked while the page uses it is forgotten and
// the page asks again.
func TestDashboardWithKeys(t *testing.T) {
	browser := chromium(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	p := startPipeline(t, ctx)
	base := "http://" + p.app.Addr()
	admin := createKey(t, ctx, base, "", "dashboard", "admin")
	reader := createKey(t, ctx, base, admin, "watcher", "read")

	pubCtx, stopPub := context.WithCancel(ctx)
	var pubDone sync.WaitGroup
	pubDone.Go(func() { p.publish(pubCtx) })
	defer pubDone.Wait()
	defer stopPub()

	tb := openTab(t, ctx, browser)
	run, poll, value := tb.run, tb.poll, tb.value
	processed := cellValue("functions-table", "decode", "processed")
	breaker := `#functions-table tbody tr[data-key="decode"] [data-col="breaker"]`
	// asked is true once the key form asks, for reason, with the input
	// focused, and no key is kept.
	asked := func(reason string) string {
		return fmt.Sprintf(`(() => { const f = document.querySelector('#key-form'); return !f.hidden && f.dataset.reason === %q && `+
			`document.activeElement === document.querySelector('#key-input') && document.querySelector('#key-forget').hidden && sessionStorage.length === 0 })()`, reason)
	}
	enter := func(what, key string) {
		t.Helper()
		run("enter "+what, chromedp.SendKeys(chromedp.CSS(`#key-input`), key), chromedp.Click(chromedp.CSS(`#key-form button[type="submit"]`)))
	}
	// moving waits until decode's count is above n, and returns it.
	moving := func(what string, n float64) float64 {
		t.Helper()
		return value(what, above(processed, n))
	}

	run("load the dashboard", chromedp.Navigate(base+"/"))
	poll("the key asked for", asked("required"))
	poll("no error besides", `document.querySelector('#error').hidden && document.querySelector('#key-input').type === 'password'`)
	var msg string
	require.NoError(t, json.Unmarshal(poll("the form's words", `document.querySelector('#key-msg').textContent`), &msg))
	require.Contains(t, msg, "requires an API key")

	// The admin key: the numbers move, the breaker opens and closes.
	enter("the admin key", admin)
	poll("the form gone", `document.querySelector('#key-form').hidden && !document.querySelector('#key-forget').hidden && document.querySelector('#error').hidden`)
	n := moving("events processed", 0)
	n = moving("more events processed", n)
	poll("the breaker closed", fmt.Sprintf(`document.querySelector(%q)?.dataset.state === 'closed'`, breaker))
	run("open the breaker", chromedp.Click(chromedp.CSS(breaker+` button`)))
	poll("the breaker open", fmt.Sprintf(`document.querySelector(%q).dataset.state === 'open'`, breaker))
	run("close the breaker", chromedp.Click(chromedp.CSS(breaker+` button`)))
	poll("the breaker closed again", fmt.Sprintf(`document.querySelector(%q).dataset.state === 'closed'`, breaker))
	n = moving("processing after the breaker closed", n)
	poll("no dead-letter badge", `getComputedStyle(document.querySelector('#dl-total')).display === 'none'`)

	// The key is in this tab's sessionStorage, and nowhere else the page
	// can reach.
	var kept struct {
		Session, URL, Cookie string
		Local                int
	}
	tb.eval("where the key is", `({session: sessionStorage.getItem('sluice.apiKey'), url: location.href, cookie: document.cookie, local: localStorage.length})`, &kept)
	require.Equal(t, admin, kept.Session)
	require.NotContains(t, kept.URL, admin)
	require.Empty(t, kept.Cookie)
	require.Zero(t, kept.Local)

	// A reload of the tab keeps it.
	run("reload", chromedp.Reload())
	n = moving("events processed after the reload", n)
	poll("no key asked for after the reload", `document.querySelector('#key-form').hidden && !document.querySelector('#key-forget').hidden && document.querySelector('#error').hidden`)

	// Forgotten, it is asked for again; a wrong key is refused and not
	// kept.
	run("forget the key", chromedp.Click(chromedp.CSS(`#key-forget`)))
	poll("the key asked for again", asked("required"))
	enter("a wrong key", "sluice_nosuchkey_0123456789abcdef")
	poll("the wrong key refused", asked("refused")+` && document.querySelector('#key-msg').textContent.startsWith('The server refused the key: ')`)
	tb.shot("key-refused.png")

	// A read-only key: the page works; opening the breaker shows the
	// server's refusal, and the breaker stays closed.
	enter("the read-only key", reader)
	n = moving("events processed with the read-only key", n)
	status, refusal := call(t, ctx, http.MethodPost, base+"/api/v1/breakers/decode/open", reader, []byte(`{}`), nil)
	require.Equal(t, http.StatusForbidden, status, refusal)
	var refused struct{ Error string }
	require.NoError(t, json.Unmarshal([]byte(refusal), &refused))
	run("try to open the breaker", chromedp.Click(chromedp.CSS(breaker+` button`)))
	poll("the refusal shown", fmt.Sprintf(`(() => { const e = document.querySelector('#error'); return !e.hidden && e.textContent.includes('answered 403: ' + %q) })()`, refused.Error))
	poll("the breaker still closed", fmt.Sprintf(`document.querySelector(%q).dataset.state === 'closed' && document.querySelector('#key-form').hidden`, breaker))
	var breakers struct {
		Breakers []struct{ Function, State string }
	}
	status, text := call(t, ctx, http.MethodGet, base+"/api/v1/breakers", admin, nil, &breakers)
	require.Equal(t, http.StatusOK, status, text)
	require.Len(t, breakers.Breakers, 1, text)
	require.Equal(t, "closed", breakers.Breakers[0].State, text)

	// The read-only key revoked while the page uses it: the page forgets
	// it and asks for another, saying why.
	status, text = call(t, ctx, http.MethodDelete, base+"/api/v1/keys/watcher", admin, nil, nil)
	require.Equal(t, http.StatusOK, status, text)
	poll("the revoked key refused", asked("refused"))

	// The admin key again: everything works, no error is left.
	enter("the admin key again", admin)
	moving("events processed with the admin key again", n)
	poll("no error", `document.querySelector('#error').hidden && document.querySelector('#key-form').hidden`)
	tb.noExceptions()
	run("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	tb.shot("dashboard-with-keys.png")
}
