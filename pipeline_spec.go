package sluice

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// PipelineSpec is a pipeline's definition as data: one entry of
// sluice.yaml's pipelines section, the file `sluice pipeline create` reads,
// and the body of POST /api/v1/pipelines all have this shape, with the
// same keys. Secrets (database URLs with passwords, HTTP headers) are best
// given as the names of environment variables (urlEnv, headersEnv), read
// on each instance that runs the pipeline, so they are never stored.
type PipelineSpec struct {
	Postgres  *PostgresSpec   `json:"postgres,omitempty"`
	SQL       *SQLSourceSpec  `json:"sql,omitempty"`
	HTTP      *HTTPSourceSpec `json:"http,omitempty"`
	Container string          `json:"container,omitempty"`
	Retention SpecDuration    `json:"retention,omitempty"`
	BatchSize int             `json:"batchSize,omitempty"`
	// Destinations by name.
	Destinations map[string]DestinationSpec `json:"destinations"`
}

// PostgresSpec is PostgresSource as data.
type PostgresSpec struct {
	URL    string   `json:"url,omitempty"`
	URLEnv string   `json:"urlEnv,omitempty"`
	Tables []string `json:"tables"`
}

// SQLSourceSpec is SQLSource as data.
type SQLSourceSpec struct {
	URL          string         `json:"url,omitempty"`
	URLEnv       string         `json:"urlEnv,omitempty"`
	PollInterval SpecDuration   `json:"pollInterval,omitempty"`
	Lag          SpecDuration   `json:"lag,omitempty"`
	Tables       []SQLTableSpec `json:"tables"`
}

// SQLTableSpec is SQLSourceTable as data.
type SQLTableSpec struct {
	Name        string `json:"name"`
	Cursor      string `json:"cursor,omitempty"`
	SoftDelete  string `json:"softDelete,omitempty"`
	FullRefresh bool   `json:"fullRefresh,omitempty"`
	// DeleteCheck: how often to look for hard deletes ("1h").
	DeleteCheck SpecDuration `json:"deleteCheck,omitempty"`
}

