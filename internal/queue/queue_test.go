package queue_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/service"
)

var bg = context.Background()

// each runs fn on every engine new enough for queues.
func each(t *testing.T, fn func(t *testing.T, eng *engine.Engine)) {
	enginetest.EachSince(t, queue.MinServerVersion, fn)
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open opens a service on eng, stopped when the test ends.
func open(t *testing.T, eng *engine.Engine) *queue.Service {
	t.Helper()
	s := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{})
	t.Cleanup(func() { require.NoError(t, s.Stop(context.Background())) })
	return s
}

func setup(t *testing.T, eng *engine.Engine, cfg queue.Config) (*queue.Service, string) {
	t.Helper()
	s := open(t, eng)
	if cfg.Name == "" {
		cfg.Name = enginetest.Name("q")
	}
	_, err := s.Create(bg, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Delete(context.Background(), cfg.Name) })
	return s, cfg.Name
}

func send(t *testing.T, s *queue.Service, name string, bodies ...string) []uint64 {
	t.Helper()
	msgs := make([]queue.Outgoing, len(bodies))
	for i, b := range bodies {
		msgs[i] = queue.Outgoing{Body: []byte(b)}
	}
	ids, err := s.Send(bg, name, msgs)
	require.NoError(t, err)
	return ids
}

func receive(t *testing.T, s *queue.Service, name string, max int, wait time.Duration) []*queue.Message {
	t.Helper()
	msgs, err := s.Receive(bg, name, max, wait)
	require.NoError(t, err)
	return msgs
}

func bodies(msgs []*queue.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Body)
	}
	return out
}

func TestQueueLifecycle(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, eng *engine.Engine) {
		s := open(t, eng)
		name := enginetest.Name("life")
		info, err := s.Create(bg, queue.Config{Name: name, Lock: 5 * time.Second})
		require.NoError(t, err)
		require.Equal(t, queue.DefaultMaxMessageBytes, info.MaxMessageBytes)
		require.Equal(t, 5*time.Second, info.Lock)
		require.Equal(t, queue.DefaultTTL, info.TTL)

		_, err = s.Create(bg, queue.Config{Name: name})
		require.ErrorIs(t, err, queue.ErrExists)
		got, err := s.Get(bg, name)
		require.NoError(t, err)
		require.Equal(t, info.Lock, got.Lock)
		list, err := s.List(bg)
		require.NoError(t, err)
		require.Contains(t, names(list), name)

		require.NoError(t, s.Delete(bg, name))
		_, err = s.Get(bg, name)
		require.ErrorIs(t, err, queue.ErrNotFound)
		_, err = s.Send(bg, name, []queue.Outgoing{{Body: []byte("x")}})
		require.ErrorIs(t, err, queue.ErrNotFound)
		require.ErrorIs(t, s.Delete(bg, name), queue.ErrNotFound)
	})
}

func names(infos []queue.Info) []string {
	var out []string
	for _, i := range infos {
		out = append(out, i.Name)
	}
	return out
}

func TestCreateRejectsBadConfig(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	s := open(t, eng)
	for _, c := range []struct {
		cfg  queue.Config
		want string
	}{
		{queue.Config{Name: "bad name"}, "queue name"},
		{queue.Config{Name: ""}, "queue name"},
		{queue.Config{Name: "a.b"}, "queue name"},
		{queue.Config{Name: "ok", Lock: time.Millisecond}, "lock"},
		{queue.Config{Name: "ok", TTL: time.Millisecond}, "ttl"},
		{queue.Config{Name: "ok", MaxMessageBytes: 1 << 30}, "max message size"},
	} {
		_, err := s.Create(bg, c.cfg)
		require.ErrorIs(t, err, queue.ErrInvalid, "%+v", c.cfg)
		require.ErrorContains(t, err, c.want)
	}
	list, err := s.List(bg)
	require.NoError(t, err)
	require.Empty(t, list, "a rejected create writes nothing")
}

