package partner

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/docstore"
)

// DeliveriesContainer holds the parked deliveries: the seed's "retry
// table", shared by every instance through the document store.
const DeliveriesContainer = "sluice-deliveries"

// States of a parked delivery.
const (
	// StateParked: waiting for its next attempt.
	StateParked = "parked"
	// StateDead: given up (refused by the endpoint, out of attempts, or
	// its endpoint is gone); kept for an operator to retry or cancel.
	StateDead = "dead"
)

// Parked is a delivery that could not be made when its message came: its
// message, where it goes, and how its attempts went.
type Parked struct {
	ID          string    `json:"id"`
	Partner     string    `json:"partner"`
	Endpoint    string    `json:"endpoint"`
	Type        string    `json:"type"`
	MessageID   string    `json:"message_id"`
	Key         string    `json:"key,omitempty"`
	Body        string    `json:"body,omitempty"`
	BodyBase64  []byte    `json:"body_base64,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Source      string    `json:"source,omitempty"`   // hub/partition/sequence
	Function    string    `json:"function,omitempty"` // the delivery function that parked it
	Order       int64     `json:"order"`              // the source's sequence: the order of a key's deliveries
	State       string    `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	Attempts    int       `json:"attempts"`
	Created     time.Time `json:"created"`
	NextAttempt time.Time `json:"next_attempt"`
	Last        *Attempt  `json:"last,omitempty"`
	// ETag is the stored document's, for conditional updates.
	ETag string `json:"-"`
}

// Message is the parked delivery's message.
func (p Parked) Message() Message {
	body := []byte(p.Body)
	if p.BodyBase64 != nil {
		body = p.BodyBase64
	}
	return Message{Partner: p.Partner, Type: p.Type, ID: p.MessageID, Key: p.Key, Body: body, ContentType: p.ContentType}
}

// NewParked makes the parked delivery of m to endpoint ep.
func NewParked(m Message, ep, source, function string, order int64, now time.Time) Parked {
	sum := sha256.Sum256([]byte(m.IdempotencyKey(ep)))
	p := Parked{ID: hex.EncodeToString(sum[:16]), Partner: m.Partner, Endpoint: ep, Type: m.Type, MessageID: m.ID,
		Key: m.Key, ContentType: m.ContentType, Source: source, Function: function, Order: order,
		State: StateParked, Created: now.UTC(), NextAttempt: now.UTC()}
	if utf8.Valid(m.Body) {
		p.Body = string(m.Body)
	} else {
		p.BodyBase64 = m.Body
	}
	return p
}

// ParkStore keeps parked deliveries in the document store.
type ParkStore struct {
	Docs docstore.Store
}

// EnsureContainer creates the container of parked deliveries if missing.
func (s ParkStore) EnsureContainer(ctx context.Context) error {
	_, err := s.Docs.CreateContainer(ctx, docstore.Container{Name: DeliveriesContainer, PartitionKeyPath: "/partner"})
	if err != nil && !errors.Is(err, docstore.ErrExists) {
		return fmt.Errorf("partner: create the container of parked deliveries: %w", err)
	}
	return nil
}

// Park stores parked deliveries in one transaction. A delivery already
// parked (the same message to the same endpoint: a batch delivered again
// after a crash) is replaced, keeping its attempts.
func (s ParkStore) Park(ctx context.Context, ps []Parked) error {
	if len(ps) == 0 {
		return nil
	}
	docs := make([][]byte, len(ps))
	for i, p := range ps {
		docs[i], _ = json.Marshal(p)
	}
	if _, err := s.Docs.BulkUpsert(ctx, DeliveriesContainer, docs); err != nil {
		return fmt.Errorf("partner: park %d deliveries: %w", len(ps), err)
	}
	return nil
}

// Update writes a parked delivery back if nobody changed it meanwhile
// (ErrPrecondition otherwise).
func (s ParkStore) Update(ctx context.Context, p Parked) error {
	data, _ := json.Marshal(p)
	_, err := s.Docs.Replace(ctx, DeliveriesContainer, data, p.ETag)
	return err
}

// Remove deletes a delivered or cancelled delivery (if unchanged).
func (s ParkStore) Remove(ctx context.Context, p Parked) error {
	err := s.Docs.Delete(ctx, DeliveriesContainer, p.Partner, p.ID, p.ETag)
	if errors.Is(err, docstore.ErrNotFound) {
		return nil
	}
	return err
}

// Filter selects parked deliveries for operators.
type Filter struct {
	Partner, Type, Endpoint string
	// State is StateParked, StateDead, or "" for both.
	State string
	// Since and Until bound when they were parked.
	Since, Until time.Time
	// Due selects parked deliveries whose next attempt is at or before it.
	Due time.Time
}

