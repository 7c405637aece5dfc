package telemetry

import (
	"context"
	"errors"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// TestScaleGauges: the sluice_scale_* gauges are computed when the
// metrics are gathered; a failed computation leaves them all out without
// failing the other metrics, and an unknown instance count leaves out
// sluice_scale_instances.
func TestScaleGauges(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	gather := func() map[string][]*dto.Metric {
		t.Helper()
		fams, err := m.Registry.Gather()
		require.NoError(t, err)
		out := map[string][]*dto.Metric{}
		for _, f := range fams {
			if strings.HasPrefix(f.GetName(), "sluice_scale_") {
				require.Equal(t, dto.MetricType_GAUGE, f.GetType(), f.GetName())
				out[f.GetName()] = f.GetMetric()
			}
		}
		return out
	}
	require.Empty(t, gather(), "no gauges until there is a way to compute them")

	s := Scale{Desired: 4, Instances: 2, Functions: []FunctionScale{
		{Function: "decode", Trigger: "hub", Unprocessed: 350, TargetPerInstance: 100, Desired: 4},
		{Function: "mail", Trigger: "queue", Unprocessed: 17, TargetPerInstance: 16, Desired: 2},
	}}
	var fail error
	m.ReportScale(func(ctx context.Context) (Scale, error) {
		_, ok := ctx.Deadline()
		require.True(t, ok, "a computation is bounded")
		return s, fail
	})
	got := gather()
	require.Len(t, got, 5)
	require.Equal(t, 4.0, got["sluice_scale_desired_instances"][0].GetGauge().GetValue())
	require.Equal(t, 2.0, got["sluice_scale_instances"][0].GetGauge().GetValue())
	byFunction := func(name string) map[string]float64 {
		out := map[string]float64{}
		for _, mt := range got[name] {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["function"]+"/"+labels["trigger"]] = mt.GetGauge().GetValue()
		}
		return out
	}
	require.Equal(t, map[string]float64{"decode/hub": 4, "mail/queue": 2}, byFunction("sluice_scale_function_desired_instances"))
	require.Equal(t, map[string]float64{"decode/hub": 350, "mail/queue": 17}, byFunction("sluice_scale_function_unprocessed"))
	require.Equal(t, map[string]float64{"decode/hub": 100, "mail/queue": 16}, byFunction("sluice_scale_function_target_per_instance"))

	s.Instances = -1
	got = gather()
	require.NotContains(t, got, "sluice_scale_instances", "unknown: left out")
	require.Contains(t, got, "sluice_scale_desired_instances")

	fail = errors.New("engine down")
	require.Empty(t, gather(), "a failed computation leaves every scale gauge out")
}
