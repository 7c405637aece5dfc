package engine

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// ListenIsLoopback reports whether listen, a host:port for Config.Listen
// (or a bare host), keeps the port on this machine: a loopback IP
// (127.0.0.0/8, ::1) or localhost. An empty host means 127.0.0.1, as it does
// for Config.Listen, and an empty listen opens no port at all, so both count.
// 0.0.0.0, ::, every other IP and every other host name do not: a name may
// resolve anywhere.
func ListenIsLoopback(listen string) bool {
	if listen == "" {
		return true
	}
	host := listen
	if h, _, err := net.SplitHostPort(listen); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// splitListen parses Config.Listen into the host and port the embedded
// server binds. Port 0 means a random port.
func splitListen(listen string) (string, int, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("engine: --nats-listen %q: want host:port, e.g. 127.0.0.1:4223", listen)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("engine: --nats-listen %q: port must be a number from 0 to 65535", listen)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, p, nil
}

func (c *Config) validateCredentials() error {
	switch {
	case c.Token != "" && (c.User != "" || c.Password != ""):
		return errors.New("engine: give either --nats-token or --nats-user/--nats-password, not both")
	case (c.User == "") != (c.Password == ""):
		return errors.New("engine: --nats-user and --nats-password go together: give both (or --nats-token instead)")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("engine: --nats-tls-cert and --nats-tls-key go together: give both PEM files")
	}
	return nil
}

// validateEmbedded checks what the embedded server needs: above all that it
// listens beyond loopback only with client credentials and TLS (invariant 8).
func (c *Config) validateEmbedded() error {
	if isBcrypt(c.Password) || isBcrypt(c.Token) {
		return errors.New("engine: --nats-password or --nats-token is a bcrypt hash; give the secret itself, since Sluice's own connections to the embedded server must present it")
	}
	if c.Listen == "" {
		return nil
	}
	if _, _, err := splitListen(c.Listen); err != nil {
		return err
	}
	if c.TLSCA != "" && c.TLSCert == "" {
		return errors.New("engine: --nats-ca makes the embedded server require client certificates, which needs TLS: give --nats-tls-cert and --nats-tls-key too")
	}
	if missing := c.exposure(); missing != "" && !c.Insecure {
		return fmt.Errorf("engine: --nats-listen %s exposes every stream beyond this machine %s; give --nats-token (or --nats-user/--nats-password) and --nats-tls-cert/--nats-tls-key, or --insecure for a throwaway setup",
			c.Listen, missing)
	}
	return nil
}

// exposure says what the embedded server's listener lacks when it accepts
// clients from other machines ("without TLS"…), or "" when it is protected
// as invariant 8 asks: it does not listen, listens on loopback only, or
// requires client credentials and TLS.
func (c *Config) exposure() string {
	if c.URL != "" || ListenIsLoopback(c.Listen) {
		return ""
	}
	auth, tlsOn := c.Token != "" || c.User != "", c.TLSCert != ""
	switch {
	case auth && tlsOn:
		return ""
	case auth:
		return "without TLS"
	case tlsOn:
		return "without client authentication"
	}
	return "without client authentication or TLS"
}

// validateURL checks each URL of the list as nats.go will read it, so that
// a typo is reported here with its credentials hidden (a parse error of
// net/url quotes the whole URL).
func (c *Config) validateURL() error {
	for u := range strings.SplitSeq(c.URL, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		parsed, _, err := parseNATSURL(u)
		if err != nil || (parsed.User == nil && strings.Contains(u, "@")) {
			return fmt.Errorf("engine: --nats-url %s is not a valid URL; write it as nats://host:4222 or tls://host:4222, with special characters of a user, password or token percent-encoded (%%40 for @)",
				RedactURL(u))
		}
		if parsed.User != nil && (c.Token != "" || c.User != "") {
			return fmt.Errorf("engine: --nats-url %s carries credentials and --nats-token or --nats-user/--nats-password gives others; give them once",
				RedactURL(u))
		}
	}
	return nil
}

// bcryptHash matches what nats-server takes for a bcrypt hash rather than a
// plain password or token.
var bcryptHash = regexp.MustCompile(`^\$2[abxy]\$\d{2}\$`)

func isBcrypt(s string) bool { return bcryptHash.MatchString(s) }

// clientOptions are the options of every connection Sluice opens: its
// credentials and, for an external server, TLS and reconnection.
func clientOptions(cfg Config) ([]nats.Option, error) {
	// No reconnect buffer: a write made while the connection is down fails
	// at once (nats.ErrReconnectBufExceeded) instead of being sent after
	// the reconnect, when its caller has long given up on it; a lease or
	// claim write sent then would be held by nobody who knows it.
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectBufSize(-1)}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.URL == "" {
		// In-process connections need no TLS, even when the listener has it.
		return opts, nil
	}
	opts = append(opts, nats.RetryOnFailedConnect(false), nats.ReconnectWait(250*time.Millisecond))
	tc, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// clientTLS is the TLS configuration for an external server, or nil when
// neither a CA nor a client certificate is given (a tls:// URL then uses
// the system's roots).
func clientTLS(cfg Config) (*tls.Config, error) {
	if cfg.TLSCA == "" && cfg.TLSCert == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSCA != "" {
		pool, err := loadCA(cfg.TLSCA)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if cfg.TLSCert != "" {
		cert, err := loadKeyPair(cfg)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// serverTLS is the TLS configuration of the embedded server's listener.
func serverTLS(cfg Config) (*tls.Config, error) {
	cert, err := loadKeyPair(cfg)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.TLSCA != "" {
		if tc.ClientCAs, err = loadCA(cfg.TLSCA); err != nil {
			return nil, err
		}
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

func loadKeyPair(cfg Config) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("engine: --nats-tls-cert %s and --nats-tls-key %s: %w (give a PEM certificate and its PEM private key)",
			cfg.TLSCert, cfg.TLSKey, err)
	}
	return cert, nil
}

func loadCA(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("engine: --nats-ca: %w (give the PEM file of the CA certificate)", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("engine: --nats-ca %s holds no PEM certificate; give the PEM file of the CA certificate", file)
	}
	return pool, nil
}

// connectHint says what to check when connecting to an external server
// fails.
func connectHint(err error) string {
	var alert tls.AlertError
	switch {
	case errors.Is(err, nats.ErrAuthorization):
		return "the server refused the credentials: check --nats-token or --nats-user/--nats-password, or those in --nats-url"
	case errors.Is(err, nats.ErrSecureConnRequired):
		return "the server requires TLS: use a tls:// URL, with --nats-ca if a CA this machine does not trust signed its certificate"
	case errors.Is(err, nats.ErrSecureConnWanted):
		return "TLS was asked for (a tls:// URL, --nats-ca or --nats-tls-cert) but the server does not offer it"
	case errors.Is(err, nats.ErrTLS), errors.As(err, &alert):
		return "TLS failed: give --nats-ca with the CA that signed the server's certificate, check that the URL's host is named in that certificate, " +
			"and give --nats-tls-cert/--nats-tls-key if the server requires a client certificate"
	}
	return "is the server running? check --nats-url"
}
