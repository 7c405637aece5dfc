// Command blobapp is a custom handler that copies blobs through bindings of
// every dataType: string (text), binary and stream (bytes as base64, as the
// host passes and takes them).
//
// Functions: copy-string, copy-binary and copy-stream (a blob trigger and a
// blob output of that dataType, the content copied as it came), and
// read-string, read-binary and read-stream (an HTTP function with a blob
// input of that dataType, answering the content as base64, 404 for a blob
// that does not exist). The blob triggers' metadata is decoded strictly,
// Uri as an absolute URL; what is wrong is written as the copy.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"strings"
)

var clean = os.Getenv("PAYLOAD_MODE") == "clean"

type invokeRequest struct {
	Data     map[string]json.RawMessage
	Metadata map[string]json.RawMessage
}

// blobMetadata is a blob trigger's metadata as the host sends it.
type blobMetadata struct {
	Uri        string
	Properties map[string]any
	Metadata   map[string]string
	Name       json.RawMessage                               `json:"name"`
	Sys        struct{ MethodName, UtcNow, RandGuid string } `json:"sys"`
}

// str reads a string value, JSON-encoded twice in compat mode.
func str(v json.RawMessage) (string, error) {
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

// content reads a blob's content as a binding of dataType gives it.
func content(v json.RawMessage, dataType string) ([]byte, error) {
	if dataType == "string" {
		s, err := str(v)
		return []byte(s), err
	}
	var b64 string
	if err := json.Unmarshal(v, &b64); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(b64)
}

// output is a blob output's value of dataType: text, or base64.
func output(b []byte, dataType string) string {
	if dataType == "string" {
		return string(b)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// copyFailed writes what went wrong as the copy, as text: a test comparing
// the copy with the original learns at once.
func copyFailed(w http.ResponseWriter, dataType, msg string) {
	answer(w, map[string]any{"copy": output([]byte("error: "+msg), dataType)})
}

func answer(w http.ResponseWriter, outputs map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"Outputs": outputs})
}

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(http.ResponseWriter, *http.Request) {})
	for _, dataType := range []string{"string", "binary", "stream"} {
		mux.HandleFunc("POST /copy-"+dataType, func(w http.ResponseWriter, r *http.Request) {
			var req invokeRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			var md blobMetadata
			d := json.NewDecoder(bytes.NewReader(mustJSON(req.Metadata)))
			d.DisallowUnknownFields()
			if err := d.Decode(&md); err != nil {
				copyFailed(w, dataType, "metadata: "+err.Error())
				return
			}
			uri, err := str(mustJSON(md.Uri))
			if err != nil {
				copyFailed(w, dataType, "Uri: "+err.Error())
				return
			}
			if u, err := url.Parse(uri); err != nil || !u.IsAbs() || !strings.HasSuffix(u.Path, "/in-"+dataType+"/"+mustStr(md.Name)) {
				copyFailed(w, dataType, fmt.Sprintf("Uri %q is not the blob's absolute URL", uri))
				return
			}
			b, err := content(req.Data["blob"], dataType)
			if err != nil {
				copyFailed(w, dataType, "blob: "+err.Error())
				return
			}
			answer(w, map[string]any{"copy": output(b, dataType)})
		})
		mux.HandleFunc("POST /read-"+dataType, func(w http.ResponseWriter, r *http.Request) {
			var req invokeRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			// A blob that does not exist is the string "null" (null in
			// clean mode).
			v := req.Data["blob"]
			if string(v) == `"null"` || string(v) == "null" {
				answer(w, map[string]any{"res": map[string]any{"statusCode": 404, "body": "no such blob"}})
				return
			}
			b, err := content(v, dataType)
			if err != nil {
				http.Error(w, "blob: "+err.Error(), 400)
				return
			}
			answer(w, map[string]any{"res": map[string]any{"body": base64.StdEncoding.EncodeToString(b)}})
		})
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT"), mux))
}

func mustStr(v json.RawMessage) string {
	s, err := str(v)
	if err != nil {
		return "?"
	}
	return s
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
