package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReliableProcessing runs examples/reliable-processing as its README
// does: a downstream, two instances sharing one NATS, orders (some of them
// corrupt) sent through the API, and an outage of the downstream in the
// middle. The breaker opens on both instances and nothing is
// dead-lettered for the outage; once the downstream is back, it holds
// every order exactly once and in order per customer, and the dead letters
// are exactly the corrupt events.
func TestReliableProcessing(t *testing.T) {
	t.Parallel()
	const (
		events  = 1200
		corrupt = "0.05"
		// The downstream goes down by itself after this many orders, so
		// that orders are left for the outage however fast they go.
		downAfter = 300
	)
	root := moduleRoot(t)
	bin := t.TempDir()
	cli := filepath.Join(bin, "sluice")
	goBuild(t, root, cli, "./cmd/sluice")
	example := filepath.Join(bin, "reliable-processing")
	goBuild(t, root, example, "./examples/reliable-processing")
	data := t.TempDir()

	dsAddr := freeAddr(t)
	ds := "http://" + dsAddr
	startProc(t, "downstream", example, "downstream", "--addr", dsAddr, "--down-after", strconv.Itoa(downAfter)).waitOK(ds + "/")
	natsAddr, apiA, apiB := freeAddr(t), "http://"+freeAddr(t), "http://"+freeAddr(t)
	common := []string{"--downstream", ds, "--rate", "0", "--cool-down", "1s"}
	startProc(t, "instance a", example, append([]string{"--instance", "a", "--data-dir", filepath.Join(data, "a"),
		"--http", strings.TrimPrefix(apiA, "http://"), "--nats-listen", natsAddr}, common...)...).waitOK(apiA + "/readyz")
	startProc(t, "instance b", example, append([]string{"--instance", "b", "--data-dir", filepath.Join(data, "b"),
		"--http", strings.TrimPrefix(apiB, "http://"), "--nats", "nats://" + natsAddr}, common...)...).waitOK(apiB + "/readyz")

	// The instances share the hub's partitions before the orders come.
	eventually(t, "both instances own partitions of orders", func() error {
		na, nb := metric(t, apiA, "sluice_hub_owned_partitions", `hub="orders"`), metric(t, apiB, "sluice_hub_owned_partitions", `hub="orders"`)
		if na+nb != 4 || na == 0 || nb == 0 {
			return fmt.Errorf("a owns %v partitions, b %v", na, nb)
		}
		return nil
	})

	var sent struct {
		Producer                string
		Events, Orders, Corrupt int
	}
	out := runCLI(t, example, "send", "--server", apiA, "--events", strconv.Itoa(events), "--corrupt", corrupt, "--json")
	require.NoError(t, json.Unmarshal(out, &sent), "%s", out)
	require.Equal(t, events, sent.Orders+sent.Corrupt, "%s", out)
	require.Greater(t, sent.Orders, downAfter, "%s", out)
	require.Positive(t, sent.Corrupt, "%s", out)

	// The downstream goes down; the breaker opens, as both instances see it.
	for _, api := range []string{apiA, apiB} {
		eventually(t, "the breaker of deliver opened, as "+api+" sees it", func() error {
			if b := breaker(t, cli, api); !b.went("open") {
				return fmt.Errorf("state %s, history %v", b.State, b.History)
			}
			return nil
		})
	}
	assert.False(t, downstream(t, ds).Up, "the downstream went down after %d orders", downAfter)
	postOK(t, ds+"/up")

	// Caught up: every order once, in order per customer.
	var got downstreamStatus
	eventually(t, "the downstream holds every order", func() error {
		got = downstream(t, ds)
		if got.Orders < sent.Orders {
			return fmt.Errorf("%d orders of %d", got.Orders, sent.Orders)
		}
		return nil
	})
	assert.Equal(t, sent.Orders, got.Orders)
	assert.Zero(t, got.Duplicates, "no order posted twice: %v", got.Problems)
	assert.Zero(t, got.OutOfOrder, "each customer's orders in order: %v", got.Problems)
	assert.Positive(t, got.Refused, "orders were refused during the outage")

	// The dead letters are the corrupt events, and nothing of the outage.
	letters := deadLetters(t, cli, apiB, sent.Corrupt)
	seen := map[string]bool{}
	for _, l := range letters {
		where := fmt.Sprintf("%d@%d", l.Source.Partition, l.Source.Sequence)
		assert.False(t, seen[where], "one letter per event: %s twice", where)
		seen[where] = true
		assert.Equal(t, "deliver", l.Function)
		assert.Equal(t, "orders", l.Source.Hub)
		assert.Contains(t, l.Reason, "corrupt event: not a JSON order")
		assert.False(t, json.Valid(l.Body), "a dead letter is a corrupt event, not an order: %s", l.Body)
		assert.Zero(t, l.Redriven)
	}

	// The breaker closed again, after a probe, everywhere.
	for _, api := range []string{apiA, apiB} {
		eventually(t, "the breaker of deliver closed, as "+api+" sees it", func() error {
			b := breaker(t, cli, api)
			if b.State != "closed" || !b.went("half-open") {
				return fmt.Errorf("state %s, history %v", b.State, b.History)
			}
			return nil
		})
	}
	// Both instances did some of the work.
	for _, api := range []string{apiA, apiB} {
		assert.Positive(t, metric(t, api, "sluice_hub_events_processed_total", `function="deliver"`), "events %s processed", api)
	}

	// Redriving a corrupt event does not repair it: it is dead-lettered
	// again, counted as redriven, and the downstream gets nothing new.
	out = runCLI(t, cli, "deadletters", "redrive", "--function", "deliver", "--server", apiA, "--json")
	assert.JSONEq(t, fmt.Sprintf(`{"redriven":%d}`, sent.Corrupt), string(out))
	eventually(t, "the redriven events are dead-lettered again", func() error {
		again := 0
		for _, l := range deadLetters(t, cli, apiA, -1) {
			if l.Redriven != 1 {
				return fmt.Errorf("letter %d redriven %d times", l.ID, l.Redriven)
			}
			again++
		}
		if again != sent.Corrupt {
			return fmt.Errorf("%d of %d dead-lettered again", again, sent.Corrupt)
		}
		return nil
	})
	after := downstream(t, ds)
	assert.Equal(t, sent.Orders, after.Orders)
	assert.Zero(t, after.Duplicates)
}

