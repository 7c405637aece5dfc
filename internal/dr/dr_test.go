package dr_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/dr"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// A promoted mirror asks its origin's server to delete the
		// mirror's consumer there, in a goroutine of the NATS server that
		// waits for the answer for a while whatever happens to the server
		// (nats-server stream.go tryDeleteSourcingConsumer).
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*stream).tryDeleteSourcingConsumer.func1"))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// site is one side of a DR pair: its engine and Sluice's services on it.
type site struct {
	eng    *engine.Engine
	hubs   *hub.Service
	queues *queue.Service
	blobs  *blob.Service
}

func openSite(t *testing.T, eng *engine.Engine) *site {
	t.Helper()
	ctx := context.Background()
	hubs, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { _ = hubs.Stop(context.Background()) })
	qs := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{Logger: quiet})
	t.Cleanup(func() { _ = qs.Stop(context.Background()) })
	return &site{eng: eng, hubs: hubs, queues: qs, blobs: blob.Open(eng.JS, blob.Options{Logger: quiet})}
}

// follow starts a follower on the secondary, stopped when the test ends.
func follow(t *testing.T, secondary *engine.Engine) *dr.Follower {
	t.Helper()
	f, err := dr.Open(context.Background(), dr.Config{PrimaryDomain: enginetest.PrimaryDomain, JS: secondary.JS,
		Interval: 50 * time.Millisecond, InstanceID: "test-secondary", Logger: quiet})
	require.NoError(t, err)
	require.NoError(t, f.Start(context.Background()))
	t.Cleanup(func() { _ = f.Stop(context.Background()) })
	return f
}

// eventually polls cond until it holds, for at most a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// caughtUp reports whether the secondary's stream name holds what the
// primary's does, up to the same last sequence.
func caughtUp(ctx context.Context, primary, secondary *engine.Engine, name string) bool {
	ps, err := primary.JS.Stream(ctx, name)
	if err != nil {
		return false
	}
	ss, err := secondary.JS.Stream(ctx, name)
	if err != nil {
		return false
	}
	pi, err1 := ps.Info(ctx)
	si, err2 := ss.Info(ctx)
	return err1 == nil && err2 == nil && pi.State.LastSeq == si.State.LastSeq && pi.State.Msgs == si.State.Msgs
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	for stream, kind := range map[string]string{
		"hub-orders-0": dr.KindHub, "queue-jobs": dr.KindQueue, "queue-sluice-retry-fn": dr.KindQueue,
		"OBJ_blob-in": dr.KindBlob, "KV_sluice-checkpoints": dr.KindKV, "KV_sluice-keys": dr.KindKV,
		"KV_sluice-leases": "", "KV_sluice-breakers": "", "KV_sluice-dr": "", "KV_sluice-queue-locks": "",
		"KV_other": "", "benchbase1-0": "", "OBJ_other": "",
	} {
		require.Equal(t, kind, dr.KindOf(stream), stream)
	}
}

