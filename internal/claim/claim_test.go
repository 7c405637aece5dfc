package claim_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/claim"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bucket creates a bucket with a unique name on eng, deleted at the end.
func bucket(t *testing.T, eng *engine.Engine) jetstream.KeyValue {
	t.Helper()
	name := enginetest.Name("claim-test")
	kv, err := eng.JS.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: name, History: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.JS.DeleteKeyValue(context.Background(), name) })
	return kv
}

// clock is a clock the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// deadline is what a claimer of these tests stores: its deadline.
func deadline(until time.Time) []byte { return []byte(until.Format(time.RFC3339Nano)) }

func readDeadline(t *testing.T, e jetstream.KeyValueEntry) time.Time {
	t.Helper()
	until, err := time.Parse(time.RFC3339Nano, string(e.Value()))
	require.NoError(t, err)
	return until
}

const ttl = 30 * time.Second

func TestClaimOnRealEngines(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		t.Run("free key", func(t *testing.T) { t.Parallel(); testFreeKey(t, bucket(t, eng)) })
		t.Run("renewal", func(t *testing.T) { t.Parallel(); testRenewal(t, bucket(t, eng)) })
		t.Run("expiry and takeover", func(t *testing.T) { t.Parallel(); testTakeover(t, bucket(t, eng)) })
		t.Run("racing claimers", func(t *testing.T) { t.Parallel(); testRacing(t, bucket(t, eng)) })
		t.Run("dying claimer", func(t *testing.T) { t.Parallel(); testDyingClaimer(t, bucket(t, eng)) })
		t.Run("release", func(t *testing.T) { t.Parallel(); testRelease(t, bucket(t, eng)) })
		t.Run("own write seen late", func(t *testing.T) { t.Parallel(); testAdopt(t, bucket(t, eng)) })
		t.Run("keep alive", func(t *testing.T) { t.Parallel(); testKeepAlive(t, bucket(t, eng)) })
		t.Run("server timestamp", func(t *testing.T) { t.Parallel(); testServerTimestamp(t, bucket(t, eng)) })
	})
}

// A free key is claimed by creating it; a second creation loses.
func testFreeKey(t *testing.T, kv jetstream.KeyValue) {
	ctx := context.Background()
	clk := newClock()
	now := clk.Now()
	c, err := claim.Take(ctx, kv, "k", 0, now, deadline(now.Add(ttl)), claim.Terms{TTL: ttl, Now: clk.Now})
	require.NoError(t, err)
	require.Equal(t, "k", c.Key())
	require.NotZero(t, c.Rev())
	require.True(t, c.Held())
	require.Equal(t, now.Add(ttl), c.Until())

	_, err = claim.Take(ctx, kv, "k", 0, now, deadline(now.Add(ttl)), claim.Terms{TTL: ttl})
	require.True(t, claim.Conflict(err), "a second create fails its compare-and-set: %v", err)

	_, err = claim.Take(ctx, kv, "other", 0, now, nil, claim.Terms{})
	require.Error(t, err, "a claim needs a lifetime")
}

// A renewal moves the revision and the holder's deadline; without one the
// holder stops acting at TTL − Margin, before others may take over at TTL.
func testRenewal(t *testing.T, kv jetstream.KeyValue) {
	ctx := context.Background()
	clk := newClock()
	terms := claim.Terms{TTL: ttl, Margin: 5 * time.Second, Now: clk.Now}
	start := clk.Now()
	c, err := claim.Take(ctx, kv, "k", 0, start, deadline(start.Add(ttl)), terms)
	require.NoError(t, err)
	rev := c.Rev()

	clk.Advance(ttl - terms.Margin - time.Nanosecond)
	require.True(t, c.Held())
	renewed := clk.Now()
	newRev, err := c.Write(ctx, renewed, deadline(renewed.Add(ttl)))
	require.NoError(t, err)
	require.Greater(t, newRev, rev)
	require.Equal(t, newRev, c.Rev())
	require.Equal(t, renewed.Add(ttl-terms.Margin), c.Until())

	clk.Advance(ttl - terms.Margin - time.Nanosecond)
	require.True(t, c.Held(), "renewed: held until TTL − Margin after the renewal")
	clk.Advance(time.Nanosecond)
	require.False(t, c.Held(), "not renewed again: the holder stops at TTL − Margin")
	e, err := kv.Get(ctx, "k")
	require.NoError(t, err)
	require.False(t, claim.Expired(clk.Now(), readDeadline(t, e)), "others still wait for the margin")
	clk.Advance(terms.Margin)
	require.True(t, claim.Expired(clk.Now(), readDeadline(t, e)))
	require.False(t, c.Lost(), "expiry is not a loss: nobody wrote over the claim")
}

