package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// downstream is the system deliver posts orders to. It records them,
// notices duplicates and orders that arrive out of sequence, and can be
// taken down (503 for every order) to play an outage.
type downstream struct {
	log *slog.Logger

	mu        sync.Mutex
	down      bool
	upTimer   *time.Timer
	downAfter int           // go down once this many orders were accepted (0: never)
	downFor   time.Duration // then come back after this long (0: until POST /up)
	accepted  int           // orders accepted, duplicates included
	refused   int           // orders refused while down
	ids       map[string]bool
	last      map[string]int // producer/customer → last seq accepted
	dups      int
	outOfSeq  int
	problems  []string // the first few duplicates and gaps, as text
}

// downstreamStatus is the answer of GET /.
type downstreamStatus struct {
	Up bool `json:"up"`
	// Orders is how many distinct orders it holds.
	Orders int `json:"orders"`
	// Duplicates counts orders posted again after being accepted;
	// OutOfOrder counts orders whose seq was not the one after the last
	// of their producer and customer.
	Duplicates int      `json:"duplicates"`
	OutOfOrder int      `json:"out_of_order"`
	Refused    int      `json:"refused_while_down"`
	Streams    int      `json:"streams"`
	Problems   []string `json:"problems,omitempty"`
}

func runDownstream(args []string) error {
	fs := flag.NewFlagSet("downstream", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: reliable-processing downstream [flags]

Run the downstream system that deliver posts orders to:

  POST /orders          record an order (503 while down)
  POST /down[?for=20s]  go down: refuse every order (until POST /up, or for a while)
  POST /up              come back
  GET  /                what it holds: orders, duplicates, out-of-order, refused

Flags:
`)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:8090", "address to listen on")
	downAfter := fs.Int("down-after", 0, "go down by itself once this many orders were accepted (0: never)")
	downFor := fs.Duration("down-for", 0, "when down, come back up after this long (0: stay down until POST /up)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	d := &downstream{log: newLogger().With("component", "downstream"), downAfter: *downAfter, downFor: *downFor,
		ids: map[string]bool{}, last: map[string]int{}}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: d.handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signalContext()
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go d.report(ctx)
	d.log.Info("downstream listening", "addr", "http://"+ln.Addr().String(), "down_after", *downAfter, "down_for", *downFor)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (d *downstream) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", d.record)
	mux.HandleFunc("POST /down", func(w http.ResponseWriter, r *http.Request) {
		var period time.Duration
		if s := r.URL.Query().Get("for"); s != "" {
			var err error
			if period, err = time.ParseDuration(s); err != nil || period <= 0 {
				http.Error(w, fmt.Sprintf("for=%q: give a duration such as 20s", s), http.StatusBadRequest)
				return
			}
		}
		d.mu.Lock()
		d.goDownLocked("POST /down", period)
		d.mu.Unlock()
		d.status(w, r)
	})
	mux.HandleFunc("POST /up", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.goUpLocked("POST /up")
		d.mu.Unlock()
		d.status(w, r)
	})
	mux.HandleFunc("GET /{$}", d.status)
	return mux
}

func (d *downstream) record(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o, err := decodeOrder(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		d.refused++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	d.accepted++
	switch last := d.last[o.stream()]; {
	case d.ids[o.ID] || o.Seq <= last:
		d.dups++
		d.problemLocked("duplicate: %s again (last of %s was %d)", o.ID, o.stream(), last)
	case o.Seq != last+1:
		d.outOfSeq++
		d.problemLocked("out of order: %s after seq %d", o.ID, last)
	}
	d.ids[o.ID] = true
	d.last[o.stream()] = max(d.last[o.stream()], o.Seq)
	if d.downAfter > 0 && d.accepted == d.downAfter {
		d.goDownLocked(fmt.Sprintf("--down-after %d", d.downAfter), d.downFor)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (d *downstream) problemLocked(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.log.Warn(msg)
	if len(d.problems) < 10 {
		d.problems = append(d.problems, msg)
	}
}

func (d *downstream) goDownLocked(why string, period time.Duration) {
	if d.upTimer != nil {
		d.upTimer.Stop()
		d.upTimer = nil
	}
	if period > 0 {
		d.upTimer = time.AfterFunc(period, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.goUpLocked(fmt.Sprintf("after %s down", period))
		})
	}
	if !d.down {
		d.down = true
		d.log.Warn("downstream DOWN: refusing every order with 503", "why", why, "orders", len(d.ids), "back_in", period)
	}
}

func (d *downstream) goUpLocked(why string) {
	if d.upTimer != nil {
		d.upTimer.Stop()
		d.upTimer = nil
	}
	if d.down {
		d.down = false
		d.log.Info("downstream UP: taking orders again", "why", why, "orders", len(d.ids), "refused_while_down", d.refused)
	}
}

func (d *downstream) snapshot() downstreamStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return downstreamStatus{Up: !d.down, Orders: len(d.ids), Duplicates: d.dups, OutOfOrder: d.outOfSeq,
		Refused: d.refused, Streams: len(d.last), Problems: append([]string(nil), d.problems...)}
}

func (d *downstream) status(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(d.snapshot())
}

// report logs what the downstream holds every 5s while it changes.
func (d *downstream) report(ctx context.Context) {
	var last downstreamStatus
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := d.snapshot()
		if s.Orders == last.Orders && s.Refused == last.Refused && s.Up == last.Up {
			continue
		}
		last = s
		d.log.Info("downstream holds", "orders", s.Orders, "duplicates", s.Duplicates, "out_of_order", s.OutOfOrder,
			"refused_while_down", s.Refused, "up", s.Up)
	}
}
