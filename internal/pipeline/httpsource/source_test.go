package httpsource_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/httpsource"
)

// fullSync makes the fake answer a full sync of five items in three
// pages, ending with delta link token=d1.
func (f *fake) fullSync() {
	f.on("", nextPage(item("1", `{"Title":"a","Price":10}`)+","+item("2", `{"Title":"b","Price":20}`), "skiptoken=2"))
	f.on("skiptoken=2", nextPage(item("3", `{"Title":"c","Price":30}`)+","+item("4", `{"Title":"d","Price":40}`), "skiptoken=3"))
	f.on("skiptoken=3", deltaPage(item("5", `{"Title":"e","Price":50}`), "token=d1"))
}

func TestFullSyncIsPagedAndResumes(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.fullSync()
	got, err := f.run("", 3)
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, got, 3)
	require.Equal(t, []string{"read 1", "read 2"}, ops(got[0]))
	require.Equal(t, []string{"read 3", "read 4"}, ops(got[1]))
	require.Equal(t, []string{"read 5"}, ops(got[2]))
	for _, b := range got {
		require.True(t, b.Snapshot)
		for _, c := range b.Changes {
			require.Equal(t, "sharepoint.orders", c.Table)
			require.Equal(t, pipeline.Row{"id": c.Key["id"]}, c.Key)
			require.NotContains(t, c.After, "@odata.etag", "annotations are not data")
			require.Equal(t, c.Key["id"], c.After["id"])
			require.IsType(t, map[string]any{}, c.After["fields"])
			require.IsType(t, json.Number(""), c.After["fields"].(map[string]any)["Price"], "numbers are json.Number")
		}
	}
	require.Equal(t, "full "+f.srv.URL+"/items/delta?skiptoken=2", linkOf(t, got[0].Position))
	require.Equal(t, "full "+f.srv.URL+"/items/delta?skiptoken=3", linkOf(t, got[1].Position))
	require.Equal(t, "delta "+f.srv.URL+"/items/delta?token=d1", linkOf(t, got[2].Position))
	require.Equal(t, map[string]pipeline.Table{"sharepoint.orders": {Name: "sharepoint.orders", Columns: []pipeline.Column{
		{Name: "id", Type: "text", Key: true}, {Name: "fields", Type: "jsonb"}}}}, got[2].Tables)
	require.Equal(t, []string{"", "skiptoken=2", "skiptoken=3"}, f.asked()[:3])
	require.Equal(t, poll, f.waited()[0], "caught up, the source waits PollInterval")

	// Resumed after the second batch, it reads page 3 and nothing before.
	f.requests = nil
	again, err := f.run(got[1].Position, 1)
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, again, 1)
	require.Equal(t, []string{"read 5"}, ops(again[0]))
	require.True(t, again[0].Snapshot)
	require.Equal(t, got[2].Position, again[0].Position)
	require.Equal(t, "skiptoken=3", f.asked()[0])
	require.NotContains(t, f.asked(), "")
	require.NotContains(t, f.asked(), "skiptoken=2")
}

func TestDeltaHandsOverUpdatesAndDeletes(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.fullSync()
	// A delta of two pages, an empty one, then one more change.
	f.on("token=d1", nextPage(item("2", `{"Title":"B","Price":21}`), "token=d1&skiptoken=x"))
	f.on("token=d1&skiptoken=x", deltaPage(removed("1"), "token=d2"))
	f.on("token=d2", deltaPage("", "token=d3"))
	f.on("token=d3", deltaPage(item("6", `{"Title":"f","Price":60,"Rush":true}`)+","+removed("4"), "token=d4"))
	got, err := f.run("", 6)
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, got, 6)
	delta := got[3:]
	require.Equal(t, []string{"update 2"}, ops(delta[0]))
	require.Equal(t, []string{"delete 1"}, ops(delta[1]))
	require.Equal(t, []string{"update 6", "delete 4"}, ops(delta[2]), "the empty poll of token=d2 is not handed over")
	for _, b := range delta {
		require.False(t, b.Snapshot)
	}
	require.Equal(t, pipeline.Change{Op: pipeline.Delete, Table: "sharepoint.orders", Key: pipeline.Row{"id": "1"}}, delta[1].Changes[0],
		"a delete holds the key only")
	require.Equal(t, pipeline.Row{"id": "2", "fields": map[string]any{"Title": "B", "Price": json.Number("21")}}, delta[0].Changes[0].After)
	require.Equal(t, "delta "+f.srv.URL+"/items/delta?token=d1&skiptoken=x", linkOf(t, delta[0].Position))
	require.Equal(t, "delta "+f.srv.URL+"/items/delta?token=d2", linkOf(t, delta[1].Position))
	require.Equal(t, "delta "+f.srv.URL+"/items/delta?token=d4", linkOf(t, delta[2].Position))
	require.Equal(t, []string{"", "skiptoken=2", "skiptoken=3", "token=d1", "token=d1&skiptoken=x", "token=d2", "token=d3"}, f.asked())
	// Waits only once caught up: after the full sync, the first delta and
	// the empty poll (and the one cancelled).
	require.Equal(t, []time.Duration{poll, poll, poll, poll}, f.waited())

	// Resumed from the delta's last position: changes since token=d4.
	f.on("token=d4", deltaPage(item("7", `{}`), "token=d5"))
	more, err := f.run(delta[2].Position, 1)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, []string{"update 7"}, ops(more[0]))
	require.False(t, more[0].Snapshot)
}

