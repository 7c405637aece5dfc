package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Headers of stored messages.
const (
	// HeaderProperties holds a message's properties as a JSON object.
	HeaderProperties = "Sluice-Properties"
	// HeaderEnqueued is when a delayed or moved message was first enqueued
	// (otherwise the stored message's own time is).
	HeaderEnqueued = "Sluice-Enqueued"
	// HeaderDequeued counts deliveries of a message before it was moved
	// (rescheduled), so its dequeue count goes on from there.
	HeaderDequeued = "Sluice-Dequeued"
	// HeaderID is a moved message's ID, which it keeps.
	HeaderID = "Sluice-Id"
)

// Outgoing is a message to send.
type Outgoing struct {
	Body       []byte            `json:"body"`
	Properties map[string]string `json:"properties,omitempty"`
	// Delay keeps the message invisible for this long after sending.
	Delay time.Duration `json:"delay,omitempty"`
	// TTL is how long the message is kept; zero means the queue's TTL,
	// negative until it is completed.
	TTL time.Duration `json:"ttl,omitempty"`
	// id, enqueued and dequeued carry a moved message's history.
	id       uint64
	enqueued time.Time
	dequeued int
}

// Size is what counts against the queue's maximum message size.
func (o *Outgoing) Size() int {
	return len(o.Body) + o.propertiesSize()
}

// propertiesSize is the size of the properties as stored (a JSON header).
func (o *Outgoing) propertiesSize() int {
	if len(o.Properties) == 0 {
		return 0
	}
	b, _ := json.Marshal(o.Properties)
	return len(b)
}

// MaxPropertiesBytes bounds a message's properties as stored (JSON): they
// travel in a NATS header, which the server limits.
const MaxPropertiesBytes = 32 << 10

// Message is a received or peeked message.
type Message struct {
	// ID is the message's sequence in its queue: unique and increasing in
	// the order messages became visible.
	ID         uint64            `json:"id"`
	Body       []byte            `json:"body"`
	Properties map[string]string `json:"properties,omitempty"`
	Enqueued   time.Time         `json:"enqueued"`
	// DequeueCount is how many times the message has been delivered,
	// counting this delivery (0 for a peeked, never-delivered message).
	DequeueCount int `json:"dequeue_count"`
	// LockToken identifies this delivery's lock, for Complete, Abandon and
	// Renew. Empty for peeked messages.
	LockToken string `json:"lock_token,omitempty"`
	// Seq is where the message is stored (its ID unless it was moved), for
	// PeekAfter and DeleteMessage.
	Seq uint64 `json:"-"`

	msg jetstream.Msg
}

// Send validates every message, then stores them all; it returns their IDs
// (0 for delayed messages, which get an ID when they become visible).
// Messages without a delay are stored together as one atomic batch (per
// 1,000 messages): either all of a batch is stored or none of it.
func (s *Service) Send(ctx context.Context, name string, msgs []Outgoing) ([]uint64, error) {
	st, err := s.state(ctx, name)
	if err != nil {
		return nil, err
	}
	info := st.info
	for i := range msgs {
		m := &msgs[i]
		if size := m.propertiesSize(); size > MaxPropertiesBytes {
			return nil, fmt.Errorf("%w: the properties of message %d take %d bytes as JSON, the limit is %d bytes: put large values in the body", ErrTooLarge, i, size, MaxPropertiesBytes)
		}
		if size := m.Size(); size > info.MaxMessageBytes {
			return nil, fmt.Errorf("%w: message %d is %d bytes, the limit of queue %s is %d bytes: store the payload elsewhere and send a reference", ErrTooLarge, i, size, name, info.MaxMessageBytes)
		}
		if m.Delay < 0 {
			return nil, fmt.Errorf("%w delay %s for message %d: must not be negative", ErrInvalid, m.Delay, i)
		}
		if m.TTL > 0 && m.TTL < time.Second {
			return nil, fmt.Errorf("%w ttl %s for message %d: must be at least 1s", ErrInvalid, m.TTL, i)
		}
	}
	ids := make([]uint64, len(msgs))
	var now []int
	for i := range msgs {
		if msgs[i].Delay > 0 {
			if err := s.sendLater(ctx, info, &msgs[i], time.Now().Add(msgs[i].Delay)); err != nil {
				return nil, err
			}
			continue
		}
		now = append(now, i)
	}
	for chunk := range slices.Chunk(now, maxAtomicBatch) {
		nats := make([]*nats.Msg, len(chunk))
		for j, i := range chunk {
			nats[j] = s.natsMsg(info, subject(name), &msgs[i])
		}
		last, err := s.store(ctx, st, nats)
		if err != nil {
			return nil, s.wrap(name, "send to", err)
		}
		for j, i := range chunk {
			ids[i] = last - uint64(len(chunk)-1-j)
		}
	}
	return ids, nil
}

