package lease

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/claim"
)

// set is one joined set. Its loop goroutine makes every KV call for it and
// owns the view; mu guards what the run goroutines, the expiry timers and
// Owned touch.
type set struct {
	m     *Manager
	name  string
	keys  keys
	units int
	run   func(context.Context, int)
	log   *slog.Logger

	leaving   chan struct{} // closed by leave
	leaveOnce sync.Once
	exited    chan struct{} // closed when the loop has returned
	started   bool          // the loop was started; guarded by m.mu
	kick      chan struct{} // wakes the loop for a round

	mu       sync.Mutex
	held     map[int]*lease    // keys we hold: active or releasing
	runs     map[int]*lease    // run funcs that have not returned
	cooldown map[int]time.Time // units whose run returned on its own: not claimed before

	// Loop goroutine only.
	ctx       context.Context // parent of the run contexts
	watch     jetstream.KeyWatcher
	endWatch  context.CancelFunc
	viewReady bool // the watch delivered its initial values
	members   map[string]entry
	owners    map[int]entry
	heartbeat []byte
	claimed   []byte
	// twin is set once another live session heartbeats under this
	// instance's ID: a previous life's leases are then no longer taken
	// back before they expire (see Config.InstanceID).
	twin atomic.Bool
	// firstBeat is the revision of this session's first heartbeat, and
	// firstBeatAt the local time it was confirmed.
	firstBeat   uint64
	firstBeatAt time.Time
}

// entry is what the view keeps of a key.
type entry struct {
	rev     uint64
	created time.Time
	deleted bool
	id      string // owner (ownership key) or instance (member key)
	session string
	units   int
}

func newSet(m *Manager, name string, units int, run func(context.Context, int)) *set {
	return &set{
		m:         m,
		name:      name,
		keys:      keysFor(name),
		units:     units,
		run:       run,
		log:       m.log.With("set", name),
		leaving:   make(chan struct{}),
		exited:    make(chan struct{}),
		kick:      make(chan struct{}, 1),
		held:      make(map[int]*lease),
		runs:      make(map[int]*lease),
		cooldown:  make(map[int]time.Time),
		members:   make(map[string]entry),
		owners:    make(map[int]entry),
		heartbeat: mustJSON(memberValue{Instance: m.cfg.InstanceID, Session: m.session, Units: units}),
		claimed:   mustJSON(ownerValue{Owner: m.cfg.InstanceID, Session: m.session}),
	}
}

func (s *set) leave() { s.leaveOnce.Do(func() { close(s.leaving) }) }

func (s *set) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *set) loop(parent context.Context) {
	defer close(s.exited)
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	s.ctx = ctx
	defer s.stopWatch()

	ticker := time.NewTicker(s.m.cfg.Renew)
	defer ticker.Stop()
	leaving := s.leaving
	draining := false
	renew := true
	for {
		if !draining && isDone(s.leaving) {
			draining = true
			s.beginDrain(ctx)
		}
		if !s.m.frozen.Load() {
			s.round(ctx, renew, draining)
		}
		renew = false
		if draining && s.drained() {
			return
		}

		interesting := false
		for !interesting {
			var updates <-chan jetstream.KeyValueEntry
			if s.watch != nil {
				updates = s.watch.Updates()
			}
			select {
			case <-ctx.Done():
				s.hardStop(context.Cause(ctx))
				return
			case <-ticker.C:
				renew, interesting = true, true
			case <-s.kick:
				interesting = true
			case <-leaving:
				leaving, interesting = nil, true
			case e, ok := <-updates:
				if !ok { // restarted by the next tick's round
					s.log.Warn("lease: watch of the set's keys ended; restarting it")
					s.stopWatch()
				} else {
					interesting = s.apply(e)
				}
			}
		}
	}
}

// round makes one pass: renewals and heartbeat when due (renewals first: they
// keep the leases), frees the keys of finished releases, then claims or
// releases toward this instance's share. The heartbeat precedes the first
// watch, so that the view this instance balances on already includes it.
func (s *set) round(ctx context.Context, renew, draining bool) {
	ctx, cancel := context.WithTimeout(ctx, s.m.cfg.Renew)
	defer cancel()
	if renew {
		s.renewAll(ctx)
		if !draining {
			s.beat(ctx)
		}
	}
	if s.watch == nil && !draining {
		s.startWatch()
	}
	s.freeFinished(ctx)
	if !draining && s.viewReady {
		s.balance(ctx)
	}
}

func (s *set) beat(ctx context.Context) {
	rev, err := s.m.kv.Put(ctx, s.keys.member(s.m.cfg.InstanceID), s.heartbeat)
	if err != nil {
		s.log.Warn("lease: heartbeat failed", "err", err)
		return
	}
	if s.firstBeat == 0 {
		s.firstBeat, s.firstBeatAt = rev, time.Now()
	}
}

