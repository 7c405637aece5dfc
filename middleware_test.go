package sluice_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// recorder keeps what middleware and functions saw, in order.
type recorder struct {
	mu    sync.Mutex
	steps []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.steps = append(r.steps, s)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.steps)
}

// around is a middleware that records entering and leaving.
func (r *recorder) around(name string) sluice.Middleware {
	return func(next sluice.Invoke) sluice.Invoke {
		return func(ctx context.Context, inv sluice.Invocation) error {
			_, deadline := ctx.Deadline()
			r.add(fmt.Sprintf("%s> %s %s deadline=%v", name, inv.Trigger, inv.Function, deadline))
			err := next(ctx, inv)
			r.add(fmt.Sprintf("%s< %v", name, err))
			return err
		}
	}
}

// TestMiddlewareOrder: the app's middleware wraps the function's, each in
// the order given, inside every attempt (under its timeout), and sees the
// function's error.
func TestMiddlewareOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var rec recorder
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "in", Partitions: 1})
	app.Use(rec.around("app1"), rec.around("app2"))
	done := make(chan struct{})
	attempts := 0
	app.Function("f", sluice.HubTrigger{Hub: "in"}, func(ctx context.Context, events []sluice.Event) error {
		attempts++
		rec.add(fmt.Sprintf("f %d", attempts))
		if attempts == 1 {
			return errors.New("first attempt fails")
		}
		close(done)
		return nil
	}, sluice.WithRetry(sluice.FixedDelay(3, time.Millisecond)), sluice.WithTimeout(time.Hour),
		sluice.WithMiddleware(rec.around("fn1"), rec.around("fn2")))
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	_, err := app.Publish(ctx, "in", sluice.Event{Body: []byte("x")})
	require.NoError(t, err)
	<-done
	require.NoError(t, app.Stop(ctx))

	attempt := func(n int, err string) []string {
		return []string{
			"app1> hub f deadline=true", "app2> hub f deadline=true", "fn1> hub f deadline=true", "fn2> hub f deadline=true",
			fmt.Sprintf("f %d", n),
			"fn2< " + err, "fn1< " + err, "app2< " + err, "app1< " + err,
		}
	}
	require.Equal(t, slices.Concat(attempt(1, "first attempt fails"), attempt(2, "<nil>")), rec.get())
}

// TestMiddlewareSeesEveryTrigger: every kind of function but HTTP goes
// through the app's middleware, with its name, kind and input.
func TestMiddlewareSeesEveryTrigger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "in", Partitions: 1})
	app.Queue(sluice.QueueConfig{Name: "work"})
	app.Container(sluice.ContainerConfig{Name: "c", PartitionKeyPath: "/pk"})
	app.BlobContainer("files")

	seen := make(chan string, 10)
	app.Use(func(next sluice.Invoke) sluice.Invoke {
		return func(ctx context.Context, inv sluice.Invocation) error {
			seen <- fmt.Sprintf("%s %s %T", inv.Trigger, inv.Function, inv.Input)
			return next(ctx, inv)
		}
	})
	ran := make(chan string, 10)
	app.Function("hubfn", sluice.HubTrigger{Hub: "in"}, func(context.Context, []sluice.Event) error { ran <- "hubfn"; return nil })
	app.QueueFunction("queuefn", sluice.QueueTrigger{Queue: "work"}, func(context.Context, *sluice.Message) error { ran <- "queuefn"; return nil })
	app.FeedFunction("feedfn", sluice.FeedTrigger{Container: "c", StartFrom: sluice.FeedFromBeginning}, func(context.Context, []sluice.Document) error { ran <- "feedfn"; return nil })
	app.TimerFunction("timerfn", sluice.TimerTrigger{Schedule: "0 0 0 1 1 *", RunOnStartup: true}, func(context.Context, sluice.TimerInfo) error {
		ran <- "timerfn"
		return nil
	})
	app.BlobFunction("blobfn", sluice.BlobTrigger{Path: "files/{name}"}, func(context.Context, sluice.Blob) error { ran <- "blobfn"; return nil })
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)

	_, err := app.Publish(ctx, "in", sluice.Event{Body: []byte("x")})
	require.NoError(t, err)
	_, err = app.Send(ctx, "work", sluice.OutgoingMessage{Body: []byte("m")})
	require.NoError(t, err)
	_, err = app.Docs().Upsert(ctx, "c", map[string]any{"id": "1", "pk": "p"})
	require.NoError(t, err)
	_, err = app.Blobs().Put(ctx, "files", "a.txt", []byte("a"), "text/plain")
	require.NoError(t, err)

	var gotSeen, gotRan []string
	for range 5 {
		gotSeen = append(gotSeen, <-seen)
		gotRan = append(gotRan, <-ran)
	}
	require.ElementsMatch(t, []string{
		fmt.Sprintf("hub hubfn %T", []sluice.Event{}), fmt.Sprintf("queue queuefn %T", &sluice.Message{}),
		fmt.Sprintf("changefeed feedfn %T", []sluice.Document{}), fmt.Sprintf("timer timerfn %T", sluice.TimerInfo{}),
		fmt.Sprintf("blob blobfn %T", sluice.Blob{}),
	}, gotSeen)
	require.ElementsMatch(t, []string{"hubfn", "queuefn", "feedfn", "timerfn", "blobfn"}, gotRan)
}

