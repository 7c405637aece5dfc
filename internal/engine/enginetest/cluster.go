package enginetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/engine"
)

// NATSCluster is a real NATS cluster with JetStream on loopback: n server
// processes named node-0 … node-(n-1), each with its own store, client,
// route and monitoring ports, routed to each other. Tests kill, stop and
// restart nodes to see what Sluice does about it.
//
// Nodes are numbered from 0. Methods that wait take a context and poll the
// cluster (its monitoring endpoints, the JetStream API) until the condition
// holds or the context ends; none of them sleeps for a fixed time. Methods
// may be called from several goroutines.
type NATSCluster struct {
	cfg   clusterConfig
	nodes []*node
	web   *http.Client
	admin *nats.Conn
	js    jetstream.JetStream
}

type node struct {
	index int
	name  string
	dir   string // node.conf, node.log and the JetStream store
	// Ports: clients, routes from the other nodes, monitoring (HTTP).
	client, route, monitor int

	mu   sync.Mutex
	proc *process // the current run, or the last one once it exited
}

// ClusterOption changes how Cluster configures its nodes.
type ClusterOption func(*clusterConfig)

type clusterConfig struct {
	maxPayload int32
	exe        string
	// freePort picks a port that is not in taken and adds it; tests of
	// the harness replace it.
	freePort func(taken map[int]bool) (int, error)
}

// WithMaxPayload sets the nodes' max_payload. Zero leaves it unset, so the
// nodes run with NATS's default of 1 MiB, like a server configured by hand.
// Default engine.DefaultMaxPayload, what the embedded server accepts.
func WithMaxPayload(bytes int32) ClusterOption {
	return func(c *clusterConfig) { c.maxPayload = bytes }
}

const (
	clusterName = "sluice-test"
	// clusterStartTimeout bounds the start of the whole cluster. A start
	// takes a few seconds; the rest is room for a loaded machine.
	clusterStartTimeout = 2 * time.Minute
	// stopTimeout bounds a graceful stop before the node is killed.
	stopTimeout = 30 * time.Second
	// requestTimeout bounds each request of a poll, so that one lost on a
	// dying node does not use up the caller's whole context.
	requestTimeout = 2 * time.Second
	// startAttempts is how many sets of ports Cluster tries when another
	// process takes one of them between the check and the node's bind.
	startAttempts = 5
)

// Cluster starts an n-node cluster (n ≥ 1; one node runs without cluster
// routes) and waits until JetStream has a meta leader that all nodes follow
// and is current with. Every node is killed, and waited for, when the test
// ends; when it failed, the tail of each node's log is logged.
//
// The nodes are this test binary run again, so the package's TestMain must
// call RunNodeIfAsked first; Cluster fails the test saying so when it does
// not. The cluster takes seconds to start: tests that use it should skip
// under -short.
func Cluster(t testing.TB, n int, opts ...ClusterOption) *NATSCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
	defer cancel()
	c, err := startCluster(ctx, t, n, opts...)
	if err != nil {
		t.Fatalf("start a %d-node NATS cluster: %v", n, err)
	}
	return c
}

func startCluster(ctx context.Context, t testing.TB, n int, opts ...ClusterOption) (*NATSCluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("a cluster needs at least one node, not %d", n)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the test binary: %w", err)
	}
	c := &NATSCluster{
		cfg: clusterConfig{maxPayload: engine.DefaultMaxPayload, exe: exe, freePort: freePort},
		// No keep-alive: no idle connection (and its goroutines) outlives
		// a request, for goleak.
		web: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: requestTimeout},
	}
	for _, o := range opts {
		o(&c.cfg)
	}
	base := t.TempDir()
	for i := range n {
		nd := &node{index: i, name: "node-" + strconv.Itoa(i), dir: filepath.Join(base, "node-"+strconv.Itoa(i))}
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
	}
	t.Cleanup(func() { c.close(t) })

	for attempt := 1; ; attempt++ {
		err := c.startAll(ctx)
		if err == nil {
			break
		}
		c.killAll()
		if !errors.Is(err, errPortTaken) || attempt == startAttempts {
			return nil, err
		}
		for _, nd := range c.nodes {
			// A node may have written a store before the attempt failed;
			// the next attempt starts from nothing, as the first did.
			if err := os.RemoveAll(filepath.Join(nd.dir, "store")); err != nil {
				return nil, err
			}
		}
	}
	if err := c.waitFormed(ctx); err != nil {
		return nil, err
	}
	admin, err := nats.Connect(c.URL(), nats.Name("enginetest cluster admin"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("connect to the cluster: %w", err)
	}
	c.admin = admin
	if c.js, err = jetstream.New(admin); err != nil {
		return nil, err
	}
	return c, nil
}

