package handler

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/service"
)

// HostVersion is the Azure Functions host version Sluice reports to
// handlers.
const HostVersion = "4.0.0-sluice"

// ProcessConfig says how to run a handler process.
type ProcessConfig struct {
	// Executable and Args start the process, in Dir.
	Executable string
	Args       []string
	Dir        string
	// AppRoot is the app folder (FUNCTIONS_APP_ROOT_PATH).
	AppRoot string
	// Env is added to this process's environment (app settings).
	Env []string
	// StartTimeout bounds the wait for the process to answer HTTP.
	// Default 30 s, as the Azure host.
	StartTimeout time.Duration
	// InvokeTimeout bounds one invocation's HTTP exchange (0: none; the
	// invocation's context still ends it).
	InvokeTimeout time.Duration
	// MaxRestartDelay bounds the backoff between restarts. Default 30 s.
	MaxRestartDelay time.Duration
	Logger          *slog.Logger
	// SecretEnv names more environment variables the process never gets
	// (secrets of the configuration: database URLs, tokens).
	SecretEnv []string
}

// Process runs a handler process and restarts it when it dies.
type Process struct {
	cfg ProcessConfig
	log *slog.Logger
	// client probes readiness; invocations go to its transport directly,
	// without the client's redirect and timeout machinery that they do
	// not use.
	client    *http.Client
	transport *http.Transport
	id        string
	// urls holds an endpoint for each function invoked, by name.
	urls sync.Map

	mu       sync.Mutex
	base     string        // http://127.0.0.1:<port>, "" while not ready
	pending  string        // the URL of the process being started
	ready    chan struct{} // closed when base is set; replaced on each restart
	lastExit error
	restarts int
	// inFlight counts the invocations running, by function: a line the
	// process writes is logged with the function when only one is running.
	inFlight map[string]int

	// life runs the supervisor from Start until Stop; cancelRun tells it
	// to terminate the process, killed says Stop had to kill it.
	life      service.Lifecycle
	cancelRun context.CancelFunc
	killed    error
}

// ErrNotRunning is returned by Invoke when the process is not answering.
var ErrNotRunning = errors.New("the handler process is not running")

// Start starts the process and waits until it answers HTTP on its port.
// The process is restarted with backoff whenever it exits, until Stop.
func Start(ctx context.Context, cfg ProcessConfig) (*Process, error) {
	cfg.StartTimeout = cmp.Or(cfg.StartTimeout, 30*time.Second)
	cfg.MaxRestartDelay = cmp.Or(cfg.MaxRestartDelay, 30*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	transport := &http.Transport{
		MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute,
		// A request up to this size is written at once, header and body,
		// by one system call (a batch of 100 events is about 50 KB);
		// with the default 4 KB, the body of a larger one goes apart, in
		// copies through a 32 KB buffer allocated for each request.
		WriteBufferSize: writeBuffer,
	}
	p := &Process{
		cfg: cfg, log: cfg.Logger.With("handler", cfg.Executable),
		// Redirects are the handler's answer, not followed.
		client: &http.Client{
			Transport:     transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		transport: transport,
		id:        newGUID(),
		ready:     make(chan struct{}),
	}
	cmd, exited, err := p.launch()
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, exited); err != nil {
		kill(cmd)
		<-exited
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	p.cancelRun = cancel
	p.life.Go(func() { p.supervise(runCtx, cmd, exited) })
	return p, nil
}

// launch starts the process on a free port.
func (p *Process) launch() (*exec.Cmd, chan error, error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, fmt.Errorf("handler: find a free port: %w", err)
	}
	cmd := exec.Command(p.cfg.Executable, p.cfg.Args...)
	cmd.Dir = p.cfg.Dir
	ps := strconv.Itoa(port)
	cmd.Env = withoutSecrets(append(os.Environ(), p.cfg.Env...), p.cfg.SecretEnv)
	cmd.Env = append(cmd.Env,
		"FUNCTIONS_CUSTOMHANDLER_PORT="+ps, "FUNCTIONS_HTTPWORKER_PORT="+ps,
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID="+p.id, "FUNCTIONS_HTTPWORKER_ID="+p.id,
		"FUNCTIONS_APP_ROOT_PATH="+p.cfg.AppRoot, "FUNCTIONS_WORKER_RUNTIME=custom")
	// Its own process group, so Stop reaches what it starts; on Linux it
	// dies with Sluice, even on SIGKILL (see procattr_*.go).
	cmd.SysProcAttr = processAttributes()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("handler: start %s: %w", p.cfg.Executable, err)
	}
	var pipes sync.WaitGroup
	pipes.Go(func() { p.logLines(stdout, slog.LevelInfo, "stdout") })
	pipes.Go(func() { p.logLines(stderr, slog.LevelWarn, "stderr") })
	exited := make(chan error, 1)
	go func() {
		pipes.Wait()
		exited <- cmd.Wait()
	}()
	p.mu.Lock()
	p.base = ""
	p.pending = "http://127.0.0.1:" + ps
	p.mu.Unlock()
	return cmd, exited, nil
}

