package sqlsink

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// BenchmarkApply applies change sets of 1000 changes of ~200-byte rows:
// 80% upserts (inserts and updates of 20000 keys), 20% deletes, either
// interleaved at random (each group a few rows) or in runs of 50 (as
// transactions that write many rows of one table give them).
//
// Run it on an idle machine:
//
//	SLUICE_TEST_POSTGRES=… SLUICE_TEST_MYSQL=… go test -run '^$' -bench Apply -benchtime 100x ./internal/pipeline/sqlsink/
func BenchmarkApply(b *testing.B) {
	for _, db := range []struct {
		name string
		url  func(testing.TB) string
		// alt replaces the dialect's statements, to compare them.
		alt func(d dialect) dialect
	}{
		{"postgres", postgresURLOrSkip, nil},
		{"postgres-values", postgresURLOrSkip, func(d dialect) dialect { return pgValues{d.(*postgres)} }},
		{"mysql", mysqlURLOrSkip, nil},
	} {
		for _, order := range []string{"interleaved", "runs"} {
			b.Run(db.name+"/"+order, func(b *testing.B) {
				tg := newTarget(b, db.url(b))
				s := tg.sink(b, Config{CreateTables: true})
				if db.alt != nil {
					s.d = db.alt(s.d)
				}
				r := rand.New(rand.NewPCG(7, 7))
				sets := make([][]pipeline.Change, 20)
				for i := range sets {
					sets[i] = benchChanges(r, order == "runs")
				}
				// The table's first rows, outside the measure.
				for seq := int64(1); seq <= 5; seq++ {
					_, err := s.Apply(bg, changeSet(seq, benchTable), sets[seq%20])
					require.NoError(b, err)
				}
				b.ResetTimer()
				for i := range b.N {
					rej, err := s.Apply(bg, changeSet(int64(i+6), benchTable), sets[i%20])
					if err != nil || len(rej) > 0 {
						b.Fatal(err, rej)
					}
				}
				b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "changes/s")
			})
		}
	}
}

var benchTable = pipeline.Table{Name: "public.bench", Columns: []pipeline.Column{
	{Name: "id", Type: "int8", Key: true},
	{Name: "name", Type: "varchar(64)"},
	{Name: "email", Type: "varchar(128)"},
	{Name: "n", Type: "int4"},
	{Name: "amount", Type: "numeric(12,2)"},
	{Name: "created", Type: "timestamptz"},
	{Name: "note", Type: "text"},
}}

func benchChanges(r *rand.Rand, runs bool) []pipeline.Change {
	var out []pipeline.Change
	del := false
	for i := range 1000 {
		if runs {
			if i%50 == 0 {
				del = r.IntN(5) == 0
			}
		} else {
			del = r.IntN(5) == 0
		}
		id := num(r.IntN(20000))
		if del {
			out = append(out, pipeline.Change{Op: pipeline.Delete, Table: "public.bench", Key: pipeline.Row{"id": id}})
			continue
		}
		out = append(out, pipeline.Change{Op: pipeline.Update, Table: "public.bench", Key: pipeline.Row{"id": id}, After: pipeline.Row{
			"id":      id,
			"name":    fmt.Sprintf("customer %d", r.IntN(1e6)),
			"email":   fmt.Sprintf("someone.%d@example.com", r.IntN(1e6)),
			"n":       num(r.IntN(1e6)),
			"amount":  fmt.Sprintf("%d.%02d", r.IntN(1e5), r.IntN(100)),
			"created": "2024-05-01 10:00:00.123456+00",
			"note":    strings.Repeat("x", 80+r.IntN(40)),
		}})
	}
	return out
}

// pgValues writes upserts as multi-row INSERT … VALUES ($1, …), (…):
// what the unnest statements were measured against.
type pgValues struct{ *postgres }

func (p pgValues) upsert(g *group, rows []item) (string, []any) {
	var b strings.Builder
	b.WriteString("INSERT INTO " + g.t.qname + " (" + p.list(g.cols) + ") VALUES ")
	args := make([]any, 0, len(rows)*len(g.cols))
	for r, it := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for c := range g.cols {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", len(args)+1)
			args = append(args, it.vals[c])
		}
		b.WriteString(")")
	}
	b.WriteString(" ON CONFLICT (" + p.list(g.cols[:g.nkeys]) + ") DO UPDATE SET ")
	for i, c := range g.cols[g.nkeys:] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.quote(c) + " = EXCLUDED." + p.quote(c))
	}
	return b.String(), args
}

func (pgValues) maxRows(ncols int) int { return maxParams / max(ncols, 1) }
