package sluice_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
)

// replicasOf lists every stream of the engine with its replica count.
func replicasOf(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	out := map[string]int{}
	lister := js.ListStreams(context.Background())
	for info := range lister.Info() {
		out[info.Config.Name] = info.Config.Replicas
	}
	require.NoError(t, lister.Err())
	return out
}

// On a 3-node cluster an instance keeps 3 copies of everything it creates
// (streams of hubs and queues, every KV bucket, blob containers), raises a
// bucket left at 1 copy and hubs created through the API with fewer, keeps
// a hub's own replica count, shows each partition's leader and followers,
// and an instance restarted with a lower setting scales nothing down.
func TestReplicasOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	ctx := context.Background()
	cluster := enginetest.Cluster(t, 3)
	js := cluster.Engine(t).JS
	// A bucket an older instance made with one copy.
	_, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "sluice-leases", History: 1, Replicas: 1})
	require.NoError(t, err)

	start := func(replicas int) *sluice.App {
		app := sluice.New(sluice.Config{DataDir: t.TempDir(), NATSURL: cluster.URL(), Replicas: replicas, HTTPAddr: "127.0.0.1:0", Logger: quiet()})
		app.Hub(sluice.HubConfig{Name: "in", Partitions: 2})
		app.Function("f", sluice.HubTrigger{Hub: "in"}, func(context.Context, []sluice.Event) error { return nil },
			sluice.WithRetry(sluice.FixedDelay(1, 0)))
		app.Queue(sluice.QueueConfig{Name: "jobs"})
		app.QueueFunction("q", sluice.QueueTrigger{Queue: "jobs"}, func(context.Context, *sluice.Message) error { return nil })
		app.BlobContainer("uploads")
		require.NoError(t, app.Start(ctx))
		return app
	}
	create := func(app *sluice.App, kind, body string) {
		t.Helper()
		resp, err := http.Post(app.URL()+"/api/v1/"+kind, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode, body)
	}

	// One copy asked: everything has one, but a hub and a queue created
	// through the API with replicas 3 have three.
	app := start(1)
	create(app, "hubs", `{"name":"api","partitions":2}`)
	create(app, "hubs", `{"name":"api3","partitions":2,"replicas":3}`)
	create(app, "queues", `{"name":"q3","replicas":3}`)
	create(app, "queues", `{"name":"q1","replicas":1}`)
	streams := replicasOf(t, js)
	for name, n := range streams {
		want := 1
		if name == hub.StreamName("api3", 0) || name == hub.StreamName("api3", 1) || name == queue.StreamName("q3") {
			want = 3
		}
		require.Equal(t, want, n, "stream %s", name)
	}
	// A queue that asked for its own count keeps it.
	ownCount := func(name string) int {
		if name == queue.StreamName("q1") {
			return 1
		}
		return 3
	}
	require.NoError(t, app.Stop(ctx))

	// The default on three servers: three copies of everything, the hubs
	// created through the API included.
	app = start(0)
	_, err = app.Publish(ctx, "in", sluice.Event{Body: []byte("x")})
	require.NoError(t, err)
	streams = replicasOf(t, js)
	for _, name := range []string{hub.StreamName("in", 0), hub.StreamName("in", 1), hub.StreamName("api", 0), hub.StreamName("api", 1),
		"KV_sluice-leases", "KV_sluice-hubs"} {
		require.Contains(t, streams, name)
	}
	for name, n := range streams {
		require.Equal(t, ownCount(name), n, "stream %s", name)
	}

	// hub describe: every partition with its leader and two followers.
	req, err := http.NewRequest("GET", app.URL()+"/api/v1/hubs/in", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var described struct {
		PartitionInfo []hub.PartitionInfo `json:"partition_info"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&described))
	resp.Body.Close()
	require.Len(t, described.PartitionInfo, 2)
	for _, p := range described.PartitionInfo {
		require.Equal(t, 3, p.Replicas)
		require.Len(t, p.Followers, 2)
	}
	require.NoError(t, app.Stop(ctx))

	// Restarted with one copy asked: nothing scales down.
	again := start(1)
	defer again.Stop(ctx)
	for name, n := range replicasOf(t, js) {
		require.Equal(t, ownCount(name), n, "stream %s after a restart with --replicas 1", name)
	}
}

// More copies than the engine has servers are refused at start, saying why.
func TestReplicasBeyondOneServerAreRefused(t *testing.T) {
	t.Parallel()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Replicas: 3, Logger: quiet()})
	err := app.Start(context.Background())
	require.ErrorContains(t, err, "the embedded engine is one server")
	require.False(t, errors.Is(err, context.Canceled))
}
