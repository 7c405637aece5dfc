package host_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
)

// TestScaledListsTargetsAfterDefaults: Scaled lists hub and queue
// functions with the target per instance they were given, or its
// default (a hub function's MaxBatchSize, a queue function's
// Concurrency); a target below zero is refused.
func TestScaledListsTargetsAfterDefaults(t *testing.T) {
	t.Parallel()
	e := setupQueue(t, queue.Config{})
	h, err := host.New(host.Config{InstanceID: "test", Queues: e.q, Hubs: &hub.Service{}, Leases: noLeases{}, DeadLetters: e.sink})
	require.NoError(t, err)
	events := func(context.Context, []hub.StoredEvent) error { return nil }
	msgs := func(context.Context, *queue.Message) error { return nil }
	for _, f := range []host.Trigger{
		host.Function{Name: "a", Trigger: host.HubTrigger{Hub: "orders"}, Handler: events},
		host.Function{Name: "b", Trigger: host.HubTrigger{Hub: "orders", Group: "audit", MaxBatchSize: 50}, Handler: events},
		host.Function{Name: "c", Trigger: host.HubTrigger{Hub: "orders", Group: "c", MaxBatchSize: 50, TargetPerInstance: 500}, Handler: events},
		host.QueueFunction{Name: "d", Trigger: host.QueueTrigger{Queue: e.name, BatchSize: 8}, Handler: msgs},
		host.QueueFunction{Name: "e", Trigger: host.QueueTrigger{Queue: e.name, Concurrency: 3}, Handler: msgs},
		host.QueueFunction{Name: "f", Trigger: host.QueueTrigger{Queue: e.name, Concurrency: 3, TargetPerInstance: 30}, Handler: msgs},
	} {
		require.NoError(t, h.Register(f))
	}
	require.Equal(t, []host.Scaled{
		{Function: "a", Hub: "orders", Group: hub.DefaultGroup, TargetPerInstance: 100},
		{Function: "b", Hub: "orders", Group: "audit", TargetPerInstance: 50},
		{Function: "c", Hub: "orders", Group: "c", TargetPerInstance: 500},
		{Function: "d", Queue: e.name, TargetPerInstance: max(1, 8/2*runtime.NumCPU())},
		{Function: "e", Queue: e.name, TargetPerInstance: 3},
		{Function: "f", Queue: e.name, TargetPerInstance: 30},
	}, h.Scaled())

	require.ErrorContains(t, h.Register(host.Function{Name: "g", Trigger: host.HubTrigger{Hub: "orders", Group: "g", TargetPerInstance: -1}, Handler: events}),
		"target per instance -1 must be at least 1")
	require.ErrorContains(t, h.Register(host.QueueFunction{Name: "g", Trigger: host.QueueTrigger{Queue: e.name, TargetPerInstance: -1}, Handler: msgs}),
		"target per instance -1 must be at least 1")
}

// noLeases is a Leaser for hosts that are never started.
type noLeases struct{}

func (noLeases) Join(string, int, func(context.Context, int)) error { return nil }
func (noLeases) Leave(string)                                       {}
func (noLeases) Start(context.Context) error                        { return nil }
func (noLeases) Stop(context.Context) error                         { return nil }
