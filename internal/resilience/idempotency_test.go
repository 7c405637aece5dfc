package resilience

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluicehq/sluice/internal/testlog"
	"log/slog"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

// onceBucket creates a key bucket like the SDK's, with a unique name, on eng.
func onceBucket(t *testing.T, eng *engine.Engine) jetstream.KeyValue {
	t.Helper()
	ctx := context.Background()
	name := enginetest.Name("once-test")
	kv, err := eng.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: 1, TTL: MaxKeyTTL})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.JS.DeleteKeyValue(context.Background(), name) })
	return kv
}

// newOnceKeys returns Keys on kv owned by owner; opts may set more.
func newOnceKeys(t *testing.T, kv jetstream.KeyValue, owner string, opts KeysOptions) *Keys {
	t.Helper()
	opts.Owner = owner
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	k, err := NewKeys(kv, opts)
	require.NoError(t, err)
	return k
}

// readRecord returns the record stored for key, or false if there is none.
func readRecord(t *testing.T, kv jetstream.KeyValue, key string) (keyRecord, bool) {
	t.Helper()
	e, err := kv.Get(context.Background(), onceKVKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return keyRecord{}, false
	}
	require.NoError(t, err)
	var r keyRecord
	require.NoError(t, json.Unmarshal(e.Value(), &r))
	return r, true
}

// counter returns work that counts its runs and returns err.
func counter(n *atomic.Int32, err error) func(context.Context) error {
	return func(context.Context) error {
		n.Add(1)
		return err
	}
}

var errOnceBoom = errors.New("boom")

// eventually polls cond until it holds, failing the test after 20s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A succeeded run is remembered for its ttl (by the records' own expiry,
// not the bucket's), then the work runs again; 0 means DefaultKeyTTL.
func TestOnceDoneSkipsUntilExpired(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		kv := onceBucket(t, eng)
		clock := newFakeClock()
		a := newOnceKeys(t, kv, "a", KeysOptions{Now: clock.Now})
		b := newOnceKeys(t, kv, "b", KeysOptions{Now: clock.Now})
		var runs atomic.Int32

		ran, err := a.Do(ctx, "order-1", time.Hour, counter(&runs, nil))
		require.NoError(t, err)
		require.True(t, ran)
		rec, ok := readRecord(t, kv, "order-1")
		require.True(t, ok)
		require.Equal(t, keyDone, rec.State)
		require.Equal(t, "order-1", rec.Key)
		require.Equal(t, "a", rec.Owner)
		require.True(t, clock.Now().Add(time.Hour).Equal(rec.Expires), "expires %v", rec.Expires)

		for _, k := range []*Keys{a, b} {
			ran, err = k.Do(ctx, "order-1", time.Hour, counter(&runs, nil))
			require.NoError(t, err)
			require.False(t, ran, "a done key is not run again, by any owner")
		}
		clock.Advance(59 * time.Minute)
		ran, err = b.Do(ctx, "order-1", time.Hour, counter(&runs, nil))
		require.NoError(t, err)
		require.False(t, ran)
		require.Equal(t, int32(1), runs.Load())

		clock.Advance(2 * time.Minute)
		ran, err = b.Do(ctx, "order-1", time.Hour, counter(&runs, nil))
		require.NoError(t, err)
		require.True(t, ran, "an expired key runs again")
		require.Equal(t, int32(2), runs.Load())
		rec, _ = readRecord(t, kv, "order-1")
		require.Equal(t, "b", rec.Owner)
		ran, err = a.Do(ctx, "order-1", time.Hour, counter(&runs, nil))
		require.NoError(t, err)
		require.False(t, ran)

		// ttl 0 is DefaultKeyTTL.
		ran, err = a.Do(ctx, "order-2", 0, counter(&runs, nil))
		require.NoError(t, err)
		require.True(t, ran)
		clock.Advance(DefaultKeyTTL - time.Minute)
		ran, _ = a.Do(ctx, "order-2", 0, counter(&runs, nil))
		require.False(t, ran)
		clock.Advance(2 * time.Minute)
		ran, _ = a.Do(ctx, "order-2", 0, counter(&runs, nil))
		require.True(t, ran)
		require.Equal(t, int32(4), runs.Load())
	})
}

