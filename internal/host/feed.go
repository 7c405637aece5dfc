package host

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/resilience"
)

// Change-feed functions. A container's feed is split into Ranges ranges by
// the hash of the partition key (docstore.FeedRange), and instances share
// the ranges through leases, one lease set per container and lease prefix,
// so several functions can follow one container, each with its own prefix.
// The owner of a range reads its changes in LSN order (so in order per
// partition key), MaxItems at a time, runs the function on them under its
// retry policy, dead-letters what it gives up on, and only then moves the
// range's checkpoint (a KV entry, written by compare-and-set) past them.
//
// A range without a checkpoint starts where the trigger says (now, the
// beginning, or a time); the start is resolved to an LSN and stored before
// any change is processed, so a crash before the first checkpoint does not
// move it. A checkpoint remembers the container's creation time: when the
// container was deleted and created again, its old position means nothing
// and the range starts from the beginning of the new container.

// FeedHandler processes a batch of changes. Returning nil means every
// change was processed; a *DeadLetterError dead-letters the changes it
// names by LSN and counts the rest as processed; any other error fails the
// batch, which the retry policy then governs.
type FeedHandler func(ctx context.Context, changes []docstore.Document) error

// FeedFrom is where a range without a checkpoint starts.
type FeedFrom int

const (
	// FeedFromNow reads the changes made after the function first starts
	// (Azure's default).
	FeedFromNow FeedFrom = iota
	// FeedFromBeginning reads every change the container keeps.
	FeedFromBeginning
	// FeedFromTime reads the changes made at or after FeedTrigger.FromTime.
	FeedFromTime
)

// FeedTrigger binds a function to a container's change feed.
type FeedTrigger struct {
	Container string
	// LeasePrefix names this function's leases and checkpoints of the
	// container. Default: the function's name. Functions that share a
	// prefix would share the work; two functions of one host cannot.
	LeasePrefix string
	// MaxItems bounds the changes of one invocation
	// (maxItemsPerInvocation). Default 100.
	MaxItems int
	// Ranges is how many parts the feed is split into, and so how many
	// instances can share it. Default 4. It cannot change for a prefix
	// once used; use a new prefix to change it.
	Ranges   int
	From     FeedFrom
	FromTime time.Time
	// PollInterval bounds how long a caught-up range waits before reading
	// again when no write wakes it (writes by other processes on SQLite).
	// Default 1s.
	PollInterval time.Duration
}

// FeedFunction is a function triggered by a container's change feed.
type FeedFunction struct {
	Name    string
	Trigger FeedTrigger
	Retry   resilience.Retry
	// Breaker and Timeout: as for hub functions (Function).
	Breaker resilience.BreakerPolicy
	Timeout time.Duration
	Handler FeedHandler
}

type feedFunction struct {
	FeedFunction
	processed *atomicCounter
	m         fnMetrics
	run       *batchRun[docstore.Document]
	breaker   *resilience.Breaker
}

var leasePrefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// RegisterFeed is Register of a change-feed function: the host's
// Config.Docs, Leases, and FeedState or JS must be set.
func (h *Host) RegisterFeed(f FeedFunction) error { return h.Register(f) }

// FeedBucket is the KV bucket of change-feed functions' checkpoints, unless
// Config.FeedState gives another.
const FeedBucket = "sluice-feeds"

var _ Trigger = FeedFunction{}

func (f FeedFunction) functionName() string { return f.Name }