func TestSendReceiveComplete(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, eng *engine.Engine) {
		s, name := setup(t, eng, queue.Config{})
		before := time.Now()
		ids, err := s.Send(bg, name, []queue.Outgoing{
			{Body: []byte("a"), Properties: map[string]string{"kind": "first", "odd key: é": "line\nbreak"}},
			{Body: []byte("b")},
			{Body: []byte("c")},
		})
		require.NoError(t, err)
		require.Len(t, ids, 3)
		require.Equal(t, []uint64{ids[0], ids[0] + 1, ids[0] + 2}, ids)

		msgs := receive(t, s, name, 10, time.Second)
		require.Equal(t, []string{"a", "b", "c"}, bodies(msgs))
		require.Equal(t, map[string]string{"kind": "first", "odd key: é": "line\nbreak"}, msgs[0].Properties)
		for i, m := range msgs {
			require.Equal(t, ids[i], m.ID)
			require.Equal(t, 1, m.DequeueCount)
			require.NotEmpty(t, m.LockToken)
			require.WithinRange(t, m.Enqueued, before.Add(-time.Second), time.Now().Add(time.Second))
		}
		st, err := s.Stats(bg, name)
		require.NoError(t, err)
		require.Equal(t, uint64(3), st.Depth)
		require.Equal(t, uint64(3), st.Locked)
		for _, m := range msgs {
			require.NoError(t, s.Complete(bg, name, m))
		}
		require.ErrorIs(t, s.Complete(bg, name, msgs[0]), queue.ErrLockLost, "completing twice")
		st, err = s.Stats(bg, name)
		require.NoError(t, err)
		require.Zero(t, st.Depth)
		require.Empty(t, receive(t, s, name, 10, 0))
	})
}

func TestLockHoldsExpiresAndRenews(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, eng *engine.Engine) {
		// Locks expire on the server's clock, so the lock is long enough
		// that a loaded machine still renews one in time: renewals come
		// about every 200ms.
		const lock = 3 * time.Second
		s, name := setup(t, eng, queue.Config{Lock: lock})
		send(t, s, name, "held", "renewed")
		msgs := receive(t, s, name, 2, time.Second)
		require.Len(t, msgs, 2)
		locked := time.Now()
		require.Empty(t, receive(t, s, name, 2, 0), "locked messages are not delivered twice")

		// Renew one of them until the other's lock has expired.
		renewed := msgs[1]
		var again []*queue.Message
		deadline := time.Now().Add(20 * time.Second)
		for len(again) == 0 {
			require.True(t, time.Now().Before(deadline), "the held message's lock did not expire")
			require.NoError(t, s.Renew(bg, name, renewed))
			for _, m := range receive(t, s, name, 2, 200*time.Millisecond) {
				again = append(again, m)
				require.NoError(t, s.Complete(bg, name, m))
			}
		}
		require.Equal(t, []string{"held"}, bodies(again), "only the expired lock redelivers")
		require.GreaterOrEqual(t, time.Since(locked), lock-100*time.Millisecond, "not before the lock expired")
		require.Equal(t, 2, again[0].DequeueCount)
		require.NoError(t, s.Complete(bg, name, renewed))
	})
}

func TestAbandonWithDelay(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, eng *engine.Engine) {
		s, name := setup(t, eng, queue.Config{})
		send(t, s, name, "x")
		m := receive(t, s, name, 1, time.Second)[0]
		start := time.Now()
		require.NoError(t, s.Abandon(bg, name, m, 700*time.Millisecond))
		again := receive(t, s, name, 1, 20*time.Second)
		require.Len(t, again, 1)
		require.GreaterOrEqual(t, time.Since(start), 600*time.Millisecond, "invisible during the delay")
		require.Equal(t, 2, again[0].DequeueCount)

		require.NoError(t, s.Abandon(bg, name, again[0], 0))
		// Not left locked until its lock (30s) runs out.
		third := receive(t, s, name, 1, 20*time.Second)
		require.Len(t, third, 1, "abandoned without delay: visible at once")
		require.Equal(t, 3, third[0].DequeueCount)
	})
}

