package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHealth(t *testing.T) {
	srv := startInstance(t)
	code, out, errOut := sluiceCmd(t, "health", "--server", srv)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "ready\n", out)
	code, out, errOut = sluiceCmd(t, "health", "--live", "--server", srv)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "ok\n", out)

	stopping := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/readyz", r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"not ready: the instance is starting or stopping"}`))
	}))
	defer stopping.Close()
	code, _, errOut = sluiceCmd(t, "health", "--server", stopping.URL)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not ready")

	code, _, errOut = sluiceCmd(t, "health", "--server", "http://127.0.0.1:1")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "cannot reach sluice")
	code, _, _ = sluiceCmd(t, "health", "extra")
	require.Equal(t, 2, code)
}
