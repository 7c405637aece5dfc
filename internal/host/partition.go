package host

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/hub"
)

// consume reads a partition from its checkpoint and processes it. It
// returns errReload when the checkpoint moved, nil on a graceful stop, and
// an error when reading fails.
func (h *Host) consume(lctx context.Context, f *function, p int, log *slog.Logger) error {
	if paused, resumed := f.pause.state(); paused {
		return h.awaitResume(lctx, resumed, log)
	}
	ctx, cancel := context.WithCancel(lctx)
	defer cancel()
	cp, rev, err := h.cfg.Hubs.GetCheckpoint(ctx, f.Trigger.Hub, f.Trigger.Group, p)
	if err != nil {
		return err
	}
	r, err := h.openPartition(ctx, f.Trigger, p, cp, rev, log)
	if errors.Is(err, hub.ErrNotFound) {
		return h.partitionMissing(lctx, f, p, log)
	}
	if err != nil {
		return err
	}
	reads := startReadAhead(ctx, r)
	defer func() {
		cancel()
		reads.wait()
		r.Close()
	}()
	cpw := h.partitionCheckpointer(f.Trigger, p, rev)
	pr := &partitionRun{h: h, f: f, p: p, lctx: lctx, ctx: ctx, log: log, cpw: cpw,
		memo: h.partitionRetryMemo(f.Trigger, p, cp, cpw), batches: newBatchAssembler(reads.results, f.Trigger)}
	err = pr.run()
	if errors.Is(err, hub.ErrNotFound) {
		return h.partitionMissing(lctx, f, p, log)
	}
	return err
}

// hubGonePoll is how often a function whose hub was deleted looks for a
// hub of the name again.
const hubGonePoll = 5 * time.Second

// partitionMissing handles a partition the engine no longer has. When the
// hub is still defined, its storage was lost: the partition is recreated
// (hub.Service.RestorePartition) and reading goes on. When the hub was
// deleted, processing waits, said once, until a hub of the name exists
// again. It returns errReload to read again, nil when the host stops.
func (h *Host) partitionMissing(lctx context.Context, f *function, p int, log *slog.Logger) error {
	said := false
	for {
		ctx, cancel := context.WithTimeout(lctx, 10*time.Second)
		_, err := h.cfg.Hubs.RestorePartition(ctx, f.Trigger.Hub, p, 0)
		cancel()
		if err == nil {
			if said {
				log.Info("hub exists again; processing resumes")
			}
			return errReload
		}
		if !errors.Is(err, hub.ErrNotFound) {
			return err
		}
		if !said {
			log.Error("the function's hub was deleted while it ran: the partition waits for a hub of the name to be created again "+
				"(delete the function, or create the hub)", "err", err)
			said = true
		}
		select {
		case <-time.After(hubGonePoll):
		case <-lctx.Done():
			return lctx.Err()
		case <-h.soft:
			return nil
		}
	}
}

// awaitResume waits while the group is paused. It returns errReload when
// the group resumes (a replay may have moved the checkpoint), the lease's
// end, or nil when the host stops.
func (h *Host) awaitResume(lctx context.Context, resumed <-chan struct{}, log *slog.Logger) error {
	log.Info("consumer group paused")
	select {
	case <-resumed:
		// The pause state changes only from paused to not paused.
		log.Info("consumer group resumed")
		return errReload
	case <-lctx.Done():
		return lctx.Err()
	case <-h.soft:
		return nil
	}
}

// openPartition opens a reader after the checkpoint cp (at revision rev,
// 0 when there is none yet: from the trigger's Start).
func (h *Host) openPartition(ctx context.Context, t HubTrigger, p int, cp hub.Checkpoint, rev uint64, log *slog.Logger) (*hub.Reader, error) {
	start := t.Start
	if rev != 0 {
		start = hub.Start{Kind: hub.StartAfter, After: cp.Sequence}
	}
	r, err := h.cfg.Hubs.OpenReader(ctx, t.Hub, p, start)
	if err != nil {
		return nil, err
	}
	r.OnGap = func(want, got uint64) {
		log.Warn("events expired before this group processed them", "from_record", want, "to_record", got)
	}
	return r, nil
}

// partitionCheckpointer writes partition p's checkpoints, from revision rev.
func (h *Host) partitionCheckpointer(t HubTrigger, p int, rev uint64) *checkpointer {
	return &checkpointer{rev: rev, write: func(ctx context.Context, seq int64, rev uint64) (uint64, error) {
		return h.putCheckpoint(ctx, t, p, hub.Checkpoint{Sequence: seq}, rev)
	}}
}

// partitionRetryMemo keeps the retry state of partition p's failing batch
// in its checkpoint; cp is the checkpoint read when the partition was
// opened.
func (h *Host) partitionRetryMemo(t HubTrigger, p int, cp hub.Checkpoint, cpw *checkpointer) *retryMemo {
	return &retryMemo{found: cp.Retry, save: func(ctx context.Context, st hub.RetryState) error {
		return cpw.mark(ctx, func(ctx context.Context, rev uint64) (uint64, error) {
			return h.putCheckpoint(ctx, t, p, hub.Checkpoint{Sequence: st.First - 1, Retry: &st}, rev)
		})
	}}
}

// putCheckpoint writes cp, stamped with this instance and the time, if the
// checkpoint is at revision rev; errReload when it moved.
func (h *Host) putCheckpoint(ctx context.Context, t HubTrigger, p int, cp hub.Checkpoint, rev uint64) (uint64, error) {
	cp.Owner, cp.Updated = h.cfg.InstanceID, time.Now().UTC()
	next, err := h.cfg.Hubs.PutCheckpoint(ctx, t.Hub, t.Group, p, cp, rev)
	if errors.Is(err, hub.ErrCheckpointMoved) {
		return 0, errReload
	}
	return next, err
}

