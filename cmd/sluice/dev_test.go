package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/demo"
)

// TestDemoHints: the commands sluice dev suggests reach it, on whatever
// address it listens.
func TestDemoHints(t *testing.T) {
	o := demo.Options{}.WithDefaults()
	hints := demoHints("http://127.0.0.1:7070", o, "drone-0001")
	require.Contains(t, hints, "curl -s http://127.0.0.1:7070/api/devices/drone-0001\n")
	require.Contains(t, hints, "sluice hub lag telemetry\n")
	require.NotContains(t, hints, "--server", "the default address needs no --server")

	hints = demoHints("http://127.0.0.1:7171", o, "drone-0001")
	require.Contains(t, hints, "curl -s http://127.0.0.1:7171/api/devices/drone-0001\n")
	n := 0
	for l := range strings.Lines(hints) {
		if strings.HasPrefix(strings.TrimSpace(l), "sluice ") {
			n++
			require.True(t, strings.HasSuffix(l, " --server http://127.0.0.1:7171\n"), "%q", l)
		}
	}
	require.Equal(t, 4, n)
}
