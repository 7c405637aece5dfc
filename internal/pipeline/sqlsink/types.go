package sqlsink

import (
	"strconv"
	"strings"
)

// srcType is a PostgreSQL type name as sources spell it ("int8",
// "character varying(40)", "timestamp(3) with time zone", "_int4",
// "text[]"), taken apart.
type srcType struct {
	base  string // canonical name, "" when unknown
	mods  []int  // the modifiers: length, precision and scale
	array bool
}

// aliases maps PostgreSQL's type names and their aliases to one name.
var aliases = map[string]string{
	"smallint": "smallint", "int2": "smallint", "smallserial": "smallint", "serial2": "smallint",
	"integer": "integer", "int": "integer", "int4": "integer", "serial": "integer", "serial4": "integer",
	"bigint": "bigint", "int8": "bigint", "bigserial": "bigint", "serial8": "bigint",
	"real": "real", "float4": "real",
	"double precision": "double precision", "float8": "double precision", "float": "double precision",
	"numeric": "numeric", "decimal": "numeric",
	"boolean": "boolean", "bool": "boolean",
	"text": "text", "name": "text", "citext": "text",
	"character varying": "varchar", "varchar": "varchar",
	"character": "char", "char": "char", "bpchar": "char",
	"date": "date",
	"time": "time", "time without time zone": "time",
	"timetz": "timetz", "time with time zone": "timetz",
	"timestamp": "timestamp", "timestamp without time zone": "timestamp",
	"timestamptz": "timestamptz", "timestamp with time zone": "timestamptz",
	"interval": "interval",
	"uuid":     "uuid",
	"json":     "json",
	"jsonb":    "jsonb",
	"bytea":    "bytea",
	"inet":     "inet", "cidr": "cidr", "macaddr": "macaddr", "macaddr8": "macaddr8",
	"money": "money",
	"xml":   "xml",
}

func parseType(name string) srcType {
	var t srcType
	s := strings.ToLower(strings.TrimSpace(name))
	if strings.HasSuffix(s, "[]") {
		t.array = true
		s = strings.TrimSpace(strings.TrimSuffix(s, "[]"))
		for strings.HasSuffix(s, "[]") {
			s = strings.TrimSpace(strings.TrimSuffix(s, "[]"))
		}
	} else if strings.HasPrefix(s, "_") {
		// The array types' internal names: _int4.
		t.array = true
		s = s[1:]
	}
	if i := strings.IndexByte(s, '('); i >= 0 {
		if j := strings.IndexByte(s[i:], ')'); j > 0 {
			for _, m := range strings.Split(s[i+1:i+j], ",") {
				n, err := strconv.Atoi(strings.TrimSpace(m))
				if err != nil {
					return srcType{array: t.array}
				}
				t.mods = append(t.mods, n)
			}
			s = strings.TrimSpace(s[:i] + s[i+j+1:])
			s = strings.Join(strings.Fields(s), " ")
		}
	}
	s = strings.TrimPrefix(s, "pg_catalog.")
	t.base = aliases[s]
	return t
}

// postgresType is the PostgreSQL column type of a source type: text when
// the sink does not know the type (an enum, a domain, an extension's).
func postgresType(name string) string {
	t := parseType(name)
	var out string
	switch t.base {
	case "":
		return "text"
	case "varchar", "char":
		out = map[string]string{"varchar": "character varying", "char": "character"}[t.base]
		if len(t.mods) == 1 && t.mods[0] > 0 {
			out += "(" + strconv.Itoa(t.mods[0]) + ")"
		} else if t.base == "char" {
			// bpchar without a length takes any length.
			out = "bpchar"
		}
	case "numeric":
		out = "numeric"
		switch len(t.mods) {
		case 1:
			out += "(" + strconv.Itoa(t.mods[0]) + ")"
		case 2:
			out += "(" + strconv.Itoa(t.mods[0]) + "," + strconv.Itoa(t.mods[1]) + ")"
		}
	case "time":
		out = "time without time zone"
	case "timetz":
		out = "time with time zone"
	case "timestamp":
		out = "timestamp without time zone"
	case "timestamptz":
		out = "timestamp with time zone"
	default:
		out = t.base
	}
	if t.array {
		out += "[]"
	}
	return out
}

// mysqlType is the MariaDB/MySQL column type of a source type: LONGTEXT
// when the sink does not know the type, and for arrays (their text form).
// Key columns cannot be LONGTEXT or LONGBLOB: they become VARCHAR(255) and
// VARBINARY(255).
func mysqlType(name string, key bool) string {
	t := parseType(name)
	text := "LONGTEXT"
	if key {
		text = "VARCHAR(255)"
	}
	if t.array {
		return text
	}
	mod := func(i int) int {
		if i < len(t.mods) {
			return t.mods[i]
		}
		return -1
	}
	switch t.base {
	case "smallint":
		return "SMALLINT"
	case "integer":
		return "INT"
	case "bigint":
		return "BIGINT"
	case "real":
		return "FLOAT"
	case "double precision":
		return "DOUBLE"
	case "numeric":
		p, s := mod(0), max(mod(1), 0)
		if p > 0 && p <= 65 && s <= 30 {
			return "DECIMAL(" + strconv.Itoa(p) + "," + strconv.Itoa(s) + ")"
		}
		// PostgreSQL's numeric without a precision holds any number:
		// MariaDB's widest decimal holds 35 digits before the point.
		return "DECIMAL(65,30)"
	case "money":
		return "DECIMAL(19,2)"
	case "boolean":
		return "BOOLEAN"
	case "varchar":
		if n := mod(0); n > 0 && n <= 16383 && (!key || n <= 768) {
			return "VARCHAR(" + strconv.Itoa(n) + ")"
		}
		return text
	case "char":
		if n := mod(0); n > 0 && n <= 255 {
			return "CHAR(" + strconv.Itoa(n) + ")"
		}
		return text
	case "date":
		return "DATE"
	case "time":
		return "TIME(6)"
	case "timestamp", "timestamptz":
		// timestamptz values are written in UTC (the sink's sessions use
		// time_zone +00:00).
		return "DATETIME(6)"
	case "uuid":
		return "CHAR(36)"
	case "json", "jsonb":
		if key {
			return text
		}
		return "JSON"
	case "bytea":
		if key {
			return "VARBINARY(255)"
		}
		return "LONGBLOB"
	case "inet", "cidr":
		return "VARCHAR(43)"
	case "macaddr", "macaddr8":
		return "VARCHAR(23)"
	}
	return text
}
