package dr

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ReadOnly returns js for the services a standby opens to serve reads: a
// creation or update of a stream, KV bucket or object store that exists
// returns it as it is, and one that does not exist fails with ErrStandby,
// as do deletions. Sluice's services create or update their buckets when
// they open; on a mirror that update would drop the mirror configuration,
// which promotes it (and a missing bucket created here would stop the
// primary's from being mirrored).
func ReadOnly(js jetstream.JetStream) jetstream.JetStream { return readOnly{js} }

type readOnly struct{ jetstream.JetStream }

func notMirrored(kind, name string) error {
	return fmt.Errorf("%w (%s %s is not mirrored from the primary yet)", ErrStandby, kind, name)
}

func (r readOnly) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	st, err := r.JetStream.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, notMirrored("stream", name)
	}
	return st, err
}

func (r readOnly) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return r.stream(ctx, cfg.Name)
}

func (r readOnly) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return r.stream(ctx, cfg.Name)
}

func (r readOnly) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return r.stream(ctx, cfg.Name)
}

func (r readOnly) DeleteStream(context.Context, string) error { return ErrStandby }

func (r readOnly) kv(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := r.JetStream.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, notMirrored("bucket", bucket)
	}
	return kv, err
}

func (r readOnly) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return r.kv(ctx, cfg.Bucket)
}

func (r readOnly) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return r.kv(ctx, cfg.Bucket)
}

func (r readOnly) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return r.kv(ctx, cfg.Bucket)
}

func (r readOnly) DeleteKeyValue(context.Context, string) error { return ErrStandby }

func (r readOnly) obj(ctx context.Context, bucket string) (jetstream.ObjectStore, error) {
	o, err := r.JetStream.ObjectStore(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, notMirrored("object store", bucket)
	}
	return o, err
}

func (r readOnly) CreateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return r.obj(ctx, cfg.Bucket)
}

func (r readOnly) UpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return r.obj(ctx, cfg.Bucket)
}

func (r readOnly) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return r.obj(ctx, cfg.Bucket)
}

func (r readOnly) DeleteObjectStore(context.Context, string) error { return ErrStandby }
