package cursorsource

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Config configures a Source. Zero values mean the defaults.
type Config struct {
	// URL is the database: postgres://user:pass@host:port/db?… (any pgx
	// connection URL; postgresql:// too) or mysql://user:pass@host:port/db?…
	// for MariaDB and MySQL (mariadb:// too; TCP only, port 3306 by
	// default; the query's parameters are go-sql-driver/mysql's DSN
	// parameters). The role needs SELECT on the tables and on the catalog.
	// Required.
	URL string
	// Tables are the tables read. Required, at least one.
	Tables []TableConfig
	// PollInterval is how long the source waits before reading again once
	// it has read everything there was: default 1s.
	PollInterval time.Duration
	// BatchSize is the most rows a read (and so a batch) holds: default
	// 1000. A full refresh's last batch of a pass also holds its deletes.
	BatchSize int
	// Lag is the safety lag of timestamp cursors: a read only takes rows
	// whose cursor is at least Lag older than the database's clock, so
	// that a transaction that set its cursor (to now()) before a later one
	// but commits after it is still read, provided it commits within Lag
	// of its cursor value. Default 5s; a negative value disables it (the
	// trap is then open: for tests). It does not apply to other cursor
	// types (see the package documentation).
	Lag time.Duration
	// Logger receives the source's logs. Default slog.Default().
	Logger *slog.Logger
}

// TableConfig says how a table is read.
type TableConfig struct {
	// Name is "schema.table" or "table" (PostgreSQL: in schema public;
	// MariaDB: in the URL's database; a MariaDB schema is a database),
	// spelled as in the catalog (no quotes). Changes name the table
	// schema-qualified. Required.
	Name string
	// Cursor is the column that grows on every insert and update: an
	// updated_at timestamp, or a row version. Rows where it is NULL are
	// never read. Required unless FullRefresh.
	Cursor string
	// SoftDelete is a column that marks deleted rows: a row where it is
	// true (for a boolean column) or not NULL (any other type) is handed
	// over as a Delete. Optional.
	SoftDelete string
	// FullRefresh: read the whole table on every poll, in key order, and
	// hand over every row as a Read; rows that vanished since the previous
	// complete pass of the same Run come as Deletes. Cursor must be empty.
	FullRefresh bool
	// DeleteCheck makes an incremental table's hard deletes seen: every
	// DeleteCheck the source reads the table's primary keys only (in key
	// order, BatchSize keys a query, each in a short read-only transaction
	// of its own), between its cursor reads, and hands over as Deletes
	// (their Key only) the keys gone since the previous key pass: keys
	// that pass saw, or that the cursor reads handed over since it, and
	// that this pass does not see. The keys are kept in memory (one set
	// per table). The first key pass of a Run only records its keys: rows
	// hard-deleted while the pipeline was down, or before that pass, are
	// not seen. Default 0: never (hard deletes are not seen). It must not
	// be negative, and not be set with FullRefresh, which finds deletes on
	// every pass.
	DeleteCheck time.Duration
}

const (
	defaultPollInterval = time.Second
	defaultBatchSize    = 1000
	defaultLag          = 5 * time.Second
)

func (cfg Config) withDefaults() Config {
	cfg.PollInterval = cmp.Or(cfg.PollInterval, defaultPollInterval)
	cfg.BatchSize = cmp.Or(cfg.BatchSize, defaultBatchSize)
	cfg.Lag = cmp.Or(cfg.Lag, defaultLag)
	if cfg.Lag < 0 {
		cfg.Lag = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

func configError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

// validate checks cfg (before its defaults) and returns its database kind.
func (cfg Config) validate() (kind, error) {
	k, err := kindOf(cfg.URL)
	if err != nil {
		return 0, err
	}
	if len(cfg.Tables) == 0 {
		return 0, configError("Tables", "name at least one table")
	}
	seen := map[string]bool{}
	for i, tc := range cfg.Tables {
		field := fmt.Sprintf("Tables[%d]", i)
		schema, name, ok := strings.Cut(tc.Name, ".")
		if !ok {
			name = schema
		}
		if name == "" || ok && schema == "" || strings.ContainsRune(tc.Name, 0) {
			return 0, configError(field+".Name", "%q is not a table name (write table or schema.table)", tc.Name)
		}
		if seen[tc.Name] {
			return 0, configError(field+".Name", "%s is named twice", tc.Name)
		}
		seen[tc.Name] = true
		switch {
		case tc.FullRefresh && tc.Cursor != "":
			return 0, configError(field+".Cursor", "%s is read by FullRefresh: leave Cursor empty", tc.Name)
		case !tc.FullRefresh && tc.Cursor == "":
			return 0, configError(field+".Cursor", "required for %s (a column that grows on every insert and update, like updated_at), unless FullRefresh", tc.Name)
		case tc.Cursor != "" && tc.Cursor == tc.SoftDelete:
			return 0, configError(field+".SoftDelete", "%q is the cursor column", tc.SoftDelete)
		case tc.DeleteCheck < 0:
			return 0, configError(field+".DeleteCheck", "%s is negative: set how often to look for hard deletes, or 0 for never", tc.DeleteCheck)
		case tc.DeleteCheck > 0 && tc.FullRefresh:
			return 0, configError(field+".DeleteCheck", "%s is read by FullRefresh, which finds deletes on every pass: leave DeleteCheck 0", tc.Name)
		}
	}
	switch {
	case cfg.PollInterval < 0:
		return 0, configError("PollInterval", "%s is negative", cfg.PollInterval)
	case cfg.BatchSize < 0:
		return 0, configError("BatchSize", "%d is negative", cfg.BatchSize)
	}
	return k, nil
}

// kind is the database a URL names.
type kind int

const (
	postgresKind kind = iota + 1
	mysqlKind
)

const urlForms = "postgres://user:pass@host:port/db or mysql://user:pass@host:port/db"

// kindOf tells the database from the URL's scheme.
func kindOf(raw string) (kind, error) {
	if raw == "" {
		return 0, configError("URL", "required: %s", urlForms)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Not the error's text: it quotes the URL and its password.
		return 0, configError("URL", "not a URL: want %s", urlForms)
	}
	switch strings.ToLower(u.Scheme) {
	case "postgres", "postgresql":
		return postgresKind, nil
	case "mysql", "mariadb":
		return mysqlKind, nil
	}
	return 0, configError("URL", "scheme %q is not supported: want %s", u.Scheme, urlForms)
}
