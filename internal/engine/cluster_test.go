package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

// TestClusterSurvivesLeaderLoss: an R3 stream and an R3 bucket on a 3-node
// cluster lose the stream leader's node to SIGKILL while a client keeps
// publishing (retrying with the same message id); every acknowledged
// message is stored exactly once, also on the node that was killed and
// restarted.
func TestClusterSurvivesLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster and waits out a leader election")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	started := time.Now()
	c := enginetest.Cluster(t, 3)
	t.Logf("the 3-node cluster formed in %v", time.Since(started).Round(time.Millisecond))
	eng := c.Engine(t)

	_, err := eng.JS.CreateStream(ctx, jetstream.StreamConfig{
		Name: "orders", Subjects: []string{"orders.>"}, Replicas: 3, Duplicates: 10 * time.Minute,
	})
	require.NoError(t, err)
	kv, err := eng.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "state", Replicas: 3})
	require.NoError(t, err)
	require.NoError(t, c.WaitCurrent(ctx, "orders"))
	require.NoError(t, c.WaitCurrent(ctx, "KV_state"))

	leader, err := c.StreamLeader(ctx, "orders")
	require.NoError(t, err)
	// The publisher is connected to the leader's node alone, and learns of
	// the others from it: its connection goes down with the leader.
	pubEng, err := engine.Start(ctx, engine.Config{URL: c.NodeURL(leader), Name: "publisher"})
	require.NoError(t, err)
	defer pubEng.Close()
	require.Len(t, pubEng.Conn.DiscoveredServers(), 2, "the node told of the other two")

	pub := &publisher{js: pubEng.JS, acked: map[string]uint64{}, errs: map[string]int{}}
	for range 100 {
		pub.publish(ctx, t)
	}
	for i := range 10 {
		putKey(ctx, t, kv, i, pub.errs)
	}

	killed := time.Now()
	require.NoError(t, c.Kill(leader))
	for range 100 {
		pub.publish(ctx, t)
	}
	for i := 10; i < 20; i++ {
		putKey(ctx, t, kv, i, pub.errs)
	}
	newLeader, err := c.StreamLeader(ctx, "orders")
	require.NoError(t, err)
	require.NotEqual(t, leader, newLeader)
	t.Logf("killed node-%d, the leader of orders and the publisher's server: %d publish attempts failed over %v "+
		"(the longest took %v; first success %v after the kill; %d retries were duplicates of a stored message); "+
		"node-%d leads now, the publisher is on %s; errors: %v",
		leader, pub.failed, pub.window.Round(time.Millisecond), pub.slowest.Round(time.Millisecond),
		pub.recovered.Sub(killed).Round(time.Millisecond), pub.dups, newLeader, pubEng.Conn.ConnectedServerName(), pub.errs)

	require.NoError(t, c.Restart(ctx, leader))
	for range 50 {
		pub.publish(ctx, t)
	}
	require.NoError(t, c.WaitCurrent(ctx, "orders"))
	require.NoError(t, c.WaitCurrent(ctx, "KV_state"))

	// Read everything back from the node that was killed, as the leader.
	require.NoError(t, c.StepDownTo(ctx, "orders", leader))
	require.NoError(t, c.StepDownTo(ctx, "KV_state", leader))
	stored := readStream(ctx, t, eng.JS, "orders")
	require.Len(t, stored, len(pub.acked), "every acknowledged message once, nothing else")
	for id, seq := range pub.acked {
		require.Equal(t, seq, stored[id], "message %s is at the sequence its acknowledgement gave", id)
	}
	for i := range 20 {
		entry, err := kv.Get(ctx, "k"+strconv.Itoa(i))
		require.NoError(t, err)
		require.Equal(t, "v"+strconv.Itoa(i), string(entry.Value()))
	}

	// A step-down without a preference moves the leader elsewhere.
	moved, err := c.StepDown(ctx, "orders")
	require.NoError(t, err)
	require.NotEqual(t, leader, moved)
	info, err := eng.JS.Stream(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, "node-"+strconv.Itoa(moved), info.CachedInfo().Cluster.Leader)
	require.Len(t, info.CachedInfo().Cluster.Replicas, 2)
}

// publisher publishes numbered messages one at a time, retrying each with
// the same Nats-Msg-Id until it is acknowledged, and keeps what failed.
type publisher struct {
	js    jetstream.JetStream
	next  int
	acked map[string]uint64 // message id → stream sequence acknowledged
	dups  int               // acknowledgements saying "duplicate"

	errs      map[string]int // error text → count, of publishes and KV puts
	failed    int            // failed attempts
	window    time.Duration  // from the first failure to the next success
	slowest   time.Duration  // the longest failed attempt
	firstFail time.Time
	recovered time.Time // the first success after a failure
}

func (p *publisher) publish(ctx context.Context, t *testing.T) {
	t.Helper()
	id := "m-" + strconv.Itoa(p.next)
	p.next++
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		began := time.Now()
		ack, err := p.js.PublishMsg(attempt, &nats.Msg{Subject: "orders.new", Data: []byte(id)}, jetstream.WithMsgID(id))
		took := time.Since(began)
		cancel()
		if err == nil {
			p.acked[id] = ack.Sequence
			if ack.Duplicate {
				p.dups++
			}
			if !p.firstFail.IsZero() && p.recovered.IsZero() {
				p.recovered = time.Now()
				p.window = p.recovered.Sub(p.firstFail)
			}
			return
		}
		require.NoError(t, ctx.Err(), "publishing %s; errors so far: %v", id, p.errs)
		p.failed++
		p.slowest = max(p.slowest, took)
		p.errs[errText(err)]++
		if p.firstFail.IsZero() {
			p.firstFail = time.Now()
		}
	}
}

