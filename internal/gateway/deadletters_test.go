package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/gateway"
)

// poisonFixture is a queue "orders" with two dead letters in its poison
// queue, from functions f1 and f2.
func poisonFixture(t *testing.T) (*queueFixture, []gateway.DeadLetterJSON) {
	t.Helper()
	f := setupQueues(t)
	f.createQueue(t, `{"name":"orders"}`)
	store := &deadletter.Store{Queues: f.queues}
	for i, fn := range []string{"f1", "f2"} {
		require.NoError(t, store.Poison(context.Background(), deadletter.Letter{Function: fn, Reason: "boom " + fn, Attempts: 5,
			Source: deadletter.Source{Kind: "queue", Queue: "orders", MessageID: uint64(i + 1)},
			Body:   fmt.Appendf(nil, "order %d", i), Properties: map[string]string{"n": fmt.Sprint(i)}}))
	}
	var list struct {
		DeadLetters []gateway.DeadLetterJSON `json:"dead_letters"`
	}
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/deadletters", nil)
	require.Len(t, list.DeadLetters, 2)
	return f, list.DeadLetters
}

func TestDeadLetterRoutes(t *testing.T) {
	t.Parallel()
	f, all := poisonFixture(t)
	require.Equal(t, "orders-poison", all[0].DeadLetterQueue)
	require.Equal(t, "order 0", *all[0].BodyText)
	require.Equal(t, "boom f1", all[0].Reason)

	var filtered struct {
		DeadLetters []gateway.DeadLetterJSON `json:"dead_letters"`
	}
	f.doJSON(t, http.StatusOK, &filtered, "GET", "/api/v1/deadletters?function=f2&limit=5", nil)
	require.Len(t, filtered.DeadLetters, 1)
	require.Equal(t, "f2", filtered.DeadLetters[0].Function)

	var one gateway.DeadLetterJSON
	f.doJSON(t, http.StatusOK, &one, "GET", fmt.Sprintf("/api/v1/deadletters/orders-poison/%d", all[1].ID), nil)
	require.Equal(t, "order 1", string(one.Body))

	var redriven map[string]int
	f.doJSON(t, http.StatusOK, &redriven, "POST", "/api/v1/deadletters/redrive",
		fmt.Appendf(nil, `{"queue":"orders-poison","ids":[%d]}`, all[0].ID), jsonType...)
	require.Equal(t, map[string]int{"redriven": 1}, redriven)
	msgs, err := f.queues.Receive(context.Background(), "orders", 10, time.Second)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, "order 0", string(msgs[0].Body))
	require.Equal(t, "1", msgs[0].Properties[deadletter.PropRedrive])

	var purged map[string]int
	f.doJSON(t, http.StatusOK, &purged, "POST", "/api/v1/deadletters/purge", []byte(`{"all":true}`), jsonType...)
	require.Equal(t, map[string]int{"purged": 1}, purged)
	st, err := f.queues.Stats(context.Background(), "orders-poison")
	require.NoError(t, err)
	require.Zero(t, st.Depth)
}

