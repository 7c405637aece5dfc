package filesink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
)

// Store is where files are written: a blob store, adapted. Put stores
// data under name, replacing what the name held; an error means the
// file may or may not be stored (Apply then fails, and the whole change
// set is written again later).
type Store interface {
	Put(ctx context.Context, name string, data []byte, contentType string) error
}

// Format names of Config.Format.
const (
	NDJSON = "ndjson"
	CSV    = "csv"
)

// Config says where and how a sink writes files.
type Config struct {
	// Store receives the files. Required.
	Store Store

	// Format is NDJSON ("ndjson", one JSON object per change) or CSV
	// ("csv", a column per table column). Default NDJSON.
	Format string

	// Prefix starts every file's name: "lake/orders/" puts a table's
	// files under lake/orders/<table>/. Default "" (no prefix). It may
	// not start with "/", hold a ".." segment, a backslash or a control
	// character.
	Prefix string

	// Gzip compresses files: their names end in ".gz", their content type
	// is application/gzip. Default false.
	Gzip bool
}

// ErrConfig is returned by New for a Config that cannot work; the message
// names the field.
var ErrConfig = errors.New("filesink: invalid config")

func configError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
}

func (c Config) withDefaults() Config {
	c.Format = cmp.Or(c.Format, NDJSON)
	return c
}

func (c Config) validate() error {
	if c.Store == nil {
		return configError("Store", "required")
	}
	switch c.Format {
	case "", NDJSON, CSV:
	default:
		return configError("Format", "%q is not a format: use %q (the default) or %q", c.Format, NDJSON, CSV)
	}
	p := c.Prefix
	switch {
	case strings.HasPrefix(p, "/"):
		return configError("Prefix", "%q starts with \"/\"; names are relative to the store", p)
	case strings.Contains(p, `\`):
		return configError("Prefix", "%q holds a backslash; separate folders with \"/\"", p)
	case strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return configError("Prefix", "%q holds a control character", p)
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == ".." {
			return configError("Prefix", "%q holds a \"..\" segment", p)
		}
	}
	return nil
}
