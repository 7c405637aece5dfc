package xsd

import (
	"fmt"
	"slices"
	"strconv"
)

// Unique Particle Attribution (XSD 1.0 §3.8.6): in every content model,
// the next child element must select one particle without looking ahead.
// Validation relies on it (the matcher picks particles from FIRST sets),
// and libxml2 refuses schemas that break it, so Compile checks it with a
// Glushkov construction: each element or wildcard particle is a position,
// follow sets link positions, and no two positions in a FIRST or follow
// set may match the same name. Small occurrence bounds are expanded
// exactly; large ones are approximated as repeatable.

type upaPos struct {
	name qname
	wild *wildcard
	// src is the schema particle: copies made by expanding occurrence
	// bounds are the same particle, so they never conflict.
	src *particle
}

type upa struct {
	pos    []upaPos
	follow [][]int
	edges  int
	// approx treats every bound over 1 as "repeatable" instead of
	// expanding it.
	approx bool
	// final marks the positions the content can end after.
	final []bool
}

// maxUPAEdges bounds the follow sets, so a schema cannot make Compile
// quadratic in a large expanded model.
const maxUPAEdges = 4 << 20

var errTooComplex = fmt.Errorf("the content model is too large to check (over %d particles or %d transitions)", maxUPAPositions, maxUPAEdges)

// link adds the positions to to each position in from.
func (u *upa) link(from, to []int) error {
	u.edges += len(from) * len(to)
	if u.edges > maxUPAEdges {
		return errTooComplex
	}
	for _, x := range from {
		u.follow[x] = append(u.follow[x], to...)
	}
	return nil
}

// maxUPAPositions bounds the expansion of group references and counts.
const maxUPAPositions = 100000

// frag is a fragment of the Glushkov construction.
type frag struct {
	first, last []int
	nullable    bool
}

// then appends b after a in sequence.
func (u *upa) then(a, b frag) (frag, error) {
	if err := u.link(a.last, b.first); err != nil {
		return frag{}, err
	}
	out := frag{first: a.first, last: b.last, nullable: a.nullable && b.nullable}
	if a.nullable {
		out.first = append(append([]int(nil), a.first...), b.first...)
	}
	if b.nullable {
		out.last = append(append([]int(nil), a.last...), b.last...)
	}
	return out, nil
}

// maxExpand is the largest occurrence bound expanded exactly: x{2,3} is
// checked as x x (x)?, so a fixed count followed by the same element is
// deterministic, as it is for libxml2's counting automaton.
const maxExpand = 8

func (u *upa) walk(p *particle) (frag, error) {
	if p.max == 1 || p.max == 0 {
		f, err := u.term(p)
		if p.min == 0 {
			f.nullable = true
		}
		return f, err
	}
	if u.approx || p.min > maxExpand || p.max > maxExpand {
		// Approximate a large bound as "repeatable".
		f, err := u.term(p)
		if err != nil {
			return f, err
		}
		if err := u.link(f.last, f.first); err != nil {
			return f, err
		}
		if p.min == 0 {
			f.nullable = true
		}
		return f, nil
	}
	acc := frag{nullable: true}
	for range p.min {
		f, err := u.term(p)
		if err != nil {
			return f, err
		}
		if acc, err = u.then(acc, f); err != nil {
			return acc, err
		}
	}
	if p.max < 0 {
		f, err := u.term(p)
		if err != nil {
			return f, err
		}
		if err := u.link(f.last, f.first); err != nil {
			return f, err
		}
		f.nullable = true
		return u.then(acc, f)
	}
	// (x (x (x)?)?)? for the optional copies.
	var chain frag
	var prev []int
	for i := p.min; i < p.max; i++ {
		f, err := u.term(p)
		if err != nil {
			return f, err
		}
		if i == p.min {
			chain.first = f.first
		}
		if err := u.link(prev, f.first); err != nil {
			return f, err
		}
		chain.last = append(chain.last, f.last...)
		if f.nullable {
			prev = append(prev, f.last...)
		} else {
			prev = f.last
		}
	}
	chain.nullable = true
	return u.then(acc, chain)
}

