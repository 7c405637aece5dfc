package bench

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// A small run of the CDC workload carries every change through the Sluice
// pipeline and through the baseline (RunCDC checks each destination equal
// to its source) and reports positive figures. It checks the plumbing,
// not speed.
func TestRunCDC(t *testing.T) {
	dsn := os.Getenv("SLUICE_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("SLUICE_TEST_POSTGRES is not set: set it to a PostgreSQL URL (postgres://postgres@127.0.0.1:5432/test?sslmode=disable) with wal_level = logical to run the CDC workload")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	var level string
	require.NoError(t, conn.QueryRow(ctx, "SHOW wal_level").Scan(&level))
	require.NoError(t, conn.Close(ctx))
	if level != "logical" {
		t.Skipf("the test database has wal_level = %s: set it to logical (ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL)", level)
	}

	var got []Result
	err = RunCDC(ctx, CDCOptions{URL: dsn, Changes: 5000, Writers: 2, DataDir: t.TempDir()}, func(r Result) { got = append(got, r) })
	require.NoError(t, err)
	require.Len(t, got, 1)
	r := got[0]
	t.Logf("%+v", r)
	require.Empty(t, r.Error)
	require.Equal(t, "cdc", r.Workload)
	require.Equal(t, "postgres", r.Case)
	require.EqualValues(t, 5000, r.Events)
	require.EqualValues(t, 5000, r.BaselineEvents)
	require.Positive(t, r.EventsPerSec)
	require.Positive(t, r.BaselineEventsPerSec)
	require.Positive(t, r.Ratio)
	require.Positive(t, r.LatencyAtRate)
	require.Positive(t, r.P99ms)
	require.GreaterOrEqual(t, r.P99ms, r.P50ms)

	// Nothing is left behind: no databases, no slots.
	conn, err = pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var left int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname IN ($1, $2)", cdcSourceDB, cdcDestDB).Scan(&left))
	require.Zero(t, left)
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ($1, $2)", "sluice_"+cdcPipeline, cdcBaselineSlot).Scan(&left))
	require.Zero(t, left)
}

func TestRunCDCRejectsBadOptions(t *testing.T) {
	t.Parallel()
	err := RunCDC(context.Background(), CDCOptions{DataDir: t.TempDir()}, func(Result) {})
	require.ErrorContains(t, err, "PostgreSQL URL")
	err = RunCDC(context.Background(), CDCOptions{URL: "postgres://x@127.0.0.1:1/sluice_bench_cdc_src", DataDir: t.TempDir()}, func(Result) {})
	require.ErrorContains(t, err, "a database the benchmark drops")
}

// A server that cannot be reached fails the case with a clear error,
// reported as the case's record.
func TestRunCDCReportsFailure(t *testing.T) {
	t.Parallel()
	var got []Result
	err := RunCDC(context.Background(), CDCOptions{URL: "postgres://x@127.0.0.1:1/db?connect_timeout=5", DataDir: t.TempDir()}, func(r Result) { got = append(got, r) })
	require.ErrorContains(t, err, "case postgres: cdc: connect to PostgreSQL")
	require.Len(t, got, 1)
	require.Equal(t, "postgres", got[0].Case)
	require.Contains(t, got[0].Error, "connect to PostgreSQL")
}
