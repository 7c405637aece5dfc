package funcapp

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
)

// Defaults of host.json settings, as Azure Functions runtime 4.x and its
// current extensions have them.
const (
	// DefaultFunctionTimeout is Azure's functionTimeout on plans other than
	// Consumption (Premium, Dedicated, Flex), which is what a self-hosted
	// platform is.
	DefaultFunctionTimeout = 30 * time.Minute
	// MinFunctionTimeout is the shortest functionTimeout Azure accepts.
	MinFunctionTimeout = time.Second

	DefaultMaxEventBatchSize        = 100 // Event Hubs extension 6.x; 10 before
	DefaultMinEventBatchSize        = 1
	DefaultMaxWaitTime              = time.Minute
	MaxMaxWaitTime                  = 10 * time.Minute
	DefaultBatchCheckpointFrequency = 1
	DefaultPrefetchCount            = 300

	DefaultMaxPollingInterval = time.Minute
	MinMaxPollingInterval     = 100 * time.Millisecond
	DefaultQueueBatchSize     = 16
	MaxQueueBatchSize         = 32
	DefaultMaxDequeueCount    = 5

	DefaultRoutePrefix = "api"
)

// Initial offsets of an Event Hubs trigger without a checkpoint.
const (
	OffsetFromStart        = "fromStart"
	OffsetFromEnd          = "fromEnd"
	OffsetFromEnqueuedTime = "fromEnqueuedTime"
)

// Queue message encodings.
const (
	EncodingBase64 = "base64"
	EncodingNone   = "none"
)

// Host is host.json: the settings of the whole app.
type Host struct {
	// Version is host.json's "version"; always "2.0" (the schema of
	// Functions 2.x to 4.x), since other versions are refused.
	Version string
	// Handler is the custom handler process to start.
	Handler Handler
	// FunctionTimeout bounds one invocation. Zero means no bound
	// ("functionTimeout": "-1" or null); when host.json does not set it, it
	// is DefaultFunctionTimeout. At least MinFunctionTimeout otherwise.
	FunctionTimeout time.Duration
	// Retry is the app-wide retry policy; nil when host.json has none.
	// A function's own policy wins over it (see Function.EffectiveRetry).
	Retry *Retry
	// EventHubs is extensions.eventHubs.
	EventHubs EventHubs
	// Queues is extensions.queues.
	Queues Queues
	// CosmosDB is extensions.cosmosDB.
	CosmosDB CosmosDB
	// HTTP is extensions.http.
	HTTP HTTP
	// Functions is host.json's "functions": when not empty, only the
	// functions named (in any case) are loaded. Nil loads them all.
	Functions []string
	// Breakers is Sluice's own sluice.breakers: the circuit breaker policy
	// of each function named (as written), and under BreakerDefault ("*")
	// the policy of every eventHub, queue and cosmosDB function without an
	// entry of its own. A null entry (or one with no threshold, like {})
	// gives its function no breaker. Each policy passed
	// sluice.BreakerPolicy.Validate; Load also checks that each name is
	// a function of the app whose trigger takes a breaker. Nil when
	// host.json has none. See Function.EffectiveBreaker.
	Breakers map[string]sluice.BreakerPolicy
}

// Handler is the customHandler section (or the legacy httpWorker section).
type Handler struct {
	// Executable is description.defaultExecutablePath with %settings%
	// expanded. ParseHostJSON leaves it as written; Load resolves it to an
	// absolute path (see Load).
	Executable string
	// Arguments are the process arguments, in the order Azure passes them:
	// description.arguments, then description.defaultWorkerPath (when set),
	// then description.workerArguments, each with %settings% expanded.
	Arguments []string
	// WorkingDir is the directory the process starts in:
	// description.workingDirectory, relative to the app root; the app root
	// when not set. ParseHostJSON leaves it as written ("" when not set);
	// Load makes it absolute.
	WorkingDir string
	// ForwardHTTP is true when functions whose bindings are exactly an
	// httpTrigger and an http output get the original HTTP request
	// forwarded (see Function.IsHTTPOnly): enableForwardingHttpRequest, or
	// always with the legacy httpWorker section.
	ForwardHTTP bool
	// Legacy is true when the handler came from the httpWorker section
	// (customHandler wins when host.json has both).
	Legacy bool
}

