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
	if len(path) == 0 || !utf8.Valid(doc) {
		return Prepared{}, false
	}
	ms, end, ok := objectMembers(doc, skipSpace(doc, 0))
	if !ok || skipSpace(doc, end) != len(doc) {
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

// objectMembers reads the members of the object at doc[i], checking that
// it is valid JSON, or reports false if it is not a valid object or names a
// field twice. ok is false too past maxScanDepth levels of nesting.
func objectMembers(doc []byte, i int) (ms []member, end int, ok bool) {
	if i >= len(doc) || doc[i] != '{' {
		return nil, i, false
	}
	ms = make([]member, 0, 16)
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return ms, i + 1, true
	}
	for {
		var m member
		m.key[0] = i
		if i, ok = stringEnd(doc, i); !ok {
			return nil, i, false
		}
		m.key[1] = i
		if i = skipSpace(doc, i); i >= len(doc) || doc[i] != ':' {
			return nil, i, false
		}
		i = skipSpace(doc, i+1)
		m.val[0] = i
		if i, m.spaced, ok = valueEnd(doc, i, 1); !ok {
			return nil, i, false
		}
		m.val[1] = i
		ms = append(ms, m)
		if i = skipSpace(doc, i); i >= len(doc) {
			return nil, i, false
		}
		if doc[i] == '}' {
			i++
			break
		}
		if doc[i] != ',' {
			return nil, i, false
		}
		i = skipSpace(doc, i+1)
	}
	if hasDuplicate(doc, ms) {
		return nil, i, false
	}
	return ms, i, true
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
			if ms, _, ok = objectMembers(doc, m.val[0]); !ok {
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

// maxScanDepth bounds the nesting the scanner follows; deeper documents go
// to the decoding path, which refuses them.
const maxScanDepth = MaxDepth

// stringEnd is the index after the JSON string that starts at doc[i], and
// whether it is a valid one.
func stringEnd(doc []byte, i int) (int, bool) {
	if i >= len(doc) || doc[i] != '"' {
		return i, false
	}
	for i++; i < len(doc); i++ {
		switch c := doc[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(doc) {
				return i, false
			}
			switch doc[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(doc) {
					return i, false
				}
				for _, h := range doc[i+1 : i+5] {
					if !isHex(h) {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// valueEnd is the index after the JSON value that starts at doc[i], whether
// it holds whitespace outside its strings, and whether it is valid (at
// most maxScanDepth levels deep, depth counting the levels around it).
func valueEnd(doc []byte, i, depth int) (end int, spaced, ok bool) {
	if i >= len(doc) {
		return i, false, false
	}
	switch c := doc[i]; {
	case c == '"':
		end, ok = stringEnd(doc, i)
		return end, false, ok
	case c == '{' || c == '[':
		if depth >= maxScanDepth {
			return i, false, false
		}
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		j := skipSpace(doc, i+1)
		spaced = j > i+1
		if j < len(doc) && doc[j] == closing {
			return j + 1, spaced, true
		}
		for {
			if c == '{' {
				if j, ok = stringEnd(doc, j); !ok {
					return j, false, false
				}
				colon := skipSpace(doc, j)
				if colon >= len(doc) || doc[colon] != ':' {
					return colon, false, false
				}
				next := skipSpace(doc, colon+1)
				spaced = spaced || colon > j || next > colon+1
				j = next
			}
			var inner bool
			if j, inner, ok = valueEnd(doc, j, depth+1); !ok {
				return j, false, false
			}
			next := skipSpace(doc, j)
			spaced = spaced || inner || next > j
			if j = next; j >= len(doc) {
				return j, false, false
			}
			if doc[j] == closing {
				return j + 1, spaced, true
			}
			if doc[j] != ',' {
				return j, false, false
			}
			next = skipSpace(doc, j+1)
			spaced = spaced || next > j+1
			j = next
		}
	case c == 't':
		return literalEnd(doc, i, "true")
	case c == 'f':
		return literalEnd(doc, i, "false")
	case c == 'n':
		return literalEnd(doc, i, "null")
	}
	end, ok = numberEnd(doc, i)
	return end, false, ok
}

func literalEnd(doc []byte, i int, lit string) (int, bool, bool) {
	if len(doc)-i >= len(lit) && string(doc[i:i+len(lit)]) == lit {
		return i + len(lit), false, true
	}
	return i, false, false
}

// numberEnd is the index after the JSON number at doc[i], and whether it
// is one: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(doc []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		j := i
		for j < len(doc) && isDigit(doc[j]) {
			j++
		}
		return j, j > i
	}
	if i < len(doc) && doc[i] == '-' {
		i++
	}
	switch {
	case i < len(doc) && doc[i] == '0':
		i++
	case i < len(doc) && isDigit(doc[i]):
		i, _ = digits(i)
	default:
		return i, false
	}
	var ok bool
	if i < len(doc) && doc[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return i, false
		}
	}
	if i < len(doc) && (doc[i] == 'e' || doc[i] == 'E') {
		i++
		if i < len(doc) && (doc[i] == '+' || doc[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	return i, true
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
