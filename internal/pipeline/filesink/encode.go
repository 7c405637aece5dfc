package filesink

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// encodeNDJSON writes a change per line, as the change log holds it.
func encodeNDJSON(changes []pipeline.Change) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range changes {
		if err := enc.Encode(&changes[i]); err != nil {
			return nil, fmt.Errorf("encode change %d: %w", i, err)
		}
	}
	return buf.Bytes(), nil
}

// Columns of CSV files before the table's.
var metaColumns = []string{"_op", "_position", "_commit_time"}

// encodeCSV writes a header and a line per change.
func encodeCSV(table pipeline.Table, changes []pipeline.Change) ([]byte, error) {
	cols := csvColumns(table, changes)
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(append(slices.Clone(metaColumns), cols...))
	record := make([]string, len(metaColumns)+len(cols))
	line := func(i int, c pipeline.Change, op pipeline.Op, row pipeline.Row) error {
		record[0] = string(op)
		record[1] = c.Position
		record[2] = ""
		if !c.CommitTime.IsZero() {
			record[2] = c.CommitTime.UTC().Format(time.RFC3339Nano)
		}
		for j, col := range cols {
			cell, err := csvCell(row[col])
			if err != nil {
				return fmt.Errorf("change %d, column %s: %w", i, col, err)
			}
			record[len(metaColumns)+j] = cell
		}
		// Writes to a bytes.Buffer do not fail; Flush reports the rest.
		_ = w.Write(record)
		return nil
	}
	for i, c := range changes {
		var err error
		switch {
		case c.Op == pipeline.Delete:
			err = line(i, c, pipeline.Delete, c.Key)
		case c.Moved():
			// An update that moved the row to a new key: the old key's
			// row goes, then the new one is written (a CSV line has no
			// room for both keys).
			if err = line(i, c, pipeline.Delete, c.Key); err == nil {
				err = line(i, c, c.Op, c.After)
			}
		default:
			err = line(i, c, c.Op, c.After)
		}
		if err != nil {
			return nil, err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// csvColumns are the table's columns as described, then the other columns
// its changes' rows hold, sorted.
func csvColumns(table pipeline.Table, changes []pipeline.Change) []string {
	known := map[string]bool{}
	var cols []string
	for _, c := range table.Columns {
		if !known[c.Name] {
			known[c.Name] = true
			cols = append(cols, c.Name)
		}
	}
	extra := map[string]bool{}
	for _, c := range changes {
		for _, row := range []pipeline.Row{c.Key, c.After} {
			for k := range row {
				if !known[k] {
					extra[k] = true
				}
			}
		}
	}
	return append(cols, slices.Sorted(maps.Keys(extra))...)
}

// csvCell is a value's text in a CSV file.
func csvCell(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case json.Number:
		return v.String(), nil
	case time.Time:
		return v.Format(time.RFC3339Nano), nil
	}
	// Maps, slices, and numbers of rows made in code: their JSON text.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	text := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	var s string
	if len(text) > 0 && text[0] == '"' && json.Unmarshal(text, &s) == nil {
		// A type that encodes as a string (a []byte, a TextMarshaler).
		return s, nil
	}
	return string(text), nil
}
