package sluice

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/docstore/postgres"
	"github.com/sluicehq/sluice/internal/docstore/sqlite"
	"github.com/sluicehq/sluice/internal/dr"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/lease"
	"github.com/sluicehq/sluice/internal/partner"
	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/resilience"
	"github.com/sluicehq/sluice/internal/telemetry"
	"github.com/sluicehq/sluice/internal/web"
)

// Sync modes: how publishes are made durable (see Config.Sync).
const (
	SyncAlways   = engine.SyncAlways
	SyncInterval = engine.SyncInterval
)

// Config configures an App. Zero values mean the documented defaults.
type Config struct {
	// DataDir holds the embedded engine's store. Default "sluice-data".
	DataDir string
	// NATSURL, when set, uses an external NATS server or cluster instead of
	// the embedded one; instances pointed at the same server share work.
	NATSURL string
	// NATSListen makes the embedded server accept clients on host:port, so
	// that other instances can use it. Default: no port. An address beyond
	// loopback needs client credentials and TLS (below), or Insecure.
	NATSListen string
	// NATSUser and NATSPassword, or NATSToken, are the credentials of NATS
	// clients: those the embedded listener requires, or those presented to
	// an external server (which may also come inside NATSURL).
	NATSUser, NATSPassword, NATSToken string
	// NATSTLSCert and NATSTLSKey (PEM files) are this instance's
	// certificate: the embedded listener's, which then requires TLS, or the
	// client certificate presented to an external server. NATSCA is the CA
	// that verifies the other side: clients of the embedded listener
	// (client certificates then required) or the external server.
	NATSTLSCert, NATSTLSKey, NATSCA string
	// NATSDomain is the embedded server's JetStream domain; each site of a
	// geo-disaster recovery pair needs its own (see docs/dr.md). Default
	// none.
	NATSDomain string
	// NATSLeafListen makes the embedded server accept leaf-node
	// connections on host:port: a DR primary's, for its secondary's
	// server. Beyond loopback it needs NATSUser/NATSPassword and TLS, or
	// Insecure. Default: none.
	NATSLeafListen string
	// NATSLeafRemote makes the embedded server a leaf node of a DR
	// primary's server (nats-leaf://[user:password@]host:port). Default:
	// none.
	NATSLeafRemote string
	// DRPrimaryDomain makes this instance a geo-disaster recovery
	// secondary that follows the primary whose engine has this JetStream
	// domain: it mirrors the primary's hubs, queues, blobs and state, runs
	// no functions, refuses writes (503), and serves reads and
	// /api/v1/dr, until a failover (sluice dr failover) promotes the
	// site; then it starts its functions from the mirrored checkpoints.
	// Default: none (a primary).
	DRPrimaryDomain string
	// DRSyncInterval is how often a secondary looks for new resources of
	// its primary to mirror. Default 2s.
	DRSyncInterval time.Duration
	// Sync is SyncAlways (default: a publish returns once fsynced) or
	// SyncInterval (fsync every SyncEvery; a power cut can lose that much,
	// a process crash nothing). Applies to the embedded server.
	Sync      string
	SyncEvery time.Duration
	// HTTPAddr is where the HTTP API, /metrics and health checks are
	// served, e.g. "127.0.0.1:7070". Empty: no HTTP server. An address
	// beyond loopback needs API keys (see AdminKeyFile) or Insecure.
	HTTPAddr string
	// PublicHosts are the host names clients use to reach the HTTP API
	// besides IP addresses and localhost, which are always accepted; a
	// request naming another Host is refused (DNS rebinding). A name may
	// start with "*." to match its subdomains.
	PublicHosts []string
	// AdminKeyFile holds an admin API key, registered at start; a file that
	// does not exist is created with a new key (mode 0600). This is how a
	// first key is made for a server that listens beyond loopback.
	AdminKeyFile string
	// Insecure lets the HTTP API and the embedded NATS listener accept
	// connections beyond loopback without keys or credentials. Every start
	// logs a warning. For throwaway setups only.
	Insecure bool
	// TLSCert and TLSKey (PEM files) serve the HTTP API over TLS.
	TLSCert, TLSKey string
	// HTTPReadTimeout bounds reading one request, body included (default
	// 2m); HTTPWriteTimeout bounds writing its answer (default 5m; long
	// polls wait at most 1m); HTTPIdleTimeout closes idle keep-alive
	// connections (default 2m).
	HTTPReadTimeout, HTTPWriteTimeout, HTTPIdleTimeout time.Duration
	// MaxConnections bounds the HTTP connections served at once; more
	// wait until one closes. Default 1024.
	MaxConnections int
	// InstanceID names this instance in leases and checkpoints; it must
	// differ between instances running at the same time (a StatefulSet's
	// pod name, say). Default: the data directory's ID (in DIR/INSTANCE,
	// the host name and a random suffix, made on first start) held by this
	// process, so a restarted instance takes its partitions back at once;
	// when another process holds it (instances sharing a directory with an
	// external NATS), a new ID with the process id.
	InstanceID string
	// Replicas is how many copies a NATS cluster keeps of every stream and
	// bucket Sluice creates (hubs, queues, checkpoints, leases, breakers,
	// idempotency keys, timers, blobs): 1 to 5. Default: 1 on a single
	// server (the embedded one included), the cluster's size up to 3 on a
	// cluster. Resources that have more keep them; existing ones with
	// fewer are raised to it at start.
	Replicas int
	// LeaseExpiry is how long a partition lease lasts without renewal;
	// a dead instance's partitions are taken over after it. Default 30s.
	LeaseExpiry time.Duration
	// ShutdownTimeout bounds the graceful part of stopping. Default 30s.
	ShutdownTimeout time.Duration
	// Linger is how long a partition's publisher gathers events into one
	// record while another is being stored. Default 1ms.
	Linger time.Duration
	// MaxRecordBytes bounds a stored record (many events packed together).
	// Default 1 MiB; an event larger than this gets a record of its own.
	MaxRecordBytes int
	// MaxEventBytes bounds one event. Default 1 MiB.
	MaxEventBytes int
	// DocStore is a PostgreSQL URL (postgres://user@host:5432/db) for the
	// document store, which instances must share when they run change-feed
	// functions together. Empty: an SQLite file, docs.db under DataDir.
	DocStore string
	// HTTPRoutePrefix is put before HTTP functions' routes. Default "api";
	// "/" serves them at the root.
	HTTPRoutePrefix string
	// FunctionKeys and AdminKey are the keys HTTP functions ask for (see
	// HTTPTrigger.AuthLevel). None: keys are not enforced.
	FunctionKeys []string
	AdminKey     string
	// MaxHTTPBodyBytes bounds an HTTP function's request body. Default
	// 100 MiB, as Azure.
	MaxHTTPBodyBytes int64
	// DuplicateWindow is how long a hub remembers the MessageID of the
	// events published to it: an event whose id was published within it is
	// not stored again (see Event.MessageID). Default 10 minutes; from 1s to
	// 7 days. Instances sharing a NATS server should agree on it.
	DuplicateWindow time.Duration
	// BreakerWebhook, when set, receives every circuit breaker transition
	// as a JSON POST (see WithBreaker). Transitions are also published to
	// the hub "sluice-breaker-events" and logged.
	BreakerWebhook string
	// Functions override, by function name, the breaker and timeout the
	// declarations give (WithBreaker, WithTimeout, or host.json for app
	// folders): settings from a configuration file (sluice.yaml). A name
	// that no declared function has is an error at Start.
	Functions map[string]FunctionSettings
	// Partners and MessageTypes are declared as App.Partner and
	// App.MessageType declare them (sluice.yaml's partners and
	// messageTypes sections).
	Partners     []PartnerConfig
	MessageTypes []MessageTypeConfig
	// Deliveries declare delivery functions by name, as App.Delivery does
	// (sluice.yaml's deliveries section): for apps whose functions publish
	// partners' messages to a hub, function app folders among them.
	Deliveries map[string]DeliveryConfig
	// Pipelines declare data pipelines by name, as App.Pipeline does
	// (sluice.yaml's pipelines section).
	Pipelines map[string]PipelineConfig
	// SecretEnv names environment variables that hold secrets (the *Env
	// settings of sluice.yaml: database URLs, partners' tokens): handler
	// processes of app folders never get them, as they never get Sluice's
	// own.
	SecretEnv []string
	// Logger receives structured logs. Default slog.Default().
	Logger *slog.Logger
}

