package xslt

import (
	"cmp"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
	"github.com/sluicehq/sluice/internal/xpath"
)

// rule is one alternative of a template's match pattern.
type rule struct {
	t    *template
	pat  *xpath.Pattern
	prec int
	prio float64
	seq  int // position in the stylesheet: the last one wins a tie, as in xsltproc
	// What the rule can match, from the last step of its pattern: a kind
	// of node, and for elements and attributes a name ("" = any).
	kinds uint8 // bit per xmltree.Kind
	name  *qname
}

// mode holds the rules of one mode, indexed by what they can match so a
// node is tested only against rules that can match it; each list is in
// order of preference (precedence, then priority, then last first).
type mode struct {
	rules   []*rule
	byName  [2]map[qname][]*rule // [0] elements, [1] attributes: named rules merged with the wildcard ones
	generic [8][]*rule           // by kind: rules that match any name
}

func (s *Stylesheet) mode(q qname) *mode {
	m := s.modes[q]
	if m == nil {
		m = &mode{}
		s.modes[q] = m
	}
	return m
}

const allKinds = 1<<xmltree.Document | 1<<xmltree.Element | 1<<xmltree.Attribute | 1<<xmltree.Text | 1<<xmltree.Comment | 1<<xmltree.ProcInst

func (m *mode) add(r *rule, n *xmltree.Node) {
	r.kinds, r.name = target(r.pat.String(), n)
	m.rules = append(m.rules, r)
}

func better(a, b *rule) int {
	if c := cmp.Compare(b.prec, a.prec); c != 0 {
		return c
	}
	if c := cmp.Compare(b.prio, a.prio); c != 0 {
		return c
	}
	return cmp.Compare(b.seq, a.seq)
}

func (m *mode) build() {
	slices.SortStableFunc(m.rules, better)
	m.byName = [2]map[qname][]*rule{{}, {}}
	for _, r := range m.rules {
		if r.name != nil {
			continue
		}
		for k := range m.generic {
			if r.kinds&(1<<k) != 0 {
				m.generic[k] = append(m.generic[k], r)
			}
		}
	}
	for _, r := range m.rules {
		if r.name == nil {
			continue
		}
		i, k := 0, xmltree.Element
		if r.kinds == 1<<xmltree.Attribute {
			i, k = 1, xmltree.Attribute
		}
		if _, ok := m.byName[i][*r.name]; !ok {
			var list []*rule
			for _, o := range m.rules {
				if o.name != nil && *o.name == *r.name && o.kinds == r.kinds || o.name == nil && o.kinds&(1<<k) != 0 {
					list = append(list, o)
				}
			}
			m.byName[i][*r.name] = list
		}
	}
}

// candidates are the rules that may match n, best first.
func (m *mode) candidates(n *xmltree.Node) []*rule {
	switch n.Kind {
	case xmltree.Element, xmltree.Attribute:
		i := 0
		if n.Kind == xmltree.Attribute {
			i = 1
		}
		if list, ok := m.byName[i][qname{n.Space, n.Local}]; ok {
			return list
		}
	}
	return m.generic[n.Kind]
}

// target finds what the pattern src can match from its last step;
// anything it does not understand can match anything.
func target(src string, n *xmltree.Node) (uint8, *qname) {
	s := strings.TrimSpace(src)
	if s == "/" {
		return 1 << xmltree.Document, nil
	}
	depth := 0
	var quote byte
	last := -1
	pred := -1
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == '[' || ch == '(':
			if ch == '[' && depth == 0 && pred < 0 {
				pred = i
			}
			depth++
		case ch == ']' || ch == ')':
			depth--
		case ch == '/' && depth == 0:
			last = i
			pred = -1
		case ch == '|' && depth == 0:
			return allKinds, nil
		}
	}
	step := s[last+1:]
	if pred >= 0 {
		step = s[last+1 : pred]
	}
	step = strings.TrimSpace(step)
	attrAxis := false
	switch {
	case strings.HasPrefix(step, "@"):
		attrAxis, step = true, strings.TrimSpace(step[1:])
	case strings.HasPrefix(step, "attribute::"):
		attrAxis, step = true, strings.TrimSpace(step[len("attribute::"):])
	case strings.HasPrefix(step, "child::"):
		step = strings.TrimSpace(step[len("child::"):])
	case strings.Contains(step, "::"):
		return allKinds, nil
	}
	kind := xmltree.Element
	if attrAxis {
		kind = xmltree.Attribute
	}
	switch {
	case step == "*" || strings.HasSuffix(step, ":*"):
		return 1 << kind, nil
	case step == "text()" && !attrAxis:
		return 1 << xmltree.Text, nil
	case step == "comment()" && !attrAxis:
		return 1 << xmltree.Comment, nil
	case strings.HasPrefix(step, "processing-instruction(") && !attrAxis:
		return 1 << xmltree.ProcInst, nil
	case step == "node()" && attrAxis:
		return 1 << xmltree.Attribute, nil
	case step == "node()":
		return 1<<xmltree.Element | 1<<xmltree.Text | 1<<xmltree.Comment | 1<<xmltree.ProcInst, nil
	}
	prefix, local, ok := strings.Cut(step, ":")
	if !ok {
		local, prefix = prefix, ""
	}
	if !isNCName(local) || ok && !isNCName(prefix) {
		return allKinds, nil
	}
	uri := ""
	if prefix != "" {
		u, found := n.LookupPrefix(prefix)
		if !found {
			return allKinds, nil
		}
		uri = u
	}
	return 1 << kind, &qname{uri, local}
}
