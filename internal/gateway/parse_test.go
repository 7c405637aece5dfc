package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/hub"
)

// parsedEvent is an event as the tests compare it: strings for readability, and no
// difference between nil and empty.
type parsedEvent struct {
	Body      string
	Props     map[string]string
	Key       string
	Partition int
	Explicit  bool
	ID        string
}

func viewEvents(events []hub.Event) []parsedEvent {
	out := make([]parsedEvent, len(events))
	for i, e := range events {
		out[i] = parsedEvent{Body: string(e.Body), Key: e.PartitionKey, Partition: e.Partition, Explicit: e.HasPartition, ID: e.MessageID}
		if len(e.Properties) > 0 {
			out[i].Props = e.Properties
		}
	}
	return out
}

// ceProps returns the properties of a CloudEvent with the given attributes
// (name, value pairs) on top of the required ones.
func ceProps(kv ...string) map[string]string {
	p := map[string]string{
		"cloudEvents:specversion": "1.0",
		"cloudEvents:id":          "1",
		"cloudEvents:source":      "/src",
		"cloudEvents:type":        "t",
	}
	for i := 0; i < len(kv); i += 2 {
		p["cloudEvents:"+kv[i]] = kv[i+1]
	}
	return p
}

// ceRequired are the members of a minimal structured CloudEvent, to put in
// front of the others.
const ceRequired = `"specversion":"1.0","id":"1","source":"/src","type":"t"`

// ceBinaryHeader returns the header of a minimal binary-mode CloudEvent plus kv.
func ceBinaryHeader(kv ...string) http.Header {
	h := http.Header{}
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", "1")
	h.Set("ce-source", "/src")
	h.Set("ce-type", "t")
	for i := 0; i < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1])
	}
	return h
}

type parseCase struct {
	name   string
	ct     string
	header http.Header
	query  string
	body   string
	lim    Limits
}

func (c parseCase) parse(t *testing.T) ([]hub.Event, error) {
	t.Helper()
	q, err := url.ParseQuery(c.query)
	require.NoError(t, err)
	return ParseEvents(c.ct, c.header, q, []byte(c.body), c.lim)
}

func TestParseEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		parseCase
		want []parsedEvent
	}{
		// application/json
		{parseCase{name: "json array keeps each element as sent", ct: "application/json",
			body: " [ {\"a\": 1} ,2,\"x\" ,\n[1, {\"b\":[]}], null, true, -1.5e3 ] \n"},
			[]parsedEvent{{Body: `{"a": 1}`}, {Body: `2`}, {Body: `"x"`}, {Body: `[1, {"b":[]}]`}, {Body: `null`}, {Body: `true`}, {Body: `-1.5e3`}}},
		{parseCase{name: "json strings with brackets and escapes", ct: "application/json",
			body: `["a]\"},", {"k":"[\\\"}]"}, "\u00e9"]`},
			[]parsedEvent{{Body: `"a]\"},"`}, {Body: `{"k":"[\\\"}]"}`}, {Body: `"\u00e9"`}}},
		{parseCase{name: "json object is one event", ct: "application/json", body: "\t{\"a\": [1, 2]}\r\n"},
			[]parsedEvent{{Body: `{"a": [1, 2]}`}}},
		{parseCase{name: "json media type case and parameters", ct: "Application/JSON ; charset=UTF-8", body: `[1]`},
			[]parsedEvent{{Body: `1`}}},
		{parseCase{name: "json duplicate keys pass as sent", ct: "application/json", body: `{"a":1,"a":2}`},
			[]parsedEvent{{Body: `{"a":1,"a":2}`}}},
		{parseCase{name: "json utf-8", ct: "application/json", body: `["héllo €"]`},
			[]parsedEvent{{Body: `"héllo €"`}}},

		// NDJSON
		{parseCase{name: "ndjson", ct: "application/x-ndjson", body: "{\"a\":1}\n\n  2 \r\n \"x\""},
			[]parsedEvent{{Body: `{"a":1}`}, {Body: `2`}, {Body: `"x"`}}},
		{parseCase{name: "jsonl", ct: "application/jsonl", body: "[1,2]\n{}\n"},
			[]parsedEvent{{Body: `[1,2]`}, {Body: `{}`}}},

		// raw
		{parseCase{name: "octet-stream", ct: "application/octet-stream", body: "\x00\xff[not json"},
			[]parsedEvent{{Body: "\x00\xff[not json"}}},
		{parseCase{name: "text/plain", ct: "text/plain; charset=utf-8", body: "hello\n"},
			[]parsedEvent{{Body: "hello\n"}}},

		// query parameters
		{parseCase{name: "partitionKey applies to every event", ct: "application/json", query: "partitionKey=k1", body: `[1,2]`},
			[]parsedEvent{{Body: `1`, Key: "k1"}, {Body: `2`, Key: "k1"}}},
		{parseCase{name: "partition applies to every event", ct: "application/x-ndjson", query: "partition=3", body: "1\n2"},
			[]parsedEvent{{Body: `1`, Partition: 3, Explicit: true}, {Body: `2`, Partition: 3, Explicit: true}}},
		{parseCase{name: "partition zero", ct: "text/plain", query: "partition=0", body: "x"},
			[]parsedEvent{{Body: "x", Explicit: true}}},
		{parseCase{name: "other query parameters are ignored", ct: "text/plain", query: "foo=bar", body: "x"},
			[]parsedEvent{{Body: "x"}}},

		// CloudEvents, structured mode
		{parseCase{name: "structured with attributes and JSON data", ct: "application/cloudevents+json; charset=utf-8",
			body: `{` + ceRequired + `,"time":"2018-04-05T17:31:00.123+02:00","subject":"s","dataschema":"https://example.com/s.json",` +
				`"datacontenttype":"application/json","comexampleext":"v","count":-5,"flag":false,"unset":null,"data":{"x":[1,2]}}`},
			[]parsedEvent{{Body: `{"x":[1,2]}`, Props: ceProps("time", "2018-04-05T17:31:00.123+02:00", "subject", "s",
				"dataschema", "https://example.com/s.json", "datacontenttype", "application/json",
				"comexampleext", "v", "count", "-5", "flag", "false")}}},
		{parseCase{name: "structured partitionkey wins over the query", ct: "application/cloudevents+json", query: "partitionKey=q",
			body: `{` + ceRequired + `,"partitionkey":"pk","data":1}`},
			[]parsedEvent{{Body: `1`, Key: "pk", Props: ceProps("partitionkey", "pk")}}},
		{parseCase{name: "structured without partitionkey takes the query's", ct: "application/cloudevents+json", query: "partitionKey=q",
			body: `{` + ceRequired + `}`},
			[]parsedEvent{{Key: "q", Props: ceProps()}}},
		{parseCase{name: "structured data_base64", ct: "application/cloudevents+json",
			body: `{` + ceRequired + `,"datacontenttype":"application/octet-stream","data_base64":"AP8Q"}`},
			[]parsedEvent{{Body: "\x00\xff\x10", Props: ceProps("datacontenttype", "application/octet-stream")}}},
		{parseCase{name: "structured unpadded data_base64", ct: "application/cloudevents+json",
			body: `{` + ceRequired + `,"data_base64":"aGk"}`},
			[]parsedEvent{{Body: "hi", Props: ceProps()}}},
		{parseCase{name: "structured null data_base64 is absent", ct: "application/cloudevents+json",
			body: `{` + ceRequired + `,"data_base64":null,"data":"x"}`},
			[]parsedEvent{{Body: `"x"`, Props: ceProps()}}},
		{parseCase{name: "structured text data is the string's value", ct: "application/cloudevents+json",
			body: `{` + ceRequired + `,"datacontenttype":"text/plain","data":"line\n\"quoted\" \u20ac"}`},
			[]parsedEvent{{Body: "line\n\"quoted\" €", Props: ceProps("datacontenttype", "text/plain")}}},
		{parseCase{name: "structured JSON string data stays JSON", ct: "application/cloudevents+json",
			body: `{` + ceRequired + `,"datacontenttype":"application/vnd.x+json; charset=utf-8","data":"hi"}`},
			[]parsedEvent{{Body: `"hi"`, Props: ceProps("datacontenttype", "application/vnd.x+json; charset=utf-8")}}},
		{parseCase{name: "structured string data without datacontenttype is JSON", ct: "application/cloudevents+json",
			body: `{` + ceRequired + `,"data":"hi"}`},
			[]parsedEvent{{Body: `"hi"`, Props: ceProps()}}},
		{parseCase{name: "structured non-string data with a non-JSON type stays as sent", ct: "application/cloudevents+json",
			body: `{` + ceRequired + `,"datacontenttype":"text/plain","data":42}`},
			[]parsedEvent{{Body: `42`, Props: ceProps("datacontenttype", "text/plain")}}},
		{parseCase{name: "structured null data is an explicit null", ct: "application/cloudevents+json",
			body: `{` + ceRequired + `,"data":null}`},
			[]parsedEvent{{Body: `null`, Props: ceProps()}}},
		{parseCase{name: "structured escaped names and values", ct: "application/cloudevents+json",
			body: `{"specversion":"1.0","\u0069d":"\u00e9t\u00e9","source":"/src","type":"t"}`},
			[]parsedEvent{{Props: ceProps("id", "été")}}},

		// CloudEvents, batch
		{parseCase{name: "batch", ct: "application/cloudevents-batch+json", query: "partition=1",
			body: `[{` + ceRequired + `,"data":{"a":1}}, {` + ceRequired + `}]`},
			[]parsedEvent{{Body: `{"a":1}`, Props: ceProps(), Partition: 1, Explicit: true}, {Props: ceProps(), Partition: 1, Explicit: true}}},
		{parseCase{name: "empty batch is valid and has no events", ct: "application/cloudevents-batch+json", body: ` [ ] `},
			[]parsedEvent{}},

		// CloudEvents, binary mode
		{parseCase{name: "binary", ct: "application/json", body: `{"not":"parsed"`,
			header: ceBinaryHeader("Ce-Subject", "Euro%20%E2%82%AC%20%f0%9f%98%80", "Ce-Partitionkey", "pk", "Ce-Count", "5", "X-Other", "ignored")},
			[]parsedEvent{{Body: `{"not":"parsed"`, Key: "pk", Props: ceProps("subject", "Euro € 😀", "partitionkey", "pk", "count", "5", "datacontenttype", "application/json")}}},
		{parseCase{name: "binary quoted header value", ct: "text/plain", body: "x",
			header: ceBinaryHeader("Ce-Subject", `"a b \"c\"" and%25`)},
			[]parsedEvent{{Body: "x", Props: ceProps("subject", `a b "c" and%`, "datacontenttype", "text/plain")}}},
		{parseCase{name: "binary header names are case-insensitive", ct: "text/plain", body: "x",
			header: ceBinaryHeader("CE-MYEXT", "v")},
			[]parsedEvent{{Body: "x", Props: ceProps("myext", "v", "datacontenttype", "text/plain")}}},
		{parseCase{name: "binary without Content-Type or body", query: "partitionKey=q", header: ceBinaryHeader()},
			[]parsedEvent{{Key: "q", Props: ceProps()}}},
		{parseCase{name: "binary with any Content-Type", ct: "application/xml", body: "<a/>", header: ceBinaryHeader()},
			[]parsedEvent{{Body: "<a/>", Props: ceProps("datacontenttype", "application/xml")}}},
		{parseCase{name: "structured Content-Type wins over ce- headers", ct: "application/cloudevents+json",
			header: ceBinaryHeader("Ce-Id", "ignored"), body: `{` + ceRequired + `}`},
			[]parsedEvent{{Props: ceProps()}}},

		// message ids
		{parseCase{name: "envelope message ids", ct: MediaEnvelope,
			body: `[{"body":1,"message_id":"order-17"},{"body":2},{"body":3,"message_id":""},{"body":4,"message_id":"ünïcode id"}]`},
			[]parsedEvent{{Body: "1", ID: "order-17"}, {Body: "2"}, {Body: "3"}, {Body: "4", ID: "ünïcode id"}}},
		{parseCase{name: "Message-Id header of a raw event", ct: "text/plain", body: "x", header: http.Header{"Message-Id": {"m-1"}}},
			[]parsedEvent{{Body: "x", ID: "m-1"}}},
		{parseCase{name: "Message-Id header of one JSON object", ct: "application/json", body: `{"a":1}`, header: http.Header{"Message-Id": {"m-1"}}},
			[]parsedEvent{{Body: `{"a":1}`, ID: "m-1"}}},
		{parseCase{name: "Message-Id header of a one-line NDJSON body", ct: "application/x-ndjson", body: "1\n\n", header: http.Header{"Message-Id": {"m-1"}}},
			[]parsedEvent{{Body: `1`, ID: "m-1"}}},
		{parseCase{name: "empty Message-Id header is none", ct: "application/json", body: `[1,2]`, header: http.Header{"Message-Id": {""}}},
			[]parsedEvent{{Body: `1`}, {Body: `2`}}},
		{parseCase{name: "CloudEvents are not de-duplicated by their id", ct: "application/cloudevents-batch+json", body: `[{` + ceRequired + `}]`},
			[]parsedEvent{{Props: ceProps()}}},
		{parseCase{name: "a CloudEvent opts in with the Message-Id header", ct: "application/cloudevents+json", body: `{` + ceRequired + `}`,
			header: http.Header{"Message-Id": {"/src 1"}}},
			[]parsedEvent{{Props: ceProps(), ID: "/src 1"}}},
		{parseCase{name: "a binary CloudEvent opts in with the Message-Id header", ct: "text/plain", body: "x",
			header: ceBinaryHeader("Message-Id", "m-1")},
			[]parsedEvent{{Body: "x", Props: ceProps("datacontenttype", "text/plain"), ID: "m-1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := tc.parse(t)
			require.NoError(t, err)
			require.NotNil(t, events)
			require.Equal(t, tc.want, viewEvents(events))
		})
	}
}

