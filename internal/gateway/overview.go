package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
)

// GET /api/v1/overview: one answer with what an operator's dashboard
// shows, so that a page polling it every second makes one request.
//
// Counters (processed, invocations, failures...) are this instance's,
// from its metrics registry, since it started: a client computes rates
// from two answers. Hub partitions, consumer-group lag, queue depths,
// dead letters, containers and partition ownership come from the engines
// and are the same on every instance.

// Ownership reads which instance holds each unit of a lease set (see
// lease.Manager.Ownership).
type Ownership interface {
	Ownership(ctx context.Context, name string) (map[int]string, error)
}

// HTTPFunction is an HTTP function of the app, as the overview shows it
// (see Config.HTTPFunctions).
type HTTPFunction struct {
	Name string
	// Route is the path the function is served at, with the route prefix
	// and the template's parameters: "/api/products/{id:int?}".
	Route string
	// Methods are the methods served, upper case; empty: all.
	Methods []string
}

// Overview is the answer of GET /api/v1/overview.
type Overview struct {
	// Instance is the answering instance.
	Instance   string              `json:"instance,omitempty"`
	Time       time.Time           `json:"time"`
	Functions  []FunctionOverview  `json:"functions"`
	Hubs       []HubOverview       `json:"hubs"`
	Queues     []QueueOverview     `json:"queues"`
	Containers []ContainerOverview `json:"containers"`
	// DeadLetters counts the dead letters of each dead-letter queue
	// (sluice-deadletters and the <queue>-poison queues).
	DeadLetters []DeadLetterCount `json:"dead_letters"`
	// Instances are this one and every instance that owns a partition of
	// a hub read by this instance's functions.
	Instances []InstanceOverview `json:"instances"`
	// Partners are the registered partners, with the messages this
	// instance took from them and their endpoints' breakers.
	Partners []PartnerOverview `json:"partners"`
	// Errors name the parts that could not be read at all (the list of
	// hubs, say); the rest is there. A hub, queue or container that could
	// not be read is listed with its own Error instead.
	Errors []string `json:"errors,omitempty"`
}

// FunctionOverview is a function's counters on this instance.
type FunctionOverview struct {
	Name string `json:"name"`
	// Trigger is "hub", "queue" or "feed" with the hub, queue or container
	// in Source (and the consumer group of a hub), or "http" with the
	// route in Source and the methods served in Methods (none: all);
	// empty for timer and blob functions.
	Trigger string   `json:"trigger,omitempty"`
	Source  string   `json:"source,omitempty"`
	Group   string   `json:"group,omitempty"`
	Methods []string `json:"methods,omitempty"`
	// Processed counts the inputs the function finished with (events,
	// changes, completed or poisoned queue messages, answered HTTP
	// requests). An HTTP function's Failures are its 5xx answers.
	Processed    int64 `json:"processed"`
	Invocations  int64 `json:"invocations"`
	Failures     int64 `json:"failures"`
	Retries      int64 `json:"retries"`
	DeadLettered int64 `json:"dead_lettered"`
	Timeouts     int64 `json:"timeouts"`
	// Duration of invocations: total, mean, and quantiles estimated from
	// the histogram's buckets (as Prometheus' histogram_quantile does).
	DurationSumSeconds float64 `json:"duration_sum_seconds"`
	MeanSeconds        float64 `json:"mean_seconds"`
	P50Seconds         float64 `json:"p50_seconds"`
	P99Seconds         float64 `json:"p99_seconds"`
	// DurationBuckets are the histogram's cumulative buckets, so that a
	// client can estimate quantiles between two answers.
	DurationBuckets []Bucket `json:"duration_buckets,omitempty"`
	// Breaker is the state of the function's circuit breaker ("closed",
	// "open", "half-open"); absent when it has none.
	Breaker *BreakerOverview `json:"breaker,omitempty"`
	// FeedLag is, for a change-feed function, the changes after its
	// checkpoints over all its ranges, as this instance last measured
	// them (sluice_feed_lag_changes, refreshed every few seconds); absent
	// until measured.
	FeedLag *int64 `json:"feed_lag,omitempty"`
}

