package docstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Queries are a small subset of the Cosmos DB SQL that the seeds use:
//
//	SELECT * FROM c WHERE c.battery < 20 AND c.mode IN ("a", "b") ORDER BY c._ts DESC LIMIT 10
//
// Every part is optional ("c.battery < 20" alone is a query). Conditions:
// comparisons (=, !=, <>, <, <=, >, >=) of a path with a literal or an
// @parameter, IN (...), EXISTS(path) or IS_DEFINED(path), STARTSWITH(path,
// "prefix"), combined with AND, OR, NOT and parentheses. A path starts with
// the alias after FROM (any name; "c" by convention) and goes on with
// .field or ["field"]. Comparisons follow JSON types: a number never
// equals a string; a missing field matches no comparison.

// Query is a parsed query.
type Query struct {
	Where   Expr // nil: every document
	OrderBy []string
	Desc    bool
	Limit   int // 0: none
}

// Expr is a condition of a query.
type Expr interface{ expr() }

// Logical combines conditions: Op is "AND" or "OR".
type Logical struct {
	Op          string
	Left, Right Expr
}

// Not negates a condition.
type Not struct{ X Expr }

// Compare compares the value at Path: Op is one of = != < <= > >=.
type Compare struct {
	Path  []string
	Op    string
	Value any // string, float64, bool or nil (JSON null)
}

// In matches a value at Path that equals one of Values.
type In struct {
	Path   []string
	Values []any
}

// Exists matches documents that have a value at Path.
type Exists struct{ Path []string }

// StartsWith matches a string at Path that begins with Prefix.
type StartsWith struct {
	Path   []string
	Prefix string
}

func (Logical) expr()    {}
func (Not) expr()        {}
func (Compare) expr()    {}
func (In) expr()         {}
func (Exists) expr()     {}
func (StartsWith) expr() {}

// QueryRequest is a query as a caller sends it.
type QueryRequest struct {
	Text   string         `json:"query"`
	Params map[string]any `json:"parameters,omitempty"`
	// PartitionKey, if set, limits the query to one partition.
	PartitionKey *string `json:"partition_key,omitempty"`
	// MaxItems bounds one page. Default 100, at most 1000.
	MaxItems int `json:"max_items,omitempty"`
	// Continuation resumes after the previous page.
	Continuation string `json:"continuation,omitempty"`
}

// Page is one page of a query's results.
type Page struct {
	Documents []Document `json:"documents"`
	// Continuation, when set, fetches the next page.
	Continuation string `json:"continuation,omitempty"`
}

// Querier is a store that runs queries.
type Querier interface {
	Query(ctx context.Context, container string, req QueryRequest) (Page, error)
}

// Cursor is where a page ends: after the document (PK, ID) in the
// partition-key and id order of a query without ORDER BY, or after Offset
// results of a query with ORDER BY.
type Cursor struct {
	PK     string `json:"pk,omitempty"`
	ID     string `json:"id,omitempty"`
	Offset int    `json:"offset,omitempty"`
	// Count is how many results earlier pages returned (for LIMIT).
	Count int `json:"count,omitempty"`
}