func (s *Service) natsMsg(info Info, subj string, m *Outgoing) *nats.Msg {
	msg := &nats.Msg{Subject: subj, Data: m.Body, Header: nats.Header{}}
	if len(m.Properties) > 0 {
		b, _ := json.Marshal(m.Properties)
		msg.Header[HeaderProperties] = []string{string(b)}
	}
	ttl := info.TTL
	if m.TTL != 0 {
		ttl = m.TTL
	}
	if ttl > 0 {
		msg.Header[jetstream.MsgTTLHeader] = []string{ttl.Round(time.Second).String()}
	}
	if !m.enqueued.IsZero() {
		msg.Header[HeaderEnqueued] = []string{m.enqueued.UTC().Format(time.RFC3339Nano)}
	}
	if m.id > 0 {
		msg.Header[HeaderID] = []string{strconv.FormatUint(m.id, 10)}
	}
	if m.dequeued > 0 {
		msg.Header[HeaderDequeued] = []string{strconv.Itoa(m.dequeued)}
	}
	return msg
}

// sendLater stores m as a one-shot schedule that moves it onto the queue at
// the given time.
func (s *Service) sendLater(ctx context.Context, info Info, m *Outgoing, at time.Time) error {
	if m.enqueued.IsZero() {
		m.enqueued = time.Now()
	}
	msg := s.natsMsg(info, "queue."+info.Name+".later."+nuid.Next(), m)
	// A scheduled message's TTL is given by the schedule.
	if ttl := msg.Header[jetstream.MsgTTLHeader]; ttl != nil {
		delete(msg.Header, jetstream.MsgTTLHeader)
		msg.Header["Nats-Schedule-TTL"] = ttl
	}
	msg.Header["Nats-Schedule"] = []string{"@at " + at.UTC().Format(time.RFC3339Nano)}
	msg.Header["Nats-Schedule-Target"] = []string{subject(info.Name)}
	_, err := s.js.PublishMsg(ctx, msg)
	return s.wrapSend(info.Name, err)
}

func (s *Service) wrapSend(name string, err error) error {
	if err == nil {
		return nil
	}
	return s.wrap(name, "send to", err)
}

