package sluice

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/queue"
)

// QueueConfig declares a queue, created when the app starts if it is
// missing. An existing queue keeps its settings.
type QueueConfig struct {
	Name string
	// MaxMessageBytes bounds a message's body and properties. Default 256 KiB.
	MaxMessageBytes int
	// Lock is how long a received message is invisible to other receivers;
	// a function's lock is renewed while it runs. Default 30 s.
	Lock time.Duration
	// TTL is how long a message is kept when nobody completes it. Default 7
	// days; negative keeps messages until they are completed.
	TTL time.Duration
	// Replicas is how many copies a NATS cluster keeps of the queue, 1 to 5.
	// Default (0): Config.Replicas, raised at start with it; a queue given
	// a count of its own keeps it.
	Replicas int
}

// Message is a queue message given to a queue-triggered function.
type Message struct {
	// ID is unique within the queue and stays the same across deliveries.
	ID         uint64
	Body       []byte
	Properties map[string]string
	Enqueued   time.Time
	// DequeueCount is how many times the message has been delivered,
	// counting this delivery.
	DequeueCount int
}

// OutgoingMessage is a message to send to a queue.
type OutgoingMessage struct {
	Body       []byte
	Properties map[string]string
	// Delay keeps the message invisible for this long.
	Delay time.Duration
	// TTL overrides the queue's TTL for this message.
	TTL time.Duration
}

// QueueTrigger triggers a function with the messages of a queue, one
// message per invocation. Every instance takes messages; a message is
// locked by one of them while it is processed.
type QueueTrigger struct {
	Queue string
	// BatchSize is how many messages are fetched at once. Default 16.
	BatchSize int
	// Concurrency bounds the messages processed at once per instance.
	// Default BatchSize/2 × the number of CPUs.
	Concurrency int
	// MaxDequeueCount is how many deliveries a message gets, counting the
	// first, before it moves to the poison queue `<queue>-poison`. Default 5.
	MaxDequeueCount int
	// TargetPerInstance is how many messages (visible or locked) one
	// instance should have: the desired instance count that
	// GET /api/v1/scale and sluice_scale_desired_instances tell an
	// autoscaler is the queue's depth divided by it, rounded up (see
	// docs/autoscaling.md). Default Concurrency, as Azure's Service Bus
	// scaler divides by maxConcurrentCalls.
	TargetPerInstance int
}

// QueueHandler processes one queue message. Returning nil completes it.
// An error fails this delivery: the message is delivered again (after the
// retry policy's delay, without holding up other messages) until
// MaxDequeueCount, then it is kept as a dead letter in the poison queue.
// Return RetryAt to try it again much later, or DeadLetterMessage to give
// up at once.
type QueueHandler func(ctx context.Context, m *Message) error

// Queue declares a queue.
func (a *App) Queue(cfg QueueConfig) {
	a.qs = append(a.qs, cfg)
}

// QueueFunction declares a function triggered by a queue. Problems with the
// declaration are reported by Start. WithRetry sets the delay before each
// redelivery of a failed message (and its retry count bounds deliveries).
func (a *App) QueueFunction(name string, trigger QueueTrigger, handler QueueHandler, opts ...FunctionOption) {
	f := host.QueueFunction{
		Name: name,
		Trigger: host.QueueTrigger{Queue: trigger.Queue, BatchSize: trigger.BatchSize,
			Concurrency: trigger.Concurrency, MaxDequeueCount: trigger.MaxDequeueCount, TargetPerInstance: trigger.TargetPerInstance},
	}
	o := applyOptions(opts)
	f.Retry, f.Breaker, f.Timeout = o.retry, o.breaker, o.timeout
	if handler != nil {
		h := withMiddleware(a, name, TriggerQueue, o.middleware, (func(context.Context, *Message) error)(handler))
		f.Handler = func(ctx context.Context, m *queue.Message) error {
			return h(ctx, &Message{ID: m.ID, Body: m.Body, Properties: m.Properties,
				Enqueued: m.Enqueued, DequeueCount: m.DequeueCount})
		}
	}
	a.declare(name, &f, &f.Breaker, &f.Timeout)
}

// Send stores messages in a queue and returns their IDs (0 for delayed
// messages, which get one when they become visible). Every message is
// validated before any is stored; up to 1,000 messages are stored all or
// none.
func (a *App) Send(ctx context.Context, queueName string, msgs ...OutgoingMessage) ([]uint64, error) {
	if err := a.running(); err != nil {
		return nil, err
	}
	out := make([]queue.Outgoing, len(msgs))
	for i, m := range msgs {
		out[i] = queue.Outgoing{Body: m.Body, Properties: m.Properties, Delay: m.Delay, TTL: m.TTL}
	}
	return a.queues.Send(ctx, queueName, out)
}

