package handler

// The payload functions as they were, with encoding/json: the reference
// that the hand-written encoders are tested against (payload_ref_test.go
// is not compiled into Sluice). What Invoke sent was json.Marshal of
// their request.

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice"
)

// refEncoder builds payload values in one mode.
type refEncoder struct {
	mode Mode
	// binary sends bodies as base64 (a binding's dataType "binary").
	binary bool
}

func refJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value given here is built from strings, numbers, maps
		// and slices of them.
		panic(fmt.Sprintf("handler: encode %T: %v", v, err))
	}
	return b
}

// str is a string value: in compat mode JSON-encoded twice, as Azure
// serializes every string it cannot turn into an object.
func (e refEncoder) str(s string) json.RawMessage {
	if e.mode == Compat {
		return refJSON(string(refJSON(s)))
	}
	return refJSON(s)
}

// scalar is a number or boolean value: a string of its JSON in compat
// mode ("DequeueCount":"1").
func (e refEncoder) scalar(v any) json.RawMessage {
	if e.mode == Compat {
		return refJSON(string(refJSON(v)))
	}
	return refJSON(v)
}

// array is an array value: a string holding its JSON in compat mode.
func (e refEncoder) array(v any) json.RawMessage {
	if e.mode == Compat {
		return refJSON(string(refJSON(v)))
	}
	return refJSON(v)
}

// object is an object value: JSON in both modes.
func (e refEncoder) object(v any) json.RawMessage { return refJSON(v) }

