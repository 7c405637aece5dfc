package main

// These tests run the sluice binary as real processes and check issue 14's
// protections from the outside (DESIGN.md, invariant 8): one process owns a
// data directory; nothing listens beyond loopback without keys or
// credentials; TLS on the HTTP API and the NATS listener; slow clients are
// cut off; secrets stay out of the output. Waits poll for a state and are
// bounded by processWait only to fail instead of hanging.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/tlstest"
)

// processWait bounds every wait on a child process. It is a guard against
// hanging, never the thing a test measures.
const processWait = 90 * time.Second

// apiKeyRE matches a Sluice API key (auth.FormatToken).
var apiKeyRE = regexp.MustCompile(`sluice_[0-9a-f]{12}_[0-9a-f]{64}`)

// TestSecurityProcesses builds the binary once and runs the process tests
// in parallel against it.
func TestSecurityProcesses(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sluice")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	for _, tc := range []struct {
		name string
		run  func(t *testing.T, bin string)
	}{
		{"DataDirLock", testDataDirLock},
		{"HTTPBeyondLoopbackRefusedWithoutKey", testHTTPRefusedWithoutKey},
		{"HTTPBeyondLoopbackWithAdminKeyFile", testHTTPAdminKeyFile},
		{"HTTPBeyondLoopbackInsecure", testHTTPInsecure},
		{"NATSListenerBeyondLoopback", testNATSListener},
		{"HTTPOverTLS", testHTTPOverTLS},
		{"SlowClientDisconnected", testSlowClient},
		{"SecretsNeverPrinted", testSecretsNeverPrinted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, bin)
		})
	}
}

// A second instance on a data directory in use is refused and names the
// owner, as is sluice key create on it; a SIGKILLed owner leaves no lock
// behind (the LOCK file stays, the flock goes with the process).
func testDataDirLock(t *testing.T, bin string) {
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	first := startProcess(t, bin, nil, "dev", "--no-demo", "--data-dir", dir, "--http", addr)
	first.waitReady(t, nil, "http://"+addr+"/readyz")

	code, _, stderr := runProcess(t, bin, nil, "dev", "--no-demo", "--data-dir", dir, "--http", freeLoopbackAddr(t))
	require.NotZero(t, code, "a second dev on a data directory in use must fail: %s", stderr)
	requireInUseBy(t, stderr, first.pid())
	require.Contains(t, stderr, "stop it or use --data-dir")

	code, stdout, stderr := runProcess(t, bin, nil, "key", "create", "--data-dir", dir, "--name", "ops", "--scope", "admin")
	require.NotZero(t, code, "key create --data-dir on a running server's directory must fail: %s", stdout)
	requireInUseBy(t, stderr, first.pid())
	require.Contains(t, stderr, "manage keys through it, without --data-dir")
	require.NotRegexp(t, apiKeyRE, stdout, "no key may be made")

	// The refused processes left the owner alone.
	requireStatus(t, nil, "GET", "http://"+addr+"/readyz", "", http.StatusOK)

	first.kill(t)
	require.FileExists(t, filepath.Join(dir, "LOCK"), "SIGKILL leaves the lock file; only the flock goes")
	addr = freeLoopbackAddr(t)
	again := startProcess(t, bin, nil, "dev", "--no-demo", "--data-dir", dir, "--http", addr)
	again.waitReady(t, nil, "http://"+addr+"/readyz")
}

// requireInUseBy checks that msg is the data directory lock's refusal and
// names pid as the owner.
func requireInUseBy(t *testing.T, msg string, pid int) {
	t.Helper()
	m := regexp.MustCompile(`is in use by pid (\d+)\b`).FindStringSubmatch(msg)
	require.NotNil(t, m, "not the data directory's refusal: %s", msg)
	require.Equal(t, strconv.Itoa(pid), m[1], msg)
}

