package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/gateway"
)

// tailPollEvery is how long hub tail --follow waits before asking again
// when no partition had a new event.
const tailPollEvery = 200 * time.Millisecond

func hubTail(args []string) error {
	fs := flagSet("hub tail", "sluice hub tail NAME [flags]", `
Print a hub's events, from every partition or one, oldest first by the time
they were enqueued: at most --limit events in all. With --follow, keep
printing new events (all of them) until interrupted. --json prints each
event as one JSON object per line.

Examples:
  sluice hub tail telemetry --limit 3
  sluice hub tail telemetry --from 5m --partition 2
  sluice hub tail telemetry --from end --follow --json | jq -c .body`)
	c := clientFlags(fs)
	partition := fs.Int("partition", -1, "only this partition")
	from := fs.String("from", "start", "where to begin: start, end, an RFC 3339 time, or a duration ago like 15m")
	limit := fs.Int("limit", 100, "print at most this many events in all, the oldest first (without --follow)")
	follow := fs.Bool("follow", false, "keep waiting for new events until interrupted (--limit does not apply)")
	name, err := parseName(fs, args, "hub")
	if err != nil {
		return err
	}
	if *limit < 1 {
		return usagef("--limit %d: give 1 or more", *limit)
	}
	start, err := tailFrom(*from)
	if err != nil {
		return err
	}
	var h gateway.HubJSON
	if _, err := c.do("GET", "/api/v1/hubs/"+url.PathEscape(name), nil, "", nil, &h); err != nil {
		return err
	}
	if *partition >= h.Partitions || (isSet(fs, "partition") && *partition < 0) {
		return usagef("--partition %d: hub %s has partitions 0 to %d", *partition, name, h.Partitions-1)
	}
	t := &tailer{c: c, hub: name, from: start, enc: json.NewEncoder(stdout)}
	for p := range h.Partitions {
		if *partition >= 0 && *partition != p {
			continue
		}
		tp := &tailPartition{p: p}
		for _, pi := range h.PartitionInfo {
			if pi.Partition != p {
				continue
			}
			tp.last = pi.LastSequence
			if start == "end" {
				// Start after the newest event, so that nothing sent while
				// following is missed between requests.
				tp.after, tp.started = pi.LastSequence, true
			}
		}
		t.parts = append(t.parts, tp)
	}
	if !*follow {
		return t.oldest(*limit)
	}
	for {
		n, err := t.round()
		if err != nil {
			return err
		}
		if n == 0 {
			time.Sleep(tailPollEvery)
		}
	}
}

// tailFrom turns --from into the API's from: start, end, or an RFC 3339
// time.
func tailFrom(from string) (string, error) {
	if from == "start" || from == "end" {
		return from, nil
	}
	if d, err := time.ParseDuration(from); err == nil && d >= 0 {
		return time.Now().Add(-d).UTC().Format(time.RFC3339Nano), nil
	}
	if _, err := time.Parse(time.RFC3339Nano, from); err == nil {
		return from, nil
	}
	return "", usagef("--from %q: use start, end, an RFC 3339 time like 2026-01-02T15:04:05Z, or a duration ago like 15m", from)
}

// tailer reads a hub's partitions for hub tail.
type tailer struct {
	c     *client
	hub   string
	from  string // where a partition not read yet begins
	parts []*tailPartition
	enc   *json.Encoder
}

// tailPartition is one partition's reading position and the events read
// but not printed yet.
type tailPartition struct {
	p       int
	started bool  // after is the position
	after   int64 // the sequence number of the last event read
	last    int64 // the newest event's when the command started (-1: none)
	pending []gateway.EventJSON
	done    bool // nothing more to print (without --follow)
}

// fetch reads up to n events of the partition after its position.
func (t *tailer) fetch(tp *tailPartition, n int) ([]gateway.EventJSON, error) {
	q := url.Values{"limit": {strconv.Itoa(min(n, 1000))}, "wait": {"0s"}}
	if tp.started {
		q.Set("after", strconv.FormatInt(tp.after, 10))
	} else {
		q.Set("from", t.from)
	}
	var out struct{ Events []gateway.EventJSON }
	if _, err := t.c.do("GET", fmt.Sprintf("/api/v1/hubs/%s/partitions/%d/events", url.PathEscape(t.hub), tp.p), q, "", nil, &out); err != nil {
		return nil, err
	}
	if k := len(out.Events); k > 0 {
		tp.after, tp.started = out.Events[k-1].Sequence, true
	}
	return out.Events, nil
}

// oldest prints the limit oldest events of the partitions (from t.from),
// merged by enqueued time: each partition is read in order, a page at a
// time, and the partition whose next event is the oldest goes first.
func (t *tailer) oldest(limit int) error {
	for printed := 0; printed < limit; printed++ {
		var next *tailPartition
		for _, tp := range t.parts {
			if len(tp.pending) == 0 && !tp.done {
				if tp.last < 0 || (tp.started && tp.after >= tp.last) {
					// Empty, or read up to the newest event there was at
					// the start: the command prints what was stored then.
					tp.done = true
					continue
				}
				evs, err := t.fetch(tp, limit-printed)
				if err != nil {
					return err
				}
				tp.pending, tp.done = evs, len(evs) == 0
			}
			if len(tp.pending) > 0 && (next == nil || olderEvent(tp.pending[0], next.pending[0]) < 0) {
				next = tp
			}
		}
		if next == nil {
			return nil
		}
		t.print(next.pending[0])
		next.pending = next.pending[1:]
	}
	return nil
}

// round prints the events stored in every partition after its position,
// merged by enqueued time, and returns how many.
func (t *tailer) round() (int, error) {
	var evs []gateway.EventJSON
	for _, tp := range t.parts {
		got, err := t.fetch(tp, 1000)
		if err != nil {
			return 0, err
		}
		evs = append(evs, got...)
	}
	slices.SortStableFunc(evs, olderEvent)
	for _, e := range evs {
		t.print(e)
	}
	return len(evs), nil
}

// olderEvent orders events by enqueued time, then partition and sequence.
func olderEvent(a, b gateway.EventJSON) int {
	return cmp.Or(a.EnqueuedTime.Compare(b.EnqueuedTime), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Sequence, b.Sequence))
}

func (t *tailer) print(e gateway.EventJSON) {
	if t.c.json {
		_ = t.enc.Encode(e)
		return
	}
	body := "<binary " + strconv.Itoa(len(e.BodyBase64)) + " bytes>"
	if e.Body != nil {
		body = *e.Body
	}
	extra := ""
	if e.PartitionKey != "" {
		extra += " key=" + e.PartitionKey
	}
	for _, k := range slices.Sorted(maps.Keys(e.Properties)) {
		extra += " " + k + "=" + e.Properties[k]
	}
	fmt.Fprintf(stdout, "%d/%d %s%s %s\n", e.Partition, e.Sequence, e.EnqueuedTime.Local().Format("15:04:05.000"), extra, body)
}
