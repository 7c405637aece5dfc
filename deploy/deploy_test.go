// Package deploy holds the ways to deploy Sluice: the Compose file of a
// 3-node NATS cluster, PostgreSQL and three instances (compose/), and
// Kubernetes manifests (kubernetes/); the Dockerfile is at the repository
// root. Its tests check them offline, as no tool that validates them needs
// no network: they build the binary as the Dockerfile does and check it is
// static, ask it which flags and variables `sluice serve` takes, and check
// every manifest's structure (strictly: an unknown field is an error),
// references (volumes, ports, Secrets, Services), probe paths against the
// HTTP API's routes, and the NATS configuration with the nats-server
// parser. See docs/deploy.md.
package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/gateway"
)

// root is the repository's root, seen from this package's directory.
const root = ".."

// stopBudget is the longest graceful stop of `sluice serve`: functions
// finish their batches within the host's ShutdownTimeout (30s by default,
// internal/host/host.go), then the HTTP server within 5s (App.stopParts in
// app.go). A container's grace period must be longer.
const stopBudget = 30*time.Second + 5*time.Second

// minNATSPayload is the max_payload the embedded engine configures
// (internal/engine, Config.MaxPayload's default): Sluice's retry-queue
// messages do not fit NATS's default 1 MiB (issue 17).
const minNATSPayload = 4 << 20

var tempDir string

func TestMain(m *testing.M) {
	var err error
	if tempDir, err = os.MkdirTemp("", "sluice-deploy-test"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(tempDir)
	os.Exit(code)
}

// dockerBuild is the Dockerfile's `RUN ... go build ...` line: its
// environment assignments and the arguments after `go build`.
type dockerBuild struct {
	env  map[string]string
	args []string
}

// dockerfile is what the tests read from the Dockerfile.
type dockerfile struct {
	build        dockerBuild
	stages       []string // FROM lines' images, in order
	final        []instruction
	finalFrom    string
	instructions []instruction
}

type instruction struct {
	cmd  string // upper case
	args string
	line int
}

// readDockerfile reads the Dockerfile's instructions, joining continued
// lines.
func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	var d dockerfile
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		cur.Reset()
		d.instructions = append(d.instructions, in)
		if in.cmd == "FROM" {
			d.stages = append(d.stages, in.args)
			d.final = nil
			d.finalFrom = strings.Fields(in.args)[0]
			continue
		}
		d.final = append(d.final, in)
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			require.Empty(t, d.build.args, "Dockerfile line %d: one go build only", n)
			words, err := shellWords(in.args)
			require.NoError(t, err, "Dockerfile line %d", n)
			d.build.env = map[string]string{}
			i := 0
			for ; i < len(words) && strings.Contains(words[i], "="); i++ {
				k, v, _ := strings.Cut(words[i], "=")
				d.build.env[k] = v
			}
			require.Equal(t, []string{"go", "build"}, words[i:i+2], "Dockerfile line %d: a RUN of go build, with environment assignments only before it", n)
			d.build.args = words[i+2:]
			require.NotContains(t, d.build.args, "&&", "Dockerfile line %d: go build alone in its RUN", n)
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, d.build.args, "the Dockerfile has no RUN go build line")
	return d
}

