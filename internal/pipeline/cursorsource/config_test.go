package cursorsource_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline/cursorsource"
)

func TestNewRefusesBadConfigs(t *testing.T) {
	t.Parallel()
	good := func() cursorsource.Config {
		return cursorsource.Config{
			URL:    "postgres://u@localhost/db",
			Tables: []cursorsource.TableConfig{{Name: "public.orders", Cursor: "updated_at"}},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*cursorsource.Config)
		field  string
	}{
		{"no URL", func(c *cursorsource.Config) { c.URL = "" }, "URL: required"},
		{"bad scheme", func(c *cursorsource.Config) { c.URL = "sqlite:///tmp/x.db" }, `URL: scheme "sqlite" is not supported`},
		{"not a URL", func(c *cursorsource.Config) { c.URL = "postgres://u:p@[::1" }, "URL: not a URL"},
		{"no tables", func(c *cursorsource.Config) { c.Tables = nil }, "Tables: name at least one"},
		{"empty name", func(c *cursorsource.Config) { c.Tables[0].Name = "" }, "Tables[0].Name"},
		{"empty schema", func(c *cursorsource.Config) { c.Tables[0].Name = ".orders" }, "Tables[0].Name"},
		{"twice", func(c *cursorsource.Config) { c.Tables = append(c.Tables, c.Tables[0]) }, "Tables[1].Name: public.orders is named twice"},
		{"no cursor", func(c *cursorsource.Config) { c.Tables[0].Cursor = "" }, "Tables[0].Cursor: required"},
		{"cursor and full refresh", func(c *cursorsource.Config) { c.Tables[0].FullRefresh = true }, "Tables[0].Cursor"},
		{"soft delete is the cursor", func(c *cursorsource.Config) { c.Tables[0].SoftDelete = "updated_at" }, "Tables[0].SoftDelete"},
		{"negative delete check", func(c *cursorsource.Config) { c.Tables[0].DeleteCheck = -time.Second }, "Tables[0].DeleteCheck: -1s is negative"},
		{"delete check and full refresh", func(c *cursorsource.Config) {
			c.Tables[0].Cursor, c.Tables[0].FullRefresh, c.Tables[0].DeleteCheck = "", true, time.Minute
		}, "Tables[0].DeleteCheck: public.orders is read by FullRefresh"},
		{"negative poll", func(c *cursorsource.Config) { c.PollInterval = -time.Second }, "PollInterval"},
		{"negative batch", func(c *cursorsource.Config) { c.BatchSize = -1 }, "BatchSize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := good()
			tc.change(&cfg)
			_, err := cursorsource.New(cfg)
			require.ErrorIs(t, err, cursorsource.ErrInvalidConfig)
			require.ErrorContains(t, err, tc.field)
			require.NotContains(t, err.Error(), ":p@", "the password is not quoted")
		})
	}
	for _, u := range []string{"postgresql://u@h/db", "mysql://root@127.0.0.1:3306/test", "mariadb://root@h/db"} {
		cfg := good()
		cfg.URL = u
		_, err := cursorsource.New(cfg)
		require.NoError(t, err, u)
	}
	cfg := good()
	cfg.Tables = []cursorsource.TableConfig{{Name: "lookup", FullRefresh: true, SoftDelete: "gone"}}
	_, err := cursorsource.New(cfg)
	require.NoError(t, err)
	cfg = good()
	cfg.Tables[0].DeleteCheck = time.Minute
	_, err = cursorsource.New(cfg)
	require.NoError(t, err)
}
