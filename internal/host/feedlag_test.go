package host_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// newMeteredHost starts a host with its own metrics.
func (e *fenv) newMeteredHost(t *testing.T, fns ...host.FeedFunction) (*host.Host, *telemetry.Metrics) {
	t.Helper()
	lm := newLeases(t, e.kv, "lag")
	m := telemetry.NewMetrics()
	h, err := host.New(host.Config{InstanceID: "lag", Leases: lm, Docs: e.docs, FeedState: e.feeds, DeadLetters: e.sink,
		Metrics: m, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	for _, f := range fns {
		require.NoError(t, h.RegisterFeed(f))
	}
	require.NoError(t, h.Start(bg))
	t.Cleanup(func() { h.Stop(bg) })
	return h, m
}

// inRange counts the container's changes (each document's last) in range
// r of n.
func (e *fenv) inRange(t *testing.T, r, n int) int64 {
	t.Helper()
	all, err := e.docs.Feed(bg, "c", docstore.FeedStart{Range: docstore.FeedRange{Count: n, Index: r}}, 10000)
	require.NoError(t, err)
	return int64(len(all))
}

func TestFeedLagCountsTheChangesAfterEachRangesCheckpoint(t *testing.T) {
	t.Parallel()
	e := setupFeed(t)
	for i := range 12 {
		e.write(t, devDoc(i, 0))
	}
	e.write(t, devDoc(3, 0), devDoc(3, 0)) // written again: one change
	release := make(chan struct{})
	done := make(chan struct{})
	var once sync.Once
	seen := &changes{}
	h, m := e.newMeteredHost(t, host.FeedFunction{Name: "f",
		Trigger: host.FeedTrigger{Container: "c", From: host.FeedFromBeginning, Ranges: 2},
		Handler: func(ctx context.Context, ch []docstore.Document) error {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			_ = seen.handle(ctx, ch)
			if seen.count() >= 12 {
				once.Do(func() { close(done) })
			}
			return nil
		}})

	// Nothing processed yet: each range is behind by all of its changes,
	// whether it has started (checkpoint at the beginning) or not.
	lags, err := h.FeedLag(bg, "f")
	require.NoError(t, err)
	require.Len(t, lags, 2)
	var total int64
	for r, l := range lags {
		require.Equal(t, r, l.Range)
		require.Equal(t, e.inRange(t, r, 2), l.Changes, "range %d", r)
		require.False(t, l.Estimated)
		require.Equal(t, float64(l.Changes), gaugeValue(t, m.FeedLag.WithLabelValues("f", "c", fmt.Sprint(r))), "the gauge of range %d", r)
		total += l.Changes
	}
	require.Equal(t, int64(12), total)
	require.Contains(t, gatherNames(t, m), "sluice_feed_lag_changes")

	// Processed and checkpointed (a graceful stop writes the checkpoints):
	// no lag.
	close(release)
	<-done
	h.Stop(bg)
	lags, err = h.FeedLag(bg, "f")
	require.NoError(t, err)
	for r, l := range lags {
		require.Zero(t, l.Changes, "range %d", r)
		require.Zero(t, gaugeValue(t, m.FeedLag.WithLabelValues("f", "c", fmt.Sprint(r))))
		require.Equal(t, "lag", l.Owner)
	}
	_, err = h.FeedLag(bg, "nope")
	require.ErrorContains(t, err, "no change-feed function")
}

// Past the scan bound, the count is estimated from the LSNs.
func TestFeedLagIsEstimatedPastTheScanBound(t *testing.T) {
	t.Parallel()
	e := setupFeed(t)
	docs := make([]string, 2500)
	for i := range docs {
		docs[i] = devDoc(i%7, i)
	}
	e.write(t, docs...)
	release := make(chan struct{})
	h, _ := e.newMeteredHost(t, host.FeedFunction{Name: "f",
		Trigger: host.FeedTrigger{Container: "c", From: host.FeedFromBeginning, Ranges: 1},
		Handler: func(context.Context, []docstore.Document) error { <-release; return nil }})
	t.Cleanup(func() { close(release) }) // before the host stops
	lags, err := h.FeedLag(bg, "f")
	require.NoError(t, err)
	require.True(t, lags[0].Estimated)
	require.Equal(t, int64(2500), lags[0].Changes, "one range holds every change, at consecutive LSNs")
}

func gatherNames(t *testing.T, m *telemetry.Metrics) []string {
	t.Helper()
	fams, err := m.Registry.Gather()
	require.NoError(t, err)
	var out []string
	for _, f := range fams {
		out = append(out, f.GetName())
	}
	return out
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, g.Write(&m))
	return m.GetGauge().GetValue()
}
