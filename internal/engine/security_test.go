package engine_test

import (
	"context"
	"crypto/x509"
	"github.com/sluicehq/sluice/internal/testlog"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/tlstest"
)

// startSecured starts an embedded engine listening on a random loopback
// port with TLS and the credentials of cfg, closed when the test ends.
func startSecured(t *testing.T, pki *tlstest.PKI, cfg engine.Config) *engine.Engine {
	t.Helper()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.TLSCert, cfg.TLSKey = pki.ServerCert, pki.ServerKey
	eng, err := engine.Start(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })
	require.True(t, strings.HasPrefix(eng.ClientURL(), "tls://"), eng.ClientURL())
	useJetStream(t, eng.JS) // in-process connections present the credentials
	return eng
}

// dial connects a plain nats.go client, closed when the test ends.
func dial(t *testing.T, serverURL string, opts ...nats.Option) error {
	t.Helper()
	nc, err := nats.Connect(serverURL, append(opts, nats.MaxReconnects(0), nats.Timeout(10*time.Second))...)
	if err != nil {
		return err
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	useJetStream(t, js)
	return nil
}

// useJetStream creates a stream and stores a message in it.
func useJetStream(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	name := enginetest.Name("s")
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name}})
	require.NoError(t, err)
	ack, err := js.Publish(ctx, name, []byte("ok"))
	require.NoError(t, err)
	require.Equal(t, uint64(1), ack.Sequence)
}

func TestEmbeddedListenerWithTokenAndTLS(t *testing.T) {
	t.Parallel()
	pki := tlstest.New(t)
	const token = "tok-3f9a-secret"
	srvURL := startSecured(t, pki, engine.Config{Token: token}).ClientURL()

	err := dial(t, srvURL, nats.RootCAs(pki.CA))
	require.ErrorIs(t, err, nats.ErrAuthorization, "no credentials")
	err = dial(t, srvURL, nats.RootCAs(pki.CA), nats.Token("wrong"))
	require.ErrorIs(t, err, nats.ErrAuthorization, "wrong token")
	err = dial(t, srvURL, nats.Token(token))
	require.ErrorAs(t, err, &x509.UnknownAuthorityError{}, "a client without the CA does not trust the server")
	err = dial(t, strings.Replace(srvURL, "tls://", "nats://", 1), nats.Token(token))
	require.ErrorIs(t, err, nats.ErrTLS, "a nats:// client must use TLS too (nats.go switches to it), so it needs the CA")
	require.NoError(t, dial(t, srvURL, nats.RootCAs(pki.CA), nats.Token(token)))
}

func TestEmbeddedListenerWithUserPasswordAndTLS(t *testing.T) {
	t.Parallel()
	pki := tlstest.New(t)
	srvURL := startSecured(t, pki, engine.Config{User: "sluice", Password: "pw-7c21-secret"}).ClientURL()

	err := dial(t, srvURL, nats.RootCAs(pki.CA))
	require.ErrorIs(t, err, nats.ErrAuthorization, "no credentials")
	err = dial(t, srvURL, nats.RootCAs(pki.CA), nats.UserInfo("sluice", "wrong"))
	require.ErrorIs(t, err, nats.ErrAuthorization, "wrong password")
	err = dial(t, srvURL, nats.RootCAs(pki.CA), nats.UserInfo("other", "pw-7c21-secret"))
	require.ErrorIs(t, err, nats.ErrAuthorization, "wrong user")
	err = dial(t, srvURL, nats.UserInfo("sluice", "pw-7c21-secret"))
	require.ErrorAs(t, err, &x509.UnknownAuthorityError{}, "a client without the CA does not trust the server")
	require.NoError(t, dial(t, srvURL, nats.RootCAs(pki.CA), nats.UserInfo("sluice", "pw-7c21-secret")))
}

func TestEmbeddedListenerRequiresClientCertificates(t *testing.T) {
	t.Parallel()
	pki := tlstest.New(t)
	const token = "tok-55d0-secret"
	srvURL := startSecured(t, pki, engine.Config{Token: token, TLSCA: pki.CA}).ClientURL()

	err := dial(t, srvURL, nats.RootCAs(pki.CA), nats.Token(token))
	require.Error(t, err, "no client certificate")
	other := tlstest.New(t)
	err = dial(t, srvURL, nats.RootCAs(pki.CA), nats.ClientCert(other.ClientCert, other.ClientKey), nats.Token(token))
	require.Error(t, err, "a client certificate of another CA")
	err = dial(t, srvURL, nats.Secure(pki.ClientConfig()))
	require.ErrorIs(t, err, nats.ErrAuthorization, "a certificate does not replace the token")
	require.NoError(t, dial(t, srvURL, nats.Secure(pki.ClientConfig()), nats.Token(token)))
}

