package partner

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/hub"
)

// Publisher stores events in a hub (a *hub.Service).
type Publisher interface {
	Publish(ctx context.Context, hub string, events []hub.Event) ([]hub.Position, error)
}

// Counter counts inbound messages by partner, type and result
// ("accepted", "rejected"); nil counts nothing.
type Counter func(partner, typ, result string)

// Service is the inbound path: Accept takes partners' messages.
type Service struct {
	Registry   *Registry
	Hubs       Publisher
	Rejections *RejectionLog
	// Parks and Deliveries are the retry table and the delivery log of
	// deliveries, when the app delivers.
	Parks      *ParkStore
	Deliveries *DeliveryLog
	Count      Counter
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Properties set on every accepted message's hub event.
const (
	PropPartner     = "partner"
	PropType        = "message-type"
	PropMessageID   = "message-id"
	PropReceived    = "received-time"
	PropContentType = "content-type"
)

// Inbound is one message as a partner sent it.
type Inbound struct {
	Partner, Type string
	// Token is the partner's token.
	Token string
	Body  []byte
	// MessageID is the partner's id of the message; empty: one is made.
	// A message sent again with the same id within the hub's duplicate
	// window is not stored again: the answer is the first one's.
	MessageID string
	// Remote is the sender's address, for the rejection log.
	Remote string
}

// Accepted is the answer to an accepted message: where it is stored.
type Accepted struct {
	MessageID string    `json:"message_id"`
	Partner   string    `json:"partner"`
	Type      string    `json:"type"`
	Hub       string    `json:"hub"`
	Partition int       `json:"partition"`
	Sequence  int64     `json:"sequence"`
	Received  time.Time `json:"received"`
}

// Accept checks a message's token, validates it, transforms it, validates
// the result and publishes it to its type's hub, durably, before it
// returns. A refused message is written nowhere but the rejection log; an
// error wraps ErrUnauthorized, ErrForbidden, ErrNotFound, ErrTooLarge or
// is a *Rejection, or says that the engine failed.
func (s *Service) Accept(ctx context.Context, in Inbound) (Accepted, error) {
	received := s.now()
	if err := s.Registry.Authenticate(in.Partner, in.Token); err != nil {
		return Accepted{}, err
	}
	if err := checkMessageID(in.MessageID); err != nil {
		return Accepted{}, s.refuse(ctx, in, received, err)
	}
	c, err := s.messageType(ctx, in, received)
	if err != nil {
		return Accepted{}, err
	}
	ev, acc, err := c.prepare(ctx, in, received)
	if err != nil {
		return Accepted{}, s.refuse(ctx, in, received, err)
	}
	pos, err := s.publish(ctx, c, []hub.Event{ev})
	if err != nil {
		return Accepted{}, err
	}
	acc.Partition, acc.Sequence = pos[0].Partition, pos[0].Sequence
	s.count(in.Partner, in.Type, "accepted")
	return acc, nil
}

// MaxBatchMessages bounds the messages of one batch.
const MaxBatchMessages = 1000

// Batch is several messages of one type from one partner, sent together.
type Batch struct {
	Partner, Type string
	// Token is the partner's token.
	Token    string
	Messages []BatchMessage
	// Remote is the sender's address, for the rejection log.
	Remote string
}

// BatchMessage is one message of a batch: its body and its optional id
// (see Inbound.MessageID).
type BatchMessage struct {
	MessageID string
	Body      []byte
}

// BatchResult is what became of one message of a batch: Err is nil and
// Accepted says where it is stored, or Err says why it was refused (as
// Accept's errors do).
type BatchResult struct {
	Accepted Accepted
	Err      error
}

// AcceptBatch takes a batch of messages: each is checked and transformed
// as Accept does, on every core, and those that pass are published
// together, durably, before it returns. A refused message does not hold
// up the others: its result says why, and it goes to the rejection log.
// The error is for the batch as a whole (a bad token, an unknown type or
// one the partner may not send, too many messages, the engine failing);
// then no result is returned and nothing of the batch was stored, or, when
// the engine failed, perhaps some of it: sending the batch again with the
// same message ids stores nothing twice.
func (s *Service) AcceptBatch(ctx context.Context, b Batch) ([]BatchResult, error) {
	received := s.now()
	if err := s.Registry.Authenticate(b.Partner, b.Token); err != nil {
		return nil, err
	}
	whole := Inbound{Partner: b.Partner, Type: b.Type, Token: b.Token, Remote: b.Remote}
	switch n := len(b.Messages); {
	case n == 0:
		return nil, s.refuse(ctx, whole, received, fmt.Errorf("%w batch: it holds no message", ErrInvalid))
	case n > MaxBatchMessages:
		return nil, s.refuse(ctx, whole, received, fmt.Errorf("%w: a batch holds at most %d messages, this one %d: send it in parts", ErrTooLarge, MaxBatchMessages, n))
	}
	c, err := s.messageType(ctx, whole, received)
	if err != nil {
		return nil, err
	}
	results := make([]BatchResult, len(b.Messages))
	events := make([]hub.Event, len(b.Messages))
	inbound := func(i int) Inbound {
		m := b.Messages[i]
		return Inbound{Partner: b.Partner, Type: b.Type, Token: b.Token, Body: m.Body, MessageID: m.MessageID, Remote: b.Remote}
	}
	eachOnAllCores(len(b.Messages), func(i int) {
		in := inbound(i)
		if err := checkMessageID(in.MessageID); err != nil {
			results[i].Err = err
			return
		}
		events[i], results[i].Accepted, results[i].Err = c.prepare(ctx, in, received)
	})
	var publish []hub.Event
	var at []int
	for i := range results {
		if results[i].Err == nil {
			publish, at = append(publish, events[i]), append(at, i)
		}
	}
	if len(publish) > 0 {
		pos, err := s.publish(ctx, c, publish)
		if err != nil {
			return nil, err
		}
		for j, i := range at {
			results[i].Accepted.Partition, results[i].Accepted.Sequence = pos[j].Partition, pos[j].Sequence
			s.count(b.Partner, b.Type, "accepted")
		}
	}
	for i := range results {
		if results[i].Err != nil {
			results[i].Err = s.refuse(ctx, inbound(i), received, results[i].Err)
		}
	}
	return results, nil
}

// eachOnAllCores calls fn(i) for every i below n, on as many goroutines as
// there are cores (and at most one per 8 items).
func eachOnAllCores(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+7)/8)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func checkMessageID(id string) error {
	if id == "" {
		return nil
	}
	if err := hub.ValidateMessageID(id); err != nil {
		return &Rejection{Stage: StageParse, Problems: []Problem{{Location: "Message-Id", Reason: err.Error()}}}
	}
	return nil
}

