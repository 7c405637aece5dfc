// Package examples_test runs the example app folders end to end, as their
// READMEs do: a real sluice binary started as `sluice dev --app <example>`
// in a child process, driven over HTTP, its results read back through the
// app's own routes and the Sluice API.
package examples_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitLimit bounds every wait for the platform: start-up, a result to
// appear, a shutdown.
const waitLimit = 60 * time.Second

// Times of the readings the scenario sends.
const (
	t0 = "2026-11-21T09:00:00Z"
	t1 = "2026-11-21T09:05:00Z"
	t2 = "2026-11-21T09:10:00Z"
)

func TestExampleApps(t *testing.T) {
	root := moduleRoot(t)
	bin := t.TempDir()
	sluice := filepath.Join(bin, "sluice")
	goBuild(t, root, sluice, "./cmd/sluice")
	goHandler := filepath.Join(bin, "telemetry-handler")
	goBuild(t, root, goHandler, "./examples/functionapp-go/handler")

	for _, tc := range []struct {
		name, dir, payload string
		alerts             bool // the app queues and records low-battery alerts
	}{
		{name: "go", dir: "functionapp-go", payload: "compat"},
		{name: "go-clean", dir: "functionapp-go", payload: "clean"},
		{name: "node", dir: "functionapp-node", payload: "compat", alerts: true},
		{name: "node-clean", dir: "functionapp-node", payload: "clean", alerts: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := copyApp(t, filepath.Join(root, "examples", tc.dir))
			if tc.dir == "functionapp-go" {
				// host.json's defaultExecutablePath.
				copyFile(t, goHandler, filepath.Join(app, "telemetry-handler"), 0o755)
			} else if _, err := exec.LookPath("node"); err != nil {
				t.Skip("node is not on PATH; install Node.js 20 or newer to run this example")
			}
			c := startSluice(t, sluice, app, tc.payload)
			runScenario(t, c, tc.alerts)
		})
	}
}

