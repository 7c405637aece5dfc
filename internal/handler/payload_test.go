package handler

import (
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var at = time.Date(2026, 11, 21, 9, 30, 0, 123000000, time.UTC)

func invocation(mode Mode) Invocation {
	return Invocation{Function: "ingest", Mode: mode, Now: at, RandGuid: "00000000-0000-4000-8000-000000000000"}
}

// golden compares a request, indented, with testdata/golden/<name>.json.
func golden(t *testing.T, name string, r Request) {
	t.Helper()
	got, err := json.MarshalIndent(r, "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to write it")
	require.Equal(t, string(want), string(got), "request %s differs from %s", name, path)
}

var events = []sluice.Event{
	{Body: []byte(`{"deviceId":"d1","battery":80}`), Properties: map[string]string{"type": "telemetry"}, PartitionKey: "d1",
		Partition: 2, SequenceNumber: 4096, EnqueuedTime: at.Add(-time.Second)},
	{Body: []byte("plain text"), Partition: 2, SequenceNumber: 4097, EnqueuedTime: at.Add(-time.Second)},
	{Body: []byte{0xff, 0x00, 0x01}, Partition: 2, SequenceNumber: 4098, EnqueuedTime: at.Add(-time.Second)},
}

func TestGoldenRequests(t *testing.T) {
	for _, c := range goldenRequests(t) {
		golden(t, c.name, c.req)
	}
}

type namedRequest struct {
	name string
	req  Request
}

// goldenRequests are the requests of testdata/golden, in both modes.
func goldenRequests(t *testing.T) []namedRequest {
	src := HubSource{Hub: "telemetry", Group: "$Default", Partition: 2}
	msg := &sluice.Message{ID: 17, Body: []byte(`{"orderId":5}`), Enqueued: at.Add(-time.Minute), DequeueCount: 2,
		Properties: map[string]string{"source": "web"}}
	docs := []sluice.Document{
		{ID: "d1", PartitionKey: "d1", LSN: 7, Body: json.RawMessage(`{"id":"d1","deviceId":"d1","battery":80,"_etag":"\"7\"","_ts":1795253400,"_lsn":7}`)},
		{ID: "d2", PartitionKey: "d2", LSN: 8, Deleted: true},
	}
	var reqs []namedRequest
	add := func(name string, r Request) { reqs = append(reqs, namedRequest{name, r}) }
	for _, mode := range []Mode{Compat, Clean} {
		inv := invocation(mode)
		add("hub-batch-"+mode.String(), HubBatch(inv, "events", src, events))
		add("hub-event-"+mode.String(), HubEvent(inv, "event", src, events[0]))
		add("queue-"+mode.String(), QueueMessage(inv, "order", QueueSource{Queue: "orders", Lock: 30 * time.Second}, msg))
		r, ok := Changes(inv, "documents", docs)
		require.True(t, ok)
		add("changes-"+mode.String(), r)

		retried := inv
		retried.Retry = &Retry{Count: 2, Max: 5, Last: errors.New("downstream 503")}
		add("queue-retry-"+mode.String(), QueueMessage(retried, "order", QueueSource{Queue: "orders", Lock: 30 * time.Second}, msg))
		add("timer-"+mode.String(), Timer(inv, "tick", sluice.TimerInfo{Scheduled: at, IsPastDue: true,
			Last: at.Add(-5 * time.Minute), Next: at.Add(5 * time.Minute), LastUpdated: at.Add(-5 * time.Minute)}, true))
		add("timer-unmonitored-"+mode.String(), Timer(inv, "tick", sluice.TimerInfo{Scheduled: at}, false))
		add("http-"+mode.String(), HTTP(inv, "req", HTTPRequest{URL: "http://127.0.0.1:7070/api/orders/7?verbose=1&tag=a&tag=b", Method: "POST",
			Query: map[string][]string{"verbose": {"1"}, "tag": {"a", "b"}}, Headers: map[string][]string{"Content-Type": {"application/json"},
				"Accept": {"text/plain", "application/json"}, "Host": {"127.0.0.1:7070"}},
			Params: map[string]string{"id": "7"}, Unset: []string{"part"}, Body: []byte(`{"qty":2,"gift":true,"note":"x","items":[1],"ship":{"to":"A"},"none":null}`)}))
		add("http-binary-"+mode.String(), HTTP(inv, "req", HTTPRequest{URL: "http://127.0.0.1:7070/api/upload", Method: "PUT",
			Headers: map[string][]string{"Content-Type": {"application/octet-stream"}}, Body: []byte{1, 2, 3}, Binary: true}))
		add("http-get-"+mode.String(), HTTP(inv, "req", HTTPRequest{URL: "http://127.0.0.1:7070/api/orders", Method: "GET",
			Headers: map[string][]string{"Host": {"127.0.0.1:7070"}}}))
		binary := inv
		binary.Binary = true
		add("hub-batch-binary-"+mode.String(), HubBatch(binary, "events", src, events[:1]))
		b := sluice.Blob{Info: sluice.BlobInfo{Container: "uploads", Name: "in/report.json", Size: 12, ContentType: "application/json",
			Metadata: map[string]string{"source": "scanner"}, Modified: at.Add(-time.Second), ETag: "NUID123", Digest: "SHA-256=x"},
			Params: map[string]string{"name": "report"}}
		data := []byte(`{"rows": 12}`)
		uri := BlobURL("http://127.0.0.1:7070", b.Info.Container, b.Info.Name)
		add("blob-"+mode.String(), BlobRequest(inv, "blob", "", uri, b, data))
		add("blob-string-"+mode.String(), BlobRequest(inv, "blob", "string", uri, b, data))
	}
	return reqs
}

// TestCompatDecoding decodes compat payloads the way handlers written for
// Azure do, to show what they depend on.
func TestCompatDecoding(t *testing.T) {
	inv := invocation(Compat)
	src := HubSource{Hub: "telemetry", Group: "$Default", Partition: 2}

	// An event batch: a string holding a JSON array of the bodies' text.
	r := HubBatch(inv, "events", src, events[:2])
	var text string
	require.NoError(t, json.Unmarshal(r.Data["events"], &text))
	var bodies []string
	require.NoError(t, json.Unmarshal([]byte(text), &bodies))
	require.Equal(t, []string{`{"deviceId":"d1","battery":80}`, "plain text"}, bodies)
	var seqText string
	require.NoError(t, json.Unmarshal(r.Metadata["SequenceNumberArray"], &seqText))
	require.Equal(t, "[4096,4097]", seqText)

	// A queue message and a scalar string: JSON-encoded twice.
	q := QueueMessage(inv, "order", QueueSource{Queue: "orders", Lock: time.Minute}, &sluice.Message{ID: 9, Body: []byte(`{"a":1}`), DequeueCount: 1})
	require.JSONEq(t, `"\"{\\\"a\\\":1}\""`, string(q.Data["order"]))
	require.Equal(t, `"1"`, string(q.Metadata["DequeueCount"]))
	require.Equal(t, `"\"`+MessageGUID("orders", 9)+`\""`, string(q.Metadata["Id"]))

	// Change feed documents: decoded three times, from the wire to objects.
	c, ok := Changes(inv, "documents", []sluice.Document{{ID: "x", Body: json.RawMessage(`{"id":"x"}`)}})
	require.True(t, ok)
	var once, twice string
	require.NoError(t, json.Unmarshal(c.Data["documents"], &once))
	require.NoError(t, json.Unmarshal([]byte(once), &twice))
	var docs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(twice), &docs))
	require.Equal(t, "x", docs[0]["id"])

	// Tombstones only: nothing to send in compat mode.
	_, ok = Changes(inv, "documents", []sluice.Document{{ID: "x", Deleted: true}})
	require.False(t, ok)

	// Every request has sys.
	var s map[string]string
	require.NoError(t, json.Unmarshal(q.Metadata["sys"], &s))
	require.Equal(t, "ingest", s["MethodName"])
	require.Len(t, s["RandGuid"], 36)
	require.Equal(t, `"2026-11-21T09:31:00+00:00"`, string(q.Metadata["NextVisibleTime"]), "as the host writes a DateTimeOffset of the binding data")
}

