package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/service"
)

// Group commit: the messages of concurrent sends to one queue are stored
// together as one atomic batch (up to maxAtomicBatch messages), so that one
// store and one fsync carry many sends. While a batch is being stored, the
// next gathers; an idle queue stores a send at once. Each send's messages
// stay in one batch, so a send is all or nothing.

// batcherIdle is how long a queue's batcher waits for sends before it ends;
// maxBatchers batches of a queue are stored at once, at most.
const (
	batcherIdle = 10 * time.Second
	maxBatchers = 4
)

type storeReq struct {
	msgs []*nats.Msg
	done chan storeRes
}

type storeRes struct {
	last uint64 // stream sequence of the request's last message
	err  error
}

// store stores msgs (at most maxAtomicBatch) in one atomic batch, possibly
// with other sends' messages, and returns the sequence of the last.
func (s *Service) store(ctx context.Context, st *queueState, msgs []*nats.Msg) (uint64, error) {
	req := &storeReq{msgs: msgs, done: make(chan storeRes, 1)}
	stopping := s.life.Stopping()
	// Enqueue under the lock, so that a batcher deciding to end (under the
	// lock, when nothing is queued) cannot miss this request.
	st.batchMu.Lock()
	select {
	case <-stopping:
		st.batchMu.Unlock()
		return 0, s.stoppedErr(st)
	default:
	}
	if st.batchers == 0 {
		for range maxBatchers {
			if !s.life.Go(func() { s.batcher(st) }) {
				break
			}
			st.batchers++
		}
		if st.batchers == 0 {
			st.batchMu.Unlock()
			return 0, s.stoppedErr(st)
		}
	}
	select {
	case st.sends <- req:
		st.batchMu.Unlock()
	default:
		// Full: the batchers are busy and will not end; wait for room.
		st.batchMu.Unlock()
		select {
		case st.sends <- req:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-stopping:
			return 0, s.stoppedErr(st)
		}
	}
	select {
	case res := <-req.done:
		return res.last, res.err
	case <-ctx.Done():
		// The batch may still be stored: the caller only learns that the
		// send did not complete.
		return 0, ctx.Err()
	case <-s.life.Stopped():
		// Every batcher has returned, answering what it took: a request
		// left unanswered was put in the channel after the last one ended.
		select {
		case res := <-req.done:
			return res.last, res.err
		default:
			return 0, s.stoppedErr(st)
		}
	}
}

func (s *Service) stoppedErr(st *queueState) error {
	return fmt.Errorf("queue: send to %s: the service is %w", st.info.Name, service.ErrStopped)
}

func (s *Service) batcher(st *queueState) {
	idle := time.NewTimer(batcherIdle)
	defer idle.Stop()
	stopping := s.life.Stopping()
	// end ends the batcher if nothing is queued: when idle, or when the
	// service stops (after storing what was sent before).
	end := func() bool {
		st.batchMu.Lock()
		defer st.batchMu.Unlock()
		if len(st.sends) > 0 {
			return false
		}
		st.batchers--
		return true
	}
	var next *storeReq
	for {
		if next == nil {
			select {
			case next = <-st.sends:
			case <-stopping:
				if end() {
					return
				}
				continue
			case <-idle.C:
				if end() {
					return
				}
				idle.Reset(batcherIdle)
				continue
			}
		}
		batch := []*storeReq{next}
		n := len(next.msgs)
		next = nil
	gather:
		for n < maxAtomicBatch {
			select {
			case r := <-st.sends:
				if n+len(r.msgs) > maxAtomicBatch {
					next = r
					break gather
				}
				batch = append(batch, r)
				n += len(r.msgs)
			default:
				break gather
			}
		}
		if n == len(batch) {
			s.storeSingles(batch)
		} else {
			s.storeAtomic(batch, n)
		}
		idle.Reset(batcherIdle)
	}
}

// storeAtomic stores the requests' messages as one atomic batch and hands
// each request the sequence of its own last message.
func (s *Service) storeAtomic(batch []*storeReq, n int) {
	msgs := make([]*nats.Msg, 0, n)
	for _, r := range batch {
		msgs = append(msgs, r.msgs...)
	}
	ctx, cancel := context.WithTimeout(s.life.Context(), 30*time.Second)
	last, err := s.publishAtomic(ctx, msgs)
	cancel()
	for i := len(batch) - 1; i >= 0; i-- {
		batch[i].done <- storeRes{last: last, err: err}
		last -= uint64(len(batch[i].msgs))
	}
}

// storeSingles stores requests of one message each as separate messages,
// pipelined: an atomic batch costs the server a staging store per batch,
// more than a few single messages do.
func (s *Service) storeSingles(batch []*storeReq) {
	futs := make([]jetstream.PubAckFuture, len(batch))
	errs := make([]error, len(batch))
	for i, r := range batch {
		futs[i], errs[i] = s.js.PublishMsgAsync(r.msgs[0])
	}
	timeout := time.After(30 * time.Second)
	hard := s.life.Context().Done()
	for i, r := range batch {
		if errs[i] != nil {
			r.done <- storeRes{err: errs[i]}
			continue
		}
		select {
		case ack := <-futs[i].Ok():
			r.done <- storeRes{last: ack.Sequence}
		case err := <-futs[i].Err():
			r.done <- storeRes{err: err}
		case <-timeout:
			r.done <- storeRes{err: context.DeadlineExceeded}
		case <-hard:
			r.done <- storeRes{err: fmt.Errorf("queue: the service stopped before the store was acknowledged: %w", context.Canceled)}
		}
	}
}
