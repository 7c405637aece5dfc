// Command handler is the custom handler of the functionapp-go example: an
// HTTP server, written with the standard library only, that speaks the
// Azure Functions custom-handler protocol. Sluice (or the Azure Functions
// host) starts it with FUNCTIONS_CUSTOMHANDLER_PORT set, waits until GET /
// answers, then POSTs each invocation of function F to /F as
// {"Data": {...}, "Metadata": {...}} and reads {"Outputs": {...},
// "Logs": [...]} back. A status outside 2xx fails the invocation.
//
// Build it into the app folder, where host.json's defaultExecutablePath
// points:
//
//	go build -o examples/functionapp-go/telemetry-handler ./examples/functionapp-go/handler
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// app holds what the functions share.
type app struct {
	store *store
}

// function adapts one function to the protocol: it decodes the invocation,
// and answers 500 with the error's text when the function fails, so that
// Sluice fails the invocation (and retries it as its trigger does).
func function(name string, fn func(context.Context, invocation) (result, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var inv invocation
		if err := json.NewDecoder(r.Body).Decode(&inv); err != nil {
			http.Error(w, name+": the invocation is not JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		res, err := fn(r.Context(), inv)
		if err != nil {
			log.Printf("%s failed: %v", name, err)
			http.Error(w, name+": "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(res); err != nil {
			log.Printf("%s: write the answer: %v", name, err)
		}
	}
}

func main() {
	log.SetFlags(0)
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		log.Fatal("FUNCTIONS_CUSTOMHANDLER_PORT is not set: this program is started by Sluice (sluice dev --app DIR) or by the Azure Functions host")
	}
	// Sluice gives its handler the address of its own HTTP API, whatever
	// port it listens on.
	a := &app{store: newStore(os.Getenv("SLUICE_API"))}

	mux := http.NewServeMux()
	// Sluice waits until GET / answers before it sends invocations.
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /submit", function("submit", a.submit))
	mux.HandleFunc("POST /ingest", function("ingest", a.ingest))
	mux.HandleFunc("POST /device", function("device", a.device))
	mux.HandleFunc("POST /report", function("report", a.report))

	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// Sluice stops the handler with SIGTERM: finish the invocations in
	// flight, then exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shutdown := make(chan struct{})
	go func() {
		defer close(shutdown)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-shutdown
}