// EventHubs holds extensions.eventHubs (extension 5.x/6.x names; the 3.x/4.x
// names eventProcessorOptions.maxBatchSize and .prefetchCount are read when
// the new ones are not given, as the extension itself does).
type EventHubs struct {
	// MaxEventBatchSize is the most events one invocation gets (>= 1;
	// default 100).
	MaxEventBatchSize int
	// MinEventBatchSize is the fewest events a batch waits for, up to
	// MaxWaitTime (1..MaxEventBatchSize; default 1).
	MinEventBatchSize int
	// MaxWaitTime is how long a batch waits to reach MinEventBatchSize
	// (0 to 10 minutes; default 1 minute).
	MaxWaitTime time.Duration
	// BatchCheckpointFrequency is the number of batches between checkpoints
	// (>= 1; default 1).
	BatchCheckpointFrequency int
	// PrefetchCount is the number of events read ahead (>= 0; default 300).
	PrefetchCount int
	// InitialOffset says where a partition without a checkpoint starts.
	InitialOffset InitialOffset
	// TargetUnprocessedEventThreshold is the unprocessed events one
	// instance should have, for the desired instance count of the scale
	// signals (>= 1; 0 when not set: MaxEventBatchSize, as in Azure).
	TargetUnprocessedEventThreshold int
}

// InitialOffset is extensions.eventHubs.initialOffsetOptions.
type InitialOffset struct {
	// Type is OffsetFromStart (the default), OffsetFromEnd or
	// OffsetFromEnqueuedTime.
	Type string
	// EnqueuedTimeUTC is where OffsetFromEnqueuedTime starts (required for
	// it). A time written without a zone is UTC.
	EnqueuedTimeUTC time.Time
}

// Queues holds extensions.queues.
type Queues struct {
	// MaxPollingInterval is the longest wait between polls of an empty
	// queue (>= 100ms; default 1 minute).
	MaxPollingInterval time.Duration
	// VisibilityTimeout is how long a failed message stays invisible before
	// it is tried again (default 0).
	VisibilityTimeout time.Duration
	// BatchSize is the number of messages fetched and processed at once
	// (1..32; default 16).
	BatchSize int
	// NewBatchThreshold is the number of messages in flight at or below
	// which the next batch is fetched. -1 (the default) means BatchSize/2
	// per CPU; see NewBatchThresholdFor.
	NewBatchThreshold int
	// MaxDequeueCount is the number of attempts, the first included, before
	// a message goes to the poison queue (>= 1; default 5).
	MaxDequeueCount int
	// MessageEncoding is EncodingBase64 (the default) or EncodingNone.
	MessageEncoding string
}

// NewBatchThresholdFor returns the effective NewBatchThreshold on a machine
// with cpus CPUs.
func (q Queues) NewBatchThresholdFor(cpus int) int {
	if q.NewBatchThreshold >= 0 {
		return q.NewBatchThreshold
	}
	return q.BatchSize / 2 * max(cpus, 1)
}

// CosmosDB holds extensions.cosmosDB.
type CosmosDB struct {
	// ConnectionMode is "Gateway", "Direct", or "" when not set (the
	// extension's default).
	ConnectionMode string
	// UserAgentSuffix is added to the user agent of Cosmos DB requests.
	UserAgentSuffix string
	// LeasePrefix is the 3.x extension's leaseOptions.leasePrefix: a prefix
	// for the lease documents of every Cosmos DB trigger.
	LeasePrefix string
}

// HTTP holds extensions.http.
type HTTP struct {
	// RoutePrefix is the path prefix of every HTTP-triggered function,
	// without slashes around it (default "api"; "" for none).
	RoutePrefix string
}

// ParseHostJSON reads host.json. settings are the app settings used to expand
// %NAME% in the handler's executable path and arguments. It returns the
// host, warnings about settings that are ignored, and every problem found
// (each an *Error). The Host is complete only when there are no errors; its
// Handler paths are as written (Load resolves them).
func ParseHostJSON(data []byte, settings map[string]string) (Host, []string, []error) {
	r := &report{file: "host.json"}
	h := parseHost(data, settings, r)
	return h, r.warnings, r.errs
}

