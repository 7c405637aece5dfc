package xsd

import (
	"math"
	"strconv"
	"strings"
)

// primitive is the primitive type a simple type's values come from.
type primitive uint8

const (
	pAnySimple primitive = iota
	pString
	pBoolean
	pDecimal
	pFloat
	pDouble
	pDuration
	pDateTime
	pTime
	pDate
	pGYearMonth
	pGYear
	pGMonthDay
	pGDay
	pGMonth
	pHexBinary
	pBase64Binary
	pAnyURI
	pQName
)

// wsMode is the whiteSpace facet.
type wsMode uint8

const (
	wsPreserve wsMode = iota
	wsReplace
	wsCollapse
)

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// normalizeSpace applies a whiteSpace facet, allocating only when the value
// changes.
func normalizeSpace(s string, m wsMode) string {
	switch m {
	case wsReplace:
		if !strings.ContainsAny(s, "\t\n\r") {
			return s
		}
		b := []byte(s)
		for i, c := range b {
			if isXMLSpace(c) {
				b[i] = ' '
			}
		}
		return string(b)
	case wsCollapse:
		clean := true
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '\t' || c == '\n' || c == '\r' || c == ' ' && (i == 0 || i == len(s)-1 || s[i+1] == ' ') {
				clean = false
				break
			}
		}
		if clean {
			return s
		}
		return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x80 && isXMLSpace(byte(r)) }), " ")
	}
	return s
}

// value is a typed value, for facets that compare values (ranges,
// enumerations) and for fixed values.
type value struct {
	prim primitive
	// s is the normalized lexical form (strings, URIs, names), the
	// expanded {namespace}local of a QName, or the canonical hex of a
	// binary value.
	s   string
	dec decimal
	f   float64
	dt  dateTime
	dur duration
	// n is the length facets measure: characters, octets or list items.
	n int
}

// equal is value-space equality, for enumeration and fixed.
func (a *value) equal(b *value) bool {
	if a.prim != b.prim {
		// The string-derived primitives share one value space here.
		return a.prim <= pString && b.prim <= pString && a.s == b.s
	}
	switch a.prim {
	case pDecimal:
		return a.dec.cmp(b.dec) == 0
	case pFloat, pDouble:
		return a.f == b.f || math.IsNaN(a.f) && math.IsNaN(b.f)
	case pDateTime, pTime, pDate, pGYearMonth, pGYear, pGMonthDay, pGDay, pGMonth:
		c, ok := a.dt.cmp(b.dt)
		return ok && c == 0
	case pDuration:
		c, ok := a.dur.cmp(b.dur)
		return ok && c == 0
	}
	return a.s == b.s
}

// compare orders two values of an ordered type; ok is false when they are
// incomparable (NaN, date/times with and without time zone too close).
func (a *value) compare(b *value) (c int, ok bool) {
	switch a.prim {
	case pDecimal:
		return a.dec.cmp(b.dec), true
	case pFloat, pDouble:
		switch {
		case math.IsNaN(a.f) || math.IsNaN(b.f):
			return 0, false
		case a.f < b.f:
			return -1, true
		case a.f > b.f:
			return 1, true
		}
		return 0, true
	case pDateTime, pTime, pDate, pGYearMonth, pGYear, pGMonthDay, pGDay, pGMonth:
		return a.dt.cmp(b.dt)
	case pDuration:
		return a.dur.cmp(b.dur)
	}
	return strings.Compare(a.s, b.s), true
}

// decimal is a decimal number as its digits: no leading zeros in ip, no
// trailing zeros in fp, and zero is never negative.
type decimal struct {
	neg    bool
	ip, fp string
}

// maxDecimalDigits bounds the digits of a decimal (integer digits without
// leading zeros, and every fraction digit as written): XSD 1.0 lets a
// processor limit them (to no fewer than 18), and libxml2 allows 24, so
// the two agree on which documents are valid.
const maxDecimalDigits = 24

// parseDecimal reads the xs:decimal lexical space; integer refuses a
// decimal point.
func parseDecimal(s string, integer bool) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		d.neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	ip := s[start:i]
	fp := ""
	if i < len(s) && s[i] == '.' {
		if integer {
			return d, false
		}
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		fp = s[fs:i]
	}
	if i != len(s) || ip == "" && fp == "" {
		return d, false
	}
	ip = strings.TrimLeft(ip, "0")
	if len(ip)+len(fp) > maxDecimalDigits {
		return d, false
	}
	fp = strings.TrimRight(fp, "0")
	if ip == "" && fp == "" {
		d.neg = false
	}
	d.ip, d.fp = ip, fp
	return d, true
}