// Bucket is a cumulative histogram bucket: Count observations were at
// most LE seconds.
type Bucket struct {
	LE    float64 `json:"le"`
	Count int64   `json:"count"`
}

// BreakerOverview is a breaker's shared state.
type BreakerOverview struct {
	State  string    `json:"state"`
	Since  time.Time `json:"since,omitzero"`
	Reason string    `json:"reason,omitempty"`
	Manual bool      `json:"manual,omitempty"`
	// Failures counted in the window over all instances.
	Failures int `json:"failures"`
}

// HubOverview is a hub with its partitions and the consumer groups this
// instance's functions read it with.
type HubOverview struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	Retention  string `json:"retention"`
	// EventsIn counts the events published to the hub through this
	// instance (HTTP API and SDK).
	EventsIn int64 `json:"events_in"`
	// Records and Bytes are stored over all partitions.
	Records       uint64              `json:"records"`
	Bytes         uint64              `json:"bytes"`
	PartitionInfo []hub.PartitionInfo `json:"partition_info"`
	Groups        []GroupOverview     `json:"groups"`
	// Error says why (part of) the hub could not be read; what could be
	// is there.
	Error string `json:"error,omitempty"`
}

// GroupOverview is a consumer group of a hub.
type GroupOverview struct {
	Name      string   `json:"name"`
	Functions []string `json:"functions"`
	// Processed counts the events this instance's functions finished with
	// in this group.
	Processed int64 `json:"processed"`
	// Lag is the events stored after the checkpoints, over all partitions.
	Lag        int64               `json:"lag"`
	Partitions []PartitionOverview `json:"partitions"`
}

// PartitionOverview is a consumer group's state in one partition.
type PartitionOverview struct {
	Partition    int   `json:"partition"`
	LastSequence int64 `json:"last_sequence"`
	// Checkpoint is the group's last processed event (-1: none).
	Checkpoint        int64     `json:"checkpoint"`
	CheckpointUpdated time.Time `json:"checkpoint_updated,omitzero"`
	// Lag is the events after the checkpoint (Estimated past a scan limit).
	Lag       int64 `json:"lag"`
	Estimated bool  `json:"estimated,omitempty"`
	// Owner is the instance holding the partition's lease; empty when no
	// instance does.
	Owner string `json:"owner,omitempty"`
}

// QueueOverview is a queue with its contents.
type QueueOverview struct {
	Name string `json:"name"`
	// Kind is "queue", "dead-letter" (sluice-deadletters or a poison
	// queue) or "retry" (a function's sluice-retry-<function> queue).
	Kind string `json:"kind"`
	QueueStatsJSON
	// Error says why the queue's contents could not be read (then they
	// are zero).
	Error string `json:"error,omitempty"`
}

// ContainerOverview is a document container.
type ContainerOverview struct {
	Name             string `json:"name"`
	PartitionKeyPath string `json:"partition_key_path"`
	// LastLSN counts the container's writes (its newest change's LSN).
	LastLSN int64 `json:"last_lsn"`
	// Documents counts the live documents, refreshed at most every few
	// seconds; absent when the store cannot count.
	Documents *int64 `json:"documents,omitempty"`
	// Error says why the container could not be read (then LastLSN and
	// Documents are what could be).
	Error string `json:"error,omitempty"`
}

// DeadLetterCount is the number of dead letters in one dead-letter queue.
type DeadLetterCount struct {
	Queue string `json:"queue"`
	Count uint64 `json:"count"`
}

// InstanceOverview is an instance and the hub partitions it owns.
type InstanceOverview struct {
	ID         string            `json:"id"`
	Self       bool              `json:"self,omitempty"`
	Partitions []OwnedPartitions `json:"partitions"`
}

// OwnedPartitions are the partitions of one hub's consumer group that an
// instance owns.
type OwnedPartitions struct {
	Hub        string `json:"hub"`
	Group      string `json:"group"`
	Partitions []int  `json:"partitions"`
}

