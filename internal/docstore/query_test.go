package docstore_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
)

func TestParseQuery(t *testing.T) {
	q, err := docstore.ParseQuery(`SELECT * FROM r WHERE r.a.b = 'x' AND NOT (r["c d"] IN (1, -2.5e1, null) OR EXISTS(r.e)) ORDER BY r._ts DESC LIMIT 5`, nil)
	require.NoError(t, err)
	require.Equal(t, docstore.Query{
		Where: docstore.Logical{Op: "AND",
			Left: docstore.Compare{Path: []string{"a", "b"}, Op: "=", Value: "x"},
			Right: docstore.Not{X: docstore.Logical{Op: "OR",
				Left:  docstore.In{Path: []string{"c d"}, Values: []any{1.0, -25.0, nil}},
				Right: docstore.Exists{Path: []string{"e"}}}}},
		OrderBy: []string{"_ts"}, Desc: true, Limit: 5,
	}, q)

	q, err = docstore.ParseQuery(`c.x <> @v`, map[string]any{"v": 3})
	require.NoError(t, err)
	require.Equal(t, docstore.Compare{Path: []string{"x"}, Op: "!=", Value: 3.0}, q.Where)
	q, err = docstore.ParseQuery(`ORDER BY c.x`, nil)
	require.NoError(t, err)
	require.Nil(t, q.Where)

	for _, bad := range []string{
		`c.x =`, `c.x = 1 extra`, `SELECT c FROM c`, `c = 1`, `c.x IN (1,`, `STARTSWITH(c.x, 1)`,
		`c.x = 'unterminated`, `c.x # 1`, `LIMIT 0`, `LIMIT x`, strings.Repeat("(", 500) + "c.x = 1" + strings.Repeat(")", 500),
		`SELECT * FROM c WHERE d.x = 1`, `c.x = @missing`,
	} {
		_, err := docstore.ParseQuery(bad, nil)
		require.ErrorIs(t, err, docstore.ErrInvalid, bad)
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		`SELECT * FROM c WHERE c.a = 1`, `c.a IN ("x", 'y') OR NOT EXISTS(c.b)`, `STARTSWITH(c["n"], "p") ORDER BY c.t DESC LIMIT 3`,
		`((c.a < -1.5e3))`, `c.a != @p`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := docstore.ParseQuery(s, map[string]any{"p": "v"})
		if err == nil && q.Limit < 0 {
			t.Fatalf("negative limit from %q", s)
		}
	})
}
