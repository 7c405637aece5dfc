package xslt

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// serialize writes the result tree as xsltproc does.
func (x *exec) serialize(root *xmltree.Node) ([]byte, error) {
	o := &x.ss.out
	method := o.method
	if method == "" {
		method = "xml"
		for _, c := range root.Children {
			if c.Kind == xmltree.Element {
				if c.Space == "" && strings.EqualFold(c.Local, "html") {
					method = "html"
				}
				break
			}
			if c.Kind == xmltree.Text && !isBlank(c.Data) {
				break
			}
		}
	}
	var buf bytes.Buffer
	buf.Grow(int(x.ss.outHint.Load()))
	s := &serializer{buf: &buf, raw: x.raw, out: o}
	switch method {
	case "text":
		s.textOnly(root)
	case "html":
		s.html = true
		s.indent = !o.indentSet || o.indent
		s.htmlDoc(root)
	default:
		s.indent = o.indent
		// xsltproc ends lines after the doctype, top-level comments and
		// the document unless indent="no" is said.
		s.breaks = !o.indentSet || o.indent
		s.encoded = o.encoding != ""
		s.xmlDoc(root)
	}
	if buf.Len() > x.ss.opts.MaxOutput {
		return nil, fmt.Errorf("%w: the output is over %d bytes (Options.MaxOutput)", ErrLimit, x.ss.opts.MaxOutput)
	}
	x.ss.outHint.Store(int64(min(buf.Len()+buf.Len()/8, 1<<20)))
	return buf.Bytes(), nil
}

type serializer struct {
	buf     *bytes.Buffer
	raw     map[*xmltree.Node]bool
	out     *output
	indent  bool
	encoded bool // an encoding was named: non-ASCII is written as is in attributes too
	html    bool
	breaks  bool
}

func (s *serializer) textOnly(n *xmltree.Node) {
	for _, c := range n.Children {
		switch c.Kind {
		case xmltree.Text:
			s.buf.WriteString(c.Data)
		case xmltree.Element:
			s.textOnly(c)
		}
	}
}

func (s *serializer) xmlDoc(root *xmltree.Node) {
	if len(root.Children) == 0 {
		return
	}
	o := s.out
	if !o.omitDecl {
		s.buf.WriteString(`<?xml version="`)
		if o.version != "" {
			s.buf.WriteString(o.version)
		} else {
			s.buf.WriteString("1.0")
		}
		s.buf.WriteByte('"')
		if o.encoding != "" {
			s.buf.WriteString(` encoding="` + o.encoding + `"`)
		}
		switch o.standalone {
		case "yes":
			s.buf.WriteString(` standalone="yes"`)
		case "no":
			s.buf.WriteString(` standalone="no"`)
		}
		s.buf.WriteString("?>\n")
	}
	if o.doctypeSystem != "" || o.doctypePublic != "" {
		for _, c := range root.Children {
			if c.Kind == xmltree.Element {
				s.buf.WriteString("<!DOCTYPE ")
				s.buf.WriteString(c.Name())
				switch {
				case o.doctypePublic != "":
					s.buf.WriteString(` PUBLIC "` + o.doctypePublic + `" "` + o.doctypeSystem + `">`)
				default:
					s.buf.WriteString(` SYSTEM "` + o.doctypeSystem + `">`)
				}
				if s.breaks {
					s.buf.WriteByte('\n')
				}
				break
			}
		}
	}
	for i, c := range root.Children {
		s.node(c, 0, s.indent, true)
		if s.breaks && c.Kind == xmltree.Comment && i < len(root.Children)-1 {
			s.buf.WriteByte('\n')
		}
	}
	if s.breaks {
		s.buf.WriteByte('\n')
	}
}

func (s *serializer) writeIndent(level int) {
	if level > 0 {
		s.buf.WriteString(strings.Repeat("  ", min(level, 30)))
	}
}

