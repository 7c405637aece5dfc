package telemetry

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DR is what a geo-disaster recovery secondary reports (see ReportDR).
type DR struct {
	// Lag is the total of the messages the mirrors know they lack.
	Lag uint64
	// SinceContact is the longest time in seconds since a mirror heard
	// from the primary; negative when one never did.
	SinceContact float64
	// Mirrors counts the mirrors (0 once promoted).
	Mirrors int
}

// ReportDR sets how the gauges sluice_dr_lag_messages,
// sluice_dr_seconds_since_contact and sluice_dr_mirrors are computed: when
// the metrics are gathered, with a bound; when it fails, the gauges are
// left out of that gathering. Without it (on a primary) there are no such
// gauges.
func (m *Metrics) ReportDR(dr func(ctx context.Context) (DR, error)) {
	m.dr.mu.Lock()
	defer m.dr.mu.Unlock()
	m.dr.get = dr
}

type drCollector struct {
	lag, contact, mirrors *prometheus.Desc

	mu  sync.Mutex
	get func(context.Context) (DR, error)
}

var _ prometheus.Collector = (*drCollector)(nil)

func newDRCollector() *drCollector {
	return &drCollector{
		lag: prometheus.NewDesc("sluice_dr_lag_messages",
			"Messages of the primary that this DR secondary's mirrors know they lack (hub records, queue messages, KV updates, blob chunks): what a failover now would lose, at least.", nil, nil),
		contact: prometheus.NewDesc("sluice_dr_seconds_since_contact",
			"The longest time since one of this DR secondary's mirrors heard from the primary, in seconds (-1: one never did).", nil, nil),
		mirrors: prometheus.NewDesc("sluice_dr_mirrors",
			"The streams this DR secondary mirrors from its primary (0 once promoted).", nil, nil),
	}
}

func (c *drCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.contact
	ch <- c.mirrors
}

func (c *drCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	get := c.get
	c.mu.Unlock()
	if get == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	d, err := get(ctx)
	cancel()
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(d.Lag))
	ch <- prometheus.MustNewConstMetric(c.contact, prometheus.GaugeValue, d.SinceContact)
	ch <- prometheus.MustNewConstMetric(c.mirrors, prometheus.GaugeValue, float64(d.Mirrors))
}
