package host_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/lease"
	"github.com/sluicehq/sluice/internal/resilience"
)

func TestParseBlobPath(t *testing.T) {
	for _, tc := range []struct {
		path, name string
		params     map[string]string
	}{
		{"uploads/{name}", "a/b/c.json", map[string]string{"name": "a/b/c.json"}},
		{"uploads/in/{name}.json", "in/report.json", map[string]string{"name": "report"}},
		{"uploads/{folder}/{name}", "2026/11/x", map[string]string{"folder": "2026", "name": "11/x"}},
		{"uploads", "anything", map[string]string{}},
		{"uploads/fixed.txt", "fixed.txt", map[string]string{}},
	} {
		p, err := host.ParseBlobPath(tc.path)
		require.NoError(t, err, tc.path)
		params, ok := p.Match(tc.name)
		require.True(t, ok, "%s matches %s", tc.path, tc.name)
		require.Equal(t, tc.params, params)
	}
	p, err := host.ParseBlobPath("uploads/in/{name}.json")
	require.NoError(t, err)
	for _, name := range []string{"in/x.txt", "out/x.json", "in/.json"} {
		_, ok := p.Match(name)
		require.False(t, ok, name)
	}
	for path, want := range map[string]string{
		"Uploads/{name}":  "container",
		"uploads/{a}{b}":  "text between them",
		"uploads/{a}/{a}": "appears twice",
		"uploads/{bad-x}": "is not a parameter",
		"uploads/x}":      "is not a parameter",
	} {
		_, err := host.ParseBlobPath(path)
		require.ErrorContains(t, err, want, path)
	}
}

type blobEnv struct {
	eng      *engine.Engine
	blobs    *blob.Service
	receipts jetstream.KeyValue
	leases   jetstream.KeyValue
	sink     *memSink
	c        string
}

func newBlobEnv(t *testing.T) *blobEnv {
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	e := &blobEnv{eng: eng, blobs: blob.Open(eng.JS, blob.Options{}), sink: &memSink{}, c: "uploads"}
	_, err := e.blobs.CreateContainer(ctx, e.c)
	require.NoError(t, err)
	e.receipts, err = eng.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "receipts", History: 1})
	require.NoError(t, err)
	e.leases, err = eng.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "leases", History: 1})
	require.NoError(t, err)
	return e
}

func (e *blobEnv) start(t *testing.T, id string, f host.BlobFunction) *host.Host {
	t.Helper()
	lm, err := lease.New(e.leases, lease.Config{InstanceID: id, Expiry: 2 * time.Second})
	require.NoError(t, err)
	h, err := host.New(host.Config{InstanceID: id, Blobs: e.blobs, BlobReceipts: e.receipts, Leases: lm, DeadLetters: e.sink, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, h.RegisterBlob(f))
	require.NoError(t, h.Start(context.Background()))
	t.Cleanup(func() { h.Stop(context.Background()) })
	return h
}

func (e *blobEnv) put(t *testing.T, name, content string) blob.Info {
	t.Helper()
	info, err := e.blobs.Put(context.Background(), e.c, name, bytes.NewReader([]byte(content)), blob.Meta{ContentType: "application/json"})
	require.NoError(t, err)
	return info
}

// blobRuns records what a blob function was given.
type blobRuns struct {
	mu   sync.Mutex
	runs []blobRun
	fail map[string]bool
}

// blobRun is a blob given to the function, with the content it read.
type blobRun struct {
	host.BlobInput
	Data []byte
}

func (r *blobRuns) handle(ctx context.Context, in host.BlobInput) error {
	rc, err := in.Open(ctx)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[in.Info.Name] {
		return errors.New("cannot parse " + in.Info.Name)
	}
	r.runs = append(r.runs, blobRun{BlobInput: in, Data: data})
	return nil
}

func (r *blobRuns) byName() map[string][]blobRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]blobRun{}
	for _, in := range r.runs {
		out[in.Info.Name] = append(out[in.Info.Name], in)
	}
	return out
}

