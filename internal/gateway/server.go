// Package gateway is Sluice's HTTP API under /api/v1: ingestion of events
// (JSON, NDJSON, CloudEvents) and hub administration, consumer-group lag and
// replay, queues, documents and their change feeds, blobs, dead letters,
// circuit breakers, API keys, the dashboard's overview and the autoscaling
// signals; health checks and metrics. Each route declares what it needs (authz.go), checked before its
// handler. Every error answers with a status and a JSON body
// {"error": "..."} that says what is wrong and what to do; a request that is
// rejected writes nothing.
package gateway

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/partner"
	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/resilience"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// Config configures the API server.
type Config struct {
	Hubs *hub.Service
	// Queues serves /api/v1/queues; nil leaves those routes out.
	Queues *queue.Service
	// Blobs serves /api/v1/blobs; nil leaves those routes out.
	Blobs *blob.Service
	// Docs serves /api/v1/containers; nil leaves those routes out.
	Docs docstore.Store
	// Breakers serves /api/v1/breakers; nil leaves those routes out.
	Breakers *resilience.Breakers
	// Leases tells who owns each hub partition in GET /api/v1/overview
	// (a *lease.Manager); nil leaves owners out.
	Leases Ownership
	// InstanceID names the instance in GET /api/v1/overview.
	InstanceID string
	Metrics    *telemetry.Metrics
	Logger     *slog.Logger
	// Ready reports whether the instance is ready to process work.
	Ready func() bool
	// MaxEventBytes bounds one event. Default 1 MiB.
	MaxEventBytes int
	// MaxRequestBytes bounds an ingestion request body. Default 64 MiB.
	MaxRequestBytes int64
	// MaxEvents bounds the events of one request. Default 10000.
	MaxEvents int
	// Authorize, when set, decides for every route whether the request
	// may do what the route needs (see routeNeeds); nil allows everything.
	Authorize Authorizer
	// RetryRoute sends redriven hub events back to the function that gave
	// up on them alone (see deadletter.Store.RetryRoute); nil: to the hub.
	RetryRoute deadletter.RetryRoute
	// HTTPFunctions lists the app's HTTP functions with their routes, for
	// GET /api/v1/overview, which shows an HTTP function's route as its
	// trigger. It is called for each overview, after the server started;
	// nil: HTTP functions are shown without a route.
	HTTPFunctions func() []HTTPFunction
	// Refuse, when set, is asked about every authorized request before its
	// route's handler runs: an error answers 503 with Retry-After and the
	// error's text, and the handler does not run (a DR standby refuses
	// writes this way). route is the route's name (see routeNeeds).
	Refuse func(r *http.Request, route string) error
	// Scaled lists the app's hub and queue functions with their targets
	// per instance, for GET /api/v1/scale and the sluice_scale_* gauges;
	// none: both say that no instance is needed. When Leases also has
	// Members (Membership), the scale reports how many instances run.
	Scaled []ScaledFunction
}

// Server serves the API.
type Server struct {
	cfg      Config
	partners *partner.Service // set by HandlePartners
	mux      *http.ServeMux
	log      *slog.Logger
	routes   []Route
}

