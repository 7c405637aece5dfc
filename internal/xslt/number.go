package xslt

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/xmltree"
	"github.com/sluicehq/sluice/internal/xpath"
)

type decimalFormat struct {
	decimal, grouping, percent, perMille, zero, digit, pattern, minus rune
	infinity, nan                                                     string
}

var defaultDecimalFormat = &decimalFormat{
	decimal: '.', grouping: ',', percent: '%', perMille: '\u2030', zero: '0', digit: '#',
	pattern: ';', minus: '-', infinity: "Infinity", nan: "NaN",
}

func (c *compiler) decimalFormat(n *xmltree.Node) error {
	df := *defaultDecimalFormat
	var q qname
	for _, a := range n.Attrs {
		if a.Space != "" {
			continue
		}
		if a.Local == "name" {
			var err error
			if q, err = c.qname(n, a.Data, false); err != nil {
				return err
			}
			continue
		}
		var dst *rune
		switch a.Local {
		case "decimal-separator":
			dst = &df.decimal
		case "grouping-separator":
			dst = &df.grouping
		case "percent":
			dst = &df.percent
		case "per-mille":
			dst = &df.perMille
		case "zero-digit":
			dst = &df.zero
		case "digit":
			dst = &df.digit
		case "pattern-separator":
			dst = &df.pattern
		case "minus-sign":
			dst = &df.minus
		case "infinity":
			df.infinity = a.Data
			continue
		case "NaN":
			df.nan = a.Data
			continue
		default:
			return c.errf(n, "xsl:decimal-format has no attribute %s", a.Local)
		}
		r, size := utf8.DecodeRuneInString(a.Data)
		if size == 0 || size != len(a.Data) {
			return c.errf(n, "xsl:decimal-format %s=%q must be one character", a.Local, a.Data)
		}
		*dst = r
	}
	c.ss.decFormats[q] = &df
	return nil
}

// formatNumber is format-number() as libxslt computes it (its rounding and
// digit generation included).
func formatNumber(f float64, pattern string, df *decimalFormat, cache *pictureCache) (string, error) {
	if math.IsNaN(f) {
		return df.nan, nil
	}
	pos, neg, hasNeg := pattern, "", false
	if i := strings.IndexRune(pattern, df.pattern); i >= 0 {
		pos, neg, hasNeg = pattern[:i], pattern[i+utf8.RuneLen(df.pattern):], true
	}
	sub := pos
	negative := f < 0 || f == 0 && math.Signbit(f) && false
	if negative && hasNeg {
		sub = neg
	}
	p, err := cache.get(sub, df)
	if err != nil {
		return "", fmt.Errorf("format-number(): %v in %q", err, pattern)
	}
	if negative && hasNeg {
		// The negative subpattern gives only the prefix and suffix; the
		// digits follow the positive one.
		pp, err := cache.get(pos, df)
		if err != nil {
			return "", fmt.Errorf("format-number(): %v in %q", err, pattern)
		}
		pp.prefix, pp.suffix = p.prefix, p.suffix
		pp.multiplier = p.multiplier
		p = pp
	}
	var b strings.Builder
	if negative && !hasNeg {
		b.WriteRune(df.minus)
	}
	b.WriteString(p.prefix)
	if math.IsInf(f, 0) {
		b.WriteString(df.infinity)
		b.WriteString(p.suffix)
		return b.String(), nil
	}
	number := math.Abs(f) * float64(p.multiplier)
	scale := math.Pow(10, float64(p.fracDigits+p.fracHash))
	number = math.Floor(scale*number+0.5) / scale
	group := 0
	if p.group > 0 {
		group = p.group
	}
	writeDecimal(&b, math.Floor(number), df.zero, p.intDigits, group, df.grouping)
	if p.intDigits+p.intHash+p.fracDigits == 0 && p.fracHash > 0 {
		p.fracDigits++
		p.fracHash--
	}
	if math.Floor(number) == 0 && p.intDigits+p.fracDigits == 0 {
		b.WriteRune(df.zero)
	}
	if p.fracDigits+p.fracHash == 0 {
		if p.addDecimal {
			b.WriteRune(df.decimal)
		}
	} else {
		number -= math.Floor(number)
		if number != 0 || p.fracDigits != 0 {
			b.WriteRune(df.decimal)
			number = math.Floor(scale*number + 0.5)
			j := p.fracHash
			for ; j > 0; j-- {
				if math.Mod(number, 10) >= 1 {
					break
				}
				number /= 10
			}
			writeDecimal(&b, math.Floor(number), df.zero, p.fracDigits+j, 0, 0)
		}
	}
	b.WriteString(p.suffix)
	return b.String(), nil
}

