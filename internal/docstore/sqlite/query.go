package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/internal/docstore"
)

var _ docstore.Querier = (*Store)(nil)

// Query implements docstore.Querier.
func (s *Store) Query(ctx context.Context, container string, req docstore.QueryRequest) (docstore.Page, error) {
	c, err := s.GetContainer(ctx, container)
	if err != nil {
		return docstore.Page{}, err
	}
	plan, err := docstore.PlanQuery(req)
	if err != nil || plan.Done {
		return docstore.Page{Documents: []docstore.Document{}}, err
	}
	q, size, cur := plan.Query, plan.Size, plan.Cursor
	var sb strings.Builder
	args := []any{container, liveSince(c)}
	sb.WriteString(`SELECT pk, id, body, etag, ts, lsn, deleted FROM documents WHERE container = ? AND deleted = 0 AND ts >= ?`)
	if req.PartitionKey != nil {
		sb.WriteString(` AND pk = ?`)
		args = append(args, *req.PartitionKey)
	}
	if q.Where != nil {
		cond, cargs, err := compile(q.Where)
		if err != nil {
			return docstore.Page{}, err
		}
		sb.WriteString(" AND (" + cond + ")")
		args = append(args, cargs...)
	}
	if q.OrderBy == nil {
		if req.Continuation != "" {
			sb.WriteString(` AND (pk, id) > (?, ?)`)
			args = append(args, cur.PK, cur.ID)
		}
		sb.WriteString(` ORDER BY pk, id LIMIT ?`)
		args = append(args, size+1)
	} else {
		dir := ""
		if q.Desc {
			dir = " DESC"
		}
		sb.WriteString(` ORDER BY json_extract(body, ?)` + dir + `, pk, id LIMIT ? OFFSET ?`)
		args = append(args, jsonPath(q.OrderBy), size+1, cur.Offset)
	}
	rows, err := s.r.QueryContext(ctx, sb.String(), args...)
	if err != nil {
		return docstore.Page{}, classify(fmt.Errorf("docstore: query %s: %w", container, err))
	}
	docs, err := scanDocs(ctx, rows)
	if err != nil {
		return docstore.Page{}, classify(fmt.Errorf("docstore: query %s: %w", container, err))
	}
	return plan.Finish(docs), nil
}

// jsonPath is a SQLite JSON path for fields, each quoted.
func jsonPath(fields []string) string {
	var b strings.Builder
	b.WriteString("$")
	for _, f := range fields {
		b.WriteString(`."` + strings.ReplaceAll(f, `"`, `\"`) + `"`)
	}
	return b.String()
}

// compile turns a condition into SQL over the body column. A comparison
// holds only for a value of the same JSON type; a missing field matches
// nothing (and so, as in Cosmos DB, neither does its negation).
func compile(e docstore.Expr) (string, []any, error) {
	switch e := e.(type) {
	case docstore.Logical:
		var parts []string
		var args []any
		for _, x := range docstore.Operands(e) {
			c, a, err := compile(x)
			if err != nil {
				return "", nil, err
			}
			parts = append(parts, c)
			args = append(args, a...)
		}
		return docstore.Balanced(e.Op, parts), args, nil
	case docstore.Not:
		x, xa, err := compile(e.X)
		return "NOT (" + x + ")", xa, err
	case docstore.Exists:
		return "json_type(body, ?) IS NOT NULL", []any{jsonPath(e.Path)}, nil
	case docstore.StartsWith:
		p := jsonPath(e.Path)
		return "(json_type(body, ?) = 'text' AND substr(json_extract(body, ?), 1, ?) = ?)", []any{p, p, len([]rune(e.Prefix)), e.Prefix}, nil
	case docstore.In:
		var parts []string
		var args []any
		for _, v := range e.Values {
			c, a, err := compare(e.Path, "=", v)
			if err != nil {
				return "", nil, err
			}
			parts = append(parts, c)
			args = append(args, a...)
		}
		return "(" + docstore.Balanced("OR", parts) + ")", args, nil
	case docstore.Compare:
		return compare(e.Path, e.Op, e.Value)
	}
	return "", nil, fmt.Errorf("%w query: unknown condition %T", docstore.ErrInvalid, e)
}

func compare(path []string, op string, v any) (string, []any, error) {
	p := jsonPath(path)
	switch v := v.(type) {
	case float64:
		return "(json_type(body, ?) IN ('integer', 'real') AND json_extract(body, ?) " + op + " ?)", []any{p, p, v}, nil
	case string:
		return "(json_type(body, ?) = 'text' AND json_extract(body, ?) " + op + " ?)", []any{p, p, v}, nil
	case bool, nil:
		want := "null"
		if b, ok := v.(bool); ok {
			want = map[bool]string{true: "true", false: "false"}[b]
		}
		switch op {
		case "=":
			return "json_type(body, ?) = ?", []any{p, want}, nil
		case "!=":
			return "json_type(body, ?) != ?", []any{p, want}, nil
		}
		return "", nil, fmt.Errorf("%w query: %s compares only with = or !=", docstore.ErrInvalid, want)
	}
	return "", nil, fmt.Errorf("%w query: cannot compare with %T", docstore.ErrInvalid, v)
}