// requireSameRequest: got, built by hand, is sent as the bytes json.Marshal
// wrote for want, built by the reference with encoding/json; and each of
// its values is as json.Marshal writes it.
func requireSameRequest(t *testing.T, name string, got, want Request) {
	t.Helper()
	wire, err := json.Marshal(want)
	require.NoError(t, err)
	require.Equal(t, string(wire), string(appendRequest(nil, got)), name)
	for _, values := range []map[string]json.RawMessage{got.Data, got.Metadata} {
		for k, v := range values {
			canonical, err := json.Marshal(v)
			require.NoError(t, err, "%s: %s", name, k)
			require.Equal(t, string(canonical), string(v), "%s: value %s is not as json.Marshal writes it", name, k)
		}
	}
}

// TestPayloadsAsReference: every payload is what the reference, the
// encoding/json implementation it replaced, sent.
func TestPayloadsAsReference(t *testing.T) {
	t.Parallel()
	checkPayloads(t, []byte(`{"deviceId":"d1","battery":80}`), []byte("plain <b>text</b> & \u2028"), "d1", "type", "telemetry", 4096, 0)
	checkPayloads(t, []byte(" { \"a\" : [1, 2, \"<\\\"x\\\">&\u2028\"] }\n"), []byte{0xff, 0, 1}, "", "", "", -1, 1)
	checkPayloads(t, []byte(`"json string"`), nil, "k\"ey", "p\nk", "\x00v\xffal", 1<<62, 2)
	checkPayloads(t, []byte(`null`), []byte("日本語 \t🎉"), "sys", "Query", "", 0, 3)
}