const (
	// overviewFresh is how long an answer is reused: several open
	// dashboards cost the engines one overview a second at most.
	overviewFresh = 500 * time.Millisecond
	// countFresh is how long a container's document count is reused
	// at least (counting reads every document of the container).
	countFresh = 5 * time.Second
	// overviewTimeout bounds the gathering of one answer.
	overviewTimeout = 10 * time.Second
)

// overview serves GET /api/v1/overview.
type overview struct {
	s *Server

	mu     sync.Mutex // held while an answer is made, so concurrent requests share it
	last   *Overview
	counts map[string]docCount
}

type docCount struct {
	n    int64
	lsn  int64
	at   time.Time
	took time.Duration
}

func (s *Server) overviewRoutes() {
	o := &overview{s: s, counts: map[string]docCount{}}
	s.route("GET /api/v1/overview", "overview", o.serve)
	if s.cfg.Queues != nil {
		s.cfg.Metrics.CountDeadLetters(s.countDeadLetters)
	}
}

// countDeadLetters counts the letters waiting in each dead-letter queue,
// for the gauge sluice_dead_letters: a few requests to the engine per
// dead-letter queue, whatever the number of letters.
func (s *Server) countDeadLetters(ctx context.Context) (map[string]uint64, error) {
	queues, err := s.deadLetterStore().DeadLetterQueues(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(queues))
	for _, q := range queues {
		st, err := s.cfg.Queues.Stats(ctx, q)
		if errors.Is(err, queue.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("dead letters of %s: %w", q, err)
		}
		out[q] = st.Depth + st.Delayed
	}
	return out, nil
}

func (o *overview) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.last == nil || time.Since(o.last.Time) >= overviewFresh {
		ctx, cancel := context.WithTimeout(r.Context(), overviewTimeout)
		ov := o.gather(ctx)
		cancel()
		if r.Context().Err() != nil {
			return // the client went away; the answer may be partial
		}
		o.last = ov
	}
	writeJSON(w, http.StatusOK, o.last)
}

// gather makes an answer. Each part that fails is named in Errors.
func (o *overview) gather(ctx context.Context) *Overview {
	cfg := o.s.cfg
	ov := &Overview{Instance: cfg.InstanceID, Time: time.Now().UTC(),
		Functions: []FunctionOverview{}, Hubs: []HubOverview{}, Queues: []QueueOverview{},
		Containers: []ContainerOverview{}, DeadLetters: []DeadLetterCount{}, Instances: []InstanceOverview{}, Partners: []PartnerOverview{}}
	fail := func(what string, err error) {
		ov.Errors = append(ov.Errors, what+": "+err.Error())
	}
	m, err := gatherMetrics(o.s)
	if err != nil {
		fail("metrics", err)
	}
	var httpFns []HTTPFunction
	if cfg.HTTPFunctions != nil {
		httpFns = cfg.HTTPFunctions()
	}
	ov.Functions = m.functions(httpFns)
	if cfg.Breakers != nil {
		list, err := cfg.Breakers.List(ctx)
		if err != nil {
			fail("breakers", err)
		}
		for _, st := range list {
			i := slices.IndexFunc(ov.Functions, func(f FunctionOverview) bool { return f.Name == st.Function })
			if i < 0 {
				// A breaker with shared state whose function does not run
				// here: show it, so that it can be closed.
				ov.Functions = append(ov.Functions, FunctionOverview{Name: st.Function})
				i = len(ov.Functions) - 1
			}
			ov.Functions[i].Breaker = &BreakerOverview{State: string(st.State), Since: st.Since, Reason: st.Reason,
				Manual: st.Manual, Failures: st.Failures}
		}
		slices.SortFunc(ov.Functions, func(a, b FunctionOverview) int { return strings.Compare(a.Name, b.Name) })
	}
	owners := map[string]map[int]string{} // "hub\x00group" → partition → instance
	if cfg.Hubs != nil {
		list, err := cfg.Hubs.List(ctx)
		if err != nil {
			fail("hubs", err)
		}
		for _, info := range list {
			h, err := o.hubOverview(ctx, info, m, owners)
			if errors.Is(err, hub.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				h.Error = strings.ReplaceAll(err.Error(), "\n", "; ") // this hub's: shown with it
			}
			ov.Hubs = append(ov.Hubs, h)
		}
	}
	ov.Instances = instances(cfg.InstanceID, owners)
	if cfg.Queues != nil {
		list, err := cfg.Queues.List(ctx)
		if err != nil {
			fail("queues", err)
		}
		for _, info := range list {
			st, err := cfg.Queues.Stats(ctx, info.Name)
			if errors.Is(err, queue.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				ov.Queues = append(ov.Queues, QueueOverview{Name: info.Name, Kind: queueKind(info.Name), Error: err.Error()})
				continue
			}
			q := QueueOverview{Name: info.Name, Kind: queueKind(info.Name), QueueStatsJSON: QueueStatsJSON{Depth: st.Depth, Locked: st.Locked,
				Delayed: st.Delayed, OldestEnqueued: st.OldestEnqueued, OldestAgeSeconds: st.OldestAge.Seconds()}}
			ov.Queues = append(ov.Queues, q)
			if q.Kind == "dead-letter" {
				ov.DeadLetters = append(ov.DeadLetters, DeadLetterCount{Queue: q.Name, Count: st.Depth + st.Delayed})
			}
		}
	}
	if cfg.Docs != nil {
		list, err := cfg.Docs.ListContainers(ctx)
		if err != nil {
			fail("containers", err)
		}
		for name := range o.counts {
			if !slices.ContainsFunc(list, func(c docstore.Container) bool { return c.Name == name }) {
				delete(o.counts, name) // deleted
			}
		}
		for _, c := range list {
			co, err := o.containerOverview(ctx, c)
			if errors.Is(err, docstore.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				co.Error = err.Error()
			}
			ov.Containers = append(ov.Containers, co)
		}
	}
	ov.Partners = o.partners(ctx, m)
	return ov
}

