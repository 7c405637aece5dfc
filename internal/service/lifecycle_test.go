package service_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartRunsOnce(t *testing.T) {
	t.Parallel()
	var l service.Lifecycle
	var runs atomic.Int32
	boom := errors.New("boom")
	start := func() error { runs.Add(1); return boom }
	require.ErrorIs(t, l.Start(start), boom)
	require.ErrorIs(t, l.Start(start), boom, "a second Start returns the first one's result")
	require.EqualValues(t, 1, runs.Load())
	require.True(t, l.Started())
	require.NoError(t, l.Stop(context.Background(), nil, nil))
	require.False(t, l.Started())
}

func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	var l service.Lifecycle
	var drained, finished bool
	require.NoError(t, l.Stop(context.Background(),
		func(context.Context) { drained = true },
		func(context.Context) error { finished = true; return nil }))
	require.True(t, drained)
	require.True(t, finished)
	requireClosed(t, l.Stopped())
	require.ErrorIs(t, l.Start(func() error { t.Error("start ran after Stop"); return nil }), service.ErrStopped)
	require.False(t, l.Go(func() { t.Error("goroutine ran after Stop") }))
}

func TestStopTwiceReturnsTheFirstError(t *testing.T) {
	t.Parallel()
	var l service.Lifecycle
	require.NoError(t, l.Start(nil))
	boom := errors.New("flush failed")
	var finishes atomic.Int32
	finish := func(context.Context) error { finishes.Add(1); return boom }
	require.ErrorIs(t, l.Stop(context.Background(), nil, finish), boom)
	require.ErrorIs(t, l.Stop(context.Background(), nil, finish), boom)
	require.EqualValues(t, 1, finishes.Load())
}

func TestConcurrentStopWaitsForTheFirst(t *testing.T) {
	t.Parallel()
	var l service.Lifecycle
	release := make(chan struct{})
	inDrain := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- l.Stop(context.Background(), func(context.Context) {
			close(inDrain)
			<-release
		}, nil)
	}()
	<-inDrain
	// A second Stop whose context ends gives up waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, l.Stop(ctx, nil, nil), context.Canceled)
	second := make(chan error, 1)
	go func() { second <- l.Stop(context.Background(), nil, nil) }()
	close(release)
	require.NoError(t, <-first)
	require.NoError(t, <-second)
}

func TestGracefulStopLetsGoroutinesFinish(t *testing.T) {
	t.Parallel()
	var l service.Lifecycle
	var hardBeforeReturn atomic.Bool
	finished := make(chan struct{})
	require.True(t, l.Go(func() {
		<-l.Stopping()
		// Finishing in-flight work: the hard context is still alive.
		hardBeforeReturn.Store(l.Context().Err() != nil)
		close(finished)
	}))
	require.NoError(t, l.Stop(context.Background(), nil, func(context.Context) error {
		requireClosed(t, finished)
		require.Error(t, l.Context().Err(), "finish runs after the hard context is cancelled")
		return nil
	}))
	require.False(t, hardBeforeReturn.Load())
}

func TestStopHardWhenContextEnds(t *testing.T) {
	t.Parallel()
	var l service.Lifecycle
	running := make(chan struct{})
	require.True(t, l.Go(func() {
		close(running)
		// In-flight work that only a hard stop ends.
		<-l.Context().Done()
	}))
	<-running
	ctx, cancel := context.WithCancel(context.Background())
	drainSawSoft := false
	err := l.Stop(ctx, func(context.Context) {
		select {
		case <-l.Stopping():
			drainSawSoft = true
		default:
		}
		cancel() // the caller's bound runs out during the graceful part
	}, nil)
	require.NoError(t, err)
	require.True(t, drainSawSoft)
	requireClosed(t, l.Stopped())
}

func TestStopWaitsForStartUnderWay(t *testing.T) {
	t.Parallel()
	var l service.Lifecycle
	inStart := make(chan struct{})
	release := make(chan struct{})
	var goroutineRan atomic.Bool
	started := make(chan error, 1)
	go func() {
		started <- l.Start(func() error {
			close(inStart)
			<-release
			l.Go(func() { goroutineRan.Store(true); <-l.Stopping() })
			return nil
		})
	}()
	<-inStart
	stopped := make(chan error, 1)
	go func() { stopped <- l.Stop(context.Background(), nil, nil) }()
	close(release)
	require.NoError(t, <-started)
	require.NoError(t, <-stopped)
	require.True(t, goroutineRan.Load(), "Stop waited for Start, then for the goroutine it started")
}

func requireClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Fatal("channel not closed")
	}
}
