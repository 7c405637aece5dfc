package host

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/lease"
)

// scriptedReader returns its reads in turn, then blocks until ctx ends.
type scriptedReader struct {
	reads []readResult
	calls int
}

func (r *scriptedReader) Next(ctx context.Context) ([]hub.StoredEvent, error) {
	r.calls++
	if len(r.reads) == 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	rr := r.reads[0]
	r.reads = r.reads[1:]
	if rr.corrupt != nil {
		return nil, rr.corrupt
	}
	return rr.events, rr.err
}

func TestReadAheadDeliversReadsInOrderAndEndsAtAFailedRead(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		ce := &hub.CorruptRecordError{Sequence: 7}
		r := &scriptedReader{reads: []readResult{record(1, 2), {corrupt: ce}, record(3, 3), {err: boom}, record(4, 4)}}
		ra := startReadAhead(t.Context(), r)
		require.Equal(t, []int64{1, 2}, sequences((<-ra.results).events))
		require.Same(t, ce, (<-ra.results).corrupt, "a corrupt record is not a failed read")
		require.Equal(t, []int64{3}, sequences((<-ra.results).events))
		require.ErrorIs(t, (<-ra.results).err, boom)
		ra.wait()
		require.Equal(t, 4, r.calls, "nothing is read after a failed read")
		require.Empty(t, ra.results)
	})
}

func TestReadAheadReadsAFewAheadAndStopsWithItsContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := &scriptedReader{}
		for i := range int64(10) {
			r.reads = append(r.reads, record(i, i))
		}
		ctx, cancel := context.WithCancel(t.Context())
		ra := startReadAhead(ctx, r)
		synctest.Wait()
		require.Len(t, ra.results, cap(ra.results), "reads wait for the batches")
		require.Equal(t, cap(ra.results)+1, r.calls, "one more read waits to be delivered")
		cancel()
		ra.wait()
	})
}

// TestPartitionLeaseEndingDuringTheMinBatchWaitEndsTheRun is about a run
// that kept spinning, never returning, when its lease ended while a short
// batch waited for MinBatchSize: it now returns as an idle one does, and
// a released lease's finished batches are checkpointed first.
func TestPartitionLeaseEndingDuringTheMinBatchWaitEndsTheRun(t *testing.T) {
	t.Parallel()
	for _, cause := range []error{lease.ErrLost, lease.ErrReleased} {
		t.Run(cause.Error(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var written []int64
				cpw := &checkpointer{write: func(_ context.Context, pos int64, rev uint64) (uint64, error) {
					written = append(written, pos)
					return rev + 1, nil
				}, latest: 10, pending: 1}
				batches, _ := assembler(5, 10, time.Hour, record(11, 11))
				start := time.Now()
				lctx, cancel := context.WithCancelCause(t.Context())
				time.AfterFunc(time.Minute, func() { cancel(cause) })
				pr := &partitionRun{h: &Host{}, f: &function{pause: newPauseSwitch()}, lctx: lctx, ctx: lctx,
					log: slog.New(slog.NewTextHandler(io.Discard, nil)), batches: batches, cpw: cpw}

				require.NoError(t, pr.run(), "nothing failed: runUnit sees the lease ended")
				require.Equal(t, time.Minute, time.Since(start), "ended when the lease did")
				if cause == lease.ErrReleased {
					require.Equal(t, []int64{10}, written, "a released partition checkpoints what finished")
				} else {
					require.Empty(t, written, "a lost partition writes nothing more")
				}
			})
		})
	}
}
