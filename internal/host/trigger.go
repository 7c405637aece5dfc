package host

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Trigger is the declaration of a function of one kind: Function (a hub),
// QueueFunction, FeedFunction, TimerFunction or BlobFunction. Each kind
// lives in its own file (hubtrigger.go, queue.go, feed.go, timer.go,
// blobtrigger.go) with the type the host runs it as; Register takes any.
//
// A new kind is a file with its declaration implementing Trigger and its
// running type implementing bound, opening the KV buckets it keeps state in
// itself (with Host.bucket) and joining lease sets with Host.join; the host
// needs nothing else.
type Trigger interface {
	// functionName is the function's name, unique in a host.
	functionName() string
	// bind checks the declaration against h (what the kind needs of the
	// host's Config, its own settings, Host.checkNew, Host.newBreaker),
	// applies its defaults and returns what h runs. Register calls it
	// once, before Start.
	bind(h *Host) (bound, error)
}

// bound is a registered function, as the host keeps and starts it.
type bound interface {
	functionName() string
	// start starts running the function: Start calls it once per function,
	// in the order they were registered. ctx bounds starting only; the
	// function's loops run until the host stops (Host.soft, Host.hardCtx),
	// counted in Host.active while they hold work and Host.bg otherwise.
	start(ctx context.Context, h *Host) error
}

// processedCounter is a bound function whose finished inputs Processed
// reports.
type processedCounter interface {
	processedCount() int64
}

// Register adds a function of any kind. It must be called before Start.
func (h *Host) Register(t Trigger) error {
	if h.started.Load() {
		return fmt.Errorf("host: register %s: the host has started", t.functionName())
	}
	b, err := t.bind(h)
	if err != nil {
		return err
	}
	h.fnsMu.Lock()
	h.fns = append(h.fns, b)
	h.fnsMu.Unlock()
	return nil
}

// functions is a copy of the registered functions, in the order
// registered.
func (h *Host) functions() []bound {
	h.fnsMu.RLock()
	defer h.fnsMu.RUnlock()
	return slices.Clone(h.fns)
}

// registered yields the registered functions of one kind.
func registered[T bound](h *Host) iter.Seq[T] {
	return func(yield func(T) bool) {
		for _, b := range h.functions() {
			if f, ok := b.(T); ok && !yield(f) {
				return
			}
		}
	}
}

func (h *Host) named(name string) bool {
	for _, f := range h.functions() {
		if f.functionName() == name {
			return true
		}
	}
	return false
}

// Processed returns how many inputs the named hub, queue or change-feed
// function finished with on this instance.
func (h *Host) Processed(name string) int64 {
	for _, f := range h.functions() {
		if c, ok := f.(processedCounter); ok && f.functionName() == name {
			return c.processedCount()
		}
	}
	return 0
}

// join joins a lease set for a function being started (see Leaser.Join);
// Start starts the leases once a function has joined one.
func (h *Host) join(name string, units int, run func(ctx context.Context, unit int)) error {
	h.leased.Store(true)
	return h.cfg.Leases.Join(name, units, run)
}

// bucket returns the KV bucket a kind of function keeps its state in: kv
// when the host's Config gives one (tests do), else the bucket named name,
// created in Config.JS if it is missing. Called while starting.
func (h *Host) bucket(ctx context.Context, kv *jetstream.KeyValue, name string) error {
	if *kv != nil {
		return nil
	}
	b, err := openBucket(ctx, h.cfg.JS, name)
	if err != nil {
		return err
	}
	*kv = b
	return nil
}

// openBucket opens the host's KV bucket name (history 1, on disk), creating
// it if it is missing.
func openBucket(ctx context.Context, js jetstream.JetStream, name string) (jetstream.KeyValue, error) {
	if js == nil {
		return nil, fmt.Errorf("host: no KV bucket %s and no JetStream to open it in", name)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("host: open KV bucket %s: %w", name, err)
	}
	return kv, nil
}
