package sluice

import (
	"context"

	"github.com/sluicehq/sluice/internal/host"
)

// Attempt is what an invocation knows of its tries.
type Attempt struct {
	// Number is this try's number: 1 for the first. For a queue message it
	// is the message's delivery count.
	Number int
	// MaxRetries is how many retries the policy allows after the first
	// try: RetryForever (-1) for no end, 0 for none. For a queue message it
	// is MaxDequeueCount-1, whatever the retry policy.
	MaxRetries int
	// Last is the error of the previous try: nil on the first, and for
	// queue messages, whose deliveries do not carry it.
	Last error
}

// AttemptOf returns the attempt the context of an invocation carries:
// that of a hub, queue, change-feed, timer or blob function. ok is false
// for any other context, an HTTP function's among them (a request is not
// retried). A function can use it to act differently on its last try, or
// to tell the first delivery from a redelivery.
func AttemptOf(ctx context.Context) (a Attempt, ok bool) {
	h, ok := host.AttemptOf(ctx)
	if !ok {
		return Attempt{}, false
	}
	return Attempt{Number: h.Number, MaxRetries: h.MaxRetries, Last: h.Last}, true
}
