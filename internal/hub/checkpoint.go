package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/sluicehq/sluice/internal/service"
)

// ErrCheckpointMoved is returned by PutCheckpoint when the checkpoint was
// changed by someone else (a replay, or a new owner of the partition) since
// the caller read it. The caller must stop and re-read the checkpoint.
var ErrCheckpointMoved = errors.New("checkpoint was moved by another writer")

// Checkpoint is the persisted position of a consumer group in a partition:
// every event up to and including Sequence has been processed.
type Checkpoint struct {
	// Sequence is the last processed event's sequence number; -1 means the
	// group has processed nothing of the partition yet.
	Sequence int64     `json:"sequence"`
	Owner    string    `json:"owner,omitempty"`
	Updated  time.Time `json:"updated"`
	// Reason records why a checkpoint was set by an operator (replay).
	Reason string `json:"reason,omitempty"`
	// Retry, when set, is the retry state of the failing batch that
	// follows the checkpoint. Its owner writes it before it waits for the
	// batch's next attempt, so that the partition's next owner (after a
	// restart or a takeover) goes on with the batch's retries rather than
	// giving it a fresh retry budget. Any later checkpoint clears it.
	Retry *RetryState `json:"retry,omitempty"`
}

// RetryState is how far the retries of a failing batch have gone.
type RetryState struct {
	// First is the position of the batch's first input (an event's
	// sequence number, or a change's LSN for a change feed): a batch that
	// starts elsewhere is another batch.
	First int64 `json:"first"`
	// Attempts is the number of attempts that failed.
	Attempts     int       `json:"attempts"`
	FirstFailure time.Time `json:"first_failure"`
	// Next is when the next attempt is due.
	Next time.Time `json:"next"`
	// Reason is the error of the last attempt.
	Reason string `json:"reason,omitempty"`
}

// The KV key of a group: "$" is not allowed in KV keys, so it becomes "=".
func groupKey(hub, group string) string {
	return hub + "." + strings.ReplaceAll(group, "$", "=")
}

func checkpointKey(hub, group string, p int) string {
	return groupKey(hub, group) + "." + strconv.Itoa(p)
}

// ErrGroupNotFound: a consumer group has no checkpoint in any partition of
// a hub (see GroupNotFoundError).
var ErrGroupNotFound = errors.New("consumer group not found")

// GroupNotFoundError is returned by CheckGroup for a group that has no
// checkpoint in any partition of the hub: it never finished a batch there,
// or its name is mistyped. It is ErrGroupNotFound.
type GroupNotFoundError struct {
	Hub, Group string
	// Groups are the hub's groups that have checkpoints, sorted.
	Groups []string
}

func (e *GroupNotFoundError) Error() string {
	known := "it has none yet"
	if len(e.Groups) > 0 {
		known = "its groups are " + strings.Join(e.Groups, ", ")
	}
	return fmt.Sprintf("consumer group %s of hub %s not found: the group has no checkpoint in any partition (%s; %s always exists)",
		e.Group, e.Hub, known, DefaultGroup)
}

// Is makes a GroupNotFoundError ErrGroupNotFound.
func (e *GroupNotFoundError) Is(target error) bool { return target == ErrGroupNotFound }

// Groups returns the consumer groups of a hub that have a checkpoint in
// some partition, sorted.
func (s *Service) Groups(ctx context.Context, hub string) ([]string, error) {
	if _, err := s.Get(ctx, hub); err != nil {
		return nil, err
	}
	lister, err := s.cps.ListKeysFiltered(ctx, hub+".*.*")
	if err != nil {
		return nil, fmt.Errorf("hub: list consumer groups of %s: %w", hub, unavailable(err))
	}
	seen := map[string]bool{}
	var out []string
	for k := range lister.Keys() {
		parts := strings.Split(k, ".")
		if len(parts) != 3 {
			continue
		}
		g := strings.ReplaceAll(parts[1], "=", "$")
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err // the listing was cut short
	}
	slices.Sort(out)
	return out, nil
}

