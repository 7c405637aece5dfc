package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A short run of the telemetry workload measures both phases of each case
// beside the engines baseline. It checks that the numbers exist, not speed.
func TestRunTelemetryShort(t *testing.T) {
	t.Parallel()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES")
	var got []Result
	err := RunTelemetry(context.Background(), TelemetryOptions{
		DataDir: t.TempDir(), PostgresDSN: dsn, Duration: 2 * time.Second, LatencyFor: time.Second,
		Devices: 50, Producers: 2, RequestEvents: 100, MaxBatchSize: 200,
	}, func(r Result) { got = append(got, r) })
	require.NoError(t, err)
	want := []string{"sqlite"}
	if dsn != "" {
		want = TelemetryCases
	}
	require.Len(t, got, len(want))
	for i, r := range got {
		require.Equal(t, want[i], r.Case)
		require.Equal(t, "telemetry", r.Workload)
		require.Positive(t, r.EventsPerSec)
		require.Equal(t, "engines", r.Baseline)
		require.Positive(t, r.BaselineEventsPerSec)
		require.Positive(t, r.P99ms, "latency was measured")
		require.GreaterOrEqual(t, r.P99ms, r.P50ms)
		require.Positive(t, r.PeakRSSMiB)
	}
}

func TestRunTelemetryRejectsBadOptions(t *testing.T) {
	for _, o := range []TelemetryOptions{
		{DataDir: t.TempDir(), Cases: []string{"nope"}},
		{DataDir: t.TempDir(), Cases: []string{"postgres"}},
		{DataDir: t.TempDir(), Corrupt: 1.5},
		{Duration: time.Second},
	} {
		require.Error(t, RunTelemetry(context.Background(), o, func(Result) {}))
	}
}

func TestSentAtReadsTheFramesTimestamp(t *testing.T) {
	require.Equal(t, int64(123), sentAt([]byte(`{"ts":123,"deviceId":"d"}`)))
	require.Equal(t, int64(7), sentAt([]byte(`{"ts":7}`)))
	require.Zero(t, sentAt([]byte(`{"deviceId":"d"}`)))
	require.Zero(t, sentAt([]byte(`garbage`)))
}

// A failing case is reported as a record with its error as soon as it
// fails, and the other cases still run and report.
func TestRunTelemetryReportsAFailedCaseAndGoesOn(t *testing.T) {
	t.Parallel()
	var got []Result
	err := RunTelemetry(context.Background(), TelemetryOptions{
		DataDir: t.TempDir(), PostgresDSN: "postgres://nobody@127.0.0.1:1/none?connect_timeout=5", Cases: []string{"postgres", "sqlite"},
		Duration: 2 * time.Second, LatencyFor: time.Second, Devices: 50, Producers: 2, RequestEvents: 100, MaxBatchSize: 200,
	}, func(r Result) { got = append(got, r) })
	require.ErrorContains(t, err, "case postgres")
	require.Len(t, got, 2)
	require.Equal(t, "postgres", got[0].Case)
	require.NotEmpty(t, got[0].Error)
	require.Zero(t, got[0].EventsPerSec)
	require.Equal(t, "sqlite", got[1].Case)
	require.Empty(t, got[1].Error)
	require.Positive(t, got[1].EventsPerSec)
	require.Equal(t, "engines", got[1].Baseline)
}
