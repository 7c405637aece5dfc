package transform_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/transform"
)

// orders is the source table most tests use: key id, and a few columns.
var orders = pipeline.Table{Name: "public.orders", Columns: []pipeline.Column{
	{Name: "id", Type: "int8", Key: true},
	{Name: "status", Type: "text"},
	{Name: "amount", Type: "numeric(10,2)"},
	{Name: "customer", Type: "text"},
	{Name: "note", Type: "text"},
}}

func changeSet(tables ...pipeline.Table) pipeline.ChangeSet {
	cs := pipeline.ChangeSet{Pipeline: "p", Seq: 7, Blob: pipeline.BlobName(7), Tables: map[string]pipeline.Table{}}
	for _, t := range tables {
		cs.Tables[t.Name] = t
	}
	return cs
}

func num(s string) json.Number { return json.Number(s) }

// order is a row of orders.
func order(id, status string) pipeline.Row {
	return pipeline.Row{"id": num(id), "status": status, "amount": "12.50", "customer": "c" + id, "note": nil}
}

func insert(row pipeline.Row) pipeline.Change {
	return pipeline.Change{Op: pipeline.Insert, Table: "public.orders", Key: pipeline.Row{"id": row["id"]}, After: row, Position: "0/1"}
}

func update(before, after pipeline.Row) pipeline.Change {
	return pipeline.Change{Op: pipeline.Update, Table: "public.orders", Key: pipeline.Row{"id": after["id"]}, After: after, Before: before, Position: "0/2"}
}

func del(before pipeline.Row, id string) pipeline.Change {
	return pipeline.Change{Op: pipeline.Delete, Table: "public.orders", Key: pipeline.Row{"id": num(id)}, Before: before, Position: "0/3"}
}

// setup compiles cfg, which must be valid.
func setup(t testing.TB, cfg transform.Config) *transform.Transform {
	t.Helper()
	tr, err := transform.New(cfg)
	require.NoError(t, err)
	return tr
}

// apply runs tr on changes of cs and wants no error.
func apply(t testing.TB, tr *transform.Transform, cs pipeline.ChangeSet, changes ...pipeline.Change) (pipeline.ChangeSet, []pipeline.Change, []pipeline.Rejected) {
	t.Helper()
	out, kept, rejected, err := tr.Apply(context.Background(), cs, changes)
	require.NoError(t, err)
	return out, kept, rejected
}
