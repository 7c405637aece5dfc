package hub

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/sluicehq/sluice/internal/claim"
)

// De-duplication of events by message id.
//
// JetStream's own Nats-Msg-Id de-duplication works per stored message, but a
// record packs many events, so the hub keeps its own state: one entry per
// message id in the KV bucket sluice-hub-ids, under <hub>.<hash of the id>,
// whose TTL is the duplicate window. Publishing an event with an id claims
// the id first:
//
//  1. Create the entry {"state":"pending"}. The claim is ours: the event is
//     packed and stored as any other, and once its record is acknowledged
//     the entry becomes {"state":"stored"} with the event's position
//     (compare-and-set on the claim's revision). If storing fails, the claim
//     is deleted (at its revision), so that a retry can publish.
//  2. The entry exists and is stored: the event is a duplicate. It is not
//     stored and Publish answers with the stored event's position.
//  3. The entry is pending: another publisher is storing the event right
//     now. Wait until it is stored or released, then decide again. A claim
//     pending for longer than the pending timeout, by its own time or as
//     watched by the waiter, belongs to a publisher that died: it is taken
//     over by compare-and-set on its revision.
//
// A call stores all its events at once, after every id is decided, so that
// the events of one call keep their order. While it waits for an id, it
// holds none: it releases the ids it claimed and claims them again after
// the wait, so that two calls that each claimed an id the other wants do not
// wait for each other until the pending timeout.
//
// Two events with the same id in one call: the second is a duplicate of the
// first.
//
// The claims and marks of a call are written all at once, not one round trip
// each (see writeIDs). Events without an id cost nothing of this.
//
// The one way a duplicate still gets through: a publisher that dies (or
// stalls past the pending timeout) after its record is stored but before it
// marks the id stored; a retry after the timeout stores the event again.
// At-least-once is never broken: an id is marked stored only after its event
// was stored, and every other outcome leaves the id free, at once or after
// the timeout.
//
// A pending entry is a claim of package claim, never renewed: its lifetime
// is the pending timeout, and its deadline the publisher's timestamp plus
// that (the bound on clock skew is stated in package claim; a publisher
// whose clock runs behind can have its live claim taken over early, and its
// event stored twice). Waiters also time a claim themselves
// (claim.Sighting), so a clock ahead only delays a takeover.

const (
	// defaultPendingTimeout is how long a claim may stay pending before
	// another publisher takes it over. A live publisher stores a record in
	// milliseconds; this only has to outlast a stalled server.
	defaultPendingTimeout = 30 * time.Second
	// maxIDCalls bounds the concurrent KV calls of one Publish.
	maxIDCalls = 16
	// idHashChars is how much of the hex SHA-256 of an id names its entry:
	// 128 bits, far from any accidental collision.
	idHashChars = 32

	statePending = "pending"
	stateStored  = "stored"
)

// idEntry is the value of a message id's entry.
type idEntry struct {
	State     string    `json:"state"`
	At        time.Time `json:"at,omitzero"`
	Partition int       `json:"partition,omitempty"`
	Sequence  int64     `json:"sequence,omitempty"`
}

// idKey is the key of a message id's entry in the id bucket.
func idKey(hub, id string) string {
	sum := sha256.Sum256([]byte(id))
	return hub + "." + hex.EncodeToString(sum[:])[:idHashChars]
}

// idSubject is the subject a key of the id bucket is stored under, for
// publishing to it directly (asynchronously, many at once).
func idSubject(key string) string { return "$KV." + bucketIDs + "." + key }

// idClaim is the state of one distinct message id of a Publish call.
type idClaim struct {
	key   string
	first int // index of the call's first event with the id
	// rev is the revision of this call's claim; 0 when the call does not
	// own the id.
	rev uint64
	// dup: the id was stored before; pos is the stored event's position.
	dup bool
	pos Position
	// stored: this call stored the id's event at pos.
	stored bool
	// The pending entry as this call watched it: a claim pending for the
	// timeout under our eyes is dead.
	seen claim.Sighting
}

