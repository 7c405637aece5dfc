// Package bench measures Sluice's workloads side by side with the same work
// done directly on the engines, in the same run, so that results compare as
// ratios on a shared, noisy machine. `sluice bench` drives it.
package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is one measured case, printed as one JSON object per line by
// `sluice bench --json`.
type Result struct {
	Workload             string  `json:"workload"`
	Case                 string  `json:"case"`
	Events               int64   `json:"events"`
	Seconds              float64 `json:"seconds"`
	EventsPerSec         float64 `json:"events_per_sec"`
	Baseline             string  `json:"baseline,omitempty"`
	BaselineEvents       int64   `json:"baseline_events,omitempty"`
	BaselineEventsPerSec float64 `json:"baseline_events_per_sec,omitempty"`
	Ratio                float64 `json:"ratio_to_baseline,omitempty"`
	P50ms                float64 `json:"p50_ms,omitempty"`
	P99ms                float64 `json:"p99_ms,omitempty"`
	LatencyAtRate        float64 `json:"latency_at_events_per_sec,omitempty"`
	PeakRSSMiB           float64 `json:"peak_rss_mib,omitempty"`
	Sync                 string  `json:"sync,omitempty"`
	Note                 string  `json:"note,omitempty"`
	// DRLag is the DR replication lag (hub workload, case dr).
	DRLag *DRLag `json:"dr_lag,omitempty"`
	// Error says why the case failed; its figures are then absent.
	Error string `json:"error,omitempty"`
}

// failures collects the cases that failed. Each is reported at once as a
// record with Error, and the run goes on with the other cases, so that one
// failing case never hides the others' results; the run's error lists them.
type failures struct {
	workload string
	errs     []error
}

// add reports case c as failed with err.
func (f *failures) add(report func(Result), c string, err error) {
	report(Result{Workload: f.workload, Case: c, Error: err.Error(), PeakRSSMiB: PeakRSSMiB()})
	f.errs = append(f.errs, fmt.Errorf("case %s: %w", c, err))
}

// err is nil when no case failed.
func (f *failures) err() error { return errors.Join(f.errs...) }

// PeakRSSMiB is the process's peak resident set size so far.
func PeakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// percentiles returns the p50 and p99 of durations in milliseconds.
func percentiles(d []time.Duration) (p50, p99 float64) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := min(int(q*float64(len(d))), len(d)-1)
		return float64(d[i]) / float64(time.Millisecond)
	}
	return at(0.50), at(0.99)
}

func rate(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }

// setBaseline records the baseline: name, its events and how long they took.
func (r *Result) setBaseline(name string, events int64, took time.Duration) {
	r.Baseline, r.BaselineEvents = name, events
	r.BaselineEventsPerSec = rate(events, took)
	r.Ratio = r.EventsPerSec / r.BaselineEventsPerSec
}