// Failed work (an error or a panic) releases the key; the next call runs.
func TestOnceFailedWorkReleasesKey(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		kv := onceBucket(t, eng)
		k := newOnceKeys(t, kv, "a", KeysOptions{})
		var runs atomic.Int32

		ran, err := k.Do(ctx, "k", 0, counter(&runs, errOnceBoom))
		require.True(t, ran)
		require.Equal(t, errOnceBoom, err, "the work's error comes back as it is")
		_, ok := readRecord(t, kv, "k")
		require.False(t, ok, "the key was released")
		ran, err = k.Do(ctx, "k", 0, counter(&runs, nil))
		require.NoError(t, err)
		require.True(t, ran)
		require.Equal(t, int32(2), runs.Load())

		require.PanicsWithValue(t, "kaboom", func() {
			_, _ = k.Do(ctx, "p", 0, func(context.Context) error { panic("kaboom") })
		}, "a panic goes on up the caller's stack")
		_, ok = readRecord(t, kv, "p")
		require.False(t, ok, "the key was released before the panic went on")
		ran, err = k.Do(ctx, "p", 0, counter(&runs, nil))
		require.NoError(t, err)
		require.True(t, ran)
	})
}

// A claim whose owner died is taken over once it expired, by the waiting
// caller's clock, and not before.
func TestOnceTakesOverExpiredClaim(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		kv := onceBucket(t, eng)
		clock := newFakeClock()
		// The dead owner claims the key and never runs, renews or releases.
		dead := newOnceKeys(t, kv, "dead", KeysOptions{Now: clock.Now})
		st, err := (&onceCall{Keys: dead, key: "k", id: onceKVKey("k"), ttl: time.Hour}).claim(ctx)
		require.NoError(t, err)
		require.Equal(t, claimWon, st.outcome)

		logger, logs := testlog.New(slog.LevelDebug)
		live := newOnceKeys(t, kv, "live", KeysOptions{Now: clock.Now, Recheck: 20 * time.Millisecond, Logger: logger})
		var runs atomic.Int32
		type result struct {
			ran bool
			err error
		}
		done := make(chan result, 1)
		go func() {
			ran, err := live.Do(ctx, "k", time.Hour, counter(&runs, nil))
			done <- result{ran, err}
		}()
		clock.Advance(DefaultClaimTTL - time.Second)
		// A look at the claim reads the clock three times (claim, check,
		// wait): six reads hold a whole look at the advanced time.
		seen := clock.reads.Load()
		eventually(t, "a look at the claim after the advance", func() bool { return clock.reads.Load() >= seen+6 })
		select {
		case r := <-done:
			t.Fatalf("Do returned %+v while the claim was live", r)
		default:
		}
		require.Zero(t, runs.Load())

		clock.Advance(2 * time.Second)
		select {
		case r := <-done:
			require.NoError(t, r.err)
			require.True(t, r.ran)
		case <-time.After(20 * time.Second):
			t.Fatal("the expired claim was not taken over")
		}
		require.Equal(t, int32(1), runs.Load())
		rec, _ := readRecord(t, kv, "k")
		require.Equal(t, keyDone, rec.State)
		require.Equal(t, "live", rec.Owner)
		require.Contains(t, logs.String(), "took over an expired claim")
		require.Contains(t, logs.String(), "previous_owner=dead")
	})
}

// Duplicates wait for a running claim: they skip if it succeeds, run if it
// fails, and give up when their context ends.
func TestOnceDuplicatesWaitForRunningWork(t *testing.T) {
	t.Parallel()
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("first fails=%v", fail), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			kv := onceBucket(t, enginetest.Embedded(t))
			a := newOnceKeys(t, kv, "a", KeysOptions{})
			// b reads the clock three times per look at the key.
			var bReads atomic.Int64
			b := newOnceKeys(t, kv, "b", KeysOptions{Now: func() time.Time { bReads.Add(1); return time.Now() }})
			started, finish := make(chan struct{}), make(chan struct{})
			var runs atomic.Int32
			type result struct {
				ran bool
				err error
			}
			first := make(chan result, 1)
			go func() {
				ran, err := a.Do(ctx, "k", 0, func(context.Context) error {
					runs.Add(1)
					close(started)
					<-finish
					if fail {
						return errOnceBoom
					}
					return nil
				})
				first <- result{ran, err}
			}()
			<-started

			// A caller whose context ends while it waits gives up.
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			ran, err := b.Do(short, "k", 0, counter(&runs, nil))
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.ErrorContains(t, err, "gave up waiting")
			require.False(t, ran)

			second := make(chan result, 1)
			seen := bReads.Load()
			go func() {
				ran, err := b.Do(ctx, "k", 0, counter(&runs, nil))
				second <- result{ran, err}
			}()
			eventually(t, "the duplicate to wait", func() bool { return bReads.Load() >= seen+3 })
			select {
			case r := <-second:
				t.Fatalf("the duplicate returned %+v while the first run was going on", r)
			default:
			}
			close(finish)
			r1, r2 := <-first, <-second
			require.True(t, r1.ran)
			require.NoError(t, r2.err)
			if fail {
				require.Equal(t, errOnceBoom, r1.err)
				require.True(t, r2.ran, "the failed run released the key to the waiting duplicate")
				require.Equal(t, int32(2), runs.Load())
			} else {
				require.NoError(t, r1.err)
				require.False(t, r2.ran, "the waiting duplicate saw the run succeed")
				require.Equal(t, int32(1), runs.Load())
			}
		})
	}
}

