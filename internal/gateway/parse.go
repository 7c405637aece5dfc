package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/hub"
)

// Limits bound what one ingestion request may carry.
type Limits struct {
	// MaxEventBytes bounds one event's size as hub.Event.Size counts it: body,
	// partition key and properties (CloudEvents attributes included).
	// Zero or negative means DefaultMaxEventBytes.
	MaxEventBytes int
	// MaxEvents bounds the number of events in one request.
	// Zero or negative means DefaultMaxEvents.
	MaxEvents int
}

// Defaults of Limits.
const (
	DefaultMaxEventBytes = 1 << 20
	DefaultMaxEvents     = 10000
)

func (l Limits) withDefaults() Limits {
	if l.MaxEventBytes <= 0 {
		l.MaxEventBytes = DefaultMaxEventBytes
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = DefaultMaxEvents
	}
	return l
}

// Error is a client error in an ingestion request. Status is the HTTP status
// to answer with (400 malformed request, 413 too large, 415 unsupported
// Content-Type); Msg says what is wrong and what to do, naming the event
// (0-based index) and, for JSON syntax errors, the byte offset in the body.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func invalidRequestf(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

func tooLargef(format string, args ...any) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf(format, args...)}
}

// Media types ParseEvents accepts (matched case-insensitively, parameters ignored).
const (
	mediaJSON         = "application/json"
	mediaNDJSON       = "application/x-ndjson"
	mediaJSONL        = "application/jsonl"
	mediaOctetStream  = "application/octet-stream"
	mediaText         = "text/plain"
	mediaCloudEvent   = "application/cloudevents+json"
	mediaCloudBatch   = "application/cloudevents-batch+json"
	cloudEventsPrefix = "application/cloudevents"
)

const acceptedTypes = "application/json (a JSON array of events, or one JSON object), " +
	"application/x-ndjson or application/jsonl (one JSON event per line), " +
	MediaEnvelope + " (a JSON array of {body, properties, partition_key, message_id}), " +
	"application/octet-stream or text/plain (the body is one event), " +
	"application/cloudevents+json, application/cloudevents-batch+json, " +
	"or any Content-Type with CloudEvents binary-mode headers (ce-specversion, ce-id, ce-source, ce-type)"

// HeaderMessageID is the request header carrying the message id of a
// request's only event (any format but MediaEnvelope, whose events carry
// their own message_id). The hub stores an event with an id once within its
// duplicate window: a request sent again answers with the stored event's
// position and stores nothing.
const HeaderMessageID = "Message-Id"

// PropertyPrefix prefixes the property names CloudEvents attributes are
// stored under (cloudEvents:id, cloudEvents:type...), as Azure Event Hubs
// does in its AMQP binding.
const PropertyPrefix = "cloudEvents:"

// ParseEvents decodes the events of one ingestion request (the body of
// POST /api/v1/hubs/{hub}/events). contentType is the request's Content-Type,
// header its full header (read for CloudEvents binary mode) and query its URL
// query values:
//
//   - partitionKey: the partition key of every event that does not carry its
//     own (a CloudEvents partitionkey attribute);
//   - partition: an explicit partition (an integer >= 0) for every event; the
//     caller checks it against the hub's partition count.
//
// A HeaderMessageID header gives the message id of a request holding one
// event; MediaEnvelope events carry their own message_id. CloudEvents are
// not de-duplicated by their id attribute: only an explicit message id
// makes a publish idempotent.
//
// The body formats, chosen by Content-Type:
//
//   - application/json: a JSON array, one event per element, or one JSON
//     object, one event. An event's body is the element's bytes as sent.
//   - application/x-ndjson, application/jsonl: one JSON value per non-empty line.
//   - MediaEnvelope: a JSON array of event objects with per-event properties,
//     partition key or partition (see envelope.go).
//   - application/octet-stream, text/plain: the whole body is one event.
//   - application/cloudevents+json: one CloudEvent (structured mode).
//   - application/cloudevents-batch+json: a JSON array of CloudEvents. An empty
//     array is a valid batch and yields no events (and no error).
//   - any other Content-Type with a ce-specversion header: one CloudEvent in
//     binary mode, the body being its data.
//
// A CloudEvent becomes an event whose body is its data and whose properties
// are its attributes, named PropertyPrefix+attribute; its partitionkey
// attribute is also the event's partition key.
//
// Either all events are returned or none: on error the slice is nil and the
// error is an *Error. Event bodies may alias body (except decoded
// data_base64 and string data of CloudEvents), so the caller must not
// modify body while it uses the events.
func ParseEvents(contentType string, header http.Header, query url.Values, body []byte, lim Limits) ([]hub.Event, error) {
	lim = lim.withDefaults()
	place, err := parsePlacement(query)
	if err != nil {
		return nil, err
	}
	events, err := decodeBody(contentType, header, body, lim)
	if err != nil {
		return nil, err
	}
	if len(events) > lim.MaxEvents {
		return nil, tooManyEvents(lim)
	}
	if err := applyMessageIDHeader(contentType, header, events); err != nil {
		return nil, err
	}
	for i := range events {
		e := &events[i]
		if e.PartitionKey == "" {
			e.PartitionKey = place.key
		}
		if place.hasPartition {
			e.Partition, e.HasPartition = place.partition, true
		}
		if n := e.Size(); n > lim.MaxEventBytes {
			return nil, tooLargef("event %d is %d bytes (body, partition key and properties), over the limit of %d bytes: send smaller events", i, n, lim.MaxEventBytes)
		}
		if err := hub.ValidateMessageID(e.MessageID); err != nil {
			return nil, invalidRequestf("event %d: %v (%s)", i, err, messageIDRule)
		}
	}
	return events, nil
}

