package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/sluicehq/sluice/internal/testlog"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// echoPath is testdata/echohandler, built once by TestMain.
var echoPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-handler-test-")
	if err != nil {
		panic(err)
	}
	echoPath = filepath.Join(dir, "echohandler")
	if out, err := exec.Command("go", "build", "-o", echoPath, "./testdata/echohandler").CombinedOutput(); err != nil {
		panic(fmt.Sprintf("build the test handler: %v\n%s", err, out))
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

func echoHandler(*testing.T) string { return echoPath }

func TestProcessInvokesAndRestarts(t *testing.T) {
	ctx := context.Background()
	p, err := Start(ctx, ProcessConfig{Executable: echoHandler(t), Dir: t.TempDir(), MaxRestartDelay: 200 * time.Millisecond})
	require.NoError(t, err)
	defer p.Stop(context.Background())

	req := Request{Data: map[string]json.RawMessage{"in": json.RawMessage(`"x"`)}, Metadata: map[string]json.RawMessage{}}
	resp, err := p.Invoke(ctx, "hello", req)
	require.NoError(t, err)
	out, ok := resp.Output("out")
	require.True(t, ok)
	require.JSONEq(t, `{"in":"x"}`, string(out))
	require.Equal(t, []string{"handled hello by Azure-Functions-Host/" + HostVersion}, resp.Logs)

	_, err = p.Invoke(ctx, "fail", req)
	require.ErrorContains(t, err, "the handler answered 500 Internal Server Error: failing on purpose")

	// An input that crashes the process every time fails after two more
	// tries; the process comes back each time.
	_, err = p.Invoke(ctx, "crash", req)
	require.ErrorContains(t, err, "the handler process exited during the invocation, 3 times")
	resp, err = p.Invoke(ctx, "again", req)
	require.NoError(t, err, "the next invocation waits for the restarted process")
	require.Equal(t, 3, p.Restarts())
	_, ok = resp.Output("$return")
	require.True(t, ok)
}

func TestProcessCrashOnceIsInvisible(t *testing.T) {
	ctx := context.Background()
	marker := filepath.Join(t.TempDir(), "crashed")
	p, err := Start(ctx, ProcessConfig{Executable: echoHandler(t), Env: []string{"CRASH_MARKER=" + marker}, MaxRestartDelay: 200 * time.Millisecond})
	require.NoError(t, err)
	defer p.Stop(context.Background())
	resp, err := p.Invoke(ctx, "crashonce", Request{Data: map[string]json.RawMessage{"in": json.RawMessage(`1`)}})
	require.NoError(t, err, "an invocation the process died in is sent again once it is back")
	require.FileExists(t, marker)
	require.Equal(t, 1, p.Restarts())
	out, _ := resp.Output("out")
	require.JSONEq(t, `{"in":1}`, string(out))
}

// A line the handler writes while one function runs is logged with it.
func TestProcessOutputNamesTheFunction(t *testing.T) {
	ctx := context.Background()
	var out testlog.Buffer
	p, err := Start(ctx, ProcessConfig{Executable: echoHandler(t), Logger: slog.New(slog.NewTextHandler(&out, nil))})
	require.NoError(t, err)
	defer p.Stop(context.Background())
	_, err = p.Invoke(ctx, "say", Request{Data: map[string]json.RawMessage{}})
	require.NoError(t, err)
	require.Contains(t, out.String(), `msg="saying something while invoked"`)
	require.Contains(t, out.String(), "stream=stdout function=say")
	require.Empty(t, p.running(), "nothing is in flight after the invocation")
}

func TestProcessStartErrors(t *testing.T) {
	ctx := context.Background()
	_, err := Start(ctx, ProcessConfig{Executable: "sleep", Args: []string{"30"}, StartTimeout: 300 * time.Millisecond})
	require.ErrorContains(t, err, "did not answer HTTP")
	require.ErrorContains(t, err, "FUNCTIONS_CUSTOMHANDLER_PORT")

	_, err = Start(ctx, ProcessConfig{Executable: "sh", Args: []string{"-c", "echo no port; exit 4"}})
	require.ErrorContains(t, err, "exited before it listened")
	require.ErrorContains(t, err, "exit status 4")

	_, err = Start(ctx, ProcessConfig{Executable: filepath.Join(t.TempDir(), "missing")})
	require.ErrorContains(t, err, "handler: start")
}

// TestProcessInvokesConcurrently: invocations at once on one process each
// send their own request and read their own answer.
func TestProcessInvokesConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, err := Start(ctx, ProcessConfig{Executable: echoHandler(t), Dir: t.TempDir()})
	require.NoError(t, err)
	defer p.Stop(context.Background())

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				in := json.RawMessage(fmt.Sprintf(`"%d-%d-%s"`, g, i, strings.Repeat("x", (g*50+i)%7*1000)))
				resp, err := p.Invoke(ctx, "echo", Request{Data: map[string]json.RawMessage{"in": in}, Metadata: map[string]json.RawMessage{}})
				if !assert.NoError(t, err) {
					return
				}
				out, _ := resp.Output("out")
				assert.JSONEq(t, `{"in":`+string(in)+`}`, string(out))
			}
		})
	}
	wg.Wait()
}

