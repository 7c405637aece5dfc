package sluice_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func TestAppQueueFunctionPoisonAndRedrive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Queue(sluice.QueueConfig{Name: "orders"})
	var fixed atomic.Bool
	var mu sync.Mutex
	done := map[string]int{}
	app.QueueFunction("ship", sluice.QueueTrigger{Queue: "orders", MaxDequeueCount: 2}, func(ctx context.Context, m *sluice.Message) error {
		switch body := string(m.Body); {
		case body == "broken" && !fixed.Load():
			return errors.New("cannot ship a broken order")
		case body == "hopeless":
			return sluice.DeadLetterMessageWithState(errors.New("no such product"), map[string]string{"sku": "x"})
		default:
			mu.Lock()
			done[body]++
			mu.Unlock()
			return nil
		}
	})
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	var msgs []sluice.OutgoingMessage
	for i := range 20 {
		msgs = append(msgs, sluice.OutgoingMessage{Body: fmt.Appendf(nil, "order %d", i)})
	}
	msgs = append(msgs, sluice.OutgoingMessage{Body: []byte("broken"), Properties: map[string]string{"customer": "c1"}})
	ids, err := app.Send(ctx, "orders", msgs...)
	require.NoError(t, err)
	require.Len(t, ids, 21)
	_, err = app.Send(ctx, "orders", sluice.OutgoingMessage{Body: []byte("hopeless")})
	require.NoError(t, err)
	var hopeless []sluice.DeadLetterRecord
	require.Eventually(t, func() bool {
		hopeless, err = app.DeadLetters(ctx, sluice.DeadLetterFilter{Reason: "no such product"}, 10)
		return err == nil && len(hopeless) == 1
	}, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, hopeless[0].Attempts, "given up at once, without retries")
	require.JSONEq(t, `{"sku":"x"}`, string(hopeless[0].State))
	_, err = app.PurgeDeadLetters(ctx, sluice.DeadLetterFilter{Reason: "no such product"})
	require.NoError(t, err)

	var letters []sluice.DeadLetterRecord
	require.Eventually(t, func() bool {
		letters, err = app.DeadLetters(ctx, sluice.DeadLetterFilter{Source: "orders"}, 10)
		return err == nil && len(letters) == 1
	}, 30*time.Second, 20*time.Millisecond)
	l := letters[0]
	require.Equal(t, "orders-poison", l.DeadLetterQueue)
	require.Equal(t, "ship", l.Function)
	require.Equal(t, "cannot ship a broken order", l.Reason)
	require.Equal(t, 2, l.Attempts)
	require.Equal(t, ids[20], l.Source.MessageID)
	require.Equal(t, "c1", l.Properties["customer"])

	fixed.Store(true)
	n, err := app.Redrive(ctx, sluice.DeadLetterFilter{Function: "ship"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(done) == 21
	}, 30*time.Second, 20*time.Millisecond)
	left, err := app.DeadLetters(ctx, sluice.DeadLetterFilter{}, 10)
	require.NoError(t, err)
	require.Empty(t, left)
	mu.Lock()
	defer mu.Unlock()
	for body, n := range done {
		require.Equal(t, 1, n, "%s processed once", body)
	}
}

func TestAppHubDeadLettersRedriveToTheHub(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "readings", Partitions: 1})
	var accept atomic.Bool
	var good atomic.Int32
	app.Function("decode", sluice.HubTrigger{Hub: "readings"}, func(ctx context.Context, events []sluice.Event) error {
		var bad []sluice.Event
		for _, e := range events {
			if string(e.Body) == "corrupt" && !accept.Load() {
				bad = append(bad, e)
				continue
			}
			good.Add(1)
		}
		if len(bad) > 0 {
			return sluice.DeadLetterWithState(errors.New("not a reading"), map[string]int{"offset": 3}, bad...)
		}
		return nil
	})
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	pos, err := app.Publish(ctx, "readings", sluice.Event{Body: []byte("ok")}, sluice.Event{Body: []byte("corrupt"), PartitionKey: "dev-1"})
	require.NoError(t, err)

	var letters []sluice.DeadLetterRecord
	require.Eventually(t, func() bool {
		letters, err = app.DeadLetters(ctx, sluice.DeadLetterFilter{Function: "decode"}, 10)
		return err == nil && len(letters) == 1
	}, 30*time.Second, 20*time.Millisecond)
	l := letters[0]
	require.Equal(t, "sluice-deadletters", l.DeadLetterQueue)
	require.Equal(t, "not a reading", l.Reason)
	require.Equal(t, "hub", l.Source.Kind)
	require.Equal(t, "readings", l.Source.Hub)
	require.Equal(t, pos[1].SequenceNumber, l.Source.Sequence)
	require.Equal(t, "dev-1", l.Source.PartitionKey)
	require.JSONEq(t, `{"offset":3}`, string(l.State), "the state the function attached")

	accept.Store(true)
	n, err := app.Redrive(ctx, sluice.DeadLetterFilter{IDs: []uint64{l.ID}, Queue: l.DeadLetterQueue})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Eventually(t, func() bool { return good.Load() == 2 }, 30*time.Second, 20*time.Millisecond)
	n, err = app.PurgeDeadLetters(ctx, sluice.DeadLetterFilter{})
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestAppRetryAtSurvivesARestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	var due atomic.Int64
	var got atomic.Int64 // unix nanos of the second delivery
	newApp := func() *sluice.App {
		app := sluice.New(sluice.Config{DataDir: dir, Logger: quiet()})
		app.Hub(sluice.HubConfig{Name: "orders", Partitions: 1})
		app.Function("post", sluice.HubTrigger{Hub: "orders"}, func(ctx context.Context, events []sluice.Event) error {
			if due.Load() == 0 {
				at := time.Now().Add(2 * time.Second)
				due.Store(at.UnixNano())
				return sluice.RetryAt(at, "partner down")
			}
			got.Store(time.Now().UnixNano())
			return nil
		})
		return app
	}
	app := newApp()
	require.NoError(t, app.Start(ctx))
	_, err := app.Publish(ctx, "orders", sluice.Event{Body: []byte("order 1")})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return due.Load() != 0 }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, app.Stop(ctx))

	app = newApp()
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	require.Eventually(t, func() bool { return got.Load() != 0 }, 30*time.Second, 20*time.Millisecond)
	require.GreaterOrEqual(t, got.Load(), due.Load()-int64(100*time.Millisecond), "delivered when due, not before")
}

