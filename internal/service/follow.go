package service

import (
	"github.com/nats-io/nats.go/jetstream"
)

// FollowKV keeps a service's view of a KV bucket: it applies every value
// the bucket holds before it returns (so the service never acts as if a
// stored value were absent), then, in a goroutine of l, every later change
// (a put or a delete) until l stops. The watch lives as long as l, not as
// any caller's context. Once l is stopping it returns [ErrStopped].
func (l *Lifecycle) FollowKV(kv jetstream.KeyValue, apply func(jetstream.KeyValueEntry)) error {
	stopping := l.Stopping()
	select {
	case <-stopping:
		return ErrStopped
	default:
	}
	w, err := kv.WatchAll(l.Context())
	if err != nil {
		return err
	}
	// The watcher sends a nil entry once the initial values are in.
	for kve := range w.Updates() {
		if kve == nil {
			break
		}
		apply(kve)
	}
	if !l.Go(func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-stopping:
				return
			case kve, ok := <-w.Updates():
				if !ok {
					return
				}
				if kve != nil {
					apply(kve)
				}
			}
		}
	}) {
		_ = w.Stop()
		return ErrStopped
	}
	return nil
}