// A claim whose deadline passed is taken over at its revision; its old
// holder's next write finds the claim lost.
func testTakeover(t *testing.T, kv jetstream.KeyValue) {
	ctx := context.Background()
	clk := newClock()
	terms := claim.Terms{TTL: ttl, Now: clk.Now}
	start := clk.Now()
	a, err := claim.Take(ctx, kv, "k", 0, start, deadline(start.Add(ttl)), terms)
	require.NoError(t, err)

	// b reads the claim: live until the deadline.
	e, err := kv.Get(ctx, "k")
	require.NoError(t, err)
	clk.Advance(ttl - time.Nanosecond)
	require.False(t, claim.Expired(clk.Now(), readDeadline(t, e)))
	clk.Advance(time.Nanosecond)
	require.True(t, claim.Expired(clk.Now(), readDeadline(t, e)), "expired from the deadline on")

	now := clk.Now()
	b, err := claim.Take(ctx, kv, "k", e.Revision(), now, deadline(now.Add(ttl)), terms)
	require.NoError(t, err)
	require.True(t, b.Held())

	_, err = a.Write(ctx, now, deadline(now.Add(ttl)))
	require.ErrorIs(t, err, claim.ErrLost)
	require.True(t, claim.Conflict(err))
	require.True(t, a.Lost())
	require.False(t, a.Held())

	e, err = kv.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, b.Rev(), e.Revision(), "the old holder's write did not land")

	// A taker that read a revision older than the current one loses.
	_, err = claim.Take(ctx, kv, "k", e.Revision()-1, now, deadline(now.Add(ttl)), terms)
	require.True(t, claim.Conflict(err))
}

// Of claimers racing for the same key, free or expired, exactly one wins.
func testRacing(t *testing.T, kv jetstream.KeyValue) {
	ctx := context.Background()
	const claimers = 8
	race := func(rev uint64) (winners []*claim.Claim) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		startLine := make(chan struct{})
		for i := range claimers {
			wg.Go(func() {
				<-startLine
				now := time.Now()
				c, err := claim.Take(ctx, kv, "k", rev, now, []byte(fmt.Sprint(i)), claim.Terms{TTL: ttl})
				if err != nil {
					require.True(t, claim.Conflict(err), "a loser gets a failed compare-and-set: %v", err)
					return
				}
				mu.Lock()
				winners = append(winners, c)
				mu.Unlock()
			})
		}
		close(startLine)
		wg.Wait()
		return winners
	}
	w := race(0)
	require.Len(t, w, 1, "one claimer creates the free key")
	w = race(w[0].Rev())
	require.Len(t, w, 1, "one claimer takes the expired claim over")
	e, err := kv.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, w[0].Rev(), e.Revision())
}

// A claimer that dies leaves its claim unrenewed: others take it over at
// its deadline, or, when its clock ran ahead and the deadline is far off,
// once they have watched the same revision for a whole lifetime.
func testDyingClaimer(t *testing.T, kv jetstream.KeyValue) {
	ctx := context.Background()
	ahead := time.Hour
	deadClock, clk := newClock(), newClock()
	deadClock.Advance(ahead)
	start := deadClock.Now()
	_, err := claim.Take(ctx, kv, "k", 0, start, deadline(start.Add(ttl)), claim.Terms{TTL: ttl, Now: deadClock.Now})
	require.NoError(t, err)
	// ... and the process dies here: no renewal, no release.

	var seen claim.Sighting
	look := func() (jetstream.KeyValueEntry, bool) {
		e, err := kv.Get(ctx, "k")
		require.NoError(t, err)
		watched := seen.Expired(e.Revision(), clk.Now(), ttl)
		return e, claim.Expired(clk.Now(), readDeadline(t, e)) || watched
	}
	_, expired := look()
	require.False(t, expired)
	clk.Advance(ttl - time.Nanosecond)
	_, expired = look()
	require.False(t, expired, "not yet watched for a lifetime, and the deadline is an hour ahead")
	clk.Advance(time.Nanosecond)
	e, expired := look()
	require.True(t, expired, "watched unchanged for a lifetime")
	now := clk.Now()
	c, err := claim.Take(ctx, kv, "k", e.Revision(), now, deadline(now.Add(ttl)), claim.Terms{TTL: ttl, Now: clk.Now})
	require.NoError(t, err)
	require.True(t, c.Held())
}

