package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/docstore"
)

// The schema is versioned: schema_migrations holds a row per version
// applied, and the database's version is the highest. Open applies the
// migrations after it in order, each in a transaction of its own begun
// with BEGIN IMMEDIATE (the writer's _txlock), which holds off every other
// writer, in this process or another, until it commits: the first opener
// migrates, the others find the version done when they get the lock.
//
// Migrations are never edited once released: a database at version k was
// made by migrations 1..k as they were, so a change to the schema is a new
// migration at the end of the list.
var migrations = []migration{
	{
		version: 1,
		name:    "containers, and documents WITHOUT ROWID with their feed index",
		// As fa89668 (the first release) created it, unchanged until
		// 817cb9c.
		sql: schemaV1,
	},
	{
		version: 2,
		name:    "the documents' partition key hashes (pk_hash), for feed ranges",
		// 817cb9c: the column, and the hashes of the documents written
		// before it.
		sql: `ALTER TABLE documents ADD COLUMN pk_hash INTEGER`,
		fn:  fillHashes,
	},
	{
		version: 3,
		name:    "documents as a rowid table with a unique key index",
		// e3277fd: documents are far larger than the 1/20 of a page that a
		// WITHOUT ROWID table's rows should stay under, and as one they
		// made every level of its B-tree hold whole documents. The old
		// table is renamed out of the way first, so that the new one's
		// definition reads as a new database's.
		sql: `
ALTER TABLE documents RENAME TO documents_v2;
CREATE TABLE documents (` + documentColumnsV3 + `);
INSERT INTO documents (container, pk, id, body, etag, ts, lsn, deleted, pk_hash)
	SELECT container, pk, id, body, etag, ts, lsn, deleted, pk_hash FROM documents_v2;
DROP TABLE documents_v2;
` + indexesV3,
	},
}

// migration is one step of the schema, from version-1 to version: sql,
// then fn if any, in one transaction.
type migration struct {
	version int
	name    string
	sql     string
	fn      func(ctx context.Context, tx *sql.Tx) error
}

// schemaV1 is the schema of the first release, with its IF NOT EXISTS: the
// baseline runs it again on databases of versions 1 and 2, as their
// releases did on every open.
const schemaV1 = containersV1 + `
CREATE TABLE IF NOT EXISTS documents (
	container TEXT NOT NULL,
	pk TEXT NOT NULL,
	id TEXT NOT NULL,
	body TEXT,
	etag TEXT NOT NULL,
	ts INTEGER NOT NULL,
	lsn INTEGER NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (container, pk, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS documents_feed ON documents (container, lsn);
`

// containersV1 is the containers table, unchanged since version 1.
const containersV1 = `
CREATE TABLE IF NOT EXISTS containers (
	name TEXT PRIMARY KEY,
	partition_key_path TEXT NOT NULL,
	default_ttl_ms INTEGER NOT NULL DEFAULT 0,
	created TEXT NOT NULL,
	last_lsn INTEGER NOT NULL DEFAULT 0
);`

// documentColumnsV3 and indexesV3 are the documents table of version 3,
// as e3277fd's schema made it.
const documentColumnsV3 = `
	container TEXT NOT NULL,
	pk TEXT NOT NULL,
	id TEXT NOT NULL,
	body TEXT,
	etag TEXT NOT NULL,
	ts INTEGER NOT NULL,
	lsn INTEGER NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0,
	pk_hash INTEGER
`

const indexesV3 = `
CREATE UNIQUE INDEX IF NOT EXISTS documents_key ON documents (container, pk, id);
CREATE UNIQUE INDEX IF NOT EXISTS documents_feed ON documents (container, lsn);
`

// NewerSchemaError is returned by Open for a database whose schema
// version is newer than this code knows: a newer Sluice wrote it, and
// this one leaves it alone.
type NewerSchemaError struct {
	Database string // the database file
	Version  int    // the database's schema version
	Known    int    // the newest version this code knows
}

func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("%s was written by a newer Sluice (schema version %d, this one knows %d); upgrade sluice", e.Database, e.Version, e.Known)
}

