package sluice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/pipeline/pgsource"
	"github.com/sluicehq/sluice/internal/service"
)

// Pipelines can also be created and deleted while the cluster runs
// (POST and DELETE /api/v1/pipelines, `sluice pipeline create|delete`):
// their definitions are kept in a KV bucket that every instance follows,
// so each one starts and stops them as they come and go, as it does the
// declared ones at start.

// pipelineBucket holds the definitions of the pipelines created through
// the API, by name.
const pipelineBucket = "sluice-pipelines"

// storedPipeline is a created pipeline's definition.
type storedPipeline struct {
	Spec    PipelineSpec `json:"spec"`
	Created time.Time    `json:"created"`
}

// pipelineRegistry runs the created pipelines on this instance.
type pipelineRegistry struct {
	a    *App
	kv   jetstream.KeyValue
	life service.Lifecycle

	mu      sync.Mutex
	running map[string]*createdPipeline
}

// createdPipeline is a created pipeline running (or starting) here.
type createdPipeline struct {
	p      *pipelineRun
	cancel context.CancelFunc
	done   chan struct{} // closed when keep has returned
	// started: its functions and lease are in place (stop undoes them).
	started bool
}

// openPipelineRegistry follows the bucket of created pipelines: those
// stored start here now, later ones as they come.
func (a *App) openPipelineRegistry(ctx context.Context) error {
	kv, err := a.eng.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: pipelineBucket, History: 1,
		Storage: jetstream.FileStorage, Replicas: a.eng.Replicas()})
	if err != nil {
		return fmt.Errorf("sluice: open the pipelines bucket: %w", err)
	}
	r := &pipelineRegistry{a: a, kv: kv, running: map[string]*createdPipeline{}}
	a.pipeReg = r
	if err := r.life.FollowKV(kv, r.apply); err != nil {
		return fmt.Errorf("sluice: follow the pipelines bucket: %w", err)
	}
	return nil
}

// stop stops following the bucket and every created pipeline here.
func (r *pipelineRegistry) stop(ctx context.Context) error {
	err := r.life.Stop(ctx, nil, nil)
	r.mu.Lock()
	names := make([]string, 0, len(r.running))
	for name := range r.running {
		names = append(names, name)
	}
	r.mu.Unlock()
	for _, name := range names {
		r.stopPipeline(name)
	}
	return err
}

// apply takes in a change of the bucket.
func (r *pipelineRegistry) apply(kve jetstream.KeyValueEntry) {
	name := kve.Key()
	if kve.Operation() != jetstream.KeyValuePut {
		r.stopPipeline(name)
		return
	}
	r.mu.Lock()
	_, running := r.running[name]
	r.mu.Unlock()
	if running {
		return // definitions are not changed in place: delete and create
	}
	a := r.a
	if _, err := a.pipelineByName(name); err == nil {
		a.log.Error("pipeline: a pipeline created through the API has the name of one declared on this instance; the declared one runs here", "pipeline", name)
		return
	}
	var sp storedPipeline
	p, err := (*pipelineRun)(nil), json.Unmarshal(kve.Value(), &sp)
	if err == nil {
		var cfg PipelineConfig
		if cfg, err = sp.Spec.Config(os.Getenv); err == nil {
			p, err = a.newPipelineRun(name, cfg)
		}
	}
	if err != nil {
		// Shown by its status: an environment variable missing on this
		// instance, say. It runs on the instances where it holds.
		a.log.Error("pipeline: a created pipeline cannot run on this instance", "pipeline", name, "err", err)
		p = &pipelineRun{app: a, name: name, hub: PipelineHub(name), container: PipelineHub(name)}
		p.startErr = err
	}
	p.created = true
	ctx, cancel := context.WithCancel(context.Background())
	cp := &createdPipeline{p: p, cancel: cancel, done: make(chan struct{})}
	r.mu.Lock()
	r.running[name] = cp
	r.mu.Unlock()
	a.pipeMu.Lock()
	a.pipelines = append(a.pipelines, p)
	a.pipeMu.Unlock()
	if err != nil {
		close(cp.done)
		return
	}
	go r.keep(ctx, cp)
}