// shellWords splits a command line as sh does, for quotes only.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in := false
	var quote rune
	for _, c := range s {
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(c)
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// sluiceBinary builds the binary as the Dockerfile's go build line does
// (its flags and environment, for Linux), once per test run.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	d := readDockerfile(t)
	binOnce.Do(func() {
		args := slices.Clone(d.build.args)
		i := slices.Index(args, "-o")
		if i < 0 || i+1 >= len(args) {
			binErr = fmt.Errorf("the Dockerfile's go build has no -o: %q", args)
			return
		}
		binPath = filepath.Join(tempDir, "sluice")
		args[i+1] = binPath
		cmd := exec.Command("go", append([]string{"build"}, args...)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH)
		for k, v := range d.build.env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// runnable is the built binary when this machine can run it.
func runnable(t *testing.T) string {
	t.Helper()
	bin := sluiceBinary(t)
	if runtime.GOOS != "linux" {
		t.Skip("the image's binary is built for Linux; this test runs it, so only on Linux")
	}
	return bin
}

// TestDockerfileBuildsStaticBinary builds the binary with the Dockerfile's
// own command and checks that it needs no libc: an empty image can run it.
func TestDockerfileBuildsStaticBinary(t *testing.T) {
	d := readDockerfile(t)
	require.Equal(t, "0", d.build.env["CGO_ENABLED"], "the image has no libc: build with CGO_ENABLED=0")
	require.Equal(t, "./cmd/sluice", d.build.args[len(d.build.args)-1], "the Dockerfile builds ./cmd/sluice")

	f, err := elf.Open(sluiceBinary(t))
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "the binary names a dynamic loader: it would not run on an empty image")
		require.NotEqual(t, elf.PT_DYNAMIC, p.Type, "the binary is dynamically linked")
	}
	require.Nil(t, f.Section(".interp"))
	require.Nil(t, f.Section(".dynamic"))
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs, "shared libraries the binary needs")
}

// TestDockerfile checks the final image: nothing below it, a non-root
// user, the binary where ENTRYPOINT says, and flags and variables that
// sluice serve knows.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	require.GreaterOrEqual(t, len(d.stages), 2, "a build stage and the final one")
	require.Equal(t, "scratch", d.finalFrom, "the final stage needs no base image")

	byCmd := map[string][]instruction{}
	for _, in := range d.final {
		byCmd[in.cmd] = append(byCmd[in.cmd], in)
	}
	// The binary goes where the entrypoint runs it from.
	var entry []string
	require.Len(t, byCmd["ENTRYPOINT"], 1)
	require.NoError(t, jsonArray(byCmd["ENTRYPOINT"][0].args, &entry))
	require.Equal(t, []string{"/sluice"}, entry)
	out := d.build.args[slices.Index(d.build.args, "-o")+1]
	copied := false
	for _, in := range byCmd["COPY"] {
		f := strings.Fields(in.args)
		if len(f) == 3 && f[0] == "--from=build" && f[1] == out && f[2] == "/sluice" {
			copied = true
		}
	}
	require.True(t, copied, "COPY --from=build %s /sluice", out)
	var certs bool
	for _, in := range byCmd["COPY"] {
		certs = certs || strings.HasSuffix(in.args, "/etc/ssl/certs/ca-certificates.crt")
	}
	require.True(t, certs, "CA certificates, for TLS to NATS, PostgreSQL and webhooks")

	require.Len(t, byCmd["USER"], 1)
	user := byCmd["USER"][0].args
	uid, _, _ := strings.Cut(user, ":")
	require.NotContains(t, []string{"0", "root"}, uid, "a non-root user")
	_, err := strconv.Atoi(uid)
	require.NoError(t, err, "USER by number: the kubelet's runAsNonRoot can only verify a numeric user")

	help := serveHelp(t)
	env := map[string]string{}
	for _, in := range byCmd["ENV"] {
		words, err := shellWords(in.args)
		require.NoError(t, err)
		for _, w := range words {
			k, v, ok := strings.Cut(w, "=")
			require.True(t, ok, "ENV %s: use the KEY=value form", w)
			env[k] = v
		}
	}
	checkEnv(t, "Dockerfile", help, env)
	require.Len(t, byCmd["VOLUME"], 1)
	var vols []string
	require.NoError(t, jsonArray(byCmd["VOLUME"][0].args, &vols))
	require.Equal(t, []string{env["SLUICE_DATA_DIR"]}, vols, "the volume is the data directory")
	require.Len(t, byCmd["EXPOSE"], 1)
	require.Equal(t, portOf(t, env["SLUICE_HTTP"]), byCmd["EXPOSE"][0].args, "EXPOSE the port of SLUICE_HTTP")

	var cmd []string
	require.Len(t, byCmd["CMD"], 1)
	require.NoError(t, jsonArray(byCmd["CMD"][0].args, &cmd))
	checkCommand(t, "Dockerfile CMD", cmd)

	require.Len(t, byCmd["HEALTHCHECK"], 1)
	hc := byCmd["HEALTHCHECK"][0].args
	_, hcCmd, ok := strings.Cut(hc, "CMD ")
	require.True(t, ok, "HEALTHCHECK ... CMD [...]")
	var probe []string
	require.NoError(t, jsonArray(hcCmd, &probe))
	require.Equal(t, "/sluice", probe[0])
	checkCommand(t, "Dockerfile HEALTHCHECK", probe[1:])
	// Without --server, sluice health asks 127.0.0.1:7070.
	require.Equal(t, "7070", portOf(t, env["SLUICE_HTTP"]), "sluice health's default server port")
}

