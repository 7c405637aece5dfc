package httpsource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// page is a page of items as the API answered it.
type page struct {
	items []map[string]any
	// next and delta are the absolute next and delta links ("" when
	// absent); next wins when a page has both.
	next, delta string
}

// readPage reads a page's body; link is the link it was read from (to
// resolve relative links and to name it in errors), n its number in the
// Run.
func (s *Source) readPage(body []byte, link string, n int) (page, error) {
	fail := func(format string, args ...any) (page, error) {
		return page{}, fmt.Errorf("%w: page %d (GET %s): %s", ErrBadPage, n, redactLink(link), fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return fail("not a JSON object (%v): the API should answer JSON; it starts with %q", err, excerpt(body[:min(len(body), 80)], link, nil))
	}
	if top == nil {
		return fail("null, not a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail("more than one JSON value")
	}
	raw, ok := top[s.cfg.ItemsField]
	if !ok {
		return fail("no member %q: set Config.ItemsField to the member that holds the items", s.cfg.ItemsField)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return fail("member %q is not an array of items", s.cfg.ItemsField)
	}
	var p page
	for i, r := range items {
		d := json.NewDecoder(bytes.NewReader(r))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return fail("item %d: %v", i, err)
		}
		item, ok := v.(map[string]any)
		if !ok {
			return fail("item %d is %s, not a JSON object", i, kindOf(v))
		}
		p.items = append(p.items, item)
	}
	var err error
	if p.next, err = s.link(top, s.cfg.NextLinkField, link); err != nil {
		return fail("%v", err)
	}
	if p.delta, err = s.link(top, s.cfg.DeltaLinkField, link); err != nil {
		return fail("%v", err)
	}
	if p.next == "" && p.delta == "" {
		return fail("neither %q nor %q: the API must give a next link while there are more pages and a delta link on the last one (for Microsoft Graph, Config.URL must be a delta query: …/items/delta)",
			s.cfg.NextLinkField, s.cfg.DeltaLinkField)
	}
	return p, nil
}

// link reads the link in member field of a page read from base: "" when
// absent or null.
func (s *Source) link(top map[string]json.RawMessage, field, base string) (string, error) {
	raw, ok := top[field]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil || v == "" {
		return "", fmt.Errorf("member %q is not a link (a non-empty string)", field)
	}
	b, _ := url.Parse(base) // base was requested: it parses
	u, err := b.Parse(v)
	if err != nil {
		return "", fmt.Errorf("member %q is not a URL", field)
	}
	if !sameOrigin(u, s.url) {
		return "", fmt.Errorf("member %q links to %s, another host than Config.URL's (%s): request headers are only sent to Config.URL's host",
			field, u.Scheme+"://"+u.Host, s.url.Scheme+"://"+s.url.Host)
	}
	return u.String(), nil
}

// changes are a page's items as changes: Reads in a full sync, Updates in
// a delta, Deletes (of the key only) for removed items. They also add the
// items' fields to the columns seen.
func (s *Source) changes(p page, ph phase, link string, n int) ([]pipeline.Change, error) {
	out := make([]pipeline.Change, 0, len(p.items))
	for i, item := range p.items {
		key := make(pipeline.Row, len(s.cfg.Key))
		for _, k := range s.cfg.Key {
			v, ok := item[k]
			if !ok {
				return nil, fmt.Errorf("%w: page %d (GET %s): item %d has no key field %q: check Config.Key", ErrBadPage, n, redactLink(link), i, k)
			}
			switch v.(type) {
			case string, json.Number:
			default:
				return nil, fmt.Errorf("%w: page %d (GET %s): item %d: key field %q is %s: keys are strings or numbers", ErrBadPage, n, redactLink(link), i, k, kindOf(v))
			}
			key[k] = v
		}
		if r, ok := item[s.cfg.RemovedField]; ok && r != nil {
			for k, v := range key {
				s.see(k, v)
			}
			out = append(out, pipeline.Change{Op: pipeline.Delete, Table: s.cfg.Table, Key: key})
			continue
		}
		after := make(pipeline.Row, len(item))
		for k, v := range item {
			if k == s.cfg.RemovedField || isAnnotation(k) {
				continue
			}
			after[k] = v
			s.see(k, v)
		}
		op := pipeline.Update
		if ph == full {
			op = pipeline.Read
		}
		out = append(out, pipeline.Change{Op: op, Table: s.cfg.Table, Key: key, After: after})
	}
	return out, nil
}

// isAnnotation: an OData annotation ("@odata.etag", "@removed",
// "field@odata.type"), not data.
func isAnnotation(name string) bool {
	return strings.HasPrefix(name, "@") || strings.Contains(name, "@odata.")
}

// columnType is the column type of a JSON value; "" for null.
func columnType(v any) string {
	switch v.(type) {
	case string:
		return "text"
	case json.Number:
		return "numeric"
	case bool:
		return "boolean"
	case map[string]any, []any:
		return "jsonb"
	}
	return ""
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	}
	return "an object"
}

// see adds a field's value to the columns seen. A field seen with
// different types is text; seen only null, text too (when described).
func (s *Source) see(name string, v any) {
	if s.cfg.Columns != nil {
		return
	}
	t := columnType(v)
	old, ok := s.seen[name]
	switch {
	case !ok || old == "":
		s.seen[name] = t
	case t != "" && t != old:
		s.seen[name] = "text"
	}
}

// table describes the table: Config.Columns, or the columns seen so far,
// key columns first (in Key's order), the others by name.
func (s *Source) table() pipeline.Table {
	t := pipeline.Table{Name: s.cfg.Table}
	if s.cfg.Columns != nil {
		for _, c := range s.cfg.Columns {
			c.Key = slices.Contains(s.cfg.Key, c.Name)
			t.Columns = append(t.Columns, c)
		}
		return t
	}
	typ := func(name string) string {
		if v := s.seen[name]; v != "" {
			return v
		}
		return "text"
	}
	for _, k := range s.cfg.Key {
		t.Columns = append(t.Columns, pipeline.Column{Name: k, Type: typ(k), Key: true})
	}
	var rest []string
	for name := range s.seen {
		if !slices.Contains(s.cfg.Key, name) {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	for _, name := range rest {
		t.Columns = append(t.Columns, pipeline.Column{Name: name, Type: typ(name)})
	}
	return t
}