var errPortTaken = errors.New("a port was taken by another process")

// startAll picks fresh ports for every node, writes the configs and starts
// the nodes, then waits until each accepts connections.
func (c *NATSCluster) startAll(ctx context.Context) error {
	taken := map[int]bool{}
	for _, nd := range c.nodes {
		for _, port := range []*int{&nd.client, &nd.route, &nd.monitor} {
			p, err := c.cfg.freePort(taken)
			if err != nil {
				return err
			}
			*port = p
		}
	}
	for _, nd := range c.nodes {
		if err := c.writeConfig(nd); err != nil {
			return err
		}
	}
	for _, nd := range c.nodes {
		if err := c.launch(nd); err != nil {
			return err
		}
	}
	for _, nd := range c.nodes {
		if err := c.waitHello(ctx, nd); err != nil {
			return err
		}
	}
	// The servers start only now that every process is up (exec and
	// start-up of a test binary take seconds on a loaded machine): node-0
	// first, then all others at once. This is for the first JetStream meta
	// election, which decides how long a start takes. A fresh meta group
	// campaigns 0.1–0.8 s after it is created, once a route is up, and
	// nats-server (2.15) makes a candidate with an empty log win only with
	// the vote of every server it expects; when two nodes campaign at once
	// the round is lost and the next comes after an election timeout of
	// 4–9 s. So node-0 expects a cluster of two (its config names no other
	// node, see writeConfig) and, started first, asks for votes as soon as
	// the first other node connects, whose timer has only just started: the
	// two elect node-0, and the rest join. On a loaded machine a round is
	// still lost now and then (about 1 start in 7 with two clusters
	// starting at once at a load average of 15 on 2 cores).
	c.nodes[0].current().release()
	if err := c.waitStarted(ctx, c.nodes[0]); err != nil {
		return err
	}
	for _, nd := range c.nodes[1:] {
		nd.current().release()
	}
	for _, nd := range c.nodes[1:] {
		if err := c.waitStarted(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}

// freePort returns a loopback port nothing listens on, from 20000–32767:
// below the ephemeral ranges (Linux from 32768, macOS from 49152), so no
// outgoing connection takes it before the node binds it, and away from
// NATS's well-known ports (4222 is this machine's own server). Another
// process can still bind it first; the node then fails to start and
// Cluster tries new ports.
func freePort(taken map[int]bool) (int, error) {
	const low, high = 20000, 32768
	for range 200 {
		p := low + rand.IntN(high-low)
		if taken[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		_ = l.Close()
		taken[p] = true
		return p, nil
	}
	return 0, errors.New("no free port between 20000 and 32767 after 200 tries")
}

func (c *NATSCluster) writeConfig(nd *node) error {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %q\n", nd.name)
	fmt.Fprintf(&b, "listen: \"127.0.0.1:%d\"\n", nd.client)
	fmt.Fprintf(&b, "http: \"127.0.0.1:%d\"\n", nd.monitor)
	b.WriteString("logtime: true\n")
	if c.cfg.maxPayload > 0 {
		fmt.Fprintf(&b, "max_payload: %d\n", c.cfg.maxPayload)
	}
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n", filepath.Join(nd.dir, "store"))
	if len(c.nodes) > 1 {
		fmt.Fprintf(&b, "cluster {\n  name: %q\n  listen: \"127.0.0.1:%d\"\n  routes: [\n", clusterName, nd.route)
		// A node's route to itself is ignored by the server. node-0 has
		// only that one (clustered JetStream wants a route), so it expects a
		// meta group of two: the others connect to it and tell it about
		// each other. See startAll for why.
		for _, other := range c.nodes {
			if nd.index == 0 && other != nd {
				continue
			}
			fmt.Fprintf(&b, "    \"nats-route://127.0.0.1:%d\"\n", other.route)
		}
		b.WriteString("  ]\n}\n")
	}
	return os.WriteFile(nd.confPath(), []byte(b.String()), 0o644)
}

func (nd *node) confPath() string { return filepath.Join(nd.dir, "node.conf") }
func (nd *node) logPath() string  { return filepath.Join(nd.dir, "node.log") }

// launch starts a process for nd; the node must not be running.
func (c *NATSCluster) launch(nd *node) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.running() {
		return fmt.Errorf("%s is already running", nd.name)
	}
	logFile, err := os.OpenFile(nd.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// A mark to tell this run's lines from the last one's.
	_, err = fmt.Fprintf(logFile, "--- enginetest: starting %s (client %d, route %d, monitor %d) at %s\n",
		nd.name, nd.client, nd.route, nd.monitor, time.Now().Format(time.RFC3339Nano))
	_ = logFile.Close()
	if err != nil {
		return err
	}
	p, err := startProcess(c.cfg.exe, nd.confPath(), nd.logPath())
	if err != nil {
		return fmt.Errorf("start %s: %w", nd.name, err)
	}
	nd.proc = p
	return nil
}

// running reports whether nd has a process that has not exited. nd.mu held.
func (nd *node) running() bool {
	if nd.proc == nil {
		return false
	}
	select {
	case <-nd.proc.done:
		return false
	default:
		return true
	}
}

func (nd *node) current() *process {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.proc
}

// waitHello waits until nd's process has read its config and waits to be
// released.
func (c *NATSCluster) waitHello(ctx context.Context, nd *node) error {
	return c.waitFor(ctx, nd, "read its config", func(p *process) <-chan struct{} { return p.hello })
}

// waitStarted waits until nd's process says it accepts connections.
func (c *NATSCluster) waitStarted(ctx context.Context, nd *node) error {
	return c.waitFor(ctx, nd, "accept connections", func(p *process) <-chan struct{} { return p.ready })
}

// waitFor waits until the channel step picks from nd's process is closed. A
// process that exits first is reported with the reason: a port taken
// (errPortTaken), or a test binary without the TestMain hook.
func (c *NATSCluster) waitFor(ctx context.Context, nd *node, what string, step func(*process) <-chan struct{}) error {
	p := nd.current()
	if p == nil {
		return fmt.Errorf("%s was never started", nd.name)
	}
	select {
	case <-step(p):
		return nil
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("%s did not %s in time: %w; its log ends with:\n%s",
			nd.name, what, ctx.Err(), c.logTail(nd, 20))
	}
	tail := c.logTail(nd, 20)
	if !p.handshook() {
		return fmt.Errorf("%s: the test binary exited (%s) without running a NATS node: "+
			"the TestMain of this test's package must call enginetest.RunNodeIfAsked() before anything else", nd.name, p.exited())
	}
	if strings.Contains(tail, "address already in use") {
		return fmt.Errorf("%s: %w: %s", nd.name, errPortTaken, p.exited())
	}
	return fmt.Errorf("%s exited at start (%s); its log ends with:\n%s", nd.name, p.exited(), tail)
}

// waitFormed waits until every node is healthy (it has a meta leader and
// is current with it) and the meta leader counts all n nodes as current
// peers, so that R3 assets can be placed at once.
func (c *NATSCluster) waitFormed(ctx context.Context) error {
	return poll(ctx, "the cluster to form", func(ctx context.Context) error {
		for _, nd := range c.nodes {
			if err := c.healthy(ctx, nd, ""); err != nil {
				return err
			}
		}
		_, err := c.metaLeader(ctx, true)
		return err
	})
}

// healthy asks nd's /healthz, with the given query.
func (c *NATSCluster) healthy(ctx context.Context, nd *node, query string) error {
	var status struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	code, err := c.monitor(ctx, nd, "/healthz"+query, &status)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s is not healthy: %s (%s)", nd.name, status.Error, status.Status)
	}
	return nil
}

// monitor GETs path from nd's monitoring port and decodes the JSON body.
func (c *NATSCluster) monitor(ctx context.Context, nd *node, path string, into any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(nd.monitor)+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.web.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", nd.name, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return resp.StatusCode, fmt.Errorf("%s: decode %s: %w", nd.name, path, err)
	}
	return resp.StatusCode, nil
}

// metaInfo is the part of /jsz that says who leads the meta group.
type metaInfo struct {
	Meta *struct {
		Leader   string `json:"leader"`
		Size     int    `json:"cluster_size"`
		Replicas []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
		} `json:"replicas"`
	} `json:"meta_cluster"`
}

