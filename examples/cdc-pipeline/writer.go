package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// writer inserts, updates and deletes orders at a steady rate: the source
// system, busy while the pipeline reads it.
type writer struct {
	log   *slog.Logger
	pool  *pgxpool.Pool
	table string // quoted schema.orders
	rate  float64

	ids    []int64 // live orders, as far as this writer knows
	nextID int64

	mu    sync.Mutex
	stats writerStatus
}

// writerStatus is the answer of the writer's GET / and POST /stop.
type writerStatus struct {
	// Writing is false once POST /stop stopped it.
	Writing bool `json:"writing"`
	// Transactions committed, and the rows they inserted, updated and
	// deleted.
	Transactions int `json:"transactions"`
	Inserted     int `json:"inserted"`
	Updated      int `json:"updated"`
	Deleted      int `json:"deleted"`
}

var statuses = []string{"new", "paid", "shipped", "delivered"}

func runWriter(args []string) error {
	fs := flag.NewFlagSet("writer", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: cdc-pipeline writer [flags]

Write orders into SCHEMA.orders of --source-url (created when missing) at
--rate transactions per second, each of one to three inserts, updates and
deletes, until stopped. With --addr it also serves:

  GET  /       what it wrote: transactions, inserted, updated, deleted
  POST /stop   stop writing (the answer comes once the last transaction is over)

Flags:
`)
		fs.PrintDefaults()
	}
	sourceURL := fs.String("source-url", defaultSourceURL, "the source database")
	schema := fs.String("schema", "public", "the schema of the table orders (created when missing)")
	rate := fs.Float64("rate", 20, "transactions per second")
	addr := fs.String("addr", defaultWriterAddr, "address of its status and stop routes; empty: none")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rate <= 0 {
		return errors.New("--rate must be above 0 (transactions per second)")
	}
	ctx, stop := signalContext()
	defer stop()
	pool, err := pgxpool.New(ctx, *sourceURL)
	if err != nil {
		return fmt.Errorf("--source-url: %w", err)
	}
	defer pool.Close()
	w := &writer{log: newLogger().With("component", "writer"), pool: pool, rate: *rate,
		table: pgx.Identifier{*schema, "orders"}.Sanitize(), stats: writerStatus{Writing: true}}
	if err := w.setup(ctx); err != nil {
		return err
	}

	writeCtx, stopWriting := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(writeCtx)
	}()
	if *addr != "" {
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			stopWriting()
			<-done
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, _ *http.Request) { writeJSON(rw, w.status()) })
		mux.HandleFunc("POST /stop", func(rw http.ResponseWriter, _ *http.Request) {
			stopWriting()
			<-done
			writeJSON(rw, w.status())
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		w.log.Info("writer status at http://"+ln.Addr().String(), "stop", "curl -X POST http://"+ln.Addr().String()+"/stop")
	}
	w.log.Info("writing orders", "table", w.table, "rate", *rate, "orders", len(w.ids))
	<-ctx.Done()
	stopWriting()
	<-done
	s := w.status()
	w.log.Info("writer done", "transactions", s.Transactions, "inserted", s.Inserted, "updated", s.Updated, "deleted", s.Deleted)
	return nil
}

// setup creates the table when missing and learns its orders.
func (w *writer) setup(ctx context.Context) error {
	_, err := w.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+w.table+` (
	id bigint PRIMARY KEY,
	customer text NOT NULL,
	total numeric(12,2) NOT NULL,
	status text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now())`)
	if err != nil {
		return fmt.Errorf("create the table %s: %w", w.table, err)
	}
	rows, err := w.pool.Query(ctx, "SELECT id FROM "+w.table)
	if err != nil {
		return fmt.Errorf("read the table %s: %w", w.table, err)
	}
	if w.ids, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return fmt.Errorf("read the table %s: %w", w.table, err)
	}
	for _, id := range w.ids {
		w.nextID = max(w.nextID, id)
	}
	w.nextID++
	return nil
}

func (w *writer) status() writerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// run writes one transaction per tick until ctx ends.
func (w *writer) run(ctx context.Context) {
	defer func() {
		w.mu.Lock()
		w.stats.Writing = false
		w.mu.Unlock()
	}()
	t := time.NewTicker(time.Duration(float64(time.Second) / w.rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.transaction(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("transaction failed; going on", "err", err)
		}
	}
}

// transaction commits one to three changes: mostly inserts while the
// table is small, then a mix of inserts, updates and deletes.
func (w *writer) transaction(ctx context.Context) error {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var did writerStatus
	ids, next := append([]int64(nil), w.ids...), w.nextID
	for range 1 + rand.IntN(3) {
		r := rand.Float64()
		switch {
		case len(ids) < 20 || r < 0.5:
			id := next
			next++
			_, err = tx.Exec(ctx, "INSERT INTO "+w.table+" (id, customer, total, status) VALUES ($1, $2, $3, 'new')",
				id, fmt.Sprintf("c%02d", rand.IntN(30)), float64(rand.IntN(100000))/100)
			ids = append(ids, id)
			did.Inserted++
		case r < 0.85:
			id := ids[rand.IntN(len(ids))]
			_, err = tx.Exec(ctx, "UPDATE "+w.table+" SET status = $2, total = total + $3, updated_at = now() WHERE id = $1",
				id, statuses[rand.IntN(len(statuses))], float64(rand.IntN(2000))/100)
			did.Updated++
		default:
			i := rand.IntN(len(ids))
			_, err = tx.Exec(ctx, "DELETE FROM "+w.table+" WHERE id = $1", ids[i])
			ids = append(ids[:i], ids[i+1:]...)
			did.Deleted++
		}
		if err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	w.ids, w.nextID = ids, next
	w.mu.Lock()
	w.stats.Transactions++
	w.stats.Inserted += did.Inserted
	w.stats.Updated += did.Updated
	w.stats.Deleted += did.Deleted
	w.mu.Unlock()
	return nil
}
