package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluicehq/sluice/internal/docstore"
)

// The schema is versioned: {schema}.schema_migrations holds a row per
// version applied, and the schema's version is the highest. Open applies
// the migrations after it in order, each in a transaction of its own that
// first takes the schema's advisory lock: instances starting together
// migrate one after the other, and those after the first find the version
// done. (Releases before versions took the same lock to create their
// tables, so they wait for a migration too.)
//
// Migrations are never edited once released: a schema at version k was
// made by migrations 1..k as they were, so a change to the schema is a new
// migration at the end of the list. In their SQL, {s} is the schema.
var migrations = []migration{
	{
		version: 1,
		name:    "containers, and documents with their feed index",
		// As c4bbefe (the first release with PostgreSQL) created it,
		// unchanged until 817cb9c.
		sql: schemaV1,
	},
	{
		version: 2,
		name:    "the documents' partition key hashes (pk_hash), for feed ranges",
		// 817cb9c: the column, and the hashes of the documents written
		// before it.
		sql: `ALTER TABLE {s}.documents ADD COLUMN pk_hash bigint`,
		fn:  fillHashes,
	},
}

// migration is one step of the schema, from version-1 to version: sql,
// then fn if any, in one transaction.
type migration struct {
	version int
	name    string
	sql     string
	fn      func(ctx context.Context, tx pgx.Tx, r *strings.Replacer) error
}

// schemaV1 is the schema of the first release, with its IF NOT EXISTS: the
// baseline runs it again on schemas without a version, as their releases
// did on every open.
const schemaV1 = `
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.containers (
	name text PRIMARY KEY,
	partition_key_path text NOT NULL,
	default_ttl_ms bigint NOT NULL DEFAULT 0,
	created timestamptz NOT NULL DEFAULT now(),
	last_lsn bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS {s}.documents (
	container text NOT NULL,
	pk text NOT NULL,
	id text NOT NULL,
	body jsonb,
	etag text NOT NULL,
	ts timestamptz NOT NULL,
	lsn bigint NOT NULL,
	deleted boolean NOT NULL DEFAULT false,
	PRIMARY KEY (container, pk, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS documents_feed ON {s}.documents (container, lsn);
`

// NewerSchemaError is returned by Open for a schema whose version is
// newer than this code knows: a newer Sluice wrote it, and this one leaves
// it alone.
type NewerSchemaError struct {
	Schema  string // the PostgreSQL schema (Options.Schema)
	Version int    // its schema version
	Known   int    // the newest version this code knows
}

func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("PostgreSQL schema %s was written by a newer Sluice (schema version %d, this one knows %d); upgrade sluice", e.Schema, e.Version, e.Known)
}

// lockKey is the advisory lock of a schema's migrations.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("sluice docstore schema " + schema))
	return int64(h.Sum64())
}

// migrate brings schema to the version of the last of ms, one migration
// per transaction.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, ms []migration) error {
	for {
		done, err := migrateStep(ctx, pool, schema, ms)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the migration of ms after the schema's version,
// unless there is none (done). A schema without a version gets its
// baseline instead.
func migrateStep(ctx context.Context, pool *pgxpool.Pool, schema string, ms []migration) (done bool, err error) {
	r := strings.NewReplacer("{s}", pgx.Identifier{schema}.Sanitize())
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(schema)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, r.Replace(`CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.schema_migrations (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now());`)); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, r.Replace(`SELECT coalesce(max(version), 0) FROM {s}.schema_migrations`)).Scan(&v); err != nil {
			return err
		}
		if v == 0 {
			if v, err = baseline(ctx, tx, r); err != nil {
				return fmt.Errorf("identify the tables of a schema without a version: %w", err)
			}
			if v > 0 {
				return record(ctx, tx, r, v)
			}
		}
		if v > len(ms) {
			return &NewerSchemaError{Schema: schema, Version: v, Known: len(ms)}
		}
		if v == len(ms) {
			done = true
			return nil
		}
		m := ms[v]
		if _, err := tx.Exec(ctx, r.Replace(m.sql)); err != nil {
			return fmt.Errorf("schema version %d (%s): %w", m.version, m.name, err)
		}
		if m.fn != nil {
			if err := m.fn(ctx, tx, r); err != nil {
				return fmt.Errorf("schema version %d (%s): %w", m.version, m.name, err)
			}
		}
		return record(ctx, tx, r, m.version)
	})
	return done, err
}

func record(ctx context.Context, tx pgx.Tx, r *strings.Replacer, v int) error {
	_, err := tx.Exec(ctx, r.Replace(`INSERT INTO {s}.schema_migrations (version) VALUES ($1)`), v)
	return err
}

// baseline tells the version of a schema that has none: 0 if it has no
// tables, else the version of their shape, as releases before versioning
// left them (they brought a schema up to date on every open by looking at
// its tables, as this does once). It finishes what those releases did on
// every open: the tables of version 1 if any is missing, and the hashes
// of documents that an instance of a release before them may have written
// since.
func baseline(ctx context.Context, tx pgx.Tx, r *strings.Replacer) (int, error) {
	var tables, hashed bool
	err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL OR to_regclass($2) IS NOT NULL,
		EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($2) AND attname = 'pk_hash' AND NOT attisdropped)`,
		r.Replace(`{s}.containers`), r.Replace(`{s}.documents`)).Scan(&tables, &hashed)
	if err != nil || !tables {
		return 0, err
	}
	if _, err := tx.Exec(ctx, r.Replace(schemaV1)); err != nil {
		return 0, err
	}
	if !hashed {
		return 1, nil
	}
	return 2, fillHashes(ctx, tx, r)
}

// hashBatch is the number of partition keys fillHashes reads at a time.
const hashBatch = 1000

// fillHashes computes the partition key hashes that documents written
// before feed ranges existed lack, a batch of partition keys at a time in
// the primary key's order.
func fillHashes(ctx context.Context, tx pgx.Tx, r *strings.Replacer) error {
	next := r.Replace(`SELECT DISTINCT container, pk FROM {s}.documents
		WHERE (container, pk) > ($1, $2) AND pk_hash IS NULL ORDER BY container, pk LIMIT $3`)
	set := r.Replace(`UPDATE {s}.documents d SET pk_hash = k.hash
		FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k (container, pk, hash)
		WHERE d.container = k.container AND d.pk = k.pk AND d.pk_hash IS NULL`)
	// Container names are never empty, so ("", "") is before every key.
	var lastContainer, lastPK string
	for {
		rows, err := tx.Query(ctx, next, lastContainer, lastPK, hashBatch)
		if err != nil {
			return err
		}
		var containers, pks []string
		var hashes []int64
		_, err = pgx.ForEachRow(rows, []any{&lastContainer, &lastPK}, func() error {
			containers, pks = append(containers, lastContainer), append(pks, lastPK)
			hashes = append(hashes, docstore.PartitionKeyHash(lastPK))
			return nil
		})
		if err != nil {
			return err
		}
		if len(pks) > 0 {
			if _, err := tx.Exec(ctx, set, containers, pks, hashes); err != nil {
				return err
			}
		}
		if len(pks) < hashBatch {
			return nil
		}
	}
}
