package cursorsource

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// Source reads tables' changes by cursor. It is safe to Run once at a
// time; Backfill may be called meanwhile, from other goroutines. New's
// checks are of the Config only, Run's of the database.
type Source struct {
	cfg  Config
	kind kind
	// afterPoll, when set (by tests), is called after every round of reads
	// of all the tables; afterKeyPass after every key pass (DeleteCheck),
	// once its deletes were handed over, with the table's name.
	afterPoll    func()
	afterKeyPass func(table string)
	// now is the clock that schedules full refreshes and key passes: nil
	// is time.Now (tests set another).
	now func() time.Time
}

// clock is the time now, by s.now.
func (s *Source) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

var _ pipeline.Source = (*Source)(nil)

// New returns a Source of cfg, or an error wrapping ErrInvalidConfig that
// names the field at fault.
func New(cfg Config) (*Source, error) {
	k, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	return &Source{cfg: cfg.withDefaults(), kind: k}, nil
}

// table is a table being read, and how far.
type table struct {
	cfg    TableConfig
	name   string // "schema.table", as changes give it
	schema string
	table  string
	cols   []column
	key    []column
	cursor column
	// deleted is the SQL expression of a soft-deleted row ("0" without a
	// SoftDelete column).
	deleted string
	desc    pipeline.Table
	prog    progress
	// Full refresh: the keys of the pass under way and of the last
	// complete one (nil: none yet in this Run); whole is false when the
	// pass under way resumed from a position (its keys are partial);
	// next is when the next pass may start.
	seen, prev map[string]pipeline.Row
	whole      bool
	inPass     bool
	next       time.Time
	// Delete check (DeleteCheck > 0): the keys of the last complete key
	// pass (nil: none yet in this Run), the keys the cursor reads handed
	// over (as Reads) since it began, and when the next pass is due.
	keys, handed map[string]pipeline.Row
	checkAt      time.Time
}