// Without any key, serve refuses an HTTP address beyond loopback and says
// how to make one; the key made with sluice key create on the stopped
// server's data directory is then required and accepted.
func testHTTPRefusedWithoutKey(t *testing.T, bin string) {
	dir := t.TempDir()
	code, _, stderr := runProcess(t, bin, nil, "serve", "--data-dir", dir, "--http", "0.0.0.0:"+freePort(t))
	require.NotZero(t, code, "serve beyond loopback without keys must fail: %s", stderr)
	for _, hint := range []string{"listens beyond this machine", "--admin-key-file",
		"sluice key create --name admin --scope admin --data-dir " + dir, "--insecure"} {
		require.Contains(t, stderr, hint)
	}

	code, stdout, stderr := runProcess(t, bin, nil, "key", "create", "--data-dir", dir, "--name", "admin", "--scope", "admin")
	require.Zero(t, code, "key create on a stopped server's directory: %s", stderr)
	key := apiKeyRE.FindString(stdout)
	require.NotEmpty(t, key, "key create prints the key: %s", stdout)

	port := freePort(t)
	base := "http://127.0.0.1:" + port
	srv := startProcess(t, bin, nil, "serve", "--data-dir", dir, "--http", "0.0.0.0:"+port)
	srv.waitReady(t, nil, base+"/readyz")
	requireStatus(t, nil, "GET", base+"/api/v1/hubs", "", http.StatusUnauthorized)
	requireStatus(t, nil, "GET", base+"/api/v1/hubs", "Bearer "+key, http.StatusOK)
	const hex = "0123456789abcdef"
	wrong := key[:len(key)-1] + string(hex[(strings.IndexByte(hex, key[len(key)-1])+1)%len(hex)])
	requireStatus(t, nil, "GET", base+"/api/v1/hubs", "Bearer "+wrong, http.StatusUnauthorized)
}

// --admin-key-file makes the first key of a server beyond loopback: the file
// is created (0600) with a key the API then requires, and the CLI takes it
// from SLUICE_KEY.
func testHTTPAdminKeyFile(t *testing.T, bin string) {
	keyFile := filepath.Join(t.TempDir(), "secrets", "admin.key")
	port := freePort(t)
	base := "http://127.0.0.1:" + port
	srv := startProcess(t, bin, nil, "serve", "--data-dir", t.TempDir(), "--http", "0.0.0.0:"+port, "--admin-key-file", keyFile)
	srv.waitReady(t, nil, base+"/readyz")

	st, err := os.Stat(keyFile)
	require.NoError(t, err, "the admin key file is created")
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	b, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	key := strings.TrimSpace(string(b))
	require.Regexp(t, "^"+apiKeyRE.String()+"$", key)
	require.NotContains(t, srv.output(), key, "the key is written to the file only")

	requireStatus(t, nil, "GET", base+"/api/v1/hubs", "", http.StatusUnauthorized)
	requireStatus(t, nil, "GET", base+"/api/v1/hubs", "Bearer "+key, http.StatusOK)

	code, _, stderr := runProcess(t, bin, []string{"SLUICE_KEY=" + key}, "hub", "list", "--server", base)
	require.Zero(t, code, "hub list with SLUICE_KEY: %s", stderr)
	code, _, stderr = runProcess(t, bin, nil, "hub", "list", "--server", base)
	require.NotZero(t, code, "hub list without a key must fail")
	require.Contains(t, stderr, "SLUICE_KEY")
}

// --insecure lets serve listen beyond loopback without keys, and says so.
func testHTTPInsecure(t *testing.T, bin string) {
	port := freePort(t)
	srv := startProcess(t, bin, nil, "serve", "--data-dir", t.TempDir(), "--http", "0.0.0.0:"+port, "--insecure")
	srv.waitReady(t, nil, "http://127.0.0.1:"+port+"/readyz")
	require.Contains(t, srv.output(), "INSECURE")
	requireStatus(t, nil, "GET", "http://127.0.0.1:"+port+"/api/v1/hubs", "", http.StatusOK)
}