func parseHost(data []byte, settings map[string]string, r *report) Host {
	h := Host{
		FunctionTimeout: DefaultFunctionTimeout,
		EventHubs: EventHubs{
			MaxEventBatchSize:        DefaultMaxEventBatchSize,
			MinEventBatchSize:        DefaultMinEventBatchSize,
			MaxWaitTime:              DefaultMaxWaitTime,
			BatchCheckpointFrequency: DefaultBatchCheckpointFrequency,
			PrefetchCount:            DefaultPrefetchCount,
			InitialOffset:            InitialOffset{Type: OffsetFromStart},
		},
		Queues: Queues{
			MaxPollingInterval: DefaultMaxPollingInterval,
			BatchSize:          DefaultQueueBatchSize,
			NewBatchThreshold:  -1,
			MaxDequeueCount:    DefaultMaxDequeueCount,
			MessageEncoding:    EncodingBase64,
		},
		HTTP: HTTP{RoutePrefix: DefaultRoutePrefix},
	}
	doc, err := decodeJSON(data)
	if err != nil {
		r.errorf("", "%v", err)
		return h
	}
	m, ok := doc.(map[string]any)
	if !ok {
		r.errorf("", "must hold a JSON object like {\"version\": \"2.0\", \"customHandler\": {...}}, not %s", describe(doc))
		return h
	}
	o := newObject(m, "", r)

	switch v, ok := o.str("version"); {
	case !ok && !o.has("version"):
		r.errorf("version", "missing; write \"version\": \"2.0\" (the host.json schema of Azure Functions 2.x to 4.x)")
	case !ok:
	case strings.TrimSpace(v) == "2.0":
		h.Version = "2.0"
	default:
		r.errorf("version", "%q is not supported; Sluice runs apps written for Azure Functions 2.x to 4.x, whose host.json says \"version\": \"2.0\"", v)
	}

	h.Handler = parseHandler(o, settings)

	if v, _, ok := o.lookup("functionTimeout"); ok {
		h.FunctionTimeout = parseFunctionTimeout(o, v)
	}
	if ro, ok := o.object("retry"); ok {
		h.Retry = parseRetry(ro)
	}
	if ext, ok := o.object("extensions"); ok {
		parseExtensions(ext, &h)
	}
	if names, ok := o.strs("functions"); ok && len(names) > 0 {
		h.Functions = names
	}
	if so, ok := o.object("sluice"); ok {
		parseSluice(so, &h)
	}
	o.lookup("logging") // accepted, not used
	o.lookup("extensionBundle")
	for _, k := range o.unread() {
		r.warnf(k, "not used by Sluice; ignored")
	}
	return h
}

// parseHandler reads customHandler, or else the legacy httpWorker section.
func parseHandler(o *object, settings map[string]string) Handler {
	r := o.r
	section := "customHandler"
	ch, hasCustom := o.object("customHandler")
	hw, hasLegacy := o.object("httpWorker")
	switch {
	case hasCustom && hasLegacy:
		r.warnf("httpWorker", "ignored: customHandler wins when host.json has both, as on Azure")
	case hasLegacy:
		ch, section = hw, "httpWorker"
	case !hasCustom:
		if !o.has("customHandler") && !o.has("httpWorker") {
			r.errorf("customHandler", "missing; Sluice runs custom handler apps: add \"customHandler\": {\"description\": {\"defaultExecutablePath\": \"handler\"}}")
		}
		return Handler{}
	}
	h := Handler{Legacy: section == "httpWorker"}
	if h.Legacy {
		h.ForwardHTTP = true
		ch.lookup("enableForwardingHttpRequest")
	} else if fwd, ok := ch.boolean("enableForwardingHttpRequest"); ok {
		h.ForwardHTTP = fwd
	}
	desc, ok := ch.object("description")
	if !ok {
		if !ch.has("description") {
			r.errorf(ch.field("description"), "missing; it names the handler: {\"defaultExecutablePath\": \"handler\"}")
		}
		return h
	}
	expandField := func(s, field string) string {
		out, missing := expand(s, settings)
		for _, name := range missing {
			r.errorf(field, "app setting %q is not set (the value refers to %%%s%%); add it to Values in local.settings.json or to the environment", name, name)
		}
		return out
	}
	switch exe, ok := desc.str("defaultExecutablePath"); {
	case ok && strings.TrimSpace(exe) != "":
		h.Executable = expandField(exe, desc.field("defaultExecutablePath"))
	case ok || !desc.has("defaultExecutablePath"): // empty, null or absent; a wrong type is reported already
		r.errorf(desc.field("defaultExecutablePath"), "missing; name the handler executable, relative to the app root (\"handler\") or on PATH (\"node\")")
	}
	h.Arguments = []string{}
	if args, ok := desc.strs("arguments"); ok {
		for i, a := range args {
			h.Arguments = append(h.Arguments, expandField(a, desc.field("arguments")+"["+strconv.Itoa(i)+"]"))
		}
	}
	if wp, ok := desc.str("defaultWorkerPath"); ok && wp != "" {
		h.Arguments = append(h.Arguments, expandField(wp, desc.field("defaultWorkerPath")))
	}
	if args, ok := desc.strs("workerArguments"); ok {
		for i, a := range args {
			h.Arguments = append(h.Arguments, expandField(a, desc.field("workerArguments")+"["+strconv.Itoa(i)+"]"))
		}
	}
	if wd, ok := desc.str("workingDirectory"); ok {
		h.WorkingDir = wd
	}
	for _, k := range desc.unread() {
		r.warnf(desc.field(k), "not used by Sluice; ignored")
	}
	for _, k := range ch.unread() {
		r.warnf(ch.field(k), "not used by Sluice; ignored")
	}
	return h
}

