package host

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/internal/hub"
)

// batchAssembler makes a hub partition's batches from the records its
// reader delivers, as Event Hubs does: a batch holds at most maxSize
// events, and while fewer than minSize are at hand it waits up to maxWait
// for more. A corrupt record ends the batch before it and is handed out
// on its own once every event before it has been.
type batchAssembler struct {
	reads   <-chan readResult
	maxSize int
	minSize int
	maxWait time.Duration

	buf     []hub.StoredEvent       // read, not yet handed out
	corrupt *hub.CorruptRecordError // read after buf's events
}

func newBatchAssembler(reads <-chan readResult, t HubTrigger) *batchAssembler {
	return &batchAssembler{reads: reads, maxSize: t.MaxBatchSize, minSize: t.MinBatchSize, maxWait: t.MaxWait}
}

// empty reports whether no event is at hand.
func (a *batchAssembler) empty() bool { return len(a.buf) == 0 }

// readsWaiting reports whether records were read that add has not taken.
func (a *batchAssembler) readsWaiting() bool { return len(a.reads) > 0 }

// add takes in one read; a failed read returns its error.
func (a *batchAssembler) add(rr readResult) error {
	switch {
	case rr.err != nil:
		return rr.err
	case rr.corrupt != nil:
		a.corrupt = rr.corrupt
	default:
		a.buf = append(a.buf, rr.events...)
	}
	return nil
}

// takeCorrupt returns the corrupt record that comes next, once every event
// before it was handed out, and forgets it; otherwise nil.
func (a *batchAssembler) takeCorrupt() *hub.CorruptRecordError {
	if len(a.buf) > 0 || a.corrupt == nil {
		return nil
	}
	ce := a.corrupt
	a.corrupt = nil
	return ce
}

// fill takes the records already read, without waiting, until a batch is
// full or a corrupt record ends it.
func (a *batchAssembler) fill() error {
	for a.corrupt == nil && len(a.buf) < a.maxSize {
		select {
		case rr := <-a.reads:
			if err := a.add(rr); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// short reports whether the batch at hand may still grow towards minSize.
func (a *batchAssembler) short() bool { return a.corrupt == nil && len(a.buf) < a.minSize }

// waitMin waits while the batch at hand is short, for at most maxWait,
// taking in what is read meanwhile. It reports false when it had to wait
// and ctx ended or stop was closed: the batch is not to be invoked now.
func (a *batchAssembler) waitMin(ctx context.Context, stop <-chan struct{}) (bool, error) {
	if !a.short() {
		return true, nil
	}
	timer := time.NewTimer(a.maxWait)
	defer timer.Stop()
	for a.short() {
		select {
		case rr := <-a.reads:
			if err := a.add(rr); err != nil {
				return false, err
			}
		case <-timer.C:
			return live(ctx, stop), nil
		case <-ctx.Done():
			return false, nil
		case <-stop:
			return false, nil
		}
	}
	return live(ctx, stop), nil
}

// live reports whether ctx goes on and stop is open.
func live(ctx context.Context, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return false
	default:
		return ctx.Err() == nil
	}
}

// next hands out the next batch: the first events at hand, at most
// maxSize. It must not be empty.
func (a *batchAssembler) next() []hub.StoredEvent {
	n := min(len(a.buf), a.maxSize)
	batch := a.buf[:n:n]
	a.buf = a.buf[n:]
	return batch
}
