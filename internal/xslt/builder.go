package xslt

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// builder builds a result tree: the output, or a result tree fragment.
type builder struct {
	x    *exec
	root *xmltree.Node
	cur  *xmltree.Node
	// strOnly keeps only the text written, at any depth (see
	// exec.stringContent); depth counts the elements ignored.
	strOnly bool
	depth   int
	// Text is gathered here and becomes a node when something else is
	// added.
	pending strings.Builder
	textRaw bool
	// hasText is set when a text node is open, even an empty one (see
	// emptyText).
	hasText bool
}

func (x *exec) newBuilder() *builder {
	root := &xmltree.Node{Kind: xmltree.Document}
	return &builder{x: x, root: root, cur: root}
}

func (b *builder) spend(n int) error {
	b.x.budget -= n
	if b.x.budget < 0 {
		return fmt.Errorf("%w: the output is over %d bytes (Options.MaxOutput)", ErrLimit, b.x.ss.opts.MaxOutput)
	}
	return nil
}

func (b *builder) flush() {
	if b.pending.Len() == 0 && !b.hasText {
		return
	}
	b.hasText = false
	n := b.x.newNode()
	*n = xmltree.Node{Kind: xmltree.Text, Data: b.pending.String(), Parent: b.cur}
	b.pending.Reset()
	b.cur.Children = append(b.cur.Children, n)
	if b.textRaw {
		if b.x.raw == nil {
			b.x.raw = map[*xmltree.Node]bool{}
		}
		b.x.raw[n] = true
	}
}

func (b *builder) finish() *xmltree.Node {
	b.flush()
	return b.root
}

// emptyText opens a text node without text: xsltproc's xsl:number writes
// one when it has no number, so its element is <e></e>, not <e/>.
func (b *builder) emptyText() {
	if !b.strOnly {
		b.hasText = true
	}
}

func (b *builder) text(s string, raw bool) error {
	if s == "" {
		return nil
	}
	if err := b.spend(len(s)); err != nil {
		return err
	}
	if b.strOnly {
		b.pending.WriteString(s)
		return nil
	}
	if b.pending.Len() > 0 && b.textRaw != raw {
		b.flush()
	}
	b.textRaw = raw
	b.pending.WriteString(s)
	return nil
}

func (b *builder) add(n *xmltree.Node) error {
	if b.strOnly {
		return nil
	}
	if err := b.spend(len(n.Local) + len(n.Data) + 8); err != nil {
		return err
	}
	b.flush()
	n.Parent = b.cur
	b.cur.Children = append(b.cur.Children, n)
	return nil
}

func (b *builder) comment(s string) error {
	return b.add(&xmltree.Node{Kind: xmltree.Comment, Data: s})
}

func (b *builder) pi(target, s string) error {
	return b.add(&xmltree.Node{Kind: xmltree.ProcInst, Local: target, Data: s})
}

func (b *builder) startElement(space, local, prefix string) error {
	if b.strOnly {
		b.depth++
		return nil
	}
	e := b.x.newNode()
	*e = xmltree.Node{Kind: xmltree.Element, Space: space, Local: local, Prefix: prefix}
	if err := b.add(e); err != nil {
		return err
	}
	b.cur = e
	return nil
}

func (b *builder) endElement() {
	if b.strOnly {
		b.depth--
		return
	}
	b.flush()
	b.cur = b.cur.Parent
}

// lookup finds the URI bound to prefix in the result at e.
func lookup(e *xmltree.Node, prefix string) (string, bool) {
	if prefix == "xml" {
		return xmltree.XMLNamespace, true
	}
	for ; e != nil && e.Kind == xmltree.Element; e = e.Parent {
		for _, d := range e.Decls {
			if d.Prefix == prefix {
				return d.URI, true
			}
		}
	}
	return "", prefix == ""
}

// lookupDeclared finds the declaration of prefix in scope at e in the
// result; unlike lookup, the default namespace is found only if declared
// (xmlns="" included), as libxml2's xmlSearchNs.
func lookupDeclared(e *xmltree.Node, prefix string) (string, bool) {
	if prefix == "xml" {
		return xmltree.XMLNamespace, true
	}
	for ; e != nil && e.Kind == xmltree.Element; e = e.Parent {
		for _, d := range e.Decls {
			if d.Prefix == prefix {
				return d.URI, true
			}
		}
	}
	return "", false
}

// declare adds a namespace declaration to the current element unless the
// same binding is declared in scope or the element already declares the
// prefix.
func (b *builder) declare(prefix, uri string) {
	if b.strOnly {
		return
	}
	e := b.cur
	if e.Kind != xmltree.Element || prefix == "xml" {
		return
	}
	for _, d := range e.Decls {
		if d.Prefix == prefix {
			return
		}
	}
	if got, ok := lookupDeclared(e.Parent, prefix); ok && got == uri {
		return
	}
	e.Decls = append(e.Decls, xmltree.NS{Prefix: prefix, URI: uri})
}

// fixElement declares the current element's namespace if it is not in
// scope with its prefix.
func (b *builder) fixElement() {
	if b.strOnly {
		return
	}
	e := b.cur
	if got, ok := lookup(e, e.Prefix); ok && got == e.Space {
		return
	}
	if e.Space == "" {
		if e.Prefix != "" {
			e.Prefix = ""
			if got, _ := lookup(e, ""); got == "" {
				return
			}
		}
		e.Decls = append(e.Decls, xmltree.NS{})
		return
	}
	for _, d := range e.Decls {
		if d.Prefix == e.Prefix {
			// The prefix is taken on this element: find another.
			e.Prefix = b.freePrefix(e, e.Prefix)
			break
		}
	}
	e.Decls = append(e.Decls, xmltree.NS{Prefix: e.Prefix, URI: e.Space})
}

