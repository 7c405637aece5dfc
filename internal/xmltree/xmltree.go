// Package xmltree parses XML from outside (partners' messages, stylesheets,
// schemas) into a read-only tree, safely: no DTD is accepted, so there are
// no external entities and no entity expansion, and the input's size, depth
// and node count are bounded. The XSLT processor and the XSD validator both
// read this tree.
package xmltree

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the kind of a node, as in the XPath 1.0 data model.
type Kind uint8

const (
	Document Kind = iota
	Element
	Attribute
	Text
	Comment
	ProcInst
)

func (k Kind) String() string {
	switch k {
	case Document:
		return "document"
	case Element:
		return "element"
	case Attribute:
		return "attribute"
	case Text:
		return "text"
	case Comment:
		return "comment"
	case ProcInst:
		return "processing-instruction"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// XMLNamespace is the namespace bound to the prefix "xml".
const XMLNamespace = "http://www.w3.org/XML/1998/namespace"

// NS is one namespace declaration: xmlns:Prefix="URI" (Prefix "" for the
// default namespace; URI "" undeclares it).
type NS struct {
	Prefix, URI string
}

// Node is one node of a parsed document. Nodes are never changed after
// Parse returns, so a tree may be read by many goroutines.
type Node struct {
	Kind Kind
	// Space is the namespace URI, Local the local name (elements and
	// attributes), or the target of a processing instruction.
	Space, Local string
	// Prefix is the prefix the name was written with.
	Prefix string
	// Data is the text of a text node or comment, the value of an
	// attribute, or the content of a processing instruction.
	Data string
	// Attrs are an element's attributes, in document order, without the
	// namespace declarations (which are in Decls).
	Attrs []*Node
	// Decls are the namespace declarations written on an element.
	Decls    []NS
	Parent   *Node
	Children []*Node
	// Line is the line the node starts on (1-based).
	Line int
	// Order is the node's position in document order (the document is
	// 0; an element comes before its attributes, which come before its
	// children).
	Order int
}

// Limits bound what Parse accepts. Zero fields take the defaults.
type Limits struct {
	MaxBytes int64 // default 10 MiB
	MaxDepth int   // element nesting; default 256
	MaxNodes int   // elements, attributes, texts, comments and PIs; default 1,000,000
}

// DefaultLimits are the limits Parse applies to zero fields.
var DefaultLimits = Limits{MaxBytes: 10 << 20, MaxDepth: 256, MaxNodes: 1_000_000}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = DefaultLimits.MaxNodes
	}
	return l
}

// Error is a document that cannot be parsed or is refused.
type Error struct {
	Line   int
	Reason string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("XML line %d: %s", e.Line, e.Reason)
	}
	return "XML: " + e.Reason
}

// ErrTooLarge is wrapped by the error for an input over Limits.MaxBytes.
var ErrTooLarge = errors.New("XML document too large")

// Parse reads one XML document within the limits and returns its document
// node. It refuses DOCTYPE declarations, unknown entities, undeclared
// prefixes, more than one root element, text outside the root, and
// encodings other than UTF-8, US-ASCII and ISO-8859-1.
func Parse(data []byte, lim Limits) (*Node, error) {
	lim = lim.withDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return nil, &Error{Reason: fmt.Sprintf("%v: %d bytes, the limit is %d", ErrTooLarge, len(data), lim.MaxBytes)}
	}
	p := &parser{lim: lim, data: data, dec: xml.NewDecoder(bytes.NewReader(data))}
	p.dec.Strict = true
	p.dec.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		r, err := charsetReader(label, in)
		p.converted = r != in
		return r, err
	}
	return p.parse()
}

// ParseReader reads at most lim.MaxBytes (plus one, to tell a larger input)
// and parses it.
func ParseReader(r io.Reader, lim Limits) (*Node, error) {
	lim = lim.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, err
	}
	return Parse(data, lim)
}

type parser struct {
	lim  Limits
	data []byte
	// converted: the decoder reads data through a charset conversion, so
	// its offsets are not data's.
	converted bool
	dec       *xml.Decoder
	nodes     int
	order     int
	// scopes holds the in-scope declarations, innermost last.
	scopes [][]NS
}

func (p *parser) fail(format string, args ...any) error {
	line, _ := p.dec.InputPos()
	return &Error{Line: line, Reason: fmt.Sprintf(format, args...)}
}

