// Package handler runs functions written in any language: an HTTP server
// process speaking the Azure Functions custom-handler protocol. Sluice
// starts the process, and for each invocation POSTs {"Data", "Metadata"} to
// /<FunctionName> and reads {"Outputs", "Logs", "ReturnValue"} back.
//
// Payloads come in two modes. Compat, the default for app folders, copies
// the encodings of the Azure Functions host that existing handlers decode
// (the host's ScriptInvocationContextExtensions.ToHttpScriptInvocationContext
// and GetHttpScriptInvocationContextValue): string values (a queue message,
// an event body, a scalar metadata value) are JSON-encoded twice, arrays
// (an event batch, the metadata arrays) travel as a string holding their
// JSON, a change feed batch is a string holding a JSON string of the array,
// a missing input is the string "null", and dates are written as .NET
// writes them (see netTime). Clean sends the same keys with natural JSON:
// bodies that are JSON as JSON, arrays as arrays, numbers as numbers, dates
// in RFC 3339, and a few of Sluice's own (a queue message's QueueName and
// Properties).
//
// testdata/golden/host holds payloads the Azure host sent, and
// TestHostPayloadShapes checks compat payloads against them key by key.
package handler

import (
	"bytes"
	"cmp"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice"
)

// Mode chooses the payload encoding.
type Mode int

const (
	// Compat encodes payloads as the Azure Functions host does.
	Compat Mode = iota
	// Clean encodes payloads as natural JSON.
	Clean
)

// ParseMode reads "compat" or "clean".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "compat", "":
		return Compat, nil
	case "clean":
		return Clean, nil
	}
	return 0, fmt.Errorf("payload mode %q: use compat (Azure's encodings, the default) or clean (natural JSON)", s)
}

func (m Mode) String() string {
	if m == Clean {
		return "clean"
	}
	return "compat"
}

// Request is the body POSTed to /<FunctionName>.
type Request struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// Retry is what an invocation knows of its retries: Metadata.RetryContext.
type Retry struct {
	// Count is the retries before this attempt (0 on the first).
	Count int
	// Max is the policy's maxRetryCount (-1: forever).
	Max int
	// Last is the error of the previous attempt.
	Last error
}

// encoder builds payload values in one mode, appending their JSON to
// byte slices (encode.go).
//
// In compat mode every value but an object or a date is a string of its
// JSON: a string value is encoded twice, a number is "1", an array is
// "[...]". Such a value is written at once: its quotes, and its JSON at
// the quoted level, where strings are escaped twice (appendEscaped).
type encoder struct {
	mode Mode
	// binary sends bodies as base64 (a binding's dataType "binary").
	binary bool
}

// open begins a value that compat mode sends as a string of its JSON,
// and returns the level to write that JSON at.
func (e encoder) open(dst []byte) ([]byte, level) {
	if e.mode == Compat {
		return append(dst, '"'), quoted
	}
	return dst, top
}

// close ends a value begun with open.
func (e encoder) close(dst []byte) []byte {
	if e.mode == Compat {
		return append(dst, '"')
	}
	return dst
}

// str is a string value: in compat mode JSON-encoded twice, as Azure
// serializes every string it cannot turn into an object.
func (e encoder) str(s string) json.RawMessage {
	v, l := e.open(make([]byte, 0, len(s)+6))
	return e.close(appendStr(v, s, l))
}

// int is a number value: a string of it in compat mode
// ("DequeueCount":"1").
func (e encoder) int(n int64) json.RawMessage {
	v, _ := e.open(make([]byte, 0, 22))
	return e.close(strconv.AppendInt(v, n, 10))
}

// array is an array value of n elements, each appended by elem at the
// level given: in compat mode a string holding the array's JSON. size
// guesses the bytes of an element.
func (e encoder) array(n, size int, elem func(dst []byte, l level, i int) []byte) json.RawMessage {
	v, l := e.open(make([]byte, 0, 4+n*size))
	v = append(v, '[')
	for i := range n {
		if i > 0 {
			v = append(v, ',')
		}
		v = elem(v, l, i)
	}
	return e.close(append(v, ']'))
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value given here is built from strings, numbers, maps
		// and slices of them.
		panic(fmt.Sprintf("handler: encode %T: %v", v, err))
	}
	return b
}