func FuzzPayloads(f *testing.F) {
	f.Add([]byte(`{"deviceId":"d1","battery":80}`), []byte("plain text"), "d1", "type", "telemetry", int64(4096), uint8(0))
	f.Add([]byte(" [1, \"<&>\" ,{\"\u2029\":null}] "), []byte{0xff, 0, 1}, "", "", "", int64(-5), uint8(1))
	f.Add([]byte(`"\\\"\u2028"`), []byte("\x7f\x1f"), "k\"ey", "p\nk", "\x00v\xffal", int64(1)<<40, uint8(2))
	f.Fuzz(checkPayloads)
}

func checkPayloads(t *testing.T, body1, body2 []byte, key, propKey, propVal string, seq int64, flags uint8) {
	src := HubSource{Hub: key + "hub", Group: propVal, Partition: int(seq % 32)}
	when := time.Unix(seq%(1<<36), seq%1e9).In(time.FixedZone("x", 3600))
	events := []sluice.Event{
		{Body: body1, Properties: map[string]string{propKey: propVal, "b": propVal + "x", "<": ""}, PartitionKey: key, SequenceNumber: seq, EnqueuedTime: when},
		{Body: body2, SequenceNumber: seq + 1, EnqueuedTime: when.Add(time.Second)},
	}
	if flags&4 != 0 {
		events[1].Properties = map[string]string{}
	}
	msg := &sluice.Message{ID: uint64(seq), Body: body1, Enqueued: when, DequeueCount: int(seq % 100), Properties: events[0].Properties}
	if flags&4 != 0 {
		msg.Properties = nil
	}
	docs := []sluice.Document{{ID: key, Deleted: true, LSN: seq}, {ID: "x", LSN: seq + 1}}
	if json.Valid(body1) {
		docs = append(docs, sluice.Document{ID: propVal, Body: body1})
	}
	httpReq := HTTPRequest{URL: "http://h/" + key, Method: propKey, Query: map[string][]string{propKey: {propVal, key}, "code": {"k"}, "Empty": {}},
		Headers: map[string][]string{propKey: {propVal, key}, "Empty": {}, "Nil": nil}, Params: map[string]string{key: propVal}, Unset: []string{propKey, "opt"},
		Body: body1, Binary: flags&8 != 0}
	if flags&16 != 0 {
		httpReq.Query, httpReq.Headers, httpReq.Params, httpReq.Unset = nil, nil, nil, nil
	}
	for _, mode := range []Mode{Compat, Clean} {
		inv := Invocation{Function: key, Mode: mode, Binary: flags&1 != 0, Now: when, RandGuid: "00000000-0000-4000-8000-000000000000"}
		if flags&2 != 0 {
			inv.Retry = &Retry{Count: int(seq % 7), Max: -1}
			if propVal != "" {
				inv.Retry.Last = errors.New(propVal)
			}
		}
		requireSameRequest(t, "HubBatch", HubBatch(inv, key, src, events), refHubBatch(inv, key, src, events))
		requireSameRequest(t, "HubBatch of none", HubBatch(inv, key, src, nil), refHubBatch(inv, key, src, nil))
		requireSameRequest(t, "HubEvent", HubEvent(inv, key, src, events[0]), refHubEvent(inv, key, src, events[0]))
		requireSameRequest(t, "HubEvent 2", HubEvent(inv, key, src, events[1]), refHubEvent(inv, key, src, events[1]))
		qs := QueueSource{Queue: propKey, Lock: time.Duration(seq % (1 << 40)), TTL: time.Duration(seq%3-1) * time.Hour}
		requireSameRequest(t, "QueueMessage", QueueMessage(inv, key, qs, msg), refQueueMessage(inv, key, qs, msg))
		got, gotOK := Changes(inv, key, docs)
		want, wantOK := refChanges(inv, key, docs)
		require.Equal(t, wantOK, gotOK)
		requireSameRequest(t, "Changes", got, want)
		info := sluice.TimerInfo{Scheduled: when, IsPastDue: flags&32 != 0, Last: when.Add(-time.Hour), Next: when.Add(time.Hour), LastUpdated: when}
		requireSameRequest(t, "Timer", Timer(inv, key, info, flags&64 != 0), refTimer(inv, key, info, flags&64 != 0))
		requireSameRequest(t, "HTTP", HTTP(inv, key, httpReq), refHTTP(inv, key, httpReq))
	}
}

