package postgres

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LatestVersion is the schema version Open brings schemas to.
var LatestVersion = len(migrations)

// LockKey is the advisory lock that migrations of schema take.
var LockKey = lockKey

// MigrationVersions are the versions of the migrations, in their order.
func MigrationVersions() []int {
	var vs []int
	for _, m := range migrations {
		vs = append(vs, m.version)
	}
	return vs
}

// MigrateTo brings schema to version (creating it if needed), as a
// release whose last migration was that version would.
func MigrateTo(ctx context.Context, dsn, schema string, version int) error {
	return migrateWith(ctx, dsn, schema, migrations[:version])
}

// MigrateBroken runs migration 1, then a migration 2 whose SQL creates
// table half_done and whose function then fails.
func MigrateBroken(ctx context.Context, dsn, schema string) error {
	return migrateWith(ctx, dsn, schema, append(migrations[:1:1], migration{
		version: 2,
		name:    "broken",
		sql:     `CREATE TABLE {s}.half_done (x integer)`,
		fn: func(context.Context, pgx.Tx, *strings.Replacer) error {
			return errors.New("broken on purpose")
		},
	}))
}

func migrateWith(ctx context.Context, dsn, schema string, ms []migration) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrate(ctx, pool, schema, ms)
}