var messageIDRule = fmt.Sprintf("a message id is up to %d bytes of UTF-8 text without control characters", hub.MaxMessageIDBytes)

// applyMessageIDHeader sets the message id of a request's only event from
// the HeaderMessageID header, if given.
func applyMessageIDHeader(contentType string, header http.Header, events []hub.Event) error {
	values := header.Values(HeaderMessageID)
	switch {
	case len(values) == 0 || len(values) == 1 && values[0] == "":
		return nil
	case len(values) > 1:
		return invalidRequestf("header %s is given %d times: give it once", HeaderMessageID, len(values))
	case mediaTypeOf(contentType) == MediaEnvelope:
		return invalidRequestf("header %s does not apply to %s: give each event its own message_id", HeaderMessageID, MediaEnvelope)
	case len(events) != 1:
		return invalidRequestf("header %s is the message id of one event, but the request carries %d: send one event per request, or use %s with a message_id per event",
			HeaderMessageID, len(events), MediaEnvelope)
	}
	if err := hub.ValidateMessageID(values[0]); err != nil {
		return invalidRequestf("header %s: %v (%s)", HeaderMessageID, err, messageIDRule)
	}
	events[0].MessageID = values[0]
	return nil
}

func tooManyEvents(lim Limits) *Error {
	return tooLargef("more than %d events in one request: split them into several requests", lim.MaxEvents)
}

// placement is what the query says about where events go.
type placement struct {
	key          string
	partition    int
	hasPartition bool
}

func parsePlacement(query url.Values) (placement, error) {
	var p placement
	keys, hasKey := query["partitionKey"]
	parts, hasPart := query["partition"]
	switch {
	case hasKey && hasPart:
		return p, invalidRequestf("query parameters partition and partitionKey are both given: give one (an explicit partition, or a key that picks it)")
	case hasKey:
		if len(keys) != 1 {
			return p, invalidRequestf("query parameter partitionKey is given %d times: give it once", len(keys))
		}
		if keys[0] == "" {
			return p, invalidRequestf("query parameter partitionKey is empty: give a key or leave it out")
		}
		p.key = keys[0]
	case hasPart:
		if len(parts) != 1 {
			return p, invalidRequestf("query parameter partition is given %d times: give it once", len(parts))
		}
		n, err := strconv.ParseUint(parts[0], 10, 31)
		if err != nil {
			return p, invalidRequestf("query parameter partition must be a non-negative integer, got %q", parts[0])
		}
		p.partition, p.hasPartition = int(n), true
	}
	return p, nil
}