// publishOnce publishes events of which some carry message ids (see the
// comment at the top of this file).
func (s *Service) publishOnce(ctx context.Context, st *hubState, events []Event, target []int32) ([]Position, error) {
	name := st.info.Name
	claims, of, err := s.claim(ctx, name, events)
	if err != nil {
		return nil, err
	}
	// Store the events without an id and the first event of each id this
	// call owns.
	sub := make([]Event, 0, len(events))
	subTarget := make([]int32, 0, len(events))
	subIdx := make([]int, 0, len(events))
	for i := range events {
		if k := of[i]; k >= 0 && (claims[k].first != i || claims[k].rev == 0) {
			continue
		}
		sub = append(sub, events[i])
		subTarget = append(subTarget, target[i])
		subIdx = append(subIdx, i)
	}
	pos := make([]Position, len(events))
	if len(sub) > 0 {
		single := true
		for _, t := range subTarget {
			single = single && t == subTarget[0]
		}
		acked := make([]bool, len(sub))
		c, err := s.enqueue(ctx, st, sub, subTarget, single, acked)
		// Once the call is complete, the claims are marked stored or
		// released, whether or not the caller is still waiting.
		settle := func() {
			for j, i := range subIdx {
				if k := of[i]; k >= 0 && acked[j] {
					claims[k].stored, claims[k].pos = true, c.pos[j]
				}
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.pendingTimeout)
			defer cancel()
			s.settle(sctx, claims)
		}
		if err == nil {
			select {
			case <-c.done:
			case <-ctx.Done():
				err = fmt.Errorf("hub: publish to %s: %w", name, ctx.Err())
			}
		}
		if err != nil {
			// When the service is stopping the claims are left pending
			// (a retry takes them over); else its batchers finish the
			// call before Stop returns.
			s.life.Go(func() {
				t := time.NewTimer(s.pendingTimeout)
				defer t.Stop()
				select {
				case <-c.done:
					settle()
				case <-t.C:
					// Left pending: a retry takes the claims over.
				}
			})
			return nil, err
		}
		settle()
		if c.err != nil {
			if errors.Is(c.err, ErrNotFound) {
				s.forget(name)
			}
			return nil, c.err
		}
		for j, i := range subIdx {
			pos[i] = c.pos[j]
		}
	}
	for i := range events {
		if k := of[i]; k >= 0 {
			pos[i] = claims[k].pos
		}
	}
	return pos, nil
}

// claim claims the message ids of events. It returns one claim per distinct
// id and, per event, the index of its id's claim (-1 for none). On return,
// each claim is either owned (rev set) or a duplicate (dup set); on error,
// the claims made are released.
func (s *Service) claim(ctx context.Context, hub string, events []Event) ([]*idClaim, []int32, error) {
	of := make([]int32, len(events))
	byID := make(map[string]int32)
	var claims []*idClaim
	for i := range events {
		id := events[i].MessageID
		if id == "" {
			of[i] = -1
			continue
		}
		k, ok := byID[id]
		if !ok {
			k = int32(len(claims))
			byID[id] = k
			claims = append(claims, &idClaim{key: idKey(hub, id), first: i})
		}
		of[i] = k
	}
	fail := func(err error) ([]*idClaim, []int32, error) {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.pendingTimeout)
		defer cancel()
		s.settle(sctx, claims)
		return nil, nil, fmt.Errorf("hub: claim message ids in %s: %w", hub, unavailable(err))
	}
	open := claims
	backoff := 2 * time.Millisecond
	for {
		// Most ids are new: claim them all at once.
		contested, err := s.createAll(ctx, open)
		if err != nil {
			return fail(err)
		}
		waiting, err := s.each(contested, func(cl *idClaim) (bool, error) { return s.contend(ctx, cl) })
		if err != nil {
			return fail(err)
		}
		if len(waiting) == 0 {
			return claims, of, nil
		}
		// Other publishers are storing some of the events. Wait for them
		// holding nothing: two calls each holding an id that the other
		// waits for would wait for each other until the pending timeout.
		s.release(context.WithoutCancel(ctx), claims)
		for len(waiting) > 0 {
			// Jitter, so that two calls wanting the same ids do not keep
			// claiming one part each.
			select {
			case <-time.After(backoff/2 + rand.N(backoff)):
			case <-ctx.Done():
				return fail(ctx.Err())
			}
			backoff = min(2*backoff, 100*time.Millisecond)
			if waiting, err = s.each(waiting, func(cl *idClaim) (bool, error) { return s.peek(ctx, cl) }); err != nil {
				return fail(err)
			}
		}
		open = open[:0:0]
		for _, cl := range claims {
			if !cl.dup {
				open = append(open, cl)
			}
		}
	}
}

