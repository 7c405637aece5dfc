package transform

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"

	"github.com/sluicehq/sluice/internal/pipeline"
)

// Values cross into jq as they are when they are JSON values: gojq
// (since 0.12.20) takes json.Number itself and keeps it exact (an
// integer of any size, and "12.50" as written, until arithmetic makes a
// new number). Go numbers of other types, which changes decoded from a
// change set never hold but a caller's own could, are converted; any
// other type (gojq panics on those) rejects the change.

// jqInput is row as jq's input: the row itself when every value is a
// JSON value (no copy), or a converted copy.
func jqInput(row pipeline.Row) (map[string]any, error) {
	m := map[string]any(row)
	if m == nil {
		return map[string]any{}, nil
	}
	for _, v := range m {
		if !isJQ(v) {
			return convertRow(m)
		}
	}
	return m, nil
}

func convertRow(m map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(m))
	for col, v := range m {
		c, err := toJQ(v)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", col, err)
		}
		out[col] = c
	}
	return out, nil
}

// isJQ reports whether v is a value jq takes as it is.
func isJQ(v any) bool {
	switch v := v.(type) {
	case nil, bool, string, json.Number, int, float64, *big.Int:
		return true
	case map[string]any:
		for _, x := range v {
			if !isJQ(x) {
				return false
			}
		}
		return true
	case []any:
		for _, x := range v {
			if !isJQ(x) {
				return false
			}
		}
		return true
	}
	return false
}

// toJQ converts v to the types jq takes.
func toJQ(v any) (any, error) {
	switch v := v.(type) {
	case nil, bool, string, json.Number, int, float64, *big.Int:
		return v, nil
	case int8:
		return int(v), nil
	case int16:
		return int(v), nil
	case int32:
		return int(v), nil
	case int64:
		return int(v), nil // int is 64 bits wide on every platform Sluice builds for
	case uint8:
		return int(v), nil
	case uint16:
		return int(v), nil
	case uint32:
		return int(v), nil
	case uint:
		return toJQ(uint64(v))
	case uint64:
		if v <= math.MaxInt {
			return int(v), nil
		}
		return new(big.Int).SetUint64(v), nil
	case float32:
		return float64(v), nil
	case pipeline.Row:
		return toJQ(map[string]any(v))
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			c, err := toJQ(x)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			c, err := toJQ(x)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return nil, fmt.Errorf("a Go value of type %T is not a JSON value (a row holds nil, bool, string, json.Number, and maps and slices of those)", v)
}

// fromJQ converts a jq result to what rows hold: numbers as json.Number
// (integers written out in full, never as 1e+06), other values as they
// are.
func fromJQ(v any) (any, error) {
	out, _, err := fromJQChanged(v)
	return out, err
}

// fromJQChanged is fromJQ, saying whether it had to convert anything:
// maps and slices are copied only then.
func fromJQChanged(v any) (any, bool, error) {
	switch v := v.(type) {
	case nil, bool, string, json.Number:
		return v, false, nil
	case int:
		return json.Number(strconv.Itoa(v)), true, nil
	case *big.Int:
		return json.Number(v.String()), true, nil
	case float64:
		n, err := floatNumber(v)
		return n, true, err
	case map[string]any:
		var out map[string]any
		for k, x := range v {
			c, changed, err := fromJQChanged(x)
			if err != nil {
				return nil, false, fmt.Errorf("at .%s: %w", k, err)
			}
			if changed && out == nil {
				out = make(map[string]any, len(v))
				for k2, x2 := range v {
					out[k2] = x2
				}
			}
			if out != nil {
				out[k] = c
			}
		}
		if out == nil {
			return v, false, nil
		}
		return out, true, nil
	case []any:
		var out []any
		for i, x := range v {
			c, changed, err := fromJQChanged(x)
			if err != nil {
				return nil, false, fmt.Errorf("at [%d]: %w", i, err)
			}
			if changed && out == nil {
				out = make([]any, len(v))
				copy(out, v)
			}
			if out != nil {
				out[i] = c
			}
		}
		if out == nil {
			return v, false, nil
		}
		return out, true, nil
	}
	return nil, false, fmt.Errorf("a value of type %T, which is not JSON", v)
}

// floatNumber writes f as encoding/json does (plain digits between 1e-6
// and 1e21, so 1000000.0 is "1000000"; an exponent outside), the
// shortest text that reads back as f. NaN and the infinities are not
// JSON: an error.
func floatNumber(f float64) (json.Number, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("the number %v, which JSON cannot hold: guard the expression (isnan, isinfinite)", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return json.Number(strconv.FormatFloat(f, format, -1, 64)), nil
}
