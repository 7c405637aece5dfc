package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProgressLines(t *testing.T) {
	var out bytes.Buffer
	p := newProgressTo(&out, false, "redrive", 1000)
	p.start = time.Now().Add(-10 * time.Second)
	p.rate = 50
	p.update(500, "3 failed")
	require.Equal(t, "redrive: 500/1,000 (50%) · 50/s · ETA 10s · 3 failed\n", out.String(), "a plain line at once")
	p.update(600, "")
	require.Equal(t, 1, strings.Count(out.String(), "\n"), "plain lines are spaced out")
	p.finish(1000, "")
	require.Regexp(t, `redrive: 1,000/1,000 \(100%\) · (99|100)/s · took 10s\n`, out.String())

	out.Reset()
	tty := newProgressTo(&out, true, "demo", 0)
	tty.update(1234567, "lag 12")
	require.True(t, strings.HasPrefix(out.String(), "\r\033[Kdemo: 1,234,567 · "), out.String())
	require.NotContains(t, out.String(), "\n", "a terminal line is redrawn in place")
	require.Equal(t, "-1,000", count(-1000))
	require.Equal(t, "999", count(999))
}