func (b *builder) freePrefix(e *xmltree.Node, base string) string {
	if base == "" {
		base = "ns"
	}
	for i := 1; ; i++ {
		p := base + "_" + strconv.Itoa(i)
		if _, ok := lookup(e, p); !ok {
			return p
		}
	}
}

// attribute adds an attribute to the current element, replacing one of the
// same name; it is an error once the element has children.
func (b *builder) attribute(space, local, prefix, value string) error {
	if b.strOnly {
		return nil
	}
	e := b.cur
	if e.Kind != xmltree.Element {
		return nil // an attribute of the document or a fragment's root: ignored, as in xsltproc
	}
	if len(e.Children) > 0 || b.pending.Len() > 0 || b.hasText {
		return fmt.Errorf("cannot add the attribute %s to <%s> after its children", local, e.Name())
	}
	if err := b.spend(len(local) + len(value) + 4); err != nil {
		return err
	}
	if space == "" {
		prefix = ""
	} else if space == xmltree.XMLNamespace {
		prefix = "xml"
	} else {
		prefix = b.attrPrefix(e, prefix, space)
	}
	for _, a := range e.Attrs {
		if a.Space == space && a.Local == local {
			a.Data, a.Prefix = value, prefix
			return nil
		}
	}
	a := b.x.newNode()
	*a = xmltree.Node{Kind: xmltree.Attribute, Space: space, Local: local, Prefix: prefix, Data: value, Parent: e}
	if e.Attrs == nil {
		e.Attrs = make([]*xmltree.Node, 0, 4)
	}
	e.Attrs = append(e.Attrs, a)
	return nil
}

// attrPrefix finds or declares a prefix for an attribute in namespace
// space on element e, as libxslt's xsltGetSpecialNamespace: the prefix
// asked for (ns_1 if none) if e can bind it, or another bound to space,
// or prefix_N.
func (b *builder) attrPrefix(e *xmltree.Node, prefix, space string) string {
	if prefix == "" {
		prefix = "ns_1"
	}
	declare := func(p string) string {
		e.Decls = append(e.Decls, xmltree.NS{Prefix: p, URI: space})
		return p
	}
	byURI := func() (string, bool) {
		for n := e; n != nil && n.Kind == xmltree.Element; n = n.Parent {
			for _, d := range n.Decls {
				if d.URI == space && d.Prefix != "" {
					if got, _ := lookup(e, d.Prefix); got == space {
						return d.Prefix, true
					}
				}
			}
		}
		return "", false
	}
	for _, d := range e.Decls {
		if d.Prefix == prefix {
			if d.URI == space {
				return prefix
			}
			if p, ok := byURI(); ok {
				return p
			}
			return declare(b.freePrefix(e, prefix))
		}
	}
	p := e.Parent
	if p == nil || p.Kind != xmltree.Element {
		return declare(prefix)
	}
	if uri, ok := lookupDeclared(p, prefix); ok {
		if uri == space {
			return prefix
		}
		for _, a := range e.Attrs {
			if a.Prefix == prefix {
				if q, ok := byURI(); ok {
					return q
				}
				return declare(b.freePrefix(e, prefix))
			}
		}
	}
	return declare(prefix)
}

// copyAttribute copies attribute node n (xsl:copy, xsl:copy-of): unlike
// xsl:attribute, it is an error where there is no element, as in xsltproc.
func (b *builder) copyAttribute(n *xmltree.Node) error {
	if !b.strOnly && b.cur.Kind != xmltree.Element {
		return fmt.Errorf("cannot add the attribute node %s to a non-element node", n.Name())
	}
	return b.attribute(n.Space, n.Local, n.Prefix, n.Data)
}

// copyNode copies n (deeply) into the result. The top element copied
// takes all its in-scope namespaces, as xsltproc does.
func (b *builder) copyNode(n *xmltree.Node, top bool) error {
	switch n.Kind {
	case xmltree.Document:
		for _, c := range n.Children {
			if err := b.copyNode(c, true); err != nil {
				return err
			}
		}
		return nil
	case xmltree.Element:
		if err := b.startElement(n.Space, n.Local, n.Prefix); err != nil {
			return err
		}
		if top {
			for _, d := range inScope(n, true) {
				b.declare(d.Prefix, d.URI)
			}
		} else {
			for _, d := range n.Decls {
				if d.URI != "" {
					b.declare(d.Prefix, d.URI)
				}
			}
		}
		b.fixElement()
		for _, a := range n.Attrs {
			if err := b.attribute(a.Space, a.Local, a.Prefix, a.Data); err != nil {
				return err
			}
		}
		for _, c := range n.Children {
			if err := b.copyNode(c, false); err != nil {
				return err
			}
		}
		b.endElement()
		return nil
	case xmltree.Attribute:
		return b.copyAttribute(n)
	case xmltree.Text:
		raw := b.x.raw[n]
		return b.text(n.Data, raw)
	case xmltree.Comment:
		return b.comment(n.Data)
	case xmltree.ProcInst:
		return b.pi(n.Local, n.Data)
	}
	return nil
}

// inScope lists the namespaces in scope on element n, innermost first,
// without the xml namespace; an undeclared default (xmlns="") is listed
// only if withUndeclared.
func inScope(n *xmltree.Node, withUndeclared bool) []xmltree.NS {
	var out []xmltree.NS
	var seen []string
	for e := n; e != nil && e.Kind == xmltree.Element; e = e.Parent {
	next:
		for _, d := range e.Decls {
			for _, s := range seen {
				if s == d.Prefix {
					continue next
				}
			}
			seen = append(seen, d.Prefix)
			if d.URI != "" || withUndeclared && d.Prefix == "" {
				out = append(out, d)
			}
		}
	}
	return out
}
