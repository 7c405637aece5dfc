// Command ordersapp is a custom handler for the app folder the end-to-end
// test writes, built the way a third party would: net/http and the
// custom-handler protocol only. It reads payloads in either mode: compat
// (strings and arrays JSON-encoded as Azure's host sends them) or clean.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

type request struct {
	Data     map[string]json.RawMessage
	Metadata map[string]json.RawMessage
}

type reading struct {
	DeviceID string  `json:"deviceId"`
	Value    float64 `json:"value"`
}

// decode reads v into out, unwrapping the JSON strings compat mode wraps
// values in.
func decode(v json.RawMessage, out any) error {
	for range 3 {
		var s string
		if json.Unmarshal(v, &s) != nil {
			break
		}
		v = json.RawMessage(s)
	}
	return json.Unmarshal(v, out)
}

// decodeText reads a string value, unwrapping the second encoding compat
// mode adds.
func decodeText(v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", err
	}
	var inner string
	if strings.HasPrefix(s, `"`) && json.Unmarshal([]byte(s), &inner) == nil {
		return inner, nil
	}
	return s, nil
}

// missing reports whether an input binding found nothing: the string
// "null", as Azure's host sends it, or null.
func missing(v json.RawMessage) bool {
	return string(v) == "null" || string(v) == `"null"`
}

