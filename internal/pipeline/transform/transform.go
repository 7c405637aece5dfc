package transform

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// Transform reshapes the changes of a destination. It is safe for use by
// several goroutines at once; Apply never modifies what it is given.
type Transform struct {
	tables   map[string]*table
	fallback *table // Tables["*"]; nil: tables not named pass through
	timeout  time.Duration
}

// table is a TableConfig compiled.
type table struct {
	name             string // its key in Config.Tables, for messages
	filter           *expr
	include, exclude map[string]bool
	rename           map[string]string
	computes         []computed // by name
	computedCols     map[string]bool
}

type computed struct {
	name, typ string
	expr      *expr
}

// New compiles cfg: it checks every rule that does not depend on the
// tables (see ErrInvalidConfig) and compiles every jq expression. The
// errors name the table, the field and what to change.
func New(cfg Config) (*Transform, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	t := &Transform{tables: make(map[string]*table, len(cfg.Tables)), timeout: cfg.Timeout}
	for name, tc := range cfg.Tables {
		tb, err := compileTable(name, tc)
		if err != nil {
			return nil, err
		}
		if name == Wildcard {
			t.fallback = tb
		} else {
			t.tables[name] = tb
		}
	}
	return t, nil
}

func compileTable(name string, tc TableConfig) (*table, error) {
	tb := &table{name: name, include: setOf(tc.Include), exclude: setOf(tc.Exclude), rename: tc.Rename}
	if strings.TrimSpace(tc.Filter) != "" {
		f, err := compile(tc.Filter)
		if err != nil {
			return nil, configError(name, "Filter", "%v", err)
		}
		tb.filter = f
	}
	if len(tc.Compute) > 0 {
		tb.computedCols = make(map[string]bool, len(tc.Compute))
	}
	for _, col := range slices.Sorted(maps.Keys(tc.Compute)) {
		c := tc.Compute[col]
		e, err := compile(c.Expr)
		if err != nil {
			return nil, configError(name, fmt.Sprintf("Compute[%q].Expr", col), "%v", err)
		}
		tb.computes = append(tb.computes, computed{name: col, typ: cmpOr(c.Type, defaultType), expr: e})
		tb.computedCols[col] = true
	}
	return tb, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// config is the compiled config of source table name, nil for none.
func (t *Transform) config(name string) *table {
	if tb, ok := t.tables[name]; ok {
		return tb
	}
	return t.fallback
}

// Apply reshapes a change set for the destination, before its sink's
// Apply. It returns the change set with its Tables describing the
// destination's shape of every configured table (and Count the number of
// changes returned), the changes that remain, in order, and those
// rejected (as they came, with the reason; dead-letter them as a sink's).
// The sink must be called even when no change remains, so that its
// position moves past the change set.
//
// A change of a table without config is returned as it is; a Transform
// without any config (or nil) returns cs and changes themselves.
//
// Apply returns an error (with cs as given, and no changes) when ctx
// ends (ctx.Err()) or when a table's config does not fit the table
// (ErrTableMismatch): none of the change set must be applied then; retry
// it later, as after a sink's error (a mismatch lasts until the config
// changes).
func (t *Transform) Apply(ctx context.Context, cs pipeline.ChangeSet, changes []pipeline.Change) (pipeline.ChangeSet, []pipeline.Change, []pipeline.Rejected, error) {
	if t == nil || len(t.tables) == 0 && t.fallback == nil {
		return cs, changes, nil, nil
	}
	if err := ctx.Err(); err != nil {
		return cs, nil, nil, err
	}
	var plans map[string]*plan
	var tables map[string]pipeline.Table
	var mismatch error
	mismatchAt := ""
	for name, desc := range cs.Tables {
		tb := t.config(name)
		if tb == nil {
			continue
		}
		p, err := newPlan(t, name, tb, &desc)
		if err != nil {
			// The first table's by name, so that the error is the same on
			// every try.
			if mismatch == nil || name < mismatchAt {
				mismatch, mismatchAt = err, name
			}
			continue
		}
		if tables == nil {
			tables = maps.Clone(cs.Tables)
			plans = map[string]*plan{}
		}
		tables[name] = p.desc
		plans[name] = p
	}
	if mismatch != nil {
		return cs, nil, nil, mismatch
	}
	var (
		out      []pipeline.Change
		rejected []pipeline.Rejected
	)
	for i := range changes {
		c := &changes[i]
		tb := t.config(c.Table)
		if tb == nil {
			if out != nil {
				out = append(out, *c)
			}
			continue
		}
		if out == nil {
			out = make([]pipeline.Change, i, len(changes))
			copy(out, changes[:i])
		}
		p := plans[c.Table]
		if p == nil {
			var err error
			if p, err = newPlan(t, c.Table, tb, nil); err != nil {
				return cs, nil, nil, err
			}
			if plans == nil {
				plans = map[string]*plan{}
			}
			plans[c.Table] = p
		}
		res, keep, err := p.change(ctx, c)
		switch {
		case errors.Is(err, ErrTableMismatch) || ctx.Err() != nil:
			return cs, nil, nil, cmpErr(ctx.Err(), err)
		case err != nil:
			rejected = append(rejected, pipeline.Rejected{Change: *c, Reason: fmt.Sprintf("transform: table %s: %v", c.Table, err)})
		case keep:
			out = append(out, res)
		}
	}
	if tables != nil {
		cs.Tables = tables
	}
	if out == nil {
		return cs, changes, nil, nil
	}
	cs.Count = len(out)
	return cs, out, rejected, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// A plan is a table's config applied to one change set.
type plan struct {
	*table
	t      *Transform
	source string
	// keys are the key columns the change set's description names (none
	// when it does not describe the table: then each change's Key says).
	keys map[string]bool
	desc pipeline.Table // the destination's description
}

// newPlan checks tb against the source's description (desc, nil when
// the change set has none) and describes the destination's table.
func newPlan(t *Transform, source string, tb *table, desc *pipeline.Table) (*plan, error) {
	p := &plan{table: tb, t: t, source: source, keys: map[string]bool{}}
	if desc == nil {
		return p, nil
	}
	for _, col := range desc.Columns {
		if col.Key {
			if err := p.checkKey(col.Name); err != nil {
				return nil, err
			}
			p.keys[col.Name] = true
		}
	}
	p.desc = pipeline.Table{Name: desc.Name}
	from := map[string]string{} // destination column → source column
	add := func(src string, col pipeline.Column) error {
		col.Name = p.renamed(src)
		if other, dup := from[col.Name]; dup {
			return p.collision(other, src, col.Name)
		}
		from[col.Name] = src
		p.desc.Columns = append(p.desc.Columns, col)
		return nil
	}
	// A computed column that replaces a source column takes its place;
	// the others come last, by name.
	replaced := map[string]bool{}
	for _, col := range desc.Columns {
		src := col.Name
		if p.computedCols[src] {
			replaced[src] = true
			col = pipeline.Column{Type: p.computedType(src)}
		} else if !p.keep(src, col.Key) {
			continue
		}
		if err := add(src, col); err != nil {
			return nil, err
		}
	}
	for _, c := range p.computes {
		if replaced[c.name] {
			continue
		}
		if err := add(c.name, pipeline.Column{Type: c.typ}); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (tb *table) computedType(col string) string {
	for _, c := range tb.computes {
		if c.name == col {
			return c.typ
		}
	}
	return defaultType
}

// checkKey checks that key column col is kept as it is.
func (p *plan) checkKey(col string) error {
	switch {
	case p.exclude[col]:
		return fmt.Errorf("%w: table %s: Tables[%q].Exclude drops %s, a key column: destinations write rows by key; remove it from Exclude", ErrTableMismatch, p.source, p.name, col)
	case p.computedCols[col]:
		return fmt.Errorf("%w: table %s: Tables[%q].Compute replaces %s, a key column: a row's key must stay the source's; compute a column of another name", ErrTableMismatch, p.source, p.name, col)
	}
	return nil
}

func (p *plan) collision(a, b, to string) error {
	if a > b {
		a, b = b, a
	}
	return fmt.Errorf("%w: table %s: Tables[%q]: columns %s and %s would both be named %s: rename or drop one of them", ErrTableMismatch, p.source, p.name, a, b, to)
}

// keep reports whether source column col is kept (before renaming).
func (tb *table) keep(col string, key bool) bool {
	switch {
	case key || tb.computedCols[col]:
		return true
	case tb.include != nil:
		return tb.include[col]
	}
	return !tb.exclude[col]
}

func (tb *table) renamed(col string) string {
	if to, ok := tb.rename[col]; ok {
		return to
	}
	return col
}

// errCollision: a row has two columns that would have the same name in
// the destination (seen in rows of tables the change set does not
// describe; for those it does, Apply returns ErrTableMismatch).
var errCollision = errors.New("two columns would have the same name")

// change reshapes one change of the plan's table: the reshaped change
// and whether it is kept, or the reason it is rejected (or Apply's
// error: ErrTableMismatch, or ctx's).
func (p *plan) change(ctx context.Context, c *pipeline.Change) (pipeline.Change, bool, error) {
	if !c.Op.Valid() {
		return pipeline.Change{}, false, fmt.Errorf("unknown op %q", c.Op)
	}
	for col := range c.Key {
		if !p.keys[col] {
			if err := p.checkKey(col); err != nil {
				return pipeline.Change{}, false, err
			}
		}
	}
	ev := evaluation{p: p, ctx: ctx, c: c}
	defer ev.close()
	op := c.Op
	if op != pipeline.Delete && p.filter != nil {
		match, err := ev.filter(c.After)
		if err != nil {
			return pipeline.Change{}, false, err
		}
		if !match {
			if op != pipeline.Update {
				return pipeline.Change{}, false, nil
			}
			// The row left the destination's range: it goes.
			op = pipeline.Delete
		}
	}
	out := *c
	out.Op = op
	key, err := p.shape(c.Key, c.Key, nil)
	if err != nil {
		return pipeline.Change{}, false, err
	}
	out.Key = key
	if op == pipeline.Delete {
		// A Delete is never rejected: its key is all a sink needs, so a
		// Before that cannot be reshaped is left out.
		out.After, out.Before = nil, nil
		if c.Before != nil {
			if vals, err := ev.compute(c.Before); err == nil {
				out.Before, _ = p.shape(c.Before, c.Key, vals)
			} else if ctx.Err() != nil {
				return pipeline.Change{}, false, ctx.Err()
			}
		}
		return out, true, nil
	}
	for _, r := range []struct {
		row pipeline.Row
		dst *pipeline.Row
	}{{c.After, &out.After}, {c.Before, &out.Before}} {
		if r.row == nil {
			continue
		}
		vals, err := ev.compute(r.row)
		if err != nil {
			return pipeline.Change{}, false, err
		}
		if *r.dst, err = p.shape(r.row, c.Key, vals); err != nil {
			return pipeline.Change{}, false, err
		}
	}
	return out, true, nil
}

// shape keeps, renames and adds the computed columns (vals, in
// p.computes' order; nil for a Key) of a row of a change whose key is key.
func (p *plan) shape(row, key pipeline.Row, vals []any) (pipeline.Row, error) {
	out := make(pipeline.Row, len(row)+len(vals))
	for col, v := range row {
		if p.computedCols[col] {
			continue
		}
		_, isKey := key[col]
		if !p.keep(col, isKey || p.keys[col]) {
			continue
		}
		name := p.renamed(col)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: %s and another column would be %s: rename or drop one of them with Tables[%q]", errCollision, col, name, p.name)
		}
		out[name] = v
	}
	for i, v := range vals {
		name := p.renamed(p.computes[i].name)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: computed column %s and another column would be %s: rename or drop one of them with Tables[%q]", errCollision, p.computes[i].name, name, p.name)
		}
		out[name] = v
	}
	return out, nil
}

// An evaluation runs a plan's expressions on one change's rows, with its
// variables made once.
type evaluation struct {
	p    *plan
	ctx  context.Context
	c    *pipeline.Change
	vars []any
	// runCtx bounds the change's runs together: made by the first.
	runCtx context.Context
	cancel context.CancelFunc
}

func (ev *evaluation) run(e *expr, in map[string]any, vars []any) (any, error) {
	if ev.runCtx == nil {
		ev.runCtx, ev.cancel = context.WithTimeout(ev.ctx, ev.p.t.timeout)
	}
	return e.run(ev.ctx, ev.runCtx, ev.p.t.timeout, in, vars)
}

func (ev *evaluation) close() {
	if ev.cancel != nil {
		ev.cancel()
	}
}

func (ev *evaluation) variables() ([]any, error) {
	if ev.vars == nil {
		key, err := jqInput(ev.c.Key)
		if err != nil {
			return nil, fmt.Errorf("key %w", err)
		}
		ev.vars = []any{string(ev.c.Op), ev.c.Table, key}
	}
	return ev.vars, nil
}

// input is the row expressions see: row, or the key when the change
// has no row.
func (ev *evaluation) input(row pipeline.Row) (map[string]any, []any, error) {
	if row == nil {
		row = ev.c.Key
	}
	in, err := jqInput(row)
	if err != nil {
		return nil, nil, err
	}
	vars, err := ev.variables()
	return in, vars, err
}

// filter reports whether row belongs to the destination.
func (ev *evaluation) filter(row pipeline.Row) (bool, error) {
	in, vars, err := ev.input(row)
	if err != nil {
		return false, err
	}
	f := ev.p.filter
	v, err := ev.run(f, in, vars)
	switch {
	case errors.Is(err, errNoResult):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("the Filter %s: %w", f.src, err)
	}
	switch v := v.(type) {
	case bool:
		return v, nil
	case nil:
		return false, nil
	}
	return false, fmt.Errorf("the Filter %s gave %s, not true or false: compare it (.status == \"open\") or test it (.archived | not)", f.src, describe(v))
}

// compute is the computed columns' values on row (nil when there are
// none).
func (ev *evaluation) compute(row pipeline.Row) ([]any, error) {
	if len(ev.p.computes) == 0 {
		return nil, nil
	}
	in, vars, err := ev.input(row)
	if err != nil {
		return nil, err
	}
	vals := make([]any, len(ev.p.computes))
	for i, c := range ev.p.computes {
		v, err := ev.run(c.expr, in, vars)
		if errors.Is(err, errNoResult) {
			err = errors.New("no result: give a default (... // null)")
		}
		if err == nil {
			vals[i], err = fromJQ(v)
		}
		if err != nil {
			return nil, fmt.Errorf("the computed column %q (%s): %w", c.name, c.expr.src, err)
		}
	}
	return vals, nil
}