func (f FeedFunction) bind(h *Host) (bound, error) {
	t := &f.Trigger
	t.LeasePrefix = cmp.Or(t.LeasePrefix, f.Name)
	t.MaxItems = cmp.Or(t.MaxItems, 100)
	t.Ranges = cmp.Or(t.Ranges, 4)
	t.PollInterval = cmp.Or(t.PollInterval, time.Second)
	switch {
	case h.cfg.Docs == nil || (h.cfg.FeedState == nil && h.cfg.JS == nil) || h.cfg.Leases == nil:
		return nil, fmt.Errorf("host: function %s follows a change feed, but the host has no document store, feed state bucket or leases", f.Name)
	case f.Name == "":
		return nil, errors.New("host: a function needs a name")
	case f.Handler == nil:
		return nil, fmt.Errorf("host: function %s has no handler", f.Name)
	case docstore.ValidateName(t.Container) != nil:
		return nil, fmt.Errorf("host: function %s: %w", f.Name, docstore.ValidateName(t.Container))
	case !leasePrefixRE.MatchString(t.LeasePrefix):
		return nil, fmt.Errorf("host: function %s: lease prefix %q: use 1-64 letters, digits, '-' or '_', starting with a letter or digit (set one when the function's name is not like that)", f.Name, t.LeasePrefix)
	case t.MaxItems < 1 || t.MaxItems > 10000:
		return nil, fmt.Errorf("host: function %s: maxItemsPerInvocation %d must be between 1 and 10000", f.Name, t.MaxItems)
	case t.Ranges < 1 || t.Ranges > 256:
		return nil, fmt.Errorf("host: function %s: ranges %d must be between 1 and 256", f.Name, t.Ranges)
	case t.From < FeedFromNow || t.From > FeedFromTime:
		return nil, fmt.Errorf("host: function %s: unknown start %d", f.Name, t.From)
	case t.From == FeedFromTime && t.FromTime.IsZero():
		return nil, fmt.Errorf("host: function %s: starting from a time needs the time", f.Name)
	case t.PollInterval < 10*time.Millisecond:
		return nil, fmt.Errorf("host: function %s: poll interval %s must be at least 10ms", f.Name, t.PollInterval)
	}
	if err := h.checkNew(f.Name, f.Retry, f.Breaker, f.Timeout); err != nil {
		return nil, err
	}
	for g := range registered[*feedFunction](h) {
		if g.Trigger.Container == t.Container && g.Trigger.LeasePrefix == t.LeasePrefix {
			return nil, fmt.Errorf("host: functions %s and %s both follow container %s with lease prefix %s; give each its own prefix", g.Name, f.Name, t.Container, t.LeasePrefix)
		}
	}
	b, err := h.newBreaker(f.Name, f.Breaker, f.Timeout)
	if err != nil {
		return nil, err
	}
	ff := &feedFunction{FeedFunction: f, processed: &atomicCounter{}, breaker: b,
		m: h.newFnMetrics(f.Name, h.cfg.Metrics.FeedChangesProcessed.WithLabelValues(f.Name, t.Container))}
	ff.run = &batchRun[docstore.Document]{
		name: f.Name, kind: "container", retry: f.Retry, m: &ff.m, processed: ff.processed, handler: f.Handler,
		breaker: b, timeout: f.Timeout,
		position: func(d docstore.Document) int64 { return d.LSN },
		letter: func(d docstore.Document, reason error, attempts int, first, last time.Time) DeadLetter {
			return DeadLetter{
				Function: f.Name, Reason: reason.Error(),
				Source: Source{Kind: "container", Container: t.Container, DocumentID: d.ID, PartitionKey: d.PartitionKey,
					LSN: d.LSN, Deleted: d.Deleted, EnqueuedTime: d.TS},
				Attempts: attempts, FirstFailure: first, LastFailure: last,
				Body: d.Body, State: stateOf(reason),
			}
		},
	}
	return ff, nil
}

func (f *feedFunction) processedCount() int64 { return f.processed.n.Load() }

// feedLayout is stored once per container and lease prefix: the number of
// ranges its checkpoints are for.
type feedLayout struct {
	Ranges  int       `json:"ranges"`
	Created time.Time `json:"created"`
}

// feedCheckpoint is a range's position: every change up to LSN is done.
type feedCheckpoint struct {
	LSN int64 `json:"lsn"`
	// Container is the creation time of the container the LSN is of.
	Container time.Time `json:"container_created"`
	Owner     string    `json:"owner,omitempty"`
	Updated   time.Time `json:"updated"`
	// Retry is the retry state of the failing batch after LSN (see
	// hub.Checkpoint.Retry).
	Retry *hub.RetryState `json:"retry,omitempty"`
}

func feedKey(t FeedTrigger, rest string) string {
	return t.Container + "." + t.LeasePrefix + "." + rest
}

var _ bound = (*feedFunction)(nil)

