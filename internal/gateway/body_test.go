package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/hub"
)

// TestOversizedBodyRefusedBeforeItIsSent: a client that announces a body
// over the limit and waits for "100 Continue" gets its 413 at once and
// never sends the body; nothing is stored.
func TestOversizedBodyRefusedBeforeItIsSent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := f.svc.Create(context.Background(), hub.Config{Name: "h", Partitions: 1})
	require.NoError(t, err)
	for _, path := range []string{"/api/v1/hubs/h/events", "/api/v1/hubs"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
		require.NoError(t, err)
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
			path, maxRequestBytes+(2<<20))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		conn.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "%s: %s", path, body)
		require.Contains(t, string(body), "over the limit of", path)
	}
	info, parts, err := f.svc.Describe(context.Background(), "h")
	require.NoError(t, err)
	require.Equal(t, 1, info.Partitions)
	require.Equal(t, int64(-1), parts[0].LastSequence, "nothing stored")
}

// TestSlowBodyIs408: a body that stops arriving before the server's read
// deadline gets 408, not a 400 carrying network details.
func TestSlowBodyIs408(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := f.svc.Create(context.Background(), hub.Config{Name: "h", Partitions: 1})
	require.NoError(t, err)
	// A server of its own, with a read deadline that has passed by the
	// time the body is read: the handler's read fails with a timeout.
	gw := gateway.NewServer(gateway.Config{Hubs: f.svc, Logger: slog.New(slog.DiscardHandler), MaxRequestBytes: maxRequestBytes})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		gw.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprint(conn, "POST /api/v1/hubs/h/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[1,")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusRequestTimeout, resp.StatusCode, string(body))
	require.Contains(t, string(body), "read timeout")
	require.NotContains(t, string(body), "127.0.0.1")
}
