package pipeline

import (
	"context"
	"log/slog"
)

// QuietDeadLetters wraps a log handler to drop the "event dead-lettered"
// records of one function, which the host logs for every event it
// dead-letters (debug records are kept). The pipeline dead-letters
// corrupt telemetry as a matter of course, a share of every second's
// events: Stats count them and `sluice deadletters list` shows them, and
// a log line each would bury everything else.
func QuietDeadLetters(h slog.Handler, function string) slog.Handler {
	return &quietDeadLetters{Handler: h, function: function}
}

type quietDeadLetters struct {
	slog.Handler
	function string
	matched  bool // the logger's attributes name the function
}

func (h *quietDeadLetters) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "event dead-lettered" && r.Level > slog.LevelDebug {
		match := h.matched
		r.Attrs(func(a slog.Attr) bool {
			match = match || h.names(a)
			return !match
		})
		if match {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h *quietDeadLetters) names(a slog.Attr) bool {
	return a.Key == "function" && a.Value.String() == h.function
}

func (h *quietDeadLetters) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := &quietDeadLetters{Handler: h.Handler.WithAttrs(attrs), function: h.function, matched: h.matched}
	for _, a := range attrs {
		n.matched = n.matched || h.names(a)
	}
	return n
}

func (h *quietDeadLetters) WithGroup(name string) slog.Handler {
	return &quietDeadLetters{Handler: h.Handler.WithGroup(name), function: h.function, matched: h.matched}
}