// Renewals keep a claim alive for as long as the work runs, well past
// ClaimTTL.
func TestOnceRenewalKeepsClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kv := onceBucket(t, enginetest.Embedded(t))
	const claimTTL = time.Second
	// Claims expire on a clock the work moves; renewals come every third
	// of claimTTL of real time.
	clock := newFakeClock()
	a := newOnceKeys(t, kv, "a", KeysOptions{ClaimTTL: claimTTL, Now: clock.Now})
	b := newOnceKeys(t, kv, "b", KeysOptions{ClaimTTL: claimTTL, Recheck: 50 * time.Millisecond, Now: clock.Now})
	var runs atomic.Int32
	started := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := a.Do(ctx, "k", 0, func(context.Context) error {
			runs.Add(1)
			close(started)
			// Three claimTTLs pass while the work runs, half of one at a
			// time, each once the claim was renewed at the time before:
			// without renewals, it would expire at the second step.
			for range 6 {
				clock.Advance(claimTTL / 2)
				if err := renewedAt(ctx, kv, "k", clock.Now().Add(claimTTL)); err != nil {
					return err
				}
			}
			return nil
		})
		first <- err
	}()
	<-started
	ran, err := b.Do(ctx, "k", 0, counter(&runs, nil))
	require.NoError(t, err)
	require.False(t, ran, "the claim was renewed, so the duplicate waited for the run to succeed")
	require.NoError(t, <-first)
	require.Equal(t, int32(1), runs.Load())
}

// renewedAt waits until key's claim lasts until at least until.
func renewedAt(ctx context.Context, kv jetstream.KeyValue, key string, until time.Time) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		e, err := kv.Get(ctx, onceKVKey(key))
		if err != nil {
			return err
		}
		var r keyRecord
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			return err
		}
		if !r.ClaimedUntil.Before(until) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the claim was not renewed: it lasts until %s, not %s", r.ClaimedUntil, until)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Many callers, two owners, many keys at once: exactly one successful run