func TestParseEventsErrors(t *testing.T) {
	t.Parallel()
	ceJSON := "application/cloudevents+json"
	tests := []struct {
		parseCase
		status int
		msg    string // contained in the message, or its start after a leading ^
	}{
		// Content-Type
		{parseCase{name: "missing Content-Type", body: "x"}, 415, "missing Content-Type: send application/json"},
		{parseCase{name: "unknown Content-Type", ct: "application/xml", body: "<a/>"}, 415, `unsupported Content-Type "application/xml": send application/json`},
		{parseCase{name: "unknown Content-Type lists the types", ct: "image/png", body: "x"}, 415, "application/x-ndjson"},
		{parseCase{name: "unsupported CloudEvents format", ct: "application/cloudevents+avro", body: "x", header: ceBinaryHeader()}, 415, `unsupported CloudEvents format "application/cloudevents+avro"`},

		// query parameters
		{parseCase{name: "partition and partitionKey", ct: "text/plain", body: "x", query: "partition=1&partitionKey=k"}, 400, "partition and partitionKey are both given"},
		{parseCase{name: "negative partition", ct: "text/plain", body: "x", query: "partition=-1"}, 400, `partition must be a non-negative integer, got "-1"`},
		{parseCase{name: "non-numeric partition", ct: "text/plain", body: "x", query: "partition=abc"}, 400, "non-negative integer"},
		{parseCase{name: "fractional partition", ct: "text/plain", body: "x", query: "partition=1.5"}, 400, "non-negative integer"},
		{parseCase{name: "empty partition", ct: "text/plain", body: "x", query: "partition="}, 400, "non-negative integer"},
		{parseCase{name: "huge partition", ct: "text/plain", body: "x", query: "partition=99999999999"}, 400, "non-negative integer"},
		{parseCase{name: "partition twice", ct: "text/plain", body: "x", query: "partition=1&partition=2"}, 400, "partition is given 2 times"},
		{parseCase{name: "empty partitionKey", ct: "text/plain", body: "x", query: "partitionKey="}, 400, "partitionKey is empty"},
		{parseCase{name: "partitionKey twice", ct: "text/plain", body: "x", query: "partitionKey=a&partitionKey=b"}, 400, "partitionKey is given 2 times"},

		// application/json
		{parseCase{name: "json empty body", ct: "application/json", body: " \n"}, 400, "no events: the body is empty"},
		{parseCase{name: "json empty array", ct: "application/json", body: "[ ]"}, 400, "no events"},
		{parseCase{name: "json bad element", ct: "application/json", body: `[1, 2, x]`}, 400, "event 2: invalid JSON at byte offset 7: invalid character 'x' looking for beginning of value"},
		{parseCase{name: "json bad element deep", ct: "application/json", body: `[{"a":[1,{"b":"]"}]}, {"c": tru}]`}, 400, "event 1: invalid JSON at byte offset 31: invalid character '}' in literal true"},
		{parseCase{name: "json missing comma", ct: "application/json", body: `[1 2]`}, 400, "event 0: invalid JSON at byte offset 3: invalid character '2' after array element"},
		{parseCase{name: "json trailing garbage", ct: "application/json", body: `[1] x`}, 400, "^invalid JSON at byte offset 4: invalid character 'x' after top-level value"},
		{parseCase{name: "json two objects", ct: "application/json", body: `{"a":1}{"b":2}`}, 400, "^invalid JSON at byte offset 7: invalid character '{' after top-level value"},
		{parseCase{name: "json truncated", ct: "application/json", body: `[1,`}, 400, "event 1: invalid JSON at byte offset 3: unexpected end of JSON input"},
		{parseCase{name: "json truncated object", ct: "application/json", body: `{"a":`}, 400, "event 0: invalid JSON at byte offset 5: unexpected end of JSON input"},
		{parseCase{name: "json byte order mark", ct: "application/json", body: "\xef\xbb\xbf[1]"}, 400, "^invalid JSON at byte offset 0"},
		{parseCase{name: "json scalar", ct: "application/json", body: `"x"`}, 400, "a JSON array of events or one JSON object, got a JSON string"},
		{parseCase{name: "json invalid utf-8", ct: "application/json", body: "[\"ok\", \"\xff\"]"}, 400, "event 1: invalid UTF-8 at byte offset 8"},

		// NDJSON
		{parseCase{name: "ndjson bad line", ct: "application/x-ndjson", body: "1\n\n {bad}\n"}, 400, "line 3 (event 1): invalid JSON at byte offset 5: invalid character 'b'"},
		{parseCase{name: "ndjson two values on a line", ct: "application/jsonl", body: "1 2\n"}, 400, "line 1 (event 0): invalid JSON at byte offset 2"},
		{parseCase{name: "ndjson blank", ct: "application/x-ndjson", body: "\n \r\n"}, 400, "no events"},
		{parseCase{name: "ndjson invalid utf-8", ct: "application/x-ndjson", body: "1\n\"a\xc0\"\n"}, 400, "line 2 (event 1): invalid UTF-8 at byte offset 4"},

		// raw
		{parseCase{name: "octet-stream empty", ct: "application/octet-stream"}, 400, "the body is empty"},
		{parseCase{name: "text empty", ct: "text/plain"}, 400, "the body is empty"},

		// limits
		{parseCase{name: "json event too large", ct: "application/json", body: `[1,12345,1]`, lim: Limits{MaxEventBytes: 4}}, 413, "event 1 is 5 bytes (body, partition key and properties), over the limit of 4 bytes"},
		{parseCase{name: "partition key counts", ct: "application/json", body: `[1,1234]`, query: "partitionKey=k", lim: Limits{MaxEventBytes: 4}}, 413, "event 1 is 5 bytes"},
		{parseCase{name: "raw event too large", ct: "application/octet-stream", body: "12345", lim: Limits{MaxEventBytes: 4}}, 413, "event 0 is 5 bytes"},
		{parseCase{name: "CloudEvents attributes count", ct: "application/cloudevents+json", body: `{` + ceRequired + `,"data":1}`, lim: Limits{MaxEventBytes: 60}}, 413, "event 0 is 81 bytes"},
		{parseCase{name: "binary event too large", ct: "text/plain", header: ceBinaryHeader(), body: "x", lim: Limits{MaxEventBytes: 60}}, 413, "event 0 is 118 bytes"},
		{parseCase{name: "json too many events", ct: "application/json", body: `[1,2,3]`, lim: Limits{MaxEvents: 2}}, 413, "more than 2 events in one request"},
		{parseCase{name: "ndjson too many events", ct: "application/x-ndjson", body: "1\n2\n3", lim: Limits{MaxEvents: 2}}, 413, "more than 2 events"},
		{parseCase{name: "batch too many events", ct: "application/cloudevents-batch+json", body: `[{},{},{}]`, lim: Limits{MaxEvents: 2}}, 413, "more than 2 events"},

		// CloudEvents, structured
		{parseCase{name: "structured array", ct: ceJSON, body: `[]`}, 400, "got a JSON array: for an array of events use Content-Type application/cloudevents-batch+json"},
		{parseCase{name: "structured invalid JSON", ct: ceJSON, body: `{"id":}`}, 400, "event 0: invalid JSON at byte offset 6"},
		{parseCase{name: "missing specversion", ct: ceJSON, body: `{"id":"1","source":"/s","type":"t"}`}, 400, `event 0: attribute specversion is missing: set it to "1.0"`},
		{parseCase{name: "old specversion", ct: ceJSON, body: `{"specversion":"0.3","id":"1","source":"/s","type":"t"}`}, 400, `unsupported CloudEvents specversion "0.3": only "1.0" is supported`},
		{parseCase{name: "numeric specversion", ct: ceJSON, body: `{"specversion":1.0,"id":"1","source":"/s","type":"t"}`}, 400, "attribute specversion must be a string, got a JSON number"},
		{parseCase{name: "missing id", ct: ceJSON, body: `{"specversion":"1.0","source":"/s","type":"t"}`}, 400, "required attribute id is missing or empty"},
		{parseCase{name: "null id", ct: ceJSON, body: `{"specversion":"1.0","id":null,"source":"/s","type":"t"}`}, 400, "required attribute id is missing or empty"},
		{parseCase{name: "empty source", ct: ceJSON, body: `{"specversion":"1.0","id":"1","source":"","type":"t"}`}, 400, "required attribute source is missing or empty"},
		{parseCase{name: "boolean type", ct: ceJSON, body: `{"specversion":"1.0","id":"1","source":"/s","type":true}`}, 400, "attribute type must be a string, got a JSON boolean"},
		{parseCase{name: "uppercase attribute", ct: ceJSON, body: `{` + ceRequired + `,"myExt":"v"}`}, 400, `attribute name "myExt" is invalid`},
		{parseCase{name: "dashed attribute", ct: ceJSON, body: `{` + ceRequired + `,"my-ext":"v"}`}, 400, `attribute name "my-ext" is invalid`},
		{parseCase{name: "duplicate attribute", ct: ceJSON, body: `{` + ceRequired + `,"id":"2"}`}, 400, `member "id" appears twice`},
		{parseCase{name: "duplicate data", ct: ceJSON, body: `{` + ceRequired + `,"data":1,"data":2}`}, 400, `member "data" appears twice`},
		{parseCase{name: "object attribute", ct: ceJSON, body: `{` + ceRequired + `,"ext":{"a":1}}`}, 400, "attribute ext is a JSON object"},
		{parseCase{name: "fractional attribute", ct: ceJSON, body: `{` + ceRequired + `,"ext":1.5}`}, 400, "attribute ext is 1.5: a CloudEvents integer is a whole number within 32 bits"},
		{parseCase{name: "out of range attribute", ct: ceJSON, body: `{` + ceRequired + `,"ext":3000000000}`}, 400, "attribute ext is 3000000000"},
		{parseCase{name: "bad time", ct: ceJSON, body: `{` + ceRequired + `,"time":"yesterday"}`}, 400, `attribute time "yesterday" is not an RFC 3339 timestamp`},
		{parseCase{name: "empty subject", ct: ceJSON, body: `{` + ceRequired + `,"subject":""}`}, 400, "attribute subject is empty"},
		{parseCase{name: "empty partitionkey", ct: ceJSON, body: `{` + ceRequired + `,"partitionkey":""}`}, 400, "attribute partitionkey is empty"},
		{parseCase{name: "relative dataschema", ct: ceJSON, body: `{` + ceRequired + `,"dataschema":"/s.json"}`}, 400, `attribute dataschema "/s.json" is not an absolute URI`},
		{parseCase{name: "control character", ct: ceJSON, body: `{` + ceRequired + `,"subject":"a\nb"}`}, 400, "attribute subject contains the control character U+000A"},
		{parseCase{name: "data and data_base64", ct: ceJSON, body: `{` + ceRequired + `,"data":1,"data_base64":"AA=="}`}, 400, "both data and data_base64 are given"},
		{parseCase{name: "bad base64", ct: ceJSON, body: `{` + ceRequired + `,"data_base64":"!!"}`}, 400, "data_base64 is not valid base64"},
		{parseCase{name: "numeric base64", ct: ceJSON, body: `{` + ceRequired + `,"data_base64":5}`}, 400, "data_base64 must be a base64 string, got a JSON number"},

		// CloudEvents, batch
		{parseCase{name: "batch object", ct: "application/cloudevents-batch+json", body: `{}`}, 400, "got a JSON object: for a single event use Content-Type application/cloudevents+json"},
		{parseCase{name: "batch element not an object", ct: "application/cloudevents-batch+json", body: `[{` + ceRequired + `}, 5]`}, 400, "event 1: a CloudEvent is a JSON object, got a JSON number"},
		{parseCase{name: "batch bad event", ct: "application/cloudevents-batch+json", body: `[{` + ceRequired + `}, {` + ceRequired + `,"time":"x"}]`}, 400, `event 1: attribute time "x"`},
		{parseCase{name: "batch invalid JSON", ct: "application/cloudevents-batch+json", body: `[{` + ceRequired + `}, {"id"}]`}, 400, "event 1: invalid JSON"},

		// CloudEvents, binary
		{parseCase{name: "binary missing id", ct: "text/plain", body: "x", header: http.Header{"Ce-Specversion": {"1.0"}, "Ce-Source": {"/s"}, "Ce-Type": {"t"}}}, 400, "event 0: required attribute id is missing or empty"},
		{parseCase{name: "binary header given twice", ct: "text/plain", body: "x", header: ceBinaryHeader("Ce-Specversion", "0.3")}, 400, "header Ce-Specversion is given 2 times"},
		{parseCase{name: "binary specversion", ct: "text/plain", body: "x", header: http.Header{"Ce-Specversion": {"0.3"}}}, 400, `unsupported CloudEvents specversion "0.3"`},
		{parseCase{name: "binary bad percent-encoding", ct: "text/plain", body: "x", header: ceBinaryHeader("Ce-Subject", "a%zz")}, 400, "header Ce-Subject: bad percent-encoding"},
		{parseCase{name: "binary overlong utf-8", ct: "text/plain", body: "x", header: ceBinaryHeader("Ce-Subject", "%C0%A0")}, 400, "header Ce-Subject: the percent-decoded value is not valid UTF-8"},
		{parseCase{name: "binary control character", ct: "text/plain", body: "x", header: ceBinaryHeader("Ce-Subject", "a%0Ab")}, 400, "attribute subject contains the control character U+000A"},
		{parseCase{name: "binary unterminated quote", ct: "text/plain", body: "x", header: ceBinaryHeader("Ce-Subject", `"abc`)}, 400, "header Ce-Subject: unterminated quoted string"},
		{parseCase{name: "binary ce-datacontenttype", ct: "text/plain", body: "x", header: ceBinaryHeader("Ce-Datacontenttype", "text/plain")}, 400, "not in a ce-datacontenttype header"},
		{parseCase{name: "binary bad attribute name", ct: "text/plain", body: "x", header: ceBinaryHeader("Ce-My_ext", "v")}, 400, `header Ce-My_ext: "my_ext" is not a CloudEvents attribute name`},
		{parseCase{name: "binary data attribute", ct: "text/plain", body: "x", header: ceBinaryHeader("Ce-Data", "v")}, 400, `"data" is not a CloudEvents attribute name`},
		{parseCase{name: "binary same attribute in two spellings", ct: "text/plain", body: "x", header: ceBinaryHeader("ce-id", "2")}, 400, "header ce-id is given twice"},
		{parseCase{name: "binary bad time", ct: "text/plain", body: "x", header: ceBinaryHeader("Ce-Time", "2018-04-05")}, 400, "attribute time"},

		// message ids
		{parseCase{name: "envelope message id too long", ct: MediaEnvelope, body: `[{"body":1},{"body":2,"message_id":"` + strings.Repeat("x", hub.MaxMessageIDBytes+1) + `"}]`},
			400, "event 1: invalid message id: it is 129 bytes, the limit is 128 bytes (a message id is up to 128 bytes of UTF-8 text without control characters)"},
		{parseCase{name: "envelope message id with a control character", ct: MediaEnvelope, body: `[{"body":1,"message_id":"a\u0000b"}]`},
			400, `event 0: invalid message id "a\x00b": it contains the control character U+0000`},
		{parseCase{name: "envelope message id not a string", ct: MediaEnvelope, body: `[{"body":1,"message_id":17}]`}, 400, "event 0: json: cannot unmarshal number"},
		{parseCase{name: "Message-Id header too long", ct: "text/plain", body: "x", header: http.Header{"Message-Id": {strings.Repeat("x", 200)}}},
			400, "header Message-Id: invalid message id: it is 200 bytes, the limit is 128 bytes"},
		{parseCase{name: "Message-Id header with a tab", ct: "text/plain", body: "x", header: http.Header{"Message-Id": {"a\tb"}}},
			400, "header Message-Id: invalid message id \"a\\tb\": it contains the control character U+0009"},
		{parseCase{name: "Message-Id header not UTF-8", ct: "text/plain", body: "x", header: http.Header{"Message-Id": {"a\xffb"}}},
			400, "not valid UTF-8"},
		{parseCase{name: "Message-Id header twice", ct: "text/plain", body: "x", header: http.Header{"Message-Id": {"a", "b"}}},
			400, "header Message-Id is given 2 times: give it once"},
		{parseCase{name: "Message-Id header for several events", ct: "application/json", body: `[1,2]`, header: http.Header{"Message-Id": {"a"}}},
			400, "header Message-Id is the message id of one event, but the request carries 2: send one event per request, or use application/vnd.sluice.events+json with a message_id per event"},
		{parseCase{name: "Message-Id header for envelopes", ct: MediaEnvelope, body: `[{"body":1}]`, header: http.Header{"Message-Id": {"a"}}},
			400, "header Message-Id does not apply to application/vnd.sluice.events+json: give each event its own message_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := tc.parse(t)
			require.Nil(t, events)
			var perr *Error
			require.ErrorAs(t, err, &perr)
			require.Equal(t, tc.status, perr.Status, perr.Msg)
			if prefix, ok := strings.CutPrefix(tc.msg, "^"); ok {
				require.True(t, strings.HasPrefix(perr.Msg, prefix), "%q does not start with %q", perr.Msg, prefix)
			} else {
				require.Contains(t, perr.Msg, tc.msg)
			}
			require.Equal(t, perr.Msg, err.Error())
		})
	}
}