// PartnerOverview is a partner as the dashboard shows it.
type PartnerOverview struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Enabled bool   `json:"enabled"`
	Tokens  int    `json:"tokens"`
	// Types are the message types it may send.
	Types []string `json:"types"`
	// Accepted and Rejected count its messages on this instance;
	// Delivered and Failed the deliveries to it (failed: attempts that
	// parked or gave up a delivery).
	Accepted  int64 `json:"accepted"`
	Rejected  int64 `json:"rejected"`
	Delivered int64 `json:"delivered"`
	Failed    int64 `json:"failed"`
	// Endpoints, with the state of each one's breaker ("closed" when it
	// has none yet).
	Endpoints []EndpointOverview `json:"endpoints"`
}

// EndpointOverview is a partner's endpoint on the dashboard.
type EndpointOverview struct {
	Name    string `json:"name"`
	URL     string `json:"url"`
	Auth    string `json:"auth,omitempty"`
	Breaker string `json:"breaker"`
}

func (o *overview) partners(ctx context.Context, m metricValues) []PartnerOverview {
	out := []PartnerOverview{}
	svc := o.s.partners
	if svc == nil {
		return out
	}
	breakers := map[string]string{}
	if b := o.s.cfg.Breakers; b != nil {
		if list, err := b.List(ctx); err == nil {
			for _, st := range list {
				breakers[st.Function] = string(st.State)
			}
		}
	}
	counts := map[string]map[string]int64{}
	for _, mt := range m["sluice_partner_messages_total"].GetMetric() {
		p := label(mt, "partner")
		if counts[p] == nil {
			counts[p] = map[string]int64{}
		}
		counts[p][label(mt, "result")] += int64(value(mt))
	}
	deliveries := map[string]map[string]int64{}
	for _, mt := range m["sluice_partner_deliveries_total"].GetMetric() {
		p := label(mt, "partner")
		if deliveries[p] == nil {
			deliveries[p] = map[string]int64{}
		}
		deliveries[p][label(mt, "outcome")] += int64(value(mt))
	}
	for _, p := range svc.Registry.Partners() {
		d := deliveries[p.ID]
		po := PartnerOverview{ID: p.ID, Name: p.Name, Enabled: p.Enabled, Tokens: len(p.Tokens), Types: []string{},
			Accepted: counts[p.ID]["accepted"], Rejected: counts[p.ID]["rejected"], Endpoints: []EndpointOverview{},
			Delivered: d["delivered"], Failed: d["retry"] + d["refused"] + d["parked"]}
		for _, t := range svc.Registry.Types(p.ID) {
			po.Types = append(po.Types, t.Name)
		}
		for _, e := range p.Endpoints {
			state := breakers["delivery:"+p.ID+"/"+e.Name]
			if state == "" {
				state = "closed"
			}
			po.Endpoints = append(po.Endpoints, EndpointOverview{Name: e.Name, URL: e.URL, Auth: e.Auth.Kind, Breaker: state})
		}
		out = append(out, po)
	}
	return out
}

