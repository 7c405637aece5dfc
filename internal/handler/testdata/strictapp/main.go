// Command strictapp is a custom handler written the way Go libraries for
// Azure custom handlers decode payloads: into typed structs, rejecting
// unknown fields where the shape is fixed (the envelope, an HTTP request,
// a queue message's metadata), headers as map[string]string in the
// metadata. Any payload that differs from the host's fails the invocation
// with the decoder's error. PAYLOAD_MODE says which shapes to expect:
// compat (Azure's) or clean (Sluice's natural JSON).
//
// Functions: order (POST orders/{id:int}: a queue message and a 201) and
// consume (the queue's messages: a message to the queue seen per message,
// with what its metadata said, or what was wrong with it as "error": the
// test that runs it learns at once instead of after the retries).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"time"
)

var clean = os.Getenv("PAYLOAD_MODE") == "clean"

// invokeRequest is the body the host POSTs.
type invokeRequest struct {
	Data     map[string]json.RawMessage
	Metadata map[string]json.RawMessage
}

type sysMetadata struct {
	MethodName string
	UtcNow     time.Time
	RandGuid   string
}

type claim struct {
	Issuer, OriginalIssuer, Type, Value, ValueType string
	Properties                                     map[string]string
}

type identity struct {
	AuthenticationType *string
	IsAuthenticated    bool
	Actor              any
	BootstrapContext   any
	Claims             []claim
	Label              *string
	Name               *string
	NameClaimType      string
	RoleClaimType      string
}

// httpData is Data.req.
type httpData struct {
	URL        string `json:"Url"`
	Method     string
	Query      map[string]string
	Headers    map[string][]string
	Params     map[string]*string
	Identities []identity
	Body       json.RawMessage
}

// httpMetadata is what a library reads of an HTTP trigger's metadata; the
// rest (route values, query values, body properties) are keys of their
// own, so it is not decoded strictly.
type httpMetadata struct {
	Headers map[string]string
	Query   map[string]string
	Sys     sysMetadata `json:"sys"`
}

// queueMetadataCompat is a queue message's metadata as Azure sends it.
type queueMetadataCompat struct {
	DequeueCount    string
	ExpirationTime  time.Time
	Id              string
	InsertionTime   time.Time
	NextVisibleTime time.Time
	PopReceipt      string
	Sys             sysMetadata `json:"sys"`
	RetryContext    json.RawMessage
}

// queueMetadataClean is the same in clean mode, with Sluice's own keys.
type queueMetadataClean struct {
	DequeueCount    int
	ExpirationTime  time.Time
	Id              string
	InsertionTime   time.Time
	NextVisibleTime time.Time
	PopReceipt      string
	QueueName       string
	Properties      map[string]string
	Sys             sysMetadata `json:"sys"`
	RetryContext    json.RawMessage
}

type order struct {
	ID  int    `json:"id"`
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

var guid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// strict decodes v into out, refusing unknown fields.
func strict(v []byte, out any) error {
	d := json.NewDecoder(bytes.NewReader(v))
	d.DisallowUnknownFields()
	return d.Decode(out)
}

// unquote reads a string value; in compat mode strings are JSON-encoded
// twice, so the inner string is read too.
func unquote(v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", err
	}
	if clean {
		return s, nil
	}
	var inner string
	if err := json.Unmarshal([]byte(s), &inner); err != nil {
		return "", fmt.Errorf("%s is not a string encoded twice: %w", v, err)
	}
	return inner, nil
}

func decodeRequest(r *http.Request) (invokeRequest, error) {
	var req invokeRequest
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	err := d.Decode(&req)
	return req, err
}

func answer(w http.ResponseWriter, outputs map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"Outputs": outputs, "Logs": []string{"ok"}})
}

// failSeen reports what is wrong with a message as its "seen" output.
func failSeen(w http.ResponseWriter, what string, err error) {
	log.Printf("%s: %v", what, err)
	answer(w, map[string]any{"seen": map[string]any{"error": what + ": " + err.Error()}})
}

