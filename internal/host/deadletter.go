package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/hub"
)

// DeadLetter is an input a function gave up on, kept with everything needed
// to understand and redrive it (DESIGN.md invariant 5).
type DeadLetter struct {
	Function string `json:"function"`
	// Reason is the error text of the last failure.
	Reason       string            `json:"reason"`
	Source       Source            `json:"source"`
	Attempts     int               `json:"attempts"`
	FirstFailure time.Time         `json:"first_failure"`
	LastFailure  time.Time         `json:"last_failure"`
	Body         []byte            `json:"body"`
	Properties   map[string]string `json:"properties,omitempty"`
	// State is optional context the function attached.
	State json.RawMessage `json:"state,omitempty"`
}

// Source locates a dead letter's input where it came from.
type Source struct {
	Kind         string    `json:"kind"` // "hub" or "queue"
	Hub          string    `json:"hub,omitempty"`
	Group        string    `json:"group,omitempty"`
	Partition    int       `json:"partition"`
	Sequence     int64     `json:"sequence"`
	PartitionKey string    `json:"partition_key,omitempty"`
	Queue        string    `json:"queue,omitempty"`
	MessageID    uint64    `json:"message_id,omitempty"`
	EnqueuedTime time.Time `json:"enqueued_time,omitzero"`
}

// DeadLetterSink keeps dead letters. Put returns only when they are durably
// stored: the host moves a checkpoint past an input only after that.
type DeadLetterSink interface {
	Put(ctx context.Context, letters []DeadLetter) error
}

// DeadLetterHub is the hub that HubSink writes to.
const DeadLetterHub = "sluice-deadletters"

// HubSink stores dead letters as JSON events in the hub DeadLetterHub,
// keyed by function name. It is the interim sink until queues exist.
type HubSink struct {
	Hubs *hub.Service

	mu      sync.Mutex
	created bool
}

var _ DeadLetterSink = (*HubSink)(nil)

// Put implements DeadLetterSink.
func (s *HubSink) Put(ctx context.Context, letters []DeadLetter) error {
	s.mu.Lock()
	if !s.created {
		_, err := s.Hubs.Create(ctx, hub.Config{Name: DeadLetterHub, Partitions: 1, RetentionAge: 30 * 24 * time.Hour})
		if err != nil && !errors.Is(err, hub.ErrExists) {
			s.mu.Unlock()
			return fmt.Errorf("dead letters: create hub %s: %w", DeadLetterHub, err)
		}
		s.created = true
	}
	s.mu.Unlock()
	events := make([]hub.Event, len(letters))
	for i, dl := range letters {
		body, err := json.Marshal(dl)
		if err != nil {
			return fmt.Errorf("dead letters: encode: %w", err)
		}
		events[i] = hub.Event{Body: body, PartitionKey: dl.Function, Properties: map[string]string{"function": dl.Function}}
	}
	if _, err := s.Hubs.Publish(ctx, DeadLetterHub, events); err != nil {
		return fmt.Errorf("dead letters: store: %w", err)
	}
	return nil
}

// DeadLetterError is returned by a handler to dead-letter some events of
// its batch (by sequence number) while the rest count as processed.
type DeadLetterError struct {
	Reasons map[int64]error
}

func (e *DeadLetterError) Error() string {
	return fmt.Sprintf("%d events dead-lettered by the function", len(e.Reasons))
}
