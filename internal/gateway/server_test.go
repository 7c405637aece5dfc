package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/sqlite"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Limits of the servers under test, small so that the tests can cross them.
const (
	maxEventBytes   = 1000
	maxRequestBytes = 64 << 10
	maxEvents       = 50
)

// fixture is an API server on a real hub service on an embedded engine.
type fixture struct {
	svc *hub.Service
	url string
	eng *engine.Engine // of setup's fixtures
}

// setup starts an engine, a hub service and an API server for one test.
// configure, if given, adjusts the server's config.
func setup(t *testing.T, configure ...func(*gateway.Config)) *fixture {
	t.Helper()
	eng := enginetest.Embedded(t)
	svc, err := hub.Open(context.Background(), eng.JS, eng.MaxPayload(), hub.Options{MaxEventBytes: maxEventBytes})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, svc.Stop(context.Background())) })
	cfg := gateway.Config{
		Hubs:            svc,
		Logger:          slog.New(slog.DiscardHandler),
		MaxEventBytes:   maxEventBytes,
		MaxRequestBytes: maxRequestBytes,
		MaxEvents:       maxEvents,
	}
	for _, fn := range configure {
		fn(&cfg)
	}
	srv := httptest.NewServer(gateway.NewServer(cfg))
	t.Cleanup(srv.Close)
	return &fixture{svc: svc, url: srv.URL, eng: eng}
}

type response struct {
	Code   int
	Header http.Header
	Body   []byte
}

// do sends a request; header is name, value pairs.
func (f *fixture) do(t *testing.T, method, path string, body []byte, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{Code: resp.StatusCode, Header: resp.Header, Body: data}
}

// doJSON sends a request and decodes a JSON answer with status code into out.
func (f *fixture) doJSON(t *testing.T, code int, out any, method, path string, body []byte, header ...string) {
	t.Helper()
	r := f.do(t, method, path, body, header...)
	require.Equal(t, code, r.Code, "%s %s answered %s", method, path, r.Body)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	if out != nil {
		require.NoError(t, json.Unmarshal(r.Body, out), "%s", r.Body)
	}
}

// requireError checks that r is an error answer {"error": "..."} with the
// status code whose message contains every one of parts.
func requireError(t *testing.T, r response, code int, parts ...string) {
	t.Helper()
	require.Equal(t, code, r.Code, "answer: %s", r.Body)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"), "answer: %s", r.Body)
	var e struct {
		Error string `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&e), "answer: %s", r.Body)
	require.NotEmpty(t, e.Error)
	for _, p := range parts {
		require.Contains(t, e.Error, p)
	}
}

func (f *fixture) createHub(t *testing.T, name string, partitions int) {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"partitions":%d}`, name, partitions)
	f.doJSON(t, http.StatusCreated, nil, "POST", "/api/v1/hubs", []byte(body), "Content-Type", "application/json")
}

// publish sends events and returns their positions.
func (f *fixture) publish(t *testing.T, hubName, query, contentType string, body []byte, header ...string) []hub.Position {
	t.Helper()
	var resp gateway.PublishResponse
	f.doJSON(t, http.StatusOK, &resp, "POST", "/api/v1/hubs/"+hubName+"/events"+query, body,
		append([]string{"Content-Type", contentType}, header...)...)
	require.Equal(t, len(resp.Events), resp.Count)
	return resp.Events
}

// read reads partition p of a hub with the given query.
func (f *fixture) read(t *testing.T, hubName string, p int, query string) []gateway.EventJSON {
	t.Helper()
	var out struct {
		Events []gateway.EventJSON `json:"events"`
	}
	f.doJSON(t, http.StatusOK, &out, "GET", fmt.Sprintf("/api/v1/hubs/%s/partitions/%d/events?%s", hubName, p, query), nil)
	require.NotNil(t, out.Events, "events is an array, never null")
	return out.Events
}

// eventAt reads back the one event stored at pos.
func (f *fixture) eventAt(t *testing.T, hubName string, pos hub.Position) gateway.EventJSON {
	t.Helper()
	evs := f.read(t, hubName, pos.Partition, fmt.Sprintf("after=%d&limit=1&wait=10s", pos.Sequence-1))
	require.Len(t, evs, 1)
	require.Equal(t, pos.Partition, evs[0].Partition)
	require.Equal(t, pos.Sequence, evs[0].Sequence)
	return evs[0]
}

// records returns the number of records stored in each partition of a hub.
func (f *fixture) records(t *testing.T, hubName string) []uint64 {
	t.Helper()
	_, parts, err := f.svc.Describe(context.Background(), hubName)
	require.NoError(t, err)
	out := make([]uint64, len(parts))
	for i, p := range parts {
		out[i] = p.Records
	}
	return out
}

type lagResponse struct {
	Hub         string    `json:"hub"`
	Group       string    `json:"group"`
	TotalEvents int64     `json:"total_events"`
	Partitions  []hub.Lag `json:"partitions"`
}

func (f *fixture) lag(t *testing.T, hubName, group string) lagResponse {
	t.Helper()
	var out lagResponse
	f.doJSON(t, http.StatusOK, &out, "GET", "/api/v1/hubs/"+hubName+"/groups/"+group+"/lag", nil)
	require.Equal(t, hubName, out.Hub)
	require.Equal(t, group, out.Group)
	return out
}

type replayResponse struct {
	Hub        string             `json:"hub"`
	Group      string             `json:"group"`
	Partitions []hub.ReplayResult `json:"partitions"`
}

func (f *fixture) replay(t *testing.T, hubName, group, body string) replayResponse {
	t.Helper()
	var out replayResponse
	f.doJSON(t, http.StatusOK, &out, "POST", "/api/v1/hubs/"+hubName+"/groups/"+group+"/replay", []byte(body),
		"Content-Type", "application/json")
	return out
}

func (f *fixture) checkpoint(t *testing.T, hubName, group string, p int) int64 {
	t.Helper()
	cp, _, err := f.svc.GetCheckpoint(context.Background(), hubName, group, p)
	require.NoError(t, err)
	return cp.Sequence
}

func strp(s string) *string { return &s }

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	ready.Store(true)
	f := setup(t, func(c *gateway.Config) { c.Ready = ready.Load })

	var status map[string]string
	f.doJSON(t, http.StatusOK, &status, "GET", "/healthz", nil)
	require.Equal(t, "ok", status["status"])
	f.doJSON(t, http.StatusOK, &status, "GET", "/readyz", nil)
	require.Equal(t, "ready", status["status"])

	ready.Store(false)
	requireError(t, f.do(t, "GET", "/readyz", nil), http.StatusServiceUnavailable, "not ready")
	f.doJSON(t, http.StatusOK, &status, "GET", "/healthz", nil) // alive, though not ready

	r := f.do(t, "GET", "/metrics", nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.Contains(t, string(r.Body), `sluice_http_requests_total{code="200",route="healthz"} 2`)
	require.Contains(t, string(r.Body), `sluice_http_requests_total{code="503",route="readyz"} 1`)
}