// mediaTypeOf returns the lowercased media type of a Content-Type value,
// without parameters.
func mediaTypeOf(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

func decodeBody(contentType string, header http.Header, body []byte, lim Limits) ([]hub.Event, error) {
	// Structured and batched modes are told by the Content-Type alone and win
	// over ce- headers (HTTP binding, section 3).
	switch mt := mediaTypeOf(contentType); {
	case mt == mediaCloudEvent:
		return decodeCloudEvent(body)
	case mt == mediaCloudBatch:
		return decodeCloudEventBatch(body, lim)
	case strings.HasPrefix(mt, cloudEventsPrefix):
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf(
			"unsupported CloudEvents format %q: send application/cloudevents+json, application/cloudevents-batch+json or binary mode", mt)}
	case hasHeaderFold(header, "ce-specversion"):
		ev, err := decodeBinaryCloudEvent(contentType, header, body)
		if err != nil {
			return nil, err
		}
		return []hub.Event{ev}, nil
	case mt == mediaJSON:
		return decodeJSON(body, lim)
	case mt == MediaEnvelope:
		return decodeEnvelopes(body, lim)
	case mt == mediaNDJSON || mt == mediaJSONL:
		return decodeNDJSON(body, lim)
	case mt == mediaOctetStream || mt == mediaText:
		if len(body) == 0 {
			return nil, invalidRequestf("the body is empty: a %s request carries one event, the body", mt)
		}
		return []hub.Event{{Body: body}}, nil
	case mt == "":
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Msg: "missing Content-Type: send " + acceptedTypes}
	default:
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("unsupported Content-Type %q: send %s", mt, acceptedTypes)}
	}
}

func hasHeaderFold(header http.Header, lowerName string) bool {
	for name := range header {
		if strings.EqualFold(name, lowerName) {
			return true
		}
	}
	return false
}

// decodeJSON decodes an application/json body: an array of events or one object.
func decodeJSON(body []byte, lim Limits) ([]hub.Event, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	v := trimJSONSpace(body)
	switch v[0] {
	case '{':
		return []hub.Event{{Body: v}}, nil
	case '[':
	default:
		return nil, invalidRequestf("application/json carries a JSON array of events or one JSON object, got a JSON %s", jsonKind(v[0]))
	}
	elems, err := eventElements(v, lim)
	if err != nil {
		return nil, err
	}
	events := make([]hub.Event, len(elems))
	for i, el := range elems {
		events[i].Body = el
	}
	return events, nil
}

// decodeNDJSON decodes one JSON value per non-empty line.
func decodeNDJSON(body []byte, lim Limits) ([]hub.Event, error) {
	var events []hub.Event
	line := 0
	for start := 0; start < len(body); {
		line++
		end := len(body)
		if nl := bytes.IndexByte(body[start:], '\n'); nl >= 0 {
			end = start + nl
		}
		raw := body[start:end]
		lineStart := start
		start = end + 1
		v := trimJSONSpace(raw)
		if len(v) == 0 {
			continue
		}
		offset := lineStart + (len(raw) - len(trimLeftJSONSpace(raw)))
		idx := len(events)
		if !json.Valid(v) {
			pos, msg := syntaxError(v)
			return nil, invalidRequestf("line %d (event %d): invalid JSON at byte offset %d: %s", line, idx, offset+pos, msg)
		}
		if pos := invalidUTF8(v); pos >= 0 {
			return nil, invalidRequestf("line %d (event %d): invalid UTF-8 at byte offset %d: JSON must be UTF-8", line, idx, offset+pos)
		}
		if idx == lim.MaxEvents {
			return nil, tooManyEvents(lim)
		}
		events = append(events, hub.Event{Body: v})
	}
	if len(events) == 0 {
		return nil, invalidRequestf("no events: the body has no non-empty line")
	}
	return events, nil
}

// decodeCloudEvent decodes one CloudEvent in the JSON event format.
func decodeCloudEvent(body []byte) ([]hub.Event, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	v := trimJSONSpace(body)
	if v[0] != '{' {
		hint := ""
		if v[0] == '[' {
			hint = ": for an array of events use Content-Type application/cloudevents-batch+json"
		}
		return nil, invalidRequestf("application/cloudevents+json carries one CloudEvent as a JSON object, got a JSON %s%s", jsonKind(v[0]), hint)
	}
	ev, err := structuredCloudEvent(v)
	if err != nil {
		return nil, invalidRequestf("event 0: %v", err)
	}
	return []hub.Event{ev}, nil
}