// writeDecimal writes the integer part of number with at least width
// digits, grouped, as libxslt's xsltNumberFormatDecimal.
func writeDecimal(b *strings.Builder, number float64, zero rune, width, group int, sep rune) {
	var buf [64]rune
	digits := buf[:0]
	for i := 0; len(digits) < 400; i++ {
		if i >= width && math.Abs(number) < 1 {
			break
		}
		if i > 0 && sep != 0 && group > 0 && i%group == 0 {
			digits = append(digits, sep)
		}
		digits = append(digits, zero+rune(int(math.Mod(number, 10))))
		number /= 10
	}
	for i := len(digits) - 1; i >= 0; i-- {
		b.WriteRune(digits[i])
	}
}

type picture struct {
	prefix, suffix                           string
	intDigits, intHash, fracDigits, fracHash int
	group                                    int
	multiplier                               int
	addDecimal                               bool
}

type pictureKey struct {
	s  string
	df *decimalFormat
}

// pictureCache keeps a stylesheet's parsed format-number() patterns: they
// are nearly always literals, so few. At most maxPictures are kept.
type pictureCache struct {
	m sync.Map // pictureKey → picture
	n atomic.Int32
}

const maxPictures = 256

func (c *pictureCache) get(s string, df *decimalFormat) (picture, error) {
	k := pictureKey{s, df}
	if p, ok := c.m.Load(k); ok {
		return p.(picture), nil
	}
	p, err := parsePicture(s, df)
	if err == nil && c.n.Load() < maxPictures {
		if _, loaded := c.m.LoadOrStore(k, p); !loaded {
			c.n.Add(1)
		}
	}
	return p, err
}

func parsePicture(s string, df *decimalFormat) (picture, error) {
	p := picture{multiplier: 1, group: -1}
	rs := []rune(s)
	i := 0
	isActive := func(r rune) bool {
		return r == df.digit || r == df.zero || r == df.decimal || r == df.grouping
	}
	special := func(r rune) error {
		switch r {
		case df.percent:
			if p.multiplier != 1 {
				return fmt.Errorf("too many percent or per-mille signs")
			}
			p.multiplier = 100
		case df.perMille:
			if p.multiplier != 1 {
				return fmt.Errorf("too many percent or per-mille signs")
			}
			p.multiplier = 1000
		}
		return nil
	}
	var pre strings.Builder
	for ; i < len(rs) && !isActive(rs[i]); i++ {
		if err := special(rs[i]); err != nil {
			return p, err
		}
		if rs[i] == '\'' {
			continue
		}
		pre.WriteRune(rs[i])
	}
	p.prefix = pre.String()
	sinceGroup := -1
	for ; i < len(rs); i++ {
		r := rs[i]
		switch r {
		case df.digit:
			if p.intDigits > 0 {
				return p, fmt.Errorf("# after 0")
			}
			p.intHash++
		case df.zero:
			p.intDigits++
		case df.grouping:
			sinceGroup = 0
			continue
		default:
			goto intDone
		}
		if sinceGroup >= 0 {
			sinceGroup++
		}
	}
intDone:
	if sinceGroup > 0 {
		p.group = sinceGroup
	}
	if i < len(rs) && rs[i] == df.decimal {
		p.addDecimal = true
		i++
		for ; i < len(rs); i++ {
			r := rs[i]
			if r == df.zero {
				if p.fracHash > 0 {
					return p, fmt.Errorf("0 after # in the fraction")
				}
				p.fracDigits++
			} else if r == df.digit {
				p.fracHash++
			} else if r == df.grouping || r == df.decimal {
				return p, fmt.Errorf("unexpected %q in the fraction", r)
			} else {
				break
			}
		}
	}
	var suf strings.Builder
	for ; i < len(rs); i++ {
		if isActive(rs[i]) {
			return p, fmt.Errorf("unexpected %q in the suffix", rs[i])
		}
		if err := special(rs[i]); err != nil {
			return p, err
		}
		if rs[i] == '\'' {
			continue
		}
		suf.WriteRune(rs[i])
	}
	p.suffix = suf.String()
	if p.intDigits+p.intHash+p.fracDigits+p.fracHash == 0 {
		return p, fmt.Errorf("no digits")
	}
	return p, nil
}

