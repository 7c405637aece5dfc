// Command handlerapp is the trivial custom handler of `sluice bench
// handler`: it reads each invocation's request and answers every POST with
// {"Outputs":{}} at once, so that the benchmark measures the protocol and
// the host, not a function. Standard library only: the benchmark embeds
// this file and builds it with `go build` in a module of its own.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		fmt.Fprintln(os.Stderr, "handlerapp: FUNCTIONS_CUSTOMHANDLER_PORT is not set; the Sluice host starts this program")
		os.Exit(2)
	}
	answer := []byte(`{"Outputs":{}}`)
	srv := &http.Server{
		Addr:              "127.0.0.1:" + port,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Read the request through, as a handler decoding it would
			// (and so that the connection is reused), but decode nothing.
			_, _ = io.Copy(io.Discard, r.Body)
			if r.Method != http.MethodPost {
				return // the host's readiness probe
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(answer)
		}),
	}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "handlerapp:", err)
		os.Exit(1)
	}
}