func TestDelayedSendAndMove(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, eng *engine.Engine) {
		s, name := setup(t, eng, queue.Config{})
		// A message delayed for longer than the test shows what a delayed
		// message looks like, however slow the machine.
		ids, err := s.Send(bg, name, []queue.Outgoing{{Body: []byte("much later"), Delay: time.Hour}})
		require.NoError(t, err)
		require.Zero(t, ids[0], "a delayed message has no ID until it is visible")
		st, err := s.Stats(bg, name)
		require.NoError(t, err)
		require.Equal(t, uint64(1), st.Delayed)
		require.Zero(t, st.Depth)
		require.Empty(t, receive(t, s, name, 1, 0), "not visible during its delay")

		sent := time.Now()
		_, err = s.Send(bg, name, []queue.Outgoing{{Body: []byte("later"), Delay: 1500 * time.Millisecond,
			Properties: map[string]string{"p": "1"}}})
		require.NoError(t, err)
		sendReturned := time.Now()
		m := receive(t, s, name, 1, 20*time.Second)
		require.Len(t, m, 1)
		require.GreaterOrEqual(t, time.Since(sent), 1400*time.Millisecond, "not visible before its delay")
		require.Equal(t, "later", string(m[0].Body))
		require.Equal(t, map[string]string{"p": "1"}, m[0].Properties)
		require.WithinRange(t, m[0].Enqueued, sent, sendReturned, "enqueued when sent, not when it became visible")
		require.Equal(t, 1, m[0].DequeueCount)

		// Move it for later again: it keeps its history.
		due := time.Now().Add(time.Second)
		require.NoError(t, s.Move(bg, name, m[0], due))
		moved := receive(t, s, name, 1, 20*time.Second)
		require.Len(t, moved, 1)
		require.False(t, time.Now().Before(due.Add(-100*time.Millisecond)), "not visible before it is due")
		require.Equal(t, 1, moved[0].DequeueCount, "moving is not a failed delivery")
		require.True(t, m[0].Enqueued.Equal(moved[0].Enqueued), "enqueued when first sent")
		st, err = s.Stats(bg, name)
		require.NoError(t, err)
		require.Equal(t, uint64(1), st.Delayed, "only the message delayed for an hour")
	})
}

func TestPeekStatsAndPurge(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, eng *engine.Engine) {
		s, name := setup(t, eng, queue.Config{})
		send(t, s, name, "1", "2", "3")
		_, err := s.Send(bg, name, []queue.Outgoing{{Body: []byte("later"), Delay: time.Hour}})
		require.NoError(t, err)
		peeked, err := s.Peek(bg, name, 2)
		require.NoError(t, err)
		require.Equal(t, []string{"1", "2"}, bodies(peeked))
		require.Empty(t, peeked[0].LockToken)
		require.Len(t, receive(t, s, name, 3, time.Second), 3, "peeking locks nothing")

		st, err := s.Stats(bg, name)
		require.NoError(t, err)
		require.Equal(t, uint64(3), st.Depth)
		require.Equal(t, uint64(1), st.Delayed)
		require.Positive(t, st.OldestAge)

		n, err := s.Purge(bg, name)
		require.NoError(t, err)
		require.Equal(t, uint64(4), n)
		st, err = s.Stats(bg, name)
		require.NoError(t, err)
		require.Zero(t, st.Depth)
		require.Zero(t, st.Delayed)
	})
}

func TestMessageTTL(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, eng *engine.Engine) {
		s, name := setup(t, eng, queue.Config{})
		_, err := s.Send(bg, name, []queue.Outgoing{{Body: []byte("short"), TTL: time.Second}, {Body: []byte("long")}})
		require.NoError(t, err)
		// The server removes the expired message.
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, err := s.Stats(bg, name)
			require.NoError(t, err)
			if st.Depth == 1 {
				break
			}
			require.True(t, time.Now().Before(deadline), "the message did not expire: depth %d", st.Depth)
			time.Sleep(50 * time.Millisecond)
		}
		require.Equal(t, []string{"long"}, bodies(receive(t, s, name, 2, time.Second)), "the expired message is gone")
	})
}

func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, eng *engine.Engine) {
		s, name := setup(t, eng, queue.Config{MaxMessageBytes: 100})
		_, err := s.Send(bg, name, []queue.Outgoing{{Body: []byte("ok")}, {Body: make([]byte, 101)}})
		require.ErrorIs(t, err, queue.ErrTooLarge)
		require.ErrorContains(t, err, "message 1 is 101 bytes, the limit of queue")
		_, err = s.Send(bg, name, []queue.Outgoing{{Body: []byte("ok")}, {Body: []byte("x"), Delay: -time.Second}})
		require.ErrorIs(t, err, queue.ErrInvalid)
		_, err = s.Receive(bg, name, 0, 0)
		require.ErrorIs(t, err, queue.ErrInvalid)
		_, err = s.Send(bg, name, []queue.Outgoing{{Body: []byte("ok"), Properties: map[string]string{"big": strings.Repeat("\x01", 20<<10)}}})
		require.ErrorIs(t, err, queue.ErrTooLarge, "properties are stored as JSON in a header: escaped, they exceed its limit")
		require.ErrorContains(t, err, "put large values in the body")
		st, err := s.Stats(bg, name)
		require.NoError(t, err)
		require.Zero(t, st.Depth+st.Delayed)

		_, err = s.Send(bg, "no-such-queue", []queue.Outgoing{{Body: []byte("x")}})
		require.ErrorIs(t, err, queue.ErrNotFound)
		_, err = s.Send(bg, "bad name", []queue.Outgoing{{Body: []byte("x")}})
		require.ErrorIs(t, err, queue.ErrInvalid)
	})
}

