package transform_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/transform"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	open, closed := order("1", "open"), order("1", "closed")
	tests := []struct {
		name   string
		filter string
		in     pipeline.Change
		// want is the change kept (nil: dropped); reject, the words of the
		// reason when rejected.
		want   *pipeline.Change
		reject []string
	}{
		{name: "insert that matches", filter: `.status == "open"`, in: insert(open), want: ptr(insert(open))},
		{name: "insert that does not", filter: `.status == "open"`, in: insert(closed)},
		{name: "read that matches", filter: `.status == "open"`, in: read(open), want: ptr(read(open))},
		{name: "read that does not", filter: `.status == "open"`, in: read(closed)},
		{name: "update that stays in", filter: `.status == "open"`, in: update(open, open), want: ptr(update(open, open))},
		{name: "update that comes in", filter: `.status == "open"`, in: update(closed, open), want: ptr(update(closed, open))},
		{
			name: "update that leaves becomes a delete", filter: `.status == "open"`, in: update(open, closed),
			want: &pipeline.Change{Op: pipeline.Delete, Table: "public.orders", Key: pipeline.Row{"id": num("1")}, Before: open, Position: "0/2"},
		},
		{
			name: "update without before that leaves becomes a delete", filter: `.status == "open"`, in: update(nil, closed),
			want: &pipeline.Change{Op: pipeline.Delete, Table: "public.orders", Key: pipeline.Row{"id": num("1")}, Position: "0/2"},
		},
		{name: "delete passes", filter: `.status == "open"`, in: del(closed, "1"), want: ptr(del(closed, "1"))},
		{name: "delete of a key passes", filter: `.status == "open"`, in: del(nil, "1"), want: ptr(del(nil, "1"))},
		{name: "delete passes a filter that would fail", filter: `error("no")`, in: del(open, "1"), want: ptr(del(open, "1"))},
		{name: "null does not match", filter: `.missing`, in: insert(open)},
		{name: "no result does not match", filter: `select(.status == "x") | true`, in: insert(open)},
		{name: "false does not match", filter: `false`, in: insert(open)},
		{name: "a string is rejected", filter: `.status`, in: insert(open), reject: []string{"table public.orders", "Filter .status", `gave "open"`, "not true or false"}},
		{name: "a number is rejected", filter: `.id`, in: insert(open), reject: []string{"gave 1", "not true or false"}},
		{name: "an error is rejected", filter: `.status | error`, in: insert(open), reject: []string{"table public.orders", "Filter .status | error", "jq:", "open"}},
		{name: "a type error is rejected", filter: `.status + 1 > 2`, in: insert(open), reject: []string{"Filter .status + 1 > 2", "cannot add"}},
		{name: "two results are rejected", filter: `true, false`, in: insert(open), reject: []string{"more than one result", "any("}},
		{name: "a rejected update is not deleted", filter: `.status | error`, in: update(open, closed), reject: []string{"jq:"}},
		{name: "unknown op is rejected", filter: `true`, in: pipeline.Change{Op: "upsert", Table: "public.orders", Key: pipeline.Row{"id": num("1")}}, reject: []string{`unknown op "upsert"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.orders": {Filter: tt.filter}}})
			// A change of another table before and after: they go on.
			other := pipeline.Change{Op: pipeline.Insert, Table: "public.other", Key: pipeline.Row{"k": "a"}, After: pipeline.Row{"k": "a"}}
			_, kept, rejected := apply(t, tr, changeSet(orders), other, tt.in, other)
			want := []pipeline.Change{other}
			if tt.want != nil {
				want = append(want, *tt.want)
			}
			want = append(want, other)
			require.Equal(t, want, kept)
			if tt.reject == nil {
				require.Empty(t, rejected)
				return
			}
			require.Len(t, rejected, 1)
			require.Equal(t, tt.in, rejected[0].Change, "a rejected change is returned as it came")
			for _, w := range tt.reject {
				require.Contains(t, rejected[0].Reason, w)
			}
		})
	}
}

// TestFilterKeepsOpenOrders follows a destination of open orders through
// an order's life: it is written while open and deleted when it closes.
func TestFilterKeepsOpenOrders(t *testing.T) {
	t.Parallel()
	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.orders": {Filter: `.status == "open"`}}})
	_, kept, rejected := apply(t, tr, changeSet(orders),
		insert(order("1", "new")),                        // not yet open: dropped
		update(order("1", "new"), order("1", "open")),    // opens: written
		update(order("1", "open"), order("1", "open")),   // stays open: written
		update(order("1", "open"), order("1", "closed")), // closes: deleted
		update(order("1", "closed"), order("1", "paid")), // still out: deleted again, harmless
		del(order("1", "paid"), "1"),                     // deleted: passes
	)
	require.Empty(t, rejected)
	var ops []pipeline.Op
	for _, c := range kept {
		ops = append(ops, c.Op)
		require.Equal(t, pipeline.Row{"id": num("1")}, c.Key)
	}
	require.Equal(t, []pipeline.Op{pipeline.Update, pipeline.Update, pipeline.Delete, pipeline.Delete, pipeline.Delete}, ops)
	require.Nil(t, kept[2].After)
}

func TestFilterVariables(t *testing.T) {
	t.Parallel()
	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"*": {
		Filter: `$op == "insert" and $table == "public.orders" and $key.id == 2 and .id == $key.id`,
	}}})
	_, kept, rejected := apply(t, tr, changeSet(orders),
		insert(order("1", "open")), insert(order("2", "open")), read(order("2", "open")),
		pipeline.Change{Op: pipeline.Insert, Table: "public.other", Key: pipeline.Row{"id": num("2")}, After: pipeline.Row{"id": num("2")}},
	)
	require.Empty(t, rejected)
	require.Equal(t, []pipeline.Change{insert(order("2", "open"))}, kept)
}

// Text sources give numbers as strings: a filter converts them.
func TestFilterOnText(t *testing.T) {
	t.Parallel()
	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.orders": {Filter: `(.amount | tonumber) > 100`}}})
	big := order("2", "open")
	big["amount"] = "100.01"
	_, kept, rejected := apply(t, tr, changeSet(orders), insert(order("1", "open")), insert(big))
	require.Empty(t, rejected)
	require.Equal(t, []pipeline.Change{insert(big)}, kept)
}

func read(row pipeline.Row) pipeline.Change {
	c := insert(row)
	c.Op = pipeline.Read
	return c
}

func ptr[T any](v T) *T { return &v }