// CheckGroup returns a *GroupNotFoundError if the group has no checkpoint
// in any partition of the hub. DefaultGroup always exists, as in Event
// Hubs.
func (s *Service) CheckGroup(ctx context.Context, hub, group string) error {
	if err := ValidateGroup(group); err != nil {
		return err
	}
	groups, err := s.Groups(ctx, hub)
	if err != nil {
		return err
	}
	if group == DefaultGroup || slices.Contains(groups, group) {
		return nil
	}
	return &GroupNotFoundError{Hub: hub, Group: group, Groups: groups}
}

// GetCheckpoint returns a partition's checkpoint and its revision; a
// revision of 0 means there is none yet.
func (s *Service) GetCheckpoint(ctx context.Context, hub, group string, p int) (Checkpoint, uint64, error) {
	e, err := s.cps.Get(ctx, checkpointKey(hub, group, p))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Checkpoint{Sequence: -1}, 0, nil
	}
	if err != nil {
		return Checkpoint{}, 0, fmt.Errorf("hub: read checkpoint %s/%s/%d: %w", hub, group, p, unavailable(err))
	}
	var cp Checkpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return Checkpoint{}, 0, fmt.Errorf("hub: checkpoint %s/%s/%d is corrupt: %w", hub, group, p, err)
	}
	return cp, e.Revision(), nil
}

// PutCheckpoint stores cp if the checkpoint is still at revision rev (0:
// does not exist), and returns the new revision. It returns
// ErrCheckpointMoved when someone else wrote it meanwhile.
func (s *Service) PutCheckpoint(ctx context.Context, hub, group string, p int, cp Checkpoint, rev uint64) (uint64, error) {
	data, _ := json.Marshal(cp)
	key := checkpointKey(hub, group, p)
	var err error
	var next uint64
	if rev == 0 {
		next, err = s.cps.Create(ctx, key, data)
	} else {
		next, err = s.cps.Update(ctx, key, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("%w (%s/%s/%d)", ErrCheckpointMoved, hub, group, p)
	}
	if err != nil {
		return 0, fmt.Errorf("hub: write checkpoint %s/%s/%d: %w", hub, group, p, unavailable(err))
	}
	return next, nil
}

// GroupState is the operator-controlled state of a consumer group.
type GroupState struct {
	Paused  bool      `json:"paused"`
	Reason  string    `json:"reason,omitempty"`
	Updated time.Time `json:"updated"`
}

// SetGroupState stores a group's state.
func (s *Service) SetGroupState(ctx context.Context, hub, group string, gs GroupState) error {
	gs.Updated = time.Now().UTC()
	data, _ := json.Marshal(gs)
	if _, err := s.groups.Put(ctx, groupKey(hub, group), data); err != nil {
		return fmt.Errorf("hub: set state of group %s/%s: %w", hub, group, unavailable(err))
	}
	return nil
}

// GetGroupState reads a group's state (the zero state when none was set).
func (s *Service) GetGroupState(ctx context.Context, hub, group string) (GroupState, error) {
	e, err := s.groups.Get(ctx, groupKey(hub, group))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return GroupState{}, nil
	}
	if err != nil {
		return GroupState{}, fmt.Errorf("hub: read state of group %s/%s: %w", hub, group, unavailable(err))
	}
	var gs GroupState
	if err := json.Unmarshal(e.Value(), &gs); err != nil {
		return GroupState{}, fmt.Errorf("hub: state of group %s/%s: %w", hub, group, err)
	}
	return gs, nil
}

// WatchGroupState calls fn with the group's state now and on every change,
// until ctx ends or the service stops.
func (s *Service) WatchGroupState(ctx context.Context, hub, group string, fn func(GroupState)) error {
	w, err := s.groups.Watch(ctx, groupKey(hub, group))
	if err != nil {
		return fmt.Errorf("hub: watch group %s/%s: %w", hub, group, unavailable(err))
	}
	stopping := s.life.Stopping()
	watching := s.life.Go(func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-stopping:
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				var gs GroupState
				if e != nil && e.Operation() == jetstream.KeyValuePut {
					_ = json.Unmarshal(e.Value(), &gs)
				}
				if e != nil || gs == (GroupState{}) {
					fn(gs)
				}
			}
		}
	})
	if !watching {
		_ = w.Stop()
		return fmt.Errorf("hub: watch group %s/%s: the service is %w", hub, group, service.ErrStopped)
	}
	return nil
}

