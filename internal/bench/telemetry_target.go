package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strconv"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/demo"
	"github.com/sluicehq/sluice/internal/docstore/postgres"
	"github.com/sluicehq/sluice/internal/gateway"
)

// startTelemetryTarget starts case c's pipeline in dir.
func startTelemetryTarget(ctx context.Context, o TelemetryOptions, c, dir string, lat *latencies) (*telemetryTarget, error) {
	if c == "engines" {
		p, err := startEnginesPipeline(ctx, dir, o.Sync, o.Partitions, o.MaxBatchSize, lat)
		if err != nil {
			return nil, err
		}
		return &telemetryTarget{url: p.url(), contentType: "application/json", processed: p.processed, failure: p.failure, close: p.close}, nil
	}
	cfg := sluice.Config{DataDir: filepath.Join(dir, "data"), HTTPAddr: "127.0.0.1:0", InstanceID: "bench", Sync: o.Sync,
		Logger: slog.New(slog.DiscardHandler)}
	// A container of its own, so that runs on a shared PostgreSQL database
	// do not meet.
	container := "devices"
	if c == "postgres" {
		cfg.DocStore = o.PostgresDSN
		container = fmt.Sprintf("bench_devices_%08x", rand.Uint32())
	}
	app := sluice.New(cfg)
	p := demo.Declare(app, demo.Options{Partitions: o.Partitions, MaxBatchSize: o.MaxBatchSize, Container: container, NoRoute: true,
		AfterBatch: func(events []sluice.Event) {
			if !lat.on.Load() {
				return
			}
			sent := make([]int64, 0, len(events))
			for _, e := range events {
				sent = append(sent, sentAt(e.Body))
			}
			lat.addSent(sent)
		}})
	if err := app.Start(ctx); err != nil {
		return nil, err
	}
	closeApp := func() {
		_ = app.Stop(context.Background())
		if c == "postgres" {
			if st, err := postgres.Open(context.Background(), o.PostgresDSN, postgres.Options{}); err == nil {
				_ = st.DeleteContainer(context.Background(), container)
				st.Close()
			}
		}
	}
	return &telemetryTarget{url: "http://" + app.Addr() + "/api/v1/hubs/" + p.Options().Hub + "/events", contentType: gateway.MediaEnvelope,
		processed: p.Stats().Processed, failure: func() error { return nil }, close: closeApp}, nil
}

// tsField is what bodyGen puts first in each valid frame: when it was sent.
var tsField = []byte(`{"ts":`)

// sentAt reads the send time bodyGen put in a frame; 0 if it has none.
func sentAt(body []byte) int64 {
	if !bytes.HasPrefix(body, tsField) {
		return 0
	}
	rest := body[len(tsField):]
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(rest[:end]), 10, 64)
	return n
}

// bodyGen makes ingestion requests of the telemetry example's simulated
// frames, as Sluice's envelope format: [{"partition_key": id, "body":
// frame}, ...], a corrupt frame that is not JSON as body_base64. Each
// valid frame gets a first field "ts", its send time (frames ignore
// unknown fields).
type bodyGen struct{ sim *demo.Simulator }

func newBodyGen(devices int, corrupt float64, seed uint64) *bodyGen {
	return &bodyGen{sim: demo.NewSimulator(devices, corrupt, seed)}
}

func (g *bodyGen) request(b *bytes.Buffer, n int, ts int64) {
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		id, body := g.sim.Next()
		b.WriteString(`{"partition_key":`)
		key, _ := json.Marshal(id)
		b.Write(key)
		switch {
		case len(body) > 1 && body[0] == '{' && json.Valid(body):
			b.WriteString(`,"body":`)
			b.Write(tsField)
			b.WriteString(strconv.FormatInt(ts, 10))
			if rest := bytes.TrimLeft(body[1:], " \t\r\n"); len(rest) > 0 && rest[0] != '}' {
				b.WriteByte(',')
			}
			b.Write(body[1:])
		default:
			b.WriteString(`,"body_base64":"`)
			b.WriteString(base64.StdEncoding.EncodeToString(body))
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
}