// FunctionSettings override a function's declared settings (see
// Config.Functions). A nil Breaker or zero Timeout leaves the declared one.
type FunctionSettings struct {
	// Breaker is for hub, queue and change-feed functions.
	Breaker *BreakerPolicy
	// Timeout is for every kind of function but HTTP functions.
	Timeout time.Duration
}

// HubConfig declares a hub, created when the app starts if it is missing.
type HubConfig struct {
	Name string
	// Partitions, default 4. Fixed at creation.
	Partitions int
	// Retention is how long events are kept. Default 7 days.
	Retention time.Duration
	// RetentionBytes bounds the hub's stored bytes; 0 means no bound.
	RetentionBytes int64
	// Replicas is how many copies a NATS cluster keeps of each partition,
	// 1 to 5. Default (0): Config.Replicas. Raised at start when the hub
	// has fewer; never lowered.
	Replicas int
}

// StartPosition is where a consumer group starts reading a partition that
// has no checkpoint yet.
type StartPosition struct{ start hub.Start }

var (
	// FromStart reads from the oldest stored event (the default).
	FromStart = StartPosition{hub.Start{Kind: hub.StartEarliest}}
	// FromEnd reads only events stored after the function starts.
	FromEnd = StartPosition{hub.Start{Kind: hub.StartLatest}}
)

// FromTime reads from the first event enqueued at or after t.
func FromTime(t time.Time) StartPosition {
	return StartPosition{hub.Start{Kind: hub.StartTime, Time: t}}
}