// Release frees the key for a new claim at once; it deletes only the
// holder's own revision.
func testRelease(t *testing.T, kv jetstream.KeyValue) {
	ctx := context.Background()
	now := time.Now()
	a, err := claim.Take(ctx, kv, "k", 0, now, deadline(now.Add(ttl)), claim.Terms{TTL: ttl})
	require.NoError(t, err)
	require.NoError(t, a.Release(ctx))
	require.False(t, a.Held(), "released")
	require.False(t, a.Lost())

	b, err := claim.Take(ctx, kv, "k", 0, now, deadline(now.Add(ttl)), claim.Terms{TTL: ttl})
	require.NoError(t, err, "a released key is free: created again over its delete marker")

	// a's late release does not free b's claim.
	err = a.Release(ctx)
	require.ErrorIs(t, err, claim.ErrLost)
	e, err := kv.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, b.Rev(), e.Revision())

	require.True(t, claim.Conflict(claim.Delete(ctx, kv, "k", b.Rev()-1)))
	require.NoError(t, claim.Delete(ctx, kv, "k", b.Rev()))
}

// A write of the holder's whose reply was lost moves the revision under
// it; the holder recognizes it and goes on from there.
func testAdopt(t *testing.T, kv jetstream.KeyValue) {
	ctx := context.Background()
	now := time.Now()
	c, err := claim.Take(ctx, kv, "k", 0, now, []byte("mine"), claim.Terms{TTL: ttl})
	require.NoError(t, err)
	late, err := kv.Update(ctx, "k", []byte("mine"), c.Rev()) // landed; reply lost
	require.NoError(t, err)

	_, err = c.Write(ctx, now, []byte("mine"))
	require.ErrorIs(t, err, claim.ErrLost)
	e, err := kv.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "mine", string(e.Value()), "our own mark")
	c.Adopt(e.Revision())
	require.Equal(t, late, c.Rev())
	require.False(t, c.Lost())
	_, err = c.Write(ctx, now, []byte("done"))
	require.NoError(t, err)

	// Gone meanwhile (purged): Adopt(0) makes the next write create it.
	require.NoError(t, kv.Purge(ctx, "k"))
	_, err = c.Write(ctx, now, []byte("done"))
	require.ErrorIs(t, err, claim.ErrLost)
	c.Adopt(0)
	_, err = c.Write(ctx, now, []byte("done"))
	require.NoError(t, err)
}

// KeepAlive renews on the real engine until stopped, and reports a loss.
func testKeepAlive(t *testing.T, kv jetstream.KeyValue) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	c, err := claim.Take(ctx, kv, "k", 0, now, deadline(now.Add(ttl)), claim.Terms{TTL: ttl})
	require.NoError(t, err)
	w, err := kv.Watch(ctx, "k", jetstream.UpdatesOnly())
	require.NoError(t, err)
	defer func() { _ = w.Stop() }()

	failures := make(chan error, 1)
	stop := c.KeepAlive(time.Millisecond, func(now time.Time) []byte { return deadline(now.Add(ttl)) },
		func(err error) { failures <- err })
	for range 2 {
		select {
		case e := <-w.Updates():
			require.Equal(t, jetstream.KeyValuePut, e.Operation())
		case <-ctx.Done():
			t.Fatal("no renewal")
		}
	}
	// Someone else writes over the claim: the next renewal finds it lost.
	_, err = kv.Put(ctx, "k", []byte("theirs"))
	require.NoError(t, err)
	select {
	case err := <-failures:
		require.ErrorIs(t, err, claim.ErrLost)
	case <-ctx.Done():
		t.Fatal("the loss was not reported")
	}
	require.True(t, stop(), "stop reports the loss")
	e, err := kv.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "theirs", string(e.Value()))
}

