package xsd

import (
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/xmltree"
)

// XSDNamespace is the namespace of XML Schema's own vocabulary and built-in
// types; XSINamespace that of xsi:type, xsi:nil and the location hints.
const (
	XSDNamespace = "http://www.w3.org/2001/XMLSchema"
	XSINamespace = "http://www.w3.org/2001/XMLSchema-instance"
)

type variety uint8

const (
	atomic variety = iota
	list
	union
)

// simpleType is a simple type definition: a built-in, or one derivation
// step (restriction, list or union) from another simple type.
type simpleType struct {
	name    qname // zero for an anonymous type
	base    *simpleType
	variety variety
	prim    primitive
	// builtin is set on the built-in types: their lexical checks are in
	// lex, and their range in facets.
	builtin bool
	lex     func(string) bool
	ws      wsMode
	item    *simpleType   // list
	members []*simpleType // union
	facets  *facets       // this step's facets, or nil
	id      idKind
	line    int
	final   string
}

type idKind uint8

const (
	notID idKind = iota
	isID
	isIDREF
)

// facets are the constraining facets one restriction step gives.
type facets struct {
	patterns    []*regexp.Regexp // OR'ed; steps are AND'ed
	patternSrc  []string
	enums       []value
	enumSrc     []string
	enumIndex   map[string]struct{} // by value key, for long code lists
	length      int                 // -1 when absent, as the others
	minLength   int
	maxLength   int
	minInc      *value
	maxInc      *value
	minExc      *value
	maxExc      *value
	totalDigits int
	fracDigits  int
}

func newFacets() *facets {
	return &facets{length: -1, minLength: -1, maxLength: -1, totalDigits: -1, fracDigits: -1}
}

// nsContext resolves QName prefixes in values.
type nsContext interface {
	LookupPrefix(prefix string) (string, bool)
}

// displayName is how messages name a type: xs:positiveInteger, "Qty", or
// an anonymous type by what it derives from.
func (t *simpleType) displayName() string {
	switch {
	case t.name.ns == XSDNamespace:
		return "xs:" + t.name.local
	case t.name.local != "":
		return strconv.Quote(t.name.local)
	case t.variety == list:
		return "list of " + t.item.displayName()
	case t.variety == union:
		return "union type"
	case t.base != nil:
		return "restriction of " + t.base.displayName()
	}
	return "simple type"
}

// normalize applies the type's whiteSpace facet.
func (t *simpleType) normalize(s string) string { return normalizeSpace(s, t.ws) }

// validate checks a raw lexical value, whitespace-normalizing it first,
// leaving its value in v; it returns what is wrong (starting with the
// quoted value), or "".
func (t *simpleType) validate(raw string, ns nsContext, v *value) string {
	return t.check(t.normalize(raw), ns, v)
}

// check validates a value already normalized for t.
func (t *simpleType) check(s string, ns nsContext, v *value) string {
	switch {
	case t.builtin:
		if !parseBuiltin(t, s, ns, v) {
			return strconv.Quote(s) + " is not a valid " + t.displayName()
		}
		if t.facets != nil {
			if r := t.facets.check(v, s, t); r != "" {
				return strconv.Quote(s) + " is not a valid " + t.displayName()
			}
		}
		return ""
	case t.variety == list:
		n := 0
		var item value
		for f := range strings.FieldsSeq(s) {
			// Items are collapsed already; strings.Fields splits on the
			// four XML space characters among others, all absent here.
			if r := t.item.check(f, ns, &item); r != "" {
				return r
			}
			n++
		}
		if t.base != nil && t.base.variety == list {
			if r := t.base.check(s, ns, v); r != "" {
				return r
			}
		}
		*v = value{prim: pString, s: s, n: n}
	case t.variety == union:
		if t.base != nil && t.base.variety == union {
			if r := t.base.check(s, ns, v); r != "" {
				return r
			}
		} else {
			ok := false
			for _, m := range t.members {
				if m.check(m.normalize(s), ns, v) == "" {
					ok = true
					break
				}
			}
			if !ok {
				return strconv.Quote(s) + " is not a valid value of the " + t.displayName() + " (no member type accepts it)"
			}
		}
	default:
		if r := t.base.check(s, ns, v); r != "" {
			return r
		}
	}
	if t.facets != nil {
		if r := t.facets.check(v, s, t); r != "" {
			return strconv.Quote(s) + " is not valid for " + t.displayName() + ": " + r
		}
	}
	return ""
}