// each calls fn for every claim, a few at a time, and returns the claims for
// which it answered true, or the first error.
func (s *Service) each(claims []*idClaim, fn func(*idClaim) (bool, error)) ([]*idClaim, error) {
	yes := make([]bool, len(claims))
	errs := make([]error, len(claims))
	fanOut(len(claims), maxIDCalls, func(i int) { yes[i], errs[i] = fn(claims[i]) })
	var out []*idClaim
	for i, cl := range claims {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if yes[i] {
			out = append(out, cl)
		}
	}
	return out, nil
}

func (s *Service) pendingValue() []byte {
	v, _ := json.Marshal(idEntry{State: statePending, At: s.now().UTC()})
	return v
}

// createAll creates a pending entry for each claim, all at once, and
// returns the claims whose entry exists already.
func (s *Service) createAll(ctx context.Context, claims []*idClaim) ([]*idClaim, error) {
	value := s.pendingValue()
	writes := make([]idWrite, len(claims))
	for i, cl := range claims {
		writes[i] = idWrite{key: cl.key, value: value} // expecting revision 0 is kv.Create
	}
	revs, errs, err := s.writeIDs(ctx, writes)
	var contested []*idClaim
	for i, cl := range claims {
		switch {
		case errs[i] == nil && revs[i] != 0:
			cl.rev = revs[i]
		case claim.Conflict(errs[i]):
			contested = append(contested, cl)
		case errs[i] != nil:
			err = cmp.Or(err, errs[i])
		}
	}
	return contested, err
}

// idWrite is a compare-and-set of one entry of the id bucket: value is
// stored only if the entry's revision is rev (0: the entry does not exist).
type idWrite struct {
	key   string
	value []byte
	rev   uint64
}

// maxAtomicBatch is the server's limit on the messages of one atomic batch.
const maxAtomicBatch = 1000

// writeIDs performs writes and returns each one's new revision or error
// (claim.Conflict for a failed compare-and-set). err is set when the outcome
// of some writes is unknown (their revision is 0 and their error nil): the
// context ended, or the connection failed.
//
// Every write to the bucket is one stored message. Sent as separate
// asynchronous publishes, each costs a store, and under sync always an
// fsync, of its own. When the server allows it (NATS 2.12 and later), the
// writes can go as one atomic batch instead, fsynced once, but a batch costs
// a fixed few milliseconds on a single server (a staging store of its own),
// and it fails as a whole if one compare-and-set does (then the writes are
// sent one by one, which tells which failed). idCost learns which way is
// cheaper on this server.
func (s *Service) writeIDs(ctx context.Context, writes []idWrite) (revs []uint64, errs []error, err error) {
	revs, errs = make([]uint64, len(writes)), make([]error, len(writes))
	for start := 0; start < len(writes); start += maxAtomicBatch {
		end := min(start+maxAtomicBatch, len(writes))
		n := end - start
		t0 := time.Now()
		if s.atomicIDs.Load() && s.idCost.atomic(n) {
			ok := s.writeIDsAtomic(ctx, writes[start:end], revs[start:end])
			s.idCost.observe(true, n, time.Since(t0))
			if ok {
				continue
			}
			t0 = time.Now()
		}
		if err := s.writeIDsAsync(ctx, writes[start:end], revs[start:end], errs[start:end]); err != nil {
			return revs, errs, err
		}
		s.idCost.observe(false, n, time.Since(t0))
	}
	return revs, errs, nil
}

// writeCost estimates the cost of writing ids asynchronously (per message)
// and as an atomic batch (per batch), from what writes took.
type writeCost struct {
	mu       sync.Mutex
	perMsg   time.Duration // moving average; 0 until measured
	perBatch time.Duration
	calls    uint64
}

const (
	// minAtomicWrites is the fewest writes worth an atomic batch: fewer
	// separate writes cost less than a batch's fixed cost even fsynced.
	minAtomicWrites = 16
	// exploreEvery: one decision in so many takes the way thought dearer,
	// so that the estimates follow the server's load.
	exploreEvery = 64
)