// publishAtomic stores msgs as one atomic batch and returns the stream
// sequence of the last.
func (s *Service) publishAtomic(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	if len(msgs) == 1 {
		ack, err := s.js.PublishMsg(ctx, msgs[0])
		if err != nil {
			return 0, err
		}
		return ack.Sequence, nil
	}
	id := nuid.Next()
	for i, m := range msgs {
		m.Header["Nats-Batch-Id"] = []string{id}
		m.Header["Nats-Batch-Sequence"] = []string{strconv.Itoa(i + 1)}
		if i < len(msgs)-1 {
			if err := s.nc.PublishMsg(m); err != nil {
				return 0, err
			}
		}
	}
	last := msgs[len(msgs)-1]
	last.Header["Nats-Batch-Commit"] = []string{"1"}
	ack, err := s.js.PublishMsg(ctx, last)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// Receive locks and returns up to max visible messages, waiting up to wait
// for the first one.
func (s *Service) Receive(ctx context.Context, name string, max int, wait time.Duration) ([]*Message, error) {
	if max < 1 || max > 1000 {
		return nil, fmt.Errorf("%w count %d: receive 1 to 1000 messages", ErrInvalid, max)
	}
	st, err := s.state(ctx, name)
	if err != nil {
		return nil, err
	}
	out, err := s.fetch(ctx, st, max, 0)
	if err != nil || len(out) > 0 || wait <= 0 {
		return out, s.fetchErr(name, err)
	}
	if out, err = s.fetch(ctx, st, 1, wait); err != nil || len(out) == 0 {
		return out, s.fetchErr(name, err)
	}
	more, err := s.fetch(ctx, st, max-1, 0)
	return append(out, more...), s.fetchErr(name, err)
}

func (s *Service) fetchErr(name string, err error) error {
	if err == nil {
		return nil
	}
	return s.wrap(name, "receive from", err)
}

// fetch gets up to n messages, waiting up to wait for them (none: only
// what is there now).
func (s *Service) fetch(ctx context.Context, st *queueState, n int, wait time.Duration) ([]*Message, error) {
	if n == 0 {
		return nil, nil
	}
	var batch jetstream.MessageBatch
	var err error
	waited := ctx
	if wait <= 0 {
		batch, err = st.cons.FetchNoWait(n)
	} else {
		// Bounded by wait or by ctx, whichever ends first.
		var cancel context.CancelFunc
		waited, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
		batch, err = st.cons.Fetch(n, jetstream.FetchContext(waited))
	}
	if err != nil {
		return nil, err
	}
	var out []*Message
	for msg := range batch.Messages() {
		m, err := fromDelivery(msg)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	err = batch.Error()
	// The wait running out is no error: fewer messages came, or none.
	waitOver := errors.Is(err, context.DeadlineExceeded) && waited.Err() != nil && ctx.Err() == nil
	if err != nil && !errors.Is(err, nats.ErrTimeout) && !waitOver {
		return out, err
	}
	return out, nil
}

// FromDelivery converts a message delivered by a queue's consumer.
func fromDelivery(msg jetstream.Msg) (*Message, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return nil, err
	}
	h := msg.Headers()
	m := &Message{
		ID: idOf(h, meta.Sequence.Stream), Seq: meta.Sequence.Stream, Body: msg.Data(), Enqueued: enqueuedAt(h, meta.Timestamp),
		DequeueCount: int(meta.NumDelivered) + dequeuedBefore(h), LockToken: msg.Reply(), msg: msg,
	}
	m.Properties = properties(h)
	return m, nil
}

func enqueuedAt(h nats.Header, stored time.Time) time.Time {
	if v := h.Get(HeaderEnqueued); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
	}
	return stored
}

func idOf(h nats.Header, seq uint64) uint64 {
	if id, err := strconv.ParseUint(h.Get(HeaderID), 10, 64); err == nil && id > 0 {
		return id
	}
	return seq
}

func dequeuedBefore(h nats.Header) int {
	n, _ := strconv.Atoi(h.Get(HeaderDequeued))
	return n
}

func properties(h nats.Header) map[string]string {
	v := h.Get(HeaderProperties)
	if v == "" {
		return nil
	}
	var p map[string]string
	if json.Unmarshal([]byte(v), &p) != nil {
		return nil
	}
	return p
}

// Lock operations. A message received in this process carries its delivery
// and is acted on directly; a lock token from elsewhere (the HTTP API) is
// checked to belong to the queue and is acknowledged synchronously.

// Complete removes a received message: it was processed.
func (s *Service) Complete(ctx context.Context, name string, m *Message) error {
	st, err := s.state(ctx, name)
	if err != nil {
		return err
	}
	if m.msg != nil {
		err = s.ackErr(name, m.msg.DoubleAck(ctx))
	} else {
		kve, rec, herr := s.heldLock(ctx, name, m.LockToken)
		if herr != nil {
			return herr
		}
		if err = s.tokenOp(ctx, name, m.LockToken, "+ACK"); err == nil {
			s.tokenDone(ctx, name, kve, rec, "completed")
		}
	}
	if err == nil {
		s.completed(st)
	}
	return err
}

