package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/demo"
)

// instanceFlags are the flags shared by dev and serve.
type instanceFlags struct {
	dataDir, natsURL, natsListen, http, sync, logLevel, docStore string
	breakerWebhook, configFile, instanceID                       string
	leaseExpiry                                                  time.Duration
	replicas                                                     int
	fs                                                           *flag.FlagSet
	// security
	publicHosts                       listFlag
	adminKeyFile, tlsCert, tlsKey     string
	natsUser, natsPassword, natsToken string
	natsTLSCert, natsTLSKey, natsCA   string
	insecure                          bool
	// geo-disaster recovery
	natsDomain, natsLeafListen, natsLeafRemote, drPrimaryDomain string
	// limits of the HTTP server; zero means the defaults of sluice.Config
	httpReadTimeout, httpWriteTimeout, httpIdleTimeout time.Duration
	// logOut is where the log goes; nil means standard error.
	logOut io.Writer
}

func addInstanceFlags(fs *flag.FlagSet, dataDir string) *instanceFlags {
	f := &instanceFlags{fs: fs}
	fs.StringVar(&f.configFile, "config", os.Getenv("SLUICE_CONFIG"), "configuration file: any of these flags by name, and functions' breaker and timeout settings (env SLUICE_CONFIG; default: "+defaultConfigFile+" if it exists)")
	fs.StringVar(&f.dataDir, "data-dir", envOr("SLUICE_DATA_DIR", dataDir), "data directory of the embedded engine (env SLUICE_DATA_DIR)")
	fs.StringVar(&f.natsURL, "nats-url", os.Getenv("SLUICE_NATS_URL"), "use an external NATS server or cluster instead of the embedded one (env SLUICE_NATS_URL)")
	fs.StringVar(&f.natsListen, "nats-listen", os.Getenv("SLUICE_NATS_LISTEN"), "let other instances reach the embedded NATS at host:port (env SLUICE_NATS_LISTEN; default: no port)")
	fs.StringVar(&f.docStore, "docstore", os.Getenv("SLUICE_DOCSTORE"), "PostgreSQL URL of the document store, shared by instances (env SLUICE_DOCSTORE; default: SQLite, docs.db in the data directory)")
	fs.StringVar(&f.http, "http", envOr("SLUICE_HTTP", "127.0.0.1:7070"), "address of the HTTP API, /metrics and health checks (env SLUICE_HTTP)")
	fs.StringVar(&f.sync, "sync", envOr("SLUICE_SYNC", sluice.SyncAlways), "durability: always (acknowledged = fsynced) or interval (fsync every second)")
	fs.DurationVar(&f.leaseExpiry, "lease-expiry", 30*time.Second, "how long a dead instance keeps its partitions before others take over")
	fs.IntVar(&f.replicas, "replicas", envInt("SLUICE_REPLICAS"), "copies a NATS cluster keeps of every stream and bucket, 1 to 5 (env SLUICE_REPLICAS; default: 1 on one server, the cluster's size up to 3 on a cluster)")
	fs.StringVar(&f.instanceID, "instance-id", os.Getenv("SLUICE_INSTANCE_ID"), "this instance's name, unique among running instances (a StatefulSet pod's name, say); restarted under the same name it takes its partitions back at once (env SLUICE_INSTANCE_ID; default: the data directory's, kept in DIR/INSTANCE)")
	fs.StringVar(&f.breakerWebhook, "breaker-webhook", os.Getenv("SLUICE_BREAKER_WEBHOOK"), "URL that receives every circuit breaker transition as a JSON POST (env SLUICE_BREAKER_WEBHOOK)")
	fs.StringVar(&f.logLevel, "log-level", envOr("SLUICE_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	f.publicHosts.vals = splitList(os.Getenv("SLUICE_PUBLIC_HOST"))
	fs.Var(&f.publicHosts, "public-host", "a name clients use to reach the HTTP API, besides IP addresses and localhost; requests for other names are refused (repeatable or comma-separated, *.example.com for subdomains; env SLUICE_PUBLIC_HOST)")
	fs.StringVar(&f.adminKeyFile, "admin-key-file", os.Getenv("SLUICE_ADMIN_KEY_FILE"), "register the admin API key in this file at start, or write a new one there if it does not exist (env SLUICE_ADMIN_KEY_FILE)")
	fs.StringVar(&f.tlsCert, "tls-cert", os.Getenv("SLUICE_TLS_CERT"), "PEM certificate: serve the HTTP API over TLS (with --tls-key; env SLUICE_TLS_CERT)")
	fs.StringVar(&f.tlsKey, "tls-key", os.Getenv("SLUICE_TLS_KEY"), "PEM private key of --tls-cert (env SLUICE_TLS_KEY)")
	fs.StringVar(&f.natsToken, "nats-token", os.Getenv("SLUICE_NATS_TOKEN"), "token NATS clients present: required by the embedded listener, or sent to --nats-url (env SLUICE_NATS_TOKEN)")
	fs.StringVar(&f.natsUser, "nats-user", os.Getenv("SLUICE_NATS_USER"), "user of NATS clients, with --nats-password (env SLUICE_NATS_USER)")
	fs.StringVar(&f.natsPassword, "nats-password", os.Getenv("SLUICE_NATS_PASSWORD"), "password of --nats-user (env SLUICE_NATS_PASSWORD; prefer the environment: a flag shows in the process list)")
	fs.StringVar(&f.natsTLSCert, "nats-tls-cert", os.Getenv("SLUICE_NATS_TLS_CERT"), "PEM certificate of the embedded NATS listener (then TLS only), or the client certificate for --nats-url (env SLUICE_NATS_TLS_CERT)")
	fs.StringVar(&f.natsTLSKey, "nats-tls-key", os.Getenv("SLUICE_NATS_TLS_KEY"), "PEM private key of --nats-tls-cert (env SLUICE_NATS_TLS_KEY)")
	fs.StringVar(&f.natsCA, "nats-ca", os.Getenv("SLUICE_NATS_CA"), "PEM CA that verifies the NATS server of --nats-url, or the client certificates the embedded listener then requires (env SLUICE_NATS_CA)")
	fs.DurationVar(&f.httpReadTimeout, "http-read-timeout", 0, "the longest reading one HTTP request may take, body included; a slower client is disconnected (default "+sluice.DefaultHTTPReadTimeout.String()+")")
	fs.DurationVar(&f.httpWriteTimeout, "http-write-timeout", 0, "the longest writing one HTTP answer may take (default "+sluice.DefaultHTTPWriteTimeout.String()+")")
	fs.DurationVar(&f.httpIdleTimeout, "http-idle-timeout", 0, "how long an idle keep-alive HTTP connection stays open (default "+sluice.DefaultHTTPIdleTimeout.String()+")")
	fs.StringVar(&f.natsDomain, "nats-domain", os.Getenv("SLUICE_NATS_DOMAIN"), "JetStream domain of the embedded NATS; each site of a DR pair needs its own, e.g. primary and secondary (env SLUICE_NATS_DOMAIN; see docs/dr.md)")
	fs.StringVar(&f.natsLeafListen, "nats-leaf-listen", os.Getenv("SLUICE_NATS_LEAF_LISTEN"), "DR primary: accept the secondary's NATS as a leaf node at host:port, e.g. 0.0.0.0:7422 (env SLUICE_NATS_LEAF_LISTEN; beyond loopback needs --nats-user/--nats-password and --nats-tls-cert/--nats-tls-key)")
	fs.StringVar(&f.natsLeafRemote, "nats-leaf-remote", os.Getenv("SLUICE_NATS_LEAF_REMOTE"), "DR secondary: connect the embedded NATS to the primary's leaf-node listener, nats-leaf://user:password@host:7422 or tls://… (env SLUICE_NATS_LEAF_REMOTE)")
	fs.StringVar(&f.drPrimaryDomain, "dr-primary-domain", os.Getenv("SLUICE_DR_PRIMARY_DOMAIN"), "run as a DR secondary following the primary whose NATS has this JetStream domain: mirror it, run no functions and take no writes until sluice dr failover (env SLUICE_DR_PRIMARY_DOMAIN)")
	fs.BoolVar(&f.insecure, "insecure", false, "let the HTTP API and the NATS listener accept connections beyond loopback without keys, credentials or TLS; for throwaway setups only (every start warns)")
	return f
}

// listFlag is a repeatable flag whose values may also be comma-separated.
// Its first use replaces the default (from the environment).
type listFlag struct {
	vals []string
	set  bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }
func (l *listFlag) Set(v string) error {
	if !l.set {
		l.vals, l.set = nil, true
	}
	l.vals = append(l.vals, splitList(v)...)
	return nil
}

// envInt is the integer in environment variable name, or 0 when it is unset
// or not a number (the flag's check then reports a bad value).
func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (f *instanceFlags) config() (sluice.Config, error) {
	path := cmp.Or(f.configFile, defaultConfigFile)
	fc, err := loadConfigFile(f.fs, path, f.configFile != "")
	if err != nil {
		return sluice.Config{}, err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return sluice.Config{}, usagef("--log-level %q: use debug, info, warn or error", f.logLevel)
	}
	if v := os.Getenv("SLUICE_REPLICAS"); v != "" {
		if _, err := strconv.Atoi(v); err != nil {
			return sluice.Config{}, usagef("SLUICE_REPLICAS %q: give a number of copies, 1 to 5", v)
		}
	}
	if f.sync != sluice.SyncAlways && f.sync != sluice.SyncInterval {
		return sluice.Config{}, usagef("--sync %q: use always or interval", f.sync)
	}
	for _, l := range []struct {
		flag string
		d    time.Duration
	}{{"--http-read-timeout", f.httpReadTimeout}, {"--http-write-timeout", f.httpWriteTimeout}, {"--http-idle-timeout", f.httpIdleTimeout}} {
		if l.d < 0 {
			return sluice.Config{}, usagef("%s %s: give a positive duration, or 0 for the default", l.flag, l.d)
		}
	}
	logOut := f.logOut
	if logOut == nil {
		logOut = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	return sluice.Config{
		DataDir: f.dataDir, NATSURL: f.natsURL, NATSListen: f.natsListen, HTTPAddr: f.http, DocStore: f.docStore,
		Sync: f.sync, LeaseExpiry: f.leaseExpiry, InstanceID: f.instanceID, Replicas: f.replicas, Logger: logger, BreakerWebhook: f.breakerWebhook, Functions: fc.Functions,
		Partners: fc.Partners, MessageTypes: fc.MessageTypes, Deliveries: fc.Deliveries, Pipelines: fc.Pipelines, SecretEnv: fc.SecretEnv,
		FunctionKeys: splitList(os.Getenv("SLUICE_FUNCTION_KEYS")), AdminKey: os.Getenv("SLUICE_ADMIN_KEY"),
		PublicHosts: f.publicHosts.vals, AdminKeyFile: f.adminKeyFile, Insecure: f.insecure, TLSCert: f.tlsCert, TLSKey: f.tlsKey,
		NATSUser: f.natsUser, NATSPassword: f.natsPassword, NATSToken: f.natsToken,
		NATSTLSCert: f.natsTLSCert, NATSTLSKey: f.natsTLSKey, NATSCA: f.natsCA,
		HTTPReadTimeout: f.httpReadTimeout, HTTPWriteTimeout: f.httpWriteTimeout, HTTPIdleTimeout: f.httpIdleTimeout,
		NATSDomain: f.natsDomain, NATSLeafListen: f.natsLeafListen, NATSLeafRemote: f.natsLeafRemote, DRPrimaryDomain: f.drPrimaryDomain,
	}, nil
}

// signalContext is cancelled on the first SIGINT or SIGTERM, which starts a
// graceful shutdown; a second signal exits at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{}) // closed by stop: the watcher ends
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		fmt.Fprintln(os.Stderr, "\nstopping: finishing in-flight batches (press Ctrl-C again to exit at once)")
		cancel()
		select {
		case <-sigs:
		case <-done:
			return
		}
		fmt.Fprintln(os.Stderr, "exiting now")
		os.Exit(130)
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
		})
		cancel()
	}
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func runServe(args []string) error {
	fs := flagSet("serve", "sluice serve [flags]", `
Run a Sluice instance: the engine (embedded, or external with --nats-url),
the HTTP API at --http, /metrics, /healthz and /readyz. Several instances
pointed at the same NATS server share the work.

With --app, it also runs an Azure Functions app folder written for custom
handlers: it starts the folder's handler process and wires each function's
trigger (eventHubTrigger, queueTrigger, cosmosDBTrigger, timerTrigger,
httpTrigger) and outputs to Sluice hubs, queues, containers and routes of
the same names. HTTP functions that ask for a key take the keys in
SLUICE_FUNCTION_KEYS (comma-separated) and SLUICE_ADMIN_KEY.

Example:
  sluice serve --app ./myapp --create`)
	inst := addInstanceFlags(fs, "sluice-data")
	af := addAppFlags(fs, false)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := inst.config()
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	app := sluice.New(cfg)
	r, err := af.prepare(app, cfg)
	if err != nil {
		return err
	}
	return af.runWithApp(ctx, app, r)
}

