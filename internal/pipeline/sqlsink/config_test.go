package sqlsink

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigIsValidated(t *testing.T) {
	t.Parallel()
	good := Config{URL: "postgres://u@h/db", Pipeline: "p", Destination: "d"}
	require.NoError(t, good.validate())
	for _, tc := range []struct {
		field  string
		modify func(*Config)
	}{
		{"URL", func(c *Config) { c.URL = "" }},
		{"URL", func(c *Config) { c.URL = "sqlite:///tmp/x.db" }},
		{"URL", func(c *Config) { c.URL = "://nope" }},
		{"Pipeline", func(c *Config) { c.Pipeline = "" }},
		{"Pipeline", func(c *Config) { c.Pipeline = strings.Repeat("p", 192) }},
		{"Destination", func(c *Config) { c.Destination = "" }},
		{"Destination", func(c *Config) { c.Destination = strings.Repeat("d", 192) }},
		{"Schema", func(c *Config) { c.Schema = strings.Repeat("s", 64) }},
		{`Tables["public.x"].Name`, func(c *Config) { c.Tables = map[string]TableConfig{"public.x": {Name: "a\x00b"}} }},
		{`Tables["public.x"].Rename["a"]`, func(c *Config) {
			c.Tables = map[string]TableConfig{"public.x": {Rename: map[string]string{"a": ""}}}
		}},
		{`Tables["public.x"].Rename`, func(c *Config) {
			c.Tables = map[string]TableConfig{"public.x": {Rename: map[string]string{"a": "c", "b": "c"}}}
		}},
		{`Tables["public.x"].Columns[1]`, func(c *Config) { c.Tables = map[string]TableConfig{"public.x": {Columns: []string{"a", ""}}} }},
		{`Tables[""]`, func(c *Config) { c.Tables = map[string]TableConfig{"": {}} }},
		{"MaxBatchRows", func(c *Config) { c.MaxBatchRows = -1 }},
		{"MaxBatchBytes", func(c *Config) { c.MaxBatchBytes = -1 }},
		{"MaxConns", func(c *Config) { c.MaxConns = -1 }},
	} {
		c := good
		tc.modify(&c)
		err := c.validate()
		require.ErrorIs(t, err, ErrConfig, tc.field)
		require.Contains(t, err.Error(), ": "+tc.field+": ")
	}
	d := good.withDefaults()
	require.Equal(t, defaultMaxBatchRows, d.MaxBatchRows)
	require.Equal(t, defaultMaxBatchBytes, d.MaxBatchBytes)
	require.Equal(t, defaultMaxConns, d.MaxConns)
}

func TestUnknownSchemeIsRefused(t *testing.T) {
	t.Parallel()
	_, err := New(bg, Config{URL: "sqlserver://sa:secret@host/db", Pipeline: "p", Destination: "d"})
	require.ErrorIs(t, err, ErrConfig)
	require.Contains(t, err.Error(), `scheme "sqlserver" is not supported`)
	require.Contains(t, err.Error(), "postgres://user:pass@host:port/db")
	require.Contains(t, err.Error(), "mysql://user:pass@host:port/db")
	require.NotContains(t, err.Error(), "secret")
}

func TestMySQLURL(t *testing.T) {
	t.Parallel()
	mc, err := mysqlConfig("mysql://us%40r:p%3Ass%40@db.example:3307/shop?tls=skip-verify&time_zone=%27Europe%2FParis%27")
	require.NoError(t, err)
	require.Equal(t, "us@r", mc.User)
	require.Equal(t, "p:ss@", mc.Passwd)
	require.Equal(t, "tcp", mc.Net)
	require.Equal(t, "db.example:3307", mc.Addr)
	require.Equal(t, "shop", mc.DBName)
	require.True(t, mc.ParseTime)
	require.Equal(t, "skip-verify", mc.TLSConfig)
	require.Equal(t, "'Europe/Paris'", mc.Params["time_zone"])
	require.Contains(t, mc.Params["sql_mode"], "STRICT_ALL_TABLES")

	mc, err = mysqlConfig("mysql://root@localhost/test")
	require.NoError(t, err)
	require.Equal(t, "localhost:3306", mc.Addr)
	require.Equal(t, "'+00:00'", mc.Params["time_zone"])

	_, err = mysqlConfig("mysql:///test")
	require.ErrorIs(t, err, ErrConfig)
}

func TestDestTableName(t *testing.T) {
	t.Parallel()
	c := Config{Tables: map[string]TableConfig{"public.a": {Name: "b"}, "public.c": {Columns: []string{"x"}}}}
	require.Equal(t, "b", c.destTable("public.a"))
	require.Equal(t, "c", c.destTable("public.c"))
	require.Equal(t, "orders", c.destTable("sales.orders"))
	require.Equal(t, "orders", c.destTable("orders"))
}