func (f Filter) query() docstore.QueryRequest {
	q := docstore.QueryRequest{Text: "SELECT * FROM c WHERE c.partner != ''", Params: map[string]any{}}
	add := func(cond, name string, v any) {
		q.Text += " AND " + cond
		q.Params[name] = v
	}
	if f.Partner != "" {
		pk := f.Partner
		q.PartitionKey = &pk
	}
	if f.Type != "" {
		add("c.type = @type", "@type", f.Type)
	}
	if f.Endpoint != "" {
		add("c.endpoint = @endpoint", "@endpoint", f.Endpoint)
	}
	if f.State != "" {
		add("c.state = @state", "@state", f.State)
	}
	if !f.Since.IsZero() {
		add("c.created >= @since", "@since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		add("c.created < @until", "@until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if !f.Due.IsZero() {
		add("c.state = @parked AND c.next_attempt <= @due", "@due", f.Due.UTC().Format(time.RFC3339Nano))
		q.Params["@parked"] = StateParked
	}
	q.Text += " ORDER BY c.created"
	return q
}

// List returns up to limit parked deliveries matching f, oldest first.
func (s ParkStore) List(ctx context.Context, f Filter, limit int) ([]Parked, error) {
	qs, ok := s.Docs.(docstore.Querier)
	if !ok {
		return nil, errors.New("partner: the document store cannot run queries")
	}
	q := f.query()
	var out []Parked
	for len(out) < limit {
		q.MaxItems = min(1000, limit-len(out))
		page, err := qs.Query(ctx, DeliveriesContainer, q)
		if errors.Is(err, docstore.ErrNotFound) {
			return nil, nil // no delivery function has run: none parked
		}
		if err != nil {
			return nil, fmt.Errorf("partner: list parked deliveries: %w", err)
		}
		for _, d := range page.Documents {
			var p Parked
			if err := json.Unmarshal(d.Body, &p); err != nil {
				continue
			}
			p.ETag = d.ETag
			out = append(out, p)
		}
		if page.Continuation == "" {
			break
		}
		q.Continuation = page.Continuation
	}
	return out, nil
}

// Lane returns the deliveries parked (not dead) for one key of an
// endpoint, in their order.
func (s ParkStore) Lane(ctx context.Context, partnerID, ep, key string) ([]Parked, error) {
	qs, ok := s.Docs.(docstore.Querier)
	if !ok {
		return nil, errors.New("partner: the document store cannot run queries")
	}
	pk := partnerID
	q := docstore.QueryRequest{Text: "SELECT * FROM c WHERE c.endpoint = @ep AND c.key = @key AND c.state = @parked",
		Params: map[string]any{"@ep": ep, "@key": key, "@parked": StateParked}, PartitionKey: &pk, MaxItems: 1000}
	var out []Parked
	for {
		page, err := qs.Query(ctx, DeliveriesContainer, q)
		if err != nil {
			return nil, fmt.Errorf("partner: read parked deliveries: %w", err)
		}
		for _, d := range page.Documents {
			var p Parked
			if json.Unmarshal(d.Body, &p) == nil {
				p.ETag = d.ETag
				out = append(out, p)
			}
		}
		if page.Continuation == "" {
			break
		}
		q.Continuation = page.Continuation
	}
	slices.SortStableFunc(out, func(a, b Parked) int { return cmp.Compare(a.Order, b.Order) })
	return out, nil
}

// ParkedKeys returns which of keys have a parked delivery to endpoint ep
// of partner: a later message with such a key waits behind it.
func (s ParkStore) ParkedKeys(ctx context.Context, partnerID, ep string, keys []string) (map[string]bool, error) {
	qs, ok := s.Docs.(docstore.Querier)
	if !ok || len(keys) == 0 {
		return nil, nil
	}
	out := map[string]bool{}
	for start := 0; start < len(keys); start += 100 {
		chunk := keys[start:min(len(keys), start+100)]
		text := "SELECT * FROM c WHERE c.endpoint = @ep AND c.key IN ("
		params := map[string]any{"@ep": ep}
		for i, k := range chunk {
			if i > 0 {
				text += ", "
			}
			name := fmt.Sprintf("@k%d", i)
			text += name
			params[name] = k
		}
		text += ")"
		pk := partnerID
		q := docstore.QueryRequest{Text: text, Params: params, PartitionKey: &pk, MaxItems: 1000}
		for {
			page, err := qs.Query(ctx, DeliveriesContainer, q)
			if err != nil {
				return nil, fmt.Errorf("partner: look for parked deliveries: %w", err)
			}
			for _, d := range page.Documents {
				var p Parked
				if json.Unmarshal(d.Body, &p) == nil && p.State == StateParked {
					out[p.Key] = true
				}
			}
			if page.Continuation == "" {
				break
			}
			q.Continuation = page.Continuation
		}
	}
	return out, nil
}

// Backoff is the wait before attempt n+1 of a parked delivery: first,
// doubling, at most limit.
func Backoff(attempts int, first, limit time.Duration) time.Duration {
	d := first
	for i := 1; i < attempts && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Retry makes the deliveries matching f (parked or dead) due now; dead
// ones start their attempts again. It returns how many it changed.
func (s ParkStore) Retry(ctx context.Context, f Filter, now time.Time) (int, error) {
	return s.each(ctx, f, func(p Parked) error {
		if p.State == StateDead {
			p.Attempts = 0
		}
		p.State, p.NextAttempt, p.Reason = StateParked, now.UTC(), "retry asked by an operator"
		return s.Update(ctx, p)
	})
}

// Cancel removes the deliveries matching f: they will not be delivered.
func (s ParkStore) Cancel(ctx context.Context, f Filter) (int, error) {
	return s.each(ctx, f, func(p Parked) error {
		p.ETag = "" // whatever an attempt did meanwhile: the operator wants it gone
		return s.Remove(ctx, p)
	})
}

// each applies fn once to every delivery matching f, skipping those
// changed meanwhile (a delivery that just went out).
func (s ParkStore) each(ctx context.Context, f Filter, fn func(Parked) error) (int, error) {
	n := 0
	seen := map[string]bool{}
	for {
		list, err := s.List(ctx, f, 1000+len(seen))
		if err != nil {
			return n, err
		}
		fresh := 0
		for _, p := range list {
			if seen[p.Partner+"/"+p.ID] {
				continue
			}
			seen[p.Partner+"/"+p.ID] = true
			fresh++
			err := fn(p)
			if errors.Is(err, docstore.ErrPrecondition) || errors.Is(err, docstore.ErrNotFound) {
				continue
			}
			if err != nil {
				return n, fmt.Errorf("partner: delivery %s: %w", p.ID, err)
			}
			n++
		}
		if fresh == 0 {
			return n, nil
		}
	}
}
