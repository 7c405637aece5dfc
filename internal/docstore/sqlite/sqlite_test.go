package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/docstoretest"
	"github.com/sluicehq/sluice/internal/docstore/sqlite"
)

func TestConformance(t *testing.T) {
	docstoretest.Run(t, func(t *testing.T) docstore.Store {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "docs.db"), sqlite.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// A database written before feed ranges existed gets its partition key
// hashes when opened, so range reads see its documents.
func TestOpenFillsHashesOfOlderDatabases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs.db")
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	_, err = db.Exec(`
CREATE TABLE containers (name TEXT PRIMARY KEY, partition_key_path TEXT NOT NULL, default_ttl_ms INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL, last_lsn INTEGER NOT NULL DEFAULT 0);
CREATE TABLE documents (container TEXT NOT NULL, pk TEXT NOT NULL, id TEXT NOT NULL, body TEXT, etag TEXT NOT NULL, ts INTEGER NOT NULL, lsn INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (container, pk, id)) WITHOUT ROWID;
CREATE UNIQUE INDEX documents_feed ON documents (container, lsn);
INSERT INTO containers VALUES ('c', '/deviceId', 0, '2026-01-01T00:00:00Z', 3);
INSERT INTO documents VALUES ('c', 'a', '1', '{"id":"1","deviceId":"a"}', '"1"', 1, 1, 0), ('c', 'b', '2', '{"id":"2","deviceId":"b"}', '"2"', 2, 2, 0), ('c', 'c', '3', '{"id":"3","deviceId":"c"}', '"3"', 3, 3, 0);
`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s, err := sqlite.Open(path, sqlite.Options{})
	require.NoError(t, err)
	defer s.Close()
	n := 0
	for i := range 2 {
		r := docstore.FeedRange{Count: 2, Index: i}
		docs, err := s.Feed(context.Background(), "c", docstore.FeedStart{Range: r}, 10)
		require.NoError(t, err)
		for _, d := range docs {
			require.True(t, r.Contains(d.PartitionKey))
		}
		n += len(docs)
	}
	require.Equal(t, 3, n)
}
