package host

import (
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/queue"
)

func TestWorkerPoolReservesAtMostItsWorkers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var mu sync.Mutex
		var handled []uint64
		p := startWorkers(2, func(w queueWork) {
			<-release
			mu.Lock()
			handled = append(handled, w.m.ID)
			mu.Unlock()
		})
		stop := make(chan struct{})
		require.True(t, p.reserve(stop))
		p.run(queueWork{m: &queue.Message{ID: 1}})
		require.True(t, p.reserve(stop))
		p.run(queueWork{m: &queue.Message{ID: 2}})

		third := make(chan bool)
		go func() { third <- p.reserve(stop) }()
		synctest.Wait()
		select {
		case <-third:
			t.Fatal("a third reservation while both workers are busy")
		default:
		}
		release <- struct{}{}
		require.True(t, <-third, "a worker that finishes is free again")
		p.unreserve()
		close(release)
		p.stop()
		require.ElementsMatch(t, []uint64{1, 2}, handled, "stop waits for the messages handed out")
	})
}

func TestWorkerPoolReserveEndsWithStop(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := startWorkers(1, func(queueWork) {})
		stop := make(chan struct{})
		require.True(t, p.reserve(stop))
		got := make(chan bool)
		go func() { got <- p.reserve(stop) }()
		synctest.Wait()
		close(stop)
		require.False(t, <-got)
		p.unreserve()
		p.stop()
	})
}