// runScenario drives an example app: readings in through POST /api/submit,
// device states out through GET /api/devices/{id} and the devices
// container, the timer's summary in the reports container, and (alerts)
// the alert function's documents in the alerts container.
func runScenario(t *testing.T, c *client, alerts bool) {
	// Requests the submit function refuses.
	c.expect("POST", "/api/submit", `{"deviceId":"d9","battery":50}`, 400, `{"error":"reading 0: temperature: missing"}`)
	c.expect("POST", "/api/submit", `[]`, 400, `{"error":"send 1 to 1000 readings, not 0"}`)
	status, body := c.do("POST", "/api/submit", `not json`)
	require.Equal(t, 400, status, "%s", body)
	require.Contains(t, string(body), "not JSON")
	c.expect("GET", "/api/devices/nope", "", 404, `{"error":"device nope has sent no reading"}`)
	c.expect("GET", "/api/devices/bad%20id", "", 400, `{"error":"\"bad id\" is not a device id"}`)

	// Round 1: three devices in one request (one partition, one batch).
	c.expect("POST", "/api/submit", `[
		{"deviceId":"d1","temperature":21.5,"battery":80,"time":"`+t0+`"},
		{"deviceId":"d2","temperature":30.5,"battery":55,"time":"`+t0+`"},
		{"deviceId":"d3","temperature":19,"battery":5,"time":"`+t0+`"}]`, 202, `{"accepted":3}`)
	round1 := map[string]string{
		"d1": `{"id":"d1","deviceId":"d1","temperature":21.5,"battery":80,"time":"` + t0 + `","status":"ok"}`,
		"d2": `{"id":"d2","deviceId":"d2","temperature":30.5,"battery":55,"time":"` + t0 + `","status":"ok"}`,
		"d3": `{"id":"d3","deviceId":"d3","temperature":19,"battery":5,"time":"` + t0 + `","status":"low-battery"}`,
	}
	for id, want := range round1 {
		eventually(t, "GET /api/devices/"+id+" answers round 1's state", func() error {
			return c.check("GET", "/api/devices/"+id, "", 200, want)
		})
	}

	// Round 2, sent after round 1 is stored: events without a partition
	// key from different requests may land in different partitions, so
	// only this order makes the result certain.
	c.expect("POST", "/api/submit", `{"deviceId":"d1","temperature":22,"battery":8,"time":"`+t1+`"}`, 202, `{"accepted":1}`)
	// Within one batch the newest reading wins, whatever the order.
	c.expect("POST", "/api/submit", `[
		{"deviceId":"d2","temperature":31,"battery":54,"time":"`+t2+`"},
		{"deviceId":"d2","temperature":99,"battery":50,"time":"`+t1+`"}]`, 202, `{"accepted":2}`)
	// Without a time, the reading takes the time its event was enqueued.
	before := time.Now()
	c.expect("POST", "/api/submit", `{"deviceId":"d4","temperature":10,"battery":90}`, 202, `{"accepted":1}`)
	after := time.Now()

	final := map[string]string{
		"d1": `{"id":"d1","deviceId":"d1","temperature":22,"battery":8,"time":"` + t1 + `","status":"low-battery"}`,
		"d2": `{"id":"d2","deviceId":"d2","temperature":31,"battery":54,"time":"` + t2 + `","status":"ok"}`,
		"d3": round1["d3"],
	}
	for id, want := range final {
		eventually(t, "document "+id+" of the devices container holds round 2's state", func() error {
			return c.check("GET", "/api/v1/containers/devices/docs/"+id+"/"+id, "", 200, want)
		})
	}
	var d4 map[string]any
	eventually(t, "document d4 of the devices container", func() error {
		status, body := c.do("GET", "/api/v1/containers/devices/docs/d4/d4", "")
		if status != 200 {
			return fmt.Errorf("%d %s", status, body)
		}
		return json.Unmarshal(body, &d4)
	})
	enqueued, err := time.Parse(time.RFC3339Nano, fmt.Sprint(d4["time"]))
	require.NoError(t, err, "d4's time is the event's enqueued time")
	require.WithinRange(t, enqueued, before.Add(-time.Second), after.Add(time.Second), "d4's time is the event's enqueued time")
	final["d4"] = fmt.Sprintf(`{"id":"d4","deviceId":"d4","temperature":10,"battery":90,"time":%q,"status":"ok"}`, d4["time"])
	c.expect("GET", "/api/devices/d4", "", 200, final["d4"])
	c.expectQuery("devices", final)

	// The timer's summary (every 10 s) of the final state.
	eventually(t, "the report function's summary of round 2", func() error {
		status, body := c.do("GET", "/api/v1/containers/reports/docs/summary/latest", "")
		if status != 200 {
			return fmt.Errorf("%d %s", status, body)
		}
		doc := decodeDoc(t, body)
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(doc["generatedAt"])); err != nil {
			return fmt.Errorf("generatedAt: %w", err)
		}
		delete(doc, "generatedAt")
		return same(doc, `{"id":"latest","kind":"summary","devices":4,"lowBattery":["d1","d3"],"hottest":{"deviceId":"d2","temperature":31}}`)
	})

	if !alerts {
		return
	}
	// ingest queued an alert for each low-battery reading; the alert
	// function recorded each once.
	eventually(t, "the alert function's documents", func() error {
		return c.checkQuery("alerts", map[string]string{
			"d3@" + t0: `{"id":"d3@` + t0 + `","deviceId":"d3","battery":5,"time":"` + t0 + `","message":"battery at 5%","dequeueCount":1}`,
			"d1@" + t1: `{"id":"d1@` + t1 + `","deviceId":"d1","battery":8,"time":"` + t1 + `","message":"battery at 8%","dequeueCount":1}`,
		})
	})
	eventually(t, "the alerts queue drained", func() error {
		status, body := c.do("GET", "/api/v1/queues/alerts", "")
		var q struct{ Stats struct{ Depth int } }
		if status != 200 || json.Unmarshal(body, &q) != nil || q.Stats.Depth != 0 {
			return fmt.Errorf("%d %s", status, body)
		}
		return nil
	})
}

// client talks to one running sluice.
type client struct {
	t    *testing.T
	base string
	http *http.Client
}

// do sends a request and returns the answer's status and body.
func (c *client) do(method, path, body string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(c.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err, "%s %s", method, path)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, b
}

// check compares an answer with the status and JSON wanted; a document's
// system fields (_etag, _ts, _lsn) are not compared.
func (c *client) check(method, path, body string, status int, want string) error {
	c.t.Helper()
	got, b := c.do(method, path, body)
	if got != status {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, got, status, b)
	}
	if err := same(decodeDoc(c.t, b), want); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

func (c *client) expect(method, path, body string, status int, want string) {
	c.t.Helper()
	if err := c.check(method, path, body, status, want); err != nil {
		c.t.Fatal(err)
	}
}

