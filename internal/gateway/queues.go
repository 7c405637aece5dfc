package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/queue"
)

// Limits of the queue routes.
const (
	// MaxSendMessages bounds the messages of one send request.
	MaxSendMessages = 1000
	// MaxReceiveWait bounds how long a receive waits for a first message.
	MaxReceiveWait = 30 * time.Second
	// maxQueueBatch bounds the messages one receive or peek returns (the
	// queue service's own limit).
	maxQueueBatch = 1000
)

// queueRoutes registers /api/v1/queues.
func (s *Server) queueRoutes() {
	s.route("GET /api/v1/queues", "queues.list", s.listQueues)
	s.route("POST /api/v1/queues", "queues.create", s.createQueue)
	s.route("GET /api/v1/queues/{queue}", "queues.describe", s.describeQueue)
	s.route("DELETE /api/v1/queues/{queue}", "queues.delete", s.deleteQueue)
	s.route("POST /api/v1/queues/{queue}/messages", "queues.send", s.sendMessages)
	s.route("POST /api/v1/queues/{queue}/receive", "queues.receive", s.receiveMessages)
	s.route("POST /api/v1/queues/{queue}/complete", "queues.complete", s.completeMessage)
	s.route("POST /api/v1/queues/{queue}/abandon", "queues.abandon", s.abandonMessage)
	s.route("POST /api/v1/queues/{queue}/renew", "queues.renew", s.renewMessage)
	s.route("GET /api/v1/queues/{queue}/peek", "queues.peek", s.peekMessages)
	s.route("POST /api/v1/queues/{queue}/purge", "queues.purge", s.purgeQueue)
}

// failQueue answers with the status that fits an error of the queue
// service; name is the queue the request is about.
func (s *Server) failQueue(w http.ResponseWriter, r *http.Request, name string, err error) {
	switch {
	case errors.Is(err, queue.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("queue %s not found: create it with POST /api/v1/queues or `sluice queue create %s`", name, name))
	case errors.Is(err, queue.ErrExists):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, queue.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, queue.ErrLockLost):
		writeError(w, http.StatusConflict, fmt.Sprintf("the lock of this message of queue %s is lost: it expired "+
			"(the message is visible again, or was received by someone else: receive it again), "+
			"or the message was already completed or abandoned", name))
	case errors.Is(err, queue.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, queue.ErrUnsupported):
		writeError(w, http.StatusNotImplemented, err.Error())
	default:
		s.fail(w, r, err)
	}
}

// pathQueue returns the queue named in the path, after checking the name.
func (s *Server) pathQueue(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("queue")
	if err := queue.ValidateName(name); err != nil {
		s.failQueue(w, r, name, err)
		return "", false
	}
	return name, true
}

// QueueJSON is a queue as the API shows it. Durations are Go durations.
type QueueJSON struct {
	Name            string `json:"name"`
	MaxMessageBytes int    `json:"max_message_bytes"`
	Lock            string `json:"lock"`
	// TTL is how long a message is kept by default; negative means until
	// it is completed.
	TTL string `json:"ttl"`
	// Replicas is how many copies a NATS cluster keeps of the queue.
	Replicas int       `json:"replicas,omitempty"`
	Created  time.Time `json:"created"`
	// Stats are given by describe only.
	Stats *QueueStatsJSON `json:"stats,omitempty"`
}

// QueueStatsJSON is what a queue holds.
type QueueStatsJSON struct {
	// Depth counts the messages that are visible or locked.
	Depth uint64 `json:"depth"`
	// Locked counts the messages received and not yet completed or
	// released.
	Locked uint64 `json:"locked"`
	// Delayed counts the messages sent with a delay that is not over yet.
	Delayed uint64 `json:"delayed"`
	// OldestEnqueued is when the oldest visible or locked message was
	// enqueued; absent when there is none.
	OldestEnqueued   time.Time `json:"oldest_enqueued,omitzero"`
	OldestAgeSeconds float64   `json:"oldest_age_seconds"`
}