// node writes n at nesting level; format is libxml2's: with it, each child
// of an element without text children starts on a line of its own.
func (s *serializer) node(n *xmltree.Node, level int, format, top bool) {
	switch n.Kind {
	case xmltree.Text:
		switch {
		case s.raw[n]:
			s.buf.WriteString(n.Data)
		case n.Parent != nil && n.Parent.Kind == xmltree.Element && s.out.cdata[qname{n.Parent.Space, n.Parent.Local}]:
			s.cdata(n.Data)
		default:
			s.escapeText(n.Data)
		}
		return
	case xmltree.Comment:
		if format && !top {
			s.writeIndent(level)
		}
		s.buf.WriteString("<!--")
		s.buf.WriteString(n.Data)
		s.buf.WriteString("-->")
		return
	case xmltree.ProcInst:
		if format && !top {
			s.writeIndent(level)
		}
		s.buf.WriteString("<?")
		s.buf.WriteString(n.Local)
		if n.Data != "" {
			s.buf.WriteByte(' ')
			s.buf.WriteString(n.Data)
		}
		s.buf.WriteString("?>")
		return
	case xmltree.Element:
	default:
		return
	}
	if format && !top {
		s.writeIndent(level)
	}
	s.buf.WriteByte('<')
	s.buf.WriteString(n.Name())
	s.attrs(n)
	if len(n.Children) == 0 {
		s.buf.WriteString("/>")
		return
	}
	s.buf.WriteByte('>')
	childFormat := format
	if format {
		for _, c := range n.Children {
			if c.Kind == xmltree.Text {
				childFormat = false
				break
			}
		}
	}
	if childFormat {
		s.buf.WriteByte('\n')
	}
	for _, c := range n.Children {
		s.node(c, level+1, childFormat, false)
		if childFormat {
			s.buf.WriteByte('\n')
		}
	}
	if childFormat {
		s.writeIndent(level)
	}
	s.buf.WriteString("</")
	s.buf.WriteString(n.Name())
	s.buf.WriteByte('>')
}

func (s *serializer) attrs(n *xmltree.Node) {
	for _, d := range n.Decls {
		if d.Prefix == "" {
			s.buf.WriteString(` xmlns="`)
		} else {
			s.buf.WriteString(` xmlns:`)
			s.buf.WriteString(d.Prefix)
			s.buf.WriteString(`="`)
		}
		s.escapeAttr(d.URI)
		s.buf.WriteByte('"')
	}
	for _, a := range n.Attrs {
		s.buf.WriteByte(' ')
		s.buf.WriteString(a.Name())
		s.buf.WriteString(`="`)
		s.escapeAttr(a.Data)
		s.buf.WriteByte('"')
	}
}

func (s *serializer) escapeText(t string) {
	last := 0
	for i := 0; i < len(t); i++ {
		var rep string
		switch t[i] {
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		case '&':
			rep = "&amp;"
		case '\r':
			rep = "&#13;"
		default:
			continue
		}
		s.buf.WriteString(t[last:i])
		s.buf.WriteString(rep)
		last = i + 1
	}
	s.buf.WriteString(t[last:])
}

func (s *serializer) escapeAttr(t string) {
	last := 0
	for i := 0; i < len(t); {
		c := t[i]
		var rep string
		size := 1
		switch {
		case c == '<':
			rep = "&lt;"
		case c == '>':
			rep = "&gt;"
		case c == '&':
			rep = "&amp;"
		case c == '"':
			rep = "&quot;"
		case c == '\n':
			rep = "&#10;"
		case c == '\r':
			rep = "&#13;"
		case c == '\t':
			rep = "&#9;"
		case c >= 0x80 && !s.encoded:
			r, n := utf8.DecodeRuneInString(t[i:])
			size = n
			rep = fmt.Sprintf("&#x%X;", r)
		default:
			i++
			continue
		}
		s.buf.WriteString(t[last:i])
		s.buf.WriteString(rep)
		i += size
		last = i
	}
	s.buf.WriteString(t[last:])
}

func (s *serializer) cdata(t string) {
	s.buf.WriteString("<![CDATA[")
	s.buf.WriteString(strings.ReplaceAll(t, "]]>", "]]]]><![CDATA[>"))
	s.buf.WriteString("]]>")
}
