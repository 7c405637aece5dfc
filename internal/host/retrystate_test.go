package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/lease"
	"github.com/sluicehq/sluice/internal/resilience"
)

// A change-feed batch being retried keeps its retry budget when its range
// moves to another host: the failed attempts are in the range's
// checkpoint. (The hub case runs a whole app twice on one data directory:
// TestHubRetriesGoOnAfterARestart in the root package.)
func TestFeedRetriesGoOnWithTheNextOwner(t *testing.T) {
	t.Parallel()
	e := setupFeed(t)
	sink := &signalSink{n: 1, full: make(chan struct{})}
	start := func(id string, handler host.FeedHandler) *host.Host {
		lm, err := lease.New(e.kv, lease.Config{InstanceID: id, Expiry: 2 * time.Second})
		require.NoError(t, err)
		h, err := host.New(host.Config{InstanceID: id, Leases: lm, Docs: e.docs, FeedState: e.feeds, DeadLetters: sink})
		require.NoError(t, err)
		require.NoError(t, h.RegisterFeed(host.FeedFunction{Name: "f",
			Trigger: host.FeedTrigger{Container: "c", From: host.FeedFromBeginning, Ranges: 1, MaxItems: 1},
			Retry:   resilience.Retry{Strategy: resilience.FixedDelay, MaxRetryCount: 3, Delay: 10 * time.Millisecond},
			Handler: handler}))
		require.NoError(t, h.Start(bg))
		t.Cleanup(func() { h.Stop(bg) })
		return h
	}
	docs := e.write(t, devDoc(1, 1))

	var before atomic.Int32
	inThird := make(chan struct{})
	first := start("one", func(ctx context.Context, _ []docstore.Document) error {
		if before.Add(1) == 3 {
			close(inThird)
			<-ctx.Done()
			return ctx.Err()
		}
		return errors.New("downstream down")
	})
	<-inThird
	stopped := time.Now()
	forced, cancel := context.WithCancel(bg)
	cancel()
	first.Stop(forced) // the third attempt is cut short: no failure
	cp, err := e.feeds.Get(bg, "c.f.0")
	require.NoError(t, err)
	require.Contains(t, string(cp.Value()), `"attempts":2`, "the range's checkpoint holds the retry state")

	var after atomic.Int32
	start("two", func(context.Context, []docstore.Document) error {
		after.Add(1)
		return errors.New("downstream still down")
	})
	<-sink.full
	require.Equal(t, int32(2), after.Load(), "the next owner tries only the attempts the policy has left")
	letters := sink.all()
	require.Len(t, letters, 1)
	require.Equal(t, 4, letters[0].Attempts)
	require.Equal(t, docs[0].LSN, letters[0].Source.LSN)
	require.True(t, letters[0].FirstFailure.Before(stopped))
}

// The retry state goes with the next checkpoint, and a replay clears it.
func TestHubRetryStateIsKeptInTheCheckpoint(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	fail := make(chan struct{})
	var calls atomic.Int32
	h := e.newHost(t, host.Function{Name: "f", Trigger: host.HubTrigger{Hub: e.hub, MaxBatchSize: 1},
		Retry: resilience.Retry{Strategy: resilience.FixedDelay, MaxRetryCount: 5, Delay: time.Hour},
		Handler: func(context.Context, []hub.StoredEvent) error {
			if calls.Add(1) == 2 {
				close(fail)
			}
			if calls.Load() >= 2 {
				return errors.New("downstream down")
			}
			return nil
		}})
	cps, err := e.eng.JS.KeyValue(bg, "sluice-checkpoints")
	require.NoError(t, err)
	w, err := cps.Watch(bg, e.hub+".>", jetstream.UpdatesOnly())
	require.NoError(t, err)
	defer w.Stop()
	pos := e.publish(t, 2, 1)
	<-fail
	// The second event failed once and waits an hour for its retry; its
	// state is written before the wait.
	var cp hub.Checkpoint
	for cp.Retry == nil {
		entry := <-w.Updates()
		require.NotNil(t, entry)
		require.NoError(t, json.Unmarshal(entry.Value(), &cp))
	}
	require.Equal(t, pos[1].Sequence-1, cp.Sequence, "the first event's checkpoint is in it")
	require.Equal(t, pos[1].Sequence, cp.Retry.First)
	require.Equal(t, 1, cp.Retry.Attempts)
	require.Equal(t, "downstream down", cp.Retry.Reason)
	require.GreaterOrEqual(t, cp.Retry.Next.Sub(cp.Retry.FirstFailure), time.Hour, "due after the policy's delay")
	lags, err := e.hubs.GroupLag(bg, e.hub, hub.DefaultGroup)
	require.NoError(t, err)
	require.Equal(t, 1, lags[0].Retrying, "the lag tells the partition is retrying")
	require.Equal(t, int64(1), lags[0].Events)
	h.Stop(bg)
	_, err = e.hubs.Replay(bg, e.hub, hub.DefaultGroup, hub.ReplayTarget{Earliest: true}, 0)
	require.NoError(t, err)
	cp, _, err = e.hubs.GetCheckpoint(bg, e.hub, hub.DefaultGroup, 0)
	require.NoError(t, err)
	require.Nil(t, cp.Retry, "a replay starts over")
}