// putKey puts k<i> = v<i>, retrying until it is acknowledged.
func putKey(ctx context.Context, t *testing.T, kv jetstream.KeyValue, i int, errs map[string]int) {
	t.Helper()
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := kv.Put(attempt, "k"+strconv.Itoa(i), []byte("v"+strconv.Itoa(i)))
		cancel()
		if err == nil {
			return
		}
		require.NoError(t, ctx.Err(), "putting k%d; errors so far: %v", i, errs)
		errs["kv put: "+errText(err)]++
	}
}

// errText names an error by its chain's sentinels, for counting.
func errText(err error) string {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "context deadline exceeded (" + err.Error() + ")"
	case errors.As(err, &apiErr):
		return fmt.Sprintf("API error %d/%d: %s", apiErr.Code, apiErr.ErrorCode, apiErr.Description)
	}
	return fmt.Sprintf("%T: %v", err, err)
}

// leaderChanging reports whether err is what a request gets while a
// stream's leader changes.
func leaderChanging(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// readStream reads the whole stream with an ordered consumer and returns
// message id → sequence, failing on a message id seen twice.
func readStream(ctx context.Context, t *testing.T, js jetstream.JetStream, name string) map[string]uint64 {
	t.Helper()
	s, err := js.Stream(ctx, name)
	require.NoError(t, err)
	last := s.CachedInfo().State.LastSeq
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	stored := map[string]uint64{}
	var seq uint64
	for seq < last {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if leaderChanging(err) && ctx.Err() == nil {
			// Right after a step-down the stream may not answer yet: ask
			// again (the ordered consumer goes on after the last message).
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		require.NoError(t, err)
		for msg := range batch.Messages() {
			meta, err := msg.Metadata()
			require.NoError(t, err)
			seq = meta.Sequence.Stream
			id := msg.Headers().Get(jetstream.MsgIDHeader)
			prev, dup := stored[id]
			require.False(t, dup, "message %s stored twice, at %d and %d", id, prev, seq)
			stored[id] = seq
		}
		if err := batch.Error(); !leaderChanging(err) {
			require.NoError(t, err)
		}
		require.NoError(t, ctx.Err())
	}
	return stored
}

// TestEngineOnCluster: engine.Start connects by the cluster's URL list,
// JetStream answers, and it still starts with a node down; a new meta
// leader takes over from a killed one.
func TestEngineOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster and waits out a leader election")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := enginetest.Cluster(t, 3)
	require.Len(t, strings.Split(c.URL(), ","), 3)

	eng, err := engine.Start(ctx, engine.Config{URL: c.URL()})
	require.NoError(t, err)
	defer eng.Close()
	require.False(t, eng.Embedded())
	require.Equal(t, int64(engine.DefaultMaxPayload), eng.MaxPayload(), "the nodes accept what the embedded server does")
	_, err = eng.JS.AccountInfo(ctx)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(eng.Conn.ConnectedServerName(), "node-"), eng.Conn.ConnectedServerName())

	meta, err := c.MetaLeader(ctx)
	require.NoError(t, err)
	require.NoError(t, c.Kill(meta))
	after, err := c.MetaLeader(ctx)
	require.NoError(t, err)
	require.NotEqual(t, meta, after)

	// With a node down, even first in the list, an engine starts and
	// JetStream works (an R1 stream: placing an R3 one needs three live
	// servers).
	second, err := engine.Start(ctx, engine.Config{URL: c.NodeURL(meta) + "," + c.URL(), Replicas: 1})
	require.NoError(t, err)
	defer second.Close()
	_, err = second.JS.AccountInfo(ctx)
	require.NoError(t, err)
	_, err = second.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "r1", Subjects: []string{"r1"}})
	require.NoError(t, err)
	_, err = second.JS.Publish(ctx, "r1", []byte("x"))
	require.NoError(t, err)

	require.NoError(t, c.Restart(ctx, meta))
	require.NoError(t, c.Stop(after), "a graceful stop")
	_, err = c.MetaLeader(ctx)
	require.NoError(t, err)
}

// TestEngineOnDefaultServer: a node with NATS's default max_payload (1 MiB)
// is what an external server configured by hand looks like.
func TestEngineOnDefaultServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server process")
	}
	t.Parallel()
	c := enginetest.Cluster(t, 1, enginetest.WithMaxPayload(0))
	eng := c.Engine(t)
	require.Equal(t, int64(1<<20), eng.MaxPayload())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := eng.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "s", Subjects: []string{"s"}})
	require.NoError(t, err)
	leader, err := c.StreamLeader(ctx, "s")
	require.NoError(t, err)
	require.Equal(t, 0, leader)
	_, err = eng.JS.Publish(ctx, "s", []byte("kept"))
	require.NoError(t, err)

	// The single server's outage: killed, restarted on the same store.
	require.NoError(t, c.Kill(0))
	require.NoError(t, c.Restart(ctx, 0))
	require.NoError(t, c.WaitCurrent(ctx, "s"))
	// The engine writes nothing while it reconnects (no reconnect buffer):
	// wait for its connection to be back.
	for !eng.Conn.IsConnected() {
		select {
		case <-ctx.Done():
			t.Fatalf("the engine did not reconnect: %v", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	s, err := eng.JS.Stream(ctx, "s")
	require.NoError(t, err)
	msg, err := s.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "kept", string(msg.Data))
}