// Abandon releases a received message to be delivered again after delay
// (at once when delay is 0). It keeps its ID, enqueued time and dequeue
// count.
//
// A message received in this process and abandoned with a delay is stored
// again as a schedule and the original completed, rather than released to
// the server's redelivery: the delayed retry is then durable, and sweeping
// (see sweep) cannot drop it. Without a delay it is released to the
// server, which is cheaper; sweeps hold back while such releases happen
// (see sweeper). A lock token from elsewhere: the message is stored again from the
// stream and the delivery completed.
func (s *Service) Abandon(ctx context.Context, name string, m *Message, delay time.Duration) error {
	if delay < 0 {
		return fmt.Errorf("%w delay %s: must not be negative", ErrInvalid, delay)
	}
	st, err := s.state(ctx, name)
	if err != nil {
		return err
	}
	if m.msg != nil && delay > 0 {
		return s.requeue(ctx, name, m, time.Now().Add(delay), m.DequeueCount)
	}
	if m.msg == nil && m.LockToken == "" {
		return fmt.Errorf("%w: no lock token: abandon a message that a receive returned", ErrInvalid)
	}
	if m.msg != nil {
		st.releaseMu.RLock()
		defer st.releaseMu.RUnlock()
		st.lastRelease.Store(time.Now().UnixNano())
		return s.ackErr(name, m.msg.Nak())
	}
	// A lock token from elsewhere: store the message again from the
	// stream, then complete the delivery.
	delivered, seq, err := parseToken(name, m.LockToken)
	if err != nil {
		return err
	}
	kve, rec, err := s.heldLock(ctx, name, m.LockToken)
	if err != nil {
		return err
	}
	stream, err := s.js.Stream(ctx, StreamName(name))
	if err != nil {
		return s.wrap(name, "abandon on", err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%w: the message of this lock token is no longer in queue %s (completed)", ErrLockLost, name)
	}
	if err != nil {
		return s.wrap(name, "abandon on", err)
	}
	stored := &Message{ID: idOf(raw.Header, seq), Body: raw.Data, Properties: properties(raw.Header),
		Enqueued: enqueuedAt(raw.Header, raw.Time), DequeueCount: dequeuedBefore(raw.Header) + delivered, LockToken: m.LockToken}
	if err := s.storeCopy(ctx, name, stored, time.Now().Add(delay), stored.DequeueCount); err != nil {
		return err
	}
	if err := s.tokenOp(ctx, name, m.LockToken, "+ACK"); err != nil {
		return err
	}
	s.tokenDone(ctx, name, kve, rec, "abandoned")
	s.completed(st)
	return nil
}

// Renew extends a received message's lock by the queue's lock duration.
func (s *Service) Renew(ctx context.Context, name string, m *Message) error {
	if m.msg != nil {
		return s.ackErr(name, m.msg.InProgress())
	}
	kve, rec, err := s.heldLock(ctx, name, m.LockToken)
	if err != nil {
		return err
	}
	if err := s.tokenOp(ctx, name, m.LockToken, "+WPI"); err != nil {
		return err
	}
	return s.tokenRenewed(ctx, name, kve, rec)
}

// CompleteAsync completes a message received in this process without
// waiting for the server's confirmation (at-least-once either way: a lost
// completion means the message is delivered again).
func (s *Service) CompleteAsync(ctx context.Context, name string, m *Message) error {
	st, err := s.state(ctx, name)
	if err != nil {
		return err
	}
	if err := m.msg.Ack(); err != nil {
		return s.ackErr(name, err)
	}
	s.completed(st)
	return nil
}

func (s *Service) ackErr(name string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		return fmt.Errorf("%w: message of queue %s was already completed or released", ErrLockLost, name)
	}
	return s.wrap(name, "acknowledge on", err)
}

// tokenOp sends an acknowledgement to a lock token's subject and waits for
// the server to confirm it.
func (s *Service) tokenOp(ctx context.Context, name, token, body string) error {
	if err := s.checkToken(name, token); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.nc.RequestWithContext(ctx, token, []byte(body))
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("%w: the lock of this message of queue %s has expired or was released", ErrLockLost, name)
	}
	if err != nil {
		return fmt.Errorf("queue: acknowledge on %s: %w", name, err)
	}
	return nil
}

