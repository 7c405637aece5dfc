package examples_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/examples/telemetry/pipeline"
)

// frame is an event the telemetry test sends: its partition key, body and,
// for a corrupt one, the problem its dead letter must name.
type frame struct {
	key, body, problem string
}

// The first round: key frames, partial frames, a device whose first frame
// is partial, and every kind of corrupt event, in one publish.
var telemetryRound1 = []frame{
	{"d-alpha", `{"deviceId":"d-alpha","isKeyFrame":true,"battery":90,"flightMode":"landed","latitude":47.6,"longitude":-122.3,"altitude":0,"gyrometerOK":true}`, ""},
	{"d-bravo", `{"deviceId":"d-bravo","isKeyFrame":false,"battery":55.5}`, ""},
	{"d-alpha", `{"deviceId":"d-alpha","isKeyFrame":false,"flightMode":"takeoff","altitude":12.5}`, ""},
	{"d-alpha", `{"deviceId":"d-alpha","isKeyFrame":false,"batte`, "invalid JSON at byte 47: unexpected end of JSON input"},
	{"d-charlie", `{"deviceId":"d-charlie","isKeyFrame":true,"battery":70,"flightMode":"flying","latitude":47.7,"longitude":-122.4,"altitude":100,"gyrometerOK":true}`, ""},
	{"d-charlie", "\x01\x02garbage", `invalid JSON at byte 1: invalid character '\x01' looking for beginning of value`},
	{"d-bravo", `{"isKeyFrame":false,"battery":50}`, "no deviceId"},
	{"d-bravo", `{"deviceId":"d-bravo","altitude":30}`, ""},
	{"d-delta", `{"deviceId":"d-delta","isKeyFrame":false,"latitude":95}`, "latitude 95: want -90 to 90"},
	{"d-alpha", `{"deviceId":"d-alpha","gyrometerOK":"yes"}`, "gyrometerOK: JSON string where true or false belongs"},
	{"d-alpha", `{"deviceId":"d-alpha","latitude":47.61,"longitude":-122.31,"gyrometerOK":false}`, ""},
	{"d-charlie", `{"deviceId":"d-charlie","isKeyFrame":true,"battery":60}`, "key frame without flightMode, latitude, longitude, altitude, gyrometerOK"},
	{"d-charlie", `["d-charlie",1]`, "not a JSON object but a JSON array"},
	{"d-alpha", `{"deviceId":"d-echo","battery":10}`, `partition key "d-alpha" is not the deviceId "d-echo": publish each frame with its device id as the partition key`},
	{"d-charlie", `{"deviceId":"d-charlie","isKeyFrame":true,"battery":65.25,"flightMode":"hovering","latitude":47.71,"longitude":-122.41,"altitude":110,"gyrometerOK":false}`, ""},
	{"d-charlie", `{"deviceId":"d-charlie","battery":64}`, ""},
	{"d-delta", ``, "empty event"},
	{"a/b", `{"deviceId":"a/b"}`, `deviceId "a/b": want 1 to 128 bytes without '/', '\', '?', '#' or control characters`},
	{"d-delta", `{"deviceId":"d-delta","flightMode":""}`, `flightMode "": want 1 to 32 printable characters`},
	{"d-alpha", `{"deviceId":"d-alpha","battery":88.5,"flightMode":"flying","altitude":95}`, ""},
	{"d-bravo", `null`, "not a JSON object but null"},
}

// The second round merges into the stored states.
var telemetryRound2 = []frame{
	{"d-bravo", `{"deviceId":"d-bravo","gyrometerOK":true,"battery":54}`, ""},
	{"d-delta", `{"deviceId":"d-delta","isKeyFrame":true,"battery":100,"flightMode":"landed","latitude":-33.86,"longitude":151.2,"altitude":-2.5,"gyrometerOK":true}`, ""},
	{"d-bravo", `{"deviceId":"d-bravo","battery":"full"}`, "battery: JSON string where a number belongs"},
	{"d-alpha", `{"deviceId":"d-alpha","isKeyFrame":false}`, ""},
}

