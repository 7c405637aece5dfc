package main

import (
	"bytes"
	"io"
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

// TestLogBesideProgress: on a terminal, a log line clears the progress
// line and the progress line is drawn again after it, so that the two
// never share a line; elsewhere the log is written as it is.
func TestLogBesideProgress(t *testing.T) {
	var term bytes.Buffer // the progress line and the log share it
	p := newProgressTo(&term, true, "demo", 0)
	log := p.logWriter(&term)
	_, err := log.Write([]byte("before the progress line\n"))
	require.NoError(t, err)
	require.Equal(t, "before the progress line\n", term.String(), "no line to clear yet")

	p.update(42, "lag 0")
	line := strings.TrimPrefix(term.String(), "before the progress line\n")
	require.True(t, strings.HasPrefix(line, "\r\033[Kdemo: 42 · "), line)
	term.Reset()
	_, err = log.Write([]byte("level=WARN msg=slow\n"))
	require.NoError(t, err)
	require.Equal(t, "\r\033[K"+"level=WARN msg=slow\n"+strings.TrimPrefix(line, "\r\033[K"), term.String(),
		"cleared, the log line, then the progress line again")

	p.finish(50, "")
	term.Reset()
	_, err = log.Write([]byte("after the last line\n"))
	require.NoError(t, err)
	require.Equal(t, "after the last line\n", term.String(), "the final line stays")

	var plain bytes.Buffer
	notTerm := newProgressTo(&plain, false, "demo", 0)
	require.Equal(t, io.Writer(&plain), notTerm.logWriter(&plain), "not a terminal: the log as it is")
}