// checkToken accepts only acknowledgement subjects of the queue's consumer.
func (s *Service) checkToken(name, token string) error {
	_, _, err := parseToken(name, token)
	return err
}

// parseToken checks that token is an acknowledgement subject of the queue's
// consumer and returns the delivery count and stream sequence it names.
func parseToken(name, token string) (delivered int, seq uint64, err error) {
	delivered, seq, _, err = parseTokenFull(name, token)
	return delivered, seq, err
}

// parseTokenFull is parseToken with the consumer sequence of the delivery
// too.
func parseTokenFull(name, token string) (delivered int, seq, delivery uint64, err error) {
	const prefix = "$JS.ACK."
	bad := fmt.Errorf("%w lock token: not a lock token of queue %s (use the lock_token a receive returned)", ErrInvalid, name)
	if !strings.HasPrefix(token, prefix) || strings.ContainsAny(token, " \t\r\n*>") {
		return 0, 0, 0, bad
	}
	tokens := strings.Split(token[len(prefix):], ".")
	// v1: <stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>;
	// v2: <domain>.<account hash>.<stream>.<consumer>.<the same numbers>...
	for i := 0; i+4 < len(tokens); i++ {
		if tokens[i] == StreamName(name) && tokens[i+1] == consumerName && (i == 0 || i == 2) {
			d, err1 := strconv.Atoi(tokens[i+2])
			sq, err2 := strconv.ParseUint(tokens[i+3], 10, 64)
			dq, err3 := strconv.ParseUint(tokens[i+4], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				return 0, 0, 0, bad
			}
			return d, sq, dq, nil
		}
	}
	return 0, 0, 0, bad
}

// Peek returns up to limit of the oldest messages without locking them. It
// includes messages that are locked at the moment, and may include
// messages completed while an older one is still locked.
func (s *Service) Peek(ctx context.Context, name string, limit int) ([]*Message, error) {
	return s.PeekAfter(ctx, name, 0, limit)
}

// PeekAfter is Peek from the messages stored after seq (a Message.Seq), for
// paging through a queue.
func (s *Service) PeekAfter(ctx context.Context, name string, after uint64, limit int) ([]*Message, error) {
	if limit < 1 || limit > 1000 {
		return nil, fmt.Errorf("%w count %d: peek 1 to 1000 messages", ErrInvalid, limit)
	}
	st, err := s.state(ctx, name)
	if err != nil {
		return nil, err
	}
	stream, err := s.js.Stream(ctx, StreamName(name))
	if err != nil {
		return nil, s.wrap(name, "peek into", err)
	}
	ci, err := st.cons.Info(ctx)
	if err != nil {
		return nil, s.wrap(name, "peek into", err)
	}
	var out []*Message
	// Messages up to the floor are completed (and about to be swept).
	seq := max(stream.CachedInfo().State.FirstSeq, ci.AckFloor.Stream+1, after+1)
	for len(out) < limit {
		raw, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject(name)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, s.wrap(name, "peek into", err)
		}
		out = append(out, &Message{ID: idOf(raw.Header, raw.Sequence), Seq: raw.Sequence, Body: raw.Data,
			Properties: properties(raw.Header), Enqueued: enqueuedAt(raw.Header, raw.Time), DequeueCount: dequeuedBefore(raw.Header)})
		seq = raw.Sequence + 1
	}
	return out, nil
}

// DeleteMessage removes the message stored at seq (a Message.Seq), locked
// or not. It is for tools (removing one dead letter), not for processing.
func (s *Service) DeleteMessage(ctx context.Context, name string, seq uint64) error {
	if _, err := s.state(ctx, name); err != nil {
		return err
	}
	stream, err := s.js.Stream(ctx, StreamName(name))
	if err != nil {
		return s.wrap(name, "delete from", err)
	}
	err = stream.DeleteMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		return fmt.Errorf("%w: message %d of queue %s", ErrNotFound, seq, name)
	}
	if err != nil {
		return s.wrap(name, "delete from", err)
	}
	return nil
}

