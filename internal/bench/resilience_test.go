package bench

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// A small run of the resilience workload processes every event of each
// case once, with no dead letter. It checks counts, not speed.
func TestRunResilienceCounts(t *testing.T) {
	t.Parallel()
	var got []Result
	err := RunResilience(context.Background(), ResilienceOptions{
		DataDir: t.TempDir(), Events: 3000, OnceEvents: 500, Partitions: 2, Rounds: 1,
	}, func(r Result) { got = append(got, r) })
	require.NoError(t, err)
	require.Len(t, got, len(ResilienceCases))
	for i, r := range got {
		require.Equal(t, ResilienceCases[i], r.Case)
		require.Equal(t, "resilience", r.Workload)
		require.Positive(t, r.EventsPerSec)
		require.LessOrEqual(t, r.Events, int64(3000))
		if r.Case != "hub" {
			require.Equal(t, "hub", r.Baseline)
			require.Positive(t, r.Ratio)
		}
	}
	require.Contains(t, got[2].Note, "µs more per event")
}

func TestRunResilienceRejectsUnknownCase(t *testing.T) {
	err := RunResilience(context.Background(), ResilienceOptions{DataDir: t.TempDir(), Cases: []string{"nope"}}, func(Result) {})
	require.ErrorContains(t, err, `unknown case "nope"`)
}
