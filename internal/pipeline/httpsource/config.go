package httpsource

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// Config configures a Source. Zero values mean the defaults.
type Config struct {
	// URL is the initial link: a GET of it starts a full sync (for
	// Microsoft Graph, a delta query such as
	// https://graph.microsoft.com/v1.0/sites/{site}/lists/{list}/items/delta?expand=fields).
	// http or https. Every later link the API gives (next and delta links)
	// must be on the same scheme, host and port: request headers are
	// never sent elsewhere. Required.
	URL string
	// Table is the name the changes carry ("sharepoint.orders"). Required.
	Table string
	// Key are the item fields (top-level members) forming the key: default
	// ["id"]. Key values are taken as the item gives them: a string or a
	// number (a json.Number).
	Key []string
	// ItemsField is the page's member holding the array of items: default
	// "value".
	ItemsField string
	// NextLinkField is the page's member holding the link to the next
	// page, present while there are more pages to read at once: default
	// "@odata.nextLink".
	NextLinkField string
	// DeltaLinkField is the last page's member holding the link that later
	// gives the changes since: default "@odata.deltaLink".
	DeltaLinkField string
	// RemovedField is the member that marks an item as deleted: default
	// "@removed". Such an item is handed over as a Delete of its key.
	RemovedField string
	// Headers are sent with every request (Authorization, Prefer...).
	// Their values are secrets: never logged nor put in errors.
	Headers map[string]string
	// HeaderFunc, when set, is called before every request (every retry
	// too) and its headers are sent, overriding Headers of the same name:
	// for tokens that expire (an OAuth token source). Its values are
	// treated as secrets too. Optional.
	HeaderFunc func(ctx context.Context) (http.Header, error)
	// Columns, when set, describe the table's columns (Key columns are
	// marked from Key: every Key field must be among them). Otherwise
	// they are inferred from the items seen in the Run so far: string →
	// text, number → numeric, true/false → boolean, object or array →
	// jsonb, a field seen with different types → text, only null → text.
	// Either way items are handed over whole (less annotations).
	Columns []pipeline.Column
	// PollInterval is the wait between delta polls once the source has
	// read everything there was: default 30s.
	PollInterval time.Duration
	// Timeout bounds each request, its body included: default 30s.
	Timeout time.Duration
	// Retries is how many times in a row a link is tried again after a
	// network error, a timeout, 408, 429 or 5xx before Run gives up with
	// ErrUnavailable (the pipeline starts it again later): default 10.
	// Waits follow Retry-After (seconds or a date, capped at 5 minutes),
	// else 1s doubling up to 1m.
	Retries int
	// Client makes the requests: default an http.Client that refuses
	// redirects to another host. A Client without CheckRedirect gets that
	// one too.
	Client *http.Client
	// Logger receives the source's logs. Default slog.Default().
	Logger *slog.Logger
}

const (
	defaultPollInterval = 30 * time.Second
	defaultTimeout      = 30 * time.Second
	defaultRetries      = 10
	// maxPageBytes bounds a page's body.
	maxPageBytes = 64 << 20
)

func (cfg Config) withDefaults() Config {
	if len(cfg.Key) == 0 {
		cfg.Key = []string{"id"}
	}
	cfg.ItemsField = cmp.Or(cfg.ItemsField, "value")
	cfg.NextLinkField = cmp.Or(cfg.NextLinkField, "@odata.nextLink")
	cfg.DeltaLinkField = cmp.Or(cfg.DeltaLinkField, "@odata.deltaLink")
	cfg.RemovedField = cmp.Or(cfg.RemovedField, "@removed")
	cfg.PollInterval = cmp.Or(cfg.PollInterval, defaultPollInterval)
	cfg.Timeout = cmp.Or(cfg.Timeout, defaultTimeout)
	cfg.Retries = cmp.Or(cfg.Retries, defaultRetries)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: sameHostRedirect}
	} else if cfg.Client.CheckRedirect == nil {
		c := *cfg.Client
		c.CheckRedirect = sameHostRedirect
		cfg.Client = &c
	}
	return cfg
}

func configError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

// validate checks cfg (before its defaults) and returns its URL parsed.
func (cfg Config) validate() (*url.URL, error) {
	u, err := checkURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Table) == "" {
		return nil, configError("Table", `required: the name the changes carry ("sharepoint.orders")`)
	}
	for i, k := range cfg.Key {
		if k == "" {
			return nil, configError(fmt.Sprintf("Key[%d]", i), "empty: name an item field")
		}
		if slices.Index(cfg.Key, k) != i {
			return nil, configError(fmt.Sprintf("Key[%d]", i), "%q is named twice", k)
		}
	}
	d := cfg.withDefaults()
	fields := map[string]string{}
	for _, f := range []struct{ name, v string }{
		{"ItemsField", d.ItemsField}, {"NextLinkField", d.NextLinkField},
		{"DeltaLinkField", d.DeltaLinkField}, {"RemovedField", d.RemovedField},
	} {
		if other, ok := fields[f.v]; ok {
			return nil, configError(f.name, "%q is also %s: each names a different member", f.v, other)
		}
		fields[f.v] = f.name
	}
	for name, v := range cfg.Headers {
		if !validHeaderName(name) {
			return nil, configError("Headers", "%q is not a header name", name)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			// Not the value: it is a secret.
			return nil, configError("Headers["+name+"]", "the value holds a line break or NUL")
		}
	}
	if err := cfg.validateColumns(); err != nil {
		return nil, err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"PollInterval", cfg.PollInterval}, {"Timeout", cfg.Timeout}} {
		if d.v < 0 {
			return nil, configError(d.name, "%s is negative", d.v)
		}
	}
	if cfg.Retries < 0 {
		return nil, configError("Retries", "%d is negative", cfg.Retries)
	}
	return u, nil
}

func (cfg Config) validateColumns() error {
	if len(cfg.Columns) == 0 {
		return nil
	}
	key := cfg.Key
	if len(key) == 0 {
		key = []string{"id"}
	}
	seen := map[string]bool{}
	for i, c := range cfg.Columns {
		field := fmt.Sprintf("Columns[%d]", i)
		switch {
		case c.Name == "":
			return configError(field+".Name", "empty")
		case seen[c.Name]:
			return configError(field+".Name", "%q is named twice", c.Name)
		case c.Type == "":
			return configError(field+".Type", "empty for %q: text, numeric, boolean, jsonb, timestamptz...", c.Name)
		case c.Key && !slices.Contains(key, c.Name):
			return configError(field+".Key", "%q is not in Key %q: key columns come from Key", c.Name, key)
		}
		seen[c.Name] = true
	}
	for _, k := range key {
		if !seen[k] {
			return configError("Columns", "key field %q is not among them", k)
		}
	}
	return nil
}

func checkURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, configError("URL", "required: the http(s) link that starts a full sync")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Not the error's text: it quotes the URL, and its query may hold a key.
		return nil, configError("URL", "not a URL: want https://host/path?query")
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return nil, configError("URL", "scheme %q is not supported: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, configError("URL", "no host: want https://host/path?query")
	}
	if u.User != nil {
		return nil, configError("URL", "holds a user or password: send credentials in Headers (Authorization) instead")
	}
	return u, nil
}

// validHeaderName: a token as RFC 9110 defines it.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 0x7f || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}
