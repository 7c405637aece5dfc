package filesink

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// Sink writes change sets as files, one per change set and table.
type Sink struct {
	cfg Config
	ext string
	// contentType is the files' type.
	contentType string
}

var _ pipeline.Sink = (*Sink)(nil)

// New checks cfg and makes a sink. It writes nothing.
func New(cfg Config) (*Sink, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Sink{cfg: cfg, ext: cfg.Format}
	switch cfg.Format {
	case NDJSON:
		s.contentType = "application/x-ndjson"
	case CSV:
		s.contentType = "text/csv; charset=utf-8"
	}
	if cfg.Gzip {
		s.ext += ".gz"
		s.contentType = "application/gzip"
	}
	return s, nil
}

// Name is the name of the file of change set seq and table:
// <Prefix><table>/<seq as %020d>.<ext>.
func (s *Sink) Name(table string, seq int64) string {
	return fmt.Sprintf("%s%s/%020d.%s", s.cfg.Prefix, escapeTable(table), seq, s.ext)
}

// Apply writes a file per table the changes touch, one after the other,
// in the order of the tables' names. It rejects no change: an error (of
// encoding or of the store) means the change set is to be written again,
// whole; files already written are then overwritten with the same bytes.
func (s *Sink) Apply(ctx context.Context, cs pipeline.ChangeSet, changes []pipeline.Change) ([]pipeline.Rejected, error) {
	byTable := map[string][]pipeline.Change{}
	for _, c := range changes {
		byTable[c.Table] = append(byTable[c.Table], c)
	}
	tables := make([]string, 0, len(byTable))
	for t := range byTable {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	for _, table := range tables {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var (
			data []byte
			err  error
		)
		switch s.cfg.Format {
		case CSV:
			data, err = encodeCSV(cs.Tables[table], byTable[table])
		default:
			data, err = encodeNDJSON(byTable[table])
		}
		if err != nil {
			return nil, fmt.Errorf("filesink: change set %d, table %s: %w", cs.Seq, table, err)
		}
		if s.cfg.Gzip {
			data = gzipped(data)
		}
		name := s.Name(table, cs.Seq)
		if err := s.cfg.Store.Put(ctx, name, data, s.contentType); err != nil {
			return nil, fmt.Errorf("filesink: change set %d: put %s: %w", cs.Seq, name, err)
		}
	}
	return nil, nil
}

// gzipped compresses data. The header holds no name nor time: the same
// data gives the same bytes.
func gzipped(data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	// Writes to a bytes.Buffer do not fail.
	_, _ = zw.Write(data)
	_ = zw.Close()
	return buf.Bytes()
}

// escapeTable makes a table's name one safe path segment: letters, digits
// and ".-_$" are kept, other bytes written as %XX; "." and ".." (and an
// empty name) are escaped too.
func escapeTable(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte(".-_$", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	switch out := b.String(); out {
	case "":
		return "%00"
	case ".", "..":
		return strings.Repeat("%2E", len(out))
	default:
		return out
	}
}