// decodeCloudEventBatch decodes a JSON array of CloudEvents.
func decodeCloudEventBatch(body []byte, lim Limits) ([]hub.Event, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	v := trimJSONSpace(body)
	if v[0] != '[' {
		hint := ""
		if v[0] == '{' {
			hint = ": for a single event use Content-Type application/cloudevents+json"
		}
		return nil, invalidRequestf("application/cloudevents-batch+json carries a JSON array of CloudEvents, got a JSON %s%s", jsonKind(v[0]), hint)
	}
	elems, err := arrayElements(v, lim)
	if err != nil {
		return nil, err
	}
	events := make([]hub.Event, len(elems))
	for i, el := range elems {
		if el[0] != '{' {
			return nil, invalidRequestf("event %d: a CloudEvent is a JSON object, got a JSON %s", i, jsonKind(el[0]))
		}
		if events[i], err = structuredCloudEvent(el); err != nil {
			return nil, invalidRequestf("event %d: %v", i, err)
		}
	}
	return events, nil
}

// structuredCloudEvent maps a CloudEvent in the JSON event format (obj, a
// valid JSON object) to an event.
func structuredCloudEvent(obj []byte) (hub.Event, error) {
	attrs := make(map[string]string)
	var data, data64 []byte // raw JSON values of the data and data_base64 members
	seenData := false
	err := uniqueMembers(obj, func(name string, val []byte) error {
		switch name {
		case "data":
			data, seenData = val, true
			return nil
		case "data_base64":
			if val[0] != 'n' { // null means absent
				data64 = val
			}
			return nil
		}
		if !validAttributeName(name) {
			return fmt.Errorf("attribute name %q is invalid: CloudEvents attribute names are lowercase letters a-z and digits 0-9", name)
		}
		switch val[0] {
		case 'n': // null: the attribute is absent
			return nil
		case '"':
			s, err := jsonString(val)
			if err != nil {
				return fmt.Errorf("attribute %s: %v", name, err)
			}
			attrs[name] = s
		case 't', 'f':
			if stringAttributes[name] {
				return fmt.Errorf("attribute %s must be a string, got a JSON boolean", name)
			}
			attrs[name] = string(val)
		case '{', '[':
			return fmt.Errorf("attribute %s is a JSON %s: attribute values are strings, integers or booleans (put structured values in data)", name, jsonKind(val[0]))
		default: // a number
			if stringAttributes[name] {
				return fmt.Errorf("attribute %s must be a string, got a JSON number", name)
			}
			if _, err := strconv.ParseInt(string(val), 10, 32); err != nil {
				return fmt.Errorf("attribute %s is %s: a CloudEvents integer is a whole number within 32 bits (send other numbers as strings)", name, val)
			}
			attrs[name] = string(val)
		}
		return nil
	})
	if err != nil {
		return hub.Event{}, err
	}
	if data64 != nil && seenData && data[0] != 'n' {
		return hub.Event{}, errors.New("both data and data_base64 are given: give one")
	}
	if err := checkAttributes(attrs); err != nil {
		return hub.Event{}, err
	}
	ev := hub.Event{Properties: ceProperties(attrs), PartitionKey: attrs["partitionkey"]}
	switch {
	case data64 != nil:
		if data64[0] != '"' {
			return hub.Event{}, fmt.Errorf("data_base64 must be a base64 string, got a JSON %s", jsonKind(data64[0]))
		}
		s, err := jsonString(data64)
		if err == nil {
			ev.Body, err = decodeBase64(s)
		}
		if err != nil {
			return hub.Event{}, fmt.Errorf("data_base64 is not valid base64 (RFC 4648, standard alphabet): %v", err)
		}
	case seenData:
		ev.Body = data
		if ct, ok := attrs["datacontenttype"]; ok && !isJSONMediaType(ct) && data[0] == '"' {
			// Non-JSON data travels as a JSON string holding its text.
			s, err := jsonString(data)
			if err != nil {
				return hub.Event{}, fmt.Errorf("data: %v", err)
			}
			ev.Body = []byte(s)
		}
	}
	return ev, nil
}

// stringAttributes are the attributes whose type is String, URI,
// URI-reference or Timestamp: in JSON they must be strings.
var stringAttributes = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true,
	"datacontenttype": true, "dataschema": true, "subject": true, "time": true,
	"partitionkey": true,
}

func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil && !strings.Contains(s, "=") {
		// Accept unpadded base64 too: it is unambiguous.
		if b2, err2 := base64.RawStdEncoding.DecodeString(s); err2 == nil {
			return b2, nil
		}
	}
	return b, err
}

