package sluice_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// A function's context tells each try apart: its number, the retries its
// policy allows and the error of the try before.
func TestAttemptOf(t *testing.T) {
	t.Parallel()
	_, ok := sluice.AttemptOf(context.Background())
	require.False(t, ok, "a context that is no invocation's carries no attempt")

	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "in", Partitions: 1})
	attempts := make(chan sluice.Attempt, 3)
	app.Function("f", sluice.HubTrigger{Hub: "in"}, func(ctx context.Context, _ []sluice.Event) error {
		a, ok := sluice.AttemptOf(ctx)
		if !ok {
			a.Number = -1 // fails the test below
		}
		attempts <- a
		if a.Number < 3 {
			return fmt.Errorf("try %d", a.Number)
		}
		return nil
	}, sluice.WithRetry(sluice.FixedDelay(2, time.Millisecond)))
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	_, err := app.Publish(ctx, "in", sluice.Event{Body: []byte("x")})
	require.NoError(t, err)

	first, second, third := <-attempts, <-attempts, <-attempts
	require.Equal(t, sluice.Attempt{Number: 1, MaxRetries: 2}, first)
	require.Equal(t, 2, second.Number)
	require.EqualError(t, second.Last, "try 1")
	require.Equal(t, 3, third.Number)
	require.Equal(t, 2, third.MaxRetries)
	require.EqualError(t, third.Last, "try 2")
}
