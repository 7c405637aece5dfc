package main

import (
	"encoding/json"
	"errors"
	"fmt"
)

// The Azure Functions host (and Sluice in its default "compat" payload
// mode) does not send values as natural JSON. What this handler reads:
//
//	Data.events (eventHubTrigger, cardinality many)
//	    a JSON string holding a JSON array of strings, each one event's
//	    body text: "[\"{\\\"deviceId\\\":\\\"d1\\\"}\"]"
//	Metadata.EnqueuedTimeUtcArray, Metadata.SequenceNumberArray
//	    a JSON string holding the JSON array
//	Metadata.PartitionContext, Metadata.sys
//	    plain JSON objects
//	Data.req (httpTrigger)
//	    a plain object; its Body is the request body as a string
//	Data.tick (timerTrigger)
//	    a plain object {"Schedule", "ScheduleStatus", "IsPastDue"}
//
// With `sluice dev --payload clean` the same keys hold natural JSON (an
// array of bodies, JSON bodies as JSON). The functions below accept both.

// invocation is what Sluice POSTs to /<FunctionName>.
type invocation struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// isString reports whether v is a JSON string, and returns its text.
func isString(v json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// decodeArray reads an array value: a string holding the array's JSON
// (compat), or the array itself (clean).
func decodeArray(v json.RawMessage, out any) error {
	if s, ok := isString(v); ok {
		v = json.RawMessage(s)
	}
	return json.Unmarshal(v, out)
}

// eventBodies returns the bodies of an event batch, each as the JSON it
// holds. A body that is not JSON is returned as its text for the caller
// to reject.
func eventBodies(v json.RawMessage) ([]json.RawMessage, error) {
	var items []json.RawMessage
	if err := decodeArray(v, &items); err != nil {
		return nil, fmt.Errorf("the batch is not an array (or a string holding one): %w", err)
	}
	bodies := make([]json.RawMessage, len(items))
	for i, it := range items {
		if text, ok := isString(it); ok {
			// Compat: each element is the body's text. Clean: a body that
			// is not JSON.
			bodies[i] = json.RawMessage(text)
			continue
		}
		bodies[i] = it // clean: the body is JSON
	}
	return bodies, nil
}

// httpRequest is Data.<name> of an httpTrigger.
type httpRequest struct {
	Method string            `json:"Method"`
	URL    string            `json:"Url"`
	Params map[string]string `json:"Params"`
	Query  map[string]string `json:"Query"`
	Body   json.RawMessage   `json:"Body"`
}

// body returns the request body as JSON: compat sends the text as a
// string; clean sends a JSON body as JSON.
func (r httpRequest) body() (json.RawMessage, error) {
	if len(r.Body) == 0 || string(r.Body) == "null" {
		return nil, errors.New("the request has no body")
	}
	if text, ok := isString(r.Body); ok {
		if !json.Valid([]byte(text)) {
			return nil, errors.New("the request body is not JSON")
		}
		return json.RawMessage(text), nil
	}
	return r.Body, nil
}

// utcNow is Metadata.sys.UtcNow, the invocation's time.
func utcNow(inv invocation) string {
	var sys struct{ UtcNow string }
	_ = json.Unmarshal(inv.Metadata["sys"], &sys)
	return sys.UtcNow
}