// TestDockerignore keeps what the build needs in the build context.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	needed := []string{"go.mod", "go.sum", "app.go", "cmd", "cmd/sluice", "cmd/sluice/main.go", "internal", "internal/web/static"}
	for _, line := range strings.Split(string(data), "\n") {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") || strings.HasPrefix(p, "!") {
			continue
		}
		p = strings.TrimPrefix(strings.TrimSuffix(p, "/"), "/")
		for _, n := range needed {
			m, err := filepath.Match(strings.ReplaceAll(p, "**/", ""), n)
			require.NoError(t, err, ".dockerignore: %s", p)
			require.False(t, m, ".dockerignore leaves out %s, which the build needs (pattern %s)", n, p)
		}
	}
}

func jsonArray(s string, out *[]string) error {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		return fmt.Errorf("%q: use the JSON array form (no shell in the image)", s)
	}
	words, err := shellWords(strings.NewReplacer("[", " ", "]", " ", ",", " ").Replace(s))
	*out = words
	return err
}

// flagInfo is a flag as --help shows it: its name and value type ("" for
// a boolean).
type flagInfo struct{ typ string }

// help is what a command's --help says.
type help struct {
	flags map[string]flagInfo
	env   map[string]bool // SLUICE_* variables named
}

var helpCache sync.Map // command → help

var flagLine = regexp.MustCompile(`^  -([a-z0-9-]+)(?: (\w+))?$`)
var envName = regexp.MustCompile(`SLUICE_[A-Z0-9_]+`)

// helpOf runs `sluice <command> --help` on the built binary and reads its
// flags and the SLUICE_ variables it names.
func helpOf(t *testing.T, command string) help {
	t.Helper()
	if h, ok := helpCache.Load(command); ok {
		return h.(help)
	}
	out, err := exec.Command(runnable(t), command, "--help").CombinedOutput()
	require.NoError(t, err, "sluice %s --help: %s", command, out)
	h := help{flags: map[string]flagInfo{}, env: map[string]bool{}}
	for _, line := range strings.Split(string(out), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			h.flags[m[1]] = flagInfo{typ: m[2]}
		}
		for _, v := range envName.FindAllString(line, -1) {
			h.env[v] = true
		}
	}
	require.NotEmpty(t, h.flags, "sluice %s --help shows no flags:\n%s", command, out)
	helpCache.Store(command, h)
	return h
}

func serveHelp(t *testing.T) help { return helpOf(t, "serve") }

// parsedCommand is a sluice command line: the subcommand and its flags'
// values (a boolean's is "true").
type parsedCommand struct {
	sub   string
	flags map[string][]string
}

