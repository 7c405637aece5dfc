package gateway

import (
	"errors"
	"net/http"
	"time"

	"github.com/sluicehq/sluice/internal/auth"
)

// KeyJSON is an API key as the API shows it: never its secret or hash.
type KeyJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	Expired   bool      `json:"expired,omitempty"`
}

// ToKeyJSON converts a stored key for the API.
func ToKeyJSON(k auth.Key, now time.Time) KeyJSON {
	return KeyJSON{ID: k.ID, Name: k.Name, Scopes: k.Scopes, Created: k.Created, CreatedBy: k.CreatedBy,
		Expires: k.Expires, LastUsed: k.LastUsed, Expired: k.Expired(now)}
}

// CreateKeyRequest is the body of POST /api/v1/keys.
type CreateKeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// Expires is a Go duration after which the key stops working, such as
	// "720h"; empty: never.
	Expires string `json:"expires"`
}

// CreateKeyResponse answers POST /api/v1/keys. Key is the secret token,
// shown this once.
type CreateKeyResponse struct {
	KeyJSON
	Key string `json:"key"`
}

// HandleKeys serves API key management under /api/v1/keys (admin only):
// GET lists keys, POST creates one and answers its token once, DELETE
// /api/v1/keys/{key} revokes one by id or name.
func (s *Server) HandleKeys(keys *auth.Keys) {
	if keys == nil {
		return
	}
	s.route("GET /api/v1/keys", "keys.list", func(w http.ResponseWriter, r *http.Request) {
		out := []KeyJSON{}
		now := time.Now()
		for _, k := range keys.List() {
			out = append(out, ToKeyJSON(k, now))
		}
		writeJSON(w, http.StatusOK, map[string]any{"keys": out})
	})
	s.route("POST /api/v1/keys", "keys.create", func(w http.ResponseWriter, r *http.Request) {
		var req CreateKeyRequest
		if err := decodeRequest(r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		var ttl time.Duration
		if req.Expires != "" {
			d, err := time.ParseDuration(req.Expires)
			if err != nil || d <= 0 {
				s.fail(w, r, invalidRequestf("expires %q: give a positive duration such as 720h, or leave it out for a key that does not expire", req.Expires))
				return
			}
			ttl = d
		}
		key, token, err := keys.Create(r.Context(), auth.CreateOptions{Name: req.Name, Scopes: req.Scopes, TTL: ttl, CreatedBy: "api"})
		if errors.Is(err, auth.ErrBadRequest) {
			err = invalidRequestf("%v", err)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.log.Info("API key created", "key_id", key.ID, "name", key.Name, "scopes", key.Scopes)
		writeJSON(w, http.StatusCreated, CreateKeyResponse{KeyJSON: ToKeyJSON(key, time.Now()), Key: token})
	})
	s.route("DELETE /api/v1/keys/{key}", "keys.revoke", func(w http.ResponseWriter, r *http.Request) {
		key, err := keys.Revoke(r.Context(), r.PathValue("key"))
		switch {
		case errors.Is(err, auth.ErrKeyNotFound):
			writeError(w, http.StatusNotFound, err.Error())
			return
		case errors.Is(err, auth.ErrBadRequest):
			s.fail(w, r, invalidRequestf("%v", err))
			return
		case err != nil:
			s.fail(w, r, err)
			return
		}
		s.log.Info("API key revoked", "key_id", key.ID, "name", key.Name)
		writeJSON(w, http.StatusOK, ToKeyJSON(key, time.Now()))
	})
}
