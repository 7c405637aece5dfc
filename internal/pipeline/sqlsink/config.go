package sqlsink

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Config says where and how a sink writes.
type Config struct {
	// URL is the destination database: postgres://user:pass@host:port/db?…
	// (any pgx connection URL; postgresql:// too) or
	// mysql://user:pass@host:port/db?… for MariaDB and MySQL (mariadb://
	// too; TCP only, port 3306 by default; the query's parameters are
	// go-sql-driver/mysql's DSN parameters). Required.
	URL string

	// Pipeline is the pipeline whose change sets the sink applies: Apply
	// refuses change sets of another pipeline, and Reset moves this
	// pipeline's position. Required; at most 191 characters.
	Pipeline string

	// Destination names the destination: the sink records the last change
	// set applied under (Pipeline, Destination) in the table
	// sluice_pipeline_positions. Two sinks with the same names share that
	// position and never apply a change set twice between them. Required;
	// at most 191 characters.
	Destination string

	// Schema holds the destination tables and sluice_pipeline_positions: a
	// PostgreSQL schema, or a MariaDB/MySQL database. Default: the
	// connection's current one (the first schema of the search_path; the
	// database of the URL).
	Schema string

	// Tables maps source table names as changes give them ("public.orders")
	// to how they are written. A table missing from it is written to a
	// table of its name without the schema ("orders"), every column kept.
	Tables map[string]TableConfig

	// CreateTables: create a missing destination table from the change
	// set's description of the source table (column types mapped from the
	// source's PostgreSQL type names, text for types the sink does not
	// know; the key columns as primary key). When false, a missing table
	// is an error of Apply, which is tried again later.
	CreateTables bool

	// MaxBatchRows bounds the rows one statement writes or deletes.
	// Default 1000; statements also stay under the databases' limit of
	// 65535 parameters and under MaxBatchBytes.
	MaxBatchRows int

	// MaxBatchBytes bounds (roughly: the values' sizes) what one statement
	// sends. Default 4 MiB, under MariaDB's default max_allowed_packet of
	// 16 MiB.
	MaxBatchBytes int

	// MaxConns bounds the sink's connections. Default 4.
	MaxConns int
}

// TableConfig says how a source table is written.
type TableConfig struct {
	// Name is the destination table. Default: the source table's name
	// without the schema.
	Name string
	// Rename maps source column names to destination column names; a
	// column missing from it keeps its name.
	Rename map[string]string
	// Columns are the source columns written: only these (and the key
	// columns, which are always written). Empty: all.
	Columns []string
}

const (
	defaultMaxBatchRows  = 1000
	defaultMaxBatchBytes = 4 << 20
	defaultMaxConns      = 4
	maxParams            = 65535
	maxDestinationLen    = 191
)

func (c Config) withDefaults() Config {
	c.MaxBatchRows = cmp.Or(c.MaxBatchRows, defaultMaxBatchRows)
	c.MaxBatchBytes = cmp.Or(c.MaxBatchBytes, defaultMaxBatchBytes)
	c.MaxConns = cmp.Or(c.MaxConns, defaultMaxConns)
	return c
}

// ErrConfig: a Config is not valid. The message names the field.
var ErrConfig = errors.New("sqlsink: invalid config")

func configError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
}

func (c Config) validate() error {
	if _, err := dialectOf(c.URL); err != nil {
		return err
	}
	if c.Pipeline == "" {
		return configError("Pipeline", "required")
	}
	if n := utf8.RuneCountInString(c.Pipeline); n > maxDestinationLen {
		return configError("Pipeline", "%d characters, at most %d", n, maxDestinationLen)
	}
	if c.Destination == "" {
		return configError("Destination", "required")
	}
	if n := utf8.RuneCountInString(c.Destination); n > maxDestinationLen {
		return configError("Destination", "%d characters, at most %d", n, maxDestinationLen)
	}
	if c.Schema != "" {
		if err := checkName(c.Schema); err != nil {
			return configError("Schema", "%v", err)
		}
	}
	for src, tc := range c.Tables {
		field := fmt.Sprintf("Tables[%q]", src)
		if src == "" {
			return configError(field, "empty source table name")
		}
		if tc.Name != "" {
			if err := checkName(tc.Name); err != nil {
				return configError(field+".Name", "%v", err)
			}
		}
		seen := map[string]string{}
		for from, to := range tc.Rename {
			if from == "" {
				return configError(field+".Rename", "empty source column name")
			}
			if err := checkName(to); err != nil {
				return configError(fmt.Sprintf("%s.Rename[%q]", field, from), "%v", err)
			}
			if other, ok := seen[to]; ok {
				return configError(field+".Rename", "columns %q and %q both renamed to %q", other, from, to)
			}
			seen[to] = from
		}
		for i, col := range tc.Columns {
			if col == "" {
				return configError(fmt.Sprintf("%s.Columns[%d]", field, i), "empty column name")
			}
		}
	}
	if c.MaxBatchRows < 0 {
		return configError("MaxBatchRows", "%d is negative", c.MaxBatchRows)
	}
	if c.MaxBatchBytes < 0 {
		return configError("MaxBatchBytes", "%d is negative", c.MaxBatchBytes)
	}
	if c.MaxConns < 0 {
		return configError("MaxConns", "%d is negative", c.MaxConns)
	}
	return nil
}

// maxNameLen is the shorter of PostgreSQL's (63 bytes) and MariaDB's (64
// characters) limits: PostgreSQL cuts longer names silently.
const maxNameLen = 63

// checkName refuses names no destination takes as they are.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > maxNameLen:
		return fmt.Errorf("name %q is longer than %d bytes", name, maxNameLen)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("name %q holds a NUL character", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not UTF-8", name)
	case strings.HasSuffix(name, " "):
		// MariaDB refuses names ending with a space.
		return fmt.Errorf("name %q ends with a space", name)
	}
	return nil
}

type dialectKind int

const (
	postgresKind dialectKind = iota + 1
	mysqlKind
)

// dialectOf tells the database from the URL's scheme.
func dialectOf(raw string) (dialectKind, error) {
	if raw == "" {
		return 0, configError("URL", "required: postgres://user:pass@host:port/db or mysql://user:pass@host:port/db")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Not the error's text: it quotes the URL and its password.
		return 0, configError("URL", "not a URL: want postgres://user:pass@host:port/db or mysql://user:pass@host:port/db")
	}
	switch strings.ToLower(u.Scheme) {
	case "postgres", "postgresql":
		return postgresKind, nil
	case "mysql", "mariadb":
		return mysqlKind, nil
	}
	return 0, configError("URL", "scheme %q is not supported: want postgres://user:pass@host:port/db or mysql://user:pass@host:port/db", u.Scheme)
}

// destTable is the destination table name of a source table.
func (c *Config) destTable(source string) string {
	if tc, ok := c.Tables[source]; ok && tc.Name != "" {
		return tc.Name
	}
	if i := strings.LastIndexByte(source, '.'); i >= 0 {
		return source[i+1:]
	}
	return source
}
