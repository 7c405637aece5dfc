package claim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrLost is returned, wrapping the failed compare-and-set, by a holder's
// write (a renewal, a result, a release) when the key is no longer at the
// holder's revision: another writer took the claim over or changed the key.
var ErrLost = errors.New("claim: lost")

// Conflict reports whether err is a failed compare-and-set: the key existed
// when it was to be created, or its revision had moved. Another writer won.
func Conflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Write stores value under key if the key is still at revision rev, 0 meaning
// that it must not exist (a deleted or purged key does not), and returns the
// new revision. A lost race returns an error for which [Conflict] is true.
func Write(ctx context.Context, kv jetstream.KeyValue, key string, value []byte, rev uint64) (uint64, error) {
	if rev == 0 {
		return kv.Create(ctx, key, value)
	}
	return kv.Update(ctx, key, value, rev)
}

// Delete deletes key if it is still at revision rev. A lost race returns an
// error for which [Conflict] is true.
func Delete(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64) error {
	return kv.Delete(ctx, key, jetstream.LastRevision(rev))
}

// Expired reports whether a claim whose deadline is until has expired at
// now: from the deadline on. now is the reader's clock; see the package
// comment for how far it may differ from the writer's.
func Expired(now, until time.Time) bool { return !now.Before(until) }

// Sighting times a claim as one reader sees it, on the reader's clock
// alone: the same revision seen for a whole lifetime belongs to a holder
// that stopped renewing, even when the deadline in its value (written by a
// clock running ahead) has not passed. The zero Sighting has seen nothing.
type Sighting struct {
	rev   uint64
	since time.Time
}

// Expired records that the claim is at revision rev at now and reports
// whether it has been at that revision for ttl or more since first seen.
func (s *Sighting) Expired(rev uint64, now time.Time, ttl time.Duration) bool {
	if rev != s.rev || s.since.IsZero() {
		s.rev, s.since = rev, now
	}
	return now.Sub(s.since) >= ttl
}

// Terms are the terms of a held claim.
type Terms struct {
	// TTL is the claim's lifetime: others may take it over TTL after the
	// holder's last write. Required.
	TTL time.Duration
	// Margin is how long before the end of TTL the holder stops acting on
	// its claim (see [Claim.Held]), covering the clock skew between it and
	// the others. Zero: no margin.
	Margin time.Duration
	// Now is the holder's clock. Default time.Now, whose monotonic reading
	// keeps the holder's deadline immune to wall-clock jumps.
	Now func() time.Time
}

func (t Terms) now() time.Time {
	if t.Now == nil {
		return time.Now()
	}
	return t.Now()
}

// Claim is a claim held by this process: the key, the revision of the
// holder's last confirmed write, and the local deadline up to which it may
// act. Its methods are safe for concurrent use.
type Claim struct {
	kv    jetstream.KeyValue
	key   string
	terms Terms

	mu    sync.Mutex
	rev   uint64
	until time.Time // the holder's clock; zero after a release
	lost  bool
}

// Take claims key by writing value if the key is at revision rev: 0 claims a
// free key, the revision of an expired claim takes it over. start is the
// holder's time read before value was made (value states the deadline
// start + TTL, or start itself); the holder may act until start + TTL −
// Margin. A lost race returns an error for which [Conflict] is true.
func Take(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64, start time.Time, value []byte, terms Terms) (*Claim, error) {
	if terms.TTL <= 0 {
		return nil, fmt.Errorf("claim %s: the lifetime must be positive, got %v", key, terms.TTL)
	}
	newRev, err := Write(ctx, kv, key, value, rev)
	if err != nil {
		return nil, err
	}
	return Taken(kv, key, newRev, start, terms)
}

// Taken is the claim of a holder that took key by a compare-and-set write
// of its own made otherwise than by [Take] (one of a batch of writes sent
// at once), which stored its value at revision rev. start is the holder's
// time read before the value was made, as for Take.
func Taken(kv jetstream.KeyValue, key string, rev uint64, start time.Time, terms Terms) (*Claim, error) {
	if terms.TTL <= 0 {
		return nil, fmt.Errorf("claim %s: the lifetime must be positive, got %v", key, terms.TTL)
	}
	return &Claim{kv: kv, key: key, terms: terms, rev: rev, until: start.Add(terms.TTL - terms.Margin)}, nil
}

// Key is the claimed key.
func (c *Claim) Key() string { return c.key }

// Rev is the revision of the holder's last confirmed write.
func (c *Claim) Rev() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rev
}

// Until is the local deadline up to which the holder may act, unless it
// renews the claim: TTL − Margin after the start of its last confirmed
// write.
func (c *Claim) Until() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.until
}

