package sluice

// Internal tests: the crash test's child shortens onceClaimTTL, and the
// parent reads the key bucket directly.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

func onceQuiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startOnceApp starts an app with no declarations, stopped when the test ends.
func startOnceApp(t testing.TB, cfg Config) *App {
	t.Helper()
	cfg.DataDir = t.TempDir()
	if cfg.Logger == nil {
		cfg.Logger = onceQuiet()
	}
	app := New(cfg)
	require.NoError(t, app.Start(context.Background()))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	return app
}

func TestOnceNeedsRunningAppAndGoodInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var runs atomic.Int32
	work := func(context.Context) error { runs.Add(1); return nil }

	app := New(Config{DataDir: t.TempDir(), Logger: onceQuiet()})
	_, err := app.Once(ctx, "k", 0, work)
	require.ErrorIs(t, err, ErrNotStarted)
	require.NoError(t, app.Start(ctx))

	for _, tc := range []struct {
		key  string
		ttl  time.Duration
		want string
	}{
		{"", 0, "the key must not be empty"},
		{"k", -time.Minute, "ttl -1m0s must not be negative"},
		{"k", MaxOnceTTL + time.Hour, "is above the longest of 168h0m0s"},
	} {
		ran, err := app.Once(ctx, tc.key, tc.ttl, work)
		require.ErrorContains(t, err, tc.want)
		require.False(t, ran)
	}
	_, err = app.onceKV.Keys(ctx)
	require.ErrorIs(t, err, jetstream.ErrNoKeysFound, "bad input writes nothing")
	require.Zero(t, runs.Load())

	ran, err := app.Once(ctx, "k", MaxOnceTTL, work)
	require.NoError(t, err)
	require.True(t, ran)
	ran, err = app.Once(ctx, "k", MaxOnceTTL, work)
	require.NoError(t, err)
	require.False(t, ran)
	require.Equal(t, int32(1), runs.Load())

	require.NoError(t, app.Stop(ctx))
	_, err = app.Once(ctx, "k2", 0, work)
	require.ErrorIs(t, err, ErrNotStarted)
}

