package partner

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	received := now().UTC()
	if err := s.Registry.Authenticate(in.Partner, in.Token); err != nil {
		return Accepted{}, err
	}
	if in.MessageID != "" {
		if err := hub.ValidateMessageID(in.MessageID); err != nil {
			return Accepted{}, s.refuse(ctx, in, received, &Rejection{Stage: StageParse, Problems: []Problem{{Location: "Message-Id", Reason: err.Error()}}})
		}
	}
	c, err := s.Registry.lookup(in.Partner, in.Type)
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrForbidden) {
			return Accepted{}, s.refuse(ctx, in, received, err)
		}
		return Accepted{}, err
	}
	if int64(len(in.Body)) > c.def.MaxBytes {
		return Accepted{}, s.refuse(ctx, in, received, fmt.Errorf("%w: %d bytes, the limit of type %q is %d bytes", ErrTooLarge, len(in.Body), in.Type, c.def.MaxBytes))
	}
	body, key, err := c.process(ctx, in.Body)
	if err != nil {
		return Accepted{}, s.refuse(ctx, in, received, err)
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
	pos, err := s.Hubs.Publish(ctx, c.def.Hub, []hub.Event{ev})
	if errors.Is(err, hub.ErrNotFound) {
		return Accepted{}, fmt.Errorf("%w: message type %q routes to the hub %s, which does not exist; an operator must create it", ErrTypeUnusable, c.def.Name, c.def.Hub)
	}
	if err != nil {
		return Accepted{}, fmt.Errorf("partner: publish to hub %s: %w", c.def.Hub, err)
	}
	s.count(in.Partner, in.Type, "accepted")
	return Accepted{MessageID: id, Partner: in.Partner, Type: c.def.Name, Hub: c.def.Hub,
		Partition: pos[0].Partition, Sequence: pos[0].Sequence, Received: received}, nil
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
func (s *Service) MaxBytes(partnerID, typ string) int64 {
	if c, err := s.Registry.lookup(partnerID, typ); err == nil {
		return c.def.MaxBytes
	}
	return DefaultMaxMessageBytes
}