func (s *set) startWatch() {
	clear(s.members)
	clear(s.owners)
	// The watch lasts as long as its context, so it gets one of its own
	// rather than the round's; nats.go bounds the call with its default
	// timeout.
	ctx, cancel := context.WithCancel(s.ctx)
	w, err := s.m.kv.Watch(ctx, s.keys.all())
	if err != nil {
		cancel()
		s.log.Warn("lease: cannot watch the set's keys; will retry", "err", err)
		return
	}
	s.watch, s.endWatch = w, cancel
}

func (s *set) stopWatch() {
	if s.watch != nil {
		stopWatch(s.watch)
		s.endWatch()
		s.watch, s.endWatch, s.viewReady = nil, nil, false
	}
}

// apply records a change of a key in the view and reports whether it can
// change what this instance should own.
func (s *set) apply(kve jetstream.KeyValueEntry) bool {
	if kve == nil { // the initial values are in
		s.viewReady = true
		return true
	}
	kind, tok, ok := s.keys.parse(kve.Key())
	if !ok {
		return false
	}
	e := entry{rev: kve.Revision(), created: kve.Created(), deleted: kve.Operation() != jetstream.KeyValuePut}
	switch kind {
	case "m":
		var v memberValue
		if !e.deleted && json.Unmarshal(kve.Value(), &v) == nil {
			e.id, e.session, e.units = v.Instance, v.Session, v.Units
		}
		old, had := s.members[tok]
		s.members[tok] = e
		if !e.deleted && e.id == s.m.cfg.InstanceID && e.session != s.m.session && s.firstBeat != 0 && e.rev > s.firstBeat && !s.twin.Load() {
			// A heartbeat of another session after this one's first (by
			// the bucket's revisions, which no clock skews): a dead life
			// writes nothing after this one began.
			s.twin.Store(true)
			s.log.Error("lease: another live process uses this instance ID: give each instance its own ID (--instance-id); "+
				"until then, units are taken over only once their leases expire", "their_session", e.session)
		}
		if e.deleted || e.id == "" {
			return had && !old.deleted
		}
		joined := !had || old.deleted || s.expired(old, time.Now())
		if joined && e.units != s.units && e.id != s.m.cfg.InstanceID {
			s.log.Warn("lease: members disagree on the number of units", "member", e.id, "their_units", e.units, "our_units", s.units)
		}
		return joined
	case "o":
		unit, err := strconv.Atoi(tok)
		if err != nil || unit < 0 || unit >= s.units {
			return false
		}
		if !e.deleted {
			var v ownerValue
			if json.Unmarshal(kve.Value(), &v) == nil {
				e.id, e.session = v.Owner, v.Session
			}
		}
		s.owners[unit] = e
		s.checkHeld(unit, e)
		return e.deleted
	}
	return false
}

// checkHeld loses a held unit whose key someone else has written.
func (s *set) checkHeld(unit int, e entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.held[unit]
	if l == nil || e.rev <= l.claim.Rev() {
		return
	}
	if !e.deleted && e.session == s.m.session {
		// Our own renewal, confirmed to us only now (its reply was lost).
		// It was a compare-and-set on our revision, so the lease is unbroken.
		l.claim.Adopt(e.rev)
		return
	}
	s.lose(l, fmt.Errorf("%w: key %s was changed by another writer", ErrLost, s.keys.owner(unit)))
}

// expired reports whether a key has gone unwritten for Expiry by the
// server's timestamp.
func (s *set) expired(e entry, now time.Time) bool {
	return claim.Expired(now, e.created.Add(s.m.cfg.Expiry))
}

// renewAll rewrites every held key with compare-and-set on our revision.
func (s *set) renewAll(ctx context.Context) {
	for _, l := range s.heldLeases() {
		if l.finished() {
			continue // freeFinished deletes it
		}
		_, err := l.claim.Write(ctx, time.Now(), s.claimed)
		if claim.Conflict(err) && s.adoptOwnWrite(ctx, l.claim) {
			_, err = l.claim.Write(ctx, time.Now(), s.claimed)
		}
		s.mu.Lock()
		switch {
		case l.state == gone:
		case err == nil:
			s.extend(l)
		case claim.Conflict(err):
			s.lose(l, fmt.Errorf("%w: renewal of %s failed its compare-and-set: %v", ErrLost, s.keys.owner(l.unit), err))
		default:
			s.log.Warn("lease: renewal failed; will retry", "unit", l.unit, "err", err)
		}
		s.mu.Unlock()
	}
}

