package xpath

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"weak"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// String converts v as the XPath string() function does: the string value
// of a node-set's first node (in document order), "NaN", "Infinity",
// integers without a decimal point, "true" and "false".
func String(v Value) string {
	switch x := v.(type) {
	case string:
		return x
	case NodeSet:
		if len(x) == 0 {
			return ""
		}
		return StringValue(x[0])
	case float64:
		return NumberToString(x)
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return ""
}

// Number converts v as the XPath number() function does; a string that is
// not an XPath number (optional whitespace, an optional minus, digits with
// an optional decimal point, optional whitespace) is NaN.
func Number(v Value) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		return parseNumber(x)
	case NodeSet:
		return parseNumber(String(x))
	case bool:
		if x {
			return 1
		}
		return 0
	}
	return math.NaN()
}

// Boolean converts v as the XPath boolean() function does.
func Boolean(v Value) bool {
	switch x := v.(type) {
	case bool:
		return x
	case NodeSet:
		return len(x) > 0
	case string:
		return x != ""
	case float64:
		return x != 0 && !math.IsNaN(x)
	}
	return false
}

// NumberToString formats f as XPath 1.0 §4.2 defines: NaN, Infinity,
// -Infinity, 0 for both zeros, an integer without a decimal point, and
// otherwise the shortest decimal that reads back as f, never with an
// exponent.
func NumberToString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	case f == math.Trunc(f) && math.Abs(f) < 1e15:
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// parseNumber reads a string as the number() function does.
func parseNumber(s string) float64 {
	s = strings.Trim(s, " \t\r\n")
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	if s == "" {
		return math.NaN()
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return math.NaN()
		}
	}
	if digits == 0 {
		return math.NaN()
	}
	f := parseDecimal(s)
	if neg {
		f = -f
	}
	return f
}

// parseDecimal reads digits with an optional decimal point, already
// checked.
func parseDecimal(s string) float64 {
	if len(s) < 16 && !strings.Contains(s, ".") {
		var n int64
		for i := 0; i < len(s); i++ {
			n = n*10 + int64(s[i]-'0')
		}
		return float64(n)
	}
	f, _ := strconv.ParseFloat(s, 64) // ±Inf or 0 when out of range
	return f
}

// StringValue is the string value of a node (§5): the text of an element's
// or a document's text descendants, or the node's own data.
func StringValue(n *xmltree.Node) string {
	switch n.Kind {
	case xmltree.Element, xmltree.Document:
		switch len(n.Children) {
		case 0:
			return ""
		case 1:
			if c := n.Children[0]; c.Kind == xmltree.Text {
				return c.Data
			}
		}
		return n.Text()
	}
	return n.Data
}

// Sort puts nodes in document order and removes duplicates. Nodes of
// different trees are ordered by the order in which Sort (or an
// evaluation) first met their trees, consistently for the life of the
// process. Sort does not modify ns; it returns ns itself when it is in
// order already.
func Sort(ns NodeSet) NodeSet {
	if len(ns) < 2 {
		return ns
	}
	if !sameTree(ns) {
		own := slices.Clone(ns)
		return sortOwned(own)
	}
	for i := 1; i < len(ns); i++ {
		if ns[i].Order <= ns[i-1].Order {
			return sortSameTree(slices.Clone(ns))
		}
	}
	return ns
}

// sortOwned sorts and deduplicates ns, which the caller owns, in place.
func sortOwned(ns NodeSet) NodeSet {
	if len(ns) < 2 {
		return ns
	}
	if sameTree(ns) {
		for i := 1; i < len(ns); i++ {
			if ns[i].Order <= ns[i-1].Order {
				return sortSameTree(ns)
			}
		}
		return ns
	}
	type keyed struct {
		rank  uint64
		order int
		n     *xmltree.Node
	}
	keys := make([]keyed, len(ns))
	var lastParent, lastRoot *xmltree.Node
	for i, n := range ns {
		var r *xmltree.Node
		if n.Parent != nil && n.Parent == lastParent {
			r = lastRoot
		} else {
			r = rootOf(n)
			lastParent, lastRoot = n.Parent, r
		}
		keys[i] = keyed{treeRank(r), n.Order, n}
	}
	slices.SortStableFunc(keys, func(a, b keyed) int {
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		return cmp.Compare(a.order, b.order)
	})
	out := ns[:0]
	for i, k := range keys {
		if i > 0 && k.n == keys[i-1].n {
			continue
		}
		out = append(out, k.n)
	}
	return out
}

// sortSameTree sorts nodes of one tree by document order, in place, and
// removes duplicates.
func sortSameTree(ns NodeSet) NodeSet {
	slices.SortStableFunc(ns, func(a, b *xmltree.Node) int { return cmp.Compare(a.Order, b.Order) })
	out := ns[:1]
	for _, n := range ns[1:] {
		if n != out[len(out)-1] {
			out = append(out, n)
		}
	}
	return out
}

// sameTree reports whether all of ns belong to one tree.
func sameTree(ns NodeSet) bool {
	if len(ns) < 2 {
		return true
	}
	root := rootOf(ns[0])
	lastParent := ns[0].Parent
	for _, n := range ns[1:] {
		if n.Parent != nil && n.Parent == lastParent {
			continue
		}
		if rootOf(n) != root {
			return false
		}
		lastParent = n.Parent
	}
	return true
}

// treeRanks numbers trees (by their root nodes) in the order they are
// first compared, holding them weakly so a tree can still be collected.
var treeRanks struct {
	sync.Mutex
	m    map[weak.Pointer[xmltree.Node]]uint64
	next uint64
}

func treeRank(root *xmltree.Node) uint64 {
	wp := weak.Make(root)
	treeRanks.Lock()
	defer treeRanks.Unlock()
	if r, ok := treeRanks.m[wp]; ok {
		return r
	}
	if treeRanks.m == nil {
		treeRanks.m = map[weak.Pointer[xmltree.Node]]uint64{}
	}
	treeRanks.next++
	treeRanks.m[wp] = treeRanks.next
	runtime.AddCleanup(root, func(wp weak.Pointer[xmltree.Node]) {
		treeRanks.Lock()
		delete(treeRanks.m, wp)
		treeRanks.Unlock()
	}, wp)
	return treeRanks.next
}
