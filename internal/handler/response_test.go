package handler

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseResponse(t *testing.T) {
	r, err := ParseResponse(200, []byte(`{"Outputs":{"out":"hi","res":{"statusCode":"201","body":"made"},"gone":null},"Logs":["one",{"two":2}],"ReturnValue":{"id":"x"}}`))
	require.NoError(t, err)
	require.Equal(t, []string{"one", `{"two":2}`}, r.Logs)
	v, ok := r.Output("OUT") // names match case-insensitively
	require.True(t, ok)
	require.Equal(t, `"hi"`, string(v))
	_, ok = r.Output("gone")
	require.False(t, ok, "a null output is no output")
	v, ok = r.Output("$return")
	require.True(t, ok)
	require.JSONEq(t, `{"id":"x"}`, string(v))

	r, err = ParseResponse(200, []byte(`{"outputs":{"a":1},"logs":null,"returnValue":null}`))
	require.NoError(t, err)
	require.Len(t, r.Outputs, 1)
	_, ok = r.Output("$return")
	require.False(t, ok)

	// Names that differ only in case: the last wins, every time.
	for range 20 {
		r, err = ParseResponse(200, []byte(`{"outputs":{"a":1},"Outputs":{"b":2},"OUTPUTS":{"c":3}}`))
		require.NoError(t, err)
		require.Equal(t, map[string]json.RawMessage{"c": json.RawMessage(`3`)}, r.Outputs)
	}

	r, err = ParseResponse(204, nil)
	require.NoError(t, err, "an empty 2xx answer is a success")
	require.Empty(t, r.Outputs)

	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{500, "boom", "the handler answered 500 Internal Server Error: boom"},
		{404, "", "the handler answered 404 Not Found: (empty)"},
		{200, "not json", "not a JSON object"},
		{200, `[1]`, "not a JSON object (it is a JSON array)"},
		{200, `"x"`, "not a JSON object (it is a JSON string)"},
		{200, `{"Outputs":[1]}`, "Outputs is not an object"},
		{200, `{"Logs":"x"}`, "Logs is not an array"},
	} {
		_, err := ParseResponse(tc.status, []byte(tc.body))
		require.ErrorContains(t, err, tc.want, "%d %q", tc.status, tc.body)
	}
}

func TestMessages(t *testing.T) {
	got, err := Messages(json.RawMessage(`["a",{"b":1},null,2]`), false)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("a"), []byte(`{"b":1}`), []byte("2")}, got)

	got, err = Messages(json.RawMessage(`"dGVzdA=="`), false)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("dGVzdA==")}, got, "a non-binary string is sent as written, even when it looks like base64")

	got, err = Messages(json.RawMessage(`"dGVzdA=="`), true)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("test")}, got)

	_, err = Messages(json.RawMessage(`"not base64!"`), true)
	require.ErrorContains(t, err, "base64")
}

func TestDocuments(t *testing.T) {
	got, err := Documents(json.RawMessage(`{"id":"a"}`))
	require.NoError(t, err)
	require.Len(t, got, 1)
	got, err = Documents(json.RawMessage(`[{"id":"a"},{"id":"b"}]`))
	require.NoError(t, err)
	require.Len(t, got, 2)
	got, err = Documents(json.RawMessage(`"[{\"id\":\"a\"}]"`))
	require.NoError(t, err, "documents encoded in a string are read")
	require.JSONEq(t, `{"id":"a"}`, string(got[0]))
	_, err = Documents(json.RawMessage(`[{"id":"a"},3]`))
	require.ErrorContains(t, err, "element 1 is not a JSON object")
	_, err = Documents(json.RawMessage(`12`))
	require.ErrorContains(t, err, "a container output must be a document")
}

func TestParseHTTPResult(t *testing.T) {
	res, err := ParseHTTPResult(json.RawMessage(`{"statusCode":"201","headers":{"X-A":"1","X-B":["2","3"]},"body":"made"}`))
	require.NoError(t, err)
	require.Equal(t, 201, res.Status)
	require.Equal(t, "1", res.Header.Get("X-A"))
	require.Equal(t, []string{"2", "3"}, res.Header.Values("X-B"))
	require.Equal(t, "made", string(res.Body))

	res, err = ParseHTTPResult(json.RawMessage(`{"status":202,"body":{"ok":true}}`))
	require.NoError(t, err)
	require.Equal(t, 202, res.Status)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	require.JSONEq(t, `{"ok":true}`, string(res.Body))

	// An explicit Content-Type is the only one, whatever the member order.
	for range 20 {
		res, err = ParseHTTPResult(json.RawMessage(`{"body":{"a":1},"headers":{"Content-Type":"application/problem+json"}}`))
		require.NoError(t, err)
		require.Equal(t, []string{"application/problem+json"}, res.Header.Values("Content-Type"))
	}

	res, err = ParseHTTPResult(json.RawMessage(`{"status":500,"statusCode":204}`))
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, res.Status, "statusCode wins over status")

	res, err = ParseHTTPResult(json.RawMessage(`{}`))
	require.NoError(t, err)
	require.Equal(t, 200, res.Status)

	for body, want := range map[string]string{
		`"x"`:                  "an http output must be an object",
		`{"statusCode":"abc"}`: `statusCode "abc" is not a number`,
		`{"statusCode":7}`:     "is not an HTTP status",
		`{"statusCode":true}`:  "statusCode must be a number",
		`{"headers":["a"]}`:    "headers must be an object",
	} {
		_, err := ParseHTTPResult(json.RawMessage(body))
		require.ErrorContains(t, err, want, body)
	}
}

// FuzzParseResponse feeds handler answers to the parsers: they must never
// panic, and every output they accept must come back as bodies.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"Outputs":{"out":["a",{"b":1}],"res":{"statusCode":"201","body":"x"}},"Logs":["l"],"ReturnValue":1}`,
		`{"outputs":{"docs":"[{\"id\":\"a\"}]"}}`, `{}`, ``, `null`, `{"Outputs":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseResponse(200, body)
		if err != nil {
			return
		}
		for name := range r.Outputs {
			v, ok := r.Output(name)
			if !ok {
				continue
			}
			_, _ = Messages(v, false)
			_, _ = Messages(v, true)
			_, _ = Documents(v)
			_, _ = ParseHTTPResult(v)
		}
	})
}

func BenchmarkParseResponse(b *testing.B) {
	for name, body := range map[string]string{
		"empty":   `{"Outputs":{}}`,
		"outputs": `{"Outputs":{"out":{"id":"x","n":1}},"Logs":["one"],"ReturnValue":null}`,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseResponse(200, []byte(body)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
