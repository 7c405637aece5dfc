package sluice_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// memSource is a read strategy of the tests: it hands over the batches it
// is given, each at position "p<n>", skipping those at or before after,
// and records where each Run started.
type memSource struct {
	mu      sync.Mutex
	batches []pipeline.Batch
	more    chan struct{}
	starts  []string
}

func newMemSource() *memSource { return &memSource{more: make(chan struct{}, 1)} }

func (s *memSource) add(changes ...pipeline.Change) {
	s.mu.Lock()
	pos := fmt.Sprintf("p%06d", len(s.batches)+1)
	for i := range changes {
		changes[i].Position = pos
	}
	s.batches = append(s.batches, pipeline.Batch{Changes: changes, Position: pos,
		Tables: map[string]pipeline.Table{"public.orders": {Name: "public.orders", Columns: []pipeline.Column{{Name: "id", Type: "int8", Key: true}, {Name: "total", Type: "numeric"}}}}})
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
}

func (s *memSource) Run(ctx context.Context, after string, emit pipeline.Emit) error {
	s.mu.Lock()
	s.starts = append(s.starts, after)
	s.mu.Unlock()
	next := 0
	for {
		s.mu.Lock()
		for next < len(s.batches) && s.batches[next].Position <= after {
			next++
		}
		var b *pipeline.Batch
		if next < len(s.batches) {
			b = &s.batches[next]
		}
		s.mu.Unlock()
		if b == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.more:
				continue
			}
		}
		if err := emit(ctx, *b); err != nil {
			return err
		}
		after = b.Position
		next++
	}
}

// memSink applies change sets to a model of the table, can be down, and
// refuses rows whose total is "bad".
type memSink struct {
	mu      sync.Mutex
	rows    map[string]string // id → total
	applied []int64           // change sets, in the order applied
	down    bool
	fails   int
}

func (s *memSink) Apply(_ context.Context, cs pipeline.ChangeSet, changes []pipeline.Change) ([]pipeline.Rejected, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.fails++
		return nil, errors.New("destination down")
	}
	if n := len(s.applied); n > 0 && cs.Seq <= s.applied[n-1] {
		return nil, nil // applied before
	}
	var rejected []pipeline.Rejected
	for _, c := range changes {
		id := fmt.Sprint(c.Key["id"])
		switch {
		case c.Op == pipeline.Delete:
			delete(s.rows, id)
		case c.After["total"] == "bad":
			rejected = append(rejected, pipeline.Rejected{Change: c, Reason: "total is not a number"})
		default:
			s.rows[id] = fmt.Sprint(c.After["total"])
		}
	}
	s.applied = append(s.applied, cs.Seq)
	return rejected, nil
}

func (s *memSink) snapshot() (map[string]string, []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := make(map[string]string, len(s.rows))
	for k, v := range s.rows {
		rows[k] = v
	}
	return rows, append([]int64(nil), s.applied...)
}

func upsert(id int, total string) pipeline.Change {
	k := strconv.Itoa(id)
	return pipeline.Change{Op: pipeline.Update, Table: "public.orders", Key: pipeline.Row{"id": k}, After: pipeline.Row{"id": k, "total": total}}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("%s: not before the test's deadline", what)
		}
	}
}

