package transform

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Config says how a destination reshapes the changes it applies. The zero
// Config changes nothing.
type Config struct {
	// Tables maps source table names, as changes give them
	// ("public.orders"), to how their changes are reshaped. The name "*"
	// is the config of every table not named; without it, a table not
	// named passes through unchanged.
	Tables map[string]TableConfig
	// Timeout bounds the runs of the expressions on one change (its
	// Filter and Compute, on After and Before), together: a jq program can
	// loop for ever. A change whose runs take longer is rejected. Default
	// 1s.
	Timeout time.Duration
}

// TableConfig says how one table's changes are reshaped. The steps run in
// this order: Filter and Compute on the source row (expressions see the
// source's column names), then Include or Exclude, then Rename.
type TableConfig struct {
	// Filter is a jq expression over a change's row that must give true
	// for the row to belong to the destination: false, null or no result
	// mean it does not. An Insert or Read that does not belong is
	// dropped; an Update that does not belong becomes a Delete of its key
	// (the row left the destination's range); a Delete always passes. Any
	// other result, more than one result, or an error rejects the change.
	// Empty: every row belongs.
	Filter string
	// Include are the only source columns kept, besides the key columns
	// (always kept) and the computed ones. Empty: all. Cannot be set with
	// Exclude.
	Include []string
	// Exclude are source columns dropped. A key column cannot be dropped
	// (Apply returns ErrTableMismatch). Empty: none.
	Exclude []string
	// Rename maps source column names (or computed ones) to destination
	// names; key columns may be renamed, in Key too. A column missing from
	// it keeps its name.
	Rename map[string]string
	// Compute maps column names to values computed from the source row:
	// a new column, or one that replaces a source column of that name
	// (not a key column: Apply returns ErrTableMismatch). Computed columns
	// are kept whatever Include says.
	Compute map[string]Computed
}

// Computed is a column computed by a jq expression.
type Computed struct {
	// Expr is a jq expression over the source row that must give exactly
	// one result: the column's value. Numbers come out as json.Number
	// (integers exact at any size); objects and arrays as JSON values.
	// Required.
	Expr string
	// Type is the column's type in the change set's description of the
	// table, as sources spell types ("text", "bigint", "numeric",
	// "boolean", "jsonb", "timestamptz"): what an SQL destination that
	// creates its tables makes the column. Default "text". It is not
	// inferred from values, which could differ from one change set to the
	// next: name "jsonb" for objects and arrays, a numeric type for
	// numbers.
	Type string
}

const (
	defaultTimeout = time.Second
	defaultType    = "text"
	// Wildcard is the Tables name of the config of every table not named.
	Wildcard = "*"
)

func (cfg Config) withDefaults() Config {
	cfg.Timeout = cmp.Or(cfg.Timeout, defaultTimeout)
	return cfg
}

func configError(table, field, format string, args ...any) error {
	return fmt.Errorf("%w: Tables[%q].%s: %s", ErrInvalidConfig, table, field, fmt.Sprintf(format, args...))
}

// validate checks cfg's plain rules (the expressions are checked by
// compiling them).
func (cfg Config) validate() error {
	if cfg.Timeout < 0 {
		return fmt.Errorf("%w: Timeout: %s is negative: leave it 0 for the default of %s", ErrInvalidConfig, cfg.Timeout, defaultTimeout)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Tables)) {
		if strings.TrimSpace(name) == "" {
			return fmt.Errorf("%w: Tables: a table with an empty name: name the source table (\"public.orders\") or write %q for every table not named", ErrInvalidConfig, Wildcard)
		}
		if err := cfg.Tables[name].validate(name); err != nil {
			return err
		}
	}
	return nil
}

func (tc TableConfig) validate(table string) error {
	if len(tc.Include) > 0 && len(tc.Exclude) > 0 {
		return configError(table, "Exclude", "set with Include: keep only the columns you list in Include, or drop those of Exclude, not both")
	}
	for _, f := range []struct {
		field string
		cols  []string
	}{{"Include", tc.Include}, {"Exclude", tc.Exclude}} {
		for i, col := range f.cols {
			if col == "" {
				return configError(table, fmt.Sprintf("%s[%d]", f.field, i), "empty column name")
			}
		}
	}
	excluded := setOf(tc.Exclude)
	for _, name := range slices.Sorted(maps.Keys(tc.Compute)) {
		c := tc.Compute[name]
		switch {
		case name == "":
			return configError(table, "Compute", "a computed column with an empty name")
		case strings.TrimSpace(c.Expr) == "":
			return configError(table, fmt.Sprintf("Compute[%q].Expr", name), "required: a jq expression over the row, like .price * .quantity")
		case excluded[name]:
			return configError(table, "Exclude", "drops %q, which Compute computes: remove it from one of them", name)
		}
	}
	included := setOf(tc.Include)
	targets := map[string]string{}
	for _, from := range slices.Sorted(maps.Keys(tc.Rename)) {
		to := tc.Rename[from]
		field := fmt.Sprintf("Rename[%q]", from)
		_, fromRenamed := tc.Rename[to]
		switch {
		case from == "":
			return configError(table, "Rename", "renames an empty column name")
		case to == "":
			return configError(table, field, "empty: name the destination column, or remove the entry to keep the name")
		case excluded[from]:
			return configError(table, field, "renames %q, which Exclude drops: remove it from one of them", from)
		case targets[to] != "":
			return configError(table, field, "renames %q to %q, as %q is: give them different names", from, to, targets[to])
		case to != from && !fromRenamed && tc.Compute[to].Expr != "":
			return configError(table, field, "renames %q to %q, the name of a computed column: rename that column too, or pick another name", from, to)
		case to != from && !fromRenamed && included[to]:
			return configError(table, field, "renames %q to %q, the name of a column Include keeps: rename that column too, or pick another name", from, to)
		}
		targets[to] = from
	}
	return nil
}

func setOf(cols []string) map[string]bool {
	if len(cols) == 0 {
		return nil
	}
	m := make(map[string]bool, len(cols))
	for _, c := range cols {
		m[c] = true
	}
	return m
}