// Run reads the tables from after until ctx ends (it then returns
// ctx.Err()) or a read or emit fails.
func (s *Source) Run(ctx context.Context, after string, emit pipeline.Emit) error {
	pos, err := parsePosition(after)
	if err != nil {
		return err
	}
	db, d, err := open(ctx, s.kind, s.cfg.URL)
	if err != nil {
		return err
	}
	defer db.Close()
	tables, err := s.describe(ctx, db, d)
	if err != nil {
		return err
	}
	for _, t := range tables {
		t.prog = pos.Tables[t.name]
		if t.cfg.FullRefresh && t.prog.Key != nil {
			// A pass was cut short: it goes on, but its keys are partial.
			t.inPass, t.whole, t.seen = true, false, map[string]pipeline.Row{}
		}
		if t.cfg.DeleteCheck > 0 {
			// checkAt is zero: the first key pass comes before the first
			// read, so that every key read in this Run is compared.
			t.handed = map[string]pipeline.Row{}
		}
	}
	log := s.cfg.Logger
	log.InfoContext(ctx, "cursorsource: reading", slog.Int("tables", len(tables)), slog.Bool("resumed", after != ""))
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		busy := false
		for _, t := range tables {
			if t.cfg.DeleteCheck > 0 && !s.clock().Before(t.checkAt) {
				if err := s.checkDeletes(ctx, db, d, t, tables, emit); err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					return err
				}
			}
			changes, full, err := s.read(ctx, db, d, t)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("cursorsource: read %s: %w", t.name, err)
			}
			busy = busy || full
			if len(changes) == 0 {
				continue
			}
			b := pipeline.Batch{Changes: changes, Tables: map[string]pipeline.Table{t.name: t.desc}, Position: positionOf(tables)}
			if err := emit(ctx, b); err != nil {
				return err
			}
			log.DebugContext(ctx, "cursorsource: batch", slog.String("table", t.name), slog.Int("changes", len(changes)))
		}
		if s.afterPoll != nil {
			s.afterPoll()
		}
		if busy {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		timer.Reset(s.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// describe reads the tables' columns and keys from the catalog, and checks
// the configured columns.
func (s *Source) describe(ctx context.Context, db *sql.DB, d dialect) ([]*table, error) {
	var out []*table
	for i := range s.cfg.Tables {
		t, err := s.describeTable(ctx, db, d, i)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// qualify is the schema and the name of table name of the config
// ("table" or "schema.table").
func qualify(ctx context.Context, db *sql.DB, d dialect, name string) (schema, table string, err error) {
	schema, table, ok := strings.Cut(name, ".")
	if ok {
		return schema, table, nil
	}
	if schema, err = d.defaultSchema(ctx, db); err != nil {
		return "", "", fmt.Errorf("cursorsource: %s: %w", name, err)
	}
	return schema, name, nil
}

// describeTable reads the columns and key of Tables[i] from the catalog,
// and checks its configured columns.
func (s *Source) describeTable(ctx context.Context, db *sql.DB, d dialect, i int) (*table, error) {
	tc := s.cfg.Tables[i]
	t := &table{cfg: tc}
	schema, name, err := qualify(ctx, db, d, tc.Name)
	if err != nil {
		return nil, err
	}
	t.schema, t.table, t.name = schema, name, schema+"."+name
	cols, key, found, err := d.describe(ctx, db, schema, name)
	switch {
	case err != nil:
		return nil, fmt.Errorf("cursorsource: describe %s: %w", t.name, err)
	case !found:
		return nil, fmt.Errorf("%w: %s (Tables[%d]): %s", ErrTableNotFound, t.name, i, d.noSuchTable())
	case len(key) == 0:
		return nil, fmt.Errorf("%w: %s (Tables[%d]): add one (ALTER TABLE %s ADD PRIMARY KEY (…)); rows that share a cursor value are told apart, and read in order, by it",
			ErrNoPrimaryKey, t.name, i, t.name)
	}
	t.cols = cols
	byName := map[string]column{}
	for _, c := range cols {
		byName[c.name] = c
	}
	t.desc = pipeline.Table{Name: t.name}
	for _, c := range cols {
		t.desc.Columns = append(t.desc.Columns, pipeline.Column{Name: c.name, Type: c.typ, Key: slices.Contains(key, c.name)})
	}
	for _, k := range key {
		t.key = append(t.key, byName[k])
	}
	if !tc.FullRefresh {
		c, ok := byName[tc.Cursor]
		if !ok {
			return nil, fmt.Errorf("%w: %s has no column %q (Tables[%d].Cursor)", ErrColumnNotFound, t.name, tc.Cursor, i)
		}
		if !c.orderable {
			return nil, fmt.Errorf("%w: %s.%s (Tables[%d].Cursor) is %s: use a column of a number, date/time or string type that grows on every insert and update (updated_at, a row version)",
				ErrCursorType, t.name, c.name, i, c.typ)
		}
		t.cursor = c
	}
	t.deleted = "0"
	if tc.SoftDelete != "" {
		c, ok := byName[tc.SoftDelete]
		if !ok {
			return nil, fmt.Errorf("%w: %s has no column %q (Tables[%d].SoftDelete)", ErrColumnNotFound, t.name, tc.SoftDelete, i)
		}
		if c.boolean {
			t.deleted = "CASE WHEN " + d.quote(c.name) + " IS TRUE THEN 1 ELSE 0 END"
		} else {
			t.deleted = "CASE WHEN " + d.quote(c.name) + " IS NOT NULL THEN 1 ELSE 0 END"
		}
	}
	return t, nil
}

// read reads t's next rows, advances t.prog past them and returns their
// changes; full reports that there may be more to read at once.
func (s *Source) read(ctx context.Context, db *sql.DB, d dialect, t *table) (changes []pipeline.Change, full bool, err error) {
	if t.cfg.FullRefresh && !t.inPass {
		if s.clock().Before(t.next) {
			return nil, false, nil
		}
		t.inPass, t.whole, t.seen = true, true, map[string]pipeline.Row{}
	}
	var q strings.Builder
	var args []any
	q.WriteString("SELECT " + selectList(d, t) + " FROM " + fromTable(d, t))
	// order: the columns rows are read in order of, the cursor first.
	order := t.key
	var from []string
	if t.cfg.FullRefresh {
		from = t.prog.Key
		q.WriteString(" WHERE true")
	} else {
		order = append([]column{t.cursor}, t.key...)
		if t.prog.Cursor != nil {
			from = append([]string{*t.prog.Cursor}, t.prog.Key...)
		}
		q.WriteString(" WHERE " + d.quote(t.cursor.name) + " IS NOT NULL")
		if t.cursor.timestamp && s.cfg.Lag > 0 {
			args = append(args, d.lagArg(s.cfg.Lag))
			q.WriteString(" AND " + d.quote(t.cursor.name) + " <= " + d.horizon(t.cursor, len(args)))
		}
	}
	names := make([]string, len(order))
	for i, c := range order {
		names[i] = "r." + d.quote(c.name)
	}
	if from != nil {
		if len(from) != len(order) {
			return nil, false, fmt.Errorf("%w: %s: position has %d values, the table's order %d columns", ErrBadPosition, t.name, len(from), len(order))
		}
		params := make([]string, len(order))
		for i, c := range order {
			args = append(args, from[i])
			params[i] = d.param(len(args), c)
		}
		q.WriteString(" AND (" + strings.Join(names, ", ") + ") > (" + strings.Join(params, ", ") + ")")
	}
	q.WriteString(" ORDER BY " + strings.Join(names, ", ") + " LIMIT " + strconv.Itoa(s.cfg.BatchSize))

	rows, err := db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, false, err
	}
	changes, last, err := scanChanges(rows, t, nil)
	if err != nil {
		return nil, false, err
	}
	n := len(changes)
	if t.cfg.FullRefresh {
		for _, c := range changes {
			if c.Op == pipeline.Read {
				t.seen[keyID(t, c.Key)] = c.Key
			}
		}
	}
	if t.handed != nil {
		for _, c := range changes {
			if c.Op == pipeline.Read {
				t.handed[keyID(t, c.Key)] = c.Key
			} else {
				// Deleted already (soft): no need to delete it again.
				delete(t.handed, keyID(t, c.Key))
			}
		}
	}
	if last != nil {
		t.prog.Key = make([]string, len(t.key))
		for i, c := range t.key {
			t.prog.Key[i], _ = last[c.name].(string)
		}
		if !t.cfg.FullRefresh {
			c, _ := last[t.cursor.name].(string)
			t.prog.Cursor = &c
		}
	}
	full = n == s.cfg.BatchSize
	if t.cfg.FullRefresh && !full {
		// The pass is over: what the last complete pass had and this one
		// has not was deleted.
		if t.prev != nil && t.whole {
			changes = append(changes, deletions(t, t.seen, t.prev)...)
		}
		t.prev, t.seen = t.seen, nil
		t.inPass, t.prog.Key = false, nil
		t.next = s.clock().Add(s.cfg.PollInterval)
	}
	return changes, full, nil
}

// positionOf is the position of the tables' progress.
func positionOf(tables []*table) string {
	p := position{Tables: make(map[string]progress, len(tables))}
	for _, t := range tables {
		p.Tables[t.name] = t.prog
	}
	return p.String()
}

// deletions are Deletes (Key only) of t's keys that one of before has and
// now has not, in the order of their keyID. Full refresh and key passes
// (DeleteCheck) find deletes with it.
func deletions(t *table, now map[string]pipeline.Row, before ...map[string]pipeline.Row) []pipeline.Change {
	gone := map[string]pipeline.Row{}
	for _, b := range before {
		for id, key := range b {
			if _, ok := now[id]; !ok {
				gone[id] = key
			}
		}
	}
	var changes []pipeline.Change
	for _, id := range slices.Sorted(maps.Keys(gone)) {
		changes = append(changes, pipeline.Change{Op: pipeline.Delete, Table: t.name, Key: gone[id]})
	}
	return changes
}

// selectList selects t's columns as text, then whether the row is
// soft-deleted (1 or 0).
func selectList(d dialect, t *table) string {
	var b strings.Builder
	for _, c := range t.cols {
		b.WriteString(d.text(c))
		b.WriteString(", ")
	}
	b.WriteString(t.deleted)
	return b.String()
}

// fromTable is t, aliased r. The alias qualifies the columns ordered by:
// unqualified, PostgreSQL would order by the output columns of the same
// names, as text.
func fromTable(d dialect, t *table) string {
	return d.quote(t.schema) + "." + d.quote(t.table) + " AS r"
}

// scanChanges reads the rows of a query of selectList's columns as
// changes of t: a Read of each row, or a Delete of its key when it is
// soft-deleted; last is the last row read. With check, each row has one
// more column, which check is given.
func scanChanges(rows *sql.Rows, t *table, check func(int64) error) (changes []pipeline.Change, last pipeline.Row, err error) {
	defer rows.Close()
	vals := make([]sql.NullString, len(t.cols))
	dest := make([]any, len(t.cols)+1, len(t.cols)+2)
	for i := range vals {
		dest[i] = &vals[i]
	}
	var deleted, extra int64
	dest[len(t.cols)] = &deleted
	if check != nil {
		dest = append(dest, &extra)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, err
		}
		if check != nil {
			if err := check(extra); err != nil {
				return nil, nil, err
			}
		}
		row := make(pipeline.Row, len(t.cols))
		for i, c := range t.cols {
			if vals[i].Valid {
				row[c.name] = vals[i].String
			} else {
				row[c.name] = nil
			}
		}
		key := make(pipeline.Row, len(t.key))
		for _, c := range t.key {
			key[c.name] = row[c.name]
		}
		if deleted != 0 {
			changes = append(changes, pipeline.Change{Op: pipeline.Delete, Table: t.name, Key: key})
		} else {
			changes = append(changes, pipeline.Change{Op: pipeline.Read, Table: t.name, Key: key, After: row})
		}
		last = row
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	return changes, last, nil
}

// keyID is a row's key as a map key.
func keyID(t *table, key pipeline.Row) string {
	var b strings.Builder
	for _, c := range t.key {
		s, _ := key[c.name].(string)
		b.WriteString(strconv.Quote(s))
	}
	return b.String()
}
