package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/internal/hub"
)

// MediaEnvelope is Sluice's own batch format, for events whose properties,
// partition key, partition or message id are set per event with any names:
//
//	[{"body": <any JSON>, "properties": {"name": "value"}, "partition_key": "k"},
//	 {"body_base64": "AAEC", "partition": 2},
//	 {"body_text": "plain text", "message_id": "order-17-created"}]
//
// Exactly one of body (stored as its JSON text), body_text (stored as the
// string's bytes) and body_base64 (stored decoded) may be given; none means
// an empty body. An event with a message_id that the hub stored within its
// duplicate window (or that an earlier event of the request carries) is not
// stored again: its position in the answer is the stored event's. Empty
// means none (see hub.ValidateMessageID for the allowed ids).
const MediaEnvelope = "application/vnd.sluice.events+json"

type envelope struct {
	Body         json.RawMessage   `json:"body"`
	BodyText     *string           `json:"body_text"`
	BodyBase64   *string           `json:"body_base64"`
	Properties   map[string]string `json:"properties"`
	PartitionKey string            `json:"partition_key"`
	Partition    *int              `json:"partition"`
	MessageID    string            `json:"message_id"`
}

func decodeEnvelopes(body []byte, lim Limits) ([]hub.Event, error) {
	return decodeEnvelopesWith(body, lim, true)
}

// decodeEnvelopesWith is decodeEnvelopes, with fastEnvelope or without
// (tests compare the two).
func decodeEnvelopesWith(body []byte, lim Limits, fast bool) ([]hub.Event, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	v := trimJSONSpace(body)
	if v[0] != '[' {
		return nil, invalidRequestf("%s carries a JSON array of event objects, got a JSON %s", MediaEnvelope, jsonKind(v[0]))
	}
	elems, err := eventElements(v, lim)
	if err != nil {
		return nil, err
	}
	events := make([]hub.Event, len(elems))
	for i, el := range elems {
		if el[0] != '{' {
			return nil, invalidRequestf("event %d: an event is a JSON object, got a JSON %s", i, jsonKind(el[0]))
		}
		if fast {
			if ev, ok := fastEnvelope(el); ok {
				events[i] = ev
				continue
			}
		}
		if err := uniqueEventMembers(el); err != nil {
			return nil, invalidRequestf("event %d: %v", i, err)
		}
		var env envelope
		dec := json.NewDecoder(bytes.NewReader(el))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&env); err != nil && !errors.Is(err, io.EOF) {
			return nil, invalidRequestf("event %d: %v (an event is an object with body, body_text or body_base64, properties, partition_key, partition, message_id)", i, err)
		}
		n := 0
		if env.Body != nil {
			n++
			events[i].Body = env.Body
		}
		if env.BodyText != nil {
			n++
			events[i].Body = []byte(*env.BodyText)
		}
		if env.BodyBase64 != nil {
			n++
			b, err := decodeBase64(*env.BodyBase64)
			if err != nil {
				return nil, invalidRequestf("event %d: body_base64 is not valid base64: %v", i, err)
			}
			events[i].Body = b
		}
		if n > 1 {
			return nil, invalidRequestf("event %d: give only one of body, body_text and body_base64", i)
		}
		events[i].Properties = env.Properties
		events[i].PartitionKey = env.PartitionKey
		events[i].MessageID = env.MessageID
		if env.Partition != nil {
			if *env.Partition < 0 {
				return nil, invalidRequestf("event %d: partition %d must not be negative", i, *env.Partition)
			}
			events[i].Partition, events[i].HasPartition = *env.Partition, true
		}
	}
	return events, nil
}

// uniqueEventMembers refuses an event or message object (valid JSON) that
// names a member twice, at its top level or in its properties. Its body
// is the sender's data, passed on as it is.
func uniqueEventMembers(obj []byte) error {
	return uniqueMembers(obj, func(name string, val []byte) error {
		if name != "properties" || val[0] != '{' {
			return nil
		}
		if err := uniqueMembers(val, func(string, []byte) error { return nil }); err != nil {
			return fmt.Errorf("properties: %w", err)
		}
		return nil
	})
}

// errNotFast stops fastEnvelope's walk.
var errNotFast = errors.New("not for the fast path")

// fastEnvelope decodes the common envelope, {"body": <any JSON>} or
// {"body_text": "..."} with string partition_key and message_id, without
// encoding/json's reflection (most of an ingestion request's CPU). It
// reports false for anything else (other members, names in another case,
// null or non-string values, both bodies), which the decoder then handles
// with its full checks and error messages. el is a valid JSON object.
func fastEnvelope(el []byte) (hub.Event, bool) {
	var ev hub.Event
	var body, text, key, id bool
	// seen records a member, reporting whether it came before (the
	// decoder then says so).
	seen := func(b *bool) bool {
		was := *b
		*b = true
		return was
	}
	err := objectMembers(el, func(name string, val []byte) error {
		if name != "body" && val[0] != '"' {
			return errNotFast
		}
		var err error
		switch name {
		case "body":
			if seen(&body) {
				return errNotFast
			}
			ev.Body = val
		case "body_text":
			if seen(&text) {
				return errNotFast
			}
			var s string
			s, err = jsonString(val)
			ev.Body = []byte(s)
		case "partition_key":
			if seen(&key) {
				return errNotFast
			}
			ev.PartitionKey, err = jsonString(val)
		case "message_id":
			if seen(&id) {
				return errNotFast
			}
			ev.MessageID, err = jsonString(val)
		default:
			return errNotFast
		}
		return err
	})
	if err != nil || (body && text) {
		return hub.Event{}, false
	}
	return ev, true
}
