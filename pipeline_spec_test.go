package sluice_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
)

// A definition as data reads into the configuration it describes, its
// secrets from the environment variables it names.
func TestPipelineSpecConfig(t *testing.T) {
	t.Parallel()
	spec, err := sluice.DecodePipelineSpec([]byte(`{
		"sql": {"urlEnv": "CRM_DB", "pollInterval": "2s", "tables": [{"name": "customers", "cursor": "updated_at", "deleteCheck": "1h"}]},
		"retention": "48h",
		"destinations": {
			"service": {"http": {"url": "https://crm.example.com/changes", "headersEnv": {"Authorization": "CRM_TOKEN"}, "timeout": "5s"},
				"breaker": {"consecutiveFailures": 3, "coolDown": "30s"}},
			"lake": {"files": {"container": "lake", "format": "csv", "gzip": true}}
		}}`))
	require.NoError(t, err)
	env := map[string]string{"CRM_DB": "mysql://crm@db:3306/crm", "CRM_TOKEN": "Bearer t"}
	cfg, err := spec.Config(func(k string) string { return env[k] })
	require.NoError(t, err)
	require.Equal(t, sluice.PipelineConfig{
		SQL: &sluice.SQLSource{URL: "mysql://crm@db:3306/crm", PollInterval: 2 * time.Second,
			Tables: []sluice.SQLSourceTable{{Name: "customers", Cursor: "updated_at", DeleteCheck: time.Hour}}},
		Retention: 48 * time.Hour,
		Destinations: []sluice.PipelineDestination{
			{Name: "lake", Files: &sluice.FilesDestination{Container: "lake", Format: "csv", Gzip: true}},
			{Name: "service", HTTP: &sluice.HTTPDestination{URL: "https://crm.example.com/changes", Headers: map[string]string{"Authorization": "Bearer t"}, Timeout: 5 * time.Second},
				Breaker: sluice.BreakerPolicy{ConsecutiveFailures: 3, CoolDown: 30 * time.Second}},
		}}, cfg)
	require.ElementsMatch(t, []string{"CRM_DB", "CRM_TOKEN"}, spec.EnvNames())

	_, err = spec.Config(func(string) string { return "" })
	require.ErrorContains(t, err, "sql: the environment variable CRM_DB (urlEnv) is not set")
	_, err = sluice.DecodePipelineSpec([]byte(`{"sql": {"tables": [{"name": "t", "deleteCheck": "soon"}]}}`))
	require.ErrorContains(t, err, `"soon" is not a duration`)
}