// DeadLetterRecord is a kept dead letter: the input, where it came from,
// which function gave up on it and why.
type DeadLetterRecord struct {
	// Where the letter is kept: its dead-letter queue and its ID there.
	DeadLetterQueue string `json:"dead_letter_queue,omitempty"`
	ID              uint64 `json:"id,omitempty"`

	// Function is the function that gave up on the input.
	Function string `json:"function"`
	// Reason is the error text of the last failure.
	Reason       string           `json:"reason"`
	Source       DeadLetterSource `json:"source"`
	Attempts     int              `json:"attempts"`
	FirstFailure time.Time        `json:"first_failure"`
	LastFailure  time.Time        `json:"last_failure"`
	// State is optional context the function attached (DeadLetterWith).
	State json.RawMessage `json:"state,omitempty"`
	// Redriven counts how often the input was redriven before.
	Redriven int `json:"redriven,omitempty"`

	// Body and Properties are the input's.
	Body       []byte            `json:"body"`
	Properties map[string]string `json:"properties,omitempty"`
}

// DeadLetterSource locates a dead letter's input where it came from.
type DeadLetterSource struct {
	// Kind is "hub", "queue", "container", "blob", "timer" (EnqueuedTime
	// is then the occurrence) or "pipeline" (a row a pipeline's
	// destination refused).
	Kind         string    `json:"kind"`
	Hub          string    `json:"hub,omitempty"`
	Group        string    `json:"group,omitempty"`
	Partition    int       `json:"partition"`
	Sequence     int64     `json:"sequence,omitempty"`
	PartitionKey string    `json:"partition_key,omitempty"`
	Queue        string    `json:"queue,omitempty"`
	MessageID    uint64    `json:"message_id,omitempty"`
	EnqueuedTime time.Time `json:"enqueued_time,omitzero"`
	// A change of a container's feed: the document and the change's LSN.
	Container  string `json:"container,omitempty"`
	DocumentID string `json:"document_id,omitempty"`
	LSN        int64  `json:"lsn,omitempty"`
	// Deleted marks a change that was a delete (a tombstone).
	Deleted bool `json:"deleted,omitempty"`
	// A blob of a blob container (Container): its name and the version's
	// ETag.
	Blob string `json:"blob,omitempty"`
	ETag string `json:"etag,omitempty"`
	// A row a pipeline's destination (Group) refused: the pipeline, the
	// change set (its number and source position) and the row's table;
	// Hub and Sequence are its change-log event.
	Pipeline  string `json:"pipeline,omitempty"`
	ChangeSet int64  `json:"change_set,omitempty"`
	Position  string `json:"position,omitempty"`
	Table     string `json:"table,omitempty"`
}

func deadLetterRecord(l deadletter.Letter) DeadLetterRecord {
	return DeadLetterRecord{
		DeadLetterQueue: l.DeadLetterQueue, ID: l.ID, Function: l.Function, Reason: l.Reason,
		Source: DeadLetterSource(l.Source), Attempts: l.Attempts, FirstFailure: l.FirstFailure, LastFailure: l.LastFailure,
		State: l.State, Redriven: l.Redriven, Body: l.Body, Properties: l.Properties,
	}
}

// DeadLetterFilter selects dead letters; zero fields match everything.
type DeadLetterFilter struct {
	// Queue is a dead-letter queue: "sluice-deadletters" (hub functions)
	// or "<queue>-poison" (queue functions). Empty: all of them.
	Queue    string
	Function string
	// Source is the hub or queue the inputs came from.
	Source string
	// Reason matches letters whose reason contains it.
	Reason string
	IDs    []uint64
	// ToHub, for Redrive: a hub function's inputs are published to the
	// hub again, as new events every consumer group sees. By default they
	// go back to the function that gave up on them alone, through its
	// retry queue, out of partition order (as RetryAt does).
	ToHub bool
}

func (f DeadLetterFilter) internal() deadletter.Filter {
	return deadletter.Filter{Queue: f.Queue, Function: f.Function, Source: f.Source, Reason: f.Reason, IDs: f.IDs}
}

func (a *App) deadLetters() (*deadletter.Store, error) {
	if err := a.running(); err != nil {
		return nil, err
	}
	return &deadletter.Store{Queues: a.queues, Hubs: a.hubSvc, Docs: a.docs, Blobs: a.blobs, RetryRoute: host.RedriveMessage}, nil
}

// DeadLetters lists up to limit dead letters matching f.
func (a *App) DeadLetters(ctx context.Context, f DeadLetterFilter, limit int) ([]DeadLetterRecord, error) {
	s, err := a.deadLetters()
	if err != nil {
		return nil, err
	}
	letters, err := s.List(ctx, f.internal(), limit)
	if letters == nil {
		return nil, err
	}
	out := make([]DeadLetterRecord, len(letters))
	for i, l := range letters {
		out[i] = deadLetterRecord(l)
	}
	return out, err
}

// Redrive sends the dead letters matching f back to their hub or queue,
// with their body and properties and a sluice.redrive property counting
// redrives, and removes them. It returns how many it sent.
func (a *App) Redrive(ctx context.Context, f DeadLetterFilter) (int, error) {
	s, err := a.deadLetters()
	if err != nil {
		return 0, err
	}
	return s.Redrive(ctx, f.internal(), deadletter.RedriveOptions{ToHub: f.ToHub}, nil)
}

// PurgeDeadLetters removes the dead letters matching f.
func (a *App) PurgeDeadLetters(ctx context.Context, f DeadLetterFilter) (int, error) {
	s, err := a.deadLetters()
	if err != nil {
		return 0, err
	}
	return s.Purge(ctx, f.internal())
}
