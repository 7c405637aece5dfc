package sluice_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func TestAppDocuments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	app := sluice.New(sluice.Config{DataDir: dir, Logger: quiet()})
	app.Container(sluice.ContainerConfig{Name: "devices", PartitionKeyPath: "/deviceId"})
	require.NoError(t, app.Start(ctx))
	docs := app.Docs()

	type device struct {
		ID       string `json:"id"`
		DeviceID string `json:"deviceId"`
		Battery  int    `json:"battery"`
	}
	d, err := docs.Upsert(ctx, "devices", device{ID: "dev-1", DeviceID: "dev-1", Battery: 80})
	require.NoError(t, err)
	_, err = docs.Create(ctx, "devices", device{ID: "dev-1", DeviceID: "dev-1"})
	require.ErrorIs(t, err, sluice.ErrDocumentExists)
	p, err := docs.Patch(ctx, "devices", "dev-1", "dev-1", map[string]any{"battery": 75, "mode": "flight"}, d.ETag)
	require.NoError(t, err)
	_, err = docs.Replace(ctx, "devices", device{ID: "dev-1", DeviceID: "dev-1", Battery: 1}, d.ETag)
	require.ErrorIs(t, err, sluice.ErrPreconditionFailed, "the patch changed the ETag")
	_, err = docs.BulkUpsert(ctx, "devices", device{ID: "dev-2", DeviceID: "dev-2", Battery: 10}, []byte(`{"id":"dev-3","deviceId":"dev-3","battery":5}`))
	require.NoError(t, err)

	page, err := docs.Query(ctx, "devices", sluice.QueryRequest{Text: "SELECT * FROM c WHERE c.battery < 20 ORDER BY c.battery"})
	require.NoError(t, err)
	require.Len(t, page.Documents, 2)
	require.Equal(t, "dev-3", page.Documents[0].ID)

	got, err := docs.Read(ctx, "devices", "dev-1", "dev-1")
	require.NoError(t, err)
	require.Equal(t, p.ETag, got.ETag)
	var m map[string]any
	require.NoError(t, json.Unmarshal(got.Body, &m))
	require.Equal(t, "flight", m["mode"])
	require.NoError(t, docs.Delete(ctx, "devices", "dev-2", "dev-2", ""))
	_, err = docs.Read(ctx, "devices", "dev-2", "dev-2")
	require.ErrorIs(t, err, sluice.ErrDocumentNotFound)
	require.NoError(t, app.Stop(ctx))

	// The data stays; declaring the container with another key is refused.
	again := sluice.New(sluice.Config{DataDir: dir, Logger: quiet()})
	again.Container(sluice.ContainerConfig{Name: "devices", PartitionKeyPath: "/other"})
	err = again.Start(ctx)
	require.ErrorContains(t, err, "exists with partition key path /deviceId")
	again = sluice.New(sluice.Config{DataDir: dir, Logger: quiet()})
	again.Container(sluice.ContainerConfig{Name: "devices", PartitionKeyPath: "/deviceId"})
	require.NoError(t, again.Start(ctx))
	defer again.Stop(ctx)
	_, err = again.Docs().Read(ctx, "devices", "dev-3", "dev-3")
	require.NoError(t, err)
}