func TestBlobTriggerRunsEachVersionOnce(t *testing.T) {
	e := newBlobEnv(t)
	path, err := host.ParseBlobPath("uploads/in/{name}.json")
	require.NoError(t, err)
	runs := &blobRuns{fail: map[string]bool{"in/bad.json": true}}
	// One at a time: the test's markers rely on the changes' order.
	f := host.BlobFunction{Name: "parse", Trigger: host.BlobTrigger{Path: path, Concurrency: 1}, Handler: runs.handle,
		Retry: resilience.Retry{Strategy: resilience.FixedDelay, MaxRetryCount: 1, Delay: 10 * time.Millisecond}}

	e.put(t, "in/a.json", `{"n":1}`) // before the function starts
	e.put(t, "other/x.json", `{}`)   // not on the path
	h := e.start(t, "one", f)
	e.put(t, "in/b.json", `{"n":2}`)
	e.put(t, "in/bad.json", `nope`)
	eventually(t, "a and b", func() bool { return len(runs.byName()) == 2 })
	second := e.put(t, "in/a.json", `{"n":3}`) // a new version runs again
	eventually(t, "a's second version", func() bool { return len(runs.byName()["in/a.json"]) == 2 })

	got := runs.byName()
	require.Equal(t, `{"n":3}`, string(got["in/a.json"][1].Data))
	require.Equal(t, second.ETag, got["in/a.json"][1].Info.ETag)
	require.Equal(t, map[string]string{"name": "a"}, got["in/a.json"][0].Params)
	require.Equal(t, `{"n":2}`, string(got["in/b.json"][0].Data))
	require.NotContains(t, got, "other/x.json")

	eventually(t, "the bad blob's dead letter", func() bool { return len(e.sink.all()) == 1 })
	dl := e.sink.all()[0]
	require.Equal(t, host.Source{Kind: "blob", Container: "uploads", Blob: "in/bad.json", ETag: dl.Source.ETag}, dl.Source)
	require.Equal(t, 2, dl.Attempts)
	require.Equal(t, "cannot parse in/bad.json", dl.Reason)

	// After a restart, versions with receipts do not run again.
	h.Stop(context.Background())
	before := len(runs.runs)
	e.start(t, "two", f)
	e.put(t, "in/c.json", `{"n":4}`)
	// The instance takes the container's changes in order, one at a time:
	// once c, the last, has run, any rerun of an older version would have
	// come before it.
	eventually(t, "c", func() bool { return len(runs.byName()["in/c.json"]) == 1 })
	runs.mu.Lock()
	require.Len(t, runs.runs, before+1, "only the new blob ran after the restart")
	runs.mu.Unlock()
	require.Len(t, e.sink.all(), 1, "the dead-lettered version is not tried again")
}

func TestBlobTriggerOneInstanceAtATime(t *testing.T) {
	e := newBlobEnv(t)
	path, err := host.ParseBlobPath("uploads/{name}")
	require.NoError(t, err)
	runs := &blobRuns{}
	f := host.BlobFunction{Name: "copy", Trigger: host.BlobTrigger{Path: path}, Handler: runs.handle}
	e.start(t, "a", f)
	e.start(t, "b", f)
	for i := range 20 {
		e.put(t, "f"+string(rune('a'+i)), "x")
	}
	eventually(t, "every blob", func() bool { return len(runs.byName()) == 20 })
	// The changes come in order: once a blob put after the others has run,
	// a second run of one of them would have come before it.
	e.put(t, "last", "x")
	eventually(t, "the last blob", func() bool { return len(runs.byName()["last"]) == 1 })
	for name, r := range runs.byName() {
		require.Len(t, r, 1, "%s ran once, on one instance", name)
	}
}

// A blob whose run was cut short (a hard stop) has no receipt: it runs
// again on the next instance.
func TestBlobTriggerRunsAgainAfterAnUnfinishedRun(t *testing.T) {
	e := newBlobEnv(t)
	path, err := host.ParseBlobPath("uploads/{name}")
	require.NoError(t, err)
	started := make(chan struct{})
	var once sync.Once
	slow := host.BlobFunction{Name: "f", Trigger: host.BlobTrigger{Path: path}, Handler: func(ctx context.Context, in host.BlobInput) error {
		once.Do(func() { close(started) })
		<-ctx.Done() // never finishes on its own
		return ctx.Err()
	}}
	lm, err := lease.New(e.leases, lease.Config{InstanceID: "a", Expiry: 2 * time.Second})
	require.NoError(t, err)
	h, err := host.New(host.Config{InstanceID: "a", Blobs: e.blobs, BlobReceipts: e.receipts, Leases: lm, DeadLetters: e.sink, ShutdownTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, h.RegisterBlob(slow))
	require.NoError(t, h.Start(context.Background()))
	e.put(t, "x", "1")
	<-started
	h.Stop(context.Background()) // the shutdown timeout cancels the run

	runs := &blobRuns{}
	e.start(t, "b", host.BlobFunction{Name: "f", Trigger: host.BlobTrigger{Path: path}, Handler: runs.handle})
	eventually(t, "the unfinished blob again", func() bool { return len(runs.byName()["x"]) == 1 })
	require.Empty(t, e.sink.all(), "a cut-short run is not a failure")
}
