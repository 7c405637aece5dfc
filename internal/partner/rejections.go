package partner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// RejectionStream keeps the rejection log: one subject per partner.
const RejectionStream = "sluice-partner-rejections"

const rejectionSubject = "sluice.partner.rejections."

// RejectionRetention is how long rejections are kept.
const RejectionRetention = 30 * 24 * time.Hour

// maxRecordedBody bounds the body kept with a rejection.
const maxRecordedBody = 16 << 10

// RejectionRecord is one refused message, for support staff and for the
// partner: what was sent, when, and every reason it was refused.
type RejectionRecord struct {
	Time      time.Time `json:"time"`
	Partner   string    `json:"partner"`
	Type      string    `json:"type"`
	MessageID string    `json:"message_id,omitempty"`
	Status    int       `json:"status"`
	Stage     string    `json:"stage,omitempty"`
	Error     string    `json:"error"`
	Problems  []Problem `json:"problems,omitempty"`
	// Body is the start of the message (up to 16 KiB), as text when it is
	// UTF-8; BodyBytes its whole size.
	Body      string `json:"body,omitempty"`
	BodyBytes int    `json:"body_bytes"`
	Remote    string `json:"remote,omitempty"`
}

// Status is the HTTP status that answers err, a refusal of Accept.
func Status(err error) int {
	var rej *Rejection
	switch {
	case errors.As(err, &rej):
		return rej.Status()
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrTypeUnusable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrExists):
		return http.StatusConflict
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func newRecord(in Inbound, at time.Time, why error) RejectionRecord {
	rec := RejectionRecord{Time: at, Partner: in.Partner, Type: in.Type, MessageID: in.MessageID,
		Status: Status(why), Error: why.Error(), BodyBytes: len(in.Body), Remote: in.Remote}
	var rej *Rejection
	if errors.As(why, &rej) {
		rec.Stage, rec.Problems = rej.Stage, rej.Problems
	}
	body := in.Body[:min(len(in.Body), maxRecordedBody)]
	for len(body) > 0 && !utf8.Valid(body) && len(in.Body)-len(body) < 4 {
		body = body[:len(body)-1] // a rune cut at the limit
	}
	if utf8.Valid(body) {
		rec.Body = string(body)
	}
	return rec
}

// RejectionLog stores rejections in a JetStream stream, a subject per
// partner, for RejectionRetention.
type RejectionLog struct{ log *jsonLog }

// OpenRejectionLog creates or opens the stream.
func OpenRejectionLog(ctx context.Context, js jetstream.JetStream) (*RejectionLog, error) {
	l, err := openJSONLog(ctx, js, RejectionStream, rejectionSubject, RejectionRetention)
	if err != nil {
		return nil, fmt.Errorf("partner: open the rejection log: %w", err)
	}
	return &RejectionLog{l}, nil
}

// Record stores one rejection.
func (l *RejectionLog) Record(ctx context.Context, rec RejectionRecord) error {
	return l.log.record(ctx, rec.Partner, rec)
}

// List returns a partner's rejections since a time, newest first, at most
// limit of them.
func (l *RejectionLog) List(ctx context.Context, partnerID string, since time.Time, limit int) ([]RejectionRecord, error) {
	return listOf[RejectionRecord](ctx, l.log, partnerID, since, limit)
}

// jsonLog is a log of JSON records in a JetStream stream, a subject per
// key (partner), kept for a retention time.
type jsonLog struct {
	js             jetstream.JetStream
	stream, prefix string
}

func openJSONLog(ctx context.Context, js jetstream.JetStream, stream, prefix string, retention time.Duration) (*jsonLog, error) {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{prefix + "*"},
		MaxAge: retention, MaxBytes: 1 << 30, Discard: jetstream.DiscardOld,
		Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, err
	}
	return &jsonLog{js: js, stream: stream, prefix: prefix}, nil
}

func (l *jsonLog) record(ctx context.Context, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = l.js.Publish(ctx, l.prefix+key, data)
	return err
}

// recordAsync stores a record without waiting for the store (a log that
// may lose its last records in a crash, never block the work it logs).
func (l *jsonLog) recordAsync(key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = l.js.PublishAsync(l.prefix+key, data)
	return err
}

// listOf reads a key's records since a time, newest first, at most limit.
func listOf[T any](ctx context.Context, l *jsonLog, key string, since time.Time, limit int) ([]T, error) {
	if limit <= 0 {
		limit = 100
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{l.prefix + key}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if !since.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := l.js.OrderedConsumer(ctx, l.stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("partner: read %s: %w", l.stream, err)
	}
	ring := make([]T, 0, limit)
	next := 0
	for {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			return nil, fmt.Errorf("partner: read %s: %w", l.stream, err)
		}
		got, last := 0, false
		for m := range batch.Messages() {
			got++
			// A message holds one record, or an array of them (a batch's).
			var recs []T
			if data := m.Data(); len(data) > 0 && data[0] == '[' {
				_ = json.Unmarshal(data, &recs)
			} else {
				var rec T
				if json.Unmarshal(data, &rec) == nil {
					recs = append(recs, rec)
				}
			}
			for _, rec := range recs {
				if len(ring) < limit {
					ring = append(ring, rec)
				} else {
					ring[next] = rec
					next = (next + 1) % limit
				}
			}
			if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
				last = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("partner: read %s: %w", l.stream, err)
		}
		if got == 0 || last {
			break
		}
	}
	// The ring holds the newest, oldest at next: give them newest first.
	out := make([]T, 0, len(ring))
	for i := range ring {
		out = append(out, ring[(next+len(ring)-1-i)%len(ring)])
	}
	return out, nil
}
