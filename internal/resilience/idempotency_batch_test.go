package resilience

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/claim"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/testlog"
)

// batchEngine is an engine and the way DoBatch writes to it.
type batchEngine struct {
	eng    *engine.Engine
	atomic bool // atomic batches; else asynchronous publishes
}

// eachBatchEngine runs fn on the embedded engine with atomic batches and
// without, and on each external server configured (SLUICE_TEST_NATS_URL,
// SLUICE_TEST_NATS_CURRENT_URL), with atomic batches where it has them.
func eachBatchEngine(t *testing.T, fn func(t *testing.T, be batchEngine)) {
	t.Helper()
	for _, atomic := range []bool{true, false} {
		name := map[bool]string{true: "embedded-atomic", false: "embedded-async"}[atomic]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, batchEngine{eng: enginetest.Embedded(t), atomic: atomic})
		})
	}
	for _, env := range []string{enginetest.EnvURL, enginetest.EnvCurrentURL} {
		t.Run(env, func(t *testing.T) {
			t.Parallel()
			url := os.Getenv(env)
			if url == "" {
				t.Skipf("%s is not set: skipping this external NATS run", env)
			}
			eng, err := engine.Start(context.Background(), engine.Config{URL: url})
			require.NoError(t, err)
			t.Cleanup(func() { _ = eng.Close() })
			atomic := engine.VersionAtLeast(eng.Conn.ConnectedServerVersion(), "2.12.0")
			t.Logf("%s is NATS %s: atomic batches %v", engine.RedactURL(url), eng.Conn.ConnectedServerVersion(), atomic)
			fn(t, batchEngine{eng: eng, atomic: atomic})
		})
	}
}

// bucket creates a key bucket like the SDK's, taking atomic batches if
// be.atomic.
func (be batchEngine) bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	kv := onceBucket(t, be.eng)
	if be.atomic {
		ctx := context.Background()
		st, err := be.eng.JS.Stream(ctx, "KV_"+kv.Bucket())
		require.NoError(t, err)
		cfg := st.CachedInfo().Config
		cfg.AllowAtomicPublish = true
		_, err = be.eng.JS.UpdateStream(ctx, cfg)
		require.NoError(t, err)
	}
	return kv
}

// keys returns Keys on kv owned by owner, writing batches as be says, as
// atomic batches from 2 writes on.
func (be batchEngine) keys(t *testing.T, kv jetstream.KeyValue, owner string, opts KeysOptions) *Keys {
	t.Helper()
	opts.JS, opts.AtomicBatches, opts.AtomicBatchMin = be.eng.JS, be.atomic, 2
	return newOnceKeys(t, kv, owner, opts)
}

// batchWork records the todo of each call and returns err.
type batchWork struct {
	mu    sync.Mutex
	calls [][]int
}

func (w *batchWork) fn(err error) func(context.Context, []int) error {
	return func(_ context.Context, todo []int) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.calls = append(w.calls, slices.Clone(todo))
		return err
	}
}

func (w *batchWork) got() [][]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

// Done keys are skipped, a key given twice is one piece of work, and a
// batch with nothing left to do does not call the work.
func TestOnceBatchRunsEachKeyOnce(t *testing.T) {
	t.Parallel()
	eachBatchEngine(t, func(t *testing.T, be batchEngine) {
		ctx := context.Background()
		kv := be.bucket(t)
		k := be.keys(t, kv, "a", KeysOptions{})
		var w batchWork

		ran, err := k.DoBatch(ctx, []string{"a", "b", "a", "c"}, 0, w.fn(nil))
		require.NoError(t, err)
		require.Equal(t, []int{0, 1, 3}, ran)
		ran, err = k.DoBatch(ctx, []string{"c", "d", "a", "d", "e"}, 0, w.fn(nil))
		require.NoError(t, err)
		require.Equal(t, []int{1, 4}, ran)
		ran, err = k.DoBatch(ctx, []string{"e", "a"}, 0, w.fn(nil))
		require.NoError(t, err)
		require.Empty(t, ran)
		ran, err = k.DoBatch(ctx, nil, 0, w.fn(nil))
		require.NoError(t, err)
		require.Empty(t, ran)
		require.Equal(t, [][]int{{0, 1, 3}, {1, 4}}, w.got())

		for _, key := range []string{"a", "b", "c", "d", "e"} {
			rec, ok := readRecord(t, kv, key)
			require.True(t, ok, key)
			require.Equal(t, keyDone, rec.State, key)
			require.Equal(t, "a", rec.Owner, key)
			require.Equal(t, key, rec.Key)
		}
		// Once sees the keys of a batch, and the other way round.
		var runs atomic.Int32
		once, err := k.Do(ctx, "b", 0, counter(&runs, nil))
		require.NoError(t, err)
		require.False(t, once)
		_, err = k.Do(ctx, "f", 0, counter(&runs, nil))
		require.NoError(t, err)
		ran, err = k.DoBatch(ctx, []string{"f", "g"}, 0, w.fn(nil))
		require.NoError(t, err)
		require.Equal(t, []int{1}, ran)
	})
}