func TestExpiredDeltaLinkStartsAFullSync(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.fullSync()
	f.on("token=old", answer{status: http.StatusGone, body: `{"error":{"code":"resyncRequired"}}`})
	first, err := f.run("", 3)
	require.ErrorIs(t, err, context.Canceled)
	old := strings.Replace(first[2].Position, "token=d1", "token=old", 1)

	got, err := f.run(old, 3)
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, got, 3)
	require.Equal(t, []string{"read 1", "read 2"}, ops(got[0]))
	require.Equal(t, []string{"read 5"}, ops(got[2]))
	for _, b := range got {
		require.True(t, b.Snapshot, "a full sync again")
	}
	require.Equal(t, "delta "+f.srv.URL+"/items/delta?token=d1", linkOf(t, got[2].Position))
	require.Contains(t, f.log.String(), "410 Gone")
	require.NotContains(t, f.log.String(), "token=old")
}

func TestGoneOnTheInitialURLIsAnError(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.on("", answer{status: http.StatusGone, body: `{}`})
	got, err := f.run("", 1)
	var se *httpsource.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusGone, se.Code)
	require.Empty(t, got)
}

func TestLinksKeepExpiringGivesUp(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.on("", nextPage(item("1", `{}`), "skiptoken=2"))
	f.on("skiptoken=2", answer{status: http.StatusGone})
	got, err := f.run("", 100)
	require.ErrorIs(t, err, httpsource.ErrUnavailable)
	require.ErrorContains(t, err, "410 Gone")
	require.Len(t, got, 4, "the first page, then three more full syncs cut short")
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	now := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	httpsource.SetNow(f.src, func() time.Time { return now })
	f.on("",
		answer{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "7"}},
		answer{status: http.StatusServiceUnavailable},
		answer{status: http.StatusServiceUnavailable},
		answer{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}},
		answer{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "86400"}},
		answer{status: http.StatusBadGateway, header: map[string]string{"Retry-After": "0"}},
		deltaPage(item("1", `{}`), "token=d1"))
	got, err := f.run("", 1)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, []string{"read 1"}, ops(got[0]))
	require.Equal(t, []time.Duration{
		7 * time.Second,  // Retry-After: 7
		2 * time.Second,  // no Retry-After: the backoff (1s went to the first)
		4 * time.Second,  // doubled
		90 * time.Second, // a date
		5 * time.Minute,  // capped
		0,                // Retry-After: 0
		poll,             // caught up
	}, f.waited())
	require.Len(t, f.asked(), 7)
}

func TestRetriesAreBounded(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *httpsource.Config) { c.Retries = 2 })
	f.on("", answer{status: http.StatusServiceUnavailable})
	got, err := f.run("", 1)
	require.ErrorIs(t, err, httpsource.ErrUnavailable)
	require.ErrorContains(t, err, "503 Service Unavailable, 3 times in a row")
	require.Empty(t, got)
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second}, f.waited())
}

