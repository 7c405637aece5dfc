package handler

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// TestHostPayloadShapes compares compat payloads with payloads the Azure
// Functions host sent (testdata/golden/host, see its README): each is
// rebuilt from the same invocation (its trigger's data, its headers, its
// route parameters) and must have the same keys everywhere, and values of
// the same kind: a string holding JSON holds the same kind of JSON, a date
// is written the same way (time zone, fraction of a second), a GUID is a
// GUID, a URL a URL.
func TestHostPayloadShapes(t *testing.T) {
	t.Parallel()
	// A time with a fraction of a second, as the captures' times have.
	now := time.Date(2026, 11, 21, 9, 30, 0, 123456700, time.UTC)
	inv := Invocation{Function: "f", Mode: Compat, Now: now}
	for name, build := range map[string]func(host Request) Request{
		"http-get": func(host Request) Request {
			var req struct {
				URL     string `json:"Url"`
				Method  string
				Headers map[string][]string
			}
			require.NoError(t, json.Unmarshal(host.Data["req"], &req))
			return HTTP(inv, "req", HTTPRequest{URL: req.URL, Method: req.Method, Headers: req.Headers, Params: map[string]string{}})
		},
		"queue": func(host Request) Request {
			body := decodeString(t, decodeString(t, string(host.Data["queue"])))
			m := &sluice.Message{ID: 7, Body: []byte(body), Enqueued: now.Add(-time.Second), DequeueCount: 1}
			return QueueMessage(inv, "queue", QueueSource{Queue: "orders", Lock: 10 * time.Minute}, m)
		},
		"timer": func(Request) Request {
			return Timer(inv, "timer", sluice.TimerInfo{Scheduled: now}, false)
		},
		"cosmos": func(host Request) Request {
			var docs []json.RawMessage
			require.NoError(t, json.Unmarshal([]byte(decodeString(t, decodeString(t, string(host.Data["documents"])))), &docs))
			changes := make([]sluice.Document, len(docs))
			for i, d := range docs {
				changes[i] = sluice.Document{ID: fmt.Sprint(i), Body: d}
			}
			r, ok := Changes(inv, "documents", changes)
			require.True(t, ok)
			return r
		},
		"blob": func(host Request) Request {
			data, err := base64.StdEncoding.DecodeString(decodeString(t, string(host.Data["file"])))
			require.NoError(t, err)
			b := sluice.Blob{Info: sluice.BlobInfo{Container: "myblob", Name: "output-metadata.json", Size: int64(len(data)),
				ContentType: "application/json", Modified: now, ETag: "e"}, Params: map[string]string{"name": "output-metadata.json"}}
			return BlobRequest(inv, "file", "", BlobURL("http://127.0.0.1:7071", "myblob", "output-metadata.json"), b, data)
		},
		"hub-batch": func(host Request) Request {
			var bodies []string
			require.NoError(t, json.Unmarshal([]byte(decodeString(t, string(host.Data["events"]))), &bodies))
			events := make([]sluice.Event, len(bodies))
			for i, b := range bodies {
				events[i] = sluice.Event{Body: []byte(b), Partition: 2, SequenceNumber: int64(59 + i), EnqueuedTime: now.Add(-time.Second)}
			}
			return HubBatch(inv, "events", HubSource{Hub: "azurelogs", Group: "$Default", Partition: 2}, events)
		},
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "golden", "host", name+".json"))
			require.NoError(t, err)
			var host Request
			require.NoError(t, json.Unmarshal(raw, &host))
			ours, err := json.Marshal(build(host))
			require.NoError(t, err)
			var want, got any
			require.NoError(t, json.Unmarshal(raw, &want))
			require.NoError(t, json.Unmarshal(ours, &got))
			if diffs := compareShapes("", want, got); len(diffs) > 0 {
				t.Fatalf("Sluice's %s payload differs from the host's:\n%s\nours: %s", name, strings.Join(diffs, "\n"), ours)
			}
		})
	}
}