// parseFunctionTimeout reads functionTimeout: a TimeSpan, or -1 / null for
// no limit.
func parseFunctionTimeout(o *object, v any) time.Duration {
	if v == nil {
		return 0
	}
	s, ok := o.str("functionTimeout")
	if !ok {
		return DefaultFunctionTimeout
	}
	switch strings.TrimSpace(s) {
	case "-1", "-1.00:00:00": // TimeSpan -1 day, Azure's "no limit"
		return 0
	}
	d, ok := o.timeSpan("functionTimeout")
	if !ok {
		return DefaultFunctionTimeout
	}
	if d < MinFunctionTimeout {
		o.r.errorf("functionTimeout", "%s is too short; it must be at least 00:00:01, or \"-1\" for no limit", s)
		return DefaultFunctionTimeout
	}
	return d
}

func parseExtensions(ext *object, h *Host) {
	if eh, ok := ext.object("eventHubs"); ok {
		parseEventHubs(eh, &h.EventHubs)
	}
	if q, ok := ext.object("queues"); ok {
		parseQueues(q, &h.Queues)
	}
	if c, ok := ext.object("cosmosDB"); ok {
		parseCosmosDB(c, &h.CosmosDB)
	}
	if hp, ok := ext.object("http"); ok {
		if p, ok := hp.str("routePrefix"); ok {
			h.HTTP.RoutePrefix = strings.Trim(strings.TrimSpace(p), "/")
		}
		for _, k := range hp.unread() {
			ext.r.warnf(hp.field(k), "not used by Sluice; ignored")
		}
	}
	for _, k := range ext.unread() {
		ext.r.warnf(ext.field(k), "not used by Sluice; ignored")
	}
}

