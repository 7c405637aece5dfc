package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/tlstest"
)

func TestLeafSettingsAreChecked(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg  engine.Config
		want string
	}{
		{engine.Config{LeafListen: "127.0.0.1:0"}, "--nats-domain"},
		{engine.Config{LeafRemote: "nats-leaf://127.0.0.1:7422"}, "--nats-domain"},
		{engine.Config{Domain: "bad domain"}, "JetStream domain"},
		{engine.Config{Domain: "primary", LeafListen: "0.0.0.0:7422"}, "--nats-leaf-listen 0.0.0.0:7422 accepts leaf nodes from beyond this machine"},
		{engine.Config{Domain: "secondary", LeafRemote: "http://example.com"}, "nats-leaf://host:7422"},
		{engine.Config{URL: "nats://127.0.0.1:4222", Domain: "primary"}, "external server"},
	} {
		if c.cfg.URL == "" {
			c.cfg.DataDir = t.TempDir()
		}
		_, err := engine.Start(context.Background(), c.cfg)
		require.ErrorContains(t, err, c.want, "%+v", c.cfg)
	}
}

// TestPairSharesNoDataSubjects: the two engines of a DR pair each have their
// own JetStream domain, the secondary reaches the primary's JetStream
// through it, and a message published on either side to one of Sluice's
// data subjects is not stored by the other side's stream of that subject.
func TestPairSharesNoDataSubjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary, secondary := enginetest.Pair(t)
	require.Equal(t, enginetest.PrimaryDomain, primary.Domain())
	require.Equal(t, enginetest.SecondaryDomain, secondary.Domain())
	for _, eng := range []*engine.Engine{primary, secondary} {
		_, err := eng.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "hub-x-0", Subjects: []string{"hub.x.0"}})
		require.NoError(t, err)
		_, err = eng.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "sluice-x"})
		require.NoError(t, err)
	}
	remote, err := jetstream.NewWithDomain(secondary.Conn, enginetest.PrimaryDomain)
	require.NoError(t, err)
	_, err = remote.Stream(ctx, "hub-x-0")
	require.NoError(t, err, "the primary's JetStream through its domain")

	for i, eng := range []*engine.Engine{primary, secondary} {
		ack, err := eng.JS.Publish(ctx, "hub.x.0", []byte("m"))
		require.NoError(t, err)
		require.Equal(t, eng.Domain(), ack.Domain)
		kv, err := eng.JS.KeyValue(ctx, "sluice-x")
		require.NoError(t, err)
		_, err = kv.Put(ctx, "k", []byte{byte(i)})
		require.NoError(t, err)
	}
	// Each side's own message is stored once, by its own stream; a
	// message that crossed would be a second one on the other side.
	for _, eng := range []*engine.Engine{primary, secondary} {
		st, err := eng.JS.Stream(ctx, "hub-x-0")
		require.NoError(t, err)
		info, err := st.Info(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, info.State.Msgs, "domain %s", eng.Domain())
		kst, err := eng.JS.Stream(ctx, "KV_sluice-x")
		require.NoError(t, err)
		kinfo, err := kst.Info(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, kinfo.State.LastSeq, "domain %s", eng.Domain())
	}
}

// TestLeafWithCredentialsAndTLS: a primary's leaf-node listener beyond what
// loopback allows without them takes a user, a password and TLS, and a
// secondary connects with them and the CA.
func TestLeafWithCredentialsAndTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pki := tlstest.New(t)
	primary, err := engine.Start(ctx, engine.Config{DataDir: t.TempDir(), Domain: "primary", LeafListen: "127.0.0.1:0",
		User: "leaf", Password: "leaf-secret", TLSCert: pki.ServerCert, TLSKey: pki.ServerKey})
	require.NoError(t, err)
	t.Cleanup(func() { _ = primary.Close() })
	remote := strings.Replace(primary.LeafURL(), "nats-leaf://", "tls://leaf:leaf-secret@", 1)
	secondary, err := engine.Start(ctx, engine.Config{DataDir: t.TempDir(), Domain: "secondary", LeafRemote: remote, TLSCA: pki.CA})
	require.NoError(t, err)
	t.Cleanup(func() { _ = secondary.Close() })
	enginetest.WaitLeaf(t, secondary)
	_, err = primary.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "hub-y-0", Subjects: []string{"hub.y.0"}})
	require.NoError(t, err)
	js, err := jetstream.NewWithDomain(secondary.Conn, "primary")
	require.NoError(t, err)
	_, err = js.Stream(ctx, "hub-y-0")
	require.NoError(t, err)
}
