package xsd

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// translateRegex turns an XSD 1.0 regular expression (appendix F) into an
// RE2 expression matching the whole value. XSD has no anchors, so ^ and $
// are ordinary characters; its . excludes only newline and carriage return;
// its \d, \w, \i and \c are Unicode sets. What RE2 cannot express (class
// subtraction, Unicode blocks) is refused with an error naming it.
func translateRegex(src string) (string, error) {
	p := &reParser{src: []rune(src)}
	var b strings.Builder
	b.WriteString(`^(?:`)
	if err := p.regExp(&b, 0); err != nil {
		return "", err
	}
	if p.i < len(p.src) {
		return "", fmt.Errorf("unexpected %q at offset %d", string(p.src[p.i]), p.i)
	}
	b.WriteString(`)$`)
	return b.String(), nil
}

type reParser struct {
	src []rune
	i   int
}

func (p *reParser) peek() rune {
	if p.i < len(p.src) {
		return p.src[p.i]
	}
	return -1
}

func (p *reParser) regExp(b *strings.Builder, depth int) error {
	if depth > 100 {
		return fmt.Errorf("groups nested too deeply")
	}
	for {
		if err := p.branch(b, depth); err != nil {
			return err
		}
		if p.peek() != '|' {
			return nil
		}
		p.i++
		b.WriteByte('|')
	}
}

func (p *reParser) branch(b *strings.Builder, depth int) error {
	for {
		c := p.peek()
		if c == -1 || c == '|' || c == ')' {
			return nil
		}
		if err := p.piece(b, depth); err != nil {
			return err
		}
	}
}

