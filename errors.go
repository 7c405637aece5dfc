package sluice

import (
	"encoding/json"
	"errors"

	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/hub"
)

// Errors a caller can test for with errors.Is.
var (
	// ErrHubNotFound is returned when publishing to, or reading, a hub that
	// does not exist.
	ErrHubNotFound = hub.ErrNotFound
	// ErrEventTooLarge is returned by Publish for an event over the maximum
	// event size (1 MiB by default); nothing of that call is stored.
	ErrEventTooLarge = hub.ErrTooLarge
	// ErrNotStarted is returned by App methods that need a running app.
	ErrNotStarted = errors.New("sluice: the app is not running; call Start or Run first")
)

// DeadLetter is returned by a function to give up on some events of its
// batch: they are kept as dead letters with reason, and the rest of the
// batch counts as processed. It is the way to set aside a corrupt event
// without failing (and retrying) the whole batch. To give events different
// reasons, join one DeadLetter per reason: errors.Join(DeadLetter(r1, e1),
// DeadLetter(r2, e2, e3)).
func DeadLetter(reason error, events ...Event) error {
	return deadLetter(reason, nil, events)
}

// DeadLetterWithState is DeadLetter that also keeps state with each
// letter: context the function had (encoded as JSON), shown with the
// letter and kept across redrives of the record.
func DeadLetterWithState(reason error, state any, events ...Event) error {
	return deadLetter(reason, state, events)
}

func deadLetter(reason error, state any, events []Event) error {
	if reason == nil {
		reason = errors.New("dead-lettered by the function")
	}
	e := &host.DeadLetterError{Reasons: make(map[int64]error, len(events)), State: encodeState(state)}
	for _, ev := range events {
		e.Reasons[ev.SequenceNumber] = reason
	}
	return e
}

// encodeState turns a function's state into JSON; a state that cannot be
// encoded is kept as its error, so that the letter is kept regardless.
func encodeState(state any) json.RawMessage {
	if state == nil {
		return nil
	}
	b, err := json.Marshal(state)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"unencodable_state": err.Error()})
	}
	return b
}
