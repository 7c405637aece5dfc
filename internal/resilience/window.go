package resilience

import "time"

// windowBuckets is how many buckets a rolling window is cut into: counts
// are precise to a 30th of the window.
const windowBuckets = 30

// window counts failures over a rolling window in buckets of a fixed size.
// It is driven by the times passed to it, never by the wall clock, so tests
// step it deterministically. Not safe for concurrent use.
type window struct {
	size    time.Duration // of a bucket
	length  time.Duration // of the window
	buckets [windowBuckets + 1]bucket
}

// bucket holds the failures of the interval starting at Start.
type bucket struct {
	Start    int64 `json:"s"` // unix milliseconds
	Failures int   `json:"n"`
}

func newWindow(length time.Duration) *window {
	return &window{size: max(length/windowBuckets, time.Millisecond), length: length}
}

func (w *window) startOf(t time.Time) int64 {
	size := w.size.Milliseconds()
	ms := t.UnixMilli()
	return ms - ms%size
}

// add counts n failures at t.
func (w *window) add(t time.Time, n int) {
	start := w.startOf(t)
	b := &w.buckets[(start/w.size.Milliseconds())%int64(len(w.buckets))]
	if b.Start != start {
		*b = bucket{Start: start}
	}
	b.Failures += n
}

// reset forgets every count.
func (w *window) reset() { w.buckets = [windowBuckets + 1]bucket{} }

// snapshot returns the non-empty buckets still in the window at now, to
// share with other instances.
func (w *window) snapshot(now time.Time) []bucket {
	var out []bucket
	for _, b := range w.buckets {
		if b.Failures > 0 && inWindow(b.Start, w.size, w.length, now, time.Time{}) {
			out = append(out, b)
		}
	}
	return out
}

// sum counts the failures in the window at now, leaving out buckets that
// started before since (a reset).
func (w *window) sum(now, since time.Time) int {
	return sumBuckets(w.buckets[:], w.size, w.length, now, since)
}

// sumBuckets adds the failures of the buckets (of the given size) that
// overlap the window of the given length ending at now and started at or
// after since.
func sumBuckets(bs []bucket, size, length time.Duration, now, since time.Time) int {
	n := 0
	for _, b := range bs {
		if b.Failures > 0 && inWindow(b.Start, size, length, now, since) {
			n += b.Failures
		}
	}
	return n
}

func inWindow(start int64, size, length time.Duration, now, since time.Time) bool {
	end := start + size.Milliseconds()
	return end > now.Add(-length).UnixMilli() && start <= now.UnixMilli() &&
		(since.IsZero() || start >= since.UnixMilli())
}
