package sluice_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// TestJoiningInstanceNeedsTheSharedDocStore: an instance that joins another
// through its NATS server with an SQLite store of its own is refused when
// documents are in use, with a message naming --docstore; without
// documents it joins.
func TestJoiningInstanceNeedsTheSharedDocStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	first := sluice.New(sluice.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", Logger: quiet(), InstanceID: "first"})
	first.Container(sluice.ContainerConfig{Name: "devices", PartitionKeyPath: "/id"})
	require.NoError(t, first.Start(ctx))
	defer first.Stop(ctx)

	second := sluice.New(sluice.Config{DataDir: t.TempDir(), NATSURL: first.NATSURL(), Logger: quiet(), InstanceID: "second"})
	second.Container(sluice.ContainerConfig{Name: "devices", PartitionKeyPath: "/id"})
	err := second.Start(ctx)
	require.ErrorContains(t, err, "instance first shares this NATS server and keeps its documents in the SQLite file")
	require.ErrorContains(t, err, "--docstore")

	// Documents unused here, but the first instance uses them: refused too.
	third := sluice.New(sluice.Config{DataDir: t.TempDir(), NATSURL: first.NATSURL(), Logger: quiet(), InstanceID: "third"})
	require.ErrorContains(t, third.Start(ctx), "--docstore")

	// Neither uses documents: no conflict.
	hubOnly := sluice.New(sluice.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", Logger: quiet(), InstanceID: "hubs"})
	require.NoError(t, hubOnly.Start(ctx))
	defer hubOnly.Stop(ctx)
	joiner := sluice.New(sluice.Config{DataDir: t.TempDir(), NATSURL: hubOnly.NATSURL(), Logger: quiet(), InstanceID: "joiner"})
	require.NoError(t, joiner.Start(ctx))
	require.NoError(t, joiner.Stop(ctx))
}
