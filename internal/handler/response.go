package handler

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Response is a handler's answer to an invocation.
type Response struct {
	// Outputs are the values of the function's output bindings, by name.
	Outputs map[string]json.RawMessage
	// Logs are lines the handler wants logged with the invocation.
	Logs []string
	// ReturnValue goes to the $return binding.
	ReturnValue json.RawMessage
}

// ParseResponse reads a handler's answer. A status outside 2xx, or a body
// that is not a JSON object, is a failed invocation; an empty 2xx body is a
// success without outputs. Field names match case-insensitively, as the
// Azure host's JSON reader does.
func ParseResponse(status int, body []byte) (Response, error) {
	if status < 200 || status > 299 {
		return Response{}, fmt.Errorf("the handler answered %d %s: %s", status, http.StatusText(status), excerpt(body))
	}
	var r Response
	if len(bytes.TrimSpace(body)) == 0 {
		return r, nil
	}
	// encoding/json matches the fields' names case-insensitively: no map
	// of every key to build (the last of names differing in case wins).
	var raw struct{ Outputs, Logs, ReturnValue json.RawMessage }
	if err := json.Unmarshal(body, &raw); err != nil {
		if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) {
			err = fmt.Errorf("it is a JSON %s", te.Value)
		}
		return r, fmt.Errorf("the handler's answer is not a JSON object (%v): %s; answer {\"Outputs\": {...}, \"Logs\": [...], \"ReturnValue\": ...}", err, excerpt(body))
	}
	if v := raw.Outputs; !isNull(v) {
		outs := map[string]json.RawMessage{}
		if err := json.Unmarshal(v, &outs); err != nil {
			return r, fmt.Errorf("the handler's Outputs is not an object of output binding names: %s", excerpt(v))
		}
		r.Outputs = outs
	}
	if v := raw.Logs; !isNull(v) {
		var lines []json.RawMessage
		if err := json.Unmarshal(v, &lines); err != nil {
			return r, fmt.Errorf("the handler's Logs is not an array: %s", excerpt(v))
		}
		for _, l := range lines {
			var s string
			if json.Unmarshal(l, &s) != nil {
				s = string(l)
			}
			r.Logs = append(r.Logs, s)
		}
	}
	if !isNull(raw.ReturnValue) {
		r.ReturnValue = raw.ReturnValue
	}
	return r, nil
}

// Output is the value for binding name: Outputs[name], or ReturnValue for
// "$return". ok is false when the handler gave none (or null).
func (r Response) Output(name string) (json.RawMessage, bool) {
	if name == "$return" {
		return r.ReturnValue, r.ReturnValue != nil
	}
	for k, v := range r.Outputs {
		if strings.EqualFold(k, name) && !isNull(v) {
			return v, true
		}
	}
	return nil, false
}

func isNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

func excerpt(b []byte) string {
	const max = 512
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = s[:max] + "…"
	}
	if s == "" {
		return "(empty)"
	}
	return s
}

// Messages turns a queue or hub output value into message bodies: an
// array is one message per element; a string is one message of its text
// (base64-decoded when binary); any other value is one message of its
// JSON.
//
// Azure also base64-decodes every string of a non-binary output that
// happens to be valid base64, so "test" would be sent as three odd bytes;
// Sluice decodes only for dataType "binary".
func Messages(v json.RawMessage, binary bool) ([][]byte, error) {
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, err
		}
		out := make([][]byte, 0, len(items))
		for i, it := range items {
			if isNull(it) {
				continue
			}
			b, err := message(it, binary)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out = append(out, b)
		}
		return out, nil
	}
	b, err := message(v, binary)
	if err != nil {
		return nil, err
	}
	return [][]byte{b}, nil
}

func message(v json.RawMessage, binary bool) ([]byte, error) {
	if len(v) > 0 && v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, err
		}
		if binary {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("a binary output must be base64: %w", err)
			}
			return b, nil
		}
		return []byte(s), nil
	}
	return bytes.Clone(v), nil
}

// Documents turns a container output value into documents: an object is
// one document, an array one per element. A string is read as the JSON it
// holds, for handlers that send their documents encoded.
func Documents(v json.RawMessage) ([]json.RawMessage, error) {
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, err
		}
		v = bytes.TrimSpace([]byte(s))
	}
	switch {
	case len(v) > 0 && v[0] == '{':
		return []json.RawMessage{bytes.Clone(v)}, nil
	case len(v) > 0 && v[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, err
		}
		out := make([]json.RawMessage, 0, len(items))
		for i, it := range items {
			it = bytes.TrimSpace(it)
			if len(it) == 0 || it[0] != '{' {
				return nil, fmt.Errorf("element %d is not a JSON object: %s", i, excerpt(it))
			}
			out = append(out, it)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a container output must be a document (a JSON object) or an array of them, not %s", excerpt(v))
}

// HTTPResult is an http output binding's value.
type HTTPResult struct {
	Status int
	Header http.Header
	Body   []byte
}

// ParseHTTPResult reads an http output: {"statusCode" (or "status"), a
// number or a string of one; "headers", values strings or arrays;
// "body", a string sent as is or any JSON sent as JSON}. The status
// defaults to 200.
func ParseHTTPResult(v json.RawMessage) (HTTPResult, error) {
	res := HTTPResult{Status: http.StatusOK, Header: http.Header{}}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return res, fmt.Errorf("an http output must be an object like {\"statusCode\": 200, \"body\": \"...\"}, not %s", excerpt(v))
	}
	var status json.RawMessage
	var jsonBody bool
	for k, val := range raw {
		switch strings.ToLower(k) {
		case "statuscode":
			if !isNull(val) {
				status = val
			}
		case "status":
			if !isNull(val) && status == nil {
				status = val
			}
		case "headers":
			if isNull(val) {
				continue
			}
			var hs map[string]json.RawMessage
			if err := json.Unmarshal(val, &hs); err != nil {
				return res, fmt.Errorf("http output headers must be an object: %s", excerpt(val))
			}
			for name, hv := range hs {
				var one string
				var many []string
				switch {
				case json.Unmarshal(hv, &one) == nil:
					res.Header.Add(name, one)
				case json.Unmarshal(hv, &many) == nil:
					for _, s := range many {
						res.Header.Add(name, s)
					}
				default:
					res.Header.Add(name, strings.TrimSpace(string(hv)))
				}
			}
		case "body":
			if isNull(val) {
				continue
			}
			var s string
			if json.Unmarshal(val, &s) == nil {
				res.Body = []byte(s)
			} else {
				res.Body, jsonBody = bytes.Clone(val), true
			}
		}
	}
	if jsonBody && res.Header.Get("Content-Type") == "" {
		res.Header.Set("Content-Type", "application/json")
	}
	if status != nil {
		n, err := statusOf(status)
		if err != nil {
			return res, err
		}
		res.Status = n
	}
	return res, nil
}

func statusOf(v json.RawMessage) (int, error) {
	var n int
	if err := json.Unmarshal(v, &n); err != nil {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return 0, fmt.Errorf("http output statusCode must be a number: %s", excerpt(v))
		}
		if n, err = strconv.Atoi(strings.TrimSpace(s)); err != nil {
			return 0, fmt.Errorf("http output statusCode %q is not a number", s)
		}
	}
	if n < 100 || n > 999 {
		return 0, errors.New("http output statusCode " + strconv.Itoa(n) + " is not an HTTP status")
	}
	return n, nil
}
