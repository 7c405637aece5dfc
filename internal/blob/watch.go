package blob

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Change is what a watch delivers: a blob's version, or its deletion.
type Change struct {
	Info
	// Deleted: the blob was deleted. Info is then the deleted version's
	// (same ETag, content type and metadata) with Size 0, no Digest, and
	// Modified the time of the deletion.
	Deleted bool `json:"deleted,omitempty"`
}

// Watcher is a running watch of a container; see Service.Watch.
type Watcher struct {
	container string
	synced    chan struct{}
	done      chan struct{}
	stop      chan struct{}
	stopOnce  sync.Once
	err       error // why the watch ended; set before done is closed
}

// Synced is closed once every blob that existed when the watch started
// has been delivered (fn returned for each).
func (w *Watcher) Synced() <-chan struct{} { return w.synced }

// Done is closed when the watch has ended: fn is not called any more. (A
// watch can end on its own, unlike a service, hence Done rather than
// Stopped; Err says why.)
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Err says why the watch ended, once Done is closed: nil when it was
// stopped (Stop, or the context ended); an error wrapping
// ErrContainerNotFound when the container was deleted; another error when
// the connection to NATS was closed or the watch could not go on.
func (w *Watcher) Err() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// Stop ends the watch and waits until fn has returned, or until ctx ends:
// it then returns ctx's error, and the watch ends once fn returns. It must
// not be called from fn (cancel the watch's context there instead). Safe
// to call more than once.
func (w *Watcher) Stop(ctx context.Context) error {
	w.finish(nil)
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish ends the watch, for the reason err; the first reason stays.
func (w *Watcher) finish(err error) {
	w.stopOnce.Do(func() {
		w.err = err
		close(w.stop)
	})
}

// Watch calls fn with every blob of a container and then with every
// change, until ctx ends, Stop is called, or the container is deleted. It
// is built on the object store's watch (the latest record of each blob,
// then every record written; the store keeps one record per blob, so with
// or without the store's IncludeHistory option it delivers the same).
//
// Delivery semantics, which a blob trigger can rely on:
//
//   - fn is called from one goroutine, one change at a time, in the order
//     the changes were stored in the container (across all its blobs).
//     A slow fn holds up the watch; nothing is dropped for it.
//   - First, every blob that exists when the watch starts, once each, in
//     its latest version, oldest change first; deleted blobs are not
//     part of it. Then Synced is closed. Changes stored while these are
//     delivered follow in order, possibly before Synced.
//   - Then every write (Deleted false, a new ETag) and every deletion
//     (Deleted true) as it is stored.
//   - Versions can be skipped, never reordered: when a blob is written
//     again (or deleted) before the watch has received its previous
//     version from the server (a fast writer, a slow fn), the store has
//     already replaced the previous record and only the latest change is
//     delivered. A change delivered is never older than one delivered
//     before for the same blob.
//   - No duplicates within one watch: when the client reconnects, or
//     falls behind and drops messages, the watch resumes after the last
//     record it received. A new watch (after a restart) delivers every
//     existing blob again, with the same ETag when unchanged: deduplicate
//     by name and ETag.
//   - Nothing is kept for a watch that is not running: the next watch
//     starts from the current state. A blob written meanwhile comes in
//     its latest version only; a blob written and deleted meanwhile is
//     not seen at all; a blob deleted meanwhile is not reported (it is
//     just absent from the first part).
//   - A change says what was stored when it was stored; Get returns the
//     current version, which can be newer (compare ETags) or gone
//     (ErrBlobNotFound).
//   - The watch ends with an error (see Watcher.Err) when the container
//     is deleted: at once when it is deleted through this service,
//     otherwise within about 15 s, when the server-side consumer is
//     found gone.
func (s *Service) Watch(ctx context.Context, container string, fn func(Change)) (*Watcher, error) {
	b, err := s.bucket(ctx, container)
	if err != nil {
		return nil, err
	}
	ow, err := b.obs.Watch(ctx)
	if err != nil {
		return nil, s.storeError(ctx, container, "watch container "+container, err)
	}
	w := &Watcher{container: container, synced: make(chan struct{}), done: make(chan struct{}), stop: make(chan struct{})}
	s.mu.Lock()
	if s.watchers[container] == nil {
		s.watchers[container] = map[*Watcher]struct{}{}
	}
	s.watchers[container][w] = struct{}{}
	s.mu.Unlock()
	go s.runWatch(ctx, w, ow, fn)
	return w, nil
}

func (s *Service) runWatch(ctx context.Context, w *Watcher, ow jetstream.ObjectWatcher, fn func(Change)) {
	updates := ow.Updates()
	defer func() {
		// The store's watcher blocks on its channel: drain it until
		// stopping the subscription closes it.
		_ = ow.Stop()
		for range updates {
		}
		s.mu.Lock()
		delete(s.watchers[w.container], w)
		if len(s.watchers[w.container]) == 0 {
			delete(s.watchers, w.container)
		}
		s.mu.Unlock()
		close(w.done)
	}()
	// Before Synced, a deletion is delivered only for a blob delivered
	// earlier in this watch: the first part holds the records of blobs
	// deleted long ago too. seen holds hashes of names (a collision only
	// delivers the deletion of a blob never delivered).
	seed := maphash.MakeSeed()
	seen := map[uint64]struct{}{}
	for {
		select {
		case <-ctx.Done():
			w.finish(nil)
			return
		case <-w.stop:
			return
		case oi, ok := <-updates:
			if !ok {
				err := s.watchEnded(w.container)
				s.log.Warn("blob watch ended", "container", w.container, "err", err)
				w.finish(err)
				return
			}
			if oi == nil {
				if seen != nil {
					seen = nil
					close(w.synced)
				}
				continue
			}
			if seen != nil {
				h := maphash.String(seed, oi.Name)
				if oi.Deleted {
					if _, ok := seen[h]; !ok {
						continue
					}
				} else {
					seen[h] = struct{}{}
				}
			}
			// Stop may have come while this one was waiting.
			select {
			case <-w.stop:
				return
			default:
			}
			fn(Change{Info: infoOf(w.container, oi), Deleted: oi.Deleted})
		}
	}
}

// watchEnded says why the store's watch of a container ended on its own.
func (s *Service) watchEnded(container string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.js.Conn().IsClosed() {
		return fmt.Errorf("blob: watch of container %s ended: the connection to NATS is closed", container)
	}
	if _, err := s.GetContainer(ctx, container); errors.Is(err, ErrContainerNotFound) {
		return fmt.Errorf("%w: %s was deleted", ErrContainerNotFound, container)
	}
	return fmt.Errorf("blob: watch of container %s ended: the server stopped delivering changes; watch again", container)
}

// endWatches ends the watches of a container with err.
func (s *Service) endWatches(container string, err error) {
	s.mu.Lock()
	ws := make([]*Watcher, 0, len(s.watchers[container]))
	for w := range s.watchers[container] {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.finish(err)
	}
}
