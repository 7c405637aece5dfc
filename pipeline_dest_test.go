package sluice_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/pipeline"
)

// dedupReceiver is an HTTP destination's receiver: it keeps each POST's
// changes once per Idempotency-Key, can fail the next requests, and
// refuses rows whose total is "bad" with 422.
type dedupReceiver struct {
	mu      sync.Mutex
	keys    map[string]bool
	rows    map[string]string // id → total
	fail    int               // answer 503 to this many requests
	posts   int
	secrets []string // Authorization headers seen
}

func (r *dedupReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	r.secrets = append(r.secrets, req.Header.Get("Authorization"))
	if r.fail > 0 {
		r.fail--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	var body struct {
		ChangeSet int64             `json:"change_set"`
		Changes   []pipeline.Change `json:"changes"`
	}
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, c := range body.Changes {
		if c.After["total"] == "bad" {
			http.Error(w, "total is not a number", http.StatusUnprocessableEntity)
			return
		}
	}
	key := req.Header.Get("Idempotency-Key")
	if r.keys[key] {
		return
	}
	r.keys[key] = true
	for _, c := range body.Changes {
		id := fmt.Sprint(c.Key["id"])
		if c.Op == pipeline.Delete {
			delete(r.rows, id)
			continue
		}
		r.rows[id] = fmt.Sprint(c.After["total"])
	}
}

func (r *dedupReceiver) snapshot() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.rows))
	for k, v := range r.rows {
		out[k] = v
	}
	return out
}

// An HTTP destination and a files destination: the receiver ends with
// every row once (a failed request and a replay send again with the same
// idempotency keys), a batch it refuses is dead-lettered; the files hold
// each change set's changes as NDJSON and CSV.
func TestPipelineHTTPAndFilesDestinations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recv := &dedupReceiver{keys: map[string]bool{}, rows: map[string]string{}, fail: 2}
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	src := newMemSource()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	fast := func(d sluice.PipelineDestination) sluice.PipelineDestination {
		d.RetryBackoff, d.MaxRetryBackoff = 10*1e6, 50*1e6
		return d
	}
	app.Pipeline("orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{
		fast(sluice.PipelineDestination{Name: "service", HTTP: &sluice.HTTPDestination{URL: srv.URL + "/changes", BatchSize: 3,
			Headers: map[string]string{"Authorization": "Bearer s3cret-token"}}}),
		fast(sluice.PipelineDestination{Name: "lake", Files: &sluice.FilesDestination{Container: "lake", Prefix: "orders/"}}),
		fast(sluice.PipelineDestination{Name: "sheets", Files: &sluice.FilesDestination{Container: "lake", Prefix: "csv/", Format: "csv"}}),
	}}, src))
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })

	want := map[string]string{}
	for i := range 20 {
		var cs []pipeline.Change
		for j := range 4 {
			id := (i*4 + j) % 13
			cs = append(cs, upsert(id, fmt.Sprint(i*4+j)))
			want[fmt.Sprint(id)] = fmt.Sprint(i*4 + j)
		}
		src.add(cs...)
	}
	src.add(pipeline.Change{Op: pipeline.Delete, Table: "public.orders", Key: pipeline.Row{"id": "5"}})
	delete(want, "5")
	src.add(upsert(100, "bad"))
	waitUntil(t, "every destination applies the 22 change sets", func() bool {
		st, err := app.PipelineStatus(ctx, "orders")
		require.NoError(t, err)
		for _, d := range st.Destinations {
			if d.Applied != 22 || d.Behind != 0 {
				return false
			}
		}
		return true
	})
	require.Equal(t, want, recv.snapshot())
	dls, err := app.DeadLetters(ctx, sluice.DeadLetterFilter{}, 10)
	require.NoError(t, err)
	require.Len(t, dls, 1, "the batch the receiver refused")
	require.Equal(t, "service", dls[0].Source.Group)
	require.Contains(t, dls[0].Reason, "422")
	require.NotContains(t, dls[0].Reason, "s3cret")

	// Replayed from the start: sent again with the same keys, nothing
	// applied twice; the files are written again with the same bytes.
	files, _, err := app.Blobs().Get(ctx, "lake", "orders/public.orders/00000000000000000021.ndjson")
	require.NoError(t, err)
	posts := func() int { recv.mu.Lock(); defer recv.mu.Unlock(); return recv.posts }
	before := posts()
	_, err = app.ReplayPipeline(ctx, "orders", "service", sluice.PipelineReplay{ChangeSet: 1})
	require.NoError(t, err)
	_, err = app.ReplayPipeline(ctx, "orders", "lake", sluice.PipelineReplay{ChangeSet: 1})
	require.NoError(t, err)
	waitUntil(t, "the replay sends the change sets again", func() bool { return posts() >= before+20 })
	waitUntil(t, "both are applied again", func() bool {
		st, err := app.PipelineStatus(ctx, "orders")
		require.NoError(t, err)
		return st.Destinations[0].Applied == 22 && st.Destinations[1].Applied == 22
	})
	require.Equal(t, want, recv.snapshot(), "nothing applied twice")
	again, _, err := app.Blobs().Get(ctx, "lake", "orders/public.orders/00000000000000000021.ndjson")
	require.NoError(t, err)
	require.Equal(t, files, again)
	var lines []pipeline.Change
	sc := bufio.NewScanner(bytes.NewReader(files))
	for sc.Scan() {
		var c pipeline.Change
		require.NoError(t, json.Unmarshal(sc.Bytes(), &c))
		lines = append(lines, c)
	}
	require.Len(t, lines, 1)
	require.Equal(t, pipeline.Delete, lines[0].Op)

	list, err := app.Blobs().List(ctx, "lake", "csv/public.orders/")
	require.NoError(t, err)
	require.Len(t, list, 22, "a CSV file per change set")
	first, _, err := app.Blobs().Get(ctx, "lake", "csv/public.orders/00000000000000000001.csv")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(first), "_op,_position,_commit_time,id,total\n"), string(first))
	recv.mu.Lock()
	for _, s := range recv.secrets {
		require.Equal(t, "Bearer s3cret-token", s)
	}
	recv.mu.Unlock()
}