// start checks the container and the prefix's layout, joins the prefix's
// lease set and reports the function's lag.
func (f *feedFunction) start(ctx context.Context, h *Host) error {
	t := f.Trigger
	if _, err := h.cfg.Docs.GetContainer(ctx, t.Container); err != nil {
		return fmt.Errorf("host: function %s: %w", f.Name, err)
	}
	if err := h.bucket(ctx, &h.cfg.FeedState, FeedBucket); err != nil {
		return err
	}
	layout, _ := json.Marshal(feedLayout{Ranges: t.Ranges, Created: time.Now().UTC()})
	_, err := h.cfg.FeedState.Create(ctx, feedKey(t, "layout"), layout)
	if errors.Is(err, jetstream.ErrKeyExists) {
		var e jetstream.KeyValueEntry
		var old feedLayout
		if e, err = h.cfg.FeedState.Get(ctx, feedKey(t, "layout")); err == nil {
			if err = json.Unmarshal(e.Value(), &old); err == nil && old.Ranges != t.Ranges {
				return fmt.Errorf("host: function %s: the feed of container %s is split into %d ranges for lease prefix %s, so it cannot be read in %d; keep %d ranges, or use a new lease prefix (which starts from the trigger's start point)",
					f.Name, t.Container, old.Ranges, t.LeasePrefix, t.Ranges, old.Ranges)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("host: function %s: feed layout: %w", f.Name, err)
	}
	if err := h.join("feed:"+t.Container+"/"+t.LeasePrefix, t.Ranges, func(lctx context.Context, r int) {
		log := h.log.With("function", f.Name, "container", t.Container, "lease_prefix", t.LeasePrefix, "range", r)
		h.runUnit(lctx, "range", h.cfg.Metrics.FeedOwnedRanges.WithLabelValues(t.Container, t.LeasePrefix), log, func() error {
			return h.consumeRange(lctx, f, r, log)
		})
	}); err != nil {
		return err
	}
	h.bg.Go(func() { h.reportFeedLag(f) })
	return nil
}

// rangeCheckpoint reads a range's checkpoint; revision 0 means none.
func (h *Host) rangeCheckpoint(ctx context.Context, t FeedTrigger, r int) (feedCheckpoint, uint64, error) {
	e, err := h.cfg.FeedState.Get(ctx, feedKey(t, strconv.Itoa(r)))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return feedCheckpoint{}, 0, nil
	}
	if err != nil {
		return feedCheckpoint{}, 0, fmt.Errorf("read checkpoint of range %d: %w", r, err)
	}
	var cp feedCheckpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return feedCheckpoint{}, 0, fmt.Errorf("checkpoint of range %d is corrupt: %w", r, err)
	}
	return cp, e.Revision(), nil
}

