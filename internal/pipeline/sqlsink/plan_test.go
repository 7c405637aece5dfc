package sqlsink

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGroupRowsKeepTheLastChangeOfEachKey(t *testing.T) {
	t.Parallel()
	g := &group{items: []item{
		{change: 0, key: "1"}, {change: 1, key: "2"}, {change: 2, key: "1"}, {change: 3, key: "3"}, {change: 4, key: "2"},
	}}
	var got []int
	for _, it := range g.rows() {
		got = append(got, it.change)
	}
	require.Equal(t, []int{2, 3, 4}, got)
}

func TestChunksStayUnderTheBounds(t *testing.T) {
	t.Parallel()
	rows := make([]item, 10)
	for i := range rows {
		rows[i] = item{change: i, size: 10}
	}
	sizes := func(cs [][]item) []int {
		var out []int
		for _, c := range cs {
			out = append(out, len(c))
		}
		return out
	}
	require.Equal(t, []int{4, 4, 2}, sizes(chunks(rows, 4, 1000)))
	require.Equal(t, []int{3, 3, 3, 1}, sizes(chunks(rows, 100, 35)))
	// A row larger than the byte bound goes alone.
	rows[0].size = 100
	require.Equal(t, []int{1, 3, 3, 3}, sizes(chunks(rows, 100, 35)))
	require.Nil(t, chunks(nil, 4, 10))
}

func TestKeyString(t *testing.T) {
	t.Parallel()
	require.Equal(t, keyString("12"), keyString(json.Number("12")))
	require.NotEqual(t, keyString(nil), keyString(""))
	require.Equal(t, "true", keyString(true))
}

func TestQuoting(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"a""b"`, (&postgres{}).quote(`a"b`))
	require.Equal(t, "`a``b\"`", (&mysqlDB{}).quote("a`b\""))
}

func TestColumnTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ src, pg, my, myKey string }{
		{"int8", "bigint", "BIGINT", "BIGINT"},
		{"bigint", "bigint", "BIGINT", "BIGINT"},
		{"integer", "integer", "INT", "INT"},
		{"int2", "smallint", "SMALLINT", "SMALLINT"},
		{"bool", "boolean", "BOOLEAN", "BOOLEAN"},
		{"numeric(12,2)", "numeric(12,2)", "DECIMAL(12,2)", "DECIMAL(12,2)"},
		{"numeric", "numeric", "DECIMAL(65,30)", "DECIMAL(65,30)"},
		{"float8", "double precision", "DOUBLE", "DOUBLE"},
		{"real", "real", "FLOAT", "FLOAT"},
		{"text", "text", "LONGTEXT", "VARCHAR(255)"},
		{"varchar(40)", "character varying(40)", "VARCHAR(40)", "VARCHAR(40)"},
		{"character varying(40)", "character varying(40)", "VARCHAR(40)", "VARCHAR(40)"},
		{"character varying", "character varying", "LONGTEXT", "VARCHAR(255)"},
		{"varchar(20000)", "character varying(20000)", "LONGTEXT", "VARCHAR(255)"},
		{"bpchar(3)", "character(3)", "CHAR(3)", "CHAR(3)"},
		{"date", "date", "DATE", "DATE"},
		{"timestamptz", "timestamp with time zone", "DATETIME(6)", "DATETIME(6)"},
		{"timestamp(3) with time zone", "timestamp with time zone", "DATETIME(6)", "DATETIME(6)"},
		{"timestamp without time zone", "timestamp without time zone", "DATETIME(6)", "DATETIME(6)"},
		{"time", "time without time zone", "TIME(6)", "TIME(6)"},
		{"uuid", "uuid", "CHAR(36)", "CHAR(36)"},
		{"jsonb", "jsonb", "JSON", "VARCHAR(255)"},
		{"json", "json", "JSON", "VARCHAR(255)"},
		{"bytea", "bytea", "LONGBLOB", "VARBINARY(255)"},
		{"_int4", "integer[]", "LONGTEXT", "VARCHAR(255)"},
		{"text[]", "text[]", "LONGTEXT", "VARCHAR(255)"},
		{"mood", "text", "LONGTEXT", "VARCHAR(255)"},
		{"public.mood", "text", "LONGTEXT", "VARCHAR(255)"},
		{"pg_catalog.int4", "integer", "INT", "INT"},
		{"", "text", "LONGTEXT", "VARCHAR(255)"},
	} {
		require.Equal(t, tc.pg, postgresType(tc.src), tc.src)
		require.Equal(t, tc.my, mysqlType(tc.src, false), tc.src)
		require.Equal(t, tc.myKey, mysqlType(tc.src, true), tc.src)
	}
}

