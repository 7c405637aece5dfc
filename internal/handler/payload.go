// Package handler runs functions written in any language: an HTTP server
// process speaking the Azure Functions custom-handler protocol. Sluice
// starts the process, and for each invocation POSTs {"Data", "Metadata"} to
// /<FunctionName> and reads {"Outputs", "Logs", "ReturnValue"} back.
//
// Payloads come in two modes. Compat, the default for app folders, copies
// the encodings of the Azure Functions host that existing handlers decode:
// string values (a queue message, an event body, a scalar metadata value)
// are JSON-encoded twice, arrays (an event batch, the metadata arrays)
// travel as a string holding their JSON, and a change feed batch is a string
// holding a JSON string of the array. Clean sends the same keys with
// natural JSON: bodies that are JSON as JSON, arrays as arrays, numbers as
// numbers.
package handler

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
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

// object is an object value, JSON in both modes, of any Go value: for
// the rare values that have no encoder of their own.
func (e encoder) object(v any) json.RawMessage { return mustJSON(v) }

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value given here is built from strings, numbers, maps
		// and slices of them.
		panic(fmt.Sprintf("handler: encode %T: %v", v, err))
	}
	return b
}

// date is a time: an ISO 8601 string in both modes (Azure passes dates
// through as dates).
func (e encoder) date(t time.Time) json.RawMessage {
	return appendDate(make([]byte, 0, 32), t, top)
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
func sys(function string, now time.Time, guid string) json.RawMessage {
	if guid == "" {
		guid = newGUID()
	}
	v := make([]byte, 0, 110+len(function))
	v = append(v, `{"MethodName":`...)
	v = appendStr(v, function, top)
	v = append(v, `,"RandGuid":`...)
	v = appendStr(v, guid, top)
	v = append(v, `,"UtcNow":`...)
	v = appendDate(v, now, top)
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
	// Binary: the trigger binding's dataType is "binary".
	Binary bool
	// Retry is set when the function has a retry policy.
	Retry *Retry
	Now   time.Time
	// RandGuid is Metadata.sys.RandGuid; empty: a new random one.
	RandGuid string
}

func (inv Invocation) request() (Request, encoder) {
	r := Request{Data: map[string]json.RawMessage{}, Metadata: map[string]json.RawMessage{}}
	r.Metadata["sys"] = sys(inv.Function, inv.Now, inv.RandGuid)
	if inv.Retry != nil {
		r.Metadata["RetryContext"] = retryContext(inv.Retry)
	}
	return r, encoder{mode: inv.Mode, binary: inv.Binary}
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

// appendSystemProperties appends an event's SystemProperties at level l;
// enqueued is its EnqueuedTime as appendTime formats it.
func appendSystemProperties(dst []byte, e *sluice.Event, enqueued []byte, l level) []byte {
	dst = l.key(append(dst, '{'), "x-opt-enqueued-time")
	dst = l.quote(append(l.quote(dst), enqueued...))
	dst = l.quote(l.key(append(dst, ','), "x-opt-offset"))
	dst = l.quote(strconv.AppendInt(dst, e.SequenceNumber, 10))
	if e.PartitionKey != "" {
		dst = l.key(append(dst, ','), "x-opt-partition-key")
		dst = appendStr(dst, e.PartitionKey, l)
	}
	dst = l.key(append(dst, ','), "x-opt-sequence-number")
	dst = strconv.AppendInt(dst, e.SequenceNumber, 10)
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
	// The enqueued times, formatted once for the two arrays that send
	// them: times[ends[i-1]:ends[i]] is events[i]'s.
	times, ends := make([]byte, 0, n*len(time.RFC3339Nano)), make([]int, n+1)
	for i := range events {
		times = appendTime(times, events[i].EnqueuedTime)
		ends[i+1] = len(times)
	}
	enqueued := func(i int) []byte { return times[ends[i]:ends[i+1]] }
	r.Metadata["EnqueuedTimeUtcArray"] = enc.array(n, 30, func(dst []byte, l level, i int) []byte {
		return l.quote(append(l.quote(dst), enqueued(i)...))
	})
	r.Metadata["PropertiesArray"] = enc.array(n, 4, func(dst []byte, l level, i int) []byte {
		return appendStrings(dst, events[i].Properties, l)
	})
	r.Metadata["SystemPropertiesArray"] = enc.array(n, 140, func(dst []byte, l level, i int) []byte {
		return appendSystemProperties(dst, &events[i], enqueued(i), l)
	})
	return r
}

// HubEvent is the request for one event (cardinality "one").
func HubEvent(inv Invocation, name string, src HubSource, e sluice.Event) Request {
	r, enc := inv.request()
	r.Data[name] = enc.body(e.Body)
	r.Metadata["PartitionContext"] = src.context()
	if e.PartitionKey != "" {
		r.Metadata["PartitionKey"] = enc.str(e.PartitionKey)
	}
	r.Metadata["Offset"] = enc.str(strconv.FormatInt(e.SequenceNumber, 10))
	r.Metadata["SequenceNumber"] = enc.int(e.SequenceNumber)
	r.Metadata["EnqueuedTimeUtc"] = enc.date(e.EnqueuedTime)
	r.Metadata["Properties"] = appendStrings(nil, e.Properties, top)
	r.Metadata["SystemProperties"] = appendSystemProperties(make([]byte, 0, 140), &e, appendTime(nil, e.EnqueuedTime), top)
	return r
}

// QueueMessage is the request for a queue message.
func QueueMessage(inv Invocation, name, queueName string, m *sluice.Message, lock time.Duration) Request {
	r, enc := inv.request()
	r.Data[name] = enc.body(m.Body)
	id := strconv.FormatUint(m.ID, 10)
	r.Metadata["Id"] = enc.str(id)
	r.Metadata["DequeueCount"] = enc.int(int64(m.DequeueCount))
	r.Metadata["InsertionTime"] = enc.date(m.Enqueued)
	r.Metadata["NextVisibleTime"] = enc.date(inv.Now.Add(lock))
	r.Metadata["PopReceipt"] = enc.str(id + "-" + strconv.Itoa(m.DequeueCount))
	r.Metadata["QueueName"] = enc.str(queueName)
	if len(m.Properties) > 0 {
		r.Metadata["Properties"] = appendStrings(nil, m.Properties, top)
	}
	return r
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
	URL     string
	Method  string
	Query   map[string]string
	Headers map[string][]string
	// Params are the route's parameters.
	Params map[string]string
	Body   []byte
	// Binary bodies (application/octet-stream, multipart/*) go as base64.
	Binary bool
}

// HTTP is the request for an HTTP trigger: Data[name] is {Url, Method,
// Query, Headers, Params, Identities, Body}, an object in both modes, with
// the body as a string (base64 when binary). Metadata carries Query,
// Headers, and each route parameter as a string value.
func HTTP(inv Invocation, name string, req HTTPRequest) Request {
	r, enc := inv.request()
	query := appendStrings(nil, req.Query, top)
	headers := appendHeaders(nil, req.Headers)
	v := make([]byte, 0, len(req.Body)*5/4+len(query)+len(headers)+len(req.URL)+100)
	v = append(v, `{"Body":`...)
	switch {
	case req.Binary || !utf8.Valid(req.Body):
		v = append(v, '"')
		v = base64.StdEncoding.AppendEncode(v, req.Body)
		v = append(v, '"')
	case inv.Mode == Clean && len(req.Body) > 0 && json.Valid(req.Body):
		v = appendCompact(v, req.Body)
	default:
		v = appendString(v, req.Body)
	}
	v = append(append(v, `,"Headers":`...), headers...)
	v = append(v, `,"Identities":[],"Method":`...)
	v = appendString(v, req.Method)
	v = appendStrings(append(v, `,"Params":`...), req.Params, top)
	v = append(append(v, `,"Query":`...), query...)
	v = appendString(append(v, `,"Url":`...), req.URL)
	r.Data[name] = append(v, '}')
	r.Metadata["Query"] = query
	r.Metadata["Headers"] = headers
	for k, v := range req.Params {
		if _, taken := r.Metadata[k]; !taken {
			r.Metadata[k] = enc.str(v)
		}
	}
	return r
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