// HTTPSourceSpec is HTTPSource as data. HeadersEnv maps a header to the
// environment variable holding its value.
type HTTPSourceSpec struct {
	URL            string            `json:"url"`
	Table          string            `json:"table"`
	Key            []string          `json:"key,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	HeadersEnv     map[string]string `json:"headersEnv,omitempty"`
	ItemsField     string            `json:"itemsField,omitempty"`
	NextLinkField  string            `json:"nextLinkField,omitempty"`
	DeltaLinkField string            `json:"deltaLinkField,omitempty"`
	RemovedField   string            `json:"removedField,omitempty"`
	PollInterval   SpecDuration      `json:"pollInterval,omitempty"`
	Timeout        SpecDuration      `json:"timeout,omitempty"`
}

// DestinationSpec is PipelineDestination as data: exactly one of sql,
// http, hub, container and files.
type DestinationSpec struct {
	SQL             *SQLDestinationSpec      `json:"sql,omitempty"`
	HTTP            *HTTPDestinationSpec     `json:"http,omitempty"`
	Hub             string                   `json:"hub,omitempty"`
	Container       string                   `json:"container,omitempty"`
	Files           *FilesSpec               `json:"files,omitempty"`
	RetryBackoff    SpecDuration             `json:"retryBackoff,omitempty"`
	MaxRetryBackoff SpecDuration             `json:"maxRetryBackoff,omitempty"`
	Breaker         *BreakerSpec             `json:"breaker,omitempty"`
	Transform       map[string]TransformSpec `json:"transform,omitempty"`
}

// SQLDestinationSpec is SQLDestination as data.
type SQLDestinationSpec struct {
	URL          string            `json:"url,omitempty"`
	URLEnv       string            `json:"urlEnv,omitempty"`
	Tables       map[string]string `json:"tables,omitempty"`
	CreateTables bool              `json:"createTables,omitempty"`
}

// HTTPDestinationSpec is HTTPDestination as data. HeadersEnv maps a
// header to the environment variable holding its value.
type HTTPDestinationSpec struct {
	URL        string            `json:"url"`
	Headers    map[string]string `json:"headers,omitempty"`
	HeadersEnv map[string]string `json:"headersEnv,omitempty"`
	BatchSize  int               `json:"batchSize,omitempty"`
	Timeout    SpecDuration      `json:"timeout,omitempty"`
}

// FilesSpec is FilesDestination as data.
type FilesSpec struct {
	Container string `json:"container"`
	Format    string `json:"format,omitempty"`
	Prefix    string `json:"prefix,omitempty"`
	Gzip      bool   `json:"gzip,omitempty"`
}

// BreakerSpec is BreakerPolicy as data.
type BreakerSpec struct {
	FailureThreshold    int          `json:"failureThreshold,omitempty"`
	Window              SpecDuration `json:"window,omitempty"`
	ConsecutiveFailures int          `json:"consecutiveFailures,omitempty"`
	CoolDown            SpecDuration `json:"coolDown,omitempty"`
	MaxCoolDown         SpecDuration `json:"maxCoolDown,omitempty"`
}

// TransformSpec is TableTransform as data.
type TransformSpec struct {
	Filter  string                  `json:"filter,omitempty"`
	Include []string                `json:"include,omitempty"`
	Exclude []string                `json:"exclude,omitempty"`
	Rename  map[string]string       `json:"rename,omitempty"`
	Compute map[string]ComputedSpec `json:"compute,omitempty"`
}

// ComputedSpec is ComputedColumn as data.
type ComputedSpec struct {
	Expr string `json:"expr"`
	Type string `json:"type,omitempty"`
}

// SpecDuration is a duration written as Go writes them: "30s", "5m",
// "1h30m".
type SpecDuration time.Duration

func (d SpecDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *SpecDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s is not a duration: write it as a string like \"30s\", \"5m\" or \"1h30m\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration: write it like 30s, 5m or 1h30m", s)
	}
	*d = SpecDuration(v)
	return nil
}

// DecodePipelineSpec reads a spec from JSON, refusing fields it does not
// know (a misspelt setting is an error, not a setting silently ignored).
func DecodePipelineSpec(data []byte) (PipelineSpec, error) {
	var s PipelineSpec
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%w: the pipeline's definition: %s", errPipelineRequest, strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return s, fmt.Errorf("%w: the pipeline's definition: more than one JSON value", errPipelineRequest)
	}
	return s, nil
}

// Config is the PipelineConfig the spec describes, with the environment
// variables it names read by getenv (os.Getenv). Errors name the setting
// ("destinations.reporting.sql: ...").
func (s PipelineSpec) Config(getenv func(string) string) (PipelineConfig, error) {
	cfg := PipelineConfig{Container: s.Container, Retention: time.Duration(s.Retention), BatchSize: s.BatchSize}
	if pg := s.Postgres; pg != nil {
		url, err := specURL(pg.URL, pg.URLEnv, "postgres", getenv)
		if err != nil {
			return cfg, err
		}
		cfg.Postgres = &PostgresSource{URL: url, Tables: pg.Tables}
	}
	if sq := s.SQL; sq != nil {
		url, err := specURL(sq.URL, sq.URLEnv, "sql", getenv)
		if err != nil {
			return cfg, err
		}
		cfg.SQL = &SQLSource{URL: url, PollInterval: time.Duration(sq.PollInterval), Lag: time.Duration(sq.Lag)}
		for _, t := range sq.Tables {
			cfg.SQL.Tables = append(cfg.SQL.Tables, SQLSourceTable{Name: t.Name, Cursor: t.Cursor, SoftDelete: t.SoftDelete,
				FullRefresh: t.FullRefresh, DeleteCheck: time.Duration(t.DeleteCheck)})
		}
	}
	if h := s.HTTP; h != nil {
		headers, err := specHeaders(h.Headers, h.HeadersEnv, "http", getenv)
		if err != nil {
			return cfg, err
		}
		cfg.HTTP = &HTTPSource{URL: h.URL, Table: h.Table, Key: h.Key, Headers: headers, ItemsField: h.ItemsField,
			NextLinkField: h.NextLinkField, DeltaLinkField: h.DeltaLinkField, RemovedField: h.RemovedField,
			PollInterval: time.Duration(h.PollInterval), Timeout: time.Duration(h.Timeout)}
	}
	if len(s.Destinations) == 0 {
		return cfg, errors.New("give its destinations")
	}
	for _, name := range slices.Sorted(maps.Keys(s.Destinations)) {
		ds := s.Destinations[name]
		where := "destinations." + name
		d := PipelineDestination{Name: name, Hub: ds.Hub, Container: ds.Container,
			RetryBackoff: time.Duration(ds.RetryBackoff), MaxRetryBackoff: time.Duration(ds.MaxRetryBackoff)}
		if sq := ds.SQL; sq != nil {
			url, err := specURL(sq.URL, sq.URLEnv, where+".sql", getenv)
			if err != nil {
				return cfg, err
			}
			d.SQL = &SQLDestination{URL: url, Tables: sq.Tables, CreateTables: sq.CreateTables}
		}
		if h := ds.HTTP; h != nil {
			headers, err := specHeaders(h.Headers, h.HeadersEnv, where+".http", getenv)
			if err != nil {
				return cfg, err
			}
			d.HTTP = &HTTPDestination{URL: h.URL, Headers: headers, BatchSize: h.BatchSize, Timeout: time.Duration(h.Timeout)}
		}
		if f := ds.Files; f != nil {
			d.Files = &FilesDestination{Container: f.Container, Format: f.Format, Prefix: f.Prefix, Gzip: f.Gzip}
		}
		if b := ds.Breaker; b != nil {
			d.Breaker = BreakerPolicy{FailureThreshold: b.FailureThreshold, Window: time.Duration(b.Window),
				ConsecutiveFailures: b.ConsecutiveFailures, CoolDown: time.Duration(b.CoolDown), MaxCoolDown: time.Duration(b.MaxCoolDown)}
		}
		if len(ds.Transform) > 0 {
			d.Transform = make(map[string]TableTransform, len(ds.Transform))
			for table, t := range ds.Transform {
				tt := TableTransform{Filter: t.Filter, Include: t.Include, Exclude: t.Exclude, Rename: t.Rename}
				if len(t.Compute) > 0 {
					tt.Compute = make(map[string]ComputedColumn, len(t.Compute))
					for col, c := range t.Compute {
						tt.Compute[col] = ComputedColumn(c)
					}
				}
				d.Transform[table] = tt
			}
		}
		cfg.Destinations = append(cfg.Destinations, d)
	}
	return cfg, nil
}

// EnvNames are the environment variables the spec names (urlEnv,
// headersEnv): secrets, kept from handler processes.
func (s PipelineSpec) EnvNames() []string {
	var out []string
	add := func(names ...string) {
		for _, n := range names {
			if n != "" && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	if s.Postgres != nil {
		add(s.Postgres.URLEnv)
	}
	if s.SQL != nil {
		add(s.SQL.URLEnv)
	}
	if s.HTTP != nil {
		add(slices.Sorted(maps.Values(s.HTTP.HeadersEnv))...)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Destinations)) {
		d := s.Destinations[name]
		if d.SQL != nil {
			add(d.SQL.URLEnv)
		}
		if d.HTTP != nil {
			add(slices.Sorted(maps.Values(d.HTTP.HeadersEnv))...)
		}
	}
	return out
}

// specURL is a URL given in the spec or, better, by an environment
// variable it names.
func specURL(url, env, where string, getenv func(string) string) (string, error) {
	switch {
	case url != "" && env != "":
		return "", fmt.Errorf("%s: give url or urlEnv, not both", where)
	case env != "":
		v := getenv(env)
		if v == "" {
			return "", fmt.Errorf("%s: the environment variable %s (urlEnv) is not set", where, env)
		}
		return v, nil
	case url == "":
		return "", fmt.Errorf("%s: give the database's URL (urlEnv: the environment variable that holds it, or url)", where)
	}
	return url, nil
}

// specHeaders are headers given in the spec plus those whose values come
// from environment variables.
func specHeaders(headers, env map[string]string, where string, getenv func(string) string) (map[string]string, error) {
	if len(env) == 0 {
		return headers, nil
	}
	out := maps.Clone(headers)
	if out == nil {
		out = map[string]string{}
	}
	for _, h := range slices.Sorted(maps.Keys(env)) {
		if _, ok := headers[h]; ok {
			return nil, fmt.Errorf("%s: header %s is in headers and headersEnv: give it once", where, h)
		}
		v := getenv(env[h])
		if v == "" {
			return nil, fmt.Errorf("%s: the environment variable %s (headersEnv of %s) is not set", where, env[h], h)
		}
		out[h] = v
	}
	return out, nil
}