// migrate brings the database at path (its writer w) to the version of
// the last of ms, one migration per transaction.
func migrate(ctx context.Context, w *sql.DB, path string, ms []migration) error {
	for {
		done, err := migrateStep(ctx, w, path, ms)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the migration of ms after the database's version,
// unless there is none (done). A database without a version gets its
// baseline instead.
func migrateStep(ctx context.Context, w *sql.DB, path string, ms []migration) (done bool, err error) {
	tx, err := w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the writer's _txlock
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)`); err != nil {
		return false, err
	}
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return false, err
	}
	if v == 0 {
		if v, err = baseline(ctx, tx); err != nil {
			return false, fmt.Errorf("identify the schema of a database without a version: %w", err)
		}
		if v > 0 {
			return false, commitVersion(ctx, tx, v)
		}
	}
	if v > len(ms) {
		return false, &NewerSchemaError{Database: path, Version: v, Known: len(ms)}
	}
	if v == len(ms) {
		return true, nil
	}
	m := ms[v]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("schema version %d (%s): %w", m.version, m.name, err)
	}
	if m.fn != nil {
		if err := m.fn(ctx, tx); err != nil {
			return false, fmt.Errorf("schema version %d (%s): %w", m.version, m.name, err)
		}
	}
	return false, commitVersion(ctx, tx, m.version)
}

// commitVersion records version v and commits.
func commitVersion(ctx context.Context, tx *sql.Tx, v int) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`,
		v, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return err
	}
	return tx.Commit()
}

// baseline tells the version of a database that has none: 0 if it has no
// tables, else the version of their shape, as releases before versioning
// left them (they brought a database up to date on every open by looking
// at its tables, as this does once). It finishes what those releases did
// on every open and may not have finished (each of their steps committed
// on its own): the tables and indexes of the version, the hashes of the
// documents.
func baseline(ctx context.Context, tx *sql.Tx) (int, error) {
	var tables int
	var ddl string
	if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(max(CASE name WHEN 'documents' THEN sql END), '')
		FROM sqlite_master WHERE type = 'table' AND name IN ('containers', 'documents')`).Scan(&tables, &ddl); err != nil {
		return 0, err
	}
	if tables == 0 {
		return 0, nil
	}
	var hasHash bool
	if err := tx.QueryRowContext(ctx, `SELECT count(*) > 0 FROM pragma_table_info('documents') WHERE name = 'pk_hash'`).Scan(&hasHash); err != nil {
		return 0, err
	}
	v, repair := 3, containersV1+indexesV3
	switch {
	case ddl == "" || strings.Contains(strings.ToUpper(ddl), "WITHOUT ROWID"):
		// Up to 59e0c6b; documents gained pk_hash at 817cb9c.
		v, repair = 1, schemaV1
		if hasHash {
			v = 2
		}
	case !hasHash:
		return 0, errors.New("a documents table that is neither WITHOUT ROWID nor has pk_hash: no release made it")
	}
	if _, err := tx.ExecContext(ctx, repair); err != nil {
		return 0, err
	}
	if v >= 2 {
		return v, fillHashes(ctx, tx)
	}
	return v, nil
}

// hashBatch is the number of partition keys fillHashes reads at a time.
const hashBatch = 1000

// fillHashes computes the partition key hashes that documents written
// before feed ranges existed lack, a batch of partition keys at a time in
// the key index's order.
func fillHashes(ctx context.Context, tx *sql.Tx) error {
	var missing bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM documents WHERE pk_hash IS NULL)`).Scan(&missing); err != nil || !missing {
		return err
	}
	set, err := tx.PrepareContext(ctx, `UPDATE documents SET pk_hash = ? WHERE container = ? AND pk = ? AND pk_hash IS NULL`)
	if err != nil {
		return err
	}
	defer set.Close()
	// Container names are never empty, so ("", "") is before every key.
	var after [2]string
	for {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT container, pk FROM documents
			WHERE (container, pk) > (?, ?) AND pk_hash IS NULL ORDER BY container, pk LIMIT ?`, after[0], after[1], hashBatch)
		if err != nil {
			return err
		}
		var keys [][2]string
		for rows.Next() {
			var k [2]string
			if err := rows.Scan(&k[0], &k[1]); err != nil {
				rows.Close()
				return err
			}
			keys = append(keys, k)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := set.ExecContext(ctx, docstore.PartitionKeyHash(k[1]), k[0], k[1]); err != nil {
				return err
			}
		}
		if len(keys) < hashBatch {
			return nil
		}
		after = keys[len(keys)-1]
	}
}
