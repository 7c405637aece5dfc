package cursorsource

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// checkDeletes is a key pass of t (TableConfig.DeleteCheck): it reads t's
// keys and hands over as Deletes, in batches of BatchSize, the keys gone
// since the previous key pass: keys that pass saw, or that the cursor
// reads handed over since it began, and that this one does not see. The
// batches carry the tables' progress unchanged, so that resuming after one
// is resuming after the last batch of reads. The first pass of a Run has
// nothing to compare with (it runs before the table's first read): it
// only records the keys.
//
// A row inserted after a pass and hard-deleted before the next is in
// neither pass: if the cursor reads handed it over meanwhile, t.handed has
// its key and it is deleted; if not, it never reached the destination. A
// row deleted and inserted again with the same key between passes is seen
// by the second: it is not deleted (its Read comes by cursor).
func (s *Source) checkDeletes(ctx context.Context, db *sql.DB, d dialect, t *table, tables []*table, emit pipeline.Emit) error {
	// The keys handed over before this pass began are compared with it;
	// those handed over from now on, with the next one.
	handed := t.handed
	t.handed = map[string]pipeline.Row{}
	seen, err := readKeys(ctx, db, d, t, s.cfg.BatchSize)
	if err != nil {
		return fmt.Errorf("cursorsource: key pass of %s: %w", t.name, err)
	}
	gone := deletions(t, seen, t.keys, handed)
	// A key the pass did not see but that a cursor read handed over after
	// the pass began belongs to a row inserted again behind the pass: its
	// Delete, handed over now, would overtake its Read. Run reads and runs
	// key passes in turn on one goroutine, so no cursor read ran during
	// this pass and t.handed is still empty here; the filter keeps the
	// deletes right should reads and passes ever overlap.
	gone = slices.DeleteFunc(gone, func(c pipeline.Change) bool {
		_, ok := t.handed[keyID(t, c.Key)]
		return ok
	})
	t.keys = seen
	t.checkAt = s.clock().Add(t.cfg.DeleteCheck)
	pos := positionOf(tables)
	for changes := range slices.Chunk(gone, s.cfg.BatchSize) {
		b := pipeline.Batch{Changes: changes, Tables: map[string]pipeline.Table{t.name: t.desc}, Position: pos}
		if err := emit(ctx, b); err != nil {
			return err
		}
	}
	s.cfg.Logger.DebugContext(ctx, "cursorsource: key pass", slog.String("table", t.name),
		slog.Int("keys", len(seen)), slog.Int("deletes", len(gone)))
	if s.afterKeyPass != nil {
		s.afterKeyPass(t.name)
	}
	return nil
}

// readKeys reads t's primary keys (as text, like the cursor reads' Keys),
// by keyset pagination in key order, size keys a query, each query in a
// read-only transaction of its own; the keys are by their keyID.
func readKeys(ctx context.Context, db *sql.DB, d dialect, t *table, size int) (map[string]pipeline.Row, error) {
	sel := make([]string, len(t.key))
	names := make([]string, len(t.key))
	params := make([]string, len(t.key))
	for i, c := range t.key {
		sel[i] = d.text(c)
		names[i] = "r." + d.quote(c.name)
		params[i] = d.param(i+1, c)
	}
	head := "SELECT " + strings.Join(sel, ", ") + " FROM " + fromTable(d, t)
	tail := " ORDER BY " + strings.Join(names, ", ") + " LIMIT " + strconv.Itoa(size)
	first := head + tail
	after := head + " WHERE (" + strings.Join(names, ", ") + ") > (" + strings.Join(params, ", ") + ")" + tail

	keys := map[string]pipeline.Row{}
	var last []any
	for {
		q := first
		if last != nil {
			q = after
		}
		page, err := keyPage(ctx, db, t, q, last)
		if err != nil {
			return nil, err
		}
		for _, key := range page {
			keys[keyID(t, key)] = key
		}
		if len(page) < size {
			return keys, nil
		}
		end := page[len(page)-1]
		last = make([]any, len(t.key))
		for i, c := range t.key {
			last[i] = end[c.name]
		}
	}
}

// keyPage runs a query of readKeys in a read-only transaction of its own.
func keyPage(ctx context.Context, db *sql.DB, t *table, q string, args []any) ([]pipeline.Row, error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // read only: nothing to undo
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	vals := make([]sql.NullString, len(t.key))
	dest := make([]any, len(t.key))
	for i := range vals {
		dest[i] = &vals[i]
	}
	var page []pipeline.Row
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		key := make(pipeline.Row, len(t.key))
		for i, c := range t.key {
			// A primary key's columns are NOT NULL.
			key[c.name] = vals[i].String
		}
		page = append(page, key)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	return page, tx.Commit()
}
