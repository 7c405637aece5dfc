// Package pipeline is Azure's serverless event processing reference
// architecture on Sluice's Go SDK: devices (drones) send telemetry to a hub; a function
// decodes each batch, merges each device's frames into one document per
// device, its latest state, in a container partitioned by device id, and
// dead-letters the events it cannot process with the reason; an HTTP route
// answers a device's state.
//
//	app := sluice.New(sluice.Config{HTTPAddr: "127.0.0.1:7070"})
//	p := pipeline.Declare(app, pipeline.Options{})
//	// … app.Start(ctx), then publish frames with the device id as the
//	// partition key, or run a Simulator:
//	go pipeline.NewSimulator(1000, 0.01, 1).Run(ctx, app, p.Options().Hub, 2000, nil)
//
// examples/telemetry runs it as a program. It is the pipeline `sluice dev`
// runs as its demo, written as a user writes it: on the public SDK alone.
package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
)

// Options name what Declare declares. Zero values mean the defaults.
type Options struct {
	// Hub receives the telemetry. Default "telemetry".
	Hub string
	// Partitions of the hub, when Declare creates it. Default 4.
	Partitions int
	// Retention of the hub's events. Default 24 hours.
	Retention time.Duration
	// Container keeps one document per device, partition key path
	// /deviceId. Default "devices".
	Container string
	// Function is the hub function that decodes and merges. Default
	// "telemetry-decode".
	Function string
	// MaxBatchSize bounds the events of one invocation. Each device's
	// document is read and written once per batch, so larger batches
	// write less per event. Default 500.
	MaxBatchSize int
	// Route serves a device's state (GET, no key needed), under the app's
	// route prefix: the default "devices/{id}" is /api/devices/<id>. It
	// must have an {id} parameter.
	Route string
	// StateFunction is the HTTP function serving Route. Default
	// "device-state".
	StateFunction string
	// NoRoute declares no HTTP function, for an app without an HTTP
	// server (Config.HTTPAddr).
	NoRoute bool
}

// WithDefaults returns the options with the defaults in place of zero
// values.
func (o Options) WithDefaults() Options {
	o.Hub = cmp.Or(o.Hub, "telemetry")
	o.Partitions = cmp.Or(o.Partitions, 4)
	o.Retention = cmp.Or(o.Retention, 24*time.Hour)
	o.Container = cmp.Or(o.Container, "devices")
	o.Function = cmp.Or(o.Function, "telemetry-decode")
	o.MaxBatchSize = cmp.Or(o.MaxBatchSize, 500)
	o.Route = cmp.Or(o.Route, "devices/{id}")
	o.StateFunction = cmp.Or(o.StateFunction, "device-state")
	return o
}

// ReasonPrefix begins the reason of every dead letter of the pipeline.
const ReasonPrefix = "corrupt telemetry: "

// Pipeline is the declared pipeline; its Stats count its work.
type Pipeline struct {
	app   *sluice.App
	opts  Options
	stats Stats
}

// Stats count the pipeline's work in this process since it started. A
// batch delivered again (after a crash, a lost lease or a failed write)
// counts again.
type Stats struct {
	processed, deadLettered, written, batches atomic.Int64
}

// Processed is how many events the function finished with: merged or
// dead-lettered.
func (s *Stats) Processed() int64 { return s.processed.Load() }

// DeadLettered is how many of them were dead-lettered.
func (s *Stats) DeadLettered() int64 { return s.deadLettered.Load() }

// DevicesUpdated is how many device documents were written: at most one
// per device and batch.
func (s *Stats) DevicesUpdated() int64 { return s.written.Load() }

// Batches is how many batches the function finished with.
func (s *Stats) Batches() int64 { return s.batches.Load() }

// Declare declares on app the hub, the container, the decoding function
// and the HTTP function of the pipeline. Producers must publish each frame
// with its device id as the partition key (Simulator.Run does): the
// function dead-letters a frame whose partition key is not its device id.
func Declare(app *sluice.App, o Options) *Pipeline {
	p := &Pipeline{app: app, opts: o.WithDefaults()}
	o = p.opts
	app.Hub(sluice.HubConfig{Name: o.Hub, Partitions: o.Partitions, Retention: o.Retention})
	app.Container(sluice.ContainerConfig{Name: o.Container, PartitionKeyPath: "/deviceId"})
	// A failure to read or write the documents fails the batch, which is
	// retried while its partition waits; a frame is never half-applied.
	app.Function(o.Function, sluice.HubTrigger{Hub: o.Hub, MaxBatchSize: o.MaxBatchSize}, p.process,
		sluice.WithRetry(sluice.ExponentialBackoff(10, 100*time.Millisecond, 10*time.Second)))
	if o.NoRoute {
		return p
	}
	app.HTTPFunction(o.StateFunction, sluice.HTTPTrigger{Route: o.Route, Methods: []string{http.MethodGet}, AuthLevel: sluice.AuthAnonymous},
		http.HandlerFunc(p.serveState))
	return p
}

// Options are the pipeline's options, with the defaults filled in.
func (p *Pipeline) Options() Options { return p.opts }

// Stats are the pipeline's counters.
func (p *Pipeline) Stats() *Stats { return &p.stats }

