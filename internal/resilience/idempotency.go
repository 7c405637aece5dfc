package resilience

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/claim"
)

// Bounds and defaults of idempotency keys.
const (
	// DefaultKeyTTL is how long a completed key is remembered when Do is
	// given a ttl of 0.
	DefaultKeyTTL = 24 * time.Hour
	// MaxKeyTTL is the longest a completed key can be remembered. The key
	// bucket's max age must be at least this (the SDK creates it with
	// exactly this), or records would vanish before they expire.
	MaxKeyTTL = 7 * 24 * time.Hour
	// DefaultClaimTTL is how long a claim lasts without renewal: after a
	// crash in the middle of the work, the key is free again this long after
	// the last renewal.
	DefaultClaimTTL = 30 * time.Second
	// DefaultRecheck is how long a caller waiting for another's run goes at
	// most without reading the key again, even if no change was announced.
	DefaultRecheck = time.Second
	// DefaultAtomicBatchMin is the fewest writes that DoBatch sends as an
	// atomic batch. On the 2-core machine of the benchmarks, with every
	// write fsynced, an atomic batch costs about what 20 to 40 asynchronous
	// publishes cost, and 100 writes cost 2 to 4 times less as one.
	DefaultAtomicBatchMin = 32
)

// The shortest ClaimTTL and Recheck: below them, renewals and rereads
// would keep the store busy for nothing.
const (
	minClaimTTL = 100 * time.Millisecond
	minRecheck  = 10 * time.Millisecond
)

// onceWriteTimeout bounds the writes made after the work returned (recording
// its completion, releasing the key). They do not obey the caller's context:
// once the work ran, recording the outcome matters even if that context
// ended meanwhile.
const onceWriteTimeout = 10 * time.Second

// ErrNotRecorded is returned by [Keys.Do], wrapped and with ran == true,
// when the work succeeded but its completion could not be stored (the key
// store was unreachable). The key stays claimed until its claim expires;
// after that, a duplicate call runs the work again.
var ErrNotRecorded = errors.New("once: the work ran but its completion could not be recorded, so a later duplicate may run it again")

// States of a key record.
const (
	keyRunning = "running"
	keyDone    = "done"
)

// record is the value stored under a key.
type keyRecord struct {
	State string `json:"state"`
	// Key is the caller's key (its first maxShownKey bytes), for people
	// reading the bucket; the KV key is derived from the whole of it.
	Key   string `json:"key"`
	Owner string `json:"owner,omitempty"`
	// Claim identifies one claim, so that an owner recognizes its own
	// record after a renewal whose reply it did not see.
	Claim        string    `json:"claim,omitempty"`
	ClaimedUntil time.Time `json:"claimed_until,omitzero"`
	DoneAt       time.Time `json:"done_at,omitzero"`
	Expires      time.Time `json:"expires,omitzero"`
}

const maxShownKey = 256

// KeysOptions configures [Keys]. Zero values mean the documented defaults.
type KeysOptions struct {
	// Owner names this instance in the records it writes. Informational.
	Owner string
	// ClaimTTL is how long a claim lasts without renewal; it is renewed
	// every ClaimTTL/3 while the work runs. Default DefaultClaimTTL.
	ClaimTTL time.Duration
	// Recheck bounds how long a waiting caller goes without reading the key
	// again. Default DefaultRecheck; tests with a fake clock set it low.
	Recheck time.Duration
	// Now is the clock of claims and expiries. Default time.Now. Instances
	// sharing a bucket compare each other's times (the bound on their skew
	// is stated in package claim).
	Now func() time.Time
	// Logger receives warnings (a claim lost to a takeover, a key that could
	// not be released). Default slog.Default().
	Logger *slog.Logger
	// JS is the JetStream client of kv's server, through which DoBatch
	// writes and reads many keys at once. Only DoBatch needs it.
	JS jetstream.JetStream
	// AtomicBatches makes DoBatch send AtomicBatchMin writes or more as
	// an atomic batch, which the server stores with one fsync, instead of
	// asynchronous publishes, which it stores one by one. It pays where
	// the server fsyncs every write (an atomic batch has a staging store of
	// its own, fsynced whatever the server's policy: with periodic fsyncs,
	// asynchronous publishes are cheaper). It needs a NATS 2.12 server or
	// later: an older one would store the messages of a batch one by one,
	// without saying which were stored. If kv's stream does not allow
	// atomic batches (AllowAtomicPublish), DoBatch falls back to
	// asynchronous publishes.
	AtomicBatches bool
	// AtomicBatchMin is the fewest writes sent as an atomic batch. Default
	// DefaultAtomicBatchMin.
	AtomicBatchMin int
}

