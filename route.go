package sluice

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// route is an HTTP trigger's route (HTTPTrigger.Route): an ASP.NET-style
// template as Azure Functions takes it ("products/{category:alpha}/{id:int?}").
//
// Requests are matched as the Azure Functions host's routing matches them
// (ASP.NET Core's Route, which the host builds for each function in
// WebScriptHostHttpRoutesManager and WebJobsRouteBuilder): fixed segments,
// the route prefix included, without regard to case, and a trailing slash
// tolerated. See MatchPath.
type route struct {
	Template string
	// Patterns are net/http ServeMux patterns of the route, without method
	// or host, case-sensitive: a route ending in an optional parameter has
	// two. MatchPath is how requests are matched.
	Patterns []string
	Params   []routeParam
	// segs are the route's segments, the prefix's first.
	segs []routeSeg
}

// routeSeg is a segment of a route: a fixed one, or a parameter (an index
// in Params).
type routeSeg struct {
	literal string
	param   int // -1 for a literal
}

// routeParam is a parameter of a route.
type routeParam struct {
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

// parseRoute reads a route template. prefix ("api" by default in Azure)
// is put before it; an empty prefix serves the route at the root.
func parseRoute(prefix, template string) (route, error) {
	r := route{Template: template}
	bad := func(format string, args ...any) (route, error) {
		return route{}, fmt.Errorf("route %q: %s", template, fmt.Sprintf(format, args...))
	}
	t := strings.Trim(template, "/")
	if strings.ContainsAny(strings.ReplaceAll(t, "?}", "}"), "?#") {
		return bad("it must be a path, without '?' or '#'")
	}
	var segs []string
	if p := strings.Trim(prefix, "/"); p != "" {
		for _, seg := range strings.Split(p, "/") {
			if !validLiteral(seg) {
				return route{}, fmt.Errorf("route prefix %q: segment %q: use letters, digits and -._~!$&'()*+,;=:@", prefix, seg)
			}
			segs = append(segs, seg)
			r.segs = append(r.segs, routeSeg{literal: seg, param: -1})
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
			r.segs = append(r.segs, routeSeg{literal: part, param: -1})
			continue
		}
		if !strings.HasPrefix(part, "{") || !strings.HasSuffix(part, "}") || strings.Count(part, "{") != 1 {
			return bad("segment %q: a parameter must be a whole segment, like {id}", part)
		}
		body := part[1 : len(part)-1]
		p := routeParam{}
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
		r.segs = append(r.segs, routeSeg{param: len(r.Params)})
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

// MatchPath matches an escaped request path (URL.EscapedPath) against the
// route, as the Azure Functions host's routing does: fixed segments
// without regard to case, one trailing slash tolerated, a parameter takes
// one non-empty segment, an optional last parameter may be left out, a
// catch-all takes the rest of the path (maybe nothing), and every
// constraint must hold. values holds each parameter given, unescaped;
// those left out are absent.
func (r route) MatchPath(escapedPath string) (values map[string]string, ok bool) {
	p := strings.TrimPrefix(escapedPath, "/")
	p = strings.TrimSuffix(p, "/")
	var parts []string
	if p != "" {
		parts = strings.Split(p, "/")
	}
	for i, seg := range r.segs {
		if seg.param < 0 {
			if i >= len(parts) || !equalFoldEscaped(parts[i], seg.literal) {
				return nil, false
			}
			continue
		}
		param := r.Params[seg.param]
		if param.CatchAll {
			rest := make([]string, 0, len(parts)-i)
			for _, part := range parts[min(i, len(parts)):] {
				v, err := url.PathUnescape(part)
				if err != nil {
					return nil, false
				}
				rest = append(rest, v)
			}
			if len(rest) > 0 {
				values = setValue(values, param.Name, strings.Join(rest, "/"))
			}
			parts = parts[:i]
			break
		}
		if i >= len(parts) {
			if param.Optional {
				continue
			}
			return nil, false
		}
		v, err := url.PathUnescape(parts[i])
		if err != nil || v == "" {
			return nil, false
		}
		values = setValue(values, param.Name, v)
	}
	if len(parts) > len(r.segs) {
		return nil, false
	}
	for _, param := range r.Params {
		v, given := values[param.Name]
		if given && param.Constraint != "" && !routeConstraints[param.Constraint](v) {
			return nil, false
		}
	}
	return values, true
}

func setValue(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// equalFoldEscaped compares a path segment as sent (maybe escaped) with a
// fixed segment of a route, without regard to case.
func equalFoldEscaped(escaped, literal string) bool {
	if strings.EqualFold(escaped, literal) {
		return true
	}
	v, err := url.PathUnescape(escaped)
	return err == nil && strings.EqualFold(v, literal)
}

// routePrecedence orders routes that can match the same path as ASP.NET Core's
// inbound route precedence does, segment by segment from the left: a fixed
// segment before a constrained parameter, before a parameter, before a
// catch-all; a route that ends first goes first. It is negative when a
// goes before b, positive when after, 0 when neither.
//
// Azure tries its functions' routes in the order it loaded them; Sluice
// tries the most specific first, so that products/new is served by its own
// function whatever the order of declaration beside products/{id}.
func routePrecedence(a, b route) int {
	for i := 0; i < len(a.segs) || i < len(b.segs); i++ {
		switch {
		case i >= len(a.segs):
			return -1
		case i >= len(b.segs):
			return 1
		}
		if d := a.segRank(i) - b.segRank(i); d != 0 {
			return d
		}
	}
	return 0
}

func (r route) segRank(i int) int {
	seg := r.segs[i]
	switch {
	case seg.param < 0:
		return 0
	case r.Params[seg.param].CatchAll:
		return 3
	case r.Params[seg.param].Constraint != "":
		return 1
	}
	return 2
}

// Shape describes the paths a route matches: two routes of the same shape
// match the same paths (their parameters' names aside), so they cannot
// serve the same method.
func (r route) Shape() string {
	var b strings.Builder
	for _, seg := range r.segs {
		b.WriteByte('/')
		if seg.param < 0 {
			b.WriteString(strings.ToLower(seg.literal))
			continue
		}
		p := r.Params[seg.param]
		b.WriteByte('{')
		if p.CatchAll {
			b.WriteByte('*')
		}
		b.WriteString(p.Constraint)
		if p.Optional {
			b.WriteByte('?')
		}
		b.WriteByte('}')
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// FixedPrefix is the route's path up to its first parameter ("/api/orders"
// for orders/{id}).
func (r route) FixedPrefix() string {
	var b strings.Builder
	for _, seg := range r.segs {
		if seg.param >= 0 {
			break
		}
		b.WriteByte('/')
		b.WriteString(seg.literal)
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// MatchesRoot reports whether the route can match the path "/".
func (r route) MatchesRoot() bool {
	_, ok := r.MatchPath("/")
	return ok
}

// RouteParams returns the names of the parameters of an HTTP trigger's
// route template, in order ("orders/{id:int}/{part?}": id and part), or
// the error Start would report for it. An HTTP function reads their
// values with r.PathValue; a parameter the request left out (optional or
// catch-all) reads as "".
func RouteParams(template string) ([]string, error) {
	r, err := parseRoute("", template)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(r.Params))
	for i, p := range r.Params {
		names[i] = p.Name
	}
	return names, nil
}
