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

// Reconciled says what Reconcile changed.
type Reconciled struct {
	// Checkpoints moved back to their partition's last event.
	Checkpoints int
	// IDs forgotten: message ids marked stored at a position their
	// partition does not hold.
	IDs int
}

// Reconcile makes the hubs' state agree with their partitions after a
// geo-disaster recovery failover (see internal/dr). A secondary mirrors
// the state buckets and each partition independently, so when the primary
// is lost a checkpoint or a message id may have reached the secondary while
// the records it names did not:
//
//   - a checkpoint past its partition's last event is moved back to that
//     event. The events in between were processed on the primary and are
//     lost with it; without the move, the events published after the
//     failover, which take the sequences after the partition's last one,
//     would be skipped as already processed. Its retry state is dropped
//     (it was about a batch that is gone).
//   - a message id marked stored at a position past its partition's last
//     event is forgotten, so that a producer retrying that event stores it
//     (the answer "already stored there" would lose it).
//
// On a site that was never a mirror nothing is ever past a partition's
// last event, and Reconcile changes nothing. It is idempotent, and safe
// while other instances run it (every change is a compare-and-set).
func (s *Service) Reconcile(ctx context.Context) (Reconciled, error) {
	var out Reconciled
	hubs, err := s.List(ctx)
	if err != nil {
		return out, err
	}
	for _, h := range hubs {
		_, parts, err := s.Describe(ctx, h.Name)
		if err != nil {
			return out, fmt.Errorf("hub: reconcile %s: %w", h.Name, err)
		}
		last := make(map[int]int64, len(parts))
		for _, p := range parts {
			last[p.Partition] = p.LastSequence
		}
		n, err := s.reconcileCheckpoints(ctx, h.Name, last)
		out.Checkpoints += n
		if err != nil {
			return out, err
		}
		n, err = s.reconcileIDs(ctx, h.Name, last)
		out.IDs += n
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// keysOf lists the keys of kv matching filter (none: an empty list).
func keysOf(ctx context.Context, kv jetstream.KeyValue, filter string) ([]string, error) {
	lister, err := kv.ListKeysFiltered(ctx, filter)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, ctx.Err()
}

func (s *Service) reconcileCheckpoints(ctx context.Context, hub string, last map[int]int64) (int, error) {
	keys, err := keysOf(ctx, s.cps, hub+".*.*")
	if err != nil {
		return 0, fmt.Errorf("hub: reconcile the checkpoints of %s: %w", hub, err)
	}
	moved := 0
	for _, k := range keys {
		p, err := strconv.Atoi(k[strings.LastIndexByte(k, '.')+1:])
		if err != nil {
			continue
		}
		end, ok := last[p]
		if !ok {
			continue
		}
		e, err := s.cps.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return moved, fmt.Errorf("hub: reconcile checkpoint %s: %w", k, err)
		}
		var cp Checkpoint
		if json.Unmarshal(e.Value(), &cp) != nil || cp.Sequence <= end {
			continue
		}
		s.log.Warn("hub: a checkpoint is past its partition's last event (its events did not reach this site before the failover): moved back to it",
			"checkpoint", k, "was", cp.Sequence, "now", end)
		cp.Reason = fmt.Sprintf("DR failover: the checkpoint was at %d, past the partition's last event here", cp.Sequence)
		cp.Sequence, cp.Retry, cp.Updated = end, nil, time.Now().UTC()
		data, _ := json.Marshal(cp)
		if _, err := s.cps.Update(ctx, k, data, e.Revision()); err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue // moved by someone else meanwhile
			}
			return moved, fmt.Errorf("hub: reconcile checkpoint %s: %w", k, err)
		}
		moved++
	}
	return moved, nil
}

func (s *Service) reconcileIDs(ctx context.Context, hub string, last map[int]int64) (int, error) {
	keys, err := keysOf(ctx, s.ids, hub+".*")
	if err != nil {
		return 0, fmt.Errorf("hub: reconcile the message ids of %s: %w", hub, err)
	}
	forgot := 0
	for _, k := range keys {
		e, err := s.ids.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return forgot, fmt.Errorf("hub: reconcile message id %s: %w", k, err)
		}
		var v idEntry
		if json.Unmarshal(e.Value(), &v) != nil || v.State != stateStored {
			continue
		}
		if end, ok := last[v.Partition]; !ok || v.Sequence <= end {
			continue
		}
		err = s.ids.Delete(ctx, k, jetstream.LastRevision(e.Revision()))
		if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return forgot, fmt.Errorf("hub: reconcile message id %s: %w", k, err)
		}
		if err == nil {
			forgot++
		}
	}
	return forgot, nil
}
