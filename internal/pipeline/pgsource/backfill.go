package pgsource

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluicehq/sluice/internal/pipeline"
)

var _ pipeline.Backfiller = (*Source)(nil)

// Backfill reads again the rows of req.Table that req.Where selects (every
// row when it is empty) and hands them over as Read changes, in batches
// of BatchSize rows, each read by one query in a READ ONLY transaction of
// its own on a connection of its own, so it may run while Run streams.
// It returns the rows handed over. See "Backfill" in the package
// documentation.
func (s *Source) Backfill(ctx context.Context, req pipeline.BackfillRequest, emit pipeline.Emit, progress func(rows int64)) (int64, error) {
	name, err := s.backfillTable(req.Table)
	if err != nil {
		return 0, err
	}
	where, err := checkWhere(req.Where)
	if err != nil {
		return 0, fmt.Errorf("pgsource: backfill of %s: %w", name, err)
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	types := &typeNames{conn: conn, connect: s.connect, cache: map[typeKey]string{}}
	infos, err := describe(ctx, conn, []tableName{name}, types)
	if err != nil {
		return 0, err
	}
	bf := newBackfill(infos[0], where, s.cfg.BatchSize)
	s.log.Info("pgsource: backfill", "table", name.String(), "where", where)

	var total int64
	for {
		changes, err := bf.next(ctx, conn)
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			return total, fmt.Errorf("pgsource: backfill of %s: %w", name, err)
		}
		if len(changes) == 0 {
			break
		}
		b := pipeline.Batch{Changes: changes, Tables: map[string]pipeline.Table{bf.t.desc.Name: bf.t.desc}, Snapshot: true}
		if err := emit(ctx, b); err != nil {
			return total, fmt.Errorf("pgsource: backfill of %s: stage a batch: %w", name, err)
		}
		total += int64(len(changes))
		if progress != nil {
			progress(total)
		}
		if len(changes) < s.cfg.BatchSize {
			break
		}
	}
	s.log.Info("pgsource: backfill done", "table", name.String(), "where", where, "rows", total)
	return total, nil
}

// backfillTable is the configured table name names: "schema.table", or
// "table" for public.table.
func (s *Source) backfillTable(name string) (tableName, error) {
	if t, err := parseTableName(name); err == nil && slices.Contains(s.tables, t) {
		return t, nil
	}
	names := make([]string, len(s.tables))
	for i, t := range s.tables {
		names[i] = t.String()
	}
	return tableName{}, fmt.Errorf("%w: %q is not one of the source's tables (%s): name one of them", ErrUnknownTable, name, strings.Join(names, ", "))
}

// checkWhere returns where trimmed, or an error if it cannot be one
// condition.
func checkWhere(where string) (string, error) {
	where = strings.TrimSpace(where)
	if strings.ContainsRune(where, ';') {
		return "", fmt.Errorf("%w: %q holds a ';': write one condition, without ';' (inside a string literal, write chr(59))", ErrInvalidWhere, where)
	}
	if strings.ContainsRune(where, 0) {
		return "", fmt.Errorf("%w: %q holds a NUL character", ErrInvalidWhere, where)
	}
	return where, nil
}

// backfill is a backfill's queries and how far it got.
type backfill struct {
	t     *tableInfo
	where string
	// first reads the first batch; after the next ones, given the order
	// columns' values of the last row read so far. after's last column
	// says whether the row comes after those values: a WHERE that closes
	// its parentheses could otherwise undo the pagination.
	first, after string
	// byCTID: the table has no key index (REPLICA IDENTITY FULL without a
	// primary key): rows are read in ctid order, its last column.
	byCTID bool
	// order are the columns read in order of, with values after the
	// table's columns; last are the last row's.
	order []string
	last  []string
}

func newBackfill(t *tableInfo, where string, size int) *backfill {
	bf := &backfill{t: t, where: where, byCTID: !t.indexed}
	var sel []string
	for _, c := range t.desc.Columns {
		sel = append(sel, pgx.Identifier{c.Name}.Sanitize())
	}
	if bf.byCTID {
		bf.order = []string{"ctid"}
		sel = append(sel, "ctid")
	} else {
		for _, k := range t.key {
			bf.order = append(bf.order, pgx.Identifier{k}.Sanitize())
		}
	}
	order := strings.Join(bf.order, ", ")
	params := make([]string, len(bf.order))
	for i := range params {
		params[i] = "$" + strconv.Itoa(i+1)
	}
	keyset := "(" + order + ") > (" + strings.Join(params, ", ") + ")"
	var conds []string
	if where != "" {
		// On a line of its own: a -- comment in it ends before the rest.
		conds = append(conds, "(\n"+where+"\n)")
	}
	tail := " ORDER BY " + order + " LIMIT " + strconv.Itoa(size)
	from := " FROM ONLY " + t.name.sql()
	bf.first = "SELECT " + strings.Join(sel, ", ") + from
	if len(conds) > 0 {
		bf.first += " WHERE " + strings.Join(conds, " AND ")
	}
	bf.first += tail
	bf.after = "SELECT " + strings.Join(append(sel, keyset), ", ") + from +
		" WHERE " + strings.Join(append(conds, keyset), " AND ") + tail
	return bf
}

// next reads the next batch, in a READ ONLY transaction of its own.
func (bf *backfill) next(ctx context.Context, conn *pgx.Conn) ([]pipeline.Change, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only: nothing to undo
	q, args := bf.first, []any{pgx.QueryResultFormats{pgx.TextFormatCode}}
	if bf.last != nil {
		q = bf.after
		for _, v := range bf.last {
			args = append(args, v)
		}
	}
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, bf.queryError(err)
	}
	defer rows.Close()
	cols := bf.t.desc.Columns
	var changes []pipeline.Change
	var last [][]byte
	for rows.Next() {
		raw := rows.RawValues()
		if bf.last != nil && string(raw[len(raw)-1]) != "t" {
			return nil, fmt.Errorf("%w: %q makes rows come again (does it close a parenthesis it did not open?)", ErrInvalidWhere, bf.where)
		}
		row := textRow(raw, cols)
		changes = append(changes, pipeline.Change{Op: pipeline.Read, Table: bf.t.desc.Name, Key: keyOf(row, bf.t.key), After: row})
		last = raw
	}
	if err := rows.Err(); err != nil {
		return nil, bf.queryError(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	if last != nil {
		bf.last = bf.last[:0]
		if bf.byCTID {
			bf.last = append(bf.last, string(last[len(cols)]))
		} else {
			for _, k := range bf.t.key {
				for j, c := range cols {
					if c.Name == k {
						bf.last = append(bf.last, string(last[j]))
					}
				}
			}
		}
	}
	return changes, nil
}

// queryError says when an error of a batch's query is the WHERE's: an
// error of the server's that a condition makes (a syntax error, an
// unknown column or function, a bad value, a write refused in the read
// only transaction).
func (bf *backfill) queryError(err error) error {
	var pgErr *pgconn.PgError
	if bf.where == "" || !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return err
	}
	switch pgErr.Code[:2] {
	case "42", "22", "21", "25", "0A", "P0":
		if pgErr.Code != codeInsufficientPrivilege {
			return fmt.Errorf("%w: %q: the server said: %s (SQLSTATE %s)", ErrInvalidWhere, bf.where, pgErr.Message, pgErr.Code)
		}
	}
	return err
}