func TestReadyWhenEngineIsDown(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	svc, err := hub.Open(context.Background(), eng.JS, eng.MaxPayload(), hub.Options{})
	require.NoError(t, err)
	defer svc.Stop(context.Background())
	srv := httptest.NewServer(gateway.NewServer(gateway.Config{Hubs: svc, Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	f := &fixture{svc: svc, url: srv.URL}
	f.doJSON(t, http.StatusOK, nil, "GET", "/readyz", nil)
	require.NoError(t, eng.Close())
	requireError(t, f.do(t, "GET", "/readyz", nil), http.StatusServiceUnavailable, "not ready: the engine does not answer")
}

func TestUnknownRoute(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, c := range []struct{ method, path string }{
		{"GET", "/"},
		{"GET", "/nope"},
		{"GET", "/api/v2/hubs"},
		{"GET", "/api/v1/hubs/h/nope"},
	} {
		requireError(t, f.do(t, c.method, c.path, nil), http.StatusNotFound,
			"no such endpoint: "+c.method+" "+c.path, "/api/v1/")
	}
}

// TestWrongMethod: a method a route's path does not take answers 405 with
// Allow and a JSON error, and changes nothing.
func TestWrongMethod(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createHub(t, "h", 1)
	for _, c := range []struct{ method, path, allow string }{
		{"POST", "/api/v1/hubs/h/partitions/0/events", "GET, HEAD"},
		{"PUT", "/api/v1/hubs", "GET, HEAD, POST"},
		{"DELETE", "/api/v1/hubs", "GET, HEAD, POST"},
		{"PATCH", "/api/v1/hubs/h", "GET, HEAD, DELETE"},
		{"GET", "/api/v1/hubs/h/events", "POST"},
		{"PUT", "/api/v1/hubs/h/groups/g/replay", "POST"},
		{"OPTIONS", "/api/v1/hubs/h/groups/g/lag", "GET, HEAD"},
		{"POST", "/healthz", "GET, HEAD"},
	} {
		r := f.do(t, c.method, c.path, []byte(`{"name":"x"}`), jsonType...)
		requireError(t, r, http.StatusMethodNotAllowed, "method "+c.method+" is not allowed on "+c.path, "use "+c.allow)
		require.Equal(t, c.allow, r.Header.Get("Allow"), "%s %s", c.method, c.path)
	}
	hubs, err := f.svc.List(context.Background())
	require.NoError(t, err)
	require.Len(t, hubs, 1, "nothing created")
	require.Equal(t, []uint64{0}, f.records(t, "h"), "nothing published")
}

func TestHubAdmin(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctype := []string{"Content-Type", "application/json"}

	// Create with every field, and with defaults.
	var created gateway.HubJSON
	f.doJSON(t, http.StatusCreated, &created, "POST", "/api/v1/hubs",
		[]byte(`{"name":"orders","partitions":3,"retention":"72h","retention_bytes":3000000}`), ctype...)
	require.Equal(t, "orders", created.Name)
	require.Equal(t, 3, created.Partitions)
	require.Equal(t, "72h0m0s", created.Retention)
	require.Equal(t, int64(3000000), created.RetentionBytes)
	require.WithinDuration(t, time.Now(), created.Created, time.Minute)
	require.Empty(t, created.PartitionInfo)

	var dflt gateway.HubJSON
	f.doJSON(t, http.StatusCreated, &dflt, "POST", "/api/v1/hubs", []byte(`{"name":"Audit_log-2"}`), ctype...)
	require.Equal(t, hub.DefaultPartitions, dflt.Partitions)
	require.Equal(t, hub.DefaultRetention.String(), dflt.Retention)
	require.Zero(t, dflt.RetentionBytes)
	f.doJSON(t, http.StatusCreated, nil, "POST", "/api/v1/hubs", []byte("{\"name\":\"ws\"} \r\n"), ctype...)
	require.Equal(t, http.StatusNoContent, f.do(t, "DELETE", "/api/v1/hubs/ws", nil).Code)

	// List, sorted by name.
	var list struct{ Hubs []gateway.HubJSON }
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/hubs", nil)
	require.Len(t, list.Hubs, 2)
	require.Equal(t, "Audit_log-2", list.Hubs[0].Name)
	require.Equal(t, created.Name, list.Hubs[1].Name)
	require.Equal(t, created.Partitions, list.Hubs[1].Partitions)

	// Describe shows every partition, empty, then with what was written.
	var desc gateway.HubJSON
	f.doJSON(t, http.StatusOK, &desc, "GET", "/api/v1/hubs/orders", nil)
	require.Equal(t, "orders", desc.Name)
	require.Len(t, desc.PartitionInfo, 3)
	for i, pi := range desc.PartitionInfo {
		require.Equal(t, i, pi.Partition)
		require.Zero(t, pi.Records)
		require.Equal(t, int64(-1), pi.FirstSequence)
		require.Equal(t, int64(-1), pi.LastSequence)
	}
	pos := f.publish(t, "orders", "?partition=1", "application/json", []byte(`[1,2,3]`))
	require.Len(t, pos, 3)
	f.doJSON(t, http.StatusOK, &desc, "GET", "/api/v1/hubs/orders", nil)
	require.Equal(t, uint64(1), desc.PartitionInfo[1].Records, "one request, one record")
	require.Equal(t, pos[0].Sequence, desc.PartitionInfo[1].FirstSequence)
	require.Equal(t, pos[2].Sequence, desc.PartitionInfo[1].LastSequence)
	require.False(t, desc.PartitionInfo[1].LastEnqueued.IsZero())
	require.Zero(t, desc.PartitionInfo[0].Records)

	// Delete, then the hub is gone everywhere.
	r := f.do(t, "DELETE", "/api/v1/hubs/orders", nil)
	require.Equal(t, http.StatusNoContent, r.Code)
	require.Empty(t, r.Body)
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/hubs/orders"},
		{"DELETE", "/api/v1/hubs/orders"},
		{"POST", "/api/v1/hubs/orders/events"},
		{"GET", "/api/v1/hubs/orders/partitions/0/events"},
		{"GET", "/api/v1/hubs/orders/groups/g/lag"},
	} {
		requireError(t, f.do(t, c.method, c.path, []byte(`[1]`), ctype...), http.StatusNotFound, "hub not found: orders", "GET /api/v1/hubs")
	}
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/hubs", nil)
	require.Len(t, list.Hubs, 1)

	// The name is free again.
	f.createHub(t, "orders", 1)
}

func TestCreateHubErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createHub(t, "taken", 2)

	cases := []struct {
		name  string
		body  string
		code  int
		parts []string
	}{
		{"empty body", ``, 400, []string{"body is empty"}},
		{"only spaces", "  \n", 400, []string{"body is empty"}},
		{"malformed", `{"name":"a1",`, 400, []string{"not valid JSON"}},
		{"not an object", `["a1"]`, 400, []string{"not valid JSON", "array"}},
		{"wrong type", `{"name":"a1","partitions":"2"}`, 400, []string{"partitions"}},
		{"unknown field", `{"name":"a1","partitons":2}`, 400, []string{`unknown field "partitons"`}},
		{"trailing object", `{"name":"a1"} {"name":"a2"}`, 400, []string{"after the JSON object"}},
		{"trailing garbage", `{"name":"a1"} x`, 400, []string{"after the JSON object"}},
		{"trailing brace", `{"name":"a1"}}`, 400, []string{"after the JSON object"}},
		{"trailing bracket", `{"name":"a1"}]`, 400, []string{"after the JSON object"}},
		{"no name", `{}`, 400, []string{`hub name ""`}},
		{"name with dot", `{"name":"a.b"}`, 400, []string{`hub name "a.b"`, "letters, digits"}},
		{"name with slash", `{"name":"a/b"}`, 400, []string{`hub name "a/b"`}},
		{"name starting with dash", `{"name":"-ab"}`, 400, []string{`hub name "-ab"`}},
		{"name too long", `{"name":"` + strings.Repeat("a", 65) + `"}`, 400, []string{"hub name", "1-64"}},
		{"negative partitions", `{"name":"a1","partitions":-1}`, 400, []string{"partitions -1", "between 1 and 1024"}},
		{"too many partitions", `{"name":"a1","partitions":1025}`, 400, []string{"partitions 1025"}},
		{"bad retention", `{"name":"a1","retention":"a week"}`, 400, []string{`retention "a week" is not a duration`}},
		{"retention too short", `{"name":"a1","retention":"500ms"}`, 400, []string{"retention 500ms", "at least 1s"}},
		{"negative retention", `{"name":"a1","retention":"-1h"}`, 400, []string{"retention -1h0m0s"}},
		{"negative retention bytes", `{"name":"a1","retention_bytes":-5}`, 400, []string{"retention bytes -5"}},
		{"duplicate", `{"name":"taken","partitions":3}`, 409, []string{"already exists", "taken"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.do(t, "POST", "/api/v1/hubs", []byte(c.body), "Content-Type", "application/json")
			requireError(t, r, c.code, c.parts...)
		})
	}
	// Nothing was created, and the existing hub was left as it was.
	var list struct{ Hubs []gateway.HubJSON }
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/hubs", nil)
	require.Len(t, list.Hubs, 1)
	require.Equal(t, "taken", list.Hubs[0].Name)
	require.Equal(t, 2, list.Hubs[0].Partitions)
}

func TestBadHubNameInPath(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, name := range []string{"bad.name", "-lead", strings.Repeat("x", 65)} {
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/api/v1/hubs/%s", ""},
			{"DELETE", "/api/v1/hubs/%s", ""},
			{"POST", "/api/v1/hubs/%s/events", `[1]`},
			{"GET", "/api/v1/hubs/%s/partitions/0/events", ""},
			{"GET", "/api/v1/hubs/%s/groups/g/lag", ""},
			{"POST", "/api/v1/hubs/%s/groups/g/replay", `{"earliest":true,"grace":"0s"}`},
		} {
			r := f.do(t, c.method, fmt.Sprintf(c.path, name), []byte(c.body), "Content-Type", "application/json")
			requireError(t, r, http.StatusBadRequest, fmt.Sprintf("hub name %q", name))
		}
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/hubs/nope", ""},
		{"DELETE", "/api/v1/hubs/nope", ""},
		{"POST", "/api/v1/hubs/nope/events", `[1]`},
		{"GET", "/api/v1/hubs/nope/partitions/0/events", ""},
		{"GET", "/api/v1/hubs/nope/groups/g/lag", ""},
		{"POST", "/api/v1/hubs/nope/groups/g/replay", `{"earliest":true,"grace":"0s"}`},
	} {
		r := f.do(t, c.method, c.path, []byte(c.body), "Content-Type", "application/json")
		requireError(t, r, http.StatusNotFound, "hub not found: nope")
	}
	// None of it created a hub.
	var list struct{ Hubs []gateway.HubJSON }
	f.doJSON(t, http.StatusOK, &list, "GET", "/api/v1/hubs", nil)
	require.Empty(t, list.Hubs)
}