// metaLeader finds the running node that leads the meta group by its own
// account. With allCurrent, it also wants every other node current in the
// leader's view.
func (c *NATSCluster) metaLeader(ctx context.Context, allCurrent bool) (int, error) {
	if len(c.nodes) == 1 {
		if !c.nodes[0].isRunning() {
			return 0, errors.New("node-0 is not running")
		}
		return 0, nil
	}
	var lastErr error
	for _, nd := range c.nodes {
		if !nd.isRunning() {
			continue
		}
		var info metaInfo
		if _, err := c.monitor(ctx, nd, "/jsz", &info); err != nil {
			lastErr = err
			continue
		}
		if info.Meta == nil || info.Meta.Leader == "" {
			lastErr = fmt.Errorf("%s knows no meta leader", nd.name)
			continue
		}
		i, ok := c.index(info.Meta.Leader)
		if !ok {
			return 0, fmt.Errorf("%s names an unknown meta leader %q", nd.name, info.Meta.Leader)
		}
		if !c.nodes[i].isRunning() {
			lastErr = fmt.Errorf("%s still names %s, which is down, as meta leader", nd.name, info.Meta.Leader)
			continue
		}
		// Ask the leader itself: a follower may be behind.
		var own metaInfo
		if _, err := c.monitor(ctx, c.nodes[i], "/jsz", &own); err != nil {
			lastErr = err
			continue
		}
		if own.Meta == nil || own.Meta.Leader != c.nodes[i].name {
			lastErr = fmt.Errorf("%s is named meta leader but does not say so itself", info.Meta.Leader)
			continue
		}
		if allCurrent {
			if own.Meta.Size != len(c.nodes) || len(own.Meta.Replicas) != len(c.nodes)-1 {
				return 0, fmt.Errorf("meta leader %s sees %d peers besides itself and a cluster size %d, not %d",
					own.Meta.Leader, len(own.Meta.Replicas), own.Meta.Size, len(c.nodes))
			}
			for _, r := range own.Meta.Replicas {
				if !r.Current || r.Offline {
					return 0, fmt.Errorf("%s is not current with meta leader %s", r.Name, own.Meta.Leader)
				}
			}
		}
		return i, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no node is running")
	}
	return 0, lastErr
}