func ptr[T any](v T) *T { return &v }

// TestTelemetryPipeline sends a known set of frames through the pipeline
// of examples/telemetry (and sluice dev) and checks every device document
// field by field, every dead letter, and the device route.
func TestTelemetryPipeline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	defer cancel()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	// Small batches: a device's frames span batches, and batches hold
	// several devices and several problems.
	p := pipeline.Declare(app, pipeline.Options{MaxBatchSize: 4})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { require.NoError(t, app.Stop(context.Background())) })
	o := p.Options()
	require.Equal(t, pipeline.Options{Hub: "telemetry", Partitions: 4, Retention: 24 * time.Hour, Container: "devices",
		Function: "telemetry-decode", MaxBatchSize: 4, Route: "devices/{id}", StateFunction: "device-state"}, o)

	start := time.Now().UTC()
	sent1 := publishFrames(ctx, t, app, o.Hub, telemetryRound1)
	waitProcessed(t, p, len(telemetryRound1))
	// Where each device's last valid frame is.
	at := func(sent []sentFrame, i int) (int, int64) { return sent[i].pos.Partition, sent[i].pos.SequenceNumber }

	alpha := pipeline.DeviceState{ID: "d-alpha", DeviceID: "d-alpha", Battery: ptr(88.5), FlightMode: ptr("flying"),
		Latitude: ptr(47.61), Longitude: ptr(-122.31), Altitude: ptr(95.0), GyrometerOK: ptr(false)}
	alpha.Partition, alpha.Sequence = at(sent1, 19)
	bravo := pipeline.DeviceState{ID: "d-bravo", DeviceID: "d-bravo", Battery: ptr(55.5), Altitude: ptr(30.0)}
	bravo.Partition, bravo.Sequence = at(sent1, 7)
	charlie := pipeline.DeviceState{ID: "d-charlie", DeviceID: "d-charlie", Battery: ptr(64.0), FlightMode: ptr("hovering"),
		Latitude: ptr(47.71), Longitude: ptr(-122.41), Altitude: ptr(110.0), GyrometerOK: ptr(false)}
	charlie.Partition, charlie.Sequence = at(sent1, 15)
	checkDevices(ctx, t, app, p, start, map[string]*pipeline.DeviceState{
		"d-alpha": &alpha, "d-bravo": &bravo, "d-charlie": &charlie, "d-delta": nil, "d-echo": nil, "a/b": nil})
	checkDeadLetters(ctx, t, app, sent1)

	// The route: a device's state, and a clear 404.
	base := "http://" + app.Addr() + "/api/devices/"
	status, body := httpGet(t, base+"d-charlie")
	require.Equal(t, http.StatusOK, status, body)
	var got pipeline.DeviceState
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	got.Updated = time.Time{}
	assert.Equal(t, charlie, got)
	assert.Contains(t, body, `"_etag"`, "the document as stored")
	status, body = httpGet(t, base+"d-delta")
	assert.Equal(t, http.StatusNotFound, status)
	assert.JSONEq(t, `{"error":"device \"d-delta\" has sent no valid telemetry"}`, body)
	status, _ = httpGet(t, base+"d-alpha?code=x")
	assert.Equal(t, http.StatusOK, status)
	resp, err := http.Post(base+"d-alpha", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "the route only reads")

	// The second round merges into the stored documents.
	sent2 := publishFrames(ctx, t, app, o.Hub, telemetryRound2)
	waitProcessed(t, p, len(telemetryRound1)+len(telemetryRound2))
	bravo.Battery, bravo.GyrometerOK = ptr(54.0), ptr(true)
	bravo.Partition, bravo.Sequence = at(sent2, 0)
	delta := pipeline.DeviceState{ID: "d-delta", DeviceID: "d-delta", Battery: ptr(100.0), FlightMode: ptr("landed"),
		Latitude: ptr(-33.86), Longitude: ptr(151.2), Altitude: ptr(-2.5), GyrometerOK: ptr(true)}
	delta.Partition, delta.Sequence = at(sent2, 1)
	alpha.Partition, alpha.Sequence = at(sent2, 3) // a frame carrying no field still counts as heard from
	checkDevices(ctx, t, app, p, start, map[string]*pipeline.DeviceState{
		"d-alpha": &alpha, "d-bravo": &bravo, "d-charlie": &charlie, "d-delta": &delta, "d-echo": nil})
	checkDeadLetters(ctx, t, app, append(sent1, sent2...))

	s := p.Stats()
	assert.EqualValues(t, len(telemetryRound1)+len(telemetryRound2), s.Processed())
	assert.EqualValues(t, countCorrupt(telemetryRound1)+countCorrupt(telemetryRound2), s.DeadLettered())
	assert.Positive(t, s.Batches())
	assert.GreaterOrEqual(t, s.DevicesUpdated(), int64(4+3))
}