func runDev(args []string) error {
	fs := flagSet("dev", "sluice dev [flags]", `
Run the whole platform in one process with embedded engines and a demo
of serverless event processing: a simulator of 1,000 drones sends
telemetry (position, battery, flight mode, gyrometer health; every 10th
frame of a drone a key frame with every field, the others partial; 1% of
the events corrupt) to the hub "telemetry" (4 partitions, partition key =
drone id). The function "telemetry-decode" decodes each batch, merges each
drone's frames into its document in the container "devices" (partition
key /deviceId; a partial frame keeps the fields it does not carry), and
dead-letters the corrupt events with the reason; GET /api/devices/<id>
answers a drone's state. A line on standard error shows the progress:
events processed and the rate, events sent, lag (events stored after the
checkpoints, as sluice hub lag shows) and dead letters. --rate, --devices
and --corrupt change the simulation; --no-demo leaves it out. Try, in
another terminal (with --server URL on each sluice command when --http is
not 127.0.0.1:7070):

  curl -s 127.0.0.1:7070/api/devices/drone-0001
  sluice deadletters list --limit 5
  sluice hub lag telemetry
  sluice docs query devices 'c.battery < 50 ORDER BY c.battery' --max 5
  sluice hub replay telemetry --time 1m
  curl -s 127.0.0.1:7070/metrics | grep sluice_

With --app ./myapp it runs that Azure Functions app folder instead of the
demo, creating the hubs, queues and containers it names (see sluice serve
--help).

Stop with Ctrl-C: in-flight batches finish and are checkpointed first.`)
	inst := addInstanceFlags(fs, "sluice-data")
	af := addAppFlags(fs, true)
	rate := fs.Int("rate", 2000, "demo events per second (0: no simulator)")
	devices := fs.Int("devices", 1000, "number of simulated drones")
	corrupt := fs.Float64("corrupt", 0.01, "share of corrupt demo events, 0 to 1")
	noDemo := fs.Bool("no-demo", false, "run the platform without the demo hub, container and functions")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	// The demo's progress line and the log share the terminal: the log
	// clears the line and draws it again around each record.
	pr := newProgress(os.Stderr, "telemetry processed", 0)
	logOut := pr.logWriter(os.Stderr)
	inst.logOut = logOut
	cfg, err := inst.config()
	if err != nil {
		return err
	}
	switch {
	case *corrupt < 0 || *corrupt > 1:
		return usagef("--corrupt %g: give a share between 0 and 1", *corrupt)
	case *rate < 0:
		return usagef("--rate %d: give events per second, or 0 for no simulator", *rate)
	case *devices < 1:
		return usagef("--devices %d: give at least 1", *devices)
	}
	ctx, stop := signalContext()
	defer stop()
	if af.dir != "" {
		app := sluice.New(cfg)
		r, err := af.prepare(app, cfg)
		if err != nil {
			return err
		}
		scheme := "http"
		if cfg.TLSCert != "" {
			scheme = "https"
		}
		fmt.Fprintf(os.Stderr, "sluice dev is running app %s: HTTP at %s://%s, data in %s\n", af.dir, scheme, cfg.HTTPAddr, cfg.DataDir)
		return af.runWithApp(ctx, app, r)
	}
	var d *telemetryDemo
	opts := demo.Options{}.WithDefaults()
	app := sluice.New(cfg)
	if !*noDemo {
		d = &telemetryDemo{app: app, p: demo.Declare(app, opts), pr: pr}
	}
	if err := app.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(logOut, "sluice dev is running: HTTP API at %s, data in %s\n", app.URL(), cfg.DataDir)
	if d == nil {
		<-ctx.Done()
		return app.Stop(context.Background())
	}
	o := d.p.Options()
	sim := demo.NewSimulator(*devices, *corrupt, uint64(time.Now().UnixNano()))
	url := cmp.Or(ownURL(app.Addr(), strings.HasPrefix(app.URL(), "https:")), app.URL())
	fmt.Fprintf(logOut, "demo: %s drones send telemetry to hub %s at %s events/s (%g%% corrupt); function %s keeps each drone's state in container %s.\n%s",
		count(int64(*devices)), o.Hub, count(int64(*rate)), *corrupt*100, o.Function, o.Container, demoHints(url, o, sim.DeviceIDs()[0]))
	if *rate > 0 {
		go func() {
			err := sim.Run(ctx, app, o.Hub, *rate, func(n int) { d.sent.Add(int64(n)) })
			if err != nil {
				fmt.Fprintln(logOut, "demo: the simulator stopped:", err)
			}
		}()
	}
	d.lag.Store(-1)
	go d.pollLag(ctx)
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		d.progress(ctx)
	}()
	<-ctx.Done()
	<-progressDone
	err = app.Stop(context.Background())
	d.report(true)
	return err
}

