package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/sqlite"
)

// TestCountDocuments counts live documents: not tombstones.
func TestCountDocuments(t *testing.T) {
	t.Parallel()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "docs.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	bg := context.Background()
	_, err = s.CountDocuments(bg, "devices")
	require.ErrorIs(t, err, docstore.ErrNotFound)
	_, err = s.CreateContainer(bg, docstore.Container{Name: "devices", PartitionKeyPath: "/deviceId"})
	require.NoError(t, err)
	n, err := s.CountDocuments(bg, "devices")
	require.NoError(t, err)
	require.Zero(t, n)
	for _, d := range []string{`{"id":"1","deviceId":"a"}`, `{"id":"2","deviceId":"a"}`, `{"id":"1","deviceId":"b"}`, `{"id":"1","deviceId":"a","v":2}`} {
		_, err := s.Upsert(bg, "devices", []byte(d))
		require.NoError(t, err)
	}
	require.NoError(t, s.Delete(bg, "devices", "b", "1", ""))
	n, err = s.CountDocuments(bg, "devices")
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
}
