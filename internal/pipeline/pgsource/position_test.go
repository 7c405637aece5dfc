package pgsource

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPositions(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]position{
		"":                         {},
		"snapshot:16/B374D848:2:7": {kind: posSnapshot, lsn: 0x16B374D848, table: 2, rows: 7},
		"snapshot-done:0/1F12938":  {kind: posSnapshotDone, lsn: 0x1F12938},
		"lsn:16/B374D848":          {kind: posLSN, lsn: 0x16B374D848},
	} {
		p, err := parsePosition(s)
		require.NoError(t, err, s)
		require.Equal(t, want, p, s)
		require.Equal(t, s, p.String())
	}
	done, _ := parsePosition("snapshot-done:0/10")
	require.EqualValues(t, 0x10, done.streamFrom(), "a transaction committing at the consistent point is streamed")
	last, _ := parsePosition("lsn:0/10")
	require.EqualValues(t, 0x11, last.streamFrom(), "the last transaction staged is not")
}

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"", "snapshot:16/B374D848:2:7", "snapshot-done:0/1F12938", "lsn:16/B374D848", "lsn:FFFFFFFF/FFFFFFFF", "snapshot::1:1"} {
		f.Add(s)
	}
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
