package tlstest_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/tlstest"
)

func TestFilesLoadAndVerify(t *testing.T) {
	t.Parallel()
	pki := tlstest.New(t)
	server, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(server.Certificate[0])
	require.NoError(t, err)
	for _, name := range tlstest.DefaultNames {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pki.Pool})
		require.NoError(t, err, "the server certificate is valid for %s", name)
	}
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pki.Pool})
	require.Error(t, err, "and for nothing else")

	client, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	require.NoError(t, err)
	leaf, err = x509.ParseCertificate(client.Certificate[0])
	require.NoError(t, err)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pki.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.NoError(t, err)

	_, err = leaf.Verify(x509.VerifyOptions{Roots: tlstest.New(t).Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.ErrorAs(t, err, &x509.UnknownAuthorityError{}, "another PKI does not trust this one")
}

func TestCustomNames(t *testing.T) {
	t.Parallel()
	pki := tlstest.New(t, "nats.internal", "10.1.2.3")
	server, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(server.Certificate[0])
	require.NoError(t, err)
	require.Equal(t, []string{"nats.internal"}, leaf.DNSNames)
	require.Len(t, leaf.IPAddresses, 1)
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pki.Pool})
	require.Error(t, err)
}

// TestMutualHandshake runs a real handshake over a loopback connection with
// the configurations the package hands out, the server requiring a client
// certificate.
func TestMutualHandshake(t *testing.T) {
	t.Parallel()
	pki := tlstest.New(t)
	serverCfg := pki.ServerConfig()
	serverCfg.ClientAuth = tls.RequireAndVerifyClientCert
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		_, err = io.Copy(conn, io.LimitReader(conn, 4))
		done <- err
	}()

	conn, err := tls.Dial("tcp", ln.Addr().String(), pki.ClientConfig())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(conn, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))
	require.NoError(t, <-done)
	require.Equal(t, "127.0.0.1", conn.ConnectionState().PeerCertificates[0].Subject.CommonName)
}
