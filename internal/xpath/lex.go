package xpath

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokKind is the kind of a lexical token (XPath 1.0 §3.7).
type tokKind uint8

const (
	tEOF        tokKind = iota
	tNumber             // 12, 1.5, .5
	tLiteral            // "..." or '...'
	tVar                // $qname
	tName               // a NameTest QName
	tStar               // the NameTest *
	tPrefixStar         // the NameTest prefix:*
	tNodeType           // comment, text, processing-instruction, node (before "(")
	tFuncName           // a QName before "("
	tAxis               // an NCName before "::"
	tAnd
	tOr
	tMod
	tDiv
	tMul
	tSlash
	tDSlash
	tPipe
	tPlus
	tMinus
	tEq
	tNeq
	tLt
	tLe
	tGt
	tGe
	tLParen
	tRParen
	tLBracket
	tRBracket
	tDot
	tDDot
	tAt
	tComma
	tDColon
)

var tokNames = [...]string{
	tEOF: "end of expression", tNumber: "number", tLiteral: "string literal", tVar: "variable reference",
	tName: "name", tStar: "*", tPrefixStar: "prefix:*", tNodeType: "node type test", tFuncName: "function name",
	tAxis: "axis name", tAnd: "and", tOr: "or", tMod: "mod", tDiv: "div", tMul: "*", tSlash: "/", tDSlash: "//",
	tPipe: "|", tPlus: "+", tMinus: "-", tEq: "=", tNeq: "!=", tLt: "<", tLe: "<=", tGt: ">", tGe: ">=",
	tLParen: "(", tRParen: ")", tLBracket: "[", tRBracket: "]", tDot: ".", tDDot: "..", tAt: "@", tComma: ",",
	tDColon: "::",
}

func (k tokKind) String() string { return tokNames[k] }

type token struct {
	kind tokKind
	pos  int // byte offset in the source
	// text is the literal's content, the number's source, or the local
	// part of a name; prefix is the prefix of a QName.
	text, prefix string
	num          float64
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "the end of the expression"
	case tNumber:
		return "the number " + t.text
	case tLiteral:
		return fmt.Sprintf("the literal %q", t.text)
	case tVar:
		return "$" + qn(t.prefix, t.text)
	case tName, tFuncName, tAxis, tNodeType:
		return fmt.Sprintf("%q", qn(t.prefix, t.text))
	case tPrefixStar:
		return fmt.Sprintf("%q", t.prefix+":*")
	}
	return fmt.Sprintf("%q", t.kind.String())
}

func qn(prefix, local string) string {
	if prefix == "" {
		return local
	}
	return prefix + ":" + local
}

// SyntaxError is an expression or pattern that cannot be compiled.
type SyntaxError struct {
	Src    string // the expression
	Offset int    // byte offset in Src where the problem was found
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("xpath: %s at offset %d in %s", e.Msg, e.Offset, quoteSrc(e.Src))
}