func fail(w http.ResponseWriter, what string, err error) {
	log.Printf("%s: %v", what, err)
	http.Error(w, what+": "+err.Error(), http.StatusBadRequest)
}

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(http.ResponseWriter, *http.Request) {})

	mux.HandleFunc("POST /order", func(w http.ResponseWriter, r *http.Request) {
		req, err := decodeRequest(r)
		if err != nil {
			fail(w, "envelope", err)
			return
		}
		var in httpData
		if err := strict(req.Data["req"], &in); err != nil {
			fail(w, "Data.req", err)
			return
		}
		if _, err := url.ParseRequestURI(in.URL); err != nil || len(in.Identities) != 1 || in.Identities[0].IsAuthenticated {
			fail(w, "Data.req", fmt.Errorf("url %q, identities %+v", in.URL, in.Identities))
			return
		}
		var md httpMetadata
		if err := json.Unmarshal(mustJSON(req.Metadata), &md); err != nil {
			fail(w, "Metadata", err)
			return
		}
		if md.Headers["Content-Type"] != "application/json" || md.Query["note"] != in.Query["note"] || md.Sys.MethodName != "order" {
			fail(w, "Metadata", fmt.Errorf("headers %v, query %v, sys %+v", md.Headers, md.Query, md.Sys))
			return
		}
		id, err := unquote(req.Metadata["id"])
		if err != nil || in.Params["id"] == nil || id != *in.Params["id"] {
			fail(w, "Metadata.id", fmt.Errorf("%s (%v) and Params %v", req.Metadata["id"], err, in.Params))
			return
		}
		body := []byte(in.Body)
		if !clean {
			var text string
			if err := json.Unmarshal(in.Body, &text); err != nil {
				fail(w, "Data.req.Body", err)
				return
			}
			body = []byte(text)
		}
		var o order
		if err := strict(body, &o); err != nil {
			fail(w, "the order", err)
			return
		}
		if o.ID, err = strconv.Atoi(id); err != nil {
			fail(w, "id", err)
			return
		}
		answer(w, map[string]any{
			"orders": o,
			"res":    map[string]any{"statusCode": 201, "body": fmt.Sprintf("order %d queued", o.ID)},
		})
	})

	mux.HandleFunc("POST /consume", func(w http.ResponseWriter, r *http.Request) {
		req, err := decodeRequest(r)
		if err != nil {
			failSeen(w, "envelope", err)
			return
		}
		var id, receipt string
		var dequeues int
		var inserted, expires time.Time
		if clean {
			var md queueMetadataClean
			if err := strict(mustJSON(req.Metadata), &md); err != nil {
				failSeen(w, "Metadata", err)
				return
			}
			id, receipt, dequeues, inserted, expires = md.Id, md.PopReceipt, md.DequeueCount, md.InsertionTime, md.ExpirationTime
		} else {
			var md queueMetadataCompat
			if err := strict(mustJSON(req.Metadata), &md); err != nil {
				failSeen(w, "Metadata", err)
				return
			}
			// Azure's scalar strings arrive JSON-encoded: libraries trim
			// the quotes.
			if id, err = unquote(mustJSON(md.Id)); err != nil {
				failSeen(w, "Metadata.Id", err)
				return
			}
			if receipt, err = unquote(mustJSON(md.PopReceipt)); err != nil {
				failSeen(w, "Metadata.PopReceipt", err)
				return
			}
			if dequeues, err = strconv.Atoi(md.DequeueCount); err != nil {
				failSeen(w, "Metadata.DequeueCount", err)
				return
			}
			inserted, expires = md.InsertionTime, md.ExpirationTime
		}
		if !guid.MatchString(id) || receipt == "" || dequeues < 1 || !expires.After(inserted) {
			failSeen(w, "Metadata", fmt.Errorf("id %q, receipt %q, dequeues %d, inserted %v, expires %v", id, receipt, dequeues, inserted, expires))
			return
		}
		text, err := unquote(req.Data["order"])
		if clean {
			text, err = string(req.Data["order"]), nil
		}
		if err != nil {
			failSeen(w, "Data.order", err)
			return
		}
		var o order
		if err := strict([]byte(text), &o); err != nil {
			failSeen(w, "the order", err)
			return
		}
		answer(w, map[string]any{"seen": map[string]any{"id": id, "kind": "order", "order": o, "dequeues": dequeues}})
	})

	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if err := http.ListenAndServe("127.0.0.1:"+port, mux); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