// Move stores a received message again, to be visible at the given time,
// keeping its body, properties and enqueued time, and then completes the
// original. (A crash in between leaves both: at-least-once.) It is how a
// function asks for a message to be tried again much later, which is not a
// failed delivery: the moved message's dequeue count goes on from the
// deliveries before this one.
func (s *Service) Move(ctx context.Context, name string, m *Message, at time.Time) error {
	if m.msg == nil {
		return fmt.Errorf("%w: only a message received in this process can be moved", ErrInvalid)
	}
	return s.requeue(ctx, name, m, at, m.DequeueCount-1)
}

// requeue stores a received message again, visible at at, with dequeued
// deliveries counted before it, then completes the original.
func (s *Service) requeue(ctx context.Context, name string, m *Message, at time.Time, dequeued int) error {
	if err := s.storeCopy(ctx, name, m, at, dequeued); err != nil {
		return err
	}
	if m.msg == nil {
		return s.Complete(ctx, name, m)
	}
	return s.CompleteAsync(ctx, name, m)
}

// storeCopy stores m again, visible at at.
func (s *Service) storeCopy(ctx context.Context, name string, m *Message, at time.Time, dequeued int) error {
	st, err := s.state(ctx, name)
	if err != nil {
		return err
	}
	out := Outgoing{Body: m.Body, Properties: m.Properties, id: m.ID, enqueued: m.Enqueued, dequeued: dequeued}
	if time.Until(at) > 0 {
		err = s.sendLater(ctx, st.info, &out, at)
	} else {
		_, err = s.store(ctx, st, []*nats.Msg{s.natsMsg(st.info, subject(name), &out)})
		err = s.wrapSend(name, err)
	}
	return err
}

func slicesSortByName(infos []Info) {
	slices.SortFunc(infos, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
}

// ErrStopped is returned by Iterator.Next after Stop.
var ErrStopped = errors.New("queue iterator stopped")

// Iterator takes messages from a queue continuously, keeping up to a batch
// fetched ahead. It is for one goroutine.
type Iterator struct {
	name string
	it   jetstream.MessagesContext
	mu   sync.Mutex
	stop bool
	keep bool // stopped by Pause: hand out what was fetched ahead
}

// Messages starts taking messages from a queue, fetching batch at a time.
func (s *Service) Messages(ctx context.Context, name string, batch int) (*Iterator, error) {
	st, err := s.state(ctx, name)
	if err != nil {
		return nil, err
	}
	it, err := st.cons.Messages(jetstream.PullMaxMessages(batch), jetstream.PullExpiry(time.Second))
	if err != nil {
		return nil, s.wrap(name, "receive from", err)
	}
	return &Iterator{name: name, it: it}, nil
}

// Next returns the next message, waiting for one; its lock runs from when
// it was fetched.
func (i *Iterator) Next() (*Message, error) {
	for {
		msg, err := i.it.Next()
		i.mu.Lock()
		stopped, keep := i.stop, i.keep
		i.mu.Unlock()
		switch {
		case err != nil && stopped:
			return nil, ErrStopped
		case err != nil:
			return nil, err
		case stopped && !keep:
			_ = msg.Nak() // fetched ahead, never handed out: deliver again
			continue
		}
		return fromDelivery(msg)
	}
}

// Close stops the iterator and waits until the messages fetched ahead are
// released.
func (i *Iterator) Close() {
	i.Stop()
	for {
		if _, err := i.Next(); err != nil {
			return
		}
	}
}

// Stop stops fetching and releases the messages fetched but not yet
// returned by Next, so that they are delivered again at once. Next returns
// ErrStopped afterwards. Safe to call from another goroutine.
func (i *Iterator) Stop() {
	i.mu.Lock()
	i.stop, i.keep = true, false
	i.mu.Unlock()
	i.it.Drain()
}

// Pause stops fetching; Next still returns the messages fetched ahead
// (with their locks), then ErrStopped. Releasing those would count a
// delivery against each; a caller that cannot process them can Move them
// back instead, which does not. Safe to call from another goroutine.
func (i *Iterator) Pause() {
	i.mu.Lock()
	if i.stop {
		i.mu.Unlock()
		return
	}
	i.stop, i.keep = true, true
	i.mu.Unlock()
	i.it.Drain()
}