// A failed run, or a panic, releases every key of the call; the next call
// runs them (claiming keys whose last write is a deletion). Keys done by an
// earlier call stay done.
func TestOnceBatchFailureReleasesKeys(t *testing.T) {
	t.Parallel()
	eachBatchEngine(t, func(t *testing.T, be batchEngine) {
		ctx := context.Background()
		kv := be.bucket(t)
		k := be.keys(t, kv, "a", KeysOptions{})
		var w batchWork
		ran, err := k.DoBatch(ctx, []string{"done"}, 0, w.fn(nil))
		require.NoError(t, err)
		require.Equal(t, []int{0}, ran)

		keys := []string{"x", "done", "y", "z"}
		ran, err = k.DoBatch(ctx, keys, 0, w.fn(errOnceBoom))
		require.Equal(t, errOnceBoom, err, "the work's error, unwrapped")
		require.Equal(t, []int{0, 2, 3}, ran)
		for _, key := range []string{"x", "y", "z"} {
			_, ok := readRecord(t, kv, key)
			require.False(t, ok, "%s was released", key)
		}
		require.PanicsWithValue(t, "x", func() {
			_, _ = k.DoBatch(ctx, keys, 0, func(context.Context, []int) error { panic("x") })
		})
		for _, key := range []string{"x", "y", "z"} {
			_, ok := readRecord(t, kv, key)
			require.False(t, ok, "%s was released after the panic", key)
		}
		ran, err = k.DoBatch(ctx, keys, 0, w.fn(nil))
		require.NoError(t, err)
		require.Equal(t, []int{0, 2, 3}, ran)
		require.Equal(t, [][]int{{0}, {0, 2, 3}, {0, 2, 3}}, w.got())
	})
}

// A batch runs the keys it claimed without waiting for those another
// caller holds, then waits for that caller: it skips them if its run
// succeeded, runs them if it failed, and gives up when its context ends.
func TestOnceBatchWaitsForOthersAfterItsOwn(t *testing.T) {
	t.Parallel()
	for _, outcome := range []string{"success", "failure", "cancel"} {
		t.Run(outcome, func(t *testing.T) {
			t.Parallel()
			be := batchEngine{eng: enginetest.Embedded(t), atomic: true}
			ctx := context.Background()
			kv := be.bucket(t)
			other := be.keys(t, kv, "other", KeysOptions{})
			k := be.keys(t, kv, "a", KeysOptions{Recheck: 20 * time.Millisecond})

			started, finish := make(chan struct{}), make(chan error)
			otherDone := make(chan error, 1)
			go func() {
				_, err := other.Do(ctx, "b", 0, func(context.Context) error {
					close(started)
					return <-finish
				})
				otherDone <- err
			}()
			<-started

			bctx, cancel := context.WithCancel(ctx)
			defer cancel()
			calls := make(chan []int, 2)
			type result struct {
				ran []int
				err error
			}
			res := make(chan result, 1)
			go func() {
				ran, err := k.DoBatch(bctx, []string{"a", "b", "c"}, 0, func(_ context.Context, todo []int) error {
					calls <- slices.Clone(todo)
					return nil
				})
				res <- result{ran, err}
			}()
			require.Equal(t, []int{0, 2}, <-calls, "the free keys first, without waiting")
			switch outcome {
			case "success":
				finish <- nil
				r := <-res
				require.NoError(t, r.err)
				require.Equal(t, []int{0, 2}, r.ran)
			case "failure":
				finish <- errOnceBoom
				require.Equal(t, []int{1}, <-calls, "the key whose run failed")
				r := <-res
				require.NoError(t, r.err)
				require.Equal(t, []int{0, 1, 2}, r.ran)
			case "cancel":
				cancel()
				r := <-res
				require.ErrorIs(t, r.err, context.Canceled)
				require.ErrorContains(t, r.err, "gave up waiting")
				require.Equal(t, []int{0, 2}, r.ran)
				rec, ok := readRecord(t, kv, "b")
				require.True(t, ok)
				require.Equal(t, keyRunning, rec.State, "the other caller's claim is untouched")
				finish <- nil
			}
			require.Equal(t, outcome == "failure", errors.Is(<-otherDone, errOnceBoom))
			for _, key := range []string{"a", "b", "c"} {
				rec, ok := readRecord(t, kv, key)
				require.True(t, ok)
				require.Equal(t, keyDone, rec.State, key)
			}
			require.Empty(t, calls)
		})
	}
}

