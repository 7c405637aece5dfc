package handler

import (
	"encoding/json"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// The payloads are written by hand, appending JSON to byte slices, because
// encoding/json (reflection on maps, sorting their keys, compacting every
// json.RawMessage again when it is marshaled) was most of the host's CPU
// per invocation. The output is byte for byte what json.Marshal writes for
// the same values, which the tests check against it: HTML-safe strings,
// object keys sorted, no insignificant space.

// hexDigits are the digits of \u00XX escapes.
const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes a JSON string holds as they are; the others
// are escaped as encoding/json escapes them (with <, > and & HTML-safe).
// Bytes from 0x80 are UTF-8, handled apart.
var plain = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

// appendString appends s as a JSON string, as json.Marshal writes it:
// ", \ and control characters escaped (\n, \r, \t, \b, \f or \u00XX),
// <, > and & as \u003c, \u003e and \u0026, U+2028 and U+2029 as \u2028
// and \u2029, and each byte of invalid UTF-8 as \ufffd.
func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s, false)
	return append(dst, '"')
}

// appendStringTwice appends s as json.Marshal writes the string of
// json.Marshal(s): compat mode's string values.
func appendStringTwice[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"', '\\', '"')
	dst = appendEscaped(dst, s, true)
	return append(dst, '\\', '"', '"')
}

// appendEscaped appends s as the inside of a JSON string (what
// appendString writes between the quotes) or, twice, that inside as the
// inside of a string again: what is escaped in s is escaped twice (\n
// becomes \\n, " becomes \\\"), and the rest, which needs no escape,
// is as it is both times. So a JSON value encoded as a string, as compat
// mode sends arrays, is written at once, its strings escaped twice.
func appendEscaped[S ~string | ~[]byte](dst []byte, s S, twice bool) []byte {
	escape := func(dst []byte) []byte { // the backslash of an escape
		if twice {
			return append(dst, '\\', '\\')
		}
		return append(dst, '\\')
	}
	start := 0 // s[start:i] is still to be appended as it is
	for i := 0; i < len(s); {
		if i = skipPlain(s, i); i == len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			dst = escape(dst)
			switch b {
			case '"', '\\':
				if twice {
					dst = append(dst, '\\')
				}
				dst = append(dst, b)
			case '\n':
				dst = append(dst, 'n')
			case '\r':
				dst = append(dst, 'r')
			case '\t':
				dst = append(dst, 't')
			case '\b':
				dst = append(dst, 'b')
			case '\f':
				dst = append(dst, 'f')
			default: // other control characters, and <, > and &
				dst = append(dst, 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		// A short string of at most 4 bytes is converted on the stack.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(escape(dst), "ufffd"...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(escape(dst), 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// skipPlain returns the index of the first byte from i on that is not
// plain ASCII, or len(s).
func skipPlain[S ~string | ~[]byte](s S, i int) int {
	for ; i+8 <= len(s); i += 8 {
		if m := notPlain(word(s[i : i+8])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(s); i++ {
		if b := s[i]; b >= utf8.RuneSelf || !plain[b] {
			break
		}
	}
	return i
}

// word is the first 8 bytes of s as a little-endian word.
func word[S ~string | ~[]byte](s S) uint64 {
	s = s[:8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// notPlain tests 8 bytes at once, bodies being mostly long runs of
// plain ASCII: it has the top bit of a byte set where x has a byte that is
// not plain, and maybe in bytes above such a byte (the first is exact).
func notPlain(x uint64) uint64 {
	m := x & tops                    // from 0x80: UTF-8
	m |= (x - 0x20*ones) &^ x & tops // below 0x20: control characters
	m |= zeros(x ^ '\\'*ones)
	m |= zeros((x | 0x04*ones) ^ '&'*ones)   // " (0x22) or & (0x26)
	return m | zeros((x|0x02*ones)^'>'*ones) // < (0x3c) or > (0x3e)
}

const ones, tops = 0x0101010101010101, 0x8080808080808080

// zeros has the top bit of a byte set where x has a 0 byte (and maybe
// in bytes above it: it is exact as to whether there is one).
func zeros(x uint64) uint64 { return (x - ones) &^ x & tops }

// appendCompact appends src, which must be valid JSON, as json.Marshal
// writes a json.RawMessage: without the space outside strings, and with
// <, >, &, U+2028 and U+2029 escaped.
func appendCompact(dst, src []byte) []byte {
	inString := false
	start := 0 // src[start:i] is still to be appended as it is
	for i := 0; i < len(src); i++ {
		c := src[i]
		if !inString {
			switch c {
			case '"':
				inString = true
			case ' ', '\t', '\n', '\r':
				dst = append(dst, src[start:i]...)
				start = i + 1
			}
			continue
		}
		switch c {
		case '\\':
			i++ // the escaped byte goes with it
		case '"':
			inString = false
		case '<', '>', '&':
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			start = i + 1
		case 0xe2: // U+2028 and U+2029 are E2 80 A8 and E2 80 A9
			if i+2 < len(src) && src[i+1] == 0x80 && src[i+2]&^1 == 0xa8 {
				dst = append(dst, src[start:i]...)
				dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[src[i+2]&0xf])
				i += 2
				start = i + 1
			}
		}
	}
	return append(dst, src[start:]...)
}

// sortedKeys appends m's keys to buf (usually on the caller's stack) and
// sorts them, as json.Marshal orders a map's members.
func sortedKeys[V any](m map[string]V, buf []string) []string {
	for k := range m {
		buf = append(buf, k)
	}
	slices.Sort(buf)
	return buf
}

// appendRawObject appends m as json.Marshal writes a
// map[string]json.RawMessage whose values are already as json.Marshal
// writes them (compact, HTML-safe): keys sorted, a nil map as null, a nil
// or empty value as null.
func appendRawObject(dst []byte, m map[string]json.RawMessage) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	var stack [16]string
	keys := sortedKeys(m, stack[:0])
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		if v := m[k]; len(v) > 0 {
			dst = append(dst, v...)
		} else {
			dst = append(dst, "null"...)
		}
	}
	return append(dst, '}')
}

// appendRequest appends r as json.Marshal writes it, given values that
// are already as json.Marshal writes them, as the payload functions make
// them: {"Data":{...},"Metadata":{...}}.
func appendRequest(dst []byte, r Request) []byte {
	dst = append(dst, `{"Data":`...)
	dst = appendRawObject(dst, r.Data)
	dst = append(dst, `,"Metadata":`...)
	dst = appendRawObject(dst, r.Metadata)
	return append(dst, '}')
}