// A pipeline stages its source's batches as change sets; each destination
// applies them in order, at its own pace: one that is down catches up
// alone once it is back, the others go on meanwhile; refused rows are dead
// letters; a restarted instance resumes the source after the last change
// set staged.
func TestPipelineStagesAndDestinationsApplyInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	src := newMemSource()
	fast, slow := &memSink{rows: map[string]string{}}, &memSink{rows: map[string]string{}, down: true}
	start := func() *sluice.App {
		app := sluice.New(sluice.Config{DataDir: dir, Logger: quiet()})
		app.Pipeline("orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{
			sluice.SinkDestination("fast", fast), sluice.SinkDestination("slow", slow)}}, src))
		require.NoError(t, app.Start(ctx))
		return app
	}
	app := start()
	want := map[string]string{}
	for i := range 30 {
		c := upsert(i%7, fmt.Sprint(i))
		want[fmt.Sprint(i%7)] = fmt.Sprint(i)
		if i%5 == 4 {
			src.add(c, pipeline.Change{Op: pipeline.Delete, Table: "public.orders", Key: pipeline.Row{"id": "3"}})
			delete(want, "3")
			continue
		}
		src.add(c)
	}
	src.add(upsert(100, "bad"), upsert(101, "5"))
	want["101"] = "5"
	waitUntil(t, "the fast destination applies every change set", func() bool {
		_, applied := fast.snapshot()
		return len(applied) == 31
	})
	rows, applied := fast.snapshot()
	require.Equal(t, want, rows)
	for i, seq := range applied {
		require.EqualValues(t, i+1, seq, "change sets in order")
	}
	_, none := slow.snapshot()
	require.Empty(t, none, "the slow destination is down")

	var dls []sluice.DeadLetterRecord
	waitUntil(t, "the refused row is a dead letter", func() bool {
		var err error
		dls, err = app.DeadLetters(ctx, sluice.DeadLetterFilter{}, 10)
		require.NoError(t, err)
		return len(dls) > 0
	})
	require.Len(t, dls, 1)
	require.Equal(t, "pipeline", dls[0].Source.Kind)
	require.Equal(t, "fast", dls[0].Source.Group)
	require.EqualValues(t, 31, dls[0].Source.ChangeSet)
	require.Equal(t, "p000031", dls[0].Source.Position)
	require.Equal(t, "total is not a number", dls[0].Reason)
	require.Contains(t, string(dls[0].Body), `"total":"bad"`)

	// The slow one comes back and catches up by itself, in order.
	slow.mu.Lock()
	slow.down = false
	slow.mu.Unlock()
	waitUntil(t, "the slow destination catches up", func() bool {
		_, applied := slow.snapshot()
		return len(applied) == 31
	})
	rows, applied = slow.snapshot()
	require.Equal(t, want, rows)
	for i, seq := range applied {
		require.EqualValues(t, i+1, seq, "change sets in order")
	}

	// Restarted, the source resumes after the last change set staged.
	require.NoError(t, app.Stop(ctx))
	app = start()
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	src.add(upsert(200, "7"))
	want["200"] = "7"
	waitUntil(t, "the change set after the restart", func() bool {
		_, applied := fast.snapshot()
		return len(applied) == 32
	})
	rows, applied = fast.snapshot()
	require.Equal(t, want, rows)
	require.EqualValues(t, 32, applied[31], "numbering goes on")
	src.mu.Lock()
	require.Equal(t, []string{"", "p000031"}, src.starts)
	src.mu.Unlock()
}

// Reset moves the model's position back, as an SQL destination's is.
func (s *memSink) Reset(_ context.Context, seq int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.applied) > 0 && s.applied[len(s.applied)-1] > seq {
		s.applied = s.applied[:len(s.applied)-1]
	}
	return nil
}

