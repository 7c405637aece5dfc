package sluice

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/dr"
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
	// ErrUnavailable is returned by Publish while the engine cannot take
	// the events for the moment (unreachable, electing a leader, a lost
	// partition being recreated); the error says whether anything was
	// stored. Retry after a few seconds: events with a MessageID are
	// then stored once.
	ErrUnavailable = hub.ErrUnavailable
	// ErrNotStarted is returned by App methods that need a running app.
	ErrNotStarted = errors.New("sluice: the app is not running; call Start or Run first")
	// ErrStandby is returned by App methods that write (or run functions)
	// while the app is a geo-disaster recovery standby following its
	// primary (Config.DRPrimaryDomain), until the site is promoted.
	ErrStandby = fmt.Errorf("sluice: %w", dr.ErrStandby)
	// ErrNotDRSecondary is returned by Failover on an app that follows no
	// primary.
	ErrNotDRSecondary = fmt.Errorf("sluice: %w", dr.ErrNotSecondary)
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

// RetryAt is returned by a function to have its input delivered again at t,
// for example while a partner system is down. It is not a failure and
// survives restarts. A queue function's message does not count a delivery
// toward MaxDequeueCount and does not hold up other messages. A hub
// function's batch is set aside in the function's retry queue
// (`sluice-retry-<function>`) and the partition moves on; at t, each event
// is given to the function alone, out of its partition's order (its
// Partition and SequenceNumber tell where it came from).
func RetryAt(t time.Time, reason string) error {
	return &host.RetryLaterError{At: t, Reason: reason}
}

// RetryAfter is RetryAt(now + d).
func RetryAfter(d time.Duration, reason string) error {
	return RetryAt(time.Now().Add(d), reason)
}

// DeadLetterMessage is returned by a queue-triggered function to give up on
// its message at once: it is kept, with reason, in the poison queue.
func DeadLetterMessage(reason error) error {
	return DeadLetterMessageWithState(reason, nil)
}

// DeadLetterMessageWithState is DeadLetterMessage that also keeps state
// with the letter: context the function had, encoded as JSON.
func DeadLetterMessageWithState(reason error, state any) error {
	if reason == nil {
		reason = errors.New("dead-lettered by the function")
	}
	return &host.DeadLetterError{Reasons: map[int64]error{0: reason}, State: encodeState(state)}
}

// DeadLetterChanges is returned by a change-feed function to give up on
// some changes of its batch: they are kept as dead letters with reason
// (and the container, document id and LSN), and the rest of the batch
// counts as processed.
func DeadLetterChanges(reason error, changes ...Document) error {
	if reason == nil {
		reason = errors.New("dead-lettered by the function")
	}
	e := &host.DeadLetterError{Reasons: make(map[int64]error, len(changes))}
	for _, c := range changes {
		e.Reasons[c.LSN] = reason
	}
	return e
}