// messageType finds the type a partner sends, refusing (and logging) an
// unknown one or one the partner may not send.
func (s *Service) messageType(ctx context.Context, in Inbound, received time.Time) (*compiled, error) {
	c, err := s.Registry.lookup(in.Partner, in.Type)
	if err != nil && (errors.Is(err, ErrNotFound) || errors.Is(err, ErrForbidden)) {
		return nil, s.refuse(ctx, in, received, err)
	}
	return c, err
}

// prepare checks and transforms one message of type c into the hub event
// to publish, and the answer without its position.
func (c *compiled) prepare(ctx context.Context, in Inbound, received time.Time) (hub.Event, Accepted, error) {
	if int64(len(in.Body)) > c.def.MaxBytes {
		return hub.Event{}, Accepted{}, fmt.Errorf("%w: %d bytes, the limit of type %q is %d bytes", ErrTooLarge, len(in.Body), in.Type, c.def.MaxBytes)
	}
	body, key, err := c.process(ctx, in.Body)
	if err != nil {
		return hub.Event{}, Accepted{}, err
	}
	id := in.MessageID
	dedupe := ""
	if id == "" {
		id = newMessageID()
	} else {
		dedupe = dedupeID(in.Partner, c.def.Name, id)
	}
	if key == "" {
		key = id
	}
	ev := hub.Event{Body: body, PartitionKey: key, MessageID: dedupe, Properties: map[string]string{
		PropPartner: in.Partner, PropType: c.def.Name, PropMessageID: id,
		PropReceived: received.Format(time.RFC3339Nano), PropContentType: c.contentType,
	}}
	return ev, Accepted{MessageID: id, Partner: in.Partner, Type: c.def.Name, Hub: c.def.Hub, Received: received}, nil
}