func TestCancelStopsAWait(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.on("", answer{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "300"}})
	// The real sleep, once the source asked for it.
	waiting := make(chan time.Duration, 1)
	httpsource.SetSleep(f.src, func(ctx context.Context, d time.Duration) error {
		waiting <- d
		return httpsource.Sleep(ctx, d)
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error)
	go func() {
		done <- f.src.Run(ctx, "", func(context.Context, pipeline.Batch) error { return nil })
	}()
	require.Equal(t, 5*time.Minute, <-waiting)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

func TestUnauthorizedIsAnErrorWithoutSecrets(t *testing.T) {
	t.Parallel()
	const wrong = "Bearer wrong-but-secret-credential"
	f := setup(t, func(c *httpsource.Config) { c.Headers = map[string]string{"Authorization": wrong} })
	f.fullSync()
	pos := "http:" + `{"link":"` + f.srv.URL + `/items/delta?token=SECRETDELTATOKEN","phase":"delta","from":"` + httpsource.URLID(f.url()) + `"}`
	got, err := f.run(pos, 1)
	require.Empty(t, got)
	var se *httpsource.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusUnauthorized, se.Code)
	msg := err.Error()
	require.Contains(t, msg, "401 Unauthorized")
	require.Contains(t, msg, f.srv.URL+"/items/delta")
	require.Contains(t, msg, "check the credentials")
	require.Contains(t, msg, "InvalidAuthenticationToken", "the answer's excerpt")
	for _, secret := range []string{"wrong-but-secret-credential", "SECRETDELTATOKEN"} {
		require.NotContains(t, msg, secret)
		require.NotContains(t, f.log.String(), secret)
	}
}

func TestHeaderFuncGivesTheCredentials(t *testing.T) {
	t.Parallel()
	calls := 0
	f := setup(t, func(c *httpsource.Config) {
		c.Headers = map[string]string{"Authorization": "Bearer stale"}
		c.HeaderFunc = func(ctx context.Context) (http.Header, error) {
			calls++
			return http.Header{"Authorization": {"Bearer " + token}}, nil
		}
	})
	f.fullSync()
	got, err := f.run("", 3)
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, got, 3)
	require.Equal(t, 3, calls)

	f2 := setup(t, func(c *httpsource.Config) {
		c.HeaderFunc = func(ctx context.Context) (http.Header, error) { return nil, errors.New("token endpoint down") }
	})
	_, err = f2.run("", 1)
	require.ErrorContains(t, err, "HeaderFunc: token endpoint down")
}

func TestBadPagesAreErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"not JSON", `<html>sign in</html>`, "not a JSON object"},
		{"an array", `[1,2]`, "not a JSON object"},
		{"two values", `{"value":[]} {}`, "more than one JSON value"},
		{"no items", `{"items":[],"@odata.deltaLink":"{base}/items/delta?token=d1"}`, `no member "value"`},
		{"items not an array", `{"value":{"id":"1"},"@odata.deltaLink":"{base}/items/delta?token=d1"}`, `"value" is not an array`},
		{"item not an object", `{"value":[{"id":"1"},"2"],"@odata.deltaLink":"{base}/items/delta?token=d1"}`, "item 1 is a string, not a JSON object"},
		{"item without key", `{"value":[{"id":"1"},{"Title":"x"}],"@odata.deltaLink":"{base}/items/delta?token=d1"}`, `item 1 has no key field "id"`},
		{"object key", `{"value":[{"id":{"a":1}}],"@odata.deltaLink":"{base}/items/delta?token=d1"}`, `key field "id" is an object`},
		{"no link", `{"value":[{"id":"1"}]}`, `neither "@odata.nextLink" nor "@odata.deltaLink"`},
		{"link not a string", `{"value":[],"@odata.nextLink":42}`, `"@odata.nextLink" is not a link`},
		{"link to another host", `{"value":[],"@odata.nextLink":"https://elsewhere.example/items?skiptoken=2"}`, "another host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, nil)
			f.on("", nextPage(item("1", `{}`), "skiptoken=2"))
			f.on("skiptoken=2", answer{body: tc.body})
			got, err := f.run("", 10)
			require.ErrorIs(t, err, httpsource.ErrBadPage)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, "page 2 (GET "+f.srv.URL+"/items/delta?…)")
			require.Len(t, got, 1, "the good page only")
		})
	}
}