// HubTrigger triggers a function with batches of a hub's events.
type HubTrigger struct {
	Hub string
	// ConsumerGroup reads independently of other groups. Default "$Default".
	ConsumerGroup string
	// MaxBatchSize bounds the events of one invocation. Default 100.
	MaxBatchSize int
	// MinBatchSize holds an invocation back until this many events are
	// available or MaxWait has passed. Default 1.
	MinBatchSize int
	MaxWait      time.Duration
	// StartFrom applies when the group has no checkpoint. Default FromStart.
	StartFrom StartPosition
	// TargetPerInstance is how many unprocessed events (the group's lag)
	// one instance should have: the desired instance count that
	// GET /api/v1/scale and sluice_scale_desired_instances tell an
	// autoscaler is the lag divided by it, rounded up to an even spread of
	// the hub's partitions (see docs/autoscaling.md). Default MaxBatchSize,
	// as Azure's targetUnprocessedEventThreshold defaults to
	// maxEventBatchSize.
	TargetPerInstance int
}

// HubHandler processes a batch of events from one partition, in order.
type HubHandler func(ctx context.Context, events []Event) error

// FunctionOption configures a function.
type FunctionOption func(*functionOptions)

type functionOptions struct {
	retry      resilience.Retry
	breaker    resilience.BreakerPolicy
	timeout    time.Duration
	middleware []Middleware
}