// ReplayTarget says where a replay moves a group. Exactly one of its fields
// is set.
type ReplayTarget struct {
	// Earliest moves every partition to its oldest stored event.
	Earliest bool `json:"earliest,omitempty"`
	// Time moves every partition to its first event enqueued at or after it.
	Time time.Time `json:"time,omitzero"`
	// Sequences moves the named partitions so that the given sequence number
	// is the next event processed.
	Sequences map[int]int64 `json:"sequences,omitempty"`
}

// Validate checks what can be checked of a target without the hub: one
// kind of target, a time from 1970, partitions and sequences not negative.
func (t ReplayTarget) Validate() error {
	kinds := 0
	if t.Earliest {
		kinds++
	}
	if !t.Time.IsZero() {
		kinds++
	}
	if len(t.Sequences) > 0 {
		kinds++
	}
	if kinds != 1 {
		return fmt.Errorf("%w replay target: give exactly one of earliest, a time, or sequence numbers", ErrInvalid)
	}
	if !t.Time.IsZero() && t.Time.Year() < 1970 {
		return fmt.Errorf("%w replay time %s: it is before 1970, before any event; give a later time, or replay from the earliest event", ErrInvalid, t.Time.Format(time.RFC3339))
	}
	for _, p := range slices.Sorted(maps.Keys(t.Sequences)) {
		if p < 0 {
			return fmt.Errorf("%w replay partition %d: partitions are numbered from 0", ErrInvalid, p)
		}
		if seq := t.Sequences[p]; seq < 0 {
			return fmt.Errorf("%w replay sequence %d for partition %d: must not be negative", ErrInvalid, seq, p)
		}
	}
	return nil
}

// ReplayResult is a partition's checkpoint before and after a replay.
type ReplayResult struct {
	Partition int   `json:"partition"`
	Before    int64 `json:"before"`
	After     int64 `json:"after"`
}

// Replay moves a consumer group's checkpoints. The group is paused while its
// checkpoints move: owners stop taking batches, then, after grace (time for
// in-flight batches to finish), every checkpoint is rewritten and the group
// resumes. Owners detect the move through the checkpoint's revision, so a
// batch that finishes late can never overwrite the new position.
func (s *Service) Replay(ctx context.Context, hub, group string, target ReplayTarget, grace time.Duration) ([]ReplayResult, error) {
	return s.ReplayWith(ctx, hub, group, target, grace, nil)
}