func (nd *node) isRunning() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.running()
}

// index is the number of the node called name.
func (c *NATSCluster) index(name string) (int, bool) {
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd.index, true
		}
	}
	return 0, false
}

// poll calls try until it returns nil or ctx ends, backing off from 20 ms
// to 250 ms between tries. Each try gets at most requestTimeout. A
// permanent error (wrapped in stopPolling) ends it at once.
func poll(ctx context.Context, what string, try func(ctx context.Context) error) error {
	wait := 20 * time.Millisecond
	for {
		tryCtx, cancel := context.WithTimeout(ctx, requestTimeout)
		err := try(tryCtx)
		cancel()
		if err == nil {
			return nil
		}
		var stop stopPolling
		if errors.As(err, &stop) {
			return stop.err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("waiting for %s: %w; last: %w", what, ctx.Err(), err)
		case <-timer.C:
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

type stopPolling struct{ err error }

func (s stopPolling) Error() string { return s.err.Error() }

// N is the number of nodes.
func (c *NATSCluster) N() int { return len(c.nodes) }

// URL is the comma-separated client URLs of all nodes, for
// engine.Config.URL; clients fail over between them.
func (c *NATSCluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.NodeURL(i)
	}
	return strings.Join(urls, ",")
}

// NodeURL is the client URL of node i alone.
func (c *NATSCluster) NodeURL(i int) string {
	return "nats://127.0.0.1:" + strconv.Itoa(c.nodes[i].client)
}

// Engine connects an engine to the cluster (all its URLs), closed when the
// test ends.
func (c *NATSCluster) Engine(t testing.TB) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eng, err := engine.Start(ctx, engine.Config{URL: c.URL(), Name: "sluice " + t.Name()})
	if err != nil {
		t.Fatalf("connect an engine to the cluster: %v", err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

// Kill sends SIGKILL to node i and waits until the process is gone.
func (c *NATSCluster) Kill(i int) error {
	return c.end(i, syscall.SIGKILL)
}

// Stop shuts node i down gracefully (SIGTERM: the server hands the Raft
// groups it leads to other nodes first) and waits until the process is
// gone, killing it if it takes longer than 30 s.
func (c *NATSCluster) Stop(i int) error {
	return c.end(i, syscall.SIGTERM)
}

func (c *NATSCluster) end(i int, sig syscall.Signal) error {
	nd := c.nodes[i]
	nd.mu.Lock()
	p := nd.proc
	running := nd.running()
	nd.mu.Unlock()
	if !running {
		return fmt.Errorf("%s is not running", nd.name)
	}
	p.signal(sig)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		p.signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %v of %v and was killed", nd.name, stopTimeout, sig)
	}
	if sig == syscall.SIGTERM && p.cmd.ProcessState.ExitCode() != 0 {
		return fmt.Errorf("%s stopped badly: %s; its log ends with:\n%s", nd.name, p.exited(), c.logTail(nd, 20))
	}
	return nil
}

// Restart starts node i again with the same store and ports, after Kill
// or Stop, and waits until it has rejoined the meta group (healthz with
// js-meta-only). Its streams may still be catching up: see WaitCurrent.
// A port that another process took meanwhile is tried again until ctx
// ends.
func (c *NATSCluster) Restart(ctx context.Context, i int) error {
	nd := c.nodes[i]
	err := poll(ctx, nd.name+" to start", func(context.Context) error {
		if err := c.launch(nd); err != nil {
			return stopPolling{err}
		}
		err := c.waitHello(ctx, nd)
		if err == nil {
			nd.current().release()
			err = c.waitStarted(ctx, nd)
		}
		if errors.Is(err, errPortTaken) {
			return err
		}
		if err != nil {
			return stopPolling{err}
		}
		return nil
	})
	if err != nil {
		return err
	}
	query := "?js-meta-only=true"
	if len(c.nodes) == 1 {
		query = "" // a single server has no meta group; wait for its streams
	}
	return poll(ctx, nd.name+" to rejoin", func(ctx context.Context) error {
		if !nd.isRunning() {
			return stopPolling{fmt.Errorf("%s exited after its restart; its log ends with:\n%s", nd.name, c.logTail(nd, 20))}
		}
		return c.healthy(ctx, nd, query)
	})
}

// MetaLeader waits until a running node leads the JetStream meta group by
// its own account, and returns its number.
func (c *NATSCluster) MetaLeader(ctx context.Context) (int, error) {
	var leader int
	err := poll(ctx, "a meta leader", func(ctx context.Context) error {
		var err error
		leader, err = c.metaLeader(ctx, false)
		return err
	})
	return leader, err
}

// StreamLeader waits until stream has a leader on a running node and
// returns the node's number. A stream that does not exist is an error at
// once.
func (c *NATSCluster) StreamLeader(ctx context.Context, stream string) (int, error) {
	var leader int
	err := poll(ctx, "a leader of stream "+stream, func(ctx context.Context) error {
		info, err := c.streamInfo(ctx, stream)
		if err != nil {
			return err
		}
		leader, err = c.leaderOf(info)
		return err
	})
	return leader, err
}

func (c *NATSCluster) streamInfo(ctx context.Context, stream string) (*jetstream.StreamInfo, error) {
	s, err := c.js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, stopPolling{fmt.Errorf("stream %s: %w", stream, err)}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	return s.CachedInfo(), nil
}

// leaderOf is the running node that leads the stream described by info.
func (c *NATSCluster) leaderOf(info *jetstream.StreamInfo) (int, error) {
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return 0, fmt.Errorf("stream %s has no leader", info.Config.Name)
	}
	i, ok := c.index(info.Cluster.Leader)
	if !ok {
		return 0, stopPolling{fmt.Errorf("stream %s is led by %q, not a node of this cluster", info.Config.Name, info.Cluster.Leader)}
	}
	if !c.nodes[i].isRunning() {
		return 0, fmt.Errorf("stream %s still names %s, which is down, as its leader", info.Config.Name, info.Cluster.Leader)
	}
	return i, nil
}

// WaitCurrent waits until stream has a leader and every one of its
// replicas is online and caught up with it.
func (c *NATSCluster) WaitCurrent(ctx context.Context, stream string) error {
	return poll(ctx, "the replicas of stream "+stream+" to be current", func(ctx context.Context) error {
		info, err := c.streamInfo(ctx, stream)
		if err != nil {
			return err
		}
		if _, err := c.leaderOf(info); err != nil {
			return err
		}
		if got, want := len(info.Cluster.Replicas), info.Config.Replicas-1; got != want {
			return fmt.Errorf("stream %s has %d followers, not %d", stream, got, want)
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return fmt.Errorf("replica %s of stream %s is not current (offline %v, lag %d)", r.Name, stream, r.Offline, r.Lag)
			}
		}
		return nil
	})
}

// StepDown asks the leader of stream to step down, and waits until another
// node leads it; it returns that node's number.
func (c *NATSCluster) StepDown(ctx context.Context, stream string) (int, error) {
	return c.stepDown(ctx, stream, -1)
}

// StepDownTo asks the leader of stream to hand over to node i, and waits
// until node i leads it. Nothing is asked when node i leads it already.
func (c *NATSCluster) StepDownTo(ctx context.Context, stream string, i int) error {
	_, err := c.stepDown(ctx, stream, i)
	return err
}

func (c *NATSCluster) stepDown(ctx context.Context, stream string, to int) (int, error) {
	old, err := c.StreamLeader(ctx, stream)
	if err != nil {
		return 0, err
	}
	if old == to {
		return to, nil
	}
	var body []byte
	if to >= 0 {
		body, _ = json.Marshal(map[string]any{"placement": map[string]string{"preferred": c.nodes[to].name}})
	}
	err = poll(ctx, "stream "+stream+" to accept a step-down", func(ctx context.Context) error {
		msg, err := c.admin.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, body)
		if err != nil {
			return err
		}
		var resp struct {
			Success bool `json:"success"`
			Error   *struct {
				Code        int    `json:"code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return stopPolling{fmt.Errorf("step-down answer %q: %w", msg.Data, err)}
		}
		if resp.Error != nil {
			return stopPolling{fmt.Errorf("step down the leader of stream %s: %s (%d)", stream, resp.Error.Description, resp.Error.Code)}
		}
		if !resp.Success {
			return stopPolling{fmt.Errorf("step down the leader of stream %s: answered %q", stream, msg.Data)}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var leader int
	err = poll(ctx, "a new leader of stream "+stream, func(ctx context.Context) error {
		info, err := c.streamInfo(ctx, stream)
		if err != nil {
			return err
		}
		if leader, err = c.leaderOf(info); err != nil {
			return err
		}
		if leader == old || (to >= 0 && leader != to) {
			return fmt.Errorf("stream %s is led by %s", stream, c.nodes[leader].name)
		}
		return nil
	})
	return leader, err
}

// LogTail is the last lines of node i's log (all its runs, each starting
// with a "--- enginetest: starting" line).
func (c *NATSCluster) LogTail(i, lines int) string {
	return c.logTail(c.nodes[i], lines)
}

func (c *NATSCluster) logTail(nd *node, lines int) string {
	const maxBytes = 64 << 10
	f, err := os.Open(nd.logPath())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	off := max(st.Size()-maxBytes, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	all := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	return strings.Join(all[max(len(all)-lines, 0):], "\n")
}

// killAll kills every running node and waits for each.
func (c *NATSCluster) killAll() {
	for _, nd := range c.nodes {
		if p := nd.current(); p != nil {
			p.signal(syscall.SIGKILL)
			<-p.done
		}
	}
}

// close ends the test's use of the cluster: the admin connection first, so
// it does not chase dying nodes, then every node; a failed test gets the
// end of each node's log.
func (c *NATSCluster) close(t testing.TB) {
	if c.admin != nil {
		c.admin.Close()
	}
	c.killAll()
	c.web.CloseIdleConnections()
	if t.Failed() {
		for _, nd := range c.nodes {
			t.Logf("the log of %s ends with:\n%s", nd.name, c.logTail(nd, 40))
		}
	}
}
