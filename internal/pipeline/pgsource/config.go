package pgsource

import (
	"cmp"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Config configures a Source. Zero values mean the defaults.
type Config struct {
	// DSN is the database's URL (postgres://user:password@host:5432/db).
	// The role needs LOGIN and REPLICATION (or SUPERUSER), SELECT on the
	// tables, and, unless the publication exists already, the right to
	// create it (ownership of the tables, or SUPERUSER). Required.
	DSN string
	// Pipeline is the pipeline's name. The replication slot and the
	// publication are both named "sluice_<name>", the name lowercased,
	// every character other than a-z, 0-9 and _ replaced by _, and cut to
	// 63 bytes (PostgreSQL's limit). Two names that give the same slot
	// name share it, so don't. Required.
	Pipeline string
	// Tables are the tables whose changes the pipeline reads: "schema.table"
	// or "table" (in schema public), spelled as in the catalog (no quotes,
	// case-sensitive). Required, at least one.
	Tables []string
	// BatchSize is the most changes a batch holds: default 1000. A batch
	// holds whole transactions only, so a transaction with more changes
	// than BatchSize makes a batch of its own, as large as it is.
	BatchSize int
	// MaxWait is how long the first transaction of a partial batch waits
	// for more before the batch is handed over: default 100ms.
	MaxWait time.Duration
	// StandbyTimeout is how often the source tells the server how far it
	// has confirmed, when nothing else makes it: default 10s. Keep it well
	// under the server's wal_sender_timeout (60s by default).
	StandbyTimeout time.Duration
	// Logger receives the source's logs. Default slog.Default().
	Logger *slog.Logger
}

const (
	defaultBatchSize      = 1000
	defaultMaxWait        = 100 * time.Millisecond
	defaultStandbyTimeout = 10 * time.Second
)

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	cfg.BatchSize = cmp.Or(cfg.BatchSize, defaultBatchSize)
	cfg.MaxWait = cmp.Or(cfg.MaxWait, defaultMaxWait)
	cfg.StandbyTimeout = cmp.Or(cfg.StandbyTimeout, defaultStandbyTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// validate checks cfg (with its defaults) and returns its tables, parsed.
func (cfg Config) validate() ([]tableName, error) {
	if cfg.DSN == "" {
		return nil, fmt.Errorf("%w: DSN is required", ErrInvalidConfig)
	}
	if _, err := pgconn.ParseConfig(cfg.DSN); err != nil {
		return nil, fmt.Errorf("%w: DSN: %v", ErrInvalidConfig, err)
	}
	if strings.TrimSpace(cfg.Pipeline) == "" {
		return nil, fmt.Errorf("%w: Pipeline is required", ErrInvalidConfig)
	}
	if len(cfg.Tables) == 0 {
		return nil, fmt.Errorf("%w: Tables: name at least one table", ErrInvalidConfig)
	}
	tables := make([]tableName, 0, len(cfg.Tables))
	seen := map[tableName]bool{}
	for _, s := range cfg.Tables {
		t, err := parseTableName(s)
		if err != nil {
			return nil, err
		}
		if seen[t] {
			return nil, fmt.Errorf("%w: Tables: %s is named twice", ErrInvalidConfig, t)
		}
		seen[t] = true
		tables = append(tables, t)
	}
	switch {
	case cfg.BatchSize < 0:
		return nil, fmt.Errorf("%w: BatchSize %d is negative", ErrInvalidConfig, cfg.BatchSize)
	case cfg.MaxWait < 0:
		return nil, fmt.Errorf("%w: MaxWait %s is negative", ErrInvalidConfig, cfg.MaxWait)
	case cfg.StandbyTimeout < 0:
		return nil, fmt.Errorf("%w: StandbyTimeout %s is negative", ErrInvalidConfig, cfg.StandbyTimeout)
	}
	return tables, nil
}

// tableName is a schema-qualified table name, as in the catalog.
type tableName struct{ schema, name string }

func parseTableName(s string) (tableName, error) {
	schema, name, ok := strings.Cut(s, ".")
	if !ok {
		schema, name = "public", s
	}
	if schema == "" || name == "" || strings.ContainsRune(s, 0) {
		return tableName{}, fmt.Errorf("%w: Tables: %q is not a table name (write table or schema.table)", ErrInvalidConfig, s)
	}
	return tableName{schema: schema, name: name}, nil
}

// String is the name changes carry: "schema.table".
func (t tableName) String() string { return t.schema + "." + t.name }

// sql is the name quoted for SQL.
func (t tableName) sql() string { return pgx.Identifier{t.schema, t.name}.Sanitize() }

// slotName is the name of the replication slot and of the publication of
// pipeline name.
func slotName(pipeline string) string {
	var b strings.Builder
	b.WriteString("sluice_")
	for _, r := range strings.ToLower(pipeline) {
		if b.Len() == 63 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
