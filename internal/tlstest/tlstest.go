// Package tlstest makes a throwaway certificate authority for tests: a CA,
// a server certificate and a client certificate signed by it, written as PEM
// files into the test's temporary directory. Everything is generated in
// memory with crypto/x509 (ECDSA P-256); no external tool is needed.
//
//	pki := tlstest.New(t) // a server certificate for 127.0.0.1, ::1 and localhost
//	// give pki.ServerCert, pki.ServerKey (and pki.CA to verify clients) to the server
//	conn, err := tls.Dial("tcp", addr, pki.ClientConfig())
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// DefaultNames are the names the server certificate is valid for when New
// is given none: every way a test reaches a server on this machine.
var DefaultNames = []string{"127.0.0.1", "::1", "localhost"}

// PKI is a test certificate authority and the certificates it signed. The
// file fields are paths of PEM files in Dir.
type PKI struct {
	Dir string
	// CA is the CA certificate: servers use it to verify client
	// certificates, clients to verify the server.
	CA string
	// ServerCert and ServerKey are the server's certificate (valid for the
	// names given to New) and its private key.
	ServerCert, ServerKey string
	// ClientCert and ClientKey are a client certificate (for client
	// authentication, common name "tlstest client") and its private key.
	ClientCert, ClientKey string
	// Pool holds the CA certificate, for a client's RootCAs or a server's
	// ClientCAs.
	Pool *x509.CertPool

	server, client tls.Certificate
}

// New creates a CA and a server and a client certificate signed by it, valid
// from an hour ago for a day, and writes them into a new t.TempDir(). The
// server certificate is valid for names (IP addresses or DNS names), or
// DefaultNames when none are given. Each call makes a new, unrelated CA, so
// two PKIs do not trust each other's certificates. Any failure fails t.
func New(t testing.TB, names ...string) *PKI {
	t.Helper()
	if len(names) == 0 {
		names = DefaultNames
	}
	dir := t.TempDir()
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tlstest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("tlstest: create CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("tlstest: parse CA certificate: %v", err)
	}

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, names []string) ([]byte, *ecdsa.PrivateKey) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		for _, n := range names {
			if ip := net.ParseIP(n); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, n)
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("tlstest: create %s certificate: %v", cn, err)
		}
		return der, key
	}
	serverDER, serverKey := leaf(2, names[0], x509.ExtKeyUsageServerAuth, names)
	clientDER, clientKey := leaf(3, "tlstest client", x509.ExtKeyUsageClientAuth, nil)

	p := &PKI{
		Dir:        dir,
		CA:         writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER),
		ServerCert: writePEM(t, dir, "server.pem", "CERTIFICATE", serverDER),
		ServerKey:  writePEM(t, dir, "server-key.pem", "PRIVATE KEY", marshalKey(t, serverKey)),
		ClientCert: writePEM(t, dir, "client.pem", "CERTIFICATE", clientDER),
		ClientKey:  writePEM(t, dir, "client-key.pem", "PRIVATE KEY", marshalKey(t, clientKey)),
		Pool:       x509.NewCertPool(),
	}
	p.Pool.AddCert(ca)
	p.server = tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}
	p.client = tls.Certificate{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}
	return p
}

// ClientConfig returns a client configuration that trusts the CA and
// presents the client certificate when the server asks for one.
func (p *PKI) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      p.Pool,
		Certificates: []tls.Certificate{p.client},
	}
}

// ServerConfig returns a server configuration that presents the server
// certificate and verifies client certificates signed by the CA when a
// client presents one (set ClientAuth to tls.RequireAndVerifyClientCert to
// require them).
func (p *PKI) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{p.server},
		ClientCAs:    p.Pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: generate key: %v", err)
	}
	return key
}

func marshalKey(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlstest: marshal key: %v", err)
	}
	return der
}

// writePEM writes one PEM block to dir/name and returns the path. Keys and
// certificates alike are written readable by the owner only.
func writePEM(t testing.TB, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatalf("tlstest: write %s: %v", path, err)
	}
	return path
}