func TestParseEventsDefaultLimits(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("x"), DefaultMaxEventBytes)
	events, err := ParseEvents("application/octet-stream", nil, nil, big, Limits{})
	require.NoError(t, err)
	require.Len(t, events, 1)

	_, err = ParseEvents("application/octet-stream", nil, nil, append(big, 'x'), Limits{MaxEventBytes: -1})
	var perr *Error
	require.ErrorAs(t, err, &perr)
	require.Equal(t, http.StatusRequestEntityTooLarge, perr.Status)

	many := "[" + strings.Repeat("1,", DefaultMaxEvents-1) + "1]"
	events, err = ParseEvents("application/json", nil, nil, []byte(many), Limits{})
	require.NoError(t, err)
	require.Len(t, events, DefaultMaxEvents)

	_, err = ParseEvents("application/json", nil, nil, []byte("[1,"+many[1:]), Limits{})
	require.ErrorAs(t, err, &perr)
	require.Equal(t, http.StatusRequestEntityTooLarge, perr.Status)
	require.Contains(t, perr.Msg, "more than 10000 events")
}

func TestParseEventsBodiesAliasTheRequestBody(t *testing.T) {
	t.Parallel()
	body := []byte(`[ {"a":1}, 2 ]`)
	events, err := ParseEvents("application/json", nil, nil, body, Limits{})
	require.NoError(t, err)
	require.Same(t, &body[2], &events[0].Body[0])
	require.Same(t, &body[11], &events[1].Body[0])
}

