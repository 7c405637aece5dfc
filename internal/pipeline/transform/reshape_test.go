package transform_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/transform"
)

func TestReshape(t *testing.T) {
	t.Parallel()
	row := order("1", "open") // id, status, amount "12.50", customer "c1", note nil
	tests := []struct {
		name string
		tc   transform.TableConfig
		// after is what the row becomes; key what its Key becomes.
		after, key pipeline.Row
	}{
		{"nothing", transform.TableConfig{}, row, pipeline.Row{"id": num("1")}},
		{
			"include keeps the key", transform.TableConfig{Include: []string{"status", "nosuch"}},
			pipeline.Row{"id": num("1"), "status": "open"}, pipeline.Row{"id": num("1")},
		},
		{
			"exclude", transform.TableConfig{Exclude: []string{"note", "customer"}},
			pipeline.Row{"id": num("1"), "status": "open", "amount": "12.50"}, pipeline.Row{"id": num("1")},
		},
		{
			"rename, the key too", transform.TableConfig{Rename: map[string]string{"id": "order_id", "status": "state"}},
			pipeline.Row{"order_id": num("1"), "state": "open", "amount": "12.50", "customer": "c1", "note": nil}, pipeline.Row{"order_id": num("1")},
		},
		{
			"swap", transform.TableConfig{Include: []string{"status", "customer"}, Rename: map[string]string{"status": "customer", "customer": "status"}},
			pipeline.Row{"id": num("1"), "customer": "open", "status": "c1"}, pipeline.Row{"id": num("1")},
		},
		{
			"compute adds and replaces, kept by include", transform.TableConfig{
				Include: []string{"status"},
				Compute: map[string]transform.Computed{
					"status": {Expr: `.status | ascii_upcase`},
					"label":  {Expr: `"\(.customer):\(.id)"`},
					"twice":  {Expr: `(.amount | tonumber) * 2`, Type: "numeric"},
				},
			},
			pipeline.Row{"id": num("1"), "status": "OPEN", "label": "c1:1", "twice": num("25")}, pipeline.Row{"id": num("1")},
		},
		{
			"compute sees source names, then renamed", transform.TableConfig{
				Exclude: []string{"customer", "note", "amount"},
				Rename:  map[string]string{"status": "state", "who": "customer_name"},
				Compute: map[string]transform.Computed{"who": {Expr: `.customer + "/" + .status`}},
			},
			pipeline.Row{"id": num("1"), "state": "open", "customer_name": "c1/open"}, pipeline.Row{"id": num("1")},
		},
		{
			"compute an object", transform.TableConfig{Include: []string{"id"}, Compute: map[string]transform.Computed{"doc": {Expr: `{id, tags: [.status, 1.5, 10]}`, Type: "jsonb"}}},
			pipeline.Row{"id": num("1"), "doc": map[string]any{"id": num("1"), "tags": []any{"open", num("1.5"), num("10")}}}, pipeline.Row{"id": num("1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.orders": tt.tc}})
			before := order("1", "new")
			_, kept, rejected := apply(t, tr, changeSet(orders), update(before, row), del(row, "1"), del(nil, "1"))
			require.Empty(t, rejected)
			require.Len(t, kept, 3)
			require.Equal(t, tt.after, kept[0].After)
			require.Equal(t, tt.key, kept[0].Key)
			require.Equal(t, tt.key, kept[1].Key)
			require.Equal(t, tt.key, kept[2].Key)
			require.Equal(t, tt.after, kept[1].Before, "a delete's Before is shaped as an After")
			require.Nil(t, kept[2].Before)
			// Before, reshaped the same way: its keys are After's.
			require.Len(t, kept[0].Before, len(tt.after))
			for col := range tt.after {
				require.Contains(t, kept[0].Before, col)
			}
		})
	}
}

func TestComputeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr string
		reject     []string
	}{
		{"error", `.status | error`, []string{"table public.orders", `computed column "x" (.status | error)`, "jq:", "open"}},
		{"no result", `empty`, []string{`computed column "x"`, "no result", "// null"}},
		{"two results", `1, 2`, []string{`computed column "x"`, "more than one result"}},
		{"NaN", `nan`, []string{`computed column "x"`, "NaN", "JSON cannot hold"}},
		{"infinite", `infinite`, []string{`computed column "x"`, "+Inf"}},
		{"type error", `.status * {}`, []string{`computed column "x"`, "cannot multiply"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.orders": {
				Compute: map[string]transform.Computed{"x": {Expr: tt.expr}},
			}}})
			in := []pipeline.Change{insert(order("1", "open")), update(order("2", "open"), order("2", "open")), read(order("3", "open")), del(order("4", "open"), "4"), del(nil, "5")}
			_, kept, rejected := apply(t, tr, changeSet(orders), in...)
			require.Len(t, rejected, 3, "the insert, the update and the read")
			for i, r := range rejected {
				require.Equal(t, in[i], r.Change)
				for _, w := range tt.reject {
					require.Contains(t, r.Reason, w)
				}
			}
			// Deletes are never rejected: a Before that cannot be computed
			// is left out.
			require.Equal(t, []pipeline.Change{del(nil, "4"), del(nil, "5")}, kept)
		})
	}
}

// An update whose Before cannot be computed is rejected, like one whose
// After cannot.
func TestComputeErrorOnBefore(t *testing.T) {
	t.Parallel()
	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.orders": {
		Compute: map[string]transform.Computed{"x": {Expr: `if .status == "bad" then error("bad row") else 1 end`}},
	}}})
	in := update(order("1", "bad"), order("1", "open"))
	_, kept, rejected := apply(t, tr, changeSet(orders), in)
	require.Empty(t, kept)
	require.Len(t, rejected, 1)
	require.Contains(t, rejected[0].Reason, "bad row")
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	// The expressions never end, whatever the machine's speed.
	tr := setup(t, transform.Config{Timeout: 20_000_000, Tables: map[string]transform.TableConfig{"public.orders": {Filter: `last(repeat(1)) == 1`}}})
	_, kept, rejected := apply(t, tr, changeSet(orders), insert(order("1", "open")), del(nil, "2"))
	require.Equal(t, []pipeline.Change{del(nil, "2")}, kept)
	require.Len(t, rejected, 1)
	require.Contains(t, rejected[0].Reason, "ran longer than 20ms (Config.Timeout)")
}

func TestContextEnds(t *testing.T) {
	t.Parallel()
	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.orders": {Filter: `last(repeat(1)) == 1`}}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, kept, rejected, err := tr.Apply(ctx, changeSet(orders), []pipeline.Change{insert(order("1", "open"))})
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, kept)
	require.Nil(t, rejected)

	// Ended while an expression runs: Apply stops with ctx's error, and
	// rejects nothing.
	ctx, cancel = context.WithTimeout(context.Background(), 20_000_000)
	defer cancel()
	_, kept, rejected, err = tr.Apply(ctx, changeSet(orders), []pipeline.Change{insert(order("1", "open"))})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Nil(t, kept)
	require.Nil(t, rejected)
}
