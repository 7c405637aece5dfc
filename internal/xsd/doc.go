// Package xsd validates XML documents against W3C XML Schema 1.0 schemas,
// for the subset partners' B2B schemas use: global and local declarations,
// named and anonymous types derived by extension and restriction,
// sequence, choice and all content models with occurrence bounds, model
// and attribute groups, wildcards, substitution groups and abstract
// elements, nillable elements and xsi:type, identity constraints
// (xs:unique, xs:key, xs:keyref), include and import through
// [Options.Resolve], simple types with facets, lists and unions, and the
// built-in types.
//
// [Compile] reads a schema once, checks it as libxml2 does (references,
// facets, Unique Particle Attribution, derivations), and refuses, with
// the line and the name of the construct, what the package does not
// implement rather than validate against a schema it only partly
// understands: xs:redefine, XSD 1.1 constructs (xs:override, xs:assert,
// xs:alternative, xs:openContent), xs:notation and xs:NOTATION, and
// regular expressions Go's RE2 cannot express (character class
// subtraction, most Unicode blocks, repetition counts over 1000).
//
// The resulting [Schema] is immutable: [Schema.Validate] may be called
// from many goroutines at once. It reports every violation it finds, in
// document order, each with the XPath location and line of the node at
// fault. After an error in an element's content model it reports no more
// content errors for that element (so one missing element does not make
// every later sibling "unexpected"), but still checks the later siblings
// against their declarations.
//
// Content models are matched by a deterministic walk over FIRST sets,
// which Unique Particle Attribution makes possible: linear in the number
// of children, with occurrence bounds as counters, so maxOccurs="5000"
// costs nothing.
//
// # Agreement with libxml2
//
// The package is tested differentially against libxml2 (xmllint): see
// testdata/ and differential_test.go. It follows libxml2 where XSD leaves
// room or where libxml2's reading is the one partners meet:
//
//   - decimals have at most 24 digits (XSD lets processors limit them to
//     no fewer than 18);
//   - an element's fixed value is compared as a string (" 2.1 " is not
//     "2.1"), an attribute's in the value space;
//   - ID uniqueness is checked for attributes, not for elements of type
//     xs:ID; IDREF targets are not checked;
//   - the built-in list types NMTOKENS, IDREFS and ENTITIES may be empty;
//   - no ENTITY value is valid (documents have no DTD to declare one);
//   - a namespace is imported once, whatever later imports' locations.
//
// It deliberately differs where libxml2 accepts what XSD forbids:
//
//   - a float or double exponent needs digits ("1e" is not a float);
//   - base64Binary refuses characters outside its alphabet (libxml2 skips
//     them);
//   - a content model such as b{1,3}, b, which breaks Unique Particle
//     Attribution, is refused at compile time (libxml2 accepts it and
//     matches it nondeterministically);
//   - a schema whose minLength exceeds its maxLength, or that weakens a
//     base type's whiteSpace, is refused.
//
// Violation.Line is the line an element's start tag begins on; libxml2
// reports the line the start tag ends on, which differs for start tags
// written over several lines.
package xsd