func queueJSON(info queue.Info) QueueJSON {
	return QueueJSON{Name: info.Name, MaxMessageBytes: info.MaxMessageBytes, Lock: info.Lock.String(),
		TTL: info.TTL.String(), Replicas: info.Replicas, Created: info.Created}
}

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Queues.List(r.Context())
	if err != nil {
		s.failQueue(w, r, "", err)
		return
	}
	out := make([]QueueJSON, len(list))
	for i, info := range list {
		out[i] = queueJSON(info)
	}
	writeJSON(w, http.StatusOK, map[string]any{"queues": out})
}

// CreateQueueRequest is the body of POST /api/v1/queues. Zero values mean
// the defaults.
type CreateQueueRequest struct {
	Name string `json:"name"`
	// MaxMessageBytes bounds a message's body and properties; default 256 KiB.
	MaxMessageBytes int `json:"max_message_bytes,omitempty"`
	// Lock is how long a received message stays locked, as a Go duration
	// such as "30s" (the default).
	Lock string `json:"lock,omitempty"`
	// TTL is how long a message is kept by default, as a Go duration;
	// default "168h". A negative one, such as "-1s", keeps messages until
	// they are completed.
	TTL string `json:"ttl,omitempty"`
	// Replicas is how many copies a NATS cluster keeps of the queue (1-5);
	// 0: the instance's --replicas.
	Replicas int `json:"replicas,omitempty"`
}

func (s *Server) createQueue(w http.ResponseWriter, r *http.Request) {
	var req CreateQueueRequest
	if err := decodeRequest(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	cfg := queue.Config{Name: req.Name, MaxMessageBytes: req.MaxMessageBytes, Replicas: req.Replicas}
	var err error
	if cfg.Lock, err = parseDuration("lock", req.Lock, `"30s"`); err != nil {
		s.fail(w, r, err)
		return
	}
	if cfg.TTL, err = parseDuration("ttl", req.TTL, `"168h", or "-1s" to keep messages until completed`); err != nil {
		s.fail(w, r, err)
		return
	}
	info, err := s.cfg.Queues.Create(r.Context(), cfg)
	if err != nil {
		s.failQueue(w, r, req.Name, err)
		return
	}
	writeJSON(w, http.StatusCreated, queueJSON(info))
}

// parseDuration parses v, a Go duration ("" is zero); what names the value
// in errors and example completes their hint.
func parseDuration(what, v, example string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, invalidRequestf("%s %q is not a duration: use a Go duration such as %s", what, v, example)
	}
	return d, nil
}