// decodeBinaryCloudEvent maps a CloudEvent in HTTP binary mode: attributes in
// ce- headers, datacontenttype in Content-Type, data in the body.
func decodeBinaryCloudEvent(contentType string, header http.Header, body []byte) (hub.Event, error) {
	names := make([]string, 0, len(header))
	for name := range header {
		if len(name) >= 3 && strings.EqualFold(name[:3], "ce-") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	attrs := make(map[string]string, len(names)+1)
	for _, name := range names {
		attr := strings.ToLower(name[3:])
		if !validAttributeName(attr) {
			return hub.Event{}, invalidRequestf("header %s: %q is not a CloudEvents attribute name (lowercase letters a-z and digits 0-9)", name, attr)
		}
		if attr == "datacontenttype" {
			return hub.Event{}, invalidRequestf("header %s: in binary mode the data's media type goes in Content-Type, not in a ce-datacontenttype header", name)
		}
		if _, dup := attrs[attr]; dup {
			return hub.Event{}, invalidRequestf("header ce-%s is given twice: give each attribute once", attr)
		}
		values := header[name]
		if len(values) != 1 {
			return hub.Event{}, invalidRequestf("header %s is given %d times: give each attribute once", name, len(values))
		}
		v, err := decodeHeaderValue(values[0])
		if err != nil {
			return hub.Event{}, invalidRequestf("header %s: %v", name, err)
		}
		attrs[attr] = v
	}
	if ct := strings.TrimSpace(contentType); ct != "" {
		attrs["datacontenttype"] = ct
	}
	if err := checkAttributes(attrs); err != nil {
		return hub.Event{}, invalidRequestf("event 0: %v", err)
	}
	return hub.Event{Body: body, Properties: ceProperties(attrs), PartitionKey: attrs["partitionkey"]}, nil
}

// decodeHeaderValue decodes a binary-mode attribute header value: first
// quoted strings are unquoted (RFC 7230 section 3.2.6, accepted for older
// senders), then percent-encoding is decoded (HTTP binding section 3.1.3.2).
func decodeHeaderValue(v string) (string, error) {
	if strings.IndexByte(v, '"') >= 0 {
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] != '"' {
				b.WriteByte(v[i])
				continue
			}
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				b.WriteByte(v[i])
			}
			if i >= len(v) {
				return "", errors.New("unterminated quoted string")
			}
		}
		v = b.String()
	}
	if strings.IndexByte(v, '%') >= 0 {
		d, err := url.PathUnescape(v)
		if err != nil {
			return "", fmt.Errorf("bad percent-encoding: %v", err)
		}
		v = d
	}
	if !utf8.ValidString(v) {
		return "", errors.New("the percent-decoded value is not valid UTF-8")
	}
	return v, nil
}

// checkAttributes checks the CloudEvents attributes of one event, whatever
// the mode it came in.
func checkAttributes(attrs map[string]string) error {
	sv, ok := attrs["specversion"]
	if !ok {
		return errors.New("attribute specversion is missing: set it to \"1.0\"")
	}
	if sv != "1.0" {
		return fmt.Errorf("unsupported CloudEvents specversion %q: only \"1.0\" is supported", sv)
	}
	for _, name := range []string{"id", "source", "type"} {
		if v, ok := attrs[name]; !ok || v == "" {
			return fmt.Errorf("required attribute %s is missing or empty", name)
		}
	}
	for _, name := range []string{"datacontenttype", "dataschema", "subject", "time", "partitionkey"} {
		if v, ok := attrs[name]; ok && v == "" {
			return fmt.Errorf("attribute %s is empty: give a value or leave it out", name)
		}
	}
	if v, ok := attrs["time"]; ok {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return fmt.Errorf("attribute time %q is not an RFC 3339 timestamp (like 2018-04-05T17:31:00Z)", v)
		}
	}
	if v, ok := attrs["dataschema"]; ok {
		if u, err := url.Parse(v); err != nil || !u.IsAbs() {
			return fmt.Errorf("attribute dataschema %q is not an absolute URI", v)
		}
	}
	// Sorted so that the error names the same attribute every time.
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		for _, r := range attrs[name] {
			if r < 0x20 || r >= 0x7f && r <= 0x9f {
				return fmt.Errorf("attribute %s contains the control character U+%04X, which CloudEvents does not allow", name, r)
			}
		}
	}
	return nil
}

