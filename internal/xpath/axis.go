package xpath

import (
	"sort"

	"github.com/sluicehq/sluice/internal/xmltree"
)

type axis uint8

const (
	axisChild axis = iota
	axisDescendant
	axisDescendantOrSelf
	axisParent
	axisAncestor
	axisAncestorOrSelf
	axisFollowingSibling
	axisPrecedingSibling
	axisFollowing
	axisPreceding
	axisAttribute
	axisSelf
)

// reverse reports whether the axis is a reverse axis (§2.4): its proximity
// positions count in reverse document order.
func (a axis) reverse() bool {
	switch a {
	case axisParent, axisAncestor, axisAncestorOrSelf, axisPrecedingSibling, axisPreceding:
		return true
	}
	return false
}

// walkAxis calls f for each node on the axis from n, in the axis' order,
// until f returns false. It reports whether it went to the end.
func walkAxis(a axis, n *xmltree.Node, f func(*xmltree.Node) bool) bool {
	switch a {
	case axisChild:
		for _, c := range n.Children {
			if !f(c) {
				return false
			}
		}
	case axisDescendant:
		return walkDescendants(n, f)
	case axisDescendantOrSelf:
		if !f(n) {
			return false
		}
		return walkDescendants(n, f)
	case axisParent:
		if n.Parent != nil {
			return f(n.Parent)
		}
	case axisAncestor:
		for p := n.Parent; p != nil; p = p.Parent {
			if !f(p) {
				return false
			}
		}
	case axisAncestorOrSelf:
		for p := n; p != nil; p = p.Parent {
			if !f(p) {
				return false
			}
		}
	case axisFollowingSibling:
		if n.Kind == xmltree.Attribute || n.Parent == nil {
			return true
		}
		sibs := n.Parent.Children
		for _, s := range sibs[indexIn(sibs, n)+1:] {
			if !f(s) {
				return false
			}
		}
	case axisPrecedingSibling:
		if n.Kind == xmltree.Attribute || n.Parent == nil {
			return true
		}
		sibs := n.Parent.Children
		for i := indexIn(sibs, n) - 1; i >= 0; i-- {
			if !f(sibs[i]) {
				return false
			}
		}
	case axisFollowing:
		x := n
		if n.Kind == xmltree.Attribute {
			// The children of the attribute's element come after it
			// in document order and are not its descendants.
			if n.Parent == nil {
				return true
			}
			x = n.Parent
			if !walkDescendants(x, f) {
				return false
			}
		}
		for ; x.Parent != nil; x = x.Parent {
			sibs := x.Parent.Children
			for _, s := range sibs[indexIn(sibs, x)+1:] {
				if !f(s) || !walkDescendants(s, f) {
					return false
				}
			}
		}
	case axisPreceding:
		x := n
		if n.Kind == xmltree.Attribute {
			if n.Parent == nil {
				return true
			}
			x = n.Parent
		}
		for ; x.Parent != nil; x = x.Parent {
			sibs := x.Parent.Children
			for i := indexIn(sibs, x) - 1; i >= 0; i-- {
				if !walkDescendantsReverse(sibs[i], f) || !f(sibs[i]) {
					return false
				}
			}
		}
	case axisAttribute:
		for _, at := range n.Attrs {
			if !f(at) {
				return false
			}
		}
	case axisSelf:
		return f(n)
	}
	return true
}

func walkDescendants(n *xmltree.Node, f func(*xmltree.Node) bool) bool {
	for _, c := range n.Children {
		if !f(c) {
			return false
		}
		if len(c.Children) > 0 && !walkDescendants(c, f) {
			return false
		}
	}
	return true
}

// walkDescendantsReverse visits n's descendants in reverse document order.
func walkDescendantsReverse(n *xmltree.Node, f func(*xmltree.Node) bool) bool {
	for i := len(n.Children) - 1; i >= 0; i-- {
		c := n.Children[i]
		if len(c.Children) > 0 && !walkDescendantsReverse(c, f) {
			return false
		}
		if !f(c) {
			return false
		}
	}
	return true
}

// indexIn is n's index among its siblings, found by its document order.
func indexIn(sibs []*xmltree.Node, n *xmltree.Node) int {
	i := sort.Search(len(sibs), func(i int) bool { return sibs[i].Order >= n.Order })
	if i < len(sibs) && sibs[i] == n {
		return i
	}
	for i, s := range sibs { // a tree whose Order is not numbered
		if s == n {
			return i
		}
	}
	return len(sibs)
}
