package sqlite_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/docstoretest"
	"github.com/sluicehq/sluice/internal/docstore/sqlite"
)

// history is every shape a release before schema versions may have left a
// database in (testdata holds each one's DDL, from the git history).
var history = []struct {
	file    string
	version int // what its baseline finds
	// unhashed: its documents may lack their partition key hash (a
	// release was stopped before it had filled them in).
	unhashed bool
	// conformance: TestConformanceOn... runs the suite on it. Once per
	// version is enough: the shapes of a version have the same
	// definitions (TestMigrationsReproduceHistoricalSchemas), and those
	// of the latest are TestConformance's.
	conformance bool
}{
	{"v1-fa89668.sql", 1, true, true},
	{"v2-817cb9c.sql", 2, false, false},
	{"v2-817cb9c-upgraded.sql", 2, true, true},
	{"v3-e3277fd.sql", 3, false, false},
	{"v3-e3277fd-interrupted.sql", 3, true, true},
}

// start is a database that Open must bring up to date.
type start struct {
	name     string
	make     func(t *testing.T, path string) // creates it, without documents
	unhashed bool
	versions []int // the versions recorded once it is up to date
}

// starts are the databases of every earlier release: each shape of
// history, without a version, and each version the migrations make.
func starts() []start {
	var out []start
	for _, h := range history {
		out = append(out, start{
			name:     strings.TrimSuffix(h.file, ".sql"),
			make:     func(t *testing.T, path string) { execFile(t, path, h.file) },
			unhashed: h.unhashed,
			versions: versionsFrom(h.version),
		})
	}
	for v := 1; v <= sqlite.LatestVersion; v++ {
		out = append(out, start{
			name:     fmt.Sprintf("version-%d", v),
			make:     func(t *testing.T, path string) { require.NoError(t, sqlite.MigrateTo(path, v)) },
			versions: versionsFrom(1),
		})
	}
	return out
}

func versionsFrom(v int) []int {
	var out []int
	for ; v <= sqlite.LatestVersion; v++ {
		out = append(out, v)
	}
	return out
}

// raw opens the database at path without the store.
func raw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func execFile(t *testing.T, path, file string) {
	t.Helper()
	ddl, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	db := raw(t, path)
	_, err = db.Exec(string(ddl))
	require.NoError(t, err)
	require.NoError(t, db.Close())
}

// populate writes docstoretest's old data into the older database at
// path, with the partition key hashes if it has the column (NULL if
// unhashed).
func populate(t *testing.T, path string, unhashed bool, ts time.Time) {
	t.Helper()
	db := raw(t, path)
	for _, c := range docstoretest.OldContainers {
		_, err := db.Exec(`INSERT INTO containers (name, partition_key_path, default_ttl_ms, created, last_lsn) VALUES (?, ?, ?, ?, ?)`,
			c.Name, c.PartitionKeyPath, c.DefaultTTL.Milliseconds(), c.Created.Format(time.RFC3339Nano), c.LastLSN)
		require.NoError(t, err)
	}
	var hashed bool
	require.NoError(t, db.QueryRow(`SELECT count(*) > 0 FROM pragma_table_info('documents') WHERE name = 'pk_hash'`).Scan(&hashed))
	for _, d := range docstoretest.OldDocuments {
		var body any
		if b := d.Body(t, ts); b != nil {
			body = string(b)
		}
		args := []any{d.Container, d.PartitionKey, d.ID, body, docstore.ETagFor(d.LSN), ts.UnixNano(), d.LSN, d.Deleted}
		q := `INSERT INTO documents (container, pk, id, body, etag, ts, lsn, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
		if hashed {
			var hash any
			if !unhashed {
				hash = docstore.PartitionKeyHash(d.PartitionKey)
			}
			q = `INSERT INTO documents (container, pk, id, body, etag, ts, lsn, deleted, pk_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
			args = append(args, hash)
		}
		_, err := db.Exec(q, args...)
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())
}

