package funcapp

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice"
)

// object reads the members of one decoded JSON object. Names match
// case-insensitively, as Azure's configuration binder and Json.NET match them;
// an exact match wins over one that differs in case. Every value read is
// type-checked, and a problem is reported against the member's JSON path.
type object struct {
	m    map[string]any
	path string // JSON path of the object itself; "" for the document root
	read map[string]bool
	r    *report
}

func newObject(m map[string]any, path string, r *report) *object {
	return &object{m: m, path: path, read: map[string]bool{}, r: r}
}

// field is the JSON path of the member name.
func (o *object) field(name string) string {
	if o.path == "" {
		return name
	}
	return o.path + "." + name
}

// lookup finds the first of names present (JSON null counts as present) and
// returns its value and the name it was found under (the one given, not the
// one written, so messages use the documented spelling).
func (o *object) lookup(names ...string) (any, string, bool) {
	for _, name := range names {
		if v, ok := o.m[name]; ok {
			o.read[name] = true
			return v, name, true
		}
		keys := make([]string, 0, len(o.m))
		for k := range o.m {
			if strings.EqualFold(k, name) {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			slices.Sort(keys)
			for _, k := range keys {
				o.read[k] = true
			}
			return o.m[keys[0]], name, true
		}
	}
	return nil, "", false
}

// has reports whether one of names is present and not null.
func (o *object) has(names ...string) bool {
	v, _, ok := o.lookup(names...)
	return ok && v != nil
}

// unread returns, sorted, the names written in the object that no lookup read.
func (o *object) unread() []string {
	var out []string
	for k := range o.m {
		if !o.read[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// str reads a string. Absent or null gives ok false.
func (o *object) str(names ...string) (string, bool) {
	v, name, ok := o.lookup(names...)
	if !ok || v == nil {
		return "", false
	}
	s, isString := v.(string)
	if !isString {
		o.r.errorf(o.field(name), "must be a string, not %s", describe(v))
		return "", false
	}
	if o.r.isUnresolved(o.field(name)) {
		return "", false // its missing setting is reported already
	}
	return s, true
}

// boolean reads true or false, also written as a string ("true", "False"),
// since a %setting% always yields a string.
func (o *object) boolean(names ...string) (bool, bool) {
	v, name, ok := o.lookup(names...)
	if !ok || v == nil {
		return false, false
	}
	switch b := v.(type) {
	case bool:
		return b, true
	case string:
		if o.r.isUnresolved(o.field(name)) {
			return false, false
		}
		// .NET's bool.Parse: "true" or "false" in any case, nothing else.
		switch strings.ToLower(strings.TrimSpace(b)) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	o.r.errorf(o.field(name), "must be true or false, not %s", describe(v))
	return false, false
}

// integer reads a whole number in [lo, hi], also written as a string.
func (o *object) integer(lo, hi int, names ...string) (int, bool) {
	v, name, ok := o.lookup(names...)
	if !ok || v == nil {
		return 0, false
	}
	var text string
	switch n := v.(type) {
	case json.Number:
		text = n.String()
	case string:
		if o.r.isUnresolved(o.field(name)) {
			return 0, false
		}
		text = strings.TrimSpace(n)
	default:
		o.r.errorf(o.field(name), "must be a whole number, not %s", describe(v))
		return 0, false
	}
	i, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		// Json.NET converts 5.0 to 5; so do we.
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != math.Trunc(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
			o.r.errorf(o.field(name), "must be a whole number, not %s", describe(v))
			return 0, false
		}
		i = int64(f)
	}
	if i < int64(lo) || i > int64(hi) {
		o.r.errorf(o.field(name), "%d is out of range; %s", i, rangeText(lo, hi))
		return 0, false
	}
	return int(i), true
}

func rangeText(lo, hi int) string {
	switch {
	case hi == math.MaxInt32:
		return fmt.Sprintf("it must be at least %d", lo)
	default:
		return fmt.Sprintf("it must be between %d and %d", lo, hi)
	}
}

// timeSpan reads a .NET TimeSpan string such as "00:05:00".
func (o *object) timeSpan(names ...string) (time.Duration, bool) {
	s, ok := o.str(names...)
	if !ok {
		return 0, false
	}
	d, err := sluice.ParseTimeSpan(s)
	if err != nil {
		_, name, _ := o.lookup(names...)
		o.r.errorf(o.field(name), "%v", err)
		return 0, false
	}
	return d, true
}

// millis reads a whole number of milliseconds.
func (o *object) millis(names ...string) (time.Duration, bool) {
	n, ok := o.integer(0, math.MaxInt32, names...)
	return time.Duration(n) * time.Millisecond, ok
}

// strs reads an array of strings.
func (o *object) strs(names ...string) ([]string, bool) {
	v, name, ok := o.lookup(names...)
	if !ok || v == nil {
		return nil, false
	}
	arr, isArray := v.([]any)
	if !isArray {
		o.r.errorf(o.field(name), "must be an array of strings, not %s", describe(v))
		return nil, false
	}
	out := make([]string, 0, len(arr))
	good := true
	for i, e := range arr {
		s, isString := e.(string)
		switch {
		case !isString:
			o.r.errorf(fmt.Sprintf("%s[%d]", o.field(name), i), "must be a string, not %s", describe(e))
			good = false
			continue
		case o.r.isUnresolved(fmt.Sprintf("%s[%d]", o.field(name), i)):
			good = false
			continue
		}
		out = append(out, s)
	}
	return out, good
}

// object reads a nested object.
func (o *object) object(names ...string) (*object, bool) {
	v, name, ok := o.lookup(names...)
	if !ok || v == nil {
		return nil, false
	}
	m, isObject := v.(map[string]any)
	if !isObject {
		o.r.errorf(o.field(name), "must be an object, not %s", describe(v))
		return nil, false
	}
	return newObject(m, o.field(name), o.r), true
}

// describe names a decoded JSON value for messages: `the string "x"`,
// `the number 5`, `an array`.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 60 {
			x = x[:57] + "..."
		}
		return fmt.Sprintf("the string %q", x)
	case json.Number:
		return "the number " + x.String()
	case bool:
		return fmt.Sprintf("%t", x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}