// freeFinished deletes the keys of released units whose run has returned.
func (s *set) freeFinished(ctx context.Context) {
	for _, l := range s.heldLeases() {
		s.mu.Lock()
		ready := l.state == releasing && l.finished()
		s.mu.Unlock()
		if !ready {
			continue
		}
		err := l.claim.Release(ctx)
		if claim.Conflict(err) && s.adoptOwnWrite(ctx, l.claim) {
			err = l.claim.Release(ctx)
		}
		s.mu.Lock()
		if err != nil && !claim.Conflict(err) && l.state != gone {
			// The delete may not have been made (a timeout under load, a
			// lost connection): try again next round. The lease's timer
			// drops the unit once the key expires by itself.
			s.mu.Unlock()
			s.log.Warn("lease: could not free released unit; will retry until it expires", "unit", l.unit, "err", err)
			continue
		}
		if l.state != gone {
			s.drop(l)
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("lease: could not free released unit; it frees itself at expiry", "unit", l.unit, "err", err)
		} else {
			s.log.Debug("lease: freed unit", "unit", l.unit)
		}
	}
}

// adoptOwnWrite is for a write of the holder of c that failed its
// compare-and-set. It reads the key and, when the latest write there is this
// session's, adopts its revision and reports true: the write can be made
// again. That write was a renewal of ours whose reply we did not get (it
// timed out, say, under load, though the server stored it), not yet seen by
// the watch. Every write of this session to a key it holds is a
// compare-and-set on its previous one, and a unit is not claimed again while
// it is held, so nobody wrote in between: the lease is unbroken. Without
// this, a holder would take its own late renewal for a takeover, stop its
// run and have the unit's unfinished work redone.
func (s *set) adoptOwnWrite(ctx context.Context, c *claim.Claim) bool {
	e, err := s.m.kv.Get(ctx, c.Key())
	if err != nil || e.Operation() != jetstream.KeyValuePut || e.Revision() <= c.Rev() {
		return false
	}
	var v ownerValue
	if json.Unmarshal(e.Value(), &v) != nil || v.Session != s.m.session {
		return false
	}
	c.Adopt(e.Revision())
	return true
}

// balance claims or releases units toward this instance's share.
func (s *set) balance(ctx context.Context) {
	now := time.Now()
	me := s.m.cfg.InstanceID
	counts := map[string]int{me: 0}
	for _, e := range s.members {
		if !e.deleted && e.id != "" && !s.expired(e, now) {
			counts[e.id] = 0
		}
	}
	for _, e := range s.owners {
		if _, live := counts[e.id]; live && e.id != me && !e.deleted && !s.expired(e, now) {
			counts[e.id]++
		}
	}
	s.mu.Lock()
	var mine []int
	for u, l := range s.held {
		if l.state == active {
			mine = append(mine, u)
		}
	}
	s.mu.Unlock()
	counts[me] = len(mine)
	target := share(s.units, me, counts)

	if len(mine) > target {
		slices.Sort(mine)
		s.release(mine[target:])
		return
	}
	need := target - len(mine)
	for _, unit := range rand.Perm(s.units) {
		if need == 0 || ctx.Err() != nil {
			return
		}
		e, known := s.owners[unit]
		// A unit is free when its key is, when its lease expired, or when
		// a previous life of this instance held it.
		held := known && !e.deleted && e.session != s.m.session && !s.expired(e, now) && !s.previousLife(e, now)
		if s.busy(unit) || held {
			continue
		}
		var rev uint64 // a free key is created
		if known && !e.deleted {
			rev = e.rev // an expired one taken over
		}
		c, err := claim.Take(ctx, s.m.kv, s.keys.owner(unit), rev, time.Now(), s.claimed, s.m.terms)
		switch {
		case err == nil:
			s.acquire(unit, c)
			need--
		case claim.Conflict(err):
			s.log.Debug("lease: lost a claim race", "unit", unit)
		default:
			s.log.Warn("lease: claim failed", "unit", unit, "err", err)
			return
		}
	}
}

// previousLife reports whether an ownership key was written by an earlier
// process of this instance, dead since (ids are unique among live
// processes), whose lease this one may take back at once.
func (s *set) previousLife(e entry, now time.Time) bool {
	if e.id != s.m.cfg.InstanceID || e.session == s.m.session || s.twin.Load() {
		return false
	}
	// Without the caller's guarantee, a live twin must have had the time
	// to show itself: it heartbeats every Renew.
	return s.m.cfg.ExclusiveID || (s.firstBeat != 0 && now.Sub(s.firstBeatAt) >= s.m.cfg.Renew*3/2)
}

// twinSeen reports whether another live process was seen under this
// instance's ID.
func (s *set) twinSeen() bool { return s.twin.Load() }

