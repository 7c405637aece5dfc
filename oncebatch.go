package sluice

import (
	"context"
	"time"
)

// OnceBatch is [App.Once] for a batch of inputs: keys[i] is the key of
// input i, and work is called with todo, the indexes of the inputs whose
// work is to be done now, in ascending order. It returns the indexes of
// every input it gave work, ascending. A handler of a hub batch wraps its
// side effects as:
//
//	keys := make([]string, len(events))
//	for i, e := range events {
//		keys[i] = fmt.Sprintf("orders/%d/%d", e.Partition, e.SequenceNumber)
//	}
//	_, err := app.OnceBatch(ctx, keys, 0, func(ctx context.Context, todo []int) error {
//		for _, i := range todo {
//			if err := charge(ctx, events[i]); err != nil {
//				return err
//			}
//		}
//		return nil
//	})
//
// Every key has the guarantees of Once, among all instances sharing the
// engine and with the callers of Once with the same key, as long as the
// key-value store works:
//
//   - At most one successful run per key within ttl (0 means 24 hours; at
//     most MaxOnceTTL): an input whose key was done is never in todo.
//     Inputs with the same key are the same input: only the first of them
//     is ever in todo.
//   - Concurrent duplicates wait, but not before running the rest: work is
//     first called with the inputs this call claimed, then OnceBatch waits,
//     bounded by ctx and holding no claim, for the other callers' runs of
//     the rest to end, and calls work again with those whose run failed or
//     expired, until every key is done. So work can be called more than
//     once, with different inputs, and inputs whose keys other callers held
//     are done after the others. Two batches that overlap both make
//     progress: neither holds a key while waiting for another. When ctx
//     ends during the wait, OnceBatch returns the indexes given to work so
//     far (done) and an error wrapping ctx's.
//   - A failed run releases its keys: if work returns an error, every key
//     of that call of work is released and OnceBatch returns at once, with
//     that error (unwrapped) and the indexes given to work so far; the keys
//     of earlier calls of work, which returned nil, are done. If work
//     panics, its keys are released and the panic goes on up the stack,
//     unrecovered. An error fails every input of the call: there is no
//     failure of one input alone. To keep the effects of some inputs when
//     others fail, split the batch into several calls of OnceBatch (a
//     retry of the batch then skips the inputs done).
//   - A crash in the middle of work leaves claims that expire 30 seconds
//     after their last renewal (they are renewed every 10 seconds while
//     work runs); then the work of those inputs runs again. As with Once,
//     make each effect safe to repeat.
//
// The claims of the free keys are written together, then their
// completions, instead of one after the other. With the embedded engine and
// sync always (the defaults), each of these is one atomic batch, stored with
// one fsync, for batches of 32 keys or more: a cost per call of work instead
// of two fsyncs per key. Otherwise the writes go as asynchronous
// publishes, all in flight at once and stored one by one, which is cheaper
// there: an atomic batch has a staging store of its own, fsynced whatever
// the sync setting, and an external server fsyncs on its own schedule
// (every 2 minutes by default). An atomic batch holds at most 1000 keys:
// larger batches are written in parts.
//
// If the claims cannot be renewed for 30 seconds while work runs, another
// caller may take them over and run their work too; OnceBatch logs a
// warning when it notices. If work succeeded but the completion of some of
// its keys could not be recorded, OnceBatch returns the indexes and an
// error wrapping [ErrOnceNotRecorded]; those keys stay claimed until their
// claims expire (30s). Claims and expiries compare the instances' clocks,
// which must agree to within a few seconds.
//
// Keys are kept as Once's are. With no keys, OnceBatch returns (nil, nil)
// without calling work. A bad key (empty) or ttl is an error naming the
// key's index, before anything is written. OnceBatch needs a running app.
func (a *App) OnceBatch(ctx context.Context, keys []string, ttl time.Duration, work func(ctx context.Context, todo []int) error) (ran []int, err error) {
	k, err := a.onceKeys()
	if err != nil {
		return nil, err
	}
	return k.DoBatch(ctx, keys, ttl, work)
}