// versions are the versions recorded in the database at path.
func versions(t *testing.T, path string) []int {
	t.Helper()
	rows, err := raw(t, path).Query(`SELECT version FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	var out []int
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		out = append(out, v)
	}
	require.NoError(t, rows.Err())
	return out
}

// schemaOf describes the tables of the database at path (but the version
// table), their columns and indexes, and whether they are WITHOUT ROWID.
func schemaOf(t *testing.T, path string) []string {
	t.Helper()
	db := raw(t, path)
	var out []string
	query := func(q string, args ...any) [][]any {
		rows, err := db.Query(q, args...)
		require.NoError(t, err)
		defer rows.Close()
		cols, err := rows.Columns()
		require.NoError(t, err)
		var res [][]any
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			res = append(res, vals)
		}
		require.NoError(t, rows.Err())
		return res
	}
	for _, table := range query(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations' ORDER BY name`) {
		name := table[0].(string)
		out = append(out, fmt.Sprintf("table %s without rowid %v", name, strings.Contains(table[1].(string), "WITHOUT ROWID")))
		for _, c := range query(`SELECT cid, name, type, "notnull", dflt_value, pk FROM pragma_table_xinfo(?)`, name) {
			out = append(out, fmt.Sprintf("  column %v", c))
		}
		for _, ix := range query(`SELECT name, "unique", origin, partial FROM pragma_index_list(?) ORDER BY name`, name) {
			var cols []string
			for _, c := range query(`SELECT name FROM pragma_index_info(?) ORDER BY seqno`, ix[0]) {
				cols = append(cols, c[0].(string))
			}
			origin := ix[0]
			if ix[2] != "c" {
				origin = ix[2] // the names of automatic indexes say nothing
			}
			out = append(out, fmt.Sprintf("  index %v unique %v partial %v on %v", origin, ix[1], ix[3], cols))
		}
	}
	return out
}

// definitions are the statements that made the tables and indexes of the
// database at path, as `sqlite3 docs.db .schema` shows them.
func definitions(t *testing.T, path string) []string {
	t.Helper()
	rows, err := raw(t, path).Query(`SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name != 'schema_migrations' ORDER BY name`)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestMigrationsAreNumberedInOrder(t *testing.T) {
	t.Parallel()
	require.Equal(t, versionsFrom(1), sqlite.MigrationVersions())
}

// Migrating to version k makes the schema the releases of version k made,
// and a new database gets what the current DocumentsDDL describes, with
// the very statements of a database made by e3277fd.
func TestMigrationsReproduceHistoricalSchemas(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, h := range history {
		if strings.Contains(h.file, "interrupted") {
			continue // not a schema, a schema half made
		}
		old, migrated := filepath.Join(dir, h.file+".old"), filepath.Join(dir, h.file+".migrated")
		execFile(t, old, h.file)
		require.NoError(t, sqlite.MigrateTo(migrated, h.version))
		require.Equal(t, schemaOf(t, old), schemaOf(t, migrated), h.file)
	}

	fresh := filepath.Join(dir, "fresh.db")
	require.NoError(t, openStore(t, fresh).Close())
	require.Equal(t, []int{1, 2, 3}, versions(t, fresh))
	v3 := filepath.Join(dir, "v3-e3277fd.sql.old")
	require.Equal(t, schemaOf(t, v3), schemaOf(t, fresh))
	require.Equal(t, definitions(t, v3), definitions(t, fresh))

	current := filepath.Join(dir, "current.db")
	db := raw(t, current)
	_, err := db.Exec(sqlite.DocumentsDDL("documents"))
	require.NoError(t, err)
	require.NoError(t, db.Close())
	require.Equal(t, schemaOf(t, current), documentsPart(schemaOf(t, fresh)), "DocumentsDDL is the documents table the migrations make")
}

// documentsPart is the description of the documents table in a schemaOf.
func documentsPart(schema []string) []string {
	var out []string
	in := false
	for _, line := range schema {
		if strings.HasPrefix(line, "table ") {
			in = strings.HasPrefix(line, "table documents ")
		}
		if in {
			out = append(out, line)
		}
	}
	return out
}

// Open brings a database of any earlier release up to date, with its
// data intact, and then changes nothing on later opens.
func TestOpenMigratesOlderDatabases(t *testing.T) {
	t.Parallel()
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	require.NoError(t, openStore(t, fresh).Close())
	want := schemaOf(t, fresh)
	for _, st := range starts() {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "docs.db")
			st.make(t, path)
			ts := time.Now().UTC().Truncate(time.Millisecond)
			populate(t, path, st.unhashed, ts)

			s := openStore(t, path)
			require.Equal(t, st.versions, versions(t, path))
			require.Equal(t, want, schemaOf(t, path))
			docstoretest.CheckOldData(t, s, ts)
			require.NoError(t, s.Close())

			require.NoError(t, openStore(t, path).Close())
			require.Equal(t, st.versions, versions(t, path), "a second open migrates nothing")
		})
	}
}