func applyOptions(opts []FunctionOption) functionOptions {
	var o functionOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithRetry sets the retry policy of a function. Default: no retries; a
// failed batch is dead-lettered at once.
func WithRetry(p RetryPolicy) FunctionOption {
	return func(o *functionOptions) { o.retry = p.internal() }
}

// WithBreaker gives a hub, queue or change-feed function a circuit
// breaker whose state all instances share: when its failures reach the
// policy's thresholds, counted over every instance, the function stops
// taking new batches or messages everywhere; in-flight work finishes,
// checkpoints stay at the last processed input and queue messages stay
// queued. After the cool-down one probe invocation runs: success closes
// the breaker and work resumes from where it stopped, in order; failure
// opens it again for twice as long. A batch that fails while the breaker
// is open is neither retried nor dead-lettered. Operators can open and
// close a breaker by hand (App.OpenBreaker, the HTTP API, sluice breaker).
//
// Set the thresholds so the breaker opens before a batch runs out of
// retries (for example ConsecutiveFailures below the retry count), or
// the first batches of an outage are dead-lettered before it opens.
func WithBreaker(p BreakerPolicy) FunctionOption {
	return func(o *functionOptions) { o.breaker = p.internal() }
}

// WithTimeout bounds each invocation of a function: its context is
// cancelled after d and the invocation counts as failed (retried per the
// retry policy). A function that keeps running a while after that ignores
// its context; it is reported in the logs and the metric
// sluice_function_overruns_total, and the invocation waits for it.
func WithTimeout(d time.Duration) FunctionOption {
	return func(o *functionOptions) { o.timeout = d }
}

// App is one instance of the platform.
type App struct {
	cfg        Config
	log        *slog.Logger
	hubs       []HubConfig
	qs         []QueueConfig
	containers []ContainerConfig
	blobCtrs   []string
	fns        []*declared  // every kind, in the order declared (see declared.go)
	errs       []error      // declaration problems, reported by Start
	middleware []Middleware // App.Use's
	chains     []*chained   // every function's, built by Start

	mu      sync.Mutex
	started bool
	// stopping: Stop was called (stopDone is closed when it is over, with
	// stopErr); stopped: the functions and the HTTP server have stopped,
	// so the app's methods answer ErrNotStarted.
	stopping bool
	stopped  atomic.Bool
	stopDone chan struct{}
	stopErr  error
	// ready is what /readyz says: set at the end of Start, once the
	// functions run, and cleared as soon as Stop begins.
	ready atomic.Bool

	eng      *engine.Engine
	hubSvc   *hub.Service
	queues   *queue.Service
	blobs    *blob.Service
	docs     docstore.Store
	leases   *lease.Manager
	host     *host.Host
	metrics  *telemetry.Metrics
	onceKV   jetstream.KeyValue // idempotency keys (see once.go)
	dirLock  *datadir.Lock
	identity *datadir.Identity // the data directory's instance ID, when this instance holds it
	keys     *auth.Keys
	partners *partner.Service
	// partnerDecls and sharedTypes are the declared partners and shared
	// message types (App.Partner, App.MessageType).
	partnerDecls []PartnerConfig
	sharedTypes  []MessageTypeConfig
	// deliveries are the declared delivery functions; deliveryLog logs
	// their attempts.
	deliveries []*delivery
	// pipelines are the declared pipelines, then those created through
	// the API that pipeReg runs here; pipeMu guards the list.
	pipeMu    sync.RWMutex
	pipelines []*pipelineRun
	pipeReg   *pipelineRegistry
	backfills jetstream.KeyValue // pipelines' backfill requests
	// letters keeps dead letters (the host's, and rows pipelines refuse).
	letters     *deadletter.Store
	deliveryLog *partner.DeliveryLog
	guard       *auth.Guard
	gw          *gateway.Server
	docShare    *docShare
	httpInfo    []gateway.HTTPFunction // the HTTP functions' routes, for the overview
	srv         *http.Server
	ln          net.Listener
	tls         bool
	srvDone     chan struct{}
	handler     swapHandler // what srv serves: the standby's, then the full one

	// Geo-disaster recovery (dr.go): the follower of a secondary, whether
	// it is still a standby, and the goroutine that starts the functions
	// once the site is promoted.
	dr           *dr.Follower
	standby      atomic.Bool
	tlsCfg       *tls.Config
	sb           *standbySite     // a standby's HTTP side
	standbyGuard auth.GuardConfig // a standby's guard settings, without keys
	reconciled   bool             // a promoted site's state is within its streams
	promoteGo    chan struct{}    // closed when the promotion goroutine ends
	promoteCut   chan struct{}    // closed by Stop
	cutOnce      sync.Once
	promoteErr   atomic.Pointer[error]
}

// New creates an app. Declare hubs and functions, then call Run.
func New(cfg Config) *App {
	cfg.DataDir = cmp.Or(cfg.DataDir, "sluice-data")
	cfg.LeaseExpiry = cmp.Or(cfg.LeaseExpiry, 30*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &App{cfg: cfg, log: cfg.Logger, promoteCut: make(chan struct{})}
}

// newInstanceID makes an instance ID of the host's name and a random
// suffix, with the process id too when withPID.
func newInstanceID(withPID bool) string {
	hostName, _ := os.Hostname()
	hostName = strings.Trim(invalidIDChars.ReplaceAllString(hostName, "-"), "-.")
	if len(hostName) > 60 {
		hostName = hostName[:60]
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	id := cmp.Or(hostName, "sluice")
	if withPID {
		id += "-" + strconv.Itoa(os.Getpid())
	}
	return id + "-" + hex.EncodeToString(b)
}

var invalidIDChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// resolveInstanceID settles the instance's ID before anything uses it
// (see Config.InstanceID).
func (a *App) resolveInstanceID() error {
	if a.cfg.InstanceID != "" {
		if err := datadir.ValidateInstanceID(a.cfg.InstanceID); err != nil {
			return fmt.Errorf("sluice: %w", err)
		}
		return nil
	}
	ident, err := datadir.ClaimIdentity(a.cfg.DataDir, func() string { return newInstanceID(false) })
	switch {
	case err == nil:
		a.identity, a.cfg.InstanceID = ident, ident.ID
	case errors.Is(err, datadir.ErrInUse):
		a.cfg.InstanceID = newInstanceID(true)
		a.log.Info("the data directory's instance ID is held by another process: this instance has an ID of its own",
			"data_dir", a.cfg.DataDir, "instance", a.cfg.InstanceID)
	default:
		return fmt.Errorf("sluice: %w", err)
	}
	return nil
}

// InstanceID is this instance's name in leases and checkpoints (settled
// by Start when Config.InstanceID is empty).
func (a *App) InstanceID() string { return a.cfg.InstanceID }

// Hub declares a hub.
func (a *App) Hub(cfg HubConfig) {
	a.hubs = append(a.hubs, cfg)
}

// Function declares a function triggered by a hub. Problems with the
// declaration are reported by Start.
func (a *App) Function(name string, trigger HubTrigger, handler HubHandler, opts ...FunctionOption) {
	f := a.hubFunction(name, trigger, handler, opts...)
	a.declare(name, &f, &f.Breaker, &f.Timeout)
}

// hubFunction is what the host runs for a hub function.
func (a *App) hubFunction(name string, trigger HubTrigger, handler HubHandler, opts ...FunctionOption) host.Function {
	f := host.Function{
		Name: name,
		Trigger: host.HubTrigger{
			Hub: trigger.Hub, Group: trigger.ConsumerGroup, MaxBatchSize: trigger.MaxBatchSize,
			MinBatchSize: trigger.MinBatchSize, MaxWait: trigger.MaxWait, Start: trigger.StartFrom.start,
			TargetPerInstance: trigger.TargetPerInstance,
		},
	}
	o := applyOptions(opts)
	if handler != nil {
		h := withMiddleware(a, name, TriggerHub, o.middleware, (func(context.Context, []Event) error)(handler))
		f.Handler = func(ctx context.Context, evs []hub.StoredEvent) error { return h(ctx, fromStored(evs)) }
	}
	f.Retry, f.Breaker, f.Timeout = o.retry, o.breaker, o.timeout
	return f
}

// Start starts the engine, creates declared hubs, starts the HTTP server
// and the functions, and returns. Use Stop to stop.
func (a *App) Start(ctx context.Context) (err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		return errors.New("sluice: the app was already started")
	}
	if a.stopping {
		return errors.New("sluice: the app was stopped; make a new one with New")
	}
	for _, name := range slices.Sorted(maps.Keys(a.cfg.Deliveries)) {
		a.Delivery(name, a.cfg.Deliveries[name])
	}
	for _, name := range slices.Sorted(maps.Keys(a.cfg.Pipelines)) {
		a.Pipeline(name, a.cfg.Pipelines[name])
	}
	if err := errors.Join(append(a.errs, a.applySettings(), a.buildChains())...); err != nil {
		return err
	}
	if w := a.cfg.BreakerWebhook; w != "" {
		if u, err := url.Parse(w); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("sluice: breaker webhook %q: give an http:// or https:// URL", redactURL(w))
		}
	}
	if err := a.cfg.validateLimits(); err != nil {
		return err
	}
	tlsCfg, err := a.cfg.tlsConfig()
	if err != nil {
		return err
	}
	a.started = true
	defer func() {
		if err != nil {
			// What did start is stopped; its own failures are logged, the
			// start's error is what matters.
			a.stopping = true
			a.stopped.Store(true)
			if serr := a.stopParts(context.Background()); serr != nil {
				a.log.Warn("could not stop cleanly after a failed start", "err", serr)
			}
		}
	}()
	if err := a.resolveInstanceID(); err != nil {
		return err
	}
	if err := a.lockDataDir(); err != nil {
		return err
	}
	a.eng, err = engine.Start(ctx, engine.Config{
		URL: a.cfg.NATSURL, DataDir: a.cfg.DataDir, Listen: a.cfg.NATSListen,
		User: a.cfg.NATSUser, Password: a.cfg.NATSPassword, Token: a.cfg.NATSToken,
		TLSCert: a.cfg.NATSTLSCert, TLSKey: a.cfg.NATSTLSKey, TLSCA: a.cfg.NATSCA, Insecure: a.cfg.Insecure,
		Sync: a.cfg.Sync, SyncEvery: a.cfg.SyncEvery, Name: "sluice " + a.cfg.InstanceID, Logger: a.log,
		Replicas: a.cfg.Replicas, Domain: a.cfg.NATSDomain, LeafListen: a.cfg.NATSLeafListen, LeafRemote: a.cfg.NATSLeafRemote,
	})
	if err != nil {
		return err
	}
	a.tlsCfg = tlsCfg
	if a.cfg.DRPrimaryDomain != "" {
		following, err := a.openDR(ctx)
		if err != nil {
			return err
		}
		if following {
			return a.startStandby(ctx)
		}
	}
	return a.startServices(ctx)
}

// startServices opens what the app runs on the engine, starts the HTTP
// server (or, on a promoted DR standby, replaces its handler) and the
// functions. Called with a.mu held.
func (a *App) startServices(ctx context.Context) (err error) {
	tlsCfg := a.tlsCfg
	a.hubSvc, err = hub.Open(ctx, a.eng.JS, a.eng.MaxPayload(), hub.Options{
		Linger: a.cfg.Linger, MaxRecordBytes: a.cfg.MaxRecordBytes, MaxEventBytes: a.cfg.MaxEventBytes,
		ReadJS: a.eng.ReadJS, Tail: a.eng.Private(), Logger: a.log, DuplicateWindow: a.cfg.DuplicateWindow,
		Replicas: a.eng.Replicas(),
	})
	if err != nil {
		return err
	}
	for _, hc := range a.hubs {
		if err := a.ensureHub(ctx, hc); err != nil {
			return err
		}
	}
	// Hubs created through the API: partitions lost meanwhile are
	// recreated, replicas raised to the instance's setting.
	if err := a.hubSvc.RepairAll(ctx); err != nil {
		return fmt.Errorf("sluice: check the hubs: %w", err)
	}
	if err := a.reconcilePromoted(ctx); err != nil {
		return err
	}
	if err := a.checkDocStoreShared(ctx); err != nil {
		return err
	}
	a.queues = queue.Open(a.eng.JS, a.eng.MaxPayload(), queue.Options{Logger: a.log, Replicas: a.eng.Replicas()})
	a.blobs = blob.Open(a.eng.JS, blob.Options{Logger: a.log, Replicas: a.eng.Replicas()})
	if err := os.MkdirAll(a.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("sluice: data directory: %w", err)
	}
	if a.docs, err = openDocStore(ctx, a.cfg); err != nil {
		return err
	}
	for _, cc := range a.containers {
		_, err := a.docs.CreateContainer(ctx, docstore.Container{Name: cc.Name, PartitionKeyPath: cc.PartitionKeyPath, DefaultTTL: cc.DefaultTTL})
		if errors.Is(err, docstore.ErrExists) {
			var c docstore.Container
			if c, err = a.docs.GetContainer(ctx, cc.Name); err == nil && c.PartitionKeyPath != cc.PartitionKeyPath {
				err = fmt.Errorf("it exists with partition key path %s, not %s (delete it or declare %s)", c.PartitionKeyPath, cc.PartitionKeyPath, c.PartitionKeyPath)
			}
		}
		if err != nil {
			return fmt.Errorf("sluice: container %s: %w", cc.Name, err)
		}
	}
	if err := a.reconcilePromotedFeeds(ctx); err != nil {
		return err
	}
	for _, qc := range a.qs {
		if _, err := a.queues.Ensure(ctx, queue.Config{Name: qc.Name, MaxMessageBytes: qc.MaxMessageBytes, Lock: qc.Lock, TTL: qc.TTL, Replicas: qc.Replicas}); err != nil {
			return fmt.Errorf("sluice: queue %s: %w", qc.Name, err)
		}
	}
	if err := a.queues.RaiseReplicas(ctx); err != nil {
		return fmt.Errorf("sluice: %w", err)
	}
	for _, name := range a.blobCtrs {
		if _, err := a.blobs.EnsureContainer(ctx, name); err != nil {
			return fmt.Errorf("sluice: blob container %s: %w", name, err)
		}
	}
	if err := a.blobs.RaiseReplicas(ctx); err != nil {
		return fmt.Errorf("sluice: %w", err)
	}
	if a.metrics == nil {
		a.metrics = telemetry.NewMetrics()
		a.reportDR()
	}
	a.metrics.CountHubResends(a.hubSvc.Resends)
	a.leases, err = lease.Open(ctx, a.eng.JS, lease.Config{InstanceID: a.cfg.InstanceID, ExclusiveID: a.identity != nil, Expiry: a.cfg.LeaseExpiry, Logger: a.log})
	if err != nil {
		return err
	}
	if a.onceKV, err = openOnceBucket(ctx, a.eng.JS); err != nil {
		return err
	}
	a.letters = &deadletter.Store{Queues: a.queues, Hubs: a.hubSvc, Docs: a.docs, Blobs: a.blobs}
	a.host, err = host.Open(ctx, host.Config{
		InstanceID: a.cfg.InstanceID, JS: a.eng.JS, Hubs: a.hubSvc, Leases: a.leases, Queues: a.queues, Docs: a.docs,
		Blobs: a.blobs, BreakerWebhook: a.cfg.BreakerWebhook,
		DeadLetters: a.letters, Metrics: a.metrics, Logger: a.log,
		ShutdownTimeout: a.cfg.ShutdownTimeout,
	})
	if err != nil {
		return err
	}
	if err := a.registerFunctions(); err != nil {
		return err
	}
	if err := a.openGuard(ctx); err != nil {
		return err
	}
	if err := a.openPartners(ctx); err != nil {
		return err
	}
	if err := a.openBackfills(ctx); err != nil {
		return err
	}
	for _, p := range a.pipelines {
		if err := p.start(ctx); err != nil {
			return err
		}
	}
	if a.cfg.HTTPAddr != "" {
		h, err := a.buildHandler()
		if err != nil {
			return err
		}
		a.handler.set(h)
		if a.ln == nil {
			if err := a.serveHTTP(tlsCfg); err != nil {
				return err
			}
		}
	} else if a.hasHTTPFunctions() {
		return errNoHTTPServer
	}
	if err := a.host.Start(ctx); err != nil {
		return err
	}
	if err := a.openPipelineRegistry(ctx); err != nil {
		return err
	}
	a.ready.Store(true)
	a.log.Info("sluice started", "instance", a.cfg.InstanceID, "data_dir", a.cfg.DataDir, "dr_role", a.drRole(),
		"nats", cmp.Or(redactURL(a.cfg.NATSURL), "embedded"), "nats_listen", a.eng.ClientURL(), "http", a.Addr(),
		"functions", len(a.fns), "replicas", a.eng.Replicas())
	return nil
}

// openDocStore opens the document store cfg names.
func openDocStore(ctx context.Context, cfg Config) (docstore.Store, error) {
	if cfg.DocStore == "" {
		return sqlite.Open(filepath.Join(cfg.DataDir, "docs.db"), sqlite.Options{})
	}
	if !strings.HasPrefix(cfg.DocStore, "postgres://") && !strings.HasPrefix(cfg.DocStore, "postgresql://") {
		// Not echoed: a keyword/value string (password=…) or a URL of
		// another kind may hold a password no redaction knows of.
		return nil, errors.New("sluice: document store: give a PostgreSQL URL (postgres://user@host:5432/database), or nothing for SQLite under the data directory")
	}
	s, err := postgres.Open(ctx, cfg.DocStore, postgres.Options{})
	if err != nil {
		return nil, fmt.Errorf("sluice: document store at %s: %w", docStoreName(cfg.DocStore), err)
	}
	return s, nil
}

// redactURL hides a URL's password or token, for messages.
func redactURL(s string) string { return engine.RedactURL(s) }

func (a *App) ensureHub(ctx context.Context, hc HubConfig) error {
	cfg := hub.Config{Name: hc.Name, Partitions: hc.Partitions,
		RetentionAge: hc.Retention, RetentionBytes: hc.RetentionBytes, Replicas: hc.Replicas}
	for attempt := 0; ; attempt++ {
		info, err := a.hubSvc.Create(ctx, cfg)
		if err == nil {
			a.log.Info("hub created", "hub", info.Name, "partitions", info.Partitions)
			return nil
		}
		if !errors.Is(err, hub.ErrExists) {
			return err
		}
		info, err = a.hubSvc.Repair(ctx, hc.Name)
		if errors.Is(err, hub.ErrNotFound) && attempt < 20 {
			// It exists, yet reading it finds nothing: another instance
			// creating it at the same moment undid its claim after a
			// failure, or the read went to a copy of the bucket that has
			// not seen the claim yet (a fresh cluster). Create again, or
			// read again.
			t := time.NewTimer(time.Duration(attempt+1) * 50 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		if err == nil && hc.Partitions != 0 && info.Partitions != hc.Partitions {
			return fmt.Errorf("sluice: hub %s exists with %d partitions but is declared with %d; partition counts cannot change (delete the hub or declare %d)",
				hc.Name, info.Partitions, hc.Partitions, info.Partitions)
		}
		return err
	}
}

// buildHandler makes what the HTTP server serves once the app runs: the
// API, the dashboard and the HTTP functions.
func (a *App) buildHandler() (http.Handler, error) {
	gw := gateway.NewServer(gateway.Config{Hubs: a.hubSvc, Queues: a.queues, Blobs: a.blobs, Docs: a.docs, Breakers: a.host.Breakers(),
		Leases: a.leases, InstanceID: a.cfg.InstanceID, Metrics: a.metrics, Logger: a.log,
		Ready: a.ready.Load, MaxEventBytes: a.hubSvc.MaxEventBytes(), Authorize: a.guard.Authorize,
		HTTPFunctions: func() []gateway.HTTPFunction { return a.httpInfo }, RetryRoute: host.RedriveMessage,
		Scaled: a.scaled()})
	gw.HandleKeys(a.keys)
	gw.HandlePartners(a.partners)
	gw.HandleDR(drControl{a})
	gw.HandlePipelines(pipelineControl{a})
	a.gw = gw
	api := a.guard.Protect(gw, true)
	dashboard := a.guard.Protect(web.Handler(), false)
	mux := http.NewServeMux()
	if !a.hasHTTPFunctions() {
		mux.Handle("/", api)
		mux.Handle(web.Prefix, dashboard)
	} else {
		// Sluice's own paths only, so that a function route asked with
		// the wrong method gets a 405.
		for _, p := range reservedPaths {
			h := http.Handler(api)
			if p+"/" == web.Prefix {
				h = dashboard
			}
			mux.Handle(p, h)
			mux.Handle(p+"/", h)
		}
	}
	if err := a.httpRoutes(mux); err != nil {
		return nil, err
	}
	// The dashboard's page is at "/" too, unless an HTTP function serves
	// "/" (HTTPRoutePrefix "/"): then it is at /ui/ only.
	if _, p := mux.Handler(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}}); !a.hasHTTPFunctions() || p == "" {
		mux.Handle("GET /{$}", dashboard)
	}
	return mux, nil
}

// serveHTTP listens on Config.HTTPAddr and serves a.handler.
func (a *App) serveHTTP(tlsCfg *tls.Config) error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("sluice: listen on %s: %w (is another program using this port? set a different address with --http)", a.cfg.HTTPAddr, err)
	}
	a.ln = ln
	a.tls = tlsCfg != nil
	a.srv = &http.Server{Handler: &a.handler, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsCfg,
		ReadTimeout:  cmp.Or(a.cfg.HTTPReadTimeout, DefaultHTTPReadTimeout),
		WriteTimeout: cmp.Or(a.cfg.HTTPWriteTimeout, DefaultHTTPWriteTimeout),
		IdleTimeout:  cmp.Or(a.cfg.HTTPIdleTimeout, DefaultHTTPIdleTimeout),
		ErrorLog:     slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	served := net.Listener(newLimitListener(ln, cmp.Or(a.cfg.MaxConnections, DefaultMaxConnections)))
	if tlsCfg != nil {
		served = tls.NewListener(served, a.srv.TLSConfig)
	}
	a.srvDone = make(chan struct{})
	go func() {
		defer close(a.srvDone)
		if err := a.srv.Serve(served); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("HTTP server stopped", "err", err)
		}
	}()
	return nil
}

