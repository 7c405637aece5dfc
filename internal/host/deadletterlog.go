package host

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Dead letters are logged per function and interval, not per input: a
// function that dead-letters a share of a busy stream would otherwise
// write a WARN line per input and bury every other line. The first dead
// letter of a quiet function is logged at once, so that a problem shows
// the moment it starts; the ones after it are summed up once per interval
// (count, the count of each reason, one sample's source and reason) for as
// long as they keep coming. An interval without any makes the function
// quiet again. Every dead letter is still logged at DEBUG, and counted in
// the sluice_deadlettered_total metric.

// DeadLetterLogEvery is the interval of a function's dead-letter summary.
const DeadLetterLogEvery = 10 * time.Second

const (
	// maxLoggedReasons bounds the distinct reasons counted per interval;
	// more are counted together as other reasons.
	maxLoggedReasons = 20
	// maxReasonBytes bounds a reason's text in the summary.
	maxReasonBytes = 200
	// shownReasons is how many reasons a summary line names.
	shownReasons = 5
)

// deadLetterLog sums up each function's dead letters for the log.
type deadLetterLog struct {
	log   *slog.Logger
	every time.Duration

	mu      sync.Mutex
	fns     map[string]*deadLetterWindow
	stopped bool
}

// deadLetterWindow is a function's dead letters since its last summary.
// A function has one while it is not quiet.
type deadLetterWindow struct {
	count   int
	reasons map[string]int
	sample  DeadLetter // the first of the interval
	timer   *time.Timer
}

func newDeadLetterLog(log *slog.Logger, every time.Duration) *deadLetterLog {
	return &deadLetterLog{log: log, every: every, fns: map[string]*deadLetterWindow{}}
}

// add notes a function's dead letters: logged at once when the function
// was quiet, else counted for its next summary.
func (l *deadLetterLog) add(function string, letters []DeadLetter) {
	if len(letters) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.fns[function]
	if w == nil || l.stopped {
		now := &deadLetterWindow{}
		for _, dl := range letters {
			now.note(dl)
		}
		if l.stopped {
			l.write(function, now, "while the host stops")
			return
		}
		l.write(function, now, "first after a quiet interval; more are summed up every "+l.every.String())
		w = &deadLetterWindow{}
		w.timer = time.AfterFunc(l.every, func() { l.flush(function, w) })
		l.fns[function] = w
		return
	}
	for _, dl := range letters {
		w.note(dl)
	}
}

// flush writes a function's summary of the interval that ended, or makes
// the function quiet when there is nothing to sum up.
func (l *deadLetterLog) flush(function string, w *deadLetterWindow) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fns[function] != w {
		return // stopped meanwhile
	}
	if w.count == 0 {
		delete(l.fns, function)
		return
	}
	l.write(function, w, "in the last "+l.every.String())
	w.count, w.reasons = 0, nil
	w.timer.Reset(l.every)
}

// stop writes the summaries of the interval under way; dead letters after
// it are logged one call at a time.
func (l *deadLetterLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	for _, function := range slices.Sorted(maps.Keys(l.fns)) {
		w := l.fns[function]
		w.timer.Stop()
		if w.count > 0 {
			l.write(function, w, "since the last summary, as the host stops")
		}
	}
	clear(l.fns)
}

func (w *deadLetterWindow) note(dl DeadLetter) {
	if w.count == 0 {
		w.sample = dl
	}
	w.count++
	if w.reasons == nil {
		w.reasons = map[string]int{}
	}
	reason := truncate(dl.Reason, maxReasonBytes)
	if _, ok := w.reasons[reason]; !ok && len(w.reasons) >= maxLoggedReasons {
		reason = "(other reasons)"
	}
	w.reasons[reason]++
}

func (l *deadLetterLog) write(function string, w *deadLetterWindow, when string) {
	l.log.Warn("inputs dead-lettered", "function", function, "count", w.count, "when", when,
		"reasons", reasonCounts(w.reasons), slog.Group("sample", sampleAttrs(w.sample)...))
}

// reasonCounts words the most frequent reasons with their counts.
func reasonCounts(reasons map[string]int) string {
	keys := slices.SortedFunc(maps.Keys(reasons), func(a, b string) int {
		return cmp.Or(cmp.Compare(reasons[b], reasons[a]), strings.Compare(a, b))
	})
	var sb strings.Builder
	for i, r := range keys {
		if i == shownReasons {
			rest := 0
			for _, r := range keys[i:] {
				rest += reasons[r]
			}
			fmt.Fprintf(&sb, "; %d more reasons: %d", len(keys)-i, rest)
			break
		}
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(r + ": " + strconv.Itoa(reasons[r]))
	}
	return sb.String()
}

// sampleAttrs name a dead letter's source and reason.
func sampleAttrs(dl DeadLetter) []any {
	s := dl.Source
	attrs := []any{"source", s.Kind}
	switch s.Kind {
	case "hub":
		attrs = append(attrs, "hub", s.Hub, "group", s.Group, "partition", s.Partition, "sequence", s.Sequence)
	case "container":
		attrs = append(attrs, "container", s.Container, "lsn", s.LSN, "id", s.DocumentID)
	case "queue":
		attrs = append(attrs, "queue", s.Queue, "message_id", s.MessageID)
	case "blob":
		attrs = append(attrs, "container", s.Container, "blob", s.Blob)
	case "timer":
		attrs = append(attrs, "occurrence", s.EnqueuedTime)
	}
	return append(attrs, "reason", truncate(dl.Reason, maxReasonBytes), "attempts", dl.Attempts)
}
