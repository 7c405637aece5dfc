package sluice_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// TestRedriveGoesBackToTheFunction: a hub function's dead letter is
// redriven to that function alone, by default (through its retry queue):
// another consumer group of the hub does not see it again. With ToHub it
// is a new event of the hub, which every group sees.
func TestRedriveGoesBackToTheFunction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "h", Partitions: 1})
	var mu sync.Mutex
	failing := true
	seen := map[string][]string{} // function -> bodies, in order
	record := func(fn string, evs []sluice.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range evs {
			seen[fn] = append(seen[fn], string(e.Body))
		}
	}
	app.Function("picky", sluice.HubTrigger{Hub: "h", ConsumerGroup: "picky"}, func(_ context.Context, evs []sluice.Event) error {
		mu.Lock()
		f := failing
		mu.Unlock()
		for _, e := range evs {
			if f && string(e.Body) == "bad" {
				return sluice.DeadLetter(errors.New("not now"), e)
			}
		}
		record("picky", evs)
		return nil
	})
	app.Function("other", sluice.HubTrigger{Hub: "h", ConsumerGroup: "other"}, func(_ context.Context, evs []sluice.Event) error {
		record("other", evs)
		return nil
	})
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	bodies := func(fn string) []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen[fn]...)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		require.Eventually(t, cond, time.Minute, 10*time.Millisecond, what)
	}
	publish := func(body string) {
		_, err := app.Publish(ctx, "h", sluice.Event{Body: []byte(body)})
		require.NoError(t, err)
	}
	letters := func() []sluice.DeadLetterRecord {
		l, err := app.DeadLetters(ctx, sluice.DeadLetterFilter{Function: "picky"}, 10)
		require.NoError(t, err)
		return l
	}

	publish("bad")
	wait("the dead letter", func() bool { return len(letters()) == 1 })
	mu.Lock()
	failing = false
	mu.Unlock()
	n, err := app.Redrive(ctx, sluice.DeadLetterFilter{Function: "picky"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	wait("picky processes the redriven event", func() bool { return len(bodies("picky")) == 1 })
	require.Equal(t, []string{"bad"}, bodies("picky"))
	// A marker after it: other reaches it without seeing "bad" again.
	publish("marker")
	wait("other reaches the marker", func() bool { b := bodies("other"); return len(b) > 0 && b[len(b)-1] == "marker" })
	require.Equal(t, []string{"bad", "marker"}, bodies("other"), "the redrive is not a new event of the hub")
	require.Empty(t, letters())

	// To the hub, as before: every group sees it again.
	mu.Lock()
	failing = true
	mu.Unlock()
	publish("bad")
	wait("the second dead letter", func() bool { return len(letters()) == 1 })
	mu.Lock()
	failing = false
	mu.Unlock()
	_, err = app.Redrive(ctx, sluice.DeadLetterFilter{Function: "picky", ToHub: true})
	require.NoError(t, err)
	wait("other sees it again", func() bool { return len(bodies("other")) == 4 })
	require.Equal(t, []string{"bad", "marker", "bad", "bad"}, bodies("other"))
}