// The embedded NATS server listens beyond loopback only with client
// credentials and TLS; then only clients with the token and the CA reach
// its JetStream.
func testNATSListener(t *testing.T, bin string) {
	port := freePort(t)
	listen := "0.0.0.0:" + port
	code, _, stderr := runProcess(t, bin, nil, "dev", "--no-demo", "--data-dir", t.TempDir(), "--http", freeLoopbackAddr(t), "--nats-listen", listen)
	require.NotZero(t, code, "--nats-listen beyond loopback without credentials must fail: %s", stderr)
	require.Contains(t, stderr, "--nats-listen "+listen+" exposes every stream beyond this machine without client authentication or TLS")
	require.Contains(t, stderr, "--nats-token")
	require.Contains(t, stderr, "--insecure")

	const token = "s3cret-nats-token"
	code, _, stderr = runProcess(t, bin, nil, "dev", "--no-demo", "--data-dir", t.TempDir(), "--http", freeLoopbackAddr(t), "--nats-listen", listen, "--nats-token", token)
	require.NotZero(t, code, "a token without TLS must fail: %s", stderr)
	require.Contains(t, stderr, "exposes every stream beyond this machine without TLS")

	pki := tlstest.New(t)
	addr := freeLoopbackAddr(t)
	srv := startProcess(t, bin, nil, "dev", "--no-demo", "--data-dir", t.TempDir(), "--http", addr, "--nats-listen", listen,
		"--nats-token", token, "--nats-tls-cert", pki.ServerCert, "--nats-tls-key", pki.ServerKey)
	srv.waitReady(t, nil, "http://"+addr+"/readyz")

	url := "tls://127.0.0.1:" + port
	nc, err := nats.Connect(url, nats.Token(token), nats.RootCAs(pki.CA), nats.Timeout(processWait))
	require.NoError(t, err, "a client with the token and the CA connects")
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), processWait)
	defer cancel()
	_, err = js.KeyValue(ctx, "sluice-keys")
	require.NoError(t, err, "the client reaches this instance's JetStream")

	for name, opts := range map[string][]nats.Option{
		"no token":    {nats.RootCAs(pki.CA)},
		"wrong token": {nats.Token("not-" + token), nats.RootCAs(pki.CA)},
		"untrusted":   {nats.Token(token), nats.RootCAs(tlstest.New(t).CA)},
	} {
		nc, err := nats.Connect(url, append(opts, nats.Timeout(processWait))...)
		if err == nil {
			nc.Close()
		}
		require.Error(t, err, "a client with %s must be refused", name)
	}
	nc2, err := nats.Connect("nats://127.0.0.1:"+port, nats.Token(token), nats.Timeout(processWait))
	if err == nil {
		nc2.Close()
	}
	require.Error(t, err, "a client without TLS must be refused")
	require.NotContains(t, srv.output(), token)
}

// --tls-cert/--tls-key serve the HTTP API over TLS only; the CLI trusts it
// with --cacert and says what to do without.
func testHTTPOverTLS(t *testing.T, bin string) {
	pki := tlstest.New(t)
	addr := freeLoopbackAddr(t)
	base := "https://" + addr
	srv := startProcess(t, bin, nil, "dev", "--no-demo", "--data-dir", t.TempDir(), "--http", addr, "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey)
	trusting := &http.Client{Timeout: processWait, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool, MinVersion: tls.VersionTLS12}}}
	srv.waitReady(t, trusting, base+"/readyz")
	require.Contains(t, srv.output(), "HTTP API at "+base)

	plain := &http.Client{Timeout: processWait}
	resp, err := plain.Get("http://" + addr + "/readyz")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP gets no answer of the API: %s", body)
		require.Contains(t, string(body), "HTTPS")
	}
	_, err = plain.Get(base + "/readyz")
	require.ErrorAs(t, err, new(x509.UnknownAuthorityError), "a client that does not trust the CA fails")

	code, _, stderr := runProcess(t, bin, nil, "hub", "create", "secure", "--server", base, "--cacert", pki.CA)
	require.Zero(t, code, "hub create over https with --cacert: %s", stderr)
	code, stdout, stderr := runProcess(t, bin, []string{"SLUICE_CACERT=" + pki.CA}, "hub", "list", "--server", base)
	require.Zero(t, code, "hub list over https with SLUICE_CACERT: %s", stderr)
	require.Contains(t, stdout, "secure")

	code, _, stderr = runProcess(t, bin, nil, "hub", "list", "--server", base)
	require.NotZero(t, code, "hub list over https without the CA must fail")
	require.Contains(t, stderr, "certificate")
	require.Contains(t, stderr, "--cacert")
	code, _, stderr = runProcess(t, bin, nil, "hub", "list", "--server", "http://"+addr)
	require.NotZero(t, code, "hub list over plain HTTP must fail")
	require.Contains(t, stderr, "HTTPS")
}

