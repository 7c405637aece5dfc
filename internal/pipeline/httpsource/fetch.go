package httpsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

const (
	// maxRetryAfter caps the wait a Retry-After asks for.
	maxRetryAfter = 5 * time.Minute
	// firstBackoff and maxBackoff bound the waits between retries when
	// the API asks for none.
	firstBackoff = time.Second
	maxBackoff   = time.Minute
	// excerptBytes is how much of an error answer's body errors quote.
	excerptBytes = 300
)

// errGone: the link answered 410 Gone (an expired delta token).
var errGone = errors.New("410 Gone")

// errOtherHost is what the default redirect policy returns for a redirect
// to another host, where the request's headers must not follow.
var errOtherHost = errors.New("redirect to another host refused: request headers (credentials) are only sent to Config.URL's host")

func sameHostRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if !sameOrigin(req.URL, via[0].URL) {
		return errOtherHost
	}
	return nil
}

// sameOrigin: same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if strings.EqualFold(u.Scheme, "https") {
			return "443"
		}
		return "80"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// redactLink is link as errors and logs may show it: scheme://host/path,
// without the user, the query or the fragment, and with the path cut at
// the first '(' (OData puts parameters there: delta(token='…')).
func redactLink(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return "(a link that is not a URL)"
	}
	path := u.EscapedPath()
	if i := strings.IndexByte(path, '('); i >= 0 {
		path = path[:i] + "(…)"
	} else if i := strings.Index(path, "%28"); i >= 0 {
		path = path[:i] + "(…)"
	}
	out := u.Scheme + "://" + u.Host + path
	if u.RawQuery != "" {
		out += "?…"
	}
	return out
}

// retryable is a failure that trying the same link again may fix.
type retryable struct {
	reason string
	// after is the wait the API asked for (Retry-After), or -1.
	after time.Duration
}

func (r *retryable) Error() string { return r.reason }

// fetch GETs link and returns its body, trying again after retryable
// failures. It returns errGone for 410 Gone, a *StatusError for other
// statuses that retrying cannot fix, ErrUnavailable once retries are
// spent, and ctx's error once ctx ends.
func (s *Source) fetch(ctx context.Context, link string, page int) ([]byte, error) {
	backoff := firstBackoff
	for try := 0; ; try++ {
		body, err := s.get(ctx, link)
		var r *retryable
		if !errors.As(err, &r) {
			return body, err
		}
		if try >= s.cfg.Retries {
			return nil, fmt.Errorf("%w: GET %s (page %d): %s, %d times in a row: check that the API is up and reachable from here; the pipeline starts the source again later",
				ErrUnavailable, redactLink(link), page, r.reason, try+1)
		}
		wait := backoff
		if r.after >= 0 {
			wait = r.after
		}
		backoff = min(2*backoff, maxBackoff)
		s.cfg.Logger.WarnContext(ctx, "httpsource: trying again", slog.String("table", s.cfg.Table),
			slog.String("url", redactLink(link)), slog.String("failure", r.reason), slog.Duration("in", wait), slog.Int("retry", try+1))
		if err := s.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// get GETs link once.
func (s *Source) get(ctx context.Context, link string) ([]byte, error) {
	hdr, err := s.headers(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, link, nil)
	if err != nil {
		// Not err's text: it quotes the link.
		return nil, fmt.Errorf("%w: the link %s cannot be requested", ErrBadPage, redactLink(link))
	}
	req.Header = hdr
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, errOtherHost) {
			return nil, fmt.Errorf("httpsource: GET %s: %w", redactLink(link), errOtherHost)
		}
		// A *url.Error's text quotes the link: keep its cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &retryable{reason: err.Error(), after: -1}
	}
	defer resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	limit := int64(4096)
	if ok {
		limit = maxPageBytes + 1
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil && ok {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &retryable{reason: "reading the answer: " + err.Error(), after: -1}
	}
	code := resp.StatusCode
	switch {
	case ok:
		if len(body) > maxPageBytes {
			return nil, fmt.Errorf("%w: GET %s: the page is larger than %d MiB: ask for smaller pages (for Microsoft Graph: $top in Config.URL)",
				ErrBadPage, redactLink(link), maxPageBytes>>20)
		}
		return body, nil
	case code == http.StatusGone:
		return nil, errGone
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return nil, &retryable{reason: resp.Status, after: s.retryAfter(resp.Header.Get("Retry-After"))}
	}
	return nil, &StatusError{Code: code, Link: redactLink(link), Excerpt: excerpt(body, link, hdr)}
}

// headers are a request's headers: Config.Headers, then HeaderFunc's.
func (s *Source) headers(ctx context.Context) (http.Header, error) {
	hdr := http.Header{"Accept": {"application/json"}}
	for k, v := range s.cfg.Headers {
		hdr.Set(k, v)
	}
	if s.cfg.HeaderFunc != nil {
		more, err := s.cfg.HeaderFunc(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("httpsource: Config.HeaderFunc: %w", err)
		}
		for k, vs := range more {
			hdr.Del(k)
			for _, v := range vs {
				hdr.Add(k, v)
			}
		}
	}
	return hdr, nil
}

// retryAfter reads a Retry-After header: seconds or an HTTP date, capped
// at maxRetryAfter; -1 when absent or unreadable.
func (s *Source) retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return -1
		}
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(s.now()), 0)
	} else {
		return -1
	}
	return min(d, maxRetryAfter)
}

// excerpt is the start of an error answer's body, with the request's
// header values and the link's secrets blanked out.
func excerpt(body []byte, link string, hdr http.Header) string {
	s := strings.ToValidUTF8(string(body), "")
	var secrets []string
	for _, vs := range hdr {
		for _, v := range vs {
			secrets = append(secrets, v)
			// "Bearer <token>": the token alone too.
			for _, f := range strings.Fields(v) {
				if len(f) >= 8 {
					secrets = append(secrets, f)
				}
			}
		}
	}
	secrets = append(secrets, link)
	if u, err := url.Parse(link); err == nil {
		secrets = append(secrets, u.RawQuery, u.EscapedPath(), u.Path)
		for _, vs := range u.Query() {
			secrets = append(secrets, vs...)
		}
	}
	// Longest first: the whole link before its query.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, v := range secrets {
		// Accept's value and short values are no secrets worth blanking
		// (and blanking "1" would blank every 1).
		if len(v) >= 4 && v != "application/json" {
			s = strings.ReplaceAll(s, v, "…")
		}
	}
	s = strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
	if len(s) > excerptBytes {
		s = strings.ToValidUTF8(s[:excerptBytes], "") + "…"
	}
	return s
}