// body is a single body value.
func (e encoder) body(b []byte) json.RawMessage {
	v, l := e.open(make([]byte, 0, len(b)+len(b)/8+8))
	return e.close(e.appendBody(v, b, l))
}

// appendBody appends a body as an element of an array or a value of its
// own, at level l: its text as a string, or base64 when it is binary or
// not UTF-8. In clean mode a JSON body is itself.
func (e encoder) appendBody(dst, b []byte, l level) []byte {
	switch {
	case e.binary || !utf8.Valid(b):
		dst = l.quote(dst)
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return l.quote(dst)
	case e.mode == Clean && json.Valid(b): // clean mode writes at the top level
		return appendCompact(dst, b)
	}
	return appendStr(dst, b, l)
}

// A level is where JSON is written: in the request (top), or inside a
// JSON string (quoted), as compat mode's values, written at once: there a
// string's quotes are \" and its escapes are escaped again.
type level bool

const (
	top    level = false
	quoted level = true
)

// quote appends a string's quote.
func (l level) quote(dst []byte) []byte {
	if l == quoted {
		return append(dst, '\\', '"')
	}
	return append(dst, '"')
}

// key appends an object's key k, which needs no escape, and its colon.
func (l level) key(dst []byte, k string) []byte {
	dst = l.quote(dst)
	dst = append(dst, k...)
	return append(l.quote(dst), ':')
}

// appendStr appends s as a JSON string at level l.
func appendStr[S ~string | ~[]byte](dst []byte, s S, l level) []byte {
	dst = l.quote(dst)
	dst = appendEscaped(dst, s, l == quoted)
	return l.quote(dst)
}

// appendDate appends t as a string at level l.
func appendDate(dst []byte, t time.Time, l level) []byte {
	return l.quote(appendTime(l.quote(dst), t))
}

// appendTime appends t in UTC in RFC 3339, with the fraction of a second
// it has: text that needs no escape.
func appendTime(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, time.RFC3339Nano)
}

// A netTime is how the Azure host writes a date, which depends on the .NET
// type of the value and on whether it passed through
// GetHttpScriptInvocationContextValue, which turns a DateTime or a
// DateTimeOffset of the binding data into text and parses it back, losing
// the fraction of a second.
type netTime int

const (
	// netUTC is a DateTime in UTC: "2025-02-18T03:06:20.7562691Z"
	// (Metadata.sys.UtcNow, an AMQP enqueued time).
	netUTC netTime = iota
	// netOffset is a DateTimeOffset inside an object:
	// "2023-03-13T01:25:02.25+00:00".
	netOffset
	// netOffsetSeconds is a DateTimeOffset of the binding data:
	// "2025-02-25T03:06:19+00:00" (a queue message's times).
	netOffsetSeconds
	// netLocal is a DateTime without a time zone, inside an object or an
	// array: "2023-03-13T01:25:02.25" (an event's EnqueuedTimeUtc).
	netLocal
	// netLocalSeconds is a DateTime without a time zone of the binding
	// data: "2023-03-13T01:25:02".
	netLocalSeconds
)

// appendNetTime appends t in UTC as the host writes a date of kind k, at
// most 7 digits of a second (.NET's ticks), trailing zeros dropped: text
// that needs no escape. It formats with time's RFC 3339 fast path and
// changes the zone, as payloads hold many dates.
func appendNetTime(dst []byte, t time.Time, k netTime) []byte {
	t = t.UTC()
	if k == netOffsetSeconds || k == netLocalSeconds {
		dst = t.Truncate(time.Second).AppendFormat(dst, time.RFC3339)
	} else {
		dst = t.Truncate(100*time.Nanosecond).AppendFormat(dst, time.RFC3339Nano)
	}
	switch k { // dst ends in Z
	case netOffset, netOffsetSeconds:
		return append(dst[:len(dst)-1], "+00:00"...)
	case netLocal, netLocalSeconds:
		return dst[:len(dst)-1]
	}
	return dst
}

// appendWhen appends t as a string at level l: as the host writes a date
// of kind k in compat mode, in RFC 3339 in clean mode.
func (e encoder) appendWhen(dst []byte, t time.Time, k netTime, l level) []byte {
	dst = l.quote(dst)
	if e.mode == Compat {
		dst = appendNetTime(dst, t, k)
	} else {
		dst = appendTime(dst, t)
	}
	return l.quote(dst)
}

// when is a date value of kind k.
func (e encoder) when(t time.Time, k netTime) json.RawMessage {
	return e.appendWhen(make([]byte, 0, 36), t, k, top)
}