// A client that sends its request body slower than --http-read-timeout
// allows is disconnected, as is an idle keep-alive connection after
// --http-idle-timeout; others are served as before.
func testSlowClient(t *testing.T, bin string) {
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	srv := startProcess(t, bin, nil, "dev", "--no-demo", "--data-dir", t.TempDir(), "--http", addr, "--http-read-timeout", "1s", "--http-idle-timeout", "1s")
	srv.waitReady(t, nil, base+"/readyz")
	code, _, stderr := runProcess(t, bin, nil, "hub", "create", "slow", "--server", base)
	require.Zero(t, code, stderr)

	// The publish route reads the whole body, which never comes: only the
	// read timeout ends the request. (Well under MaxEventBytes, so that no
	// size check answers at once.)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /api/v1/hubs/slow/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n", addr)
	require.NoError(t, err)
	for _, part := range []string{`{"n":`, `1,"pad":"`, `xxxx`} {
		_, err := conn.Write([]byte(part))
		require.NoError(t, err)
	}
	answer := readUntilClosed(t, conn, "a request whose body does not come")
	if len(answer) > 0 {
		// An answer, if any, says why: not another refusal that came at once.
		require.Regexp(t, `^HTTP/1\.1 [45]\d\d `, string(answer))
		require.Contains(t, strings.ToLower(string(answer)), "timeout", "the request ended for the read timeout")
	}

	idle, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer idle.Close()
	_, err = fmt.Fprintf(idle, "GET /readyz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	require.NoError(t, err)
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, readUntilClosed(t, &bufConn{Conn: idle, r: br}, "an idle keep-alive connection"))

	// Clients that keep up are still served.
	requireStatus(t, nil, "GET", base+"/readyz", "", http.StatusOK)
	code, stdout, stderr := runProcess(t, bin, nil, "hub", "send", "slow", `{"n":2}`, "--server", base)
	require.Zero(t, code, stderr)
	require.Contains(t, stdout, "stored in partition")
}

// bufConn reads through a bufio.Reader that may hold buffered bytes.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// readUntilClosed reads conn until the server closes it, and returns what
// it sent. It fails if the server keeps it open for processWait.
func readUntilClosed(t *testing.T, conn net.Conn, what string) []byte {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(processWait)))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept %s open for %s", what, processWait)
	}
	if err != nil {
		require.ErrorIs(t, err, syscall.ECONNRESET, "%s: the server closes the connection", what)
	}
	return b
}

// Passwords and tokens given in URLs, flags or DSNs never reach the output
// of a server that fails to start because of them.
func testSecretsNeverPrinted(t *testing.T, bin string) {
	// A NATS server that refuses every credential Sluice is given.
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, Authorization: "the-only-token", NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	require.True(t, ns.ReadyForConnections(processWait), "test NATS server")
	refusing := strings.TrimPrefix(ns.ClientURL(), "nats://")
	closed := freeLoopbackAddr(t) // nothing listens there

	for _, tc := range []struct {
		name, secret string
		args         []string
		because      string // in the output: it failed for the reason meant
	}{
		{"nats-url password, refused", "SECRETPW", []string{"--nats-url", "nats://user:SECRETPW@" + refusing}, "Authorization Violation"},
		{"nats-url password, unreachable", "SECRETPW", []string{"--nats-url", "nats://user:SECRETPW@" + closed}, "no servers available"},
		{"nats-url token, refused", "SECRETTK", []string{"--nats-url", "nats://SECRETTK@" + refusing}, "Authorization Violation"},
		{"nats-token flag, refused", "SECRETTK", []string{"--nats-url", "nats://" + refusing, "--nats-token", "SECRETTK"}, "Authorization Violation"},
		{"nats-password flag, refused", "SECRETPW", []string{"--nats-url", "nats://" + refusing, "--nats-user", "u", "--nats-password", "SECRETPW"}, "Authorization Violation"},
		{"docstore URL password", "SECRETPG", []string{"--docstore", "postgres://u:SECRETPG@" + closed + "/db"}, "document store"},
		{"docstore password parameter", "SECRETPG", []string{"--docstore", "postgres://u@" + closed + "/db?password=SECRETPG"}, "document store"},
		{"docstore sslpassword parameter", "SECRETPG", []string{"--docstore", "postgres://u@" + closed + "/db?sslpassword=SECRETPG&sslmode=bogus"}, "document store"},
		{"docstore unparsable URL", "SECRETPG", []string{"--docstore", "postgres://u:SECRETPG@" + closed + ":x/db"}, "document store"},
		{"docstore keyword/value string", "SECRETPG", []string{"--docstore", "host=127.0.0.1 port=1 user=u password=SECRETPG dbname=db"}, "give a PostgreSQL URL"},
		{"docstore other URL", "SECRETPG", []string{"--docstore", "mysql://u:SECRETPG@" + closed + "/db"}, "give a PostgreSQL URL"},
	} {
		args := append([]string{"serve", "--data-dir", t.TempDir(), "--http", freeLoopbackAddr(t)}, tc.args...)
		code, stdout, stderr := runProcess(t, bin, nil, args...)
		require.NotZero(t, code, "%s: serve must fail: %s", tc.name, stderr)
		require.Contains(t, stderr, tc.because, tc.name)
		require.NotContains(t, stderr, tc.secret, tc.name)
		require.NotContains(t, stdout, tc.secret, tc.name)
	}

	// Key commands acting on the store directly take the same URLs.
	code, stdout, stderr := runProcess(t, bin, nil, "key", "list", "--nats-url", "nats://user:SECRETPW@"+refusing)
	require.NotZero(t, code, "key list with refused credentials must fail: %s", stdout)
	require.Contains(t, stderr, "Authorization Violation")
	require.NotContains(t, stderr+stdout, "SECRETPW")
}

