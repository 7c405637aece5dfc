package engine

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"

	"github.com/nats-io/nats-server/v2/server"
)

// Geo-disaster recovery pairs two engines (see internal/dr): the
// secondary's server connects to the primary's as a leaf node, and each
// keeps its own JetStream domain, so that each site's streams stay its
// own while the secondary reaches the primary's JetStream API as
// $JS.<primary domain>.API to mirror its streams.

// DataSubjects are the subjects Sluice stores data under: hub partitions,
// queues, KV buckets and object stores. A DR secondary's leaf connection
// neither takes them from the primary nor gives them to it: the streams of
// both sites have the same subjects, and without this a message published
// on one site would also be stored by the other's stream of that subject
// once the secondary's streams are promoted (with the primary still up).
// Mirrors do not need them: their traffic is JetStream API requests and
// deliveries on internal subjects.
var DataSubjects = []string{"hub.>", "queue.>", "$KV.>", "$O.>"}

var domainRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidateDomain reports whether d can name a JetStream domain.
func ValidateDomain(d string) error {
	if !domainRE.MatchString(d) {
		return fmt.Errorf("engine: JetStream domain %q: use 1-64 letters, digits, '-' or '_'", d)
	}
	return nil
}

// validateLeaf checks the leaf-node and domain settings of cfg.
func (c *Config) validateLeaf() error {
	if c.Domain == "" && c.LeafListen == "" && c.LeafRemote == "" {
		return nil
	}
	if c.URL != "" {
		return errors.New("engine: --nats-domain, --nats-leaf-listen and --nats-leaf-remote configure the embedded server; with --nats-url configure them in the external server (see docs/dr.md)")
	}
	if c.Domain == "" {
		return errors.New("engine: a leaf-node connection between two Sluice engines needs a JetStream domain on each side: give --nats-domain (e.g. primary or secondary)")
	}
	if err := ValidateDomain(c.Domain); err != nil {
		return err
	}
	if c.LeafListen != "" {
		if _, _, err := splitListen(c.LeafListen); err != nil {
			return fmt.Errorf("engine: --nats-leaf-listen: %w", err)
		}
		if !ListenIsLoopback(c.LeafListen) && !c.Insecure {
			switch {
			case c.User == "" || c.TLSCert == "":
				return fmt.Errorf("engine: --nats-leaf-listen %s accepts leaf nodes from beyond this machine, which could then read every stream: give --nats-user/--nats-password and --nats-tls-cert/--nats-tls-key (leaf nodes present the user and password), or --insecure for a throwaway setup", c.LeafListen)
			}
		}
	}
	if c.LeafRemote != "" {
		u, err := url.Parse(c.LeafRemote)
		if err != nil || u.Host == "" || !slices.Contains([]string{"nats-leaf", "nats", "tls"}, u.Scheme) {
			return fmt.Errorf("engine: --nats-leaf-remote %s: give the primary's leaf-node address as nats-leaf://host:7422 (or tls://host:7422), with user:password@ before the host if it asks for them", RedactURL(c.LeafRemote))
		}
	}
	return nil
}

// leafOptions adds the domain and leaf-node settings of cfg to the embedded
// server's options. opts.LeafNode.Host and Port are where it listens.
func leafOptions(cfg Config, opts *server.Options) error {
	opts.JetStreamDomain = cfg.Domain
	if cfg.LeafListen != "" {
		host, port, err := splitListen(cfg.LeafListen)
		if err != nil {
			return err
		}
		if port == 0 {
			// The server does not tell which port it picked, so pick one
			// here (another process may take it meanwhile: then the
			// start fails, and a test tries again).
			if port, err = freePort(host); err != nil {
				return err
			}
		}
		opts.LeafNode.Host, opts.LeafNode.Port = host, port
		opts.LeafNode.Username, opts.LeafNode.Password = cfg.User, cfg.Password
		if cfg.TLSCert != "" {
			tc, err := serverTLS(cfg)
			if err != nil {
				return err
			}
			opts.LeafNode.TLSConfig = tc
		}
	}
	if cfg.LeafRemote != "" {
		u, err := url.Parse(cfg.LeafRemote)
		if err != nil {
			return fmt.Errorf("engine: --nats-leaf-remote %s: %w", RedactURL(cfg.LeafRemote), err)
		}
		if u.Scheme == "nats" {
			u.Scheme = "nats-leaf"
		}
		remote := &server.RemoteLeafOpts{URLs: []*url.URL{u}, DenyImports: DataSubjects, DenyExports: DataSubjects}
		if u.Scheme == "tls" || cfg.TLSCA != "" {
			tc, err := clientTLS(cfg)
			if err != nil {
				return err
			}
			remote.TLS, remote.TLSConfig = true, tc
		}
		opts.LeafNode.Remotes = []*server.RemoteLeafOpts{remote}
	}
	return nil
}

func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("engine: --nats-leaf-listen: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// LeafURL is the address a DR secondary's engine connects to as a leaf
// node (nats-leaf://host:port), or "" when this embedded server accepts no
// leaf nodes.
func (e *Engine) LeafURL() string {
	if e.srv == nil || e.leafAddr == "" {
		return ""
	}
	return "nats-leaf://" + e.leafAddr
}

// Domain is the JetStream domain of the server this engine uses, as the
// server reports it ("" when it has none).
func (e *Engine) Domain() string { return e.domain }

// LeafConnected reports whether the embedded server has a leaf-node
// connection (to its primary, or from a secondary).
func (e *Engine) LeafConnected() bool {
	return e.srv != nil && e.srv.NumLeafNodes() > 0
}
