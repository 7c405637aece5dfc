package sluice

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/datadir"
)

// Defaults of the HTTP server's limits (see Config).
const (
	DefaultHTTPReadTimeout  = 2 * time.Minute
	DefaultHTTPWriteTimeout = 5 * time.Minute
	DefaultHTTPIdleTimeout  = 2 * time.Minute
	DefaultMaxConnections   = 1024
)

// ownsDataDir reports whether this instance must be its data directory's
// only user: when the embedded engine keeps its store there, which no two
// servers may share. (An SQLite document store alone may be shared by
// instances on one machine: SQLite coordinates its file among processes.)
func (c *Config) ownsDataDir() bool { return c.NATSURL == "" }

// docStoreName names a PostgreSQL document store in messages by its host
// and database only: its user info and parameters, where passwords go
// (password=, sslpassword=), are left out.
func docStoreName(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "(an unparsable PostgreSQL URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// lockDataDir makes this process the data directory's only user.
func (a *App) lockDataDir() error {
	if !a.cfg.ownsDataDir() {
		return nil
	}
	l, err := datadir.Acquire(a.cfg.DataDir, a.cfg.InstanceID)
	if err != nil {
		return fmt.Errorf("sluice: %w", err)
	}
	a.dirLock = l
	return nil
}

// beyondLoopback reports whether a listen address (host:port) accepts
// connections from other machines: an empty or unspecified host, a
// non-loopback address, or a name other than localhost.
func beyondLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// openGuard opens the API keys, registers the bootstrap admin key, and
// decides how the HTTP API is protected. It refuses to serve beyond
// loopback without keys unless Insecure is set.
func (a *App) openGuard(ctx context.Context) error {
	kv, err := auth.OpenKeysBucket(ctx, a.eng.JS)
	if err != nil {
		return fmt.Errorf("sluice: %w", err)
	}
	if a.keys, err = auth.OpenKeys(ctx, kv, auth.KeysOptions{Logger: a.log}); err != nil {
		return fmt.Errorf("sluice: %w", err)
	}
	if a.cfg.AdminKeyFile != "" {
		if err := a.bootstrapAdminKey(ctx); err != nil {
			return err
		}
	}
	exposed := a.cfg.HTTPAddr != "" && beyondLoopback(a.cfg.HTTPAddr)
	a.guard, err = auth.NewGuard(auth.GuardConfig{
		Keys: a.keys, AdminKey: a.cfg.AdminKey, PublicHosts: a.cfg.PublicHosts, Logger: a.log,
		// Beyond loopback the API stays closed even if every key is
		// revoked; function keys mean the operator wants keys, and the
		// API must not be a way around them.
		RequireKeys: (exposed && !a.cfg.Insecure) || len(a.cfg.FunctionKeys) > 0,
	})
	if err != nil {
		return fmt.Errorf("sluice: --public-host: %w", err)
	}
	switch {
	case !exposed:
	case a.cfg.Insecure:
		a.log.Warn("INSECURE: the HTTP API listens beyond this machine and --insecure is set: without API keys anyone who reaches it can read, publish, replay and delete everything; use this only for a throwaway setup",
			"addr", a.cfg.HTTPAddr)
	case !a.keys.Any() && a.cfg.AdminKey == "":
		return fmt.Errorf("sluice: --http %s listens beyond this machine, and no API key exists, so anyone who reaches it could change anything. Create a key first: start with --admin-key-file FILE (a new admin key is written there), or run 'sluice key create --name admin --scope admin --data-dir %s' with the server stopped; or pass --insecure for a throwaway setup",
			a.cfg.HTTPAddr, a.cfg.DataDir)
	case a.cfg.TLSCert == "":
		a.log.Warn("the HTTP API listens beyond this machine without TLS: API keys travel in clear text; give --tls-cert and --tls-key", "addr", a.cfg.HTTPAddr)
	}
	if len(a.cfg.FunctionKeys) > 0 && !a.keys.Any() && a.cfg.AdminKey == "" {
		a.log.Warn("function keys are set, so the HTTP API under /api/v1 needs an API key too, and none exists yet; create one with sluice key create, or set SLUICE_ADMIN_KEY")
	}
	return nil
}

// bootstrapAdminKey registers the admin key in Config.AdminKeyFile, or
// makes one and writes it there when the file does not exist.
func (a *App) bootstrapAdminKey(ctx context.Context) error {
	path := a.cfg.AdminKeyFile
	data, err := os.ReadFile(path)
	created := false
	switch {
	case errors.Is(err, fs.ErrNotExist):
		token := auth.NewToken()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("sluice: --admin-key-file: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("sluice: --admin-key-file: %w", err)
		}
		_, werr := f.WriteString(token + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("sluice: --admin-key-file: write %s: %w", path, werr)
		}
		data, created = []byte(token), true
	case err != nil:
		return fmt.Errorf("sluice: --admin-key-file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if _, _, err := auth.ParseToken(token); err != nil {
		return fmt.Errorf("sluice: --admin-key-file %s holds no Sluice API key (%v); put a key made by sluice key create in it, or remove it to have one made", path, err)
	}
	key, err := a.keys.Import(ctx, token, auth.CreateOptions{Name: "admin-key-file", Scopes: []string{auth.VerbAdmin}, CreatedBy: a.cfg.InstanceID})
	if err != nil {
		return fmt.Errorf("sluice: --admin-key-file %s: %w", path, err)
	}
	if created {
		a.log.Info("a new admin API key was written to the admin key file; keep it secret", "file", path, "key_id", key.ID)
	}
	return nil
}

// validateLimits checks the HTTP server's limits.
func (c *Config) validateLimits() error {
	var errs []error
	for _, l := range []struct {
		name string
		d    time.Duration
	}{{"HTTPReadTimeout", c.HTTPReadTimeout}, {"HTTPWriteTimeout", c.HTTPWriteTimeout}, {"HTTPIdleTimeout", c.HTTPIdleTimeout}} {
		if l.d < 0 {
			errs = append(errs, fmt.Errorf("sluice: %s is %s: give a positive duration, or 0 for the default", l.name, l.d))
		}
	}
	if c.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("sluice: MaxConnections is %d: give a positive number, or 0 for the default %d", c.MaxConnections, DefaultMaxConnections))
	}
	return errors.Join(errs...)
}

// tlsConfig loads the HTTP server's certificate, or returns nil without
// TLS.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if c.TLSCert == "" && c.TLSKey == "" {
		return nil, nil
	}
	if c.TLSCert == "" || c.TLSKey == "" {
		return nil, errors.New("sluice: TLS needs both a certificate and its key (--tls-cert and --tls-key)")
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("sluice: load the TLS certificate %s and key %s: %w", c.TLSCert, c.TLSKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// limitListener accepts at most n connections at once; more wait in the
// kernel's backlog until one closes.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), closed: make(chan struct{})}
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.closed) })
	return err
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
