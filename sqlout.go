package sluice

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/host"
)

// SQLTable is a table of a PostgreSQL database that an output binding
// (UpsertRows) writes.
type SQLTable struct {
	// DB is the database, opened by the app (for example with the pgx
	// driver: sql.Open("pgx", dsn) after importing
	// github.com/jackc/pgx/v5/stdlib).
	DB *sql.DB
	// Table is the table's name, optionally schema-qualified
	// ("orders", "sales.orders").
	Table string
	// Key are the columns of the table's primary key or a unique
	// constraint: a row whose key exists updates that row.
	Key []string
}

var sqlIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func quoteIdent(name string) (string, error) {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return "", fmt.Errorf("sluice: SQL name %q: give name or schema.name", name)
	}
	for i, p := range parts {
		if !sqlIdent.MatchString(p) {
			return "", fmt.Errorf("sluice: SQL name %q: use letters, digits and _, starting with a letter or _", name)
		}
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, "."), nil
}

// UpsertRows is an output binding: it turns fn, a handler that returns
// rows (column → value), into a handler for any trigger that upserts
// those rows into table, all in one transaction, once fn has succeeded.
// Nothing is written when fn fails; a failed write fails the invocation,
// which its retry policy then governs, so no row is dropped; a row that
// is written again by a retried batch updates itself to the same values.
// When fn returns rows and a DeadLetter error, the rows are written and
// the named inputs are dead-lettered.
//
//	app.Function("db-update", sluice.HubTrigger{Hub: "db-update"},
//		sluice.UpsertRows(sluice.SQLTable{DB: db, Table: "orders", Key: []string{"id"}},
//			func(ctx context.Context, events []sluice.Event) ([]map[string]any, error) { ... }))
func UpsertRows[In any](t SQLTable, fn func(ctx context.Context, in In) ([]map[string]any, error)) func(ctx context.Context, in In) error {
	table, tErr := quoteIdent(t.Table)
	if tErr == nil && len(t.Key) == 0 {
		tErr = fmt.Errorf("sluice: SQL table %s: give its key columns (SQLTable.Key)", t.Table)
	}
	for _, k := range t.Key {
		if _, err := quoteIdent(k); err != nil && tErr == nil {
			tErr = err
		}
	}
	return func(ctx context.Context, in In) error {
		if tErr != nil {
			return tErr
		}
		rows, err := fn(ctx, in)
		if _, partial := errors.AsType[*host.DeadLetterError](err); err != nil && !partial {
			return err
		}
		if len(rows) > 0 {
			if werr := upsertRows(ctx, t, table, rows); werr != nil {
				return fmt.Errorf("output to SQL table %s: %w", t.Table, werr)
			}
		}
		return err
	}
}

// upsertRows writes rows in one transaction: one INSERT … ON CONFLICT
// statement per set of columns.
func upsertRows(ctx context.Context, t SQLTable, table string, rows []map[string]any) error {
	groups := map[string][]map[string]any{}
	var order []string
	for i, r := range rows {
		cols := make([]string, 0, len(r))
		for c := range r {
			cols = append(cols, c)
		}
		slices.Sort(cols)
		for _, k := range t.Key {
			if _, ok := r[k]; !ok {
				return fmt.Errorf("row %d has no value for the key column %s", i, k)
			}
		}
		sig := strings.Join(cols, ",")
		if _, ok := groups[sig]; !ok {
			order = append(order, sig)
		}
		groups[sig] = append(groups[sig], r)
	}
	tx, err := t.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, sig := range order {
		cols := strings.Split(sig, ",")
		quoted := make([]string, len(cols))
		for i, c := range cols {
			q, err := quoteIdent(c)
			if err != nil {
				return err
			}
			quoted[i] = q
		}
		keys := make([]string, len(t.Key))
		for i, k := range t.Key {
			keys[i], _ = quoteIdent(k)
		}
		var set []string
		for _, q := range quoted {
			if !slices.Contains(keys, q) {
				set = append(set, q+" = EXCLUDED."+q)
			}
		}
		conflict := "DO NOTHING"
		if len(set) > 0 {
			conflict = "DO UPDATE SET " + strings.Join(set, ", ")
		}
		// At most 1000 rows a statement (PostgreSQL takes 65535 parameters).
		group := groups[sig]
		per := max(1, min(1000, 65535/len(cols)))
		for start := 0; start < len(group); start += per {
			chunk := group[start:min(len(group), start+per)]
			var b strings.Builder
			fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(quoted, ", "))
			args := make([]any, 0, len(chunk)*len(cols))
			for i, r := range chunk {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteByte('(')
				for j, c := range cols {
					if j > 0 {
						b.WriteString(", ")
					}
					args = append(args, r[c])
					b.WriteString("$" + strconv.Itoa(len(args)))
				}
				b.WriteByte(')')
			}
			fmt.Fprintf(&b, " ON CONFLICT (%s) %s", strings.Join(keys, ", "), conflict)
			if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}
