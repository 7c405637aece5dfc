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

func TestDocsReadMany(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Container(sluice.ContainerConfig{Name: "devices", PartitionKeyPath: "/deviceId"})
	_, err := app.Docs().ReadMany(ctx, "devices", sluice.DocumentKey{PartitionKey: "dev-1", ID: "dev-1"})
	require.ErrorIs(t, err, sluice.ErrNotStarted)
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	docs := app.Docs()
	_, err = docs.BulkUpsert(ctx, "devices", `{"id":"dev-1","deviceId":"dev-1"}`, `{"id":"dev-2","deviceId":"dev-2"}`, `{"id":"dev-3","deviceId":"dev-3"}`)
	require.NoError(t, err)
	require.NoError(t, docs.Delete(ctx, "devices", "dev-3", "dev-3", ""))

	key := func(id string) sluice.DocumentKey { return sluice.DocumentKey{PartitionKey: id, ID: id} }
	got, err := docs.ReadMany(ctx, "devices", key("dev-2"), key("dev-9"), key("dev-3"), key("dev-1"), key("dev-2"))
	require.NoError(t, err)
	require.Len(t, got, 2, "missing, deleted and repeated keys add nothing")
	require.Equal(t, "dev-2", got[0].ID, "in the order of the keys")
	require.Equal(t, "dev-1", got[1].ID)
	one, err := docs.Read(ctx, "devices", "dev-1", "dev-1")
	require.NoError(t, err)
	require.Equal(t, one, got[1])

	_, err = docs.ReadMany(ctx, "nope", key("dev-1"))
	require.ErrorIs(t, err, sluice.ErrDocumentNotFound)
	_, err = docs.ReadMany(ctx, "devices", make([]sluice.DocumentKey, sluice.MaxReadManyKeys+1)...)
	require.ErrorContains(t, err, "split the keys into several reads")
}

// A Docs taken before Start works once the app runs, and says so when it
// does not.
func TestDocsTakenBeforeStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Container(sluice.ContainerConfig{Name: "devices", PartitionKeyPath: "/deviceId"})
	docs := app.Docs()
	_, err := docs.Upsert(ctx, "devices", map[string]any{"id": "d1", "deviceId": "d1"})
	require.ErrorIs(t, err, sluice.ErrNotStarted)
	require.NoError(t, app.Start(ctx))
	_, err = docs.Upsert(ctx, "devices", map[string]any{"id": "d1", "deviceId": "d1"})
	require.NoError(t, err)
	doc, err := docs.Read(ctx, "devices", "d1", "d1")
	require.NoError(t, err)
	require.Equal(t, "d1", doc.ID)
	require.NoError(t, app.Stop(ctx))
	_, err = docs.Read(ctx, "devices", "d1", "d1")
	require.ErrorIs(t, err, sluice.ErrNotStarted)
}
