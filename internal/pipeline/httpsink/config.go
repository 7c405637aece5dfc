package httpsink

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config says where and how a sink POSTs change sets.
type Config struct {
	// URL is the endpoint change sets are POSTed to: http:// or https://.
	// Required. Messages and logs show it as scheme://host/path only:
	// a user, a password or a query in it stay out of them.
	URL string

	// Headers are added to every request (an Authorization header, an API
	// key). Their values are treated as secrets: never logged, never in
	// errors. They cannot replace the headers the sink sets itself
	// (Content-Type, Idempotency-Key, Sluice-Pipeline, Sluice-Change-Set)
	// nor Content-Length, Host or Transfer-Encoding. A User-Agent here
	// replaces the default "sluice-httpsink".
	Headers map[string]string

	// BatchSize is the most changes one POST carries. Default 500. Keep it
	// unchanged while change sets are still to be retried: it decides
	// which changes each part (and so each Idempotency-Key) holds.
	BatchSize int

	// Timeout bounds each request, from sending it to reading its answer.
	// Default 30s.
	Timeout time.Duration

	// Client sends the requests. Default: a client of the sink's own,
	// reused across calls (one pool of connections). The sink uses a copy
	// of a given client that follows only the redirects that keep the
	// POST (307, 308), before the client's own CheckRedirect.
	Client *http.Client

	// Pipeline and Destination name the pipeline and this destination:
	// they make the Idempotency-Key <pipeline>/<destination>/<seq>/<part>
	// and go in the body. Apply refuses change sets of another pipeline.
	// Required; without "/" and control characters.
	Pipeline    string
	Destination string

	// Logger receives parts refused and delivered (never header values).
	// Default slog.Default().
	Logger *slog.Logger
}

const (
	defaultBatchSize = 500
	defaultTimeout   = 30 * time.Second
	userAgent        = "sluice-httpsink"
)

// reserved are the headers Config.Headers cannot set, canonical.
var reserved = []string{
	"Content-Type", "Idempotency-Key", "Sluice-Pipeline", "Sluice-Change-Set",
	"Content-Length", "Host", "Transfer-Encoding",
}

func (c Config) withDefaults() Config {
	c.BatchSize = cmp.Or(c.BatchSize, defaultBatchSize)
	c.Timeout = cmp.Or(c.Timeout, defaultTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func configError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
}

func (c Config) validate() error {
	if _, err := parseURL(c.URL); err != nil {
		return err
	}
	for name, value := range c.Headers {
		if !validHeaderName(name) {
			return configError("Headers", "%q is not a header name (letters, digits and !#$%%&'*+-.^_`|~ only)", name)
		}
		canon := http.CanonicalHeaderKey(name)
		for _, r := range reserved {
			if canon == r {
				return configError("Headers", "%q is set by the sink; remove it", name)
			}
		}
		// Not the value itself: it is a secret.
		if strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return configError(fmt.Sprintf("Headers[%q]", name), "the value holds a control character (a line break?); headers cannot carry them")
		}
	}
	if err := checkName("Pipeline", c.Pipeline); err != nil {
		return err
	}
	if err := checkName("Destination", c.Destination); err != nil {
		return err
	}
	if c.BatchSize < 0 {
		return configError("BatchSize", "%d is negative; 0 means the default, %d", c.BatchSize, defaultBatchSize)
	}
	if c.Timeout < 0 {
		return configError("Timeout", "%v is negative; 0 means the default, %v", c.Timeout, defaultTimeout)
	}
	return nil
}

// parseURL checks the endpoint's URL. Its errors never quote the URL,
// which may hold a password or a token.
func parseURL(raw string) (*url.URL, error) {
	const want = "want http://host/path or https://host/path"
	if raw == "" {
		return nil, configError("URL", "required: %s", want)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, configError("URL", "not a URL: %s", want)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, configError("URL", "scheme %q is not supported: %s", u.Scheme, want)
	}
	if u.Host == "" {
		return nil, configError("URL", "no host: %s", want)
	}
	if u.Fragment != "" {
		return nil, configError("URL", "a fragment (#...) is never sent; remove it")
	}
	return u, nil
}

// checkName refuses pipeline and destination names that would make the
// Idempotency-Key ambiguous or a header invalid.
func checkName(field, name string) error {
	switch {
	case name == "":
		return configError(field, "required")
	case strings.Contains(name, "/"):
		return configError(field, "%q holds a \"/\", which separates the parts of the Idempotency-Key", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return configError(field, "%q holds a control character", name)
	}
	return nil
}

// validHeaderName reports whether name is an HTTP token (RFC 9110 5.6.2).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

// redactURL is how messages show the endpoint: scheme://host/path,
// without user, password, query or fragment.
func redactURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}
