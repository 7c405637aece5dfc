package docstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// MaxDepth bounds how deeply a document nests objects and arrays, the
// document itself being level 1: 128 levels, as Cosmos DB. Deeper
// documents are refused when written (DepthError): SQLite's JSON functions
// stop at 1,000 levels, so one such document made every query of its
// container fail, and indenting thousands of levels made answers of
// hundreds of megabytes.
const MaxDepth = 128

// DepthError is returned for JSON that nests objects and arrays deeper
// than Max levels. It is ErrInvalid.
type DepthError struct {
	// What is "document", "patch" or another name of the JSON text.
	What string
	Max  int
}

func (e *DepthError) Error() string {
	return fmt.Sprintf("invalid %s: it nests objects and arrays more than %d levels deep, the limit: "+
		"flatten it, or keep the deep part as a JSON string", e.What, e.Max)
}

// Is makes a DepthError ErrInvalid.
func (e *DepthError) Is(target error) bool { return target == ErrInvalid }

// DuplicateMemberError is returned for JSON with an object that names a
// member twice: readers disagree on which value counts (encoding/json
// takes the last, SQLite the first). It is ErrInvalid.
type DuplicateMemberError struct {
	What string
	// Name is the member named twice; Path is where its object is, like
	// `a.b[2]` ("" for the top level).
	Name, Path string
}

func (e *DuplicateMemberError) Error() string {
	where := "the top-level object"
	if e.Path != "" {
		where = "the object at " + e.Path
	}
	return fmt.Sprintf("invalid %s: member %q appears twice in %s: give each member once", e.What, e.Name, where)
}

// Is makes a DuplicateMemberError ErrInvalid.
func (e *DuplicateMemberError) Is(target error) bool { return target == ErrInvalid }

// CheckShape checks the structure of a JSON text: that no object names a
// member twice and, when maxDepth > 0, that objects and arrays nest at
// most maxDepth levels. It returns a *DuplicateMemberError or a
// *DepthError naming what as the text ("document", "request body"...). It
// reads the text once, in one pass, and does not check its syntax: text
// that is not valid JSON gives no error or a meaningless one, never a
// panic.
func CheckShape(v []byte, what string, maxDepth int) error {
	var c shapeChecker
	return c.check(v, what, maxDepth)
}

// shapeChecker walks a JSON text with a stack of the open objects and
// arrays.
type shapeChecker struct {
	stack []shapeFrame
	// keys holds the member names of every open object, each object's
	// after its parent's (an object's end truncates it to its start).
	keys []keySpan
}

type shapeFrame struct {
	object  bool
	wantKey bool // in an object, the next string is a member name
	index   int  // in an array, the current element
	keys    int  // start of the object's names in keys
	key     keySpan
	// seen holds the names of an object with many members.
	seen map[string]struct{}
}

// keySpan locates a member name (with its quotes) in the text.
type keySpan struct {
	start, end int
	escaped    bool
}

// smallObject is the member count up to which names are compared one by
// one; larger objects use a map.
const smallObject = 16

func (c *shapeChecker) check(v []byte, what string, maxDepth int) error {
	for i := 0; i < len(v); {
		switch v[i] {
		case '{', '[':
			if maxDepth > 0 && len(c.stack) >= maxDepth {
				return &DepthError{What: what, Max: maxDepth}
			}
			c.stack = append(c.stack, shapeFrame{object: v[i] == '{', wantKey: v[i] == '{', keys: len(c.keys)})
			i++
		case '}', ']':
			if n := len(c.stack); n > 0 {
				c.keys = c.keys[:c.stack[n-1].keys]
				c.stack = c.stack[:n-1]
			}
			i++
		case ',':
			if n := len(c.stack); n > 0 {
				top := &c.stack[n-1]
				top.wantKey = top.object
				top.index++
			}
			i++
		case ':':
			if n := len(c.stack); n > 0 {
				c.stack[n-1].wantKey = false
			}
			i++
		case '"':
			end, escaped := skipString(v, i)
			if n := len(c.stack); n > 0 && c.stack[n-1].wantKey {
				k := keySpan{start: i, end: end, escaped: escaped}
				if c.duplicate(v, &c.stack[n-1], k) {
					return &DuplicateMemberError{What: what, Name: decodeName(v, k), Path: c.path(v)}
				}
				c.stack[n-1].key = k
				c.stack[n-1].wantKey = false
			}
			i = end
		default:
			i++
		}
	}
	return nil
}

// duplicate records name k of object f, reporting whether f has it
// already.
func (c *shapeChecker) duplicate(v []byte, f *shapeFrame, k keySpan) bool {
	names := c.keys[f.keys:]
	if f.seen == nil && len(names) < smallObject {
		for _, o := range names {
			if sameName(v, o, k) {
				return true
			}
		}
		c.keys = append(c.keys, k)
		return false
	}
	if f.seen == nil {
		f.seen = make(map[string]struct{}, 2*len(names))
		for _, o := range names {
			f.seen[decodeName(v, o)] = struct{}{}
		}
	}
	name := decodeName(v, k)
	if _, ok := f.seen[name]; ok {
		return true
	}
	f.seen[name] = struct{}{}
	c.keys = append(c.keys, k)
	return false
}

// path is where the innermost open object is, like `a.b[2]`.
func (c *shapeChecker) path(v []byte) string {
	var b strings.Builder
	for _, f := range c.stack[:len(c.stack)-1] {
		if !f.object {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
			continue
		}
		name := decodeName(v, f.key)
		if simpleName(name) {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(name)
		} else {
			b.WriteString("[" + strconv.Quote(name) + "]")
		}
	}
	return b.String()
}

func simpleName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func sameName(v []byte, a, b keySpan) bool {
	if !a.escaped && !b.escaped {
		return bytes.Equal(v[a.start:a.end], v[b.start:b.end])
	}
	return decodeName(v, a) == decodeName(v, b)
}

// decodeName is a member name's value.
func decodeName(v []byte, k keySpan) string {
	raw := v[k.start:k.end]
	if !k.escaped && len(raw) >= 2 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return string(raw)
	}
	return s
}

// skipString returns the index after the string that starts at v[i] (the
// end of v if it is not closed), and whether it has escapes.
func skipString(v []byte, i int) (end int, escaped bool) {
	for j := i + 1; j < len(v); j++ {
		switch v[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return len(v), escaped
}