func TestDeadLetterRouteErrors(t *testing.T) {
	t.Parallel()
	f, all := poisonFixture(t)
	cases := []struct {
		name, method, path, body string
		code                     int
		parts                    []string
	}{
		{"bad limit", "GET", "/api/v1/deadletters?limit=0", "", 400, []string{"limit"}},
		{"not a dead-letter queue", "GET", "/api/v1/deadletters?queue=orders", "", 400, []string{"dead letters are in"}},
		{"bad id", "GET", "/api/v1/deadletters/orders-poison/x", "", 400, []string{"want a number"}},
		{"unknown id", "GET", "/api/v1/deadletters/orders-poison/999", "", 404, []string{"dead letter orders-poison/999 not found"}},
		{"unknown dead-letter queue", "GET", "/api/v1/deadletters/nope-poison/1", "", 404, []string{"dead letter nope-poison/1 not found"}},
		{"redrive unknown id", "POST", "/api/v1/deadletters/redrive", fmt.Sprintf(`{"queue":"orders-poison","ids":[%d,999]}`, all[0].ID), 404,
			[]string{"dead letter orders-poison/999 not found"}},
		{"redrive in an unknown queue", "POST", "/api/v1/deadletters/redrive", `{"queue":"nope-poison","ids":[1]}`, 404,
			[]string{"dead letter nope-poison/1 not found"}},
		{"redrive from an unknown queue", "POST", "/api/v1/deadletters/redrive", `{"queue":"nope-poison"}`, 404,
			[]string{"dead-letter queue nope-poison not found"}},
		{"purge unknown id", "POST", "/api/v1/deadletters/purge", fmt.Sprintf(`{"queue":"orders-poison","ids":[%d,999]}`, all[0].ID), 404,
			[]string{"dead letter orders-poison/999 not found"}},
		{"redrive nothing selected", "POST", "/api/v1/deadletters/redrive", `{}`, 400, []string{`"all": true`}},
		{"redrive ids without queue", "POST", "/api/v1/deadletters/redrive", fmt.Sprintf(`{"ids":[%d]}`, all[0].ID), 400, []string{"give the queue too"}},
		{"redrive malformed", "POST", "/api/v1/deadletters/redrive", `{"queue":`, 400, nil},
		{"redrive unknown field", "POST", "/api/v1/deadletters/redrive", `{"everything":true}`, 400, nil},
		{"purge nothing selected", "POST", "/api/v1/deadletters/purge", `{}`, 400, []string{`"all": true`}},
		{"purge not a dead-letter queue", "POST", "/api/v1/deadletters/purge", `{"queue":"orders"}`, 400, []string{"dead letters are in"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			var hdr []string
			if c.body != "" {
				body, hdr = []byte(c.body), jsonType
			}
			r := f.do(t, c.method, c.path, body, hdr...)
			requireError(t, r, c.code, c.parts...)
			st, err := f.queues.Stats(context.Background(), "orders-poison")
			require.NoError(t, err)
			require.Equal(t, uint64(2), st.Depth, "a rejected request changes nothing")
			st, err = f.queues.Stats(context.Background(), "orders")
			require.NoError(t, err)
			require.Zero(t, st.Depth)
		})
	}
}

// TestRedriveIsAllOrNothing: when one selected letter cannot be redriven,
// none is, and the answer names it.
func TestRedriveIsAllOrNothing(t *testing.T) {
	t.Parallel()
	f, all := poisonFixture(t)
	store := &deadletter.Store{Queues: f.queues}
	require.NoError(t, store.Poison(context.Background(), deadletter.Letter{Function: "f3", Reason: "boom",
		Source: deadletter.Source{Kind: "queue", Queue: "gone"}, Body: []byte("lost")}))
	var list struct {
		DeadLetters []gateway.DeadLetterJSON `json:"dead_letters"`
	}
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/deadletters?queue=gone-poison", nil)
	require.Len(t, list.DeadLetters, 1)
	lost := list.DeadLetters[0]

	r := f.do(t, "POST", "/api/v1/deadletters/redrive", []byte(`{"all":true}`), jsonType...)
	requireError(t, r, http.StatusBadRequest, "nothing was redriven", "of the 3 selected dead letters",
		fmt.Sprintf("gone-poison/%d: queue gone no longer exists", lost.ID))
	st, err := f.queues.Stats(context.Background(), "orders")
	require.NoError(t, err)
	require.Zero(t, st.Depth, "nothing was sent back")
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/deadletters", nil)
	require.Len(t, list.DeadLetters, 3, "nothing was removed")

	// The letters that can be are redriven when selected alone.
	var out map[string]int
	f.doJSON(t, http.StatusOK, &out, "POST", "/api/v1/deadletters/redrive", fmt.Appendf(nil, `{"queue":"orders-poison","ids":[%d,%d]}`, all[0].ID, all[1].ID), jsonType...)
	require.Equal(t, 2, out["redriven"])
}

