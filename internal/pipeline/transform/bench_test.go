package transform_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/transform"
)

// benchChanges are n inserts of a table of 10 columns, as a text source
// gives them, a third of them with status "closed".
func benchChanges(n int) (pipeline.ChangeSet, []pipeline.Change) {
	cols := []pipeline.Column{{Name: "id", Type: "int8", Key: true}}
	for _, c := range []string{"status", "amount", "customer", "email", "city", "country", "created_at", "updated_at", "note"} {
		cols = append(cols, pipeline.Column{Name: c, Type: "text"})
	}
	cs := pipeline.ChangeSet{Pipeline: "p", Seq: 1, Count: n, Tables: map[string]pipeline.Table{"public.orders": {Name: "public.orders", Columns: cols}}}
	changes := make([]pipeline.Change, n)
	for i := range changes {
		status := "open"
		if i%3 == 0 {
			status = "closed"
		}
		id := fmt.Sprint(i + 1)
		changes[i] = pipeline.Change{Op: pipeline.Insert, Table: "public.orders", Key: pipeline.Row{"id": id}, After: pipeline.Row{
			"id": id, "status": status, "amount": fmt.Sprintf("%d.50", i), "customer": "customer " + id, "email": "c" + id + "@example.com",
			"city": "Lyon", "country": "FR", "created_at": "2026-12-01 10:00:00+00", "updated_at": "2026-12-01 10:00:01+00", "note": nil,
		}}
	}
	return cs, changes
}

func runBench(b *testing.B, cfg transform.Config) {
	tr := setup(b, cfg)
	cs, changes := benchChanges(1000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := tr.Apply(ctx, cs, changes); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(changes)), "ns/change")
}

// BenchmarkApply: a filter, a rename and a computed column on 1,000
// changes of 10 columns.
func BenchmarkApply(b *testing.B) {
	runBench(b, transform.Config{Tables: map[string]transform.TableConfig{"public.orders": {
		Filter:  `.status == "open"`,
		Rename:  map[string]string{"customer": "customer_name"},
		Compute: map[string]transform.Computed{"amount_cents": {Expr: `(.amount | tonumber) * 100`, Type: "bigint"}},
	}}})
}

// BenchmarkApplyReshape: include and rename, no jq.
func BenchmarkApplyReshape(b *testing.B) {
	runBench(b, transform.Config{Tables: map[string]transform.TableConfig{"public.orders": {
		Include: []string{"status", "amount", "customer"},
		Rename:  map[string]string{"customer": "customer_name"},
	}}})
}

// BenchmarkApplyNoop: a table without config costs nothing per change.
func BenchmarkApplyNoop(b *testing.B) {
	runBench(b, transform.Config{Tables: map[string]transform.TableConfig{"public.other": {Filter: "true"}}})
}
