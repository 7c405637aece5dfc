package deploy

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"
)

// natsConf parses a NATS configuration with the nats-server module, with
// the given environment (its $VARIABLES), and checks what Sluice needs:
// JetStream, a cluster whose routes are exactly wantRoutes (host:port),
// and a max_payload Sluice's messages fit in.
func natsConf(t *testing.T, conf string, env map[string]string, wantRoutes []string) *server.Options {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o600))
	o, err := server.ProcessConfigFile(path)
	require.NoError(t, err, "nats-server would not start with this configuration")
	require.True(t, o.JetStream, "JetStream is enabled")
	require.NotEmpty(t, o.StoreDir, "JetStream keeps its store in a volume")
	require.NotEmpty(t, o.ServerName, "each node has a name")
	require.GreaterOrEqual(t, o.MaxPayload, int32(minNATSPayload), "max_payload: Sluice's retry-queue messages need more than NATS's default")
	require.NotEmpty(t, o.Cluster.Name)
	require.NotZero(t, o.Cluster.Port, "the cluster listens for routes")
	var routes []string
	for _, r := range o.Routes {
		routes = append(routes, r.Host)
		require.Equal(t, strconv.Itoa(o.Cluster.Port), r.Port(), "route %s goes to the cluster port", r)
	}
	require.ElementsMatch(t, wantRoutes, routes, "every node lists the routes to all nodes")
	require.NotEmpty(t, o.Authorization, "clients need the token")
	return o
}

// natsURLs checks a --nats-url: one URL per node, each host one of nodes
// on the client port.
func natsURLs(t *testing.T, where, value string, nodes []string, port int) {
	t.Helper()
	var hosts []string
	for _, s := range splitComma(value) {
		u, err := url.Parse(s)
		require.NoError(t, err, "%s: --nats-url %s", where, s)
		require.Equal(t, "nats", u.Scheme, "%s: --nats-url %s", where, s)
		require.Nil(t, u.User, "%s: credentials come from the environment, not --nats-url (the process list shows flags)", where)
		require.Equal(t, strconv.Itoa(port), u.Port(), "%s: --nats-url %s: the NATS client port", where, s)
		hosts = append(hosts, u.Hostname())
	}
	require.ElementsMatch(t, nodes, hosts, "%s: --nats-url names every NATS node", where)
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func hostPorts(hosts []string, port int) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = net.JoinHostPort(h, strconv.Itoa(port))
	}
	return out
}