// hubOverview reads a hub. On an error it returns what it could read,
// with the hub's definition from the list at least.
func (o *overview) hubOverview(ctx context.Context, info hub.Info, m metricValues, owners map[string]map[int]string) (HubOverview, error) {
	cfg := o.s.cfg
	h := HubOverview{Name: info.Name, Partitions: info.Partitions, Retention: info.RetentionAge.String(),
		EventsIn: int64(m.sum("sluice_hub_events_in_total", "hub", info.Name)), PartitionInfo: []hub.PartitionInfo{}, Groups: []GroupOverview{}}
	info, parts, err := cfg.Hubs.Describe(ctx, info.Name)
	if err != nil {
		return h, err
	}
	h.Partitions, h.Retention = info.Partitions, info.RetentionAge.String()
	if parts != nil {
		h.PartitionInfo = parts
	}
	for _, p := range parts {
		h.Records += p.Records
		h.Bytes += p.Bytes
	}
	// A group that cannot be read is left out, and said why; the others
	// are there.
	var errs []error
	for _, g := range m.groups(info.Name) {
		lags, err := cfg.Hubs.GroupLag(ctx, info.Name, g.name)
		if err != nil {
			errs = append(errs, fmt.Errorf("lag of group %s: %w", g.name, err))
			continue
		}
		var own map[int]string
		if cfg.Leases != nil {
			// The host's lease set of a hub's consumer group is named
			// "<hub>.<group>" (see host.Host.Start).
			if own, err = cfg.Leases.Ownership(ctx, info.Name+"."+g.name); err != nil {
				errs = append(errs, fmt.Errorf("owners of group %s: %w", g.name, err)) // the lag is there still
			} else {
				owners[info.Name+"\x00"+g.name] = own
			}
		}
		gr := GroupOverview{Name: g.name, Functions: g.functions, Processed: g.processed, Partitions: make([]PartitionOverview, len(lags))}
		for i, l := range lags {
			gr.Lag += l.Events
			gr.Partitions[i] = PartitionOverview{Partition: l.Partition, LastSequence: l.LastSequence, Checkpoint: l.Checkpoint,
				CheckpointUpdated: l.Updated, Lag: l.Events, Estimated: l.Estimated, Owner: own[l.Partition]}
		}
		h.Groups = append(h.Groups, gr)
	}
	return h, errors.Join(errs...)
}

func (o *overview) containerOverview(ctx context.Context, c docstore.Container) (ContainerOverview, error) {
	docs := o.s.cfg.Docs
	co := ContainerOverview{Name: c.Name, PartitionKeyPath: c.PartitionKeyPath}
	lsn, err := docs.LastLSN(ctx, c.Name)
	if err != nil {
		return co, err
	}
	co.LastLSN = lsn
	cached, ok := o.counts[c.Name]
	// Recount when the container changed and the count is old, or when
	// it is very old (TTLs remove documents without a write). A count
	// that took long is kept longer, so counting a large container takes
	// at most a twentieth of the time.
	age, fresh := time.Since(cached.at), max(countFresh, 20*cached.took)
	if !ok || (cached.lsn != lsn && age >= fresh) || age >= 12*fresh {
		start := time.Now()
		n, err := docs.CountDocuments(ctx, c.Name)
		if err != nil {
			return co, err
		}
		cached = docCount{n: n, lsn: lsn, at: time.Now(), took: time.Since(start)}
		o.counts[c.Name] = cached
	}
	co.Documents = &cached.n
	return co, nil
}

