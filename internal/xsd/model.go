package xsd

import (
	"strconv"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// qname is an expanded name.
type qname struct{ ns, local string }

func (q qname) String() string {
	if q.ns == "" {
		return q.local
	}
	return "{" + q.ns + "}" + q.local
}

type elemDecl struct {
	name     qname
	st       *simpleType  // exactly one of st and ct is set
	ct       *complexType //
	nillable bool
	abstract bool
	def      *string
	fixed    *string
	fixedVal value
	global   bool
	line     int
	idcs     []*idc
	// substHead is the head of the element's substitution group;
	// substitutes are the elements that may appear in its place.
	substHead   *elemDecl
	substitutes []*elemDecl
	block       string
}

type attrDecl struct {
	name     qname
	typ      *simpleType
	def      *string
	fixed    *string
	fixedVal value
}

type attrUse struct {
	decl     *attrDecl
	required bool
	// fixed overrides the declaration's, for an xs:attribute ref with its
	// own fixed value.
	fixed    *string
	fixedVal value
}

type contentKind uint8

const (
	ctEmpty contentKind = iota
	ctSimple
	ctElementOnly
	ctMixed
)

type derivation uint8

const (
	derNone derivation = iota
	derExtension
	derRestriction
)

type complexType struct {
	name       qname
	base       *complexType
	baseSimple *simpleType
	derivation derivation
	kind       contentKind
	particle   *particle // nil: no element children
	simple     *simpleType
	attrs      []*attrUse
	attrIndex  map[qname]*attrUse // when there are many
	anyAttr    *wildcard
	abstract   bool
	line       int
	// localElems finds declarations for children after a content model
	// error, so their own content is still checked.
	localElems map[qname]*elemDecl
	ready      bool
	doc        *schemaDoc
	node       *xmltree.Node
	block      string
	final      string
}

func (t *complexType) displayName() string {
	if t.name.local != "" {
		if t.name.ns == XSDNamespace {
			return "xs:" + t.name.local
		}
		return strconv.Quote(t.name.local)
	}
	return "anonymous complex type"
}

type processContents uint8

const (
	pcStrict processContents = iota
	pcLax
	pcSkip
)

// wildcard is xs:any or xs:anyAttribute.
type wildcard struct {
	any     bool
	not     []string // ##other: these namespaces are excluded
	ns      []string // otherwise, the namespaces allowed ("" for ##local)
	process processContents
}

func (w *wildcard) allows(ns string) bool {
	if w.any {
		return true
	}
	if w.not != nil {
		for _, n := range w.not {
			if n == ns {
				return false
			}
		}
		return true
	}
	for _, n := range w.ns {
		if n == ns {
			return true
		}
	}
	return false
}

func (w *wildcard) describe() string {
	switch {
	case w.any:
		return "any element"
	case w.not != nil:
		return "an element from another namespace"
	}
	s := "an element from "
	for i, n := range w.ns {
		if i > 0 {
			s += " or "
		}
		if n == "" {
			s += "no namespace"
		} else {
			s += strconv.Quote(n)
		}
	}
	return s
}

type compositor uint8

const (
	sequence compositor = iota
	choice
	all
)

// particle is a term (element, wildcard or model group) with occurrence
// bounds; max < 0 is unbounded.
type particle struct {
	min, max int
	elem     *elemDecl
	wild     *wildcard
	group    *modelGroup
	// first is what the term can start with; nullable whether the
	// particle can match nothing.
	first    *firstSet
	nullable bool
	termNull bool
}

type modelGroup struct {
	kind     compositor
	parts    []*particle
	first    *firstSet
	nullable bool
	state    uint8 // 0 new, 1 computing, 2 done
	line     int
}

// firstSet is the set of element names (and wildcards) a term can begin
// with; content models satisfy Unique Particle Attribution, so the next
// child element picks the one particle it can match.
type firstSet struct {
	names []qname
	index map[qname]struct{}
	wilds []*wildcard
}

func (f *firstSet) add(o *firstSet) {
	for _, n := range o.names {
		f.addName(n)
	}
	f.wilds = append(f.wilds, o.wilds...)
}

func (f *firstSet) addName(n qname) {
	for _, m := range f.names {
		if m == n {
			return
		}
	}
	f.names = append(f.names, n)
}

func (f *firstSet) seal() {
	if len(f.names) > 8 {
		f.index = make(map[qname]struct{}, len(f.names))
		for _, n := range f.names {
			f.index[n] = struct{}{}
		}
	}
}

func (f *firstSet) has(ns, local string) bool {
	if f.index != nil {
		if _, ok := f.index[qname{ns, local}]; ok {
			return true
		}
	} else {
		for _, n := range f.names {
			if n.local == local && n.ns == ns {
				return true
			}
		}
	}
	for _, w := range f.wilds {
		if w.allows(ns) {
			return true
		}
	}
	return false
}

// computeFirst fills first and nullable for a particle tree.
func (p *particle) computeFirst() {
	switch {
	case p.elem != nil:
		p.first = &firstSet{names: []qname{p.elem.name}}
		for _, m := range p.elem.substitutes {
			p.first.addName(m.name)
		}
		p.first.seal()
		p.termNull = false
	case p.wild != nil:
		p.first = &firstSet{wilds: []*wildcard{p.wild}}
		p.termNull = false
	default:
		g := p.group
		g.computeFirst()
		p.first = g.first
		p.termNull = g.nullable
	}
	p.nullable = p.min == 0 || p.termNull
}

func (g *modelGroup) computeFirst() {
	if g.state != 0 {
		return // group cycles are refused at compile; 1 cannot recur
	}
	g.state = 1
	g.first = &firstSet{}
	for _, p := range g.parts {
		p.computeFirst()
	}
	switch g.kind {
	case sequence:
		g.nullable = true
		for _, p := range g.parts {
			g.first.add(p.first)
			if !p.nullable {
				g.nullable = false
				break
			}
		}
		for _, p := range g.parts {
			if !p.nullable {
				g.nullable = false
			}
		}
	case choice:
		g.nullable = len(g.parts) == 0
		for _, p := range g.parts {
			g.first.add(p.first)
			if p.nullable {
				g.nullable = true
			}
		}
	case all:
		g.nullable = true
		for _, p := range g.parts {
			g.first.add(p.first)
			if !p.nullable {
				g.nullable = false
			}
		}
	}
	g.first.seal()
	g.state = 2
}
