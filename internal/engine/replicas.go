package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
)

// MaxDefaultReplicas is the replica count chosen for a cluster of at least
// that many servers: every write is then kept by a majority of three, and
// one server can be lost without losing anything acknowledged.
const MaxDefaultReplicas = 3

// defaultReplicas is the replica count for streams and buckets when none is
// configured: 1 on a single server, else the cluster's size up to
// MaxDefaultReplicas. The cluster's size is the number of servers the
// connection knows (given in the URL and announced by the cluster).
func (e *Engine) defaultReplicas() int {
	if e.srv != nil || e.Conn.ConnectedClusterName() == "" {
		return 1
	}
	return max(1, min(MaxDefaultReplicas, len(e.Conn.Servers())))
}

// Replicas is the replica count of the streams and buckets Sluice creates
// on this engine (see Config.Replicas).
func (e *Engine) Replicas() int { return e.replicas }

// replicated is a JetStream whose creations and updates of streams, KV
// buckets and object stores get n replicas unless they ask for a number,
// and never lower the replicas a resource has: an instance restarted with
// a smaller setting (or an older binary's default) leaves replication as
// it found it.
type replicated struct {
	jetstream.JetStream
	n   int
	log *slog.Logger
}

// replicas is the count a resource named stream (the stream behind a
// bucket or object store) gets: asked, or r.n when it asks for none, but
// never fewer than it has.
func (r replicated) replicas(ctx context.Context, stream string, asked int) int {
	want := asked
	if want == 0 {
		want = r.n
	}
	st, err := r.JetStream.Stream(ctx, stream)
	if err != nil {
		return want // new (or unknown: the server keeps its own on update)
	}
	have := st.CachedInfo().Config.Replicas
	if have > want {
		return have
	}
	if have < want {
		r.log.Info("engine: raising the replicas of a stream", "stream", stream, "from", have, "to", want)
	}
	return want
}

func (r replicated) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = r.replicas(ctx, cfg.Name, cfg.Replicas)
	return r.JetStream.CreateStream(ctx, cfg)
}

func (r replicated) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = r.replicas(ctx, cfg.Name, cfg.Replicas)
	return r.JetStream.UpdateStream(ctx, cfg)
}

func (r replicated) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = r.replicas(ctx, cfg.Name, cfg.Replicas)
	return r.JetStream.CreateOrUpdateStream(ctx, cfg)
}

func (r replicated) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = r.replicas(ctx, "KV_"+cfg.Bucket, cfg.Replicas)
	return r.JetStream.CreateKeyValue(ctx, cfg)
}

func (r replicated) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = r.replicas(ctx, "KV_"+cfg.Bucket, cfg.Replicas)
	return r.JetStream.UpdateKeyValue(ctx, cfg)
}

func (r replicated) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = r.replicas(ctx, "KV_"+cfg.Bucket, cfg.Replicas)
	return r.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
}

func (r replicated) CreateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = r.replicas(ctx, "OBJ_"+cfg.Bucket, cfg.Replicas)
	return r.JetStream.CreateObjectStore(ctx, cfg)
}

func (r replicated) UpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = r.replicas(ctx, "OBJ_"+cfg.Bucket, cfg.Replicas)
	return r.JetStream.UpdateObjectStore(ctx, cfg)
}

func (r replicated) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = r.replicas(ctx, "OBJ_"+cfg.Bucket, cfg.Replicas)
	return r.JetStream.CreateOrUpdateObjectStore(ctx, cfg)
}

// settleReplicas sets e.replicas from cfg (0: the default for the server)
// and checks that the server can keep that many copies.
func (e *Engine) settleReplicas(cfg Config) error {
	n := cfg.Replicas
	if n == 0 {
		n = e.defaultReplicas()
	}
	switch {
	case n < 1 || n > 5:
		return fmt.Errorf("engine: replicas %d: give 1 to 5 (NATS keeps at most 5 copies), or 0 for the default", n)
	case n > 1 && e.srv != nil:
		return fmt.Errorf("engine: replicas %d: the embedded engine is one server and keeps one copy; give --replicas 1, or use --nats-url with a NATS cluster", n)
	case n > 1 && e.Conn.ConnectedClusterName() == "":
		return fmt.Errorf("engine: replicas %d: the NATS server at %s is not part of a cluster and keeps one copy; give --replicas 1, or connect to a cluster", n, RedactURL(cfg.URL))
	}
	e.replicas = n
	if e.srv == nil {
		// An external server may be a cluster, now or later: keep every
		// creation and update at n replicas or more.
		e.JS = replicated{JetStream: e.JS, n: n, log: e.logger}
	}
	return nil
}
