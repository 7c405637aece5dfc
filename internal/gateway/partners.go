package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/partner"
)

// PartnerJSON is a partner as the API shows it, with the message types it
// may send.
type PartnerJSON struct {
	partner.Partner
	Types []partner.MessageType `json:"types,omitempty"`
}

// CreatePartnerRequest is the body of POST /api/v1/partners.
type CreatePartnerRequest struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Enabled defaults to true.
	Enabled *bool `json:"enabled"`
}

// UpdatePartnerRequest is the body of PATCH /api/v1/partners/{partner}.
type UpdatePartnerRequest struct {
	Name    *string `json:"name"`
	Enabled *bool   `json:"enabled"`
}

// CreateTokenRequest is the body of POST /api/v1/partners/{partner}/tokens.
type CreateTokenRequest struct {
	Name string `json:"name"`
	// Expires is a Go duration after which the token stops working, such
	// as "2160h"; empty: never.
	Expires string `json:"expires"`
}

// CreateTokenResponse answers it: Token is the secret, shown this once.
type CreateTokenResponse struct {
	partner.Token
	Partner string `json:"partner"`
	Secret  string `json:"token"`
}

// RejectedJSON answers a refused partner message.
type RejectedJSON struct {
	Error     string            `json:"error"`
	Stage     string            `json:"stage,omitempty"`
	Problems  []partner.Problem `json:"problems,omitempty"`
	MessageID string            `json:"message_id,omitempty"`
}

