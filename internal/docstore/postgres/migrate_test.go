package postgres_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/docstoretest"
	"github.com/sluicehq/sluice/internal/docstore/postgres"
)

// history is every shape a release before schema versions may have left a
// schema in (testdata holds each one's DDL, from the git history).
var history = []struct {
	file    string
	version int // what its baseline finds
	// unhashed: its documents may lack their partition key hash (an
	// instance of a release before 817cb9c went on writing after another
	// had added the column).
	unhashed bool
	// conformance: TestConformanceOn... runs the suite on it. Once per
	// version is enough: the shapes of a version have the same
	// definitions (TestMigrationsReproduceHistoricalSchemas), and those
	// of the latest are TestConformance's.
	conformance bool
}{
	{"v1-c4bbefe.sql", 1, true, true},
	{"v2-817cb9c.sql", 2, false, false},
	{"v2-817cb9c-upgraded.sql", 2, true, true},
}

// start is a schema that Open must bring up to date.
type start struct {
	name     string
	make     func(t *testing.T, dsn, schema string) // creates it, without documents
	unhashed bool
	versions []int // the versions recorded once it is up to date
}

// starts are the schemas of every earlier release: each shape of history,
// without a version, and each version the migrations make.
func starts() []start {
	var out []start
	for _, h := range history {
		out = append(out, start{
			name:     strings.TrimSuffix(h.file, ".sql"),
			make:     func(t *testing.T, dsn, schema string) { execFile(t, dsn, schema, h.file) },
			unhashed: h.unhashed,
			versions: versionsFrom(h.version),
		})
	}
	for v := 1; v <= postgres.LatestVersion; v++ {
		out = append(out, start{
			name:     fmt.Sprintf("version-%d", v),
			make:     func(t *testing.T, dsn, schema string) { require.NoError(t, postgres.MigrateTo(bg, dsn, schema, v)) },
			versions: versionsFrom(1),
		})
	}
	return out
}

func versionsFrom(v int) []int {
	var out []int
	for ; v <= postgres.LatestVersion; v++ {
		out = append(out, v)
	}
	return out
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(bg, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(bg) })
	return conn
}

func execFile(t *testing.T, dsn, schema, file string) {
	t.Helper()
	ddl, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	_, err = connect(t, dsn).Exec(bg, strings.ReplaceAll(string(ddl), "{s}", pgx.Identifier{schema}.Sanitize()))
	require.NoError(t, err)
}

// populate writes docstoretest's old data into the older schema, with the
// partition key hashes if it has the column (NULL if unhashed).
func populate(t *testing.T, dsn, schema string, unhashed bool, ts time.Time) {
	t.Helper()
	conn := connect(t, dsn)
	s := pgx.Identifier{schema}.Sanitize()
	for _, c := range docstoretest.OldContainers {
		_, err := conn.Exec(bg, `INSERT INTO `+s+`.containers (name, partition_key_path, default_ttl_ms, created, last_lsn) VALUES ($1, $2, $3, $4, $5)`,
			c.Name, c.PartitionKeyPath, c.DefaultTTL.Milliseconds(), c.Created, c.LastLSN)
		require.NoError(t, err)
	}
	var hashed bool
	require.NoError(t, conn.QueryRow(bg, `SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'documents' AND column_name = 'pk_hash')`,
		schema).Scan(&hashed))
	for _, d := range docstoretest.OldDocuments {
		args := []any{d.Container, d.PartitionKey, d.ID, d.Body(t, ts), docstore.ETagFor(d.LSN), ts, d.LSN, d.Deleted}
		q := `INSERT INTO ` + s + `.documents (container, pk, id, body, etag, ts, lsn, deleted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
		if hashed {
			var hash *int64
			if !unhashed {
				h := docstore.PartitionKeyHash(d.PartitionKey)
				hash = &h
			}
			q = `INSERT INTO ` + s + `.documents (container, pk, id, body, etag, ts, lsn, deleted, pk_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
			args = append(args, hash)
		}
		_, err := conn.Exec(bg, q, args...)
		require.NoError(t, err)
	}
}

// versions are the versions recorded in schema.
func versions(t *testing.T, dsn, schema string) []int {
	t.Helper()
	rows, err := connect(t, dsn).Query(bg, `SELECT version FROM `+pgx.Identifier{schema}.Sanitize()+`.schema_migrations ORDER BY version`)
	require.NoError(t, err)
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	return vs
}