func (p *parser) count() error {
	p.nodes++
	if p.nodes > p.lim.MaxNodes {
		return p.fail("more than %d nodes", p.lim.MaxNodes)
	}
	return nil
}

func (p *parser) lookup(prefix string) (string, bool) {
	switch prefix {
	case "xml":
		return XMLNamespace, true
	case "xmlns":
		return "", false
	}
	for i := len(p.scopes) - 1; i >= 0; i-- {
		for _, d := range p.scopes[i] {
			if d.Prefix == prefix {
				return d.URI, true
			}
		}
	}
	if prefix == "" {
		return "", true
	}
	return "", false
}

func (p *parser) parse() (*Node, error) {
	doc := &Node{Kind: Document, Line: 1}
	cur := doc
	depth := 0
	seenRoot := false
	for {
		line, _ := p.dec.InputPos()
		from := p.dec.InputOffset()
		tok, err := p.dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, &Error{Line: se.Line, Reason: se.Msg}
			}
			return nil, p.fail("%v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if cur == doc && seenRoot {
				return nil, p.fail("more than one root element (<%s>)", qname(t.Name))
			}
			depth++
			if depth > p.lim.MaxDepth {
				return nil, p.fail("elements nested more than %d deep", p.lim.MaxDepth)
			}
			var raw []byte
			if to := p.dec.InputOffset(); !p.converted && from >= 0 && to <= int64(len(p.data)) && from < to {
				raw = p.data[from:to]
			}
			el, err := p.start(t, raw, cur, line)
			if err != nil {
				return nil, err
			}
			cur.Children = append(cur.Children, el)
			cur = el
			seenRoot = true
		case xml.EndElement:
			if cur == doc || t.Name.Space != cur.Prefix || t.Name.Local != cur.Local {
				return nil, p.fail("element <%s> closed by </%s>", qname(xml.Name{Space: cur.Prefix, Local: cur.Local}), qname(t.Name))
			}
			p.scopes = p.scopes[:len(p.scopes)-1]
			cur = cur.Parent
			depth--
		case xml.CharData:
			if cur == doc {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, p.fail("text outside the root element")
				}
				continue
			}
			if n := len(cur.Children); n > 0 && cur.Children[n-1].Kind == Text {
				cur.Children[n-1].Data += string(t) // CDATA next to text
				continue
			}
			if err := p.count(); err != nil {
				return nil, err
			}
			p.order++
			cur.Children = append(cur.Children, &Node{Kind: Text, Data: string(t), Parent: cur, Line: line, Order: p.order})
		case xml.Comment:
			if err := p.count(); err != nil {
				return nil, err
			}
			p.order++
			cur.Children = append(cur.Children, &Node{Kind: Comment, Data: string(t), Parent: cur, Line: line, Order: p.order})
		case xml.ProcInst:
			if t.Target == "xml" {
				continue // the declaration; its encoding went to charsetReader
			}
			if err := p.count(); err != nil {
				return nil, err
			}
			p.order++
			cur.Children = append(cur.Children, &Node{Kind: ProcInst, Local: t.Target, Data: strings.TrimLeft(string(t.Inst), " \t\r\n"), Parent: cur, Line: line, Order: p.order})
		case xml.Directive:
			d := strings.TrimSpace(string(t))
			if strings.HasPrefix(d, "DOCTYPE") {
				return nil, p.fail("DOCTYPE declarations are not accepted (a DTD can declare external or expanding entities); send the document without one")
			}
			return nil, p.fail("the declaration <!%s> is not accepted", firstWord(d))
		}
	}
	if cur != doc {
		return nil, p.fail("document ends inside <%s>", qname(xml.Name{Space: cur.Prefix, Local: cur.Local}))
	}
	if !seenRoot {
		return nil, &Error{Reason: "no root element"}
	}
	return doc, nil
}