// TestMiddlewareChangesAndRefuses: a middleware may give the function part
// of its input; an input of the wrong type, or an error of the middleware,
// fails the attempt like the function's own error, dead-lettering the
// batch once retries run out.
func TestMiddlewareChangesAndRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "in", Partitions: 1})
	got := make(chan []string, 10)
	record := func(ctx context.Context, events []sluice.Event) error {
		var bodies []string
		for _, e := range events {
			bodies = append(bodies, string(e.Body))
		}
		got <- bodies
		return nil
	}
	dropSkip := func(next sluice.Invoke) sluice.Invoke {
		return func(ctx context.Context, inv sluice.Invocation) error {
			events := inv.Input.([]sluice.Event)
			inv.Input = slices.DeleteFunc(slices.Clone(events), func(e sluice.Event) bool { return string(e.Body) == "skip" })
			return next(ctx, inv)
		}
	}
	wrongType := func(next sluice.Invoke) sluice.Invoke {
		return func(ctx context.Context, inv sluice.Invocation) error {
			inv.Input = "not events"
			return next(ctx, inv)
		}
	}
	refuse := func(sluice.Invoke) sluice.Invoke {
		return func(context.Context, sluice.Invocation) error { return errors.New("refused by middleware") }
	}
	app.Function("filtered", sluice.HubTrigger{Hub: "in", ConsumerGroup: "filtered"}, record, sluice.WithMiddleware(dropSkip))
	app.Function("wrongtype", sluice.HubTrigger{Hub: "in", ConsumerGroup: "wrongtype"}, record,
		sluice.WithMiddleware(wrongType), sluice.WithRetry(sluice.FixedDelay(1, time.Millisecond)))
	app.Function("refused", sluice.HubTrigger{Hub: "in", ConsumerGroup: "refused"}, record,
		sluice.WithMiddleware(refuse), sluice.WithRetry(sluice.FixedDelay(1, time.Millisecond)))
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	_, err := app.Publish(ctx, "in", sluice.Event{Body: []byte("a")}, sluice.Event{Body: []byte("skip")}, sluice.Event{Body: []byte("b")})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, <-got)

	for fn, reason := range map[string]string{
		"wrongtype": "the middleware of hub function wrongtype passed string as its input; it takes []sluice.Event",
		"refused":   "refused by middleware",
	} {
		var letters []sluice.DeadLetterRecord
		require.Eventually(t, func() bool {
			letters, err = app.DeadLetters(ctx, sluice.DeadLetterFilter{Function: fn}, 10)
			require.NoError(t, err)
			return len(letters) == 3
		}, time.Minute, 10*time.Millisecond, fn)
		for _, l := range letters {
			require.Contains(t, l.Reason, reason)
			require.Equal(t, 2, l.Attempts, "retried like a failure of the function: %s", fn)
		}
	}
	require.Len(t, got, 0, "the function never ran with a refused or mistyped input")
}

func TestMiddlewareMistakes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	noop := func(context.Context, []sluice.Event) error { return nil }

	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "in", Partitions: 1})
	app.Function("f", sluice.HubTrigger{Hub: "in"}, noop, sluice.WithMiddleware(nil))
	err := app.Start(ctx)
	require.ErrorContains(t, err, "function f: middleware 1 of 1 is nil")

	app = sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "in", Partitions: 1})
	app.Function("f", sluice.HubTrigger{Hub: "in"}, noop,
		sluice.WithMiddleware(func(sluice.Invoke) sluice.Invoke { return nil }))
	err = app.Start(ctx)
	require.ErrorContains(t, err, "returned a nil Invoke")

	app = sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	require.PanicsWithValue(t, "sluice: App.Use after Start: add middleware before the app starts", func() {
		app.Use(func(next sluice.Invoke) sluice.Invoke { return next })
	})
}
