package engine

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestValidateListenBeyondLoopback checks the rule of invariant 8 without
// opening a port: beyond loopback, the embedded server needs client
// credentials and TLS, or Insecure.
func TestValidateListenBeyondLoopback(t *testing.T) {
	t.Parallel()
	tls := func(c Config) Config { c.TLSCert, c.TLSKey = "cert.pem", "key.pem"; return c }
	for _, c := range []struct {
		cfg  Config
		want string // "" when accepted
	}{
		{Config{Listen: "0.0.0.0:4223"}, "without client authentication or TLS"},
		{Config{Listen: "[::]:4223", Token: "t"}, "without TLS"},
		{tls(Config{Listen: "10.1.2.3:4223"}), "without client authentication"},
		{Config{Listen: "nats.example.com:4223", User: "u", Password: "p"}, "without TLS"},
		{tls(Config{Listen: "0.0.0.0:4223", Token: "t"}), ""},
		{tls(Config{Listen: "[::]:4223", User: "u", Password: "p"}), ""},
		{tls(Config{Listen: "0.0.0.0:4223", Token: "t", TLSCA: "ca.pem"}), ""},
		{Config{Listen: "0.0.0.0:4223", Insecure: true}, ""},
		{Config{Listen: "0.0.0.0:4223", Token: "t", Insecure: true}, ""},
		{Config{Listen: "127.0.0.1:4223"}, ""},
		{Config{Listen: "localhost:4223"}, ""},
		{Config{Listen: "[::1]:4223"}, ""},
		{Config{Listen: ":4223"}, ""},
		{Config{}, ""},
	} {
		cfg := c.cfg
		cfg.DataDir = "data"
		cfg = cfg.withDefaults()
		err := cfg.validate()
		if c.want == "" {
			require.NoError(t, err, "%+v", c.cfg)
			continue
		}
		require.ErrorContains(t, err, c.want, "%+v", c.cfg)
		require.ErrorContains(t, err, "give --nats-token (or --nats-user/--nats-password) and --nats-tls-cert/--nats-tls-key, or --insecure for a throwaway setup")
	}
}