// sentFrame is a frame and where the hub stored it.
type sentFrame struct {
	frame
	pos sluice.Position
}

func publishFrames(ctx context.Context, t *testing.T, app *sluice.App, hub string, frames []frame) []sentFrame {
	t.Helper()
	events := make([]sluice.Event, len(frames))
	for i, f := range frames {
		events[i] = sluice.Event{Body: []byte(f.body), PartitionKey: f.key}
	}
	pos, err := app.Publish(ctx, hub, events...)
	require.NoError(t, err)
	require.Len(t, pos, len(frames))
	out := make([]sentFrame, len(frames))
	for i := range frames {
		out[i] = sentFrame{frames[i], pos[i]}
	}
	return out
}

func countCorrupt(frames []frame) int {
	n := 0
	for _, f := range frames {
		if f.problem != "" {
			n++
		}
	}
	return n
}

func waitProcessed(t *testing.T, p *pipeline.Pipeline, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d events processed", n), func() error {
		if got := p.Stats().Processed(); got != int64(n) {
			return fmt.Errorf("%d processed", got)
		}
		return nil
	})
}

// checkDevices checks each device's document (nil: none), field by field;
// Updated is the time its last frame was enqueued, after start.
func checkDevices(ctx context.Context, t *testing.T, app *sluice.App, p *pipeline.Pipeline, start time.Time, want map[string]*pipeline.DeviceState) {
	t.Helper()
	for id, w := range want {
		got, err := p.State(ctx, id)
		if w == nil {
			assert.ErrorIs(t, err, sluice.ErrDocumentNotFound, "device %s has no document", id)
			continue
		}
		if !assert.NoError(t, err, id) {
			continue
		}
		assert.False(t, got.Updated.Before(start), "%s updated %s, before the test began", id, got.Updated)
		assert.False(t, got.Updated.After(time.Now()), "%s updated %s, in the future", id, got.Updated)
		got.Updated = time.Time{}
		assert.Equal(t, *w, got, "device %s", id)
	}
	page, err := app.Docs().Query(ctx, p.Options().Container, sluice.QueryRequest{Text: "SELECT * FROM c"})
	require.NoError(t, err)
	n := 0
	for _, w := range want {
		if w != nil {
			n++
		}
	}
	assert.Len(t, page.Documents, n, "one document per device that sent a valid frame")
}