// share is the number of units member me should hold, given how many each
// live member holds now (me included). Every member gets units/n; the extra
// units%n go to members already above units/n, lowest IDs first, or, while
// there are fewer such members than extras, to anyone who claims one.
func share(units int, me string, counts map[string]int) int {
	n := len(counts)
	base, extra := units/n, units%n
	var above []string
	for id, c := range counts {
		if c > base {
			above = append(above, id)
		}
	}
	if counts[me] > base {
		slices.Sort(above)
		if slices.Index(above, me) < extra {
			return base + 1
		}
		return base
	}
	if len(above) < extra {
		return base + 1
	}
	return base
}

// busy reports whether unit is held here, its last run is still running, or
// that run returned on its own too recently to start another.
func (s *set) busy(unit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until, ok := s.cooldown[unit]; ok {
		if time.Now().Before(until) {
			return true
		}
		delete(s.cooldown, unit)
	}
	return s.held[unit] != nil || s.runs[unit] != nil
}

// acquire starts run for a unit just claimed.
func (s *set) acquire(unit int, c *claim.Claim) {
	l := &lease{unit: unit, claim: c, done: make(chan struct{})}
	ctx, cancel := context.WithCancelCause(s.ctx)
	l.ctx, l.cancel = context.WithValue(ctx, leaseKey{}, l), cancel
	s.mu.Lock()
	l.timer = time.AfterFunc(time.Hour, func() { s.expire(l) })
	s.extend(l)
	s.held[unit] = l
	s.runs[unit] = l
	s.mu.Unlock()
	s.log.Info("lease: acquired unit", "unit", unit)
	s.m.runs.Go(func() {
		defer s.finish(l)
		s.run(l.ctx, unit)
	})
}

// finish records that l's run returned and wakes the loop to free its key.
// A run that returns while its lease still holds gives the unit up: another
// instance, or this one after a cooldown of Renew, starts it again.
func (s *set) finish(l *lease) {
	close(l.done)
	s.mu.Lock()
	if s.runs[l.unit] == l {
		delete(s.runs, l.unit)
	}
	if l.state == active {
		l.state = releasing
		l.cancel(ErrReleased)
		s.cooldown[l.unit] = time.Now().Add(s.m.cfg.Renew)
		s.log.Warn("lease: run returned while its lease held; releasing the unit", "unit", l.unit)
	}
	s.mu.Unlock()
	s.wake()
}

// extend moves l's deadline to its claim's: Expiry − Renew/2 after the local
// time before the last write that the server stamped. Called with s.mu held.
func (s *set) extend(l *lease) {
	until := l.claim.Until().Sub(epoch)
	l.until.Store(int64(until))
	l.timer.Reset(until - monotonic())
}

// expire is l's timer: the lease was not renewed in time.
func (s *set) expire(l *lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.state == gone || monotonic() < time.Duration(l.until.Load()) {
		return // extended meanwhile; the timer was reset
	}
	s.lose(l, fmt.Errorf("%w: not renewed within %v", ErrLost, s.m.cfg.Expiry-s.m.cfg.Renew/2))
}

// lose cancels l at once and forgets its key. Called with s.mu held.
func (s *set) lose(l *lease, cause error) {
	if l.state == gone {
		return
	}
	l.cancel(cause)
	s.drop(l)
	s.log.Warn("lease: lost unit", "unit", l.unit, "cause", cause)
}

// drop forgets l. Called with s.mu held.
func (s *set) drop(l *lease) {
	l.state = gone
	l.timer.Stop()
	if s.held[l.unit] == l {
		delete(s.held, l.unit)
	}
}

// release cancels the runs of units; their keys are freed when they return.
func (s *set) release(units []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range units {
		if l := s.held[u]; l != nil && l.state == active {
			l.state = releasing
			l.cancel(ErrReleased)
			s.log.Info("lease: releasing unit to rebalance", "unit", u)
		}
	}
}

// beginDrain starts leaving: the membership goes first, so that the others
// count without us and take the units as they are freed.
func (s *set) beginDrain(ctx context.Context) {
	s.m.frozen.Store(false)
	dctx, cancel := context.WithTimeout(ctx, s.m.cfg.Renew)
	defer cancel()
	if err := s.m.kv.Delete(dctx, s.keys.member(s.m.cfg.InstanceID)); err != nil {
		s.log.Warn("lease: could not delete membership; it expires by itself", "err", err)
	}
	s.stopWatch()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.held {
		if l.state == active {
			l.state = releasing
			l.cancel(ErrStopped)
		}
	}
}

func (s *set) drained() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held) == 0 && len(s.runs) == 0
}

// hardStop forgets every lease without touching the bucket. Their contexts
// are normally already cancelled with the loop's parent; cancelling them with
// the parent's cause too makes the reason the same whichever comes first.
func (s *set) hardStop(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.held {
		l.cancel(cause)
		s.drop(l)
	}
}

func (s *set) heldLeases() []*lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*lease, 0, len(s.held))
	for _, l := range s.held {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *lease) int { return a.unit - b.unit })
	return out
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