// keep starts a created pipeline, again after failures (a destination's
// database down at the time, say), until it runs or is deleted.
func (r *pipelineRegistry) keep(ctx context.Context, cp *createdPipeline) {
	defer close(cp.done)
	wait := time.Second
	for {
		err := r.launch(ctx, cp.p)
		cp.p.mu.Lock()
		cp.p.startErr = err
		cp.p.mu.Unlock()
		if err == nil {
			r.mu.Lock()
			cp.started = true
			r.mu.Unlock()
			return
		}
		if ctx.Err() != nil {
			return
		}
		r.a.log.Error("pipeline: cannot start a created pipeline; trying again", "pipeline", cp.p.name, "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, time.Minute)
	}
}

// launch makes a created pipeline's change log and staging container,
// opens its sinks, starts its destinations' functions and joins its
// source's lease. On failure it undoes what it did.
func (r *pipelineRegistry) launch(ctx context.Context, p *pipelineRun) (err error) {
	a := r.a
	if err := a.ensureHub(ctx, p.hubConfig()); err != nil {
		return err
	}
	if _, err := a.blobs.EnsureContainer(ctx, p.container); err != nil {
		return fmt.Errorf("sluice: pipeline %s: blob container %s: %w", p.name, p.container, err)
	}
	if err := p.checkSource(ctx); err != nil {
		return err
	}
	var added []string
	defer func() {
		if err != nil {
			for _, name := range added {
				a.host.RemoveFunction(name)
			}
			_ = p.stop()
		}
	}()
	if err := p.openSinks(ctx); err != nil {
		return err
	}
	for _, d := range p.dests {
		name := p.functionName(d.cfg.Name)
		if err := a.host.AddFunction(ctx, a.hubFunction(name, d.trigger(), d.handle, d.options()...)); err != nil {
			return fmt.Errorf("sluice: pipeline %s, destination %s: %w", p.name, d.cfg.Name, err)
		}
		added = append(added, name)
	}
	if err := a.leases.Join(p.leaseSet(), 1, func(ctx context.Context, _ int) { p.read(ctx) }); err != nil {
		return err
	}
	p.live.Store(true)
	return nil
}

// stopPipeline stops a created pipeline here: its source and functions
// end, its sinks close. Its data stays (see DeletePipeline).
func (r *pipelineRegistry) stopPipeline(name string) {
	r.mu.Lock()
	cp := r.running[name]
	delete(r.running, name)
	r.mu.Unlock()
	if cp == nil {
		return
	}
	cp.cancel()
	<-cp.done
	a := r.a
	if cp.started {
		cp.p.live.Store(false)
		a.leases.Leave(cp.p.leaseSet())
		for _, d := range cp.p.dests {
			a.host.RemoveFunction(cp.p.functionName(d.cfg.Name))
		}
		if err := cp.p.stop(); err != nil {
			a.log.Warn("pipeline: closing a deleted pipeline's destinations", "pipeline", name, "err", err)
		}
	}
	a.pipeMu.Lock()
	a.pipelines = slices.DeleteFunc(a.pipelines, func(p *pipelineRun) bool { return p == cp.p })
	a.pipeMu.Unlock()
}

// CreatePipeline creates a pipeline from its definition on every instance
// of the cluster, where it runs as a declared one does, until
// DeletePipeline. The definition is checked first (and the environment
// variables it names read on this instance): nothing is stored when it is
// wrong. A pipeline of that name, declared or created, is an error. It
// returns once the pipeline starts on this instance, or fails to, or after
// 30s (it goes on starting: PipelineStatus says so).
func (a *App) CreatePipeline(ctx context.Context, name string, spec PipelineSpec) error {
	if err := a.running(); err != nil {
		return err
	}
	cfg, err := spec.Config(os.Getenv)
	if err != nil {
		return fmt.Errorf("%w %q: %v", errPipelineRequest, name, err)
	}
	if _, err := a.newPipelineRun(name, cfg); err != nil {
		return badPipeline{err}
	}
	if _, err := a.pipelineByName(name); err == nil {
		return &pipelineExists{fmt.Sprintf("sluice: pipeline %s exists: delete it first (sluice pipeline delete %s), or pick another name", name, name)}
	}
	data, err := json.Marshal(storedPipeline{Spec: spec, Created: time.Now().UTC()})
	if err != nil {
		return err
	}
	if _, err := a.pipeReg.kv.Create(ctx, name, data); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return &pipelineExists{fmt.Sprintf("sluice: pipeline %s exists: delete it first (sluice pipeline delete %s), or pick another name", name, name)}
		}
		return fmt.Errorf("sluice: store pipeline %s: %w", name, err)
	}
	// The bucket's watcher starts it here; wait until it has (for 30s at
	// most: then its status says it is starting).
	wait := time.NewTimer(30 * time.Second)
	defer wait.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if p, err := a.pipelineByName(name); err == nil {
			if p.live.Load() {
				return nil
			}
			p.mu.Lock()
			startErr := p.startErr
			p.mu.Unlock()
			if startErr != nil {
				return nil // created; its status says why it does not run yet (it is tried again)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sluice: pipeline %s is created and starting: %w", name, ctx.Err())
		case <-wait.C:
			return nil
		case <-tick.C:
		}
	}
}