// start makes the element of a start tag; raw is the tag as written, when
// known, for attribute-value normalization.
func (p *parser) start(t xml.StartElement, raw []byte, parent *Node, line int) (*Node, error) {
	values := attrValues(t.Attr, raw)
	if err := p.count(); err != nil {
		return nil, err
	}
	p.order++
	el := &Node{Kind: Element, Prefix: t.Name.Space, Local: t.Name.Local, Parent: parent, Line: line, Order: p.order}
	for _, a := range t.Attr {
		var d NS
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			d = NS{URI: a.Value}
		case a.Name.Space == "xmlns":
			if a.Value == "" {
				return nil, p.fail("the prefix %q cannot be undeclared", a.Name.Local)
			}
			d = NS{Prefix: a.Name.Local, URI: a.Value}
		default:
			continue
		}
		for _, o := range el.Decls {
			if o.Prefix == d.Prefix {
				return nil, p.fail("the namespace prefix %q is declared twice on <%s>", d.Prefix, qname(t.Name))
			}
		}
		el.Decls = append(el.Decls, d)
	}
	p.scopes = append(p.scopes, el.Decls)
	uri, ok := p.lookup(el.Prefix)
	if !ok {
		return nil, p.fail("the prefix %q of <%s> is not declared", el.Prefix, qname(t.Name))
	}
	el.Space = uri
	for i, a := range t.Attr {
		if a.Name.Local == "xmlns" && a.Name.Space == "" || a.Name.Space == "xmlns" {
			continue
		}
		if err := p.count(); err != nil {
			return nil, err
		}
		space := ""
		if a.Name.Space != "" {
			if space, ok = p.lookup(a.Name.Space); !ok {
				return nil, p.fail("the prefix %q of the attribute %s is not declared", a.Name.Space, qname(a.Name))
			}
		}
		for _, b := range el.Attrs {
			if b.Space == space && b.Local == a.Name.Local {
				return nil, p.fail("the attribute %s appears twice on <%s>", qname(a.Name), qname(t.Name))
			}
		}
		p.order++
		el.Attrs = append(el.Attrs, &Node{Kind: Attribute, Space: space, Prefix: a.Name.Space, Local: a.Name.Local, Data: values[i], Parent: el, Line: line, Order: p.order})
	}
	return el, nil
}

// attrValues are the values of a start tag's attributes, normalized as XML
// 1.0 says (3.3.3): each tab, newline or carriage return written in the
// value becomes a space (a CR LF pair one space), while those written as
// character references stay. encoding/xml gives the values with the
// references already replaced, so a tag that holds "&#" is read again from
// raw, its text as written.
func attrValues(attrs []xml.Attr, raw []byte) []string {
	out := make([]string, len(attrs))
	if bytes.Contains(raw, []byte("&#")) {
		if vals, ok := rawAttrValues(raw); ok && len(vals) == len(attrs) {
			return vals
		}
	}
	for i, a := range attrs {
		out[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, a.Value)
	}
	return out
}

// rawAttrValues reads the attribute values of a well-formed start tag as
// written and normalizes them; ok is false if it cannot.
func rawAttrValues(tag []byte) ([]string, bool) {
	var out []string
	i := bytes.IndexAny(tag, " \t\r\n")
	if i < 0 {
		return nil, true
	}
	for {
		eq := bytes.IndexByte(tag[i:], '=')
		if eq < 0 {
			return out, true
		}
		i += eq + 1
		for i < len(tag) && (tag[i] == ' ' || tag[i] == '\t' || tag[i] == '\r' || tag[i] == '\n') {
			i++
		}
		if i >= len(tag) || (tag[i] != '"' && tag[i] != '\'') {
			return nil, false
		}
		end := bytes.IndexByte(tag[i+1:], tag[i])
		if end < 0 {
			return nil, false
		}
		v, ok := normalizeAttr(tag[i+1 : i+1+end])
		if !ok {
			return nil, false
		}
		out = append(out, v)
		i += end + 2
	}
}

func normalizeAttr(v []byte) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\r':
			if i+1 < len(v) && v[i+1] == '\n' {
				i++
			}
			b.WriteByte(' ')
		case '\t', '\n':
			b.WriteByte(' ')
		case '&':
			end := bytes.IndexByte(v[i:], ';')
			if end < 0 {
				return "", false
			}
			ref := string(v[i+1 : i+end])
			i += end
			switch {
			case strings.HasPrefix(ref, "#x"):
				n, err := strconv.ParseUint(ref[2:], 16, 32)
				if err != nil {
					return "", false
				}
				b.WriteRune(rune(n))
			case strings.HasPrefix(ref, "#"):
				n, err := strconv.ParseUint(ref[1:], 10, 32)
				if err != nil {
					return "", false
				}
				b.WriteRune(rune(n))
			default:
				r, ok := map[string]string{"lt": "<", "gt": ">", "amp": "&", "apos": "'", "quot": `"`}[ref]
				if !ok {
					return "", false
				}
				b.WriteString(r)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t\r\n["); i >= 0 {
		return s[:i]
	}
	return s
}

