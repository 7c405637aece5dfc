package hub

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReconcile: state past the partition's end, as a DR failover can leave
// it (the state's mirror ahead of the partition's), is brought back to it;
// state within it is left alone.
func TestReconcile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, name := idHub(t)
	pos, err := s.Publish(ctx, name, []Event{{Body: []byte("a"), MessageID: "kept"}, {Body: []byte("b")}})
	require.NoError(t, err)
	end := pos[1].Sequence
	ahead := SequenceOf(uint64(end>>indexBits)+5, 3) // records the partition never got

	_, err = s.PutCheckpoint(ctx, name, "ok", 0, Checkpoint{Sequence: pos[0].Sequence}, 0)
	require.NoError(t, err)
	_, err = s.PutCheckpoint(ctx, name, DefaultGroup, 0, Checkpoint{Sequence: ahead, Retry: &RetryState{First: ahead - 1, Attempts: 2}}, 0)
	require.NoError(t, err)
	putEntry(t, s, name, "lost", idEntry{State: stateStored, Partition: 0, Sequence: ahead})

	got, err := s.Reconcile(ctx)
	require.NoError(t, err)
	require.Equal(t, Reconciled{Checkpoints: 1, IDs: 1}, got)
	cp, _, err := s.GetCheckpoint(ctx, name, DefaultGroup, 0)
	require.NoError(t, err)
	require.Equal(t, end, cp.Sequence, "moved back to the partition's last event")
	require.Nil(t, cp.Retry)
	cp, _, err = s.GetCheckpoint(ctx, name, "ok", 0)
	require.NoError(t, err)
	require.Equal(t, pos[0].Sequence, cp.Sequence, "a checkpoint within the partition stays")
	require.Equal(t, stateStored, getEntry(t, s, name, "kept").State, "an id within the partition stays")

	// The lost event, published again with its id, is stored.
	again, err := s.Publish(ctx, name, []Event{{Body: []byte("lost again"), MessageID: "lost"}})
	require.NoError(t, err)
	require.Greater(t, again[0].Sequence, end)

	got, err = s.Reconcile(ctx)
	require.NoError(t, err)
	require.Zero(t, got, "nothing left to do")
}
