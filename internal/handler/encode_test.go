package handler

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// TestRequestBodyIsMarshal: Invoke sends what json.Marshal would, byte for
// byte, because every value a payload function makes is already as
// json.Marshal writes it.
func TestRequestBodyIsMarshal(t *testing.T) {
	t.Parallel()
	for _, c := range goldenRequests(t) {
		for _, values := range []map[string]json.RawMessage{c.req.Data, c.req.Metadata} {
			for k, v := range values {
				want, err := json.Marshal(v)
				require.NoError(t, err)
				require.Equal(t, string(want), string(v), "%s: value %s is not as json.Marshal writes it", c.name, k)
			}
		}
		want, err := json.Marshal(c.req)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendRequest(nil, c.req)), c.name)
	}

	odd := []Request{
		{},
		{Data: map[string]json.RawMessage{}, Metadata: map[string]json.RawMessage{"nil": nil}},
		{Data: map[string]json.RawMessage{"<b>": json.RawMessage(`1`), "a\"b": json.RawMessage(`"x"`), "\u2028": json.RawMessage(`[]`), "": json.RawMessage(`{}`)}},
	}
	for _, r := range odd {
		want, err := json.Marshal(r)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendRequest(nil, r)))
	}
	many := Request{Data: map[string]json.RawMessage{}}
	for i := range 40 { // more keys than appendRawObject's stack array
		many.Data[string(rune('A'+i))] = json.RawMessage(`0`)
	}
	want, err := json.Marshal(many)
	require.NoError(t, err)
	require.Equal(t, string(want), string(appendRequest(nil, many)))
}

var stringSeeds = []string{
	"", "plain", `"quoted" \back\slash/`, "<script>&amp;</script>", "\x00\x01\x08\x0c\x1f\x7f", "\n\r\t\b\f",
	"é ü ß 日本語 🎉", "line\u2028para\u2029end", "\xff", "a\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x80",
	"ends with \xe2\x80\xa8", "\ufffd", `{"deviceId":"d1","battery":80}`,
}

func TestAppendString(t *testing.T) {
	t.Parallel()
	for _, s := range stringSeeds {
		checkString(t, s)
	}
	for b := range 256 {
		checkString(t, string([]byte{byte(b)}))
		checkString(t, "x"+string([]byte{byte(b)})+"y")
	}
}

// FuzzAppendString: the hand-written JSON string encoder writes what
// json.Marshal writes, for any string, valid UTF-8 or not.
func FuzzAppendString(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	f.Fuzz(checkString)
}

func checkString(t *testing.T, s string) {
	want, err := json.Marshal(s)
	require.NoError(t, err)
	require.Equal(t, string(want), string(appendString(nil, s)), "string %q", s)
	require.Equal(t, string(want), string(appendString(nil, []byte(s))), "bytes %q", s)
	prefix := []byte("prefix:")
	require.Equal(t, "prefix:"+string(want), string(appendString(prefix, s)))
	if !utf8.ValidString(s) {
		require.Contains(t, string(want), `\ufffd`)
	}
}

// FuzzAppendStringTwice: compat mode's string values are what json.Marshal
// writes for the string of json.Marshal(s).
func FuzzAppendStringTwice(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once, err := json.Marshal(s)
		require.NoError(t, err)
		want, err := json.Marshal(string(once))
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendStringTwice(nil, s)), "%q", s)
		require.Equal(t, string(want), string(appendStringTwice(nil, []byte(s))), "%q", s)
	})
}

// FuzzAppendCompact: valid JSON is appended as json.Marshal writes a
// json.RawMessage of it.
func FuzzAppendCompact(f *testing.F) {
	for _, s := range []string{
		`{}`, ` [ 1 , 2 ] `, "{\"a\" :\t\"<b>&</b>\",\r\n\"c\":[true,false,null, -1.5e3]}",
		`"\"\\\u2028 \u0041 "`, "\"\u2028\u2029\xe2\x80\"", `{"k":"\\"}`, `"` + "\xff" + `"`, "\n\"x\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		want, err := json.Marshal(json.RawMessage(b))
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendCompact([]byte("x"), b)[1:]), "%q", b)
	})
}

// BenchmarkAppendEscaped: a 256-byte JSON body, escaped once and twice.
func BenchmarkAppendEscaped(b *testing.B) {
	bodies := map[string][]byte{
		"json":  []byte(`{"deviceId":"device-0042","battery":80,"temperature":21.5,"firmware":"4.2.1","pad":"` + strings.Repeat("x", 160) + `"}`),
		"plain": []byte(strings.Repeat("x", 256)),
	}
	dst := make([]byte, 0, 1024)
	for name, body := range bodies {
		for _, twice := range []bool{false, true} {
			b.Run(name+map[bool]string{false: "/once", true: "/twice"}[twice], func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					dst = appendEscaped(dst[:0], body, twice)
				}
			})
		}
	}
}