// per key, and every caller returns without an unexpected error.
func TestOnceConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		kv := onceBucket(t, eng)
		owners := []*Keys{newOnceKeys(t, kv, "a", KeysOptions{}), newOnceKeys(t, kv, "b", KeysOptions{})}
		const keys, callers = 24, 8
		var succeeded, attempts [keys]atomic.Int32
		var failedOnce [keys]atomic.Bool
		var ranTrue [keys]atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, keys*callers)
		for i := range keys {
			for c := range callers {
				wg.Go(func() {
					ran, err := owners[c%2].Do(ctx, fmt.Sprintf("key %d", i), 0, func(context.Context) error {
						attempts[i].Add(1)
						time.Sleep(2 * time.Millisecond)
						// Every third key's first run fails: a waiting duplicate takes over.
						if i%3 == 0 && failedOnce[i].CompareAndSwap(false, true) {
							return errOnceBoom
						}
						succeeded[i].Add(1)
						return nil
					})
					if ran {
						ranTrue[i].Add(1)
					}
					if err != nil && !errors.Is(err, errOnceBoom) {
						errs <- err
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i := range keys {
			require.Equal(t, int32(1), succeeded[i].Load(), "key %d", i)
			want := int32(1)
			if i%3 == 0 {
				want = 2
			}
			require.Equal(t, want, attempts[i].Load(), "key %d: runs", i)
			require.Equal(t, want, ranTrue[i].Load(), "key %d: callers told they ran it", i)
		}
	})
}

// A claim lost while the work ran (someone overwrote the record) still
// ends with the success recorded, and a warning.
func TestOnceLostClaimStillRecordsCompletion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kv := onceBucket(t, enginetest.Embedded(t))
	logger, logs := testlog.New(slog.LevelDebug)
	k := newOnceKeys(t, kv, "a", KeysOptions{Logger: logger})
	intruder := func(state string) func(context.Context) error {
		return func(ctx context.Context) error {
			r := keyRecord{State: state, Key: "k", Owner: "intruder", Claim: "other",
				ClaimedUntil: time.Now().Add(time.Hour), Expires: time.Now().Add(time.Hour)}
			_, err := kv.Put(ctx, onceKVKey("k"+state), onceJSON(r))
			return err
		}
	}

	// Taken over by a run still going: our success is written over it.
	ran, err := k.Do(ctx, "k"+keyRunning, 0, intruder(keyRunning))
	require.NoError(t, err)
	require.True(t, ran)
	rec, _ := readRecord(t, kv, "k"+keyRunning)
	require.Equal(t, keyDone, rec.State)
	require.Equal(t, "a", rec.Owner)
	require.Contains(t, logs.String(), "may have run twice")

	// Taken over by a run that already succeeded: its record stays.
	ran, err = k.Do(ctx, "k"+keyDone, 0, intruder(keyDone))
	require.NoError(t, err)
	require.True(t, ran)
	rec, _ = readRecord(t, kv, "k"+keyDone)
	require.Equal(t, keyDone, rec.State)
	require.Equal(t, "intruder", rec.Owner)
}

// When the completion cannot be written, the caller is told the work ran
// and was not recorded.
func TestOnceCompletionNotRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := enginetest.Embedded(t)
	kv := onceBucket(t, eng)
	k := newOnceKeys(t, kv, "a", KeysOptions{})
	ran, err := k.Do(ctx, "k", 0, func(ctx context.Context) error {
		return eng.JS.DeleteKeyValue(ctx, kv.Bucket()) // the store goes away mid-run
	})
	require.True(t, ran)
	require.ErrorIs(t, err, ErrNotRecorded)
	require.ErrorContains(t, err, `key "k"`)
}

// Bad input gets a clear error and writes nothing.
func TestOnceBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kv := onceBucket(t, enginetest.Embedded(t))
	k := newOnceKeys(t, kv, "a", KeysOptions{})
	var runs atomic.Int32
	for _, tc := range []struct {
		key  string
		ttl  time.Duration
		fn   func(context.Context) error
		want string
	}{
		{"", 0, counter(&runs, nil), "the key must not be empty"},
		{"k", -time.Second, counter(&runs, nil), "ttl -1s must not be negative"},
		{"k", MaxKeyTTL + time.Second, counter(&runs, nil), "ttl 168h0m1s is above the longest of 168h0m0s"},
		{"k", 0, nil, "no work function"},
	} {
		ran, err := k.Do(ctx, tc.key, tc.ttl, tc.fn)
		require.ErrorContains(t, err, tc.want)
		require.False(t, ran)
	}
	require.Zero(t, runs.Load())
	_, err := kv.Keys(ctx)
	require.ErrorIs(t, err, jetstream.ErrNoKeysFound, "nothing was written")

	_, err = NewKeys(nil, KeysOptions{})
	require.ErrorContains(t, err, "no key-value bucket")
	_, err = NewKeys(kv, KeysOptions{ClaimTTL: -time.Second})
	require.ErrorContains(t, err, "ClaimTTL -1s must be at least 100ms")
	_, err = NewKeys(kv, KeysOptions{ClaimTTL: time.Millisecond})
	require.ErrorContains(t, err, "ClaimTTL 1ms must be at least 100ms")
	_, err = NewKeys(kv, KeysOptions{Recheck: time.Microsecond})
	require.ErrorContains(t, err, "Recheck 1µs must be at least 10ms")

	// A record Sluice did not write is reported, not overwritten.
	_, err = kv.Put(ctx, onceKVKey("foreign"), []byte("not json"))
	require.NoError(t, err)
	ran, err := k.Do(ctx, "foreign", 0, counter(&runs, nil))
	require.ErrorContains(t, err, "was not written by Sluice")
	require.False(t, ran)
	require.Zero(t, runs.Load())
}

