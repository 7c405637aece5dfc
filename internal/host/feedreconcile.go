package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/docstore"
)

// ReconcileFeeds moves every change-feed checkpoint in kv (the bucket
// FeedBucket) that is past its container's last change in docs back to
// that change, and returns how many it moved. After a geo-disaster
// recovery failover (see internal/dr) the checkpoints are the primary's,
// mirrored, while the documents are a PostgreSQL replica's, which may have
// stopped earlier: the changes in between are lost with the primary, and
// without the move the changes written after the failover, which take the
// LSNs after the replica's last one, would be skipped as already
// processed. A checkpoint of a container that does not exist here is left
// alone (the function reports it when it starts). Safe while other
// instances run it: every move is a compare-and-set.
func ReconcileFeeds(ctx context.Context, kv jetstream.KeyValue, docs docstore.Store, log *slog.Logger) (int, error) {
	lister, err := kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("host: reconcile change-feed checkpoints: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	last := map[string]int64{}
	moved := 0
	for _, k := range keys {
		parts := strings.Split(k, ".")
		if len(parts) != 3 {
			continue
		}
		if _, err := strconv.Atoi(parts[2]); err != nil {
			continue // the layout
		}
		container := parts[0]
		end, ok := last[container]
		if !ok {
			if end, err = docs.LastLSN(ctx, container); err != nil {
				if errors.Is(err, docstore.ErrNotFound) {
					last[container] = -1
					continue
				}
				return moved, fmt.Errorf("host: reconcile change-feed checkpoints of %s: %w", container, err)
			}
			last[container] = end
		}
		if end < 0 {
			continue
		}
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return moved, fmt.Errorf("host: reconcile change-feed checkpoint %s: %w", k, err)
		}
		var cp feedCheckpoint
		if json.Unmarshal(e.Value(), &cp) != nil || cp.LSN <= end {
			continue
		}
		log.Warn("a change-feed checkpoint is past its container's last change (the document store stopped earlier than the checkpoints before the failover): moved back to it",
			"checkpoint", k, "was", cp.LSN, "now", end)
		cp.LSN, cp.Retry, cp.Updated = end, nil, time.Now().UTC()
		data, _ := json.Marshal(cp)
		if _, err := kv.Update(ctx, k, data, e.Revision()); err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue
			}
			return moved, fmt.Errorf("host: reconcile change-feed checkpoint %s: %w", k, err)
		}
		moved++
	}
	return moved, nil
}
