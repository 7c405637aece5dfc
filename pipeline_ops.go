package sluice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// PipelineReplay says where a replay moves a destination: to the first
// change set staged at or after Time, or to change set ChangeSet. Exactly
// one is set.
type PipelineReplay struct {
	Time      time.Time
	ChangeSet int64
	// Grace is how long in-flight change sets get to finish before the
	// destination moves. Default 2s.
	Grace time.Duration
}

// errPipelineRequest marks a caller's mistake in an operation on a
// pipeline.
var errPipelineRequest = errors.New("sluice: pipeline")

// pipelineNotFound: no such pipeline or destination.
type pipelineNotFound struct{ msg string }

func (e *pipelineNotFound) Error() string { return e.msg }

// resetter is a sink that records its own position (an SQL destination):
// a replay moves it back so the change sets after seq apply again.
type resetter interface {
	Reset(ctx context.Context, seq int64) error
}

// ReplayPipeline moves one destination of a pipeline back, so that it
// applies the change log again from a point: the destination pauses on
// every instance, its in-flight change sets finish, its position moves
// (and the position a SQL destination records beside its rows), and it
// resumes. Change sets are applied again idempotently; the other
// destinations are untouched. It returns the change set the destination
// goes on from.
func (a *App) ReplayPipeline(ctx context.Context, name, destination string, to PipelineReplay) (int64, error) {
	if err := a.running(); err != nil {
		return 0, err
	}
	p, d, err := a.pipelineDestination(name, destination)
	if err != nil {
		return 0, err
	}
	if to.Time.IsZero() == (to.ChangeSet == 0) {
		return 0, fmt.Errorf("%w: give a time or a change set, not both", errPipelineRequest)
	}
	if to.ChangeSet < 0 {
		return 0, fmt.Errorf("%w: change set %d: they are numbered from 1", errPipelineRequest, to.ChangeSet)
	}
	target := hub.ReplayTarget{Time: to.Time}
	if to.ChangeSet > 0 {
		seq, err := p.eventOf(ctx, to.ChangeSet)
		if err != nil {
			return 0, err
		}
		target = hub.ReplayTarget{Sequences: map[int]int64{0: seq}}
	}
	from := int64(0)
	grace := to.Grace
	if grace == 0 {
		grace = 2 * time.Second
	}
	_, err = a.hubSvc.ReplayWith(ctx, p.hub, destination, target, grace, func(ctx context.Context, newPos map[int]int64) error {
		cs, ok, err := p.changeSetAfter(ctx, newPos[0])
		if err != nil || !ok {
			return err
		}
		from = cs.Seq
		if r, ok := d.sink.(resetter); ok {
			return r.Reset(ctx, cs.Seq-1)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sluice: replay pipeline %s, destination %s: %w", name, destination, err)
	}
	return from, nil
}

// PausePipeline stops a destination from applying change sets, on every
// instance, keeping its place; ResumePipeline lets it go on.
func (a *App) PausePipeline(ctx context.Context, name, destination, reason string) error {
	return a.setDestinationPaused(ctx, name, destination, true, reason)
}

// ResumePipeline lets a paused destination go on from where it stopped.
func (a *App) ResumePipeline(ctx context.Context, name, destination string) error {
	return a.setDestinationPaused(ctx, name, destination, false, "")
}

func (a *App) setDestinationPaused(ctx context.Context, name, destination string, paused bool, reason string) error {
	if err := a.running(); err != nil {
		return err
	}
	p, _, err := a.pipelineDestination(name, destination)
	if err != nil {
		return err
	}
	if paused && reason == "" {
		reason = "paused by an operator"
	}
	return a.hubSvc.SetGroupState(ctx, p.hub, destination, hub.GroupState{Paused: paused, Reason: reason})
}

// PipelineStatus is what a pipeline is doing.
type PipelineStatus struct {
	Name string `json:"name"`
	// Created through the API (sluice pipeline create), not declared.
	Created bool `json:"created,omitempty"`
	// StartError says why a created pipeline does not run on this
	// instance (it is tried again); its other figures are then absent.
	StartError string `json:"start_error,omitempty"`
	// Reading: this instance reads the source (one instance does).
	Reading bool `json:"reading"`
	// Staged is the newest change set: its number, source position, and
	// when it was staged; SourceError the source's latest failure on this
	// instance, empty once it reads again.
	Staged      int64     `json:"staged"`
	Position    string    `json:"position,omitempty"`
	StagedAt    time.Time `json:"staged_at,omitzero"`
	SourceError string    `json:"source_error,omitempty"`
	// SourceLag is how far the source is behind its database, for sources
	// that can tell (PostgreSQL: the slot's WAL in bytes and its flush lag
	// in seconds); absent when unknown.
	SourceLag *pipeline.SourceLag `json:"source_lag,omitempty"`
	// Backfill is the latest backfill (BackfillPipeline), if any.
	Backfill *PipelineBackfill `json:"backfill,omitempty"`
	// Destinations, in declaration order.
	Destinations []PipelineDestinationStatus `json:"destinations"`
}

// PipelineDestinationStatus is where a destination is.
type PipelineDestinationStatus struct {
	Name string `json:"name"`
	// Applied is the last change set it applied (0: none); Behind how
	// many change sets it has still to apply.
	Applied int64 `json:"applied"`
	Behind  int64 `json:"behind"`
	// LagSeconds is how long ago the oldest change set it has still to
	// apply was staged (0 when it has applied all).
	LagSeconds float64 `json:"lag_seconds"`
	// Paused by an operator or a replay, with the reason.
	Paused  bool   `json:"paused,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Breaker string `json:"breaker"`
}

// PipelineStatus returns a declared pipeline's status.
func (a *App) PipelineStatus(ctx context.Context, name string) (PipelineStatus, error) {
	if err := a.running(); err != nil {
		return PipelineStatus{}, err
	}
	p, err := a.pipelineByName(name)
	if err != nil {
		return PipelineStatus{}, err
	}
	if !p.live.Load() {
		st := PipelineStatus{Name: name, Created: p.created, StartError: "starting", Destinations: []PipelineDestinationStatus{}}
		p.mu.Lock()
		if p.startErr != nil {
			st.StartError = p.startErr.Error()
		}
		p.mu.Unlock()
		for _, d := range p.dests {
			st.Destinations = append(st.Destinations, PipelineDestinationStatus{Name: d.cfg.Name})
		}
		return st, nil
	}
	last, err := p.lastStaged(ctx)
	if err != nil {
		return PipelineStatus{}, err
	}
	st := PipelineStatus{Name: name, Created: p.created, Staged: last.Seq, Position: last.Position, StagedAt: last.Staged}
	p.mu.Lock()
	st.Reading = p.reading
	if p.lastErr != nil {
		st.SourceError = p.lastErr.Error()
	}
	p.mu.Unlock()
	if bf, err := a.backfillOf(ctx, name); err == nil {
		st.Backfill = bf
	}
	if l, ok := p.cfg.source.(pipeline.Lagger); ok {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		lag, err := l.Lag(lctx)
		cancel()
		if err == nil {
			st.SourceLag = &lag
		}
	}
	for _, d := range p.dests {
		ds := PipelineDestinationStatus{Name: d.cfg.Name}
		lags, err := a.hubSvc.GroupLag(ctx, p.hub, d.cfg.Name)
		if err != nil {
			return st, err
		}
		ds.Behind = lags[0].Events
		if ds.Behind > 0 {
			if next, ok, err := p.changeSetAfter(ctx, lags[0].Checkpoint); err == nil && ok {
				ds.LagSeconds = max(time.Since(next.Staged).Seconds(), 0)
			}
		}
		if cp := lags[0].Checkpoint; cp >= 0 {
			ev, err := p.readEvent(ctx, cp)
			if err == nil {
				if cs, err := decodeChangeSet(ev.Body); err == nil {
					ds.Applied = cs.Seq
				}
			}
		}
		if gs, err := a.hubSvc.GetGroupState(ctx, p.hub, d.cfg.Name); err == nil {
			ds.Paused, ds.Reason = gs.Paused, gs.Reason
		}
		if b, err := a.Breaker(ctx, p.functionName(d.cfg.Name)); err == nil {
			ds.Breaker = string(b.State)
		}
		st.Destinations = append(st.Destinations, ds)
	}
	return st, nil
}

func (a *App) pipelineDestination(name, destination string) (*pipelineRun, *pipelineDest, error) {
	p, err := a.pipelineByName(name)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range p.dests {
		if d.cfg.Name == destination {
			return p, d, nil
		}
	}
	names := make([]string, len(p.dests))
	for i, d := range p.dests {
		names[i] = d.cfg.Name
	}
	return nil, nil, &pipelineNotFound{fmt.Sprintf("sluice: pipeline %s has no destination %q (it has %v)", name, destination, names)}
}

// changeSetAfter reads the change set of the change-log event after
// sequence number seq; ok is false when there is none yet.
func (p *pipelineRun) changeSetAfter(ctx context.Context, seq int64) (pipeline.ChangeSet, bool, error) {
	_, parts, err := p.app.hubSvc.Describe(ctx, p.hub)
	if err != nil {
		return pipeline.ChangeSet{}, false, err
	}
	if parts[0].LastSequence <= seq {
		return pipeline.ChangeSet{}, false, nil
	}
	ev, err := p.readEvent(ctx, seq+1)
	if err != nil {
		return pipeline.ChangeSet{}, false, err
	}
	cs, err := decodeChangeSet(ev.Body)
	return cs, err == nil, err
}

// eventOf finds the change-log sequence number of change set n: change
// sets are numbered in the order of their events, so a binary search over
// the stored events finds it.
func (p *pipelineRun) eventOf(ctx context.Context, n int64) (int64, error) {
	_, parts, err := p.app.hubSvc.Describe(ctx, p.hub)
	if err != nil {
		return 0, err
	}
	lo, hi := parts[0].FirstSequence, parts[0].LastSequence
	if lo < 0 || hi < lo {
		return 0, fmt.Errorf("%w: pipeline %s has staged no change set yet", errPipelineRequest, p.name)
	}
	for lo <= hi {
		mid := lo + (hi-lo)/2
		ev, err := p.readEvent(ctx, mid)
		if err != nil {
			return 0, err
		}
		cs, err := decodeChangeSet(ev.Body)
		if err != nil {
			return 0, err
		}
		switch {
		case cs.Seq == n:
			return ev.Sequence, nil
		case cs.Seq < n:
			lo = ev.Sequence + 1
		default:
			hi = mid - 1
		}
	}
	return 0, fmt.Errorf("%w: pipeline %s: change set %d is not in the change log (it keeps change sets for its retention; see sluice pipeline status)", errPipelineRequest, p.name, n)
}

// pipelineControl serves /api/v1/pipelines.
type pipelineControl struct{ a *App }

var _ gateway.PipelineControl = pipelineControl{}

// apiErr gives the caller's mistakes their status.
func (c pipelineControl) apiErr(err error) error {
	var nf *pipelineNotFound
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nf):
		return &gateway.Error{Status: http.StatusNotFound, Msg: err.Error() + " (list them with GET /api/v1/pipelines)"}
	case errors.Is(err, errPipelineRequest):
		return &gateway.Error{Status: http.StatusBadRequest, Msg: err.Error()}
	}
	var ex *pipelineExists
	if errors.As(err, &ex) {
		return &gateway.Error{Status: http.StatusConflict, Msg: err.Error()}
	}
	return err
}

func (c pipelineControl) PipelineCreate(ctx context.Context, name string, raw json.RawMessage) (any, error) {
	spec, err := DecodePipelineSpec(raw)
	if err != nil {
		return nil, c.apiErr(err)
	}
	if err := c.a.CreatePipeline(ctx, name, spec); err != nil {
		return nil, c.apiErr(err)
	}
	st, err := c.a.PipelineStatus(ctx, name)
	return st, c.apiErr(err)
}

func (c pipelineControl) PipelineBackfill(ctx context.Context, name, table, where string) (any, error) {
	bf, err := c.a.BackfillPipeline(ctx, name, pipeline.BackfillRequest{Table: table, Where: where})
	return bf, c.apiErr(err)
}

func (c pipelineControl) PipelineDelete(ctx context.Context, name string) error {
	return c.apiErr(c.a.DeletePipeline(ctx, name))
}

func (c pipelineControl) PipelineList(ctx context.Context) (any, error) {
	out := []PipelineStatus{}
	for _, p := range c.a.pipelineList() {
		st, err := c.a.PipelineStatus(ctx, p.name)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (c pipelineControl) PipelineStatus(ctx context.Context, name string) (any, error) {
	st, err := c.a.PipelineStatus(ctx, name)
	return st, c.apiErr(err)
}

func (c pipelineControl) PipelineReplay(ctx context.Context, name, destination string, t time.Time, changeSet int64, grace time.Duration) (int64, error) {
	from, err := c.a.ReplayPipeline(ctx, name, destination, PipelineReplay{Time: t, ChangeSet: changeSet, Grace: grace})
	return from, c.apiErr(err)
}

func (c pipelineControl) PipelinePause(ctx context.Context, name, destination string, paused bool, reason string) error {
	if paused {
		return c.apiErr(c.a.PausePipeline(ctx, name, destination, reason))
	}
	return c.apiErr(c.a.ResumePipeline(ctx, name, destination))
}