// A claim can be timed from the server's timestamp of its last write (the
// leases do): it expires TTL after the write was stored, and a renewal
// stamps it afresh.
func testServerTimestamp(t *testing.T, kv jetstream.KeyValue) {
	ctx := context.Background()
	before := time.Now()
	c, err := claim.Take(ctx, kv, "k", 0, before, []byte("owner"), claim.Terms{TTL: ttl})
	require.NoError(t, err)
	e, err := kv.Get(ctx, "k")
	require.NoError(t, err)
	stamped := e.Created()
	require.False(t, claim.Expired(stamped.Add(ttl-time.Nanosecond), stamped.Add(ttl)))
	require.True(t, claim.Expired(stamped.Add(ttl), stamped.Add(ttl)))

	_, err = c.Write(ctx, time.Now(), []byte("owner"))
	require.NoError(t, err)
	e, err = kv.Get(ctx, "k")
	require.NoError(t, err)
	require.False(t, e.Created().Before(stamped), "the renewal is stamped again")
	require.Equal(t, c.Rev(), e.Revision())
}

// memKV is a key-value bucket in memory with the compare-and-set rules of
// JetStream's, for tests in a synctest bubble. fail, when set, answers a
// write instead.
type memKV struct {
	jetstream.KeyValue // the methods not needed here panic
	mu                 sync.Mutex
	seq                uint64
	revs               map[string]uint64
	values             map[string][]byte
	writes             atomic.Int32
	fail               error
	hang               bool // a write waits for its context to end
	// stored, when set, is called with the revision of a write stored,
	// before it returns.
	stored func(rev uint64)
}

func newMemKV() *memKV { return &memKV{revs: map[string]uint64{}, values: map[string][]byte{}} }

func (m *memKV) Create(ctx context.Context, key string, value []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	return m.write(ctx, key, value, 0)
}

func (m *memKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	return m.write(ctx, key, value, rev)
}

func (m *memKV) write(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes.Add(1)
	if m.hang {
		m.mu.Unlock()
		<-ctx.Done()
		m.mu.Lock()
		return 0, ctx.Err()
	}
	if m.fail != nil {
		return 0, m.fail
	}
	if m.revs[key] != rev {
		if rev == 0 {
			return 0, jetstream.ErrKeyExists
		}
		return 0, jetstream.ErrKeyRevisionMismatch
	}
	m.seq++
	m.revs[key], m.values[key] = m.seq, value
	if m.stored != nil {
		m.stored(m.seq)
	}
	return m.seq, nil
}

func (m *memKV) value(key string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return string(m.values[key])
}

// KeepAlive renews every period, keeping a claim held through many
// lifetimes, retries failed renewals, and stops renewing when stopped.
func TestKeepAliveRenewsEveryPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := newMemKV()
		terms := claim.Terms{TTL: ttl, Margin: 5 * time.Second}
		start := time.Now()
		c, err := claim.Take(t.Context(), kv, "k", 0, start, deadline(start.Add(ttl)), terms)
		require.NoError(t, err)
		var failed []error
		stop := c.KeepAlive(ttl/3, func(now time.Time) []byte { return deadline(now.Add(ttl)) },
			func(err error) { failed = append(failed, err) })

		for i := 1; i <= 9; i++ { // three lifetimes
			time.Sleep(ttl / 3)
			synctest.Wait()
			require.Equal(t, int32(1+i), kv.writes.Load(), "renewal %d", i)
			require.True(t, c.Held())
			require.Equal(t, time.Now().Add(ttl-terms.Margin), c.Until())
			require.Equal(t, time.Now().Add(ttl).Format(time.RFC3339Nano), kv.value("k"))
		}

		// The store fails for a while: renewals are retried, the holder's
		// deadline is not extended meanwhile.
		lastOK := time.Now()
		kv.mu.Lock()
		kv.fail = errors.New("no responders")
		kv.mu.Unlock()
		time.Sleep(ttl / 3)
		synctest.Wait()
		require.Len(t, failed, 1)
		require.NotErrorIs(t, failed[0], claim.ErrLost)
		require.Equal(t, lastOK.Add(ttl-terms.Margin), c.Until())
		time.Sleep(ttl / 3)
		synctest.Wait()
		require.True(t, c.Held(), "held until TTL − Margin after the last renewal")
		kv.mu.Lock()
		kv.fail = nil
		kv.mu.Unlock()
		time.Sleep(ttl / 3)
		synctest.Wait()
		require.Equal(t, time.Now().Add(ttl-terms.Margin), c.Until(), "renewed again")

		require.False(t, stop())
		writes := kv.writes.Load()
		time.Sleep(ttl)
		synctest.Wait()
		require.Equal(t, writes, kv.writes.Load(), "no renewal after stop")
		require.False(t, c.Held(), "unrenewed: the holder stops at TTL − Margin")
	})
}