// State reads a device's state; sluice.ErrDocumentNotFound when the
// device has sent no valid frame.
func (p *Pipeline) State(ctx context.Context, deviceID string) (DeviceState, error) {
	var st DeviceState
	doc, err := p.app.Docs().Read(ctx, p.opts.Container, deviceID, deviceID)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(doc.Body, &st); err != nil {
		return st, fmt.Errorf("device %s: the stored document is not a device state: %w", deviceID, err)
	}
	return st, nil
}

// problem is an event of the batch that cannot be processed.
type problem struct {
	event  sluice.Event
	reason string
}

// device is a device's state while a batch is merged into it.
type device struct {
	id      string
	state   DeviceState
	changed bool
}

// process is the hub function. It reads each device of the batch once,
// merges the device's frames in their order, writes every changed device
// with one bulk upsert, and dead-letters the events it cannot decode.
//
// Reading, merging and writing back without a precondition is safe here
// because every frame of a device is in one partition (the partition key
// is the device id, which process checks) and a partition is processed by
// one instance at a time, one batch at a time: no one else writes the
// device's document in between. A batch delivered again (at-least-once)
// merges its frames again onto a state that already holds them, which
// leaves the same state: the last value of each field wins.
func (p *Pipeline) process(ctx context.Context, events []sluice.Event) error {
	frames := make([]Frame, len(events))
	ok := make([]bool, len(events))
	var problems []problem
	index := make(map[string]int, len(events)/2)
	var devices []device
	for i, e := range events {
		f := &frames[i]
		err := Decode(e.Body, f)
		if err == nil && e.PartitionKey != f.DeviceID {
			err = fmt.Errorf("partition key %s is not the deviceId %s: publish each frame with its device id as the partition key",
				quoteShort(e.PartitionKey), quoteShort(f.DeviceID))
		}
		if err != nil {
			problems = append(problems, problem{e, err.Error()})
			continue
		}
		ok[i] = true
		if _, seen := index[f.DeviceID]; !seen {
			index[f.DeviceID] = len(devices)
			devices = append(devices, device{id: f.DeviceID})
		}
	}
	docs := p.app.Docs()
	// One ReadMany per MaxReadManyKeys devices of the batch: a Read per
	// device was a quarter of the pipeline's CPU, and one statement for
	// 200 devices costs 2.5 times less on SQLite than 200 Reads.
	found := make([]bool, len(devices))
	for start := 0; start < len(devices); start += sluice.MaxReadManyKeys {
		part := devices[start:min(start+sluice.MaxReadManyKeys, len(devices))]
		keys := make([]sluice.DocumentKey, len(part))
		for i, d := range part {
			keys[i] = sluice.DocumentKey{PartitionKey: d.id, ID: d.id}
		}
		stored, err := docs.ReadMany(ctx, p.opts.Container, keys...)
		if err != nil {
			return fmt.Errorf("read %d devices: %w", len(keys), err)
		}
		for _, doc := range stored {
			n, ok := index[doc.ID]
			if !ok || doc.PartitionKey != doc.ID {
				return fmt.Errorf("read devices: got document %s in partition %s, which the batch did not ask for", quoteShort(doc.ID), quoteShort(doc.PartitionKey))
			}
			if err := json.Unmarshal(doc.Body, &devices[n].state); err != nil {
				return fmt.Errorf("device %s: the stored document is not a device state: %w", doc.ID, err)
			}
			found[n] = true
		}
	}
	for n := range devices {
		if !found[n] {
			devices[n].state = DeviceState{ID: devices[n].id, DeviceID: devices[n].id}
		}
	}
	for i, e := range events {
		if !ok[i] {
			continue
		}
		d := &devices[index[frames[i].DeviceID]]
		Merge(&d.state, frames[i])
		d.state.Partition, d.state.Sequence, d.state.Updated = e.Partition, e.SequenceNumber, e.EnqueuedTime.UTC()
		d.changed = true
	}
	var write []any
	for i := range devices {
		if devices[i].changed {
			b, err := json.Marshal(&devices[i].state)
			if err != nil {
				return fmt.Errorf("encode device %s: %w", devices[i].state.ID, err)
			}
			write = append(write, b)
		}
	}
	if len(write) > 0 {
		if _, err := docs.BulkUpsert(ctx, p.opts.Container, write...); err != nil {
			return fmt.Errorf("write %d devices: %w", len(write), err)
		}
	}
	p.stats.processed.Add(int64(len(events)))
	p.stats.written.Add(int64(len(write)))
	p.stats.batches.Add(1)
	if len(problems) == 0 {
		return nil
	}
	p.stats.deadLettered.Add(int64(len(problems)))
	// One dead letter per corrupt event, each with its own reason.
	errs := make([]error, len(problems))
	for i, pr := range problems {
		errs[i] = sluice.DeadLetter(errors.New(ReasonPrefix+pr.reason), pr.event)
	}
	return errors.Join(errs...)
}

// serveState answers GET <route> with the device's document, or 404.
func (p *Pipeline) serveState(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("the route %s has no {id} parameter", p.opts.Route))
		return
	}
	doc, err := p.app.Docs().Read(r.Context(), p.opts.Container, id, id)
	switch {
	case errors.Is(err, sluice.ErrDocumentNotFound):
		httpError(w, http.StatusNotFound, fmt.Sprintf("device %s has sent no valid telemetry", quoteShort(id)))
		return
	case err != nil:
		httpError(w, http.StatusServiceUnavailable, "cannot read the device's state: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc.Body)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