func (p *Process) logLines(r io.Reader, level slog.Level, stream string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		attrs := []any{"stream", stream}
		if fns := p.running(); len(fns) == 1 {
			attrs = append(attrs, "function", fns[0])
		} else if len(fns) > 1 {
			attrs = append(attrs, "running", strings.Join(fns, ","))
		}
		p.log.Log(context.Background(), level, sc.Text(), attrs...)
	}
}

// running lists the functions with an invocation in flight, sorted.
func (p *Process) running() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	fns := make([]string, 0, len(p.inFlight))
	for f := range p.inFlight {
		fns = append(fns, f)
	}
	slices.Sort(fns)
	return fns
}

// track counts an invocation of function in flight until the returned
// func is called.
func (p *Process) track(function string) func() {
	p.mu.Lock()
	if p.inFlight == nil {
		p.inFlight = map[string]int{}
	}
	p.inFlight[function]++
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.inFlight[function]--; p.inFlight[function] == 0 {
			delete(p.inFlight, function)
		}
	}
}

// waitReady polls GET / until the process answers anything, as the Azure
// host does.
func (p *Process) waitReady(ctx context.Context, exited chan error) error {
	p.mu.Lock()
	url := p.pending
	p.mu.Unlock()
	deadline := time.NewTimer(p.cfg.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
		if resp, err := p.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			p.mu.Lock()
			p.base = url
			close(p.ready)
			p.mu.Unlock()
			p.log.Info("handler process ready", "url", url)
			return nil
		}
		select {
		case err := <-exited:
			exited <- err // for the caller
			return fmt.Errorf("handler: %s exited before it listened on FUNCTIONS_CUSTOMHANDLER_PORT (%v); see its output in the log", p.cfg.Executable, exitText(err))
		case <-deadline.C:
			return fmt.Errorf("handler: %s did not answer HTTP on %s within %s: it must listen on 127.0.0.1 at the port in FUNCTIONS_CUSTOMHANDLER_PORT", p.cfg.Executable, url, p.cfg.StartTimeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// supervise restarts the process whenever it exits, with backoff, until
// ctx ends.
func (p *Process) supervise(ctx context.Context, cmd *exec.Cmd, exited chan error) {
	delay := 100 * time.Millisecond
	for {
		started := time.Now()
		select {
		case <-ctx.Done():
			p.terminate(cmd, exited)
			return
		case err := <-exited:
			p.mu.Lock()
			p.base, p.lastExit = "", fmt.Errorf("%w: it exited (%s)", ErrNotRunning, exitText(err))
			p.ready = make(chan struct{})
			p.restarts++
			p.mu.Unlock()
			p.client.CloseIdleConnections()
			if time.Since(started) > time.Minute {
				delay = 100 * time.Millisecond
			}
			p.log.Error("handler process exited; restarting", "err", exitText(err), "in", delay)
		}
		for {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			delay = min(delay*2, p.cfg.MaxRestartDelay)
			var err error
			if cmd, exited, err = p.launch(); err == nil {
				if err = p.waitReady(ctx, exited); err == nil {
					break
				}
				kill(cmd)
				<-exited
			}
			p.mu.Lock()
			p.lastExit = fmt.Errorf("%w: %v", ErrNotRunning, err)
			p.mu.Unlock()
			p.log.Error("handler process did not start; retrying", "err", err, "in", delay)
		}
	}
}

// terminate asks the process (group) to stop, and kills it after 5 s or
// on a hard stop.
func (p *Process) terminate(cmd *exec.Cmd, exited chan error) {
	askToStop(cmd)
	asked := time.Now()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	why := "did not exit within 5s of SIGTERM"
	select {
	case <-exited:
		return
	case <-t.C:
	case <-p.life.Context().Done():
		why = "was still running when the stop was cut short"
	}
	kill(cmd)
	<-exited
	p.killed = fmt.Errorf("handler: %s %s (%s after SIGTERM): killed", p.cfg.Executable, why, time.Since(asked).Round(time.Millisecond))
}

// Stop stops the process and its restarts: SIGTERM, then SIGKILL after 5 s
// or once ctx ends, whichever comes first. It returns an error when the
// process had to be killed. Safe to call twice.
func (p *Process) Stop(ctx context.Context) error {
	return p.life.Stop(ctx,
		func(context.Context) { p.cancelRun() },
		func(context.Context) error { return p.killed })
}

// Stopped is closed once Stop has finished.
func (p *Process) Stopped() <-chan struct{} { return p.life.Stopped() }

// Restarts is how many times the process exited and was started again.
func (p *Process) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// baseURL waits (within ctx and StartTimeout) for a running process.
func (p *Process) baseURL(ctx context.Context) (string, error) {
	p.mu.Lock()
	base, ready, last := p.base, p.ready, p.lastExit
	p.mu.Unlock()
	if base != "" {
		return base, nil
	}
	t := time.NewTimer(p.cfg.StartTimeout)
	defer t.Stop()
	select {
	case <-ready:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.base, nil
	case <-t.C:
		return "", cmp.Or(last, ErrNotRunning)
	case <-ctx.Done():
		return "", errors.Join(ctx.Err(), last)
	}
}

// Invoke POSTs a request to /<function> and reads the answer. A transport
// error, a status outside 2xx or an unreadable answer fails the invocation.
//
// The request's values are sent as they are: they must be JSON as
// json.Marshal writes it (compact, HTML-safe), as the payload functions
// make them; a nil value is sent as null.
func (p *Process) Invoke(ctx context.Context, function string, req Request) (Response, error) {
	defer p.track(function)()
	body := appendRequest(make([]byte, 0, requestSize(req)), req)
	if p.cfg.InvokeTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.InvokeTimeout)
		defer cancel()
	}
	resp, err := p.post(ctx, function, body)
	if err != nil {
		return Response{}, fmt.Errorf("invoke %s on the handler: %w", function, err)
	}
	defer resp.Body.Close()
	answer, err := readAnswer(resp)
	if err != nil {
		return Response{}, fmt.Errorf("read the handler's answer for %s: %w", function, err)
	}
	if len(answer) > maxAnswer {
		return Response{}, fmt.Errorf("the handler's answer for %s is over %d MiB", function, maxAnswer>>20)
	}
	r, err := ParseResponse(resp.StatusCode, answer)
	if err != nil {
		return r, fmt.Errorf("function %s: %w", function, err)
	}
	return r, nil
}

// crashRetries is how many times an invocation is sent again when the
// process exits while it is being sent or run. A one-off crash is then
// invisible (the input is not failed or dead-lettered for it), and an input
// that crashes the handler every time still fails, and meets the retry
// policy, instead of crashing it forever.
const crashRetries = 2

// post sends an invocation, again (after the restart) if the process
// exits meanwhile.
func (p *Process) post(ctx context.Context, function string, body []byte) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		base, err := p.baseURL(ctx)
		if err != nil {
			return nil, err
		}
		u, err := p.endpoint(base, function)
		if err != nil {
			return nil, err
		}
		header := invocationHeader.Clone()
		header[invocationIDKey][0] = newGUID()
		hreq := (&http.Request{
			Method: http.MethodPost, URL: u, Host: u.Host, Header: header,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			// As http.NewRequest makes it: the transport sees a body in
			// memory, and writes it with the header at once.
			Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		}).WithContext(ctx)
		resp, err := p.transport.RoundTrip(hreq)
		if err == nil || ctx.Err() != nil || !p.awaitExit(ctx, base) {
			return resp, err
		}
		if attempt == crashRetries {
			return nil, fmt.Errorf("the handler process exited during the invocation, %d times: %w", attempt+1, err)
		}
		p.log.Warn("the handler process exited during an invocation; sending it again once it is back", "function", function, "err", err)
	}
}

