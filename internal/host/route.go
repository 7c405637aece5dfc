package host

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Route is an HTTP trigger's route: an ASP.NET-style template as Azure
// Functions takes it ("products/{category:alpha}/{id:int?}"), turned into
// net/http patterns.
type Route struct {
	Template string
	// Patterns are the net/http ServeMux patterns that serve it, without
	// method or host: a route ending in an optional parameter has two.
	Patterns []string
	Params   []RouteParam
}

// RouteParam is a parameter of a route.
type RouteParam struct {
	Name       string
	Constraint string // "" or one of routeConstraints
	Optional   bool
	CatchAll   bool
}

// routeConstraints are the constraints a parameter can carry; a request
// whose value breaks one does not match the route (404).
var routeConstraints = map[string]func(string) bool{
	"int":      func(s string) bool { _, err := strconv.ParseInt(s, 10, 32); return err == nil },
	"long":     func(s string) bool { _, err := strconv.ParseInt(s, 10, 64); return err == nil },
	"bool":     func(s string) bool { _, err := strconv.ParseBool(s); return err == nil },
	"double":   func(s string) bool { _, err := strconv.ParseFloat(s, 64); return err == nil },
	"float":    func(s string) bool { _, err := strconv.ParseFloat(s, 32); return err == nil },
	"decimal":  func(s string) bool { _, err := strconv.ParseFloat(s, 64); return err == nil },
	"guid":     regexp.MustCompile(`^\{?[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}\}?$`).MatchString,
	"alpha":    regexp.MustCompile(`^[A-Za-z]+$`).MatchString,
	"datetime": func(s string) bool { return s != "" },
}

var (
	paramName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	literalSegment = regexp.MustCompile(`^[A-Za-z0-9\-._~!$&'()*+,;=:@]+$`)
)

// validLiteral reports whether a fixed segment of a route can be served:
// path characters, and not a "." or ".." that paths are cleaned of.
func validLiteral(seg string) bool {
	return seg != "." && seg != ".." && literalSegment.MatchString(seg)
}

// ParseRoute reads a route template. prefix ("api" by default in Azure)
// is put before it; an empty prefix serves the route at the root.
func ParseRoute(prefix, template string) (Route, error) {
	r := Route{Template: template}
	bad := func(format string, args ...any) (Route, error) {
		return Route{}, fmt.Errorf("route %q: %s", template, fmt.Sprintf(format, args...))
	}
	t := strings.Trim(template, "/")
	if strings.ContainsAny(strings.ReplaceAll(t, "?}", "}"), "?#") {
		return bad("it must be a path, without '?' or '#'")
	}
	var segs []string
	if p := strings.Trim(prefix, "/"); p != "" {
		for _, seg := range strings.Split(p, "/") {
			if !validLiteral(seg) {
				return Route{}, fmt.Errorf("route prefix %q: segment %q: use letters, digits and -._~!$&'()*+,;=:@", prefix, seg)
			}
			segs = append(segs, seg)
		}
	}
	var parts []string
	if t != "" {
		parts = strings.Split(t, "/")
	}
	seen := map[string]bool{}
	optionalAt := -1
	for i, part := range parts {
		if part == "" {
			return bad("it has an empty segment (//)")
		}
		if !strings.Contains(part, "{") && !strings.Contains(part, "}") {
			if !validLiteral(part) {
				return bad("segment %q: use letters, digits and -._~!$&'()*+,;=:@ (not . or .. alone)", part)
			}
			segs = append(segs, part)
			continue
		}
		if !strings.HasPrefix(part, "{") || !strings.HasSuffix(part, "}") || strings.Count(part, "{") != 1 {
			return bad("segment %q: a parameter must be a whole segment, like {id}", part)
		}
		body := part[1 : len(part)-1]
		p := RouteParam{}
		if strings.HasPrefix(body, "*") {
			p.CatchAll, body = true, strings.TrimLeft(body, "*")
		}
		if strings.HasSuffix(body, "?") {
			p.Optional, body = true, strings.TrimSuffix(body, "?")
		}
		name, constraint, _ := strings.Cut(body, ":")
		if c, _, ok := strings.Cut(constraint, "("); ok {
			return bad("parameter %s: constraint %s with arguments is not supported; use one of int, long, bool, double, float, decimal, guid, alpha, datetime", name, c)
		}
		if !paramName.MatchString(name) {
			return bad("parameter %q: a name is letters, digits and '_'", name)
		}
		if constraint != "" && routeConstraints[constraint] == nil {
			return bad("parameter %s: unknown constraint %q; use one of int, long, bool, double, float, decimal, guid, alpha, datetime", name, constraint)
		}
		if seen[strings.ToLower(name)] {
			return bad("parameter %s appears twice", name)
		}
		seen[strings.ToLower(name)] = true
		if (p.Optional || p.CatchAll) && i != len(parts)-1 {
			return bad("parameter %s: only the last segment can be optional or catch-all", name)
		}
		p.Name, p.Constraint = name, constraint
		r.Params = append(r.Params, p)
		if p.Optional {
			optionalAt = len(segs)
		}
		if p.CatchAll {
			segs = append(segs, "{"+name+"...}")
		} else {
			segs = append(segs, "{"+name+"}")
		}
	}
	full := "/" + strings.Join(segs, "/")
	r.Patterns = []string{full}
	if optionalAt >= 0 {
		without := "/" + strings.Join(segs[:optionalAt], "/")
		r.Patterns = append(r.Patterns, without)
	}
	return r, nil
}

// Match reports whether a request routed to r keeps every constraint.
func (r Route) Match(req *http.Request) bool {
	for _, p := range r.Params {
		v := req.PathValue(p.Name)
		if p.Constraint == "" || (v == "" && (p.Optional || p.CatchAll)) {
			continue
		}
		if !routeConstraints[p.Constraint](v) {
			return false
		}
	}
	return true
}
