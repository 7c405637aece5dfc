package host_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"github.com/sluicehq/sluice/internal/testlog"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/hub"
)

// signalSink is a memSink that closes full once it holds n letters.
type signalSink struct {
	memSink
	n    int
	once sync.Once
	full chan struct{}
}

func (s *signalSink) Put(ctx context.Context, l []host.DeadLetter) error {
	if err := s.memSink.Put(ctx, l); err != nil {
		return err
	}
	if len(s.all()) >= s.n {
		s.once.Do(func() { close(s.full) })
	}
	return nil
}

// A function dead-letters 100 events in batches of 10: the log has one
// WARN line for the first batch, at once, and one summing up the rest (at
// the end of the interval, or here when the host stops), not a line per
// event.
func TestDeadLettersAreLoggedPerFunctionNotPerEvent(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	sink := &signalSink{n: 100, full: make(chan struct{})}
	var out testlog.Buffer
	kv, err := e.eng.JS.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "leases", History: 1})
	require.NoError(t, err)
	lm := newLeases(t, kv, "dl")
	h, err := host.New(host.Config{InstanceID: "dl", Hubs: e.hubs, Leases: lm, DeadLetters: sink,
		Logger: slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	require.NoError(t, err)
	require.NoError(t, h.Register(host.Function{Name: "f", Trigger: host.HubTrigger{Hub: e.hub, MaxBatchSize: 10},
		Handler: func(_ context.Context, evs []hub.StoredEvent) error {
			reasons := map[int64]error{}
			for _, ev := range evs {
				reasons[ev.Sequence] = errors.New("bad frame")
			}
			return &host.DeadLetterError{Reasons: reasons}
		}}))
	require.NoError(t, h.Start(context.Background()))
	e.publish(t, 100, 1) // one record: batches of 10
	<-sink.full
	h.Stop(context.Background())

	var counts []float64
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		require.NotEqual(t, "event dead-lettered", rec["msg"], "no line per event above DEBUG")
		if rec["msg"] == "inputs dead-lettered" {
			require.Equal(t, "WARN", rec["level"])
			require.Equal(t, "f", rec["function"])
			require.Equal(t, "bad frame: "+jsonNumber(rec["count"]), rec["reasons"])
			counts = append(counts, rec["count"].(float64))
		}
	}
	// Normally [10 90]; a run slower than the interval has one more line.
	require.NotEmpty(t, counts)
	require.Equal(t, 10.0, counts[0], "the first batch at once")
	var total float64
	for _, n := range counts {
		total += n
	}
	require.Equal(t, 100.0, total)
	require.Less(t, len(counts), 10, "fewer lines than batches: the rest are summed up")
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
