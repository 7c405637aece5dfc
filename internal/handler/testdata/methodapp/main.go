// Command methodapp is a custom handler that serves every function from one
// route, as many handlers written for Azure do: it answers any POST, and
// picks the function by Metadata.sys.MethodName rather than by the path.
//
// Functions: greet (an HTTP function: "hello <name> from <MethodName>") and
// relay (queue → queue, the message upper-cased).
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
)

var clean = os.Getenv("PAYLOAD_MODE") == "clean"

type invokeRequest struct {
	Data     map[string]json.RawMessage
	Metadata struct {
		Sys struct {
			MethodName string
		} `json:"sys"`
	}
}

// text reads a string value, JSON-encoded twice in compat mode.
func text(v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", err
	}
	if clean {
		return s, nil
	}
	var inner string
	return inner, json.Unmarshal([]byte(s), &inner)
}

func main() {
	functions := map[string]func(invokeRequest) (map[string]any, error){
		"greet": func(req invokeRequest) (map[string]any, error) {
			var in struct{ Params map[string]string }
			if err := json.Unmarshal(req.Data["req"], &in); err != nil {
				return nil, err
			}
			return map[string]any{"res": map[string]any{"body": fmt.Sprintf("hello %s from %s", in.Params["name"], req.Metadata.Sys.MethodName)}}, nil
		},
		"relay": func(req invokeRequest) (map[string]any, error) {
			msg, err := text(req.Data["msg"])
			if err != nil {
				return nil, err
			}
			return map[string]any{"out": strings.ToUpper(msg)}, nil
		},
	}

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			return // the host's readiness probe
		}
		var req invokeRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f, ok := functions[req.Metadata.Sys.MethodName]
		if !ok {
			http.Error(w, "no function "+req.Metadata.Sys.MethodName, http.StatusNotFound)
			return
		}
		outputs, err := f(req)
		if err != nil {
			// Reported as the output, so that a test learns at once.
			outputs = map[string]any{"out": "error: " + err.Error(), "res": map[string]any{"statusCode": 400, "body": err.Error()}}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"Outputs": outputs})
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT"), nil))
}