// badPipeline is a definition that cannot work: the caller's mistake.
type badPipeline struct{ err error }

func (e badPipeline) Error() string        { return e.err.Error() }
func (e badPipeline) Is(target error) bool { return target == errPipelineRequest }

// pipelineExists: a pipeline of that name exists.
type pipelineExists struct{ msg string }

func (e *pipelineExists) Error() string { return e.msg }

// DeletePipeline deletes a pipeline created through the API: it stops on
// every instance, and its change log, its staged change sets and (for a
// PostgreSQL source) its replication slot and publication are dropped,
// so the database no longer keeps WAL for it. What its destinations
// wrote stays. Declared pipelines are removed from their declaration
// instead.
func (a *App) DeletePipeline(ctx context.Context, name string) error {
	if err := a.running(); err != nil {
		return err
	}
	p, err := a.pipelineByName(name)
	if err != nil {
		return err
	}
	if !p.created {
		return &pipelineExists{fmt.Sprintf("sluice: pipeline %s is declared (in sluice.yaml or the app's code), not created through the API: remove it there", name)}
	}
	if err := a.pipeReg.kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("sluice: delete pipeline %s: %w", name, err)
	}
	// The bucket's watcher stops it here; then its data goes.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := a.pipelineByName(name); err != nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sluice: pipeline %s is deleted but still stopping: %w", name, ctx.Err())
		case <-tick.C:
		}
	}
	var errs []error
	if err := a.hubSvc.Delete(ctx, p.hub); err != nil && !errors.Is(err, hub.ErrNotFound) {
		errs = append(errs, fmt.Errorf("its change log (hub %s): %w", p.hub, err))
	}
	if err := a.blobs.DeleteContainer(ctx, p.container); err != nil && !errors.Is(err, blob.ErrContainerNotFound) {
		errs = append(errs, fmt.Errorf("its staged change sets (blob container %s): %w", p.container, err))
	}
	if p.cfg.Postgres != nil {
		if err := dropSlot(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("sluice: pipeline %s is deleted, but not all of its data: %w", name, errors.Join(errs...))
	}
	return nil
}

// dropSlot drops a PostgreSQL source's slot and publication. Another
// instance may still be reading the slot for a moment, as it stops: an
// active slot is tried again for a while.
func dropSlot(ctx context.Context, p *pipelineRun) error {
	cfg := pgsource.Config{DSN: p.cfg.Postgres.URL, Pipeline: p.name, Tables: p.cfg.Postgres.Tables, Logger: p.app.log}
	wait := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := pgsource.Drop(ctx, cfg)
		if err == nil || attempt == 30 || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("its replication slot and publication (sluice_%s; drop them with pg_drop_replication_slot and DROP PUBLICATION): %w", p.name, err)
			}
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}
