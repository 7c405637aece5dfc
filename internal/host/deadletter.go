package host

import (
	"context"
	"encoding/json"
	"errors"
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
	// State, if set, is kept with each of the letters.
	State json.RawMessage
}

// stateReason is a dead letter's reason carrying the function's state.
type stateReason struct {
	error
	state json.RawMessage
}

func (r *stateReason) Unwrap() error { return r.error }

// withState attaches state to reason, if there is any.
func withState(reason error, state json.RawMessage) error {
	if len(state) == 0 {
		return reason
	}
	return &stateReason{error: reason, state: state}
}

// stateOf is the state attached to reason, if any.
func stateOf(reason error) json.RawMessage {
	var sr *stateReason
	if errors.As(reason, &sr) {
		return sr.state
	}
	return nil
}

func (e *DeadLetterError) Error() string {
	return fmt.Sprintf("%d events dead-lettered by the function", len(e.Reasons))
}

// deadLettersOf finds the *DeadLetterError in err's tree. When there are
// several (a function joined one per reason with errors.Join), it merges
// them, each letter keeping its own reason and state.
func deadLettersOf(err error) (*DeadLetterError, bool) {
	var found []*DeadLetterError
	var walk func(error)
	walk = func(e error) {
		switch u := e.(type) {
		case nil:
		case *DeadLetterError:
			found = append(found, u)
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	switch len(found) {
	case 0:
		return nil, false
	case 1:
		return found[0], true
	}
	merged := &DeadLetterError{Reasons: map[int64]error{}}
	for _, d := range found {
		for pos, reason := range d.Reasons {
			merged.Reasons[pos] = withState(reason, d.State)
		}
	}
	return merged, true
}