func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return in, nil
	case "iso-8859-1", "latin1", "latin-1", "iso_8859-1":
		return latin1Reader{in}, nil
	}
	return nil, fmt.Errorf("the encoding %q is not supported (send UTF-8, US-ASCII or ISO-8859-1)", label)
}

// latin1Reader decodes ISO-8859-1 (each byte is the code point) to UTF-8.
type latin1Reader struct{ r io.Reader }

func (l latin1Reader) Read(p []byte) (int, error) {
	// Each input byte takes at most 2 bytes of UTF-8.
	if len(p) < 2 {
		return 0, io.ErrShortBuffer
	}
	buf := make([]byte, len(p)/2)
	n, err := l.r.Read(buf)
	out := p[:0]
	for _, b := range buf[:n] {
		out = utf8.AppendRune(out, rune(b))
	}
	return len(out), err
}

// Name is the node's name as written: prefix:local, or local.
func (n *Node) Name() string {
	if n.Prefix == "" {
		return n.Local
	}
	return n.Prefix + ":" + n.Local
}

// Root is the document element of the tree n belongs to.
func (n *Node) Root() *Node {
	for n.Parent != nil {
		n = n.Parent
	}
	for _, c := range n.Children {
		if c.Kind == Element {
			return c
		}
	}
	return nil
}

// Attr is the value of the attribute with this namespace and local name.
func (n *Node) Attr(space, local string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Space == space && a.Local == local {
			return a.Data, true
		}
	}
	return "", false
}

// Elements are the element children of n.
func (n *Node) Elements() []*Node {
	var out []*Node
	for _, c := range n.Children {
		if c.Kind == Element {
			out = append(out, c)
		}
	}
	return out
}

// Text is the string value of n as XPath defines it: the concatenated text
// of an element's or document's descendants, or the node's own data.
func (n *Node) Text() string {
	switch n.Kind {
	case Element, Document:
		var b strings.Builder
		n.appendText(&b)
		return b.String()
	}
	return n.Data
}

func (n *Node) appendText(b *strings.Builder) {
	for _, c := range n.Children {
		switch c.Kind {
		case Text:
			b.WriteString(c.Data)
		case Element:
			c.appendText(b)
		}
	}
}

// LookupPrefix resolves a prefix in the scope of element n (the empty
// prefix gives the default namespace).
func (n *Node) LookupPrefix(prefix string) (string, bool) {
	if prefix == "xml" {
		return XMLNamespace, true
	}
	for e := n; e != nil; e = e.Parent {
		for _, d := range e.Decls {
			if d.Prefix == prefix {
				return d.URI, true
			}
		}
	}
	return "", prefix == ""
}

// InScope lists the namespaces in scope on element n, innermost declaration
// of each prefix, without undeclared defaults.
func (n *Node) InScope() []NS {
	var out []NS
	seen := map[string]bool{}
	for e := n; e != nil; e = e.Parent {
		for _, d := range e.Decls {
			if !seen[d.Prefix] {
				seen[d.Prefix] = true
				if d.URI != "" {
					out = append(out, d)
				}
			}
		}
	}
	return out
}

// Path locates n for an error message, as an XPath from the root:
// /Order/Lines/Line[2]/@qty. Positions are given where a sibling has the
// same name.
func (n *Node) Path() string {
	switch n.Kind {
	case Document:
		return "/"
	case Attribute:
		return n.Parent.Path() + "/@" + n.Name()
	}
	var parts []string
	for e := n; e != nil && e.Kind != Document; e = e.Parent {
		step := e.Name()
		switch e.Kind {
		case Text:
			step = "text()"
		case Comment:
			step = "comment()"
		case ProcInst:
			step = "processing-instruction()"
		}
		if e.Parent != nil {
			pos, same := 0, 0
			for _, s := range e.Parent.Children {
				if s.Kind == e.Kind && s.Space == e.Space && s.Local == e.Local {
					same++
					if s == e {
						pos = same
					}
				}
			}
			if same > 1 {
				step += "[" + strconv.Itoa(pos) + "]"
			}
		}
		parts = append(parts, step)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	return b.String()
}