// queueKind tells a work queue from Sluice's dead-letter and retry queues.
func queueKind(name string) string {
	switch {
	case name == deadletter.Queue || strings.HasSuffix(name, queue.PoisonSuffix):
		return "dead-letter"
	case strings.HasPrefix(name, "sluice-retry-"):
		return "retry"
	}
	return "queue"
}

// instances lists this instance and every owner of a partition, with what
// each owns.
func instances(self string, owners map[string]map[int]string) []InstanceOverview {
	byID := map[string]*InstanceOverview{}
	get := func(id string) *InstanceOverview {
		if byID[id] == nil {
			byID[id] = &InstanceOverview{ID: id, Self: id == self, Partitions: []OwnedPartitions{}}
		}
		return byID[id]
	}
	if self != "" {
		get(self)
	}
	for _, k := range slices.Sorted(maps.Keys(owners)) {
		hubName, group, _ := strings.Cut(k, "\x00")
		parts := map[string][]int{}
		for p, id := range owners[k] {
			parts[id] = append(parts[id], p)
		}
		for id, ps := range parts {
			slices.Sort(ps)
			in := get(id)
			in.Partitions = append(in.Partitions, OwnedPartitions{Hub: hubName, Group: group, Partitions: ps})
		}
	}
	out := make([]InstanceOverview, 0, len(byID))
	for _, in := range byID {
		out = append(out, *in)
	}
	slices.SortFunc(out, func(a, b InstanceOverview) int {
		if a.Self != b.Self {
			if a.Self {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// metricValues are the gathered metric families by name.
type metricValues map[string]*dto.MetricFamily

func gatherMetrics(s *Server) (metricValues, error) {
	fams, err := s.cfg.Metrics.Registry.Gather()
	m := make(metricValues, len(fams))
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "sluice_") {
			m[f.GetName()] = f
		}
	}
	return m, err
}

func label(mt *dto.Metric, name string) string {
	for _, l := range mt.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(mt *dto.Metric) float64 {
	switch {
	case mt.Counter != nil:
		return mt.Counter.GetValue()
	case mt.Gauge != nil:
		return mt.Gauge.GetValue()
	}
	return 0
}

// sum adds the values of family name whose label has value v.
func (m metricValues) sum(name, l, v string) float64 {
	var total float64
	for _, mt := range m[name].GetMetric() {
		if label(mt, l) == v {
			total += value(mt)
		}
	}
	return total
}

// functions lists every function that has metrics on this instance (each
// function registers its duration histogram when it is declared), and the
// HTTP functions httpFns.
func (m metricValues) functions(httpFns []HTTPFunction) []FunctionOverview {
	byName := map[string]*FunctionOverview{}
	get := func(name string) *FunctionOverview {
		if byName[name] == nil {
			byName[name] = &FunctionOverview{Name: name}
		}
		return byName[name]
	}
	for _, mt := range m["sluice_function_batch_duration_seconds"].GetMetric() {
		get(label(mt, "function")).durations(mt.GetHistogram())
	}
	for _, mt := range m["sluice_http_function_duration_seconds"].GetMetric() {
		f := get(label(mt, "function"))
		f.Trigger = "http"
		f.durations(mt.GetHistogram())
	}
	for _, mt := range m["sluice_http_function_requests_total"].GetMetric() {
		f := get(label(mt, "function"))
		f.Trigger = "http"
		n := int64(value(mt))
		f.Processed += n
		if code := label(mt, "code"); len(code) == 3 && code[0] == '5' {
			f.Failures += n
		}
	}
	for _, h := range httpFns {
		f := get(h.Name)
		f.Trigger, f.Source, f.Methods = "http", h.Route, h.Methods
	}
	for _, mt := range m["sluice_hub_events_processed_total"].GetMetric() {
		f := get(label(mt, "function"))
		f.Processed += int64(value(mt))
		if h := label(mt, "hub"); h != "" {
			f.Trigger, f.Source, f.Group = "hub", h, label(mt, "group")
		}
	}
	for _, mt := range m["sluice_feed_changes_processed_total"].GetMetric() {
		f := get(label(mt, "function"))
		f.Processed += int64(value(mt))
		f.Trigger, f.Source = "feed", label(mt, "container")
	}
	for _, mt := range m["sluice_feed_lag_changes"].GetMetric() {
		f := get(label(mt, "function"))
		n := int64(value(mt))
		if f.FeedLag != nil {
			n += *f.FeedLag
		}
		f.FeedLag = &n
	}
	for _, mt := range m["sluice_queue_messages_total"].GetMetric() {
		// A hub function reads its retry queue too (sluice-retry-<name>):
		// those events count as processed, its trigger stays the hub.
		f := get(label(mt, "function"))
		if f.Trigger == "" || f.Trigger == "queue" {
			f.Trigger, f.Source = "queue", label(mt, "queue")
		}
		if o := label(mt, "outcome"); o == "completed" || o == "poisoned" {
			f.Processed += int64(value(mt))
		}
	}
	for name, dst := range map[string]func(*FunctionOverview) *int64{
		"sluice_function_failures_total": func(f *FunctionOverview) *int64 { return &f.Failures },
		"sluice_function_retries_total":  func(f *FunctionOverview) *int64 { return &f.Retries },
		"sluice_deadlettered_total":      func(f *FunctionOverview) *int64 { return &f.DeadLettered },
		"sluice_function_timeouts_total": func(f *FunctionOverview) *int64 { return &f.Timeouts },
	} {
		for _, mt := range m[name].GetMetric() {
			*dst(get(label(mt, "function"))) += int64(value(mt))
		}
	}
	delete(byName, "")
	out := make([]FunctionOverview, 0, len(byName))
	for _, f := range byName {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b FunctionOverview) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// durations sets the function's invocations and durations from its
// histogram.
func (f *FunctionOverview) durations(h *dto.Histogram) {
	f.Invocations = int64(h.GetSampleCount())
	f.DurationSumSeconds = h.GetSampleSum()
	if f.Invocations > 0 {
		f.MeanSeconds = f.DurationSumSeconds / float64(f.Invocations)
	}
	f.DurationBuckets = nil
	for _, b := range h.GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) {
			f.DurationBuckets = append(f.DurationBuckets, Bucket{LE: b.GetUpperBound(), Count: int64(b.GetCumulativeCount())})
		}
	}
	f.P50Seconds = quantile(0.5, f.DurationBuckets, f.Invocations)
	f.P99Seconds = quantile(0.99, f.DurationBuckets, f.Invocations)
}

type groupFunctions struct {
	name      string
	functions []string
	processed int64
}

// groups lists the consumer groups this instance's functions read hub
// with, from their metrics.
func (m metricValues) groups(hubName string) []groupFunctions {
	byName := map[string]*groupFunctions{}
	for _, mt := range m["sluice_hub_events_processed_total"].GetMetric() {
		if label(mt, "hub") != hubName {
			continue
		}
		g := label(mt, "group")
		if byName[g] == nil {
			byName[g] = &groupFunctions{name: g}
		}
		byName[g].functions = append(byName[g].functions, label(mt, "function"))
		byName[g].processed += int64(value(mt))
	}
	out := make([]groupFunctions, 0, len(byName))
	for _, g := range byName {
		slices.Sort(g.functions)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b groupFunctions) int { return cmp.Compare(a.name, b.name) })
	return out
}

// quantile estimates the q-quantile of n observations from cumulative
// buckets, interpolating linearly within the bucket it falls in. Past the
// last finite bound it answers that bound.
func quantile(q float64, buckets []Bucket, n int64) float64 {
	if n <= 0 || len(buckets) == 0 {
		return 0
	}
	rank := q * float64(n)
	lower, below := 0.0, int64(0)
	for _, b := range buckets {
		if float64(b.Count) >= rank {
			in := b.Count - below
			if in <= 0 {
				return b.LE
			}
			return lower + (b.LE-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = b.LE, b.Count
	}
	return buckets[len(buckets)-1].LE
}
