package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/sluicehq/sluice/internal/dr"
)

// DRControl is the app's geo-disaster recovery, as GET /api/v1/dr and
// POST /api/v1/dr/failover see it.
type DRControl interface {
	// DRStatus reports the role of the instance and its mirrors.
	DRStatus(ctx context.Context) (dr.Status, error)
	// DRFailover promotes a secondary; on anything else it returns an
	// error wrapping dr.ErrNotSecondary.
	DRFailover(ctx context.Context) (dr.Report, error)
}

// HandleDR serves GET /api/v1/dr (read) and POST /api/v1/dr/failover
// (admin). A nil c leaves them out.
func (s *Server) HandleDR(c DRControl) {
	if c == nil {
		return
	}
	s.route("GET /api/v1/dr", "dr.status", func(w http.ResponseWriter, r *http.Request) {
		st, err := c.DRStatus(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	s.route("POST /api/v1/dr/failover", "dr.failover", func(w http.ResponseWriter, r *http.Request) {
		rep, err := c.DRFailover(r.Context())
		if errors.Is(err, dr.ErrNotSecondary) {
			writeError(w, http.StatusConflict, err.Error())
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
}
