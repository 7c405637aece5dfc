package telemetry

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Scale is what an autoscaler is told: how many instances the app's work
// needs, and why (see ReportScale).
type Scale struct {
	// Desired is the instances the app needs: the most any function needs.
	Desired int
	// Instances is how many run the app's hub functions now; negative
	// when unknown.
	Instances int
	Functions []FunctionScale
}

// FunctionScale is one function's part of a Scale.
type FunctionScale struct {
	Function string
	// Trigger is "hub" or "queue".
	Trigger string
	// Unprocessed counts the events after the consumer group's checkpoints
	// (hub), or the messages visible or locked (queue).
	Unprocessed       int64
	TargetPerInstance int
	Desired           int
}

// scaleTimeout bounds one computation of the scale for a gathering.
const scaleTimeout = 10 * time.Second

// ReportScale sets how the scale is computed for the gauges
// sluice_scale_desired_instances, sluice_scale_instances and the
// per-function sluice_scale_function_* families (for KEDA's prometheus
// scaler). It is computed when the metrics are gathered; when that fails
// the gauges are left out of that gathering, so that a scaler sees no
// value rather than a wrong one, and the other metrics are unaffected.
// Without scale there are no such gauges. Safe to call at any time; the
// last one set is used.
func (m *Metrics) ReportScale(scale func(ctx context.Context) (Scale, error)) {
	m.scale.set(scale)
}

// scaleCollector reports the scale, computed on demand.
type scaleCollector struct {
	desired, instances            *prometheus.Desc
	fnDesired, fnUnproc, fnTarget *prometheus.Desc

	mu    sync.Mutex
	scale func(context.Context) (Scale, error)
}

var _ prometheus.Collector = (*scaleCollector)(nil)

func newScaleCollector() *scaleCollector {
	fn := []string{"function", "trigger"}
	return &scaleCollector{
		desired: prometheus.NewDesc("sluice_scale_desired_instances",
			"Instances the app's work needs, as Azure Functions' target-based scaling computes it: the most any hub or queue function needs (see sluice_scale_function_desired_instances).", nil, nil),
		instances: prometheus.NewDesc("sluice_scale_instances",
			"Instances running the app's hub functions now (live members of their partition leases).", nil, nil),
		fnDesired: prometheus.NewDesc("sluice_scale_function_desired_instances",
			"Instances a function's backlog needs: hub, ceil(unprocessed/target) rounded up to an even spread of the hub's partitions and at most their count; queue, ceil(unprocessed/target).", fn, nil),
		fnUnproc: prometheus.NewDesc("sluice_scale_function_unprocessed",
			"A function's backlog: events after its consumer group's checkpoints (hub), or messages visible or locked (queue).", fn, nil),
		fnTarget: prometheus.NewDesc("sluice_scale_function_target_per_instance",
			"Unprocessed events or messages one instance of a function should have.", fn, nil),
	}
}

func (c *scaleCollector) set(scale func(context.Context) (Scale, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scale = scale
}

func (c *scaleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.desired, c.instances, c.fnDesired, c.fnUnproc, c.fnTarget} {
		ch <- d
	}
}

func (c *scaleCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	scale := c.scale
	c.mu.Unlock()
	if scale == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scaleTimeout)
	s, err := scale(ctx)
	cancel()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desired, prometheus.GaugeValue, float64(s.Desired))
	if s.Instances >= 0 {
		ch <- prometheus.MustNewConstMetric(c.instances, prometheus.GaugeValue, float64(s.Instances))
	}
	for _, f := range s.Functions {
		ch <- prometheus.MustNewConstMetric(c.fnDesired, prometheus.GaugeValue, float64(f.Desired), f.Function, f.Trigger)
		ch <- prometheus.MustNewConstMetric(c.fnUnproc, prometheus.GaugeValue, float64(f.Unprocessed), f.Function, f.Trigger)
		ch <- prometheus.MustNewConstMetric(c.fnTarget, prometheus.GaugeValue, float64(f.TargetPerInstance), f.Function, f.Trigger)
	}
}