// The conformance suite passes on a database of every earlier version.
func TestConformanceOnOlderDatabases(t *testing.T) {
	t.Parallel()
	for _, h := range history {
		if !h.conformance {
			continue
		}
		t.Run(strings.TrimSuffix(h.file, ".sql"), func(t *testing.T) {
			t.Parallel()
			docstoretest.Run(t, func(t *testing.T) docstore.Store {
				path := filepath.Join(t.TempDir(), "docs.db")
				execFile(t, path, h.file)
				return openStore(t, path)
			})
		})
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "docs.db")
	require.NoError(t, openStore(t, path).Close())
	db := raw(t, path)
	newer := sqlite.LatestVersion + 1
	_, err := db.Exec(`INSERT INTO schema_migrations (version, applied) VALUES (?, '2030-01-01T00:00:00Z')`, newer)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	before := definitions(t, path)

	_, err = sqlite.Open(path, sqlite.Options{})
	var newerErr *sqlite.NewerSchemaError
	require.ErrorAs(t, err, &newerErr)
	require.Equal(t, sqlite.NewerSchemaError{Database: path, Version: newer, Known: sqlite.LatestVersion}, *newerErr)
	require.EqualError(t, err, fmt.Sprintf("docstore: %s was written by a newer Sluice (schema version %d, this one knows %d); upgrade sluice",
		path, newer, sqlite.LatestVersion))
	require.Equal(t, before, definitions(t, path))
	require.Equal(t, append(versionsFrom(1), newer), versions(t, path))
}

// A migration that fails leaves the database at the version before it,
// without any of its changes; the next open goes on from there.
func TestFailedMigrationChangesNothing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "docs.db")
	require.ErrorContains(t, sqlite.MigrateBroken(path), "schema version 2 (broken): broken on purpose")
	require.Equal(t, []int{1}, versions(t, path))
	var n int
	require.NoError(t, raw(t, path).QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'half_done'`).Scan(&n))
	require.Zero(t, n)

	ts := time.Now().UTC().Truncate(time.Millisecond)
	populate(t, path, false, ts)
	docstoretest.CheckOldData(t, openStore(t, path), ts)
	require.Equal(t, versionsFrom(1), versions(t, path))
}

// Stores opened at once on an older database migrate it once: the first
// to begin each migration holds off the others until it commits.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "docs.db")
	execFile(t, path, "v1-fa89668.sql")
	ts := time.Now().UTC().Truncate(time.Millisecond)
	populate(t, path, true, ts)

	const openers = 4
	start := make(chan struct{})
	stores := make([]*sqlite.Store, openers)
	errs := make([]error, openers)
	var wg sync.WaitGroup
	for i := range openers {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = sqlite.Open(path, sqlite.Options{})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "opener %d", i)
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	require.Equal(t, versionsFrom(1), versions(t, path))
	docstoretest.CheckOldData(t, stores[openers-1], ts)
}
