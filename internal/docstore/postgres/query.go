package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/docstore"
)

var _ docstore.Querier = (*Store)(nil)

// Query implements docstore.Querier, with the sqlite backend's semantics:
// a comparison holds only for a value of the same JSON type, strings
// compare by code point (COLLATE "C"), and a missing field matches
// nothing, not even a negated condition.
func (s *Store) Query(ctx context.Context, container string, req docstore.QueryRequest) (docstore.Page, error) {
	if _, err := s.container(ctx, container); err != nil {
		return docstore.Page{}, err
	}
	plan, err := docstore.PlanQuery(req)
	if err != nil || plan.Done {
		return docstore.Page{Documents: []docstore.Document{}}, err
	}
	q, size, cur := plan.Query, plan.Size, plan.Cursor
	var a args
	var sb strings.Builder
	sb.WriteString(s.q.query + a.add(container) + ` AND NOT d.deleted AND ` + s.q.live)
	if req.PartitionKey != nil {
		sb.WriteString(` AND d.pk = ` + a.add(*req.PartitionKey))
	}
	if q.Where != nil {
		cond, err := compile(q.Where, &a)
		if err != nil {
			return docstore.Page{}, err
		}
		sb.WriteString(" AND (" + cond + ")")
	}
	if q.OrderBy == nil {
		if req.Continuation != "" {
			sb.WriteString(` AND (d.pk, d.id) > (` + a.add(cur.PK) + `, ` + a.add(cur.ID) + `)`)
		}
		sb.WriteString(` ORDER BY d.pk, d.id LIMIT ` + a.add(size+1))
	} else {
		// As SQLite orders json_extract's values: missing and null first,
		// then numbers (false and true as 0 and 1), then strings (objects
		// and arrays as their JSON text).
		v := valueAt(q.OrderBy, &a)
		dir := ""
		if q.Desc {
			dir = " DESC"
		}
		fmt.Fprintf(&sb, ` ORDER BY CASE WHEN %[1]s IS NULL OR jsonb_typeof(%[1]s) = 'null' THEN 0 WHEN jsonb_typeof(%[1]s) IN ('number', 'boolean') THEN 1 ELSE 2 END%[2]s,
			CASE jsonb_typeof(%[1]s) WHEN 'number' THEN (%[1]s)::numeric WHEN 'boolean' THEN CASE WHEN %[1]s = 'true' THEN 1 ELSE 0 END END%[2]s,
			CASE jsonb_typeof(%[1]s) WHEN 'string' THEN %[1]s #>> '{}' WHEN 'object' THEN (%[1]s)::text WHEN 'array' THEN (%[1]s)::text END COLLATE "C"%[2]s,
			d.pk, d.id`, v, dir)
		sb.WriteString(` LIMIT ` + a.add(size+1) + ` OFFSET ` + a.add(cur.Offset))
	}
	rows, err := s.pool.Query(ctx, sb.String(), a...)
	if err != nil {
		return docstore.Page{}, classify(fmt.Errorf("docstore: query %s: %w", container, err))
	}
	docs, err := scanDocs(ctx, rows)
	if err != nil {
		return docstore.Page{}, classify(fmt.Errorf("docstore: query %s: %w", container, err))
	}
	if len(docs) == 0 {
		if _, err := s.GetContainer(ctx, container); err != nil {
			return docstore.Page{}, err
		}
	}
	return plan.Finish(docs), nil
}

// args are a statement's arguments; add returns the placeholder of one.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// valueAt is the JSONB value at a path of the body: SQL NULL when the
// document has none.
func valueAt(path []string, a *args) string {
	return "(d.body #> " + a.add(path) + "::text[])"
}

// typed is cond for a value of JSON type typ, false for a value of
// another type, and NULL for a missing value: so NOT(cond) does not match
// a missing value either. CASE also keeps casts off values of other types.
func typed(v, typ, cond string) string {
	return "CASE WHEN " + v + " IS NULL THEN NULL WHEN jsonb_typeof(" + v + ") = '" + typ + "' THEN " + cond + " ELSE false END"
}

// compile turns a condition into SQL over the body column.
func compile(e docstore.Expr, a *args) (string, error) {
	switch e := e.(type) {
	case docstore.Logical:
		var parts []string
		for _, x := range docstore.Operands(e) {
			c, err := compile(x, a)
			if err != nil {
				return "", err
			}
			parts = append(parts, c)
		}
		return docstore.Balanced(e.Op, parts), nil
	case docstore.Not:
		x, err := compile(e.X, a)
		return "NOT (" + x + ")", err
	case docstore.Exists:
		return valueAt(e.Path, a) + " IS NOT NULL", nil
	case docstore.StartsWith:
		v := valueAt(e.Path, a)
		return typed(v, "string", "starts_with("+v+" #>> '{}', "+a.add(e.Prefix)+"::text)"), nil
	case docstore.In:
		var parts []string
		for _, v := range e.Values {
			c, err := compare(e.Path, "=", v, a)
			if err != nil {
				return "", err
			}
			parts = append(parts, c)
		}
		return "(" + docstore.Balanced("OR", parts) + ")", nil
	case docstore.Compare:
		return compare(e.Path, e.Op, e.Value, a)
	}
	return "", fmt.Errorf("%w query: unknown condition %T", docstore.ErrInvalid, e)
}

// ops are the comparison operators a query may use, as SQL.
var ops = map[string]string{"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

func compare(path []string, op string, val any, a *args) (string, error) {
	sqlOp, ok := ops[op]
	if !ok {
		return "", fmt.Errorf("%w query: unknown operator %q", docstore.ErrInvalid, op)
	}
	v := valueAt(path, a)
	switch val := val.(type) {
	case float64:
		return typed(v, "number", "("+v+")::numeric "+sqlOp+" "+a.add(val)+"::numeric"), nil
	case string:
		return typed(v, "string", "("+v+` #>> '{}') COLLATE "C" `+sqlOp+" "+a.add(val)+"::text"), nil
	case bool, nil:
		want := "null"
		if b, ok := val.(bool); ok {
			want = strconv.FormatBool(b)
		}
		if op != "=" && op != "!=" {
			return "", fmt.Errorf("%w query: %s compares only with = or !=", docstore.ErrInvalid, want)
		}
		// A missing value is SQL NULL: it matches neither.
		return v + " " + sqlOp + " '" + want + "'::jsonb", nil
	}
	return "", fmt.Errorf("%w query: cannot compare with %T", docstore.ErrInvalid, val)
}