// checkDeadLetters checks that the corrupt frames, and only they, are dead
// letters, one each, from their positions in the hub, with their bodies
// and reasons.
func checkDeadLetters(ctx context.Context, t *testing.T, app *sluice.App, sent []sentFrame) {
	t.Helper()
	type where struct {
		partition int
		sequence  int64
	}
	corrupt := map[where]sentFrame{}
	for _, s := range sent {
		if s.problem != "" {
			corrupt[where{s.pos.Partition, s.pos.SequenceNumber}] = s
		}
	}
	letters, err := app.DeadLetters(ctx, sluice.DeadLetterFilter{Function: "telemetry-decode"}, 1000)
	require.NoError(t, err)
	require.Len(t, letters, len(corrupt))
	seen := map[where]bool{}
	for _, l := range letters {
		w := where{l.Source.Partition, l.Source.Sequence}
		s, ok := corrupt[w]
		if !assert.True(t, ok, "letter %d from %d@%d is of no corrupt frame: %q", l.ID, w.partition, w.sequence, l.Body) {
			continue
		}
		assert.False(t, seen[w], "one letter per event: %v twice", w)
		seen[w] = true
		assert.Equal(t, "hub", l.Source.Kind)
		assert.Equal(t, "telemetry", l.Source.Hub)
		assert.Equal(t, "$Default", l.Source.Group)
		assert.Equal(t, s.key, l.Source.PartitionKey)
		assert.Equal(t, s.body, string(l.Body))
		assert.Equal(t, 1, l.Attempts, "dead-lettered at once, without retries")
		assert.Equal(t, "telemetry-decode", l.Function)
		assert.Equal(t, "sluice-deadletters", l.DeadLetterQueue)
		assert.Equal(t, pipeline.ReasonPrefix+s.problem, l.Reason, "each letter has its own event's reason")
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestSluiceDevTelemetryDemo runs `sluice dev` as the README's Quickstart
// does, and checks what it tells the user to try: a drone's state, the dead
// letters, the hub's lag, and the progress line.
func TestSluiceDevTelemetryDemo(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	cli := filepath.Join(t.TempDir(), "sluice")
	goBuild(t, root, cli, "./cmd/sluice")
	addr := freeAddr(t)
	api := "http://" + addr
	dev := startProc(t, "sluice dev", cli, "dev", "--data-dir", filepath.Join(t.TempDir(), "data"), "--http", addr,
		"--rate", "1000", "--devices", "50", "--corrupt", "0.05")
	dev.waitOK(api + "/readyz")

	eventually(t, "drone-0001's state", func() error {
		status, body := httpGet(t, api+"/api/devices/drone-0001")
		if status != http.StatusOK {
			return fmt.Errorf("%d %s", status, body)
		}
		var st pipeline.DeviceState
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return err
		}
		if st.DeviceID != "drone-0001" || st.Latitude == nil || st.FlightMode == nil || st.Updated.IsZero() {
			return fmt.Errorf("state %s", body)
		}
		return nil
	})
	status, body := httpGet(t, api+"/api/devices/drone-9999")
	assert.Equal(t, http.StatusNotFound, status, body)

	var page struct {
		DeadLetters []letterJSON `json:"dead_letters"`
	}
	eventually(t, "dead letters", func() error {
		out := runCLI(t, cli, "deadletters", "list", "--function", "telemetry-decode", "--limit", "20", "--server", api, "--json")
		if err := json.Unmarshal(out, &page); err != nil {
			return err
		}
		if len(page.DeadLetters) < 3 {
			return fmt.Errorf("%d dead letters", len(page.DeadLetters))
		}
		return nil
	})
	for _, l := range page.DeadLetters {
		assert.True(t, strings.HasPrefix(l.Reason, pipeline.ReasonPrefix), "reason %q", l.Reason)
		assert.Equal(t, "telemetry", l.Source.Hub)
	}
	lag := string(runCLI(t, cli, "hub", "lag", "telemetry", "--server", api))
	assert.Contains(t, lag, "hub telemetry, consumer group $Default")

	eventually(t, "a progress line", func() error {
		b, err := os.ReadFile(dev.logPath)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "telemetry processed: ") || !strings.Contains(string(b), "dead letters") {
			return fmt.Errorf("output:\n%s", b)
		}
		return nil
	})
}
