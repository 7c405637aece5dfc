package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sluice.yaml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

func TestConfigFileSetsFlagsAndFunctions(t *testing.T) {
	t.Setenv("SLUICE_SYNC", "")
	t.Setenv("SLUICE_LOG_LEVEL", "warn")
	p := writeConfig(t, `
http: 127.0.0.1:7999
sync: interval
lease-expiry: 10s
log-level: debug
breaker-webhook: https://ops.example.com/hook
functions:
  deliver:
    timeout: 10s
    breaker:
      failureThreshold: 101
      window: 30s
      consecutiveFailures: 5
      coolDown: 1m
  tick:
    timeout: 2m
`)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	inst := addInstanceFlags(fs, "sluice-data")
	require.NoError(t, fs.Parse([]string{"--config", p, "--http", "127.0.0.1:7070"}))
	cfg, err := inst.config()
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7070", cfg.HTTPAddr, "the command line wins over the file")
	require.Equal(t, sluice.SyncInterval, cfg.Sync, "the file sets what nothing else does")
	require.Equal(t, 10*time.Second, cfg.LeaseExpiry)
	require.Equal(t, "warn", inst.logLevel, "the environment wins over the file")
	require.Equal(t, "https://ops.example.com/hook", cfg.BreakerWebhook)
	require.Equal(t, map[string]sluice.FunctionSettings{
		"deliver": {Timeout: 10 * time.Second, Breaker: &sluice.BreakerPolicy{FailureThreshold: 101, Window: 30 * time.Second, ConsecutiveFailures: 5, CoolDown: time.Minute}},
		"tick":    {Timeout: 2 * time.Minute},
	}, cfg.Functions)
}

func TestConfigFileErrors(t *testing.T) {
	load := func(text string, explicit bool) error {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		addInstanceFlags(fs, "sluice-data")
		_, err := loadConfigFile(fs, writeConfig(t, text), explicit)
		return err
	}
	err := load(`
htp: 127.0.0.1:7070
sync: [always]
lease-expiry: soon
functions:
  deliver:
    timeout: 10 seconds
  other:
    breaker:
      failureTreshold: 3
  third:
    retries: 3
`, true)
	require.Error(t, err)
	for _, want := range []string{
		`line 2: unknown setting "htp"`,
		"line 3: sync takes one value",
		`line 4: lease-expiry: "soon" is not a valid value`,
		`functions.deliver: line 7: "10 seconds" is not a duration`,
		`functions.other: line 10: unknown setting "failureTreshold" (use consecutiveFailures, coolDown, failureThreshold, maxCoolDown, window)`,
		`functions.third: line 12: unknown setting "retries" (use breaker, timeout)`,
	} {
		require.Contains(t, err.Error(), want)
	}
	require.ErrorContains(t, load("- a\n- b\n", true), "must be a mapping")
	require.ErrorContains(t, load("functions: 3\n", true), "functions is a mapping")

	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addInstanceFlags(fs, "sluice-data")
	fc, err := loadConfigFile(fs, filepath.Join(t.TempDir(), "sluice.yaml"), false)
	require.NoError(t, err, "no default file: nothing to read")
	require.Nil(t, fc.Functions)
	_, err = loadConfigFile(fs, filepath.Join(t.TempDir(), "missing.yaml"), true)
	require.ErrorContains(t, err, "no such file")
}

