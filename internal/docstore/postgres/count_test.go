package postgres_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
)

// TestCountDocuments counts live documents: not tombstones.
func TestCountDocuments(t *testing.T) {
	t.Parallel()
	dsn := dsnOrSkip(t)
	s := open(t, dsn, freshSchema(t, dsn))
	_, err := s.CountDocuments(bg, "devices")
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