func (s *Server) describeQueue(w http.ResponseWriter, r *http.Request) {
	name, ok := s.pathQueue(w, r)
	if !ok {
		return
	}
	info, err := s.cfg.Queues.Get(r.Context(), name)
	if err != nil {
		s.failQueue(w, r, name, err)
		return
	}
	st, err := s.cfg.Queues.Stats(r.Context(), name)
	if err != nil {
		s.failQueue(w, r, name, err)
		return
	}
	out := queueJSON(info)
	out.Stats = &QueueStatsJSON{Depth: st.Depth, Locked: st.Locked, Delayed: st.Delayed,
		OldestEnqueued: st.OldestEnqueued, OldestAgeSeconds: st.OldestAge.Seconds()}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteQueue(w http.ResponseWriter, r *http.Request) {
	name, ok := s.pathQueue(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Queues.Delete(r.Context(), name); err != nil {
		s.failQueue(w, r, name, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// QueueSendRequest is the application/json body of POST
// /api/v1/queues/{queue}/messages.
type QueueSendRequest struct {
	Messages []QueueOutgoingJSON `json:"messages"`
}

// QueueOutgoingJSON is one message to send. At most one of Body (any JSON
// value, stored as its JSON text), BodyText (stored as the string's bytes)
// and BodyBase64 (stored decoded) may be given; none means an empty body.
type QueueOutgoingJSON struct {
	Body       json.RawMessage   `json:"body,omitempty"`
	BodyText   *string           `json:"body_text,omitempty"`
	BodyBase64 *string           `json:"body_base64,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	// Delay keeps the message invisible for this long, as a Go duration.
	Delay string `json:"delay,omitempty"`
	// TTL is how long the message is kept, as a Go duration; default the
	// queue's, negative until it is completed.
	TTL string `json:"ttl,omitempty"`
}

// QueueSendResponse answers a send: the IDs of the messages, in order (0 for a
// delayed message, which gets its ID when it becomes visible).
type QueueSendResponse struct {
	Count int      `json:"count"`
	IDs   []uint64 `json:"ids"`
}

const queueSendTypes = `application/json ({"messages": [{"body" | "body_text" | "body_base64", "properties", "delay", "ttl"}]}), ` +
	"or text/plain or application/octet-stream (the body is one message; query parameters delay and ttl)"

func (s *Server) sendMessages(w http.ResponseWriter, r *http.Request) {
	name, ok := s.pathQueue(w, r)
	if !ok {
		return
	}
	const tooLarge = "send fewer messages per request"
	if err := checkLength(r, s.cfg.MaxRequestBytes, tooLarge); err != nil {
		s.fail(w, r, err)
		return
	}
	// Check the queue before reading a possibly large body.
	if _, err := s.cfg.Queues.Get(r.Context(), name); err != nil {
		s.failQueue(w, r, name, err)
		return
	}
	body, err := readBody(w, r, s.cfg.MaxRequestBytes, tooLarge)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	msgs, err := parseQueueSend(r, body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ids, err := s.cfg.Queues.Send(r.Context(), name, msgs)
	if err != nil {
		s.failQueue(w, r, name, err)
		return
	}
	writeJSON(w, http.StatusCreated, QueueSendResponse{Count: len(ids), IDs: ids})
}

// parseQueueSend decodes the messages of a send request, all or none.
func parseQueueSend(r *http.Request, body []byte) ([]queue.Outgoing, error) {
	q := r.URL.Query()
	switch mt := mediaTypeOf(r.Header.Get("Content-Type")); mt {
	case mediaJSON:
		for _, p := range []string{"delay", "ttl"} {
			if q.Has(p) {
				return nil, invalidRequestf("query parameter %s applies to text/plain and application/octet-stream bodies: with application/json give %s per message", p, p)
			}
		}
		return parseQueueSendJSON(body)
	case mediaText, mediaOctetStream:
		if len(body) == 0 {
			return nil, invalidRequestf(`the body is empty: a %s request carries one message, the body (send an empty message as application/json {"messages": [{}]})`, mt)
		}
		m := queue.Outgoing{Body: body}
		var err error
		if m.Delay, err = parseDuration("query parameter delay", q.Get("delay"), `"10s"`); err != nil {
			return nil, err
		}
		if m.TTL, err = parseDuration("query parameter ttl", q.Get("ttl"), `"1h"`); err != nil {
			return nil, err
		}
		return []queue.Outgoing{m}, nil
	case "":
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Msg: "missing Content-Type: send " + queueSendTypes}
	default:
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("unsupported Content-Type %q: send %s", mt, queueSendTypes)}
	}
}

func parseQueueSendJSON(body []byte) ([]queue.Outgoing, error) {
	if len(trimJSONSpace(body)) == 0 {
		return nil, invalidRequestf(`the body is empty: send {"messages": [{"body": ...}]}`)
	}
	if !json.Valid(body) {
		pos, msg := syntaxError(body)
		return nil, invalidRequestf("invalid JSON at byte offset %d: %s", pos, msg)
	}
	if pos := invalidUTF8(body); pos >= 0 {
		return nil, invalidRequestf("invalid UTF-8 at byte offset %d: JSON must be UTF-8", pos)
	}
	if v := trimJSONSpace(body); v[0] == '{' {
		if err := uniqueMembers(v, func(string, []byte) error { return nil }); err != nil {
			return nil, invalidRequestf("the send request: %v", err)
		}
	}
	// Decode the messages one by one, so that an error names its message.
	var req struct {
		Messages []json.RawMessage `json:"messages"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, invalidRequestf(`the body is not a send request: %v (send {"messages": [{"body": ...}]})`, err)
	}
	if len(req.Messages) == 0 {
		return nil, invalidRequestf(`no messages: send {"messages": [{"body": ...}]} with at least one message`)
	}
	if len(req.Messages) > MaxSendMessages {
		return nil, tooLargef("%d messages in one request, more than %d: split them into several requests", len(req.Messages), MaxSendMessages)
	}
	out := make([]queue.Outgoing, len(req.Messages))
	for i, raw := range req.Messages {
		if raw[0] != '{' {
			return nil, invalidRequestf("message %d: a message is a JSON object, got a JSON %s", i, jsonKind(raw[0]))
		}
		if err := uniqueEventMembers(raw); err != nil {
			return nil, invalidRequestf("message %d: %v", i, err)
		}
		var m QueueOutgoingJSON
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return nil, invalidRequestf("message %d: %v (a message is an object with body, body_text or body_base64, properties, delay, ttl)", i, err)
		}
		n := 0
		if m.Body != nil {
			n++
			out[i].Body = m.Body
		}
		if m.BodyText != nil {
			n++
			out[i].Body = []byte(*m.BodyText)
		}
		if m.BodyBase64 != nil {
			n++
			b, err := decodeBase64(*m.BodyBase64)
			if err != nil {
				return nil, invalidRequestf("message %d: body_base64 is not valid base64: %v", i, err)
			}
			out[i].Body = b
		}
		if n > 1 {
			return nil, invalidRequestf("message %d: give only one of body, body_text and body_base64", i)
		}
		out[i].Properties = m.Properties
		var err error
		if out[i].Delay, err = parseDuration(fmt.Sprintf("message %d: delay", i), m.Delay, `"10s"`); err != nil {
			return nil, err
		}
		if out[i].TTL, err = parseDuration(fmt.Sprintf("message %d: ttl", i), m.TTL, `"1h", or "-1s" to keep it until completed`); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// QueueMessageJSON is a received or peeked message as the API shows it.
type QueueMessageJSON struct {
	ID uint64 `json:"id"`
	// BodyBase64 is the body, base64-encoded; BodyText is the body as text
	// when it is valid UTF-8.
	BodyBase64 []byte            `json:"body_base64"`
	BodyText   *string           `json:"body_text,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	Enqueued   time.Time         `json:"enqueued"`
	// DequeueCount is how many times the message was delivered, this
	// delivery included.
	DequeueCount int `json:"dequeue_count"`
	// LockToken is for complete, abandon and renew; received messages only.
	LockToken string `json:"lock_token,omitempty"`
}

// QueueMessagesResponse answers a receive or a peek.
type QueueMessagesResponse struct {
	Messages []QueueMessageJSON `json:"messages"`
}

func queueMessagesJSON(msgs []*queue.Message) QueueMessagesResponse {
	out := QueueMessagesResponse{Messages: make([]QueueMessageJSON, len(msgs))}
	for i, m := range msgs {
		j := QueueMessageJSON{ID: m.ID, BodyBase64: m.Body, Properties: m.Properties, Enqueued: m.Enqueued,
			DequeueCount: m.DequeueCount, LockToken: m.LockToken}
		if j.BodyBase64 == nil {
			j.BodyBase64 = []byte{} // "", not null
		}
		if utf8.Valid(m.Body) {
			text := string(m.Body)
			j.BodyText = &text
		}
		out.Messages[i] = j
	}
	return out
}

// queueCount parses query parameter max: 1 to 1000, default def.
func queueCount(r *http.Request, def int) (int, error) {
	v := r.URL.Query().Get("max")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxQueueBatch {
		return 0, invalidRequestf("max=%q: give a number from 1 to %d", v, maxQueueBatch)
	}
	return n, nil
}

// receiveMessages locks and returns messages: POST
// /api/v1/queues/{queue}/receive?max=N&wait=DURATION. max defaults to 1;
// wait (default 0: answer at once) bounds the wait for a first message.
func (s *Server) receiveMessages(w http.ResponseWriter, r *http.Request) {
	name, ok := s.pathQueue(w, r)
	if !ok {
		return
	}
	n, err := queueCount(r, 1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 || wait > MaxReceiveWait {
			s.fail(w, r, invalidRequestf("wait=%q: give a duration from 0s to %s, such as 5s", v, MaxReceiveWait))
			return
		}
	}
	msgs, err := s.cfg.Queues.ReceiveTokens(r.Context(), name, n, wait)
	if err != nil {
		s.failQueue(w, r, name, err)
		return
	}
	writeJSON(w, http.StatusOK, queueMessagesJSON(msgs))
}

func (s *Server) peekMessages(w http.ResponseWriter, r *http.Request) {
	name, ok := s.pathQueue(w, r)
	if !ok {
		return
	}
	n, err := queueCount(r, 10)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	msgs, err := s.cfg.Queues.Peek(r.Context(), name, n)
	if err != nil {
		s.failQueue(w, r, name, err)
		return
	}
	writeJSON(w, http.StatusOK, queueMessagesJSON(msgs))
}

// QueueLockRequest is the body of POST .../complete and .../renew.
type QueueLockRequest struct {
	LockToken string `json:"lock_token"`
}

// QueueAbandonRequest is the body of POST .../abandon.
type QueueAbandonRequest struct {
	LockToken string `json:"lock_token"`
	// Delay keeps the message invisible for this long before it is
	// delivered again, as a Go duration; default 0.
	Delay string `json:"delay,omitempty"`
}

func (s *Server) completeMessage(w http.ResponseWriter, r *http.Request) {
	name, token, _, ok := s.lockRequest(w, r, false)
	if ok {
		s.lockDone(w, r, name, s.cfg.Queues.Complete(r.Context(), name, &queue.Message{LockToken: token}))
	}
}

func (s *Server) abandonMessage(w http.ResponseWriter, r *http.Request) {
	name, token, delay, ok := s.lockRequest(w, r, true)
	if ok {
		s.lockDone(w, r, name, s.cfg.Queues.Abandon(r.Context(), name, &queue.Message{LockToken: token}, delay))
	}
}

func (s *Server) renewMessage(w http.ResponseWriter, r *http.Request) {
	name, token, _, ok := s.lockRequest(w, r, false)
	if ok {
		s.lockDone(w, r, name, s.cfg.Queues.Renew(r.Context(), name, &queue.Message{LockToken: token}))
	}
}

// lockRequest decodes the body of complete, renew or (withDelay) abandon;
// on error it has answered.
func (s *Server) lockRequest(w http.ResponseWriter, r *http.Request, withDelay bool) (name, token string, delay time.Duration, ok bool) {
	name, ok = s.pathQueue(w, r)
	if !ok {
		return "", "", 0, false
	}
	var req QueueAbandonRequest
	var err error
	if withDelay {
		err = decodeRequest(r, &req)
	} else {
		var lr QueueLockRequest
		err = decodeRequest(r, &lr)
		req.LockToken = lr.LockToken
	}
	if err == nil && req.LockToken == "" {
		err = invalidRequestf("lock_token is missing: give the lock_token a receive returned")
	}
	if err == nil {
		delay, err = parseDuration("delay", req.Delay, `"5s"`)
	}
	if err != nil {
		s.fail(w, r, err)
		return "", "", 0, false
	}
	return name, req.LockToken, delay, true
}

// lockDone answers a complete, abandon or renew that returned err.
func (s *Server) lockDone(w http.ResponseWriter, r *http.Request, name string, err error) {
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// Abandon and renew by token do not look the queue up, and no token
	// holds a lock in a queue that does not exist: say which it is.
	if errors.Is(err, queue.ErrLockLost) || errors.Is(err, queue.ErrInvalid) {
		if _, gerr := s.cfg.Queues.Get(r.Context(), name); errors.Is(gerr, queue.ErrNotFound) {
			err = gerr
		}
	}
	s.failQueue(w, r, name, err)
}

// QueuePurgeResponse answers a purge.
type QueuePurgeResponse struct {
	Purged uint64 `json:"purged"`
}

func (s *Server) purgeQueue(w http.ResponseWriter, r *http.Request) {
	name, ok := s.pathQueue(w, r)
	if !ok {
		return
	}
	n, err := s.cfg.Queues.Purge(r.Context(), name)
	if err != nil {
		s.failQueue(w, r, name, err)
		return
	}
	writeJSON(w, http.StatusOK, QueuePurgeResponse{Purged: n})
}