// process is a sluice child process that runs until the test ends.
type process struct {
	cmd                 *exec.Cmd
	stdoutPath, errPath string
	exited              chan struct{}
	err                 error
	killed              bool
}

// startProcess starts bin with args in a scratch directory (so that no
// sluice.yaml or data of the repository is used) and the environment without
// SLUICE_* variables, plus env. When the test ends it is stopped with
// SIGTERM and must exit cleanly, unless the test killed it; its output is
// logged if the test failed.
func startProcess(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	dir := t.TempDir()
	p := &process{stdoutPath: filepath.Join(dir, "stdout"), errPath: filepath.Join(dir, "stderr"), exited: make(chan struct{})}
	stdout, err := os.Create(p.stdoutPath)
	require.NoError(t, err)
	stderr, err := os.Create(p.errPath)
	require.NoError(t, err)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(processEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = stdout, stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
			if !p.killed {
				t.Errorf("sluice %s exited before the test ended: %v", args[0], p.err)
			}
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
				if p.err != nil {
					t.Errorf("sluice %s did not exit cleanly on SIGTERM: %v", args[0], p.err)
				}
			case <-time.After(processWait):
				t.Errorf("sluice %s did not exit within %s of SIGTERM; killed", args[0], processWait)
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		}
		if t.Failed() {
			t.Logf("output of sluice %s:\n%s", strings.Join(args, " "), p.output())
		}
	})
	return p
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// output is what the process wrote so far, standard output then error.
func (p *process) output() string {
	o, _ := os.ReadFile(p.stdoutPath)
	e, _ := os.ReadFile(p.errPath)
	return string(o) + string(e)
}

// kill sends SIGKILL and waits for the process to end.
func (p *process) kill(t *testing.T) {
	t.Helper()
	p.killed = true
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.exited
}

// waitReady polls url until it answers 200, and fails if the process
// exits first. client nil is a plain HTTP client.
func (p *process) waitReady(t *testing.T, client *http.Client, url string) {
	t.Helper()
	if client == nil {
		client = &http.Client{Timeout: processWait}
	}
	deadline := time.Now().Add(processWait)
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
			t.Fatalf("sluice exited before %s answered (%v):\n%s", url, p.err, p.output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within %s (last: %v)", url, processWait, err)
		}
	}
}

// runProcess runs bin to its end and returns its exit code and output.
func runProcess(t *testing.T, bin string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(processEnv(), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("sluice %s did not exit within %s:\n%s%s", strings.Join(args, " "), processWait, o.String(), e.String())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), o.String(), e.String()
	}
	require.NoError(t, err, "run sluice %s", strings.Join(args, " "))
	return 0, o.String(), e.String()
}

// processEnv is the test's environment without the SLUICE_* variables
// sluice takes defaults from.
func processEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return env
}

// requireStatus sends a request with an Authorization header (when auth is
// set) and checks the answer's status.
func requireStatus(t *testing.T, client *http.Client, method, url, auth string, want int) {
	t.Helper()
	if client == nil {
		client = &http.Client{Timeout: processWait}
	}
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, url, body)
}

// freeLoopbackAddr is a 127.0.0.1 address whose port was free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	return "127.0.0.1:" + freePort(t)
}

// freePort is a TCP port that was free on every interface a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "0.0.0.0:0")
	require.NoError(t, err)
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