// EncodeCursor makes a continuation token.
func EncodeCursor(c Cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a continuation token.
func DecodeCursor(token string) (Cursor, error) {
	var c Cursor
	if token == "" {
		return c, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || json.Unmarshal(b, &c) != nil || c.Offset < 0 || c.Count < 0 {
		return c, fmt.Errorf("%w continuation token: not one this store made (pass back the continuation of the previous page)", ErrInvalid)
	}
	return c, nil
}

// PageSize is a request's page size, checked.
func (r QueryRequest) PageSize() (int, error) {
	switch {
	case r.MaxItems == 0:
		return 100, nil
	case r.MaxItems < 1 || r.MaxItems > 1000:
		return 0, fmt.Errorf("%w max items %d: use 1 to 1000", ErrInvalid, r.MaxItems)
	}
	return r.MaxItems, nil
}

// Plan is what a backend needs to run one page of a query.
type Plan struct {
	Query  Query
	Size   int // results of this page, at most (one more tells if there is a next)
	Cursor Cursor
	// Done: earlier pages already returned the query's LIMIT.
	Done bool
}

// PlanQuery parses and checks a request for a backend.
func PlanQuery(req QueryRequest) (Plan, error) {
	q, err := ParseQuery(req.Text, req.Params)
	if err != nil {
		return Plan{}, err
	}
	size, err := req.PageSize()
	if err != nil {
		return Plan{}, err
	}
	cur, err := DecodeCursor(req.Continuation)
	if err != nil {
		return Plan{}, err
	}
	if q.Limit > 0 {
		size = min(size, q.Limit-cur.Count)
	}
	return Plan{Query: q, Size: size, Cursor: cur, Done: size <= 0}, nil
}

// Finish cuts a page from the up to Size+1 documents a backend read and
// sets its continuation.
func (p Plan) Finish(docs []Document) Page {
	page := Page{Documents: docs}
	if page.Documents == nil {
		page.Documents = []Document{}
	}
	if len(docs) <= p.Size {
		return page
	}
	page.Documents = docs[:p.Size]
	last := page.Documents[p.Size-1]
	next := Cursor{Count: p.Cursor.Count + p.Size}
	if p.Query.OrderBy == nil {
		next.PK, next.ID = last.PartitionKey, last.ID
	} else {
		next.Offset = p.Cursor.Offset + p.Size
	}
	if p.Query.Limit == 0 || next.Count < p.Query.Limit {
		page.Continuation = EncodeCursor(next)
	}
	return page
}

// Limits of a query: its text, and its terms (conditions, and values of
// IN lists). A query past them is refused before it runs: each term is
// evaluated against every document the query reads, so a query of 20,000
// terms kept a core busy for minutes.
const (
	MaxQueryBytes = 64 << 10
	MaxQueryTerms = 1000
)

// ParseQuery parses a query, substituting params for @names.
func ParseQuery(text string, params map[string]any) (Query, error) {
	if len(text) > MaxQueryBytes {
		return Query{}, fmt.Errorf("%w query: it is %d bytes, over the limit of %d bytes (64 KiB): "+
			"select fewer values, or pass long values as parameters", ErrInvalid, len(text), MaxQueryBytes)
	}
	toks, err := lex(text)
	if err != nil {
		return Query{}, fmt.Errorf("%w query: %w", ErrInvalid, err)
	}
	p := &parser{toks: toks, params: params}
	q, err := p.query()
	if err != nil {
		return Query{}, fmt.Errorf("%w query: %w", ErrInvalid, err)
	}
	return q, nil
}

// errTooManyTerms stops a parse at MaxQueryTerms terms.
var errTooManyTerms = fmt.Errorf("it has more than %d terms (conditions, and values of IN lists), the limit: "+
	"split it into several queries, or select by a field that several documents share", MaxQueryTerms)

// term counts a term of the query being parsed.
func (p *parser) term() error {
	p.terms++
	if p.terms > MaxQueryTerms {
		return errTooManyTerms
	}
	return nil
}

// Operands returns the conditions that a chain of e's operator combines:
// a AND b AND c is one chain of three, whichever way it is grouped.
// Backends compile chains as balanced trees, so that the SQL's nesting
// grows with the logarithm of a chain's length, not the length (SQLite
// refuses expressions nested 1,000 deep).
func Operands(e Logical) []Expr {
	var out []Expr
	var walk func(x Expr)
	walk = func(x Expr) {
		if l, ok := x.(Logical); ok && l.Op == e.Op {
			walk(l.Left)
			walk(l.Right)
			return
		}
		out = append(out, x)
	}
	walk(e)
	return out
}

// Balanced joins SQL conditions with op as a balanced tree of
// parenthesized pairs, in order.
func Balanced(op string, conds []string) string {
	if len(conds) == 1 {
		return conds[0]
	}
	mid := len(conds) / 2
	return "(" + Balanced(op, conds[:mid]) + ") " + op + " (" + Balanced(op, conds[mid:]) + ")"
}

type token struct {
	kind string // "ident", "string", "number", "param", "op", "punct", "eof"
	text string
	pos  int
}

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'':
			j := i + 1
			var b strings.Builder
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			out = append(out, token{"string", b.String(), i})
			i = j + 1
		case c == '@' || c == '_' || unicode.IsLetter(rune(c)):
			j := i + 1
			for j < len(s) && (s[j] == '_' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			kind := "ident"
			if c == '@' {
				kind = "param"
			}
			out = append(out, token{kind, s[i:j], i})
			i = j
		case c == '-' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' || (s[j] == '-' || s[j] == '+') && (s[j-1] == 'e' || s[j-1] == 'E')) {
				j++
			}
			out = append(out, token{"number", s[i:j], i})
			i = j
		case strings.HasPrefix(s[i:], "<=") || strings.HasPrefix(s[i:], ">=") || strings.HasPrefix(s[i:], "!=") || strings.HasPrefix(s[i:], "<>"):
			out = append(out, token{"op", s[i : i+2], i})
			i += 2
		case c == '=' || c == '<' || c == '>':
			out = append(out, token{"op", s[i : i+1], i})
			i++
		case c == '(' || c == ')' || c == ',' || c == '.' || c == '[' || c == ']' || c == '*':
			out = append(out, token{"punct", s[i : i+1], i})
			i++
		default:
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	return append(out, token{"eof", "", len(s)}), nil
}

type parser struct {
	toks   []token
	i      int
	params map[string]any
	alias  string
	depth  int
	terms  int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != "eof" {
		p.i++
	}
	return t
}

func (p *parser) keyword(words ...string) bool {
	t := p.peek()
	for _, w := range words {
		if t.kind == "ident" && strings.EqualFold(t.text, w) {
			p.next()
			return true
		}
	}
	return false
}

func (p *parser) expect(kind, text string) error {
	t := p.next()
	if t.kind != kind || (text != "" && !strings.EqualFold(t.text, text)) {
		return fmt.Errorf("expected %s at %d, found %q", cmpOr(text, kind), t.pos, t.text)
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (p *parser) query() (Query, error) {
	var q Query
	if p.keyword("SELECT") {
		if err := p.expect("punct", "*"); err != nil {
			return q, fmt.Errorf("%w (only SELECT * is supported)", err)
		}
		if err := p.expect("ident", "FROM"); err != nil {
			return q, err
		}
		t := p.next()
		if t.kind != "ident" {
			return q, fmt.Errorf("expected a container alias after FROM at %d", t.pos)
		}
		p.alias = t.text
	}
	if p.keyword("WHERE") || p.alias == "" && p.startsCondition() {
		e, err := p.expr()
		if err != nil {
			return q, err
		}
		q.Where = e
	}
	if p.keyword("ORDER") {
		if err := p.expect("ident", "BY"); err != nil {
			return q, err
		}
		path, err := p.path()
		if err != nil {
			return q, err
		}
		q.OrderBy = path
		if p.keyword("DESC") {
			q.Desc = true
		} else {
			p.keyword("ASC")
		}
	}
	if p.keyword("LIMIT") {
		t := p.next()
		n, err := strconv.Atoi(t.text)
		if t.kind != "number" || err != nil || n < 1 {
			return q, fmt.Errorf("LIMIT at %d needs a positive whole number", t.pos)
		}
		q.Limit = n
	}
	if t := p.peek(); t.kind != "eof" {
		return q, fmt.Errorf("unexpected %q at %d", t.text, t.pos)
	}
	return q, nil
}

// startsCondition reports whether a query without SELECT begins with a
// condition rather than ORDER BY, LIMIT or its end.
func (p *parser) startsCondition() bool {
	t := p.peek()
	switch {
	case t.kind == "punct" && t.text == "(":
		return true
	case t.kind != "ident":
		return false
	}
	return strings.EqualFold(t.text, "NOT") || !isKeyword(t.text)
}

func isKeyword(s string) bool {
	switch strings.ToUpper(s) {
	case "SELECT", "FROM", "WHERE", "ORDER", "BY", "LIMIT", "ASC", "DESC", "AND", "OR", "NOT", "IN":
		return true
	}
	return false
}

const maxDepth = 64

func (p *parser) expr() (Expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, fmt.Errorf("nested too deeply")
	}
	left, err := p.conjunction()
	for err == nil && p.keyword("OR") {
		var right Expr
		if right, err = p.conjunction(); err == nil {
			left = Logical{"OR", left, right}
		}
	}
	return left, err
}

func (p *parser) conjunction() (Expr, error) {
	left, err := p.factor()
	for err == nil && p.keyword("AND") {
		var right Expr
		if right, err = p.factor(); err == nil {
			left = Logical{"AND", left, right}
		}
	}
	return left, err
}

func (p *parser) factor() (Expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, fmt.Errorf("nested too deeply")
	}
	if err := p.term(); err != nil {
		return nil, err
	}
	if p.keyword("NOT") {
		x, err := p.factor()
		return Not{x}, err
	}
	if t := p.peek(); t.kind == "punct" && t.text == "(" {
		p.next()
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		return e, p.expect("punct", ")")
	}
	if t := p.peek(); t.kind == "ident" {
		switch strings.ToUpper(t.text) {
		case "EXISTS", "IS_DEFINED":
			p.next()
			if err := p.expect("punct", "("); err != nil {
				return nil, err
			}
			path, err := p.path()
			if err != nil {
				return nil, err
			}
			return Exists{path}, p.expect("punct", ")")
		case "STARTSWITH":
			p.next()
			if err := p.expect("punct", "("); err != nil {
				return nil, err
			}
			path, err := p.path()
			if err != nil {
				return nil, err
			}
			if err := p.expect("punct", ","); err != nil {
				return nil, err
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			prefix, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("STARTSWITH needs a string prefix")
			}
			return StartsWith{path, prefix}, p.expect("punct", ")")
		}
	}
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	if p.keyword("IN") {
		if err := p.expect("punct", "("); err != nil {
			return nil, err
		}
		var vals []any
		for {
			if err := p.term(); err != nil {
				return nil, err
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			vals = append(vals, v)
			if t := p.next(); t.kind == "punct" && t.text == ")" {
				return In{path, vals}, nil
			} else if t.kind != "punct" || t.text != "," {
				return nil, fmt.Errorf("expected , or ) in IN at %d", t.pos)
			}
		}
	}
	t := p.next()
	if t.kind != "op" {
		return nil, fmt.Errorf("expected a comparison after %s at %d", strings.Join(path, "."), t.pos)
	}
	op := t.text
	if op == "<>" {
		op = "!="
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	return Compare{path, op, v}, nil
}

// path reads alias.field.field or alias["field"]; without a SELECT, the
// first name is the alias too.
func (p *parser) path() ([]string, error) {
	t := p.next()
	if t.kind != "ident" || isKeyword(t.text) {
		return nil, fmt.Errorf("expected a path like c.field at %d, found %q", t.pos, t.text)
	}
	if p.alias != "" && t.text != p.alias {
		return nil, fmt.Errorf("path at %d must start with the alias %s", t.pos, p.alias)
	}
	var path []string
	for {
		n := p.peek()
		switch {
		case n.kind == "punct" && n.text == ".":
			p.next()
			f := p.next()
			if f.kind != "ident" {
				return nil, fmt.Errorf("expected a field name at %d", f.pos)
			}
			path = append(path, f.text)
		case n.kind == "punct" && n.text == "[":
			p.next()
			f := p.next()
			if f.kind != "string" {
				return nil, fmt.Errorf(`expected ["field"] at %d`, f.pos)
			}
			path = append(path, f.text)
			if err := p.expect("punct", "]"); err != nil {
				return nil, err
			}
		default:
			if len(path) == 0 {
				return nil, fmt.Errorf("path at %d names no field: write %s.field", t.pos, t.text)
			}
			return path, nil
		}
	}
}

func (p *parser) value() (any, error) {
	t := p.next()
	switch t.kind {
	case "string":
		return t.text, nil
	case "number":
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %q at %d", t.text, t.pos)
		}
		return f, nil
	case "param":
		v, ok := p.params[strings.TrimPrefix(t.text, "@")]
		if !ok {
			v, ok = p.params[t.text]
		}
		if !ok {
			return nil, fmt.Errorf("parameter %s at %d is not given", t.text, t.pos)
		}
		switch v := v.(type) {
		case string, float64, bool, nil:
			return v, nil
		case int:
			return float64(v), nil
		case int64:
			return float64(v), nil
		}
		return nil, fmt.Errorf("parameter %s: only strings, numbers, booleans and null", t.text)
	case "ident":
		switch strings.ToLower(t.text) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
	}
	return nil, fmt.Errorf("expected a value at %d, found %q", t.pos, t.text)
}
