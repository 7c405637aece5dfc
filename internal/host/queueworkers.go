package host

import (
	"sync"

	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/resilience"
)

// queueWork is a message taken for a worker, with the breaker's permit.
type queueWork struct {
	m      *queue.Message
	permit resilience.Permit
}

// workerPool runs a queue function's messages on a fixed set of
// goroutines that live as long as the function's loop: a goroutine per
// message grew a fresh stack for every one. A message is taken from the
// queue only once a worker is reserved for it, so that on a stop nothing
// is left taken but not started.
type workerPool struct {
	work    chan queueWork
	slots   chan struct{} // one per reserved or busy worker
	workers sync.WaitGroup
}

// startWorkers starts n workers, each calling handle for one message at a
// time.
func startWorkers(n int, handle func(queueWork)) *workerPool {
	p := &workerPool{work: make(chan queueWork, n), slots: make(chan struct{}, n)}
	for range n {
		p.workers.Go(func() {
			for w := range p.work {
				handle(w)
				<-p.slots
			}
		})
	}
	return p
}

// reserve waits for a worker to be free and reserves it; false when stop
// is closed first.
func (p *workerPool) reserve(stop <-chan struct{}) bool {
	select {
	case p.slots <- struct{}{}:
		return true
	case <-stop:
		return false
	}
}

// unreserve gives back a reservation that no message came for.
func (p *workerPool) unreserve() { <-p.slots }

// run hands a message to the worker reserved for it. It never blocks.
func (p *workerPool) run(w queueWork) { p.work <- w }

// stop waits for the workers to finish the messages they were handed.
func (p *workerPool) stop() {
	close(p.work)
	p.workers.Wait()
}
