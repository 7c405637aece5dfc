package xslt

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/xmltree"
	"github.com/sluicehq/sluice/internal/xpath"
)

// coreFunctions is the XPath 1.0 core library, for function-available().
var coreFunctions = map[string]bool{
	"last": true, "position": true, "count": true, "id": true, "local-name": true,
	"namespace-uri": true, "name": true, "string": true, "concat": true, "starts-with": true,
	"contains": true, "substring-before": true, "substring-after": true, "substring": true,
	"string-length": true, "normalize-space": true, "translate": true, "boolean": true,
	"not": true, "true": true, "false": true, "lang": true, "number": true, "sum": true,
	"floor": true, "ceiling": true, "round": true,
}

// xsltFunctions are the functions XSLT adds and the EXSLT ones supported.
var xsltFunctions = map[qname]xpath.Func{
	{"", "key"}:                 fnKey,
	{"", "current"}:             fnCurrent,
	{"", "generate-id"}:         fnGenerateID,
	{"", "format-number"}:       fnFormatNumber,
	{"", "system-property"}:     fnSystemProperty,
	{"", "element-available"}:   fnElementAvailable,
	{"", "function-available"}:  fnFunctionAvailable,
	{"", "unparsed-entity-uri"}: fnUnparsedEntityURI,
	{exslNS, "node-set"}:        fnNodeSet,
	{exslNS, "object-type"}:     fnObjectType,
}

// functionNames are the names of xsltFunctions (a separate table, as
// function-available() consults it).
var functionNames = map[qname]bool{
	{"", "key"}: true, {"", "current"}: true, {"", "generate-id"}: true, {"", "format-number"}: true,
	{"", "system-property"}: true, {"", "element-available"}: true, {"", "function-available"}: true,
	{"", "unparsed-entity-uri"}: true, {exslNS, "node-set"}: true, {exslNS, "object-type"}: true,
}

func hasFunction(space, local string) bool {
	return functionNames[qname{space, local}]
}

// Function implements xpath.Env.
func (x *exec) Function(space, local string) (xpath.Func, bool) {
	if f, ok := xsltFunctions[qname{space, local}]; ok {
		return f, true
	}
	// A function compiled because function-available() guards it.
	q := qname{space, local}
	return func(*xpath.Context, []xpath.Value) (xpath.Value, error) {
		return nil, fmt.Errorf("the extension function %s is not supported", q)
	}, true
}

func execOf(c *xpath.Context) *exec {
	x, _ := c.Env.(*exec)
	return x
}

func nargs(name string, args []xpath.Value, lo, hi int) error {
	if len(args) < lo || len(args) > hi {
		return fmt.Errorf("%s() takes %d to %d arguments, not %d", name, lo, hi, len(args))
	}
	return nil
}

// splitQName splits a QName given as a string argument.
func splitQName(s string) (prefix, local string) {
	s = strings.TrimSpace(s)
	if p, l, ok := strings.Cut(s, ":"); ok {
		return p, l
	}
	return "", s
}

// resolveQName resolves a QName given as a string argument with the
// namespaces in scope where the calling expression was written. Without
// that scope (a pattern), the conventional prefixes xsl and exsl are
// known.
func (x *exec) resolveQName(s string) (qname, bool) {
	prefix, local := splitQName(s)
	if prefix == "" {
		return qname{"", local}, true
	}
	if x.scope != nil {
		uri, ok := x.scope.LookupPrefix(prefix)
		return qname{uri, local}, ok
	}
	switch prefix {
	case "xsl":
		return qname{xslNS, local}, true
	case "exsl":
		return qname{exslNS, local}, true
	}
	return qname{}, false
}

