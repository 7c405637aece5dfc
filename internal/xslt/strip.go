package xslt

import (
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// stripSpace copies doc without the whitespace-only text nodes that
// xsl:strip-space removes (the parsed tree is shared, so it is not
// changed), numbering the copy in document order.
func (x *exec) stripSpace(doc *xmltree.Node) *xmltree.Node {
	order := 0
	var cp func(n, parent *xmltree.Node, preserve bool) *xmltree.Node
	cp = func(n, parent *xmltree.Node, preserve bool) *xmltree.Node {
		c := *n
		c.Parent = parent
		c.Order = order
		order++
		if n.Kind != xmltree.Element && n.Kind != xmltree.Document {
			return &c
		}
		if v, ok := n.Attr(xmltree.XMLNamespace, "space"); ok {
			preserve = v == "preserve"
		}
		strip := n.Kind == xmltree.Element && !preserve && x.ss.strips(n)
		c.Attrs = make([]*xmltree.Node, len(n.Attrs))
		for i, a := range n.Attrs {
			c.Attrs[i] = cp(a, &c, preserve)
		}
		c.Children = make([]*xmltree.Node, 0, len(n.Children))
		for _, ch := range n.Children {
			if strip && ch.Kind == xmltree.Text && isBlank(ch.Data) {
				continue
			}
			c.Children = append(c.Children, cp(ch, &c, preserve))
		}
		return &c
	}
	return cp(doc, nil, false)
}

// strips reports whether xsl:strip-space applies to element n: the best
// matching rule (precedence, then priority; the last of equals) decides.
func (s *Stylesheet) strips(n *xmltree.Node) bool {
	var best *spaceRule
	for i := range s.strip {
		r := &s.strip[i]
		if !(r.local == "*" && (r.space == "*" || r.space == n.Space) || r.local == n.Local && r.space == n.Space) {
			continue
		}
		if best == nil || r.prec > best.prec || r.prec == best.prec && r.prio >= best.prio {
			best = r
		}
	}
	return best != nil && best.strip
}

// isBlank reports whether s is only XML whitespace (space, tab, CR, LF; a
// no-break space is not).
func isBlank(s string) bool {
	return strings.Trim(s, " \t\r\n") == ""
}