// HandlePartners serves the partner integration API: the partners' own
// routes under /api/v1/partners/{partner}/messages (authenticated by the
// partner's token, not by an API key), and the registry's management
// (partners, their tokens, message types, rejection logs).
func (s *Server) HandlePartners(svc *partner.Service) {
	if svc == nil {
		return
	}
	s.partners = svc
	reg := svc.Registry
	s.route("POST /api/v1/partners/{partner}/messages/{type}", "partners.messages.send", func(w http.ResponseWriter, r *http.Request) {
		s.partnerMessage(w, r, svc)
	})
	s.route("POST /api/v1/partners/{partner}/messages/{type}/batch", "partners.messages.sendBatch", func(w http.ResponseWriter, r *http.Request) {
		s.partnerBatch(w, r, svc)
	})
	s.route("GET /api/v1/partners/{partner}/messages/rejections", "partners.messages.rejections", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("partner")
		token, _, err := auth.Credential(r.Header)
		if err == nil {
			err = reg.Authenticate(id, token)
		}
		if err != nil {
			s.partnerFail(w, r, err)
			return
		}
		s.listRejections(w, r, svc, id)
	})
	s.route("GET /api/v1/partners", "partners.list", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"partners": reg.Partners()})
	})
	s.route("POST /api/v1/partners", "partners.create", func(w http.ResponseWriter, r *http.Request) {
		var req CreatePartnerRequest
		if err := decodeRequest(r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		p, err := reg.CreatePartner(r.Context(), partner.Partner{ID: req.ID, Name: req.Name, Enabled: req.Enabled == nil || *req.Enabled})
		if err != nil {
			s.partnerFail(w, r, err)
			return
		}
		s.log.Info("partner created", "partner", p.ID)
		writeJSON(w, http.StatusCreated, p)
	})
	s.route("GET /api/v1/partners/{partner}", "partners.describe", func(w http.ResponseWriter, r *http.Request) {
		p, err := reg.Partner(r.PathValue("partner"))
		if err != nil {
			s.partnerFail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, PartnerJSON{Partner: p, Types: reg.Types(p.ID)})
	})
	s.route("PATCH /api/v1/partners/{partner}", "partners.update", func(w http.ResponseWriter, r *http.Request) {
		var req UpdatePartnerRequest
		if err := decodeRequest(r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		p, err := reg.UpdatePartner(r.Context(), r.PathValue("partner"), func(p *partner.Partner) error {
			if req.Name != nil {
				p.Name = *req.Name
			}
			if req.Enabled != nil {
				p.Enabled = *req.Enabled
			}
			return nil
		})
		if err != nil {
			s.partnerFail(w, r, err)
			return
		}
		s.log.Info("partner changed", "partner", p.ID, "enabled", p.Enabled)
		writeJSON(w, http.StatusOK, p)
	})
	s.route("DELETE /api/v1/partners/{partner}", "partners.delete", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("partner")
		if err := reg.DeletePartner(r.Context(), id); err != nil {
			s.partnerFail(w, r, err)
			return
		}
		s.log.Info("partner deleted", "partner", id)
		writeJSON(w, http.StatusOK, map[string]string{"deleted": id})
	})
	s.route("POST /api/v1/partners/{partner}/tokens", "partners.tokens.create", func(w http.ResponseWriter, r *http.Request) {
		var req CreateTokenRequest
		if err := decodeRequest(r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		var expires time.Time
		if req.Expires != "" {
			d, err := time.ParseDuration(req.Expires)
			if err != nil || d <= 0 {
				s.fail(w, r, invalidRequestf("expires %q: give a positive duration such as 2160h, or leave it out for a token that does not expire", req.Expires))
				return
			}
			expires = time.Now().Add(d)
		}
		id := r.PathValue("partner")
		t, secret, err := reg.AddToken(r.Context(), id, req.Name, expires)
		if err != nil {
			s.partnerFail(w, r, err)
			return
		}
		s.log.Info("partner token created", "partner", id, "token_id", t.ID)
		writeJSON(w, http.StatusCreated, CreateTokenResponse{Token: t, Partner: id, Secret: secret})
	})
	s.route("DELETE /api/v1/partners/{partner}/tokens/{token}", "partners.tokens.revoke", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("partner")
		t, err := reg.RevokeToken(r.Context(), id, r.PathValue("token"))
		if err != nil {
			s.partnerFail(w, r, err)
			return
		}
		s.log.Info("partner token revoked", "partner", id, "token_id", t.ID)
		writeJSON(w, http.StatusOK, t)
	})
	s.route("GET /api/v1/partners/{partner}/rejections", "partners.rejections", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("partner")
		if _, err := reg.Partner(id); err != nil {
			s.partnerFail(w, r, err)
			return
		}
		s.listRejections(w, r, svc, id)
	})
	listTypes := func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("partner")
		if id != "" {
			if _, err := reg.Partner(id); err != nil {
				s.partnerFail(w, r, err)
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"types": reg.Types(id)})
	}
	putType := func(w http.ResponseWriter, r *http.Request) {
		var t partner.MessageType
		if err := decodeRequest(r, &t); err != nil {
			s.fail(w, r, err)
			return
		}
		if t.Name != "" && t.Name != r.PathValue("type") || t.Partner != "" && t.Partner != r.PathValue("partner") {
			s.fail(w, r, invalidRequestf("the body names type %q of partner %q, the path %q of %q: leave them out of the body, or make them agree", t.Name, t.Partner, r.PathValue("type"), r.PathValue("partner")))
			return
		}
		t.Name, t.Partner = r.PathValue("type"), r.PathValue("partner")
		create := r.Method == http.MethodPost
		out, err := reg.PutType(r.Context(), t, create)
		if err != nil {
			s.partnerFail(w, r, err)
			return
		}
		s.log.Info("message type stored", "type", out.TypeKey(), "hub", out.Hub)
		writeJSON(w, map[bool]int{true: http.StatusCreated, false: http.StatusOK}[create], out)
	}
	deleteType := func(w http.ResponseWriter, r *http.Request) {
		if err := reg.DeleteType(r.Context(), r.PathValue("partner"), r.PathValue("type")); err != nil {
			s.partnerFail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"deleted": r.PathValue("type")})
	}
	s.route("PUT /api/v1/partners/{partner}/endpoints/{endpoint}", "partners.endpoints.put", func(w http.ResponseWriter, r *http.Request) {
		var ep partner.Endpoint
		if err := decodeRequest(r, &ep); err != nil {
			s.fail(w, r, err)
			return
		}
		if ep.Name != "" && ep.Name != r.PathValue("endpoint") {
			s.fail(w, r, invalidRequestf("the body names endpoint %q, the path %q: leave the name out of the body", ep.Name, r.PathValue("endpoint")))
			return
		}
		ep.Name = r.PathValue("endpoint")
		out, err := reg.PutEndpoint(r.Context(), r.PathValue("partner"), ep)
		if err != nil {
			s.partnerFail(w, r, err)
			return
		}
		s.log.Info("partner endpoint stored", "partner", r.PathValue("partner"), "endpoint", out.Name, "auth", out.Auth.Kind)
		writeJSON(w, http.StatusOK, out)
	})
	s.route("DELETE /api/v1/partners/{partner}/endpoints/{endpoint}", "partners.endpoints.delete", func(w http.ResponseWriter, r *http.Request) {
		if err := reg.DeleteEndpoint(r.Context(), r.PathValue("partner"), r.PathValue("endpoint")); err != nil {
			s.partnerFail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"deleted": r.PathValue("endpoint")})
	})
	s.route("GET /api/v1/partners/{partner}/deliveries", "partners.deliveries.log", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("partner")
		if _, err := reg.Partner(id); err != nil {
			s.partnerFail(w, r, err)
			return
		}
		since, limit, ok := s.sinceLimit(w, r)
		if !ok {
			return
		}
		recs := []partner.DeliveryRecord{}
		if svc.Deliveries != nil {
			got, err := svc.Deliveries.List(r.Context(), id, since, limit)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			recs = append(recs, got...)
		}
		writeJSON(w, http.StatusOK, map[string]any{"partner": id, "deliveries": recs})
	})
	if svc.Parks != nil {
		s.parkedRoutes(*svc.Parks)
	}
	s.route("GET /api/v1/partners/{partner}/types", "partners.types.list", listTypes)
	s.route("PUT /api/v1/partners/{partner}/types/{type}", "partners.types.put", putType)
	s.route("POST /api/v1/partners/{partner}/types/{type}", "partners.types.create", putType)
	s.route("DELETE /api/v1/partners/{partner}/types/{type}", "partners.types.delete", deleteType)
	s.route("GET /api/v1/message-types", "types.list", listTypes)
	s.route("PUT /api/v1/message-types/{type}", "types.put", putType)
	s.route("POST /api/v1/message-types/{type}", "types.create", putType)
	s.route("DELETE /api/v1/message-types/{type}", "types.delete", deleteType)
}

