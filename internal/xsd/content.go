package xsd

import (
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// binding is what a child element matched in its parent's content model.
type binding struct {
	elem *elemDecl
	wild *wildcard
}

// matcher walks a content model over an element's children. Content
// models obey Unique Particle Attribution, so each child element picks the
// one particle it can match from the FIRST sets without lookahead: the walk
// is deterministic and linear in the children, and occurrence bounds are
// counters, so maxOccurs="5000" costs nothing.
type matcher struct {
	kids  []*xmltree.Node // scratch shared by the nested calls
	binds []binding

	cur   []*xmltree.Node
	cb    []binding
	pos   int
	fail  bool
	expAt int
	exp   []*firstSet // what could have come at expAt
}

func (m *matcher) reset() {
	clear(m.kids[:cap(m.kids)])
	clear(m.binds[:cap(m.binds)])
	m.kids, m.binds, m.cur, m.cb, m.exp = m.kids[:0], m.binds[:0], nil, nil, m.exp[:0]
}

// run matches kids against p, filling binds; it returns -1 when they
// match, else the index of the unexpected child (len(kids) when one is
// missing at the end). m.expected() then says what could have come.
func (m *matcher) run(p *particle, kids []*xmltree.Node, binds []binding) int {
	m.cur, m.cb, m.pos, m.fail, m.expAt, m.exp = kids, binds, 0, false, 0, m.exp[:0]
	if p == nil {
		if len(kids) > 0 {
			return 0
		}
		return -1
	}
	if !m.particle(p) {
		return m.pos
	}
	if m.pos < len(kids) {
		return m.pos
	}
	return -1
}

func (m *matcher) note(f *firstSet) {
	if m.expAt != m.pos {
		m.expAt, m.exp = m.pos, m.exp[:0]
	}
	m.exp = append(m.exp, f)
}

func (m *matcher) next() (*xmltree.Node, bool) {
	if m.pos < len(m.cur) {
		return m.cur[m.pos], true
	}
	return nil, false
}

func (m *matcher) particle(p *particle) bool {
	count := 0
	for p.max < 0 || count < p.max {
		k, ok := m.next()
		if !ok || !p.first.has(k.Space, k.Local) {
			break
		}
		start := m.pos
		if !m.term(p) {
			return false
		}
		count++
		if m.pos == start {
			break
		}
	}
	if count < p.min && !p.termNull {
		m.note(p.first)
		return false
	}
	if p.max < 0 || count < p.max {
		m.note(p.first)
	}
	return true
}

func (m *matcher) term(p *particle) bool {
	switch {
	case p.elem != nil:
		d := p.elem
		if k := m.cur[m.pos]; len(d.substitutes) > 0 && (k.Local != d.name.local || k.Space != d.name.ns) {
			for _, s := range d.substitutes {
				if k.Local == s.name.local && k.Space == s.name.ns {
					d = s
					break
				}
			}
		}
		m.cb[m.pos] = binding{elem: d}
		m.pos++
		return true
	case p.wild != nil:
		m.cb[m.pos] = binding{wild: p.wild}
		m.pos++
		return true
	}
	g := p.group
	switch g.kind {
	case sequence:
		for _, q := range g.parts {
			if !m.particle(q) {
				return false
			}
		}
	case choice:
		k, _ := m.next()
		for _, q := range g.parts {
			if q.first.has(k.Space, k.Local) {
				return m.particle(q)
			}
		}
	case all:
		var used uint64
		var usedSlice []bool
		if len(g.parts) > 64 {
			usedSlice = make([]bool, len(g.parts))
		}
		isUsed := func(i int) bool {
			if usedSlice != nil {
				return usedSlice[i]
			}
			return used&(1<<i) != 0
		}
		for {
			k, ok := m.next()
			if !ok {
				break
			}
			found := -1
			for i, q := range g.parts {
				if !isUsed(i) && q.first.has(k.Space, k.Local) {
					found = i
					break
				}
			}
			if found < 0 {
				break
			}
			if usedSlice != nil {
				usedSlice[found] = true
			} else {
				used |= 1 << found
			}
			if !m.particle(g.parts[found]) {
				return false
			}
		}
		for i, q := range g.parts {
			if !isUsed(i) {
				m.note(q.first)
			}
		}
		for i, q := range g.parts {
			if !isUsed(i) && !q.nullable {
				return false
			}
		}
	}
	return true
}

// expected describes what could have come where the match stopped, and
// lists the element names.
func (m *matcher) expected() (string, []qname) {
	var names []string
	var qnames []qname
	seen := map[string]bool{}
	for _, f := range m.exp {
		for _, n := range f.names {
			qnames = append(qnames, n)
			if !seen[n.local] {
				seen[n.local] = true
				names = append(names, n.local)
			}
		}
		for _, w := range f.wilds {
			d := w.describe()
			if !seen[d] {
				seen[d] = true
				names = append(names, d)
			}
		}
	}
	switch len(names) {
	case 0:
		return "", qnames
	case 1:
		return names[0], qnames
	}
	return "one of: " + strings.Join(names, ", "), qnames
}
