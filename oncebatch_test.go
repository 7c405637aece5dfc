package sluice

// Internal tests, like once_test.go: the crash test's child shortens
// onceClaimTTL, and the tests read the key bucket directly.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

func TestOnceBatchNeedsRunningAppAndGoodInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var calls atomic.Int32
	work := func(context.Context, []int) error { calls.Add(1); return nil }

	app := New(Config{DataDir: t.TempDir(), Logger: onceQuiet()})
	_, err := app.OnceBatch(ctx, []string{"k"}, 0, work)
	require.ErrorIs(t, err, ErrNotStarted)
	require.NoError(t, app.Start(ctx))

	for _, tc := range []struct {
		keys []string
		ttl  time.Duration
		want string
	}{
		{[]string{"a", ""}, 0, "key 1: once: the key must not be empty"},
		{[]string{"a"}, -time.Minute, "ttl -1m0s must not be negative"},
		{[]string{"a"}, MaxOnceTTL + time.Hour, "is above the longest of 168h0m0s"},
	} {
		ran, err := app.OnceBatch(ctx, tc.keys, tc.ttl, work)
		require.ErrorContains(t, err, tc.want)
		require.Empty(t, ran)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	ran, err := app.OnceBatch(ended, []string{"a", "b"}, 0, work)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, ran)
	_, err = app.onceKV.Keys(ctx)
	require.ErrorIs(t, err, jetstream.ErrNoKeysFound, "bad input, or an ended context, writes nothing")
	ran, err = app.OnceBatch(ctx, nil, 0, work)
	require.NoError(t, err)
	require.Empty(t, ran)
	require.Zero(t, calls.Load())

	// Once and OnceBatch share their keys.
	_, err = app.Once(ctx, "b", 0, func(context.Context) error { return nil })
	require.NoError(t, err)
	ran, err = app.OnceBatch(ctx, []string{"a", "b", "c", "a"}, MaxOnceTTL, work)
	require.NoError(t, err)
	require.Equal(t, []int{0, 2}, ran)
	once, err := app.Once(ctx, "c", 0, func(context.Context) error { return errors.New("must not run") })
	require.NoError(t, err)
	require.False(t, once)
	require.Equal(t, int32(1), calls.Load())

	require.NoError(t, app.Stop(ctx))
	_, err = app.OnceBatch(ctx, []string{"k2"}, 0, work)
	require.ErrorIs(t, err, ErrNotStarted)
}

