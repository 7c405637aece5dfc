package sqlsink

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// A plan is a change set's changes as statements: groups of changes of
// one table, one kind (upsert or delete) and one column set.
type plan struct {
	changes []pipeline.Change
	// strict groups are the change set's runs of changes of one table,
	// kind and column set, in its order. merged groups have deletes moved
	// earlier, past upserts of other keys of their table, into an earlier
	// group of deletes: see merge.
	strict, merged []*group
	rejected       []pipeline.Rejected // changes refused before any statement
}

type group struct {
	id     string // table, kind and columns
	t      *destTable
	delete bool
	// cols are the destination columns written (upsert: the key columns,
	// then the others by name) or matched (delete: the key columns);
	// types are their destination types.
	cols  []string
	types []string
	nkeys int
	// arrayKey: the first key column is of an array type.
	arrayKey bool
	// items are the group's changes in order, several per key when a key
	// changed more than once.
	items []item
}

// An item is one change's row in a group.
type item struct {
	change int // index in the change set
	key    string
	vals   []any // converted for the dialect, by group.cols
	size   int
}

// rows are the group's items, the last per key, in the order of those
// last changes: one statement cannot touch a row twice (PostgreSQL
// refuses it), and the last change of a key wins.
func (g *group) rows() []item {
	last := make(map[string]int, len(g.items))
	for i, it := range g.items {
		last[it.key] = i
	}
	if len(last) == len(g.items) {
		return g.items
	}
	out := make([]item, 0, len(last))
	for i, it := range g.items {
		if last[it.key] == i {
			out = append(out, it)
		}
	}
	return out
}

// chunks cuts rows into statements under the row, parameter and byte
// bounds.
func chunks(rows []item, maxRows, maxBytes int) [][]item {
	var out [][]item
	for len(rows) > 0 {
		n, size := 0, 0
		for n < len(rows) && n < maxRows && (n == 0 || size+rows[n].size <= maxBytes) {
			size += rows[n].size
			n++
		}
		out = append(out, rows[:n])
		rows = rows[n:]
	}
	return out
}

// mapping is how one source table is written in a change set.
type mapping struct {
	source string
	t      *destTable
	keep   map[string]bool   // source columns kept; nil: all
	rename map[string]string // source → destination
	// keys are the source's key columns, srcTypes the source's column
	// types (empty when the change set does not describe the table).
	keys     []string
	srcTypes map[string]string
}

func (m *mapping) destName(col string) string {
	if to, ok := m.rename[col]; ok {
		return to
	}
	return col
}

// plan turns changes into groups, describing (and creating) the
// destination tables they name.
func (s *Sink) plan(ctx context.Context, cs pipeline.ChangeSet, changes []pipeline.Change) (*plan, error) {
	p := &plan{changes: changes}
	mappings := map[string]*mapping{}
	var cur *group
	add := func(m *mapping, c int, del bool, row pipeline.Row) error {
		cols, vals, key, size, err := s.row(m, del, row)
		if err != nil {
			if _, ok := err.(rowError); ok {
				p.rejected = append(p.rejected, pipeline.Rejected{Change: changes[c], Reason: err.Error()})
				return nil
			}
			return err
		}
		id := fmt.Sprintf("%s\x00%t\x00%s", m.t.name, del, strings.Join(cols, "\x00"))
		if cur == nil || id != cur.id {
			types := make([]string, len(cols))
			for i, col := range cols {
				types[i] = m.t.cols[s.d.colKey(col)].typ
			}
			arrayKey := m.t.cols[s.d.colKey(cols[0])].array
			cur = &group{id: id, t: m.t, delete: del, cols: cols, types: types, nkeys: len(m.keys), arrayKey: arrayKey}
			p.strict = append(p.strict, cur)
		}
		cur.items = append(cur.items, item{change: c, key: key, vals: vals, size: size})
		return nil
	}
	for i, c := range changes {
		if !c.Op.Valid() {
			p.rejected = append(p.rejected, pipeline.Rejected{Change: c, Reason: fmt.Sprintf("unknown op %q", c.Op)})
			continue
		}
		m, ok := mappings[c.Table]
		if !ok {
			var err error
			if m, err = s.mapping(ctx, cs, c); err != nil {
				return nil, err
			}
			mappings[c.Table] = m
		}
		if len(m.keys) == 0 {
			p.rejected = append(p.rejected, pipeline.Rejected{Change: c, Reason: fmt.Sprintf("table %s has no key columns: the sink writes rows by key", c.Table)})
			continue
		}
		if c.Op == pipeline.Delete {
			key := c.Key
			if len(key) == 0 {
				key = c.Before
			}
			if err := add(m, i, true, key); err != nil {
				return nil, err
			}
			continue
		}
		row := c.After
		// An update of the key moves the row: Key is the old key, After
		// the new row. The old row goes first, and the new one is whole:
		// what After lacks (unchanged TOASTed values) comes from Before
		// when the source gave it.
		if c.Op == pipeline.Update {
			if old := movedFrom(m.keys, c); old != nil {
				if err := add(m, i, true, old); err != nil {
					return nil, err
				}
				if c.Before != nil {
					row = maps2(c.Before, c.After)
				}
			}
		}
		if missing := missingKeys(m.keys, row, c.Key); missing {
			row = maps2(c.Key, row)
		}
		if err := add(m, i, false, row); err != nil {
			return nil, err
		}
	}
	p.merged = merge(p.strict)
	return p, nil
}

