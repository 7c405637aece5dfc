package sluice_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func TestBlobFunctionAndRedrive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.BlobContainer("uploads")
	var mu sync.Mutex
	seen := map[string][]string{} // name -> contents, in order
	var failBad atomic.Bool
	failBad.Store(true)
	app.BlobFunction("parse", sluice.BlobTrigger{Path: "uploads/in/{name}.csv"}, func(ctx context.Context, b sluice.Blob) error {
		if b.Params["name"] == "bad" && failBad.Load() {
			return errors.New("row 3: not a number")
		}
		data, err := b.ReadAll(ctx)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		seen[b.Params["name"]] = append(seen[b.Params["name"]], string(data))
		return nil
	})
	require.NoError(t, app.Start(ctx))
	defer app.Stop(ctx)
	for name, content := range map[string]string{"in/a.csv": "1,2", "in/bad.csv": "x", "in/b.txt": "skip"} {
		_, err := app.Blobs().Put(ctx, "uploads", name, []byte(content), "text/csv")
		require.NoError(t, err)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			require.True(t, time.Now().Before(deadline), "timed out waiting for %s", what)
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("a", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen["a"]) == 1 })
	var letters []sluice.DeadLetterRecord
	wait("the bad blob's dead letter", func() bool {
		var err error
		letters, err = app.DeadLetters(ctx, sluice.DeadLetterFilter{Function: "parse"}, 10)
		require.NoError(t, err)
		return len(letters) == 1
	})
	require.Equal(t, "blob", letters[0].Source.Kind)
	require.Equal(t, "in/bad.csv", letters[0].Source.Blob)
	require.True(t, strings.Contains(letters[0].Reason, "not a number"))

	// Fixed: the redrive writes the blob again, and it runs.
	failBad.Store(false)
	n, err := app.Redrive(ctx, sluice.DeadLetterFilter{Function: "parse"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	wait("the redriven blob", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen["bad"]) == 1 })
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"1,2"}, seen["a"], "a ran once")
	require.NotContains(t, seen, "b", "b.txt is not on the path")
}

func TestBlobFunctionBadPath(t *testing.T) {
	t.Parallel()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.BlobFunction("f", sluice.BlobTrigger{Path: "Uploads/{name}"}, func(context.Context, sluice.Blob) error { return nil })
	require.ErrorContains(t, app.Start(context.Background()), "blob function f")
}
