package handler

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func TestBlobRequest(t *testing.T) {
	b := sluice.Blob{Info: sluice.BlobInfo{Container: "uploads", Name: "in/a.txt", Size: 5, ContentType: "text/plain", ETag: "e1",
		Modified: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}, Params: map[string]string{"name": "a"}, Data: []byte("hello")}
	inv := Invocation{Function: "f", Now: time.Now()}

	r := BlobRequest(inv, "blob", "", b)
	require.Equal(t, `"aGVsbG8="`, string(r.Data["blob"]), "bytes go as base64 by default, as Azure's byte[]")
	r = BlobRequest(inv, "blob", "string", b)
	require.Equal(t, `"\"hello\""`, string(r.Data["blob"]), "dataType string: a string value, encoded twice in compat mode")
	require.Equal(t, `"\"a\""`, string(r.Metadata["name"]))
	var props map[string]any
	require.NoError(t, json.Unmarshal(r.Metadata["Properties"], &props))
	require.Equal(t, "e1", props["ETag"])

	inv.Mode = Clean
	require.Equal(t, `"hello"`, string(BlobRequest(inv, "blob", "", b).Data["blob"]))
	b.Data = []byte(`{"x":1}`)
	require.Equal(t, `{"x":1}`, string(BlobRequest(inv, "blob", "", b).Data["blob"]))
	require.Equal(t, `"eyJ4IjoxfQ=="`, string(BlobRequest(inv, "blob", "binary", b).Data["blob"]))
}

func TestBlobPaths(t *testing.T) {
	require.NoError(t, checkPath("out/{name}-{rand-guid}-{DateTime}.txt", []string{"name"}))
	require.ErrorContains(t, checkPath("out/{id}", []string{"name"}), "{id}")
	got, err := bindingData{"name": "a/b"}.resolve("out/{Name}/{rand-guid}")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(got, "out/a/b/"), got)
	require.Len(t, strings.TrimPrefix(got, "out/a/b/"), 36)

	_, err = bindingData{}.resolve("out/{id}")
	require.ErrorContains(t, err, "the trigger's data has no {id}")

	data, ct, err := BlobContent(json.RawMessage(`{"a":1}`), false)
	require.NoError(t, err)
	require.Equal(t, `{"a":1}`, string(data))
	require.Equal(t, "application/json", ct)
	data, ct, err = BlobContent(json.RawMessage(`"text"`), false)
	require.NoError(t, err)
	require.Equal(t, "text", string(data))
	require.Equal(t, "text/plain; charset=utf-8", ct)
	data, _, err = BlobContent(json.RawMessage(`"aGk="`), true)
	require.NoError(t, err)
	require.Equal(t, "hi", string(data))
}