// merge moves each delete into the last group of deletes of its table
// before it, when the changes between (of that table only: changes of
// other tables stay in order) do not touch its key. The order of each
// key's changes stays, and so does the final state; a statement sees
// fewer rows than in the change set's order, never more, so that no
// unique index refuses (or, in MariaDB, diverts) an upsert it would not
// have in that order. Interleaved upserts and deletes then take a few
// statements instead of one per run (upserts of one column set that only
// deletes separated are one group again). What the reordering could break (a
// foreign key of a table to itself: a row's parent deleted before the
// row moves to another parent) fails, and Apply redoes the change set in
// strict order.
func merge(strict []*group) []*group {
	var (
		out []*group
		// In the current run of groups of one table: the last group of
		// deletes, and the group that last touched each key.
		table    *destTable
		dels     *group
		touched  map[string]int
		lastDels int
	)
	for _, g := range strict {
		if g.t != table {
			table, dels, touched = g.t, nil, map[string]int{}
		}
		if !g.delete {
			if last := len(out) - 1; last >= 0 && out[last].id == g.id {
				// The deletes between moved earlier: one group again.
				out[last].items = append(out[last].items, g.items...)
			} else {
				c := *g
				c.items = slices.Clone(g.items)
				out = append(out, &c)
			}
			for _, it := range g.items {
				touched[it.key] = len(out) - 1
			}
			continue
		}
		for _, it := range g.items {
			if at, ok := touched[it.key]; dels != nil && (!ok || at <= lastDels) {
				dels.items = append(dels.items, it)
				touched[it.key] = lastDels
				continue
			}
			if dels == nil || lastDels != len(out)-1 {
				dels = &group{id: g.id, t: g.t, delete: true, cols: g.cols, types: g.types, nkeys: g.nkeys, arrayKey: g.arrayKey}
				out = append(out, dels)
				lastDels = len(out) - 1
			}
			dels.items = append(dels.items, it)
			touched[it.key] = lastDels
		}
	}
	return out
}

// movedFrom is the old key of an update that changed the key: c.Key
// (its columns it lacks from c.Before), when a key column of c.After
// differs from it; nil when the key did not change (or the old key is not
// known whole).
func movedFrom(keys []string, c pipeline.Change) pipeline.Row {
	old := make(pipeline.Row, len(keys))
	moved := false
	for _, k := range keys {
		v, ok := c.Key[k]
		if !ok {
			if v, ok = c.Before[k]; !ok {
				return nil
			}
		}
		old[k] = v
		// A key column After lacks is the old one (see missingKeys).
		if a, ok := c.After[k]; ok && keyString(a) != keyString(v) {
			moved = true
		}
	}
	if !moved {
		return nil
	}
	return old
}

func missingKeys(keys []string, row, key pipeline.Row) bool {
	for _, k := range keys {
		if _, ok := row[k]; !ok {
			if _, ok := key[k]; ok {
				return true
			}
		}
	}
	return false
}

// maps2 is after with the columns of base it lacks.
func maps2(base, after pipeline.Row) pipeline.Row {
	out := make(pipeline.Row, len(after)+len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range after {
		out[k] = v
	}
	return out
}

// rowError: a change the sink refuses before writing it.
type rowError string

func (e rowError) Error() string { return string(e) }

// row is a change's destination columns and values: for a delete the key
// columns only.
func (s *Sink) row(m *mapping, del bool, row pipeline.Row) (cols []string, vals []any, key string, size int, err error) {
	var keyParts []string
	for _, k := range m.keys {
		v, ok := row[k]
		if !ok || v == nil {
			return nil, nil, "", 0, rowError(fmt.Sprintf("key column %s of %s is missing or null", k, m.source))
		}
		keyParts = append(keyParts, keyString(v))
	}
	key = strings.Join(keyParts, "\x00")
	var names []string
	if del {
		names = m.keys
	} else {
		names = make([]string, 0, len(row))
		for col := range row {
			if m.keep == nil || m.keep[col] || slices.Contains(m.keys, col) {
				names = append(names, col)
			}
		}
		slices.SortFunc(names, func(a, b string) int {
			ka, kb := slices.Index(m.keys, a), slices.Index(m.keys, b)
			switch {
			case ka >= 0 && kb >= 0:
				return ka - kb
			case ka >= 0:
				return -1
			case kb >= 0:
				return 1
			}
			return cmp.Compare(m.destName(a), m.destName(b))
		})
	}
	cols = make([]string, len(names))
	vals = make([]any, len(names))
	for i, col := range names {
		dest := m.destName(col)
		dc, ok := m.t.cols[s.d.colKey(dest)]
		if !ok {
			return nil, nil, "", 0, fmt.Errorf("%w: destination table %s has no column %s (source column %s of %s): add it, or leave the column out with Tables[%q].Columns",
				ErrSchema, m.t.name, dest, col, m.source, m.source)
		}
		cols[i] = dest
		v, err := s.d.value(row[col], m.srcTypes[col], dc.typ)
		if err != nil {
			return nil, nil, "", 0, rowError(fmt.Sprintf("column %s: %v", col, err))
		}
		vals[i] = v
		size += valueSize(v)
	}
	return cols, vals, key, size, nil
}

func valueSize(v any) int {
	switch v := v.(type) {
	case string:
		return len(v) + 8
	case []byte:
		return len(v) + 8
	}
	return 16
}

// keyString is a key value's identity within a change set.
func keyString(v any) string {
	switch v := v.(type) {
	case nil:
		return "\x01"
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