func answer(w http.ResponseWriter, outputs map[string]any, logs ...string) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"Outputs": outputs, "Logs": logs})
}

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(http.ResponseWriter, *http.Request) {})

	// ingest: a batch of telemetry events, each forwarded to the readings queue.
	mux.HandleFunc("POST /ingest", func(w http.ResponseWriter, r *http.Request) {
		var req request
		json.NewDecoder(r.Body).Decode(&req)
		var bodies []json.RawMessage
		if err := decode(req.Data["events"], &bodies); err != nil {
			http.Error(w, "events: "+err.Error(), 400)
			return
		}
		var msgs []reading
		for _, b := range bodies {
			var rd reading
			if err := decode(b, &rd); err != nil {
				http.Error(w, "event: "+err.Error(), 400)
				return
			}
			msgs = append(msgs, rd)
		}
		var seqs []int64
		if err := decode(req.Metadata["SequenceNumberArray"], &seqs); err != nil || len(seqs) != len(msgs) {
			http.Error(w, fmt.Sprintf("SequenceNumberArray %s: %v", req.Metadata["SequenceNumberArray"], err), 400)
			return
		}
		answer(w, map[string]any{"readings": msgs}, fmt.Sprintf("ingested %d events", len(msgs)))
	})

	// store: one reading from the queue, upserted as the device's document.
	mux.HandleFunc("POST /store", func(w http.ResponseWriter, r *http.Request) {
		var req request
		json.NewDecoder(r.Body).Decode(&req)
		var rd reading
		if err := decode(req.Data["reading"], &rd); err != nil {
			http.Error(w, "reading: "+err.Error(), 400)
			return
		}
		var dequeues int
		if err := decode(req.Metadata["DequeueCount"], &dequeues); err != nil || dequeues < 1 {
			http.Error(w, fmt.Sprintf("DequeueCount %s", req.Metadata["DequeueCount"]), 400)
			return
		}
		if rd.DeviceID == "crash-me" {
			marker := filepath.Join(os.Getenv("MARKER_DIR"), "crashed")
			if _, err := os.Stat(marker); err != nil {
				os.WriteFile(marker, nil, 0o644)
				log.Print("crashing mid-invocation on purpose")
				os.Exit(7)
			}
		}
		answer(w, map[string]any{"device": map[string]any{"id": rd.DeviceID, "deviceId": rd.DeviceID, "value": rd.Value}})
	})

	// changes: the devices container's change feed, each change noted in the seen container.
	mux.HandleFunc("POST /changes", func(w http.ResponseWriter, r *http.Request) {
		var req request
		json.NewDecoder(r.Body).Decode(&req)
		var docs []map[string]any
		if err := decode(req.Data["documents"], &docs); err != nil {
			http.Error(w, "documents: "+err.Error(), 400)
			return
		}
		var seen []map[string]any
		for _, d := range docs {
			seen = append(seen, map[string]any{"id": fmt.Sprint("seen-", d["id"]), "kind": "seen", "value": d["value"]})
		}
		answer(w, map[string]any{"seen": seen})
	})

	// tick: every second, a document in the ticks container.
	mux.HandleFunc("POST /tick", func(w http.ResponseWriter, r *http.Request) {
		var req request
		json.NewDecoder(r.Body).Decode(&req)
		var timer struct{ IsPastDue bool }
		if err := json.Unmarshal(req.Data["timer"], &timer); err != nil {
			http.Error(w, "timer: "+err.Error(), 400)
			return
		}
		answer(w, map[string]any{"ticks": map[string]any{"id": "tick", "kind": "tick"}})
	})

	// upper: a text blob, written back upper-cased.
	mux.HandleFunc("POST /upper", func(w http.ResponseWriter, r *http.Request) {
		var req request
		json.NewDecoder(r.Body).Decode(&req)
		text, err := decodeText(req.Data["blob"])
		if err != nil {
			http.Error(w, "blob: "+err.Error(), 400)
			return
		}
		name, err := decodeText(req.Metadata["name"])
		if err != nil {
			http.Error(w, "name: "+err.Error(), 400)
			return
		}
		answer(w, map[string]any{"result": strings.ToUpper(text) + " (" + name + ")"})
	})

	// device: GET a device's document, read by a cosmosDB input binding.
	mux.HandleFunc("POST /device", func(w http.ResponseWriter, r *http.Request) {
		var req request
		json.NewDecoder(r.Body).Decode(&req)
		doc := req.Data["doc"]
		if missing(doc) {
			answer(w, map[string]any{"res": map[string]any{"statusCode": 404, "body": "no such device"}})
			return
		}
		answer(w, map[string]any{"res": map[string]any{"statusCode": 200, "body": doc}})
	})

	// note: GET an upper-cased note, read by a blob input binding.
	mux.HandleFunc("POST /note", func(w http.ResponseWriter, r *http.Request) {
		var req request
		json.NewDecoder(r.Body).Decode(&req)
		if missing(req.Data["note"]) {
			answer(w, map[string]any{"res": map[string]any{"statusCode": 404, "body": "no such note"}})
			return
		}
		text, err := decodeText(req.Data["note"])
		if err != nil {
			http.Error(w, "note: "+err.Error(), 400)
			return
		}
		answer(w, map[string]any{"res": map[string]any{"body": text}})
	})

	// submit: POST a reading; it goes to the telemetry hub, answered 202.
	mux.HandleFunc("POST /submit", func(w http.ResponseWriter, r *http.Request) {
		var req request
		json.NewDecoder(r.Body).Decode(&req)
		var in struct{ Body json.RawMessage }
		json.Unmarshal(req.Data["req"], &in)
		var rd reading
		if err := decode(in.Body, &rd); err != nil || rd.DeviceID == "" {
			answer(w, map[string]any{"res": map[string]any{"statusCode": "400", "body": "send {\"deviceId\": ..., \"value\": ...}"}})
			return
		}
		answer(w, map[string]any{"telemetry": rd, "res": map[string]any{"statusCode": 202, "body": "accepted " + rd.DeviceID}})
	})

	// hello: an HTTP-only function, forwarded as is when the app asks.
	mux.HandleFunc("/api/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s, forwarded %s %s", r.PathValue("name"), r.Method, r.URL.RequestURI())
	})
	mux.HandleFunc("POST /hello", func(w http.ResponseWriter, r *http.Request) {
		var req request
		json.NewDecoder(r.Body).Decode(&req)
		var in struct{ Params map[string]string }
		json.Unmarshal(req.Data["req"], &in)
		answer(w, map[string]any{"res": map[string]any{"body": "hello " + in.Params["name"] + ", invoked", "headers": map[string]string{"X-Mode": strings.ToLower(os.Getenv("PAYLOAD_MODE"))}}})
	})

	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, mux))
}