// URL is the HTTP server's base URL (http:// or https://), or "" when
// there is none.
func (a *App) URL() string {
	if a.ln == nil {
		return ""
	}
	if a.tls {
		return "https://" + a.Addr()
	}
	return "http://" + a.Addr()
}

// Addr is the HTTP server's address, or "" when there is none.
func (a *App) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// NATSURL is the URL other instances can use to reach this instance's
// embedded server (when it listens), or "".
func (a *App) NATSURL() string {
	if a.eng == nil {
		return ""
	}
	return a.eng.ClientURL()
}

// NATSLeafURL is the leaf-node URL a DR secondary's engine connects to
// (Config.NATSLeafRemote) when this instance's embedded server accepts leaf
// nodes (Config.NATSLeafListen), or "".
func (a *App) NATSLeafURL() string {
	if a.eng == nil {
		return ""
	}
	return a.eng.LeafURL()
}

// Stop stops gracefully, in order: the functions (they finish their
// in-flight batches and checkpoint them; see Config.ShutdownTimeout), the
// HTTP server (requests in flight finish, for at most 5s), the API keys,
// the hubs and queues (what they hold is stored), the document store, the
// engine, and the data directory's lock. /readyz answers 503 from the
// moment Stop begins. ctx bounds the graceful part: once it ends, what is
// left is stopped at once and work in flight abandoned.
//
// Stop returns the errors of the parts that did not stop cleanly, joined.
// It is safe before Start (it does nothing, and the app cannot be started
// any more) and more than once: a later call waits for the first (or its
// own ctx) and returns the same errors.
func (a *App) Stop(ctx context.Context) error {
	a.ready.Store(false)
	// A DR standby being promoted stops starting things (it holds the
	// lock meanwhile).
	a.cutPromotion()
	// A Start under way holds the lock and ends by setting ready: clear
	// it again once that Start is over.
	a.mu.Lock()
	a.ready.Store(false)
	if a.stopping {
		done := a.stopDone
		a.mu.Unlock()
		if done == nil {
			return nil // stopped before being started, or after a failed start
		}
		select {
		case <-done:
			return a.stopErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a.stopping = true
	if !a.started {
		a.stopped.Store(true)
		a.mu.Unlock()
		return nil
	}
	a.stopDone = make(chan struct{})
	promoting := a.promoteGo
	a.mu.Unlock()
	a.log.Info("sluice stopping", "instance", a.cfg.InstanceID)
	if promoting != nil {
		<-promoting
	}
	// Without the app's lock: an invocation or HTTP function finishing
	// meanwhile may still publish, send or write its outputs.
	a.stopErr = a.stopParts(ctx)
	close(a.stopDone)
	return a.stopErr
}

// stopParts stops what Start started, in order, and joins the errors of the
// parts that did not stop cleanly. Each part is stopped even when one
// before it failed.
func (a *App) stopParts(ctx context.Context) error {
	var errs []error
	report := func(part string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("sluice: stop %s: %w", part, err))
		}
	}
	if a.dr != nil {
		report("DR follower", a.dr.Stop(ctx))
	}
	if a.sb != nil {
		report("standby reads", a.sb.close(ctx))
	}
	if a.pipeReg != nil {
		report("created pipelines", a.pipeReg.stop(ctx)) // before the host they run on
	}
	if a.host != nil {
		report("functions", a.host.Stop(ctx)) // and their leases and breakers
	} else if a.leases != nil {
		report("leases", a.leases.Stop(ctx))
	}
	for _, p := range a.pipelineList() {
		if !p.created {
			report("pipeline "+p.name, p.stop()) // after the functions that apply its change sets
		}
	}
	if a.srv != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := a.srv.Shutdown(sctx)
		cancel()
		if err != nil {
			// Requests still in flight: close their connections.
			err = errors.Join(err, a.srv.Close())
		}
		<-a.srvDone
		report("HTTP server", err)
	}
	a.stopped.Store(true) // from here on the app's methods answer ErrNotStarted
	if a.keys != nil {
		report("API keys", a.keys.Stop(ctx))
	}
	if a.partners != nil {
		report("partner registry", a.partners.Registry.Stop(ctx))
	}
	if a.hubSvc != nil {
		report("hubs", a.hubSvc.Stop(ctx))
	}
	if a.queues != nil {
		report("queues", a.queues.Stop(ctx))
	}
	report("document store announcement", a.docShare.Stop(ctx))
	if a.docs != nil {
		report("document store", a.docs.Close())
	}
	if a.eng != nil {
		report("engine", a.eng.Close())
	}
	report("data directory lock", a.dirLock.Unlock())
	report("instance ID", a.identity.Release())
	if len(errs) > 0 {
		a.log.Warn("sluice stopped, not cleanly", "instance", a.cfg.InstanceID, "err", errors.Join(errs...))
	} else {
		a.log.Info("sluice stopped", "instance", a.cfg.InstanceID)
	}
	return errors.Join(errs...)
}

