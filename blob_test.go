package sluice_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func TestAppBlobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	app := sluice.New(sluice.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Logger: quiet()})
	app.BlobContainer("staging")
	blobs := app.Blobs()
	_, err := blobs.Put(ctx, "staging", "early", []byte("x"), "")
	require.ErrorIs(t, err, sluice.ErrNotStarted)
	require.NoError(t, app.Start(ctx))

	info, err := blobs.Put(ctx, "staging", "incoming/2026/11/changes.json", []byte(`[{"op":"u"}]`), "application/json")
	require.NoError(t, err)
	require.Equal(t, "application/json", info.ContentType)
	require.Equal(t, int64(12), info.Size)
	data, got, err := blobs.Get(ctx, "staging", "incoming/2026/11/changes.json")
	require.NoError(t, err)
	require.Equal(t, `[{"op":"u"}]`, string(data))
	require.Equal(t, info, got)

	// Streamed, several chunks, with metadata.
	big := make([]byte, 3<<20)
	_, _ = rand.Read(big)
	bigInfo, err := blobs.PutReader(ctx, "staging", "incoming/big.bin", bytes.NewReader(big), sluice.BlobMeta{Metadata: map[string]string{"Rows": "1000"}})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"rows": "1000"}, bigInfo.Metadata)
	rc, _, err := blobs.Open(ctx, "staging", "incoming/big.bin")
	require.NoError(t, err)
	read, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.True(t, bytes.Equal(big, read))
	stat, err := blobs.Stat(ctx, "staging", "incoming/big.bin")
	require.NoError(t, err)
	require.Equal(t, bigInfo, stat)

	list, err := blobs.List(ctx, "staging", "incoming/")
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "incoming/2026/11/changes.json", list[0].Name)

	// The HTTP API serves the same store.
	resp, err := http.Get("http://" + app.Addr() + "/api/v1/blobs/staging/incoming/2026/11/changes.json")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, `[{"op":"u"}]`, string(body))
	require.Equal(t, `"`+info.ETag+`"`, resp.Header.Get("ETag"))

	require.NoError(t, blobs.Delete(ctx, "staging", "incoming/big.bin"))
	_, _, err = blobs.Get(ctx, "staging", "incoming/big.bin")
	require.ErrorIs(t, err, sluice.ErrBlobNotFound)
	require.ErrorIs(t, blobs.Delete(ctx, "staging", "incoming/big.bin"), sluice.ErrBlobNotFound)
	_, err = blobs.Put(ctx, "nope", "x", nil, "")
	require.ErrorIs(t, err, sluice.ErrBlobContainerNotFound)
	_, err = blobs.Put(ctx, "staging", "../x", nil, "")
	require.ErrorContains(t, err, `blob name "../x"`)
	require.NoError(t, app.Stop(ctx))
	_, err = blobs.List(ctx, "staging", "")
	require.ErrorIs(t, err, sluice.ErrNotStarted)

	// The blobs stay; the container is declared again without harm.
	again := sluice.New(sluice.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Logger: quiet()})
	again.BlobContainer("staging")
	again.BlobContainer("second")
	require.NoError(t, again.Start(ctx))
	defer again.Stop(ctx)
	data, _, err = again.Blobs().Get(ctx, "staging", "incoming/2026/11/changes.json")
	require.NoError(t, err)
	require.Equal(t, `[{"op":"u"}]`, string(data))
	resp, err = http.Get("http://" + again.Addr() + "/api/v1/blobs")
	require.NoError(t, err)
	var containers struct{ Containers []struct{ Name string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&containers))
	resp.Body.Close()
	require.Len(t, containers.Containers, 2)
	require.Equal(t, "second", containers.Containers[0].Name)
}

func TestAppBlobContainerName(t *testing.T) {
	t.Parallel()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.BlobContainer("Staging_Area")
	err := app.Start(context.Background())
	require.ErrorContains(t, err, `blob container: invalid container name "Staging_Area"`)
	require.True(t, strings.Contains(err.Error(), "lowercase"))
}
