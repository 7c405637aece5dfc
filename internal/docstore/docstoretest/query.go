package docstoretest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
)

// testQuery runs when the store implements docstore.Querier.
func testQuery(t *testing.T, s docstore.Store) {
	q, ok := s.(docstore.Querier)
	if !ok {
		t.Skip("this backend does not run queries yet")
	}
	container(t, s, "c")
	var docs [][]byte
	for i := range 30 {
		mode := []string{"normal", "flight", "sleep"}[i%3]
		extra := ""
		if i%5 == 0 {
			extra = `,"alert":true`
		}
		docs = append(docs, fmt.Appendf(nil, `{"id":"d%02d","deviceId":"dev-%d","battery":%d,"mode":%q,"pos":{"lat":%d},"name":"unit-%02d"%s}`,
			i, i%4, 100-3*i, mode, i, i, extra))
	}
	docs = append(docs, []byte(`{"id":"s","deviceId":"dev-0","battery":"low"}`)) // a string where others have numbers
	_, err := s.BulkUpsert(bg, "c", docs)
	require.NoError(t, err)

	ids := func(text string, params map[string]any, pk *string) []string {
		t.Helper()
		var out []string
		req := docstore.QueryRequest{Text: text, Params: params, PartitionKey: pk, MaxItems: 7}
		for {
			page, err := q.Query(bg, "c", req)
			require.NoError(t, err, text)
			for _, d := range page.Documents {
				out = append(out, d.ID)
			}
			if page.Continuation == "" {
				return out
			}
			req.Continuation = page.Continuation
		}
	}
	require.Len(t, ids("", nil, nil), 31, "an empty query returns everything, paged")
	require.ElementsMatch(t, []string{"d27", "d28", "d29"}, ids(`SELECT * FROM c WHERE c.battery < 20`, nil, nil), "numbers compare with numbers only")
	require.Equal(t, []string{"s"}, ids(`c.battery = "low"`, nil, nil))
	require.ElementsMatch(t, []string{"d00", "d03"}, ids(`c.battery >= @min AND c.mode = "normal"`, map[string]any{"min": 91}, nil))
	require.Len(t, ids(`c.mode IN ("flight", "sleep")`, nil, nil), 20)
	require.Len(t, ids(`c.mode != "normal"`, nil, nil), 20, "a missing field matches no comparison")
	require.ElementsMatch(t, []string{"d00", "d05", "d10", "d15", "d20", "d25"}, ids(`EXISTS(c.alert)`, nil, nil))
	require.Len(t, ids(`NOT EXISTS(c.alert)`, nil, nil), 25)
	require.ElementsMatch(t, []string{"d00", "d05"}, ids(`c.alert = true AND c.pos.lat < 10`, nil, nil))
	require.ElementsMatch(t, []string{"d10", "d11", "d12"}, ids(`STARTSWITH(c.name, "unit-1") AND c["pos"]["lat"] <= 12`, nil, nil))
	require.ElementsMatch(t, []string{"d03", "d06"}, ids(`(c.battery > 80 OR c.mode = "x") AND c.mode = "normal" AND NOT c.battery = 100`, nil, nil))
	pk := "dev-1"
	require.Equal(t, []string{"d01", "d05", "d09", "d13", "d17", "d21", "d25", "d29"}, ids(`c.battery >= 0`, nil, &pk), "within one partition")

	ordered := ids(`SELECT * FROM c WHERE c.pos.lat >= 0 ORDER BY c.battery DESC`, nil, nil)
	require.Len(t, ordered, 30)
	require.Equal(t, "d00", ordered[0])
	require.Equal(t, "d29", ordered[29])
	require.Equal(t, []string{"d29", "d28", "d27", "d26"}, ids(`c.pos.lat >= 0 ORDER BY c.battery LIMIT 4`, nil, nil), "LIMIT across pages")
	require.Len(t, ids(`c.pos.lat >= 0 LIMIT 10`, nil, nil), 10)

	for _, bad := range []docstore.QueryRequest{
		{Text: `c.battery <`},
		{Text: `SELECT id FROM c`},
		{Text: `SELECT * FROM c WHERE x.battery = 1`},
		{Text: `c.battery = @nope`},
		{Text: `c.alert < true`},
		{Text: `c.battery = 1`, MaxItems: 5000},
		{Text: `c.battery = 1`, Continuation: "garbage!"},
	} {
		_, err := q.Query(bg, "c", bad)
		require.ErrorIs(t, err, docstore.ErrInvalid, "%+v", bad)
	}
	_, err = q.Query(bg, "nope", docstore.QueryRequest{})
	require.ErrorIs(t, err, docstore.ErrNotFound)
}

