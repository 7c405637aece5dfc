package sluice_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func TestTimerFunction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	var mu sync.Mutex
	var runs []sluice.TimerInfo
	app.TimerFunction("tick", sluice.TimerTrigger{Schedule: "* * * * * *", RunOnStartup: true}, func(_ context.Context, info sluice.TimerInfo) error {
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, info)
		return nil
	})
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(runs)
		mu.Unlock()
		if n >= 3 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the timer ran %d times", n)
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	require.True(t, runs[0].Startup, "runOnStartup runs first")
	for _, r := range runs[1:] {
		require.Equal(t, r.Scheduled.Truncate(time.Second), r.Scheduled, "on the second")
		require.True(t, r.Next.IsZero(), "no monitor for a schedule under a minute")
	}
}

func TestTimerFunctionBadSchedule(t *testing.T) {
	t.Parallel()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.TimerFunction("nightly", sluice.TimerTrigger{Schedule: "0 0 25 * * *"}, func(context.Context, sluice.TimerInfo) error { return nil })
	err := app.Start(context.Background())
	require.ErrorContains(t, err, "timer function nightly")
	require.ErrorContains(t, err, "hour 25")
}