// checkJSONBodies checks that the application/json bodies are the elements
// encoding/json finds.
func checkJSONBodies(t *testing.T, body []byte, events []hub.Event) {
	t.Helper()
	var want []json.RawMessage
	if v := bytes.TrimSpace(body); v[0] == '[' {
		if err := json.Unmarshal(v, &want); err != nil {
			t.Fatalf("ParseEvents accepted %q that encoding/json rejects: %v", body, err)
		}
	} else {
		want = []json.RawMessage{v}
	}
	if len(events) != len(want) {
		t.Fatalf("%q: %d events, encoding/json finds %d", body, len(events), len(want))
	}
	for i := range want {
		if !bytes.Equal(events[i].Body, want[i]) {
			t.Fatalf("%q: event %d body is %q, encoding/json finds %q", body, i, events[i].Body, want[i])
		}
	}
}

func TestParseEventsJSONAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`[1,"2",{"3":[4,{"5":"]}\\\""}]},[],{},null,true,false,-0.5E+7]`,
		"\n[\t\"\\u005d\" ,\r{ \"a\" : [ ] } ]\n",
		`{"x":"[{\"y\":1}]"}`,
	} {
		events, err := ParseEvents("application/json", nil, nil, []byte(body), Limits{})
		require.NoError(t, err)
		checkJSONBodies(t, []byte(body), events)
	}
}

