// Package telemetry holds Sluice's metrics and logging conventions.
//
// Every instance exposes its metrics at /metrics in the Prometheus text
// format. Log lines about events carry the attributes hub, partition and
// sequence (or first_sequence for a batch) so they can be found by position.
package telemetry

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the instance's metrics, registered in their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	EventsIn        *prometheus.CounterVec   // hub
	PartnerMessages *prometheus.CounterVec   // partner, type, result (accepted, rejected)
	Deliveries      *prometheus.CounterVec   // partner, endpoint, outcome (delivered, retry, refused, parked)
	EventsProcessed *prometheus.CounterVec   // function, hub, group
	BatchDuration   *prometheus.HistogramVec // function
	BatchSize       *prometheus.HistogramVec // function
	Failures        *prometheus.CounterVec   // function
	Retries         *prometheus.CounterVec   // function
	DeadLettered    *prometheus.CounterVec   // function, source
	CheckpointLag   *prometheus.GaugeVec     // hub, group, partition
	OwnedPartitions *prometheus.GaugeVec     // hub, group
	HTTPRequests    *prometheus.CounterVec   // route, code

	QueueDepth     *prometheus.GaugeVec   // queue
	QueueOldestAge *prometheus.GaugeVec   // queue
	QueueMessages  *prometheus.CounterVec // function, queue, outcome

	FeedChangesProcessed *prometheus.CounterVec // function, container
	FeedOwnedRanges      *prometheus.GaugeVec   // container, lease_prefix
	FeedLag              *prometheus.GaugeVec   // function, container, range

	BreakerState       *prometheus.GaugeVec   // function
	BreakerTransitions *prometheus.CounterVec // function, to
	Timeouts           *prometheus.CounterVec // function
	Overruns           *prometheus.CounterVec // function

	// HTTP functions have their own families: they handle requests, not
	// batches of events from a hub.
	HTTPFunctionRequests *prometheus.CounterVec   // function, code
	HTTPFunctionDuration *prometheus.HistogramVec // function

	// deadLetters reports sluice_dead_letters (see CountDeadLetters).
	deadLetters *deadLetterCollector
	// scale reports sluice_scale_* (see ReportScale).
	scale *scaleCollector
	// dr reports sluice_dr_* (see ReportDR).
	dr *drCollector
}

// Values of the BreakerState gauge.
const (
	BreakerClosed   = 0
	BreakerHalfOpen = 1
	BreakerOpen     = 2
)

// Outcomes of a queue message's delivery, the label of QueueMessages.
const (
	OutcomeDequeued  = "dequeued"
	OutcomeCompleted = "completed"
	OutcomeAbandoned = "abandoned"
	OutcomePoisoned  = "poisoned"
	OutcomeMoved     = "moved"
	OutcomeHeld      = "held"
)

