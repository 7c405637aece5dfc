package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// GET /api/v1/scale and /api/v1/scale/{function}: how many instances the
// app's work needs, as Azure Functions' scale controller computes it for
// target-based scaling (scalemath.go), for an autoscaler such as KEDA's
// metrics-api scaler; the same numbers are the sluice_scale_* gauges of
// /metrics, for its prometheus scaler. The backlogs come from the engine,
// so every instance answers the same.

// ScaledFunction is a hub or queue function of the app, as the scale sees
// it (see Config.Scaled): Hub and Group, or Queue, with its target per
// instance (at least 1).
type ScaledFunction struct {
	Name              string
	Hub, Group        string
	Queue             string
	TargetPerInstance int
}

// Membership reads the live members of a lease set (see
// lease.Manager.Members): a Config.Leases that has it lets the scale
// report how many instances run now.
type Membership interface {
	Members(ctx context.Context, name string) ([]string, error)
}

// Scale is the answer of GET /api/v1/scale.
type Scale struct {
	// DesiredInstances is what the app needs: the most any of its
	// functions needs, since every instance runs every function.
	DesiredInstances int `json:"desired_instances"`
	// Instances is how many instances run the app's hub functions now
	// (the live members of their partition leases); absent when the app
	// has none.
	Instances *int            `json:"instances,omitempty"`
	Functions []FunctionScale `json:"functions"`
}

// FunctionScale is one function's need, the answer of
// GET /api/v1/scale/{function}.
type FunctionScale struct {
	Function string `json:"function"`
	// Trigger is "hub" or "queue".
	Trigger string `json:"trigger"`
	// A hub function's hub, consumer group, partition count and lag (the
	// events after the group's checkpoints; LagEstimated when counted
	// past a scan limit).
	Hub          string `json:"hub,omitempty"`
	Group        string `json:"group,omitempty"`
	Partitions   int    `json:"partitions,omitempty"`
	Lag          *int64 `json:"lag,omitempty"`
	LagEstimated bool   `json:"lag_estimated,omitempty"`
	// A queue function's queue, its depth (messages visible or locked)
	// and how many of those are locked (being processed).
	Queue  string  `json:"queue,omitempty"`
	Depth  *uint64 `json:"depth,omitempty"`
	Locked *uint64 `json:"locked,omitempty"`
	// Unprocessed is the backlog the formula divides: Lag or Depth.
	Unprocessed       int64 `json:"unprocessed"`
	TargetPerInstance int   `json:"target_per_instance"`
	DesiredInstances  int   `json:"desired_instances"`
}

const (
	// scaleFresh is how long an answer of the API is reused, so that
	// autoscalers polling one instance cost the engine one computation a
	// second at most.
	scaleFresh = time.Second
	// scaleGaugeFresh is how long the gauges reuse an answer, or a
	// failure: the overview gathers the metrics up to twice a second, and
	// a failing engine must not hold up every gathering.
	scaleGaugeFresh = 5 * time.Second
	// scaleTimeout bounds one computation.
	scaleTimeout = 10 * time.Second
)

// scaler computes the scale and keeps the last answer, or failure.
type scaler struct {
	s *Server

	mu   sync.Mutex // held while an answer is made, so concurrent requests share it
	last *Scale
	err  error
	at   time.Time // of last or err; zero: none
}

func (s *Server) scaleRoutes() {
	sc := &scaler{s: s}
	s.route("GET /api/v1/scale", "scale", sc.serveApp)
	s.route("GET /api/v1/scale/{function}", "scale.function", sc.serveFunction)
	s.cfg.Metrics.ReportScale(sc.gauges)
}

