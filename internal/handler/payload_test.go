package handler

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
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
		add("queue-"+mode.String(), QueueMessage(inv, "order", "orders", msg, 30*time.Second))
		r, ok := Changes(inv, "documents", docs)
		require.True(t, ok)
		add("changes-"+mode.String(), r)

		retried := inv
		retried.Retry = &Retry{Count: 2, Max: 5, Last: errors.New("downstream 503")}
		add("queue-retry-"+mode.String(), QueueMessage(retried, "order", "orders", msg, 30*time.Second))
		add("timer-"+mode.String(), Timer(inv, "tick", sluice.TimerInfo{Scheduled: at, IsPastDue: true,
			Last: at.Add(-5 * time.Minute), Next: at.Add(5 * time.Minute), LastUpdated: at.Add(-5 * time.Minute)}, true))
		add("timer-unmonitored-"+mode.String(), Timer(inv, "tick", sluice.TimerInfo{Scheduled: at}, false))
		add("http-"+mode.String(), HTTP(inv, "req", HTTPRequest{URL: "http://127.0.0.1:7070/api/orders/7?verbose=1", Method: "POST",
			Query: map[string]string{"verbose": "1"}, Headers: map[string][]string{"Content-Type": {"application/json"}},
			Params: map[string]string{"id": "7"}, Body: []byte(`{"qty":2}`)}))
		add("http-binary-"+mode.String(), HTTP(inv, "req", HTTPRequest{URL: "http://127.0.0.1:7070/api/upload", Method: "PUT",
			Headers: map[string][]string{"Content-Type": {"application/octet-stream"}}, Body: []byte{1, 2, 3}, Binary: true}))
		binary := inv
		binary.Binary = true
		add("hub-batch-binary-"+mode.String(), HubBatch(binary, "events", src, events[:1]))
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
	q := QueueMessage(inv, "order", "orders", &sluice.Message{ID: 9, Body: []byte(`{"a":1}`), DequeueCount: 1}, time.Minute)
	require.JSONEq(t, `"\"{\\\"a\\\":1}\""`, string(q.Data["order"]))
	require.Equal(t, `"1"`, string(q.Metadata["DequeueCount"]))
	require.Equal(t, `"\"9\""`, string(q.Metadata["Id"]))

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
	require.True(t, bytes.Contains(q.Metadata["NextVisibleTime"], []byte("2026-11-21T09:31:00.123Z")))
}