// invocationHeader is the header of every invocation, cloned for each,
// whose invocation ID is then set.
var invocationHeader = http.Header{
	"Content-Type":  {"application/json"},
	invocationIDKey: {""},
	hostVersionKey:  {HostVersion},
	"User-Agent":    {"Azure-Functions-Host/" + HostVersion},
}

var (
	invocationIDKey = http.CanonicalHeaderKey("X-Azure-Functions-InvocationId")
	hostVersionKey  = http.CanonicalHeaderKey("X-Azure-Functions-HostVersion")
)

// endpoint is the URL of a function on the process at base.
type endpoint struct {
	base string
	url  *url.URL
}

// endpoint returns the URL of function on the process at base, parsed
// once while the process runs. Requests share it: the transport only
// reads it.
func (p *Process) endpoint(base, function string) (*url.URL, error) {
	if e, ok := p.urls.Load(function); ok && e.(endpoint).base == base {
		return e.(endpoint).url, nil
	}
	u, err := url.Parse(base + "/" + function)
	if err != nil {
		return nil, err
	}
	p.urls.Store(function, endpoint{base, u})
	return u, nil
}

// requestSize is the length of r's JSON, or about.
func requestSize(r Request) int {
	n := len(`{"Data":{},"Metadata":{}}`)
	for _, values := range []map[string]json.RawMessage{r.Data, r.Metadata} {
		for k, v := range values {
			n += len(k) + len(v) + len(`"":,`)
		}
	}
	return n
}

