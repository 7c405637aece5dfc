package httpsink

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigIsValidated(t *testing.T) {
	t.Parallel()
	good := Config{URL: "https://example.com/hook", Pipeline: "p", Destination: "d",
		Headers: map[string]string{"Authorization": "Bearer tok-123456"}}
	require.NoError(t, good.validate())
	for _, tc := range []struct {
		field  string
		modify func(*Config)
	}{
		{"URL", func(c *Config) { c.URL = "" }},
		{"URL", func(c *Config) { c.URL = "ftp://example.com/x" }},
		{"URL", func(c *Config) { c.URL = "https://u:pass%zz@example.com/x" }},
		{"URL", func(c *Config) { c.URL = "https:///path" }},
		{"URL", func(c *Config) { c.URL = "https://example.com/x#frag" }},
		{"Headers", func(c *Config) { c.Headers = map[string]string{"Bad Name": "x"} }},
		{"Headers", func(c *Config) { c.Headers = map[string]string{"idempotency-key": "x"} }},
		{"Headers", func(c *Config) { c.Headers = map[string]string{"Content-Type": "text/plain"} }},
		{`Headers["X-Key"]`, func(c *Config) { c.Headers = map[string]string{"X-Key": "secret-value\r\nX-Evil: 1"} }},
		{"Pipeline", func(c *Config) { c.Pipeline = "" }},
		{"Pipeline", func(c *Config) { c.Pipeline = "a/b" }},
		{"Destination", func(c *Config) { c.Destination = "" }},
		{"Destination", func(c *Config) { c.Destination = "d\n" }},
		{"BatchSize", func(c *Config) { c.BatchSize = -1 }},
		{"Timeout", func(c *Config) { c.Timeout = -time.Second }},
	} {
		c := good
		tc.modify(&c)
		_, err := New(c)
		require.ErrorIs(t, err, ErrConfig, tc.field)
		require.Contains(t, err.Error(), ": "+tc.field+": ")
		require.NotContains(t, err.Error(), "pass")
		require.NotContains(t, err.Error(), "secret-value")
	}

	d := good.withDefaults()
	require.Equal(t, 500, d.BatchSize)
	require.Equal(t, 30*time.Second, d.Timeout)
	require.NotNil(t, d.Logger)
}

func TestGivenClientIsCopiedNotChanged(t *testing.T) {
	t.Parallel()
	mine := &http.Client{Timeout: time.Minute}
	s, err := New(Config{URL: "http://example.com/", Pipeline: "p", Destination: "d", Client: mine})
	require.NoError(t, err)
	require.Nil(t, mine.CheckRedirect)
	require.NotSame(t, mine, s.client)
	require.Equal(t, time.Minute, s.client.Timeout)
	require.NoError(t, s.Close())
}
