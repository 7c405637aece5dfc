package bench

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// A small run of the docs workload upserts and reads back every document,
// on SQLite and, when SLUICE_TEST_POSTGRES is set, on PostgreSQL. It checks
// counts, not speed.
func TestRunDocsCounts(t *testing.T) {
	t.Parallel()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES")
	var got []Result
	err := RunDocs(context.Background(), DocsOptions{
		DataDir: t.TempDir(), PostgresDSN: dsn, Docs: 2500, Batch: 100, DocSize: 200, FeedBatch: 300,
	}, func(r Result) { got = append(got, r) })
	require.NoError(t, err)

	want := []string{"sqlite-upsert", "sqlite-feed"}
	if dsn != "" {
		want = DocsCases
	}
	require.Len(t, got, len(want))
	// The first half batch is written untimed; every timed batch has 50
	// new ids.
	const distinct = 100/2 + 2500/2
	for _, r := range got {
		require.Contains(t, want, r.Case)
		require.Equal(t, "docs", r.Workload)
		require.Positive(t, r.EventsPerSec, r.Case)
		require.Positive(t, r.BaselineEventsPerSec, r.Case)
		if r.Case == "sqlite-upsert" || r.Case == "postgres-upsert" {
			require.EqualValues(t, 2500, r.Events, r.Case)
			require.EqualValues(t, 2500, r.BaselineEvents, r.Case)
		} else {
			require.EqualValues(t, distinct, r.Events, r.Case)
			require.EqualValues(t, distinct, r.BaselineEvents, r.Case)
		}
	}
}

// A feed case without its upsert case fills the feed first.
func TestRunDocsFeedAlone(t *testing.T) {
	t.Parallel()
	var got []Result
	err := RunDocs(context.Background(), DocsOptions{
		DataDir: t.TempDir(), Docs: 1000, Batch: 100, FeedBatch: 100, Cases: []string{"sqlite-feed"},
	}, func(r Result) { got = append(got, r) })
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.EqualValues(t, 100/2+1000/2, got[0].Events)
}

func TestRunDocsRejectsUnknownCase(t *testing.T) {
	t.Parallel()
	err := RunDocs(context.Background(), DocsOptions{DataDir: t.TempDir(), Cases: []string{"mongo-upsert"}}, func(Result) {})
	require.ErrorContains(t, err, `unknown case "mongo-upsert"`)
}
