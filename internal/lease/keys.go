package lease

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// encodeToken turns any string into one token of a KV key. Letters, digits,
// '-' and '=' stay as they are; every other byte, '.' and '_' included,
// becomes '_' and two hex digits. The mapping is injective, so distinct set
// names (or instance IDs) never share keys, and the result holds no '.', so a
// set's keys can be watched with "<set>.>" without matching another set's.
func encodeToken(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '=':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "_%02X", c)
		}
	}
	return b.String()
}

// keys names the keys of one set.
type keys struct{ prefix string }

func keysFor(set string) keys { return keys{prefix: encodeToken(set)} }

func (k keys) all() string             { return k.prefix + ".>" }
func (k keys) owners() string          { return k.prefix + ".o.*" }
func (k keys) members() string         { return k.prefix + ".m.*" }
func (k keys) owner(unit int) string   { return k.prefix + ".o." + strconv.Itoa(unit) }
func (k keys) member(id string) string { return k.prefix + ".m." + encodeToken(id) }

// parse splits a key of this set into its kind ("m" or "o") and last token.
func (k keys) parse(key string) (kind, token string, ok bool) {
	rest, ok := strings.CutPrefix(key, k.prefix+".")
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, ".")
}

// ownerValue is the value of an ownership key. Session tells this process
// apart from an earlier one with the same instance ID.
type ownerValue struct {
	Owner   string `json:"owner"`
	Session string `json:"session"`
}

// memberValue is the value of a member heartbeat key.
type memberValue struct {
	Instance string `json:"instance"`
	Session  string `json:"session"`
	Units    int    `json:"units"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs of strings and ints are marshalled
	}
	return b
}
