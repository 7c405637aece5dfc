package sluice_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/hub"
)

// A running instance notices what happens to its hub underneath it: a
// partition whose stream the engine lost is recreated (numbered after the
// checkpoints) and its function processes what is published next; a hub
// deleted through the API leaves its function waiting, and once a hub of
// the name is created again the function processes its events.
func TestHubLostOrDeletedUnderARunningInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng, err := engine.Start(ctx, engine.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })

	app := sluice.New(sluice.Config{DataDir: t.TempDir(), NATSURL: eng.ClientURL(), HTTPAddr: "127.0.0.1:0", Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "in", Partitions: 2})
	processed := make(chan string, 64)
	app.Function("f", sluice.HubTrigger{Hub: "in"}, func(_ context.Context, events []sluice.Event) error {
		for _, e := range events {
			processed <- string(e.Body)
		}
		return nil
	})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })

	// publish retries while the engine says to (the partition being
	// recreated), as a client following Retry-After would.
	publish := func(p int, body string) {
		t.Helper()
		for {
			_, err := app.PublishToPartition(ctx, "in", p, sluice.Event{Body: []byte(body)})
			if err == nil {
				return
			}
			require.True(t, errors.Is(err, sluice.ErrUnavailable), "publish %s: %v", body, err)
		}
	}
	expect := func(want ...string) {
		t.Helper()
		got := map[string]bool{}
		timeout := time.After(time.Minute)
		for len(got) < len(want) {
			select {
			case b := <-processed:
				got[b] = true
			case <-timeout:
				t.Fatalf("processed %v, want %v", got, want)
			}
		}
		for _, w := range want {
			require.True(t, got[w], "processed %v, want %v", got, want)
		}
	}
	publish(0, "a0")
	publish(1, "a1")
	expect("a0", "a1")

	// Partition 1's storage is lost.
	require.NoError(t, eng.JS.DeleteStream(ctx, hub.StreamName("in", 1)))
	publish(1, "b1")
	publish(0, "b0")
	expect("b0", "b1")

	// The hub is deleted: its function waits; created again, it goes on.
	api := func(method, path, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, app.URL()+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusNoContent, api("DELETE", "/api/v1/hubs/in", ""))
	_, err = app.Publish(ctx, "in", sluice.Event{Body: []byte("nowhere")})
	require.ErrorIs(t, err, sluice.ErrHubNotFound)
	require.Equal(t, http.StatusCreated, api("POST", "/api/v1/hubs", `{"name":"in","partitions":2}`))
	publish(0, "c0")
	publish(1, "c1")
	expect("c0", "c1")
	select {
	case b := <-processed:
		t.Fatalf("%s processed again", b)
	default:
	}
}