// schemaOf describes the tables of schema (but the version table): their
// columns, constraints and indexes.
func schemaOf(t *testing.T, dsn, schema string) []string {
	t.Helper()
	conn := connect(t, dsn)
	var out []string
	for _, q := range []string{
		`SELECT format('column %s.%s: %s %s nullable %s default %s', table_name, ordinal_position, column_name, data_type, is_nullable, column_default)
			FROM information_schema.columns WHERE table_schema = $1 AND table_name <> 'schema_migrations' ORDER BY table_name, ordinal_position`,
		`SELECT format('constraint %s on %s: %s', conname, conrelid::regclass::text, pg_get_constraintdef(oid))
			FROM pg_constraint WHERE connamespace = $1::regnamespace AND conrelid::regclass::text NOT LIKE '%schema_migrations' ORDER BY conname`,
		`SELECT format('index %s on %s: %s', indexname, tablename, replace(indexdef, schemaname || '.', ''))
			FROM pg_indexes WHERE schemaname = $1 AND tablename <> 'schema_migrations' ORDER BY indexname`,
	} {
		rows, err := conn.Query(bg, q, schema)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		for _, l := range lines {
			out = append(out, strings.ReplaceAll(l, schema+".", ""))
		}
	}
	return out
}

func TestMigrationsAreNumberedInOrder(t *testing.T) {
	t.Parallel()
	require.Equal(t, versionsFrom(1), postgres.MigrationVersions())
}

// Migrating to version k makes the schema the releases of version k made,
// and a new schema gets what the current DocumentsDDL describes.
func TestMigrationsReproduceHistoricalSchemas(t *testing.T) {
	t.Parallel()
	dsn := dsnOrSkip(t)
	for _, h := range history {
		old, migrated := freshSchema(t, dsn), freshSchema(t, dsn)
		execFile(t, dsn, old, h.file)
		require.NoError(t, postgres.MigrateTo(bg, dsn, migrated, h.version))
		require.Equal(t, schemaOf(t, dsn, old), schemaOf(t, dsn, migrated), h.file)
	}

	fresh := freshSchema(t, dsn)
	open(t, dsn, fresh)
	require.Equal(t, versionsFrom(1), versions(t, dsn, fresh))
	v2 := freshSchema(t, dsn)
	execFile(t, dsn, v2, "v2-817cb9c.sql")
	require.Equal(t, schemaOf(t, dsn, v2), schemaOf(t, dsn, fresh))

	current := freshSchema(t, dsn)
	s := pgx.Identifier{current}.Sanitize()
	_, err := connect(t, dsn).Exec(bg, `CREATE SCHEMA `+s+`;`+postgres.DocumentsDDL(s+".documents"))
	require.NoError(t, err)
	var freshDocs []string
	for _, line := range schemaOf(t, dsn, fresh) {
		if strings.Contains(line, "documents") {
			freshDocs = append(freshDocs, line)
		}
	}
	require.Equal(t, schemaOf(t, dsn, current), freshDocs, "DocumentsDDL is the documents table the migrations make")
}

// Open brings a schema of any earlier release up to date, with its data
// intact, and then changes nothing on later opens.
func TestOpenMigratesOlderSchemas(t *testing.T) {
	t.Parallel()
	dsn := dsnOrSkip(t)
	fresh := freshSchema(t, dsn)
	open(t, dsn, fresh)
	want := schemaOf(t, dsn, fresh)
	for _, st := range starts() {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			schema := freshSchema(t, dsn)
			st.make(t, dsn, schema)
			ts := time.Now().UTC().Truncate(time.Millisecond)
			populate(t, dsn, schema, st.unhashed, ts)

			s, err := postgres.Open(bg, dsn, postgres.Options{Schema: schema})
			require.NoError(t, err)
			defer s.Close()
			require.Equal(t, st.versions, versions(t, dsn, schema))
			require.Equal(t, want, schemaOf(t, dsn, schema))
			docstoretest.CheckOldData(t, s, ts)
			require.NoError(t, s.Close())

			open(t, dsn, schema)
			require.Equal(t, st.versions, versions(t, dsn, schema), "a second open migrates nothing")
		})
	}
}

