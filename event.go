package sluice

import (
	"time"

	"github.com/sluicehq/sluice/internal/hub"
)

// Event is an event of a hub: what a producer sends, and what a function
// receives with the position the hub assigned.
type Event struct {
	// Body is the payload.
	Body []byte
	// Properties are application properties carried with the event.
	Properties map[string]string
	// PartitionKey selects the partition: events with the same key land in
	// the same partition, in order. Empty: the hub spreads events.
	PartitionKey string
	// MessageID, when set, makes publishing the event idempotent: an event
	// with an id the hub stored within its duplicate window (10 minutes by
	// default), or that an earlier event of the same publish carries, is
	// not stored again, and its position is the stored event's. Use an id
	// that names the fact, such as "order-17-paid", so that a retry after a
	// timeout or a crash cannot store it twice. At most 128 bytes of UTF-8
	// without control characters; empty means none. The hub does not store
	// the id: received events have none.
	MessageID string

	// Set by the hub on received events.
	Partition      int
	SequenceNumber int64
	EnqueuedTime   time.Time
}

// Position is where the hub stored a published event.
type Position struct {
	Partition      int   `json:"partition"`
	SequenceNumber int64 `json:"sequence"`
}

func toHubEvents(events []Event, partition int) []hub.Event {
	out := make([]hub.Event, len(events))
	for i, e := range events {
		out[i] = hub.Event{Body: e.Body, Properties: e.Properties, PartitionKey: e.PartitionKey, MessageID: e.MessageID}
		if partition >= 0 {
			out[i].Partition, out[i].HasPartition = partition, true
		}
	}
	return out
}

func fromStored(evs []hub.StoredEvent) []Event {
	out := make([]Event, len(evs))
	for i, e := range evs {
		out[i] = Event{Body: e.Body, Properties: e.Properties, PartitionKey: e.PartitionKey,
			Partition: e.Partition, SequenceNumber: e.Sequence, EnqueuedTime: e.EnqueuedTime}
	}
	return out
}
