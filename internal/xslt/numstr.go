package xslt

import (
	"math"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/xpath"
)

// numberString converts a number to a string as libxml2 does when
// xsltproc writes it with xsl:value-of or in an attribute value template:
// integers in C int range as they are, others with 15 significant digits
// and trailing zeros dropped, and in exponent form outside [1e-5, 1e9]
// (0.1 + 0.2 gives 0.3, 1e23 gives 1e+23). XPath 1.0's own rule (the
// shortest exact decimal, never an exponent) is what xpath.String does
// inside expressions, so string(0.1 + 0.2) still gives
// 0.30000000000000004.
func numberString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	case f > math.MinInt32 && f < math.MaxInt32 && f == math.Trunc(f):
		return strconv.Itoa(int(f))
	}
	abs := math.Abs(f)
	var s string
	if abs > 1e9 || abs < 1e-5 {
		s = strconv.FormatFloat(f, 'e', 14, 64)
		mant, exp, _ := strings.Cut(s, "e")
		if strings.Contains(mant, ".") {
			mant = strings.TrimRight(mant, "0")
			mant = strings.TrimSuffix(mant, ".")
		}
		return mant + "e" + exp
	}
	place := int(math.Log10(abs)) // truncated toward zero, as C's (int)
	frac := 15 - place
	if place > 0 {
		frac--
	}
	s = strconv.FormatFloat(f, 'f', frac, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	return s
}

// stringOf converts an expression's value for output: numbers as xsltproc
// writes them, anything else as XPath's string().
func stringOf(v xpath.Value) string {
	if f, ok := v.(float64); ok {
		return numberString(f)
	}
	return xpath.String(v)
}
