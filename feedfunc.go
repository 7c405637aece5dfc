package sluice

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/host"
)

// FeedTrigger binds a function to a container's change feed: it is given
// every create, update and delete (as a tombstone, Document.Deleted) of
// the container, in order per partition key, in batches. Instances share
// the feed in ranges of partition keys; a range is read by one instance
// at a time, and its position is saved only after the function finished
// with a batch.
type FeedTrigger struct {
	Container string
	// LeasePrefix names the function's position in the container's feed.
	// Default: the function's name, so that every function gets every
	// change. Functions given the same prefix (on different instances)
	// share the work.
	LeasePrefix string
	// MaxItemsPerInvocation bounds the changes of one batch. Default 100.
	MaxItemsPerInvocation int
	// Ranges is how many parts the feed is split into: the most instances
	// that can work on it at once. Default 4. Fixed once the prefix is used.
	Ranges int
	// StartFrom is where the function starts when it has no saved
	// position. Default FeedFromNow.
	StartFrom FeedStartPosition
	// PollInterval bounds how long a caught-up function waits before it
	// looks for changes again when it is not woken by a write (writes by
	// other processes to SQLite). Default 1s.
	PollInterval time.Duration
}

// FeedStartPosition is where a change-feed function starts reading when it
// has no saved position.
type FeedStartPosition struct {
	from host.FeedFrom
	t    time.Time
}

var (
	// FeedFromNow reads the changes made after the function first started
	// (the default, as in Azure Functions).
	FeedFromNow = FeedStartPosition{from: host.FeedFromNow}
	// FeedFromBeginning reads every change the container holds.
	FeedFromBeginning = FeedStartPosition{from: host.FeedFromBeginning}
)

// FeedFromTime reads from the first change made at or after t.
func FeedFromTime(t time.Time) FeedStartPosition {
	return FeedStartPosition{from: host.FeedFromTime, t: t}
}

// FeedHandler processes a batch of changes. Returning nil finishes the
// batch; an error fails it, and the retry policy decides (the range waits:
// later changes of a partition key never overtake earlier ones). Return
// DeadLetterChanges to give up on some changes at once.
type FeedHandler func(ctx context.Context, changes []Document) error

// FeedFunction declares a function triggered by a container's change feed.
// Problems with the declaration are reported by Start. WithRetry sets the
// retry policy of a failed batch; without one, a failed batch is
// dead-lettered at once.
func (a *App) FeedFunction(name string, trigger FeedTrigger, handler FeedHandler, opts ...FunctionOption) {
	o := applyOptions(opts)
	var h host.FeedHandler
	if handler != nil {
		fn := withMiddleware(a, name, TriggerChangeFeed, o.middleware, (func(context.Context, []Document) error)(handler))
		h = func(ctx context.Context, changes []docstore.Document) error { return fn(ctx, fromStoreDocs(changes)) }
	}
	f := &host.FeedFunction{
		Name: name,
		Trigger: host.FeedTrigger{
			Container: trigger.Container, LeasePrefix: trigger.LeasePrefix, MaxItems: trigger.MaxItemsPerInvocation,
			Ranges: trigger.Ranges, From: trigger.StartFrom.from, FromTime: trigger.StartFrom.t, PollInterval: trigger.PollInterval,
		},
		Retry:   o.retry,
		Breaker: o.breaker,
		Timeout: o.timeout,
		Handler: h,
	}
	a.declare(name, f, &f.Breaker, &f.Timeout)
}
