package blob_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

// recorder collects what a watch delivers.
type recorder struct {
	mu      sync.Mutex
	changes []blob.Change
	more    chan struct{}
}

func newRecorder() *recorder { return &recorder{more: make(chan struct{}, 1)} }

func (r *recorder) fn(c blob.Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func (r *recorder) all() []blob.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]blob.Change(nil), r.changes...)
}

// waitFor waits until n changes were delivered and returns them.
func (r *recorder) waitFor(t *testing.T, n int) []blob.Change {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		if got := r.all(); len(got) >= n {
			require.Len(t, got, n, "more changes than expected")
			return got
		}
		select {
		case <-r.more:
		case <-timeout:
			require.FailNow(t, "timed out", "waiting for %d changes, got %v", n, summary(r.all()))
		}
	}
}

// summary shows changes as name@etag or -name@etag for deletions.
func summary(cs []blob.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name + "@" + c.ETag
		if c.Deleted {
			out[i] = "-" + out[i]
		}
	}
	return out
}

func change(info blob.Info, deleted bool) string {
	if deleted {
		return "-" + info.Name + "@" + info.ETag
	}
	return info.Name + "@" + info.ETag
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		require.FailNow(t, "timed out waiting for "+what)
	}
}

func TestWatch(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		s, c := setup(t, eng, blob.Options{})
		put(t, s, c, "a", []byte("a1"), blob.Meta{})
		b1 := put(t, s, c, "b", []byte("b1"), blob.Meta{})
		put(t, s, c, "gone", []byte("g"), blob.Meta{})
		require.NoError(t, s.Delete(bg, c, "gone"))
		a2 := put(t, s, c, "a", []byte("a2"), blob.Meta{ContentType: "text/plain", Metadata: map[string]string{"k": "v"}})

		// The existing blobs, oldest change first; the deleted one is not
		// among them.
		r := newRecorder()
		w, err := s.Watch(bg, c, r.fn)
		require.NoError(t, err)
		waitClosed(t, w.Synced(), "synced")
		got := r.waitFor(t, 2)
		require.Equal(t, []string{change(b1, false), change(a2, false)}, summary(got))
		require.Equal(t, blob.Change{Info: a2}, got[1], "the blob's info, as Stat gives it")

		// Then every change, in order.
		c1 := put(t, s, c, "c", []byte("c1"), blob.Meta{})
		b2 := put(t, s, c, "b", []byte("b2"), blob.Meta{})
		require.NoError(t, s.Delete(bg, c, "a"))
		got = r.waitFor(t, 5)
		require.Equal(t, []string{change(c1, false), change(b2, false), change(a2, true)}, summary(got[2:]))
		require.Equal(t, b2, got[3].Info)
		del := got[4]
		require.True(t, del.Deleted)
		require.Equal(t, c, del.Container)
		require.Equal(t, int64(0), del.Size)
		require.Empty(t, del.Digest)
		require.Equal(t, "text/plain", del.ContentType, "the deleted version's")
		require.False(t, del.Modified.Before(a2.Modified))

		// A second watch; the first stops and sees no more.
		r2 := newRecorder()
		w2, err := s.Watch(bg, c, r2.fn)
		require.NoError(t, err)
		r2.waitFor(t, 2) // c, b2
		require.NoError(t, w.Stop(context.Background()))
		require.NoError(t, w.Stop(context.Background()))
		waitClosed(t, w.Done(), "done")
		require.NoError(t, w.Err())
		d1 := put(t, s, c, "d", []byte("d1"), blob.Meta{})
		require.Equal(t, []string{change(c1, false), change(b2, false), change(d1, false)}, summary(r2.waitFor(t, 3)))
		require.Len(t, r.all(), 5, "nothing after Stop")

		// Deleting the container ends the watch.
		require.NoError(t, s.DeleteContainer(bg, c))
		waitClosed(t, w2.Done(), "done after the container was deleted")
		require.ErrorIs(t, w2.Err(), blob.ErrContainerNotFound)
		require.ErrorContains(t, w2.Err(), c+" was deleted")
	})
}

func TestWatchEmptyAndContext(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		s, c := setup(t, eng, blob.Options{})
		ctx, cancel := context.WithCancel(bg)
		r := newRecorder()
		w, err := s.Watch(ctx, c, r.fn)
		require.NoError(t, err)
		waitClosed(t, w.Synced(), "synced")
		require.NoError(t, w.Err(), "running")
		x := put(t, s, c, "x", []byte("x"), blob.Meta{})
		require.Equal(t, []string{change(x, false)}, summary(r.waitFor(t, 1)))
		cancel()
		waitClosed(t, w.Done(), "done")
		require.NoError(t, w.Err())
		require.NoError(t, w.Stop(context.Background()))
	})
}

// A slow fn holds the watch up; nothing is dropped.
func TestWatchSlowReader(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		s, c := setup(t, eng, blob.Options{})
		release := make(chan struct{})
		r := newRecorder()
		w, err := s.Watch(bg, c, func(ch blob.Change) {
			<-release
			r.fn(ch)
		})
		require.NoError(t, err)
		defer w.Stop(context.Background())
		var want []string
		for i := range 300 {
			info := put(t, s, c, fmt.Sprintf("n/%03d", i), []byte{byte(i)}, blob.Meta{})
			want = append(want, change(info, false))
		}
		close(release)
		require.Equal(t, want, summary(r.waitFor(t, 300)))
	})
}

// A container deleted elsewhere ends the watch once the server-side
// consumer is found gone.
func TestWatchContainerDeletedElsewhere(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		s, c := setup(t, eng, blob.Options{})
		w, err := s.Watch(bg, c, func(blob.Change) {})
		require.NoError(t, err)
		waitClosed(t, w.Synced(), "synced")
		require.NoError(t, blob.Open(eng.JS, blob.Options{}).DeleteContainer(bg, c))
		waitClosed(t, w.Done(), "done after the container was deleted elsewhere")
		require.ErrorIs(t, w.Err(), blob.ErrContainerNotFound)
	})
}