func (a decimal) cmp(b decimal) int {
	if a.neg != b.neg {
		if a.neg {
			return -1
		}
		return 1
	}
	c := 0
	switch {
	case len(a.ip) != len(b.ip):
		c = -1
		if len(a.ip) > len(b.ip) {
			c = 1
		}
	case a.ip != b.ip:
		c = strings.Compare(a.ip, b.ip)
	default:
		c = strings.Compare(a.fp, b.fp)
	}
	if a.neg {
		c = -c
	}
	return c
}

func (a decimal) String() string {
	s := a.ip
	if s == "" {
		s = "0"
	}
	if a.fp != "" {
		s += "." + a.fp
	}
	if a.neg {
		s = "-" + s
	}
	return s
}

func (a decimal) totalDigits() int {
	if a.ip == "" {
		// 0.05 has one significant digit: leading zeros of the fraction do
		// not count.
		if a.fp == "" {
			return 1
		}
		return len(strings.TrimLeft(a.fp, "0"))
	}
	return len(a.ip) + len(a.fp)
}

// parseFloat reads the xs:float and xs:double lexical space.
func parseFloat(s string, bits int) (float64, bool) {
	switch s {
	case "INF":
		return math.Inf(1), true
	case "-INF":
		return math.Inf(-1), true
	case "NaN":
		return math.NaN(), true
	}
	// strconv also takes hex, underscores, "Inf" and "infinity": allow only
	// the XSD grammar.
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		ed := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			ed++
		}
		if ed == 0 {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, bits)
	if err != nil {
		// Out of range: XSD rounds to the nearest value, so ±INF or 0.
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return 0, false
		}
	}
	return f, true
}

// dateTime is any of the date/time types' values, with absent fields
// filled from a reference date so that values of one type compare.
type dateTime struct {
	// secs counts seconds from 0000-01-01T00:00:00 (in UTC when hasTZ).
	secs  int64
	frac  string // fractional second digits, no trailing zeros
	hasTZ bool
}

func (a dateTime) cmp0(b dateTime) int {
	switch {
	case a.secs < b.secs:
		return -1
	case a.secs > b.secs:
		return 1
	}
	return strings.Compare(a.frac, b.frac)
}

// cmp orders date/times as XSD 1.0 does: a value without a time zone is
// compared as if it had any time zone from -14:00 to +14:00.
func (a dateTime) cmp(b dateTime) (int, bool) {
	if a.hasTZ == b.hasTZ {
		return a.cmp0(b), true
	}
	const d = 14 * 3600
	lo, hi := b, b
	if !b.hasTZ {
		lo.secs -= d
		hi.secs += d
		if a.cmp0(lo) < 0 {
			return -1, true
		}
		if a.cmp0(hi) > 0 {
			return 1, true
		}
		return 0, false
	}
	lo, hi = a, a
	lo.secs -= d
	hi.secs += d
	if hi.cmp0(b) < 0 {
		return -1, true
	}
	if lo.cmp0(b) > 0 {
		return 1, true
	}
	return 0, false
}

func isLeap(y int64) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(y int64, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil counts days from 0000-03-01-based proleptic Gregorian
// calendar (H. Hinnant's algorithm), for any year.
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := int64((153*mp+2)/5 + d - 1)
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe
}