// benchEvents are the events of `sluice bench handler`: 256-byte JSON
// bodies, no properties.
func benchEvents(n int) []sluice.Event {
	body := []byte(`{"pad":"` + strings.Repeat("x", 256-10) + `"}`)
	events := make([]sluice.Event, n)
	for i := range events {
		events[i] = sluice.Event{Body: body, Partition: 1, SequenceNumber: int64(1000 + i), EnqueuedTime: at}
	}
	return events
}

// BenchmarkHubBatch is the payload and the request body of one invocation
// of the benchmark's batch-100 case; ref is the encoding/json reference.
func BenchmarkHubBatch(b *testing.B) {
	events := benchEvents(100)
	src := HubSource{Hub: "bench-hub", Group: "$Default", Partition: 1}
	for _, mode := range []Mode{Compat, Clean} {
		inv := Invocation{Function: "noop", Mode: mode, Now: at}
		b.Run(mode.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := HubBatch(inv, "events", src, events)
				b.SetBytes(int64(len(appendRequest(make([]byte, 0, requestSize(r)), r))))
			}
		})
		b.Run(mode.String()+"/ref", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				wire, _ := json.Marshal(refHubBatch(inv, "events", src, events))
				b.SetBytes(int64(len(wire)))
			}
		})
	}
}

