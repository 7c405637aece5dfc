package xslt

import (
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// htmlElem is what libxml2's HTML serializer knows of an element.
type htmlElem struct {
	empty    bool // no content, no end tag
	saveEnd  bool // written without an end tag when empty
	isInline bool
}

// htmlElems is libxml2 2.9's HTML 4.0 element table, reduced to what its
// serializer reads (empty, saveEndTag, isinline).
var htmlElems = map[string]htmlElem{}

func init() {
	// name/empty/saveEnd/inline
	const table = "a/0/0/1 abbr/0/0/1 acronym/0/0/1 address/0/0/0 applet/0/0/1 area/1/1/0 b/0/0/1 base/1/1/0 " +
		"basefont/1/1/1 bdo/0/0/1 big/0/0/1 blockquote/0/0/0 body/0/0/0 br/1/1/1 button/0/0/1 caption/0/0/0 " +
		"center/0/0/0 cite/0/0/1 code/0/0/1 col/1/1/0 colgroup/0/0/0 dd/0/0/0 del/0/0/1 dfn/0/0/1 dir/0/0/0 " +
		"div/0/0/0 dl/0/0/0 dt/0/0/0 em/0/0/1 embed/0/0/1 fieldset/0/0/0 font/0/0/1 form/0/0/0 frame/1/1/0 " +
		"frameset/0/0/0 h1/0/0/0 h2/0/0/0 h3/0/0/0 h4/0/0/0 h5/0/0/0 h6/0/0/0 head/0/0/0 hr/1/1/0 html/0/0/0 " +
		"i/0/0/1 iframe/0/0/1 img/1/1/1 input/1/1/1 ins/0/0/1 isindex/1/1/0 kbd/0/0/1 label/0/0/1 legend/0/0/0 " +
		"li/0/1/0 link/1/1/0 map/0/0/1 menu/0/0/0 meta/1/1/0 noframes/0/0/0 noscript/0/0/0 object/0/0/1 ol/0/0/0 " +
		"optgroup/0/0/0 option/0/0/0 p/0/0/0 param/1/1/0 pre/0/0/0 q/0/0/1 s/0/0/1 samp/0/0/1 script/0/0/1 " +
		"select/0/0/1 small/0/0/1 span/0/0/1 strike/0/0/1 strong/0/0/1 style/0/0/0 sub/0/0/1 sup/0/0/1 " +
		"table/0/0/0 tbody/0/0/0 td/0/0/0 textarea/0/0/1 tfoot/0/0/0 th/0/0/0 thead/0/0/0 title/0/0/0 tr/0/0/0 " +
		"tt/0/0/1 u/0/0/1 ul/0/0/0 var/0/0/1"
	for _, f := range strings.Fields(table) {
		p := strings.Split(f, "/")
		htmlElems[p[0]] = htmlElem{empty: p[1] == "1", saveEnd: p[2] == "1", isInline: p[3] == "1"}
	}
}

func htmlInfo(n *xmltree.Node) (htmlElem, bool) {
	if n.Kind != xmltree.Element || n.Space != "" {
		return htmlElem{}, false
	}
	e, ok := htmlElems[strings.ToLower(n.Local)]
	return e, ok
}

var htmlBoolean = map[string]bool{
	"checked": true, "compact": true, "declare": true, "defer": true, "disabled": true, "ismap": true,
	"multiple": true, "nohref": true, "noresize": true, "noshade": true, "nowrap": true, "readonly": true,
	"selected": true,
}

// htmlDoc writes the html output method as xsltproc does: a doctype only
// if asked for, the charset meta added to head, libxml2's HTML line breaks
// (not indentation), void elements, boolean attributes, URI attributes
// escaped, raw script and style.
func (s *serializer) htmlDoc(root *xmltree.Node) {
	if len(root.Children) == 0 {
		return
	}
	o := s.out
	htmlMeta(root)
	if o.doctypePublic != "" || o.doctypeSystem != "" {
		// With method="html" the doctype names html; chosen by default,
		// it names the root element as written.
		name := "html"
		if o.method == "" {
			for _, c := range root.Children {
				if c.Kind == xmltree.Element {
					name = c.Name()
					break
				}
			}
		}
		s.buf.WriteString("<!DOCTYPE " + name)
		if o.doctypePublic != "" {
			s.buf.WriteString(` PUBLIC "` + o.doctypePublic + `"`)
			if o.doctypeSystem != "" {
				s.buf.WriteString(` "` + o.doctypeSystem + `"`)
			}
		} else {
			s.buf.WriteString(` SYSTEM "` + o.doctypeSystem + `"`)
		}
		s.buf.WriteString(">\n")
	}
	for _, c := range root.Children {
		s.htmlNode(c, false)
	}
	s.buf.WriteByte('\n')
}

// htmlMeta adds <meta http-equiv="Content-Type" content="text/html;
// charset=UTF-8"> at the start of html/head, or fixes the one there.
func htmlMeta(root *xmltree.Node) {
	var html, head *xmltree.Node
	for _, c := range root.Children {
		if c.Kind == xmltree.Element && strings.EqualFold(c.Local, "html") {
			html = c
			break
		}
		if c.Kind == xmltree.Element && strings.EqualFold(c.Local, "head") {
			head = c
			break
		}
	}
	if html != nil {
		for _, c := range html.Children {
			if c.Kind == xmltree.Element && strings.EqualFold(c.Local, "head") {
				head = c
				break
			}
		}
	}
	if head == nil {
		return
	}
	const content = "text/html; charset=UTF-8"
	for _, c := range head.Children {
		if c.Kind != xmltree.Element || !strings.EqualFold(c.Local, "meta") {
			continue
		}
		var http bool
		var ct *xmltree.Node
		for _, a := range c.Attrs {
			switch {
			case strings.EqualFold(a.Local, "http-equiv") && strings.EqualFold(a.Data, "Content-Type"):
				http = true
			case strings.EqualFold(a.Local, "content"):
				ct = a
			}
		}
		if http && ct != nil {
			if !strings.Contains(strings.ToUpper(ct.Data), "UTF-8") {
				ct.Data = content
			}
			return
		}
	}
	meta := &xmltree.Node{Kind: xmltree.Element, Local: "meta", Parent: head}
	meta.Attrs = []*xmltree.Node{
		{Kind: xmltree.Attribute, Local: "http-equiv", Data: "Content-Type", Parent: meta},
		{Kind: xmltree.Attribute, Local: "content", Data: content, Parent: meta},
	}
	head.Children = append([]*xmltree.Node{meta}, head.Children...)
}

func nextSibling(n *xmltree.Node) *xmltree.Node {
	p := n.Parent
	if p == nil {
		return nil
	}
	for i, c := range p.Children {
		if c == n && i+1 < len(p.Children) {
			return p.Children[i+1]
		}
	}
	return nil
}

// htmlNewlineAfter reports whether libxml2 breaks the line after element
// n (with info).
func (s *serializer) htmlNewlineAfter(n *xmltree.Node, info htmlElem, known bool) bool {
	if !s.indent || !known || info.isInline {
		return false
	}
	next := nextSibling(n)
	p := n.Parent
	return next != nil && next.Kind != xmltree.Text && p != nil && p.Kind == xmltree.Element && !strings.HasPrefix(p.Name(), "p")
}

func (s *serializer) htmlNode(n *xmltree.Node, inRaw bool) {
	switch n.Kind {
	case xmltree.Text:
		if s.raw[n] || inRaw {
			s.buf.WriteString(n.Data)
		} else {
			s.htmlEscape(n.Data, false)
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
		info, known := htmlInfo(n)
		s.buf.WriteString("<" + n.Name())
		for _, d := range n.Decls {
			s.buf.WriteString(" xmlns")
			if d.Prefix != "" {
				s.buf.WriteString(":" + d.Prefix)
			}
			s.buf.WriteString("=")
			quoted(s.buf, d.URI)
		}
		for _, a := range n.Attrs {
			s.htmlAttr(n, a)
		}
		switch {
		case known && info.empty:
			s.buf.WriteString(">")
		case len(n.Children) == 0:
			lower := strings.ToLower(n.Local)
			if known && info.saveEnd && lower != "html" && lower != "body" {
				s.buf.WriteString(">")
			} else {
				s.buf.WriteString("></" + n.Name() + ">")
			}
		default:
			s.buf.WriteString(">")
			first, last := n.Children[0], n.Children[len(n.Children)-1]
			block := s.indent && known && !info.isInline && len(n.Children) > 1 && !strings.HasPrefix(n.Name(), "p")
			if block && first.Kind != xmltree.Text {
				s.buf.WriteByte('\n')
			}
			raw := n.Space == "" && (strings.EqualFold(n.Local, "script") || strings.EqualFold(n.Local, "style"))
			for _, c := range n.Children {
				s.htmlNode(c, raw)
			}
			if block && last.Kind != xmltree.Text {
				s.buf.WriteByte('\n')
			}
			s.buf.WriteString("</" + n.Name() + ">")
		}
		if s.htmlNewlineAfter(n, info, known) {
			s.buf.WriteByte('\n')
		}
	}
}

// htmlEscape escapes text (or an attribute value) as libxml2's
// xmlEncodeEntitiesReentrant does for HTML: &, < and >, and not an & before
// { in attributes; other characters as they are.
func (s *serializer) htmlEscape(t string, attr bool) {
	s.buf.WriteString(htmlEscaped(t, attr))
}

func htmlEscaped(t string, attr bool) string {
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		switch c := t[i]; c {
		case '&':
			if attr && i+1 < len(t) && t[i+1] == '{' {
				b.WriteByte('&')
			} else {
				b.WriteString("&amp;")
			}
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\r':
			b.WriteString("&#13;")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (s *serializer) htmlAttr(el, a *xmltree.Node) {
	s.buf.WriteByte(' ')
	s.buf.WriteString(a.Name())
	if htmlBoolean[strings.ToLower(a.Local)] {
		return
	}
	v := htmlEscaped(a.Data, true)
	s.buf.WriteByte('=')
	name := strings.ToLower(a.Local)
	if a.Space == "" && el.Space == "" && (name == "href" || name == "action" || name == "src" || name == "name" && strings.EqualFold(el.Local, "a")) {
		v = uriEscape(strings.TrimLeft(v, " \t\r\n"))
	}
	quoted(s.buf, v)
}

// uriEscape is libxml2's xmlURIEscapeStr with the reserved characters
// "@/:=?;#%&,+<>" kept.
func uriEscape(v string) string {
	const keep = "@/:=?;#%&,+<>-_.!~*'()"
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(keep, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// quoted writes v in double quotes, or single ones if it has a double
// quote and no single one (libxml2's xmlBufWriteQuotedString).
func quoted(buf interface{ WriteString(string) (int, error) }, v string) {
	switch {
	case !strings.Contains(v, `"`):
		buf.WriteString(`"` + v + `"`)
	case !strings.Contains(v, "'"):
		buf.WriteString("'" + v + "'")
	default:
		buf.WriteString(`"` + strings.ReplaceAll(v, `"`, "&quot;") + `"`)
	}
}