// A renewal that the holder saw stored (through a watch, as leases do) and
// adopted before its reply came still extends the claim.
func TestWriteAdoptedBeforeItsReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := newMemKV()
		start := time.Now()
		c, err := claim.Take(t.Context(), kv, "k", 0, start, []byte("mine"), claim.Terms{TTL: ttl})
		require.NoError(t, err)
		kv.stored = func(rev uint64) { c.Adopt(rev) }
		time.Sleep(ttl / 3)
		rev, err := c.Write(t.Context(), time.Now(), []byte("mine"))
		require.NoError(t, err)
		require.Equal(t, rev, c.Rev())
		require.Equal(t, time.Now().Add(ttl), c.Until(), "extended")
		require.True(t, c.Held())
	})
}

// Stopping KeepAlive in the middle of a renewal cancels the renewal and
// waits for it; that is not a loss.
func TestKeepAliveStoppedMidWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := newMemKV()
		start := time.Now()
		c, err := claim.Take(t.Context(), kv, "k", 0, start, deadline(start.Add(ttl)), claim.Terms{TTL: ttl})
		require.NoError(t, err)
		kv.mu.Lock()
		kv.hang = true
		kv.mu.Unlock()
		var failed []error
		stop := c.KeepAlive(ttl/3, func(now time.Time) []byte { return deadline(now.Add(ttl)) },
			func(err error) { failed = append(failed, err) })
		time.Sleep(ttl / 3)
		synctest.Wait()
		require.Equal(t, int32(2), kv.writes.Load(), "the renewal is in flight")
		require.False(t, stop(), "not lost")
		require.Empty(t, failed, "a cancelled renewal is not a failure")
		require.Equal(t, start.Add(ttl), c.Until(), "nor a renewal")
	})
}

// A holder that stops renewing stops acting before a reader whose clock is
// ahead by less than the margin sees its claim expire; with more skew than
// the margin they overlap (the bound of the package comment).
func TestSkewBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const margin = 5 * time.Second
		for _, skew := range []time.Duration{0, time.Second, margin - time.Millisecond, margin + time.Second} {
			kv := newMemKV()
			start := time.Now()
			c, err := claim.Take(t.Context(), kv, "k", 0, start, deadline(start.Add(ttl)), claim.Terms{TTL: ttl, Margin: margin})
			require.NoError(t, err)
			until := start.Add(ttl) // the deadline the value states
			overlap := false
			for range int(ttl / time.Millisecond) {
				time.Sleep(time.Millisecond)
				readerNow := time.Now().Add(skew)
				if claim.Expired(readerNow, until) && c.Held() {
					overlap = true
				}
			}
			require.Equal(t, skew >= margin, overlap, "skew %v, margin %v", skew, margin)
		}
	})
}

func TestExpired(t *testing.T) {
	t.Parallel()
	until := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	require.False(t, claim.Expired(until.Add(-time.Nanosecond), until))
	require.True(t, claim.Expired(until, until), "expired from the deadline on")
	require.True(t, claim.Expired(until.Add(time.Nanosecond), until))
}

func TestSighting(t *testing.T) {
	t.Parallel()
	clk := newClock()
	var s claim.Sighting
	require.False(t, s.Expired(1, clk.Now(), ttl))
	clk.Advance(ttl - time.Nanosecond)
	require.False(t, s.Expired(1, clk.Now(), ttl))
	clk.Advance(time.Nanosecond)
	require.True(t, s.Expired(1, clk.Now(), ttl), "the same revision for a lifetime")
	require.False(t, s.Expired(2, clk.Now(), ttl), "a new revision: a renewal, timed afresh")
	clk.Advance(ttl)
	require.True(t, s.Expired(2, clk.Now(), ttl))
}

func TestConflict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("timeout"), false},
		{context.DeadlineExceeded, false},
		{jetstream.ErrKeyExists, true},
		{jetstream.ErrKeyRevisionMismatch, true},
		{fmt.Errorf("wrapped: %w", jetstream.ErrKeyExists), true},
		{&jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}, true},
		{&jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant}, true},
		{&jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamNotFound}, false},
		{fmt.Errorf("%w: k: %w", claim.ErrLost, jetstream.ErrKeyRevisionMismatch), true},
	} {
		require.Equal(t, tc.want, claim.Conflict(tc.err), "%v", tc.err)
	}
}