// when is a time of kind k: as .NET writes it in compat mode, RFC 3339 in
// clean mode.
func (e refEncoder) when(t time.Time, k netTime) string {
	if e.mode == Compat {
		return string(appendNetTime(nil, t, k))
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// bodyValue is a body as an element of an array or a value of its own
// before the mode's encoding: its text, or base64 when it is binary or
// not UTF-8. In clean mode a JSON body is itself.
func (e refEncoder) bodyValue(b []byte) any {
	if e.binary || !utf8.Valid(b) {
		return base64.StdEncoding.EncodeToString(b)
	}
	if e.mode == Clean && json.Valid(b) {
		return json.RawMessage(b)
	}
	return string(b)
}

// body is a single body value.
func (e refEncoder) body(b []byte) json.RawMessage {
	switch v := e.bodyValue(b).(type) {
	case json.RawMessage:
		return refJSON(v) // compact and HTML-safe, as every value
	case string:
		return e.str(v)
	}
	panic("unreachable")
}

// sys is Metadata.sys.
func (e refEncoder) sys(function string, now time.Time, guid string) json.RawMessage {
	if guid == "" {
		guid = newGUID()
	}
	return refJSON(map[string]string{
		"MethodName": function,
		"UtcNow":     e.when(now, netUTC),
		"RandGuid":   guid,
	})
}

func refRetryContext(r *Retry) json.RawMessage {
	var exc any
	if r.Last != nil {
		exc = map[string]string{"Message": r.Last.Error(), "Source": "Sluice"}
	}
	return refJSON(map[string]any{"RetryCount": r.Count, "MaxRetryCount": r.Max, "Exception": exc})
}

func refRequest(inv Invocation) (Request, refEncoder) {
	r := Request{Data: map[string]json.RawMessage{}, Metadata: map[string]json.RawMessage{}}
	enc := refEncoder{mode: inv.Mode, binary: inv.Binary}
	r.Metadata["sys"] = enc.sys(inv.Function, inv.Now, inv.RandGuid)
	if inv.Retry != nil {
		r.Metadata["RetryContext"] = refRetryContext(inv.Retry)
	}
	return r, enc
}

func refContext(s HubSource) map[string]any {
	return map[string]any{
		"EventHubName":            s.Hub,
		"ConsumerGroup":           s.Group,
		"FullyQualifiedNamespace": "sluice",
		"PartitionId":             strconv.Itoa(s.Partition),
	}
}

func (enc refEncoder) systemProperties(e sluice.Event) map[string]any {
	var key any
	if e.PartitionKey != "" {
		key = e.PartitionKey
	}
	sp := map[string]any{
		"x-opt-sequence-number": e.SequenceNumber,
		"x-opt-offset":          e.SequenceNumber,
		"x-opt-enqueued-time":   enc.when(e.EnqueuedTime, netOffset),
		"SequenceNumber":        e.SequenceNumber,
		"Offset":                e.SequenceNumber,
		"PartitionKey":          key,
		"EnqueuedTimeUtc":       enc.when(e.EnqueuedTime, netLocal),
	}
	if e.PartitionKey != "" {
		sp["x-opt-partition-key"] = e.PartitionKey
	}
	return sp
}

func refProperties(p map[string]string) map[string]string {
	if p == nil {
		return map[string]string{}
	}
	return p
}

// HubBatch is the request for a batch of events (cardinality "many"):
// Data[name] holds the bodies, Metadata the ...Array values.
func refHubBatch(inv Invocation, name string, src HubSource, events []sluice.Event) Request {
	r, enc := refRequest(inv)
	bodies := make([]any, len(events))
	keys := make([]any, len(events))
	offsets := make([]string, len(events))
	seqs := make([]int64, len(events))
	times := make([]string, len(events))
	props := make([]map[string]string, len(events))
	sysProps := make([]map[string]any, len(events))
	for i, e := range events {
		bodies[i] = enc.bodyValue(e.Body)
		if e.PartitionKey != "" {
			keys[i] = e.PartitionKey
		}
		offsets[i] = strconv.FormatInt(e.SequenceNumber, 10)
		seqs[i] = e.SequenceNumber
		times[i] = enc.when(e.EnqueuedTime, netLocal)
		props[i] = refProperties(e.Properties)
		sysProps[i] = enc.systemProperties(e)
	}
	r.Data[name] = enc.array(bodies)
	r.Metadata["PartitionContext"] = enc.object(refContext(src))
	r.Metadata["PartitionKeyArray"] = enc.array(keys)
	r.Metadata["OffsetArray"] = enc.array(offsets)
	r.Metadata["SequenceNumberArray"] = enc.array(seqs)
	r.Metadata["EnqueuedTimeUtcArray"] = enc.array(times)
	r.Metadata["PropertiesArray"] = enc.array(props)
	r.Metadata["SystemPropertiesArray"] = enc.array(sysProps)
	return r
}

// HubEvent is the request for one event (cardinality "one").
func refHubEvent(inv Invocation, name string, src HubSource, e sluice.Event) Request {
	r, enc := refRequest(inv)
	r.Data[name] = enc.body(e.Body)
	r.Metadata["PartitionContext"] = enc.object(refContext(src))
	if e.PartitionKey != "" {
		r.Metadata["PartitionKey"] = enc.str(e.PartitionKey)
	}
	r.Metadata["Offset"] = enc.scalar(e.SequenceNumber)
	r.Metadata["SequenceNumber"] = enc.scalar(e.SequenceNumber)
	r.Metadata["EnqueuedTimeUtc"] = refJSON(enc.when(e.EnqueuedTime, netLocalSeconds))
	r.Metadata["Properties"] = enc.object(refProperties(e.Properties))
	r.Metadata["SystemProperties"] = enc.object(enc.systemProperties(e))
	return r
}

// QueueMessage is the request for a queue message.
func refQueueMessage(inv Invocation, name string, src QueueSource, m *sluice.Message) Request {
	r, enc := refRequest(inv)
	r.Data[name] = enc.body(m.Body)
	expires := maxDateTimeOffset
	if ttl := cmp.Or(src.TTL, 7*24*time.Hour); ttl > 0 {
		expires = m.Enqueued.Add(ttl)
	}
	r.Metadata["Id"] = enc.str(MessageGUID(src.Queue, m.ID))
	r.Metadata["DequeueCount"] = enc.scalar(m.DequeueCount)
	r.Metadata["ExpirationTime"] = refJSON(enc.when(expires, netOffsetSeconds))
	r.Metadata["InsertionTime"] = refJSON(enc.when(m.Enqueued, netOffsetSeconds))
	r.Metadata["NextVisibleTime"] = refJSON(enc.when(inv.Now.Add(src.Lock), netOffsetSeconds))
	r.Metadata["PopReceipt"] = enc.str(popReceipt(m))
	if inv.Mode == Clean {
		r.Metadata["QueueName"] = enc.str(src.Queue)
		if len(m.Properties) > 0 {
			r.Metadata["Properties"] = enc.object(m.Properties)
		}
	}
	return r
}

// Changes is the request for a batch of change feed documents: in compat
// mode a string holding a JSON string of the array, as Azure sends it.
// Azure's change feed has no deletes, so compat mode leaves tombstones out
// (ok is false when nothing is left to send); clean mode sends each as
// {"id", "_deleted": true, "_lsn"}.
func refChanges(inv Invocation, name string, docs []sluice.Document) (r Request, ok bool) {
	r, enc := refRequest(inv)
	bodies := make([]json.RawMessage, 0, len(docs))
	for _, d := range docs {
		switch {
		case !d.Deleted:
			bodies = append(bodies, d.Body)
		case inv.Mode == Clean:
			bodies = append(bodies, refJSON(map[string]any{"id": d.ID, "_deleted": true, "_lsn": d.LSN}))
		}
	}
	arr := refJSON(bodies)
	if inv.Mode == Compat {
		r.Data[name] = enc.str(string(arr))
	} else {
		r.Data[name] = arr
	}
	return r, len(bodies) > 0
}

// Timer is the request for a timer occurrence: Data[name] is Azure's
// TimerInfo, {"Schedule", "ScheduleStatus" (null without the monitor),
// "IsPastDue"}, an object in both modes.
func refTimer(inv Invocation, name string, info sluice.TimerInfo, monitored bool) Request {
	r, enc := refRequest(inv)
	var status any
	if monitored {
		status = map[string]string{
			"Last":        info.Last.UTC().Format(time.RFC3339Nano),
			"Next":        info.Next.UTC().Format(time.RFC3339Nano),
			"LastUpdated": info.LastUpdated.UTC().Format(time.RFC3339Nano),
		}
	}
	r.Data[name] = enc.object(map[string]any{
		"Schedule":       map[string]bool{"AdjustForDST": true},
		"ScheduleStatus": status,
		"IsPastDue":      info.IsPastDue,
	})
	return r
}

// HTTP is the request for an HTTP trigger (see HTTP).
func refHTTP(inv Invocation, name string, req HTTPRequest) Request {
	r, enc := refRequest(inv)
	dataQuery, lastQuery := map[string]string{}, map[string]string{}
	for k, vs := range req.Query {
		dataQuery[k] = strings.Join(vs, ",")
		lastQuery[k] = ""
		if len(vs) > 0 {
			lastQuery[k] = vs[len(vs)-1]
		}
	}
	headers := req.Headers
	if headers == nil {
		headers = map[string][]string{}
	}
	params := map[string]any{}
	for k, v := range req.Params {
		params[k] = v
	}
	for _, k := range req.Unset {
		if _, ok := params[k]; !ok {
			params[k] = nil
		}
	}
	data := map[string]any{
		"Url": req.URL, "Method": req.Method, "Query": dataQuery, "Headers": headers,
		"Params": params, "Identities": []json.RawMessage{json.RawMessage(anonymousIdentity)},
	}
	switch {
	case len(req.Body) == 0:
	case req.Binary || !utf8.Valid(req.Body):
		data["Body"] = base64.StdEncoding.EncodeToString(req.Body)
	case inv.Mode == Clean && json.Valid(req.Body):
		data["Body"] = json.RawMessage(req.Body)
	default:
		data["Body"] = string(req.Body)
	}
	r.Data[name] = enc.object(data)

	// The binding data, names compared without regard to case.
	type kv struct {
		k string
		v json.RawMessage
	}
	var md []kv
	set := func(k string, v json.RawMessage, ifAbsent bool) {
		for i := range md {
			if strings.EqualFold(md[i].k, k) {
				if !ifAbsent {
					md[i].v = v
				}
				return
			}
		}
		md = append(md, kv{k, v})
	}
	var props map[string]json.RawMessage
	if len(req.Body) > 0 && !req.Binary && json.Unmarshal(req.Body, &props) == nil {
		for _, k := range slices.Sorted(maps.Keys(props)) {
			var v any
			json.Unmarshal(props[k], &v)
			switch x := v.(type) {
			case nil, []any:
			case map[string]any:
				set(k, refJSON(props[k]), false)
			case string, bool, float64:
				if inv.Mode == Clean {
					set(k, refJSON(props[k]), false)
					continue
				}
				text := map[any]string{true: "True", false: "False"}[x]
				switch x := x.(type) {
				case string:
					text = x
				case float64:
					text = string(refJSON(props[k]))
				}
				set(k, enc.str(text), false)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(lastQuery)) {
		if !strings.EqualFold(k, "code") {
			set(k, enc.str(lastQuery[k]), false)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(req.Params)) {
		set(k, enc.str(req.Params[k]), false)
	}
	set("Query", enc.object(lastQuery), true)
	joined := map[string]string{}
	for k, vs := range req.Headers {
		joined[k] = strings.Join(vs, ",")
	}
	set("Headers", enc.object(joined), true)
	for _, e := range md {
		if _, taken := r.Metadata[e.k]; !taken {
			r.Metadata[e.k] = e.v
		}
	}
	return r
}