func ceProperties(attrs map[string]string) map[string]string {
	props := make(map[string]string, len(attrs))
	for name, v := range attrs {
		props[PropertyPrefix+name] = v
	}
	return props
}

// validAttributeName reports whether name is a CloudEvents attribute name:
// lowercase ASCII letters and digits, and not the reserved "data".
func validAttributeName(name string) bool {
	if name == "" || name == "data" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// isJSONMediaType reports whether a datacontenttype declares JSON data:
// */json or */*+json (JSON event format, section 3.1).
func isJSONMediaType(contentType string) bool {
	_, sub, _ := strings.Cut(mediaTypeOf(contentType), "/")
	return sub == "json" || strings.HasSuffix(sub, "+json")
}

// checkJSON reports whether body is one valid UTF-8 JSON text, and if not
// where it goes wrong: the byte offset and, inside a top-level array, the
// index of the event.
func checkJSON(body []byte) error {
	if len(trimJSONSpace(body)) == 0 {
		return invalidRequestf("no events: the body is empty")
	}
	if !json.Valid(body) {
		pos, msg := syntaxError(body)
		if idx, ok := elementAt(body, pos); ok {
			return invalidRequestf("event %d: invalid JSON at byte offset %d: %s", idx, pos, msg)
		}
		return invalidRequestf("invalid JSON at byte offset %d: %s", pos, msg)
	}
	// encoding/json lets invalid UTF-8 through in strings (and would replace
	// it with U+FFFD when decoding); JSON text must be UTF-8 (RFC 8259), and
	// bodies are passed on as sent, so reject it.
	if pos := invalidUTF8(body); pos >= 0 {
		if idx, ok := elementAt(body, pos); ok {
			return invalidRequestf("event %d: invalid UTF-8 at byte offset %d: JSON must be UTF-8", idx, pos)
		}
		return invalidRequestf("invalid UTF-8 at byte offset %d: JSON must be UTF-8", pos)
	}
	return nil
}

// syntaxError returns the 0-based offset of the first syntax error in the
// invalid JSON text b and encoding/json's description of it.
func syntaxError(b []byte) (int, string) {
	var v json.RawMessage
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return 0, fmt.Sprint(err)
	}
	// Offset counts the bytes read, the offending one included; at the end of
	// the input it is the input's length.
	pos := int(se.Offset)
	if strings.HasPrefix(se.Error(), "invalid character") && pos > 0 {
		pos--
	}
	return pos, se.Error()
}

func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// The helpers below walk JSON text that json.Valid accepted, so they only
// track strings and nesting. They never read past the end of their input,
// which elementAt relies on when it walks the valid prefix of invalid text.

// arrayElements returns the elements of the valid JSON array arr, each the
// exact bytes of the value, failing with 413 past lim.MaxEvents.
// eventElements splits a JSON array of events (valid JSON) into its
// elements; an empty array is an error.
func eventElements(arr []byte, lim Limits) ([][]byte, error) {
	elems, err := arrayElements(arr, lim)
	if err == nil && len(elems) == 0 {
		return nil, invalidRequestf("no events: the JSON array is empty")
	}
	return elems, err
}

func arrayElements(arr []byte, lim Limits) ([][]byte, error) {
	var elems [][]byte
	i := skipJSONSpace(arr, 1)
	if arr[i] == ']' {
		return elems, nil
	}
	for {
		end := valueEnd(arr, i)
		if len(elems) == lim.MaxEvents {
			return nil, tooManyEvents(lim)
		}
		elems = append(elems, arr[i:end])
		i = skipJSONSpace(arr, end)
		if arr[i] == ']' {
			return elems, nil
		}
		i = skipJSONSpace(arr, i+1) // past ','
	}
}

// objectMembers calls fn with each member of the valid JSON object obj.
func objectMembers(obj []byte, fn func(name string, val []byte) error) error {
	i := skipJSONSpace(obj, 1)
	if obj[i] == '}' {
		return nil
	}
	for {
		keyEnd := stringEnd(obj, i)
		name, err := jsonString(obj[i:keyEnd])
		if err != nil {
			return err
		}
		i = skipJSONSpace(obj, keyEnd) // at ':'
		i = skipJSONSpace(obj, i+1)    // at the value
		end := valueEnd(obj, i)
		if err := fn(name, obj[i:end]); err != nil {
			return err
		}
		i = skipJSONSpace(obj, end)
		if obj[i] == '}' {
			return nil
		}
		i = skipJSONSpace(obj, i+1) // past ','
	}
}

