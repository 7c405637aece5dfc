package resilience

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/sluicehq/sluice/internal/claim"
)

// DoBatch is Do for many keys at once: it runs fn with the indexes of the
// keys it claimed (todo, ascending) and returns the indexes it ran fn with.
// Each key gets the guarantees of Do. What differs:
//
//   - The writes of a batch go to the store together: the claims of the
//     free keys at once, then their completions at once. With
//     KeysOptions.AtomicBatches, each is one atomic batch, stored with one
//     fsync (from AtomicBatchMin keys on); otherwise, asynchronous
//     publishes all in flight together.
//   - Keys that occur more than once stand for one piece of work: only
//     the first index of each is ever in todo.
//   - Keys claimed by other callers are not waited for before fn runs:
//     fn runs first with the keys this call claimed, then DoBatch waits
//     for the others' runs to end (bounded by ctx) and runs fn again with
//     the keys whose run failed or expired, until every key is done. fn
//     can therefore be called more than once, never twice with a key.
//     While it waits, DoBatch holds no claim, so two batches each waiting
//     for a key the other holds cannot wait for each other.
//   - When fn returns an error, its keys are released and DoBatch returns
//     at once, with the indexes of every call of fn so far and that error:
//     keys of an earlier call that succeeded are done.
//
// The claims of one call of fn are renewed together, by one goroutine.
// DoBatch needs KeysOptions.JS. With no keys it returns (nil, nil) without
// calling fn.
func (k *Keys) DoBatch(ctx context.Context, keys []string, ttl time.Duration, fn func(ctx context.Context, todo []int) error) (ran []int, err error) {
	if k.opts.JS == nil {
		return nil, errors.New("once: DoBatch needs KeysOptions.JS")
	}
	batch := make([]*batchKey, 0, len(keys))
	byID := make(map[string]bool, len(keys))
	for i, key := range keys {
		if err := validateKey(key, ttl); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		c := k.call(key, ttl)
		if !byID[c.id] {
			byID[c.id] = true
			c.token = newClaimToken() // one claim per key and call
			batch = append(batch, &batchKey{onceCall: c, first: i, known: true})
		}
	}
	if fn == nil {
		return nil, errors.New("once: no work function given")
	}
	var w *keyWatch
	defer func() {
		if w != nil {
			w.stop()
		}
	}()
	for open := batch; len(open) > 0; {
		won, busy, err := k.claimAll(ctx, open)
		if err != nil {
			return ran, err
		}
		if len(won) > 0 {
			for _, b := range won {
				ran = append(ran, b.first)
			}
			err := k.runBatch(ctx, won, fn)
			slices.Sort(ran)
			if err != nil {
				return ran, err
			}
		}
		if len(busy) == 0 {
			return ran, nil
		}
		// Wait, holding nothing, for the other callers' runs to end.
		revs := make(map[string]uint64, len(busy))
		ids := make([]string, len(busy))
		until := busy[0].until
		for i, b := range busy {
			revs[b.id], ids[i] = b.rev, b.id
			b.known = false // read it again before claiming it
			if b.until.Before(until) {
				until = b.until
			}
		}
		if w == nil || !slices.Equal(w.ids, ids) {
			if w != nil {
				w.stop()
			}
			w = &keyWatch{Keys: k, ids: ids, what: batchWhat(busy)}
		}
		if err := w.wait(ctx, revs, until); err != nil {
			return ran, err
		}
		open = busy
	}
	return ran, nil
}

// batchKey is one distinct key of a DoBatch.
type batchKey struct {
	*onceCall
	first int // the index of the key's first occurrence
	// rev is the revision to claim the key at, when known: 0 for a key
	// thought absent, that of a deleted key or of an expired run.
	rev   uint64
	known bool
	prev  keyRecord // the expired run that rev is, to warn of a takeover
	until time.Time // a busy key: the other caller's claim's deadline
	held  *claim.Claim
}

// batchWhat names keys in errors.
func batchWhat(keys []*batchKey) string {
	if len(keys) == 1 {
		return strconv.Quote(keys[0].key)
	}
	return fmt.Sprintf("%q and %d more keys", keys[0].key, len(keys)-1)
}