// ReplayWith is Replay that calls whilePaused, when not nil, once the group
// is paused and its in-flight batches had their grace, before its
// checkpoints move: with the new checkpoints (partition → the sequence
// number last processed, -1 for none). An error from it leaves the
// checkpoints where they were. It is how a consumer that records its own
// position (a pipeline's SQL destination) moves it back with them.
func (s *Service) ReplayWith(ctx context.Context, hub, group string, target ReplayTarget, grace time.Duration,
	whilePaused func(ctx context.Context, newPos map[int]int64) error) ([]ReplayResult, error) {
	info, err := s.Get(ctx, hub)
	if err != nil {
		return nil, err
	}
	if err := ValidateGroup(group); err != nil {
		return nil, err
	}
	if err := target.Validate(); err != nil {
		return nil, err
	}
	parts := slices.Sorted(maps.Keys(target.Sequences)) // errors name the same partition every time
	for _, p := range parts {
		if p >= info.Partitions {
			return nil, fmt.Errorf("%w replay partition %d: hub %s has partitions 0 to %d", ErrInvalid, p, hub, info.Partitions-1)
		}
	}
	for _, p := range parts {
		if err := s.checkReplaySequence(ctx, hub, p, target.Sequences[p]); err != nil {
			return nil, err
		}
	}
	// Resolve the new positions before pausing anything.
	newPos := map[int]int64{}
	for p := range info.Partitions {
		switch {
		case target.Earliest:
			newPos[p] = -1
		case !target.Time.IsZero():
			if newPos[p], err = s.positionBefore(ctx, hub, p, target.Time); err != nil {
				return nil, err
			}
		default:
			if seq, ok := target.Sequences[p]; ok {
				newPos[p] = seq - 1
			}
		}
	}
	if err := s.SetGroupState(ctx, hub, group, GroupState{Paused: true, Reason: "replay"}); err != nil {
		return nil, err
	}
	defer func() {
		// Resume even if the caller's context ended meanwhile.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = s.SetGroupState(rctx, hub, group, GroupState{})
	}()
	select {
	case <-time.After(grace):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if whilePaused != nil {
		if err := whilePaused(ctx, newPos); err != nil {
			return nil, err
		}
	}
	var results []ReplayResult
	for p := range info.Partitions {
		pos, ok := newPos[p]
		if !ok {
			continue
		}
		for attempt := 0; ; attempt++ {
			old, rev, err := s.GetCheckpoint(ctx, hub, group, p)
			if err != nil {
				return results, err
			}
			cp := Checkpoint{Sequence: pos, Owner: "replay", Updated: time.Now().UTC(), Reason: "replay"}
			_, err = s.PutCheckpoint(ctx, hub, group, p, cp, rev)
			if errors.Is(err, ErrCheckpointMoved) && attempt < 20 {
				continue
			}
			if err != nil {
				return results, err
			}
			results = append(results, ReplayResult{Partition: p, Before: old.Sequence, After: pos})
			break
		}
	}
	return results, nil
}

// checkReplaySequence refuses a replay of partition p to seq, the next
// event to process, past the partition's end: a checkpoint there would
// skip every event published until the partition reaches it.
func (s *Service) checkReplaySequence(ctx context.Context, hub string, p int, seq int64) error {
	pi, err := s.partitionInfo(ctx, hub, p)
	if err != nil {
		return err
	}
	// The highest sequence that is not past the end: the one after the
	// last event, or when none is stored, the first of the next record.
	limit := pi.LastSequence + 1
	if pi.Records == 0 {
		limit = SequenceOf(pi.nextRecord, 0)
	}
	switch {
	case seq <= limit:
		return nil
	case pi.Records == 0:
		return fmt.Errorf("%w replay sequence %d for partition %d: it is past the partition's end: the partition holds no events "+
			"(last sequence -1) and its next event will be sequence %d; give a sequence up to %d", ErrInvalid, seq, p, limit, limit)
	default:
		return fmt.Errorf("%w replay sequence %d for partition %d: it is past the partition's last event, sequence %d; "+
			"give a sequence up to %d (%d processes only the events published from now on)", ErrInvalid, seq, p, pi.LastSequence, limit, limit)
	}
}

// positionBefore returns the checkpoint that makes the first record enqueued
// at or after t the next one read, or the partition's last event when no
// record is that recent.
func (s *Service) positionBefore(ctx context.Context, hub string, p int, t time.Time) (int64, error) {
	pi, err := s.partitionInfo(ctx, hub, p)
	if err != nil {
		return 0, err
	}
	if pi.Records == 0 {
		return -1, nil
	}
	if pi.LastEnqueued.Before(t) {
		return pi.LastSequence, nil
	}
	at := pi.LastSequence // unless a record at or after t is still stored
	err = s.scanHeaders(ctx, StreamName(hub, p), jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t,
	}, 1, func(recordSeq uint64, _ nats.Header) {
		at = SequenceOf(recordSeq, 0) - 1
	})
	if err != nil {
		return 0, fmt.Errorf("hub: find time %s in %s partition %d: %w", t, hub, p, err)
	}
	return at, nil
}

// scanInactive is how long the server keeps a consumer of scanHeaders
// that its caller failed to delete (a crash, a lost connection).
const scanInactive = 30 * time.Second

