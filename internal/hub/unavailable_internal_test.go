package hub

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

// detachPartition points partition p's stream at another subject, so that
// nobody takes the hub's records for it, as while it has no leader. The
// returned function attaches it again.
func detachPartition(t *testing.T, js jetstream.JetStream, hub string, p int) (reattach func()) {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, StreamName(hub, p))
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	detached := cfg
	detached.Subjects = []string{"detached." + StreamName(hub, p)}
	_, err = js.UpdateStream(ctx, detached)
	require.NoError(t, err)
	return func() {
		_, err := js.UpdateStream(ctx, cfg)
		require.NoError(t, err)
	}
}

// A partition whose stream exists but takes no records (no leader for the
// moment) is unavailable, not a missing hub: the publish says nothing was
// stored there, the hub is not forgotten, and publishing works again once
// the partition does.
func TestPublishToALeaderlessPartitionIsUnavailable(t *testing.T) {
	t.Parallel()
	s, name := publishHub(t, 2)
	ctx := context.Background()
	reattach := detachPartition(t, s.js, name, 1)

	_, err := s.Publish(ctx, name, []Event{{Body: []byte("a"), Partition: 1, HasPartition: true}})
	require.ErrorIs(t, err, ErrUnavailable)
	require.NotErrorIs(t, err, ErrNotFound)
	require.Contains(t, err.Error(), "nothing of this publish was stored")
	// The other partition still takes events.
	_, err = s.Publish(ctx, name, []Event{{Body: []byte("b"), Partition: 0, HasPartition: true}})
	require.NoError(t, err)

	reattach()
	pos, err := s.Publish(ctx, name, []Event{{Body: []byte("c"), Partition: 1, HasPartition: true}})
	require.NoError(t, err)
	require.Equal(t, []Position{{Partition: 1, Sequence: SequenceOf(1, 0)}}, pos)
}

// A hub deleted by another instance is not found by a publisher that
// knew it; a partition stream missing from a hub still defined is not a
// missing hub (see TestLostPartitionIsRestoredAfterEveryKnownPosition).
func TestPublishToAHubDeletedElsewhereIsNotFound(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	s, err := Open(ctx, eng.JS, eng.MaxPayload(), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Stop(context.Background())) })
	other, err := Open(ctx, eng.JS, eng.MaxPayload(), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, other.Stop(context.Background())) })
	name := enginetest.Name("h")
	_, err = s.Create(ctx, Config{Name: name, Partitions: 2})
	require.NoError(t, err)
	_, err = s.Publish(ctx, name, []Event{{Body: []byte("a"), Partition: 1, HasPartition: true}})
	require.NoError(t, err)
	require.NoError(t, other.Delete(ctx, name))
	_, err = s.Publish(ctx, name, []Event{{Body: []byte("b"), Partition: 1, HasPartition: true}})
	require.ErrorIs(t, err, ErrNotFound)
	_, err = eng.JS.Stream(ctx, StreamName(name, 1))
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "a deleted hub's partition is not recreated")
}

// A record the engine never confirms fails after the acknowledgement
// timeout, saying its events may or may not be stored, instead of holding
// the partition forever; and the service still stops.
func TestUnconfirmedPublishFailsAndStops(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	js, err := jetstream.New(eng.Conn, jetstream.WithPublishAsyncTimeout(100*time.Millisecond))
	require.NoError(t, err)
	s, err := Open(ctx, js, eng.MaxPayload(), Options{})
	require.NoError(t, err)
	s.resendFor = 500 * time.Millisecond // resends go unanswered too
	name := enginetest.Name("h")
	_, err = s.Create(ctx, Config{Name: name, Partitions: 1})
	require.NoError(t, err)

	// A subscriber that takes the records (and their resends) and never
	// answers, in place of the stream.
	detachPartition(t, js, name, 0)
	got := make(chan struct{}, 1)
	sub, err := eng.Conn.Subscribe(subject(name, 0), func(*nats.Msg) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()

	_, err = s.Publish(ctx, name, []Event{{Body: []byte("a")}})
	require.ErrorIs(t, err, ErrUnavailable)
	require.Contains(t, err.Error(), "may or may not be stored")
	<-got
	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, s.Stop(stopCtx))
}
