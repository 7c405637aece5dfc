package deploy

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The Compose file's model: the fields it uses. Decoding is strict, so a
// misspelt or misplaced field is an error (only top-level x- extensions
// are free).
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]*struct{}      `yaml:"volumes"`
	Configs  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"configs"`
	Extensions map[string]any `yaml:",inline"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command         []string          `yaml:"command"`
	Hostname        string            `yaml:"hostname"`
	Environment     map[string]string `yaml:"environment"`
	Ports           []string          `yaml:"ports"`
	Volumes         []string          `yaml:"volumes"`
	Restart         string            `yaml:"restart"`
	StopSignal      string            `yaml:"stop_signal"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
	Configs         []struct {
		Source string `yaml:"source"`
		Target string `yaml:"target"`
	} `yaml:"configs"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
}

const composeDir = "compose"

func readCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(composeDir, "compose.yaml"))
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c composeFile
	require.NoError(t, dec.Decode(&c), "compose.yaml")
	for k := range c.Extensions {
		require.True(t, strings.HasPrefix(k, "x-"), "compose.yaml: unknown top-level field %s", k)
	}
	return c
}

// composeVar matches ${NAME}, ${NAME:-default} and ${NAME:?message}.
var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}`)

// interpolate replaces Compose variables with vals (or their default).
func interpolate(s string, vals map[string]string) string {
	return composeVar.ReplaceAllStringFunc(s, func(m string) string {
		name := composeVar.FindStringSubmatch(m)[1]
		if v, ok := vals[name]; ok {
			return v
		}
		if _, def, ok := strings.Cut(m, ":-"); ok {
			return strings.TrimSuffix(def, "}")
		}
		return "x"
	})
}

func TestCompose(t *testing.T) {
	c := readCompose(t)
	require.NotEmpty(t, c.Services)

	var natsNodes, sluices []string
	for name, s := range c.Services {
		require.True(t, s.Image != "" || s.Build != nil, "service %s: an image or a build", name)
		require.NotEmpty(t, s.Restart, "service %s: a restart policy", name)
		for dep := range s.DependsOn {
			_, ok := c.Services[dep]
			require.True(t, ok, "service %s depends on %s, which is not a service", name, dep)
		}
		for _, v := range s.Volumes {
			src, _, ok := strings.Cut(v, ":")
			require.True(t, ok, "service %s: volume %s: source:target", name, v)
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				continue // a bind mount
			}
			_, ok = c.Volumes[src]
			require.True(t, ok, "service %s uses volume %s, which is not defined under volumes", name, src)
		}
		for _, cf := range s.Configs {
			def, ok := c.Configs[cf.Source]
			require.True(t, ok, "service %s uses config %s, which is not defined under configs", name, cf.Source)
			_, err := os.Stat(filepath.Join(composeDir, def.File))
			require.NoError(t, err, "config %s", cf.Source)
		}
		if s.Build != nil {
			_, err := os.Stat(filepath.Join(composeDir, s.Build.Context, s.Build.Dockerfile))
			require.NoError(t, err, "service %s: build", name)
		}
		if strings.HasPrefix(s.Image, "nats:") {
			natsNodes = append(natsNodes, name)
		}
		if s.Build != nil || strings.Contains(s.Image, "sluice") {
			sluices = append(sluices, name)
		}
	}
	require.Len(t, natsNodes, 3, "a 3-node NATS cluster")
	require.Len(t, sluices, 3, "three Sluice instances")

	// The NATS nodes: one configuration, routes to all three.
	conf, err := os.ReadFile(filepath.Join(composeDir, c.Configs[c.Services[natsNodes[0]].Configs[0].Source].File))
	require.NoError(t, err)
	var natsPort int
	for _, name := range natsNodes {
		s := c.Services[name]
		require.Len(t, s.Configs, 1, "%s: its nats.conf", name)
		require.Equal(t, []string{"--config", s.Configs[0].Target}, s.Command, "%s runs its configuration", name)
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = interpolate(v, map[string]string{"NATS_TOKEN": "token"})
		}
		o := natsConf(t, string(conf), env, hostPorts(natsNodes, 6222))
		require.Equal(t, name, o.ServerName, "%s: server_name", name)
		natsPort = o.Port
		require.NotEmpty(t, s.Volumes, "%s: a volume for its JetStream store", name)
		require.True(t, strings.HasSuffix(s.Volumes[0], ":"+o.StoreDir), "%s: the volume holds the store %s", name, o.StoreDir)
		require.NotNil(t, s.Healthcheck, "%s: a health check", name)
		require.Contains(t, strings.Join(s.Healthcheck.Test, " "), "http://127.0.0.1:"+itoa(o.HTTPPort)+"/healthz", "%s: the health check asks the monitoring port", name)
		requireGrace(t, name, s.StopGracePeriod, o.LameDuckDuration+o.LameDuckGracePeriod)
	}

	serve := serveHelp(t)
	dataVolumes := map[string]string{}
	for _, name := range sluices {
		s := c.Services[name]
		cmd := checkCommand(t, name, s.Command)
		require.Equal(t, "serve", cmd.sub, name)
		checkEnv(t, name, serve, s.Environment)
		natsURLs(t, name, cmd.value("nats-url"), natsNodes, natsPort)

		// Beyond loopback the API needs a key; the image's key file is
		// replaced by SLUICE_ADMIN_KEY here.
		httpAddr := cmd.value("http")
		require.NotEmpty(t, httpAddr, "%s: --http", name)
		require.Empty(t, cmd.value("insecure"), "%s: no --insecure", name)
		hasKey := s.Environment["SLUICE_ADMIN_KEY"] != "" || cmd.value("admin-key-file") != ""
		require.True(t, hasKey, "%s: an admin key (SLUICE_ADMIN_KEY or --admin-key-file)", name)
		require.Contains(t, s.Environment["SLUICE_ADMIN_KEY"], "${", "%s: the admin key comes from the environment, never from this file", name)

		store, err := url.Parse(interpolate(s.Environment["SLUICE_DOCSTORE"], nil))
		require.NoError(t, err, "%s: SLUICE_DOCSTORE", name)
		_, ok := c.Services[store.Hostname()]
		require.True(t, ok, "%s: SLUICE_DOCSTORE names host %s, which is not a service", name, store.Hostname())
		require.Equal(t, "postgres", store.Scheme)

		// Its own data directory, on a volume of its own.
		dataDir := cmd.value("data-dir")
		require.NotEmpty(t, dataDir, "%s: --data-dir", name)
		var vol string
		for _, v := range s.Volumes {
			if src, dst, _ := strings.Cut(v, ":"); dst == dataDir {
				vol = src
			}
		}
		require.NotEmpty(t, vol, "%s: a volume at its data directory %s", name, dataDir)
		require.NotContains(t, dataVolumes, vol, "%s shares its data volume with %s", name, dataVolumes[vol])
		dataVolumes[vol] = name

		// Health check: sluice health against its own --http port.
		require.NotNil(t, s.Healthcheck, "%s: a health check", name)
		test := s.Healthcheck.Test
		require.Equal(t, []string{"CMD", "/sluice"}, test[:2], "%s: the image has no shell: CMD /sluice health", name)
		hc := checkCommand(t, name+" health check", test[2:])
		require.Equal(t, "health", hc.sub)
		srv, err := url.Parse(hc.value("server"))
		require.NoError(t, err)
		checkProbe(t, name+" health check", "/readyz", srv.Port(), portOf(t, httpAddr))
		checkPublicHosts(t, name, splitComma(s.Environment["SLUICE_PUBLIC_HOST"]), srv.Host, name+":"+srv.Port(), "localhost:7071")

		for _, p := range s.Ports {
			i := strings.LastIndex(p, ":")
			require.Equal(t, portOf(t, httpAddr), p[i+1:], "%s: published port %s goes to --http", name, p)
			require.True(t, strings.HasPrefix(p, "127.0.0.1:"), "%s: publish on the host's loopback only (%s)", name, p)
		}
		requireGrace(t, name, s.StopGracePeriod, stopBudget)
		for _, dep := range natsNodes {
			require.Equal(t, "service_healthy", s.DependsOn[dep].Condition, "%s waits for %s", name, dep)
		}
	}
}

func requireGrace(t *testing.T, where, period string, need time.Duration) {
	t.Helper()
	d, err := time.ParseDuration(period)
	require.NoError(t, err, "%s: stop_grace_period", where)
	require.Greater(t, d, need, "%s: stop_grace_period %s leaves no time for a graceful stop (%s)", where, period, need)
}

func itoa(i int) string { return strconv.Itoa(i) }
