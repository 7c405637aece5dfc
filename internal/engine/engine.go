// Package engine starts or connects to the NATS JetStream server that holds
// Sluice's hubs, queues and key-value state. By default the server is embedded
// in the process with its store under the data directory and no listening
// port; given a URL it connects to an external server or cluster instead. The
// rest of Sluice sees the same connection either way.
//
// Asked to listen, the embedded server accepts other processes: beyond
// loopback only with client credentials and TLS, or with Insecure
// (invariant 8). Connections to an external server can use TLS, a private
// CA and credentials. No error or log line of this package shows a password
// or token: URLs go through RedactURL.
package engine

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sync modes for the embedded store.
const (
	// SyncAlways fsyncs every stored message before it is acknowledged.
	// Hubs pack many events per message, so this stays fast (group commit).
	SyncAlways = "always"
	// SyncInterval fsyncs on a timer: faster, and a process crash loses
	// nothing, but a power cut can lose up to one interval of writes.
	SyncInterval = "interval"
)

// DefaultMaxPayload is the embedded server's largest message when
// Config.MaxPayload is zero: room for a 1 MiB event plus packing. A NATS
// server started without a max_payload setting accepts 1 MiB.
const DefaultMaxPayload = 4 << 20

// Config says which server to use and how.
type Config struct {
	// URL of an external NATS server or cluster (comma-separated URLs). When
	// empty, a server is embedded in this process.
	URL string
	// DataDir is the data directory; the embedded JetStream store lives in
	// DataDir/nats. Required when URL is empty.
	DataDir string
	// Listen is a host:port on which the embedded server accepts clients
	// (other sluice instances, the nats CLI). Empty means no port at all; an
	// empty host means 127.0.0.1 and port 0 a random port. An address beyond
	// loopback (see ListenIsLoopback) needs client credentials (Token, or
	// User and Password) and TLS (TLSCert and TLSKey), or Insecure.
	Listen string

	// User and Password, or Token (not both), are client credentials.
	// Embedded server: every client must present them, on the listener and
	// in process alike (Sluice's own connections do). A bcrypt hash is not
	// accepted here, since Sluice must present the secret itself.
	// External server: they are presented to it, unless the URL carries its
	// own (nats://user:password@host or nats://token@host); giving both is
	// an error. Default: none.
	User     string
	Password string
	Token    string
	// TLSCert and TLSKey are the PEM files of this process's certificate
	// and private key, given together. Embedded server: its listener
	// requires TLS with this certificate, so clients connect with tls://
	// URLs (Sluice's in-process connections need no TLS). External server:
	// the client certificate presented when the server asks for one.
	// Default: none (no TLS on the embedded listener).
	TLSCert string
	TLSKey  string
	// TLSCA is a PEM file of the CA certificate(s) the other side's
	// certificate must be signed by. Embedded server: clients of the
	// listener must present a certificate signed by it (mutual TLS); this
	// needs TLSCert and TLSKey, and does not replace Token or User and
	// Password. External server: its certificate is verified against this
	// CA instead of the system's roots, and the connection uses TLS even
	// for a nats:// URL. Default: none.
	TLSCA string
	// Insecure lets the embedded server listen beyond loopback without
	// client credentials or TLS: anyone who reaches the port can read,
	// change and delete every stream. For throwaway setups only; every
	// start where it makes a difference logs a warning. It changes nothing
	// else (an external server's security is its own).
	Insecure bool

	// Sync is SyncAlways (default) or SyncInterval. It applies to the
	// embedded server; an external server keeps its own sync_interval.
	Sync string
	// SyncEvery is the fsync period in SyncInterval mode. Default 1s.
	SyncEvery time.Duration
	// MaxPayload is the largest message the embedded server accepts.
	// Default DefaultMaxPayload (4 MiB): room for a 1 MiB event plus
	// packing, and events up to about 4 MiB when a hub is configured for
	// them. Readers prefetch up to this much per partition, so a larger
	// limit costs memory.
	MaxPayload int32
	// Replicas is how many copies the server keeps of each stream, KV bucket
	// and object store Sluice creates: 1 to 5. Default (0): 1 on a single
	// server, the cluster's size up to 3 on a cluster. An existing resource
	// with more replicas keeps them.
	Replicas int
	// PublishAckTimeout bounds the wait for the engine to confirm an
	// asynchronous publish (hub records): past it the publish fails as
	// unconfirmed instead of holding its partition. Default 10s.
	PublishAckTimeout time.Duration
	// Domain is the embedded server's JetStream domain. The two sides of a
	// geo-disaster recovery pair (see internal/dr) each need one, and they
	// must differ (e.g. "primary" and "secondary"). Default: none.
	Domain string
	// LeafListen is a host:port on which the embedded server accepts leaf
	// node connections: a DR primary's, which its secondary connects to.
	// Empty means none; port 0 a free port (see Engine.LeafURL). Beyond
	// loopback it needs User and Password (leaf nodes present them) and
	// TLS, or Insecure. Needs Domain.
	LeafListen string
	// LeafRemote is the leaf-node URL of a DR primary's server
	// (nats-leaf://[user:password@]host:port, or tls:// for TLS, verified
	// against TLSCA): the embedded server connects to it as a leaf node,
	// without exchanging any of Sluice's data subjects (DataSubjects), so
	// that this site's Sluice can mirror the primary's streams through
	// its JetStream domain. Needs Domain.
	LeafRemote string
	// Name identifies this client connection in server monitoring.
	Name string
	// Logger receives engine logs. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) withDefaults() Config {
	out := *c
	out.Sync = cmp.Or(out.Sync, SyncAlways)
	out.SyncEvery = cmp.Or(out.SyncEvery, time.Second)
	out.MaxPayload = cmp.Or(out.MaxPayload, DefaultMaxPayload)
	out.PublishAckTimeout = cmp.Or(out.PublishAckTimeout, 10*time.Second)
	out.Name = cmp.Or(out.Name, "sluice")
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out
}

