package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
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
// never fewer than it has; raising tells whether the resource exists with
// fewer. It fails when the engine does not say whether the resource
// exists: an update must not lower replicas it could not read.
func (r replicated) replicas(ctx context.Context, stream string, asked int) (n int, raising bool, err error) {
	want := asked
	if want == 0 {
		want = r.n
	}
	st, err := r.JetStream.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return want, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	have := st.CachedInfo().Config.Replicas
	if have > want {
		return have, false, nil
	}
	if have < want {
		r.log.Info("engine: raising the replicas of a stream", "stream", stream, "from", have, "to", want)
	}
	return want, have < want, nil
}

// settleFor bounds the wait for a stream whose replicas were raised to
// have a leader and every new copy current.
const settleFor = 30 * time.Second

// settled waits, after a raise of stream's replicas, until the stream has
// a leader and every copy is current: until then a write may wait on
// copies still catching up, and fail its caller's timeout. A stream that
// does not settle in settleFor is logged and left to settle by itself.
func (r replicated) settled(ctx context.Context, stream string, raising bool, err error) error {
	if err != nil || !raising {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, settleFor)
	defer cancel()
	for {
		st, serr := r.JetStream.Stream(ctx, stream)
		if serr == nil {
			info := st.CachedInfo()
			if c := info.Cluster; c != nil && c.Leader != "" && len(c.Replicas) == info.Config.Replicas-1 &&
				!slices.ContainsFunc(c.Replicas, func(p *jetstream.PeerInfo) bool { return !p.Current }) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			r.log.Warn("engine: a stream whose replicas were raised has not settled yet; writes to it may wait meanwhile", "stream", stream, "waited", settleFor)
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// answerWithin bounds one creation or update of a stream, bucket or object
// store: a request the engine never answers (seen when instances create
// the same resources at once on a fresh cluster) is asked again instead
// of holding its caller until its own deadline, or failing it after the
// client's default timeout.
const answerWithin = 5 * time.Second

// apply makes one creation or update of the resource whose stream is
// stream, with the replicas it gets (see replicas): asked again when the
// engine does not answer in answerWithin, and waited for when it raised
// the replicas (see settled). Creations and updates are idempotent.
func apply[R any](ctx context.Context, r replicated, stream string, replicas *int, call func(context.Context) (R, error)) (R, error) {
	asked := *replicas
	for {
		actx, cancel := context.WithTimeout(ctx, answerWithin)
		n, raising, err := r.replicas(actx, stream, asked)
		var out R
		if err == nil {
			*replicas = n
			out, err = call(actx)
		}
		cancel()
		if err == nil || ctx.Err() != nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			return out, r.settled(ctx, stream, raising, err)
		}
		r.log.Warn("engine: no answer to a creation or update of a stream; asking again", "stream", stream, "waited", answerWithin)
	}
}

func (r replicated) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return apply(ctx, r, cfg.Name, &cfg.Replicas, func(ctx context.Context) (jetstream.Stream, error) { return r.JetStream.CreateStream(ctx, cfg) })
}

func (r replicated) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return apply(ctx, r, cfg.Name, &cfg.Replicas, func(ctx context.Context) (jetstream.Stream, error) { return r.JetStream.UpdateStream(ctx, cfg) })
}

func (r replicated) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return apply(ctx, r, cfg.Name, &cfg.Replicas, func(ctx context.Context) (jetstream.Stream, error) { return r.JetStream.CreateOrUpdateStream(ctx, cfg) })
}

func (r replicated) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return apply(ctx, r, "KV_"+cfg.Bucket, &cfg.Replicas, func(ctx context.Context) (jetstream.KeyValue, error) { return r.JetStream.CreateKeyValue(ctx, cfg) })
}

func (r replicated) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return apply(ctx, r, "KV_"+cfg.Bucket, &cfg.Replicas, func(ctx context.Context) (jetstream.KeyValue, error) { return r.JetStream.UpdateKeyValue(ctx, cfg) })
}

func (r replicated) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return apply(ctx, r, "KV_"+cfg.Bucket, &cfg.Replicas, func(ctx context.Context) (jetstream.KeyValue, error) {
		return r.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	})
}

func (r replicated) CreateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return apply(ctx, r, "OBJ_"+cfg.Bucket, &cfg.Replicas, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return r.JetStream.CreateObjectStore(ctx, cfg)
	})
}

func (r replicated) UpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return apply(ctx, r, "OBJ_"+cfg.Bucket, &cfg.Replicas, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return r.JetStream.UpdateObjectStore(ctx, cfg)
	})
}

func (r replicated) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return apply(ctx, r, "OBJ_"+cfg.Bucket, &cfg.Replicas, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return r.JetStream.CreateOrUpdateObjectStore(ctx, cfg)
	})
}

// RaiseStreams gives every stream that match accepts and that has fewer
// than want replicas want, such as the queues or blob containers created
// before an instance's replica setting was raised. It never lowers a
// stream's replicas, and does nothing for want 1 or less.
func RaiseStreams(ctx context.Context, js jetstream.JetStream, want int, match func(jetstream.StreamConfig) bool, log *slog.Logger) error {
	if want <= 1 {
		return nil
	}
	var raise []jetstream.StreamConfig
	lister := js.ListStreams(ctx)
	for si := range lister.Info() {
		if match(si.Config) && max(si.Config.Replicas, 1) < want {
			raise = append(raise, si.Config)
		}
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("engine: list streams: %w", err)
	}
	for _, cfg := range raise {
		log.Info("engine: raising the replicas of a stream", "stream", cfg.Name, "from", max(cfg.Replicas, 1), "to", want)
		cfg.Replicas = want
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("engine: raise the replicas of %s: %w", cfg.Name, err)
		}
	}
	return nil
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
