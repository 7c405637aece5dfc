package transform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/transform"
)

// FuzzNew compiles arbitrary expressions and column names: New returns a
// Transform or an ErrInvalidConfig, never panics. (The expressions are
// not run: an arbitrary jq program may build a string of gigabytes in
// one step, which no timeout stops.)
func FuzzNew(f *testing.F) {
	for _, s := range []string{
		`.status == "open"`, `.a +* 2`, `$op == "delete"`, `$nosuch`, `def f: f; f`, `.[] | select(.x)`,
		`{(.a): .b}`, `"\(.a)"`, `.a as [$x, {b: $y}] | $x`, `reduce .[] as $x (0; . + $x)`, `@base64d`,
		`try error("x") catch .`, `label $out | foreach .[] as $i (0; .+$i; if . > 3 then ., break $out else empty end)`,
		`input`, `$ENV.HOME`, `env`, `include "x"; .`, `import "a" as a; .`, `$__loc__`, `getpath(["a",0])`, `ltrimstr(1)`,
		"", " ", "(", "]", "\"", "\x00", "\xff", `.a?//1`, `..`, `?//`,
	} {
		f.Add(s, s, "col")
	}
	f.Fuzz(func(t *testing.T, expr, other, col string) {
		tr, err := transform.New(transform.Config{Tables: map[string]transform.TableConfig{
			"public.orders": {Filter: expr, Rename: map[string]string{col: other}},
			"*":             {Compute: map[string]transform.Computed{col: {Expr: expr}, other: {Expr: other}}, Exclude: []string{col + "x"}},
		}})
		if err != nil {
			if tr != nil {
				t.Fatal("a Transform with an error")
			}
			if !errors.Is(err, transform.ErrInvalidConfig) {
				t.Fatalf("%v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		if tr == nil {
			t.Fatal("no Transform and no error")
		}
	})
}

// FuzzValues runs fixed expressions on arbitrary JSON values, decoded as
// change sets are: no panic, the value computed by .v is the value given
// (numbers exact), and everything survives a change set's encoding.
func FuzzValues(f *testing.F) {
	for _, s := range []string{
		`9007199254740993`, `12.50`, `"12.50"`, `1e400`, `-0`, `0.1`, `123456789012345678901234567890`, `1E-7`,
		`{"a":[1,2.5,{"b":null}]}`, `[]`, `{}`, `true`, `null`, `"\u00e9"`, `[1e1000, -1e1000]`,
	} {
		f.Add([]byte(s))
	}
	tr, err := transform.New(transform.Config{Tables: map[string]transform.TableConfig{"t": {
		Filter: `.v == .v`,
		Compute: map[string]transform.Computed{
			"same":    {Expr: `.v`},
			"wrapped": {Expr: `[.v, {v: .v}]`},
			"sum":     {Expr: `try (.v + 1) catch null`},
			"paths":   {Expr: `[paths] | length`},
		},
		Rename: map[string]string{"v": "value"},
	}}})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		c := pipeline.Change{Op: pipeline.Insert, Table: "t", Key: pipeline.Row{"id": "1"}, After: pipeline.Row{"id": "1", "v": v}}
		_, kept, rejected, err := tr.Apply(context.Background(), pipeline.ChangeSet{}, []pipeline.Change{c})
		if err != nil {
			t.Fatal(err)
		}
		if len(kept)+len(rejected) != 1 {
			t.Fatalf("%d kept, %d rejected", len(kept), len(rejected))
		}
		if len(rejected) == 1 {
			// Only a number out of float64's range, made by arithmetic
			// (1e400 + 1 is +Inf), may fail.
			require.Contains(t, rejected[0].Reason, "JSON cannot hold")
			return
		}
		after := kept[0].After
		require.Equal(t, v, after["value"])
		require.Equal(t, v, after["same"])
		require.Equal(t, []any{v, map[string]any{"v": v}}, after["wrapped"])
		if _, err := pipeline.Encode(kept); err != nil {
			t.Fatal(err)
		}
	})
}