// partnerMessage takes one message of a partner: JSON or XML as the body,
// or the multipart form of the seed (a file, the client id and the token as
// fields).
func (s *Server) partnerMessage(w http.ResponseWriter, r *http.Request, svc *partner.Service) {
	id, typ := r.PathValue("partner"), r.PathValue("type")
	limit := svc.MaxBytes(id, typ)
	in := partner.Inbound{Partner: id, Type: typ, MessageID: r.Header.Get("Message-Id"), Remote: r.RemoteAddr}
	token, present, err := auth.Credential(r.Header)
	if err != nil {
		s.partnerFail(w, r, fmt.Errorf("%w: %v", partner.ErrUnauthorized, err))
		return
	}
	in.Token = token
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		if err := readPartnerForm(r, params["boundary"], limit, &in, present); err != nil {
			s.partnerFail(w, r, err)
			return
		}
	} else {
		if present {
			// Refuse a stranger before reading a large body.
			if err := svc.Registry.Authenticate(id, token); err != nil {
				s.partnerFail(w, r, err)
				return
			}
		}
		// One byte over the limit, so that Accept refuses it and logs it.
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			s.fail(w, r, bodyError(err, limit, "send a smaller message"))
			return
		}
		in.Body = body
	}
	acc, err := svc.Accept(r.Context(), in)
	if err != nil {
		s.partnerFail(w, r, err)
		return
	}
	w.Header().Set("Message-Id", acc.MessageID)
	writeJSON(w, http.StatusAccepted, acc)
}