// Claims left by a caller that died are taken over once they expire, and
// not before; the free keys do not wait for them.
func TestOnceBatchTakesOverExpiredClaims(t *testing.T) {
	t.Parallel()
	eachBatchEngine(t, func(t *testing.T, be batchEngine) {
		ctx := context.Background()
		kv := be.bucket(t)
		clock := newFakeClock()
		// The dead owner claims two keys and never runs, renews or
		// releases them.
		dead := be.keys(t, kv, "dead", KeysOptions{Now: clock.Now})
		won, busy, err := dead.claimAll(ctx, []*batchKey{
			{onceCall: dead.call("k1", 0), known: true}, {onceCall: dead.call("k3", 0), known: true},
		})
		require.NoError(t, err)
		require.Len(t, won, 2)
		require.Empty(t, busy)

		logger, logs := testlog.New(slog.LevelDebug)
		live := be.keys(t, kv, "live", KeysOptions{Now: clock.Now, Recheck: 20 * time.Millisecond, Logger: logger})
		calls := make(chan []int, 2)
		type result struct {
			ran []int
			err error
		}
		res := make(chan result, 1)
		go func() {
			ran, err := live.DoBatch(ctx, []string{"k0", "k1", "k2", "k3"}, time.Hour, func(_ context.Context, todo []int) error {
				calls <- slices.Clone(todo)
				return nil
			})
			res <- result{ran, err}
		}()
		// The clock stands still: the dead claims cannot have expired.
		require.Equal(t, []int{0, 2}, <-calls)
		clock.Advance(DefaultClaimTTL + time.Second)
		require.Equal(t, []int{1, 3}, <-calls)
		r := <-res
		require.NoError(t, r.err)
		require.Equal(t, []int{0, 1, 2, 3}, r.ran)
		for _, key := range []string{"k0", "k1", "k2", "k3"} {
			rec, _ := readRecord(t, kv, key)
			require.Equal(t, keyDone, rec.State, key)
			require.Equal(t, "live", rec.Owner, key)
		}
		require.Contains(t, logs.String(), "took over an expired claim")
		require.Contains(t, logs.String(), "previous_owner=dead")
	})
}