// NewServer creates the API server.
func NewServer(cfg Config) *Server {
	cfg.MaxEventBytes = cmp.Or(cfg.MaxEventBytes, DefaultMaxEventBytes)
	cfg.MaxRequestBytes = cmp.Or(cfg.MaxRequestBytes, 64<<20)
	cfg.MaxEvents = cmp.Or(cfg.MaxEvents, DefaultMaxEvents)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.NewMetrics()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger}
	s.route("GET /healthz", "healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.route("GET /readyz", "readyz", s.ready)
	metrics := cfg.Metrics.Handler()
	s.route("GET /metrics", "metrics", metrics.ServeHTTP)
	s.route("GET /api/v1/hubs", "hubs.list", s.listHubs)
	s.route("POST /api/v1/hubs", "hubs.create", s.createHub)
	s.route("GET /api/v1/hubs/{hub}", "hubs.describe", s.describeHub)
	s.route("DELETE /api/v1/hubs/{hub}", "hubs.delete", s.deleteHub)
	s.route("POST /api/v1/hubs/{hub}/events", "hubs.publish", s.publish)
	s.route("GET /api/v1/hubs/{hub}/partitions/{partition}/events", "hubs.read", s.read)
	s.route("GET /api/v1/hubs/{hub}/groups/{group}/lag", "hubs.lag", s.lag)
	s.route("POST /api/v1/hubs/{hub}/groups/{group}/replay", "hubs.replay", s.replay)
	if cfg.Queues != nil {
		s.queueRoutes()
		s.deadLetterRoutes()
	}
	if cfg.Docs != nil {
		s.docRoutes()
	}
	if cfg.Blobs != nil {
		s.blobRoutes()
	}
	if cfg.Breakers != nil {
		s.breakerRoutes()
	}
	s.overviewRoutes()
	s.scaleRoutes()
	s.mux.HandleFunc("/", s.noRoute)
	return s
}

// noRoute answers a request that no route takes: 405 with Allow when
// routes take its path with other methods, else 404. (The catch-all
// pattern keeps the mux from answering 405 itself, in plain text.)
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	if allow := s.allowedMethods(r); len(allow) > 0 {
		list := strings.Join(allow, ", ")
		w.Header().Set("Allow", list)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, r.URL.Path, list))
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s (the API is under /api/v1/)", r.Method, r.URL.Path))
}

// allowedMethods lists the methods routes take r's path with.
func (s *Server) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := *r
		probe.Method = m
		if _, pattern := s.mux.Handler(&probe); pattern != "" && pattern != "/" {
			out = append(out, m)
		}
	}
	return out
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// route registers a handler. What the route needs is looked up in
// routeNeeds by name, and checked before the handler runs.
func (s *Server) route(pattern, name string, h http.HandlerFunc) {
	n := needOf(name)
	s.routes = append(s.routes, Route{Pattern: pattern, Name: name, Verb: n.verb, Param: n.param})
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		if err := s.authorize(r, n); err != nil {
			s.deny(sw, err)
		} else if err := s.refuse(r, name); err != nil {
			sw.Header().Set("Retry-After", "60")
			writeError(sw, http.StatusServiceUnavailable, err.Error())
		} else {
			h(sw, r)
		}
		s.cfg.Metrics.HTTPRequests.WithLabelValues(name, strconv.Itoa(sw.code)).Inc()
	})
}

func (s *Server) refuse(r *http.Request, route string) error {
	if s.cfg.Refuse == nil {
		return nil
	}
	return s.cfg.Refuse(r, route)
}

func (s *Server) authorize(r *http.Request, n need) error {
	if s.cfg.Authorize == nil {
		return nil
	}
	return s.cfg.Authorize(r, n.of(r))
}