// TestHostPayloadShapesCompare: the comparison sees what it must.
func TestHostPayloadShapesCompare(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		want, got string
		diff      string
	}{
		{`{"a":"1"}`, `{"a":"2"}`, ""},
		{`{"a":"1"}`, `{"a":1}`, "a: host sends a string holding a number, Sluice a number"},
		{`{"a":{"b":"x"}}`, `{"a":{"b":["x"]}}`, "a.b: host sends text, Sluice an array"},
		{`{"a":1}`, `{"a":1,"b":2}`, "b: Sluice sends a key the host does not"},
		{`{"a":1,"b":2}`, `{"a":1}`, "b: the host sends a key Sluice does not"},
		{`{"t":"2025-02-25T03:06:19+00:00"}`, `{"t":"2025-02-25T03:06:19.5Z"}`, "t: host sends a date (+00:00, seconds), Sluice a date (Z, fraction)"},
		{`{"g":"\"52d53c5f-e212-487e-998b-abbe3b9d51e4\""}`, `{"g":"\"17\""}`, "g: host sends a string holding a GUID, Sluice a string holding a string holding a number"},
		{`{"u":"\"https://a.b/c\""}`, `{"u":"\"/blobs/c\""}`, "u: host sends a string holding a URL, Sluice a string holding text"},
		{`{"l":[{"a":1}]}`, `{"l":[]}`, ""},
		{`{"n":null}`, `{"n":"null"}`, "n: host sends null, Sluice a string holding null"},
	} {
		var want, got any
		require.NoError(t, json.Unmarshal([]byte(tc.want), &want))
		require.NoError(t, json.Unmarshal([]byte(tc.got), &got))
		diffs := compareShapes("", want, got)
		if tc.diff == "" {
			require.Empty(t, diffs, tc.got)
		} else {
			require.Equal(t, []string{tc.diff}, diffs, tc.got)
		}
	}
}

func decodeString(t *testing.T, v string) string {
	t.Helper()
	var s string
	require.NoError(t, json.Unmarshal([]byte(v), &s), "%s is not a JSON string", v)
	return s
}

// compareShapes lists where got's shape differs from want's, by path.
func compareShapes(path string, want, got any) []string {
	ws, gs := kindOf(want), kindOf(got)
	if ws != gs {
		return []string{fmt.Sprintf("%s: host sends %s, Sluice %s", strings.TrimPrefix(path, "."), ws, gs)}
	}
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		var diffs []string
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range keys {
				if !yield(k) {
					return
				}
			}
		}) {
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inG:
				diffs = append(diffs, fmt.Sprintf("%s: the host sends a key Sluice does not", strings.TrimPrefix(path+"."+k, ".")))
			case !inW:
				diffs = append(diffs, fmt.Sprintf("%s: Sluice sends a key the host does not", strings.TrimPrefix(path+"."+k, ".")))
			default:
				diffs = append(diffs, compareShapes(path+"."+k, wv, gv)...)
			}
		}
		return diffs
	case []any:
		g := got.([]any)
		if len(w) == 0 || len(g) == 0 {
			return nil
		}
		return compareShapes(path+"[0]", w[0], g[0])
	case string:
		wj, wok := jsonIn(w)
		gj, gok := jsonIn(got.(string))
		if wok && gok {
			return compareShapes(path+"(json)", wj, gj)
		}
	}
	return nil
}

// jsonIn is the JSON value a string holds, if it holds one.
func jsonIn(s string) (any, bool) {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return nil, false
	}
	return v, true
}

var (
	dateText = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$`)
	guidText = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	urlText  = regexp.MustCompile(`^[a-z][a-z0-9+.-]*://[^/]`)
)

// kindOf names the kind of a decoded JSON value.
func kindOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case string:
		if inner, ok := jsonIn(v); ok {
			return "a string holding " + kindOf(inner)
		}
		if m := dateText.FindStringSubmatch(v); m != nil {
			zone, frac := m[2], "seconds"
			switch {
			case zone == "":
				zone = "no zone"
			case zone != "Z":
				zone = "+00:00"
			}
			if m[1] != "" {
				frac = "fraction"
			}
			return "a date (" + zone + ", " + frac + ")"
		}
		switch {
		case guidText.MatchString(v):
			return "a GUID"
		case urlText.MatchString(v):
			return "a URL"
		}
		return "text"
	}
	return fmt.Sprintf("%T", v)
}
