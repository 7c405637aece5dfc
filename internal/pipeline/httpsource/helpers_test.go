package httpsource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/httpsource"
	"github.com/sluicehq/sluice/internal/testlog"
)

// token is the credential the fake API wants, as "Bearer <token>".
const token = "s3cret-bearer-token-0123456789"

// answer is what the fake answers a request.
type answer struct {
	status int // default 200
	header map[string]string
	body   string // JSON; "{base}" stands for the server's URL
}

// fake is a Graph-like delta API on loopback: /items/delta answers
// pages by query ("" for the initial URL, "skiptoken=2", "token=d1"...).
// A query it has no answer for is a 404. Answers given as a list are used
// in turn, the last one for ever.
type fake struct {
	t   *testing.T
	srv *httptest.Server
	mu  sync.Mutex
	// answers by query.
	answers map[string][]answer
	// requests are the queries asked, in order.
	requests []string
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t, answers: map[string][]answer{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// on sets the answers to query.
func (f *fake) on(query string, as ...answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[query] = as
}

// page is a 200 answer of items (JSON objects) and a link: next or
// delta, by query.
func page(items, linkField, linkQuery string) answer {
	return answer{body: fmt.Sprintf(`{"@odata.context":"{base}/$metadata","value":[%s],%q:"{base}/items/delta?%s"}`, items, linkField, linkQuery)}
}

func nextPage(items, query string) answer  { return page(items, "@odata.nextLink", query) }
func deltaPage(items, query string) answer { return page(items, "@odata.deltaLink", query) }

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.URL.RawQuery)
	as, ok := f.answers[r.URL.RawQuery]
	var a answer
	if ok {
		a = as[0]
		if len(as) > 1 {
			f.answers[r.URL.RawQuery] = as[1:]
		}
	}
	f.mu.Unlock()
	if r.URL.Path != "/items/delta" {
		ok = false
	}
	if r.Header.Get("Authorization") != "Bearer "+token {
		// Echo what was sent, as careless servers do: errors must still
		// not show it.
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":{"code":"InvalidAuthenticationToken","message":"token %q is not valid for %s"}}`,
			r.Header.Get("Authorization"), r.URL.String())
		return
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"code":"itemNotFound","message":"no answer for %q"}}`, r.URL.RawQuery)
		return
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(max(a.status, http.StatusOK))
	fmt.Fprint(w, strings.ReplaceAll(a.body, "{base}", f.srv.URL))
}

func (f *fake) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// url is the initial URL.
func (f *fake) url() string { return f.srv.URL + "/items/delta" }

// fixture is a source of a fake API, the waits it asked for and its log.
type fixture struct {
	*fake
	src *httpsource.Source
	cfg httpsource.Config
	log *testlog.Buffer
	mu  sync.Mutex
	// waits are the waits the source asked for (poll intervals, retries).
	waits []time.Duration
	// onWait, when set, is called with each wait.
	onWait func(time.Duration)
}

const poll = 42 * time.Second

// setup is a source of a fresh fake API; change, when set, changes the
// config first.
func setup(t *testing.T, change func(*httpsource.Config)) *fixture {
	t.Helper()
	f := &fixture{fake: newFake(t)}
	logger, buf := testlog.New(slog.LevelDebug)
	f.log = buf
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("source's log:\n%s", buf)
		}
	})
	f.cfg = httpsource.Config{
		URL:          f.url(),
		Table:        "sharepoint.orders",
		Headers:      map[string]string{"Authorization": "Bearer " + token},
		PollInterval: poll,
		Client:       f.srv.Client(),
		Logger:       logger,
	}
	if change != nil {
		change(&f.cfg)
	}
	src, err := httpsource.New(f.cfg)
	require.NoError(t, err)
	httpsource.SetSleep(src, func(ctx context.Context, d time.Duration) error {
		f.mu.Lock()
		f.waits = append(f.waits, d)
		on := f.onWait
		f.mu.Unlock()
		if on != nil {
			on(d)
		}
		return ctx.Err()
	})
	f.src = src
	return f
}

func (f *fixture) waited() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

// run runs the source from after until it has handed over n batches
// (then it is cancelled) or it returns; it returns the batches and Run's
// error.
func (f *fixture) run(after string, n int) ([]pipeline.Batch, error) {
	ctx, cancel := context.WithCancel(f.t.Context())
	defer cancel()
	var got []pipeline.Batch
	err := f.src.Run(ctx, after, func(ctx context.Context, b pipeline.Batch) error {
		require.NoError(f.t, ctx.Err(), "a batch after the source was cancelled")
		got = append(got, b)
		if len(got) == n {
			cancel()
		}
		return nil
	})
	return got, err
}

// item is a Graph list item.
func item(id string, fields string) string {
	return fmt.Sprintf(`{"@odata.etag":"\"%s,1\"","id":%q,"fields":%s}`, id, id, fields)
}

// removed is a deleted item in a delta.
func removed(id string) string {
	return fmt.Sprintf(`{"id":%q,"@removed":{"reason":"deleted"}}`, id)
}

// ops are a batch's changes as "op key" strings.
func ops(b pipeline.Batch) []string {
	var out []string
	for _, c := range b.Changes {
		out = append(out, fmt.Sprintf("%s %v", c.Op, c.Key["id"]))
	}
	return out
}

// linkOf is a position's link.
func linkOf(t *testing.T, pos string) string {
	t.Helper()
	var p struct{ Link, Phase string }
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(pos, "http:")), &p), pos)
	return p.Phase + " " + p.Link
}