// Keys runs pieces of work at most once per key among every caller sharing
// its key-value bucket (see [Keys.Do]). It holds no state of its own besides
// its options, so making one per call is cheap.
type Keys struct {
	kv   jetstream.KeyValue
	opts KeysOptions
	// noAtomic: the stream refused an atomic batch.
	noAtomic atomic.Bool
}

// NewKeys returns Keys stored in kv, a bucket with history 1 and a max age
// of at least MaxKeyTTL. It makes no call to the server.
func NewKeys(kv jetstream.KeyValue, opts KeysOptions) (*Keys, error) {
	if kv == nil {
		return nil, errors.New("once: no key-value bucket given")
	}
	if opts.ClaimTTL < 0 || (opts.ClaimTTL > 0 && opts.ClaimTTL < minClaimTTL) {
		return nil, fmt.Errorf("once: ClaimTTL %s must be at least %s (0 means %s)", opts.ClaimTTL, minClaimTTL, DefaultClaimTTL)
	}
	if opts.Recheck < 0 || (opts.Recheck > 0 && opts.Recheck < minRecheck) {
		return nil, fmt.Errorf("once: Recheck %s must be at least %s (0 means %s)", opts.Recheck, minRecheck, DefaultRecheck)
	}
	opts.ClaimTTL = cmp.Or(opts.ClaimTTL, DefaultClaimTTL)
	opts.Recheck = cmp.Or(opts.Recheck, DefaultRecheck)
	opts.AtomicBatchMin = max(cmp.Or(opts.AtomicBatchMin, DefaultAtomicBatchMin), 2)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Keys{kv: kv, opts: opts}, nil
}

// Do runs fn unless a run of the work with the same key already succeeded
// less than ttl ago (0 means DefaultKeyTTL, at most MaxKeyTTL), and reports
// whether it ran fn. Among all callers of one bucket:
//
//   - the first caller claims the key atomically and runs fn, renewing its
//     claim every ClaimTTL/3 while fn runs;
//   - callers that find the key claimed wait, bounded by ctx, until the run
//     ends: if it succeeded they return (false, nil) without running fn; if
//     it failed the key was released and one of them claims it and runs fn;
//     if the claim expires unrenewed (its owner crashed) one of them takes
//     it over. Every claim and takeover is a compare-and-set, so two
//     callers never both win;
//   - when fn returns nil, the key is recorded as done until ttl has passed
//     and Do returns (true, nil); if that record cannot be written, Do
//     returns (true, err) with err wrapping ErrNotRecorded;
//   - when fn returns an error, the key is released and Do returns (true,
//     that error, unwrapped);
//   - when fn panics, the key is released and the panic continues, unchanged,
//     up the caller's stack: Do does not recover it.
//
// fn gets ctx. A claim can be lost while fn runs if renewals fail for
// longer than ClaimTTL (the store was unreachable, the process stalled):
// another caller may then run the work too. Do logs a warning when it finds
// that out, and does not cancel fn.
func (k *Keys) Do(ctx context.Context, key string, ttl time.Duration, fn func(ctx context.Context) error) (ran bool, err error) {
	if err := validateKey(key, ttl); err != nil {
		return false, err
	}
	if fn == nil {
		return false, fmt.Errorf("once %q: no work function given", key)
	}
	c := k.call(key, ttl)
	w := &keyWatch{Keys: k, ids: []string{c.id}, what: strconv.Quote(key)}
	defer w.stop()
	for {
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("once %q: %w", key, err)
		}
		st, err := c.claim(ctx)
		if err != nil {
			return false, err
		}
		switch st.outcome {
		case claimWon:
			return true, c.run(ctx, st.held, fn)
		case claimDone:
			return false, nil
		case claimBusy:
			if err := w.wait(ctx, map[string]uint64{c.id: st.rev}, st.until); err != nil {
				return false, err
			}
		}
	}
}

