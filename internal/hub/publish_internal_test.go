package hub

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

// batcherGoroutines counts the goroutines of the process running a
// partition publisher's loops.
func batcherGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Count(string(buf), "internal/hub.(*batcher).run(") + strings.Count(string(buf), "internal/hub.(*batcher).ack(")
}

// settled counts the batcher goroutines once those that have finished
// their work have returned (some wait for a last answer of the server):
// it waits up to 20s for none to be left.
func settled() int {
	n := batcherGoroutines()
	for deadline := time.Now().Add(20 * time.Second); n > 0 && time.Now().Before(deadline); n = batcherGoroutines() {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	return n
}

func publishHub(t *testing.T, partitions int) (*Service, string) {
	t.Helper()
	eng := enginetest.Embedded(t)
	s, err := Open(context.Background(), eng.JS, eng.MaxPayload(), Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Stop(context.Background())) })
	name := enginetest.Name("h")
	_, err = s.Create(context.Background(), Config{Name: name, Partitions: partitions})
	require.NoError(t, err)
	return s, name
}

// Deleting a hub stops its partitions' publishers (two goroutines each),
// which used to live until the Service closed.
func TestDeleteStopsTheHubsPublishers(t *testing.T) {
	// Not parallel: it counts the goroutines of the whole process, and
	// parallel tests wait until the sequential ones are done.
	ctx := context.Background()
	s, name := publishHub(t, 4)
	require.Zero(t, settled())
	for p := range 4 {
		_, err := s.Publish(ctx, name, []Event{{Body: []byte("x"), Partition: p, HasPartition: true}})
		require.NoError(t, err)
	}
	require.Equal(t, 8, batcherGoroutines(), "a publisher per partition, two goroutines each")
	require.NoError(t, s.Delete(ctx, name))
	require.Zero(t, settled(), "no publisher of the deleted hub is left")

	// A hub created again under the name publishes as before.
	_, err := s.Create(ctx, Config{Name: name, Partitions: 2})
	require.NoError(t, err)
	_, err = s.Publish(ctx, name, []Event{{Body: []byte("y")}})
	require.NoError(t, err)
	require.Equal(t, 2, batcherGoroutines())
	require.NoError(t, s.Delete(ctx, name))
	require.Zero(t, settled())
}

// A partition's publisher stops once it has not been used for a while; the
// next publish starts another.
func TestIdlePublisherStops(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, name := publishHub(t, 1)
	s.batcherIdle = 1 // nanosecond: it stops as soon as it has nothing to do
	_, err := s.Publish(ctx, name, []Event{{Body: []byte("x")}})
	require.NoError(t, err)
	st, err := s.state(ctx, name)
	require.NoError(t, err)
	st.startMu.Lock()
	b := st.parts[0]
	st.startMu.Unlock()
	if b != nil {
		select {
		case <-b.stopped:
		case <-t.Context().Done():
			t.Fatal("the idle publisher did not stop")
		}
	}
	st.startMu.Lock()
	require.Nil(t, st.parts[0], "a stopped publisher is no longer the partition's")
	st.startMu.Unlock()
	pos, err := s.Publish(ctx, name, []Event{{Body: []byte("y")}})
	require.NoError(t, err)
	require.Len(t, pos, 1)
}

// Publishers that stop and start all the time lose no publish: a publish
// that takes a publisher keeps it from stopping until its events are
// handed over.
func TestPublishersStoppingWhileInUseLoseNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, name := publishHub(t, 3)
	s.batcherIdle = 1
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				events := []Event{{Body: fmt.Appendf(nil, "%d/%d", g, i), PartitionKey: fmt.Sprint(i % 5)}, {Body: []byte("b")}}
				if _, err := s.Publish(ctx, name, events); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	lags, err := s.GroupLag(ctx, name, DefaultGroup)
	require.NoError(t, err)
	var total int64
	for _, l := range lags {
		require.False(t, l.Estimated)
		total += l.Events
	}
	require.Equal(t, int64(8*100*2), total, "every event stored")
}