func (c *compiler) number(n *xmltree.Node) (instr, error) {
	v := &numberI{line: n.Line, level: "single"}
	var err error
	if s, ok := attr(n, "level"); ok {
		switch s {
		case "single", "multiple", "any":
			v.level = s
		default:
			return nil, c.errf(n, "xsl:number level=%q is not single, multiple or any", s)
		}
	}
	if s, ok := attr(n, "count"); ok {
		if v.count, err = c.pattern(n, "count", s); err != nil {
			return nil, err
		}
	}
	if s, ok := attr(n, "from"); ok {
		if v.from, err = c.pattern(n, "from", s); err != nil {
			return nil, err
		}
	}
	if s, ok := attr(n, "value"); ok {
		if v.value, err = c.expr(n, "value", s); err != nil {
			return nil, err
		}
	}
	format := "1"
	if s, ok := attr(n, "format"); ok {
		format = s
	}
	if v.format, err = c.avt(n, "format", format); err != nil {
		return nil, err
	}
	if v.groupSep, err = c.optAVT(n, "grouping-separator"); err != nil {
		return nil, err
	}
	if v.groupSize, err = c.optAVT(n, "grouping-size"); err != nil {
		return nil, err
	}
	if s, ok := attr(n, "letter-value"); ok && s == "traditional" {
		return nil, c.errf(n, "xsl:number letter-value=\"traditional\" is not supported")
	}
	return v, nil
}

func (nu *numberI) exec(x *exec) error {
	var nums []float64
	if nu.value != nil {
		v, err := x.eval(nu.value, nu.line)
		if err != nil {
			return err
		}
		f := xpath.Number(v)
		nums = []float64{f}
	} else {
		var err error
		if nums, err = x.countNodes(nu); err != nil {
			return err
		}
	}
	if len(nums) == 0 {
		// Nothing counted: xsltproc writes an empty text node, not even
		// the format's punctuation.
		x.out.emptyText()
		return nil
	}
	format, err := x.avt(nu.format, nu.line)
	if err != nil {
		return err
	}
	sep, size := "", 0
	if nu.groupSep != nil && nu.groupSize != nil {
		if sep, err = x.avt(*nu.groupSep, nu.line); err != nil {
			return err
		}
		s, err := x.avt(*nu.groupSize, nu.line)
		if err != nil {
			return err
		}
		size, _ = strconv.Atoi(strings.TrimSpace(s))
	}
	return x.out.text(formatNumbers(nums, format, sep, size), false)
}

// countNodes numbers the context node as xsl:number's level, count and
// from say, walking the tree as libxslt does.
func (x *exec) countNodes(nu *numberI) ([]float64, error) {
	n := x.node
	matches := func(m *xmltree.Node) (bool, error) {
		if nu.count != nil {
			return x.match(nu.count, m)
		}
		// Default count: nodes of the same kind and name as the context.
		if m.Kind != n.Kind {
			return false, nil
		}
		switch n.Kind {
		case xmltree.Element, xmltree.Attribute:
			return m.Space == n.Space && m.Local == n.Local, nil
		case xmltree.ProcInst:
			return m.Local == n.Local, nil
		}
		return true, nil
	}
	isFrom := func(m *xmltree.Node) (bool, error) {
		if nu.from == nil {
			return false, nil
		}
		return x.match(nu.from, m)
	}
	if nu.level == "any" {
		k := 0
		for m := n; m != nil; m = precedingOrAncestor(m) {
			if err := x.step(); err != nil {
				return nil, err
			}
			ok, err := matches(m)
			if err != nil {
				return nil, err
			}
			if ok {
				k++
			}
			if f, err := isFrom(m); err != nil {
				return nil, err
			} else if f || m.Kind == xmltree.Document {
				break
			}
		}
		return []float64{float64(k)}, nil
	}
	var out []float64
	for m := n; m != nil && m.Kind != xmltree.Document; m = m.Parent {
		if f, err := isFrom(m); err != nil {
			return nil, err
		} else if f {
			break
		}
		ok, err := matches(m)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		k := 1
		if m.Kind != xmltree.Attribute && m.Parent != nil {
			for _, s := range m.Parent.Children {
				if s == m {
					break
				}
				if err := x.step(); err != nil {
					return nil, err
				}
				ok, err := matches(s)
				if err != nil {
					return nil, err
				}
				if ok {
					k++
				}
			}
		}
		out = append([]float64{float64(k)}, out...)
		if nu.level == "single" {
			break
		}
	}
	return out, nil
}

// precedingOrAncestor is the node before n in document order (on the
// preceding or ancestor axes).
func precedingOrAncestor(n *xmltree.Node) *xmltree.Node {
	p := n.Parent
	if p == nil {
		return nil
	}
	if n.Kind == xmltree.Attribute {
		return p
	}
	i := 0
	for i < len(p.Children) && p.Children[i] != n {
		i++
	}
	if i == 0 {
		return p
	}
	m := p.Children[i-1]
	for len(m.Children) > 0 {
		m = m.Children[len(m.Children)-1]
	}
	return m
}