// readAnswer reads the body of a handler's answer, up to a byte more
// than maxAnswer.
func readAnswer(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= maxAnswer {
		// The transport ends the body there.
		b := make([]byte, n)
		_, err := io.ReadFull(resp.Body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
}

// awaitExit waits up to a second for the supervisor to see that the
// process at base exited, and reports whether it did.
func (p *Process) awaitExit(ctx context.Context, base string) bool {
	for range 100 {
		p.mu.Lock()
		gone := p.base != base
		p.mu.Unlock()
		if gone {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return false
}

// writeBuffer is the size of a connection's write buffer.
const writeBuffer = 64 << 10

// maxAnswer bounds a handler's answer.
const maxAnswer = 64 << 20

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// secretEnv are Sluice's own secrets, which a handler process never gets:
// keys, and URLs that may carry passwords.
var secretEnv = []string{
	"SLUICE_ADMIN_KEY", "SLUICE_FUNCTION_KEYS", "SLUICE_KEY",
	"SLUICE_NATS_URL", "SLUICE_NATS_TOKEN", "SLUICE_NATS_USER", "SLUICE_NATS_PASSWORD",
	"SLUICE_NATS_LEAF_REMOTE", "SLUICE_DOCSTORE",
}

// withoutSecrets drops Sluice's secrets, and the variables named in more,
// from an environment.
func withoutSecrets(env []string, more []string) []string {
	secret := func(s, name string) bool { return strings.EqualFold(s, name) }
	return slices.DeleteFunc(env, func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.ContainsFunc(secretEnv, func(s string) bool { return secret(s, name) }) ||
			slices.ContainsFunc(more, func(s string) bool { return secret(s, name) })
	})
}
