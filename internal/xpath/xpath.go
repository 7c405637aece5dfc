// Package xpath implements XPath 1.0 (the W3C Recommendation of 16
// November 1999) and the patterns of XSLT 1.0 over the read-only trees of
// [xmltree].
//
// Compile an expression once with [Compile] and evaluate it with
// [Expr.Eval] from any number of goroutines; a [Context] names the context
// node, position and size, and an [Env] supplies variables and the
// functions beyond the core library (XSLT's key(), current(), …).
// [CompilePattern] compiles an XSLT match pattern.
package xpath

import (
	"errors"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// Value is one of: NodeSet, string, float64, bool.
type Value any

// NodeSet is a set of nodes in document order without duplicates.
type NodeSet []*xmltree.Node

// Func is a function supplied by the caller (XSLT's key(), current(),
// format-number(), generate-id(), …).
type Func func(c *Context, args []Value) (Value, error)

// Env supplies variables and functions beyond the XPath core library. May
// be nil.
type Env interface {
	Variable(space, local string) (Value, bool)
	Function(space, local string) (Func, bool)
}

// Context is the context of an evaluation.
type Context struct {
	Node           *xmltree.Node
	Position, Size int // 1-based position and context size
	Env            Env
}

// Options configure compilation.
type Options struct {
	// Namespaces resolves a prefix used in the expression (names,
	// variable refs, function names); nil = only unprefixed names.
	Namespaces func(prefix string) (uri string, ok bool)
	// HasFunction reports whether a non-core function exists, so unknown
	// functions are compile errors; nil = any non-core function is looked
	// up at evaluation time through Env.
	HasFunction func(space, local string) bool
}

var errNotImplemented = errors.New("xpath: not implemented yet")

// Expr is a compiled expression, safe for concurrent use.
type Expr struct {
	src string
}

// Compile parses src.
func Compile(src string, opts Options) (*Expr, error) {
	return nil, errNotImplemented
}

// MustCompile is Compile that panics on error.
func MustCompile(src string, opts Options) *Expr {
	e, err := Compile(src, opts)
	if err != nil {
		panic(err)
	}
	return e
}

// Eval evaluates the expression in the context c.
func (e *Expr) Eval(c *Context) (Value, error) { return nil, errNotImplemented }

// String is the source of the expression.
func (e *Expr) String() string { return e.src }

// String converts v as the XPath string() function does.
func String(v Value) string { return "" }

// Number converts v as the XPath number() function does.
func Number(v Value) float64 { return 0 }

// Boolean converts v as the XPath boolean() function does.
func Boolean(v Value) bool { return false }

// NumberToString formats f as XPath 1.0 §4.2 defines.
func NumberToString(f float64) string { return "" }

// StringValue is the string value of a node.
func StringValue(n *xmltree.Node) string { return n.Text() }

// Sort puts nodes in document order and removes duplicates.
func Sort(ns NodeSet) NodeSet { return ns }

// Pattern is a compiled XSLT 1.0 pattern, safe for concurrent use.
type Pattern struct {
	src string
}

// CompilePattern parses an XSLT 1.0 pattern.
func CompilePattern(src string, opts Options) (*Pattern, error) {
	return nil, errNotImplemented
}

// Alternatives splits a union pattern into its alternatives.
func (p *Pattern) Alternatives() []*Pattern { return []*Pattern{p} }

// DefaultPriority is the default priority of XSLT 1.0 §5.5.
func (p *Pattern) DefaultPriority() float64 { return 0.5 }

// Match reports whether n matches the pattern.
func (p *Pattern) Match(n *xmltree.Node, env Env) (bool, error) {
	return false, errNotImplemented
}

// String is the source of the pattern.
func (p *Pattern) String() string { return p.src }