func (c *Config) validate() error {
	if c.Sync != SyncAlways && c.Sync != SyncInterval {
		return fmt.Errorf("engine: sync must be %q or %q, got %q", SyncAlways, SyncInterval, c.Sync)
	}
	if c.URL == "" && c.DataDir == "" {
		return errors.New("engine: a data directory is required for the embedded server (or give a NATS URL)")
	}
	if c.URL != "" && c.Listen != "" {
		return errors.New("engine: --nats-listen applies only to the embedded server; it cannot be combined with --nats-url")
	}
	if err := c.validateCredentials(); err != nil {
		return err
	}
	if err := c.validateLeaf(); err != nil {
		return err
	}
	if c.URL != "" {
		return c.validateURL()
	}
	return c.validateEmbedded()
}

// Engine is a running connection to JetStream, with the embedded server when
// there is one.
type Engine struct {
	Conn *nats.Conn
	JS   jetstream.JetStream
	// ReadJS is a second connection for bulk reading, so that readers do
	// not share one connection's buffers with publishers.
	ReadConn *nats.Conn
	ReadJS   jetstream.JetStream

	srv      *server.Server
	logger   *slog.Logger
	replicas int
	domain   string // the server's JetStream domain
	leafAddr string // host:port of the embedded server's leaf-node listener
}

