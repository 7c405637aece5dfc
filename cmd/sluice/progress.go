package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress reports long work: on a terminal, one line redrawn in place
// with the rate and, when the total is known, the ETA; otherwise a plain
// line every plainEvery, for logs.
type progress struct {
	w          io.Writer
	tty        bool
	label      string
	total      int64 // 0: unknown
	start      time.Time
	plainEvery time.Duration

	mu        sync.Mutex
	lastPrint time.Time
	lastDone  int64
	lastAt    time.Time
	rate      float64 // smoothed, per second
	printed   bool
	// shown is the line on the terminal now, "" when none: a log writer
	// (logWriter) clears it before a log line and draws it again after.
	shown string
}

// newProgress reports to w, as a terminal line when w is a terminal.
func newProgress(w io.Writer, label string, total int64) *progress {
	f, ok := w.(*os.File)
	return newProgressTo(w, ok && isTerminal(f), label, total)
}

func newProgressTo(w io.Writer, tty bool, label string, total int64) *progress {
	now := time.Now()
	return &progress{w: w, tty: tty, label: label, total: total, start: now, lastAt: now, plainEvery: 10 * time.Second}
}

// update reports done units so far and extra text; it prints when due
// (on a terminal at most 4 times a second).
func (p *progress) update(done int64, extra string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if dt := now.Sub(p.lastAt).Seconds(); dt >= 0.2 {
		r := float64(done-p.lastDone) / dt
		if p.rate == 0 {
			p.rate = r
		} else {
			p.rate = 0.7*p.rate + 0.3*r
		}
		p.lastDone, p.lastAt = done, now
	}
	every := p.plainEvery
	if p.tty {
		every = 250 * time.Millisecond
	}
	if p.printed && now.Sub(p.lastPrint) < every {
		return
	}
	p.print(now, done, extra, false)
}

// finish prints the final line.
func (p *progress) finish(done int64, extra string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.print(time.Now(), done, extra, true)
}

func (p *progress) print(now time.Time, done int64, extra string, final bool) {
	p.lastPrint, p.printed = now, true
	line := p.line(now, done, extra, final)
	if p.tty {
		end := ""
		p.shown = line
		if final {
			end, p.shown = "\n", ""
		}
		fmt.Fprintf(p.w, "\r\033[K%s%s", line, end)
		return
	}
	fmt.Fprintln(p.w, line)
}

// line formats the progress: label: done/total (pct) · rate/s · ETA · extra.
func (p *progress) line(now time.Time, done int64, extra string, final bool) string {
	var b strings.Builder
	b.WriteString(p.label)
	b.WriteString(": ")
	b.WriteString(count(done))
	if p.total > 0 {
		fmt.Fprintf(&b, "/%s (%d%%)", count(p.total), done*100/p.total)
	}
	rate := p.rate
	if final {
		if secs := now.Sub(p.start).Seconds(); secs > 0 {
			rate = float64(done) / secs
		}
	}
	fmt.Fprintf(&b, " · %s/s", count(int64(rate)))
	switch {
	case final:
		fmt.Fprintf(&b, " · took %s", now.Sub(p.start).Round(100*time.Millisecond))
	case p.total > 0 && rate > 0 && done < p.total:
		eta := time.Duration(float64(p.total-done) / rate * float64(time.Second))
		fmt.Fprintf(&b, " · ETA %s", eta.Round(time.Second))
	}
	if extra != "" {
		b.WriteString(" · ")
		b.WriteString(extra)
	}
	return b.String()
}

// count formats n with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// logWriter returns w for log lines that go to the terminal p draws its
// line on. On a terminal, each write clears the progress line first and
// draws it again after, so that a log line never runs into it; elsewhere
// it is w. Each write must be whole lines (a slog handler writes one
// record per call).
func (p *progress) logWriter(w io.Writer) io.Writer {
	if !p.tty {
		return w
	}
	return &besideProgress{p: p, w: w}
}

// besideProgress is logWriter's writer.
type besideProgress struct {
	p *progress
	w io.Writer
}

func (b *besideProgress) Write(data []byte) (int, error) {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	if b.p.shown == "" {
		return b.w.Write(data)
	}
	fmt.Fprint(b.p.w, "\r\033[K")
	n, err := b.w.Write(data)
	fmt.Fprint(b.p.w, b.p.shown)
	return n, err
}