// deny answers a request that Authorize refused.
func (s *Server) deny(w http.ResponseWriter, err error) {
	var aerr *auth.Error
	if !errors.As(err, &aerr) {
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	for k, v := range aerr.Header {
		w.Header()[k] = v
	}
	writeError(w, aerr.Status, aerr.Msg)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeCompactJSON is writeJSON without indentation.
func writeCompactJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// fail answers with the status that fits err.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var perr *Error
	switch {
	case errors.As(err, &perr):
		writeError(w, perr.Status, perr.Msg)
	case errors.Is(err, hub.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error()+" (list hubs with GET /api/v1/hubs)")
	case errors.Is(err, hub.ErrExists):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, hub.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, hub.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, hub.ErrInsufficientStorage):
		writeError(w, http.StatusInsufficientStorage, err.Error())
	case hub.IsStorageRefusal(err):
		// A stream of another service (a queue) the engine has no room for.
		msg := "the engine refused to store it for lack of storage, or past its account's limits: " + err.Error()
		if s.cfg.Hubs != nil {
			if st, serr := s.cfg.Hubs.Storage(r.Context()); serr == nil {
				msg += "; " + st.Available()
			}
		}
		writeError(w, http.StatusInsufficientStorage, msg)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
	case unavailable(r, err):
		s.log.Warn("a backend does not answer", "method", r.Method, "path", r.URL.Path, "err", err)
		what := "the engine (NATS JetStream)"
		if errors.Is(err, docstore.ErrUnavailable) {
			what = "the document store"
		}
		w.Header().Set("Retry-After", retryAfter)
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("%s does not answer (%v): retry in %s seconds; "+
			"GET /readyz tells when the instance is ready again", what, err, retryAfter))
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// retryAfter is the Retry-After of 503 answers, in seconds.
const retryAfter = "5"

// unavailableErrors are the errors of a backend that does not answer,
// beside the engine's own (hub.IsEngineDown).
var unavailableErrors = []error{
	docstore.ErrUnavailable, hub.ErrUnavailable,
	syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE,
	sql.ErrConnDone, driver.ErrBadConn,
}

// unavailable reports whether err says that a backend (the engine or the
// document store) did not answer, rather than that the request is wrong:
// the connection is closed or refused, the backend timed out, or JetStream
// answered that it is temporarily unavailable. A request whose client went
// away is not that.
func unavailable(r *http.Request, err error) bool {
	if r.Context().Err() != nil {
		return false
	}
	for _, target := range unavailableErrors {
		if errors.Is(err, target) {
			return true
		}
	}
	if hub.IsEngineDown(err) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil && !s.cfg.Ready() {
		writeError(w, http.StatusServiceUnavailable, "not ready: the instance is starting or stopping")
		return
	}
	if s.cfg.Hubs == nil {
		// A DR standby whose primary's hubs are not mirrored yet: it
		// serves its status.
	} else if _, err := s.cfg.Hubs.List(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, "not ready: the engine does not answer: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// HubJSON is a hub as the API shows it.
type HubJSON struct {
	Name           string              `json:"name"`
	Partitions     int                 `json:"partitions"`
	Retention      string              `json:"retention"`
	RetentionBytes int64               `json:"retention_bytes,omitempty"`
	Replicas       int                 `json:"replicas,omitempty"`
	Created        time.Time           `json:"created"`
	PartitionInfo  []hub.PartitionInfo `json:"partition_info,omitempty"`
}

func hubJSON(info hub.Info, parts []hub.PartitionInfo) HubJSON {
	return HubJSON{Name: info.Name, Partitions: info.Partitions, Retention: info.RetentionAge.String(),
		RetentionBytes: info.RetentionBytes, Replicas: info.Replicas, Created: info.Created, PartitionInfo: parts}
}

func (s *Server) listHubs(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Hubs.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]HubJSON, len(list))
	for i, info := range list {
		out[i] = hubJSON(info, nil)
	}
	writeJSON(w, http.StatusOK, map[string]any{"hubs": out})
}

// CreateHubRequest is the body of POST /api/v1/hubs.
type CreateHubRequest struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	// Retention is a Go duration such as "72h"; default 168h.
	Retention      string `json:"retention"`
	RetentionBytes int64  `json:"retention_bytes"`
	// Replicas is how many copies a NATS cluster keeps of each partition
	// (1-5); 0: the instance's --replicas.
	Replicas int `json:"replicas,omitempty"`
}

// maxSmallBody bounds the body of the requests decodeRequest reads.
const maxSmallBody = 1 << 20

// decodeRequest decodes a small JSON request body strictly: one JSON
// object, of at most maxSmallBody bytes, with no member v does not have
// and no member named twice.
func decodeRequest(r *http.Request, v any) error {
	body, err := readBody(nil, r, maxSmallBody, "this endpoint takes a small JSON object")
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return invalidRequestf("the request body is empty: send a JSON object")
		}
		return invalidRequestf("the request body is not valid JSON for this endpoint: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidRequestf("the request body has data after the JSON object")
	}
	return checkUniqueMembers(body, "request body")
}