// BenchmarkQueueMessage is the payload and the request body of one
// invocation of the benchmark's batch-1 case.
func BenchmarkQueueMessage(b *testing.B) {
	m := &sluice.Message{ID: 17, Body: benchEvents(1)[0].Body, Enqueued: at, DequeueCount: 1}
	for _, mode := range []Mode{Compat, Clean} {
		inv := Invocation{Function: "noop", Mode: mode, Now: at}
		b.Run(mode.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := QueueMessage(inv, "message", QueueSource{Queue: "bench-queue", Lock: 30 * time.Second}, m)
				_ = appendRequest(make([]byte, 0, requestSize(r)), r)
			}
		})
		b.Run(mode.String()+"/ref", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = json.Marshal(refQueueMessage(inv, "message", QueueSource{Queue: "bench-queue", Lock: 30 * time.Second}, m))
			}
		})
	}
}

// TestHTTPMetadataAsLibrariesDecodeIt: Go libraries for custom handlers
// decode an HTTP trigger's metadata into maps of strings, as the host
// sends it: Headers (repeated values joined with commas) and Query (the
// last of repeated values); route values, query values and a JSON body's
// properties are keys of their own. Data.req keeps headers as arrays.
func TestHTTPMetadataAsLibrariesDecodeIt(t *testing.T) {
	t.Parallel()
	req := HTTPRequest{URL: "http://h/api/orders/7?tag=a&tag=b", Method: "POST", Query: map[string][]string{"tag": {"a", "b"}},
		Headers: map[string][]string{"Accept": {"text/plain", "application/json"}, "Content-Type": {"application/json"}},
		Params:  map[string]string{"id": "7"}, Body: []byte(`{"qty":2}`)}
	for _, mode := range []Mode{Compat, Clean} {
		wire, err := json.Marshal(HTTP(invocation(mode), "req", req))
		require.NoError(t, err)
		var got struct {
			Data map[string]struct {
				Headers map[string][]string
				Params  map[string]string
				Query   map[string]string
			}
			Metadata struct {
				Headers map[string]string
				Params  map[string]string
				Query   map[string]string
				Sys     struct{ MethodName string } `json:"sys"`
			}
		}
		require.NoError(t, json.Unmarshal(wire, &got), "%s: %s", mode, wire)
		require.Equal(t, map[string]string{"Accept": "text/plain,application/json", "Content-Type": "application/json"}, got.Metadata.Headers)
		require.Equal(t, map[string]string{"tag": "b"}, got.Metadata.Query)
		require.Nil(t, got.Metadata.Params, "the host sends route values as keys of their own, no Params")
		require.Equal(t, req.Headers, got.Data["req"].Headers)
		require.Equal(t, map[string]string{"tag": "a,b"}, got.Data["req"].Query)
		require.Equal(t, map[string]string{"id": "7"}, got.Data["req"].Params)

		var md map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(mustJSON(HTTP(invocation(mode), "req", req).Metadata), &md))
		want := map[Mode][3]string{Compat: {`"\"7\""`, `"\"b\""`, `"\"2\""`}, Clean: {`"7"`, `"b"`, `2`}}[mode]
		require.Equal(t, want, [3]string{string(md["id"]), string(md["tag"]), string(md["qty"])}, mode)
	}
}