// Two instances sharing one NATS server, many duplicate callers of many
// keys at once: each key's work succeeds exactly once; a failed first run
// is taken up by a waiting duplicate; every caller returns cleanly.
func TestOnceTwoInstancesConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := startOnceApp(t, Config{NATSListen: "127.0.0.1:0", InstanceID: "a"})
	require.NotEmpty(t, a.NATSURL())
	b := startOnceApp(t, Config{NATSURL: a.NATSURL(), InstanceID: "b"})
	apps := []*App{a, b}

	const keys, callers = 30, 6
	var succeeded, attempts, ranTrue [keys]atomic.Int32
	var failedOnce [keys]atomic.Bool
	errFirst := errors.New("first run fails")
	var wg sync.WaitGroup
	errs := make(chan error, keys*callers)
	for i := range keys {
		for c := range callers {
			wg.Go(func() {
				ran, err := apps[c%2].Once(ctx, fmt.Sprintf("event/%d", i), time.Hour, func(context.Context) error {
					attempts[i].Add(1)
					time.Sleep(2 * time.Millisecond)
					if i%3 == 0 && failedOnce[i].CompareAndSwap(false, true) {
						return errFirst
					}
					succeeded[i].Add(1)
					return nil
				})
				if ran {
					ranTrue[i].Add(1)
				}
				if err != nil && !errors.Is(err, errFirst) {
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
		want := int32(1)
		if i%3 == 0 {
			want = 2 // the failed run, then one duplicate's
		}
		require.Equal(t, int32(1), succeeded[i].Load(), "key %d: successful runs", i)
		require.Equal(t, want, attempts[i].Load(), "key %d: runs", i)
		require.Equal(t, want, ranTrue[i].Load(), "key %d: callers told they ran it", i)
	}
}

const onceChildEnv = "SLUICE_ONCE_CRASH_CHILD"

type onceChildConfig struct {
	NATSURL string
	Key     string
	Keys    []string // a batch, for OnceBatch instead of Once
	DataDir string
}

// onceChildClaimTTL is the child's claim TTL: renewed every 500ms.
const onceChildClaimTTL = 1500 * time.Millisecond

// TestOnceCrashChild is the child of TestOnceRunsAgainAfterCrash and
// TestOnceBatchRunsAgainAfterCrash: an instance that claims the key (or the
// batch of keys), prints "claimed" and blocks inside the work until it is
// killed.
func TestOnceCrashChild(t *testing.T) {
	raw := os.Getenv(onceChildEnv)
	if raw == "" {
		t.Skip("only run as the child of TestOnceRunsAgainAfterCrash and TestOnceBatchRunsAgainAfterCrash")
	}
	var cfg onceChildConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	onceClaimTTL = onceChildClaimTTL
	ctx := context.Background()
	app := New(Config{DataDir: cfg.DataDir, NATSURL: cfg.NATSURL, InstanceID: "child", Logger: onceQuiet()})
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	block := func(context.Context) error {
		fmt.Println("claimed")
		select {} // until SIGKILL
	}
	if len(cfg.Keys) > 0 {
		ran, err := app.OnceBatch(ctx, cfg.Keys, 0, func(ctx context.Context, _ []int) error { return block(ctx) })
		t.Fatalf("OnceBatch returned (%v, %v) instead of blocking", ran, err)
	}
	ran, err := app.Once(ctx, cfg.Key, 0, block)
	t.Fatalf("Once returned (%v, %v) instead of blocking", ran, err)
}

// A process killed between claiming a key and completing the work leaves a
// claim; once it expires, the work runs again, exactly once, and not before.
func TestOnceRunsAgainAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := startOnceApp(t, Config{NATSListen: "127.0.0.1:0", InstanceID: "parent"})
	const key = "orders/0/42"

	killed := runOnceChildUntilClaimed(t, onceChildConfig{NATSURL: app.NATSURL(), Key: key, DataDir: t.TempDir()})

	// The dead child's claim is in the bucket.
	e, err := app.onceKV.Get(ctx, onceKeyOf(t, app, key))
	require.NoError(t, err)
	var rec struct{ State, Owner string }
	require.NoError(t, json.Unmarshal(e.Value(), &rec))
	require.Equal(t, "running", rec.State)
	require.Equal(t, "child", rec.Owner)

	// Duplicates arrive: one takes the expired claim over, the others wait
	// for it and skip.
	var runs atomic.Int32
	var started atomic.Int64
	type result struct {
		ran bool
		err error
	}
	results := make(chan result, 3)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for range cap(results) {
		go func() {
			ran, err := app.Once(wctx, key, 0, func(context.Context) error {
				started.Store(time.Now().UnixNano())
				runs.Add(1)
				return nil
			})
			results <- result{ran, err}
		}()
	}
	ranCount := 0
	for range cap(results) {
		r := <-results
		require.NoError(t, r.err)
		if r.ran {
			ranCount++
		}
	}
	require.Equal(t, 1, ranCount)
	require.Equal(t, int32(1), runs.Load(), "the work ran again exactly once")
	// The claim was renewed at most onceChildClaimTTL/3 before the kill,
	// so it had at least 2/3 of it left: the work must have waited.
	waited := time.Unix(0, started.Load()).Sub(killed)
	require.GreaterOrEqual(t, waited, onceChildClaimTTL/3, "the work ran again before the dead claim could have expired")
	t.Logf("the work ran again %v after the kill", waited.Round(time.Millisecond))

	ran, err := app.Once(ctx, key, 0, func(context.Context) error { return errors.New("must not run") })
	require.NoError(t, err)
	require.False(t, ran)
}

// runOnceChildUntilClaimed runs TestOnceCrashChild with cfg, kills it once
// it has claimed its keys, and returns when it killed it.
func runOnceChildUntilClaimed(t *testing.T, cfg onceChildConfig) (killed time.Time) {
	t.Helper()
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestOnceCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), onceChildEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var out []string
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the child exited before claiming the key: %q", out)
			}
			if line == "claimed" {
				break wait
			}
			out = append(out, line)
		case <-time.After(60 * time.Second):
			t.Fatalf("the child did not claim the key within 60s: %q", out)
		}
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait() // the kill closes the pipe, and the reader ends
	for range lines {
	}
	return time.Now()
}

// onceKeyOf finds the KV key the bucket holds for key: the only one.
func onceKeyOf(t *testing.T, app *App, key string) string {
	t.Helper()
	ks, err := app.onceKV.Keys(context.Background())
	require.NoError(t, err)
	require.Len(t, ks, 1, "the bucket holds the one key %q", key)
	return ks[0]
}
