package host

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sluicehq/sluice/internal/hub"
)

// Hub functions can also come and go while the host runs: a data pipeline
// created through the API adds one per destination, and deleting it
// removes them. Other kinds are registered before Start only.

// AddFunction registers a hub function and, when the host has started,
// starts it at once (before Start it is Register). A function added to a
// running host has no retry queue: its handler must not return
// RetryLaterError (such a batch is retried in place, by its retry policy).
// It runs until RemoveFunction or Stop.
func (h *Host) AddFunction(ctx context.Context, f Function) error {
	h.addMu.Lock()
	defer h.addMu.Unlock()
	if !h.started.Load() {
		return h.Register(f)
	}
	if h.stopping() {
		return fmt.Errorf("host: add function %s: the host is stopping", f.Name)
	}
	if f.Breaker.Enabled() && h.cfg.Hubs != nil {
		_, err := h.cfg.Hubs.Create(ctx, hub.Config{Name: BreakerEventsHub, Partitions: 1})
		if err != nil && !errors.Is(err, hub.ErrExists) {
			return fmt.Errorf("host: breaker events hub: %w", err)
		}
	}
	b, err := f.bind(h)
	if err != nil {
		return err
	}
	fn := b.(*function)
	fn.dynamic = true
	fn.run.later = nil
	fn.life, fn.cancel = context.WithCancel(h.hardCtx)
	h.fnsMu.Lock()
	h.fns = append(h.fns, fn)
	h.fnsMu.Unlock()
	if err := fn.start(ctx, h); err != nil {
		h.removeFunction(fn)
		return err
	}
	// A host started with no leased function has not started its leases
	// (starting them again does nothing).
	return h.cfg.Leases.Start(context.Background())
}

// RemoveFunction stops a hub function AddFunction added: this instance
// gives up its partitions (a batch in flight is cancelled and not
// checkpointed) and its watchers and reporters end. Other instances keep
// running it until they remove it too. Removing a function that is not
// running does nothing.
func (h *Host) RemoveFunction(name string) {
	h.addMu.Lock()
	defer h.addMu.Unlock()
	for _, b := range h.functions() {
		if f, ok := b.(*function); ok && f.Name == name && f.dynamic {
			h.removeFunction(f)
		}
	}
}

func (h *Host) removeFunction(f *function) {
	h.cfg.Leases.Leave(f.leaseSet())
	f.cancel()
	h.fnsMu.Lock()
	h.fns = slices.DeleteFunc(h.fns, func(b bound) bool { return b == f })
	h.fnsMu.Unlock()
}