// TestCompatMetadataKeys: each trigger's metadata has the host's keys, no
// more.
func TestCompatMetadataKeys(t *testing.T) {
	t.Parallel()
	inv := invocation(Compat)
	msg := &sluice.Message{ID: 17, Body: []byte(`x`), Enqueued: at, DequeueCount: 1, Properties: map[string]string{"a": "b"}}
	q := QueueMessage(inv, "m", QueueSource{Queue: "orders"}, msg)
	require.ElementsMatch(t, []string{"DequeueCount", "ExpirationTime", "Id", "InsertionTime", "NextVisibleTime", "PopReceipt", "sys"}, slices.Collect(maps.Keys(q.Metadata)))
	require.Regexp(t, `^"\\"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\\""$`, string(q.Metadata["Id"]))
	require.Equal(t, q.Metadata["Id"], QueueMessage(inv, "m", QueueSource{Queue: "orders"}, &sluice.Message{ID: 17, DequeueCount: 3}).Metadata["Id"], "the same at every delivery")
	require.NotEqual(t, q.Metadata["Id"], QueueMessage(inv, "m", QueueSource{Queue: "other"}, msg).Metadata["Id"])
	require.Equal(t, `"2026-11-28T09:30:00+00:00"`, string(q.Metadata["ExpirationTime"]))
	require.Equal(t, `"9999-12-31T23:59:59+00:00"`, string(QueueMessage(inv, "m", QueueSource{Queue: "orders", TTL: -1}, msg).Metadata["ExpirationTime"]))

	b := BlobRequest(inv, "b", "", BlobURL("http://127.0.0.1:7070", "c", "in/a.txt"), sluice.Blob{Info: sluice.BlobInfo{Container: "c", Name: "in/a.txt"}, Params: map[string]string{"name": "a"}}, nil)
	require.ElementsMatch(t, []string{"Uri", "Properties", "Metadata", "name", "sys"}, slices.Collect(maps.Keys(b.Metadata)))
	require.Equal(t, `"\"http://127.0.0.1:7070/api/v1/blobs/c/in/a.txt\""`, string(b.Metadata["Uri"]), "an absolute URL")

	e := HubEvent(inv, "e", HubSource{Hub: "h", Group: "$Default"}, events[1])
	require.ElementsMatch(t, []string{"PartitionContext", "Offset", "SequenceNumber", "EnqueuedTimeUtc", "Properties", "SystemProperties", "sys"}, slices.Collect(maps.Keys(e.Metadata)))
	require.Equal(t, `"4097"`, string(e.Metadata["Offset"]), "a number, as the extension's EventData.Offset is")
	require.Equal(t, `"2026-11-21T09:29:59"`, string(e.Metadata["EnqueuedTimeUtc"]), "a DateTime without a zone, the fraction lost")

	c, ok := Changes(inv, "d", []sluice.Document{{ID: "a", Body: json.RawMessage(`{"id":"a"}`)}})
	require.True(t, ok)
	require.ElementsMatch(t, []string{"sys"}, slices.Collect(maps.Keys(c.Metadata)))
	tm := Timer(inv, "t", sluice.TimerInfo{Scheduled: at}, false)
	require.ElementsMatch(t, []string{"sys"}, slices.Collect(maps.Keys(tm.Metadata)))
}

// TestNetTime: dates as .NET writes them: 7 digits of a second at most,
// trailing zeros dropped, in UTC with the zone of the value's type; those
// of the binding data to the second.
func TestNetTime(t *testing.T) {
	t.Parallel()
	for _, tm := range []time.Time{time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600)), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 100, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 99, time.UTC), maxDateTimeOffset} {
		for k, layout := range map[netTime]string{netUTC: "2006-01-02T15:04:05.9999999Z", netOffset: "2006-01-02T15:04:05.9999999+00:00",
			netOffsetSeconds: "2006-01-02T15:04:05+00:00", netLocal: "2006-01-02T15:04:05.9999999", netLocalSeconds: "2006-01-02T15:04:05"} {
			want := tm.UTC().Truncate(100 * time.Nanosecond).Format(layout)
			if k == netOffsetSeconds || k == netLocalSeconds {
				want = tm.UTC().Truncate(time.Second).Format(layout)
			}
			require.Equal(t, want, string(appendNetTime(nil, tm, k)), "%v, kind %d", tm, k)
		}
	}
	require.Equal(t, "2025-02-25T03:06:19+00:00", string(appendNetTime(nil, time.Date(2025, 2, 25, 4, 6, 19, 999e6, time.FixedZone("x", 3600)), netOffsetSeconds)))
}