func (s *Server) createHub(w http.ResponseWriter, r *http.Request) {
	var req CreateHubRequest
	if err := decodeRequest(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	cfg := hub.Config{Name: req.Name, Partitions: req.Partitions, RetentionBytes: req.RetentionBytes, Replicas: req.Replicas}
	if req.Retention != "" {
		d, err := time.ParseDuration(req.Retention)
		if err != nil {
			s.fail(w, r, invalidRequestf("retention %q is not a duration: use a form like \"72h\" or \"30m\"", req.Retention))
			return
		}
		cfg.RetentionAge = d
	}
	info, err := s.cfg.Hubs.Create(r.Context(), cfg)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, hubJSON(info, nil))
}

func (s *Server) describeHub(w http.ResponseWriter, r *http.Request) {
	info, parts, err := s.cfg.Hubs.Describe(r.Context(), r.PathValue("hub"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hubJSON(info, parts))
}

func (s *Server) deleteHub(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Hubs.Delete(r.Context(), r.PathValue("hub")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// PublishResponse answers an ingestion request.
type PublishResponse struct {
	Count  int            `json:"count"`
	Events []hub.Position `json:"events"`
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("hub")
	if err := hub.ValidateName(name); err != nil {
		s.fail(w, r, err)
		return
	}
	const tooLarge = "send fewer events per request"
	if err := checkLength(r, s.cfg.MaxRequestBytes, tooLarge); err != nil {
		s.fail(w, r, err)
		return
	}
	// Check the hub before reading a possibly large body.
	if _, err := s.cfg.Hubs.Get(r.Context(), name); err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := readBody(w, r, s.cfg.MaxRequestBytes, tooLarge)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	events, err := ParseEvents(r.Header.Get("Content-Type"), r.Header, r.URL.Query(), body,
		Limits{MaxEventBytes: s.cfg.MaxEventBytes, MaxEvents: s.cfg.MaxEvents})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pos, err := s.cfg.Hubs.Publish(r.Context(), name, events)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Metrics.EventsIn.WithLabelValues(name).Add(float64(len(events)))
	if len(pos) > 10 {
		// Big answers go out compact: indenting thousands of positions
		// cost a tenth of the request's CPU.
		writeCompactJSON(w, http.StatusOK, PublishResponse{Count: len(pos), Events: pos})
		return
	}
	writeJSON(w, http.StatusOK, PublishResponse{Count: len(pos), Events: pos})
}

// EventJSON is a stored event as the API shows it. Body is the body as
// text when it is valid UTF-8; otherwise BodyBase64 holds it.
type EventJSON struct {
	Partition    int               `json:"partition"`
	Sequence     int64             `json:"sequence"`
	EnqueuedTime time.Time         `json:"enqueued_time"`
	PartitionKey string            `json:"partition_key,omitempty"`
	Properties   map[string]string `json:"properties,omitempty"`
	Body         *string           `json:"body,omitempty"`
	BodyBase64   []byte            `json:"body_base64,omitempty"`
}

// ToEventJSON converts a stored event for the API.
func ToEventJSON(e hub.StoredEvent) EventJSON {
	out := EventJSON{Partition: e.Partition, Sequence: e.Sequence, EnqueuedTime: e.EnqueuedTime,
		PartitionKey: e.PartitionKey, Properties: e.Properties}
	if utf8.Valid(e.Body) {
		b := string(e.Body)
		out.Body = &b
	} else {
		out.BodyBase64 = e.Body
	}
	return out
}

// read returns stored events of one partition: GET
// /api/v1/hubs/{hub}/partitions/{p}/events?after=SEQ|from=start|end|RFC3339&limit=N&wait=DURATION.
// wait (default 1s, at most 1m, at least 100ms) bounds how long to wait for
// events when fewer than limit are stored; after wins over from.
func (s *Server) read(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("hub")
	info, err := s.cfg.Hubs.Get(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := strconv.Atoi(r.PathValue("partition"))
	if err != nil || p < 0 || p >= info.Partitions {
		s.fail(w, r, invalidRequestf("partition %q: hub %s has partitions 0 to %d", r.PathValue("partition"), name, info.Partitions-1))
		return
	}
	q := r.URL.Query()
	start := hub.Start{Kind: hub.StartEarliest}
	switch from := q.Get("from"); {
	case q.Has("after"):
		after, err := strconv.ParseInt(q.Get("after"), 10, 64)
		if err != nil || after < -1 {
			s.fail(w, r, invalidRequestf("after=%q: give the sequence number of the last event you have, or -1", q.Get("after")))
			return
		}
		start = hub.Start{Kind: hub.StartAfter, After: after}
	case from == "" || from == "start":
	case from == "end":
		start = hub.Start{Kind: hub.StartLatest}
	default:
		t, err := time.Parse(time.RFC3339Nano, from)
		if err == nil && (t.Year() < 1970 || t.Year() > 2262) {
			s.fail(w, r, invalidRequestf("from=%q: the time must be between 1970 and 2262", from))
			return
		}
		if err != nil {
			s.fail(w, r, invalidRequestf("from=%q: use start, end, or an RFC 3339 time such as 2026-01-02T15:04:05Z", from))
			return
		}
		start = hub.Start{Kind: hub.StartTime, Time: t}
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 10000 {
			s.fail(w, r, invalidRequestf("limit=%q: give a number from 1 to 10000", v))
			return
		}
	}
	wait := time.Second
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 || wait > time.Minute {
			s.fail(w, r, invalidRequestf("wait=%q: give a duration up to 1m, such as 500ms or 5s", v))
			return
		}
	}
	// The events stored when the request came are answered (up to limit)
	// however long they take to come in; wait bounds the wait for events
	// beyond them.
	stored, err := s.cfg.Hubs.Partition(r.Context(), name, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	storedRec, _ := hub.SplitSequence(stored.LastSequence)
	rd, err := s.cfg.Hubs.OpenReader(r.Context(), name, p, start)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rd.Close()
	var readRec uint64 // the record read last
	if start.Kind == hub.StartAfter && start.After >= 0 {
		readRec, _ = hub.SplitSequence(start.After)
	}
	// Nothing stored at or after the start: only new events can come.
	none := stored.LastSequence < 0 || start.Kind == hub.StartLatest ||
		start.Kind == hub.StartTime && start.Time.After(stored.LastEnqueued)
	// storedReadLimit bounds reading what is stored, should a record be
	// removed (by retention) while it is read.
	ctx, cancel := context.WithTimeout(r.Context(), storedReadLimit+wait)
	defer cancel()
	var waiting *time.Timer // runs once the stored events are read
	out := []EventJSON{}
	for len(out) < limit {
		if waiting == nil && (none || readRec >= storedRec) {
			waiting = time.AfterFunc(wait, cancel)
			defer waiting.Stop()
		}
		evs, err := rd.Next(ctx)
		if err != nil {
			if ce, ok := errors.AsType[*hub.CorruptRecordError](err); ok {
				s.log.Warn("corrupt record skipped while reading", "hub", name, "partition", p, "sequence", ce.Sequence)
				readRec, _ = hub.SplitSequence(ce.Sequence)
				continue
			}
			break // wait elapsed (or the client left): return what there is
		}
		for _, e := range evs {
			readRec, _ = hub.SplitSequence(e.Sequence)
			if len(out) == limit {
				break
			}
			out = append(out, ToEventJSON(e))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}

// storedReadLimit bounds how long a read of a partition takes to answer
// the events stored when it came.
const storedReadLimit = 30 * time.Second

// checkGroup answers 404 for a consumer group that has no checkpoint in
// the hub (hub.CheckGroup); hint says what to do then. On error it has
// answered.
func (s *Server) checkGroup(w http.ResponseWriter, r *http.Request, hint string) bool {
	err := s.cfg.Hubs.CheckGroup(r.Context(), r.PathValue("hub"), r.PathValue("group"))
	switch {
	case err == nil:
		return true
	case errors.Is(err, hub.ErrGroupNotFound):
		writeError(w, http.StatusNotFound, err.Error()+": "+hint)
	default:
		s.fail(w, r, err)
	}
	return false
}

func (s *Server) lag(w http.ResponseWriter, r *http.Request) {
	if !s.checkGroup(w, r, "check the name (a group appears once its function has checkpointed an event)") {
		return
	}
	lags, err := s.cfg.Hubs.GroupLag(r.Context(), r.PathValue("hub"), r.PathValue("group"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var total int64
	for _, l := range lags {
		total += l.Events
	}
	writeJSON(w, http.StatusOK, map[string]any{"hub": r.PathValue("hub"), "group": r.PathValue("group"), "total_events": total, "partitions": lags})
}

// ReplayRequest is the body of POST .../groups/{group}/replay: exactly one
// of Earliest, Time (RFC 3339) or Sequences (partition -> sequence number of
// the first event to process again, at most one past the partition's last
// event).
type ReplayRequest struct {
	Earliest  bool             `json:"earliest"`
	Time      string           `json:"time"`
	Sequences map[string]int64 `json:"sequences"`
	// Grace is how long in-flight batches get to finish after the group is
	// paused, as a Go duration. Default 2s.
	Grace string `json:"grace"`
	// Create replays a group that has no checkpoint yet (a new group, or
	// a mistyped name): its checkpoints are created at the target. Without
	// it, such a group answers 404 naming the hub's groups.
	Create bool `json:"create,omitempty"`
}

// replayGrace reads a replay's grace: a Go duration up to 5m, 2s when
// empty.
func replayGrace(v string) (time.Duration, error) {
	if v == "" {
		return 2 * time.Second, nil
	}
	g, err := time.ParseDuration(v)
	if err != nil || g < 0 || g > 5*time.Minute {
		return 0, invalidRequestf("grace %q: give a duration up to 5m, such as 2s", v)
	}
	return g, nil
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	if err := decodeRequest(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	target := hub.ReplayTarget{Earliest: req.Earliest}
	if req.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, req.Time)
		if err != nil {
			why := ""
			if perr, ok := errors.AsType[*time.ParseError](err); ok && perr.Message != "" {
				why = strings.TrimPrefix(perr.Message, ": ") + ": "
			}
			s.fail(w, r, invalidRequestf("time %q: %suse an RFC 3339 time such as 2026-01-02T15:04:05Z", req.Time, why))
			return
		}
		if t.Year() < 1970 {
			s.fail(w, r, invalidRequestf("time %q is before 1970, before any event: give a later time, or send \"earliest\": true to replay everything still stored", req.Time))
			return
		}
		target.Time = t
	}
	if len(req.Sequences) > 0 {
		target.Sequences = map[int]int64{}
		for k, v := range req.Sequences {
			p, err := strconv.Atoi(k)
			if err != nil {
				s.fail(w, r, invalidRequestf("sequences: key %q is not a partition number", k))
				return
			}
			target.Sequences[p] = v
		}
	}
	grace, err := replayGrace(req.Grace)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// As the replay checks: the hub, the group's name, the target; then
	// whether the group exists.
	_, err = s.cfg.Hubs.Get(r.Context(), r.PathValue("hub"))
	if err == nil {
		err = hub.ValidateGroup(r.PathValue("group"))
	}
	if err == nil {
		err = target.Validate()
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !req.Create && !s.checkGroup(w, r, `check the name, or send "create": true to start this group at the replay's target (sluice hub replay --create)`) {
		return
	}
	res, err := s.cfg.Hubs.Replay(r.Context(), r.PathValue("hub"), r.PathValue("group"), target, grace)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"hub": r.PathValue("hub"), "group": r.PathValue("group"), "partitions": res})
}
