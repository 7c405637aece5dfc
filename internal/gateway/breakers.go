package gateway

import (
	"errors"
	"net/http"

	"github.com/sluicehq/sluice/internal/resilience"
)

// Circuit breakers under /api/v1/breakers (see resilience.Breakers).

// BreakerJSON is a breaker in API answers.
type BreakerJSON struct {
	resilience.Record
	// Failures counted in the rolling window and the current run of
	// consecutive failures, over all instances, as the answering instance
	// sees them (only when it runs the function).
	Failures    int                `json:"failures"`
	Consecutive int                `json:"consecutive"`
	Policy      *BreakerPolicyJSON `json:"policy,omitempty"`
}

// BreakerPolicyJSON is a breaker policy with durations as text ("30s").
type BreakerPolicyJSON struct {
	FailureThreshold    int    `json:"failure_threshold,omitempty"`
	Window              string `json:"window"`
	ConsecutiveFailures int    `json:"consecutive_failures,omitempty"`
	CoolDown            string `json:"cool_down"`
	MaxCoolDown         string `json:"max_cool_down"`
}

func breakerJSON(st resilience.Status) BreakerJSON {
	out := BreakerJSON{Record: st.Record, Failures: st.Failures, Consecutive: st.Run}
	if p := st.Policy; p != nil {
		out.Policy = &BreakerPolicyJSON{FailureThreshold: p.FailureThreshold, Window: p.Window.String(),
			ConsecutiveFailures: p.ConsecutiveFailures, CoolDown: p.CoolDown.String(), MaxCoolDown: p.MaxCoolDown.String()}
	}
	return out
}

// BreakerChange is the optional body of open and close requests.
type BreakerChange struct {
	// Reason is kept in the breaker's history.
	Reason string `json:"reason,omitempty"`
	// By names who asked (default: the API).
	By string `json:"by,omitempty"`
}

func (s *Server) breakerRoutes() {
	s.route("GET /api/v1/breakers", "breakers.list", s.listBreakers)
	s.route("GET /api/v1/breakers/{function}", "breakers.show", s.showBreaker)
	s.route("POST /api/v1/breakers/{function}/open", "breakers.open", s.changeBreaker(true))
	s.route("POST /api/v1/breakers/{function}/close", "breakers.close", s.changeBreaker(false))
}

func (s *Server) failBreaker(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, resilience.ErrNoBreaker) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	s.fail(w, r, err)
}

func (s *Server) listBreakers(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Breakers.List(r.Context())
	if err != nil {
		s.failBreaker(w, r, err)
		return
	}
	out := make([]BreakerJSON, len(list))
	for i, st := range list {
		out[i] = breakerJSON(st)
	}
	writeJSON(w, http.StatusOK, map[string]any{"breakers": out})
}

func (s *Server) showBreaker(w http.ResponseWriter, r *http.Request) {
	st, err := s.cfg.Breakers.Get(r.Context(), r.PathValue("function"))
	if err != nil {
		s.failBreaker(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, breakerJSON(st))
}

func (s *Server) changeBreaker(open bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req BreakerChange
		// The body is optional: {"reason": "...", "by": "..."}.
		if r.ContentLength != 0 {
			if err := decodeRequest(r, &req); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		name := r.PathValue("function")
		by := req.By
		if by == "" {
			by = "api " + r.RemoteAddr
		}
		var err error
		if open {
			_, err = s.cfg.Breakers.Open(r.Context(), name, req.Reason, by)
		} else {
			_, err = s.cfg.Breakers.Close(r.Context(), name, req.Reason, by)
		}
		if err != nil {
			s.failBreaker(w, r, err)
			return
		}
		st, err := s.cfg.Breakers.Get(r.Context(), name)
		if err != nil {
			s.failBreaker(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, breakerJSON(st))
	}
}
