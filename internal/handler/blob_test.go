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
		Modified: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}, Params: map[string]string{"name": "a"}}
	data := []byte("hello")
	inv := Invocation{Function: "f", Now: time.Now()}

	r := BlobRequest(inv, "blob", "", "http://h/api/v1/blobs/uploads/in/a.txt", b, data)
	require.Equal(t, `"aGVsbG8="`, string(r.Data["blob"]), "bytes go as base64 by default, as Azure's byte[]")
	r = BlobRequest(inv, "blob", "string", "http://h/api/v1/blobs/uploads/in/a.txt", b, data)
	require.Equal(t, `"\"hello\""`, string(r.Data["blob"]), "dataType string: a string value, encoded twice in compat mode")
	require.Equal(t, `"\"a\""`, string(r.Metadata["name"]))
	require.Equal(t, `"\"http://h/api/v1/blobs/uploads/in/a.txt\""`, string(r.Metadata["Uri"]), "an absolute URL, as a string value")
	var props map[string]any
	require.NoError(t, json.Unmarshal(r.Metadata["Properties"], &props))
	require.Equal(t, map[string]any{}, props["ETag"], "as the host serializes Azure's ETag")
	require.Equal(t, float64(5), props["ContentLength"])
	require.Equal(t, "XUFAKrxLKna5cZ2REBfFkg==", props["ContentHash"])
	require.Equal(t, "2026-11-21T09:00:00+00:00", props["LastModified"])
	r = BlobRequest(inv, "blob", "stream", "u", b, data)
	require.Equal(t, `"aGVsbG8="`, string(r.Data["blob"]), "stream is bytes, as binary")

	inv.Mode = Clean
	require.Equal(t, `"hello"`, string(BlobRequest(inv, "blob", "", "http://h/api/v1/blobs/uploads/in/a.txt", b, data).Data["blob"]))
	data = []byte(`{"x":1}`)
	require.Equal(t, `{"x":1}`, string(BlobRequest(inv, "blob", "", "http://h/api/v1/blobs/uploads/in/a.txt", b, data).Data["blob"]))
	require.Equal(t, `"eyJ4IjoxfQ=="`, string(BlobRequest(inv, "blob", "binary", "u", b, data).Data["blob"]))
	require.Equal(t, `"eyJ4IjoxfQ=="`, string(BlobRequest(inv, "blob", "stream", "u", b, data).Data["blob"]))
	require.Equal(t, "http://127.0.0.1:7/api/v1/blobs/c/in/a%20b/%3F.txt", BlobURL("http://127.0.0.1:7", "c", "in/a b/?.txt"))
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