// testQueryLimits: a query up to docstore.MaxQueryTerms terms runs, on
// every backend (SQLite refuses SQL nested 1,000 deep); one over that, or
// over docstore.MaxQueryBytes, is refused naming the limit.
func testQueryLimits(t *testing.T, s docstore.Store) {
	q, ok := s.(docstore.Querier)
	if !ok {
		t.Skip("this backend does not run queries yet")
	}
	container(t, s, "c")
	_, err := s.BulkUpsert(bg, "c", [][]byte{[]byte(`{"id":"a","deviceId":"d","n":7}`), []byte(`{"id":"b","deviceId":"d","n":8}`)})
	require.NoError(t, err)
	terms := func(n int, op string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf("c.n = %d", i)
		}
		return strings.Join(parts, " "+op+" ")
	}
	in := func(n int) string {
		vals := make([]string, n)
		for i := range vals {
			vals[i] = strconv.Itoa(i)
		}
		return "c.n IN (" + strings.Join(vals, ",") + ")"
	}
	for _, c := range []struct {
		text string
		want int
	}{
		{terms(docstore.MaxQueryTerms, "OR"), 2},
		{"(" + terms(docstore.MaxQueryTerms/2-1, "OR") + ") AND NOT (" + terms(docstore.MaxQueryTerms/2-2, "AND") + ")", 2},
		{in(docstore.MaxQueryTerms - 1), 2},
	} {
		page, err := q.Query(bg, "c", docstore.QueryRequest{Text: c.text})
		require.NoError(t, err, "%.80s", c.text)
		require.Len(t, page.Documents, c.want, "%.80s", c.text)
	}
	for _, text := range []string{
		terms(docstore.MaxQueryTerms+1, "OR"),
		in(docstore.MaxQueryTerms),
		in(10000),
	} {
		_, err := q.Query(bg, "c", docstore.QueryRequest{Text: text})
		require.ErrorIs(t, err, docstore.ErrInvalid)
		require.ErrorContains(t, err, "more than 1000 terms")
	}
	long := `c.s = "` + strings.Repeat("x", docstore.MaxQueryBytes) + `"`
	_, err = q.Query(bg, "c", docstore.QueryRequest{Text: long})
	require.ErrorIs(t, err, docstore.ErrInvalid)
	require.ErrorContains(t, err, fmt.Sprintf("it is %d bytes, over the limit of 65536 bytes", len(long)))
}

// stopAfter is a context that ends once its Err has been asked n times:
// a query that checks it per row stops partway, with no clock involved.
type stopAfter struct {
	context.Context
	mu   sync.Mutex
	left int
	done chan struct{}
}

func newStopAfter(n int) *stopAfter {
	return &stopAfter{Context: context.Background(), left: n, done: make(chan struct{})}
}

func (c *stopAfter) Done() <-chan struct{} { return c.done }

func (c *stopAfter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left > 0 {
		c.left--
		if c.left == 0 {
			close(c.done)
		}
	}
	if c.left == 0 {
		return context.Canceled
	}
	return nil
}

// testQueryCancel: a query stops when its context ends, before or while
// it reads its results.
func testQueryCancel(t *testing.T, s docstore.Store) {
	q, ok := s.(docstore.Querier)
	if !ok {
		t.Skip("this backend does not run queries yet")
	}
	container(t, s, "c")
	var docs [][]byte
	for i := range 500 {
		docs = append(docs, fmt.Appendf(nil, `{"id":"d%03d","deviceId":"dev-%d","n":%d}`, i, i%7, i))
	}
	_, err := s.BulkUpsert(bg, "c", docs)
	require.NoError(t, err)
	req := docstore.QueryRequest{Text: "c.n >= 0 OR c.n < 0", MaxItems: 1000}
	page, err := q.Query(bg, "c", req)
	require.NoError(t, err)
	require.Len(t, page.Documents, 500)

	ctx, cancel := context.WithCancel(bg)
	cancel()
	_, err = q.Query(ctx, "c", req)
	require.ErrorIs(t, err, context.Canceled, "a query whose client is gone does not run")

	// The context ends after a few checks: the query stops partway
	// through its 500 rows.
	stop := newStopAfter(20)
	page, err = q.Query(stop, "c", req)
	require.ErrorIs(t, err, context.Canceled, "the query stopped (it returned %d documents)", len(page.Documents))
}
