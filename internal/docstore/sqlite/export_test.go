package sqlite

import (
	"context"
	"database/sql"
	"errors"
)

// LatestVersion is the schema version Open brings databases to.
var LatestVersion = len(migrations)

// MigrationVersions are the versions of the migrations, in their order.
func MigrationVersions() []int {
	var vs []int
	for _, m := range migrations {
		vs = append(vs, m.version)
	}
	return vs
}

// MigrateTo brings the database at path to version (creating it if
// needed), as a release whose last migration was that version would.
func MigrateTo(path string, version int) error {
	return migrateWith(path, migrations[:version])
}

// MigrateBroken runs migration 1, then a migration 2 whose SQL creates
// table half_done and whose function then fails.
func MigrateBroken(path string) error {
	return migrateWith(path, append(migrations[:1:1], migration{
		version: 2,
		name:    "broken",
		sql:     `CREATE TABLE half_done (x INTEGER)`,
		fn:      func(context.Context, *sql.Tx) error { return errors.New("broken on purpose") },
	}))
}

func migrateWith(path string, ms []migration) error {
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return err
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	return migrate(context.Background(), w, path, ms)
}
