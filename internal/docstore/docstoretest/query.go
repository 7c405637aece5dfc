package docstoretest

import (
	"fmt"
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