// TestExternalEngineOverTLS connects an engine in external mode to a second
// embedded engine that listens with TLS and credentials.
func TestExternalEngineOverTLS(t *testing.T) {
	t.Parallel()
	pki := tlstest.New(t)
	ctx := context.Background()
	const token = "tok-a1b2-secret"
	tokenURL := startSecured(t, pki, engine.Config{Token: token}).ClientURL()
	userURL := startSecured(t, pki, engine.Config{User: "app", Password: "pw/with@odd:chars"}).ClientURL()
	withUser := func(u string, user *url.Userinfo) string {
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		parsed.User = user
		return parsed.String()
	}

	for name, cfg := range map[string]engine.Config{
		"token field":                {URL: tokenURL, Token: token, TLSCA: pki.CA},
		"token in URL":               {URL: withUser(tokenURL, url.User(token)), TLSCA: pki.CA},
		"user and password fields":   {URL: userURL, User: "app", Password: "pw/with@odd:chars", TLSCA: pki.CA},
		"user and password in URL":   {URL: withUser(userURL, url.UserPassword("app", "pw/with@odd:chars")), TLSCA: pki.CA},
		"client certificate offered": {URL: tokenURL, Token: token, TLSCA: pki.CA, TLSCert: pki.ClientCert, TLSKey: pki.ClientKey},
		"nats:// URL with a CA":      {URL: strings.Replace(tokenURL, "tls://", "nats://", 1), Token: token, TLSCA: pki.CA},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			eng, err := engine.Start(ctx, cfg)
			require.NoError(t, err)
			defer eng.Close()
			require.False(t, eng.Embedded())
			useJetStream(t, eng.JS)
			useJetStream(t, eng.ReadJS)
		})
	}
}

// TestConnectErrorsHideSecrets: a refused connection's error says what to
// check and never shows the password or token it was given.
func TestConnectErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	pki := tlstest.New(t)
	ctx := context.Background()
	const secret = "Sup3r-s3cret-value"
	srv := startSecured(t, pki, engine.Config{Token: "the-right-token"}).ClientURL()
	host := strings.TrimPrefix(srv, "tls://")

	for _, c := range []struct {
		name string
		cfg  engine.Config
		want string
	}{
		{"wrong token field", engine.Config{URL: srv, Token: secret, TLSCA: pki.CA}, "refused the credentials"},
		{"wrong token in URL", engine.Config{URL: "tls://" + secret + "@" + host, TLSCA: pki.CA}, "tls://xxxxx@" + host},
		{"wrong password field", engine.Config{URL: srv, User: "u", Password: secret, TLSCA: pki.CA}, "refused the credentials"},
		{"wrong password in URL", engine.Config{URL: "tls://u:" + secret + "@" + host, TLSCA: pki.CA}, "tls://u:xxxxx@" + host},
		{"URL list", engine.Config{URL: "tls://u:" + secret + "@127.0.0.1:1, tls://u:" + secret + "@" + host, TLSCA: pki.CA}, "tls://u:xxxxx@127.0.0.1:1,tls://u:xxxxx@" + host},
		{"no CA", engine.Config{URL: "tls://" + secret + "@" + host}, "give --nats-ca"},
		{"not a URL", engine.Config{URL: "nats://u:" + secret + " x@" + host}, "is not a valid URL"},
		{"password with a slash", engine.Config{URL: "nats://u:12/" + secret + "@" + host}, "nats://xxxxx@" + host + " is not a valid URL"},
		{"forgotten host", engine.Config{URL: "nats://u:" + secret}, "nats://u:xxxxx is not a valid URL"},
		{"credentials twice", engine.Config{URL: "tls://u:" + secret + "@" + host, Token: secret}, "give them once"},
		{"token and password", engine.Config{URL: srv, User: "u", Password: secret, Token: secret}, "not both"},
	} {
		_, err := engine.Start(ctx, c.cfg)
		require.Error(t, err, c.name)
		require.NotContains(t, err.Error(), secret, c.name)
		require.Contains(t, err.Error(), c.want, c.name)
	}

	_, err := engine.Start(ctx, engine.Config{URL: srv, Token: secret, TLSCA: pki.CA})
	require.ErrorIs(t, err, nats.ErrAuthorization, "the cause stays visible to errors.Is")
}