// putRangeCheckpoint writes a range's checkpoint if it is still at rev.
func (h *Host) putRangeCheckpoint(ctx context.Context, t FeedTrigger, r int, cp feedCheckpoint, rev uint64) (uint64, error) {
	cp.Owner, cp.Updated = h.cfg.InstanceID, time.Now().UTC()
	data, _ := json.Marshal(cp)
	key := feedKey(t, strconv.Itoa(r))
	var next uint64
	var err error
	if rev == 0 {
		next, err = h.cfg.FeedState.Create(ctx, key, data)
	} else {
		next, err = h.cfg.FeedState.Update(ctx, key, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, errReload
	}
	if err != nil {
		return 0, fmt.Errorf("write checkpoint of range %d: %w", r, err)
	}
	return next, nil
}

// feedStartLSN resolves where a range without a checkpoint starts.
func (h *Host) feedStartLSN(ctx context.Context, t FeedTrigger, rng docstore.FeedRange) (int64, error) {
	switch t.From {
	case FeedFromBeginning:
		return 0, nil
	case FeedFromTime:
		first, err := h.cfg.Docs.Feed(ctx, t.Container, docstore.FeedStart{Time: t.FromTime, Range: rng}, 1)
		if err != nil {
			return 0, err
		}
		if len(first) > 0 {
			return first[0].LSN - 1, nil
		}
	}
	return h.cfg.Docs.LastLSN(ctx, t.Container)
}

type feedRead struct {
	changes []docstore.Document
	err     error
}

// consumeRange reads a range from its checkpoint and processes it. It
// returns errReload when the checkpoint moved, nil on a graceful stop, and
// an error when reading fails.
func (h *Host) consumeRange(lctx context.Context, f *feedFunction, r int, log *slog.Logger) error {
	t := f.Trigger
	rng := docstore.FeedRange{Count: t.Ranges, Index: r}
	ctx, cancel := context.WithCancel(lctx)
	defer cancel()
	c, err := h.cfg.Docs.GetContainer(ctx, t.Container)
	if err != nil {
		return err
	}
	cp, rev, err := h.rangeCheckpoint(ctx, t, r)
	if err != nil {
		return err
	}
	if rev == 0 || !cp.Container.Equal(c.Created) {
		var after int64
		if rev == 0 {
			if after, err = h.feedStartLSN(ctx, t, rng); err != nil {
				return err
			}
		} else {
			log.Warn("the container was created again since this range's checkpoint; reading the new container from its beginning")
		}
		cp = feedCheckpoint{LSN: after, Container: c.Created}
		if rev, err = h.putRangeCheckpoint(ctx, t, r, cp, rev); err != nil {
			return err
		}
	}

	reads := make(chan feedRead, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.readRange(ctx, t, rng, cp.LSN, reads)
	}()
	defer func() {
		cancel()
		<-done
	}()

	cpw := &checkpointer{rev: rev, write: func(ctx context.Context, lsn int64, rev uint64) (uint64, error) {
		return h.putRangeCheckpoint(ctx, t, r, feedCheckpoint{LSN: lsn, Container: c.Created}, rev)
	}}
	memo := &retryMemo{found: cp.Retry, save: func(ctx context.Context, st hub.RetryState) error {
		return cpw.mark(ctx, func(ctx context.Context, rev uint64) (uint64, error) {
			return h.putRangeCheckpoint(ctx, t, r, feedCheckpoint{LSN: st.First - 1, Container: c.Created, Retry: &st}, rev)
		})
	}}
	for {
		if h.stopping() {
			return cpw.flush()
		}
		if len(reads) == 0 {
			cpw.idle()
		}
		var rd feedRead
		select {
		case rd = <-reads:
		case res := <-cpw.ready():
			if err := cpw.completed(res); err != nil {
				return err
			}
			continue
		case <-ctx.Done():
			return cpw.release(lctx)
		case <-h.soft:
			continue
		}
		if rd.err != nil {
			if err := cpw.flush(); err != nil {
				return err
			}
			return rd.err
		}
		permit, ok, err := h.hold(ctx, lctx, f.breaker, cpw, nil)
		if !ok {
			return err
		}
		if !invokeBatch(h, ctx, f.run, rd.changes, permit, log, memo) {
			// Aborted (lease lost or forced stop): no checkpoint.
			_ = cpw.wait()
			return ctx.Err()
		}
		if lctx.Err() != nil {
			// The lease ended while the batch ran, which finished anyway.
			return cpw.releaseAfter(lctx, rd.changes[len(rd.changes)-1].LSN)
		}
		if err := cpw.put(rd.changes[len(rd.changes)-1].LSN); err != nil {
			return err
		}
	}
}

// readRange reads a range's changes after lsn into reads, waiting for
// writes when it has caught up, until ctx ends or a read fails.
func (h *Host) readRange(ctx context.Context, t FeedTrigger, rng docstore.FeedRange, lsn int64, reads chan<- feedRead) {
	poll := time.NewTimer(t.PollInterval)
	defer poll.Stop()
	for {
		// Ask for the wake-up before reading, so that a write between the
		// read and the wait is not missed.
		changed := h.cfg.Docs.Changed(t.Container)
		changes, err := h.cfg.Docs.Feed(ctx, t.Container, docstore.FeedStart{AfterLSN: lsn, Range: rng}, t.MaxItems)
		if ctx.Err() != nil {
			return
		}
		if err == nil && len(changes) == 0 {
			poll.Reset(t.PollInterval)
			select {
			case <-changed:
			case <-poll.C:
			case <-ctx.Done():
				return
			}
			continue
		}
		select {
		case reads <- feedRead{changes, err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
		lsn = changes[len(changes)-1].LSN
	}
}