// TestDeadLetterPages: with order, GET /api/v1/deadletters lists the
// letters of every dead-letter queue newest (or oldest) first and pages
// with the cursors older and newer; without, it answers as before order
// existed (oldest first per queue, no cursors), which the CLI relies on.
func TestDeadLetterPages(t *testing.T) {
	t.Parallel()
	f := setupQueues(t)
	store := &deadletter.Store{Queues: f.queues}
	// Letters 1 to 5, by turns in sluice-deadletters and orders-poison.
	for i := 1; i <= 5; i++ {
		l := deadletter.Letter{Function: "f", Reason: "boom", Body: fmt.Appendf(nil, "%d", i)}
		if i%2 == 0 {
			l.Source = deadletter.Source{Kind: "queue", Queue: "orders"}
			require.NoError(t, store.Poison(context.Background(), l))
		} else {
			l.Source = deadletter.Source{Kind: "hub", Hub: "in"}
			require.NoError(t, store.Put(context.Background(), []deadletter.Letter{l}))
		}
	}
	list := func(query string) (gateway.DeadLetterListJSON, []string) {
		t.Helper()
		var out gateway.DeadLetterListJSON
		f.doJSON(t, http.StatusOK, &out, "GET", "/api/v1/deadletters?"+query, nil)
		var got []string
		for _, l := range out.DeadLetters {
			got = append(got, *l.BodyText)
		}
		return out, got
	}

	// As before: oldest first per queue, in the queues' order, no cursors.
	legacy, got := list("limit=4")
	require.Equal(t, []string{"2", "4", "1", "3"}, got, "orders-poison, then sluice-deadletters")
	require.Empty(t, legacy.Older)
	require.Empty(t, legacy.Newer)
	r := f.do(t, "GET", "/api/v1/deadletters", nil)
	require.NotContains(t, string(r.Body), `"older"`)
	require.NotContains(t, string(r.Body), `"newer"`)

	// Newest first, two at a time, to the oldest and back.
	p1, got := list("order=newest&limit=2")
	require.Equal(t, []string{"5", "4"}, got)
	require.NotEmpty(t, p1.Older)
	require.Empty(t, p1.Newer, "the newest page")
	p2, got := list("limit=2&before=" + url.QueryEscape(p1.Older))
	require.Equal(t, []string{"3", "2"}, got, "order newest with a cursor")
	require.NotEmpty(t, p2.Newer)
	p3, got := list("order=newest&limit=2&before=" + url.QueryEscape(p2.Older))
	require.Equal(t, []string{"1"}, got)
	require.Empty(t, p3.Older, "the oldest page")
	_, got = list("order=newest&limit=2&after=" + url.QueryEscape(p3.Newer))
	require.Equal(t, []string{"3", "2"}, got)

	// A letter kept meanwhile: the pages stay, the newest page shows it.
	require.NoError(t, store.Put(context.Background(), []deadletter.Letter{{Function: "f", Reason: "boom", Body: []byte("6"),
		Source: deadletter.Source{Kind: "hub", Hub: "in"}}}))
	_, got = list("order=newest&limit=2&before=" + url.QueryEscape(p1.Older))
	require.Equal(t, []string{"3", "2"}, got)
	_, got = list("order=newest&limit=2")
	require.Equal(t, []string{"6", "5"}, got)

	// Oldest first, filtered.
	_, got = list("order=oldest&queue=orders-poison")
	require.Equal(t, []string{"2", "4"}, got)

	for _, c := range []struct{ query, want string }{
		{"order=sideways", `order "sideways"`},
		{"before=x&after=y", "not both"},
		{"before=orders:1", "before: cursor"},
		{"order=newest&after=sluice-deadletters:z", "after: cursor"},
	} {
		requireError(t, f.do(t, "GET", "/api/v1/deadletters?"+c.query, nil), http.StatusBadRequest, c.want)
	}
}