func TestStartRejectsUnsafeOrBrokenSecurity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pki := tlstest.New(t)
	for _, c := range []struct {
		cfg  engine.Config
		want string
	}{
		{engine.Config{Listen: "0.0.0.0:4223"}, "--nats-listen 0.0.0.0:4223 exposes every stream beyond this machine without client authentication or TLS; give --nats-token (or --nats-user/--nats-password) and --nats-tls-cert/--nats-tls-key, or --insecure"},
		{engine.Config{Listen: "[::]:4223", Token: "t"}, "without TLS"},
		{engine.Config{Listen: "192.0.2.1:4223", TLSCert: pki.ServerCert, TLSKey: pki.ServerKey}, "without client authentication"},
		{engine.Config{Listen: "nats.example.com:4223", User: "u", Password: "p"}, "without TLS"},
		{engine.Config{Listen: ":4223", TLSCA: pki.CA, Token: "t"}, "needs TLS"},
		{engine.Config{Listen: "127.0.0.1:0", TLSCert: pki.ServerCert}, "go together"},
		{engine.Config{Listen: "127.0.0.1:0", User: "u"}, "go together"},
		{engine.Config{Listen: "127.0.0.1:0", Token: "$2a$11$PWIFAL8RsWyGI3jVZtO9Nu8.6jOxzxfZo7c/W0eLk017hjgUKWrhy"}, "bcrypt"},
		{engine.Config{Listen: "127.0.0.1:0", TLSCert: pki.CA, TLSKey: pki.ServerKey}, "--nats-tls-cert"},
		{engine.Config{Listen: "127.0.0.1:0", TLSCert: pki.ServerCert, TLSKey: pki.ServerKey, TLSCA: pki.ServerKey}, "holds no PEM certificate"},
	} {
		c.cfg.DataDir = t.TempDir()
		_, err := engine.Start(ctx, c.cfg)
		require.ErrorContains(t, err, c.want, "%+v", c.cfg)
	}
}

// TestInsecureWarnsAtStart: every start that --insecure lets listen beyond
// loopback logs a warning; where it changes nothing it stays quiet. The
// exposed server here still wants a token, and only lives for the test.
func TestInsecureWarnsAtStart(t *testing.T) {
	t.Parallel()
	var log testlog.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	dir := t.TempDir()
	for _, listen := range []string{"0.0.0.0:0", "127.0.0.1:0", "0.0.0.0:0"} {
		eng, err := engine.Start(context.Background(), engine.Config{DataDir: dir, Listen: listen, Token: "tok-insecure", Insecure: true, Logger: logger})
		require.NoError(t, err)
		require.NoError(t, eng.Close())
	}
	require.Equal(t, 2, strings.Count(log.String(), `level=WARN msg="engine: INSECURE: --insecure is set and the embedded NATS server listens beyond this machine without TLS`), log.String())
	require.NotContains(t, log.String(), "tok-insecure")
}

func TestListenIsLoopback(t *testing.T) {
	t.Parallel()
	for listen, want := range map[string]bool{
		"":                      true,
		"127.0.0.1:4223":        true,
		"127.1.2.3:4223":        true,
		"[::1]:4223":            true,
		"::1":                   true,
		"localhost:4223":        true,
		"LocalHost.:4223":       true,
		":4223":                 true,
		"0.0.0.0:4223":          false,
		"[::]:4223":             false,
		"192.168.1.10:4223":     false,
		"[fe80::1]:4223":        false,
		"nats.example.com:4223": false,
		"localhost.evil:4223":   false,
	} {
		require.Equal(t, want, engine.ListenIsLoopback(listen), listen)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                           "nats://127.0.0.1:4222",
		"nats://user:pass@host:4222":                      "nats://user:xxxxx@host:4222",
		"tls://s3cr3t-token@host:4222":                    "tls://xxxxx@host:4222",
		"user:pass@host:4222":                             "user:xxxxx@host:4222",
		"token@host":                                      "xxxxx@host",
		"nats://a:p1@h1:4222, nats://b:p2@h2:4222,h3":     "nats://a:xxxxx@h1:4222,nats://b:xxxxx@h2:4222,h3",
		"nats://user:p%40ss@host:4222":                    "nats://user:xxxxx@host:4222",
		"nats://user:pa ss@host:4222":                     "nats://xxxxx@host:4222",
		"nats://user:p@ss@host:4222/x%zz":                 "nats://xxxxx@host:4222/x%zz",
		"nats://user:secret":                              "nats://user:xxxxx",
		"nats://host:4222%zz":                             "nats://host:xxxxx",
		"nats://[::1":                                     "nats://[::1",
		"":                                                "",
		"nats://user:secret@[::1]:4222,nats://[::1]:4223": "nats://user:xxxxx@[::1]:4222,nats://[::1]:4223",
	} {
		require.Equal(t, want, engine.RedactURL(in), in)
	}
}
