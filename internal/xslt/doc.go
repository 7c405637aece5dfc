// Package xslt is an XSLT 1.0 processor in pure Go: partners' stylesheets
// transform their XML messages before Sluice routes them.
//
// [Compile] reads a stylesheet (and, through [Options.Resolve], the
// stylesheets it includes or imports) into a [Stylesheet] that many
// goroutines may use at once; [Stylesheet.Transform] applies it to a
// document parsed by [xmltree]. Expressions and patterns are XPath 1.0,
// compiled by [xpath].
//
// The output is serialized as libxml2's xsltproc does, byte for byte on the
// differential corpus in testdata/ (see xslt_test.go). What a stylesheet may
// not do is refused by Compile with the line and the construct: document()
// (stylesheets cannot read files or URLs), extension elements and functions
// other than exsl:node-set() and exsl:object-type(), and output encodings
// other than UTF-8. A transformation is bounded by [Options.MaxDepth] (nested
// templates and variables) and [Options.MaxOutput] (bytes built), so a looping
// or exploding stylesheet fails instead of hanging.
//
// disable-output-escaping is honoured on xsl:text and xsl:value-of when the
// text goes to the output (not into a variable), as xsltproc does.
package xslt
