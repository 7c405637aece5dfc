// Package xpath implements XPath 1.0 (the W3C Recommendation of 16
// November 1999) and the patterns of XSLT 1.0 over the read-only trees of
// [xmltree].
//
// Compile an expression once with [Compile] and evaluate it with
// [Expr.Eval] from any number of goroutines; a [Context] names the context
// node, position and size, and an [Env] supplies variables and the
// functions beyond the core library (XSLT's key(), current(), …).
// [CompilePattern] compiles an XSLT match pattern, which [Pattern.Match]
// tests against a node; [Pattern.Alternatives] and
// [Pattern.DefaultPriority] give what template rules need.
//
// Everything of XPath 1.0 is supported, with these exceptions and
// choices:
//
//   - The namespace axis is refused at compile time ("the namespace axis
//     is not supported"): xmltree keeps declarations, not namespace nodes.
//   - id() finds elements by attributes named id (in no namespace) or
//     xml:id. Since xmltree refuses DTDs, no other attribute can be
//     declared an ID.
//   - Numbers are written as §4.2 says: the shortest decimal that reads
//     back as the same float64, never with an exponent (1e21 is
//     1000000000000000000000); number() and literals take no exponent.
//   - Strings are measured and indexed in Unicode code points.
//   - Names in the expression are resolved at compile time through
//     Options.Namespaces; an unprefixed name is in no namespace.
//
// Expressions longer than [MaxExprLen] bytes or nested deeper than
// [MaxDepth] levels are refused at compile time. Errors are a
// [*SyntaxError] (with the byte offset) from Compile and CompilePattern,
// and an [*EvalError] from Eval and Match.
package xpath

import (
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
//
// A variable's NodeSet must be in document order without duplicates (what
// Eval returns, or what Sort makes); it is used as it is, since a variable
// may be read many times. A function's NodeSet is put in order (it is
// checked, and sorted if it needs to be). Values of other Go types are
// errors, except int (a number), []*xmltree.Node and *xmltree.Node.
// Function names in no namespace that are core functions (count, id, …)
// never reach Env.
type Env interface {
	Variable(space, local string) (Value, bool)
	Function(space, local string) (Func, bool)
}

// Context is the context of an evaluation.
type Context struct {
	Node *xmltree.Node
	// Position and Size are the 1-based context position and size; zero
	// (not set) counts as 1.
	Position, Size int
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

// Expr is a compiled expression. It is immutable, so one Expr may be
// evaluated by many goroutines at once.
type Expr struct {
	src  string
	root expr
}

// Compile parses src. A syntax error is a *SyntaxError that gives the byte
// offset of the problem. Expressions longer than MaxExprLen or nested more
// than MaxDepth levels are refused.
func Compile(src string, opts Options) (*Expr, error) {
	p, err := newParser(src, opts)
	if err != nil {
		return nil, err
	}
	root, err := p.parseTop()
	if err != nil {
		return nil, err
	}
	return &Expr{src: src, root: root}, nil
}

// MustCompile is Compile that panics on error, for expressions written in
// the program.
func MustCompile(src string, opts Options) *Expr {
	e, err := Compile(src, opts)
	if err != nil {
		panic(err)
	}
	return e
}

// Eval evaluates the expression in the context c. The result is a
// NodeSet (in document order), string, float64 or bool. An error is an
// *EvalError: a value of the wrong type, an undefined variable or function,
// or an error returned by an Env function (wrapped).
//
// Functions from Env receive a Context that is only valid during the call:
// they must not keep it.
func (e *Expr) Eval(c *Context) (Value, error) {
	if c == nil {
		c = &Context{}
	}
	v, err := e.root.eval(c)
	if err != nil {
		return nil, &EvalError{Src: e.src, Err: err}
	}
	return v, nil
}

// String is the source of the expression.
func (e *Expr) String() string { return e.src }
