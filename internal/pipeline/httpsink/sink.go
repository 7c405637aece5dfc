package httpsink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// Body is what each POST carries: a part of a change set.
type Body struct {
	Pipeline    string `json:"pipeline"`
	Destination string `json:"destination"`
	// ChangeSet is the change set's number (pipeline.ChangeSet.Seq).
	ChangeSet int64 `json:"change_set"`
	// Part counts the change set's parts from 0; Parts is how many there
	// are.
	Part  int `json:"part"`
	Parts int `json:"parts"`
	// Position is the source's position at the end of the change set.
	Position string            `json:"position"`
	Changes  []pipeline.Change `json:"changes"`
}

// Sink POSTs change sets to an HTTP endpoint.
type Sink struct {
	cfg    Config
	client *http.Client
	// own: the client is the sink's, so Close may close its connections.
	own bool
	// where is the endpoint as messages show it.
	where string
	// secrets are blanked out of the answers quoted in messages.
	secrets []string
}

var _ pipeline.Sink = (*Sink)(nil)

const (
	// reasonBytes is how much of an answer a message quotes.
	reasonBytes = 200
	// drainBytes is how much of an answer is read (and dropped) so that
	// its connection can be reused; a longer answer's connection is closed.
	drainBytes   = 64 << 10
	maxRedirects = 10
)

// New checks cfg and makes a sink. It sends nothing.
func New(cfg Config) (*Sink, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	u, _ := parseURL(cfg.URL)
	s := &Sink{cfg: cfg, where: redactURL(u), secrets: secretsOf(cfg.Headers, u)}
	if cfg.Client != nil {
		c := *cfg.Client
		c.CheckRedirect = keepPost(c.CheckRedirect)
		s.client = &c
	} else {
		s.own = true
		s.client = &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: keepPost(nil),
		}
	}
	return s, nil
}

// Close closes the idle connections of the sink's own client (not those
// of a Config.Client). The sink can still be used after it.
func (s *Sink) Close() error {
	if s.own {
		s.client.CloseIdleConnections()
	}
	return nil
}