// duplicateMemberError: an object names a member twice. Readers disagree
// on which value counts (encoding/json takes the last, SQLite's JSON
// functions the first), so a request that does is refused.
type duplicateMemberError struct{ name string }

func (e *duplicateMemberError) Error() string {
	return fmt.Sprintf("member %q appears twice: give each member once", e.name)
}

// uniqueMembers is objectMembers, failing with a *duplicateMemberError at
// the first member whose name an earlier member has.
func uniqueMembers(obj []byte, fn func(name string, val []byte) error) error {
	var names []string // few: compared one by one, then in a map
	var seen map[string]struct{}
	return objectMembers(obj, func(name string, val []byte) error {
		switch {
		case seen != nil:
			if _, dup := seen[name]; dup {
				return &duplicateMemberError{name}
			}
			seen[name] = struct{}{}
		case slices.Contains(names, name):
			return &duplicateMemberError{name}
		case len(names) < 16:
			names = append(names, name)
		default:
			seen = make(map[string]struct{}, 2*len(names))
			for _, n := range names {
				seen[n] = struct{}{}
			}
			seen[name] = struct{}{}
		}
		return fn(name, val)
	})
}

// checkUniqueMembers refuses the valid JSON text body if an object in it,
// at any depth, names a member twice; what names the text in the error
// ("request body", "document"...).
func checkUniqueMembers(body []byte, what string) error {
	if err := docstore.CheckShape(body, what, 0); err != nil {
		return invalidRequestf("%v", err)
	}
	return nil
}

// elementAt returns the index of the top-level array element that byte
// offset pos of body falls in (or right after), walking only body[:pos],
// which is valid JSON so far. ok is false when pos is outside the events
// (before or after the array or object). A top-level object is event 0.
func elementAt(body []byte, pos int) (idx int, ok bool) {
	p := body[:min(pos, len(body))]
	i := skipJSONSpace(p, 0)
	if i >= len(p) {
		return 0, false
	}
	if p[i] == '{' {
		_, closed := compoundEnd(p, i)
		return 0, !closed // inside the object, not after it
	}
	if p[i] != '[' {
		return 0, false
	}
	i = skipJSONSpace(p, i+1)
	for i < len(p) {
		if p[i] == ']' {
			return 0, false
		}
		end := valueEnd(p, i)
		if end >= len(p) || end == i {
			return idx, true
		}
		i = skipJSONSpace(p, end)
		if i >= len(p) {
			return idx, true
		}
		if p[i] != ',' {
			return idx, p[i] != ']'
		}
		idx++
		i = skipJSONSpace(p, i+1)
	}
	return idx, true
}

// valueEnd returns the offset just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		end, _ := compoundEnd(b, i)
		return end
	default: // number, true, false, null
		j := i
		for j < len(b) && !isDelimiter(b[j]) {
			j++
		}
		return j
	}
}

// compoundEnd returns the offset just past the object or array starting at
// b[i], and whether it is closed within b.
func compoundEnd(b []byte, i int) (end int, closed bool) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			j = stringEnd(b, j) - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, true
			}
		}
	}
	return len(b), false
}

// stringEnd returns the offset just past the JSON string starting at b[i].
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', ']', '}', ':', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// trimJSONSpace trims JSON whitespace (not Unicode spaces, which JSON does not allow there).
func trimJSONSpace(b []byte) []byte {
	b = trimLeftJSONSpace(b)
	for len(b) > 0 && isJSONSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func trimLeftJSONSpace(b []byte) []byte { return b[skipJSONSpace(b, 0):] }

// jsonString decodes the JSON string literal s.
func jsonString(s []byte) (string, error) {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && bytes.IndexByte(s, '\\') < 0 {
		return string(s[1 : len(s)-1]), nil
	}
	var v string
	if err := json.Unmarshal(s, &v); err != nil {
		return "", err
	}
	return v, nil
}

func jsonKind(first byte) string {
	switch first {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}