// A replay moves one destination back: it applies the change sets again
// from there and ends equal; the other destination is untouched. Pause
// holds a destination where it is; status tells where each one is.
func TestPipelineReplayPauseAndStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newMemSource()
	a, b := &memSink{rows: map[string]string{}}, &memSink{rows: map[string]string{}}
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Pipeline("orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{
		sluice.SinkDestination("a", a), sluice.SinkDestination("b", b)}}, src))
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	for i := range 20 {
		src.add(upsert(i%4, fmt.Sprint(i)))
	}
	applied := func(s *memSink, n int) func() bool {
		return func() bool { _, got := s.snapshot(); return len(got) == n }
	}
	waitUntil(t, "both apply everything", func() bool { return applied(a, 20)() && applied(b, 20)() })
	want, _ := a.snapshot()

	// Replay a from change set 8: it applies 8 to 20 again; b does not.
	from, err := app.ReplayPipeline(ctx, "orders", "a", sluice.PipelineReplay{ChangeSet: 8, Grace: time.Millisecond})
	require.NoError(t, err)
	require.EqualValues(t, 8, from)
	waitUntil(t, "a applies the change sets again", applied(a, 20))
	rows, seqs := a.snapshot()
	require.Equal(t, want, rows)
	require.EqualValues(t, 20, seqs[19])
	_, bseqs := b.snapshot()
	require.Len(t, bseqs, 20, "b is untouched")

	// Pause b: it keeps its place while a goes on; resumed, it catches up.
	require.NoError(t, app.PausePipeline(ctx, "orders", "b", "maintenance"))
	var st sluice.PipelineStatus
	waitUntil(t, "the pause shows", func() bool {
		st, err = app.PipelineStatus(ctx, "orders")
		require.NoError(t, err)
		return st.Destinations[1].Paused
	})
	require.Equal(t, "maintenance", st.Destinations[1].Reason)
	require.True(t, st.Reading)
	require.EqualValues(t, 20, st.Staged)
	src.add(upsert(50, "x"))
	waitUntil(t, "a applies the new change set", applied(a, 21))
	st, err = app.PipelineStatus(ctx, "orders")
	require.NoError(t, err)
	require.EqualValues(t, 21, st.Destinations[0].Applied)
	require.EqualValues(t, 20, st.Destinations[1].Applied)
	require.EqualValues(t, 1, st.Destinations[1].Behind)
	require.Equal(t, "closed", st.Destinations[0].Breaker)
	require.NoError(t, app.ResumePipeline(ctx, "orders", "b"))
	waitUntil(t, "b catches up", applied(b, 21))

	// Replay by time: from the first change set staged at or after it.
	_, err = app.ReplayPipeline(ctx, "orders", "b", sluice.PipelineReplay{Time: time.Now().Add(-time.Hour), Grace: time.Millisecond})
	require.NoError(t, err)
	waitUntil(t, "b applies everything again", applied(b, 21))

	// Mistakes get clear errors.
	_, err = app.ReplayPipeline(ctx, "orders", "c", sluice.PipelineReplay{ChangeSet: 1})
	require.ErrorContains(t, err, `no destination "c"`)
	_, err = app.ReplayPipeline(ctx, "orders", "a", sluice.PipelineReplay{ChangeSet: 99})
	require.ErrorContains(t, err, "change set 99 is not in the change log")
	_, err = app.ReplayPipeline(ctx, "nope", "a", sluice.PipelineReplay{ChangeSet: 1})
	require.ErrorContains(t, err, "neither declared")
	_, err = app.ReplayPipeline(ctx, "orders", "a", sluice.PipelineReplay{})
	require.ErrorContains(t, err, "give a time or a change set")
}

// Bad declarations are refused at Start with the reason.
func TestPipelineBadDeclarations(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  sluice.PipelineConfig
		says string
	}{
		{"Orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{{Name: "a", Hub: "h"}}}, newMemSource()), "lowercase"},
		{"orders", sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{{Name: "a", Hub: "h"}}}, "give its source"},
		{"orders", sluice.WithPipelineSource(sluice.PipelineConfig{}, newMemSource()), "at least one destination"},
		{"orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{{Name: "a"}}}, newMemSource()), "exactly one of"},
		{"orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{{Name: "a", Hub: "h"}, {Name: "a", Container: "c"}}}, newMemSource()), "named twice"},
		{"orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{{Name: "a", Hub: "pipeline-orders"}}}, newMemSource()), "own change log"},
	} {
		app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
		app.Pipeline(c.name, c.cfg)
		err := app.Start(context.Background())
		require.ErrorContains(t, err, c.says)
		_ = app.Stop(context.Background())
	}
}

// The pipelines' API: status, replay, pause and resume, with clear errors.
func TestPipelineAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newMemSource()
	a := &memSink{rows: map[string]string{}}
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet()})
	app.Pipeline("orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{sluice.SinkDestination("a", a)}}, src))
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	for i := range 5 {
		src.add(upsert(i, "1"))
	}
	waitUntil(t, "applied", func() bool { _, s := a.snapshot(); return len(s) == 5 })
	api := app.URL() + "/api/v1/pipelines"
	js := "application/json"

	code, out := send(t, "GET", api, "", "", nil, nil)
	require.Equal(t, http.StatusOK, code, out)
	list := out["pipelines"].([]any)
	require.Len(t, list, 1)
	require.EqualValues(t, 5, list[0].(map[string]any)["staged"])

	code, out = send(t, "POST", api+"/orders/destinations/a/replay", "", js, strings.NewReader(`{"change_set": 2, "grace": "1ms"}`), nil)
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, 2, out["from"])
	waitUntil(t, "applied again", func() bool { _, s := a.snapshot(); return len(s) == 5 })

	code, out = send(t, "POST", api+"/orders/destinations/a/pause", "", js, strings.NewReader(`{"reason": "db upgrade"}`), nil)
	require.Equal(t, http.StatusOK, code, out)
	dest := out["destinations"].([]any)[0].(map[string]any)
	require.Equal(t, true, dest["paused"])
	require.Equal(t, "db upgrade", dest["reason"])
	code, out = send(t, "POST", api+"/orders/destinations/a/resume", "", js, strings.NewReader(`{}`), nil)
	require.Equal(t, http.StatusOK, code, out)
	require.Nil(t, out["destinations"].([]any)[0].(map[string]any)["paused"])

	for _, c := range []struct {
		method, path, body string
		want               int
		says               string
	}{
		{"GET", "/nope", "", 404, "neither declared"},
		{"POST", "/orders/destinations/zz/replay", `{"change_set": 1}`, 404, `no destination "zz"`},
		{"POST", "/orders/destinations/a/replay", `{}`, 400, "exactly one"},
		{"POST", "/orders/destinations/a/replay", `{"time": "yesterday"}`, 400, "RFC 3339"},
		{"POST", "/orders/destinations/a/replay", `{"change_set": 1, "grace": "1h"}`, 400, "up to 5m"},
		{"POST", "/orders/destinations/a/replay", `{"change_set": 77}`, 400, "not in the change log"},
	} {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		code, out := send(t, c.method, api+c.path, "", js, body, nil)
		require.Equal(t, c.want, code, "%s %s: %v", c.method, c.path, out)
		require.Contains(t, out["error"], c.says)
	}
}

