package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"time"
)

// service is the HTTP service the service destination POSTs change sets
// to: it keeps the orders by id, drops a POST whose Idempotency-Key it
// has already applied (a change set sent again after a failure or a
// replay), and can be taken down (503 for every POST) to play an outage.
type service struct {
	log *slog.Logger

	mu        sync.Mutex
	down      bool
	downAfter int // go down once this many POSTs were applied (0: never)
	keys      map[string]bool
	orders    map[string]map[string]any // id → the row
	posts     int                       // POSTs answered 2xx, duplicates included
	dups      int
	refused   int
}

// serviceStatus is the answer of GET /.
type serviceStatus struct {
	Up bool `json:"up"`
	// Orders is how many orders it holds.
	Orders int `json:"orders"`
	// Posts counts the POSTs it took (duplicates included), Duplicates
	// those whose Idempotency-Key it had already applied, Refused those it
	// answered 503 while down.
	Posts      int `json:"posts"`
	Duplicates int `json:"duplicates"`
	Refused    int `json:"refused_while_down"`
}

// changeSetBody is what the HTTP destination POSTs.
type changeSetBody struct {
	Pipeline  string   `json:"pipeline"`
	ChangeSet int64    `json:"change_set"`
	Part      int      `json:"part"`
	Parts     int      `json:"parts"`
	Changes   []change `json:"changes"`
}

func runService(args []string) error {
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: cdc-pipeline service [flags]

Run the HTTP service the pipeline's service destination posts to:

  POST /changes   a change set (or part of one), applied once per Idempotency-Key (503 while down)
  POST /down      go down: answer 503 to every change set until POST /up
  POST /up        come back
  GET  /          up, orders held, posts, duplicates, refused while down
  GET  /orders    the orders held, by id

Flags:
`)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", defaultServiceAddr, "address to listen on")
	downAfter := fs.Int("down-after", 0, "go down by itself once this many POSTs were applied (0: never)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *downAfter < 0 {
		return errors.New("--down-after must not be negative")
	}
	s := &service{log: newLogger().With("component", "service"), downAfter: *downAfter,
		keys: map[string]bool{}, orders: map[string]map[string]any{}}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signalContext()
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.log.Info("service listening", "addr", "http://"+ln.Addr().String(), "down_after", *downAfter)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /changes", s.receive)
	mux.HandleFunc("POST /down", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.setDownLocked(true, "POST /down")
		s.mu.Unlock()
		writeJSON(w, s.snapshot())
	})
	mux.HandleFunc("POST /up", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.setDownLocked(false, "POST /up")
		s.mu.Unlock()
		writeJSON(w, s.snapshot())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.snapshot()) })
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		orders := maps.Clone(s.orders)
		s.mu.Unlock()
		writeJSON(w, orders)
	})
	return mux
}

func (s *service) receive(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		http.Error(w, "no Idempotency-Key header: send one per change set and part", http.StatusBadRequest)
		return
	}
	var body changeSetBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&body); err != nil {
		http.Error(w, "not a change set: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.refused++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	s.posts++
	if s.keys[key] {
		s.dups++
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.keys[key] = true
	for _, c := range body.Changes {
		id := fmt.Sprint(c.Key["id"])
		if c.Op == "delete" {
			delete(s.orders, id)
			continue
		}
		s.orders[id] = c.After
	}
	if s.downAfter > 0 && s.posts-s.dups == s.downAfter {
		s.setDownLocked(true, fmt.Sprintf("--down-after %d", s.downAfter))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *service) setDownLocked(down bool, why string) {
	if s.down == down {
		return
	}
	s.down = down
	if down {
		s.log.Warn("service DOWN: answering 503 to every change set", "why", why, "orders", len(s.orders))
	} else {
		s.log.Info("service UP: taking change sets again", "why", why, "orders", len(s.orders), "refused_while_down", s.refused)
	}
}

func (s *service) snapshot() serviceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return serviceStatus{Up: !s.down, Orders: len(s.orders), Posts: s.posts, Duplicates: s.dups, Refused: s.refused}
}
