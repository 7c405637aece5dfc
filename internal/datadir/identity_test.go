package datadir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIdentityIsKeptAndHeld(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	n := 0
	newID := func() string { n++; return []string{"", "host-aaaaaa", "host-bbbbbb"}[n] }

	first, err := ClaimIdentity(dir, newID)
	require.NoError(t, err)
	require.Equal(t, "host-aaaaaa", first.ID)
	// Held: another process (here another claim) cannot have it.
	_, err = ClaimIdentity(dir, newID)
	require.ErrorIs(t, err, ErrInUse)
	require.NoError(t, first.Release())
	require.NoError(t, first.Release(), "twice is fine")

	// The next process on the directory gets the same ID back.
	again, err := ClaimIdentity(dir, newID)
	require.NoError(t, err)
	require.Equal(t, "host-aaaaaa", again.ID)
	require.NoError(t, again.Release())
	require.Equal(t, 1, n, "no new ID was made")

	// A damaged file gives a new ID rather than a bad one.
	require.NoError(t, os.WriteFile(filepath.Join(dir, IdentityFile), []byte("not an id!\n"), 0o644))
	fresh, err := ClaimIdentity(dir, newID)
	require.NoError(t, err)
	require.Equal(t, "host-bbbbbb", fresh.ID)
	require.NoError(t, fresh.Release())
	var nilID *Identity
	require.NoError(t, nilID.Release())
}

func TestValidateInstanceID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"a", "sluice-0", "host.example.com-1f2e3d", "A_b-c.9"} {
		require.NoError(t, ValidateInstanceID(id), id)
	}
	for _, id := range []string{"", "-a", ".a", "a b", "a*", "a>", "é", strings.Repeat("a", 101)} {
		require.ErrorContains(t, ValidateInstanceID(id), "use 1 to 100 letters", "%q", id)
	}
}
