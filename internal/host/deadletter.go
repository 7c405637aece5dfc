package host

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/internal/deadletter"
)

// DeadLetter is an input a function gave up on (see package deadletter).
type DeadLetter = deadletter.Letter

// Source locates a dead letter's input where it came from.
type Source = deadletter.Source

// DeadLetterSink keeps dead letters. Its methods return only when the
// letters are durably stored: the host moves past an input only after that.
// deadletter.Store is the sink of a running app.
type DeadLetterSink interface {
	// Put keeps the letters of hub triggers (and every other trigger but
	// queue triggers).
	Put(ctx context.Context, letters []DeadLetter) error
	// Poison keeps a queue trigger's letter, in the queue's poison queue.
	Poison(ctx context.Context, letter DeadLetter) error
}

var _ DeadLetterSink = (*deadletter.Store)(nil)

// DeadLetterError is returned by a handler to dead-letter some events of
// its batch (by sequence number) while the rest count as processed.
type DeadLetterError struct {
	Reasons map[int64]error
}

func (e *DeadLetterError) Error() string {
	return fmt.Sprintf("%d events dead-lettered by the function", len(e.Reasons))
}
