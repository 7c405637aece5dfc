package host

import (
	"context"
	"errors"
	"time"

	"github.com/sluicehq/sluice/internal/lease"
)

// errReload means the partition's checkpoint must be read again (a replay
// moved it, or another writer did).
var errReload = errors.New("reload checkpoint")

// Checkpoint writes are group-committed. While input is waiting, a
// partition writes its checkpoint once CheckpointEveryBatches batches have
// finished since the last write, or checkpointEvery has passed; when it has
// nothing more to process, it writes at once. One write is in flight at a
// time, overlapping the next invocations.
const (
	CheckpointEveryBatches = 16
	checkpointEvery        = 100 * time.Millisecond
)

// MaxUndurableBatches bounds the batches of a partition that may be
// finished but not yet covered by a durable checkpoint; past it, the
// partition waits for the write in flight.
const MaxUndurableBatches = 2 * CheckpointEveryBatches

// MaxRedeliveredBatches bounds the batches per partition that are delivered
// again after a crash: the undurable ones and the one in flight.
const MaxRedeliveredBatches = MaxUndurableBatches + 1

// checkpointer writes a partition's (or feed range's) checkpoints with at
// most one write in flight, overlapping it with the next invocations.
type checkpointer struct {
	// write stores the position pos if the checkpoint is at revision rev,
	// returning the new revision, or errReload when it was moved.
	write func(ctx context.Context, pos int64, rev uint64) (uint64, error)
	rev   uint64

	inflight chan cpResult
	covers   int       // finished batches the in-flight write makes durable
	pending  int       // finished batches after the in-flight write started
	latest   int64     // last processed sequence
	started  time.Time // when the last write started
}

type cpResult struct {
	rev uint64
	err error
}

// put records that a batch ending at seq is finished and writes or
// schedules its checkpoint.
func (c *checkpointer) put(seq int64) error {
	c.latest = seq
	c.pending++
	if c.inflight != nil {
		if c.covers+c.pending <= MaxUndurableBatches {
			select {
			case res := <-c.inflight:
				if err := c.done(res); err != nil {
					return err
				}
			default:
				return nil // covered by the next write
			}
		} else if err := c.done(<-c.inflight); err != nil {
			return err
		}
	}
	if c.pending >= CheckpointEveryBatches || time.Since(c.started) >= checkpointEvery {
		c.start()
	}
	return nil
}

// idle writes what has finished, for when the partition has nothing more
// to process right now.
func (c *checkpointer) idle() {
	if c.inflight == nil && c.pending > 0 {
		c.start()
	}
}

// ready is the in-flight write's result channel (nil when none), for
// selecting on while the partition is idle.
func (c *checkpointer) ready() <-chan cpResult { return c.inflight }

// completed handles a result received from ready and writes what finished
// meanwhile.
func (c *checkpointer) completed(res cpResult) error {
	if err := c.done(res); err != nil {
		return err
	}
	if c.pending > 0 {
		c.start()
	}
	return nil
}

func (c *checkpointer) start() {
	c.started = time.Now()
	done := make(chan cpResult, 1)
	c.inflight, c.covers, c.pending = done, c.pending, 0
	rev, pos := c.rev, c.latest
	go func() {
		// A started write is finished even during shutdown; the revision
		// check keeps it from overwriting anyone else's.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		next, err := c.write(ctx, pos, rev)
		done <- cpResult{next, err}
	}()
}

func (c *checkpointer) done(res cpResult) error {
	c.inflight, c.covers = nil, 0
	if res.err != nil {
		return res.err
	}
	c.rev = res.rev
	return nil
}

// mark writes the unit's checkpoint at once with write, given the current
// revision, after the write in flight: for a checkpoint that says more
// than a finished batch's position (the retry state of the batch after
// it). The position write stores must be at or past every finished
// batch's, which it makes durable.
func (c *checkpointer) mark(ctx context.Context, write func(ctx context.Context, rev uint64) (uint64, error)) error {
	if err := c.wait(); err != nil {
		return err
	}
	next, err := write(ctx, c.rev)
	if err != nil {
		return err
	}
	c.rev, c.pending = next, 0
	return nil
}

// wait waits for the in-flight write, writing nothing more: for when the
// lease may be lost.
func (c *checkpointer) wait() error {
	if c.inflight == nil {
		return nil
	}
	return c.done(<-c.inflight)
}

// release ends the checkpoints of a unit whose lease context ended: when
// the lease was given up to rebalance, it is still held until the unit's
// processing returns, so what finished is made durable and the next owner
// repeats nothing; when it was lost, nothing more is written.
func (c *checkpointer) release(lctx context.Context) error {
	if errors.Is(context.Cause(lctx), lease.ErrReleased) {
		return c.flush()
	}
	return c.wait()
}

// releaseAfter is release for when a batch ending at pos finished after
// the lease context ended: a released unit checkpoints it too.
func (c *checkpointer) releaseAfter(lctx context.Context, pos int64) error {
	if errors.Is(context.Cause(lctx), lease.ErrReleased) {
		c.latest = pos
		c.pending++
	}
	if err := c.release(lctx); err != nil {
		return err
	}
	return lctx.Err()
}

// flush makes every finished batch's checkpoint durable.
func (c *checkpointer) flush() error {
	if err := c.wait(); err != nil {
		return err
	}
	if c.pending == 0 {
		return nil
	}
	c.start()
	return c.wait()
}