// Held reports whether the holder may act on the claim now: it was not
// lost or released, and its local deadline has not passed.
func (c *Claim) Held() bool {
	now := c.terms.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.lost && !c.until.IsZero() && now.Before(c.until)
}

// Lost reports whether a write of the holder failed its compare-and-set.
func (c *Claim) Lost() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// Write stores value under the key if it is still at the holder's revision
// (or, after Adopt(0), if it does not exist): a renewal, or a result
// recorded under the claim. start is the holder's time read before value was
// made; on success the claim holds until start + TTL − Margin. When the
// compare-and-set fails the claim is lost and the error wraps [ErrLost].
func (c *Claim) Write(ctx context.Context, start time.Time, value []byte) (uint64, error) {
	rev := c.Rev()
	newRev, err := Write(ctx, c.kv, c.key, value, rev)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		// The write may have been adopted meanwhile (seen by a watch
		// before its reply came), or a later one of ours: keep the latest.
		if newRev >= c.rev {
			c.rev, c.lost = newRev, false
		}
		if until := start.Add(c.terms.TTL - c.terms.Margin); until.After(c.until) {
			c.until = until
		}
		return newRev, nil
	case Conflict(err):
		c.lost = true
		return 0, fmt.Errorf("%w: %s at revision %d: %w", ErrLost, c.key, rev, err)
	}
	return 0, err
}

// Release deletes the key if it is still at the holder's revision, so that
// the next claimer need not wait for the claim to expire. When the
// compare-and-set fails the error wraps [ErrLost]. After either, the holder
// no longer holds the claim; after another error it holds it as before.
func (c *Claim) Release(ctx context.Context) error {
	rev := c.Rev()
	err := Delete(ctx, c.kv, c.key, rev)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.until = time.Time{}
	}
	if Conflict(err) {
		c.lost = true
		return fmt.Errorf("%w: %s at revision %d: %w", ErrLost, c.key, rev, err)
	}
	return err
}

// Adopt makes rev the holder's revision: a write of the holder's own whose
// reply it did not get (it reads its own mark in the value at rev), or 0
// when the key is gone and the holder's next write is to create it again.
// It clears a loss the late write caused; the deadline stays that of the
// last write the holder saw confirmed.
func (c *Claim) Adopt(rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rev, c.lost = rev, false
}

// KeepAlive renews the claim every period, writing value(now) with now read
// from the holder's clock, until the returned stop is called or the claim is
// lost. Failed renewals are passed to failed (which may be nil) and retried
// at the next period; a lost claim (its error wraps [ErrLost]) ends the
// renewals. stop waits for a renewal in flight to be cancelled and reports
// whether the claim was lost. A renewal cancelled by stop may still have
// been stored: the holder recognizes it with [Claim.Adopt].
func (c *Claim) KeepAlive(every time.Duration, value func(now time.Time) []byte, failed func(error)) (stop func() (lost bool)) {
	var failedAt func(int, error)
	if failed != nil {
		failedAt = func(_ int, err error) { failed(err) }
	}
	stopAll := KeepAliveAll([]*Claim{c}, every, func(_ int, now time.Time) []byte { return value(now) }, failedAt)
	return func() bool {
		stopAll()
		return c.Lost()
	}
}

// KeepAliveAll is KeepAlive for many claims held together, renewed by one
// goroutine: every period it renews each claim not lost, one after the
// other, writing value(i, now) to claims[i], now read once a round from the
// first claim's clock (the claims share their terms, as a rule). failed(i, err) gets the failed
// renewals of claims[i]. A renewal that fails otherwise than by losing its
// claim (the store is unreachable, most likely) ends that round; the next
// round starts with the claim after it, so that every claim gets its turn.
// The renewals end when every claim is lost or stop is called; stop waits
// for a renewal in flight to be cancelled. Whether a claim was lost is
// [Claim.Lost].
func KeepAliveAll(claims []*Claim, every time.Duration, value func(i int, now time.Time) []byte, failed func(i int, err error)) (stop func()) {
	if len(claims) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(every)
		defer t.Stop()
		next := 0 // where the next round starts
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// One time for the round, so that claims renewed together
			// expire together.
			now := claims[0].terms.now()
			live := 0
			for j := range claims {
				i := (next + j) % len(claims)
				c := claims[i]
				if c.Lost() {
					continue
				}
				_, err := c.Write(ctx, now, value(i, now))
				if ctx.Err() != nil {
					return // stopped mid-write
				}
				if err != nil && failed != nil {
					failed(i, err)
				}
				if err == nil {
					live++
				} else if !errors.Is(err, ErrLost) {
					live, next = 1, i // try again from here next round
					break
				}
			}
			if live == 0 {
				return
			}
			t.Reset(every)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