// Run starts the app and runs it until ctx ends, then stops it gracefully.
func (a *App) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return a.Stop(context.Background())
}

func (a *App) running() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.started || a.stopped.Load() {
		return ErrNotStarted
	}
	if a.standby.Load() {
		return ErrStandby
	}
	if a.hubSvc == nil {
		return ErrNotStarted
	}
	return nil
}

// Publish stores events in a hub and returns their positions once they are
// durable. Events are routed by partition key; events without one go
// together to one partition, chosen in turn.
func (a *App) Publish(ctx context.Context, hubName string, events ...Event) ([]Position, error) {
	return a.publish(ctx, hubName, -1, events)
}

// PublishToPartition stores events in one partition of a hub.
func (a *App) PublishToPartition(ctx context.Context, hubName string, partition int, events ...Event) ([]Position, error) {
	if partition < 0 {
		return nil, fmt.Errorf("sluice: partition %d must not be negative", partition)
	}
	return a.publish(ctx, hubName, partition, events)
}

func (a *App) publish(ctx context.Context, hubName string, partition int, events []Event) ([]Position, error) {
	if err := a.running(); err != nil {
		return nil, err
	}
	pos, err := a.hubSvc.Publish(ctx, hubName, toHubEvents(events, partition))
	if err != nil {
		return nil, err
	}
	a.metrics.EventsIn.WithLabelValues(hubName).Add(float64(len(events)))
	out := make([]Position, len(pos))
	for i, p := range pos {
		out[i] = Position{Partition: p.Partition, SequenceNumber: p.Sequence}
	}
	return out, nil
}

// Lag returns how many events of a hub are stored after a consumer
// group's checkpoints, over all its partitions (what sluice hub lag
// totals). An empty group is the default one.
func (a *App) Lag(ctx context.Context, hubName, group string) (int64, error) {
	if err := a.running(); err != nil {
		return 0, err
	}
	lags, err := a.hubSvc.GroupLag(ctx, hubName, cmp.Or(group, hub.DefaultGroup))
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range lags {
		total += l.Events
	}
	return total, nil
}

// Processed returns how many events the named function has finished with
// (processed or dead-lettered) on this instance since it started.
func (a *App) Processed(function string) int64 {
	a.mu.Lock()
	h := a.host
	a.mu.Unlock()
	if h == nil {
		return 0
	}
	return h.Processed(function)
}
