package pipeline

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestQuietDeadLetters(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(QuietDeadLetters(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), "telemetry-decode"))
	fn := log.With("function", "telemetry-decode", "hub", "telemetry")
	fn.Warn("event dead-lettered", "sequence", 1)
	log.Warn("event dead-lettered", "function", "telemetry-decode", "sequence", 2)
	fn.WithGroup("g").Warn("event dead-lettered", "sequence", 3)
	fn.Debug("event dead-lettered", "sequence", 4)
	fn.Warn("function failed", "sequence", 5)
	log.With("function", "other").Warn("event dead-lettered", "sequence", 6)
	out := buf.String()
	for _, gone := range []string{"sequence=1", "sequence=2", "g.sequence=3"} {
		assert.NotContains(t, out, gone)
	}
	for _, kept := range []string{"sequence=4", "sequence=5", "sequence=6"} {
		assert.Contains(t, out, kept)
	}
}
