package sluice_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// A hub batch being retried keeps its retry budget across a restart: the
// attempts that failed before are kept in its partition's checkpoint, and
// the restarted app goes on from there instead of starting over.
func TestHubRetriesGoOnAfterARestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	retry := sluice.WithRetry(sluice.FixedDelay(3, 10*time.Millisecond)) // 4 attempts in all
	trigger := sluice.HubTrigger{Hub: "in", MaxBatchSize: 1}

	// First run: attempts 1 and 2 fail, attempt 3 is cut short by a
	// forced stop (which is no failure of the function).
	var before atomic.Int32
	inThird := make(chan struct{})
	first := sluice.New(sluice.Config{DataDir: dir, Logger: quiet()})
	first.Hub(sluice.HubConfig{Name: "in", Partitions: 1})
	first.Function("f", trigger, func(ctx context.Context, _ []sluice.Event) error {
		if before.Add(1) == 3 {
			close(inThird)
			<-ctx.Done()
			return ctx.Err()
		}
		return errors.New("downstream down")
	}, retry)
	require.NoError(t, first.Start(ctx))
	_, err := first.Publish(ctx, "in", sluice.Event{Body: []byte("poison")})
	require.NoError(t, err)
	<-inThird
	stopped := time.Now()
	forced, cancel := context.WithCancel(ctx)
	cancel()
	require.NoError(t, first.Stop(forced))
	require.Equal(t, int32(3), before.Load())

	// Second run on the same data directory: attempts 3 and 4 are left.
	var after atomic.Int32
	done := make(chan struct{})
	second := sluice.New(sluice.Config{DataDir: dir, Logger: quiet()})
	second.Hub(sluice.HubConfig{Name: "in", Partitions: 1})
	second.Function("f", trigger, func(_ context.Context, events []sluice.Event) error {
		if string(events[0].Body) == "next" {
			close(done) // the partition moved past the poison event
			return nil
		}
		after.Add(1)
		return errors.New("downstream still down")
	}, retry)
	require.NoError(t, second.Start(ctx))
	defer second.Stop(ctx)
	_, err = second.Publish(ctx, "in", sluice.Event{Body: []byte("next")})
	require.NoError(t, err)
	<-done

	require.Equal(t, int32(2), after.Load(), "the restarted app tries the batch only for the attempts its policy has left")
	letters, err := second.DeadLetters(ctx, sluice.DeadLetterFilter{Function: "f"}, 10)
	require.NoError(t, err)
	require.Len(t, letters, 1)
	require.Equal(t, 4, letters[0].Attempts)
	require.Equal(t, "downstream still down", letters[0].Reason)
	require.True(t, letters[0].FirstFailure.Before(stopped), "the first failure is the one before the restart")
	require.Equal(t, "poison", string(letters[0].Body))
}
