package httpsource_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/httpsource"
)

func TestNewRefusesBadConfigs(t *testing.T) {
	t.Parallel()
	good := func() httpsource.Config {
		return httpsource.Config{
			URL:     "https://graph.microsoft.com/v1.0/sites/s/lists/l/items/delta?expand=fields&key=QUERYSECRET",
			Table:   "sharepoint.orders",
			Headers: map[string]string{"Authorization": "Bearer HEADERSECRET"},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*httpsource.Config)
		field  string
	}{
		{"no URL", func(c *httpsource.Config) { c.URL = "" }, "URL: required"},
		{"not a URL", func(c *httpsource.Config) { c.URL = "https://[::1?key=QUERYSECRET" }, "URL: not a URL"},
		{"bad scheme", func(c *httpsource.Config) { c.URL = "ftp://host/x?key=QUERYSECRET" }, `URL: scheme "ftp" is not supported`},
		{"no host", func(c *httpsource.Config) { c.URL = "https:///x" }, "URL: no host"},
		{"password", func(c *httpsource.Config) { c.URL = "https://u:QUERYSECRET@host/x" }, "URL: holds a user or password"},
		{"no table", func(c *httpsource.Config) { c.Table = " " }, "Table: required"},
		{"empty key", func(c *httpsource.Config) { c.Key = []string{"id", ""} }, "Key[1]: empty"},
		{"key twice", func(c *httpsource.Config) { c.Key = []string{"id", "id"} }, `Key[1]: "id" is named twice`},
		{"same fields", func(c *httpsource.Config) { c.DeltaLinkField = "@odata.nextLink" }, `DeltaLinkField: "@odata.nextLink" is also NextLinkField`},
		{"bad header name", func(c *httpsource.Config) { c.Headers["X Y"] = "v" }, `Headers: "X Y" is not a header name`},
		{"header line break", func(c *httpsource.Config) { c.Headers["X-Key"] = "QUERYSECRET\r\nHost: x" }, "Headers[X-Key]: the value holds a line break"},
		{"negative poll", func(c *httpsource.Config) { c.PollInterval = -time.Second }, "PollInterval: -1s is negative"},
		{"negative timeout", func(c *httpsource.Config) { c.Timeout = -time.Second }, "Timeout: -1s is negative"},
		{"negative retries", func(c *httpsource.Config) { c.Retries = -1 }, "Retries: -1 is negative"},
		{"column without name", func(c *httpsource.Config) { c.Columns = []pipeline.Column{{Type: "text"}} }, "Columns[0].Name: empty"},
		{"column without type", func(c *httpsource.Config) { c.Columns = []pipeline.Column{{Name: "id"}} }, "Columns[0].Type: empty"},
		{"column twice", func(c *httpsource.Config) {
			c.Columns = []pipeline.Column{{Name: "id", Type: "text"}, {Name: "id", Type: "text"}}
		}, `Columns[1].Name: "id" is named twice`},
		{"key column not in Key", func(c *httpsource.Config) {
			c.Columns = []pipeline.Column{{Name: "id", Type: "text"}, {Name: "n", Type: "text", Key: true}}
		}, `Columns[1].Key: "n" is not in Key`},
		{"key not in columns", func(c *httpsource.Config) { c.Columns = []pipeline.Column{{Name: "n", Type: "text"}} }, `Columns: key field "id" is not among them`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := good()
			tc.change(&cfg)
			_, err := httpsource.New(cfg)
			require.ErrorIs(t, err, httpsource.ErrInvalidConfig)
			require.ErrorContains(t, err, tc.field)
			require.NotContains(t, err.Error(), "QUERYSECRET")
			require.NotContains(t, err.Error(), "HEADERSECRET")
		})
	}
	for _, u := range []string{"http://127.0.0.1:8080/items", "HTTPS://host/x"} {
		cfg := good()
		cfg.URL = u
		_, err := httpsource.New(cfg)
		require.NoError(t, err, u)
	}
}
