package host_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/resilience"
)

// TestBlobFunctionStreamsAndRetriesFromTheStart: the function reads the
// blob through Open; a retry reads it again from its beginning.
func TestBlobFunctionStreamsAndRetriesFromTheStart(t *testing.T) {
	e := newBlobEnv(t)
	path, err := host.ParseBlobPath("uploads/{name}")
	require.NoError(t, err)
	content := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	want := sha256.Sum256([]byte(content))
	var attempts atomic.Int32
	done := make(chan [32]byte, 1)
	f := host.BlobFunction{Name: "digest", Trigger: host.BlobTrigger{Path: path},
		Retry: resilience.Retry{Strategy: resilience.FixedDelay, MaxRetryCount: 1},
		Handler: func(ctx context.Context, in host.BlobInput) error {
			rc, err := in.Open(ctx)
			if err != nil {
				return err
			}
			if attempts.Add(1) == 1 {
				// Read part of it, leave it open and fail: the host closes it.
				_, _ = io.CopyN(io.Discard, rc, 1000)
				return errors.New("first attempt fails midway")
			}
			defer rc.Close()
			h := sha256.New()
			buf := make([]byte, 4096) // a small buffer: read as a stream
			if _, err := io.CopyBuffer(h, rc, buf); err != nil {
				return err
			}
			var sum [32]byte
			copy(sum[:], h.Sum(nil))
			done <- sum
			return nil
		}}
	e.start(t, "one", f)
	e.put(t, "big.bin", content)
	got := receive(t, done, "the second attempt")
	require.Equal(t, want, got, "the retry read the whole blob from its beginning")
	require.Equal(t, int32(2), attempts.Load())
}

// TestBlobFunctionRunsBlobsConcurrently: up to Concurrency blobs run at
// once (never more), and two versions of one blob never run at once.
func TestBlobFunctionRunsBlobsConcurrently(t *testing.T) {
	e := newBlobEnv(t)
	path, err := host.ParseBlobPath("uploads/{name}")
	require.NoError(t, err)
	const limit = 3
	var mu sync.Mutex
	inFlight, most := 0, 0
	byName := map[string]int{}
	overlapped := false
	release := make(chan struct{})
	var ran atomic.Int32
	f := host.BlobFunction{Name: "slow", Trigger: host.BlobTrigger{Path: path, Concurrency: limit},
		Handler: func(ctx context.Context, in host.BlobInput) error {
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			byName[in.Info.Name]++
			if byName[in.Info.Name] > 1 {
				overlapped = true
			}
			mu.Unlock()
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			mu.Lock()
			inFlight--
			byName[in.Info.Name]--
			mu.Unlock()
			ran.Add(1)
			return nil
		}}
	e.start(t, "one", f)
	for i := range 6 {
		e.put(t, fmt.Sprintf("b%d", i), "x")
	}
	eventually(t, "three blobs in flight at once", func() bool { mu.Lock(); defer mu.Unlock(); return inFlight == limit })
	// A new version of a blob in flight waits for it.
	mu.Lock()
	var busy string
	for name, n := range byName {
		if n > 0 {
			busy = name
		}
	}
	mu.Unlock()
	e.put(t, busy, "y")
	close(release)
	eventually(t, "every blob and the new version", func() bool { return ran.Load() == 7 })
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, limit, most, "never more than the concurrency")
	require.False(t, overlapped, "two versions of one blob ran at once")
}

// receive waits for a value on ch.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	var v T
	eventually(t, what, func() bool {
		select {
		case v = <-ch:
			return true
		default:
			return false
		}
	})
	return v
}