// check applies one step's facets; it returns what is wrong, or "".
func (f *facets) check(v *value, s string, t *simpleType) string {
	if f.length >= 0 || f.minLength >= 0 || f.maxLength >= 0 {
		n := v.n
		if t.variety == atomic && v.prim != pHexBinary && v.prim != pBase64Binary {
			n = utf8.RuneCountInString(s)
		}
		if v.prim != pQName {
			unit := "characters"
			switch {
			case t.variety == list:
				unit = "items"
			case v.prim == pHexBinary || v.prim == pBase64Binary:
				unit = "octets"
			}
			if f.length >= 0 && n != f.length {
				return "the length must be " + strconv.Itoa(f.length) + " " + unit + ", not " + strconv.Itoa(n)
			}
			if f.minLength >= 0 && n < f.minLength {
				return "the length must be at least " + strconv.Itoa(f.minLength) + " " + unit + ", not " + strconv.Itoa(n)
			}
			if f.maxLength >= 0 && n > f.maxLength {
				return "the length must be at most " + strconv.Itoa(f.maxLength) + " " + unit + ", not " + strconv.Itoa(n)
			}
		}
	}
	if len(f.patterns) > 0 {
		ok := false
		for _, re := range f.patterns {
			if re.MatchString(s) {
				ok = true
				break
			}
		}
		if !ok {
			return "it does not match the pattern " + strings.Join(f.patternSrc, " | ")
		}
	}
	if len(f.enums) > 0 {
		ok := false
		if f.enumIndex != nil {
			_, ok = f.enumIndex[v.key()]
		} else {
			for i := range f.enums {
				if f.enums[i].equal(v) {
					ok = true
					break
				}
			}
		}
		if !ok {
			return "it is not one of the allowed values: " + enumList(f.enumSrc)
		}
	}
	if f.minInc != nil {
		if c, ok := v.compare(f.minInc); !ok || c < 0 {
			return "the value must be at least " + f.minInc.s
		}
	}
	if f.minExc != nil {
		if c, ok := v.compare(f.minExc); !ok || c <= 0 {
			return "the value must be greater than " + f.minExc.s
		}
	}
	if f.maxInc != nil {
		if c, ok := v.compare(f.maxInc); !ok || c > 0 {
			return "the value must be at most " + f.maxInc.s
		}
	}
	if f.maxExc != nil {
		if c, ok := v.compare(f.maxExc); !ok || c >= 0 {
			return "the value must be less than " + f.maxExc.s
		}
	}
	if f.totalDigits >= 0 && v.prim == pDecimal && v.dec.totalDigits() > f.totalDigits {
		return "it has more than " + strconv.Itoa(f.totalDigits) + " digits"
	}
	if f.fracDigits >= 0 && v.prim == pDecimal && len(v.dec.fp) > f.fracDigits {
		return "it has more than " + strconv.Itoa(f.fracDigits) + " fraction digits"
	}
	return ""
}