// Any string is a key; keys safe in KV keep a readable prefix.
func TestOnceKVKey(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[-_=A-Za-z0-9]+(\.[0-9a-f]{64})?$`)
	seen := map[string]string{}
	for _, key := range []string{"order-42", "Order-42", "a.b", "a b", "ünïcode", "orders/3/1234", "*", ">", "a..b",
		strings.Repeat("x", 64), strings.Repeat("x", 65), strings.Repeat("é", 1000), "\x00", "a.b.c"} {
		id := onceKVKey(key)
		require.Regexp(t, valid, id, "key %q", key)
		if prev, ok := seen[id]; ok {
			t.Fatalf("%q and %q share KV key %s", prev, key, id)
		}
		seen[id] = key
	}
	require.True(t, strings.HasPrefix(onceKVKey("order-42"), "order-42."))
	require.Len(t, onceKVKey("a b"), 64)
}

func FuzzOnceKVKey(f *testing.F) {
	for _, s := range []string{"", "order-42", "a.b", "ü", strings.Repeat("x", 65)} {
		f.Add(s)
	}
	valid := regexp.MustCompile(`^[-_=A-Za-z0-9]+(\.[0-9a-f]{64})?$`)
	f.Fuzz(func(t *testing.T, key string) {
		if id := onceKVKey(key); !valid.MatchString(id) {
			t.Fatalf("key %q gives invalid KV key %q", key, id)
		}
	})
}

// Do leaves no goroutine behind, whatever happened: success, failure,
// panic, a wait that ended with the run, a wait given up. Not parallel, so
// that no other test's goroutines come and go meanwhile.
func TestOnceLeavesNoGoroutines(t *testing.T) {
	ctx := context.Background()
	kv := onceBucket(t, enginetest.Embedded(t))
	before := goroutines()
	// Claims last on a clock that does not move: renewals (every 100ms)
	// come, and no claim expires however slow the machine.
	clock := newFakeClock()
	a := newOnceKeys(t, kv, "a", KeysOptions{ClaimTTL: 300 * time.Millisecond, Now: clock.Now})
	b := newOnceKeys(t, kv, "b", KeysOptions{Now: clock.Now})

	_, err := a.Do(ctx, "ok", 0, func(context.Context) error { return nil })
	require.NoError(t, err)
	_, err = a.Do(ctx, "fail", 0, func(context.Context) error { return errOnceBoom })
	require.Equal(t, errOnceBoom, err)
	require.Panics(t, func() { _, _ = a.Do(ctx, "panic", 0, func(context.Context) error { panic("x") }) })

	started, finish := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := a.Do(ctx, "wait", 0, func(context.Context) error {
			close(started)
			<-finish
			return nil
		})
		first <- err
	}()
	<-started
	claimed, err := kv.Get(ctx, onceKVKey("wait"))
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	_, err = b.Do(short, "wait", 0, func(context.Context) error { return nil })
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	renewed := make(chan error, 1)
	go func() {
		defer close(finish)
		// Past a renewal.
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			e, err := kv.Get(ctx, onceKVKey("wait"))
			if err != nil || e.Revision() > claimed.Revision() {
				renewed <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		renewed <- errors.New("the claim was not renewed")
	}()
	ran, err := b.Do(ctx, "wait", 0, func(context.Context) error { return nil })
	require.NoError(t, err)
	require.False(t, ran)
	require.NoError(t, <-first)
	require.NoError(t, <-renewed)

	// Goroutines may take a moment to return once their work is done.
	var left []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if left = leftSince(before); len(left) == 0 {
			return
		}
	}
	t.Fatalf("%d goroutines left behind:\n%s", len(left), strings.Join(left, "\n\n"))
}

// goroutines returns the stacks of the running goroutines by id.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
		out[id] = g
	}
	return out
}

// leftSince lists the goroutines started since before that still run,
// except the embedded NATS server's: the server starts and ends its own as
// it works, whatever Do does, so waiting for them to settle would be a
// guess at how long that takes.
func leftSince(before map[string]string) []string {
	var out []string
	for id, g := range goroutines() {
		if _, ok := before[id]; ok || strings.Contains(g, "github.com/nats-io/nats-server/") {
			continue
		}
		out = append(out, g)
	}
	return out
}