// A destination's transform: its filter keeps the orders under 50 (an
// order updated past it is deleted from the destination), a computed
// column doubles the total, and a row the expression fails on is
// dead-lettered; another destination gets the rows as they are.
func TestPipelineDestinationTransform(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newMemSource()
	small, all := &memSink{rows: map[string]string{}}, &memSink{rows: map[string]string{}}
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	smallDest := sluice.SinkDestination("small", small)
	smallDest.Transform = map[string]sluice.TableTransform{"*": {
		Filter:  `(.total | tonumber) < 50`,
		Compute: map[string]sluice.ComputedColumn{"total": {Expr: `(.total | tonumber) * 2 | tostring`, Type: "numeric"}},
	}}
	app.Pipeline("orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{
		smallDest, sluice.SinkDestination("all", all)}}, src))
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })

	src.add(upsert(1, "10"), upsert(2, "60"), upsert(3, "20"))
	src.add(upsert(3, "70"), upsert(2, "5"))           // 3 leaves the range, 2 enters it
	src.add(upsert(4, "not a number"), upsert(5, "1")) // 4: the filter fails on it
	waitUntil(t, "both apply the 3 change sets", func() bool {
		_, a := small.snapshot()
		_, b := all.snapshot()
		return len(a) == 3 && len(b) == 3
	})
	rows, _ := small.snapshot()
	require.Equal(t, map[string]string{"1": "20", "2": "10", "5": "2"}, rows)
	rows, _ = all.snapshot()
	require.Equal(t, map[string]string{"1": "10", "2": "5", "3": "70", "4": "not a number", "5": "1"}, rows)
	var dls []sluice.DeadLetterRecord
	waitUntil(t, "the row the filter failed on is a dead letter", func() bool {
		var err error
		dls, err = app.DeadLetters(ctx, sluice.DeadLetterFilter{}, 10)
		require.NoError(t, err)
		return len(dls) > 0
	})
	require.Len(t, dls, 1)
	require.Equal(t, "small", dls[0].Source.Group)
	require.EqualValues(t, 3, dls[0].Source.ChangeSet)
	require.Contains(t, string(dls[0].Body), `"not a number"`)
}