func TestLockTokensFromElsewhere(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, eng *engine.Engine) {
		s, name := setup(t, eng, queue.Config{})
		_, other := setup(t, eng, queue.Config{})
		send(t, s, name, "a", "b")
		send(t, s, other, "z")
		// As the HTTP API receives them: each delivery recorded for its
		// token.
		msgs, err := s.ReceiveTokens(bg, name, 2, time.Second)
		require.NoError(t, err)
		require.Len(t, msgs, 2)
		theirs, err := s.ReceiveTokens(bg, other, 1, time.Second)
		require.NoError(t, err)

		// As the HTTP API sees them: only the token.
		byToken := func(m *queue.Message) *queue.Message { return &queue.Message{LockToken: m.LockToken} }
		require.NoError(t, s.Renew(bg, name, byToken(msgs[0])))
		require.NoError(t, s.Complete(bg, name, byToken(msgs[0])))
		require.NoError(t, s.Abandon(bg, name, byToken(msgs[1]), 0))
		require.Equal(t, []string{"b"}, bodies(receive(t, s, name, 2, time.Second)))

		require.ErrorIs(t, s.Complete(bg, name, byToken(msgs[0])), queue.ErrLockLost, "completed already")
		require.ErrorContains(t, s.Complete(bg, name, byToken(msgs[0])), "already completed")
		require.ErrorContains(t, s.Renew(bg, name, byToken(msgs[1])), "already abandoned")
		for _, tok := range []string{"", "nonsense", "$JS.ACK.>", "$JS.API.STREAM.DELETE.x", theirs[0].LockToken} {
			err := s.Complete(bg, name, &queue.Message{LockToken: tok})
			require.ErrorIs(t, err, queue.ErrInvalid, "token %q", tok)
		}
	})
}

func TestDelayedMessageSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := func() (*engine.Engine, *queue.Service) {
		eng, err := engine.Start(bg, engine.Config{DataDir: dir})
		require.NoError(t, err)
		return eng, queue.Open(eng.JS, eng.MaxPayload(), queue.Options{})
	}
	eng, s := start()
	_, err := s.Create(bg, queue.Config{Name: "restart"})
	require.NoError(t, err)
	due := time.Now().Add(2 * time.Second)
	_, err = s.Send(bg, "restart", []queue.Outgoing{{Body: []byte("due"), Delay: time.Until(due)}})
	require.NoError(t, err)
	require.NoError(t, s.Stop(bg))
	require.NoError(t, eng.Close())

	eng, s = start()
	defer eng.Close()
	defer s.Stop(bg)
	m := receive(t, s, "restart", 1, 20*time.Second)
	require.Len(t, m, 1)
	require.False(t, time.Now().Before(due.Add(-100*time.Millisecond)), "delivered at %s, due %s: not before", time.Now(), due)
}

func TestPoisonName(t *testing.T) {
	require.Equal(t, "orders-poison", queue.PoisonName("orders"))
	require.Empty(t, queue.PoisonName("orders-poison"))
	long := fmt.Sprintf("%064d", 0)
	require.Empty(t, queue.PoisonName(long))
}

func TestOlderServerGetsAClearError(t *testing.T) {
	t.Parallel()
	url := os.Getenv(enginetest.EnvURL)
	if url == "" {
		t.Skipf("%s is not set", enginetest.EnvURL)
	}
	eng, err := engine.Start(bg, engine.Config{URL: url})
	require.NoError(t, err)
	defer eng.Close()
	if v := eng.Conn.ConnectedServerVersion(); engine.VersionAtLeast(v, queue.MinServerVersion) {
		t.Skipf("the external server (%s) supports queues", v)
	}
	s := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{})
	defer s.Stop(bg)
	_, err = s.Create(bg, queue.Config{Name: enginetest.Name("old")})
	require.ErrorIs(t, err, queue.ErrUnsupported)
	require.ErrorContains(t, err, "queues need NATS server "+queue.MinServerVersion+" or newer")
	_, err = s.Send(bg, "any", []queue.Outgoing{{Body: []byte("x")}})
	require.ErrorIs(t, err, queue.ErrUnsupported)
}