// checkQuery compares every document of a container (by id) with want.
func (c *client) checkQuery(container string, want map[string]string) error {
	c.t.Helper()
	status, body := c.do("POST", "/api/v1/containers/"+container+"/query", `{"query":"SELECT * FROM c"}`)
	if status != 200 {
		return fmt.Errorf("query %s: %d %s", container, status, body)
	}
	var page struct {
		Documents []struct {
			ID   string          `json:"id"`
			Body json.RawMessage `json:"body"`
		} `json:"documents"`
		Continuation string `json:"continuation"`
	}
	require.NoError(c.t, json.Unmarshal(body, &page))
	require.Empty(c.t, page.Continuation, "the scenario's documents fit in one page")
	var errs []error
	got := map[string]bool{}
	for _, d := range page.Documents {
		got[d.ID] = true
		w, ok := want[d.ID]
		if !ok {
			errs = append(errs, fmt.Errorf("unexpected document %s", d.Body))
			continue
		}
		if err := same(decodeDoc(c.t, d.Body), w); err != nil {
			errs = append(errs, fmt.Errorf("document %s: %w", d.ID, err))
		}
	}
	for id := range want {
		if !got[id] {
			errs = append(errs, fmt.Errorf("no document %s", id))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("container %s: %w", container, err)
	}
	return nil
}

func (c *client) expectQuery(container string, want map[string]string) {
	c.t.Helper()
	if err := c.checkQuery(container, want); err != nil {
		c.t.Fatal(err)
	}
}

// decodeDoc reads a JSON object, without a document's system fields.
func decodeDoc(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc), "%s", b)
	for _, k := range []string{"_etag", "_ts", "_lsn"} {
		delete(doc, k)
	}
	return doc
}

// same reports how got differs from the JSON object want.
func same(got map[string]any, want string) error {
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		panic(fmt.Sprintf("the test's JSON %s: %v", want, err))
	}
	if reflect.DeepEqual(got, w) {
		return nil
	}
	g, _ := json.Marshal(got)
	wj, _ := json.Marshal(w)
	return fmt.Errorf("got %s, want %s", g, wj)
}

// eventually retries check until it returns nil, for at most waitLimit.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen: %v", what, waitLimit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startSluice runs `sluice dev --app app` on a free port until the test
// ends, and returns a client once /healthz answers. The app's handler
// reaches the Sluice API through the SLUICE_API app setting, which sluice
// sets to its own address: nothing here tells the handler the port.
func startSluice(t *testing.T, bin, app, payload string) *client {
	t.Helper()
	addr := freeAddr(t)
	logPath := filepath.Join(t.TempDir(), "sluice.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, "dev", "--app", app, "--payload", payload, "--data-dir", filepath.Join(t.TempDir(), "data"), "--http", addr)
	// Sluice reads SLUICE_* variables as flag defaults: keep the
	// developer's out.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	output := func() string {
		b, _ := os.ReadFile(logPath)
		const keep = 16 << 10
		if len(b) > keep {
			b = append([]byte("…"), b[len(b)-keep:]...)
		}
		return string(b)
	}
	t.Cleanup(func() {
		select {
		case <-exited:
			t.Errorf("sluice exited before the test ended: %v", exitErr)
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				if exitErr != nil {
					t.Errorf("sluice did not exit cleanly on SIGTERM: %v", exitErr)
				}
			case <-time.After(waitLimit):
				t.Errorf("sluice did not exit within %s of SIGTERM; killed", waitLimit)
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		checkHandlerGone(t, app)
		if t.Failed() {
			t.Logf("sluice's output:\n%s", output())
		}
	})

	c := &client{t: t, base: "http://" + addr, http: &http.Client{Timeout: 10 * time.Second}}
	deadline := time.Now().Add(waitLimit)
	for {
		resp, err := c.http.Get(c.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		select {
		case <-exited:
			t.Fatalf("sluice exited before /healthz answered (%v)", exitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice's /healthz did not answer 200 within %s (last error: %v)", waitLimit, err)
		}
	}
}

// checkHandlerGone fails the test when a handler process of app outlives
// sluice (found by the FUNCTIONS_APP_ROOT_PATH sluice gives it), and kills
// it. Only where /proc exists.
func checkHandlerGone(t *testing.T, app string) {
	t.Helper()
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		return
	}
	mark := []byte("FUNCTIONS_APP_ROOT_PATH=" + app + "\x00")
	var left []int
	deadline := time.Now().Add(waitLimit)
	for {
		left = left[:0]
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			if err == nil && bytes.Contains(env, mark) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, pid := range left {
		t.Errorf("handler process %d of %s is still running after sluice stopped; killing it", pid, app)
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	}
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err, "go env GOMOD")
	gomod := strings.TrimSpace(string(out))
	require.NotEmpty(t, gomod, "the tests run inside the module")
	return filepath.Dir(gomod)
}

func goBuild(t *testing.T, root, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build %s: %s", pkg, b)
}

// copyApp copies an example folder, so that nothing the test builds or
// runs writes into the repository.
func copyApp(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
	return dst
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, mode))
	require.NoError(t, os.Chmod(dst, mode))
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}