// appendStrings appends m as an object of strings, keys sorted as
// json.Marshal sorts them; nil is {} (the payloads send no nulls for
// maps).
func appendStrings(dst []byte, m map[string]string, l level) []byte {
	var stack [8]string
	keys := sortedKeys(m, stack[:0])
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendStr(dst, k, l)
		dst = append(dst, ':')
		dst = appendStr(dst, m[k], l)
	}
	return append(dst, '}')
}

// sys is Metadata.sys.
func (e encoder) sys(function string, now time.Time, guid string) json.RawMessage {
	if guid == "" {
		guid = newGUID()
	}
	v := make([]byte, 0, 110+len(function))
	v = append(v, `{"MethodName":`...)
	v = appendStr(v, function, top)
	v = append(v, `,"RandGuid":`...)
	v = appendStr(v, guid, top)
	v = append(v, `,"UtcNow":`...)
	v = e.appendWhen(v, now, netUTC, top)
	return append(v, '}')
}

// newGUID is a random (version 4) GUID. The runtime's generator is
// enough: it is for uniqueness, not secrecy, and costs no system call.
func newGUID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatGUID(b[:])
}

// formatGUID writes 16 bytes as a GUID.
func formatGUID(b []byte) string {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

func retryContext(r *Retry) json.RawMessage {
	v := make([]byte, 0, 100)
	v = append(v, `{"Exception":`...)
	if r.Last != nil {
		v = append(v, `{"Message":`...)
		v = appendStr(v, r.Last.Error(), top)
		v = append(v, `,"Source":"Sluice"}`...)
	} else {
		v = append(v, "null"...)
	}
	v = append(v, `,"MaxRetryCount":`...)
	v = strconv.AppendInt(v, int64(r.Max), 10)
	v = append(v, `,"RetryCount":`...)
	v = strconv.AppendInt(v, int64(r.Count), 10)
	return append(v, '}')
}

// Invocation is what every request carries besides its trigger's data.
type Invocation struct {
	Function string
	Mode     Mode
	// Binary: the trigger binding's dataType is "binary" or "stream".
	Binary bool
	// Retry is set when the function has a retry policy.
	Retry *Retry
	Now   time.Time
	// RandGuid is Metadata.sys.RandGuid; empty: a new random one.
	RandGuid string
}

func (inv Invocation) request() (Request, encoder) {
	r := Request{Data: map[string]json.RawMessage{}, Metadata: map[string]json.RawMessage{}}
	enc := encoder{mode: inv.Mode, binary: inv.Binary}
	r.Metadata["sys"] = enc.sys(inv.Function, inv.Now, inv.RandGuid)
	if inv.Retry != nil {
		r.Metadata["RetryContext"] = retryContext(inv.Retry)
	}
	return r, enc
}

// HubSource names where a batch of events came from.
type HubSource struct {
	Hub, Group string
	Partition  int
}

// context is Metadata.PartitionContext.
func (s HubSource) context() json.RawMessage {
	v := make([]byte, 0, 120+len(s.Hub)+len(s.Group))
	v = append(v, `{"ConsumerGroup":`...)
	v = appendStr(v, s.Group, top)
	v = append(v, `,"EventHubName":`...)
	v = appendStr(v, s.Hub, top)
	v = append(v, `,"FullyQualifiedNamespace":"sluice","PartitionId":"`...)
	v = strconv.AppendInt(v, int64(s.Partition), 10)
	return append(v, '"', '}')
}

// appendSystemProperties appends an event's SystemProperties at level l:
// the AMQP annotations, and the four keys the Event Hubs extension adds
// (EventHubTriggerBindingStrategy.GetSystemPropertiesForBinding):
// SequenceNumber, Offset, PartitionKey (null when none) and
// EnqueuedTimeUtc.
func (e encoder) appendSystemProperties(dst []byte, ev *sluice.Event, l level) []byte {
	dst = l.key(append(dst, '{'), "EnqueuedTimeUtc")
	dst = e.appendWhen(dst, ev.EnqueuedTime, netLocal, l)
	dst = l.key(append(dst, ','), "Offset")
	dst = strconv.AppendInt(dst, ev.SequenceNumber, 10)
	dst = l.key(append(dst, ','), "PartitionKey")
	if ev.PartitionKey != "" {
		dst = appendStr(dst, ev.PartitionKey, l)
	} else {
		dst = append(dst, "null"...)
	}
	dst = l.key(append(dst, ','), "SequenceNumber")
	dst = strconv.AppendInt(dst, ev.SequenceNumber, 10)
	dst = l.key(append(dst, ','), "x-opt-enqueued-time")
	dst = e.appendWhen(dst, ev.EnqueuedTime, netOffset, l)
	dst = l.key(append(dst, ','), "x-opt-offset")
	dst = strconv.AppendInt(dst, ev.SequenceNumber, 10)
	if ev.PartitionKey != "" {
		dst = l.key(append(dst, ','), "x-opt-partition-key")
		dst = appendStr(dst, ev.PartitionKey, l)
	}
	dst = l.key(append(dst, ','), "x-opt-sequence-number")
	dst = strconv.AppendInt(dst, ev.SequenceNumber, 10)
	return append(dst, '}')
}

// HubBatch is the request for a batch of events (cardinality "many"):
// Data[name] holds the bodies, Metadata the ...Array values.
func HubBatch(inv Invocation, name string, src HubSource, events []sluice.Event) Request {
	r, enc := inv.request()
	n := len(events)
	bodies := 0
	for i := range events {
		bodies += len(events[i].Body)
	}
	r.Data[name] = enc.array(n, bodies/max(n, 1)*5/4+8, func(dst []byte, l level, i int) []byte {
		return enc.appendBody(dst, events[i].Body, l)
	})
	r.Metadata["PartitionContext"] = src.context()
	r.Metadata["PartitionKeyArray"] = enc.array(n, 8, func(dst []byte, l level, i int) []byte {
		if k := events[i].PartitionKey; k != "" {
			return appendStr(dst, k, l)
		}
		return append(dst, "null"...)
	})
	r.Metadata["OffsetArray"] = enc.array(n, 12, func(dst []byte, l level, i int) []byte {
		return l.quote(strconv.AppendInt(l.quote(dst), events[i].SequenceNumber, 10))
	})
	r.Metadata["SequenceNumberArray"] = enc.array(n, 8, func(dst []byte, l level, i int) []byte {
		return strconv.AppendInt(dst, events[i].SequenceNumber, 10)
	})
	r.Metadata["EnqueuedTimeUtcArray"] = enc.array(n, 30, func(dst []byte, l level, i int) []byte {
		return enc.appendWhen(dst, events[i].EnqueuedTime, netLocal, l)
	})
	r.Metadata["PropertiesArray"] = enc.array(n, 4, func(dst []byte, l level, i int) []byte {
		return appendStrings(dst, events[i].Properties, l)
	})
	r.Metadata["SystemPropertiesArray"] = enc.array(n, 240, func(dst []byte, l level, i int) []byte {
		return enc.appendSystemProperties(dst, &events[i], l)
	})
	return r
}

// HubEvent is the request for one event (cardinality "one"). As the
// Event Hubs extension gives them, Offset is a number (a string of it in
// compat mode, as SequenceNumber) and EnqueuedTimeUtc a date without a
// time zone.
func HubEvent(inv Invocation, name string, src HubSource, e sluice.Event) Request {
	r, enc := inv.request()
	r.Data[name] = enc.body(e.Body)
	r.Metadata["PartitionContext"] = src.context()
	if e.PartitionKey != "" {
		r.Metadata["PartitionKey"] = enc.str(e.PartitionKey)
	}
	r.Metadata["Offset"] = enc.int(e.SequenceNumber)
	r.Metadata["SequenceNumber"] = enc.int(e.SequenceNumber)
	r.Metadata["EnqueuedTimeUtc"] = enc.when(e.EnqueuedTime, netLocalSeconds)
	r.Metadata["Properties"] = appendStrings(nil, e.Properties, top)
	r.Metadata["SystemProperties"] = enc.appendSystemProperties(make([]byte, 0, 240), &e, top)
	return r
}

// QueueSource is the queue a message came from.
type QueueSource struct {
	Queue string
	// TTL is how long the queue keeps a message (its ExpirationTime);
	// negative: forever. Default 7 days, as Sluice's and Azure's.
	TTL time.Duration
	// Lock is how long the message is invisible to others
	// (NextVisibleTime).
	Lock time.Duration
}

// QueueMessage is the request for a queue message. Metadata holds what
// Azure's queue trigger gives (QueueTriggerBinding.CreateBindingData):
// DequeueCount, ExpirationTime, Id (a GUID, the same at every delivery),
// InsertionTime, NextVisibleTime and PopReceipt; clean mode adds Sluice's
// QueueName and the message's Properties.
func QueueMessage(inv Invocation, name string, src QueueSource, m *sluice.Message) Request {
	r, enc := inv.request()
	r.Data[name] = enc.body(m.Body)
	id := MessageGUID(src.Queue, m.ID)
	expires := maxDateTimeOffset
	if ttl := cmp.Or(src.TTL, 7*24*time.Hour); ttl > 0 {
		expires = m.Enqueued.Add(ttl)
	}
	r.Metadata["Id"] = enc.str(id)
	r.Metadata["DequeueCount"] = enc.int(int64(m.DequeueCount))
	r.Metadata["ExpirationTime"] = enc.when(expires, netOffsetSeconds)
	r.Metadata["InsertionTime"] = enc.when(m.Enqueued, netOffsetSeconds)
	r.Metadata["NextVisibleTime"] = enc.when(inv.Now.Add(src.Lock), netOffsetSeconds)
	r.Metadata["PopReceipt"] = enc.str(popReceipt(m))
	if inv.Mode == Clean {
		r.Metadata["QueueName"] = enc.str(src.Queue)
		if len(m.Properties) > 0 {
			r.Metadata["Properties"] = appendStrings(nil, m.Properties, top)
		}
	}
	return r
}

// maxDateTimeOffset is .NET's DateTimeOffset.MaxValue, the ExpirationTime
// of a message that never expires.
var maxDateTimeOffset = time.Date(9999, 12, 31, 23, 59, 59, 999999900, time.UTC)

// MessageGUID is a queue message's Id: a name-based (version 5) GUID of
// the queue and the message's number, so it is the same at every delivery
// and differs between queues.
func MessageGUID(queue string, id uint64) string {
	h := sha1.New()
	h.Write(messageGUIDSpace[:])
	h.Write([]byte(queue))
	var n [9]byte
	binary.BigEndian.PutUint64(n[1:], id)
	h.Write(n[:])
	var b [sha1.Size]byte
	h.Sum(b[:0])
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return formatGUID(b[:16])
}

// messageGUIDSpace is the namespace of MessageGUID's GUIDs.
var messageGUIDSpace = [16]byte{0x5b, 0x1c, 0xe0, 0x0d, 0x9a, 0x3f, 0x4e, 0x11, 0x8d, 0x2a, 0x51, 0x1c, 0xe0, 0x00, 0x00, 0x15}

// popReceipt is a delivery's pop receipt: opaque, different at every
// delivery.
func popReceipt(m *sluice.Message) string {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], m.ID)
	binary.BigEndian.PutUint32(b[8:], uint32(m.DequeueCount))
	return base64.StdEncoding.EncodeToString(b[:])
}