// scanHeaders calls fn with the stream sequence and headers of up to limit
// records of a partition's stream, from where cfg starts. It reads them
// through a consumer of its own, headers only (no bodies are transferred),
// and deletes that consumer before it returns: a lag or replay query
// leaves no consumer behind on the server. (An ordered consumer would
// stay, idle, until its inactivity threshold of five minutes: a few lag
// queries a second left hundreds per stream.) fn sees the records in
// stream order and only those stored when the consumer was made.
func (s *Service) scanHeaders(ctx context.Context, stream string, cfg jetstream.ConsumerConfig, limit int, fn func(recordSeq uint64, h nats.Header)) error {
	cfg.Name = "sluice-scan-" + nuid.Next()
	cfg.AckPolicy = jetstream.AckNonePolicy
	cfg.HeadersOnly = true
	cfg.MemoryStorage = true
	cfg.Replicas = 1
	cfg.InactiveThreshold = scanInactive
	cons, err := s.js.CreateConsumer(ctx, stream, cfg)
	if err != nil {
		return err
	}
	defer func() {
		// Deleted even when ctx has ended; the inactivity threshold is
		// the fallback when this fails.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := s.js.DeleteConsumer(dctx, stream, cfg.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.log.Debug("hub: cannot delete a scan consumer; the server removes it when idle", "stream", stream, "err", err)
		}
	}()
	// Only what is stored now: waiting for more would only add time.
	n := min(uint64(limit), cons.CachedInfo().NumPending)
	if n == 0 {
		return nil
	}
	batch, err := cons.Fetch(int(n), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		return err
	}
	for msg := range batch.Messages() {
		meta, err := msg.Metadata()
		if err != nil {
			return err
		}
		fn(meta.Sequence.Stream, msg.Headers())
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// Lag is how far a consumer group is behind in one partition.
type Lag struct {
	Partition int `json:"partition"`
	// LastSequence is the partition's newest event (-1 when empty).
	LastSequence int64 `json:"last_sequence"`
	// Checkpoint is the group's last processed event (-1: none).
	Checkpoint int64     `json:"checkpoint"`
	Updated    time.Time `json:"checkpoint_updated,omitzero"`
	Owner      string    `json:"owner,omitempty"`
	// Events is the number of stored events after the checkpoint; exact
	// unless Estimated, which happens past lagScanLimit pending records.
	Events    int64 `json:"events"`
	Records   int64 `json:"records"`
	Estimated bool  `json:"estimated,omitempty"`
	// Retrying is the number of failed attempts of the batch after the
	// checkpoint while its owner retries it (see Checkpoint.Retry).
	Retrying int `json:"retrying,omitempty"`
}

const lagScanLimit = 20000

// GroupLag returns the lag of a consumer group in every partition.
func (s *Service) GroupLag(ctx context.Context, hub, group string) ([]Lag, error) {
	info, err := s.Get(ctx, hub)
	if err != nil {
		return nil, err
	}
	if err := ValidateGroup(group); err != nil {
		return nil, err
	}
	out := make([]Lag, info.Partitions)
	for p := range info.Partitions {
		if out[p], err = s.partitionLag(ctx, hub, group, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Service) partitionLag(ctx context.Context, hub, group string, p int) (Lag, error) {
	pi, err := s.partitionInfo(ctx, hub, p)
	if err != nil {
		return Lag{}, err
	}
	cp, _, err := s.GetCheckpoint(ctx, hub, group, p)
	if err != nil {
		return Lag{}, err
	}
	l := Lag{Partition: p, LastSequence: pi.LastSequence, Checkpoint: cp.Sequence, Updated: cp.Updated, Owner: cp.Owner}
	if cp.Retry != nil {
		l.Retrying = cp.Retry.Attempts
	}
	if pi.Records == 0 || cp.Sequence >= pi.LastSequence {
		return l, nil
	}
	firstRec, _ := SplitSequence(pi.FirstSequence)
	lastRec, _ := SplitSequence(pi.LastSequence)
	startRec, startIdx := SplitSequence(cp.Sequence + 1)
	if cp.Sequence < 0 || startRec < firstRec {
		startRec, startIdx = firstRec, 0
	}
	l.Records = int64(lastRec - startRec + 1)
	// Count events from record headers only (no bodies are transferred).
	var seen, events int64
	err = s.scanHeaders(ctx, StreamName(hub, p), jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: startRec,
	}, int(min(l.Records, lagScanLimit)), func(recordSeq uint64, h nats.Header) {
		if recordSeq > lastRec {
			return
		}
		n, _ := strconv.Atoi(h.Get(HeaderEvents))
		if recordSeq == startRec {
			n = max(n-startIdx, 0)
		}
		events += int64(n)
		seen++
	})
	if err != nil {
		return l, fmt.Errorf("hub: lag of %s/%s/%d: %w", hub, group, p, unavailable(err))
	}
	l.Events = events
	if seen < l.Records && seen > 0 {
		l.Events = events * l.Records / seen
		l.Estimated = true
	}
	return l, nil
}
