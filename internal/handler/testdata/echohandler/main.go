// Command echohandler is a custom handler written as a third party would:
// only net/http and the protocol. It answers POST /<function> with the
// request's Data as the output "out", and has functions to fail, crash and
// take their time (slow*).
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	fmt.Println("echohandler listening on", port)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return // the host's readiness probe
		}
		var req struct {
			Data     map[string]json.RawMessage
			Metadata map[string]json.RawMessage
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fn := strings.TrimPrefix(r.URL.Path, "/")
		if strings.HasPrefix(fn, "slow") {
			// Answers only when the host gives up (or after a minute).
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute):
			}
		}
		switch fn {
		case "crash":
			fmt.Fprintln(os.Stderr, "crashing on purpose")
			os.Exit(3)
		case "crashonce":
			// Crashes the first time: the marker file remembers.
			marker := os.Getenv("CRASH_MARKER")
			if _, err := os.Stat(marker); err != nil {
				os.WriteFile(marker, nil, 0o644)
				os.Exit(3)
			}
		case "say":
			fmt.Println("saying something while invoked")
			os.Stdout.Sync()
			time.Sleep(100 * time.Millisecond) // the line is logged while the invocation runs
		case "fail":
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		case "env":
			// The process's environment, as the output "out".
			env := map[string]string{}
			for _, kv := range os.Environ() {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"Outputs": map[string]any{"out": env}})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"Outputs":     map[string]any{"out": req.Data},
			"Logs":        []string{"handled " + fn + " by " + r.Header.Get("User-Agent")},
			"ReturnValue": map[string]any{"function": fn, "metadata": req.Metadata},
		})
	})
	if err := http.ListenAndServe("127.0.0.1:"+port, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
