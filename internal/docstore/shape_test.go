package docstore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
)

// shapeOf is CheckShape's answer computed from encoding/json's tokens, for
// valid JSON: the deepest nesting, and the first member named twice in
// its object (found false when none).
func shapeOf(t *testing.T, v []byte) (depth int, dup string, found bool) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(v))
	type frame struct {
		object, wantKey bool
		seen            map[string]bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return depth, dup, found
		}
		require.NoError(t, err)
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				if top != nil && top.object {
					top.wantKey = true
				}
				stack = append(stack, &frame{object: tok == '{', wantKey: tok == '{', seen: map[string]bool{}})
				depth = max(depth, len(stack))
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.object && top.wantKey {
				if top.seen[tok] && !found {
					dup, found = tok, true
				}
				top.seen[tok] = true
				top.wantKey = false
				continue
			}
		}
		if top != nil && top.object {
			top.wantKey = true
		}
	}
}

func TestCheckShape(t *testing.T) {
	for _, c := range []struct {
		doc, dup, path string
		depth          int
	}{
		{`{"a":1}`, "", "", 1},
		{`{"a":{"b":[1,{"c":2}]}}`, "", "", 4},
		{`{"a":1,"a":2}`, "a", "", 1},
		{`{"a":1,"\u0061":2}`, "a", "", 1},
		{`{"a":{"x":1},"b":{"x":1}}`, "", "", 2},
		{`{"a":[{"x":1},{"x":1,"y":[{"k":0,"k":1}]}]}`, "k", "a[1].y[0]", 5},
		{`{"a b":{"\"":1,"\"":2}}`, `"`, `["a b"]`, 2},
		{`["x","x",{"x":"x","y":"x"}]`, "", "", 2},
		{`{"k":"k","v":{"k":"k"}}`, "", "", 2},
	} {
		err := docstore.CheckShape([]byte(c.doc), "document", 0)
		if c.dup == "" {
			require.NoError(t, err, c.doc)
		} else {
			var derr *docstore.DuplicateMemberError
			require.ErrorAs(t, err, &derr, c.doc)
			require.Equal(t, c.dup, derr.Name, c.doc)
			require.Equal(t, c.path, derr.Path, c.doc)
			require.ErrorIs(t, err, docstore.ErrInvalid)
		}
		if c.dup == "" {
			require.NoError(t, docstore.CheckShape([]byte(c.doc), "document", c.depth), c.doc)
			err := docstore.CheckShape([]byte(c.doc), "document", c.depth-1)
			if c.depth > 1 {
				var derr *docstore.DepthError
				require.ErrorAs(t, err, &derr, c.doc)
				require.ErrorIs(t, err, docstore.ErrInvalid)
			}
		}
	}
	// Many members: the map takes over from comparing one by one.
	var b strings.Builder
	b.WriteString(`{"m":{`)
	for i := range 100 {
		b.WriteString(`"k` + strings.Repeat("x", i) + `":1,`)
	}
	b.WriteString(`"kxxxxx":2}}`)
	var derr *docstore.DuplicateMemberError
	require.ErrorAs(t, docstore.CheckShape([]byte(b.String()), "document", 0), &derr)
	require.Equal(t, "kxxxxx", derr.Name)
	require.Equal(t, "m", derr.Path)
}

// FuzzCheckShape checks CheckShape against encoding/json's tokens on
// valid JSON, and that it never panics on anything else.
func FuzzCheckShape(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `{"a":1,"a":2}`, `{"a":[{"b":1,"b":2}]}`, `[[[[1]]]]`, `{"\u0061":1,"a":2}`, `{"a":"}","b":"{"}`,
		`{"a":{"b":{"c":{}}},"d":[]}`, `"x"`, `{"a":1,`, `{"a\"":1,"a\"":2}`,
	} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, v []byte, maxDepth int) {
		maxDepth = max(maxDepth%8, 0)
		err := docstore.CheckShape(v, "document", maxDepth)
		if !json.Valid(v) {
			return
		}
		depth, dup, found := shapeOf(t, v)
		var derr *docstore.DepthError
		var merr *docstore.DuplicateMemberError
		switch {
		case maxDepth > 0 && depth > maxDepth:
			// The walk stops at the first of the two it meets.
			if !errors.As(err, &derr) {
				require.ErrorAs(t, err, &merr, "%q: depth %d over %d", v, depth, maxDepth)
			}
		case found:
			require.ErrorAs(t, err, &merr, "%q", v)
			require.Equal(t, dup, merr.Name, "%q", v)
		default:
			require.NoError(t, err, "%q", v)
		}
	})
}
