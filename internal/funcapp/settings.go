package funcapp

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
)

// lookupSetting finds an app setting by name. Azure's configuration is
// case-insensitive, so when no setting has exactly that name, one that
// differs only in case is used (the first in byte order when there are
// several).
func lookupSetting(settings map[string]string, name string) (string, bool) {
	if v, ok := settings[name]; ok {
		return v, true
	}
	var found string
	ok := false
	for k := range settings {
		if strings.EqualFold(k, name) && (!ok || k < found) {
			found, ok = k, true
		}
	}
	if !ok {
		return "", false
	}
	return settings[found], true
}

// settingEnabled reports whether a setting is "true" or "1" (any case), the
// test Azure applies to AzureWebJobs.<name>.Disabled.
func settingEnabled(settings map[string]string, name string) bool {
	v, ok := lookupSetting(settings, name)
	if !ok {
		return false
	}
	v = strings.TrimSpace(v)
	return v == "1" || strings.EqualFold(v, "true")
}

// isSettingName reports whether s can be the name inside %...%: letters,
// digits and "_.:-". Anything else between two percent signs (a space, a
// quote) is text, such as a LIKE pattern in a Cosmos DB query, and is kept.
func isSettingName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// expand replaces each %NAME% in s with the app setting NAME, as Azure's name
// resolver does. It returns the names it could not find; their %NAME% is
// left in place. A percent sign that does not open a %NAME% stays as it is.
// Binding expressions in braces ({queueTrigger}) are not touched.
func expand(s string, settings map[string]string) (string, []string) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	var missing []string
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			break
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			b.WriteString(s)
			break
		}
		name := s[i+1 : i+1+j]
		if !isSettingName(name) {
			b.WriteString(s[:i+1])
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i])
		if v, ok := lookupSetting(settings, name); ok {
			b.WriteString(v)
		} else {
			missing = append(missing, name)
			b.WriteString(s[i : i+j+2])
		}
		s = s[i+j+2:]
	}
	return b.String(), missing
}

// expandValue expands every string inside a decoded JSON value (object
// names excepted) and reports each missing setting against the JSON path of
// the string that names it.
func expandValue(v any, path string, settings map[string]string, r *report) any {
	switch x := v.(type) {
	case string:
		s, missing := expand(x, settings)
		for _, name := range missing {
			r.errorf(path, "app setting %q is not set (the value refers to %%%s%%); add it to Values in local.settings.json or to the environment", name, name)
		}
		if len(missing) > 0 {
			r.markUnresolved(path)
		}
		return s
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = expandValue(e, fmt.Sprintf("%s[%d]", path, i), settings, r)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		// In name order, so that problems are reported in a stable order.
		for _, k := range slices.Sorted(maps.Keys(x)) {
			e := x[k]
			p := k
			if path != "" {
				p = path + "." + k
			}
			out[k] = expandValue(e, p, settings, r)
		}
		return out
	default:
		return v
	}
}

// readLocalSettings reads local.settings.json, if the app has one: its Values.
func readLocalSettings(path, file string) (map[string]string, []string, []error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil, nil
	}
	r := &report{file: file}
	if err != nil {
		r.errorf("", "cannot read: %v", err)
		return nil, nil, r.errs
	}
	values := parseLocalSettings(data, r)
	return values, r.warnings, r.errs
}

// parseLocalSettings reads the Values of a local.settings.json. Values may be
// strings, numbers or booleans (Json.NET turns the last two into their text).
func parseLocalSettings(data []byte, r *report) map[string]string {
	doc, err := decodeJSON(data)
	if err != nil {
		r.errorf("", "%v", err)
		return nil
	}
	root, ok := doc.(map[string]any)
	if !ok {
		r.errorf("", "must hold a JSON object like {\"IsEncrypted\": false, \"Values\": {...}}, not %s", describe(doc))
		return nil
	}
	o := newObject(root, "", r)
	if encrypted, _ := o.boolean("IsEncrypted"); encrypted {
		r.errorf("IsEncrypted", "the settings are encrypted and Sluice cannot decrypt them; run `func settings decrypt` and load again")
		return nil
	}
	values := map[string]string{}
	if vo, ok := o.object("Values"); ok {
		for _, k := range slices.Sorted(maps.Keys(vo.m)) {
			switch v := vo.m[k].(type) {
			case string:
				values[k] = v
			case json.Number:
				values[k] = v.String()
			case bool:
				values[k] = fmt.Sprintf("%t", v)
			case nil:
				values[k] = ""
			default:
				r.errorf(vo.field(k), "must be a string, not %s", describe(v))
			}
		}
	}
	for _, k := range o.unread() {
		if !strings.EqualFold(k, "Host") && !strings.EqualFold(k, "ConnectionStrings") {
			r.warnf(k, "not used by Sluice; ignored")
		}
	}
	if cs, ok := o.object("ConnectionStrings"); ok && len(cs.m) > 0 {
		r.warnf("ConnectionStrings", "not used by Sluice; put connection settings in Values")
	}
	return values
}

// environ turns a list of "K=V" into a map; later entries win.
func environ(list []string) map[string]string {
	m := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		m[k] = v
	}
	return m
}
