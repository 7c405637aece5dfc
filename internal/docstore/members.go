package docstore

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// A document is stored as it came, with its system fields put in: its
// members are copied as bytes, not decoded into a map and encoded again,
// which took most of a bulk upsert's time. prepareFast reads a document's
// top-level members with a small scanner over JSON that json.Valid has
// already checked; anything it does not take (a duplicate field, a bad id
// or partition key) goes to the decoding path, which decides and words the
// error.

// member is one top-level member of a JSON object: the spans of its key
// (with quotes) and value, and whether the value has whitespace outside
// strings.
type member struct {
	key, val [2]int
	spaced   bool
}

// prepareFast prepares a document whose partition key is at path, or
// reports false if the decoding path must decide.
func prepareFast(path []string, doc []byte) (Prepared, bool) {
	// Decoding replaces bad UTF-8; leave such documents to it.
	if len(path) == 0 || !utf8.Valid(doc) || !json.Valid(doc) {
		return Prepared{}, false
	}
	ms, ok := objectMembers(doc, skipSpace(doc, 0))
	if !ok {
		return Prepared{}, false
	}
	var p Prepared
	idAt := -1
	for i, m := range ms {
		if keyIs(doc, m, "id") {
			idAt = i
		}
	}
	if idAt < 0 {
		return Prepared{}, false
	}
	idRaw := doc[ms[idAt].val[0]:ms[idAt].val[1]]
	id, ok := stringValue(idRaw)
	if !ok || !validID(id) {
		return Prepared{}, false
	}
	p.ID, p.idJSON = id, idRaw
	if p.PartitionKey, ok = partitionKeyFast(doc, ms, path); !ok {
		return Prepared{}, false
	}
	size := 0
	for _, m := range ms {
		size += m.val[1] - m.key[0] + 1
	}
	out := make([]byte, 0, size)
	for _, m := range ms {
		if keyIs(doc, m, "id") || keyIs(doc, m, FieldETag) || keyIs(doc, m, FieldTS) || keyIs(doc, m, FieldLSN) {
			continue
		}
		if len(out) > 0 {
			out = append(out, ',')
		}
		out = append(out, doc[m.key[0]:m.key[1]]...)
		out = append(out, ':')
		val := doc[m.val[0]:m.val[1]]
		if m.spaced {
			var b bytes.Buffer
			_ = json.Compact(&b, val)
			val = b.Bytes()
		}
		out = append(out, val...)
	}
	p.members = out
	return p, true
}

// objectMembers reads the members of the object at doc[i] (valid JSON),
// or reports false if it is not an object or names a field twice.
func objectMembers(doc []byte, i int) ([]member, bool) {
	if i >= len(doc) || doc[i] != '{' {
		return nil, false
	}
	ms := make([]member, 0, 16)
	i = skipSpace(doc, i+1)
	if doc[i] == '}' {
		return ms, true
	}
	for {
		var m member
		m.key[0] = i
		i = stringEnd(doc, i)
		m.key[1] = i
		i = skipSpace(doc, i) + 1 // the colon
		i = skipSpace(doc, i)
		m.val[0] = i
		i, m.spaced = valueEnd(doc, i)
		m.val[1] = i
		ms = append(ms, m)
		i = skipSpace(doc, i)
		if doc[i] == '}' {
			break
		}
		i = skipSpace(doc, i+1) // the comma
	}
	if hasDuplicate(doc, ms) {
		return nil, false
	}
	return ms, true
}

// hasDuplicate reports whether two members have the same key. A key with
// escapes counts as a duplicate: the decoding path compares it decoded.
func hasDuplicate(doc []byte, ms []member) bool {
	for i, a := range ms {
		ka := doc[a.key[0]:a.key[1]]
		if bytes.IndexByte(ka, '\\') >= 0 {
			return true
		}
		if len(ms) > 32 {
			continue
		}
		for _, b := range ms[:i] {
			if bytes.Equal(ka, doc[b.key[0]:b.key[1]]) {
				return true
			}
		}
	}
	if len(ms) > 32 {
		seen := make(map[string]struct{}, len(ms))
		for _, m := range ms {
			k := string(doc[m.key[0]:m.key[1]])
			if _, ok := seen[k]; ok {
				return true
			}
			seen[k] = struct{}{}
		}
	}
	return false
}

// keyIs reports whether m's key is name (a name without characters that
// JSON escapes).
func keyIs(doc []byte, m member, name string) bool {
	k := doc[m.key[0]:m.key[1]]
	return len(k) == len(name)+2 && string(k[1:len(k)-1]) == name
}

// partitionKeyFast finds the partition key at path, as PartitionKeyOf does.
func partitionKeyFast(doc []byte, ms []member, path []string) (string, bool) {
	for depth, f := range path {
		at := -1
		for i, m := range ms {
			if keyIs(doc, m, f) {
				at = i
			}
		}
		if at < 0 {
			return "", false
		}
		m := ms[at]
		if depth < len(path)-1 {
			var ok bool
			if ms, ok = objectMembers(doc, m.val[0]); !ok {
				return "", false
			}
			continue
		}
		raw := doc[m.val[0]:m.val[1]]
		switch raw[0] {
		case '"':
			s, ok := stringValue(raw)
			return s, ok && s != ""
		case 't', 'f':
			return string(raw), true
		case 'n', '{', '[':
			return "", false
		default:
			return string(raw), true
		}
	}
	return "", false
}

// stringValue decodes a JSON string token, or reports false if raw is not
// a string.
func stringValue(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	return s, json.Unmarshal(raw, &s) == nil
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// stringEnd is the index after the string that starts at doc[i].
func stringEnd(doc []byte, i int) int {
	for i++; i < len(doc); i++ {
		switch doc[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// valueEnd is the index after the value that starts at doc[i], and
// whether it holds whitespace outside its strings.
func valueEnd(doc []byte, i int) (end int, spaced bool) {
	switch doc[i] {
	case '"':
		return stringEnd(doc, i), false
	case '{', '[':
		depth := 0
		for ; i < len(doc); i++ {
			switch doc[i] {
			case '"':
				i = stringEnd(doc, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, spaced
				}
			case ' ', '\t', '\n', '\r':
				spaced = true
			}
		}
		return i, spaced
	}
	for ; i < len(doc); i++ {
		switch doc[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i, false
		}
	}
	return i, false
}

// Render is the stored document's JSON: its id, its fields, and its system
// values.
func (p Prepared) Render(etag string, ts time.Time, lsn int64) json.RawMessage {
	etagJSON, _ := json.Marshal(etag)
	b := make([]byte, 0, len(p.members)+len(p.idJSON)+len(etagJSON)+64)
	b = append(b, `{"id":`...)
	b = append(b, p.idJSON...)
	if len(p.members) > 0 {
		b = append(b, ',')
		b = append(b, p.members...)
	}
	b = append(b, `,"`+FieldETag+`":`...)
	b = append(b, etagJSON...)
	b = append(b, `,"`+FieldTS+`":`...)
	b = strconv.AppendInt(b, ts.Unix(), 10)
	b = append(b, `,"`+FieldLSN+`":`...)
	b = strconv.AppendInt(b, lsn, 10)
	return append(b, '}')
}
