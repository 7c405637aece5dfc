package bench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/demo"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/hub"
)

// The telemetry pipeline built directly on the engines, the baseline of
// `sluice bench telemetry`: a plain net/http handler publishes each event
// of a request to a JetStream stream (one subject per partition, by the
// device's hash) and answers once all are stored; one pull consumer per
// partition fetches batches, decodes them, merges each device's frames
// into its state read from SQLite, writes the changed devices in one
// transaction and acknowledges the batch. No leases, no dead letters (a
// corrupt event is counted and dropped), no metrics.

const enginesStream = "TELEM"

type enginesPipeline struct {
	eng      *engine.Engine
	db       *sql.DB
	srv      *http.Server
	ln       net.Listener
	parts    int
	maxBatch int

	done    atomic.Int64
	corrupt atomic.Int64
	lat     *latencies

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
}

func startEnginesPipeline(ctx context.Context, dir, syncMode string, partitions, maxBatch int, lat *latencies) (*enginesPipeline, error) {
	eng, err := engine.Start(ctx, engine.Config{DataDir: filepath.Join(dir, "data"), Sync: syncMode, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	p := &enginesPipeline{eng: eng, parts: partitions, maxBatch: maxBatch, lat: lat}
	subjects := make([]string, partitions)
	for i := range subjects {
		subjects[i] = "telem." + strconv.Itoa(i)
	}
	stream, err := eng.JS.CreateStream(ctx, jetstream.StreamConfig{Name: enginesStream, Subjects: subjects, Storage: jetstream.FileStorage})
	if err != nil {
		p.close()
		return nil, err
	}
	p.db, err = sql.Open("sqlite", "file:"+filepath.Join(dir, "devices.db")+sqlitePragmas)
	if err != nil {
		p.close()
		return nil, err
	}
	p.db.SetMaxOpenConns(1)
	if _, err := p.db.ExecContext(ctx, `CREATE TABLE devices (id TEXT PRIMARY KEY, body TEXT NOT NULL)`); err != nil {
		p.close()
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	for i := range partitions {
		cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable: "p" + strconv.Itoa(i), FilterSubject: subjects[i], AckPolicy: jetstream.AckAllPolicy,
			MaxAckPending: -1, DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err != nil {
			p.close()
			return nil, err
		}
		p.wg.Go(func() { p.consume(cctx, cons) })
	}
	p.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.close()
		return nil, err
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.ingest)}
	go func() { _ = p.srv.Serve(p.ln) }()
	return p, nil
}

func (p *enginesPipeline) url() string { return "http://" + p.ln.Addr().String() + "/ingest" }

func (p *enginesPipeline) processed() int64 { return p.done.Load() + p.corrupt.Load() }

func (p *enginesPipeline) failure() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.err
}

func (p *enginesPipeline) fail(err error) {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

func (p *enginesPipeline) close() {
	if p.srv != nil {
		_ = p.srv.Close()
	}
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	if p.db != nil {
		_ = p.db.Close()
	}
	if p.eng != nil {
		_ = p.eng.Close()
	}
}

// ingest takes the same request body as Sluice's envelope format (an
// array of {"partition_key", "body" | "body_text"}), publishes each event
// to its partition's subject and answers when all are stored.
func (p *enginesPipeline) ingest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var events []struct {
		PartitionKey string          `json:"partition_key"`
		Body         json.RawMessage `json:"body"`
		BodyBase64   []byte          `json:"body_base64"`
	}
	if err := json.Unmarshal(body, &events); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for _, e := range events {
		data := []byte(e.Body)
		if e.BodyBase64 != nil {
			data = e.BodyBase64
		}
		subj := "telem." + strconv.Itoa(hub.PartitionForKey(e.PartitionKey, p.parts))
		f, err := p.eng.JS.PublishMsgAsync(&nats.Msg{Subject: subj, Data: data})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// consume processes one partition: fetch, decode, merge, write, ack.
//
// It takes messages from one long-lived pull subscription (Messages), not
// from a Fetch per batch: a Fetch gives up after a second without an
// answer, and what the server delivers to it afterwards is lost to the
// client yet acknowledged by the next batch's AckAll. On a busy machine
// that lost events and stalled the baseline.
func (p *enginesPipeline) consume(ctx context.Context, cons jetstream.Consumer) {
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * p.maxBatch))
	if err != nil {
		p.fail(err)
		return
	}
	defer it.Stop()
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	states := map[string]*enginesDevice{}
	msgs := make([]jetstream.Msg, 0, p.maxBatch)
	for ctx.Err() == nil {
		// The first message of a batch waits; the rest are those already
		// here (a short wait each), up to the batch size.
		msgs = msgs[:0]
		m, err := it.Next()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				p.fail(err)
			}
			return
		}
		msgs = append(msgs, m)
		for len(msgs) < p.maxBatch {
			m, err := it.Next(jetstream.NextMaxWait(time.Millisecond))
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		clear(states)
		var order []string
		var sent []int64
		corrupt := 0
		for _, m := range msgs {
			var f demo.Frame
			if demo.Decode(m.Data(), &f) != nil {
				corrupt++
				continue
			}
			d, ok := states[f.DeviceID]
			if !ok {
				d = &enginesDevice{state: demo.DeviceState{ID: f.DeviceID, DeviceID: f.DeviceID}}
				states[f.DeviceID] = d
				order = append(order, f.DeviceID)
			}
			d.frames = append(d.frames, f)
			if p.lat.on.Load() {
				sent = append(sent, sentAt(m.Data()))
			}
		}
		if err := p.write(ctx, states, order); err != nil {
			if ctx.Err() == nil {
				p.fail(err)
			}
			return
		}
		if err := msgs[len(msgs)-1].Ack(); err != nil && ctx.Err() == nil {
			p.fail(err)
			return
		}
		p.lat.addSent(sent)
		p.done.Add(int64(len(msgs) - corrupt))
		p.corrupt.Add(int64(corrupt))
	}
}

// enginesDevice is a device's state while a batch is merged into it.
type enginesDevice struct {
	state  demo.DeviceState
	frames []demo.Frame // of the batch, in order
}

// write reads the batch's devices, merges their frames and writes them in
// one transaction.
func (p *enginesPipeline) write(ctx context.Context, states map[string]*enginesDevice, order []string) error {
	if len(order) == 0 {
		return nil
	}
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var q strings.Builder
	args := make([]any, len(order))
	q.WriteString(`SELECT id, body FROM devices WHERE id IN (`)
	for i, id := range order {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteByte('?')
		args[i] = id
	}
	q.WriteByte(')')
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			rows.Close()
			return err
		}
		if d := states[id]; d != nil {
			if err := json.Unmarshal(body, &d.state); err != nil {
				rows.Close()
				return err
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var ins bytes.Buffer
	vals := make([]any, 0, 2*len(order))
	ins.WriteString(`INSERT INTO devices (id, body) VALUES `)
	for i, id := range order {
		d := states[id]
		for _, f := range d.frames {
			demo.Merge(&d.state, f)
		}
		body, err := json.Marshal(&d.state)
		if err != nil {
			return err
		}
		if i > 0 {
			ins.WriteByte(',')
		}
		ins.WriteString("(?,?)")
		vals = append(vals, id, body)
	}
	ins.WriteString(` ON CONFLICT(id) DO UPDATE SET body = excluded.body`)
	if _, err := tx.ExecContext(ctx, ins.String(), vals...); err != nil {
		return err
	}
	return tx.Commit()
}