type readResult struct {
	events  []hub.StoredEvent
	corrupt *hub.CorruptRecordError
	err     error
}

// recordReader reads a partition's records (a *hub.Reader).
type recordReader interface {
	Next(ctx context.Context) ([]hub.StoredEvent, error)
}

// readAhead reads a partition's records on a goroutine of its own, a few
// ahead of the batch being processed, until ctx ends or a read fails.
type readAhead struct {
	results chan readResult
	reader  sync.WaitGroup
}

func startReadAhead(ctx context.Context, r recordReader) *readAhead {
	ra := &readAhead{results: make(chan readResult, 4)}
	ra.reader.Go(func() { ra.read(ctx, r) })
	return ra
}

func (ra *readAhead) read(ctx context.Context, r recordReader) {
	for {
		evs, err := r.Next(ctx)
		var res readResult
		if ce, ok := errors.AsType[*hub.CorruptRecordError](err); ok {
			res.corrupt = ce
		} else {
			res.events, res.err = evs, err
		}
		select {
		case ra.results <- res:
		case <-ctx.Done():
			return
		}
		if res.err != nil {
			return
		}
	}
}

// wait waits for the reading goroutine to return (once ctx has ended or a
// read failed).
func (ra *readAhead) wait() { ra.reader.Wait() }

// partitionRun is one pass of consume over an owned partition: from its
// checkpoint until the lease ends, the host stops, the group pauses or
// the checkpoint must be read again. Its steps report done when consume
// returns, with what it returns.
type partitionRun struct {
	h    *Host
	f    *function
	p    int
	lctx context.Context // the lease's
	ctx  context.Context // ends with the lease or when consume returns
	log  *slog.Logger

	batches *batchAssembler
	cpw     *checkpointer
	memo    *retryMemo
}

func (pr *partitionRun) run() error {
	for {
		paused, pauseCh := pr.f.pause.state()
		if paused {
			// Let the finished batches' checkpoint land, then wait for the
			// group to resume and re-read its (possibly moved) checkpoint.
			if err := pr.cpw.flush(); err != nil {
				return err
			}
			return errReload
		}
		if pr.h.stopping() {
			return pr.cpw.flush()
		}
		var done bool
		var err error
		if ce := pr.batches.takeCorrupt(); ce != nil {
			done, err = pr.skipCorrupt(ce)
		} else if pr.batches.empty() {
			done, err = pr.awaitRead(pauseCh)
		} else {
			done, err = pr.processBatch(pauseCh)
		}
		if done {
			return err
		}
	}
}

// skipCorrupt dead-letters a record that cannot be decoded and
// checkpoints past it.
func (pr *partitionRun) skipCorrupt(ce *hub.CorruptRecordError) (done bool, err error) {
	if !pr.h.deadLetterRecord(pr.ctx, pr.f, pr.p, ce, pr.log) {
		return true, pr.ctx.Err()
	}
	last, _ := hub.SplitSequence(ce.Sequence)
	err = pr.cpw.put(hub.SequenceOf(last, hub.MaxEventsPerRecord-1))
	return err != nil, err
}

// awaitRead waits for the next read while no event is at hand, writing
// the finished batches' checkpoint meanwhile. It also returns when a
// checkpoint write ends, the host stops or the group's pause state
// changes (pauseCh), for run to look again.
func (pr *partitionRun) awaitRead(pauseCh <-chan struct{}) (done bool, err error) {
	if !pr.batches.readsWaiting() {
		pr.cpw.idle()
	}
	select {
	case rr := <-pr.batches.reads:
		err = pr.batches.add(rr)
	case res := <-pr.cpw.ready():
		err = pr.cpw.completed(res)
	case <-pr.ctx.Done():
		return true, pr.cpw.release(pr.lctx)
	case <-pr.h.soft:
	case <-pauseCh:
	}
	return err != nil, err
}

// processBatch assembles the next batch from the events at hand and what
// else is read, then runs the function on it and checkpoints it.
func (pr *partitionRun) processBatch(pauseCh <-chan struct{}) (done bool, err error) {
	if err := pr.batches.fill(); err != nil {
		return true, err
	}
	ready, err := pr.batches.waitMin(pr.ctx, pr.h.soft)
	if err != nil {
		return true, err
	}
	if !ready {
		if pr.ctx.Err() != nil {
			// The lease ended while the batch waited: as when idle.
			return true, pr.cpw.release(pr.lctx)
		}
		return false, nil // the host is stopping: run flushes
	}
	permit, ok, err := pr.h.hold(pr.ctx, pr.lctx, pr.f.breaker, pr.cpw, pauseCh)
	if !ok {
		return true, err
	}
	batch := pr.batches.next()
	last := batch[len(batch)-1].Sequence
	if !invokeBatch(pr.h, pr.ctx, pr.f.run, batch, permit, pr.log, pr.memo) {
		// Aborted (lease lost or forced stop): no checkpoint.
		_ = pr.cpw.wait()
		return true, pr.ctx.Err()
	}
	if pr.lctx.Err() != nil {
		// The lease ended while the batch ran, which finished anyway.
		return true, pr.cpw.releaseAfter(pr.lctx, last)
	}
	err = pr.cpw.put(last)
	return err != nil, err
}