// claimAll claims what it can of keys: it returns those it won and those
// that other callers hold (busy, with the revision and deadline of the
// claim); the rest are done. On error it holds nothing.
func (k *Keys) claimAll(ctx context.Context, keys []*batchKey) (won, busy []*batchKey, err error) {
	fail := func(err error) ([]*batchKey, []*batchKey, error) {
		k.releaseAll(ctx, won)
		return nil, nil, err
	}
	var stream jetstream.Stream // opened on the first read
	failures := 0               // rounds in a row with a failed write
	todo := keys
	for len(todo) > 0 {
		if err := ctx.Err(); err != nil {
			return fail(fmt.Errorf("once %s: %w", batchWhat(todo), err))
		}
		// Read the keys whose revision is not known.
		write := make([]*batchKey, 0, len(todo))
		for _, b := range todo {
			if b.known {
				write = append(write, b)
				continue
			}
			if stream == nil {
				if stream, err = k.opts.JS.Stream(ctx, "KV_"+k.kv.Bucket()); err != nil {
					return fail(fmt.Errorf("once %s: open the key bucket's stream: %w", batchWhat(todo), err))
				}
			}
			rev, cur, err := b.read(ctx, stream)
			if err != nil {
				return fail(err)
			}
			switch {
			case cur == nil: // absent, or deleted
				b.rev, b.known, b.prev = rev, true, keyRecord{}
				write = append(write, b)
			case cur.State == keyRunning && cur.Claim == b.token:
				// Our own claim, whose write failed as far as we knew:
				// it holds until the deadline it states.
				start := cur.ClaimedUntil.Add(-b.opts.ClaimTTL)
				if b.held, err = claim.Taken(k.kv, b.id, rev, start, b.terms()); err != nil {
					return fail(err)
				}
				won = append(won, b)
			default:
				switch verdict(*cur, b.opts.Now()) {
				case claimBusy:
					b.rev, b.until = rev, cur.ClaimedUntil
					busy = append(busy, b)
				case claimTake:
					b.rev, b.known, b.prev = rev, true, *cur
					write = append(write, b)
				}
			}
		}
		// Claim the others all at once.
		start := k.opts.Now()
		ops := make([]kvWrite, len(write))
		for i, b := range write {
			ops[i] = kvWrite{id: b.id, value: b.running(start), rev: b.rev}
		}
		revs, errs := k.writeAll(ctx, ops)
		todo = todo[:0:0]
		var failed error // other than by a lost race
		for i, b := range write {
			if errs[i] != nil {
				// Lost a race, or the outcome is unknown: read it again.
				if !claim.Conflict(errs[i]) {
					failed = errs[i]
				}
				b.known = false
				todo = append(todo, b)
				continue
			}
			if b.held, err = claim.Taken(k.kv, b.id, revs[i], start, b.terms()); err != nil {
				return fail(err)
			}
			b.tookOver(b.prev)
			won = append(won, b)
		}
		// A write that fails otherwise than by a lost race is read back
		// (it may have been stored), then tried again, a few times.
		if failed == nil {
			failures = 0
		} else if failures++; failures == maxClaimFailures {
			return fail(fmt.Errorf("once %s: claim the keys: %w", batchWhat(todo), failed))
		}
	}
	return won, busy, nil
}

// maxClaimFailures is how many rounds in a row claimAll tries writes that
// fail otherwise than by a lost race.
const maxClaimFailures = 3

// read returns the revision of the key's last write and, unless it was a
// deletion (or there is none: revision 0), its record.
func (c *onceCall) read(ctx context.Context, stream jetstream.Stream) (uint64, *keyRecord, error) {
	m, err := stream.GetLastMsgForSubject(ctx, c.subject())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("once %q: read the key: %w", c.key, err)
	}
	if op := m.Header.Get(kvOperation); op == kvDelete || op == kvPurge {
		return m.Sequence, nil, nil
	}
	cur, err := c.decodeValue(m.Data)
	if err != nil {
		return 0, nil, err
	}
	return m.Sequence, &cur, nil
}

// The header of the KV's deletions, and its values.
const (
	kvOperation = "KV-Operation"
	kvDelete    = "DEL"
	kvPurge     = "PURGE"
)

// subject is the subject the key is stored under, for writes and reads
// that go to the bucket's stream directly.
func (c *onceCall) subject() string { return "$KV." + c.kv.Bucket() + "." + c.id }