func FuzzParseEvents(f *testing.F) {
	seed := func(ct, headers, query, body string) {
		f.Add(ct, headers, query, []byte(body), uint16(0), uint8(0))
		f.Add(ct, headers, query, []byte(body), uint16(40), uint8(2))
	}
	seed("application/json", "", "", `[{"a":1}, 2, "x]", [null]]`)
	seed("application/json", "", "partitionKey=k", `{"a":"b"}`)
	seed("application/json", "", "partition=2", `[1, 2, x]`)
	seed("application/x-ndjson", "", "", "{\"a\":1}\n\n2\r\n\"x\"")
	seed("application/jsonl", "", "partition=x", "1\n{bad")
	seed("application/octet-stream", "", "", "\x00\xff")
	seed("text/plain", "", "partition=1&partitionKey=k", "hello")
	seed("application/cloudevents+json", "", "",
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"2018-04-05T17:31:00Z","ext":5,"partitionkey":"k","data":{"a":[1]}}`)
	seed("application/cloudevents+json", "", "",
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi\n"}`)
	seed("application/cloudevents+json", "", "", `{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AP8="}`)
	seed("application/cloudevents-batch+json", "", "", `[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{"specversion":"1.0"}]`)
	seed("application/cloudevents-batch+json", "", "", `[]`)
	seed("application/xml", "ce-specversion: 1.0\nce-id: 1\nce-source: /s\nce-type: t\nce-subject: a%20%E2%82%AC\nce-partitionkey: \"k k\"", "", "<a/>")
	seed("", "ce-specversion: 1.0\nce-id: %zz", "", "")
	seed("image/png", "", "", "x")
	seed(MediaEnvelope, "", "", `[{"body":1,"message_id":"m-1"},{"body_text":"x","message_id":"m\u0001"}]`)
	seed("text/plain", "Message-Id: m-1", "", "x")
	seed("application/json", "Message-Id: m-1", "", "[1,2]")

	f.Fuzz(func(t *testing.T, contentType, headers, query string, body []byte, maxEventBytes uint16, maxEvents uint8) {
		header := http.Header{}
		for _, line := range strings.Split(headers, "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok {
				header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
			}
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		lim := Limits{MaxEventBytes: int(maxEventBytes), MaxEvents: int(maxEvents)}
		events, err := ParseEvents(contentType, header, q, body, lim)
		if err != nil {
			if events != nil {
				t.Fatalf("error %v with %d events", err, len(events))
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if perr.Status != 400 && perr.Status != 413 && perr.Status != 415 {
				t.Fatalf("status %d: %s", perr.Status, perr.Msg)
			}
			if perr.Msg == "" {
				t.Fatal("empty error message")
			}
			return
		}
		lim = lim.withDefaults()
		if events == nil {
			t.Fatal("nil events without an error")
		}
		if len(events) > lim.MaxEvents {
			t.Fatalf("%d events, limit %d", len(events), lim.MaxEvents)
		}
		for i := range events {
			if n := events[i].Size(); n > lim.MaxEventBytes {
				t.Fatalf("event %d is %d bytes, limit %d", i, n, lim.MaxEventBytes)
			}
			if _, ok := q["partition"]; ok != events[i].HasPartition {
				t.Fatalf("event %d: HasPartition %v with query %q", i, events[i].HasPartition, query)
			}
			if err := hub.ValidateMessageID(events[i].MessageID); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
		}
		mt := mediaTypeOf(contentType)
		if len(events) == 0 && mt != mediaCloudBatch {
			t.Fatalf("no events from %s", mt)
		}
		if hasHeaderFold(header, "ce-specversion") || strings.HasPrefix(mt, cloudEventsPrefix) {
			for i := range events {
				if events[i].Properties[PropertyPrefix+"specversion"] != "1.0" {
					t.Fatalf("event %d: CloudEvent without specversion 1.0: %v", i, events[i].Properties)
				}
			}
			return
		}
		switch mt {
		case mediaJSON:
			checkJSONBodies(t, body, events)
		case mediaNDJSON, mediaJSONL:
			for i := range events {
				if !json.Valid(events[i].Body) {
					t.Fatalf("event %d: invalid JSON body %q", i, events[i].Body)
				}
			}
		}
	})
}

// BenchmarkParseEventsJSON measures a 1000-event application/json request,
// beside encoding/json splitting the same array into []json.RawMessage.
func BenchmarkParseEventsJSON(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range 1000 {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"id":"order-12345","customer":{"name":"Zoë \"Z\" Example","tags":["a","b"]},"total":123.45,"lines":[1,2,3]}`)
	}
	buf.WriteByte(']')
	body := buf.Bytes()
	b.Run("ParseEvents", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseEvents("application/json", nil, nil, body, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var raw []json.RawMessage
			if err := json.Unmarshal(body, &raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