// telemetryDemo is the demo of sluice dev: the telemetry pipeline of
// internal/demo (examples/telemetry shows it as user code) fed by its
// simulator.
type telemetryDemo struct {
	app  *sluice.App
	p    *demo.Pipeline
	sent atomic.Int64
	lag  atomic.Int64 // of the hub's consumer group; -1 until known
	pr   *progress
}

// pollLag reads the lag of the hub's consumer group (what sluice hub lag
// shows: events stored after the checkpoints) every second until ctx
// ends.
func (d *telemetryDemo) pollLag(ctx context.Context) {
	for {
		if lag, err := d.app.Lag(ctx, d.p.Options().Hub, ""); err == nil {
			d.lag.Store(lag)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// progress reports the demo's progress every 250 ms until ctx ends. It
// starts after a second, once the start-up logs are out.
func (d *telemetryDemo) progress(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Second):
	}
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	for {
		d.report(false)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// report updates the progress line, or prints the last one.
func (d *telemetryDemo) report(final bool) {
	s := d.p.Stats()
	processed, sent, lag := s.Processed(), d.sent.Load(), d.lag.Load()
	if lag < 0 {
		lag = max(sent-processed, 0)
	}
	extra := fmt.Sprintf("sent %s · lag %s · dead letters %s", count(sent), count(lag), count(s.DeadLettered()))
	if final {
		d.pr.finish(processed, extra)
		return
	}
	d.pr.update(processed, extra)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// defaultServer is the CLI's --server when SLUICE_SERVER is not set.
const defaultServer = "http://127.0.0.1:7070"

// serverFlag is what a CLI command needs to reach the instance at url:
// nothing at the default address, " --server URL" elsewhere.
func serverFlag(url string) string {
	if url == defaultServer {
		return ""
	}
	return " --server " + url
}

// ownURL is the URL at which processes on this machine reach an instance
// listening on addr: a wildcard address (0.0.0.0, ::, none) is reached on
// loopback. "" when the port is not known before the instance starts (0).
func ownURL(addr string, tls bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" || port == "" {
		return ""
	}
	switch ip := net.ParseIP(host); {
	case host == "" || ip != nil && ip.Equal(net.IPv4zero):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// demoHints are the commands the demo suggests, for an instance at url.
func demoHints(url string, o demo.Options, device string) string {
	server := serverFlag(url)
	return fmt.Sprintf(`Try, in another terminal:
  curl -s %s/api/devices/%s
  sluice deadletters list --limit 5%s
  sluice hub lag %s%s
  sluice hub tail %s --limit 3%s
  sluice docs query %s 'c.battery < 50 ORDER BY c.battery' --max 5%s
`, url, device, server, o.Hub, server, o.Hub, server, o.Container, server)
}