func TestCompletedMessagesAreRemoved(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, eng *engine.Engine) {
		s, name := setup(t, eng, queue.Config{})
		send(t, s, name, "1", "2", "3", "4")
		msgs := receive(t, s, name, 4, time.Second)
		require.Len(t, msgs, 4)
		// The oldest stays locked: nothing after it can be swept yet.
		for _, m := range msgs[1:] {
			require.NoError(t, s.Complete(bg, name, m))
		}
		stored := func() uint64 {
			st, err := eng.JS.Stream(bg, queue.StreamName(name))
			require.NoError(t, err)
			return st.CachedInfo().State.Msgs
		}
		require.NoError(t, queue.Sweep(bg, s, name))
		require.Equal(t, uint64(4), stored())
		peeked, err := s.Peek(bg, name, 10)
		require.NoError(t, err)
		require.Equal(t, "1", string(peeked[0].Body))

		require.NoError(t, s.Complete(bg, name, msgs[0]))
		deadline := time.Now().Add(30 * time.Second)
		for stored() > 0 {
			require.True(t, time.Now().Before(deadline), "completed messages still stored: %d", stored())
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// Concurrent sends are stored together; each still learns its own IDs.
func TestConcurrentSendsGetTheirOwnIDs(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	s, name := setup(t, eng, queue.Config{})
	var mu sync.Mutex
	want := map[uint64]string{}
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			for i := range 10 {
				n := 1 + (g+i)%3
				msgs := make([]queue.Outgoing, n)
				for j := range msgs {
					msgs[j].Body = fmt.Appendf(nil, "%d/%d/%d", g, i, j)
				}
				ids, err := s.Send(bg, name, msgs)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				for j, id := range ids {
					want[id] = string(msgs[j].Body)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	got := map[uint64]string{}
	for len(got) < len(want) {
		msgs := receive(t, s, name, 100, time.Second)
		require.NotEmpty(t, msgs, "received %d of %d", len(got), len(want))
		for _, m := range msgs {
			got[m.ID] = string(m.Body)
		}
	}
	require.Equal(t, want, got)
}

// TestStopEndsBatchersAndSweepers is not parallel: it looks for the
// service's goroutines among all, which no other test then has.
func TestStopEndsBatchersAndSweepers(t *testing.T) {
	eng := enginetest.Embedded(t)
	s := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{})
	name := enginetest.Name("stop")
	_, err := s.Create(bg, queue.Config{Name: name})
	require.NoError(t, err)
	send(t, s, name, "1", "2")
	for _, m := range receive(t, s, name, 2, time.Second) {
		require.NoError(t, s.Complete(bg, name, m)) // starts the sweeper
	}

	require.NoError(t, s.Stop(bg))
	requireClosed(t, s.Stopped())
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	require.NotContains(t, stacks, "queue.(*Service).batcher")
	require.NotContains(t, stacks, "queue.(*Service).sweeper")

	_, err = s.Send(bg, name, []queue.Outgoing{{Body: []byte("late")}})
	require.ErrorIs(t, err, service.ErrStopped)
	require.NoError(t, s.Stop(bg), "Stop twice is safe")
	// The messages sent before Stop are stored.
	stats, err := open(t, eng).Stats(bg, name)
	require.NoError(t, err)
	require.Zero(t, stats.Depth, "both were completed; the late one was not stored")
}

func TestStopStoresAcceptedSendsAndRefusesTheRest(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	s := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{})
	name := enginetest.Name("stop")
	_, err := s.Create(bg, queue.Config{Name: name})
	require.NoError(t, err)

	const senders = 50
	results := make(chan error, senders)
	begun := make(chan struct{}, senders)
	for i := range senders {
		go func() {
			begun <- struct{}{}
			_, err := s.Send(bg, name, []queue.Outgoing{{Body: []byte(strconv.Itoa(i))}})
			results <- err
		}()
	}
	for range senders / 2 {
		<-begun
	}
	require.NoError(t, s.Stop(bg))
	sent := 0
	for range senders {
		err := <-results
		if err == nil {
			sent++
			continue
		}
		require.ErrorIs(t, err, service.ErrStopped)
	}

	other := open(t, eng)
	stats, err := other.Stats(bg, name)
	require.NoError(t, err)
	require.EqualValues(t, sent, stats.Depth, "every send that succeeded is stored, and no other")
}

func TestStopBeforeUse(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	s := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{})
	require.NoError(t, s.Stop(bg))
	requireClosed(t, s.Stopped())
}

func requireClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Fatal("channel not closed")
	}
}