// A container's change feed as the source, a container and a hub as
// destinations: the destination container ends equal to the source's
// documents, deletes included.
func TestPipelineFromContainerFeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Container(sluice.ContainerConfig{Name: "orders", PartitionKeyPath: "/id"})
	app.Container(sluice.ContainerConfig{Name: "orders-copy", PartitionKeyPath: "/id"})
	app.Hub(sluice.HubConfig{Name: "order-changes", Partitions: 2})
	app.Pipeline("copy", sluice.PipelineConfig{Container: "orders", BatchSize: 7, Destinations: []sluice.PipelineDestination{
		{Name: "copy", Container: "orders-copy"}, {Name: "events", Hub: "order-changes"}}})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	docs := app.Docs()
	for i := range 40 {
		_, err := docs.Upsert(ctx, "orders", map[string]any{"id": fmt.Sprint("o-", i%15), "n": i, "lines": []any{map[string]any{"sku": "A"}}})
		require.NoError(t, err)
	}
	for i := range 5 {
		require.NoError(t, docs.Delete(ctx, "orders", fmt.Sprint("o-", i), fmt.Sprint("o-", i), ""))
	}
	waitUntil(t, "the copy has the 10 documents left, each at its last version", func() bool {
		page, err := docs.Query(ctx, "orders-copy", sluice.QueryRequest{Text: "SELECT * FROM c"})
		require.NoError(t, err)
		if len(page.Documents) != 10 {
			return false
		}
		for _, d := range page.Documents {
			var body struct {
				ID string
				N  int
			}
			require.NoError(t, json.Unmarshal(d.Body, &body))
			want := 0
			for i := range 40 {
				if fmt.Sprint("o-", i%15) == body.ID {
					want = i
				}
			}
			if body.N != want {
				return false
			}
		}
		return true
	})
	// The feed gives each document's latest version (earlier ones may be
	// gone when it is read): at least one event per document, 5 deletes.
	waitUntil(t, "the hub destination applies every change set", func() bool {
		st, err := app.PipelineStatus(ctx, "copy")
		require.NoError(t, err)
		return st.Destinations[1].Applied == st.Staged && st.Destinations[1].Behind == 0
	})
	lag, err := app.Lag(ctx, "order-changes", "")
	require.NoError(t, err)
	require.GreaterOrEqual(t, lag, int64(20))
	st, err := app.PipelineStatus(ctx, "copy")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(st.Position, "lsn:"), st.Position)
}
