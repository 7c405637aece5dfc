package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
}

// The KV key of a group: "$" is not allowed in KV keys, so it becomes "=".
func groupKey(hub, group string) string {
	return hub + "." + strings.ReplaceAll(group, "$", "=")
}

func checkpointKey(hub, group string, p int) string {
	return groupKey(hub, group) + "." + strconv.Itoa(p)
}

// GetCheckpoint returns a partition's checkpoint and its revision; a
// revision of 0 means there is none yet.
func (s *Service) GetCheckpoint(ctx context.Context, hub, group string, p int) (Checkpoint, uint64, error) {
	e, err := s.cps.Get(ctx, checkpointKey(hub, group, p))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Checkpoint{Sequence: -1}, 0, nil
	}
	if err != nil {
		return Checkpoint{}, 0, fmt.Errorf("hub: read checkpoint %s/%s/%d: %w", hub, group, p, err)
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
		return 0, fmt.Errorf("hub: write checkpoint %s/%s/%d: %w", hub, group, p, err)
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
		return fmt.Errorf("hub: set state of group %s/%s: %w", hub, group, err)
	}
	return nil
}

// WatchGroupState calls fn with the group's state now and on every change,
// until ctx ends.
func (s *Service) WatchGroupState(ctx context.Context, hub, group string, fn func(GroupState)) error {
	w, err := s.groups.Watch(ctx, groupKey(hub, group))
	if err != nil {
		return fmt.Errorf("hub: watch group %s/%s: %w", hub, group, err)
	}
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
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
	}()
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
	info, err := s.Get(ctx, hub)
	if err != nil {
		return nil, err
	}
	if err := ValidateGroup(group); err != nil {
		return nil, err
	}
	kinds := 0
	if target.Earliest {
		kinds++
	}
	if !target.Time.IsZero() {
		kinds++
	}
	if len(target.Sequences) > 0 {
		kinds++
	}
	if kinds != 1 {
		return nil, fmt.Errorf("%w replay target: give exactly one of earliest, a time, or sequence numbers", ErrInvalid)
	}
	for p, seq := range target.Sequences {
		if p < 0 || p >= info.Partitions {
			return nil, fmt.Errorf("%w replay partition %d: hub %s has partitions 0 to %d", ErrInvalid, p, hub, info.Partitions-1)
		}
		if seq < 0 {
			return nil, fmt.Errorf("%w replay sequence %d for partition %d: must not be negative", ErrInvalid, seq, p)
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
	cons, err := s.js.OrderedConsumer(ctx, StreamName(hub, p), jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t, HeadersOnly: true,
	})
	if err != nil {
		return 0, fmt.Errorf("hub: find time %s in %s partition %d: %w", t, hub, p, err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		return 0, fmt.Errorf("hub: find time %s in %s partition %d: %w", t, hub, p, err)
	}
	meta, err := msg.Metadata()
	if err != nil {
		return 0, err
	}
	return SequenceOf(meta.Sequence.Stream, 0) - 1, nil
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
	cons, err := s.js.OrderedConsumer(ctx, StreamName(hub, p), jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: startRec, HeadersOnly: true,
	})
	if err != nil {
		return l, fmt.Errorf("hub: lag of %s/%s/%d: %w", hub, group, p, err)
	}
	scan := min(l.Records, lagScanLimit)
	batch, err := cons.Fetch(int(scan), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		return l, fmt.Errorf("hub: lag of %s/%s/%d: %w", hub, group, p, err)
	}
	var seen, events int64
	for msg := range batch.Messages() {
		meta, err := msg.Metadata()
		if err != nil || meta.Sequence.Stream > lastRec {
			continue
		}
		n, _ := strconv.Atoi(msg.Headers().Get(HeaderEvents))
		if meta.Sequence.Stream == startRec {
			n = max(n-startIdx, 0)
		}
		events += int64(n)
		seen++
	}
	l.Events = events
	if seen < l.Records && seen > 0 {
		l.Events = events * l.Records / seen
		l.Estimated = true
	}
	return l, nil
}