func validateKey(key string, ttl time.Duration) error {
	switch {
	case key == "":
		return errors.New("once: the key must not be empty: pass a stable identifier of the work, such as an event's ID")
	case ttl < 0:
		return fmt.Errorf("once %q: ttl %s must not be negative (0 means %s)", key, ttl, DefaultKeyTTL)
	case ttl > MaxKeyTTL:
		return fmt.Errorf("once %q: ttl %s is above the longest of %s: keys are not kept longer", key, ttl, MaxKeyTTL)
	}
	return nil
}

// onceKVKey derives the KV key of a caller's key. Any string works: the key is
// the hex SHA-256 of the caller's key, after the caller's key itself when
// that is short and made of characters safe in a KV key, so that people
// reading the bucket recognize it. Distinct keys have distinct hashes, so
// the prefix cannot make two of them collide.
func onceKVKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	if key == "" || len(key) > 64 {
		return h
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '=':
		default:
			return h
		}
	}
	return key + "." + h
}

// onceCall is one Do, or one key of a DoBatch.
type onceCall struct {
	*Keys
	key   string
	id    string // the KV key
	ttl   time.Duration
	token string // identifies our current claim
}

func (k *Keys) call(key string, ttl time.Duration) *onceCall {
	return &onceCall{Keys: k, key: key, id: onceKVKey(key), ttl: cmp.Or(ttl, DefaultKeyTTL)}
}

type claimOutcome int

const (
	claimAgain claimOutcome = iota // the key changed under us: look again
	claimWon                       // we hold the claim at rev
	claimDone                      // a run succeeded and has not expired
	claimBusy                      // another caller holds a live claim at rev until until
	claimTake                      // the record is a run that expired: take it over
)

type claimResult struct {
	outcome claimOutcome
	held    *claim.Claim // claimWon
	rev     uint64       // claimBusy: the other caller's claim
	until   time.Time
}

// terms are the terms of our claims: ClaimTTL, no margin (a claim lost
// while the work runs does not stop the work).
func (c *onceCall) terms() claim.Terms {
	return claim.Terms{TTL: c.opts.ClaimTTL, Now: c.opts.Now}
}

func (c *onceCall) running(now time.Time) []byte {
	return onceJSON(keyRecord{State: keyRunning, Key: shownKey(c.key), Owner: c.opts.Owner, Claim: c.token, ClaimedUntil: now.Add(c.opts.ClaimTTL)})
}

// done is the record of the key's completion at now.
func (c *onceCall) done(now time.Time) []byte {
	return onceJSON(keyRecord{State: keyDone, Key: shownKey(c.key), Owner: c.opts.Owner, Claim: c.token, DoneAt: now, Expires: now.Add(c.ttl)})
}