// downstreamStatus is the answer of the downstream's GET /.
type downstreamStatus struct {
	Up         bool     `json:"up"`
	Orders     int      `json:"orders"`
	Duplicates int      `json:"duplicates"`
	OutOfOrder int      `json:"out_of_order"`
	Refused    int      `json:"refused_while_down"`
	Problems   []string `json:"problems"`
}

func downstream(t *testing.T, base string) downstreamStatus {
	t.Helper()
	resp, err := http.Get(base + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	var s downstreamStatus
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	return s
}

func postOK(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "POST %s", url)
}

// breakerJSON is what `sluice breaker show --json` prints.
type breakerJSON struct {
	State   string `json:"state"`
	History []struct {
		To string `json:"to"`
	} `json:"history"`
}

// went reports whether the breaker went to state at some point.
func (b breakerJSON) went(state string) bool {
	for _, tr := range b.History {
		if tr.To == state {
			return true
		}
	}
	return false
}

func breaker(t *testing.T, cli, api string) breakerJSON {
	t.Helper()
	out := runCLI(t, cli, "breaker", "show", "deliver", "--server", api, "--json")
	var b breakerJSON
	require.NoError(t, json.Unmarshal(out, &b), "%s", out)
	return b
}

// letterJSON is a dead letter as `sluice deadletters list --json` prints it.
type letterJSON struct {
	ID       uint64 `json:"id"`
	Function string `json:"function"`
	Reason   string `json:"reason"`
	Source   struct {
		Hub       string `json:"hub"`
		Partition int    `json:"partition"`
		Sequence  int64  `json:"sequence"`
	} `json:"source"`
	Redriven int    `json:"redriven"`
	Body     []byte `json:"body"`
}

// deadLetters lists the dead letters of deliver, waiting until there are
// want of them (want < 0: as they are).
func deadLetters(t *testing.T, cli, api string, want int) []letterJSON {
	t.Helper()
	var letters []letterJSON
	eventually(t, fmt.Sprintf("%d dead letters", want), func() error {
		out := runCLI(t, cli, "deadletters", "list", "--function", "deliver", "--limit", "10000", "--server", api, "--json")
		var page struct {
			DeadLetters []letterJSON `json:"dead_letters"`
		}
		require.NoError(t, json.Unmarshal(out, &page), "%s", out)
		letters = page.DeadLetters
		if want >= 0 && len(letters) != want {
			return fmt.Errorf("%d dead letters", len(letters))
		}
		return nil
	})
	return letters
}

// metric sums the samples of a Prometheus metric whose labels include
// label, from an instance's /metrics.
func metric(t *testing.T, api, name, label string) float64 {
	t.Helper()
	resp, err := http.Get(api + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, label) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		require.NoError(t, err, line)
		sum += v
	}
	require.NoError(t, sc.Err())
	return sum
}

// runCLI runs a command to its end and returns its standard output.
func runCLI(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s %s: %s", filepath.Base(bin), strings.Join(args, " "), stderr.String())
	return out
}

// cleanEnv is the environment without the variables the example and the
// CLI take defaults from.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") && !strings.HasPrefix(kv, "RP_") {
			env = append(env, kv)
		}
	}
	return env
}

// proc is a child process that runs until the test ends.
type proc struct {
	t       *testing.T
	name    string
	logPath string
	exited  chan struct{}
	err     error
}

// startProc starts bin; when the test ends it is stopped with SIGTERM and
// must exit cleanly. Its output is shown if the test failed.
func startProc(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, logPath: filepath.Join(t.TempDir(), "output.log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start(), name)
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
			t.Errorf("%s exited before the test ended: %v", name, p.err)
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
				if p.err != nil {
					t.Errorf("%s did not exit cleanly on SIGTERM: %v", name, p.err)
				}
			case <-time.After(waitLimit):
				t.Errorf("%s did not exit within %s of SIGTERM; killed", name, waitLimit)
				_ = cmd.Process.Kill()
				<-p.exited
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			const keep = 24 << 10
			if len(b) > keep {
				b = append([]byte("…"), b[len(b)-keep:]...)
			}
			t.Logf("%s's output:\n%s", name, b)
		}
	})
	return p
}

// waitOK waits until GET url answers 200.
func (p *proc) waitOK(url string) {
	p.t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(waitLimit)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-p.exited:
			p.t.Fatalf("%s exited before %s answered (%v)", p.name, url, p.err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: %s did not answer 200 within %s (last: %v)", p.name, url, waitLimit, err)
		}
	}
}
