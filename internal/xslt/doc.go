// Package xslt is an XSLT 1.0 processor in pure Go: partners' stylesheets
// transform their XML messages before Sluice routes them.
//
// [Compile] reads a stylesheet (and, through [Options.Resolve], the
// stylesheets it includes or imports) into a [Stylesheet] that many
// goroutines may use at once; [Stylesheet.Transform] applies it to a
// document parsed by [xmltree]. Expressions and patterns are XPath 1.0,
// compiled by [xpath].
//
// # Compatibility
//
// The reference is libxslt's xsltproc: the output is serialized as it
// writes it (the XML declaration, empty elements as <a/>, its escaping of
// text and attributes, its line breaks with indent="yes", its html output
// method), and the differential corpus in testdata/ must give the same
// bytes through both (see corpus_test.go). Where xsltproc departs from the
// Recommendation, this package follows xsltproc: template conflicts go to
// the last matching rule; xsl:sort compares text by code points and
// ignores case-order and lang; attribute sets merge as libxslt 1.1.35
// merges them; xsl:number and format-number() round and format as libxslt
// does; system-property('xsl:version') is the string "1.0"; numbers
// written by xsl:value-of and attribute value templates take libxml2's
// form (15 significant digits, an exponent outside [1e-5, 1e9]).
//
// # What is refused
//
// Compile refuses, with the line and the construct: document() (stylesheets
// cannot read files or URLs), extension elements (unless they have an
// xsl:fallback) and extension functions other than exsl:node-set() and
// exsl:object-type() (one that the stylesheet tests with
// function-available() is compiled, and fails only if called), output
// encodings other than UTF-8, xsl:number
// letter-value="traditional", a local variable that shadows another of its
// template, and anything that is not XSLT 1.0 outside forwards-compatible
// mode.
//
// # Limits
//
// A transformation is bounded by [Options.MaxDepth] (nested templates,
// applies and variables) and [Options.MaxOutput] (bytes built, output and
// variables; it also bounds the instructions executed), so a looping or
// exploding stylesheet fails with [ErrLimit] instead of hanging. Errors
// say the stylesheet line and the template.
//
// disable-output-escaping is honoured on xsl:text and xsl:value-of, also
// through a variable copied to the output, as xsltproc does.
package xslt