// Changes is the request for a batch of change feed documents: in compat
// mode a string holding a JSON string of the array, as Azure sends it.
// Azure's change feed has no deletes, so compat mode leaves tombstones out
// (ok is false when nothing is left to send); clean mode sends each as
// {"_deleted": true, "_lsn", "id"}.
func Changes(inv Invocation, name string, docs []sluice.Document) (r Request, ok bool) {
	r, _ = inv.request()
	size := 0
	for _, d := range docs {
		size += len(d.Body) + 1
	}
	arr := make([]byte, 0, size+2)
	arr = append(arr, '[')
	sent := 0
	for _, d := range docs {
		if d.Deleted && inv.Mode == Compat {
			continue
		}
		if sent > 0 {
			arr = append(arr, ',')
		}
		sent++
		if d.Deleted {
			arr = append(arr, `{"_deleted":true,"_lsn":`...)
			arr = strconv.AppendInt(arr, d.LSN, 10)
			arr = appendStr(append(arr, `,"id":`...), d.ID, top)
			arr = append(arr, '}')
			continue
		}
		switch {
		case len(d.Body) == 0:
			arr = append(arr, "null"...)
		case !json.Valid(d.Body):
			// The document store keeps JSON objects only.
			panic(fmt.Sprintf("handler: document %q of the change feed is not JSON", d.ID))
		default:
			arr = appendCompact(arr, d.Body)
		}
	}
	arr = append(arr, ']')
	if inv.Mode == Compat {
		r.Data[name] = appendStringTwice(make([]byte, 0, len(arr)*5/4+8), arr)
	} else {
		r.Data[name] = arr
	}
	return r, sent > 0
}