// TestFollow: hubs, queues, KV entries and blobs of the primary, made
// before and after the follower started, appear on the secondary with the
// same sequences; leases stay local.
func TestFollow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pe, se := enginetest.Pair(t)
	p := openSite(t, pe)

	// Before the secondary follows.
	_, err := p.hubs.Create(ctx, hub.Config{Name: "early", Partitions: 2})
	require.NoError(t, err)
	early, err := p.hubs.Publish(ctx, "early", []hub.Event{{Body: []byte("a"), PartitionKey: "k"}, {Body: []byte("b"), PartitionKey: "k"}})
	require.NoError(t, err)
	_, err = p.hubs.PutCheckpoint(ctx, "early", hub.DefaultGroup, early[0].Partition, hub.Checkpoint{Sequence: early[0].Sequence, Owner: "primary-1"}, 0)
	require.NoError(t, err)
	leases, err := pe.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "sluice-leases"})
	require.NoError(t, err)
	_, err = leases.Put(ctx, "x", []byte("primary-1"))
	require.NoError(t, err)

	f := follow(t, se)

	// After.
	_, err = p.hubs.Create(ctx, hub.Config{Name: "late", Partitions: 3})
	require.NoError(t, err)
	var late []hub.Position
	for i := range 20 {
		pos, err := p.hubs.Publish(ctx, "late", []hub.Event{{Body: []byte{byte(i)}}})
		require.NoError(t, err)
		late = append(late, pos...)
	}
	_, err = p.queues.Create(ctx, queue.Config{Name: "jobs"})
	require.NoError(t, err)
	seqs, err := p.queues.Send(ctx, "jobs", []queue.Outgoing{{Body: []byte("j1")}, {Body: []byte("j2")}})
	require.NoError(t, err)
	_, err = p.blobs.CreateContainer(ctx, "files")
	require.NoError(t, err)
	body := bytes.Repeat([]byte("blob"), 100_000) // several chunks
	_, err = p.blobs.Put(ctx, "files", "a.bin", bytes.NewReader(body), blob.Meta{})
	require.NoError(t, err)

	streams := []string{"hub-early-0", "hub-early-1", "hub-late-0", "hub-late-1", "hub-late-2", "queue-jobs",
		"OBJ_blob-files", "KV_sluice-hubs", "KV_sluice-checkpoints"}
	for _, name := range streams {
		eventually(t, name+" mirrored", func() bool { return caughtUp(ctx, pe, se, name) })
	}
	_, err = se.JS.Stream(ctx, "KV_sluice-leases")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "leases stay local")

	st, err := f.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, dr.RoleFollowing, st.Role)
	require.Zero(t, st.Errors, "%+v", st)
	names := map[string]dr.Resource{}
	for _, r := range st.Resources {
		names[r.Stream] = r
	}
	for _, name := range streams {
		require.Contains(t, names, name)
		require.True(t, names[name].Mirror)
	}
	require.Equal(t, "late", names["hub-late-2"].Name)
	require.Equal(t, 2, *names["hub-late-2"].Partition)

	// The same positions: every event published to "late" reads back on
	// the secondary at the sequence the primary answered.
	sreader, err := se.ReadJS.Stream(ctx, hub.StreamName("late", late[0].Partition))
	require.NoError(t, err)
	msg, err := sreader.GetMsg(ctx, 1)
	require.NoError(t, err)
	evs, err := hub.DecodeRecord(msg.Data, late[0].Partition, msg.Sequence)
	require.NoError(t, err)
	require.Equal(t, late[0].Sequence, evs[0].Sequence)

	// Failover: the streams become writable here with their sequences,
	// the checkpoint keeps its revision, and the queue its messages.
	rep, err := f.Failover(ctx)
	require.NoError(t, err)
	require.False(t, rep.Already)
	require.Len(t, rep.Resources, len(st.Resources))
	<-f.Promoted()
	require.NoError(t, pe.Close())

	s := openSite(t, se)
	pos, err := s.hubs.Publish(ctx, "late", []hub.Event{{Body: []byte("after"), PartitionKey: "z"}})
	require.NoError(t, err)
	last := map[int]int64{}
	for _, l := range late {
		last[l.Partition] = max(last[l.Partition], l.Sequence)
	}
	require.Greater(t, pos[0].Sequence, last[pos[0].Partition], "the promoted hub goes on after the primary's last event")
	cp, rev, err := s.hubs.GetCheckpoint(ctx, "early", hub.DefaultGroup, early[0].Partition)
	require.NoError(t, err)
	require.Equal(t, early[0].Sequence, cp.Sequence)
	_, err = s.hubs.PutCheckpoint(ctx, "early", hub.DefaultGroup, early[0].Partition, hub.Checkpoint{Sequence: early[1].Sequence}, rev)
	require.NoError(t, err, "a compare-and-set on the mirrored revision works")
	got, err := s.queues.Receive(ctx, "jobs", 10, 5*time.Second)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, seqs[0], got[0].ID)
	for _, m := range got {
		require.NoError(t, s.queues.Complete(ctx, "jobs", m))
	}
	rc, _, err := s.blobs.Get(ctx, "files", "a.bin")
	require.NoError(t, err)
	data, err := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	require.Equal(t, body, data)
	_, err = s.blobs.Put(ctx, "files", "b.bin", bytes.NewReader([]byte("new")), blob.Meta{})
	require.NoError(t, err)

	// Failover again: nothing left to do, same record.
	again, err := f.Failover(ctx)
	require.NoError(t, err)
	require.True(t, again.Already)
	require.Equal(t, rep.Promotion.At, again.Promotion.At)
	require.Equal(t, len(st.Resources), again.AlreadyPromoted)
}
