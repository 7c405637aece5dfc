package cursorsource

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPositionRoundTrip(t *testing.T) {
	t.Parallel()
	c := "2026-12-08 10:00:00.5+00"
	p := position{Tables: map[string]progress{
		"public.orders": {Cursor: &c, Key: []string{"42", "a\"b"}},
		"public.lookup": {},
	}}
	s := p.String()
	require.Equal(t, `cursor:{"tables":{"public.lookup":{},"public.orders":{"cursor":"2026-12-08 10:00:00.5+00","key":["42","a\"b"]}}}`, s)
	back, err := parsePosition(s)
	require.NoError(t, err)
	require.Equal(t, p, back)
}

// FuzzParsePosition: a position from outside is refused or read back as
// it is written.
func FuzzParsePosition(f *testing.F) {
	f.Add(`cursor:{"tables":{"s.t":{"cursor":"1","key":["2"]}}}`)
	f.Add(`cursor:{}`)
	f.Add(`lsn:0/0`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePosition(s)
		if err != nil {
			require.ErrorIs(t, err, ErrBadPosition)
			return
		}
		again, err := parsePosition(p.String())
		require.NoError(t, err)
		require.Equal(t, p, again)
	})
}