// Timer is the request for a timer occurrence: Data[name] is Azure's
// TimerInfo, {"Schedule", "ScheduleStatus" (null without the monitor),
// "IsPastDue"}, an object in both modes.
func Timer(inv Invocation, name string, info sluice.TimerInfo, monitored bool) Request {
	r, _ := inv.request()
	v := make([]byte, 0, 180)
	v = strconv.AppendBool(append(v, `{"IsPastDue":`...), info.IsPastDue)
	v = append(v, `,"Schedule":{"AdjustForDST":true},"ScheduleStatus":`...)
	if monitored {
		v = appendDate(append(v, `{"Last":`...), info.Last, top)
		v = appendDate(append(v, `,"LastUpdated":`...), info.LastUpdated, top)
		v = appendDate(append(v, `,"Next":`...), info.Next, top)
		v = append(v, '}')
	} else {
		v = append(v, "null"...)
	}
	r.Data[name] = append(v, '}')
	return r
}

// HTTPRequest is an HTTP trigger's request as the handler sees it.
type HTTPRequest struct {
	URL    string
	Method string
	// Query is the query string's values.
	Query url.Values
	// Headers are the request's headers, Host among them.
	Headers map[string][]string
	// Params are the route's parameters the request gave.
	Params map[string]string
	// Unset are the route's optional parameters it left out.
	Unset []string
	Body  []byte
	// Binary bodies (application/octet-stream, multipart/*) go as base64.
	Binary bool
}