// Many callers, two owners, batches of overlapping keys in different
// orders and with repeats, some runs failing: every key's effect happens
// exactly once, and every caller ends up done (retrying its batch after a
// failure, as a function host would).
func TestOnceBatchConcurrentOverlappingBatches(t *testing.T) {
	t.Parallel()
	eachBatchEngine(t, func(t *testing.T, be batchEngine) {
		ctx := context.Background()
		kv := be.bucket(t)
		owners := []*Keys{be.keys(t, kv, "a", KeysOptions{}), be.keys(t, kv, "b", KeysOptions{})}
		const nKeys, callers, batchLen = 60, 12, 25
		var effects [nKeys]atomic.Int32
		var failedOnce [nKeys]atomic.Bool
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for c := range callers {
			wg.Go(func() {
				// A window of the keys starting at a different place,
				// backwards for odd callers, with one key repeated.
				var keys []string
				var idx []int
				for j := range batchLen {
					i := (c*nKeys/callers + j) % nKeys
					if c%2 == 1 {
						i = nKeys - 1 - i
					}
					idx = append(idx, i)
				}
				idx = append(idx, idx[batchLen/2])
				for _, i := range idx {
					keys = append(keys, fmt.Sprintf("event/%d", i))
				}
				for attempt := 0; ; attempt++ {
					if attempt == 10 {
						errs <- fmt.Errorf("caller %d: still failing after %d attempts", c, attempt)
						return
					}
					_, err := owners[c%2].DoBatch(ctx, keys, time.Hour, func(_ context.Context, todo []int) error {
						// A key that is a multiple of 7 fails the first run
						// that has it, before any effect.
						for _, j := range todo {
							if i := idx[j]; i%7 == 0 && failedOnce[i].CompareAndSwap(false, true) {
								return errOnceBoom
							}
						}
						for _, j := range todo {
							effects[idx[j]].Add(1)
						}
						return nil
					})
					if err == nil {
						return
					}
					if !errors.Is(err, errOnceBoom) {
						errs <- fmt.Errorf("caller %d: %w", c, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i := range nKeys {
			require.LessOrEqual(t, effects[i].Load(), int32(1), "key %d: effects", i)
		}
		// Every key some caller had is done exactly once.
		for c := range callers {
			for j := range batchLen {
				i := (c*nKeys/callers + j) % nKeys
				if c%2 == 1 {
					i = nKeys - 1 - i
				}
				require.Equal(t, int32(1), effects[i].Load(), "key %d: effects", i)
			}
		}
	})
}

// The claims of a batch are renewed while the work runs: a duplicate
// waits for the run instead of taking the claims over.
func TestOnceBatchRenewalKeepsClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	be := batchEngine{eng: enginetest.Embedded(t), atomic: true}
	kv := be.bucket(t)
	const claimTTL = time.Second
	clock := newFakeClock()
	a := be.keys(t, kv, "a", KeysOptions{ClaimTTL: claimTTL, Now: clock.Now})
	b := be.keys(t, kv, "b", KeysOptions{ClaimTTL: claimTTL, Recheck: 50 * time.Millisecond, Now: clock.Now})
	keys := []string{"k1", "k2", "k3"}
	started := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := a.DoBatch(ctx, keys, 0, func(context.Context, []int) error {
			close(started)
			// Three claimTTLs pass while the work runs, half of one at a
			// time, each once every claim was renewed at the time before.
			for range 6 {
				clock.Advance(claimTTL / 2)
				for _, key := range keys {
					if err := renewedAt(ctx, kv, key, clock.Now().Add(claimTTL)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		first <- err
	}()
	<-started
	var w batchWork
	ran, err := b.DoBatch(ctx, []string{"k2", "k4"}, 0, w.fn(nil))
	require.NoError(t, err)
	require.Equal(t, []int{1}, ran, "k2's claim was renewed, so the duplicate waited for its run to succeed")
	require.NoError(t, <-first)
}

// When the completions cannot be written, the caller is told the work ran
// and was not recorded.
func TestOnceBatchCompletionNotRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	be := batchEngine{eng: enginetest.Embedded(t), atomic: true}
	kv := be.bucket(t)
	k := be.keys(t, kv, "a", KeysOptions{})
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	ran, err := k.DoBatch(ctx, keys, 0, func(ctx context.Context, _ []int) error {
		return be.eng.JS.DeleteKeyValue(ctx, kv.Bucket()) // the store goes away mid-run
	})
	require.Len(t, ran, len(keys))
	require.ErrorIs(t, err, ErrNotRecorded)
	require.ErrorContains(t, err, `key "k0"`)
	require.ErrorContains(t, err, "and 19 more keys")
}

// The writes of a batch go at once: as an atomic batch, all stored or none
// (a failed compare-and-set fails them all); as asynchronous publishes,
// each on its own.
func TestOnceBatchWritesAllAtOnce(t *testing.T) {
	t.Parallel()
	eachBatchEngine(t, func(t *testing.T, be batchEngine) {
		ctx := context.Background()
		kv := be.bucket(t)
		k := be.keys(t, kv, "a", KeysOptions{})
		revs, errs := k.writeAll(ctx, []kvWrite{{id: "a", value: []byte("1")}, {id: "b", value: []byte("1")}})
		require.Equal(t, []error{nil, nil}, errs)
		require.Equal(t, revs[0]+1, revs[1])
		for i, id := range []string{"a", "b"} {
			e, err := kv.Get(ctx, id)
			require.NoError(t, err)
			require.Equal(t, revs[i], e.Revision())
		}

		// c is new, a exists: its create fails.
		revs, errs = k.writeAll(ctx, []kvWrite{{id: "c", value: []byte("2")}, {id: "a", value: []byte("2")}, {id: "b", value: []byte("2"), rev: revs[1]}})
		require.True(t, claim.Conflict(errs[1]), "%v", errs[1])
		_, err := kv.Get(ctx, "c")
		if be.atomic {
			for _, err := range errs {
				require.True(t, claim.Conflict(err), "%v", err)
			}
			require.ErrorIs(t, err, jetstream.ErrKeyNotFound, "nothing of a failed atomic batch is stored")
		} else {
			require.NoError(t, errs[0])
			require.NoError(t, errs[2])
			require.NoError(t, err)
		}

		// Deletions.
		e, err := kv.Get(ctx, "b")
		require.NoError(t, err)
		_, errs = k.writeAll(ctx, []kvWrite{{id: "a", del: true, rev: revs[0] + 1000}, {id: "b", del: true, rev: e.Revision()}})
		require.True(t, claim.Conflict(errs[0]), "%v", errs[0])
		_, err = kv.Get(ctx, "b")
		require.Equal(t, be.atomic, err == nil, "b deleted only without atomic batches: %v", err)
	})
}

// Bad input gets a clear error naming the key, and writes nothing.
func TestOnceBatchBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	be := batchEngine{eng: enginetest.Embedded(t), atomic: true}
	kv := be.bucket(t)
	k := be.keys(t, kv, "a", KeysOptions{})
	var w batchWork
	for _, tc := range []struct {
		keys []string
		ttl  time.Duration
		fn   func(context.Context, []int) error
		want string
	}{
		{[]string{"a", "b", ""}, 0, w.fn(nil), "key 2: once: the key must not be empty"},
		{[]string{"a"}, -time.Second, w.fn(nil), `key 0: once "a": ttl -1s must not be negative`},
		{[]string{"a"}, 0, nil, "no work function"},
	} {
		ran, err := k.DoBatch(ctx, tc.keys, tc.ttl, tc.fn)
		require.ErrorContains(t, err, tc.want)
		require.Empty(t, ran)
	}
	_, err := newOnceKeys(t, kv, "a", KeysOptions{}).DoBatch(ctx, []string{"a"}, 0, w.fn(nil))
	require.ErrorContains(t, err, "needs KeysOptions.JS")
	require.Empty(t, w.got())
	_, err = kv.Keys(ctx)
	require.ErrorIs(t, err, jetstream.ErrNoKeysFound, "nothing was written")
}

// A stream that refuses atomic batches (the option was set, wrongly) makes
// DoBatch fall back to asynchronous publishes.
func TestOnceBatchFallsBackWithoutAtomicBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := enginetest.Embedded(t)
	kv := onceBucket(t, eng) // no AllowAtomicPublish
	logger, logs := testlog.New(slog.LevelDebug)
	k := newOnceKeys(t, kv, "a", KeysOptions{JS: eng.JS, AtomicBatches: true, AtomicBatchMin: 2, Logger: logger})
	var w batchWork
	ran, err := k.DoBatch(ctx, []string{"a", "b", "c"}, 0, w.fn(nil))
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 2}, ran)
	require.Contains(t, logs.String(), "does not take atomic batches")
	ran, err = k.DoBatch(ctx, []string{"a", "b", "c"}, 0, w.fn(nil))
	require.NoError(t, err)
	require.Empty(t, ran)
}

// DoBatch leaves no goroutine behind: after success, failure, panic, a
// wait given up and a wait ended (as TestOnceLeavesNoGoroutines for Do).
func TestOnceBatchLeavesNoGoroutines(t *testing.T) {
	ctx := context.Background()
	be := batchEngine{eng: enginetest.Embedded(t), atomic: true}
	kv := be.bucket(t)
	// Claims last on a clock that does not move: renewals (every 100ms)
	// come, and no claim expires however slow the machine.
	clock := newFakeClock()
	a := be.keys(t, kv, "a", KeysOptions{ClaimTTL: 300 * time.Millisecond, Now: clock.Now})
	b := be.keys(t, kv, "b", KeysOptions{Now: clock.Now, Recheck: 20 * time.Millisecond})
	var w batchWork
	// The first asynchronous publish (a batch of one key) starts the
	// connection's reply subscription, which lasts as long as it.
	_, err := a.DoBatch(ctx, []string{"warm-up"}, 0, w.fn(nil))
	require.NoError(t, err)
	before := goroutines()

	_, err = a.DoBatch(ctx, []string{"ok1", "ok2"}, 0, w.fn(nil))
	require.NoError(t, err)
	_, err = a.DoBatch(ctx, []string{"fail1", "fail2"}, 0, w.fn(errOnceBoom))
	require.Equal(t, errOnceBoom, err)
	require.Panics(t, func() {
		_, _ = a.DoBatch(ctx, []string{"panic1", "panic2"}, 0, func(context.Context, []int) error { panic("x") })
	})

	started, finish := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := a.DoBatch(ctx, []string{"wait1", "wait2"}, 0, func(context.Context, []int) error {
			close(started)
			<-finish
			return nil
		})
		first <- err
	}()
	<-started
	claimed, err := kv.Get(ctx, onceKVKey("wait1"))
	require.NoError(t, err)
	short, cancel := context.WithCancel(ctx)
	calls := make(chan []int, 1)
	go func() {
		<-calls // the free key's run: the batch waits for the others next
		cancel()
	}()
	_, err = b.DoBatch(short, []string{"wait1", "free", "wait2"}, 0, func(_ context.Context, todo []int) error {
		calls <- todo
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	// Past a renewal of the claims, the run ends.
	require.NoError(t, renewedPast(ctx, kv, "wait1", claimed.Revision()))
	close(finish)
	ran, err := b.DoBatch(ctx, []string{"wait1", "wait2"}, 0, w.fn(nil))
	require.NoError(t, err)
	require.Empty(t, ran)
	require.NoError(t, <-first)

	// Goroutines may take a moment to return once their work is done.
	var left []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if left = leftSince(before); len(left) == 0 {
			return
		}
	}
	t.Fatalf("%d goroutines left behind:\n%s", len(left), strings.Join(left, "\n\n"))
}

// renewedPast waits until key's revision is past rev.
func renewedPast(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		e, err := kv.Get(ctx, onceKVKey(key))
		if err != nil || e.Revision() > rev {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("the claim was not renewed")
}

// More batches at once than the server keeps atomic batches in flight for
// one stream (50): those it refuses go as asynchronous publishes, and every
// batch is done.
func TestOnceBatchManyBatchesAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	be := batchEngine{eng: enginetest.Embedded(t), atomic: true}
	kv := be.bucket(t)
	k := be.keys(t, kv, "a", KeysOptions{})
	const batches, batchLen = 100, 40
	var wg sync.WaitGroup
	errs := make(chan error, batches)
	for g := range batches {
		wg.Go(func() {
			keys := make([]string, batchLen)
			for i := range keys {
				keys[i] = fmt.Sprintf("g%d-%d", g, i)
			}
			ran, err := k.DoBatch(ctx, keys, 0, func(context.Context, []int) error { return nil })
			if err == nil && len(ran) != batchLen {
				err = fmt.Errorf("ran %d keys", len(ran))
			}
			if err != nil {
				errs <- fmt.Errorf("batch %d: %w", g, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ks, err := kv.Keys(ctx)
	require.NoError(t, err)
	require.Len(t, ks, batches*batchLen)
}
