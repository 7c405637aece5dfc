package bench

import (
	"bytes"
	"context"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// needGo skips tests that build a handler when the Go toolchain is not on
// the PATH.
func needGo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the handler workload builds its handler with go, which is not on the PATH")
	}
}

// A small run of every case processes every message and event (RunHandler
// fails otherwise) and reports results of the documented shape. It checks
// counts and fields, not speed.
func TestRunHandlerCases(t *testing.T) {
	t.Parallel()
	needGo(t)
	var got []Result
	err := RunHandler(context.Background(), HandlerOptions{DataDir: t.TempDir(), Messages: 200, Events: 2000, EventSize: 100},
		func(r Result) { got = append(got, r) })
	require.NoError(t, err)

	require.Len(t, got, len(HandlerCases))
	byCase := map[string]Result{}
	for _, r := range got {
		byCase[r.Case] = r
	}
	for i, r := range got {
		require.Equal(t, HandlerCases[i], r.Case, "cases are reported in the order they run")
		require.Equal(t, "handler", r.Workload)
		total := int64(200)
		if isHubCase(r.Case) {
			total = 2000
		}
		// Events processed while the app started are not timed.
		require.Positive(t, r.Events, r.Case)
		require.LessOrEqual(t, r.Events, total, r.Case)
		require.Positive(t, r.Seconds, r.Case)
		require.InDelta(t, float64(r.Events)/r.Seconds, r.EventsPerSec, 1e-6*r.EventsPerSec, r.Case)
		require.Positive(t, r.PeakRSSMiB, r.Case)
		require.NotEmpty(t, r.Note, r.Case)
		if isSDKCase(r.Case) {
			require.Empty(t, r.Baseline, r.Case)
			continue
		}
		require.Equal(t, "sdk-"+r.Case, r.Baseline, r.Case)
		base := byCase[r.Baseline]
		require.EqualValues(t, base.Events, r.BaselineEvents, r.Case)
		require.InDelta(t, base.EventsPerSec, r.BaselineEventsPerSec, 1e-9*r.BaselineEventsPerSec, r.Case)
		require.InDelta(t, r.EventsPerSec/r.BaselineEventsPerSec, r.Ratio, 1e-9, r.Case)
		require.Contains(t, r.Note, "custom-handler protocol", r.Case)
	}
}

// A handler given as an executable is measured as it is; a handler case
// alone still measures its baseline, without reporting it.
func TestRunHandlerGivenHandler(t *testing.T) {
	t.Parallel()
	needGo(t)
	exe, cleanup, err := buildHandler(context.Background(), handlerSource)
	require.NoError(t, err)
	t.Cleanup(cleanup)

	var got []Result
	err = RunHandler(context.Background(), HandlerOptions{DataDir: t.TempDir(), Handler: exe, Events: 1000, Cases: []string{"batch-100"}},
		func(r Result) { got = append(got, r) })
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "batch-100", got[0].Case)
	require.Equal(t, "sdk-batch-100", got[0].Baseline)
	require.Positive(t, got[0].BaselineEventsPerSec)
	require.Contains(t, got[0].Note, "handler "+exe)
}

// A handler that fails its invocations fails the run, naming why.
func TestRunHandlerFailingHandler(t *testing.T) {
	t.Parallel()
	needGo(t)
	src := bytes.Replace(handlerSource, []byte(`w.Header().Set("Content-Type", "application/json")`),
		[]byte(`http.Error(w, "no thanks", http.StatusInternalServerError); return`), 1)
	require.NotEqual(t, handlerSource, src, "the handler's source changed; update this test")
	exe, cleanup, err := buildHandler(context.Background(), src)
	require.NoError(t, err)
	t.Cleanup(cleanup)

	err = RunHandler(context.Background(), HandlerOptions{DataDir: t.TempDir(), Handler: exe, Events: 300, Cases: []string{"batch-100"}}, func(Result) {})
	require.ErrorContains(t, err, "case batch-100: the function dead-lettered events")
	require.ErrorContains(t, err, "no thanks")
}

// Without --handler and without the Go toolchain, the run fails at once
// and says what to do.
func TestRunHandlerWithoutGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := RunHandler(context.Background(), HandlerOptions{DataDir: t.TempDir(), Cases: []string{"batch-1"}}, func(Result) {
		t.Fatal("nothing is measured")
	})
	require.ErrorIs(t, err, ErrNoGoToolchain)
	require.ErrorContains(t, err, "--handler")
}

func TestRunHandlerRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o    HandlerOptions
		want string
	}{
		{HandlerOptions{DataDir: "x", Cases: []string{"batch-10"}}, `unknown case "batch-10"`},
		{HandlerOptions{}, "DataDir is required"},
		{HandlerOptions{DataDir: "x", QueueBatchSize: 33}, "QueueBatchSize must be 1 to 32"},
		{HandlerOptions{DataDir: "x", Events: -1}, "must be at least 1"},
	} {
		err := RunHandler(context.Background(), tc.o, func(Result) {})
		require.ErrorContains(t, err, tc.want)
	}
}
