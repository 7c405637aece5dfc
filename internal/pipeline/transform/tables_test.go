package transform_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/transform"
)

var customers = pipeline.Table{Name: "public.customers", Columns: []pipeline.Column{
	{Name: "tenant", Type: "int4", Key: true},
	{Name: "id", Type: "int8", Key: true},
	{Name: "name", Type: "text"},
}}

func TestTablesDescribeTheDestination(t *testing.T) {
	t.Parallel()
	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{
		"public.orders": {
			Exclude: []string{"note"},
			Rename:  map[string]string{"id": "order_id", "total": "amount_total"},
			Compute: map[string]transform.Computed{
				"status": {Expr: `.status | ascii_upcase`, Type: "varchar(10)"},
				"total":  {Expr: `.amount | tonumber`, Type: "numeric"},
				"extra":  {Expr: `{}`},
			},
		},
	}})
	in := changeSet(orders, customers)
	in.Count = 2
	changes := []pipeline.Change{insert(order("1", "open")), insert(order("2", "open"))}
	out, kept, rejected := apply(t, tr, in, changes...)
	require.Empty(t, rejected)
	require.Len(t, kept, 2)
	require.Equal(t, 2, out.Count)
	require.Equal(t, pipeline.Table{Name: "public.orders", Columns: []pipeline.Column{
		{Name: "order_id", Type: "int8", Key: true},
		{Name: "status", Type: "varchar(10)"}, // replaced in place
		{Name: "amount", Type: "numeric(10,2)"},
		{Name: "customer", Type: "text"},
		{Name: "extra", Type: "text"}, // the default type; then the others by name
		{Name: "amount_total", Type: "numeric"},
	}}, out.Tables["public.orders"])
	require.Equal(t, []string{"order_id"}, out.Tables["public.orders"].KeyColumns())
	require.Equal(t, customers, out.Tables["public.customers"], "a table without config is as it was")
	// The rows have the columns the description names.
	for _, c := range kept {
		require.Len(t, c.After, len(out.Tables["public.orders"].Columns))
		for _, col := range out.Tables["public.orders"].Columns {
			require.Contains(t, c.After, col.Name)
		}
	}
	// The input is untouched.
	require.Equal(t, changeSet(orders, customers).Tables, in.Tables)
	require.Equal(t, []pipeline.Change{insert(order("1", "open")), insert(order("2", "open"))}, changes)
}

func TestCountIsWhatRemains(t *testing.T) {
	t.Parallel()
	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.orders": {Filter: `.status == "open"`}}})
	in := changeSet(orders)
	in.Count = 3
	out, kept, _ := apply(t, tr, in, insert(order("1", "open")), insert(order("2", "x")), insert(order("3", "open")))
	require.Len(t, kept, 2)
	require.Equal(t, 2, out.Count)
	require.Equal(t, orders, out.Tables["public.orders"])
}

func TestTableMismatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tc   transform.TableConfig
		want []string
	}{
		{"exclude a key column", transform.TableConfig{Exclude: []string{"id"}}, []string{`Tables["public.customers"].Exclude drops id, a key column`, "remove it from Exclude"}},
		{"compute a key column", transform.TableConfig{Compute: map[string]transform.Computed{"tenant": {Expr: "1"}}}, []string{`Compute replaces tenant, a key column`, "another name"}},
		{"rename onto a column", transform.TableConfig{Rename: map[string]string{"id": "name"}}, []string{"columns id and name would both be named name", "rename or drop one"}},
		{"rename a computed column onto a column", transform.TableConfig{Compute: map[string]transform.Computed{"x": {Expr: "1"}}, Rename: map[string]string{"x": "name"}}, []string{"columns name and x would both be named name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"public.customers": tt.tc}})
			c := pipeline.Change{Op: pipeline.Insert, Table: "public.customers", Key: pipeline.Row{"tenant": num("1"), "id": num("2")}, After: pipeline.Row{"tenant": num("1"), "id": num("2"), "name": "n"}}

			// Described by the change set: even without a change of it.
			for _, changes := range [][]pipeline.Change{{c}, nil} {
				_, kept, rejected, err := tr.Apply(context.Background(), changeSet(customers), changes)
				require.ErrorIs(t, err, transform.ErrTableMismatch)
				require.Nil(t, kept)
				require.Nil(t, rejected)
				for _, w := range tt.want {
					require.Contains(t, err.Error(), w)
				}
			}
		})
	}
}

// A table the change set does not describe: its changes' keys say which
// columns are key columns, and a row whose columns collide is rejected.
func TestUndescribedTable(t *testing.T) {
	t.Parallel()
	c := pipeline.Change{Op: pipeline.Insert, Table: "public.customers", Key: pipeline.Row{"tenant": num("1"), "id": num("2")}, After: pipeline.Row{"tenant": num("1"), "id": num("2"), "name": "n"}}

	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{"*": {Exclude: []string{"id"}}}})
	_, _, _, err := tr.Apply(context.Background(), changeSet(), []pipeline.Change{c})
	require.ErrorIs(t, err, transform.ErrTableMismatch)
	require.Contains(t, err.Error(), `table public.customers: Tables["*"].Exclude drops id, a key column`)

	tr = setup(t, transform.Config{Tables: map[string]transform.TableConfig{"*": {Rename: map[string]string{"name": "id"}, Include: []string{"name"}}}})
	cs, kept, rejected := apply(t, tr, changeSet(), c, c)
	require.Empty(t, kept)
	require.Len(t, rejected, 2)
	require.Contains(t, rejected[0].Reason, "would be id")
	require.Empty(t, cs.Tables)

	tr = setup(t, transform.Config{Tables: map[string]transform.TableConfig{"*": {Include: []string{"name"}, Rename: map[string]string{"tenant": "t"}}}})
	_, kept, rejected = apply(t, tr, changeSet(), c)
	require.Empty(t, rejected)
	require.Equal(t, []pipeline.Change{{Op: pipeline.Insert, Table: "public.customers", Key: pipeline.Row{"t": num("1"), "id": num("2")}, After: pipeline.Row{"t": num("1"), "id": num("2"), "name": "n"}}}, kept)
}

func TestWildcard(t *testing.T) {
	t.Parallel()
	tr := setup(t, transform.Config{Tables: map[string]transform.TableConfig{
		"*":               {Exclude: []string{"note", "name"}},
		"public.orders":   {Include: []string{"status"}},
		"public.ignored1": {},
	}})
	cust := pipeline.Change{Op: pipeline.Insert, Table: "public.customers", Key: pipeline.Row{"tenant": num("1"), "id": num("2")}, After: pipeline.Row{"tenant": num("1"), "id": num("2"), "name": "n", "note": "x"}}
	out, kept, rejected := apply(t, tr, changeSet(orders, customers), insert(order("1", "open")), cust)
	require.Empty(t, rejected)
	require.Equal(t, pipeline.Row{"id": num("1"), "status": "open"}, kept[0].After, "a table's own config, not the wildcard's")
	require.Equal(t, pipeline.Row{"tenant": num("1"), "id": num("2")}, kept[1].After)
	require.Equal(t, []pipeline.Column{{Name: "tenant", Type: "int4", Key: true}, {Name: "id", Type: "int8", Key: true}}, out.Tables["public.customers"].Columns)
}