// claim tries once to claim the key: create it, or take over a record
// whose run expired.
func (c *onceCall) claim(ctx context.Context) (claimResult, error) {
	c.token = newClaimToken()
	start := c.opts.Now()
	held, err := claim.Take(ctx, c.kv, c.id, 0, start, c.running(start), c.terms())
	if err == nil {
		return claimResult{outcome: claimWon, held: held}, nil
	}
	if !claim.Conflict(err) {
		return claimResult{}, fmt.Errorf("once %q: claim the key: %w", c.key, err)
	}
	e, err := c.kv.Get(ctx, c.id)
	if errors.Is(err, jetstream.ErrKeyNotFound) { // released meanwhile
		return claimResult{outcome: claimAgain}, nil
	}
	if err != nil {
		return claimResult{}, fmt.Errorf("once %q: read the key: %w", c.key, err)
	}
	cur, err := c.decode(e)
	if err != nil {
		return claimResult{}, err
	}
	now := c.opts.Now()
	if v := verdict(cur, now); v != claimTake {
		return claimResult{outcome: v, rev: e.Revision(), until: cur.ClaimedUntil}, nil
	}
	held, err = claim.Take(ctx, c.kv, c.id, e.Revision(), now, c.running(now), c.terms())
	if claim.Conflict(err) { // another caller took it over first
		return claimResult{outcome: claimAgain}, nil
	}
	if err != nil {
		return claimResult{}, fmt.Errorf("once %q: take over the key: %w", c.key, err)
	}
	c.tookOver(cur)
	return claimResult{outcome: claimWon, held: held}, nil
}

// verdict judges the record cur of a key that a caller wants to claim:
// done, busy (claimed by another caller), or to be taken over.
func verdict(cur keyRecord, now time.Time) claimOutcome {
	switch {
	case cur.State == keyDone && !claim.Expired(now, cur.Expires):
		return claimDone
	case cur.State == keyRunning && !claim.Expired(now, cur.ClaimedUntil):
		return claimBusy
	}
	return claimTake
}

// tookOver warns, if cur, the record we replaced, was a claim, that the work
// runs again.
func (c *onceCall) tookOver(cur keyRecord) {
	if cur.State == keyRunning {
		c.opts.Logger.Warn("once: took over an expired claim; its owner crashed or stalled in the middle of the work, which runs again now",
			"key", c.key, "previous_owner", cur.Owner, "claimed_until", cur.ClaimedUntil)
	}
}

func (c *onceCall) decode(e jetstream.KeyValueEntry) (keyRecord, error) {
	return c.decodeValue(e.Value())
}

func (c *onceCall) decodeValue(value []byte) (keyRecord, error) {
	var r keyRecord
	err := json.Unmarshal(value, &r)
	if err == nil && r.State != keyRunning && r.State != keyDone {
		err = fmt.Errorf("unknown state %q", r.State)
	}
	if err != nil {
		return r, fmt.Errorf("once %q: the record of key %s in bucket %s was not written by Sluice (%v): delete it to let the work run",
			c.key, c.id, c.kv.Bucket(), err)
	}
	return r, nil
}

// keyWatch waits for other callers' runs of the work under some keys to
// end.
type keyWatch struct {
	*Keys
	ids  []string // the KV keys
	what string   // names the keys in errors

	watch   jetstream.KeyWatcher // opened on the first wait
	cancel  context.CancelFunc
	noWatch bool // the watch could not be opened or closed: poll
}

// wait returns when a record whose revision was revs[id] may have changed,
// when a claim until until may have expired, or after Recheck, whichever is
// first.
func (w *keyWatch) wait(ctx context.Context, revs map[string]uint64, until time.Time) error {
	if w.watch == nil && !w.noWatch {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		kw, err := w.kv.WatchFiltered(wctx, w.ids)
		if err != nil {
			cancel()
			w.noWatch = true
			w.opts.Logger.Debug("once: cannot watch the keys; polling them instead", "keys", w.what, "err", err)
		} else {
			w.watch, w.cancel = kw, cancel
		}
	}
	var updates <-chan jetstream.KeyValueEntry
	if w.watch != nil && !w.noWatch {
		updates = w.watch.Updates()
	}
	d := min(max(until.Sub(w.opts.Now()), time.Millisecond), w.opts.Recheck)
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("once %s: gave up waiting for another caller's run of the work to end: %w", w.what, ctx.Err())
		case <-t.C:
			return nil
		case e, ok := <-updates:
			switch {
			case !ok:
				w.noWatch, updates = true, nil
			case e != nil && e.Revision() > revs[e.Key()]:
				return nil
			}
		}
	}
}