func TestPublishAndRead(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const h = "orders"
	const parts = 4
	f.createHub(t, h, parts)

	// requireSequential checks that positions are consecutive in one partition.
	requireSequential := func(t *testing.T, pos []hub.Position, partition int) {
		t.Helper()
		for i, p := range pos {
			require.Equal(t, partition, p.Partition)
			require.Equal(t, pos[0].Sequence+int64(i), p.Sequence)
		}
	}

	t.Run("json array", func(t *testing.T) {
		pos := f.publish(t, h, "?partition=2", "application/json", []byte(` [{"a": 1}, "text", 3] `))
		require.Len(t, pos, 3)
		requireSequential(t, pos, 2)
		evs := f.read(t, h, 2, "after=-1&limit=3")
		require.Len(t, evs, 3)
		for i, want := range []string{`{"a": 1}`, `"text"`, `3`} {
			require.Equal(t, pos[i].Sequence, evs[i].Sequence)
			require.Equal(t, 2, evs[i].Partition)
			require.Equal(t, strp(want), evs[i].Body, "bodies are stored as sent")
			require.Nil(t, evs[i].BodyBase64)
			require.Empty(t, evs[i].PartitionKey)
			require.Empty(t, evs[i].Properties)
			require.WithinDuration(t, time.Now(), evs[i].EnqueuedTime, time.Minute)
		}

		// limit, from=start, from=<time>, after, from=end.
		require.Len(t, f.read(t, h, 2, "after=-1&limit=2"), 2)
		evs = f.read(t, h, 2, "from=start&limit=1")
		require.Len(t, evs, 1)
		require.Equal(t, pos[0].Sequence, evs[0].Sequence)
		evs = f.read(t, h, 2, "from=2000-01-01T00:00:00Z&limit=3")
		require.Len(t, evs, 3)
		evs = f.read(t, h, 2, fmt.Sprintf("after=%d&limit=5&wait=200ms", pos[0].Sequence))
		require.Len(t, evs, 2)
		require.Equal(t, pos[1].Sequence, evs[0].Sequence)
		require.Empty(t, f.read(t, h, 2, fmt.Sprintf("after=%d&wait=200ms", pos[2].Sequence)))
		require.Empty(t, f.read(t, h, 2, "from=end&wait=200ms"), "from=end returns nothing stored before")
		tomorrow := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
		require.Empty(t, f.read(t, h, 2, "from="+tomorrow+"&wait=200ms"))
		require.Len(t, f.read(t, h, 2, "wait=300ms"), 3, "the default start is the oldest event")
	})

	t.Run("json object", func(t *testing.T) {
		pos := f.publish(t, h, "?partitionKey=user-7", "application/json", []byte(`{"id": 7}`))
		require.Len(t, pos, 1)
		require.Equal(t, hub.PartitionForKey("user-7", parts), pos[0].Partition)
		ev := f.eventAt(t, h, pos[0])
		require.Equal(t, strp(`{"id": 7}`), ev.Body)
		require.Equal(t, "user-7", ev.PartitionKey)
	})

	t.Run("ndjson", func(t *testing.T) {
		for _, ct := range []string{"application/x-ndjson", "application/jsonl; charset=utf-8"} {
			pos := f.publish(t, h, "?partitionKey=k", ct, []byte("{\"n\":1}\n\n  [2]\r\n\"three\""))
			require.Len(t, pos, 3)
			requireSequential(t, pos, hub.PartitionForKey("k", parts))
			for i, want := range []string{`{"n":1}`, `[2]`, `"three"`} {
				ev := f.eventAt(t, h, pos[i])
				require.Equal(t, strp(want), ev.Body)
				require.Equal(t, "k", ev.PartitionKey)
			}
		}
	})

	t.Run("octet-stream and text", func(t *testing.T) {
		binary := []byte{0xff, 0x00, 0xfe, 'a'}
		pos := f.publish(t, h, "?partition=3", "application/octet-stream", binary)
		require.Len(t, pos, 1)
		ev := f.eventAt(t, h, pos[0])
		require.Nil(t, ev.Body, "a body that is not UTF-8 is not shown as text")
		require.Equal(t, binary, ev.BodyBase64)

		pos = f.publish(t, h, "?partition=3", "text/plain; charset=utf-8", []byte("héllo\x00"))
		ev = f.eventAt(t, h, pos[0])
		require.Equal(t, strp("héllo\x00"), ev.Body)
		require.Nil(t, ev.BodyBase64)
	})

	t.Run("cloudevents structured", func(t *testing.T) {
		pos := f.publish(t, h, "", "application/cloudevents+json; charset=utf-8", []byte(`{
			"specversion":"1.0","id":"e1","source":"/orders","type":"order.created",
			"partitionkey":"cust-1","subject":"o-9","data":{"x":1}}`))
		require.Len(t, pos, 1)
		require.Equal(t, hub.PartitionForKey("cust-1", parts), pos[0].Partition)
		ev := f.eventAt(t, h, pos[0])
		require.Equal(t, strp(`{"x":1}`), ev.Body)
		require.Equal(t, "cust-1", ev.PartitionKey)
		require.Equal(t, map[string]string{
			"cloudEvents:specversion":  "1.0",
			"cloudEvents:id":           "e1",
			"cloudEvents:source":       "/orders",
			"cloudEvents:type":         "order.created",
			"cloudEvents:partitionkey": "cust-1",
			"cloudEvents:subject":      "o-9",
		}, ev.Properties)

		pos = f.publish(t, h, "?partition=0", "application/cloudevents+json", []byte(`{
			"specversion":"1.0","id":"e2","source":"/s","type":"t","data_base64":"AAH/"}`))
		ev = f.eventAt(t, h, pos[0])
		require.Equal(t, []byte{0, 1, 0xff}, ev.BodyBase64)
	})

	t.Run("cloudevents batch", func(t *testing.T) {
		pos := f.publish(t, h, "?partition=1", "application/cloudevents-batch+json", []byte(`[
			{"specversion":"1.0","id":"b1","source":"/s","type":"t","data":"one"},
			{"specversion":"1.0","id":"b2","source":"/s","type":"t","datacontenttype":"text/plain","data":"two"}]`))
		require.Len(t, pos, 2)
		requireSequential(t, pos, 1)
		ev := f.eventAt(t, h, pos[0])
		require.Equal(t, strp(`"one"`), ev.Body, "JSON data is stored as JSON")
		require.Equal(t, "b1", ev.Properties["cloudEvents:id"])
		ev = f.eventAt(t, h, pos[1])
		require.Equal(t, strp(`two`), ev.Body, "text data is stored as text")
		require.Equal(t, "text/plain", ev.Properties["cloudEvents:datacontenttype"])

		// An empty batch is valid and writes nothing.
		before := f.records(t, h)
		require.Empty(t, f.publish(t, h, "", "application/cloudevents-batch+json", []byte(`[]`)))
		require.Equal(t, before, f.records(t, h))
	})

	t.Run("cloudevents binary", func(t *testing.T) {
		pos := f.publish(t, h, "?partition=1", "text/plain", []byte("binary data"),
			"ce-specversion", "1.0", "ce-id", "bin-1", "ce-source", "/src", "Ce-Type", "t.bin",
			"ce-subject", "%C3%A9t%C3%A9")
		require.Len(t, pos, 1)
		ev := f.eventAt(t, h, pos[0])
		require.Equal(t, strp("binary data"), ev.Body)
		require.Equal(t, map[string]string{
			"cloudEvents:specversion":     "1.0",
			"cloudEvents:id":              "bin-1",
			"cloudEvents:source":          "/src",
			"cloudEvents:type":            "t.bin",
			"cloudEvents:subject":         "été",
			"cloudEvents:datacontenttype": "text/plain",
		}, ev.Properties)
	})

	t.Run("envelope", func(t *testing.T) {
		pos := f.publish(t, h, "", gateway.MediaEnvelope, []byte(`[
			{"body": {"k": "v"}, "properties": {"color": "red", "x-any name": ""}, "partition_key": "pk"},
			{"body_base64": "AAEC/w==", "partition": 0},
			{"body_text": "plain", "partition": 3, "partition_key": "ignored-for-placement"},
			{"body_base64": "aGk", "partition": 0},
			{}]`))
		require.Len(t, pos, 5)
		require.Equal(t, hub.PartitionForKey("pk", parts), pos[0].Partition)
		require.Equal(t, 0, pos[1].Partition)
		require.Equal(t, 3, pos[2].Partition, "an explicit partition wins over the key")
		require.Equal(t, 0, pos[3].Partition)
		require.Equal(t, pos[1].Sequence+1, pos[3].Sequence, "events of one request to one partition are stored together, in order")

		ev := f.eventAt(t, h, pos[0])
		require.Equal(t, strp(`{"k": "v"}`), ev.Body)
		require.Equal(t, map[string]string{"color": "red", "x-any name": ""}, ev.Properties)
		require.Equal(t, "pk", ev.PartitionKey)
		ev = f.eventAt(t, h, pos[1])
		require.Equal(t, []byte{0, 1, 2, 0xff}, ev.BodyBase64)
		require.Nil(t, ev.Body)
		require.Empty(t, ev.Properties)
		ev = f.eventAt(t, h, pos[2])
		require.Equal(t, strp("plain"), ev.Body)
		require.Equal(t, "ignored-for-placement", ev.PartitionKey)
		ev = f.eventAt(t, h, pos[3])
		require.Equal(t, strp("hi"), ev.Body, "unpadded base64 is accepted")
		ev = f.eventAt(t, h, pos[4])
		require.Equal(t, strp(""), ev.Body, "no body is an empty body")
	})

	t.Run("limits are inclusive", func(t *testing.T) {
		pos := f.publish(t, h, "?partition=0", "application/octet-stream", bytes.Repeat([]byte("x"), maxEventBytes))
		require.Len(t, pos, 1)
		var many strings.Builder
		many.WriteString("[0")
		for i := 1; i < maxEvents; i++ {
			fmt.Fprintf(&many, ",%d", i)
		}
		many.WriteString("]")
		pos = f.publish(t, h, "?partition=0", "application/json", []byte(many.String()))
		require.Len(t, pos, maxEvents)
		requireSequential(t, pos, 0)
	})

	t.Run("lag", func(t *testing.T) {
		var want int64
		_, infos, err := f.svc.Describe(context.Background(), h)
		require.NoError(t, err)
		lag := f.lag(t, h, "$Default")
		require.Len(t, lag.Partitions, parts)
		for i, l := range lag.Partitions {
			require.Equal(t, i, l.Partition)
			require.Equal(t, int64(-1), l.Checkpoint)
			require.Equal(t, infos[i].LastSequence, l.LastSequence)
			want += l.Events
		}
		require.Equal(t, want, lag.TotalEvents)
		// 3+1+6+2+2+2+1+5+51 events were published above.
		require.Equal(t, int64(73), lag.TotalEvents)

		// Checkpoint partition 2 at its second event: two events less to go.
		seq2 := f.read(t, h, 2, "after=-1&limit=2")[1].Sequence
		_, err = f.svc.PutCheckpoint(context.Background(), h, "g1", 2, hub.Checkpoint{Sequence: seq2}, 0)
		require.NoError(t, err)
		after := f.lag(t, h, "g1")
		require.Equal(t, lag.Partitions[2].Events-2, after.Partitions[2].Events)
		require.Equal(t, seq2, after.Partitions[2].Checkpoint)
		require.Equal(t, lag.TotalEvents-2, after.TotalEvents)
		require.Equal(t, lag.Partitions[0].Events, after.Partitions[0].Events)

		// Groups are independent.
		require.Equal(t, lag.TotalEvents, f.lag(t, h, "$Default").TotalEvents)
	})
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const h = "strict"
	f.createHub(t, h, 4)

	big := strings.Repeat("x", maxEventBytes+1)
	var tooMany, tooManyLines strings.Builder
	tooMany.WriteString("[0")
	for i := 1; i <= maxEvents; i++ {
		fmt.Fprintf(&tooMany, ",%d", i)
		fmt.Fprintf(&tooManyLines, "%d\n", i)
	}
	tooManyLines.WriteString("0\n")
	tooMany.WriteString("]")
	ce := `"specversion":"1.0","id":"1","source":"/s","type":"t"`

	cases := []struct {
		name   string
		query  string
		header []string // Content-Type first
		body   string
		code   int
		parts  []string
	}{
		// Content-Type
		{"missing content type", "", nil, `[1]`, 415, []string{"missing Content-Type", "application/json"}},
		{"unsupported content type", "", []string{"Content-Type", "application/xml"}, `<a/>`, 415, []string{`unsupported Content-Type "application/xml"`}},
		{"unsupported cloudevents format", "", []string{"Content-Type", "application/cloudevents+xml"}, `<a/>`, 415, []string{`unsupported CloudEvents format "application/cloudevents+xml"`}},

		// Malformed bodies
		{"empty json", "", []string{"Content-Type", "application/json"}, ``, 400, []string{"body is empty"}},
		{"empty octet-stream", "", []string{"Content-Type", "application/octet-stream"}, ``, 400, []string{"body is empty"}},
		{"empty ndjson", "", []string{"Content-Type", "application/x-ndjson"}, "\n\n", 400, []string{"no non-empty line"}},
		{"empty array", "", []string{"Content-Type", "application/json"}, `[]`, 400, []string{"array is empty"}},
		{"malformed json", "", []string{"Content-Type", "application/json"}, `[{"a":1},{"b":]`, 400, []string{"event 1", "invalid JSON at byte offset 14"}},
		{"trailing data", "", []string{"Content-Type", "application/json"}, `[1,2] [3]`, 400, []string{"invalid JSON at byte offset 6"}},
		{"json scalar", "", []string{"Content-Type", "application/json"}, `42`, 400, []string{"JSON array of events or one JSON object", "number"}},
		{"invalid utf-8", "", []string{"Content-Type", "application/json"}, "[\"ok\",\"\xff\"]", 400, []string{"event 1", "invalid UTF-8"}},
		{"malformed ndjson line", "", []string{"Content-Type", "application/x-ndjson"}, "1\n2\n{x}\n", 400, []string{"line 3 (event 2)", "invalid JSON"}},

		// Envelopes
		{"envelope not an array", "", []string{"Content-Type", gateway.MediaEnvelope}, `{"body":1}`, 400, []string{"JSON array of event objects", "object"}},
		{"envelope unknown field", "", []string{"Content-Type", gateway.MediaEnvelope}, `[{"body":1},{"bdy":2}]`, 400, []string{"event 1", `unknown field "bdy"`}},
		{"envelope two bodies", "", []string{"Content-Type", gateway.MediaEnvelope}, `[{"body":1,"body_text":"1"}]`, 400, []string{"event 0", "only one of body, body_text and body_base64"}},
		{"envelope bad base64", "", []string{"Content-Type", gateway.MediaEnvelope}, `[{"body":1},{"body_base64":"!!"}]`, 400, []string{"event 1", "body_base64 is not valid base64"}},
		{"envelope negative partition", "", []string{"Content-Type", gateway.MediaEnvelope}, `[{"body":1,"partition":-1}]`, 400, []string{"event 0", "partition -1 must not be negative"}},
		{"envelope element not an object", "", []string{"Content-Type", gateway.MediaEnvelope}, `[{"body":1},7]`, 400, []string{"event 1"}},
		{"envelope property not a string", "", []string{"Content-Type", gateway.MediaEnvelope}, `[{"body":1,"properties":{"n":1}}]`, 400, []string{"event 0", "properties"}},
		{"envelope partition beyond the hub", "", []string{"Content-Type", gateway.MediaEnvelope}, `[{"body":1,"partition":0},{"body":2,"partition":4}]`, 400, []string{"partition 4 for event 1", "partitions 0 to 3"}},

		// CloudEvents
		{"cloudevent missing id", "", []string{"Content-Type", "application/cloudevents+json"}, `{"specversion":"1.0","source":"/s","type":"t"}`, 400, []string{"event 0", "required attribute id"}},
		{"cloudevent wrong version", "", []string{"Content-Type", "application/cloudevents+json"}, `{"specversion":"0.3","id":"1","source":"/s","type":"t"}`, 400, []string{`specversion "0.3"`}},
		{"cloudevent array", "", []string{"Content-Type", "application/cloudevents+json"}, `[{` + ce + `}]`, 400, []string{"application/cloudevents-batch+json"}},
		{"cloudevent batch bad second", "", []string{"Content-Type", "application/cloudevents-batch+json"}, `[{` + ce + `},{` + ce + `,"time":"noon"}]`, 400, []string{"event 1", `attribute time "noon"`}},
		{"cloudevent binary missing type", "", []string{"Content-Type", "text/plain", "ce-specversion", "1.0", "ce-id", "1", "ce-source", "/s"}, `x`, 400, []string{"required attribute type"}},

		// Sizes
		{"event too large", "", []string{"Content-Type", "application/octet-stream"}, big, 413, []string{"event 0 is 1001 bytes", "limit of 1000 bytes"}},
		{"last event of a batch too large", "", []string{"Content-Type", "application/json"}, `[1,2,"` + big + `"]`, 413, []string{"event 2 is", "limit of 1000 bytes"}},
		{"properties count toward the size", "", []string{"Content-Type", gateway.MediaEnvelope}, `[{"body":1},{"body_text":"` + big[:900] + `","properties":{"p":"` + big[:100] + `"}}]`, 413, []string{"event 1 is 1001 bytes"}},
		{"partition key counts toward the size", "?partitionKey=" + big[:999], []string{"Content-Type", "application/json"}, `[1,22]`, 413, []string{"event 1 is 1001 bytes"}},
		{"too many events", "", []string{"Content-Type", "application/json"}, tooMany.String(), 413, []string{"more than 50 events"}},
		{"too many lines", "", []string{"Content-Type", "application/x-ndjson"}, tooManyLines.String(), 413, []string{"more than 50 events"}},
		{"request too large", "", []string{"Content-Type", "application/octet-stream"}, strings.Repeat("y", maxRequestBytes+1), 413, []string{"over the limit of 65536 bytes"}},

		// Placement
		{"partition not a number", "?partition=abc", []string{"Content-Type", "application/json"}, `[1]`, 400, []string{"partition must be a non-negative integer", `"abc"`}},
		{"negative partition", "?partition=-1", []string{"Content-Type", "application/json"}, `[1]`, 400, []string{"partition must be a non-negative integer"}},
		{"partition beyond the hub", "?partition=4", []string{"Content-Type", "application/json"}, `[1,2]`, 400, []string{"partition 4", "hub strict has partitions 0 to 3"}},
		{"huge partition", "?partition=99999999999", []string{"Content-Type", "application/json"}, `[1]`, 400, []string{"partition"}},
		{"partition and key", "?partition=1&partitionKey=k", []string{"Content-Type", "application/json"}, `[1]`, 400, []string{"partition and partitionKey are both given"}},
		{"partition twice", "?partition=1&partition=2", []string{"Content-Type", "application/json"}, `[1]`, 400, []string{"partition is given 2 times"}},
		{"empty key", "?partitionKey=", []string{"Content-Type", "application/json"}, `[1]`, 400, []string{"partitionKey is empty"}},

		// Message ids
		{"message id too long", "", []string{"Content-Type", "text/plain", "Message-Id", strings.Repeat("m", 129)}, `x`, 400, []string{"header Message-Id", "129 bytes, the limit is 128 bytes"}},
		{"message id with a control character", "", []string{"Content-Type", gateway.MediaEnvelope}, `[{"body":1,"message_id":"ok"},{"body":2,"message_id":"a\u007fb"}]`, 400, []string{"event 1", "control character U+007F"}},
		{"message id header for several events", "", []string{"Content-Type", "application/json", "Message-Id", "m"}, `[1,2]`, 400, []string{"request carries 2", "message_id per event"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.do(t, "POST", "/api/v1/hubs/"+h+"/events"+c.query, []byte(c.body), c.header...)
			requireError(t, r, c.code, c.parts...)
			require.Equal(t, []uint64{0, 0, 0, 0}, f.records(t, h), "a rejected request writes nothing")
		})
	}

	// The hub still takes good events, and records counts them.
	pos := f.publish(t, h, "", "application/json", []byte(`[1]`))
	require.Len(t, pos, 1)
	recs := f.records(t, h)
	require.Equal(t, uint64(1), recs[pos[0].Partition])
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const h = "r"
	f.createHub(t, h, 2)
	path := "/api/v1/hubs/" + h + "/partitions/"
	cases := []struct {
		name, path string
		parts      []string
	}{
		{"partition not a number", path + "x/events", []string{`partition "x"`, "hub r has partitions 0 to 1"}},
		{"negative partition", path + "-1/events", []string{`partition "-1"`}},
		{"partition beyond the hub", path + "2/events", []string{`partition "2"`, "partitions 0 to 1"}},
		{"after not a number", path + "0/events?after=last", []string{`after="last"`, "or -1"}},
		{"after below -1", path + "0/events?after=-2", []string{`after="-2"`}},
		{"after empty", path + "0/events?after=", []string{`after=""`}},
		{"bad from", path + "0/events?from=yesterday", []string{`from="yesterday"`, "RFC 3339"}},
		{"from beyond 2262", path + "0/events?from=2999-01-01T00:00:00Z", []string{"between 1970 and 2262"}},
		{"limit zero", path + "0/events?limit=0", []string{`limit="0"`, "1 to 10000"}},
		{"limit not a number", path + "0/events?limit=all", []string{`limit="all"`}},
		{"limit too big", path + "0/events?limit=10001", []string{`limit="10001"`}},
		{"wait not a duration", path + "0/events?wait=forever", []string{`wait="forever"`, "up to 1m"}},
		{"negative wait", path + "0/events?wait=-1s", []string{`wait="-1s"`}},
		{"wait too long", path + "0/events?wait=2m", []string{`wait="2m"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireError(t, f.do(t, "GET", c.path, nil), http.StatusBadRequest, c.parts...)
		})
	}
}

// TestReadNoWait checks wait=0 and very short waits: a poll that returns at
// once with what is stored.
func TestReadNoWait(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createHub(t, "h", 1)
	r := f.do(t, "GET", "/api/v1/hubs/h/partitions/0/events?wait=0s", nil)
	require.Equal(t, http.StatusOK, r.Code, "answer: %s", r.Body)
	r = f.do(t, "GET", "/api/v1/hubs/h/partitions/0/events?wait=1ms", nil)
	require.Equal(t, http.StatusOK, r.Code, "answer: %s", r.Body)
}

func TestLagErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createHub(t, "h", 2)
	for _, g := range []string{"bad.group", "-x", "$$x", strings.Repeat("g", 51)} {
		requireError(t, f.do(t, "GET", "/api/v1/hubs/h/groups/"+g+"/lag", nil), http.StatusBadRequest,
			fmt.Sprintf("consumer group %q", g))
	}
	lag := f.lag(t, "h", "$Default")
	require.Zero(t, lag.TotalEvents)
	require.Len(t, lag.Partitions, 2)
	require.Equal(t, int64(-1), lag.Partitions[0].LastSequence)
}

func TestReplay(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	const h, g = "rh", "workers"
	f.createHub(t, h, 2)

	// Partition 1: one record of two events; then partition 0: three records.
	p1 := f.publish(t, h, "?partition=1", "application/json", []byte(`[1,2]`))
	var p0 []hub.Position
	for i := range 3 {
		p0 = append(p0, f.publish(t, h, "?partition=0", "application/json", fmt.Appendf(nil, "[%d]", i))...)
	}
	// The group has processed everything.
	for p, last := range map[int]int64{0: p0[2].Sequence, 1: p1[1].Sequence} {
		_, err := f.svc.PutCheckpoint(ctx, h, g, p, hub.Checkpoint{Sequence: last}, 0)
		require.NoError(t, err)
	}
	require.Zero(t, f.lag(t, h, g).TotalEvents)

	t.Run("earliest", func(t *testing.T) {
		res := f.replay(t, h, g, `{"earliest": true, "grace": "0s"}`)
		require.Equal(t, h, res.Hub)
		require.Equal(t, g, res.Group)
		require.Equal(t, []hub.ReplayResult{
			{Partition: 0, Before: p0[2].Sequence, After: -1},
			{Partition: 1, Before: p1[1].Sequence, After: -1},
		}, res.Partitions)
		require.Equal(t, int64(-1), f.checkpoint(t, h, g, 0))
		require.Equal(t, int64(-1), f.checkpoint(t, h, g, 1))
		require.Equal(t, int64(5), f.lag(t, h, g).TotalEvents)
	})

	t.Run("time in the future", func(t *testing.T) {
		res := f.replay(t, h, g, `{"time": "2999-01-01T00:00:00Z", "grace": "10ms"}`)
		require.Len(t, res.Partitions, 2)
		require.Equal(t, p0[2].Sequence, f.checkpoint(t, h, g, 0))
		require.Equal(t, p1[1].Sequence, f.checkpoint(t, h, g, 1))
		require.Zero(t, f.lag(t, h, g).TotalEvents)
	})

	t.Run("sequences", func(t *testing.T) {
		res := f.replay(t, h, g, fmt.Sprintf(`{"sequences": {"0": %d}, "grace": "0s"}`, p0[1].Sequence))
		require.Equal(t, []hub.ReplayResult{{Partition: 0, Before: p0[2].Sequence, After: p0[1].Sequence - 1}}, res.Partitions)
		require.Equal(t, p0[1].Sequence-1, f.checkpoint(t, h, g, 0))
		require.Equal(t, p1[1].Sequence, f.checkpoint(t, h, g, 1), "partitions not named are left alone")
		lag := f.lag(t, h, g)
		require.Equal(t, int64(2), lag.Partitions[0].Events)
		require.Equal(t, int64(2), lag.TotalEvents)
	})

	t.Run("time", func(t *testing.T) {
		// The third record of partition 0 was enqueued at this time; partition
		// 1 has nothing that recent.
		at := f.eventAt(t, h, p0[2]).EnqueuedTime
		res := f.replay(t, h, g, fmt.Sprintf(`{"time": %q, "grace": "0s"}`, at.Format(time.RFC3339Nano)))
		require.Len(t, res.Partitions, 2)
		require.Equal(t, p0[2].Sequence-1, f.checkpoint(t, h, g, 0))
		require.Equal(t, p1[1].Sequence, f.checkpoint(t, h, g, 1))
		require.Equal(t, int64(1), f.lag(t, h, g).TotalEvents)
	})

	t.Run("time in the past", func(t *testing.T) {
		f.replay(t, h, g, `{"time": "2000-01-01T00:00:00+01:00", "grace": "0s"}`)
		require.Equal(t, p0[0].Sequence-1, f.checkpoint(t, h, g, 0))
		require.Equal(t, p1[0].Sequence-1, f.checkpoint(t, h, g, 1))
		require.Equal(t, int64(5), f.lag(t, h, g).TotalEvents)
	})
}

func TestReplayErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	const h = "rp"
	f.createHub(t, h, 2)
	rev0, err := f.svc.PutCheckpoint(ctx, h, "g", 0, hub.Checkpoint{Sequence: 70000}, 0)
	require.NoError(t, err)

	cases := []struct {
		name, group, body string
		parts             []string
	}{
		{"empty body", "g", ``, []string{"body is empty"}},
		{"malformed", "g", `{"earliest":`, []string{"not valid JSON"}},
		{"wrong type", "g", `{"earliest":"yes"}`, []string{"not valid JSON", "earliest"}},
		{"unknown field", "g", `{"earlist":true}`, []string{`unknown field "earlist"`}},
		{"trailing data", "g", `{"earliest":true} {}`, []string{"after the JSON object"}},
		{"trailing brace", "g", `{"earliest":true}}`, []string{"after the JSON object"}},
		{"no target", "g", `{"grace":"0s"}`, []string{"exactly one of earliest, a time, or sequence numbers"}},
		{"false earliest", "g", `{"earliest":false,"grace":"0s"}`, []string{"exactly one of"}},
		{"empty sequences", "g", `{"sequences":{},"grace":"0s"}`, []string{"exactly one of"}},
		{"two targets", "g", `{"earliest":true,"time":"2026-01-02T15:04:05Z","grace":"0s"}`, []string{"exactly one of"}},
		{"three targets", "g", `{"earliest":true,"time":"2026-01-02T15:04:05Z","sequences":{"0":1},"grace":"0s"}`, []string{"exactly one of"}},
		{"bad time", "g", `{"time":"yesterday"}`, []string{`time "yesterday"`, "RFC 3339"}},
		{"time without zone", "g", `{"time":"2026-01-02T15:04:05"}`, []string{`time "2026-01-02T15:04:05"`}},
		{"year 1", "g", `{"time":"0001-01-01T00:00:00Z"}`, []string{`time "0001-01-01T00:00:00Z" is before 1970`, `"earliest": true`}},
		{"before 1970", "g", `{"time":"1969-12-31T23:59:59Z"}`, []string{"is before 1970"}},
		{"year 10000", "g", `{"time":"10000-01-01T00:00:00Z"}`, []string{`time "10000-01-01T00:00:00Z"`, "RFC 3339"}},
		{"month 13", "g", `{"time":"2026-13-01T00:00:00Z"}`, []string{`time "2026-13-01T00:00:00Z": month out of range`}},
		{"sequence past the end", "g", `{"sequences":{"1":1099511627776},"grace":"0s"}`, []string{
			"replay sequence 1099511627776 for partition 1", "holds no events", "next event will be sequence 65536"}},
		{"bad sequences key", "g", `{"sequences":{"p0":1}}`, []string{`key "p0" is not a partition number`}},
		{"sequence not a number", "g", `{"sequences":{"0":"1"}}`, []string{"not valid JSON", "sequences"}},
		{"partition beyond the hub", "g", `{"sequences":{"0":1,"2":1},"grace":"0s"}`, []string{"replay partition 2", "partitions 0 to 1"}},
		{"negative partition", "g", `{"sequences":{"-1":1},"grace":"0s"}`, []string{"replay partition -1"}},
		{"negative sequence", "g", `{"sequences":{"0":-1},"grace":"0s"}`, []string{"replay sequence -1 for partition 0", "must not be negative"}},
		{"bad grace", "g", `{"earliest":true,"grace":"soon"}`, []string{`grace "soon"`, "up to 5m"}},
		{"negative grace", "g", `{"earliest":true,"grace":"-1s"}`, []string{`grace "-1s"`}},
		{"grace too long", "g", `{"earliest":true,"grace":"6m"}`, []string{`grace "6m"`}},
		{"bad group", "bad.group", `{"earliest":true,"grace":"0s"}`, []string{`consumer group "bad.group"`}},
		{"group too long", strings.Repeat("g", 51), `{"earliest":true,"grace":"0s"}`, []string{"consumer group"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.do(t, "POST", "/api/v1/hubs/"+h+"/groups/"+c.group+"/replay", []byte(c.body), "Content-Type", "application/json")
			requireError(t, r, http.StatusBadRequest, c.parts...)
			// The checkpoints did not move.
			cp, rev, err := f.svc.GetCheckpoint(ctx, h, "g", 0)
			require.NoError(t, err)
			require.Equal(t, int64(70000), cp.Sequence)
			require.Equal(t, rev0, rev)
			cp, rev, err = f.svc.GetCheckpoint(ctx, h, "g", 1)
			require.NoError(t, err)
			require.Equal(t, int64(-1), cp.Sequence)
			require.Zero(t, rev)
		})
	}
}

// TestReplayPastTheLastEvent: a replay to a sequence past a partition's
// last event is refused, naming that event; it would skip every new one.
func TestReplayPastTheLastEvent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createHub(t, "h", 1)
	pos := f.publish(t, "h", "", "application/json", []byte(`[1,2]`))
	last := pos[1].Sequence
	r := f.do(t, "POST", "/api/v1/hubs/h/groups/$Default/replay", fmt.Appendf(nil, `{"sequences":{"0":%d},"grace":"0s"}`, last+2), jsonType...)
	requireError(t, r, http.StatusBadRequest, fmt.Sprintf("replay sequence %d for partition 0", last+2),
		fmt.Sprintf("past the partition's last event, sequence %d", last), fmt.Sprintf("up to %d", last+1))
	_, rev, err := f.svc.GetCheckpoint(context.Background(), "h", hub.DefaultGroup, 0)
	require.NoError(t, err)
	require.Zero(t, rev, "no checkpoint written")

	res := f.replay(t, "h", "$Default", fmt.Sprintf(`{"sequences":{"0":%d},"grace":"0s"}`, last+1))
	require.Equal(t, []hub.ReplayResult{{Partition: 0, Before: -1, After: last}}, res.Partitions)
}

// TestUnknownGroup: lag and replay of a consumer group that has no
// checkpoint answer 404 naming the hub's groups; a replay may create it.
func TestUnknownGroup(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.createHub(t, "h", 2)
	_, err := f.svc.PutCheckpoint(ctx, "h", "audit", 1, hub.Checkpoint{Sequence: -1}, 0)
	require.NoError(t, err)
	_, err = f.svc.PutCheckpoint(ctx, "h", "billing", 0, hub.Checkpoint{Sequence: -1}, 0)
	require.NoError(t, err)

	requireError(t, f.do(t, "GET", "/api/v1/hubs/h/groups/audt/lag", nil), http.StatusNotFound,
		"consumer group audt of hub h not found", "its groups are audit, billing", "check the name")
	requireError(t, f.do(t, "POST", "/api/v1/hubs/h/groups/audt/replay", []byte(`{"earliest":true,"grace":"0s"}`), jsonType...),
		http.StatusNotFound, "consumer group audt of hub h not found", "its groups are audit, billing", `"create": true`)
	groups, err := f.svc.Groups(ctx, "h")
	require.NoError(t, err)
	require.Equal(t, []string{"audit", "billing"}, groups, "nothing created")

	// Known groups and $Default answer.
	require.Len(t, f.lag(t, "h", "audit").Partitions, 2)
	require.Len(t, f.lag(t, "h", "$Default").Partitions, 2)

	// create starts the group at the target.
	res := f.replay(t, "h", "audt", `{"earliest":true,"grace":"0s","create":true}`)
	require.Len(t, res.Partitions, 2)
	require.Len(t, f.lag(t, "h", "audt").Partitions, 2)
	groups, err = f.svc.Groups(ctx, "h")
	require.NoError(t, err)
	require.Equal(t, []string{"audit", "audt", "billing"}, groups)
}

// TestPublishEnvelopeNullElement: a null where an envelope event object
// belongs is malformed input, not an empty event.
func TestPublishEnvelopeNullElement(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createHub(t, "h", 1)
	r := f.do(t, "POST", "/api/v1/hubs/h/events", []byte(`[{"body":1},null]`), "Content-Type", gateway.MediaEnvelope)
	requireError(t, r, http.StatusBadRequest, "event 1")
	require.Equal(t, []uint64{0}, f.records(t, "h"))
}

func TestAdminBodyOverOneMiBIsTooLarge(t *testing.T) {
	t.Parallel()
	f := setup(t)
	body := []byte(`{"name":"big","retention":"` + strings.Repeat(" ", 1<<20) + `"}`)
	requireError(t, f.do(t, "POST", "/api/v1/hubs", body, "Content-Type", "application/json"), http.StatusRequestEntityTooLarge, "over the limit of 1048576 bytes")
}

func TestPublishMessageIDs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const h = "once"
	f.createHub(t, h, 2)

	// One raw event with a Message-Id header, sent twice: stored once.
	first := f.publish(t, h, "", "text/plain", []byte("created"), "Message-Id", "order-17-created")
	again := f.publish(t, h, "", "text/plain", []byte("created"), "Message-Id", "order-17-created")
	require.Equal(t, first, again, "a request sent again answers with the stored event's position")
	require.Equal(t, "created", *f.eventAt(t, h, first[0]).Body)

	// Envelopes carry an id per event; the ids are shared with the header's.
	pos := f.publish(t, h, "", gateway.MediaEnvelope, []byte(`[
		{"body_text":"created again","message_id":"order-17-created"},
		{"body_text":"paid","message_id":"order-17-paid","partition_key":"order-17"},
		{"body_text":"paid again","message_id":"order-17-paid"},
		{"body_text":"no id"}]`))
	require.Equal(t, first[0], pos[0])
	require.Equal(t, pos[1], pos[2], "the same id twice in one request")
	require.Equal(t, "paid", *f.eventAt(t, h, pos[1]).Body)

	// CloudEvents are not de-duplicated by their id attribute.
	ce := []byte(`{"specversion":"1.0","id":"e1","source":"/s","type":"t","data":1}`)
	c1 := f.publish(t, h, "", "application/cloudevents+json", ce)
	c2 := f.publish(t, h, "", "application/cloudevents+json", ce)
	require.NotEqual(t, c1, c2)

	// Every stored event, read up to each partition's last one (a read
	// may answer part of what is stored).
	_, parts, err := f.svc.Describe(context.Background(), h)
	require.NoError(t, err)
	var events int
	for _, part := range parts {
		for after := part.FirstSequence - 1; part.LastSequence >= 0 && after < part.LastSequence; {
			evs := f.read(t, h, part.Partition, fmt.Sprintf("after=%d&limit=100&wait=10s", after))
			require.NotEmpty(t, evs)
			events += len(evs)
			after = evs[len(evs)-1].Sequence
		}
	}
	require.Equal(t, 5, events, "created, paid, no id and two CloudEvents")
}

// allFixture is an API server on hubs, queues and documents at once.
type allFixture struct {
	*fixture
	queues *queue.Service
	docs   *sqlite.Store
}

func setupAll(t *testing.T) *allFixture {
	t.Helper()
	eng := enginetest.Embedded(t)
	svc, err := hub.Open(context.Background(), eng.JS, eng.MaxPayload(), hub.Options{MaxEventBytes: maxEventBytes})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, svc.Stop(context.Background())) })
	qs := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { require.NoError(t, qs.Stop(context.Background())) })
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "docs.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	srv := httptest.NewServer(gateway.NewServer(gateway.Config{Hubs: svc, Queues: qs, Docs: store,
		Logger: slog.New(slog.DiscardHandler), MaxEventBytes: maxEventBytes, MaxRequestBytes: maxRequestBytes, MaxEvents: maxEvents}))
	t.Cleanup(srv.Close)
	return &allFixture{fixture: &fixture{svc: svc, url: srv.URL}, queues: qs, docs: store}
}

// TestDuplicateMembersAreRefused: a JSON request body in which an object
// names a member twice is refused with 400 naming the member, whatever
// the route, and writes nothing. Event and message bodies are the
// sender's data and pass as they are.
func TestDuplicateMembersAreRefused(t *testing.T) {
	t.Parallel()
	f := setupAll(t)
	ctx := context.Background()
	f.createHub(t, "h", 1)
	f.doJSON(t, http.StatusCreated, nil, "POST", "/api/v1/queues", []byte(`{"name":"q"}`), jsonType...)
	f.doJSON(t, http.StatusCreated, nil, "POST", "/api/v1/containers", []byte(`{"name":"c","partition_key_path":"/k"}`), jsonType...)
	f.doJSON(t, http.StatusOK, nil, "PUT", "/api/v1/containers/c/docs", []byte(`{"id":"a","k":"p","n":1}`), jsonType...)
	pub := func(p int) int64 {
		_, parts, err := f.svc.Describe(ctx, "h")
		require.NoError(t, err)
		return int64(parts[p].Records)
	}
	hubsBefore, err := f.svc.List(ctx)
	require.NoError(t, err)
	feedBefore, err := f.docs.LastLSN(ctx, "c")
	require.NoError(t, err)

	for _, c := range []struct {
		method, path, ctype, body string
		parts                     []string
	}{
		{"POST", "/api/v1/hubs", "application/json", `{"name":"x","partitions":1,"name":"y"}`, []string{`member "name" appears twice`, "top-level object"}},
		{"POST", "/api/v1/hubs/h/groups/g/replay", "application/json", `{"sequences":{"0":1,"0":2},"create":true,"grace":"0s"}`, []string{`member "0" appears twice`, "sequences"}},
		{"POST", "/api/v1/queues", "application/json", `{"name":"q2","lock":"1s","lock":"2s"}`, []string{`member "lock" appears twice`}},
		{"POST", "/api/v1/queues/q/messages", "application/json", `{"messages":[],"messages":[{"body":1}]}`, []string{`member "messages" appears twice`}},
		{"POST", "/api/v1/queues/q/messages", "application/json", `{"messages":[{"body":1},{"body":1,"body":2}]}`, []string{"message 1", `member "body" appears twice`}},
		{"POST", "/api/v1/queues/q/messages", "application/json", `{"messages":[{"body_text":"x","properties":{"a":"1","a":"2"}}]}`, []string{"message 0", "properties", `member "a" appears twice`}},
		{"POST", "/api/v1/hubs/h/events", gateway.MediaEnvelope, `[{"body":1,"body":2}]`, []string{"event 0", `member "body" appears twice`}},
		{"POST", "/api/v1/hubs/h/events", gateway.MediaEnvelope, `[{"body":1},{"body_text":"x","properties":{"p":"1","p":"2"}}]`, []string{"event 1", `member "p" appears twice`}},
		{"POST", "/api/v1/hubs/h/events", gateway.MediaEnvelope, `[{"body_text":"x","partition_key":"a","partition_key":"b"}]`, []string{"event 0", `member "partition_key" appears twice`}},
		{"POST", "/api/v1/containers", "application/json", `{"name":"d","partition_key_path":"/k","name":"e"}`, []string{`member "name" appears twice`}},
		{"POST", "/api/v1/containers/c/docs", "application/json", `{"id":"b","k":"p","x":{"y":1,"y":2}}`, []string{`invalid document: member "y" appears twice in the object at x`}},
		{"PUT", "/api/v1/containers/c/docs", "application/json", `{"id":"a","k":"p","n":2,"n":3}`, []string{`member "n" appears twice`}},
		{"PUT", "/api/v1/containers/c/docs/p/a", "application/json", `{"id":"a","k":"p","id":"a"}`, []string{`member "id" appears twice`}},
		{"PATCH", "/api/v1/containers/c/docs/p/a", "application/json", `{"n":5,"n":6}`, []string{`invalid patch: member "n" appears twice`}},
		{"POST", "/api/v1/containers/c/docs/bulk", "application/json", `{"documents":[{"id":"b","k":"p"}],"documents":[]}`, []string{`member "documents" appears twice`}},
		{"POST", "/api/v1/containers/c/docs/bulk", "application/json", `{"documents":[{"id":"b","k":"p"},{"id":"c","k":"p","k":"q"}]}`, []string{`member "k" appears twice`, "documents[1]"}},
		{"POST", "/api/v1/containers/c/query", "application/json", `{"query":"c.n = 1","query":"c.n = 2"}`, []string{`member "query" appears twice`}},
		{"POST", "/api/v1/containers/c/query", "application/json", `{"query":"c.n = @v","parameters":{"v":1,"v":2}}`, []string{`member "v" appears twice`, "parameters"}},
		{"POST", "/api/v1/deadletters/redrive", "application/json", `{"queue":"q-poison","ids":[1],"queue":"sluice-deadletters"}`, []string{`member "queue" appears twice`}},
	} {
		r := f.do(t, c.method, c.path, []byte(c.body), "Content-Type", c.ctype)
		requireError(t, r, http.StatusBadRequest, c.parts...)
	}

	// Nothing was written.
	hubsAfter, err := f.svc.List(ctx)
	require.NoError(t, err)
	require.Equal(t, hubsBefore, hubsAfter)
	require.Zero(t, pub(0))
	_, err = f.queues.Get(ctx, "q2")
	require.ErrorIs(t, err, queue.ErrNotFound)
	st, err := f.queues.Stats(ctx, "q")
	require.NoError(t, err)
	require.Zero(t, st.Depth+st.Delayed)
	feedAfter, err := f.docs.LastLSN(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, feedBefore, feedAfter)
	_, err = f.docs.GetContainer(ctx, "d")
	require.ErrorIs(t, err, docstore.ErrNotFound)
	cp, rev, err := f.svc.GetCheckpoint(ctx, "h", "g", 0)
	require.NoError(t, err)
	require.Zero(t, rev, "no checkpoint for group g: %+v", cp)

	// Bodies of events and messages are passed on as sent.
	f.publish(t, "h", "", "application/json", []byte(`{"a":1,"a":2}`))
	f.doJSON(t, http.StatusCreated, nil, "POST", "/api/v1/queues/q/messages", []byte(`{"messages":[{"body":{"a":1,"a":2}}]}`), jsonType...)
	require.Equal(t, int64(1), pub(0))
}

// requireUnavailable checks a 503 answer with Retry-After naming what
// does not answer.
func requireUnavailable(t *testing.T, r response, what string) {
	t.Helper()
	requireError(t, r, http.StatusServiceUnavailable, what+" does not answer", "retry in 5 seconds")
	require.Equal(t, "5", r.Header.Get("Retry-After"))
}

// TestEngineDownAnswers503: when the engine does not answer, requests get
// 503 with Retry-After, not 500.
func TestEngineDownAnswers503(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	svc, err := hub.Open(context.Background(), eng.JS, eng.MaxPayload(), hub.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, svc.Stop(context.Background())) })
	qs := queue.Open(eng.JS, eng.MaxPayload(), queue.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { require.NoError(t, qs.Stop(context.Background())) })
	srv := httptest.NewServer(gateway.NewServer(gateway.Config{Hubs: svc, Queues: qs, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	f := &fixture{svc: svc, url: srv.URL}
	f.createHub(t, "h", 1)
	f.doJSON(t, http.StatusCreated, nil, "POST", "/api/v1/queues", []byte(`{"name":"q"}`), jsonType...)
	require.NoError(t, eng.Close())

	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/hubs", ""},
		{"POST", "/api/v1/hubs", `{"name":"h2"}`},
		{"GET", "/api/v1/hubs/h", ""},
		{"POST", "/api/v1/hubs/h/events", `[1]`},
		{"GET", "/api/v1/hubs/h/groups/$Default/lag", ""},
		{"POST", "/api/v1/hubs/h/groups/$Default/replay", `{"earliest":true,"grace":"0s"}`},
		{"GET", "/api/v1/queues", ""},
		{"GET", "/api/v1/queues/q", ""},
		{"POST", "/api/v1/queues/q/messages", `{"messages":[{"body":1}]}`},
		{"GET", "/api/v1/deadletters", ""},
	} {
		requireUnavailable(t, f.do(t, c.method, c.path, []byte(c.body), jsonType...), "the engine (NATS JetStream)")
	}
}

// TestLeaderlessPartitionAnswers503: a publish to a partition whose stream
// exists but takes no records (as while a leader is elected) answers 503
// saying nothing was stored there, not 404 for a hub that exists.
func TestLeaderlessPartitionAnswers503(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createHub(t, "h", 1)
	ctx := context.Background()
	st, err := f.eng.JS.Stream(ctx, hub.StreamName("h", 0))
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	cfg.Subjects = []string{"detached.h"}
	_, err = f.eng.JS.UpdateStream(ctx, cfg)
	require.NoError(t, err)
	r := f.do(t, "POST", "/api/v1/hubs/h/events", []byte(`[1]`), jsonType...)
	requireUnavailable(t, r, "the engine (NATS JetStream)")
	require.Contains(t, string(r.Body), "nothing of this publish was stored")
}

// TestDocumentStoreDownAnswers503: a closed document store answers 503
// with Retry-After, not 500.
func TestDocumentStoreDownAnswers503(t *testing.T) {
	t.Parallel()
	f := setupDocs(t)
	f.createContainer(t, `{"name":"c","partition_key_path":"/k"}`)
	f.doJSON(t, http.StatusOK, nil, "PUT", "/api/v1/containers/c/docs", []byte(`{"id":"a","k":"p"}`), jsonType...)
	require.NoError(t, f.store.Close())
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/containers", ""},
		{"POST", "/api/v1/containers", `{"name":"d","partition_key_path":"/k"}`},
		{"PUT", "/api/v1/containers/c/docs", `{"id":"b","k":"p"}`},
		{"GET", "/api/v1/containers/c/docs/p/a", ""},
		{"POST", "/api/v1/containers/c/query", `{"query":"c.k = \"p\""}`},
		{"GET", "/api/v1/containers/c/feed", ""},
		{"DELETE", "/api/v1/containers/c/docs/p/a", ""},
	} {
		requireUnavailable(t, f.do(t, c.method, c.path, []byte(c.body), jsonType...), "the document store")
	}
}

// TestHubLargerThanStorage: a hub whose retention bytes the engine has no
// room for answers 507 saying what is available, and nothing is created.
func TestHubLargerThanStorage(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.do(t, "POST", "/api/v1/hubs", []byte(`{"name":"big","partitions":2,"retention_bytes":1152921504606846976}`), jsonType...)
	requireError(t, r, http.StatusInsufficientStorage, "insufficient storage for hub big",
		"retention_bytes 1152921504606846976: 576460752303423488 bytes for each of its 2 partitions",
		"insufficient storage resources available", "max_file_store", "Give a smaller retention_bytes")
	hubs, err := f.svc.List(context.Background())
	require.NoError(t, err)
	require.Empty(t, hubs)
	f.createHub(t, "big", 2)
}
