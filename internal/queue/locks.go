package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lock tokens handed out to clients elsewhere (the HTTP API) are the
// acknowledgement subjects of their deliveries. The server acknowledges by
// stream sequence whatever the delivery, so on its own an old token would
// complete or renew a later delivery of the same message, made after its
// lock expired. So each delivery handed out as a token is recorded in the
// KV bucket sluice-queue-locks, keyed by queue and stream sequence, with
// the consumer sequence of that delivery and when its lock ends; a token
// acts only while it names the recorded delivery and its lock has not
// ended, as a peek-lock does.
//
// What is left: between the check and the acknowledgement (a round trip)
// the lock may expire and the message be delivered again, and the
// acknowledgement then completes that delivery. And deliveries to this
// process's own receivers (functions) are not recorded, so a token whose
// lock expired is refused whoever received the message next.

const locksBucket = "sluice-queue-locks"

// lockRecord is the delivery a token may act on.
type lockRecord struct {
	// Delivery is the consumer sequence of the delivery.
	Delivery uint64 `json:"delivery"`
	// Until is when its lock ends (unix nanoseconds, the recording
	// instance's clock).
	Until int64 `json:"until"`
	// Done is set once the message was completed or abandoned through the
	// token.
	Done string `json:"done,omitempty"`
}

func lockKey(queue string, seq uint64) string {
	return "lock." + queue + "." + strconv.FormatUint(seq, 10)
}

// lockKV opens the bucket on first use.
func (s *Service) lockKV(ctx context.Context) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks != nil {
		return s.locks, nil
	}
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: locksBucket, History: 1,
		Storage: jetstream.FileStorage, TTL: 24 * time.Hour})
	if err != nil {
		return nil, fmt.Errorf("queue: open the lock bucket: %w", err)
	}
	s.locks = kv
	return kv, nil
}

// ReceiveTokens is Receive for clients that act later by lock token: each
// delivery is recorded, so that its token stops acting once its lock
// ends or the message is delivered again.
func (s *Service) ReceiveTokens(ctx context.Context, name string, max int, wait time.Duration) ([]*Message, error) {
	msgs, err := s.Receive(ctx, name, max, wait)
	if len(msgs) == 0 {
		return msgs, err
	}
	kv, kerr := s.lockKV(ctx)
	if kerr != nil {
		s.release(msgs)
		return nil, kerr
	}
	st, serr := s.state(ctx, name)
	if serr != nil {
		s.release(msgs)
		return nil, serr
	}
	until := time.Now().Add(st.info.Lock).UnixNano()
	for i, m := range msgs {
		meta, merr := m.msg.Metadata()
		if merr == nil {
			data, _ := json.Marshal(lockRecord{Delivery: meta.Sequence.Consumer, Until: until})
			_, merr = kv.Put(ctx, lockKey(name, m.Seq), data)
		}
		if merr != nil {
			// A delivery without a record would be refused: give it and
			// the rest back now rather than let their locks run out.
			s.release(msgs[i:])
			return msgs[:i], errors.Join(err, fmt.Errorf("queue: record the lock of a message of %s: %w", name, merr))
		}
	}
	return msgs, err
}

// release hands deliveries back to the queue at once.
func (s *Service) release(msgs []*Message) {
	for _, m := range msgs {
		if m.msg != nil {
			_ = m.msg.Nak()
		}
	}
}

// heldLock checks that token names the recorded delivery of its message
// and that its lock has not ended; it returns the record's revision.
func (s *Service) heldLock(ctx context.Context, name, token string) (jetstream.KeyValueEntry, lockRecord, error) {
	_, seq, delivery, err := parseTokenFull(name, token)
	if err != nil {
		return nil, lockRecord{}, err
	}
	kv, err := s.lockKV(ctx)
	if err != nil {
		return nil, lockRecord{}, err
	}
	kve, err := kv.Get(ctx, lockKey(name, seq))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, lockRecord{}, fmt.Errorf("%w: the lock of this message of queue %s has expired (no delivery of it is held by a token)", ErrLockLost, name)
	}
	if err != nil {
		return nil, lockRecord{}, s.wrap(name, "check a lock of", err)
	}
	var rec lockRecord
	if err := json.Unmarshal(kve.Value(), &rec); err != nil {
		return nil, lockRecord{}, fmt.Errorf("queue: unreadable lock record of %s: %w", name, err)
	}
	switch {
	case rec.Delivery != delivery:
		return nil, rec, fmt.Errorf("%w: the lock of this message of queue %s has expired and the message was delivered again; act with the newer delivery's token", ErrLockLost, name)
	case rec.Done != "":
		return nil, rec, fmt.Errorf("%w: message of queue %s was already %s", ErrLockLost, name, rec.Done)
	case time.Now().UnixNano() > rec.Until:
		return nil, rec, fmt.Errorf("%w: the lock of this message of queue %s has expired; receive it again", ErrLockLost, name)
	}
	return kve, rec, nil
}

// tokenDone marks the token's delivery completed or abandoned, so that the
// token says so if used again. The record expires with the bucket's TTL.
func (s *Service) tokenDone(ctx context.Context, name string, kve jetstream.KeyValueEntry, rec lockRecord, what string) {
	rec.Done = what
	data, _ := json.Marshal(rec)
	_, _ = s.locks.Update(ctx, kve.Key(), data, kve.Revision())
}

// tokenRenewed moves the recorded end of the token's lock.
func (s *Service) tokenRenewed(ctx context.Context, name string, kve jetstream.KeyValueEntry, rec lockRecord) error {
	st, err := s.state(ctx, name)
	if err != nil {
		return err
	}
	rec.Until = time.Now().Add(st.info.Lock).UnixNano()
	data, _ := json.Marshal(rec)
	if _, err := s.locks.Update(ctx, kve.Key(), data, kve.Revision()); err != nil {
		return fmt.Errorf("%w: the lock of this message of queue %s changed meanwhile; receive it again", ErrLockLost, name)
	}
	return nil
}
