package engine

import (
	"net/url"
	"strings"
)

// hidden replaces a secret wherever the engine shows a URL or an error.
const hidden = "xxxxx"

// RedactURL returns s, a NATS URL or a comma-separated list of them, with
// its credentials hidden: the password of user:password becomes xxxxx
// (nats://user:xxxxx@host:4222) and so does a token, the user part without
// a password (nats://xxxxx@host:4222). A URL without a scheme is read as
// nats.go reads it, as nats://…, and keeps its form. Input that does not
// parse, or has an '@' outside its user info, loses everything between its
// scheme and its last '@', or else a port that is not a number
// (nats://user:secret, a forgotten host), so that no secret survives a
// typo. Use it for every URL a log line or an error shows.
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactOne(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func redactOne(s string) string {
	u, prefix, err := parseNATSURL(s)
	if err != nil || (u.User == nil && strings.Contains(s, "@")) {
		// An '@' outside the user info is a password with a '/', '?' or
		// '#' in it, split off by the parser.
		return redactUnparsable(s)
	}
	if u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), hidden)
	} else {
		u.User = url.User(hidden)
	}
	return strings.TrimPrefix(u.String(), prefix)
}

func redactUnparsable(s string) string {
	start := 0
	if i := strings.Index(s, "://"); i >= 0 {
		start = i + len("://")
	}
	rest := s[start:]
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return s[:start] + hidden + rest[at:]
	}
	if colon := strings.LastIndex(rest, ":"); colon >= 0 && strings.Trim(rest[colon+1:], "0123456789") != "" {
		return s[:start] + rest[:colon+1] + hidden
	}
	return s
}

// parseNATSURL parses one URL of a list as nats.go does: without a scheme,
// it is a nats:// URL. prefix is what was added before parsing.
func parseNATSURL(s string) (u *url.URL, prefix string, err error) {
	if !strings.Contains(s, "://") {
		prefix = "nats://"
	}
	u, err = url.Parse(prefix + s)
	return u, prefix, err
}

// secrets are the strings of cfg that must never appear in an error or a
// log line: the password, the token and the credentials inside the URLs.
func (c *Config) secrets() []string {
	out := []string{c.Password, c.Token}
	for s := range strings.SplitSeq(c.URL, ",") {
		u, _, err := parseNATSURL(strings.TrimSpace(s))
		if err != nil || u.User == nil {
			continue
		}
		if p, ok := u.User.Password(); ok {
			out = append(out, p, url.PathEscape(p), url.QueryEscape(p))
		} else {
			out = append(out, u.User.Username(), url.PathEscape(u.User.Username()))
		}
	}
	return out
}

// hideSecrets returns err with every secret of cfg in its text replaced by
// xxxxx. errors.Is and errors.As still see the errors err wraps.
func hideSecrets(err error, cfg Config) error {
	text := err.Error()
	for _, s := range cfg.secrets() {
		if s != "" {
			text = strings.ReplaceAll(text, s, hidden)
		}
	}
	if text == err.Error() {
		return err
	}
	return &redactedError{text: text, err: err}
}

type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }
