package host

import (
	"sync"

	"github.com/sluicehq/sluice/internal/queue"
)

// messageIterator takes messages from a queue (a *queue.Iterator).
type messageIterator interface {
	Next() (*queue.Message, error)
	Stop()
	Pause()
	Close()
}

// breakerSignal is what the pause watcher needs of a breaker (a
// *resilience.Breaker).
type breakerSignal interface {
	Admits() bool
	Changed() <-chan struct{}
}

// fetcher holds the iterator a queue function's loop takes messages from,
// which the loop replaces as it goes, and which two watchers reach from
// their goroutines: watchStop stops it when the host stops (its messages
// fetched ahead go back to the queue at once) and keeps the loop from
// taking another; watchBreaker pauses it as soon as the function's breaker
// opens (messages fetched ahead would otherwise wait, locked, for a
// worker).
type fetcher struct {
	mu      sync.Mutex // guards it and halted against the watchers
	it      messageIterator
	halted  bool          // the host is stopping: no new iterator
	stopped chan struct{} // closed by watchStop once it is halted
}

func newFetcher(first messageIterator) *fetcher {
	return &fetcher{it: first, stopped: make(chan struct{})}
}

// current is the iterator, nil when the loop has to take one. Only the
// loop may call it: the loop is the only writer of it, so it reads it
// without the lock.
func (f *fetcher) current() messageIterator { return f.it }

// replace makes next the iterator. It reports false, and closes next,
// when the host is stopping.
func (f *fetcher) replace(next messageIterator) bool {
	f.mu.Lock()
	halted := f.halted
	if !halted {
		f.it = next
	}
	f.mu.Unlock()
	if halted {
		next.Close()
	}
	return !halted
}

// drop takes the iterator out and returns it (nil when there was none).
func (f *fetcher) drop() messageIterator {
	f.mu.Lock()
	defer f.mu.Unlock()
	it := f.it
	f.it = nil
	return it
}

// isStopped reports whether the host stopped the loop.
func (f *fetcher) isStopped() bool {
	select {
	case <-f.stopped:
		return true
	default:
		return false
	}
}

// close closes the iterator, if any, when the loop ends.
func (f *fetcher) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.it != nil {
		f.it.Close()
	}
}

// watchStop waits for the host to stop (soft or hard), then stops the
// iterator, takes no other and closes stopped.
func (f *fetcher) watchStop(soft, hard <-chan struct{}) {
	select {
	case <-soft:
	case <-hard:
	}
	f.mu.Lock()
	f.halted = true
	if f.it != nil {
		f.it.Stop()
	}
	f.mu.Unlock()
	close(f.stopped)
}

// watchBreaker pauses the iterator whenever b stops admitting work, until
// the loop is stopped. The loop takes a new iterator once b admits work
// again.
func (f *fetcher) watchBreaker(b breakerSignal) {
	for {
		changed := b.Changed()
		if !b.Admits() {
			f.mu.Lock()
			if f.it != nil {
				f.it.Pause()
			}
			f.mu.Unlock()
		}
		select {
		case <-changed:
		case <-f.stopped:
			return
		}
	}
}