func quoteSrc(s string) string {
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isNameStart(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.Is(unicode.Nl, r)
}

func isNameChar(r rune) bool {
	return isNameStart(r) || r == '-' || r == '.' || unicode.IsDigit(r) ||
		unicode.In(r, unicode.Mn, unicode.Mc, unicode.Lm, unicode.Nd) || r == 0xB7
}

// lex splits src into tokens, applying the disambiguation rules of §3.7.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	fail := func(pos int, format string, args ...any) ([]token, error) {
		return nil, &SyntaxError{Src: src, Offset: pos, Msg: fmt.Sprintf(format, args...)}
	}
	// operatorContext reports whether, by §3.7, a * is a multiplication and
	// an NCName an operator name here.
	operatorContext := func() bool {
		if len(toks) == 0 {
			return false
		}
		switch toks[len(toks)-1].kind {
		case tAt, tDColon, tLParen, tLBracket, tComma,
			tAnd, tOr, tMod, tDiv, tMul, tSlash, tDSlash, tPipe, tPlus, tMinus,
			tEq, tNeq, tLt, tLe, tGt, tGe:
			return false
		}
		return true
	}
	ncname := func(j int) int { // end of the NCName starting at j, or j
		r, n := utf8.DecodeRuneInString(src[j:])
		if !isNameStart(r) {
			return j
		}
		j += n
		for j < len(src) {
			r, n := utf8.DecodeRuneInString(src[j:])
			if !isNameChar(r) {
				break
			}
			j += n
		}
		return j
	}
	skip := func(j int) int {
		for j < len(src) && isSpace(src[j]) {
			j++
		}
		return j
	}
	for {
		i = skip(i)
		if i >= len(src) {
			toks = append(toks, token{kind: tEOF, pos: i})
			return toks, nil
		}
		start := i
		c := src[i]
		emit := func(k tokKind, n int) {
			toks = append(toks, token{kind: k, pos: start})
			i += n
		}
		switch {
		case c == '(':
			emit(tLParen, 1)
		case c == ')':
			emit(tRParen, 1)
		case c == '[':
			emit(tLBracket, 1)
		case c == ']':
			emit(tRBracket, 1)
		case c == '@':
			emit(tAt, 1)
		case c == ',':
			emit(tComma, 1)
		case c == '|':
			emit(tPipe, 1)
		case c == '+':
			emit(tPlus, 1)
		case c == '-':
			emit(tMinus, 1)
		case c == '=':
			emit(tEq, 1)
		case c == '!':
			if i+1 < len(src) && src[i+1] == '=' {
				emit(tNeq, 2)
			} else {
				return fail(i, "'!' must be followed by '='")
			}
		case c == '<':
			if i+1 < len(src) && src[i+1] == '=' {
				emit(tLe, 2)
			} else {
				emit(tLt, 1)
			}
		case c == '>':
			if i+1 < len(src) && src[i+1] == '=' {
				emit(tGe, 2)
			} else {
				emit(tGt, 1)
			}
		case c == '/':
			if i+1 < len(src) && src[i+1] == '/' {
				emit(tDSlash, 2)
			} else {
				emit(tSlash, 1)
			}
		case c == ':':
			if i+1 < len(src) && src[i+1] == ':' {
				emit(tDColon, 2)
			} else {
				return fail(i, "unexpected ':'")
			}
		case c == '*':
			if operatorContext() {
				emit(tMul, 1)
			} else {
				emit(tStar, 1)
			}
		case c == '"' || c == '\'':
			end := strings.IndexByte(src[i+1:], c)
			if end < 0 {
				return fail(i, "unterminated string literal")
			}
			toks = append(toks, token{kind: tLiteral, pos: i, text: src[i+1 : i+1+end]})
			i += end + 2
		case c == '.' && i+1 < len(src) && src[i+1] == '.':
			emit(tDDot, 2)
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			j := i
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
			if j < len(src) && src[j] == '.' {
				j++
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			toks = append(toks, token{kind: tNumber, pos: i, text: src[i:j], num: parseDecimal(src[i:j])})
			i = j
		case c == '.':
			emit(tDot, 1)
		case c == '$':
			j := ncname(i + 1)
			if j == i+1 {
				return fail(i, "'$' must be followed by a variable name")
			}
			t := token{kind: tVar, pos: i, text: src[i+1 : j]}
			if j+1 < len(src) && src[j] == ':' && src[j+1] != ':' {
				k := ncname(j + 1)
				if k == j+1 {
					return fail(j+1, "a variable name's prefix must be followed by a local name")
				}
				t.prefix, t.text = t.text, src[j+1:k]
				j = k
			}
			toks = append(toks, t)
			i = j
		default:
			j := ncname(i)
			if j == i {
				r, _ := utf8.DecodeRuneInString(src[i:])
				return fail(i, "unexpected character %q", r)
			}
			name := src[i:j]
			if operatorContext() {
				var k tokKind
				switch name {
				case "and":
					k = tAnd
				case "or":
					k = tOr
				case "mod":
					k = tMod
				case "div":
					k = tDiv
				default:
					return fail(i, "expected an operator, found %q", name)
				}
				toks = append(toks, token{kind: k, pos: i})
				i = j
				continue
			}
			t := token{kind: tName, pos: i, text: name}
			if j+1 < len(src) && src[j] == ':' && src[j+1] != ':' {
				if src[j+1] == '*' {
					toks = append(toks, token{kind: tPrefixStar, pos: i, prefix: name})
					i = j + 2
					continue
				}
				k := ncname(j + 1)
				if k == j+1 {
					return fail(j+1, "the prefix %q must be followed by a local name or *", name)
				}
				t.prefix, t.text = name, src[j+1:k]
				j = k
			}
			n := skip(j)
			switch {
			case n < len(src) && src[n] == '(':
				t.kind = tFuncName
				if t.prefix == "" {
					switch t.text {
					case "comment", "text", "processing-instruction", "node":
						t.kind = tNodeType
					}
				}
			case t.prefix == "" && n+1 < len(src) && src[n] == ':' && src[n+1] == ':':
				t.kind = tAxis
			}
			toks = append(toks, t)
			i = j
		}
	}
}