func (c parsedCommand) value(name string) string {
	if v := c.flags[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// checkCommand checks a sluice command line (without the program name)
// against the subcommand's --help: every flag exists and its value has the
// flag's type.
func checkCommand(t *testing.T, where string, args []string) parsedCommand {
	t.Helper()
	require.NotEmpty(t, args, "%s: no sluice command", where)
	c := parsedCommand{sub: args[0], flags: map[string][]string{}}
	h := helpOf(t, c.sub)
	for i := 1; i < len(args); i++ {
		a := args[i]
		require.True(t, strings.HasPrefix(a, "-"), "%s: %q is not a flag (sluice %s takes none here)", where, a, c.sub)
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f, ok := h.flags[name]
		require.True(t, ok, "%s: sluice %s has no flag --%s", where, c.sub, name)
		if f.typ == "" {
			if !hasVal {
				val = "true"
			}
			_, err := strconv.ParseBool(val)
			require.NoError(t, err, "%s: --%s", where, name)
		} else if !hasVal {
			require.Less(t, i+1, len(args), "%s: --%s needs a value", where, name)
			i++
			val = args[i]
		}
		switch f.typ {
		case "duration":
			_, err := time.ParseDuration(val)
			require.NoError(t, err, "%s: --%s", where, name)
		case "int":
			_, err := strconv.Atoi(val)
			require.NoError(t, err, "%s: --%s", where, name)
		}
		c.flags[name] = append(c.flags[name], val)
	}
	return c
}

// checkEnv checks that the SLUICE_ variables given to a sluice serve
// container are ones it reads.
func checkEnv(t *testing.T, where string, h help, env map[string]string) {
	t.Helper()
	for k := range env {
		if strings.HasPrefix(k, "SLUICE_") {
			require.True(t, h.env[k], "%s: sluice serve reads no variable %s", where, k)
		}
	}
}

func portOf(t *testing.T, hostport string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(hostport)
	require.NoError(t, err, "%q", hostport)
	return port
}

// publicRoutes are the GET routes of the HTTP API that need no key, as
// the gateway registers them: where probes may point.
func publicRoutes(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, r := range gateway.NewServer(gateway.Config{}).Routes() {
		if path, ok := strings.CutPrefix(r.Pattern, "GET "); ok && r.Verb == "" && !strings.Contains(path, "{") {
			out[path] = true
		}
	}
	require.True(t, out["/healthz"], "the gateway's routes: %v", out)
	return out
}

// checkProbe checks that a probe of a sluice container asks a route the
// server answers without a key, on the port it listens on.
func checkProbe(t *testing.T, where, path string, port, httpPort string) {
	t.Helper()
	u, err := url.Parse(path)
	require.NoError(t, err, where)
	require.True(t, publicRoutes(t)[u.Path], "%s: probe path %s is not a route of the HTTP API that needs no key (routes: %v)", where, u.Path, publicRoutes(t))
	require.Equal(t, httpPort, port, "%s: the probe's port is not the one of --http", where)
}

// checkPublicHosts checks --public-host names as the server does, and
// that the names clients use, and IP addresses (probes), pass.
func checkPublicHosts(t *testing.T, where string, hosts []string, mustPass ...string) {
	t.Helper()
	g, err := auth.NewGuard(auth.GuardConfig{PublicHosts: hosts})
	require.NoError(t, err, "%s: public hosts %q", where, hosts)
	for _, h := range append(mustPass, "10.1.2.3:7070", "[fd00::1]:7070", "127.0.0.1:7070") {
		require.True(t, g.HostAllowed(h), "%s: a request for Host %s would be refused (public hosts %q)", where, h, hosts)
	}
	require.False(t, g.HostAllowed("evil.example:7070"))
}

// TestDocs keeps the deployment guide found from the README.
func TestDocs(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	require.Contains(t, string(readme), "(docs/deploy.md)", "the README links the deployment guide")
	guide, err := os.ReadFile(filepath.Join(root, "docs", "deploy.md"))
	require.NoError(t, err)
	for _, f := range []string{"deploy/compose/compose.yaml", "deploy/kubernetes/", "Dockerfile"} {
		require.Contains(t, string(guide), f)
	}
}