// keepPost follows only redirects that keep the POST and its body (307,
// 308): a 301, 302 or 303 turns it into a GET, whose 2xx would be taken
// for a delivery.
func keepPost(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if req.Method != http.MethodPost {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
}

// Apply POSTs the change set's changes in parts of at most
// Config.BatchSize, in order, one after the other. It returns an error
// (and no rejections: the whole change set is to be sent again) as soon
// as a part is not taken now; the changes of parts refused for good are
// returned as rejected, and the other parts are sent. An empty change set
// sends nothing.
func (s *Sink) Apply(ctx context.Context, cs pipeline.ChangeSet, changes []pipeline.Change) ([]pipeline.Rejected, error) {
	if cs.Pipeline != s.cfg.Pipeline {
		return nil, fmt.Errorf("%w: %q, the sink's is %q", ErrPipeline, cs.Pipeline, s.cfg.Pipeline)
	}
	n := s.cfg.BatchSize
	parts := (len(changes) + n - 1) / n
	var rejected []pipeline.Rejected
	for i := range parts {
		part := changes[i*n : min((i+1)*n, len(changes))]
		reason, err := s.send(ctx, cs, i, parts, part)
		if err != nil {
			return nil, err
		}
		if reason == "" {
			continue
		}
		for _, c := range part {
			rejected = append(rejected, pipeline.Rejected{Change: c, Reason: reason})
		}
	}
	return rejected, nil
}

// IdempotencyKey is the Idempotency-Key of a part of a change set:
// <pipeline>/<destination>/<seq>/<part>.
func IdempotencyKey(pipelineName, destination string, seq int64, part int) string {
	return pipelineName + "/" + destination + "/" + strconv.FormatInt(seq, 10) + "/" + strconv.Itoa(part)
}

// send POSTs one part. It returns the reason when the endpoint refuses
// the part for good, an error when the part is to be sent again later.
func (s *Sink) send(ctx context.Context, cs pipeline.ChangeSet, part, parts int, changes []pipeline.Change) (string, error) {
	what := fmt.Sprintf("change set %d, part %d of %d", cs.Seq, part+1, parts)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Body{
		Pipeline: s.cfg.Pipeline, Destination: s.cfg.Destination,
		ChangeSet: cs.Seq, Part: part, Parts: parts, Position: cs.Position,
		Changes: changes,
	}); err != nil {
		return "", fmt.Errorf("httpsink: encode %s: %w", what, err)
	}

	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.cfg.URL, &buf)
	if err != nil {
		// Not err: it may quote the URL. New checked it, so this is not
		// expected.
		return "", fmt.Errorf("httpsink: cannot make a request to %s", s.where)
	}
	req.Header.Set("User-Agent", userAgent)
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	key := IdempotencyKey(s.cfg.Pipeline, s.cfg.Destination, cs.Seq, part)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Sluice-Pipeline", s.cfg.Pipeline)
	req.Header.Set("Sluice-Change-Set", strconv.FormatInt(cs.Seq, 10))

	resp, err := s.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			// Its text quotes the URL, query included.
			err = uerr.Err
		}
		switch {
		case ctx.Err() != nil:
			return "", fmt.Errorf("httpsink: POST to %s (%s) cut short: %w", s.where, what, context.Cause(ctx))
		case errors.Is(rctx.Err(), context.DeadlineExceeded):
			return "", fmt.Errorf("%w: no answer from %s within %v (%s; Config.Timeout)", ErrUnavailable, s.where, s.cfg.Timeout, what)
		}
		return "", fmt.Errorf("%w: POST to %s (%s): %w", ErrUnavailable, s.where, what, err)
	}
	quoted := s.readAnswer(resp.Body)

	log := s.cfg.Logger.With("pipeline", s.cfg.Pipeline, "destination", s.cfg.Destination,
		"change_set", cs.Seq, "part", part, "parts", parts, "url", s.where, "status", resp.StatusCode)
	code := resp.StatusCode
	status := fmt.Sprintf("HTTP %d from %s", code, s.where)
	switch {
	case code >= 200 && code <= 299:
		log.Debug("httpsink: part delivered", "changes", len(changes))
		return "", nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return "", fmt.Errorf("%w: %s (%s): %s", ErrCredentials, status, what, quoted)
	case code == http.StatusNotFound:
		return "", fmt.Errorf("%w: %s (%s)", ErrNotFound, status, what)
	case code >= 300 && code <= 399:
		to := ""
		if loc, err := resp.Location(); err == nil {
			to = " to " + redactURL(loc)
		}
		return "", fmt.Errorf("%w: %s redirects%s (%s)", ErrRedirect, status, to, what)
	case code == http.StatusRequestTimeout || code == http.StatusConflict || code == http.StatusTooEarly ||
		code == http.StatusTooManyRequests || code >= 500 && code <= 599:
		retry := ""
		if ra := printable(resp.Header.Get("Retry-After"), 64); ra != "" {
			retry = "; Retry-After: " + ra
		}
		return "", fmt.Errorf("%w: %s (%s%s): %s", ErrUnavailable, status, what, retry, quoted)
	case code >= 400 && code <= 499:
		reason := status + ": " + quoted
		log.Warn("httpsink: destination refused a part's changes for good; they are dead-lettered",
			"changes", len(changes), "reason", reason)
		return reason, nil
	}
	return "", fmt.Errorf("%w: unexpected %s (%s): %s", ErrUnavailable, status, what, quoted)
}

// readAnswer reads an answer's first bytes to quote them (valid UTF-8,
// secrets blanked out, at most reasonBytes), drops a bounded rest so that
// the connection is reused, and closes the body.
func (s *Sink) readAnswer(body io.ReadCloser) string {
	defer body.Close()
	// More than is quoted, so that a secret cut by the limit is still
	// recognised.
	longest := 0
	for _, sec := range s.secrets {
		longest = max(longest, len(sec))
	}
	head, _ := io.ReadAll(io.LimitReader(body, int64(reasonBytes+longest)))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainBytes))
	text := string(head)
	for _, sec := range s.secrets {
		text = strings.ReplaceAll(text, sec, "[redacted]")
	}
	if len(text) > reasonBytes {
		text = text[:reasonBytes]
	}
	return strings.ToValidUTF8(text, "")
}

// minSecretLen: shorter header values are not blanked out of answers
// (a "1" would blank out every digit); secrets are longer.
const minSecretLen = 6

// secretsOf lists what must not be quoted: header values (and the
// credentials after a scheme, as in "Bearer <token>"), the URL's password
// and query values.
func secretsOf(headers map[string]string, u *url.URL) []string {
	var out []string
	add := func(v string) {
		if len(v) >= minSecretLen && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	for _, v := range headers {
		add(v)
		if i := strings.LastIndexAny(v, " \t"); i >= 0 {
			add(v[i+1:])
		}
	}
	if p, ok := u.User.Password(); ok {
		add(p)
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			add(v)
		}
	}
	// Longest first: a secret holding another is blanked out whole.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// printable keeps a header value fit for a message: printable characters,
// at most n bytes.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return s
}