func (sc *scaler) serveApp(w http.ResponseWriter, r *http.Request) {
	out, err := sc.get(r.Context(), scaleFresh)
	if err != nil {
		sc.s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (sc *scaler) serveFunction(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("function")
	if !slices.ContainsFunc(sc.s.cfg.Scaled, func(f ScaledFunction) bool { return f.Name == name }) {
		names := make([]string, len(sc.s.cfg.Scaled))
		for i, f := range sc.s.cfg.Scaled {
			names[i] = f.Name
		}
		list := "the app has none"
		if len(names) > 0 {
			list = "the app's are " + strings.Join(names, ", ")
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no hub or queue function named %q (only those have a scale signal; "+
			"timer, HTTP, change-feed and blob functions do not): %s; GET /api/v1/scale shows them all", name, list))
		return
	}
	out, err := sc.get(r.Context(), scaleFresh)
	if err != nil {
		sc.s.fail(w, r, err)
		return
	}
	i := slices.IndexFunc(out.Functions, func(f FunctionScale) bool { return f.Function == name })
	writeJSON(w, http.StatusOK, out.Functions[i])
}

// gauges computes the scale for the sluice_scale_* gauges.
func (sc *scaler) gauges(ctx context.Context) (telemetry.Scale, error) {
	s, err := sc.get(ctx, scaleGaugeFresh)
	if err != nil {
		return telemetry.Scale{}, err
	}
	out := telemetry.Scale{Desired: s.DesiredInstances, Instances: -1, Functions: make([]telemetry.FunctionScale, len(s.Functions))}
	if s.Instances != nil {
		out.Instances = *s.Instances
	}
	for i, f := range s.Functions {
		out.Functions[i] = telemetry.FunctionScale{Function: f.Function, Trigger: f.Trigger, Unprocessed: f.Unprocessed,
			TargetPerInstance: f.TargetPerInstance, Desired: f.DesiredInstances}
	}
	return out, nil
}

// get returns an answer, or the failure to make one, no older than
// fresh. A failure of a request whose client went away is not kept.
func (sc *scaler) get(ctx context.Context, fresh time.Duration) (*Scale, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.at.IsZero() && time.Since(sc.at) < fresh {
		return sc.last, sc.err
	}
	cctx, cancel := context.WithTimeout(ctx, scaleTimeout)
	defer cancel()
	s, err := sc.compute(cctx)
	if err != nil && ctx.Err() != nil {
		return nil, err
	}
	sc.last, sc.err, sc.at = s, err, time.Now()
	return s, err
}

// compute reads every function's backlog. Any that cannot be read fails
// the whole answer: an autoscaler is better told nothing (and keeps the
// instances it has) than a count that leaves a backlog out.
func (sc *scaler) compute(ctx context.Context) (*Scale, error) {
	cfg := sc.s.cfg
	out := &Scale{Functions: make([]FunctionScale, 0, len(cfg.Scaled))}
	var sets []string // the hub functions' lease sets
	for _, f := range cfg.Scaled {
		fs := FunctionScale{Function: f.Name, TargetPerInstance: max(f.TargetPerInstance, 1)}
		switch {
		case f.Hub != "":
			lags, err := cfg.Hubs.GroupLag(ctx, f.Hub, f.Group)
			if err != nil {
				return nil, sourceErr(f, "hub "+f.Hub, hub.ErrNotFound, err)
			}
			var lag int64
			for _, l := range lags {
				lag += l.Events
				fs.LagEstimated = fs.LagEstimated || l.Estimated
			}
			fs.Trigger, fs.Hub, fs.Group, fs.Partitions, fs.Lag, fs.Unprocessed = "hub", f.Hub, f.Group, len(lags), &lag, lag
			fs.DesiredInstances = HubDesired(lag, fs.TargetPerInstance, len(lags))
			// The host's lease set of a hub's consumer group is named
			// "<hub>.<group>" (see host.Host.Start).
			sets = append(sets, f.Hub+"."+f.Group)
		case f.Queue != "":
			if cfg.Queues == nil {
				return nil, fmt.Errorf("scale of function %s: it reads queue %s, but this server has no queue service", f.Name, f.Queue)
			}
			st, err := cfg.Queues.Stats(ctx, f.Queue)
			if err != nil {
				return nil, sourceErr(f, "queue "+f.Queue, queue.ErrNotFound, err)
			}
			depth, locked := st.Depth, st.Locked
			fs.Trigger, fs.Queue, fs.Depth, fs.Locked, fs.Unprocessed = "queue", f.Queue, &depth, &locked, int64(min(depth, 1<<63-1))
			fs.DesiredInstances = QueueDesired(fs.Unprocessed, fs.TargetPerInstance)
		default:
			return nil, fmt.Errorf("scale of function %s: it names neither a hub nor a queue", f.Name)
		}
		out.DesiredInstances = max(out.DesiredInstances, fs.DesiredInstances)
		out.Functions = append(out.Functions, fs)
	}
	if m, ok := cfg.Leases.(Membership); ok && len(sets) > 0 {
		live := map[string]bool{}
		for _, set := range sets {
			ids, err := m.Members(ctx, set)
			if err != nil {
				return nil, fmt.Errorf("scale: instances running %s: %w", set, err)
			}
			for _, id := range ids {
				live[id] = true
			}
		}
		n := len(live)
		out.Instances = &n
	}
	return out, nil
}

// sourceErr explains a failure to read a function's source. A source that
// does not exist was deleted under the running app: a server error that
// says what to do, not a 404 of the scale endpoint.
func sourceErr(f ScaledFunction, source string, notFound, err error) error {
	if errors.Is(err, notFound) {
		return &Error{Status: http.StatusInternalServerError, Msg: fmt.Sprintf(
			"scale of function %s: %s does not exist (deleted while the app runs?): create it again, or restart the app, which creates what it declares: %v", f.Name, source, err)}
	}
	return fmt.Errorf("scale of function %s (%s): %w", f.Name, source, err)
}