// anonymousIdentity is the identity the host gives a request without
// credentials (its ClaimsPrincipal's one identity, serialized).
const anonymousIdentity = `{"Actor":null,"AuthenticationType":null,"BootstrapContext":null,"Claims":[],"IsAuthenticated":false,` +
	`"Label":null,"Name":null,"NameClaimType":"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",` +
	`"RoleClaimType":"http://schemas.microsoft.com/ws/2008/06/identity/claims/role"}`

// HTTP is the request for an HTTP trigger, as the host builds it
// (HttpRequestExtensions.GetRequestAsJObject for the data, the HTTP
// extension's HttpTriggerAttributeBindingProvider.GetRequestBindingData
// for the metadata).
//
// Data[name] is {Url, Method, Query, Headers, Params, Identities, Body}, an
// object in both modes: Query an object of strings (repeated values joined
// with commas), Headers an object of arrays of strings, Params the route's
// parameters (null for an optional one left out), Identities one
// anonymous identity, and Body, only when the request has one, a string
// (base64 when binary; JSON as JSON in clean mode).
//
// Metadata holds, by precedence, each top-level property of a JSON object
// body (arrays and nulls left out, objects as objects, other values as
// strings), each query value but "code" (the last of a repeated name),
// and each route parameter, under its own name; then Query (an object of
// strings, the last of repeated values) and Headers (an object of strings,
// repeated values joined with commas) when no such name is taken. Names
// are compared without regard to case; the first to take one keeps its
// spelling. The host sends no Metadata.Params: route values are keys of
// their own.
func HTTP(inv Invocation, name string, req HTTPRequest) Request {
	r, enc := inv.request()
	dataQuery := make(map[string]string, len(req.Query))
	lastQuery := make(map[string]string, len(req.Query))
	for k, vs := range req.Query {
		dataQuery[k] = strings.Join(vs, ",")
		if len(vs) > 0 {
			lastQuery[k] = vs[len(vs)-1]
		} else {
			lastQuery[k] = ""
		}
	}
	headers := appendHeaders(nil, req.Headers)
	v := make([]byte, 0, len(req.Body)*5/4+len(headers)+len(req.URL)+len(anonymousIdentity)+100)
	v = append(v, '{')
	if len(req.Body) > 0 {
		v = append(v, `"Body":`...)
		switch {
		case req.Binary || !utf8.Valid(req.Body):
			v = append(v, '"')
			v = base64.StdEncoding.AppendEncode(v, req.Body)
			v = append(v, '"')
		case inv.Mode == Clean && json.Valid(req.Body):
			v = appendCompact(v, req.Body)
		default:
			v = appendString(v, req.Body)
		}
		v = append(v, ',')
	}
	v = append(append(v, `"Headers":`...), headers...)
	v = append(v, `,"Identities":[`+anonymousIdentity+`],"Method":`...)
	v = appendString(v, req.Method)
	v = appendParams(append(v, `,"Params":`...), req.Params, req.Unset)
	v = appendStrings(append(v, `,"Query":`...), dataQuery, top)
	v = appendString(append(v, `,"Url":`...), req.URL)
	r.Data[name] = append(v, '}')

	var md metadata
	if len(req.Body) > 0 && !req.Binary {
		md.addBody(enc, req.Body)
	}
	for _, k := range sortedKeys(lastQuery, nil) {
		if !strings.EqualFold(k, "code") {
			md.set(k, enc.str(lastQuery[k]))
		}
	}
	for _, k := range sortedKeys(req.Params, nil) {
		md.set(k, enc.str(req.Params[k]))
	}
	md.setIfAbsent("Query", appendStrings(nil, lastQuery, top))
	joined := make(map[string]string, len(req.Headers))
	for k, vs := range req.Headers {
		joined[k] = strings.Join(vs, ",")
	}
	md.setIfAbsent("Headers", appendStrings(nil, joined, top))
	for _, kv := range md {
		if _, taken := r.Metadata[kv.k]; !taken {
			r.Metadata[kv.k] = kv.v
		}
	}
	return r
}