func TestMySQLValues(t *testing.T) {
	t.Parallel()
	m := &mysqlDB{}
	for _, tc := range []struct {
		v             any
		src, dest     string
		want          any
		wantErrString string
	}{
		{"t", "bool", "tinyint(1)", int64(1), ""},
		{"f", "boolean", "tinyint(1)", int64(0), ""},
		{"t", "bool", "varchar(5)", "t", ""},
		{true, "bool", "tinyint(1)", true, ""},
		{"2024-01-02 03:04:05.5-02", "timestamptz", "datetime(6)", "2024-01-02 05:04:05.5", ""},
		{"2024-01-02T03:04:05Z", "timestamptz", "timestamp", "2024-01-02 03:04:05", ""},
		{"2024-01-02 03:04:05+00", "timestamptz", "text", "2024-01-02 03:04:05+00", ""},
		{`\x0aff`, "bytea", "longblob", []byte{0x0a, 0xff}, ""},
		{`\xzz`, "bytea", "longblob", nil, "not hex"},
		{json.Number("1.5"), "numeric", "decimal(10,2)", "1.5", ""},
		{map[string]any{"a": []any{json.Number("1")}}, "jsonb", "longtext", `{"a":[1]}`, ""},
		{nil, "int4", "int(11)", nil, ""},
		{"x", "", "int(11)", "x", ""},
	} {
		got, err := m.value(tc.v, tc.src, tc.dest)
		if tc.wantErrString != "" {
			require.ErrorContains(t, err, tc.wantErrString)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "%v %s→%s", tc.v, tc.src, tc.dest)
	}
}

func TestPostgresValues(t *testing.T) {
	t.Parallel()
	p := &postgres{}
	for _, tc := range []struct{ v, want any }{
		{nil, nil},
		{"x", "x"},
		{json.Number("-1.5e3"), "-1.5e3"},
		{false, "false"},
		{[]any{"a", nil}, `["a",null]`},
	} {
		got, err := p.value(tc.v, "", "")
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
}

func TestMergeMovesDeletesEarlier(t *testing.T) {
	t.Parallel()
	a, b := &destTable{name: "a"}, &destTable{name: "b"}
	g := func(t *destTable, del bool, keys ...string) *group {
		out := &group{id: t.name + map[bool]string{true: "/d", false: "/u"}[del], t: t, delete: del}
		for _, k := range keys {
			out.items = append(out.items, item{key: k})
		}
		return out
	}
	show := func(gs []*group) []string {
		var out []string
		for _, g := range gs {
			s := g.id + ":"
			for _, it := range g.items {
				s += it.key
			}
			out = append(out, s)
		}
		return out
	}
	strict := []*group{
		g(a, false, "1", "2"),
		g(a, true, "3"),
		g(a, false, "4"),
		g(a, true, "5", "6"), // joins the deletes of 3
		g(a, false, "7"),
		g(a, true, "4"), // 4 was upserted after: stays after it
		g(a, false, "8"),
		g(a, true, "9"), // joins the deletes of 4
		g(b, true, "1"), // another table: in order
		g(a, true, "2"), // after a change of b: in order
	}
	require.Equal(t, []string{"a/u:12", "a/d:356", "a/u:47", "a/d:49", "a/u:8", "b/d:1", "a/d:2"}, show(merge(strict)))
	// The strict groups are left as they were.
	require.Equal(t, "a/d:3", show(strict)[1])
}
