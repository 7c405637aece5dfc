package transform_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/transform"
)

// Numbers keep their exact value through filters and computed columns,
// and come out as json.Number, never as floats written 1e+06.
func TestNumbers(t *testing.T) {
	t.Parallel()
	row := pipeline.Row{
		"id":     num("9007199254740993"), // 2^53+1: a float64 would make it ...992
		"huge":   num("123456789012345678901234567890"),
		"price":  num("12.50"),
		"text":   "12.50", // a numeric column a text source gives as a string
		"count":  num("1000"),
		"ratio":  num("0.1"),
		"nested": map[string]any{"n": num("9007199254740993"), "list": []any{num("1"), num("2.50")}},
	}
	tests := []struct {
		expr string
		want any
	}{
		{`.id`, num("9007199254740993")},
		{`.id + 0`, num("9007199254740993")},
		{`.id + 1`, num("9007199254740994")},
		{`.huge`, num("123456789012345678901234567890")},
		{`.huge * 10`, num("1234567890123456789012345678900")},
		{`.price`, num("12.50")},
		{`.text`, "12.50"},
		{`.text | tonumber`, num("12.5")},
		{`.price * 2`, num("25")},
		{`.count * 1000`, num("1000000")},
		{`1e6`, num("1000000")},
		{`.count / 3`, num("333.3333333333333")},
		{`.ratio * 3`, num("0.30000000000000004")},
		{`1e21 * 10`, num("1e+22")},
		{`0.0000001`, num("1e-07")},
		{`-0`, num("0")},
		{`.nested`, map[string]any{"n": num("9007199254740993"), "list": []any{num("1"), num("2.50")}}},
		{`.nested | .list |= map(. * 2)`, map[string]any{"n": num("9007199254740993"), "list": []any{num("2"), num("5")}}},
		{`[.id, .price, .text]`, []any{num("9007199254740993"), num("12.50"), "12.50"}},
		{`.id | tostring`, "9007199254740993"},
		{`.price | tostring`, "12.50"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"t": {
				Filter:  `.id == 9007199254740993 and .id != 9007199254740992 and .price == 12.5 and .huge > 1e29`,
				Compute: map[string]transform.Computed{"out": {Expr: tt.expr}},
			}}})
			c := pipeline.Change{Op: pipeline.Insert, Table: "t", Key: pipeline.Row{"id": row["id"]}, After: row}
			_, kept, rejected := apply(t, tr, changeSet(), c)
			require.Empty(t, rejected)
			require.Len(t, kept, 1, "the filter compares exactly")
			require.Equal(t, tt.want, kept[0].After["out"])
			// The other columns are the very values given.
			for col, v := range row {
				require.Equal(t, v, kept[0].After[col])
			}
			// And it all survives a change set's encoding.
			data, err := pipeline.Encode(kept)
			require.NoError(t, err)
			back, err := pipeline.Decode(data)
			require.NoError(t, err)
			require.Equal(t, kept, back)
		})
	}
}

// A row of Go numbers (which decoded change sets never hold, but a caller
// could give) is converted for jq; a value that is not JSON rejects its
// change instead of crashing jq.
func TestGoValues(t *testing.T) {
	t.Parallel()
	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"t": {
		Filter:  `.a > 1`,
		Compute: map[string]transform.Computed{"sum": {Expr: `.a + .b + .d`}, "half": {Expr: `.c`}},
	}}})
	good := pipeline.Change{Op: pipeline.Insert, Table: "t", Key: pipeline.Row{"a": int64(2)}, After: pipeline.Row{"a": int64(2), "b": uint64(1 << 63), "c": float32(0.5), "d": pipeline.Row{"x": int32(1)}["x"]}}
	bad := pipeline.Change{Op: pipeline.Insert, Table: "t", Key: pipeline.Row{"a": int64(2)}, After: pipeline.Row{"a": int64(2), "b": struct{}{}}}
	_, kept, rejected := apply(t, tr, changeSet(), good, bad)
	require.Len(t, kept, 1)
	require.Equal(t, json.Number("9223372036854775811"), kept[0].After["sum"])
	require.Equal(t, json.Number("0.5"), kept[0].After["half"])
	require.Equal(t, int64(2), kept[0].After["a"], "the row's own values are as given")
	require.Len(t, rejected, 1)
	require.Contains(t, rejected[0].Reason, "column b: a Go value of type struct {} is not a JSON value")
}
