// Package service gives Sluice's background services one way to start and
// stop, after River's startstop: a service holds a [Lifecycle] and its
// Start and Stop methods are thin wrappers around [Lifecycle.Start] and
// [Lifecycle.Stop]. Every service then behaves the same:
//
//   - Start(ctx) error starts it; calling it again does nothing and returns
//     what the first call returned. After Stop it returns [ErrStopped]. A
//     service that runs from its constructor (it starts goroutines as work
//     comes) has no Start.
//   - Stop(ctx) error stops it, soft then hard: first the service takes no
//     new work and finishes what it holds; when ctx ends before that is
//     over, work in flight is abandoned ([Lifecycle.Context] is cancelled)
//     and Stop returns once the service's goroutines have returned. Stop is
//     safe before Start, twice, and from several goroutines; the later calls
//     wait for the first and return its error.
//   - Stopped() <-chan struct{} is closed once Stop has finished.
//
// The goroutines of a service are started with [Lifecycle.Go], which
// refuses once Stop has begun, so that nothing starts behind Stop's back.
// They end on [Lifecycle.Stopping] (after finishing what they hold), and
// abandon blocking calls made with [Lifecycle.Context].
package service

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrStopped is returned by Start once Stop has been called, and by
// services for work asked of them after they began to stop.
var ErrStopped = errors.New("stopped")

// Lifecycle is the start and stop state of one background service. The
// zero value is ready to use; a Lifecycle must not be copied after first
// use.
type Lifecycle struct {
	// startMu is held while a start function runs, so that Stop waits for
	// a Start under way instead of stopping half of it.
	startMu sync.Mutex

	mu         sync.Mutex
	ready      bool // the channels and context below are made
	started    bool
	startErr   error
	stopCalled bool
	stopping   bool // soft is closed; Go refuses
	soft       chan struct{}
	ctx        context.Context
	cancel     context.CancelFunc
	stopped    chan struct{}
	err        error // Stop's result, set before stopped is closed
	goroutines sync.WaitGroup
}

// init makes the channels and context. l.mu must be held.
func (l *Lifecycle) init() {
	if l.ready {
		return
	}
	l.ready = true
	l.soft = make(chan struct{})
	l.stopped = make(chan struct{})
	l.ctx, l.cancel = context.WithCancel(context.Background())
}

// Start runs start, once: later calls return what the first returned,
// without running it again, and calls after Stop began return
// [ErrStopped]. A nil start only marks the service started. A Stop called
// while start runs waits for it to return. start may call [Lifecycle.Go].
//
// A start that fails halfway leaves the service started: Stop then stops
// what it did start.
func (l *Lifecycle) Start(start func() error) error {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.mu.Lock()
	l.init()
	switch {
	case l.stopCalled:
		l.mu.Unlock()
		return ErrStopped
	case l.started:
		err := l.startErr
		l.mu.Unlock()
		return err
	}
	l.started = true
	l.mu.Unlock()
	var err error
	if start != nil {
		err = start()
	}
	l.mu.Lock()
	l.startErr = err
	l.mu.Unlock()
	return err
}

// Started reports whether Start has been called (and Stop has not begun).
func (l *Lifecycle) Started() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started && !l.stopCalled
}

// Stop stops the service, once, in this order:
//
//  1. [Lifecycle.Stopping] is closed and [Lifecycle.Go] refuses: the
//     service takes no new work, and its goroutines finish what they hold
//     and return.
//  2. drain (when not nil) waits for the in-flight work the service tracks
//     itself, then Stop waits for the goroutines started with Go. This is
//     the graceful part: when ctx ends before it is over,
//     [Lifecycle.Context] is cancelled (the hard stop) and the service's
//     goroutines must return promptly.
//  3. Context is cancelled in any case, and finish (when not nil) runs:
//     what is done once the goroutines are gone, such as writing what they
//     gathered, removing a registration, or stopping what the service
//     owns. It receives ctx, which may have ended: it should make its
//     calls with it, so that a stop cut short does not linger.
//  4. [Lifecycle.Stopped] is closed, and Stop returns finish's error.
//
// Stop before Start skips nothing: drain and finish must cope with a
// service that never started. Later calls wait until the first is over
// (or their own ctx ends) and return its error.
func (l *Lifecycle) Stop(ctx context.Context, drain func(ctx context.Context), finish func(ctx context.Context) error) error {
	l.mu.Lock()
	l.init()
	if l.stopCalled {
		l.mu.Unlock()
		select {
		case <-l.stopped:
			return l.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.stopCalled = true
	l.mu.Unlock()

	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.mu.Lock()
	l.stopping = true
	close(l.soft)
	l.mu.Unlock()

	hard := context.AfterFunc(ctx, l.cancel)
	if drain != nil {
		drain(ctx)
	}
	// No Go adds to goroutines any more (stopping is set under mu), so
	// this Wait does not race with an Add from zero.
	l.goroutines.Wait()
	hard()
	l.cancel()

	var err error
	if finish != nil {
		err = finish(ctx)
	}
	l.err = err
	close(l.stopped)
	return err
}

// Go runs fn in a goroutine that Stop waits for, and reports whether it
// did: once Stop has begun it refuses, and the caller must then do without
// (fail the request with [ErrStopped], or do the work inline). fn must
// return after [Lifecycle.Stopping] is closed, once it has finished what
// it holds, and promptly after [Lifecycle.Context] is cancelled.
func (l *Lifecycle) Go(fn func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	if l.stopping {
		return false
	}
	l.goroutines.Go(fn)
	return true
}

// Every runs fn with the service's context every d, in a goroutine of l,
// until Stop begins. It reports whether it started (see Go).
func (l *Lifecycle) Every(d time.Duration, fn func(ctx context.Context)) bool {
	stopping, ctx := l.Stopping(), l.Context()
	return l.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stopping:
				return
			case <-t.C:
				fn(ctx)
			}
		}
	})
}

// Stopping is closed when Stop begins: take no new work.
func (l *Lifecycle) Stopping() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	return l.soft
}

// Context is cancelled when the service stops hard: when Stop's context
// ends before the graceful part is over, and in any case once Stop's
// goroutines have returned. Blocking calls a service makes on its own
// behalf (not on a caller's) use it, so that a hard stop abandons them.
func (l *Lifecycle) Context() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	return l.ctx
}

// Stopped is closed once Stop has finished.
func (l *Lifecycle) Stopped() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	return l.stopped
}