func TestRelativeLinksAreResolved(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.on("", answer{body: `{"value":[{"id":1}],"@odata.nextLink":"delta?skiptoken=2"}`})
	f.on("skiptoken=2", answer{body: `{"value":[{"id":2}],"@odata.deltaLink":"/items/delta?token=d1"}`})
	got, err := f.run("", 2)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, []string{"read 1"}, ops(got[0]))
	require.Equal(t, json.Number("1"), got[0].Changes[0].Key["id"], "numbers as json.Number")
	require.Equal(t, "delta "+f.srv.URL+"/items/delta?token=d1", linkOf(t, got[1].Position))
}

func TestEmptyFullSyncHandsOverItsDeltaLink(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.on("", nextPage("", "skiptoken=2"))
	f.on("skiptoken=2", deltaPage("", "token=d1"))
	got, err := f.run("", 1)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, got[0].Changes)
	require.True(t, got[0].Snapshot)
	require.Equal(t, "delta "+f.srv.URL+"/items/delta?token=d1", linkOf(t, got[0].Position))
	require.Equal(t, []string{"", "skiptoken=2"}, f.asked(), "the empty first page was not handed over")
}

func TestEmitErrorEndsRun(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.fullSync()
	boom := errors.New("boom")
	calls := 0
	err := f.src.Run(t.Context(), "", func(context.Context, pipeline.Batch) error {
		calls++
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, 1, calls)
	require.Equal(t, []string{""}, f.asked())
}

func TestColumnsAreInferredOrDeclared(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *httpsource.Config) { c.Key = []string{"site", "id"} })
	f.on("", deltaPage(`{"site":"s","id":1,"n":1,"b":true,"x":null,"mixed":1,"arr":[1],"@odata.etag":"e","f@odata.type":"t"},`+
		`{"site":"s","id":2,"n":2.5,"b":false,"x":null,"mixed":"one"}`, "token=d1"))
	got, err := f.run("", 1)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, []pipeline.Column{
		{Name: "site", Type: "text", Key: true}, {Name: "id", Type: "numeric", Key: true},
		{Name: "arr", Type: "jsonb"}, {Name: "b", Type: "boolean"}, {Name: "mixed", Type: "text"},
		{Name: "n", Type: "numeric"}, {Name: "x", Type: "text"},
	}, got[0].Tables["sharepoint.orders"].Columns)
	require.Equal(t, pipeline.Row{"site": "s", "id": json.Number("1")}, got[0].Changes[0].Key)

	declared := []pipeline.Column{{Name: "id", Type: "int8"}, {Name: "n", Type: "numeric(10,2)"}}
	g := setup(t, func(c *httpsource.Config) { c.Columns = declared })
	g.on("", deltaPage(`{"id":1,"n":1,"other":"x"}`, "token=d1"))
	got, err = g.run("", 1)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, []pipeline.Column{{Name: "id", Type: "int8", Key: true}, {Name: "n", Type: "numeric(10,2)"}},
		got[0].Tables["sharepoint.orders"].Columns)
	require.Equal(t, pipeline.Row{"id": json.Number("1"), "n": json.Number("1"), "other": "x"}, got[0].Changes[0].After)
}

func TestAPositionOfAnotherURLStartsOver(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.fullSync()
	pos := "http:" + `{"link":"` + f.srv.URL + `/items/delta?token=d9","phase":"delta","from":"` + httpsource.URLID("https://other/") + `"}`
	got, err := f.run(pos, 1)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, []string{"read 1", "read 2"}, ops(got[0]))
	require.NotContains(t, f.asked(), "token=d9")

	_, err = f.run("lsn:0/16B3748", 1)
	require.ErrorIs(t, err, httpsource.ErrBadPosition)
	elsewhere := "http:" + `{"link":"https://elsewhere.example/items/delta?token=d9","phase":"delta","from":"` + httpsource.URLID(f.url()) + `"}`
	_, err = f.run(elsewhere, 1)
	require.ErrorIs(t, err, httpsource.ErrBadPosition)
	require.ErrorContains(t, err, "https://elsewhere.example")
	require.NotContains(t, err.Error(), "token=d9")
}

func TestRedirectsToAnotherHostAreRefused(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the other host was asked, with Authorization %q", r.Header.Get("Authorization"))
	}))
	t.Cleanup(other.Close)
	f := setup(t, nil)
	f.on("", answer{status: http.StatusFound, header: map[string]string{"Location": other.URL + "/steal"}})
	_, err := f.run("", 1)
	require.ErrorContains(t, err, "redirect to another host refused")
}
