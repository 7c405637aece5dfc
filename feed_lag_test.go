package sluice_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// A change-feed function's lag, the changes after its checkpoints, is on
// /metrics per range and in the overview per function.
func TestFeedLagIsOnMetricsAndInTheOverview(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet()})
	app.Container(sluice.ContainerConfig{Name: "readings", PartitionKeyPath: "/device"})
	release := make(chan struct{})
	app.FeedFunction("follow", sluice.FeedTrigger{Container: "readings", StartFrom: sluice.FeedFromBeginning, Ranges: 2},
		func(ctx context.Context, _ []sluice.Document) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(ctx) })
	t.Cleanup(func() { close(release) }) // first: the function finishes, then the app stops
	for i := range 7 {
		_, err := app.Docs().Upsert(ctx, "readings", map[string]any{"id": "r" + string(rune('a'+i)), "device": "d" + string(rune('a'+i))})
		require.NoError(t, err)
	}

	get := func(path string) string {
		resp, err := http.Get(app.URL() + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	feedLag := func() int64 {
		var ov struct {
			Functions []struct {
				Name    string `json:"name"`
				FeedLag *int64 `json:"feed_lag"`
			} `json:"functions"`
		}
		require.NoError(t, json.Unmarshal([]byte(get("/api/v1/overview")), &ov))
		for _, f := range ov.Functions {
			if f.Name == "follow" && f.FeedLag != nil {
				return *f.FeedLag
			}
		}
		return -1
	}
	// The lag is measured every few seconds.
	require.Eventually(t, func() bool { return feedLag() == 7 }, 30*time.Second, 100*time.Millisecond)
	metrics := get("/metrics")
	for _, r := range []string{"0", "1"} {
		require.Contains(t, metrics, `sluice_feed_lag_changes{container="readings",function="follow",range="`+r+`"}`)
	}
	require.True(t, strings.Contains(metrics, "# TYPE sluice_feed_lag_changes gauge"))
}