// Start embeds a server or connects to the configured one, and waits until
// JetStream answers.
func Start(ctx context.Context, cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Engine{logger: cfg.Logger}
	opts, err := clientOptions(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		if e.srv, e.leafAddr, err = startEmbedded(cfg); err != nil {
			return nil, err
		}
		if missing := cfg.exposure(); missing != "" {
			// Only Insecure lets validate pass this.
			e.logger.Warn("engine: INSECURE: --insecure is set and the embedded NATS server listens beyond this machine "+missing+
				": anyone who reaches it can read, change and delete every stream. Use this only for a throwaway setup",
				"listen", e.ClientURL())
		}
	}
	if e.Conn, err = e.connect(cfg, opts, ""); err == nil {
		e.ReadConn, err = e.connect(cfg, opts, " reader")
	}
	if err != nil {
		e.Close()
		return nil, err
	}
	e.JS, err = jetstream.New(e.Conn, jetstream.WithPublishAsyncMaxPending(8192),
		jetstream.WithPublishAsyncTimeout(cfg.PublishAckTimeout))
	if err == nil {
		e.ReadJS, err = jetstream.New(e.ReadConn)
	}
	if err == nil {
		e.domain, err = waitJetStream(ctx, e.JS)
	}
	if err == nil {
		err = e.settleReplicas(cfg)
	}
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// connect opens a client connection to the embedded or external server.
func (e *Engine) connect(cfg Config, opts []nats.Option, suffix string) (*nats.Conn, error) {
	opts = append(slices.Clip(opts), nats.Name(cfg.Name+suffix))
	if e.srv != nil {
		nc, err := nats.Connect("", append(opts, nats.InProcessServer(e.srv))...)
		if err != nil {
			return nil, hideSecrets(fmt.Errorf("engine: connect to embedded server: %w", err), cfg)
		}
		return nc, nil
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, hideSecrets(fmt.Errorf("engine: connect to NATS at %s: %w (%s)", RedactURL(cfg.URL), err, connectHint(err)), cfg)
	}
	return nc, nil
}

func startEmbedded(cfg Config) (*server.Server, string, error) {
	storeDir := filepath.Join(cfg.DataDir, "nats")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, "", fmt.Errorf("engine: create store directory: %w", err)
	}
	opts := &server.Options{
		ServerName:    "sluice",
		JetStream:     true,
		StoreDir:      storeDir,
		MaxPayload:    cfg.MaxPayload,
		NoSigs:        true,
		NoLog:         true,
		DontListen:    cfg.Listen == "",
		SyncAlways:    cfg.Sync == SyncAlways,
		SyncInterval:  cfg.SyncEvery,
		Username:      cfg.User,
		Password:      cfg.Password,
		Authorization: cfg.Token,
	}
	if cfg.Listen != "" {
		var err error
		if opts.Host, opts.Port, err = splitListen(cfg.Listen); err != nil {
			return nil, "", err
		}
		if opts.Port == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	if cfg.TLSCert != "" {
		tc, err := serverTLS(cfg)
		if err != nil {
			return nil, "", err
		}
		opts.TLSConfig, opts.TLS, opts.TLSVerify = tc, true, tc.ClientAuth == tls.RequireAndVerifyClientCert
	}
	if err := leafOptions(cfg, opts); err != nil {
		return nil, "", err
	}
	var leafAddr string
	if cfg.LeafListen != "" {
		host := opts.LeafNode.Host
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		leafAddr = net.JoinHostPort(host, strconv.Itoa(opts.LeafNode.Port))
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("engine: configure embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, "", fmt.Errorf("engine: embedded NATS did not start within 30s (store %s; is another sluice using this data directory or port?)", storeDir)
	}
	return srv, leafAddr, nil
}

// waitJetStream waits until JetStream answers, and returns its domain.
func waitJetStream(ctx context.Context, js jetstream.JetStream) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		ai, err := js.AccountInfo(ctx)
		if err == nil {
			return ai.Domain, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("engine: JetStream is not available: %w (an external server must run with -js)", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ClientURL is the URL other processes can connect to: the embedded server's
// listening address, or "" when it has none.
func (e *Engine) ClientURL() string {
	if e.srv == nil || e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Embedded reports whether the server runs in this process.
func (e *Engine) Embedded() bool { return e.srv != nil }

// Private reports whether no other process can reach the server: it is
// embedded and does not listen. This process is then the only writer.
func (e *Engine) Private() bool { return e.srv != nil && e.srv.Addr() == nil }

// MaxPayload is the largest message the server accepts.
func (e *Engine) MaxPayload() int64 { return e.Conn.MaxPayload() }

// Close drains the connection and stops the embedded server. It is safe to
// call more than once.
func (e *Engine) Close() error {
	for _, nc := range []*nats.Conn{e.ReadConn, e.Conn} {
		if nc == nil || nc.IsClosed() {
			continue
		}
		_ = nc.Drain()
		// Drain is asynchronous; wait a bounded time for it to finish.
		deadline := time.Now().Add(5 * time.Second)
		for !nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		nc.Close()
	}
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
	return nil
}

// VersionAtLeast reports whether server version have (as "2.12.3" or
// "2.12.0-beta") is want or newer.
func VersionAtLeast(have, want string) bool {
	parse := func(v string) [3]int {
		var out [3]int
		v, _, _ = strings.Cut(strings.TrimPrefix(v, "v"), "-")
		for i, part := range strings.SplitN(v, ".", 3) {
			out[i], _ = strconv.Atoi(part)
		}
		return out
	}
	h, w := parse(have), parse(want)
	for i := range h {
		if h[i] != w[i] {
			return h[i] > w[i]
		}
	}
	return true
}
