package telemetry

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// TestDeadLetterGauge: sluice_dead_letters{queue} is counted when the
// metrics are gathered, at most every deadLetterFresh; a failed count
// leaves the gauge out without failing the other metrics.
func TestDeadLetterGauge(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	now := time.Unix(1_700_000_000, 0)
	m.deadLetters.now = func() time.Time { return now }
	gather := func() (float64, float64, bool) {
		t.Helper()
		fams, err := m.Registry.Gather()
		require.NoError(t, err)
		got := map[string]float64{}
		found := false
		for _, f := range fams {
			if f.GetName() != "sluice_dead_letters" {
				continue
			}
			found = true
			require.Equal(t, "GAUGE", f.GetType().String())
			for _, mt := range f.GetMetric() {
				got[mt.GetLabel()[0].GetValue()] = mt.GetGauge().GetValue()
			}
		}
		return got["sluice-deadletters"], got["orders-poison"], found
	}
	_, _, found := gather()
	require.False(t, found, "no gauge until there is a way to count")

	counts, calls := map[string]uint64{"sluice-deadletters": 3, "orders-poison": 1}, 0
	var fail error
	m.CountDeadLetters(func(ctx context.Context) (map[string]uint64, error) {
		_, ok := ctx.Deadline()
		require.True(t, ok, "a count is bounded")
		calls++
		return counts, fail
	})
	dl, poison, found := gather()
	require.True(t, found)
	require.Equal(t, []float64{3, 1}, []float64{dl, poison})

	// Counted again only once the count is old.
	counts = map[string]uint64{"sluice-deadletters": 5}
	now = now.Add(deadLetterFresh - time.Millisecond)
	dl, _, _ = gather()
	require.Equal(t, 3.0, dl)
	require.Equal(t, 1, calls)
	now = now.Add(time.Millisecond)
	dl, poison, _ = gather()
	require.Equal(t, []float64{5, 0}, []float64{dl, poison})
	require.Equal(t, 2, calls)

	// A failing count: no gauge, other metrics still there, no retry
	// before the next period.
	fail = errors.New("engine down")
	now = now.Add(deadLetterFresh)
	m.EventsIn.WithLabelValues("h").Inc()
	_, _, found = gather()
	require.False(t, found)
	fams, err := m.Registry.Gather()
	require.NoError(t, err, "a failing count fails nothing else")
	require.True(t, slices.ContainsFunc(fams, func(f *dto.MetricFamily) bool { return f.GetName() == "sluice_hub_events_in_total" }))
	gather()
	require.Equal(t, 3, calls)
	fail = nil
	now = now.Add(deadLetterFresh)
	dl, _, found = gather()
	require.True(t, found)
	require.Equal(t, 5.0, dl)
}