func enumList(vals []string) string {
	const max = 12
	var b strings.Builder
	for i, s := range vals {
		if i == max {
			b.WriteString(", … (" + strconv.Itoa(len(vals)-max) + " more)")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// parseBuiltin checks s against a built-in type's lexical space and
// returns its value.
func parseBuiltin(t *simpleType, s string, ns nsContext, v *value) bool {
	// v is scratch: set only the fields this primitive's comparisons read.
	v.prim, v.s = t.prim, s
	ok := true
	switch t.prim {
	case pAnySimple, pString, pAnyURI:
		if t.prim == pAnyURI {
			ok = isAnyURI(s)
		}
	case pBoolean:
		ok = s == "true" || s == "false" || s == "1" || s == "0"
		if ok {
			v.s = strconv.FormatBool(s == "true" || s == "1")
		}
	case pDecimal:
		v.dec, ok = parseDecimal(s, t.lex != nil)
		if ok && t.lex != nil {
			ok = t.lex(s)
		}
	case pFloat:
		v.f, ok = parseFloat(s, 32)
	case pDouble:
		v.f, ok = parseFloat(s, 64)
	case pDuration:
		v.dur, ok = parseDuration(s)
	case pDateTime, pTime, pDate, pGYearMonth, pGYear, pGMonthDay, pGDay, pGMonth:
		v.dt, ok = parseDateTime(s, t.prim)
	case pHexBinary:
		v.s, v.n, ok = parseHex(s)
	case pBase64Binary:
		v.s, v.n, ok = parseBase64(s)
	case pQName:
		ok = isQNameLex(s)
		if ok && ns != nil {
			prefix, local := "", s
			if i := strings.IndexByte(s, ':'); i >= 0 {
				prefix, local = s[:i], s[i+1:]
			}
			uri, found := ns.LookupPrefix(prefix)
			if !found {
				return false
			}
			v.s = "{" + uri + "}" + local
		}
	}
	if ok && t.lex != nil && t.prim != pDecimal {
		ok = t.lex(s)
	}
	return ok
}

// builtins are the built-in simple types by local name.
var builtins = map[string]*simpleType{}

func init() {
	add := func(name string, base *simpleType, prim primitive, ws wsMode, lex func(string) bool) *simpleType {
		t := &simpleType{name: qname{XSDNamespace, name}, base: base, prim: prim, builtin: true, lex: lex, ws: ws}
		builtins[name] = t
		return t
	}
	anySimple := add("anySimpleType", nil, pAnySimple, wsPreserve, nil)
	str := add("string", anySimple, pString, wsPreserve, nil)
	norm := add("normalizedString", str, pString, wsReplace, isNormalized)
	tok := add("token", norm, pString, wsCollapse, isToken)
	add("language", tok, pString, wsCollapse, isLanguage)
	add("NMTOKEN", tok, pString, wsCollapse, isNMTOKEN)
	name := add("Name", tok, pString, wsCollapse, func(s string) bool { return isName(s, true) })
	ncname := add("NCName", name, pString, wsCollapse, isNCName)
	add("ID", ncname, pString, wsCollapse, isNCName).id = isID
	add("IDREF", ncname, pString, wsCollapse, isNCName).id = isIDREF
	// An ENTITY names an unparsed entity declared in a DTD; documents have
	// none (xmltree refuses DTDs), so no value is valid, as for libxml2.
	add("ENTITY", ncname, pString, wsCollapse, func(string) bool { return false })
	add("boolean", anySimple, pBoolean, wsCollapse, nil)
	dec := add("decimal", anySimple, pDecimal, wsCollapse, nil)
	add("float", anySimple, pFloat, wsCollapse, nil)
	add("double", anySimple, pDouble, wsCollapse, nil)
	add("duration", anySimple, pDuration, wsCollapse, nil)
	add("dateTime", anySimple, pDateTime, wsCollapse, nil)
	add("time", anySimple, pTime, wsCollapse, nil)
	add("date", anySimple, pDate, wsCollapse, nil)
	add("gYearMonth", anySimple, pGYearMonth, wsCollapse, nil)
	add("gYear", anySimple, pGYear, wsCollapse, nil)
	add("gMonthDay", anySimple, pGMonthDay, wsCollapse, nil)
	add("gDay", anySimple, pGDay, wsCollapse, nil)
	add("gMonth", anySimple, pGMonth, wsCollapse, nil)
	add("hexBinary", anySimple, pHexBinary, wsCollapse, nil)
	add("base64Binary", anySimple, pBase64Binary, wsCollapse, nil)
	add("anyURI", anySimple, pAnyURI, wsCollapse, nil)
	add("QName", anySimple, pQName, wsCollapse, nil)

	integerLex := func(string) bool { return true } // non-nil: no decimal point
	integer := add("integer", dec, pDecimal, wsCollapse, integerLex)
	unsignedLex := func(s string) bool { return s != "" && s[0] != '+' && s[0] != '-' }
	ranged := func(name string, base *simpleType, min, max string) *simpleType {
		lex := integerLex
		if strings.HasPrefix(name, "unsigned") {
			// XSD 1.0 gives the unsigned types digits only, no sign.
			lex = unsignedLex
		}
		t := add(name, base, pDecimal, wsCollapse, lex)
		t.facets = newFacets()
		if min != "" {
			d, _ := parseDecimal(min, true)
			t.facets.minInc = &value{prim: pDecimal, dec: d, s: min}
		}
		if max != "" {
			d, _ := parseDecimal(max, true)
			t.facets.maxInc = &value{prim: pDecimal, dec: d, s: max}
		}
		return t
	}
	npi := ranged("nonPositiveInteger", integer, "", "0")
	ranged("negativeInteger", npi, "", "-1")
	long := ranged("long", integer, "-9223372036854775808", "9223372036854775807")
	i32 := ranged("int", long, "-2147483648", "2147483647")
	i16 := ranged("short", i32, "-32768", "32767")
	ranged("byte", i16, "-128", "127")
	nni := ranged("nonNegativeInteger", integer, "0", "")
	ul := ranged("unsignedLong", nni, "0", "18446744073709551615")
	ui := ranged("unsignedInt", ul, "0", "4294967295")
	us := ranged("unsignedShort", ui, "0", "65535")
	ranged("unsignedByte", us, "0", "255")
	ranged("positiveInteger", nni, "1", "")

	for _, n := range []string{"NMTOKENS", "IDREFS", "ENTITIES"} {
		item := map[string]string{"NMTOKENS": "NMTOKEN", "IDREFS": "IDREF", "ENTITIES": "ENTITY"}[n]
		// XSD gives these minLength 1; libxml2 accepts them empty, and so
		// do we, to agree with it.
		builtins[n] = &simpleType{name: qname{XSDNamespace, n}, base: anySimple, variety: list, item: builtins[item], ws: wsCollapse, prim: pString}
	}
}

// lookupPrefixer adapts an element for QName values in instances.
type elemNS struct{ n *xmltree.Node }

func (e elemNS) LookupPrefix(p string) (string, bool) { return e.n.LookupPrefix(p) }
