package httpsource

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPositionRoundTrip(t *testing.T) {
	t.Parallel()
	p := position{Link: "https://graph.microsoft.com/v1.0/sites/s/lists/l/items/delta?token=a\"b", Phase: delta, From: urlID("https://x/")}
	s := p.String()
	require.Equal(t, `http:{"link":"https://graph.microsoft.com/v1.0/sites/s/lists/l/items/delta?token=a\"b","phase":"delta","from":"`+p.From+`"}`, s)
	back, err := parsePosition(s)
	require.NoError(t, err)
	require.Equal(t, p, back)
}

func TestBadPositionsDoNotQuoteTheirLink(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		`lsn:0/0`,
		`http:{"link":"https://h/x?token=SECRET"`,
		`http:{"link":"https://h/x?token=SECRET","phase":"later","from":"f"}`,
		`http:{"link":"https://h/x?token=SECRET","phase":"delta"}`,
		`http:{"link":"ftp://h/x?token=SECRET","phase":"delta","from":"f"}`,
		`http:{"link":"/x?token=SECRET","phase":"full","from":"f"}`,
	} {
		_, err := parsePosition(s)
		require.ErrorIs(t, err, ErrBadPosition, s)
		require.NotContains(t, err.Error(), "SECRET")
	}
}

// FuzzParsePosition: a position from outside is refused or read back as
// it is written.
func FuzzParsePosition(f *testing.F) {
	f.Add(`http:{"link":"https://h/items/delta?token=1","phase":"delta","from":"9f86d081884c7d65"}`)
	f.Add(`http:{"link":"http://h:8080/a(token='x')","phase":"full","from":"x"}`)
	f.Add(`http:{}`)
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

func TestRedactLink(t *testing.T) {
	t.Parallel()
	for link, want := range map[string]string{
		"https://graph.microsoft.com/v1.0/sites/s/items/delta?token=abc":        "https://graph.microsoft.com/v1.0/sites/s/items/delta?…",
		"https://graph.microsoft.com/v1.0/me/drive/root/delta(token='abc')":     "https://graph.microsoft.com/v1.0/me/drive/root/delta(…)",
		"https://u:pw@host:8443/x#frag":                                         "https://host:8443/x",
		"https://graph.microsoft.com/v1.0/me/drive/root/delta%28token='abc'%29": "https://graph.microsoft.com/v1.0/me/drive/root/delta(…)",
	} {
		require.Equal(t, want, redactLink(link), link)
	}
}