// runBatch runs fn with the keys it holds, their claims renewed meanwhile,
// then records the outcome.
func (k *Keys) runBatch(ctx context.Context, won []*batchKey, fn func(context.Context, []int) error) error {
	slices.SortFunc(won, func(a, b *batchKey) int { return a.first - b.first })
	held := make([]*claim.Claim, len(won))
	todo := make([]int, len(won))
	for i, b := range won {
		held[i], todo[i] = b.held, b.first
	}
	stop := claim.KeepAliveAll(held, k.opts.ClaimTTL/3, func(i int, now time.Time) []byte { return won[i].running(now) },
		func(i int, err error) { won[i].renewFailed(err) })
	returned := false
	defer func() {
		if !returned { // fn panicked or called runtime.Goexit
			stop()
			k.releaseAll(ctx, won)
		}
	}()
	err := fn(ctx, todo)
	returned = true
	stop()
	if err != nil {
		k.releaseAll(ctx, won)
		return err
	}
	return k.completeAll(ctx, won)
}

// completeAll records the keys as done, all at once. Writes that fail
// otherwise than by a lost compare-and-set are tried again together, as
// Do's complete tries again; a key whose compare-and-set failed (a renewal
// of ours cancelled mid-write, a takeover) goes the way of Do's complete.
// All of it within onceWriteTimeout.
func (k *Keys) completeAll(ctx context.Context, won []*batchKey) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), onceWriteTimeout)
	defer cancel()
	now := k.opts.Now()
	var pending, alone []*batchKey
	for _, b := range won {
		if b.held.Lost() { // taken over: see complete
			alone = append(alone, b)
		} else {
			pending = append(pending, b)
		}
	}
	var err error
	for attempt := 0; len(pending) > 0 && attempt < 4; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			case <-wctx.Done():
			}
		}
		ops := make([]kvWrite, len(pending))
		for i, b := range pending {
			ops[i] = kvWrite{id: b.id, value: b.done(now), rev: b.held.Rev()}
		}
		_, errs := k.writeAll(wctx, ops)
		again := pending[:0:0]
		for i, b := range pending {
			switch {
			case errs[i] == nil:
			case claim.Conflict(errs[i]):
				alone = append(alone, b)
			default:
				again, err = append(again, b), errs[i]
			}
		}
		pending = again
	}
	var first error
	failed := len(pending)
	if failed > 0 {
		first = fmt.Errorf("%w (key %q): %w", ErrNotRecorded, pending[0].key, err)
	}
	for _, b := range alone {
		if err := b.complete(wctx, b.held); err != nil {
			first = cmp.Or(first, err)
			failed++
		}
	}
	if failed > 1 {
		return fmt.Errorf("%w (and %d more keys)", first, failed-1)
	}
	return first
}

// releaseAll releases the keys it holds, all at once; a key whose deletion
// failed goes the way of Do (release).
func (k *Keys) releaseAll(ctx context.Context, won []*batchKey) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), onceWriteTimeout)
	defer cancel()
	var ops []kvWrite
	var batch []*batchKey
	for _, b := range won {
		if !b.held.Lost() {
			batch = append(batch, b)
			ops = append(ops, kvWrite{id: b.id, rev: b.held.Rev(), del: true})
		}
	}
	_, errs := k.writeAll(wctx, ops)
	for i, b := range batch {
		if errs[i] != nil {
			b.release(wctx, b.held)
		}
	}
}

// kvWrite is a compare-and-set of one key: value is stored, or the key
// deleted if del, only if the key's last write is at revision rev (0: it has
// none).
type kvWrite struct {
	id    string
	value []byte
	rev   uint64
	del   bool
}

// maxAtomicBatch is the server's limit on the messages of an atomic batch.
const maxAtomicBatch = 1000