func fnKey(c *xpath.Context, args []xpath.Value) (xpath.Value, error) {
	if err := nargs("key", args, 2, 2); err != nil {
		return nil, err
	}
	x := execOf(c)
	name := xpath.String(args[0])
	q, err := x.keyName(name)
	if err != nil {
		return nil, err
	}
	root := c.Node
	for root.Parent != nil {
		root = root.Parent
	}
	idx, err := x.keyIndex(q, root)
	if err != nil {
		return nil, err
	}
	if ns, ok := args[1].(xpath.NodeSet); ok {
		var out xpath.NodeSet
		for _, n := range ns {
			out = append(out, idx[xpath.StringValue(n)]...)
		}
		return xpath.Sort(out), nil
	}
	return xpath.NodeSet(idx[stringOf(args[1])]), nil
}

func (x *exec) keyName(name string) (qname, error) {
	q, ok := x.resolveQName(name)
	if ok {
		if _, ok := x.ss.keys[q]; ok {
			return q, nil
		}
	}
	return qname{}, fmt.Errorf("key(): no xsl:key is named %q", name)
}

func (x *exec) keyIndex(q qname, root *xmltree.Node) (map[string][]*xmltree.Node, error) {
	if x.keys == nil {
		x.keys = map[qname]map[*xmltree.Node]map[string][]*xmltree.Node{}
	}
	byRoot := x.keys[q]
	if byRoot == nil {
		byRoot = map[*xmltree.Node]map[string][]*xmltree.Node{}
		x.keys[q] = byRoot
	}
	if idx, ok := byRoot[root]; ok {
		if idx == nil {
			return nil, fmt.Errorf("key %s is used while its index is built", q)
		}
		return idx, nil
	}
	byRoot[root] = nil
	idx := map[string][]*xmltree.Node{}
	defs := x.ss.keys[q]
	saved := x.save()
	defer x.restore(saved)
	x.frame = len(x.vars)
	var walk func(n *xmltree.Node) error
	visit := func(n *xmltree.Node) error {
		for _, d := range defs {
			ok, err := x.match(d.match, n)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			x.node, x.pos, x.size = n, 1, 1
			v, err := x.eval(d.use, d.line)
			if err != nil {
				return err
			}
			if ns, isNS := v.(xpath.NodeSet); isNS {
				for _, u := range ns {
					s := xpath.StringValue(u)
					idx[s] = appendOnce(idx[s], n)
				}
			} else {
				s := stringOf(v)
				idx[s] = appendOnce(idx[s], n)
			}
		}
		return nil
	}
	walk = func(n *xmltree.Node) error {
		if err := x.step(); err != nil {
			return err
		}
		if err := visit(n); err != nil {
			return err
		}
		for _, a := range n.Attrs {
			if err := visit(a); err != nil {
				return err
			}
		}
		for _, c := range n.Children {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	byRoot[root] = idx
	return idx, nil
}

func appendOnce(list []*xmltree.Node, n *xmltree.Node) []*xmltree.Node {
	if len(list) > 0 && list[len(list)-1] == n {
		return list
	}
	return append(list, n)
}

func fnCurrent(c *xpath.Context, args []xpath.Value) (xpath.Value, error) {
	if err := nargs("current", args, 0, 0); err != nil {
		return nil, err
	}
	return xpath.NodeSet{execOf(c).node}, nil
}

func fnGenerateID(c *xpath.Context, args []xpath.Value) (xpath.Value, error) {
	if err := nargs("generate-id", args, 0, 1); err != nil {
		return nil, err
	}
	n := c.Node
	if len(args) == 1 {
		ns, ok := args[0].(xpath.NodeSet)
		if !ok {
			return nil, fmt.Errorf("generate-id() takes a node-set")
		}
		if len(ns) == 0 {
			return "", nil
		}
		n = ns[0]
	}
	return "idn" + strconv.Itoa(n.Order), nil
}

func fnFormatNumber(c *xpath.Context, args []xpath.Value) (xpath.Value, error) {
	if err := nargs("format-number", args, 2, 3); err != nil {
		return nil, err
	}
	x := execOf(c)
	df := defaultDecimalFormat
	if len(args) == 3 {
		name := xpath.String(args[2])
		q, ok := x.resolveQName(name)
		d, found := x.ss.decFormats[q]
		if !ok || !found || q.local == "" {
			return nil, fmt.Errorf("format-number(): no xsl:decimal-format is named %q", name)
		}
		df = d
	} else if d, ok := x.ss.decFormats[qname{}]; ok {
		df = d
	}
	return formatNumber(xpath.Number(args[0]), xpath.String(args[1]), df, &x.ss.pictures)
}

func fnSystemProperty(c *xpath.Context, args []xpath.Value) (xpath.Value, error) {
	if err := nargs("system-property", args, 1, 1); err != nil {
		return nil, err
	}
	q, ok := execOf(c).resolveQName(xpath.String(args[0]))
	if !ok || q.space != xslNS {
		return "", nil
	}
	switch q.local {
	case "version":
		return "1.0", nil // a string, as xsltproc gives it
	case "vendor":
		return "Sluice", nil
	case "vendor-url":
		return "https://sluice.dev/", nil
	}
	return "", nil
}

// instructions are the XSLT elements xsltproc reports as available.
var instructions = map[string]bool{
	"apply-templates": true, "call-template": true, "apply-imports": true, "for-each": true,
	"value-of": true, "copy-of": true, "number": true, "choose": true, "if": true, "text": true,
	"copy": true, "variable": true, "message": true, "fallback": true, "processing-instruction": true,
	"comment": true, "element": true, "attribute": true, "param": true, "with-param": true,
	"sort": true, "when": true, "otherwise": true, "template": true, "stylesheet": true,
	"transform": true, "include": true, "import": true, "key": true, "output": true,
	"strip-space": true, "preserve-space": true, "attribute-set": true, "decimal-format": true,
	"namespace-alias": true,
}

func fnElementAvailable(c *xpath.Context, args []xpath.Value) (xpath.Value, error) {
	if err := nargs("element-available", args, 1, 1); err != nil {
		return nil, err
	}
	q, ok := execOf(c).resolveQName(xpath.String(args[0]))
	return ok && q.space == xslNS && instructions[q.local], nil
}

func fnFunctionAvailable(c *xpath.Context, args []xpath.Value) (xpath.Value, error) {
	if err := nargs("function-available", args, 1, 1); err != nil {
		return nil, err
	}
	q, ok := execOf(c).resolveQName(xpath.String(args[0]))
	if !ok {
		return false, nil
	}
	if q.space == "" {
		return coreFunctions[q.local] || hasFunction("", q.local), nil
	}
	return hasFunction(q.space, q.local), nil
}

func fnUnparsedEntityURI(c *xpath.Context, args []xpath.Value) (xpath.Value, error) {
	if err := nargs("unparsed-entity-uri", args, 1, 1); err != nil {
		return nil, err
	}
	return "", nil // documents have no DTD, so no unparsed entities
}

func fnNodeSet(c *xpath.Context, args []xpath.Value) (xpath.Value, error) {
	if err := nargs("exsl:node-set", args, 1, 1); err != nil {
		return nil, err
	}
	if ns, ok := args[0].(xpath.NodeSet); ok {
		return ns, nil
	}
	// A string, number or boolean becomes a text node.
	x := execOf(c)
	root := &xmltree.Node{Kind: xmltree.Document}
	t := &xmltree.Node{Kind: xmltree.Text, Data: xpath.String(args[0]), Parent: root}
	root.Children = []*xmltree.Node{t}
	x.number(root)
	return xpath.NodeSet{t}, nil
}

func fnObjectType(c *xpath.Context, args []xpath.Value) (xpath.Value, error) {
	if err := nargs("exsl:object-type", args, 1, 1); err != nil {
		return nil, err
	}
	switch v := args[0].(type) {
	case xpath.NodeSet:
		if len(v) == 1 && v[0].Kind == xmltree.Document && v[0].Parent == nil && v[0].Order >= 1<<40 {
			return "RTF", nil
		}
		return "node-set", nil
	case string:
		return "string", nil
	case float64:
		return "number", nil
	case bool:
		return "boolean", nil
	}
	return "external", nil
}