// digits reads exactly n ASCII digits at s[i:].
func digits(s string, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// parseDateTime reads the lexical space of the date/time primitive p.
func parseDateTime(s string, p primitive) (dateTime, bool) {
	var dt dateTime
	year, month, day := int64(1972), 12, 31 // reference for absent fields
	hour, minute, sec := 0, 0, 0
	i := 0
	readYear := func() bool {
		neg := false
		if i < len(s) && s[i] == '-' {
			neg = true
			i++
		}
		st := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		n := i - st
		if n < 4 || n > 4 && s[st] == '0' || n > 9 { // 9 digits keep seconds within int64
			return false
		}
		y, _ := strconv.ParseInt(s[st:i], 10, 64)
		if y == 0 {
			return false // XSD 1.0 has no year 0000
		}
		if neg {
			y = -y + 1 // 1 BCE is year 0 on the proleptic timeline
		}
		year = y
		return true
	}
	two := func() (int, bool) {
		v, ok := digits(s, i, 2)
		i += 2
		return v, ok
	}
	expect := func(c byte) bool {
		if i < len(s) && s[i] == c {
			i++
			return true
		}
		return false
	}
	lit := func(p string) bool {
		if strings.HasPrefix(s[i:], p) {
			i += len(p)
			return true
		}
		return false
	}
	readTime := func() bool {
		var ok bool
		if hour, ok = two(); !ok || !expect(':') {
			return false
		}
		if minute, ok = two(); !ok || !expect(':') {
			return false
		}
		if sec, ok = two(); !ok {
			return false
		}
		if i < len(s) && s[i] == '.' {
			i++
			st := i
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			if i == st {
				return false
			}
			dt.frac = strings.TrimRight(s[st:i], "0")
		}
		if minute > 59 || sec > 59 {
			return false
		}
		if hour == 24 {
			return minute == 0 && sec == 0 && dt.frac == ""
		}
		return hour < 24
	}
	ok := true
	switch p {
	case pDateTime:
		ok = readYear() && expect('-')
		if ok {
			month, ok = two()
		}
		ok = ok && expect('-')
		if ok {
			day, ok = two()
		}
		ok = ok && expect('T') && readTime()
	case pDate:
		ok = readYear() && expect('-')
		if ok {
			month, ok = two()
		}
		ok = ok && expect('-')
		if ok {
			day, ok = two()
		}
	case pTime:
		ok = readTime()
	case pGYearMonth:
		ok = readYear() && expect('-')
		if ok {
			month, ok = two()
		}
		day = 1
	case pGYear:
		ok = readYear()
		month, day = 1, 1
	case pGMonthDay:
		ok = lit("--")
		if ok {
			month, ok = two()
		}
		ok = ok && expect('-')
		if ok {
			day, ok = two()
		}
	case pGDay:
		ok = lit("---")
		if ok {
			day, ok = two()
		}
		month = 12
	case pGMonth:
		ok = lit("--")
		if ok {
			month, ok = two()
		}
		day = 1
	}
	if !ok || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		if !(ok && p == pGMonthDay && month == 2 && day == 29) {
			return dt, false
		}
	}
	tz := 0
	if i < len(s) {
		switch s[i] {
		case 'Z':
			i++
			dt.hasTZ = true
		case '+', '-':
			neg := s[i] == '-'
			i++
			h, ok1 := two()
			ok2 := expect(':')
			m, ok3 := two()
			if !ok1 || !ok2 || !ok3 || m > 59 || h > 14 || h == 14 && m != 0 {
				return dt, false
			}
			tz = h*60 + m
			if neg {
				tz = -tz
			}
			dt.hasTZ = true
		default:
			return dt, false
		}
	}
	if i != len(s) {
		return dt, false
	}
	if p == pGMonthDay && month == 2 && day == 29 {
		year = 1972 // a leap year, so --02-29 exists
	}
	days := daysFromCivil(year, month, day)
	dt.secs = days*86400 + int64(hour*3600+minute*60+sec) - int64(tz*60)
	return dt, true
}

// duration is an xs:duration value: months and seconds, each signed.
type duration struct {
	months int64
	secs   int64
	frac   string
	neg    bool
}

func parseDuration(s string) (duration, bool) {
	var d duration
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	if i >= len(s) || s[i] != 'P' {
		return d, false
	}
	i++
	inTime, any, timeAny := false, false, false
	order := "YMD"
	for i < len(s) {
		if s[i] == 'T' {
			if inTime {
				return d, false
			}
			inTime = true
			order = "HMS"
			i++
			continue
		}
		st := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == st {
			return d, false
		}
		n, err := strconv.ParseInt(s[st:i], 10, 64)
		if err != nil || n > 1<<40 {
			return d, false
		}
		frac := ""
		if i < len(s) && s[i] == '.' {
			i++
			fs := i
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			if i == fs {
				return d, false
			}
			frac = strings.TrimRight(s[fs:i], "0")
			if i >= len(s) || s[i] != 'S' || !inTime {
				return d, false
			}
		}
		if i >= len(s) {
			return d, false
		}
		k := strings.IndexByte(order, s[i])
		if k < 0 {
			return d, false
		}
		order = order[k+1:]
		switch {
		case !inTime && s[i] == 'Y':
			d.months += n * 12
		case !inTime && s[i] == 'M':
			d.months += n
		case !inTime && s[i] == 'D':
			d.secs += n * 86400
		case s[i] == 'H':
			d.secs += n * 3600
		case s[i] == 'M':
			d.secs += n * 60
		case s[i] == 'S':
			d.secs += n
			d.frac = frac
		}
		i++
		any = true
		if inTime {
			timeAny = true
		}
	}
	if !any || inTime && !timeAny {
		return d, false
	}
	return d, true
}