// TestInvokeWire: what an invocation sends and reads, on a server of the
// test's own.
func TestInvokeWire(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path  string
		header        http.Header
		body          []byte
		contentLength int64
	}
	requests := make(chan seen, 10)
	answer := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			requests <- seen{r.Method, r.URL.Path, r.Header, body, r.ContentLength}
			if r.URL.Path == "/chunked" {
				w.(http.Flusher).Flush() // no Content-Length
			}
			if r.URL.Path == "/moved" {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
				return
			}
			_, _ = io.WriteString(w, `{"Outputs":{"out":"`+name+`"},"Logs":["l"]}`)
		}
	}
	one, two := httptest.NewServer(answer("one")), httptest.NewServer(answer("two"))
	defer one.Close()
	defer two.Close()
	ready := make(chan struct{})
	close(ready)
	p := &Process{base: one.URL, ready: ready, transport: &http.Transport{}, log: slog.New(slog.DiscardHandler)}
	defer p.transport.CloseIdleConnections()

	req := goldenRequests(t)[0].req
	want, err := json.Marshal(req)
	require.NoError(t, err)
	ctx := context.Background()
	var ids []string
	for _, fn := range []string{"ingest", "ingest", "chunked"} {
		resp, err := p.Invoke(ctx, fn, req)
		require.NoError(t, err)
		out, _ := resp.Output("out")
		require.Equal(t, `"one"`, string(out))
		require.Equal(t, []string{"l"}, resp.Logs)
		s := <-requests
		require.Equal(t, http.MethodPost, s.method)
		require.Equal(t, "/"+fn, s.path)
		require.Equal(t, string(want), string(s.body))
		require.Equal(t, int64(len(want)), s.contentLength)
		require.Equal(t, "application/json", s.header.Get("Content-Type"))
		require.Equal(t, HostVersion, s.header.Get("X-Azure-Functions-HostVersion"))
		require.Equal(t, "Azure-Functions-Host/"+HostVersion, s.header.Get("User-Agent"))
		id := s.header.Get("X-Azure-Functions-InvocationId")
		require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, id)
		require.NotContains(t, ids, id)
		ids = append(ids, id)
	}

	_, err = p.Invoke(ctx, "moved", req)
	require.ErrorContains(t, err, "the handler answered 302 Found", "a redirect is the handler's answer")
	<-requests

	// The process restarted on another port: its URLs are new.
	p.mu.Lock()
	p.base = two.URL
	p.mu.Unlock()
	resp, err := p.Invoke(ctx, "ingest", req)
	require.NoError(t, err)
	out, _ := resp.Output("out")
	require.Equal(t, `"two"`, string(out))
	<-requests
}

// TestProcessGetsNoSecrets: Sluice's keys and credential-carrying URLs are
// not in a handler's environment, from Sluice's own environment or from
// the app's settings; other settings are.
func TestProcessGetsNoSecrets(t *testing.T) {
	t.Setenv("SLUICE_ADMIN_KEY", "admin-secret")
	t.Setenv("SLUICE_FUNCTION_KEYS", "fn-secret")
	t.Setenv("SLUICE_KEY", "sluice_000000000000_"+strings.Repeat("a", 64))
	t.Setenv("SLUICE_NATS_URL", "nats://u:nats-secret@127.0.0.1:4222")
	t.Setenv("SLUICE_DOCSTORE", "postgres://u:pg-secret@127.0.0.1/db")
	t.Setenv("SLUICE_NATS_PASSWORD", "nats-password-secret")
	t.Setenv("SLUICE_NATS_LEAF_REMOTE", "tls://leaf:leaf-secret@primary.example.com:7422")
	t.Setenv("ORDERS_DB", "postgres://cdc:orders-db-secret@db/orders") // named by sluice.yaml (urlEnv)
	ctx := context.Background()
	p, err := Start(ctx, ProcessConfig{Executable: echoHandler(t), Dir: t.TempDir(),
		Env: []string{"MY_SETTING=kept", "sluice_admin_key=from-settings"}, SecretEnv: []string{"ORDERS_DB"}})
	require.NoError(t, err)
	defer p.Stop(context.Background())
	resp, err := p.Invoke(ctx, "env", Request{Data: map[string]json.RawMessage{}})
	require.NoError(t, err)
	out, ok := resp.Output("out")
	require.True(t, ok)
	var env map[string]string
	require.NoError(t, json.Unmarshal(out, &env))
	require.Equal(t, "kept", env["MY_SETTING"])
	require.NotEmpty(t, env["FUNCTIONS_CUSTOMHANDLER_PORT"])
	for _, secret := range []string{"admin-secret", "fn-secret", "sluice_000000000000", "nats-secret", "pg-secret", "nats-password-secret", "leaf-secret", "from-settings", "orders-db-secret"} {
		require.NotContains(t, string(out), secret)
	}
}