// A bad expression is refused when the pipeline is declared.
func TestPipelineTransformBadExpression(t *testing.T) {
	t.Parallel()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	d := sluice.SinkDestination("small", &memSink{rows: map[string]string{}})
	d.Transform = map[string]sluice.TableTransform{"public.orders": {Filter: `.total <`}}
	app.Pipeline("orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{d}}, newMemSource()))
	err := app.Start(context.Background())
	require.ErrorContains(t, err, `destination "small"`)
	require.ErrorContains(t, err, "public.orders")
}

// graphFake answers as Microsoft Graph's delta query does: a first read
// in two pages ending with a delta link, then, at the delta link, an
// update and a removal.
func graphFake(t *testing.T) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer graph-token" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("page") {
		case "":
			fmt.Fprintf(w, `{"value":[{"id":"1","title":"a","qty":1},{"id":"2","title":"b","qty":2}],"@odata.nextLink":"%s/items?page=2"}`, srv.URL)
		case "2":
			fmt.Fprintf(w, `{"value":[{"id":"3","title":"c","qty":3}],"@odata.deltaLink":"%s/items?page=delta"}`, srv.URL)
		case "delta":
			fmt.Fprintf(w, `{"value":[{"id":"2","title":"b2","qty":20},{"id":"3","@removed":{"reason":"deleted"}}],"@odata.deltaLink":"%s/items?page=delta2"}`, srv.URL)
		default:
			fmt.Fprintf(w, `{"value":[],"@odata.deltaLink":"%s/items?page=delta2"}`, srv.URL)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// An HTTP/JSON source with a delta link: the first read's items, then the
// delta's update and removal, reach the destination.
func TestPipelineHTTPDeltaSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := graphFake(t)
	dst := &memSink{rows: map[string]string{}}
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	d := sluice.SinkDestination("copy", dst)
	d.Transform = map[string]sluice.TableTransform{"*": {Rename: map[string]string{"qty": "total"}}}
	app.Pipeline("list", sluice.PipelineConfig{
		HTTP: &sluice.HTTPSource{URL: srv.URL + "/items", Table: "sharepoint.items", Headers: map[string]string{"Authorization": "Bearer graph-token"},
			PollInterval: 10 * 1e6},
		Destinations: []sluice.PipelineDestination{d}})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	waitUntil(t, "the list's items, updated and removed", func() bool {
		rows, _ := dst.snapshot()
		return len(rows) == 2 && rows["1"] == "1" && rows["2"] == "20"
	})
	st, err := app.PipelineStatus(ctx, "list")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(st.Position, "http:"), st.Position)
	require.NotContains(t, st.Position, "graph-token")
}

// An update that moves a row to a new key (Key holds the old one, After
// the new row): the container destination deletes the old document and
// writes the new one.
func TestPipelineContainerDestinationMovedRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newMemSource()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Container(sluice.ContainerConfig{Name: "copy", PartitionKeyPath: "/id"})
	app.Pipeline("orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{
		{Name: "copy", Container: "copy"}}}, src))
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	src.add(upsert(1, "10"), upsert(2, "20"))
	src.add(pipeline.Change{Op: pipeline.Update, Table: "public.orders", Key: pipeline.Row{"id": "1"}, After: pipeline.Row{"id": "9", "total": "10"}})
	waitUntil(t, "the copy has documents 2 and 9 only", func() bool {
		page, err := app.Docs().Query(ctx, "copy", sluice.QueryRequest{Text: "SELECT * FROM c"})
		require.NoError(t, err)
		var ids []string
		for _, d := range page.Documents {
			var body struct{ ID string }
			require.NoError(t, json.Unmarshal(d.Body, &body))
			ids = append(ids, body.ID)
		}
		slices.Sort(ids)
		return slices.Equal(ids, []string{"2", "9"})
	})
}

// An event on the change log that is not a change set is a dead letter;
// the change sets around it, in the same batch, are applied.
func TestPipelineForeignEventOnTheChangeLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := newMemSource()
	dst := &memSink{rows: map[string]string{}, down: true}
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Pipeline("orders", sluice.WithPipelineSource(sluice.PipelineConfig{Destinations: []sluice.PipelineDestination{
		sluice.SinkDestination("copy", dst)}}, src))
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	src.add(upsert(1, "10"))
	waitUntil(t, "the destination fails the first change set", func() bool { dst.mu.Lock(); defer dst.mu.Unlock(); return dst.fails > 0 })
	_, err := app.Publish(ctx, sluice.PipelineHub("orders"), sluice.Event{Body: []byte("not a change set")})
	require.NoError(t, err)
	src.add(upsert(2, "20"))
	waitUntil(t, "both change sets staged", func() bool {
		st, err := app.PipelineStatus(ctx, "orders")
		require.NoError(t, err)
		return st.Staged == 2
	})
	dst.mu.Lock()
	dst.down = false // the three come in one batch
	dst.mu.Unlock()
	waitUntil(t, "both change sets applied", func() bool { _, a := dst.snapshot(); return len(a) == 2 })
	rows, _ := dst.snapshot()
	require.Equal(t, map[string]string{"1": "10", "2": "20"}, rows)
	var dls []sluice.DeadLetterRecord
	waitUntil(t, "the foreign event is a dead letter", func() bool {
		dls, err = app.DeadLetters(ctx, sluice.DeadLetterFilter{}, 10)
		require.NoError(t, err)
		return len(dls) == 1
	})
	require.Equal(t, "not a change set", string(dls[0].Body))
}
