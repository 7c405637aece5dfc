package transform_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/transform"
)

// A destination of open orders, with the key renamed and the amount in
// cents: an order that closes is deleted from it.
func Example() {
	tr, err := transform.New(transform.Config{Tables: map[string]transform.TableConfig{
		"public.orders": {
			Filter:  `.status == "open"`,
			Include: []string{"status"},
			Rename:  map[string]string{"id": "order_id"},
			Compute: map[string]transform.Computed{"cents": {Expr: `(.amount | tonumber) * 100 | round`, Type: "bigint"}},
		},
	}})
	if err != nil {
		panic(err)
	}
	cs := pipeline.ChangeSet{Pipeline: "orders", Seq: 1, Count: 3, Tables: map[string]pipeline.Table{"public.orders": {
		Name: "public.orders",
		Columns: []pipeline.Column{
			{Name: "id", Type: "int8", Key: true}, {Name: "status", Type: "text"}, {Name: "amount", Type: "numeric"}, {Name: "note", Type: "text"},
		},
	}}}
	row := func(status string) pipeline.Row {
		return pipeline.Row{"id": "7", "status": status, "amount": "12.50", "note": "x"}
	}
	changes := []pipeline.Change{
		{Op: pipeline.Insert, Table: "public.orders", Key: pipeline.Row{"id": "7"}, After: row("new")},
		{Op: pipeline.Update, Table: "public.orders", Key: pipeline.Row{"id": "7"}, After: row("open")},
		{Op: pipeline.Update, Table: "public.orders", Key: pipeline.Row{"id": "7"}, After: row("closed")},
	}
	cs, changes, rejected, err := tr.Apply(context.Background(), cs, changes)
	if err != nil {
		panic(err)
	}
	fmt.Println("columns:", cs.Tables["public.orders"].Columns)
	for _, c := range changes {
		after, _ := json.Marshal(c.After)
		key, _ := json.Marshal(c.Key)
		fmt.Println(c.Op, string(key), string(after))
	}
	fmt.Println("count:", cs.Count, "rejected:", len(rejected))
	// Output:
	// columns: [{order_id int8 true} {status text false} {cents bigint false}]
	// update {"order_id":"7"} {"cents":1250,"order_id":"7","status":"open"}
	// delete {"order_id":"7"} null
	// count: 2 rejected: 0
}
