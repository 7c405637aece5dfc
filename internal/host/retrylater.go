package host

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
)

// Scheduled re-delivery of hub events. A hub function that returns a
// *RetryLaterError sets its batch aside: each event goes to the function's
// retry queue, `sluice-retry-<function>`, as a delayed message (durable, see
// package queue), and the partition moves on. When an event is due, the
// host invokes the function with it alone, out of its partition's order.
// If it fails there, it is retried per the function's retry policy and then
// dead-lettered as if it had failed in its partition; it may ask to be
// retried later again.

// propRetry holds a set-aside event's position in its hub (JSON).
const propRetry = "sluice.retry"

// RetryQueue is the queue of a hub function's events set aside to be tried
// again later, or "" when the function's name cannot name a queue.
func RetryQueue(function string) string {
	name := "sluice-retry-" + function
	if queue.ValidateName(name) != nil {
		return ""
	}
	return name
}

type retryPosition struct {
	Hub          string    `json:"hub"`
	Group        string    `json:"group"`
	Partition    int       `json:"partition"`
	Sequence     int64     `json:"sequence"`
	PartitionKey string    `json:"partition_key,omitempty"`
	Enqueued     time.Time `json:"enqueued"`
}

// setAside stores a batch's events in the function's retry queue, due at
// later.At, retrying until it succeeds or ctx ends. It reports false when
// the batch was not set aside (no queue service, or ctx ended).
func (h *Host) setAside(ctx context.Context, f *function, batch []hub.StoredEvent, later *RetryLaterError, log *slog.Logger) bool {
	name := RetryQueue(f.Name)
	if h.cfg.Queues == nil || name == "" {
		log.Error("cannot set events aside to retry later: this function has no retry queue; treating it as a failure", "function", f.Name)
		return false
	}
	msgs := make([]queue.Outgoing, len(batch))
	for i, e := range batch {
		pos, _ := json.Marshal(retryPosition{Hub: f.Trigger.Hub, Group: f.Trigger.Group, Partition: e.Partition,
			Sequence: e.Sequence, PartitionKey: e.PartitionKey, Enqueued: e.EnqueuedTime})
		props := make(map[string]string, len(e.Properties)+1)
		maps.Copy(props, e.Properties)
		props[propRetry] = string(pos)
		msgs[i] = queue.Outgoing{Body: e.Body, Properties: props, Delay: max(time.Until(later.At), time.Millisecond)}
	}
	if !untilDone(ctx, log, "cannot set events aside to retry later; the partition waits", func() error {
		_, err := h.cfg.Queues.Send(ctx, name, msgs)
		return err
	}) {
		return false
	}
	log.Info("events set aside to retry later", "events", len(batch), "first_sequence", batch[0].Sequence,
		"at", later.At, "reason", later.Reason)
	return true
}

// RedriveMessage is the message that gives a dead-lettered event of a
// hub function back to that function alone, through its retry queue, due
// at once: what a redrive does by default, so that the event is not a new
// one every consumer group of the hub sees. It returns the queue's name,
// or ok false when the function's name cannot name a queue.
func RedriveMessage(function, hubName, group string, partition int, sequence int64, partitionKey string,
	enqueued time.Time, body []byte, props map[string]string) (name string, m queue.Outgoing, ok bool) {
	if name = RetryQueue(function); name == "" {
		return "", queue.Outgoing{}, false
	}
	pos, _ := json.Marshal(retryPosition{Hub: hubName, Group: group, Partition: partition, Sequence: sequence,
		PartitionKey: partitionKey, Enqueued: enqueued})
	p := make(map[string]string, len(props)+1)
	maps.Copy(p, props)
	p[propRetry] = string(pos)
	return name, queue.Outgoing{Body: body, Properties: p}, true
}

// eventFromRetry rebuilds a set-aside event.
func eventFromRetry(m *queue.Message) hub.StoredEvent {
	var pos retryPosition
	_ = json.Unmarshal([]byte(m.Properties[propRetry]), &pos)
	props := maps.Clone(m.Properties)
	delete(props, propRetry)
	if len(props) == 0 {
		props = nil
	}
	return hub.StoredEvent{Body: m.Body, Properties: props, Partition: pos.Partition, Sequence: pos.Sequence,
		PartitionKey: pos.PartitionKey, EnqueuedTime: pos.Enqueued}
}

// startRetries runs a hub function on its retry queue's due events.
func (h *Host) startRetries(ctx context.Context, f *function) error {
	name := RetryQueue(f.Name)
	if h.cfg.Queues == nil || name == "" {
		return nil
	}
	if _, err := h.cfg.Queues.Ensure(ctx, queue.Config{Name: name, TTL: -1,
		MaxMessageBytes: min(h.cfg.Hubs.MaxEventBytes()+hub.EventReserve, h.cfg.Queues.MaxMessageBytesLimit())}); err != nil {
		return fmt.Errorf("host: function %s: retry queue: %w", f.Name, err)
	}
	deliveries := 1 // no retry policy: a failure dead-letters at once, as in the partition
	if n := f.Retry.MaxRetryCount; f.Retry.Strategy != "" {
		deliveries = n + 1
		if n < 0 {
			deliveries = 1 << 30
		}
	}
	qf := h.newQueueFunction(QueueFunction{
		Name:    f.Name,
		Trigger: QueueTrigger{Queue: name, BatchSize: 16, Concurrency: 4, MaxDequeueCount: deliveries},
		Retry:   f.Retry,
		Timeout: f.Timeout,
		Handler: func(ctx context.Context, m *queue.Message) error {
			return f.Handler(ctx, []hub.StoredEvent{eventFromRetry(m)})
		},
	}, f.processed, f.breaker)
	qf.giveUp = func(ctx context.Context, m *queue.Message, reason error, now time.Time) error {
		return h.cfg.DeadLetters.Put(ctx, []DeadLetter{h.letter(f, eventFromRetry(m), reason, m.DequeueCount, now, now)})
	}
	return qf.start(ctx, h)
}
