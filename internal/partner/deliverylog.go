package partner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DeliveryStream keeps the delivery log: every attempt of every delivery,
// a subject per partner.
const DeliveryStream = "sluice-partner-deliveries"

const deliverySubject = "sluice.partner.deliveries."

// DeliveryRetention is how long the delivery log is kept.
const DeliveryRetention = 7 * 24 * time.Hour

// DeliveryRecord is one attempt to deliver a message to an endpoint.
type DeliveryRecord struct {
	Attempt
	Partner   string `json:"partner"`
	Endpoint  string `json:"endpoint"`
	Type      string `json:"type"`
	MessageID string `json:"message_id"`
	Source    string `json:"source,omitempty"`
	// Number counts the attempts of this delivery (1 for the first).
	Number int `json:"number"`
	// Parked: the delivery was parked after this attempt (or without
	// one, behind an earlier delivery or an open breaker: Reason).
	Parked bool   `json:"parked,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// DeliveryLog stores the delivery log.
type DeliveryLog struct{ log *jsonLog }

// OpenDeliveryLog creates or opens the stream.
func OpenDeliveryLog(ctx context.Context, js jetstream.JetStream) (*DeliveryLog, error) {
	l, err := openJSONLog(ctx, js, DeliveryStream, deliverySubject, DeliveryRetention)
	if err != nil {
		return nil, fmt.Errorf("partner: open the delivery log: %w", err)
	}
	return &DeliveryLog{l}, nil
}

// Record logs attempts without waiting for them to be stored: the log is
// for people, and must not slow deliveries down. The records of one
// partner go together in one stored message, so that a batch of
// deliveries costs one write per partner, not one per attempt.
func (l *DeliveryLog) Record(recs ...DeliveryRecord) error {
	byPartner := map[string][]DeliveryRecord{}
	var order []string
	for _, r := range recs {
		if _, ok := byPartner[r.Partner]; !ok {
			order = append(order, r.Partner)
		}
		byPartner[r.Partner] = append(byPartner[r.Partner], r)
	}
	var errs []error
	for _, p := range order {
		if err := l.log.recordAsync(p, byPartner[p]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// List returns a partner's delivery records since a time, newest first,
// at most limit of them.
func (l *DeliveryLog) List(ctx context.Context, partnerID string, since time.Time, limit int) ([]DeliveryRecord, error) {
	return listOf[DeliveryRecord](ctx, l.log, partnerID, since, limit)
}
