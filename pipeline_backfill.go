package sluice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// A partial backfill reads rows of a source's table again, as they are
// now, and stages them as change sets among the stream's, so every
// destination gets them (a destination created after the pipeline, or
// one whose rows were damaged). The request is kept in a KV bucket that
// the instance reading the source watches; it runs there, between the
// stream's change sets, and its progress is kept beside the request, so
// another instance taking the source over after a crash starts it again.

// backfillBucket holds each pipeline's latest backfill, by pipeline name.
const backfillBucket = "sluice-pipeline-backfills"

// PipelineBackfill is a pipeline's latest backfill and where it is.
type PipelineBackfill struct {
	pipeline.BackfillRequest
	// State: pending (not started yet), running, done or failed (Error
	// says why).
	State     string    `json:"state"`
	Rows      int64     `json:"rows"`
	Requested time.Time `json:"requested"`
	Finished  time.Time `json:"finished,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// Backfill states.
const (
	backfillPending = "pending"
	backfillRunning = "running"
	backfillDone    = "done"
	backfillFailed  = "failed"
)

// openBackfills opens the bucket of backfill requests.
func (a *App) openBackfills(ctx context.Context) error {
	kv, err := a.eng.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: backfillBucket, History: 1,
		Storage: jetstream.FileStorage, Replicas: a.eng.Replicas()})
	if err != nil {
		return fmt.Errorf("sluice: open the backfills bucket: %w", err)
	}
	a.backfills = kv
	return nil
}

func (a *App) backfillKV(context.Context) (jetstream.KeyValue, error) {
	if a.backfills == nil {
		return nil, errors.New("sluice: the backfills bucket is not open")
	}
	return a.backfills, nil
}

// BackfillPipeline asks a pipeline's source to read the rows of one of its
// tables again (those where selects; all when empty) and stage them as
// change sets, which every destination applies as upserts. The instance
// reading the source runs it, between the stream's change sets; the
// stream goes on meanwhile, so destinations end equal to the source. One
// backfill runs at a time per pipeline. It returns the request as stored;
// PipelineStatus shows its progress.
func (a *App) BackfillPipeline(ctx context.Context, name string, req pipeline.BackfillRequest) (PipelineBackfill, error) {
	if err := a.running(); err != nil {
		return PipelineBackfill{}, err
	}
	p, err := a.pipelineByName(name)
	if err != nil {
		return PipelineBackfill{}, err
	}
	if _, ok := p.cfg.source.(pipeline.Backfiller); !ok {
		return PipelineBackfill{}, fmt.Errorf("%w %s: its source cannot backfill (PostgreSQL and SQL sources can)", errPipelineRequest, name)
	}
	if req.Table == "" {
		return PipelineBackfill{}, fmt.Errorf("%w %s: give the table to backfill", errPipelineRequest, name)
	}
	kv, err := a.backfillKV(ctx)
	if err != nil {
		return PipelineBackfill{}, err
	}
	bf := PipelineBackfill{BackfillRequest: req, State: backfillPending, Requested: time.Now().UTC()}
	data, _ := json.Marshal(bf)
	entry, err := kv.Get(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err = kv.Create(ctx, name, data)
	case err != nil:
	default:
		var cur PipelineBackfill
		if json.Unmarshal(entry.Value(), &cur) == nil && (cur.State == backfillPending || cur.State == backfillRunning) {
			return cur, &pipelineExists{fmt.Sprintf("sluice: pipeline %s: a backfill of %s is %s (%d rows so far); wait until it ends", name, cur.Table, cur.State, cur.Rows)}
		}
		_, err = kv.Update(ctx, name, data, entry.Revision())
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return PipelineBackfill{}, &pipelineExists{fmt.Sprintf("sluice: pipeline %s: another backfill was asked for at the same moment", name)}
		}
		return PipelineBackfill{}, fmt.Errorf("sluice: pipeline %s: store the backfill: %w", name, err)
	}
	return bf, nil
}

// backfillOf reads a pipeline's latest backfill (nil: none).
func (a *App) backfillOf(ctx context.Context, name string) (*PipelineBackfill, error) {
	kv, err := a.backfillKV(ctx)
	if err != nil {
		return nil, err
	}
	entry, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var bf PipelineBackfill
	if err := json.Unmarshal(entry.Value(), &bf); err != nil {
		return nil, fmt.Errorf("sluice: pipeline %s: its backfill's record: %w", name, err)
	}
	return &bf, nil
}

// serveBackfills runs the pipeline's backfills while this instance reads
// its source (until ctx ends): a pending one, or a running one that the
// instance reading before could not finish.
func (p *pipelineRun) serveBackfills(ctx context.Context) {
	bfr, ok := p.cfg.source.(pipeline.Backfiller)
	if !ok {
		return
	}
	kv, err := p.app.backfillKV(ctx)
	if err != nil {
		p.app.log.Error("pipeline: backfills cannot be served", "pipeline", p.name, "err", err)
		return
	}
	w, err := kv.Watch(ctx, p.name)
	if err != nil {
		p.app.log.Error("pipeline: backfills cannot be served", "pipeline", p.name, "err", err)
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case entry, ok := <-w.Updates():
			if !ok {
				return
			}
			if entry == nil || entry.Operation() != jetstream.KeyValuePut {
				continue
			}
			var bf PipelineBackfill
			if json.Unmarshal(entry.Value(), &bf) != nil || (bf.State != backfillPending && bf.State != backfillRunning) {
				continue
			}
			p.runBackfill(ctx, kv, bfr, bf, entry.Revision())
		}
	}
}

// runBackfill runs one backfill, keeping its progress in its record.
func (p *pipelineRun) runBackfill(ctx context.Context, kv jetstream.KeyValue, bfr pipeline.Backfiller, bf PipelineBackfill, rev uint64) {
	log := p.app.log.With("pipeline", p.name, "table", bf.Table)
	put := func(bf PipelineBackfill) bool {
		data, _ := json.Marshal(bf)
		r, err := kv.Update(context.WithoutCancel(ctx), p.name, data, rev)
		if err != nil {
			log.Warn("pipeline: record a backfill's progress", "err", err)
			return false
		}
		rev = r
		return true
	}
	bf.State, bf.Rows, bf.Error = backfillRunning, 0, ""
	if !put(bf) {
		return // another request replaced it: the watch brings it
	}
	log.Info("pipeline: backfill started", "where", bf.Where)
	last := time.Now()
	rows, err := bfr.Backfill(ctx, bf.BackfillRequest, p.stageBackfill, func(n int64) {
		if time.Since(last) >= time.Second {
			bf.Rows, last = n, time.Now()
			put(bf)
		}
	})
	if ctx.Err() != nil {
		return // the source moved to another instance: it starts it again
	}
	bf.Rows, bf.Finished = rows, time.Now().UTC()
	if err != nil {
		bf.State, bf.Error = backfillFailed, err.Error()
		log.Error("pipeline: backfill failed", "rows", rows, "err", err)
	} else {
		bf.State = backfillDone
		log.Info("pipeline: backfill done", "rows", rows)
	}
	put(bf)
}

// stageBackfill stages a backfill's batch at the stream's current
// position: the source resumes where it was.
func (p *pipelineRun) stageBackfill(ctx context.Context, b pipeline.Batch) error {
	if len(b.Changes) == 0 {
		return nil
	}
	p.stageMu.Lock()
	defer p.stageMu.Unlock()
	p.mu.Lock()
	b.Position = p.last.Position
	p.mu.Unlock()
	b.Snapshot = true
	return p.stageLocked(ctx, b)
}

// pruneEvery is how often the instance reading a pipeline's source
// deletes the staged change sets its change log no longer holds.
const pruneEvery = 10 * time.Minute

// pruneStaged deletes the blobs of change sets that have left the change
// log (its retention dropped their events): no destination can apply or
// replay them any more. It returns how many it deleted.
func (p *pipelineRun) pruneStaged(ctx context.Context) (int, error) {
	_, parts, err := p.app.hubSvc.Describe(ctx, p.hub)
	if err != nil {
		return 0, err
	}
	var keep int64 // the first change set the log holds
	switch first, last := parts[0].FirstSequence, parts[0].LastSequence; {
	case first >= 0 && first <= last:
		ev, err := p.readEvent(ctx, first)
		if err != nil {
			return 0, err
		}
		cs, err := decodeChangeSet(ev.Body)
		if err != nil {
			return 0, err
		}
		keep = cs.Seq
	default: // the log is empty: every change set staged so far has left it
		p.mu.Lock()
		keep = p.last.Seq + 1
		p.mu.Unlock()
	}
	blobs, err := p.app.blobs.List(ctx, p.container, "changes/")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, b := range blobs {
		var seq int64
		if _, err := fmt.Sscanf(b.Name, "changes/%d.jsonl.zst", &seq); err != nil || seq >= keep {
			continue
		}
		if err := p.app.blobs.Delete(ctx, p.container, b.Name); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

// prune runs pruneStaged every pruneEvery until ctx ends.
func (p *pipelineRun) prune(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := p.pruneStaged(ctx); err != nil && ctx.Err() == nil {
			p.app.log.Warn("pipeline: delete staged change sets past the change log's retention", "pipeline", p.name, "err", err)
		} else if n > 0 {
			p.app.log.Info("pipeline: deleted staged change sets past the change log's retention", "pipeline", p.name, "change_sets", n)
		}
	}
}