// atomic reports whether n writes should go as an atomic batch.
func (c *writeCost) atomic(n int) bool {
	if n < minAtomicWrites {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	async := c.perMsg * time.Duration(n)
	switch {
	case c.perMsg == 0:
		return false // measure the way that works everywhere first
	case c.perBatch == 0:
		return async > 2*time.Millisecond // worth trying: it may well be cheaper
	}
	cheaper := c.perBatch < async
	return cheaper != (c.calls%exploreEvery == 0)
}

func (c *writeCost) observe(atomic bool, n int, took time.Duration) {
	if n < minAtomicWrites {
		return // dominated by the round trip, not by storing
	}
	avg := func(avg *time.Duration, v time.Duration) {
		if *avg == 0 {
			*avg = v
		} else {
			*avg += (v - *avg) / 8
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if atomic {
		avg(&c.perBatch, took)
	} else {
		avg(&c.perMsg, took/time.Duration(n))
	}
}

func idMsg(w idWrite) *nats.Msg {
	return &nats.Msg{Subject: idSubject(w.key), Data: w.value, Header: nats.Header{
		jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(w.rev, 10)},
	}}
}

// writeIDsAtomic stores writes as one atomic batch and reports whether it
// was stored.
func (s *Service) writeIDsAtomic(ctx context.Context, writes []idWrite, revs []uint64) bool {
	id := nuid.Next()
	nc := s.js.Conn()
	last := len(writes) - 1
	for i, w := range writes[:last] {
		m := idMsg(w)
		m.Header["Nats-Batch-Id"] = []string{id}
		m.Header["Nats-Batch-Sequence"] = []string{strconv.Itoa(i + 1)}
		if nc.PublishMsg(m) != nil {
			return false
		}
	}
	m := idMsg(writes[last])
	m.Header["Nats-Batch-Id"] = []string{id}
	m.Header["Nats-Batch-Sequence"] = []string{strconv.Itoa(last + 1)}
	m.Header["Nats-Batch-Commit"] = []string{"1"}
	ack, err := s.js.PublishMsg(ctx, m)
	if err != nil {
		if !claim.Conflict(err) && ctx.Err() == nil {
			s.log.Debug("atomic batch of message ids failed; sending them one by one", "err", err)
		}
		return false
	}
	// The messages of a batch are stored in order, one after the other.
	for i := range revs {
		revs[i] = ack.Sequence - uint64(last-i)
	}
	return true
}

// writeIDsAsync sends writes as separate asynchronous publishes.
func (s *Service) writeIDsAsync(ctx context.Context, writes []idWrite, revs []uint64, errs []error) error {
	futs := make([]jetstream.PubAckFuture, 0, len(writes))
	var err error
	for _, w := range writes {
		var fut jetstream.PubAckFuture
		if fut, err = s.publishAsync(idMsg(w)); err != nil {
			break
		}
		futs = append(futs, fut)
	}
	for i, fut := range futs {
		select {
		case a := <-fut.Ok():
			revs[i] = a.Sequence
		case errs[i] = <-fut.Err():
		case <-ctx.Done():
			// The outcome of the rest is unknown: a claim among them stays
			// pending until a retry takes it over.
			return cmp.Or(err, ctx.Err())
		}
	}
	return err
}

// contend decides a claim whose entry existed: it finds the id stored (a
// duplicate), claims it (released meanwhile, or pending past the timeout),
// or asks to wait (pending, or lost a race: look again).
func (s *Service) contend(ctx context.Context, cl *idClaim) (wait bool, err error) {
	e, err := s.ids.Get(ctx, cl.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// Released or expired since: claim it. (Create handles the delete
		// marker a release leaves.)
		rev, err := claim.Write(ctx, s.ids, cl.key, s.pendingValue(), 0)
		if claim.Conflict(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		cl.rev = rev
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var v idEntry
	if err := json.Unmarshal(e.Value(), &v); err != nil || v.State != statePending && v.State != stateStored {
		s.log.Warn("unreadable message id entry: replacing it", "key", cl.key, "value", string(e.Value()))
		return s.takeOver(ctx, cl, e.Revision())
	}
	if v.State == stateStored {
		cl.dup, cl.pos = true, Position{Partition: v.Partition, Sequence: v.Sequence}
		return false, nil
	}
	if s.young(cl, e.Revision(), v.At) {
		return true, nil
	}
	s.log.Warn("taking over a message id left pending (did its publisher die?)", "key", cl.key, "pending_since", v.At)
	return s.takeOver(ctx, cl, e.Revision())
}

// peek reports whether a claim's id is still pending elsewhere, without
// claiming it; a stored id makes the claim a duplicate.
func (s *Service) peek(ctx context.Context, cl *idClaim) (pending bool, err error) {
	e, err := s.ids.Get(ctx, cl.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var v idEntry
	if json.Unmarshal(e.Value(), &v) != nil || v.State != statePending && v.State != stateStored {
		return false, nil // contend replaces it
	}
	if v.State == stateStored {
		cl.dup, cl.pos = true, Position{Partition: v.Partition, Sequence: v.Sequence}
		return false, nil
	}
	return s.young(cl, e.Revision(), v.At), nil
}

// young reports whether a pending entry (at revision rev, claimed at at)
// may still belong to a live publisher: it is younger than the pending
// timeout, by its own time and as watched by this call.
func (s *Service) young(cl *idClaim, rev uint64, at time.Time) bool {
	now := s.now()
	watched := cl.seen.Expired(rev, now, s.pendingTimeout)
	return !watched && !claim.Expired(now, at.Add(s.pendingTimeout))
}

func (s *Service) takeOver(ctx context.Context, cl *idClaim, rev uint64) (wait bool, err error) {
	newRev, err := claim.Write(ctx, s.ids, cl.key, s.pendingValue(), rev)
	if claim.Conflict(err) {
		return true, nil // someone else moved first: look again
	}
	if err != nil {
		return false, err
	}
	cl.rev = newRev
	return false, nil
}

// settle marks the ids of the claims this call owns stored, or releases
// them when their event was not stored. Failures are logged: a claim left
// pending is taken over after the pending timeout.
func (s *Service) settle(ctx context.Context, claims []*idClaim) {
	var writes []idWrite
	var marked []*idClaim
	for _, cl := range claims {
		if cl.rev != 0 && cl.stored {
			v, _ := json.Marshal(idEntry{State: stateStored, Partition: cl.pos.Partition, Sequence: cl.pos.Sequence})
			writes, marked = append(writes, idWrite{key: cl.key, value: v, rev: cl.rev}), append(marked, cl)
		}
	}
	s.release(ctx, claims)
	_, errs, err := s.writeIDs(ctx, writes)
	if err != nil {
		s.log.Warn("cannot mark message ids stored; they stay pending until the pending timeout", "hub_ids", len(writes), "err", err)
	}
	for i, err := range errs {
		if claim.Conflict(err) {
			err = errors.New("the claim was taken over or expired before it was marked stored: a duplicate may be stored")
		}
		if err != nil {
			s.log.Warn("cannot mark a message id stored", "key", marked[i].key, "err", err)
		}
	}
}

// release deletes the claims this call owns but did not store, so that
// others can claim the ids at once.
func (s *Service) release(ctx context.Context, claims []*idClaim) {
	var owned []*idClaim
	for _, cl := range claims {
		if cl.rev != 0 && !cl.stored {
			owned = append(owned, cl)
		}
	}
	fanOut(len(owned), maxIDCalls, func(i int) {
		cl := owned[i]
		if err := claim.Delete(ctx, s.ids, cl.key, cl.rev); err != nil && !claim.Conflict(err) {
			s.log.Warn("cannot release a message id; it stays pending until the pending timeout", "key", cl.key, "err", err)
		}
		cl.rev = 0
	})
}

// forgetIDs drops the message ids of a hub.
func (s *Service) forgetIDs(ctx context.Context, hub string) error {
	st, err := s.js.Stream(ctx, "KV_"+bucketIDs)
	if err != nil {
		return err
	}
	return st.Purge(ctx, jetstream.WithPurgeSubject(idSubject(hub+".>")))
}

// fanOut calls fn(0..n-1) on at most limit goroutines and waits for them.
func fanOut(n, limit int, fn func(i int)) {
	if n <= 1 {
		if n == 1 {
			fn(0)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, limit) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}
