package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// PipelineControl is the app's data pipelines, as /api/v1/pipelines sees
// them. Errors that are the caller's (an unknown pipeline or destination,
// a bad target) are *Error with their status.
type PipelineControl interface {
	// PipelineList returns every declared pipeline's status, and
	// PipelineStatus one's; both encode as JSON.
	PipelineList(ctx context.Context) (any, error)
	PipelineStatus(ctx context.Context, name string) (any, error)
	// PipelineReplay moves a destination back to the first change set
	// staged at or after t, or to change set changeSet, and returns the
	// change set it goes on from.
	PipelineReplay(ctx context.Context, name, destination string, t time.Time, changeSet int64, grace time.Duration) (int64, error)
	// PipelinePause pauses (or resumes) a destination.
	PipelinePause(ctx context.Context, name, destination string, paused bool, reason string) error
	// PipelineCreate creates a pipeline from its definition (JSON, the
	// shape of an entry of sluice.yaml's pipelines) on every instance and
	// returns its status; PipelineDelete deletes a created one.
	PipelineCreate(ctx context.Context, name string, spec json.RawMessage) (any, error)
	PipelineDelete(ctx context.Context, name string) error
	// PipelineBackfill asks the source to read a table's rows where
	// selects again; it returns the request as stored.
	PipelineBackfill(ctx context.Context, name, table, where string) (any, error)
}

// PipelineBackfillRequest is the body of a backfill.
type PipelineBackfillRequest struct {
	Table string `json:"table"`
	Where string `json:"where,omitempty"`
}

// PipelineCreateRequest is the body of a pipeline's creation.
type PipelineCreateRequest struct {
	Name string          `json:"name"`
	Spec json.RawMessage `json:"spec"`
}

// PipelineReplayRequest is the body of a destination's replay: exactly
// one of time (RFC 3339) and change_set.
type PipelineReplayRequest struct {
	Time      string `json:"time,omitempty"`
	ChangeSet int64  `json:"change_set,omitempty"`
	// Grace is how long in-flight change sets get before the move, as a
	// Go duration ("2s", the default).
	Grace string `json:"grace,omitempty"`
}

// PipelineReplayJSON answers a replay.
type PipelineReplayJSON struct {
	Pipeline    string `json:"pipeline"`
	Destination string `json:"destination"`
	// From is the change set the destination applies next.
	From int64 `json:"from"`
}

// PipelinePauseRequest is the body of a pause.
type PipelinePauseRequest struct {
	Reason string `json:"reason,omitempty"`
}

// HandlePipelines serves the pipelines' routes. A nil c leaves them out.
func (s *Server) HandlePipelines(c PipelineControl) {
	if c == nil {
		return
	}
	s.route("GET /api/v1/pipelines", "pipelines.list", func(w http.ResponseWriter, r *http.Request) {
		out, err := c.PipelineList(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"pipelines": out})
	})
	s.route("POST /api/v1/pipelines", "pipelines.create", func(w http.ResponseWriter, r *http.Request) {
		var req PipelineCreateRequest
		if err := decodeRequest(r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		if req.Name == "" || len(req.Spec) == 0 {
			s.fail(w, r, invalidRequestf(`give the pipeline's "name" and its definition, "spec"`))
			return
		}
		out, err := c.PipelineCreate(r.Context(), req.Name, req.Spec)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, out)
	})
	s.route("POST /api/v1/pipelines/{pipeline}/backfill", "pipelines.backfill", func(w http.ResponseWriter, r *http.Request) {
		var req PipelineBackfillRequest
		if err := decodeRequest(r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		if strings.TrimSpace(req.Table) == "" {
			s.fail(w, r, invalidRequestf(`give the "table" to backfill (and a "where" condition, or none for every row)`))
			return
		}
		out, err := c.PipelineBackfill(r.Context(), r.PathValue("pipeline"), strings.TrimSpace(req.Table), strings.TrimSpace(req.Where))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, out)
	})
	s.route("DELETE /api/v1/pipelines/{pipeline}", "pipelines.delete", func(w http.ResponseWriter, r *http.Request) {
		if err := c.PipelineDelete(r.Context(), r.PathValue("pipeline")); err != nil {
			s.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s.route("GET /api/v1/pipelines/{pipeline}", "pipelines.status", func(w http.ResponseWriter, r *http.Request) {
		out, err := c.PipelineStatus(r.Context(), r.PathValue("pipeline"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
	s.route("POST /api/v1/pipelines/{pipeline}/destinations/{destination}/replay", "pipelines.replay", func(w http.ResponseWriter, r *http.Request) {
		var req PipelineReplayRequest
		if err := decodeRequest(r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		var t time.Time
		if req.Time != "" {
			var err error
			if t, err = time.Parse(time.RFC3339Nano, req.Time); err != nil {
				s.fail(w, r, invalidRequestf("time %q: use an RFC 3339 time such as 2026-12-01T10:00:00Z", req.Time))
				return
			}
		}
		if t.IsZero() == (req.ChangeSet == 0) {
			s.fail(w, r, invalidRequestf(`give exactly one of "time" and "change_set"`))
			return
		}
		if req.ChangeSet < 0 {
			s.fail(w, r, invalidRequestf("change_set %d: change sets are numbered from 1", req.ChangeSet))
			return
		}
		grace, err := replayGrace(req.Grace)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		name, dest := r.PathValue("pipeline"), r.PathValue("destination")
		from, err := c.PipelineReplay(r.Context(), name, dest, t, req.ChangeSet, grace)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, PipelineReplayJSON{Pipeline: name, Destination: dest, From: from})
	})
	for _, verb := range []string{"pause", "resume"} {
		s.route("POST /api/v1/pipelines/{pipeline}/destinations/{destination}/"+verb, "pipelines."+verb, func(w http.ResponseWriter, r *http.Request) {
			var req PipelinePauseRequest
			if err := decodeRequest(r, &req); err != nil {
				s.fail(w, r, err)
				return
			}
			if err := c.PipelinePause(r.Context(), r.PathValue("pipeline"), r.PathValue("destination"), verb == "pause", strings.TrimSpace(req.Reason)); err != nil {
				s.fail(w, r, err)
				return
			}
			out, err := c.PipelineStatus(r.Context(), r.PathValue("pipeline"))
			if err != nil {
				s.fail(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, out)
		})
	}
}