// stop stops the watch, if any, and reads what is left of its channel:
// nats.go blocks the subscription's goroutine on a full channel.
func (w *keyWatch) stop() {
	if w.watch == nil {
		return
	}
	_ = w.watch.Stop()
	w.cancel()
	t := time.NewTimer(onceWriteTimeout)
	defer t.Stop()
	for {
		select {
		case _, ok := <-w.watch.Updates():
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}

// run runs fn holding the claim, renewed every ClaimTTL/3 meanwhile, then
// records its outcome.
func (c *onceCall) run(ctx context.Context, held *claim.Claim, fn func(context.Context) error) error {
	stop := held.KeepAlive(c.opts.ClaimTTL/3, c.running, c.renewFailed)
	returned := false
	defer func() {
		if !returned { // fn panicked or called runtime.Goexit
			if lost := stop(); !lost {
				c.release(ctx, held)
			}
		}
	}()
	err := fn(ctx)
	returned = true
	lost := stop()
	if err != nil {
		if !lost {
			c.release(ctx, held)
		}
		return err
	}
	return c.complete(ctx, held)
}

// complete records the key as done. A conflict means either that a renewal
// we stopped mid-write landed, or that another caller took our claim over;
// the work succeeded either way, so the record is written over theirs
// unless a run of theirs already recorded success.
func (c *onceCall) complete(ctx context.Context, held *claim.Claim) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), onceWriteTimeout)
	defer cancel()
	now := c.opts.Now()
	val := c.done(now)
	var err error
	for attempt := range 4 {
		if attempt > 0 && !claim.Conflict(err) { // back off before retrying a failed write
			select {
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			case <-wctx.Done():
				return fmt.Errorf("%w (key %q): %w", ErrNotRecorded, c.key, err)
			}
		}
		if _, err = held.Write(wctx, now, val); err == nil {
			return nil
		}
		if !claim.Conflict(err) {
			continue
		}
		e, gerr := c.kv.Get(wctx, c.id)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) {
			held.Adopt(0)
			continue
		}
		if gerr != nil {
			err = gerr
			continue
		}
		cur, derr := c.decode(e)
		if derr != nil {
			return fmt.Errorf("%w: %w", ErrNotRecorded, derr)
		}
		if cur.Claim == c.token { // a write of ours whose reply we did not get
			if cur.State == keyDone {
				return nil
			}
			held.Adopt(e.Revision())
			continue
		}
		c.opts.Logger.Warn("once: another caller took the key over while the work was running, so the work may have run twice",
			"key", c.key, "other_owner", cur.Owner, "other_state", cur.State)
		if cur.State == keyDone && !claim.Expired(now, cur.Expires) {
			return nil
		}
		held.Adopt(e.Revision())
	}
	return fmt.Errorf("%w (key %q): %w", ErrNotRecorded, c.key, err)
}

// release deletes our claim, so that the next caller runs the work. If that
// fails, the claim expires on its own within ClaimTTL.
func (c *onceCall) release(ctx context.Context, held *claim.Claim) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), onceWriteTimeout)
	defer cancel()
	err := held.Release(wctx)
	if claim.Conflict(err) { // maybe a renewal of ours whose reply we did not wait for
		var e jetstream.KeyValueEntry
		if e, err = c.kv.Get(wctx, c.id); err == nil {
			if cur, derr := c.decode(e); derr != nil || cur.Claim != c.token || cur.State != keyRunning {
				return // not ours any more: leave it
			}
			held.Adopt(e.Revision())
			err = held.Release(wctx)
		} else if errors.Is(err, jetstream.ErrKeyNotFound) {
			return
		}
	}
	if err != nil {
		c.opts.Logger.Warn("once: could not release the key after the work failed; the work can run again once its claim expires",
			"key", c.key, "claim_ttl", c.opts.ClaimTTL, "err", err)
	}
}

func shownKey(key string) string {
	if len(key) > maxShownKey {
		return key[:maxShownKey] + "…"
	}
	return key
}

func newClaimToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func onceJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // a record holds only strings and times
	}
	return b
}
