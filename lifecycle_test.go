package sluice_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// signalHandler closes ch when a record with message msg is logged.
type signalHandler struct {
	msg  string
	ch   chan struct{}
	once *sync.Once
}

func newSignalHandler(msg string) signalHandler {
	return signalHandler{msg: msg, ch: make(chan struct{}), once: &sync.Once{}}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.ch) })
	}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestReadyzDuringStop: /readyz answers 503 as soon as Stop begins, while
// a function still holds the stop open and the HTTP server still serves.
func TestReadyzDuringStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stopping := newSignalHandler("sluice stopping")
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: slog.New(stopping)})
	app.Hub(sluice.HubConfig{Name: "h", Partitions: 1})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	app.Function("hold", sluice.HubTrigger{Hub: "h"}, func(ctx context.Context, _ []sluice.Event) error {
		once.Do(func() { close(entered) })
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	require.NoError(t, app.Start(ctx))
	readyz := app.URL() + "/readyz"
	require.Equal(t, http.StatusOK, status(t, readyz), "ready once Start has returned")

	_, err := app.Publish(ctx, "h", sluice.Event{Body: []byte("x")})
	require.NoError(t, err)
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- app.Stop(ctx) }()
	<-stopping.ch
	require.Equal(t, http.StatusServiceUnavailable, status(t, readyz), "not ready while stopping")
	close(release)
	require.NoError(t, <-stopped)
	require.NoError(t, app.Stop(ctx), "Stop twice is safe")
}

func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	require.NoError(t, app.Stop(ctx))
	require.NoError(t, app.Stop(ctx))
	require.ErrorContains(t, app.Start(ctx), "stopped", "a stopped app does not start")
}

// TestStopReturnsWhatFailed: a part that cannot stop cleanly within Stop's
// context is reported, and the parts after it are stopped all the same.
func TestStopReturnsWhatFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	app := sluice.New(sluice.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Logger: quiet()})
	entered, release := make(chan struct{}), make(chan struct{})
	app.HTTPFunction("slow", sluice.HTTPTrigger{AuthLevel: "anonymous"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}))
	require.NoError(t, app.Start(ctx))
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		if resp, err := http.Get(app.URL() + "/api/slow"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err := app.Stop(cancelled)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "sluice: stop HTTP server")
	close(release)
	<-answered
	require.Equal(t, err, app.Stop(ctx), "a second Stop returns the first one's errors")

	// Everything after the HTTP server stopped: the data directory is free.
	again := sluice.New(sluice.Config{DataDir: dir, Logger: quiet()})
	require.NoError(t, again.Start(ctx))
	require.NoError(t, again.Stop(ctx))
}
