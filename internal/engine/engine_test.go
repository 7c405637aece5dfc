package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

func TestMain(m *testing.M) {
	enginetest.RunNodeIfAsked() // the cluster tests' nodes are this binary
	goleak.VerifyTestMain(m)
}

func TestEmbeddedKeepsDataAcrossRestarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	eng, err := engine.Start(ctx, engine.Config{DataDir: dir})
	require.NoError(t, err)
	require.True(t, eng.Embedded())
	require.Empty(t, eng.ClientURL(), "no port unless asked")
	_, err = eng.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "s", Subjects: []string{"s"}})
	require.NoError(t, err)
	_, err = eng.JS.Publish(ctx, "s", []byte("kept"))
	require.NoError(t, err)
	require.NoError(t, eng.Close())
	require.NoError(t, eng.Close(), "Close twice is safe")

	eng, err = engine.Start(ctx, engine.Config{DataDir: dir})
	require.NoError(t, err)
	defer eng.Close()
	st, err := eng.JS.Stream(ctx, "s")
	require.NoError(t, err)
	msg, err := st.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "kept", string(msg.Data))
}

func TestEmbeddedListensWhenAsked(t *testing.T) {
	t.Parallel()
	eng, err := engine.Start(context.Background(), engine.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	defer eng.Close()
	url := eng.ClientURL()
	require.NotEmpty(t, url)
	other, err := engine.Start(context.Background(), engine.Config{URL: url})
	require.NoError(t, err, "a second instance connects by URL")
	defer other.Close()
	require.False(t, other.Embedded())
	_, err = other.JS.AccountInfo(context.Background())
	require.NoError(t, err)
}

func TestStartRejectsBadConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for msg, cfg := range map[string]engine.Config{
		"sync must be":          {DataDir: t.TempDir(), Sync: "sometimes"},
		"data directory":        {},
		"cannot be combined":    {URL: "nats://127.0.0.1:1", Listen: "127.0.0.1:0"},
		"want host:port":        {DataDir: t.TempDir(), Listen: "nonsense"},
		"port must be a number": {DataDir: t.TempDir(), Listen: "127.0.0.1:http"},
		"is the server running": {URL: "nats://127.0.0.1:1"},
	} {
		_, err := engine.Start(ctx, cfg)
		require.ErrorContains(t, err, msg)
	}
}

func TestSyncIntervalMode(t *testing.T) {
	t.Parallel()
	eng, err := engine.Start(context.Background(), engine.Config{DataDir: t.TempDir(), Sync: engine.SyncInterval})
	require.NoError(t, err)
	defer eng.Close()
	require.GreaterOrEqual(t, eng.MaxPayload(), int64(4<<20), "room for a 1 MiB event and packing")
	require.Equal(t, nats.CONNECTED, eng.Conn.Status())
}

func TestVersionAtLeast(t *testing.T) {
	for _, c := range []struct {
		have, want string
		ok         bool
	}{
		{"2.12.0", "2.12.0", true},
		{"2.15.2", "2.12.0", true},
		{"2.9.10", "2.12.0", false},
		{"v2.12.1-beta", "2.12.0", true},
		{"2.12.0-RC.1", "2.12.1", false},
		{"3.0.0", "2.12.0", true},
	} {
		require.Equal(t, c.ok, engine.VersionAtLeast(c.have, c.want), "%s >= %s", c.have, c.want)
	}
}

// An asynchronous publish nobody confirms fails after PublishAckTimeout
// instead of waiting forever.
func TestUnconfirmedPublishTimesOut(t *testing.T) {
	t.Parallel()
	eng, err := engine.Start(context.Background(), engine.Config{DataDir: t.TempDir(), PublishAckTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	defer eng.Close()
	sub, err := eng.Conn.SubscribeSync("silent")
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	fut, err := eng.JS.PublishAsync("silent", []byte("x"))
	require.NoError(t, err)
	select {
	case <-fut.Ok():
		t.Fatal("a publish nobody answered was confirmed")
	case err := <-fut.Err():
		require.ErrorIs(t, err, jetstream.ErrAsyncPublishTimeout)
	}
}

// A write made while the connection to an external server is down fails at
// once, and is not sent after the reconnect, when its caller has given up
// on it (a lease written then would be held by nobody who knows it).
func TestWritesWhileDisconnectedAreNotSentLater(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := engine.Start(ctx, engine.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	url := srv.ClientURL()
	cli, err := engine.Start(ctx, engine.Config{URL: url})
	require.NoError(t, err)
	defer cli.Close()
	down, up := make(chan struct{}, 1), make(chan struct{}, 1)
	cli.Conn.SetDisconnectErrHandler(func(*nats.Conn, error) { down <- struct{}{} })
	cli.Conn.SetReconnectHandler(func(*nats.Conn) { up <- struct{}{} })
	kv, err := cli.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b"})
	require.NoError(t, err)

	require.NoError(t, srv.Close())
	<-down
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	_, err = kv.PutString(wctx, "k", "ghost")
	cancel()
	require.ErrorIs(t, err, nats.ErrReconnectBufExceeded)

	srv, err = engine.Start(ctx, engine.Config{DataDir: dir, Listen: strings.TrimPrefix(url, "nats://")})
	require.NoError(t, err)
	defer srv.Close()
	<-up
	require.NoError(t, cli.Conn.Flush())
	_, err = kv.Get(ctx, "k")
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound, "the write refused while disconnected stays unwritten")
}