// The conformance suite passes on a schema of every earlier version.
func TestConformanceOnOlderSchemas(t *testing.T) {
	t.Parallel()
	dsn := dsnOrSkip(t)
	for _, h := range history {
		if !h.conformance {
			continue
		}
		t.Run(strings.TrimSuffix(h.file, ".sql"), func(t *testing.T) {
			t.Parallel()
			docstoretest.Run(t, func(t *testing.T) docstore.Store {
				schema := freshSchema(t, dsn)
				execFile(t, dsn, schema, h.file)
				return open(t, dsn, schema)
			})
		})
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dsn := dsnOrSkip(t)
	schema := freshSchema(t, dsn)
	open(t, dsn, schema)
	newer := postgres.LatestVersion + 1
	_, err := connect(t, dsn).Exec(bg, `INSERT INTO `+pgx.Identifier{schema}.Sanitize()+`.schema_migrations (version) VALUES ($1)`, newer)
	require.NoError(t, err)
	before := schemaOf(t, dsn, schema)

	_, err = postgres.Open(bg, dsn, postgres.Options{Schema: schema})
	var newerErr *postgres.NewerSchemaError
	require.ErrorAs(t, err, &newerErr)
	require.Equal(t, postgres.NewerSchemaError{Schema: schema, Version: newer, Known: postgres.LatestVersion}, *newerErr)
	require.EqualError(t, err, fmt.Sprintf("docstore: PostgreSQL schema %s was written by a newer Sluice (schema version %d, this one knows %d); upgrade sluice",
		schema, newer, postgres.LatestVersion))
	require.Equal(t, before, schemaOf(t, dsn, schema))
	require.Equal(t, append(versionsFrom(1), newer), versions(t, dsn, schema))
}

// A migration that fails leaves the schema at the version before it,
// without any of its changes; the next open goes on from there.
func TestFailedMigrationChangesNothing(t *testing.T) {
	t.Parallel()
	dsn := dsnOrSkip(t)
	schema := freshSchema(t, dsn)
	require.ErrorContains(t, postgres.MigrateBroken(bg, dsn, schema), "schema version 2 (broken): broken on purpose")
	require.Equal(t, []int{1}, versions(t, dsn, schema))
	var exists bool
	require.NoError(t, connect(t, dsn).QueryRow(bg, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{schema, "half_done"}.Sanitize()).Scan(&exists))
	require.False(t, exists)

	ts := time.Now().UTC().Truncate(time.Millisecond)
	populate(t, dsn, schema, true, ts)
	docstoretest.CheckOldData(t, open(t, dsn, schema), ts)
	require.Equal(t, versionsFrom(1), versions(t, dsn, schema))
}

// Instances that start at once on an older schema migrate it once: while
// the test holds the migrations' advisory lock, every opener waits for
// it; released, they migrate one after the other.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	t.Parallel()
	dsn := dsnOrSkip(t)
	schema := freshSchema(t, dsn)
	execFile(t, dsn, schema, "v1-c4bbefe.sql")
	ts := time.Now().UTC().Truncate(time.Millisecond)
	populate(t, dsn, schema, true, ts)

	lock := connect(t, dsn)
	key := postgres.LockKey(schema)
	_, err := lock.Exec(bg, `SELECT pg_advisory_lock($1)`, key)
	require.NoError(t, err)

	const openers = 4
	stores := make([]*postgres.Store, openers)
	errs := make([]error, openers)
	var wg sync.WaitGroup
	for i := range openers {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(bg, dsn, postgres.Options{Schema: schema}) })
	}
	waitFor(t, fmt.Sprintf("%d openers waiting for the advisory lock", openers), func() bool {
		var waiting int
		require.NoError(t, lock.QueryRow(bg, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND classid::bigint = ($1::bigint >> 32) & 4294967295 AND objid::bigint = $1::bigint & 4294967295 AND objsubid = 1`, key).Scan(&waiting))
		return waiting == openers
	})
	require.Equal(t, []int(nil), versionsOrNil(t, dsn, schema), "nothing migrated while the lock is held")
	_, err = lock.Exec(bg, `SELECT pg_advisory_unlock($1)`, key)
	require.NoError(t, err)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "opener %d", i)
		t.Cleanup(func() { require.NoError(t, stores[i].Close()) })
	}
	require.Equal(t, versionsFrom(1), versions(t, dsn, schema))
	docstoretest.CheckOldData(t, stores[0], ts)
}

// versionsOrNil is versions, or nil while schema has no version table.
func versionsOrNil(t *testing.T, dsn, schema string) []int {
	t.Helper()
	var exists bool
	require.NoError(t, connect(t, dsn).QueryRow(bg, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&exists))
	if !exists {
		return nil
	}
	return versions(t, dsn, schema)
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