func (p *reParser) piece(b *strings.Builder, depth int) error {
	c := p.peek()
	switch c {
	case '(':
		p.i++
		b.WriteString("(?:")
		if err := p.regExp(b, depth+1); err != nil {
			return err
		}
		if p.peek() != ')' {
			return fmt.Errorf("missing )")
		}
		p.i++
		b.WriteByte(')')
	case '[':
		p.i++
		if err := p.charClass(b); err != nil {
			return err
		}
	case '\\':
		p.i++
		s, err := p.escape(false)
		if err != nil {
			return err
		}
		b.WriteString(s)
	case '.':
		p.i++
		b.WriteString(`[^\n\r]`)
	case '?', '*', '+', '{':
		return fmt.Errorf("quantifier %q without anything to repeat", string(c))
	case ']':
		return fmt.Errorf("unmatched ]")
	default:
		p.i++
		b.WriteString(regexp.QuoteMeta(string(c)))
	}
	// quantifier
	switch p.peek() {
	case '?', '*', '+':
		b.WriteRune(p.peek())
		p.i++
	case '{':
		p.i++
		st := p.i
		for p.peek() >= '0' && p.peek() <= '9' || p.peek() == ',' {
			p.i++
		}
		q := string(p.src[st:p.i])
		if p.peek() != '}' {
			return fmt.Errorf("bad quantifier {%s", q)
		}
		p.i++
		lo, hi := q, ""
		if k := strings.IndexByte(q, ','); k >= 0 {
			lo, hi = q[:k], q[k+1:]
		}
		if lo == "" || strings.Contains(hi, ",") {
			return fmt.Errorf("bad quantifier {%s}", q)
		}
		l, err1 := strconv.Atoi(lo)
		h := l
		var err2 error
		if hi != "" {
			h, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || h < l {
			return fmt.Errorf("bad quantifier {%s}", q)
		}
		if l > 1000 || h > 1000 {
			return fmt.Errorf("the quantifier {%s} repeats more than 1000 times, which Go's regexp package (RE2) cannot express", q)
		}
		b.WriteString("{" + q + "}")
	}
	return nil
}

// Multi-character escapes as RE2 class contents (without brackets) and
// whether the set is negated.
var multiEscapes = map[rune]struct {
	set string
	neg bool
}{
	's': {`\x20\t\n\r`, false},
	'S': {`\x20\t\n\r`, true},
	'd': {`\p{Nd}`, false},
	'D': {`\p{Nd}`, true},
	// \w is every character but punctuation, separators and "other"; the
	// general categories partition Unicode, so that is L, M, N and S.
	'w': {`\p{L}\p{M}\p{N}\p{S}`, false},
	'W': {`\p{L}\p{M}\p{N}\p{S}`, true},
	'i': {`\p{Ll}\p{Lu}\p{Lo}\p{Lt}\p{Nl}_:`, false},
	'I': {`\p{Ll}\p{Lu}\p{Lo}\p{Lt}\p{Nl}_:`, true},
	'c': {`\p{Ll}\p{Lu}\p{Lo}\p{Lt}\p{Nl}\p{Mc}\p{Me}\p{Mn}\p{Lm}\p{Nd}_:\-.\x{B7}`, false},
	'C': {`\p{Ll}\p{Lu}\p{Lo}\p{Lt}\p{Nl}\p{Mc}\p{Me}\p{Mn}\p{Lm}\p{Nd}_:\-.\x{B7}`, true},
}

// Unicode blocks XSD names with \p{IsName}, for the ones B2B patterns use.
var blocks = map[string]string{
	"BasicLatin":                 `\x00-\x7F`,
	"Latin-1Supplement":          `\x{80}-\x{FF}`,
	"LatinExtended-A":            `\x{100}-\x{17F}`,
	"LatinExtended-B":            `\x{180}-\x{24F}`,
	"IPAExtensions":              `\x{250}-\x{2AF}`,
	"Greek":                      `\x{370}-\x{3FF}`,
	"Cyrillic":                   `\x{400}-\x{4FF}`,
	"Hebrew":                     `\x{590}-\x{5FF}`,
	"Arabic":                     `\x{600}-\x{6FF}`,
	"LatinExtendedAdditional":    `\x{1E00}-\x{1EFF}`,
	"GeneralPunctuation":         `\x{2000}-\x{206F}`,
	"CurrencySymbols":            `\x{20A0}-\x{20CF}`,
	"CJKUnifiedIdeographs":       `\x{4E00}-\x{9FFF}`,
	"Hiragana":                   `\x{3040}-\x{309F}`,
	"Katakana":                   `\x{30A0}-\x{30FF}`,
	"HangulSyllables":            `\x{AC00}-\x{D7AF}`,
	"HalfwidthandFullwidthForms": `\x{FF00}-\x{FFEF}`,
}

var categories = map[string]bool{
	"L": true, "Lu": true, "Ll": true, "Lt": true, "Lm": true, "Lo": true,
	"M": true, "Mn": true, "Mc": true, "Me": true,
	"N": true, "Nd": true, "Nl": true, "No": true,
	"P": true, "Pc": true, "Pd": true, "Ps": true, "Pe": true, "Pi": true, "Pf": true, "Po": true,
	"Z": true, "Zs": true, "Zl": true, "Zp": true,
	"S": true, "Sm": true, "Sc": true, "Sk": true, "So": true,
	"C": true, "Cc": true, "Cf": true, "Co": true, "Cn": true,
}

// property reads {Name} after \p or \P and returns class contents.
func (p *reParser) property() (string, error) {
	if p.peek() != '{' {
		return "", fmt.Errorf(`\p must be followed by {name}`)
	}
	p.i++
	st := p.i
	for p.peek() != '}' && p.peek() != -1 {
		p.i++
	}
	if p.peek() != '}' {
		return "", fmt.Errorf(`unterminated \p{`)
	}
	name := string(p.src[st:p.i])
	p.i++
	if categories[name] {
		if name == "Cn" {
			return "", fmt.Errorf(`the category \p{Cn} (unassigned) is not supported by Go's regexp package`)
		}
		return `\p{` + name + `}`, nil
	}
	if strings.HasPrefix(name, "Is") {
		if r, ok := blocks[name[2:]]; ok {
			return r, nil
		}
		return "", fmt.Errorf(`the Unicode block \p{%s} is not supported`, name)
	}
	return "", fmt.Errorf(`unknown character property \p{%s}`, name)
}

// escape reads after a backslash. Outside a class it returns an RE2 atom;
// inside one (inClass) it returns class contents, with a leading ^ marking
// a negated set.
func (p *reParser) escape(inClass bool) (string, error) {
	c := p.peek()
	if c == -1 {
		return "", fmt.Errorf("trailing backslash")
	}
	p.i++
	switch c {
	case 'n':
		return `\n`, nil
	case 'r':
		return `\r`, nil
	case 't':
		return `\t`, nil
	case '\\', '|', '.', '?', '*', '+', '(', ')', '{', '}', '-', '[', ']', '^':
		return regexp.QuoteMeta(string(c)), nil
	case 'p', 'P':
		set, err := p.property()
		if err != nil {
			return "", err
		}
		if c == 'P' {
			if !inClass {
				return "[^" + set + "]", nil
			}
			return "^" + set, nil
		}
		if !inClass {
			return "[" + set + "]", nil
		}
		return set, nil
	}
	if m, ok := multiEscapes[c]; ok {
		if inClass {
			if m.neg {
				return "^" + m.set, nil
			}
			return m.set, nil
		}
		if m.neg {
			return "[^" + m.set + "]", nil
		}
		return "[" + m.set + "]", nil
	}
	return "", fmt.Errorf(`unknown escape \%c`, c)
}

// charClass reads a class after its [, writing an RE2 equivalent.
func (p *reParser) charClass(b *strings.Builder) error {
	neg := false
	if p.peek() == '^' {
		neg = true
		p.i++
	}
	var pos strings.Builder
	var negSets []string // negated multi-character escapes, e.g. \S
	first := true
	for {
		c := p.peek()
		switch {
		case c == -1:
			return fmt.Errorf("unterminated character class")
		case c == ']' && !first:
			p.i++
			return writeClass(b, neg, pos.String(), negSets)
		case c == '[':
			return fmt.Errorf("a nested character class is not allowed")
		case c == '-' && !first && p.i+1 < len(p.src) && p.src[p.i+1] == '[':
			return fmt.Errorf("character class subtraction (-[...]) is not supported by Go's regexp package (RE2)")
		}
		first = false
		var lo rune
		if c == '\\' {
			p.i++
			e, err := p.escape(true)
			if err != nil {
				return err
			}
			if len(e) == 2 && e[0] == '\\' && strings.ContainsRune(`\|.?*+(){}-[]^`, rune(e[1])) || e == `\n` || e == `\r` || e == `\t` {
				lo = map[string]rune{`\n`: '\n', `\r`: '\r', `\t`: '\t'}[e]
				if lo == 0 {
					lo = rune(e[1])
				}
			} else {
				if strings.HasPrefix(e, "^") {
					negSets = append(negSets, e[1:])
				} else {
					pos.WriteString(e)
				}
				continue
			}
		} else {
			if c == '-' && p.i+1 < len(p.src) && p.src[p.i+1] != ']' && pos.Len() > 0 {
				return fmt.Errorf("a '-' in a character class must be escaped or be first or last")
			}
			lo = c
			p.i++
		}
		hi := lo
		if p.peek() == '-' && p.i+1 < len(p.src) && p.src[p.i+1] != ']' && p.src[p.i+1] != '[' {
			p.i++
			h := p.peek()
			p.i++
			if h == '\\' {
				e, err := p.escape(true)
				if err != nil {
					return err
				}
				rs := []rune(e)
				switch {
				case e == `\n`:
					h = '\n'
				case e == `\r`:
					h = '\r'
				case e == `\t`:
					h = '\t'
				case len(rs) == 2 && rs[0] == '\\':
					h = rs[1]
				default:
					return fmt.Errorf("a range cannot end with a multi-character escape")
				}
			}
			hi = h
			if hi < lo {
				return fmt.Errorf("bad range %c-%c", lo, hi)
			}
		}
		pos.WriteString(classChar(lo))
		if hi != lo {
			pos.WriteByte('-')
			pos.WriteString(classChar(hi))
		}
	}
}

func classChar(r rune) string {
	return `\x{` + strconv.FormatInt(int64(r), 16) + `}`
}

func writeClass(b *strings.Builder, neg bool, pos string, negSets []string) error {
	switch {
	case len(negSets) == 0:
		if pos == "" {
			return fmt.Errorf("empty character class")
		}
		if neg {
			b.WriteString("[^" + pos + "]")
		} else {
			b.WriteString("[" + pos + "]")
		}
	case neg:
		// [^a\S] is \s minus a: an intersection RE2 cannot write.
		return fmt.Errorf("a negated character class containing a negated escape (such as [^a\\S]) is not supported by Go's regexp package (RE2)")
	default:
		b.WriteString("(?:")
		sep := ""
		if pos != "" {
			b.WriteString("[" + pos + "]")
			sep = "|"
		}
		for _, s := range negSets {
			b.WriteString(sep + "[^" + s + "]")
			sep = "|"
		}
		b.WriteString(")")
	}
	return nil
}