// Joined DeadLetter errors keep each event's own reason and state.
func TestDeadLetterReasonsPerEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "in", Partitions: 1})
	app.Function("f", sluice.HubTrigger{Hub: "in", MaxBatchSize: 10, MinBatchSize: 4, MaxWait: 5 * time.Second},
		func(ctx context.Context, events []sluice.Event) error {
			var errs []error
			for _, e := range events {
				switch string(e.Body) {
				case "truncated":
					errs = append(errs, sluice.DeadLetter(errors.New("invalid JSON"), e))
				case "range":
					errs = append(errs, sluice.DeadLetterWithState(errors.New("battery out of range"), map[string]int{"battery": 120}, e))
				}
			}
			return errors.Join(errs...)
		})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	_, err := app.Publish(ctx, "in", sluice.Event{Body: []byte("ok")}, sluice.Event{Body: []byte("truncated")},
		sluice.Event{Body: []byte("range")}, sluice.Event{Body: []byte("ok")})
	require.NoError(t, err)
	var letters []sluice.DeadLetterRecord
	require.Eventually(t, func() bool {
		letters, err = app.DeadLetters(ctx, sluice.DeadLetterFilter{Function: "f"}, 10)
		return err == nil && len(letters) == 2
	}, 30*time.Second, 10*time.Millisecond)
	reasons := map[string]string{}
	for _, l := range letters {
		reasons[string(l.Body)] = l.Reason + " " + string(l.State)
	}
	require.Equal(t, map[string]string{"truncated": "invalid JSON ", "range": `battery out of range {"battery":120}`}, reasons)
	require.Eventually(t, func() bool { return app.Processed("f") == 4 }, 30*time.Second, 10*time.Millisecond)
}

// A function that publishes and sends while the app stops gracefully gets
// its outputs stored: Stop waits for it without holding what they need.
func TestStopLetsInFlightFunctionsWriteTheirOutputs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The log tells when Stop has begun: the idle function lets its
	// partition go at once.
	logs := &logLines{}
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	app.Hub(sluice.HubConfig{Name: "in", Partitions: 1})
	app.Hub(sluice.HubConfig{Name: "out", Partitions: 1})
	app.Hub(sluice.HubConfig{Name: "quiet", Partitions: 1})
	app.Function("idle", sluice.HubTrigger{Hub: "quiet"}, func(context.Context, []sluice.Event) error { return nil })
	app.Queue(sluice.QueueConfig{Name: "alerts"})
	started := make(chan struct{})
	release := make(chan struct{})
	var outErr atomic.Value
	app.Function("f", sluice.HubTrigger{Hub: "in"}, func(ctx context.Context, events []sluice.Event) error {
		close(started)
		<-release
		_, err := app.Publish(ctx, "out", sluice.Event{Body: []byte("derived")})
		if err == nil {
			_, err = app.Send(ctx, "alerts", sluice.OutgoingMessage{Body: []byte("alert")})
		}
		outErr.Store(fmt.Sprint(err))
		return err
	})
	require.NoError(t, app.Start(ctx))
	idleLine := func(msg string) func() bool {
		return func() bool { return logs.has(`msg="` + msg + `" function=idle`) }
	}
	require.Eventually(t, idleLine("partition acquired"), 30*time.Second, 5*time.Millisecond)
	_, err := app.Publish(ctx, "in", sluice.Event{Body: []byte("x")})
	require.NoError(t, err)
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- app.Stop(ctx) }()
	require.Eventually(t, idleLine("partition released"), 30*time.Second, 5*time.Millisecond, "Stop began")
	close(release)
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Stop and the function's Publish wait on each other")
	}
	require.Equal(t, "<nil>", outErr.Load(), "outputs of an invocation finishing during a graceful stop are stored")
}

// logLines collects what a text log handler writes.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// has reports whether a line holds s.
func (l *logLines) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.buf.Bytes(), []byte(s))
}
