package cursorsource

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/pipeline"
)

var _ pipeline.Backfiller = (*Source)(nil)

// Backfill reads again the rows of req.Table that req.Where selects (every
// row when it is empty) and hands them over as changes, in batches of
// BatchSize rows, each read by one query in a READ ONLY transaction of its
// own, on a connection of its own, so it may run while Run reads. It
// returns the rows handed over. See "Backfill" in the package
// documentation.
func (s *Source) Backfill(ctx context.Context, req pipeline.BackfillRequest, emit pipeline.Emit, progress func(rows int64)) (int64, error) {
	where := strings.TrimSpace(req.Where)
	if strings.ContainsRune(where, ';') {
		return 0, fmt.Errorf("cursorsource: backfill of %s: %w: %q holds a ';': write one condition, without ';'", req.Table, ErrInvalidWhere, where)
	}
	if strings.ContainsRune(where, 0) {
		return 0, fmt.Errorf("cursorsource: backfill of %s: %w: %q holds a NUL character", req.Table, ErrInvalidWhere, where)
	}
	db, d, err := open(ctx, s.kind, s.cfg.URL)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	i, err := s.backfillTable(ctx, db, d, req.Table)
	if err != nil {
		return 0, err
	}
	t, err := s.describeTable(ctx, db, d, i)
	if err != nil {
		return 0, err
	}
	bf := newBackfill(d, t, where, s.cfg.BatchSize)
	log := s.cfg.Logger
	log.InfoContext(ctx, "cursorsource: backfill", slog.String("table", t.name), slog.String("where", where))

	var total int64
	for {
		changes, err := bf.next(ctx, db)
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			return total, fmt.Errorf("cursorsource: backfill of %s: %w", t.name, err)
		}
		if len(changes) == 0 {
			break
		}
		b := pipeline.Batch{Changes: changes, Tables: map[string]pipeline.Table{t.name: t.desc}, Snapshot: true}
		if err := emit(ctx, b); err != nil {
			return total, fmt.Errorf("cursorsource: backfill of %s: stage a batch: %w", t.name, err)
		}
		total += int64(len(changes))
		if progress != nil {
			progress(total)
		}
		if len(changes) < s.cfg.BatchSize {
			break
		}
	}
	log.InfoContext(ctx, "cursorsource: backfill done", slog.String("table", t.name), slog.String("where", where), slog.Int64("rows", total))
	return total, nil
}

// backfillTable is the index in Config.Tables of the table name names: as
// changes name it ("schema.table"), or as the config does.
func (s *Source) backfillTable(ctx context.Context, db *sql.DB, d dialect, name string) (int, error) {
	names := make([]string, len(s.cfg.Tables))
	for i, tc := range s.cfg.Tables {
		if tc.Name == name {
			return i, nil
		}
		schema, table, err := qualify(ctx, db, d, tc.Name)
		if err != nil {
			return 0, err
		}
		names[i] = schema + "." + table
		if names[i] == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: %q is not one of the source's tables (%s): name one of them", ErrUnknownTable, name, strings.Join(names, ", "))
}

// backfill is a backfill's queries and how far it got.
type backfill struct {
	d     dialect
	t     *table
	where string
	// first reads the first batch; after the next ones, given the key of
	// the last row read so far (twice: in the select list and in the
	// WHERE). after's last column is 1 when the row comes after that key:
	// a WHERE that closes its parentheses could otherwise undo the
	// pagination.
	first, after string
	last         []string
}

func newBackfill(d dialect, t *table, where string, size int) *backfill {
	bf := &backfill{d: d, t: t, where: where}
	names := make([]string, len(t.key))
	checkParams := make([]string, len(t.key))
	whereParams := make([]string, len(t.key))
	for i, c := range t.key {
		names[i] = "r." + d.quote(c.name)
		checkParams[i] = d.param(i+1, c)
		whereParams[i] = d.param(len(t.key)+i+1, c)
	}
	order := "(" + strings.Join(names, ", ") + ")"
	var cond string
	if where != "" {
		// On a line of its own: a comment in it ends before the rest.
		cond = "(\n" + where + "\n)"
	}
	tail := " ORDER BY " + strings.Join(names, ", ") + " LIMIT " + strconv.Itoa(size)
	from := " FROM " + fromTable(d, t)
	bf.first = "SELECT " + selectList(d, t) + from
	if cond != "" {
		bf.first += " WHERE " + cond
	}
	bf.first += tail
	keyset := order + " > (" + strings.Join(whereParams, ", ") + ")"
	if cond != "" {
		keyset = cond + " AND " + keyset
	}
	bf.after = "SELECT " + selectList(d, t) + ", CASE WHEN " + order + " > (" + strings.Join(checkParams, ", ") + ") THEN 1 ELSE 0 END" +
		from + " WHERE " + keyset + tail
	return bf
}

// next reads the next batch, in a READ ONLY transaction of its own.
func (bf *backfill) next(ctx context.Context, db *sql.DB) ([]pipeline.Change, error) {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // read only: nothing to undo
	q, args := bf.first, []any(nil)
	var check func(int64) error
	if bf.last != nil {
		q = bf.after
		for range 2 {
			for _, v := range bf.last {
				args = append(args, v)
			}
		}
		check = func(after int64) error {
			if after != 1 {
				return fmt.Errorf("%w: %q makes rows come again (does it close a parenthesis it did not open?)", ErrInvalidWhere, bf.where)
			}
			return nil
		}
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, bf.queryError(err)
	}
	changes, last, err := scanChanges(rows, bf.t, check)
	if err != nil {
		return nil, bf.queryError(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if last != nil {
		bf.last = make([]string, len(bf.t.key))
		for i, c := range bf.t.key {
			bf.last[i], _ = last[c.name].(string)
		}
	}
	return changes, nil
}

// queryError says when an error of a batch's query is the WHERE's.
func (bf *backfill) queryError(err error) error {
	if bf.where == "" {
		return err
	}
	if msg, ok := bf.d.conditionError(err); ok {
		return fmt.Errorf("%w: %q: the server said: %s", ErrInvalidWhere, bf.where, msg)
	}
	return err
}
