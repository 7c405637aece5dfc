package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/gateway"
)

// inTimeZone makes the tab's pages see zone (an IANA name) as local time.
func inTimeZone(zone string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone})
		return chromedp.Void{}, err
	}
}

// listDeadLetters asks the API for dead letters, as the CLI or a script
// would.
func listDeadLetters(t *testing.T, ctx context.Context, base string, q url.Values) gateway.DeadLetterListJSON {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/deadletters?"+q.Encode(), nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out gateway.DeadLetterListJSON
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

func keysOf(letters []gateway.DeadLetterJSON) []string {
	out := make([]string, len(letters))
	for i, l := range letters {
		out[i] = fmt.Sprintf("%s/%d", l.DeadLetterQueue, l.ID)
	}
	return out
}

// listedKeys is an expression: the keys of the listed dead letters.
const listedKeys = `[...document.querySelectorAll('#dl-table tbody tr[data-key]')].map((tr) => tr.dataset.key)`

// TestDashboardDeadLetterPages: the dead letters are listed newest first,
// a page at a time, and the pager reaches the older ones and comes back;
// times are shown one way (2026-12-07 08:14:24), in local time or in UTC
// by a toggle that the page remembers.
func TestDashboardDeadLetterPages(t *testing.T) {
	browser := chromium(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	p := startPipeline(t, ctx)
	base := "http://" + p.app.Addr()

	// 105 corrupt readings, in order in one partition: dead-lettered in
	// that order, more than a page.
	events := make([]sluice.Event, 105)
	for i := range events {
		events[i] = sluice.Event{Body: fmt.Appendf(nil, "corrupt-%03d", i+1), PartitionKey: "broken"}
	}
	_, err := p.app.Publish(ctx, "telemetry", events...)
	require.NoError(t, err)

	tb := openTab(t, ctx, browser)
	run, poll := tb.run, tb.poll
	run("local time is India's (UTC+05:30, no daylight saving)", inTimeZone("Asia/Kolkata"))
	run("load the dashboard", chromedp.Navigate(base+"/"))
	poll("105 dead letters", `document.querySelector('#dl-counts').dataset.total === '105'`)

	// The newest first: the page lists what the API's newest page holds.
	newest := listDeadLetters(t, ctx, base, url.Values{"order": {"newest"}, "limit": {"100"}})
	require.Len(t, newest.DeadLetters, 100)
	require.Equal(t, "corrupt-105", *newest.DeadLetters[0].BodyText)
	want, _ := json.Marshal(keysOf(newest.DeadLetters))
	poll("the newest 100, newest first", fmt.Sprintf(`JSON.stringify(%s) === %q`, listedKeys, want))
	poll("no newer page", `document.querySelector('#dl-newer').disabled && !document.querySelector('#dl-older').disabled`)

	// Older: the 5 oldest; newer: back to the newest.
	older := listDeadLetters(t, ctx, base, url.Values{"order": {"newest"}, "limit": {"100"}, "before": {newest.Older}})
	require.Len(t, older.DeadLetters, 5)
	require.Equal(t, "corrupt-005", *older.DeadLetters[0].BodyText)
	run("older", chromedp.Click(chromedp.CSS(`#dl-older`)))
	want, _ = json.Marshal(keysOf(older.DeadLetters))
	poll("the 5 oldest", fmt.Sprintf(`JSON.stringify(%s) === %q`, listedKeys, want))
	poll("no older page", `document.querySelector('#dl-older').disabled && !document.querySelector('#dl-newer').disabled`)
	run("newer", chromedp.Click(chromedp.CSS(`#dl-newer`)))
	want, _ = json.Marshal(keysOf(newest.DeadLetters))
	poll("the newest 100 again", fmt.Sprintf(`JSON.stringify(%s) === %q && document.querySelector('#dl-newer').disabled`, listedKeys, want))

	// Times: local time by default, ISO 8601.
	first := newest.DeadLetters[0]
	key := fmt.Sprintf("%s/%d", first.DeadLetterQueue, first.ID)
	cell := fmt.Sprintf(`document.querySelector('#dl-table tbody tr[data-key=%q] [data-col="last-failure"]').textContent`, key)
	const format = "2006-01-02 15:04:05"
	local := first.LastFailure.In(time.FixedZone("IST", 5*3600+1800)).Format(format)
	inUTC := first.LastFailure.UTC().Format(format)
	require.NotEqual(t, local, inUTC)
	poll("the last failure in local time", fmt.Sprintf(`%s === %q`, cell, local))
	poll("the toggle says local time", `document.querySelector('#tz').dataset.zone === 'local' && document.querySelector('#tz').textContent.includes('UTC+05:30')`)
	run("open the dead letter", chromedp.Click(chromedp.CSS(fmt.Sprintf(`#dl-table tbody tr[data-key=%q] [data-col="id"] button`, key))))
	poll("its last failure in local time", fmt.Sprintf(`document.querySelector('#dl-detail-fields').textContent.includes(%q)`, "Last failure"+local))

	// UTC, everywhere, and kept across a reload.
	run("show UTC", chromedp.Click(chromedp.CSS(`#tz`)))
	poll("the last failure in UTC", fmt.Sprintf(`%s === %q`, cell, inUTC))
	poll("the details in UTC", fmt.Sprintf(`document.querySelector('#dl-detail-fields').textContent.includes(%q)`, "Last failure"+inUTC))
	poll("the preference kept", `localStorage.getItem('sluice.timeZone') === 'utc'`)
	run("reload", chromedp.Reload())
	poll("still UTC after a reload", fmt.Sprintf(`document.querySelector('#tz').dataset.zone === 'utc' && document.querySelector('#tz').textContent === 'Times: UTC' && %s === %q`,
		`document.querySelector('#dl-table tbody tr[data-key] [data-col="last-failure"]')?.textContent`, inUTC))
	poll("the time of the answer, the same way", `/^updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(document.querySelector('#updated').textContent)`)
	tb.noExceptions()
	run("scroll to the dead letters", chromedp.Evaluate[chromedp.Void](`document.querySelector('#dead-letters').scrollIntoView()`))
	tb.shot("deadletters.png")
}
