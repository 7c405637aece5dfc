package sluice

import (
	"cmp"
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/resilience"
)

// MaxOnceTTL is the longest an idempotency key is remembered. Keys are
// stored in the KV bucket sluice-idempotency, whose entries are dropped this
// long after their last write, whatever ttl they were given.
const MaxOnceTTL = resilience.MaxKeyTTL

// ErrOnceNotRecorded is returned by [App.Once], wrapped and with ran ==
// true, when the work succeeded but its completion could not be stored
// (the key-value store was unreachable), and by [App.OnceBatch] when that
// happened to some of its keys. Such a key stays claimed until its claim
// expires (30s); a duplicate call after that runs the work again.
var ErrOnceNotRecorded = resilience.ErrNotRecorded

// openOnceBucket opens the bucket of idempotency keys, creating it if it is
// missing. On a server that takes atomic batch publishes, it lets the
// bucket take them, for OnceBatch.
func openOnceBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: onceBucket, History: 1, TTL: MaxOnceTTL, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("sluice: open idempotency key bucket: %w", err)
	}
	b := &onceBucketKV{KeyValue: kv}
	// An older server would store the messages of a batch one by one.
	if !engine.VersionAtLeast(js.Conn().ConnectedServerVersion(), "2.12.0") {
		return b, nil
	}
	st, err := js.Stream(ctx, "KV_"+onceBucket)
	if err == nil {
		if cfg := st.CachedInfo().Config; !cfg.AllowAtomicPublish {
			cfg.AllowAtomicPublish = true
			_, err = js.UpdateStream(ctx, cfg)
		}
	}
	b.atomic, b.atomicErr = err == nil, err
	return b, nil
}

const onceBucket = "sluice-idempotency"

// onceBucketKV is the bucket of idempotency keys, and whether it takes
// atomic batch publishes.
type onceBucketKV struct {
	jetstream.KeyValue
	atomic    bool
	atomicErr error       // why not, on a server that has them
	warned    atomic.Bool // atomicErr was logged
}

// onceKeys returns the idempotency keys of a running app.
func (a *App) onceKeys() (*resilience.Keys, error) {
	a.mu.Lock()
	kv, ok := a.onceKV, a.started && !a.stopped.Load()
	eng := a.eng
	a.mu.Unlock()
	if !ok || kv == nil || eng == nil {
		return nil, ErrNotStarted
	}
	opts := resilience.KeysOptions{Owner: a.cfg.InstanceID, ClaimTTL: onceClaimTTL, Logger: a.log, JS: eng.JS}
	// Atomic batches pay where every write is fsynced: the embedded engine
	// with sync always. An external server's fsyncs are its own business
	// (every 2 minutes by default, where asynchronous publishes are cheaper).
	fsyncEach := eng.Embedded() && cmp.Or(a.cfg.Sync, SyncAlways) == SyncAlways
	if b, ok := kv.(*onceBucketKV); ok && fsyncEach {
		opts.AtomicBatches = b.atomic
		if b.atomicErr != nil && b.warned.CompareAndSwap(false, true) {
			a.log.Warn("OnceBatch writes its keys with one fsync each: the idempotency key bucket does not take atomic batches", "err", b.atomicErr)
		}
	}
	return resilience.NewKeys(kv, opts)
}

// onceClaimTTL is the claim TTL of Once; 0 means resilience.DefaultClaimTTL
// (30s). Tests' child processes shorten it so that a crash test does not
// wait 30s; nothing else sets it.
var onceClaimTTL time.Duration

// Once runs work unless a run of it under the same key already succeeded
// less than ttl ago, and reports whether it ran work. It makes at-least-once
// delivery effectively-once for a handler that wraps its side effects in
// it, keyed by something that identifies the input for good, such as an ID
// its producer gave it or its hub, partition and sequence number:
//
//	key := fmt.Sprintf("orders/%d/%d", e.Partition, e.SequenceNumber)
//	_, err := app.Once(ctx, key, 0, func(ctx context.Context) error { return charge(ctx, e) })
//
// What it guarantees, among all instances sharing the engine, as long as
// the key-value store works:
//
//   - At most one successful run per key within ttl (0 means 24 hours; at
//     most MaxOnceTTL). A run that returned nil is recorded as done, and a
//     later call with its key returns (false, nil) without running work.
//   - Concurrent duplicates wait: while one caller runs work, the others
//     with the same key wait, bounded by their ctx, and return (false, nil)
//     once it succeeded.
//   - A failed run releases the key: if work returns an error, Once returns
//     (true, that error) and the next caller (a waiting duplicate, or the
//     retry of the input) runs work. If work panics, the key is released
//     and the panic goes on up the stack, unrecovered (the function host
//     turns it into a failed invocation).
//   - A crash in the middle of work leaves a claim that expires 30 seconds
//     after its last renewal (a claim is renewed every 10 seconds while work
//     runs); then the work runs again. Work that crashed after some of its
//     effects, or after all of them but before its completion was recorded,
//     has them done again: make each effect safe to repeat, or keep the
//     work to one effect.
//
// If the claim cannot be renewed for 30 seconds while work runs (the store
// was unreachable, the process stalled), another caller may take it over
// and run work too; Once logs a warning when it notices. If work succeeded
// but its completion could not be recorded, Once returns (true, err) with
// err wrapping [ErrOnceNotRecorded]. Claims and expiries compare the
// instances' clocks, which must agree to within a few seconds.
//
// Any string is a key (it is hashed). Keys are kept for MaxOnceTTL after
// their last write, whatever their ttl, so a program that keys every event
// of a busy hub stores a week of keys. Once needs a running app.
func (a *App) Once(ctx context.Context, key string, ttl time.Duration, work func(ctx context.Context) error) (ran bool, err error) {
	keys, err := a.onceKeys()
	if err != nil {
		return false, err
	}
	return keys.Do(ctx, key, ttl, work)
}