func parseEventHubs(o *object, e *EventHubs) {
	// The 3.x/4.x names first, so that the new names win.
	if epo, ok := o.object("eventProcessorOptions"); ok {
		if n, ok := epo.integer(1, math.MaxInt32, "maxBatchSize"); ok {
			e.MaxEventBatchSize = n
		}
		if n, ok := epo.integer(0, math.MaxInt32, "prefetchCount"); ok {
			e.PrefetchCount = n
		}
		for _, k := range epo.unread() {
			o.r.warnf(epo.field(k), "not used by Sluice; ignored")
		}
	}
	if n, ok := o.integer(1, math.MaxInt32, "maxEventBatchSize"); ok {
		e.MaxEventBatchSize = n
	}
	minSet := false
	if n, ok := o.integer(1, math.MaxInt32, "minEventBatchSize"); ok {
		e.MinEventBatchSize, minSet = n, true
	}
	if minSet && e.MinEventBatchSize > e.MaxEventBatchSize {
		o.r.errorf(o.field("minEventBatchSize"), "%d is more than maxEventBatchSize %d", e.MinEventBatchSize, e.MaxEventBatchSize)
	}
	if d, ok := o.timeSpan("maxWaitTime"); ok {
		if d > MaxMaxWaitTime {
			o.r.errorf(o.field("maxWaitTime"), "%s is longer than the limit of 00:10:00", d)
		} else {
			e.MaxWaitTime = d
		}
	}
	if n, ok := o.integer(1, math.MaxInt32, "batchCheckpointFrequency"); ok {
		e.BatchCheckpointFrequency = n
	}
	if n, ok := o.integer(0, math.MaxInt32, "prefetchCount"); ok {
		e.PrefetchCount = n
	}
	if n, ok := o.integer(1, math.MaxInt32, "targetUnprocessedEventThreshold"); ok {
		e.TargetUnprocessedEventThreshold = n
	}
	if off, ok := o.object("initialOffsetOptions"); ok {
		t, hasType := off.str("type")
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "":
			if hasType {
				off.r.errorf(off.field("type"), "empty; write %q, %q or %q", OffsetFromStart, OffsetFromEnd, OffsetFromEnqueuedTime)
			}
		case "fromstart":
			e.InitialOffset.Type = OffsetFromStart
		case "fromend":
			e.InitialOffset.Type = OffsetFromEnd
		case "fromenqueuedtime":
			e.InitialOffset.Type = OffsetFromEnqueuedTime
		default:
			off.r.errorf(off.field("type"), "%q is not an initial offset; write %q, %q or %q", t, OffsetFromStart, OffsetFromEnd, OffsetFromEnqueuedTime)
		}
		if s, ok := off.str("enqueuedTimeUtc"); ok && strings.TrimSpace(s) != "" {
			if at, err := parseTime(s); err != nil {
				off.r.errorf(off.field("enqueuedTimeUtc"), "%v", err)
			} else {
				e.InitialOffset.EnqueuedTimeUTC = at
			}
		} else if e.InitialOffset.Type == OffsetFromEnqueuedTime {
			off.r.errorf(off.field("enqueuedTimeUtc"), "missing; fromEnqueuedTime needs the time to start from, like \"2024-01-01T00:00:00Z\"")
		}
		for _, k := range off.unread() {
			o.r.warnf(off.field(k), "not used by Sluice; ignored")
		}
	}
	for _, k := range o.unread() {
		o.r.warnf(o.field(k), "not used by Sluice; ignored")
	}
}

func parseQueues(o *object, q *Queues) {
	if d, ok := o.timeSpan("maxPollingInterval"); ok {
		if d < MinMaxPollingInterval {
			o.r.errorf(o.field("maxPollingInterval"), "%s is too short; it must be at least 00:00:00.1", d)
		} else {
			q.MaxPollingInterval = d
		}
	}
	if d, ok := o.timeSpan("visibilityTimeout"); ok {
		q.VisibilityTimeout = d
	}
	if n, ok := o.integer(1, MaxQueueBatchSize, "batchSize"); ok {
		q.BatchSize = n
	}
	if n, ok := o.integer(0, math.MaxInt32, "newBatchThreshold"); ok {
		q.NewBatchThreshold = n
	}
	if n, ok := o.integer(1, math.MaxInt32, "maxDequeueCount"); ok {
		q.MaxDequeueCount = n
	}
	if s, ok := o.str("messageEncoding"); ok {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "base64":
			q.MessageEncoding = EncodingBase64
		case "none":
			q.MessageEncoding = EncodingNone
		default:
			o.r.errorf(o.field("messageEncoding"), "%q is not a message encoding; write %q or %q", s, EncodingBase64, EncodingNone)
		}
	}
	for _, k := range o.unread() {
		o.r.warnf(o.field(k), "not used by Sluice; ignored")
	}
}

func parseCosmosDB(o *object, c *CosmosDB) {
	if s, ok := o.str("connectionMode"); ok {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "gateway":
			c.ConnectionMode = "Gateway"
		case "direct":
			c.ConnectionMode = "Direct"
		default:
			o.r.errorf(o.field("connectionMode"), "%q is not a connection mode; write \"Gateway\" or \"Direct\"", s)
		}
	}
	if s, ok := o.str("userAgentSuffix"); ok {
		c.UserAgentSuffix = s
	}
	if lo, ok := o.object("leaseOptions"); ok {
		if s, ok := lo.str("leasePrefix"); ok {
			c.LeasePrefix = s
		}
		for _, k := range lo.unread() {
			o.r.warnf(lo.field(k), "not used by Sluice; ignored")
		}
	}
	for _, k := range o.unread() {
		o.r.warnf(o.field(k), "not used by Sluice; ignored")
	}
}

// parseTime reads a point in time the way .NET's DateTime.Parse reads the
// usual ISO 8601 forms. A time without a zone is UTC (Azure runs in UTC).
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time; write ISO 8601 like \"2024-01-31T08:00:00Z\"", s)
}
