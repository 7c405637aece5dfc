package transform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/itchyny/gojq"
)

// The variables every expression may use besides the row (its input).
var variables = []string{"$op", "$table", "$key"}

// An expr is a compiled jq expression and its source, for messages.
type expr struct {
	src  string
	code *gojq.Code
}

// compile compiles a jq expression that may not read the environment
// ($ENV and env are empty) nor other inputs.
func compile(src string) (*expr, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%q is not a jq expression: %v", src, err)
	}
	code, err := gojq.Compile(q, gojq.WithVariables(variables), gojq.WithEnvironLoader(func() []string { return nil }))
	if err != nil {
		return nil, fmt.Errorf("%q cannot be compiled: %v (the row is the input; $op, $table and $key are the only variables)", src, err)
	}
	return &expr{src: src, code: code}, nil
}

// errNoResult: the expression gave no result.
var errNoResult = errors.New("no result")

// run runs e on input and returns its one result (errNoResult when it
// gives none). runCtx is ctx with the change's deadline (timeout from
// its first run). ctx's end is returned as it is, for Apply to stop; the
// deadline's is an error of the change.
func (e *expr) run(ctx, runCtx context.Context, timeout time.Duration, input any, vars []any) (out any, err error) {
	defer func() {
		// gojq panics on values of types it does not know; the inputs are
		// checked, so this is a last guard that costs one row, not the
		// process.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("jq failed: %v", r)
		}
	}()
	iter := e.code.RunWithContext(runCtx, input, vars...)
	v, ok := iter.Next()
	if !ok {
		return nil, errNoResult
	}
	if err, isErr := v.(error); isErr {
		return nil, e.runError(ctx, runCtx, timeout, err)
	}
	if more, ok := iter.Next(); ok {
		if err, isErr := more.(error); isErr {
			return nil, e.runError(ctx, runCtx, timeout, err)
		}
		return nil, errors.New("more than one result: make it one (first(...), any(...), all(...), or [...] for an array)")
	}
	return v, nil
}

func (e *expr) runError(ctx, runCtx context.Context, timeout time.Duration, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if runCtx.Err() != nil {
		return fmt.Errorf("ran longer than %s (Config.Timeout)", timeout)
	}
	return fmt.Errorf("jq: %v", err)
}

// describe is v as short JSON, for messages.
func describe(v any) string {
	b, err := gojq.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(fmt.Sprint(v))
	}
	s := string(b)
	if len(s) > 80 {
		s = strings.ToValidUTF8(s[:77], "") + "..."
	}
	return s
}
