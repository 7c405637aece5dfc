package sluice_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// UpsertRows writes a batch's rows in one transaction on PostgreSQL: rows
// of a failed batch are not written, a batch written twice leaves the
// same rows, and a dead-lettered input's rows are still written.
func TestUpsertRowsOnPostgres(t *testing.T) {
	dsn := os.Getenv("SLUICE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("SLUICE_TEST_POSTGRES is not set: skipping the PostgreSQL output binding")
	}
	ctx := context.Background()
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	table := fmt.Sprintf("sluice_upsert_%d", os.Getpid())
	_, err = db.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s (id text PRIMARY KEY, qty int, note text)`, table))
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE " + table) })

	fail := errors.New("the handler failed")
	handler := sluice.UpsertRows(sluice.SQLTable{DB: db, Table: table, Key: []string{"id"}},
		func(ctx context.Context, events []sluice.Event) ([]map[string]any, error) {
			var rows []map[string]any
			for _, e := range events {
				var r map[string]any
				if err := json.Unmarshal(e.Body, &r); err != nil {
					return nil, err
				}
				if r["fail"] == true {
					return rows, fail
				}
				delete(r, "fail")
				rows = append(rows, r)
			}
			return rows, nil
		})
	ev := func(s string) sluice.Event { return sluice.Event{Body: []byte(s)} }
	batch := []sluice.Event{ev(`{"id": "a", "qty": 1}`), ev(`{"id": "b", "qty": 2, "note": "x"}`)}
	require.NoError(t, handler(ctx, batch))
	require.NoError(t, handler(ctx, batch)) // a retried batch
	require.ErrorIs(t, handler(ctx, []sluice.Event{ev(`{"id": "c", "qty": 3}`), ev(`{"fail": true}`)}), fail)
	require.NoError(t, handler(ctx, []sluice.Event{ev(`{"id": "a", "qty": 10}`)}))
	require.Error(t, handler(ctx, []sluice.Event{ev(`{"qty": 1}`)}), "a row without its key")

	got := map[string]int{}
	rows, err := db.QueryContext(ctx, "SELECT id, qty FROM "+table)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var qty int
		require.NoError(t, rows.Scan(&id, &qty))
		got[id] = qty
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]int{"a": 10, "b": 2}, got)

	bad := sluice.UpsertRows(sluice.SQLTable{DB: db, Table: "x; DROP TABLE y", Key: []string{"id"}},
		func(context.Context, []sluice.Event) ([]map[string]any, error) { return nil, nil })
	require.ErrorContains(t, bad(ctx, nil), "use letters, digits and _")
}
