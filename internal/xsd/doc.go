// Package xsd validates XML documents against W3C XML Schema 1.0 schemas,
// for the subset partners' B2B schemas use: declarations and types (named,
// anonymous, derived by extension and restriction), sequence, choice and all
// content models with occurrence bounds, model and attribute groups,
// wildcards, substitution groups and abstract elements, nillable elements
// and xsi:type, identity constraints
// (xs:unique, xs:key, xs:keyref), include and import through
// [Options.Resolve], simple types with facets, lists and unions, and the
// built-in types.
//
// [Compile] reads a schema once and refuses, with the line and the name of
// the construct, what the package does not implement (xs:redefine, XSD
// 1.1 constructs, notations, regular expressions Go's RE2 cannot express), rather than validate against a schema it only
// partly understands. The resulting
// [Schema] is immutable: [Schema.Validate] may be called from many goroutines
// at once, and reports every violation it finds, in document order, each with
// the XPath location and line of the node at fault.
//
// The package is tested differentially against libxml2 (xmllint): see
// testdata/ and the tests in differential_test.go.
package xsd