func TestConfigFilePartners(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "schemas"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "schemas", "order.json"), []byte(`{"type": "object"}`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "order.jq"), []byte(`{id: .orderId}`), 0o600))
	t.Setenv("ACME_SECRETS", "whsec_new whsec_old")
	path := filepath.Join(dir, "sluice.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
http: 127.0.0.1:7071
partners:
  acme:
    name: ACME Corp
    types:
      order:
        format: json
        schema: schemas/order.json
        transform: order.jq
        hub: process
        partitionKey: .id
    endpoints:
      main:
        url: https://acme.example.com/hooks
        auth: hmac
        secretsEnv: ACME_SECRETS
        ordered: true
        timeout: 5s
messageTypes:
  asn:
    format: xml
    hub: process
    partners: [acme, globex]
deliveries:
  post-to-partner:
    hub: post-to-partner
    retrySchedule: "00:00:05"
    maxRetryBackoff: 10m
    breaker: {consecutiveFailures: 3, coolDown: 1m}
`), 0o600))
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addInstanceFlags(fs, "sluice-data")
	fc, err := loadConfigFile(fs, path, true)
	require.NoError(t, err)
	require.Equal(t, []sluice.PartnerConfig{{ID: "acme", Name: "ACME Corp",
		Types: []sluice.MessageTypeConfig{{Name: "order", Format: "json", Schema: `{"type": "object"}`, Transform: `{id: .orderId}`, Hub: "process", PartitionKey: ".id"}},
		Endpoints: []sluice.PartnerEndpoint{{Name: "main", URL: "https://acme.example.com/hooks", SigningSecrets: []string{"whsec_new", "whsec_old"},
			Ordered: true, Timeout: 5 * time.Second}},
	}}, fc.Partners)
	require.Equal(t, []sluice.MessageTypeConfig{{Name: "asn", Format: "xml", Hub: "process", Partners: []string{"acme", "globex"}}}, fc.MessageTypes)
	require.Equal(t, map[string]sluice.DeliveryConfig{"post-to-partner": {Hub: "post-to-partner", RetrySchedule: "00:00:05", MaxRetryBackoff: 10 * time.Minute,
		Breaker: sluice.BreakerPolicy{ConsecutiveFailures: 3, CoolDown: time.Minute}}}, fc.Deliveries)

	require.NoError(t, os.WriteFile(path, []byte(`
partners:
  acme:
    nmae: typo
  globex:
    types:
      order:
        format: json
        schema: missing.json
        hub: process
    endpoints:
      main:
        url: https://globex.example.com
        auth: bearer
        tokenEnv: GLOBEX_TOKEN_UNSET
messageTypes:
  asn:
    formatt: xml
deliveries:
  d:
    hubb: x
`), 0o600))
	_, err = loadConfigFile(fs, path, true)
	require.Error(t, err)
	for _, want := range []string{
		`partners.acme: line 4: unknown setting "nmae"`,
		`partners.globex.types.order.schema: open`,
		`partners.globex.endpoints.main: the environment variable GLOBEX_TOKEN_UNSET (tokenEnv) is empty or not set`,
		`messageTypes.asn: line 18: unknown setting "formatt"`,
		`deliveries.d: line 21: unknown setting "hubb"`,
	} {
		require.Contains(t, err.Error(), want)
	}
}

func TestConfigFilePipelines(t *testing.T) {
	t.Setenv("ORDERS_DB", "postgres://cdc:secret@db:5432/orders")
	t.Setenv("REPORT_DB", "mysql://r:secret@report:3306/report")
	t.Setenv("GRAPH_TOKEN", "Bearer g")
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
pipelines:
  orders:
    postgres:
      urlEnv: ORDERS_DB
      tables: [public.orders]
    retention: 48h
    destinations:
      reporting:
        sql: {urlEnv: REPORT_DB, createTables: true, tables: {public.orders: orders_report}}
        breaker: {consecutiveFailures: 3, coolDown: 1m}
      events:
        hub: order-changes
        retryBackoff: 2s
  docs:
    container: devices
    destinations:
      copy: {container: devices-copy}
  list:
    http:
      url: https://graph.example.com/v1.0/sites/s/lists/l/items/delta
      table: sharepoint.orders
      headersEnv: {Authorization: GRAPH_TOKEN}
      pollInterval: 1m
    destinations:
      service:
        http: {url: https://orders.example.com/changes, batchSize: 100}
        transform:
          "*": {filter: '.status != "draft"', rename: {qty: quantity}, compute: {total: {expr: '.qty * .price', type: numeric}}}
      lake:
        files: {container: lake, format: csv, prefix: orders/}
`), 0o600))
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addInstanceFlags(fs, "sluice-data")
	fc, err := loadConfigFile(fs, path, true)
	require.NoError(t, err)
	require.Equal(t, map[string]sluice.PipelineConfig{
		"orders": {Postgres: &sluice.PostgresSource{URL: "postgres://cdc:secret@db:5432/orders", Tables: []string{"public.orders"}}, Retention: 48 * time.Hour,
			Destinations: []sluice.PipelineDestination{ // by name
				{Name: "events", Hub: "order-changes", RetryBackoff: 2 * time.Second},
				{Name: "reporting", SQL: &sluice.SQLDestination{URL: "mysql://r:secret@report:3306/report", CreateTables: true, Tables: map[string]string{"public.orders": "orders_report"}},
					Breaker: sluice.BreakerPolicy{ConsecutiveFailures: 3, CoolDown: time.Minute}},
			}},
		"docs": {Container: "devices", Destinations: []sluice.PipelineDestination{{Name: "copy", Container: "devices-copy"}}},
		"list": {HTTP: &sluice.HTTPSource{URL: "https://graph.example.com/v1.0/sites/s/lists/l/items/delta", Table: "sharepoint.orders",
			Headers: map[string]string{"Authorization": "Bearer g"}, PollInterval: time.Minute},
			Destinations: []sluice.PipelineDestination{
				{Name: "lake", Files: &sluice.FilesDestination{Container: "lake", Format: "csv", Prefix: "orders/"}},
				{Name: "service", HTTP: &sluice.HTTPDestination{URL: "https://orders.example.com/changes", BatchSize: 100},
					Transform: map[string]sluice.TableTransform{"*": {Filter: `.status != "draft"`, Rename: map[string]string{"qty": "quantity"},
						Compute: map[string]sluice.ComputedColumn{"total": {Expr: ".qty * .price", Type: "numeric"}}}}},
			}},
	}, fc.Pipelines)
	require.Equal(t, []string{"ORDERS_DB", "REPORT_DB", "GRAPH_TOKEN"}, fc.SecretEnv, "kept from handler processes")

	require.NoError(t, os.WriteFile(path, []byte(`
pipelines:
  a:
    postgres: {urlEnv: UNSET_DB_URL_X, tables: [t]}
    destinations: {d: {hub: h}}
  b:
    container: c
  c:
    container: c
    destinations:
      d: {sql: {url: postgres://x, urlEnv: ORDERS_DB}}
  e:
    containr: c
`), 0o600))
	_, err = loadConfigFile(fs, path, true)
	require.Error(t, err)
	for _, want := range []string{
		"pipelines.a.postgres: the environment variable UNSET_DB_URL_X (urlEnv) is not set",
		"pipelines.b: line 7: give its destinations",
		"pipelines.c.destinations.d.sql: give url or urlEnv, not both",
		`pipelines.e: line 13: unknown setting "containr"`,
	} {
		require.Contains(t, err.Error(), want)
	}
}