// NewMetrics creates and registers the metrics, plus Go runtime and process
// collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_partner_deliveries_total", Help: "Delivery attempts of this instance to partners' endpoints, by outcome: delivered (2xx), retry (no answer, 408, 429, 5xx: parked), refused (another 4xx: given up), parked (without a try: the endpoint's breaker is open, or an earlier delivery of the key waits).",
		}, []string{"partner", "endpoint", "outcome"}),
		PartnerMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_partner_messages_total", Help: "Messages partners sent to this instance, by partner, message type and result (accepted: published to the type's hub; rejected: refused and kept in the rejection log).",
		}, []string{"partner", "type", "result"}),
		EventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_hub_events_in_total", Help: "Events stored in a hub by this instance.",
		}, []string{"hub"}),
		EventsProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_hub_events_processed_total", Help: "Events a function finished with (succeeded or dead-lettered).",
		}, []string{"function", "hub", "group"}),
		BatchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_function_batch_duration_seconds", Help: "Time of one invocation of a function.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"function"}),
		BatchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_function_batch_events", Help: "Events per invocation.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}, []string{"function"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_function_failures_total", Help: "Invocations that returned an error or panicked.",
		}, []string{"function"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_function_retries_total", Help: "Retries scheduled by retry policies.",
		}, []string{"function"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_deadlettered_total", Help: "Inputs given up on and kept as dead letters.",
		}, []string{"function", "source"}),
		CheckpointLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_hub_checkpoint_lag_events", Help: "Stored events after a consumer group's checkpoint.",
		}, []string{"hub", "group", "partition"}),
		OwnedPartitions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_hub_owned_partitions", Help: "Partitions this instance owns.",
		}, []string{"hub", "group"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_requests_total", Help: "HTTP API requests by route and status code.",
		}, []string{"route", "code"}),
		QueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_queue_depth_messages", Help: "Messages of a queue that are visible or locked (refreshed while a function reads it).",
		}, []string{"queue"}),
		QueueOldestAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_queue_oldest_age_seconds", Help: "Age of a queue's oldest visible or locked message.",
		}, []string{"queue"}),
		QueueMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_queue_messages_total", Help: "Queue message deliveries to functions on this instance, by outcome: dequeued, completed, abandoned (to be retried), poisoned, moved (to be retried later), held (put back unprocessed while the function's breaker is open).",
		}, []string{"function", "queue", "outcome"}),
		FeedChangesProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_feed_changes_processed_total", Help: "Changes of a container's feed a function finished with (succeeded or dead-lettered).",
		}, []string{"function", "container"}),
		FeedOwnedRanges: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_feed_owned_ranges", Help: "Change feed ranges this instance owns.",
		}, []string{"container", "lease_prefix"}),
		FeedLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_feed_lag_changes", Help: "Changes of a container's feed after a change-feed function's checkpoint in one range: counted up to 1000, estimated beyond from the changes' LSNs.",
		}, []string{"function", "container", "range"}),
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_breaker_state", Help: "State of a function's circuit breaker as this instance sees it: 0 closed, 1 half-open, 2 open.",
		}, []string{"function"}),
		BreakerTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_breaker_transitions_total", Help: "Changes of a function's breaker made by this instance, by the state changed to.",
		}, []string{"function", "to"}),
		Timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_function_timeouts_total", Help: "Invocations cancelled because they reached the function's timeout.",
		}, []string{"function"}),
		Overruns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_function_overruns_total", Help: "Invocations still running a grace period after their timeout cancelled them (the function ignores its context).",
		}, []string{"function"}),
		HTTPFunctionRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_function_requests_total", Help: "Requests to an HTTP function answered on this instance, by status code (500 when the function panicked), those refused before it ran (401 without a key, 413 for a body over the limit) included.",
		}, []string{"function", "code"}),
		HTTPFunctionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_http_function_duration_seconds", Help: "Time an HTTP function took to answer a request, until its handler returned.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"function"}),
		deadLetters: &deadLetterCollector{desc: prometheus.NewDesc("sluice_dead_letters",
			"Dead letters waiting in a dead-letter queue (sluice-deadletters, or a queue's <queue>-poison) to be redriven or purged, counted when the metrics are gathered (at most every few seconds).",
			[]string{"queue"}, nil)},
		scale: newScaleCollector(),
		dr:    newDRCollector(),
	}
	m.Registry.MustRegister(m.HTTPFunctionRequests, m.HTTPFunctionDuration, m.deadLetters, m.scale, m.dr, m.BreakerState, m.BreakerTransitions, m.Timeouts, m.Overruns, m.FeedChangesProcessed, m.FeedOwnedRanges, m.FeedLag, m.QueueDepth, m.QueueOldestAge, m.QueueMessages, m.PartnerMessages, m.Deliveries, m.EventsIn, m.EventsProcessed, m.BatchDuration, m.BatchSize, m.Failures,
		m.Retries, m.DeadLettered, m.CheckpointLag, m.OwnedPartitions, m.HTTPRequests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// PartitionLabel formats a partition number as a metric label.
func PartitionLabel(p int) string { return strconv.Itoa(p) }

// HTTPCodeLabel formats an HTTP status code as a metric label.
func HTTPCodeLabel(code int) string { return strconv.Itoa(code) }

// CountHubResends adds the counter sluice_hub_record_resends_total, read
// from resends when the metrics are gathered.
func (m *Metrics) CountHubResends(resends func() int64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "sluice_hub_record_resends_total",
		Help: "Hub records sent again by this instance because the engine's acknowledgement was lost (a node failing over, a slow stream); the resend carries the record's message id, so nothing is stored twice.",
	}, func() float64 { return float64(resends()) }))
}

// deadLetterFresh is how long a count of the dead letters is reused:
// counting costs a few requests to the engine per dead-letter queue, and
// the overview gathers the metrics up to twice a second.
const deadLetterFresh = 5 * time.Second

// deadLetterTimeout bounds one count.
const deadLetterTimeout = 5 * time.Second

// CountDeadLetters sets how the dead letters are counted for the gauge
// sluice_dead_letters{queue}: count returns the letters waiting in each
// dead-letter queue. The gauge is counted when the metrics are gathered
// (a scrape of /metrics, the overview), at most every few seconds, so that
// it costs nothing between scrapes and never goes stale. When a count
// fails, the gauge is left out until the next count (a failing count
// must not fail the other metrics). Without count, there is no such gauge. Safe
// to call at any time; the last count set is used.
func (m *Metrics) CountDeadLetters(count func(ctx context.Context) (map[string]uint64, error)) {
	m.deadLetters.set(count)
}

// deadLetterCollector reports the dead-letter backlog, counted on demand.
type deadLetterCollector struct {
	desc *prometheus.Desc
	now  func() time.Time // time.Now; tests set it

	mu     sync.Mutex // held while counting, so that concurrent gatherings share one count
	count  func(context.Context) (map[string]uint64, error)
	counts map[string]uint64
	at     time.Time // of counts; zero: none
}

var _ prometheus.Collector = (*deadLetterCollector)(nil)

func (c *deadLetterCollector) set(count func(context.Context) (map[string]uint64, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count, c.counts, c.at = count, nil, time.Time{}
}

func (c *deadLetterCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *deadLetterCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count == nil {
		return
	}
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	if c.at.IsZero() || now().Sub(c.at) >= deadLetterFresh {
		ctx, cancel := context.WithTimeout(context.Background(), deadLetterTimeout)
		counts, err := c.count(ctx)
		cancel()
		if err != nil {
			counts = nil // left out until the next count, not retried at once: the engine may be down
		}
		c.counts, c.at = counts, now()
	}
	for q, n := range c.counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), q)
	}
}