// cmp orders durations by adding them to the four reference dateTimes of
// XSD 1.0 (appendix E); ok is false when the results disagree.
func (a duration) cmp(b duration) (int, bool) {
	sign := func(d duration) (int64, int64, string) {
		if d.neg {
			return -d.months, -d.secs, d.frac
		}
		return d.months, d.secs, d.frac
	}
	am, as, af := sign(a)
	bm, bs, bf := sign(b)
	if am == bm {
		switch {
		case as < bs:
			return -1, true
		case as > bs:
			return 1, true
		}
		if a.neg != b.neg && (af != "" || bf != "") {
			if a.neg {
				return -1, true
			}
			return 1, true
		}
		c := strings.Compare(af, bf)
		if a.neg {
			c = -c
		}
		return c, true
	}
	refs := [4][2]int64{{1696, 9}, {1697, 2}, {1903, 3}, {1903, 7}}
	res := 0
	for k, r := range refs {
		at := func(m, s int64) int64 {
			mm := r[0]*12 + (r[1] - 1) + m
			y, mo := floorDiv(mm, 12), int(mm-floorDiv(mm, 12)*12)+1
			return daysFromCivil(y, mo, 1)*86400 + s
		}
		x, y := at(am, as), at(bm, bs)
		c := 0
		if x < y {
			c = -1
		} else if x > y {
			c = 1
		}
		if k == 0 {
			res = c
		} else if c != res {
			return 0, false
		}
	}
	return res, true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// parseHex reads xs:hexBinary; the canonical form is upper case.
func parseHex(s string) (string, int, bool) {
	if len(s)%2 != 0 {
		return "", 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", 0, false
		}
	}
	return strings.ToUpper(s), len(s) / 2, true
}

// parseBase64 reads xs:base64Binary (spaces allowed between characters,
// padding only at the end with the bits before it zero).
func parseBase64(s string) (string, int, bool) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' {
			b = append(b, s[i])
		}
	}
	if len(b)%4 != 0 {
		return "", 0, false
	}
	pad := 0
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			if pad > 0 {
				return "", 0, false
			}
		case c == '=':
			pad++
			if i < len(b)-2 {
				return "", 0, false
			}
		default:
			return "", 0, false
		}
	}
	if pad > 0 {
		last := b[len(b)-pad-1]
		idx := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", last)
		if pad == 1 && idx&3 != 0 || pad == 2 && idx&15 != 0 {
			return "", 0, false
		}
	}
	return string(b), len(b)/4*3 - pad, true
}

// XML 1.0 (fifth edition) name characters.
func isNameStart(r rune) bool {
	switch {
	case r < 0x80:
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == ':'
	case r >= 0xC0 && r <= 0xD6, r >= 0xD8 && r <= 0xF6, r >= 0xF8 && r <= 0x2FF,
		r >= 0x370 && r <= 0x37D, r >= 0x37F && r <= 0x1FFF, r >= 0x200C && r <= 0x200D,
		r >= 0x2070 && r <= 0x218F, r >= 0x2C00 && r <= 0x2FEF, r >= 0x3001 && r <= 0xD7FF,
		r >= 0xF900 && r <= 0xFDCF, r >= 0xFDF0 && r <= 0xFFFD, r >= 0x10000 && r <= 0xEFFFF:
		return true
	}
	return false
}

func isNameChar(r rune) bool {
	if isNameStart(r) {
		return true
	}
	switch {
	case r < 0x80:
		return r >= '0' && r <= '9' || r == '-' || r == '.'
	case r == 0xB7, r >= 0x300 && r <= 0x36F, r >= 0x203F && r <= 0x2040:
		return true
	}
	return false
}

func isName(s string, colons bool) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == ':' && !colons {
			return false
		}
		if i == 0 && !isNameStart(r) || !isNameChar(r) {
			return false
		}
	}
	return true
}

func isNCName(s string) bool { return isName(s, false) }

func isNMTOKEN(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !isNameChar(r) {
			return false
		}
	}
	return true
}

func isQNameLex(s string) bool {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return isNCName(s[:i]) && isNCName(s[i+1:])
	}
	return isNCName(s)
}

func isLanguage(s string) bool {
	for i, part := range strings.Split(s, "-") {
		if len(part) < 1 || len(part) > 8 {
			return false
		}
		for _, c := range []byte(part) {
			alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if !alpha && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}

func isToken(s string) bool { return normalizeSpace(s, wsCollapse) == s }

func isNormalized(s string) bool { return !strings.ContainsAny(s, "\t\n\r") }

// isAnyURI accepts what libxml2 accepts after escaping disallowed
// characters: nearly anything, but not an unbalanced or bad % escape.
func isAnyURI(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
