package sluice_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// backfillSource is a memSource whose table can be read again: Backfill
// hands over its rows (all, or "even" ids only), two per batch, once gate
// lets it.
type backfillSource struct {
	*memSource
	mu    sync.Mutex
	rows  map[int]string
	gate  chan struct{}
	calls int
}

func (s *backfillSource) Backfill(ctx context.Context, req pipeline.BackfillRequest, emit pipeline.Emit, progress func(int64)) (int64, error) {
	s.mu.Lock()
	s.calls++
	ids := make([]int, 0, len(s.rows))
	for id := range s.rows {
		if req.Where == "" || (req.Where == "even" && id%2 == 0) {
			ids = append(ids, id)
		}
	}
	rows := make(map[int]string, len(s.rows))
	for id, v := range s.rows {
		rows[id] = v
	}
	s.mu.Unlock()
	if req.Table != "public.orders" {
		return 0, fmt.Errorf("no table %s (the source has public.orders)", req.Table)
	}
	select {
	case <-s.gate:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	slices.Sort(ids)
	var n int64
	for start := 0; start < len(ids); start += 2 {
		var cs []pipeline.Change
		for _, id := range ids[start:min(start+2, len(ids))] {
			k := strconv.Itoa(id)
			cs = append(cs, pipeline.Change{Op: pipeline.Read, Table: "public.orders", Key: pipeline.Row{"id": k}, After: pipeline.Row{"id": k, "total": rows[id]}})
		}
		if err := emit(ctx, pipeline.Batch{Changes: cs, Snapshot: true,
			Tables: map[string]pipeline.Table{"public.orders": {Name: "public.orders", Columns: []pipeline.Column{{Name: "id", Type: "int8", Key: true}, {Name: "total", Type: "numeric"}}}}}); err != nil {
			return n, err
		}
		n += int64(len(cs))
		progress(n)
	}
	return n, nil
}

// A backfill stages a table's rows again among the stream's change sets:
// a destination whose rows were lost gets them back, the stream goes on,
// and the source resumes from where it was. One backfill at a time; a
// source that cannot backfill is a 400.
func TestPipelineBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := &backfillSource{memSource: newMemSource(), rows: map[int]string{}, gate: make(chan struct{})}
	dst := &memSink{rows: map[string]string{}}
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet()})
	app.Pipeline("orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{
		sluice.SinkDestination("copy", dst)}}, src))
	app.Container(sluice.ContainerConfig{Name: "devices", PartitionKeyPath: "/id"})
	app.Hub(sluice.HubConfig{Name: "device-changes", Partitions: 1})
	app.Pipeline("devices", sluice.PipelineConfig{Container: "devices", Destinations: []sluice.PipelineDestination{{Name: "events", Hub: "device-changes"}}})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	for i := range 9 {
		src.mu.Lock()
		src.rows[i] = fmt.Sprint(i * 10)
		src.mu.Unlock()
		src.add(upsert(i, fmt.Sprint(i*10)))
	}
	waitUntil(t, "the stream's rows applied", func() bool { rows, _ := dst.snapshot(); return len(rows) == 9 })
	dst.mu.Lock()
	clear(dst.rows) // the destination lost its rows
	dst.mu.Unlock()

	bf, err := app.BackfillPipeline(ctx, "orders", pipeline.BackfillRequest{Table: "public.orders", Where: "even"})
	require.NoError(t, err)
	require.Equal(t, "pending", bf.State)
	waitUntil(t, "the backfill runs", func() bool {
		st, err := app.PipelineStatus(ctx, "orders")
		require.NoError(t, err)
		return st.Backfill != nil && st.Backfill.State == "running"
	})
	_, err = app.BackfillPipeline(ctx, "orders", pipeline.BackfillRequest{Table: "public.orders"})
	require.ErrorContains(t, err, "wait until it ends")
	src.add(upsert(20, "200")) // the stream goes on meanwhile
	close(src.gate)
	var st sluice.PipelineStatus
	waitUntil(t, "the backfill is done", func() bool {
		st, err = app.PipelineStatus(ctx, "orders")
		require.NoError(t, err)
		return st.Backfill.State == "done"
	})
	require.EqualValues(t, 5, st.Backfill.Rows)
	waitUntil(t, "the even rows are back, and the stream's new one", func() bool {
		rows, _ := dst.snapshot()
		return len(rows) == 6
	})
	rows, _ := dst.snapshot()
	require.Equal(t, map[string]string{"0": "0", "2": "20", "4": "40", "6": "60", "8": "80", "20": "200"}, rows)
	src.mu.Lock()
	starts := slices.Clone(src.starts)
	src.mu.Unlock()
	require.Len(t, starts, 1, "the stream was not restarted by the backfill")

	// A failing backfill says why; the next one can run.
	_, err = app.BackfillPipeline(ctx, "orders", pipeline.BackfillRequest{Table: "public.nope"})
	require.NoError(t, err)
	waitUntil(t, "the backfill fails", func() bool {
		st, err = app.PipelineStatus(ctx, "orders")
		require.NoError(t, err)
		return st.Backfill.State == "failed"
	})
	require.Contains(t, st.Backfill.Error, "no table public.nope")

	api := app.URL() + "/api/v1/pipelines"
	for _, c := range []struct {
		path, body string
		want       int
		says       string
	}{
		{"/devices/backfill", `{"table": "devices"}`, 400, "cannot backfill"},
		{"/orders/backfill", `{"where": "even"}`, 400, `"table"`},
		{"/nope/backfill", `{"table": "t"}`, 404, "neither declared"},
		{"/orders/backfill", `{"table": "public.orders", "where": "even"}`, 202, ""},
	} {
		code, out := send(t, "POST", api+c.path, "", "application/json", strings.NewReader(c.body), nil)
		require.Equal(t, c.want, code, "%s: %v", c.path, out)
		if c.says != "" {
			require.Contains(t, out["error"], c.says)
		}
	}
	waitUntil(t, "the API's backfill is done", func() bool {
		st, err = app.PipelineStatus(ctx, "orders")
		require.NoError(t, err)
		return st.Backfill.State == "done"
	})
}

// Staged change sets whose events left the change log (its retention)
// are deleted; those it still holds stay.
func TestPipelinePrunesStagedChangeSets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newMemSource()
	dst := &memSink{rows: map[string]string{}}
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", Logger: quiet()})
	app.Pipeline("orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{
		sluice.SinkDestination("copy", dst)}}, src))
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	for i := range 6 {
		src.add(upsert(i, "1"))
	}
	waitUntil(t, "6 change sets applied", func() bool { _, a := dst.snapshot(); return len(a) == 6 })
	n, err := app.PruneStaged(ctx, "orders")
	require.NoError(t, err)
	require.Zero(t, n, "the log holds every change set")

	// The retention drops the first three change sets' events.
	nc, err := nats.Connect(app.NATSURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	stream, err := js.Stream(ctx, hub.StreamName(sluice.PipelineHub("orders"), 0))
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 6, info.State.Msgs, "a record per change set")
	require.NoError(t, stream.Purge(ctx, jetstream.WithPurgeSequence(info.State.FirstSeq+3)))

	n, err = app.PruneStaged(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, 3, n)
	list, err := app.Blobs().List(ctx, sluice.PipelineHub("orders"), "changes/")
	require.NoError(t, err)
	var names []string
	for _, b := range list {
		names = append(names, b.Name)
	}
	require.Equal(t, []string{pipeline.BlobName(4), pipeline.BlobName(5), pipeline.BlobName(6)}, names)
}
