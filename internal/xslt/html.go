package xslt

import (
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// htmlVoid are the HTML elements written without an end tag.
var htmlVoid = map[string]bool{
	"area": true, "base": true, "basefont": true, "br": true, "col": true, "frame": true,
	"hr": true, "img": true, "input": true, "isindex": true, "link": true, "meta": true, "param": true,
}

// htmlDoc writes the html output method: a best effort at libxml2's HTML
// serializer (doctype, void elements, raw script and style), without its
// indentation rules or entity names.
func (s *serializer) htmlDoc(root *xmltree.Node) {
	if len(root.Children) == 0 {
		return
	}
	o := s.out
	pub, sys := o.doctypePublic, o.doctypeSystem
	if pub == "" && sys == "" {
		pub, sys = "-//W3C//DTD HTML 4.0 Transitional//EN", "http://www.w3.org/TR/REC-html40/loose.dtd"
	}
	name := "html"
	for _, c := range root.Children {
		if c.Kind == xmltree.Element {
			name = c.Name()
			break
		}
	}
	s.buf.WriteString("<!DOCTYPE " + name)
	if pub != "" {
		s.buf.WriteString(` PUBLIC "` + pub + `"`)
		if sys != "" {
			s.buf.WriteString(` "` + sys + `"`)
		}
	} else {
		s.buf.WriteString(` SYSTEM "` + sys + `"`)
	}
	s.buf.WriteString(">\n")
	for _, c := range root.Children {
		s.htmlNode(c)
	}
	s.buf.WriteByte('\n')
}

func (s *serializer) htmlNode(n *xmltree.Node) {
	switch n.Kind {
	case xmltree.Text:
		p := n.Parent
		if s.raw[n] || p != nil && p.Space == "" && (strings.EqualFold(p.Local, "script") || strings.EqualFold(p.Local, "style")) {
			s.buf.WriteString(n.Data)
		} else {
			s.escapeText(n.Data)
		}
	case xmltree.Comment:
		s.buf.WriteString("<!--" + n.Data + "-->")
	case xmltree.ProcInst:
		s.buf.WriteString("<?" + n.Local)
		if n.Data != "" {
			s.buf.WriteString(" " + n.Data)
		}
		s.buf.WriteString(">")
	case xmltree.Element:
		if n.Space != "" {
			s.node(n, 0, false, true)
			return
		}
		s.buf.WriteString("<" + n.Local)
		s.encoded = true
		s.attrs(n)
		s.buf.WriteString(">")
		if htmlVoid[strings.ToLower(n.Local)] && len(n.Children) == 0 {
			return
		}
		for _, c := range n.Children {
			s.htmlNode(c)
		}
		s.buf.WriteString("</" + n.Local + ">")
	}
}