// writeAll performs writes and returns each one's new revision or error
// (claim.Conflict for a failed compare-and-set; another error leaves the
// write's outcome unknown).
//
// Every write is one stored message, and under sync always one fsync,
// unless it goes in an atomic batch, which the server stores with one fsync
// (see KeysOptions.AtomicBatches). An atomic batch fails as a whole when
// one of its compare-and-sets does, and then every write of it gets that
// error: a caller that must know which one failed reads them. Otherwise the
// writes go as asynchronous publishes, all in flight at once.
func (k *Keys) writeAll(ctx context.Context, writes []kvWrite) (revs []uint64, errs []error) {
	revs, errs = make([]uint64, len(writes)), make([]error, len(writes))
	for start := 0; start < len(writes); start += maxAtomicBatch {
		end := min(start+maxAtomicBatch, len(writes))
		if end-start >= k.opts.AtomicBatchMin && k.atomicOK() {
			err := k.writeAtomic(ctx, writes[start:end], revs[start:end])
			switch {
			case err == nil:
				continue
			case claim.Conflict(err) || ctx.Err() != nil:
				for i := start; i < end; i++ {
					errs[i] = err
				}
				continue
			case isAtomicDisabled(err):
				k.noAtomic.Store(true)
				// Debug: the caller that set AtomicBatches tells users
				// why the stream does not allow them, if it knows.
				k.opts.Logger.Debug("once: the key bucket does not take atomic batches; writing keys one by one", "bucket", k.kv.Bucket(), "err", err)
			default:
				// Too many batches in flight on the server (it allows 50
				// per stream), a batch abandoned, a lost reply: send the
				// writes again one by one. Those of the batch that were
				// stored after all fail their compare-and-set, and the
				// callers recognize them as theirs.
				k.opts.Logger.Debug("once: an atomic batch of keys failed; writing them one by one", "bucket", k.kv.Bucket(), "err", err)
			}
		}
		k.writeAsync(ctx, writes[start:end], revs[start:end], errs[start:end])
	}
	return revs, errs
}

func (k *Keys) atomicOK() bool { return k.opts.AtomicBatches && !k.noAtomic.Load() }

// isAtomicDisabled reports whether err says that the stream does not take
// atomic batches.
func isAtomicDisabled(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeAtomicPublishDisabled
}

// jsErrCodeAtomicPublishDisabled is the server's error code for an atomic
// batch sent to a stream that does not allow them.
const jsErrCodeAtomicPublishDisabled jetstream.ErrorCode = 10174

func (w kvWrite) msg(bucket string) *nats.Msg {
	m := &nats.Msg{Subject: "$KV." + bucket + "." + w.id, Data: w.value, Header: nats.Header{
		jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(w.rev, 10)},
	}}
	if w.del {
		m.Header.Set(kvOperation, kvDelete)
	}
	return m
}

// writeAtomic sends writes as one atomic batch and, if it was stored, sets
// their revisions.
func (k *Keys) writeAtomic(ctx context.Context, writes []kvWrite, revs []uint64) error {
	id := nuid.Next()
	nc := k.opts.JS.Conn()
	last := len(writes) - 1
	for i, w := range writes {
		m := w.msg(k.kv.Bucket())
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i < last {
			if err := nc.PublishMsg(m); err != nil {
				return err
			}
			continue
		}
		m.Header.Set("Nats-Batch-Commit", "1")
		ack, err := k.opts.JS.PublishMsg(ctx, m)
		if err != nil {
			return err
		}
		// The messages of a batch are stored one after the other.
		for j := range revs {
			revs[j] = ack.Sequence - uint64(last-j)
		}
	}
	return nil
}

// writeAsync sends writes as asynchronous publishes, all in flight at once.
func (k *Keys) writeAsync(ctx context.Context, writes []kvWrite, revs []uint64, errs []error) {
	if err := ctx.Err(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return
	}
	futs := make([]jetstream.PubAckFuture, len(writes))
	for i, w := range writes {
		if futs[i], errs[i] = k.opts.JS.PublishMsgAsync(w.msg(k.kv.Bucket())); errs[i] != nil {
			for j := i + 1; j < len(writes); j++ {
				errs[j] = errs[i]
			}
			break
		}
	}
	for i, fut := range futs {
		if fut == nil {
			continue
		}
		select {
		case a := <-fut.Ok():
			revs[i] = a.Sequence
		case errs[i] = <-fut.Err():
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
}

// renewFailed logs a failed renewal of the key's claim, as Do does.
func (c *onceCall) renewFailed(err error) {
	if errors.Is(err, claim.ErrLost) {
		c.opts.Logger.Warn("once: lost the claim of a key while the work was running (renewals came too late, or someone changed the record); another caller may run the work too",
			"key", c.key, "claim_ttl", c.opts.ClaimTTL)
		return
	}
	c.opts.Logger.Warn("once: could not renew the claim of a key; trying again", "key", c.key, "err", err)
}