// publish stores a type's events in its hub.
func (s *Service) publish(ctx context.Context, c *compiled, events []hub.Event) ([]hub.Position, error) {
	pos, err := s.Hubs.Publish(ctx, c.def.Hub, events)
	if errors.Is(err, hub.ErrNotFound) {
		return nil, fmt.Errorf("%w: message type %q routes to the hub %s, which does not exist; an operator must create it", ErrTypeUnusable, c.def.Name, c.def.Hub)
	}
	if err != nil {
		return nil, fmt.Errorf("partner: publish to hub %s: %w", c.def.Hub, err)
	}
	return pos, nil
}

func (s *Service) count(partner, typ, result string) {
	if s.Count != nil {
		s.Count(partner, typ, result)
	}
}

// refuse records a refused message of an authenticated partner and returns
// the refusal.
func (s *Service) refuse(ctx context.Context, in Inbound, at time.Time, why error) error {
	label := in.Type
	if errors.Is(why, ErrNotFound) {
		label = "(unknown)" // a sender's made-up names do not become series
	}
	s.count(in.Partner, label, "rejected")
	if s.Rejections != nil {
		if err := s.Rejections.Record(ctx, newRecord(in, at, why)); err != nil {
			s.Registry.log.Warn("partner: a rejection could not be recorded", "partner", in.Partner, "type", in.Type, "err", err)
		}
	}
	return why
}

// process runs a message through its type: parse and validate, transform,
// validate the result, pick the partition key.
func (c *compiled) process(ctx context.Context, body []byte) ([]byte, string, error) {
	v, err := c.in(body)
	if err != nil {
		return nil, "", err
	}
	out, err := c.out(ctx, v)
	if err != nil {
		return nil, "", err
	}
	if err := c.target(out); err != nil {
		return nil, "", err
	}
	data, err := c.encode(out)
	if err != nil {
		return nil, "", reject(StageTransform, Problem{Reason: "the transformed message cannot be encoded: " + err.Error()})
	}
	key := ""
	if c.key != nil {
		if key, err = c.key(out); err != nil {
			return nil, "", reject(StagePartitionKey, Problem{Reason: err.Error()})
		}
	}
	return data, key, nil
}

func newMessageID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dedupeID is the hub message id of a partner's message: unique per
// partner and type, at most hub.MaxMessageIDBytes.
func dedupeID(partner, typ, id string) string {
	s := "partner:" + partner + ":" + typ + ":" + id
	if len(s) <= hub.MaxMessageIDBytes {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "partner:" + hex.EncodeToString(sum[:])
}

// MaxBytes is the size limit of a message of type typ from partner (the
// default when there is no such type: Accept will say so).
// Format is what partners send as messages of type typ: FormatJSON or
// FormatXML ("" for a type that partner cannot send).
func (s *Service) Format(partnerID, typ string) string {
	if c, err := s.Registry.lookup(partnerID, typ); err == nil {
		return c.def.Format
	}
	return ""
}

func (s *Service) MaxBytes(partnerID, typ string) int64 {
	if c, err := s.Registry.lookup(partnerID, typ); err == nil {
		return c.def.MaxBytes
	}
	return DefaultMaxMessageBytes
}