// MaxPartnerBatchBytes bounds the body of a batch of partners' messages.
const MaxPartnerBatchBytes = 16 << 20

// PartnerBatchMessageJSON is one message of a batch: Body is the message
// itself for a JSON type, and a string holding the document for an XML
// type.
type PartnerBatchMessageJSON struct {
	MessageID string          `json:"message_id,omitempty"`
	Body      json.RawMessage `json:"body"`
}

// PartnerBatchJSON is the answer to a batch: a result per message, in the
// order sent.
type PartnerBatchJSON struct {
	Accepted int                      `json:"accepted"`
	Rejected int                      `json:"rejected"`
	Results  []PartnerBatchResultJSON `json:"results"`
}

// PartnerBatchResultJSON is what became of one message of a batch: Status
// 202 and where it is stored, or the status and the reasons it was refused
// with alone.
type PartnerBatchResultJSON struct {
	Status    int               `json:"status"`
	MessageID string            `json:"message_id,omitempty"`
	Hub       string            `json:"hub,omitempty"`
	Partition *int              `json:"partition,omitempty"`
	Sequence  int64             `json:"sequence,omitempty"`
	Error     string            `json:"error,omitempty"`
	Stage     string            `json:"stage,omitempty"`
	Problems  []partner.Problem `json:"problems,omitempty"`
}

// partnerBatch takes a batch of a partner's messages of one type: a JSON
// array of {"message_id", "body"}. The answer is 202 when every message
// was accepted, 207 with each one's result otherwise.
func (s *Server) partnerBatch(w http.ResponseWriter, r *http.Request, svc *partner.Service) {
	b := partner.Batch{Partner: r.PathValue("partner"), Type: r.PathValue("type"), Remote: r.RemoteAddr}
	token, _, err := auth.Credential(r.Header)
	if err != nil {
		s.partnerFail(w, r, fmt.Errorf("%w: %v", partner.ErrUnauthorized, err))
		return
	}
	b.Token = token
	// Refuse a stranger before reading a large body.
	if err := svc.Registry.Authenticate(b.Partner, token); err != nil {
		s.partnerFail(w, r, err)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		s.fail(w, r, &Error{Status: http.StatusUnsupportedMediaType, Msg: "a batch is a JSON array of {\"message_id\", \"body\"}: send it as application/json"})
		return
	}
	var msgs []PartnerBatchMessageJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxPartnerBatchBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msgs); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.fail(w, r, bodyError(err, MaxPartnerBatchBytes, "send the batch in parts"))
			return
		}
		s.fail(w, r, invalidRequestf("the batch is not a JSON array of {\"message_id\", \"body\"}: %v", err))
		return
	}
	xml := svc.Format(b.Partner, b.Type) == partner.FormatXML
	b.Messages = make([]partner.BatchMessage, len(msgs))
	for i, m := range msgs {
		body := []byte(m.Body)
		if xml {
			var doc string
			if err := json.Unmarshal(m.Body, &doc); err != nil {
				s.fail(w, r, invalidRequestf("message %d of the batch: the body of an XML message is a JSON string holding the document", i))
				return
			}
			body = []byte(doc)
		}
		b.Messages[i] = partner.BatchMessage{MessageID: m.MessageID, Body: body}
	}
	results, err := svc.AcceptBatch(r.Context(), b)
	if err != nil {
		s.partnerFail(w, r, err)
		return
	}
	out := PartnerBatchJSON{Results: make([]PartnerBatchResultJSON, len(results))}
	for i, res := range results {
		if res.Err != nil {
			out.Rejected++
			o := PartnerBatchResultJSON{Status: partner.Status(res.Err), MessageID: b.Messages[i].MessageID, Error: res.Err.Error()}
			if rej, ok := errors.AsType[*partner.Rejection](res.Err); ok {
				o.Stage, o.Problems = rej.Stage, rej.Problems
			}
			out.Results[i] = o
			continue
		}
		out.Accepted++
		a := res.Accepted
		out.Results[i] = PartnerBatchResultJSON{Status: http.StatusAccepted, MessageID: a.MessageID, Hub: a.Hub, Partition: &a.Partition, Sequence: a.Sequence}
	}
	status := http.StatusAccepted
	if out.Rejected > 0 {
		status = http.StatusMultiStatus
	}
	writeCompactJSON(w, status, out)
}