// term builds one copy of a particle's term, with fresh positions.
func (u *upa) term(p *particle) (frag, error) {
	if p.elem != nil || p.wild != nil {
		if len(u.pos) >= maxUPAPositions {
			return frag{}, errTooComplex
		}
		i := len(u.pos)
		if p.elem != nil {
			u.pos = append(u.pos, upaPos{name: p.elem.name, src: p})
		} else {
			u.pos = append(u.pos, upaPos{wild: p.wild, src: p})
		}
		u.follow = append(u.follow, nil)
		f := frag{first: []int{i}, last: []int{i}}
		if p.elem != nil {
			// Substitution group members are the same particle.
			for _, m := range p.elem.substitutes {
				j := len(u.pos)
				u.pos = append(u.pos, upaPos{name: m.name, src: p})
				u.follow = append(u.follow, nil)
				f.first, f.last = append(f.first, j), append(f.last, j)
			}
		}
		return f, nil
	}
	g := p.group
	switch g.kind {
	case sequence:
		acc := frag{nullable: true}
		for _, q := range g.parts {
			f, err := u.walk(q)
			if err != nil {
				return f, err
			}
			if acc, err = u.then(acc, f); err != nil {
				return acc, err
			}
		}
		return acc, nil
	case choice:
		acc := frag{nullable: len(g.parts) == 0}
		for _, q := range g.parts {
			f, err := u.walk(q)
			if err != nil {
				return f, err
			}
			acc.first = append(acc.first, f.first...)
			acc.last = append(acc.last, f.last...)
			acc.nullable = acc.nullable || f.nullable
		}
		return acc, nil
	}
	acc := frag{nullable: true}
	var parts []frag
	for _, q := range g.parts {
		f, err := u.walk(q)
		if err != nil {
			return f, err
		}
		parts = append(parts, f)
		acc.first = append(acc.first, f.first...)
		acc.last = append(acc.last, f.last...)
		acc.nullable = acc.nullable && f.nullable
	}
	for i := range parts {
		for j := range parts {
			if i != j {
				if err := u.link(parts[i].last, parts[j].first); err != nil {
					return acc, err
				}
			}
		}
	}
	return acc, nil
}

func wildOverlap(a, b *wildcard) bool {
	switch {
	case a.any || b.any:
		return true
	case a.not != nil && b.not != nil:
		return true
	case a.not != nil:
		a, b = b, a
		fallthrough
	case b.not != nil:
		for _, n := range a.ns {
			if b.allows(n) {
				return true
			}
		}
		return false
	}
	for _, n := range a.ns {
		if b.allows(n) {
			return true
		}
	}
	return false
}

// conflict finds two positions in set, from different particles, that
// match a common name.
func (u *upa) conflict(set []int) (string, bool) {
	if len(set) < 2 {
		return "", false
	}
	names := make(map[qname]int, len(set))
	var wilds []upaPos
	for _, i := range set {
		p := u.pos[i]
		if p.wild != nil {
			dup := false
			for _, w := range wilds {
				if w.src == p.src {
					dup = true
					break
				}
			}
			if !dup {
				wilds = append(wilds, p)
			}
			continue
		}
		if j, ok := names[p.name]; ok && u.pos[j].src != p.src && !u.equivalent(i, j) {
			return "element " + strconv.Quote(p.name.local), true
		}
		names[p.name] = i
	}
	for k, w := range wilds {
		for n := range names {
			if w.wild.allows(n.ns) {
				return "element " + strconv.Quote(n.local) + " (also matched by a wildcard)", true
			}
		}
		for _, o := range wilds[k+1:] {
			if wildOverlap(w.wild, o.wild) {
				return "two wildcards", true
			}
		}
	}
	return "", false
}

// equivalent reports whether positions i and j (of one name) have the
// same future: the same follow set and finality. Matching either gives the
// same result, so libxml2, which merges such transitions, accepts a
// content model like (a | b | a), and so do we.
func (u *upa) equivalent(i, j int) bool {
	if u.final[i] != u.final[j] {
		return false
	}
	a, b := slices.Clone(u.follow[i]), slices.Clone(u.follow[j])
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// checkUPA returns what breaks Unique Particle Attribution in p, or "".
// A model too large to expand is checked with bounds approximated; one too
// large even so is not checked (the matcher stays linear regardless).
func checkUPA(p *particle) string {
	u := &upa{}
	f, err := u.walk(p)
	if err != nil {
		u = &upa{approx: true}
		if f, err = u.walk(p); err != nil {
			return ""
		}
	}
	u.final = make([]bool, len(u.pos))
	for _, x := range f.last {
		u.final[x] = true
	}
	if what, bad := u.conflict(f.first); bad {
		return what + " can match more than one particle at the start of the content"
	}
	for i, f := range u.follow {
		if what, bad := u.conflict(f); bad {
			return what + " can match more than one particle after " + u.describe(i)
		}
	}
	return ""
}

func (u *upa) describe(i int) string {
	if u.pos[i].wild != nil {
		return "a wildcard"
	}
	return "element " + strconv.Quote(u.pos[i].name.local)
}
