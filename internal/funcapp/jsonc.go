package funcapp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Azure reads host.json and function.json with Json.NET, which skips a UTF-8
// byte order mark, // and /* */ comments and trailing commas. Apps written for
// it carry them, so decodeJSON accepts them too.

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// relax returns a copy of data without its byte order mark, with comments and
// trailing commas replaced by spaces. Every other byte keeps its offset, so
// the positions of syntax errors stay true.
func relax(data []byte) []byte {
	out := bytes.Clone(bytes.TrimPrefix(data, utf8BOM))
	blankComments(out)
	blankTrailingCommas(out)
	return out
}

// skipString returns the index of the quote closing the string that opens at
// b[i], or len(b) when it is not closed.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(b)
}

func blankComments(b []byte) {
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '"':
			i = skipString(b, i)
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '/':
			for ; i < len(b) && b[i] != '\n'; i++ {
				b[i] = ' '
			}
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '*':
			end := bytes.Index(b[i+2:], []byte("*/"))
			if end < 0 {
				return // unterminated: left for the decoder to refuse
			}
			end += i + 4
			for ; i < end; i++ {
				if b[i] != '\n' && b[i] != '\r' {
					b[i] = ' '
				}
			}
			i--
		}
	}
}

func blankTrailingCommas(b []byte) {
	var prev byte // the last byte outside strings that is not white space
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			i = skipString(b, i)
		case ',':
			j := i + 1
			for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
				j++
			}
			if j < len(b) && (b[j] == ']' || b[j] == '}') && prev != '[' && prev != '{' && prev != ',' {
				b[i] = ' '
				continue
			}
		}
		prev = c
	}
}

// decodeJSON decodes one JSON document (relaxed as above), numbers as
// json.Number. A syntax error names its line and column.
func decodeJSON(data []byte) (any, error) {
	text := relax(data)
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			return nil, errors.New("the file is empty; it must hold one JSON object")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, syntaxError(text, len(text), "unexpected end of file (a bracket, brace or quote is not closed)")
		case errors.As(err, &syn):
			return nil, syntaxError(text, int(syn.Offset)-1, syn.Error())
		default:
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
	}
	rest := int(dec.InputOffset())
	for rest < len(text) && (text[rest] == ' ' || text[rest] == '\t' || text[rest] == '\n' || text[rest] == '\r') {
		rest++
	}
	if rest < len(text) {
		return nil, syntaxError(text, rest, "unexpected content after the end of the JSON value")
	}
	return v, nil
}

// syntaxError names the line and column (1-based, in characters) of byte pos.
func syntaxError(text []byte, pos int, msg string) error {
	pos = max(0, min(pos, len(text)))
	line := 1 + bytes.Count(text[:pos], []byte("\n"))
	start := bytes.LastIndexByte(text[:pos], '\n') + 1
	col := 1 + utf8.RuneCount(text[start:pos])
	return fmt.Errorf("invalid JSON at line %d, column %d: %s", line, col, msg)
}