// Two instances sharing one NATS server, many callers of overlapping
// batches (and of Once, for some keys), some runs failing and retried as
// a host retries a batch: every key's effect happens exactly once, and
// every caller ends cleanly.
func TestOnceBatchTwoInstancesOverlappingBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := startOnceApp(t, Config{NATSListen: "127.0.0.1:0", InstanceID: "a"})
	b := startOnceApp(t, Config{NATSURL: a.NATSURL(), InstanceID: "b"})
	apps := []*App{a, b}

	// Batches of 40 keys: a, on the embedded engine, writes them as atomic
	// batches; b, an external server to it, as asynchronous publishes.
	const keys, callers, batchLen = 80, 10, 40
	var effects [keys]atomic.Int32
	var failedOnce [keys]atomic.Bool
	errFirst := errors.New("first run fails")
	run := func(c int, idx []int) error {
		if c%5 == 4 { // one caller in five goes key by key, with Once
			for _, i := range idx {
				if _, err := apps[c%2].Once(ctx, fmt.Sprintf("event/%d", i), time.Hour, func(context.Context) error {
					effects[i].Add(1)
					return nil
				}); err != nil {
					return err
				}
			}
			return nil
		}
		batch := make([]string, len(idx))
		for j, i := range idx {
			batch[j] = fmt.Sprintf("event/%d", i)
		}
		_, err := apps[c%2].OnceBatch(ctx, batch, time.Hour, func(_ context.Context, todo []int) error {
			for _, j := range todo {
				if i := idx[j]; i%9 == 0 && failedOnce[i].CompareAndSwap(false, true) {
					return errFirst // before any effect
				}
			}
			for _, j := range todo {
				effects[idx[j]].Add(1)
			}
			return nil
		})
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	want := map[int]bool{}
	for c := range callers {
		idx := make([]int, batchLen)
		for j := range idx {
			idx[j] = (c*keys/callers*2 + j*(1+c%3)) % keys
			want[idx[j]] = true
		}
		wg.Go(func() {
			for range 10 {
				err := run(c, idx)
				if err == nil {
					return
				}
				if !errors.Is(err, errFirst) {
					errs <- fmt.Errorf("caller %d: %w", c, err)
					return
				}
			}
			errs <- fmt.Errorf("caller %d: still failing after 10 attempts", c)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range keys {
		n := int32(0)
		if want[i] {
			n = 1
		}
		require.Equal(t, n, effects[i].Load(), "key %d: effects", i)
	}
}

// A process killed in the middle of a batch's work leaves its claims; the
// next batch with some of those keys runs the others at once, and those
// keys once their claims expire, exactly once, and not before.
func TestOnceBatchRunsAgainAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := startOnceApp(t, Config{NATSListen: "127.0.0.1:0", InstanceID: "parent"})
	crashed := []string{"orders/0/1", "orders/0/2", "orders/0/3"}
	killed := runOnceChildUntilClaimed(t, onceChildConfig{NATSURL: app.NATSURL(), Keys: crashed, DataDir: t.TempDir()})

	keys := append([]string{"orders/0/0"}, append(slices.Clone(crashed), "orders/0/4")...)
	for _, key := range crashed {
		e, err := app.onceKV.Get(ctx, onceKVKeyOf(t, app, key))
		require.NoError(t, err)
		require.Contains(t, string(e.Value()), `"owner":"child"`, "the dead child's claim of %s is in the bucket", key)
	}

	var calls [][]int
	var second time.Time
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ran, err := app.OnceBatch(wctx, keys, 0, func(_ context.Context, todo []int) error {
		if len(calls) == 1 {
			second = time.Now()
		}
		calls = append(calls, slices.Clone(todo))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 2, 3, 4}, ran)
	require.Equal(t, []int{0, 4}, calls[0], "the free keys at once")
	// The dead claims' keys after their expiry: together, unless a look
	// fell between two of their deadlines.
	require.Equal(t, []int{1, 2, 3}, slices.Sorted(slices.Values(slices.Concat(calls[1:]...))))
	// The claims were renewed at most onceChildClaimTTL/3 before the kill,
	// so they had at least 2/3 of it left: the work must have waited.
	waited := second.Sub(killed)
	require.GreaterOrEqual(t, waited, onceChildClaimTTL/3, "the work ran again before the dead claims could have expired")

	t.Logf("the work ran again %v after the kill", waited.Round(time.Millisecond))

	ran, err = app.OnceBatch(ctx, keys, 0, func(context.Context, []int) error { return errors.New("must not run") })
	require.NoError(t, err)
	require.Empty(t, ran)
}

// onceKVKeyOf finds the KV key the bucket holds for key, by the key its
// record shows.
func onceKVKeyOf(t *testing.T, app *App, key string) string {
	t.Helper()
	ctx := context.Background()
	ks, err := app.onceKV.Keys(ctx)
	require.NoError(t, err)
	for _, k := range ks {
		e, err := app.onceKV.Get(ctx, k)
		require.NoError(t, err)
		var rec struct{ Key string }
		require.NoError(t, json.Unmarshal(e.Value(), &rec))
		if rec.Key == key {
			return k
		}
	}
	t.Fatalf("no record of %q among %d keys", key, len(ks))
	return ""
}

// OnceBatch on the external servers: Debian's older NATS, where the batch's
// writes go as asynchronous publishes, and the current release, where they
// go as atomic batches.
func TestOnceBatchOnExternalServers(t *testing.T) {
	t.Parallel()
	for _, env := range []string{enginetest.EnvURL, enginetest.EnvCurrentURL} {
		t.Run(env, func(t *testing.T) {
			t.Parallel()
			url := os.Getenv(env)
			if url == "" {
				t.Skipf("%s is not set: skipping this external NATS run", env)
			}
			ctx := context.Background()
			app := startOnceApp(t, Config{NATSURL: url, InstanceID: "ext"})
			prefix := enginetest.Name("oncebatch")
			keys := []string{prefix + "/a", prefix + "/b", prefix + "/c"}
			var calls atomic.Int32
			ran, err := app.OnceBatch(ctx, keys, time.Hour, func(context.Context, []int) error { calls.Add(1); return nil })
			require.NoError(t, err)
			require.Equal(t, []int{0, 1, 2}, ran)
			ran, err = app.OnceBatch(ctx, append(keys, prefix+"/d"), time.Hour, func(context.Context, []int) error { calls.Add(1); return nil })
			require.NoError(t, err)
			require.Equal(t, []int{3}, ran)
			require.Equal(t, int32(2), calls.Load())

			// The bucket takes atomic batches where the server has them
			// (OnceBatch leaves them to the embedded engine).
			eng := app.eng
			atomic := engine.VersionAtLeast(eng.Conn.ConnectedServerVersion(), "2.12.0")
			require.Equal(t, atomic, app.onceKV.(*onceBucketKV).atomic, "NATS %s", eng.Conn.ConnectedServerVersion())
			t.Logf("NATS %s: atomic batches %v", eng.Conn.ConnectedServerVersion(), atomic)
		})
	}
}

// BenchmarkOnceBatch compares a batch of 100 new keys done with Once, key
// after key (as a handler does without OnceBatch) and 100 at a time, and
// with OnceBatch, on the embedded engine with sync always (every write
// fsynced before it is acknowledged: OnceBatch writes atomic batches) and
// with sync interval (OnceBatch writes asynchronous publishes). keys/s is
// the figure to compare; "interleaved" does a batch of each in turn and
// reports their ratio, fairer on a shared machine:
//
//	go test -run '^$' -bench OnceBatch -benchtime 20x -count 3 .
func BenchmarkOnceBatch(b *testing.B) {
	const batch = 100
	for _, sync := range []string{SyncAlways, SyncInterval} {
		b.Run("sync="+sync, func(b *testing.B) { benchmarkOnceBatch(b, sync, batch) })
	}
}

func benchmarkOnceBatch(b *testing.B, syncMode string, batch int) {
	app := startOnceApp(b, Config{Sync: syncMode})
	ctx := context.Background()
	nop := func(context.Context) error { return nil }
	var round atomic.Int64
	keys := func() []string {
		r := round.Add(1)
		out := make([]string, batch)
		for i := range out {
			out[i] = fmt.Sprintf("bench/%d/%d", r, i)
		}
		return out
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "keys/s")
	}
	b.Run("Once", func(b *testing.B) {
		for b.Loop() {
			for _, key := range keys() {
				if _, err := app.Once(ctx, key, 0, nop); err != nil {
					b.Fatal(err)
				}
			}
		}
		report(b)
	})
	b.Run("Once-concurrent", func(b *testing.B) {
		for b.Loop() {
			var wg sync.WaitGroup
			for _, key := range keys() {
				wg.Go(func() {
					if _, err := app.Once(ctx, key, 0, nop); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		report(b)
	})
	onceBatch := func(b *testing.B) {
		ran, err := app.OnceBatch(ctx, keys(), 0, func(context.Context, []int) error { return nil })
		if err != nil || len(ran) != batch {
			b.Fatal(len(ran), err)
		}
	}
	b.Run("OnceBatch", func(b *testing.B) {
		for b.Loop() {
			onceBatch(b)
		}
		report(b)
	})
	// Both, one batch of each in turn, timed apart: on a shared machine
	// whose load changes, their ratio is fairer than that of two runs.
	b.Run("interleaved", func(b *testing.B) {
		var once, batched time.Duration
		for b.Loop() {
			t0 := time.Now()
			for _, key := range keys() {
				if _, err := app.Once(ctx, key, 0, nop); err != nil {
					b.Fatal(err)
				}
			}
			t1 := time.Now()
			onceBatch(b)
			once, batched = once+t1.Sub(t0), batched+time.Since(t1)
		}
		b.ReportMetric(float64(b.N*batch)/once.Seconds(), "Once-keys/s")
		b.ReportMetric(float64(b.N*batch)/batched.Seconds(), "OnceBatch-keys/s")
		b.ReportMetric(once.Seconds()/batched.Seconds(), "OnceBatch/Once")
	})
}

// On the embedded engine with sync always, a batch of 32 keys or more is
// claimed with one atomic batch and completed with another (the stored
// messages keep the batch's id); smaller batches, and sync interval, go as
// asynchronous publishes.
func TestOnceBatchWritesAtomicBatchesWhereTheyPay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sync   string
		keys   int
		atomic bool
	}{
		{SyncAlways, 40, true},
		{SyncAlways, 10, false},
		{SyncInterval, 40, false},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.sync, tc.keys), func(t *testing.T) {
			t.Parallel()
			app := startOnceApp(t, Config{Sync: tc.sync})
			ctx := context.Background()
			st, err := app.eng.JS.Stream(ctx, "KV_"+onceBucket)
			require.NoError(t, err)
			keys := make([]string, tc.keys)
			for i := range keys {
				keys[i] = fmt.Sprint("k", i)
			}
			// The batch ids of the keys' last writes.
			batches := func() map[string]int {
				ids := map[string]int{}
				ks, err := app.onceKV.Keys(ctx)
				require.NoError(t, err)
				require.Len(t, ks, tc.keys)
				for _, k := range ks {
					m, err := st.GetLastMsgForSubject(ctx, "$KV."+onceBucket+"."+k)
					require.NoError(t, err)
					ids[m.Header.Get("Nats-Batch-Id")]++
				}
				return ids
			}
			var claims map[string]int
			ran, err := app.OnceBatch(ctx, keys, 0, func(context.Context, []int) error {
				claims = batches()
				return nil
			})
			require.NoError(t, err)
			require.Len(t, ran, tc.keys)
			done := batches()
			require.Len(t, claims, 1, "one batch id for every claim: %v", claims)
			require.Len(t, done, 1, "one batch id for every completion: %v", done)
			if !tc.atomic {
				require.Equal(t, tc.keys, claims[""], "no batch")
				require.Equal(t, tc.keys, done[""], "no batch")
				return
			}
			require.Zero(t, claims[""])
			require.Zero(t, done[""])
			require.NotEqual(t, claims, done)
		})
	}
}
