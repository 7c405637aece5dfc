package host

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/hub"
)

// record is a read of the events with sequences from..to.
func record(from, to int64) readResult {
	var rr readResult
	for s := from; s <= to; s++ {
		rr.events = append(rr.events, hub.StoredEvent{Sequence: s})
	}
	return rr
}

func sequences(evs []hub.StoredEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Sequence
	}
	return out
}

// assembler returns a batchAssembler over a channel holding reads.
func assembler(minSize, maxSize int, maxWait time.Duration, reads ...readResult) (*batchAssembler, chan readResult) {
	ch := make(chan readResult, 4)
	for _, rr := range reads {
		ch <- rr
	}
	return newBatchAssembler(ch, HubTrigger{MinBatchSize: minSize, MaxBatchSize: maxSize, MaxWait: maxWait}), ch
}

func TestBatchAssemblerFillsUpToMaxBatchSizeWithoutWaiting(t *testing.T) {
	t.Parallel()
	a, ch := assembler(1, 5, time.Minute, record(1, 3), record(4, 6), record(7, 7))
	require.True(t, a.empty())
	require.NoError(t, a.fill())
	require.False(t, a.empty())
	require.Len(t, ch, 1, "a full batch takes no more reads")
	require.Equal(t, []int64{1, 2, 3, 4, 5}, sequences(a.next()), "a record is split at MaxBatchSize")
	require.NoError(t, a.fill())
	require.Equal(t, []int64{6, 7}, sequences(a.next()))
	require.True(t, a.empty())
	require.NoError(t, a.fill(), "nothing read: fill returns at once")
	require.True(t, a.empty())
}

func TestBatchAssemblerBatchesCannotGrowIntoTheNext(t *testing.T) {
	t.Parallel()
	a, _ := assembler(1, 2, time.Minute, record(1, 3))
	require.NoError(t, a.fill())
	first := a.next()
	_ = append(first, hub.StoredEvent{Sequence: 99}) // a handler may append to its batch
	require.Equal(t, []int64{3}, sequences(a.next()), "the events after a batch are not overwritten")
}

func TestBatchAssemblerHandsOutACorruptRecordAfterTheEventsBeforeIt(t *testing.T) {
	t.Parallel()
	ce := &hub.CorruptRecordError{Sequence: 100}
	a, ch := assembler(1, 10, time.Minute, record(1, 2), readResult{corrupt: ce}, record(3, 3))
	require.NoError(t, a.fill())
	require.Len(t, ch, 1, "a corrupt record ends the batch")
	require.Nil(t, a.takeCorrupt(), "not before the events read before it")
	require.Equal(t, []int64{1, 2}, sequences(a.next()))
	require.Same(t, ce, a.takeCorrupt())
	require.Nil(t, a.takeCorrupt(), "handed out once")
	require.NoError(t, a.fill())
	require.Equal(t, []int64{3}, sequences(a.next()))
}

func TestBatchAssemblerReturnsAFailedRead(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	a, _ := assembler(1, 10, time.Minute, record(1, 1), readResult{err: boom})
	require.ErrorIs(t, a.fill(), boom)
	b, _ := assembler(5, 10, time.Minute, readResult{err: boom})
	_, err := b.waitMin(t.Context(), nil)
	require.ErrorIs(t, err, boom)
}

func TestBatchAssemblerWaitsUpToMaxWaitForMinBatchSize(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a, ch := assembler(10, 20, time.Minute, record(1, 3))
		require.NoError(t, a.fill())
		start := time.Now()
		go func() {
			time.Sleep(20 * time.Second)
			ch <- record(4, 5)
		}()
		ok, err := a.waitMin(t.Context(), nil)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, time.Minute, time.Since(start), "a short batch waits MaxWait")
		require.Equal(t, []int64{1, 2, 3, 4, 5}, sequences(a.next()), "with what was read meanwhile")
	})
}

func TestBatchAssemblerStopsWaitingAtMinBatchSize(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a, ch := assembler(4, 20, time.Hour, record(1, 2))
		require.NoError(t, a.fill())
		start := time.Now()
		go func() {
			time.Sleep(time.Second)
			ch <- record(3, 3)
			time.Sleep(time.Second)
			ch <- record(4, 6)
		}()
		ok, err := a.waitMin(t.Context(), nil)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 2*time.Second, time.Since(start), "no wait past MinBatchSize")
		require.Equal(t, []int64{1, 2, 3, 4, 5, 6}, sequences(a.next()))
	})
}

func TestBatchAssemblerDoesNotWaitWithoutNeed(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		full, _ := assembler(2, 5, time.Hour, record(1, 2))
		require.NoError(t, full.fill())
		ok, err := full.waitMin(t.Context(), nil)
		require.NoError(t, err)
		require.True(t, ok)

		cut, _ := assembler(5, 10, time.Hour, record(1, 1), readResult{corrupt: &hub.CorruptRecordError{}})
		require.NoError(t, cut.fill())
		ok, err = cut.waitMin(t.Context(), nil)
		require.NoError(t, err)
		require.True(t, ok, "a batch a corrupt record ends does not grow")
		require.Zero(t, time.Since(start))
	})
}

func TestBatchAssemblerWaitEndsWithStopOrContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a, _ := assembler(5, 10, time.Hour, record(1, 1))
		require.NoError(t, a.fill())
		stop := make(chan struct{})
		time.AfterFunc(time.Second, func() { close(stop) })
		ok, err := a.waitMin(t.Context(), stop)
		require.NoError(t, err)
		require.False(t, ok, "stopped: the batch is not invoked now")
		require.False(t, a.empty(), "its events stay at hand")

		b, _ := assembler(5, 10, time.Hour, record(1, 1))
		require.NoError(t, b.fill())
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		ok, err = b.waitMin(ctx, nil)
		require.NoError(t, err)
		require.False(t, ok, "ctx ended: the batch is not invoked now")
	})
}
