package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/hub"
)

// consumers counts the consumers the server holds on a partition's stream.
func consumers(t *testing.T, eng *engine.Engine, name string, p int) int {
	t.Helper()
	st, err := eng.JS.Stream(context.Background(), hub.StreamName(name, p))
	require.NoError(t, err)
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	return info.State.Consumers
}

// A lag query reads record headers through a consumer it deletes: a
// dashboard or metrics scrape asking every second leaves nothing on the
// server. (Each query used to leave an ordered consumer, idle for five
// minutes: hundreds per stream.)
func TestLagLeavesNoConsumers(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		s, name := setup(t, eng, hub.Config{Partitions: 1})
		// Records of several events each: 3 records of 4, 1 and 3 events.
		var pos []hub.Position
		for _, n := range []int{4, 1, 3} {
			events := make([]hub.Event, n)
			for i := range events {
				events[i] = hub.Event{Body: []byte{byte(i)}}
			}
			p, err := s.Publish(ctx, name, events)
			require.NoError(t, err)
			pos = append(pos, p...)
		}
		// The checkpoint in the middle of the first record: 2 of its
		// events, and the 4 of the later records, are after it.
		_, err := s.PutCheckpoint(ctx, name, hub.DefaultGroup, 0, hub.Checkpoint{Sequence: pos[1].Sequence}, 0)
		require.NoError(t, err)
		require.Zero(t, consumers(t, eng, name, 0))

		for i := range 1000 {
			lags, err := s.GroupLag(ctx, name, hub.DefaultGroup)
			require.NoError(t, err)
			require.Equal(t, int64(6), lags[0].Events, "call %d", i)
			require.Equal(t, int64(3), lags[0].Records, "call %d", i)
			require.False(t, lags[0].Estimated)
		}
		require.Zero(t, consumers(t, eng, name, 0), "1000 lag queries leave no consumer")

		// Replay to a time scans too, and leaves nothing either.
		_, err = s.Replay(ctx, name, hub.DefaultGroup, hub.ReplayTarget{Time: time.Unix(1, 0)}, 0)
		require.NoError(t, err)
		require.Zero(t, consumers(t, eng, name, 0), "a replay to a time leaves no consumer")
		lags, err := s.GroupLag(ctx, name, hub.DefaultGroup)
		require.NoError(t, err)
		require.Equal(t, int64(8), lags[0].Events)
	})
}

// A reader deletes its consumer when it goes over to the tail or is
// closed: partitions read again and again (a lease moving, a group
// replayed) leave nothing on the server. (An ordered consumer stays, idle,
// for five minutes.)
func TestReadersLeaveNoConsumers(t *testing.T) {
	t.Parallel()
	for _, tail := range []bool{false, true} {
		t.Run(map[bool]string{false: "store", true: "tail"}[tail], func(t *testing.T) {
			t.Parallel()
			eng := enginetest.Embedded(t)
			ctx := context.Background()
			s, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{Tail: tail})
			require.NoError(t, err)
			name := enginetest.Name("h")
			_, err = s.Create(ctx, hub.Config{Name: name, Partitions: 1})
			require.NoError(t, err)
			_, err = s.Publish(ctx, name, []hub.Event{{Body: []byte("a")}, {Body: []byte("b")}})
			require.NoError(t, err)
			for range 20 {
				r, err := s.OpenReader(ctx, name, 0, hub.Start{Kind: hub.StartEarliest})
				require.NoError(t, err)
				evs, err := r.Next(ctx)
				require.NoError(t, err)
				require.Len(t, evs, 2)
				r.Close()
			}
			require.NoError(t, s.Stop(ctx)) // waits for the deletions
			require.Zero(t, consumers(t, eng, name, 0))
		})
	}
}