// numToken is one format token of xsl:number: a decimal token (zero is
// its zero digit, width its minimum digits) or a, A, i, I.
type numToken struct {
	kind      rune // '0' for decimal, or a, A, i, I
	zero      rune
	width     int
	separator string // before this token's number; "" for none given
	hasSep    bool
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// isZeroDigit and isOneDigit tell the first two digits of a run of
// Unicode decimal digits.
func isZeroDigit(r rune) bool { return unicode.IsDigit(r) && !unicode.IsDigit(r-1) }
func isOneDigit(r rune) bool  { return unicode.IsDigit(r) && isZeroDigit(r-1) }

// formatNumbers formats a list of numbers with a format string as
// xsltproc does: alphanumeric tokens (1, 01, a, A, i, I; any other token
// counts as 1), separators between them, and the punctuation before the
// first and after the last.
func formatNumbers(nums []float64, format, sep string, size int) string {
	rs := []rune(format)
	i := 0
	for i < len(rs) && !isAlnum(rs[i]) {
		i++
	}
	start := string(rs[:i])
	var toks []numToken
	end, hasEnd := "", false
	for i < len(rs) {
		t := numToken{kind: '0', zero: '0', width: 1}
		if len(toks) > 0 {
			t.separator, t.hasSep = end, hasEnd
			end, hasEnd = "", false
		}
		r := rs[i]
		switch {
		case isOneDigit(r) || isZeroDigit(r):
			w := 1
			for i < len(rs) && isZeroDigit(rs[i]) {
				w++
				i++
			}
			if i < len(rs) && isOneDigit(rs[i]) {
				t.zero, t.width = rs[i]-1, w
				i++
			}
		case r == 'a' || r == 'A' || r == 'i' || r == 'I':
			t.kind = r
			i++
		}
		for i < len(rs) && isAlnum(rs[i]) {
			i++
		}
		j := i
		for i < len(rs) && !isAlnum(rs[i]) {
			i++
		}
		if i > j {
			end, hasEnd = string(rs[j:i]), true
		}
		toks = append(toks, t)
	}
	var group rune
	if sep != "" && size > 0 {
		group, _ = utf8.DecodeRuneInString(sep)
	}
	var b strings.Builder
	b.WriteString(start)
	for idx, f := range nums {
		t := numToken{kind: '0', zero: '0', width: 1}
		switch {
		case idx < len(toks):
			t = toks[idx]
		case len(toks) > 0:
			t = toks[len(toks)-1]
		}
		if idx > 0 {
			if t.hasSep {
				b.WriteString(t.separator)
			} else {
				b.WriteByte('.')
			}
		}
		f = math.Floor(f + 0.5)
		if f < 0 {
			f = 0 // xsltproc reports a negative value and numbers it 0
		}
		switch {
		case math.IsInf(f, 1):
			b.WriteString("Infinity")
		case math.IsNaN(f):
			b.WriteString("NaN")
		case (t.kind == 'a' || t.kind == 'A') && f >= 1:
			alpha(&b, f, t.kind == 'A')
		case (t.kind == 'i' || t.kind == 'I') && f >= 1 && f <= 5000:
			roman(&b, f, t.kind == 'I')
		case t.kind == 'a' || t.kind == 'A' || t.kind == 'i' || t.kind == 'I':
			writeDecimal(&b, f, '0', 1, size, group)
		default:
			writeDecimal(&b, f, t.zero, t.width, size, group)
		}
	}
	if hasEnd {
		b.WriteString(end)
	}
	return b.String()
}

// alpha writes f (at least 1) as a, b, … z, aa, … with libxslt's
// floating-point steps.
func alpha(b *strings.Builder, f float64, upper bool) {
	base := 'a'
	if upper {
		base = 'A'
	}
	var out []rune
	for range 64 {
		f--
		out = append(out, base+rune(int(math.Mod(f, 26))))
		f /= 26
		if f < 1 {
			break
		}
	}
	for i := len(out) - 1; i >= 0; i-- {
		b.WriteRune(out[i])
	}
}

// roman writes f (1 to 5000) in roman numerals; 4000 and more as M…M.
func roman(b *strings.Builder, f float64, upper bool) {
	n := int(f)
	vals := []int{1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4, 1}
	syms := []string{"m", "cm", "d", "cd", "c", "xc", "l", "xl", "x", "ix", "v", "iv", "i"}
	for i, v := range vals {
		for n >= v {
			if upper {
				b.WriteString(strings.ToUpper(syms[i]))
			} else {
				b.WriteString(syms[i])
			}
			n -= v
		}
	}
}
