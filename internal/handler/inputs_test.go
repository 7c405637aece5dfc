package handler

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func TestBindingData(t *testing.T) {
	q := queueData("orders", &sluice.Message{ID: 9, DequeueCount: 2, Body: []byte(`{"deviceId":"d1","n":3,"nested":{"x":1},"none":null}`)})
	for expr, want := range map[string]string{
		"{deviceId}/{n}":        "d1/3",
		"{queueTrigger}":        `{"deviceId":"d1","n":3,"nested":{"x":1},"none":null}`,
		"m-{Id}-{DEQUEUECOUNT}": "m-" + MessageGUID("orders", 9) + "-2",
	} {
		got, err := q.resolve(expr)
		require.NoError(t, err, expr)
		require.Equal(t, want, got, expr)
	}
	for _, expr := range []string{"{nested}", "{none}", "{missing}"} {
		_, err := q.resolve(expr)
		require.ErrorContains(t, err, "the trigger's data has no "+expr)
	}

	h := httpData(HTTPRequest{Params: map[string]string{"id": "7"}, Query: map[string][]string{"v": {"w", "x"}},
		Headers: map[string][]string{"X-Tenant": {"acme"}}, Body: []byte(`{"id":"body-id","kind":"k"}`)})
	got, err := h.resolve("{id}/{Query.v}/{headers.x-tenant}/{kind}")
	require.NoError(t, err)
	require.Equal(t, "7/x/acme/k", got, "route parameters win over body properties")

	b := blobData(sluice.Blob{Info: sluice.BlobInfo{Container: "c", Name: "in/a.txt"}, Params: map[string]string{"name": "a"}})
	got, err = b.resolve("{BlobTrigger}:{name}")
	require.NoError(t, err)
	require.Equal(t, "c/in/a.txt:a", got)
}
