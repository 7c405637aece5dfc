package transform_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/transform"
)

// Not parallel: AllocsPerRun counts the whole process's allocations.
func TestPassThrough(t *testing.T) {
	changes := []pipeline.Change{insert(order("1", "open")), del(nil, "2")}
	cs := changeSet(orders)
	cs.Count = 2
	for name, tr := range map[string]*transform.Transform{
		"nil":            nil,
		"empty":          setup(t, transform.Config{}),
		"other tables":   setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.other": {Filter: "false"}}}),
		"an empty entry": setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.other": {}}}),
	} {
		out, kept, rejected, err := tr.Apply(context.Background(), cs, changes)
		require.NoError(t, err, name)
		require.Nil(t, rejected, name)
		require.Same(t, &changes[0], &kept[0], "%s: the very slice", name)
		require.Len(t, kept, 2, name)
		require.Equal(t, cs, out, name)
		allocs := testing.AllocsPerRun(100, func() { _, _, _, _ = tr.Apply(context.Background(), cs, changes) })
		require.Zero(t, allocs, name)
	}
}

// Changes of tables without config keep their place among the others,
// unchanged.
func TestUnconfiguredTablesKeepTheirPlace(t *testing.T) {
	t.Parallel()
	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.orders": {Filter: `.status == "open"`, Include: []string{"status"}}}})
	other := func(k string) pipeline.Change {
		return pipeline.Change{Op: pipeline.Insert, Table: "public.other", Key: pipeline.Row{"k": k}, After: pipeline.Row{"k": k, "v": doc(k)}}
	}
	_, kept, rejected := apply(t, tr, changeSet(orders), other("a"), insert(order("1", "closed")), other("b"), insert(order("2", "open")), other("c"))
	require.Empty(t, rejected)
	want := []pipeline.Change{other("a"), other("b"), insert(pipeline.Row{"id": num("2"), "status": "open"}), other("c")}
	want[2].Key = pipeline.Row{"id": num("2")}
	require.Equal(t, want, kept)
}

func doc(s string) any { return map[string]any{"s": s, "n": num("1")} }

// Apply reads its inputs only: other destinations may share them.
func TestInputsUntouched(t *testing.T) {
	t.Parallel()
	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"*": {
		Filter:  `.status == "open"`,
		Exclude: []string{"note"},
		Rename:  map[string]string{"id": "order_id", "amount": "total"},
		Compute: map[string]transform.Computed{"customer": {Expr: `.customer | ascii_upcase`}, "doc": {Expr: `{n: (.id + 1)}`}},
	}}})
	build := func() (pipeline.ChangeSet, []pipeline.Change) {
		return changeSet(orders), []pipeline.Change{
			insert(order("1", "open")), insert(order("2", "closed")), update(order("3", "open"), order("3", "closed")),
			update(order("4", "closed"), order("4", "open")), del(order("5", "open"), "5"), read(order("6", "open")),
		}
	}
	cs, changes := build()
	out, kept, rejected := apply(t, tr, cs, changes...)
	require.Empty(t, rejected)
	require.Len(t, kept, 5)
	wantCS, wantChanges := build()
	require.Equal(t, wantCS, cs)
	require.Equal(t, wantChanges, changes)
	require.NotEqual(t, cs.Tables, out.Tables)
	// And changing the output does not reach the input.
	kept[0].After["status"] = "changed"
	kept[0].Key["order_id"] = "changed"
	require.Equal(t, wantChanges, changes)
}

func TestConcurrentApply(t *testing.T) {
	t.Parallel()
	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.orders": {
		Filter:  `(.id | tonumber) % 2 == 0`,
		Compute: map[string]transform.Computed{"x": {Expr: `.id * 2`}},
	}}})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var in []pipeline.Change
			for i := range 100 {
				in = append(in, insert(order(fmt.Sprint(g*1000+i), "open")))
			}
			_, kept, rejected, err := tr.Apply(context.Background(), changeSet(orders), in)
			if err != nil || len(rejected) != 0 || len(kept) != 50 {
				t.Errorf("goroutine %d: %v, %d rejected, %d kept", g, err, len(rejected), len(kept))
			}
		})
	}
	wg.Wait()
}
