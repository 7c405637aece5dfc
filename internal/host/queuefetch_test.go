package host

import (
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/queue"
)

// fakeIterator counts the calls a fetcher makes; Next is not used.
type fakeIterator struct {
	mu                    sync.Mutex
	stops, pauses, closes int
}

func (i *fakeIterator) Next() (*queue.Message, error) { return nil, queue.ErrStopped }
func (i *fakeIterator) Stop()                         { i.count(&i.stops) }
func (i *fakeIterator) Pause()                        { i.count(&i.pauses) }
func (i *fakeIterator) Close()                        { i.count(&i.closes) }

func (i *fakeIterator) count(n *int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	*n++
}

func (i *fakeIterator) calls() (stops, pauses, closes int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.stops, i.pauses, i.closes
}

// fakeBreaker admits work or not, signalling each change.
type fakeBreaker struct {
	mu      sync.Mutex
	admits  bool
	changed chan struct{}
}

func newFakeBreaker() *fakeBreaker { return &fakeBreaker{admits: true, changed: make(chan struct{})} }

func (b *fakeBreaker) Admits() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.admits
}

func (b *fakeBreaker) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

func (b *fakeBreaker) set(admits bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.admits = admits
	close(b.changed)
	b.changed = make(chan struct{})
}

func TestFetcherStopWatcherStopsTheIteratorAndTakesNoOther(t *testing.T) {
	t.Parallel()
	for _, hard := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			first := &fakeIterator{}
			f := newFetcher(first)
			soft, hardCh := make(chan struct{}), make(chan struct{})
			go f.watchStop(soft, hardCh)
			synctest.Wait()
			require.False(t, f.isStopped())
			require.Same(t, first, f.current())

			if hard {
				close(hardCh)
			} else {
				close(soft)
			}
			<-f.stopped
			require.True(t, f.isStopped())
			stops, _, _ := first.calls()
			require.Equal(t, 1, stops, "its messages fetched ahead go back at once")

			next := &fakeIterator{}
			require.False(t, f.replace(next), "no new iterator once stopped")
			_, _, closes := next.calls()
			require.Equal(t, 1, closes)
			require.Same(t, first, f.current())
		})
	}
}

func TestFetcherReplaceDropAndClose(t *testing.T) {
	t.Parallel()
	f := newFetcher(nil)
	require.Nil(t, f.current())
	f.close() // nothing to close

	it := &fakeIterator{}
	require.True(t, f.replace(it))
	require.Same(t, it, f.current())
	require.Same(t, it, f.drop())
	require.Nil(t, f.current())
	require.Nil(t, f.drop())

	require.True(t, f.replace(it))
	f.close()
	_, _, closes := it.calls()
	require.Equal(t, 1, closes)
}

func TestFetcherBreakerWatcherPausesTheIteratorWhileTheBreakerIsOpen(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		first := &fakeIterator{}
		f := newFetcher(first)
		b := newFakeBreaker()
		soft := make(chan struct{})
		go f.watchStop(soft, nil)
		go f.watchBreaker(b)
		synctest.Wait()
		_, pauses, _ := first.calls()
		require.Zero(t, pauses, "a closed breaker pauses nothing")

		b.set(false)
		synctest.Wait()
		_, pauses, _ = first.calls()
		require.Equal(t, 1, pauses, "the breaker opened: fetching pauses at once")

		// The loop drops the paused iterator and, once the breaker admits
		// work, takes another, which the watcher leaves alone.
		f.drop()
		b.set(true)
		second := &fakeIterator{}
		require.True(t, f.replace(second))
		synctest.Wait()
		_, pauses, _ = second.calls()
		require.Zero(t, pauses)

		b.set(false)
		synctest.Wait()
		_, pauses, _ = second.calls()
		require.Equal(t, 1, pauses)

		close(soft) // ends both watchers
		<-f.stopped
	})
}
