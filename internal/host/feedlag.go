package host

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/docstore"
)

// feedLagScan bounds the changes counted per range when measuring a
// change-feed function's lag; past it, the count is estimated.
const feedLagScan = 1000

// FeedRangeLag is how far a change-feed function is behind in one range of
// its container's feed.
type FeedRangeLag struct {
	Range int `json:"range"`
	// Checkpoint is the LSN up to which the range is done; -1 when the
	// range has not started (Changes then counts what it will start
	// with).
	Checkpoint int64     `json:"checkpoint"`
	Owner      string    `json:"owner,omitempty"`
	Updated    time.Time `json:"checkpoint_updated,omitzero"`
	// Changes counts the range's changes after the checkpoint, the ones
	// the function has still to be given (a document written several
	// times counts once, at its last write, as the feed hands it out). It
	// is exact unless Estimated: past feedLagScan changes it is
	// extrapolated from the LSNs of the changes counted to the
	// container's last LSN.
	Changes   int64 `json:"changes"`
	Estimated bool  `json:"estimated,omitempty"`
	// Retrying is the number of failed attempts of the batch being
	// retried after the checkpoint, if any.
	Retrying int `json:"retrying,omitempty"`
}

// FeedLag measures how far a change-feed function is behind in each range
// and sets its lag gauges (sluice_feed_lag_changes). It reads each range's
// checkpoint and the range's changes after it, up to feedLagScan of them.
func (h *Host) FeedLag(ctx context.Context, function string) ([]FeedRangeLag, error) {
	var f *feedFunction
	for ff := range registered[*feedFunction](h) {
		if ff.Name == function {
			f = ff
		}
	}
	if f == nil {
		return nil, fmt.Errorf("host: no change-feed function is named %s", function)
	}
	t := f.Trigger
	c, err := h.cfg.Docs.GetContainer(ctx, t.Container)
	if err != nil {
		return nil, fmt.Errorf("host: lag of function %s: %w", function, err)
	}
	last, err := h.cfg.Docs.LastLSN(ctx, t.Container)
	if err != nil {
		return nil, fmt.Errorf("host: lag of function %s: %w", function, err)
	}
	out := make([]FeedRangeLag, t.Ranges)
	for r := range t.Ranges {
		rng := docstore.FeedRange{Count: t.Ranges, Index: r}
		cp, rev, err := h.rangeCheckpoint(ctx, t, r)
		if err != nil {
			return nil, fmt.Errorf("host: lag of function %s: %w", function, err)
		}
		l := FeedRangeLag{Range: r, Checkpoint: cp.LSN, Owner: cp.Owner, Updated: cp.Updated}
		if cp.Retry != nil {
			l.Retrying = cp.Retry.Attempts
		}
		after := cp.LSN
		switch {
		case rev == 0:
			// Not started: where it will start.
			l.Checkpoint = -1
			if after, err = h.feedStartLSN(ctx, t, rng); err != nil {
				return nil, fmt.Errorf("host: lag of function %s: %w", function, err)
			}
		case !cp.Container.Equal(c.Created):
			after = 0 // the container was created again: all of it
		}
		if after < last {
			changes, err := h.cfg.Docs.Feed(ctx, t.Container, docstore.FeedStart{AfterLSN: after, Range: rng}, feedLagScan)
			if err != nil {
				return nil, fmt.Errorf("host: lag of function %s: %w", function, err)
			}
			l.Changes = int64(len(changes))
			if n := len(changes); n == feedLagScan {
				if seen := changes[n-1].LSN; seen > after && last > seen {
					l.Changes = int64(n) * (last - after) / (seen - after)
					l.Estimated = true
				}
			}
		}
		h.cfg.Metrics.FeedLag.WithLabelValues(function, t.Container, strconv.Itoa(r)).Set(float64(l.Changes))
		out[r] = l
	}
	return out, nil
}

// reportFeedLag refreshes a change-feed function's lag gauges: at once,
// then every Config.LagEvery.
func (h *Host) reportFeedLag(f *feedFunction) {
	measure := func(ctx context.Context) {
		if _, err := h.FeedLag(ctx, f.Name); err != nil && ctx.Err() == nil {
			h.log.Debug("cannot measure the lag of a change-feed function", "function", f.Name, "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(h.hardCtx, h.cfg.LagEvery)
	measure(ctx)
	cancel()
	h.every(h.cfg.LagEvery, measure)
}