// readPartnerForm reads the seed's form: the message as a file (field
// "file" or "message"), the token in field "token" unless a header has it,
// and the client id in "clientId" or "client_id", which must be the path's
// partner when given.
func readPartnerForm(r *http.Request, boundary string, limit int64, in *partner.Inbound, tokenInHeader bool) error {
	if boundary == "" {
		return invalidRequestf("a multipart/form-data body needs a boundary in its Content-Type")
	}
	mr := multipart.NewReader(io.LimitReader(r.Body, limit+64<<10), boundary)
	gotFile := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return invalidRequestf("the multipart form cannot be read: %v", err)
		}
		name := part.FormName()
		switch name {
		case "file", "message":
			data, err := io.ReadAll(io.LimitReader(part, limit+1))
			if err != nil {
				return invalidRequestf("the form's %s field cannot be read: %v", name, err)
			}
			in.Body, gotFile = data, true
		case "token", "clientId", "client_id", "messageId", "message_id":
			v, err := io.ReadAll(io.LimitReader(part, 1024))
			if err != nil {
				return invalidRequestf("the form's %s field cannot be read: %v", name, err)
			}
			val := strings.TrimSpace(string(v))
			switch name {
			case "token":
				if !tokenInHeader {
					in.Token = val
				}
			case "clientId", "client_id":
				if val != in.Partner {
					return fmt.Errorf("%w: the form's client id %q is not the partner %q of the path", partner.ErrUnauthorized, val, in.Partner)
				}
			default:
				if in.MessageID == "" {
					in.MessageID = val
				}
			}
		}
		_ = part.Close()
	}
	if in.Token == "" {
		return fmt.Errorf("%w: no token: send it as 'Authorization: Bearer <token>' or in the form's token field", partner.ErrUnauthorized)
	}
	if !gotFile {
		return invalidRequestf("the multipart form has no message: send it in a file field named \"file\"")
	}
	return nil
}

// partnerFail answers an error of the partner layer with its status; a
// refused message gets its stage and every problem.
func (s *Server) partnerFail(w http.ResponseWriter, r *http.Request, err error) {
	status := partner.Status(err)
	if status == http.StatusInternalServerError {
		s.fail(w, r, err)
		return
	}
	out := RejectedJSON{Error: err.Error(), MessageID: r.Header.Get("Message-Id")}
	var rej *partner.Rejection
	if errors.As(err, &rej) {
		out.Stage, out.Problems = rej.Stage, rej.Problems
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sluice partners"`)
	}
	writeJSON(w, status, out)
}

// sinceLimit reads the since and limit query parameters of a log.
func (s *Server) sinceLimit(w http.ResponseWriter, r *http.Request) (time.Time, int, bool) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			s.fail(w, r, invalidRequestf("limit %q: give 1 to 10000", v))
			return time.Time{}, 0, false
		}
		limit = n
	}
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := parseSince(v, time.Now())
		if err != nil {
			s.fail(w, r, invalidRequestf("since %q: %v", v, err))
			return time.Time{}, 0, false
		}
		since = t
	}
	return since, limit, true
}

