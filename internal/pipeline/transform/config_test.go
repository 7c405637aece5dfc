package transform_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline/transform"
)

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	one := func(tc transform.TableConfig) transform.Config {
		return transform.Config{Tables: map[string]transform.TableConfig{"public.orders": tc}}
	}
	tests := []struct {
		name string
		cfg  transform.Config
		// want are parts of the message: the field, and what to do.
		want []string
	}{
		{"filter syntax", one(transform.TableConfig{Filter: ".status =="}), []string{`Tables["public.orders"].Filter`, "not a jq expression", `".status =="`}},
		{"filter unknown function", one(transform.TableConfig{Filter: "nosuchfunc(.a)"}), []string{`Tables["public.orders"].Filter`, "nosuchfunc", "cannot be compiled"}},
		{"filter unknown variable", one(transform.TableConfig{Filter: "$row.a"}), []string{"Filter", "$row", "$op, $table and $key"}},
		{"compute syntax", one(transform.TableConfig{Compute: map[string]transform.Computed{"total": {Expr: ".a +* 2"}}}), []string{`Tables["public.orders"].Compute["total"].Expr`, "not a jq expression"}},
		{"compute empty", one(transform.TableConfig{Compute: map[string]transform.Computed{"total": {Type: "numeric"}}}), []string{`Compute["total"].Expr`, "required"}},
		{"compute no name", one(transform.TableConfig{Compute: map[string]transform.Computed{"": {Expr: "1"}}}), []string{"Compute", "empty name"}},
		{"compute excluded", one(transform.TableConfig{Exclude: []string{"total"}, Compute: map[string]transform.Computed{"total": {Expr: "1"}}}), []string{"Exclude", `"total"`, "remove it from one"}},
		{"include and exclude", one(transform.TableConfig{Include: []string{"a"}, Exclude: []string{"b"}}), []string{"Exclude", "Include", "not both"}},
		{"include empty column", one(transform.TableConfig{Include: []string{"a", ""}}), []string{"Include[1]", "empty column name"}},
		{"exclude empty column", one(transform.TableConfig{Exclude: []string{""}}), []string{"Exclude[0]", "empty column name"}},
		{"rename of an excluded column", one(transform.TableConfig{Exclude: []string{"note"}, Rename: map[string]string{"note": "remark"}}), []string{`Rename["note"]`, "Exclude drops", "remove it from one"}},
		{"rename to the same name twice", one(transform.TableConfig{Rename: map[string]string{"a": "x", "b": "x"}}), []string{`Rename["b"]`, `"x"`, "different names"}},
		{"rename to a computed column", one(transform.TableConfig{Rename: map[string]string{"a": "total"}, Compute: map[string]transform.Computed{"total": {Expr: "1"}}}), []string{`Rename["a"]`, "computed column", "pick another name"}},
		{"rename to an included column", one(transform.TableConfig{Include: []string{"a", "b"}, Rename: map[string]string{"a": "b"}}), []string{`Rename["a"]`, "Include keeps", "rename that column too"}},
		{"rename to nothing", one(transform.TableConfig{Rename: map[string]string{"a": ""}}), []string{`Rename["a"]`, "empty"}},
		{"rename of nothing", one(transform.TableConfig{Rename: map[string]string{"": "a"}}), []string{"Rename", "empty column name"}},
		{"empty table name", transform.Config{Tables: map[string]transform.TableConfig{"": {}}}, []string{"Tables", "empty name", `"*"`}},
		{"negative timeout", transform.Config{Timeout: -1}, []string{"Timeout", "negative"}},
		{"wildcard checked too", transform.Config{Tables: map[string]transform.TableConfig{"*": {Filter: "("}}}, []string{`Tables["*"].Filter`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, err := transform.New(tt.cfg)
			require.ErrorIs(t, err, transform.ErrInvalidConfig)
			require.Nil(t, tr)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestNewAcceptsGoodConfig(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]transform.TableConfig{
		"empty":               {},
		"swap two columns":    {Rename: map[string]string{"a": "b", "b": "a"}},
		"rename computed":     {Compute: map[string]transform.Computed{"x": {Expr: "1"}}, Rename: map[string]string{"x": "y"}},
		"rename onto renamed": {Include: []string{"a", "b"}, Rename: map[string]string{"a": "b", "b": "c"}},
		"rename to itself":    {Rename: map[string]string{"a": "a"}},
		"variables":           {Filter: `$op != "read" and $table == "t" and $key.id > 0`},
		"whitespace filter":   {Filter: "  .a  "},
	} {
		_, err := transform.New(transform.Config{Tables: map[string]transform.TableConfig{"t": tc}})
		require.NoError(t, err, name)
	}
}