// metadata is binding data as the host's case-insensitive dictionary
// keeps it: a name set again keeps its first spelling and takes the new
// value.
type metadata []struct {
	k string
	v json.RawMessage
}

func (m *metadata) find(k string) int {
	for i, kv := range *m {
		if strings.EqualFold(kv.k, k) {
			return i
		}
	}
	return -1
}

func (m *metadata) set(k string, v json.RawMessage) {
	if i := m.find(k); i >= 0 {
		(*m)[i].v = v
		return
	}
	*m = append(*m, struct {
		k string
		v json.RawMessage
	}{k, v})
}

func (m *metadata) setIfAbsent(k string, v json.RawMessage) {
	if m.find(k) < 0 {
		m.set(k, v)
	}
}

// addBody adds the top-level properties of a JSON object body, as the HTTP
// extension's Utility.ApplyBindingData does: arrays and nulls are left
// out, an object is itself, any other value its text (true is "True", as
// .NET writes it) as a string value.
func (m *metadata) addBody(enc encoder, body []byte) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return
	}
	var props map[string]json.RawMessage
	if json.Unmarshal(trimmed, &props) != nil {
		return
	}
	for _, k := range sortedKeys(props, nil) {
		raw := bytes.TrimSpace(props[k])
		switch {
		case len(raw) == 0 || raw[0] == '[' || string(raw) == "null":
		case raw[0] == '{':
			m.set(k, appendCompact(nil, raw))
		case enc.mode == Clean:
			m.set(k, appendCompact(nil, raw))
		case raw[0] == '"':
			var s string
			if json.Unmarshal(raw, &s) == nil {
				m.set(k, enc.str(s))
			}
		case string(raw) == "true":
			m.set(k, enc.str("True"))
		case string(raw) == "false":
			m.set(k, enc.str("False"))
		default:
			m.set(k, enc.str(string(raw)))
		}
	}
}

// appendParams appends route parameters as an object of strings, those
// left out as null; keys sorted.
func appendParams(dst []byte, given map[string]string, unset []string) []byte {
	if len(unset) == 0 {
		return appendStrings(dst, given, top)
	}
	all := make(map[string]*string, len(given)+len(unset))
	for k, v := range given {
		all[k] = &v
	}
	for _, k := range unset {
		if _, ok := all[k]; !ok {
			all[k] = nil
		}
	}
	dst = append(dst, '{')
	for i, k := range sortedKeys(all, nil) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendString(dst, k), ':')
		if v := all[k]; v != nil {
			dst = appendString(dst, *v)
		} else {
			dst = append(dst, "null"...)
		}
	}
	return append(dst, '}')
}

// appendHeaders appends headers as an object of arrays of strings, keys
// sorted; nil is {}.
func appendHeaders(dst []byte, h map[string][]string) []byte {
	var stack [32]string
	keys := sortedKeys(h, stack[:0])
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendString(dst, k), ':')
		vs := h[k]
		if vs == nil {
			dst = append(dst, "null"...)
			continue
		}
		dst = append(dst, '[')
		for j, s := range vs {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, s)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}