// DeliveryFilterJSON selects parked deliveries for retry and cancel.
type DeliveryFilterJSON struct {
	Partner  string `json:"partner"`
	Type     string `json:"type"`
	Endpoint string `json:"endpoint"`
	// State is "parked", "dead" or "" for both.
	State string `json:"state"`
	// Since and Until bound when they were parked: RFC 3339 times, or
	// durations back from now ("1h").
	Since string `json:"since"`
	Until string `json:"until"`
}

func (f DeliveryFilterJSON) filter(now time.Time) (partner.Filter, error) {
	out := partner.Filter{Partner: f.Partner, Type: f.Type, Endpoint: f.Endpoint, State: f.State}
	if f.State != "" && f.State != partner.StateParked && f.State != partner.StateDead {
		return out, invalidRequestf("state %q: give parked, dead, or leave it out for both", f.State)
	}
	for _, b := range []struct {
		v    string
		into *time.Time
		name string
	}{{f.Since, &out.Since, "since"}, {f.Until, &out.Until, "until"}} {
		if b.v == "" {
			continue
		}
		t, err := parseSince(b.v, now)
		if err != nil {
			return out, invalidRequestf("%s %q: %v", b.name, b.v, err)
		}
		*b.into = t
	}
	return out, nil
}

// ParkedJSON lists parked deliveries.
type ParkedJSON struct {
	Count      int              `json:"count"`
	Deliveries []partner.Parked `json:"deliveries"`
}

// parkedRoutes serve the retry table: list, retry now, cancel.
func (s *Server) parkedRoutes(parks partner.ParkStore) {
	s.route("GET /api/v1/deliveries", "deliveries.list", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f, err := DeliveryFilterJSON{Partner: q.Get("partner"), Type: q.Get("type"), Endpoint: q.Get("endpoint"),
			State: q.Get("state"), Since: q.Get("since"), Until: q.Get("until")}.filter(time.Now())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		_, limit, ok := s.sinceLimit(w, r)
		if !ok {
			return
		}
		list, err := parks.List(r.Context(), f, limit)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if list == nil {
			list = []partner.Parked{}
		}
		writeJSON(w, http.StatusOK, ParkedJSON{Count: len(list), Deliveries: list})
	})
	change := func(verb string, fn func(r *http.Request, f partner.Filter) (int, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req DeliveryFilterJSON
			if err := decodeRequest(r, &req); err != nil {
				s.fail(w, r, err)
				return
			}
			f, err := req.filter(time.Now())
			if err != nil {
				s.fail(w, r, err)
				return
			}
			n, err := fn(r, f)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			s.log.Info("parked deliveries "+verb, "count", n, "partner", f.Partner, "type", f.Type, "state", f.State)
			writeJSON(w, http.StatusOK, map[string]int{verb: n})
		}
	}
	s.route("POST /api/v1/deliveries/retry", "deliveries.retry", change("retried", func(r *http.Request, f partner.Filter) (int, error) {
		return parks.Retry(r.Context(), f, time.Now())
	}))
	s.route("POST /api/v1/deliveries/cancel", "deliveries.cancel", change("cancelled", func(r *http.Request, f partner.Filter) (int, error) {
		return parks.Cancel(r.Context(), f)
	}))
}

func (s *Server) listRejections(w http.ResponseWriter, r *http.Request, svc *partner.Service, id string) {
	since, limit, ok := s.sinceLimit(w, r)
	if !ok {
		return
	}
	recs, err := svc.Rejections.List(r.Context(), id, since, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if recs == nil {
		recs = []partner.RejectionRecord{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"partner": id, "rejections": recs})
}

// parseSince reads a time: RFC 3339, or a duration back from now ("24h").
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, errors.New("give an RFC 3339 time (2026-12-07T10:00:00Z) or a duration back from now (24h)")
	}
	return t, nil
}
