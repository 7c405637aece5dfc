package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/hub"
)

func hubCommands() []command {
	return []command{
		{"create", "create a hub", hubCreate},
		{"list", "list hubs", hubList},
		{"describe", "show a hub and the state of each partition", hubDescribe},
		{"delete", "delete a hub and all its events", hubDelete},
		{"send", "send events to a hub", hubSend},
		{"tail", "print a hub's events", hubTail},
		{"lag", "show how far a consumer group is behind, per partition", hubLag},
		{"replay", "move a consumer group back (or forward) to a time or sequence numbers", hubReplay},
	}
}

func runHub(args []string) error {
	return runVerbs("hub", "Manage hubs: partitioned, replayable event streams.", hubCommands(), args)
}

// runVerbs runs the verb of a noun's command named by args[0], or prints
// the noun's help.
func runVerbs(noun, about string, cmds []command, args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		usage(stdout, "sluice "+noun, about, cmds)
		if len(args) == 0 {
			return usagef("missing verb")
		}
		return nil
	}
	for _, c := range cmds {
		if c.name == args[0] {
			return c.run(args[1:])
		}
	}
	return usagef("unknown verb %q; run 'sluice %s --help'", args[0], noun)
}

// parseName parses flags and the one positional argument, a name of what.
func parseName(fs *flag.FlagSet, args []string, what string) (string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", usagef("give exactly one %s name (got %d arguments)", what, len(pos))
	}
	return pos[0], nil
}

func (c *client) print(raw []byte, text func(w *tabwriter.Writer)) {
	if c.json {
		stdout.Write(raw)
		return
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	text(w)
	w.Flush()
}

func hubCreate(args []string) error {
	fs := flagSet("hub create", "sluice hub create NAME [flags]", `
Create a hub. The partition count cannot change later: the partition of an
event's key depends on it.`)
	c := clientFlags(fs)
	partitions := fs.Int("partitions", hub.DefaultPartitions, "number of partitions (1-1024)")
	retention := fs.Duration("retention", hub.DefaultRetention, "how long events are kept")
	retentionBytes := fs.Int64("retention-bytes", 0, "bound on the hub's stored bytes, oldest first (0: none)")
	name, err := parseName(fs, args, "hub")
	if err != nil {
		return err
	}
	var h gateway.HubJSON
	raw, err := c.do("POST", "/api/v1/hubs", nil, "application/json", jsonBody(gateway.CreateHubRequest{
		Name: name, Partitions: *partitions, Retention: retention.String(), RetentionBytes: *retentionBytes}), &h)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "created hub %s with %d partitions, retention %s\n", h.Name, h.Partitions, h.Retention)
	})
	return nil
}

func hubList(args []string) error {
	fs := flagSet("hub list", "sluice hub list [flags]", "List hubs.")
	c := clientFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var out struct{ Hubs []gateway.HubJSON }
	raw, err := c.do("GET", "/api/v1/hubs", nil, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tPARTITIONS\tRETENTION\tCREATED")
		for _, h := range out.Hubs {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", h.Name, h.Partitions, h.Retention, h.Created.Local().Format(time.DateTime))
		}
	})
	return nil
}

func hubDescribe(args []string) error {
	fs := flagSet("hub describe", "sluice hub describe NAME [flags]", "Show a hub's settings and each partition's stored events.")
	c := clientFlags(fs)
	name, err := parseName(fs, args, "hub")
	if err != nil {
		return err
	}
	var h gateway.HubJSON
	raw, err := c.do("GET", "/api/v1/hubs/"+url.PathEscape(name), nil, "", nil, &h)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "hub %s: %d partitions, retention %s, created %s\n\n", h.Name, h.Partitions, h.Retention, h.Created.Local().Format(time.DateTime))
		fmt.Fprintln(w, "PARTITION\tRECORDS\tBYTES\tFIRST SEQ\tLAST SEQ\tLAST ENQUEUED")
		for _, p := range h.PartitionInfo {
			last := "-"
			if !p.LastEnqueued.IsZero() {
				last = p.LastEnqueued.Local().Format(time.DateTime)
			}
			fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%d\t%s\n", p.Partition, p.Records, p.Bytes, p.FirstSequence, p.LastSequence, last)
		}
	})
	return nil
}

func hubDelete(args []string) error {
	fs := flagSet("hub delete", "sluice hub delete NAME --yes [flags]", "Delete a hub with all its events and consumer-group checkpoints.")
	c := clientFlags(fs)
	yes := fs.Bool("yes", false, "confirm: the events cannot be recovered")
	name, err := parseName(fs, args, "hub")
	if err != nil {
		return err
	}
	if !*yes {
		return usagef("deleting hub %s destroys its events; add --yes to confirm", name)
	}
	if _, err := c.do("DELETE", "/api/v1/hubs/"+url.PathEscape(name), nil, "", nil, nil); err != nil {
		return err
	}
	c.print([]byte(`{"deleted":"`+name+`"}`+"\n"), func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted hub %s\n", name) })
	return nil
}

func hubSend(args []string) error {
	fs := flagSet("hub send", "sluice hub send NAME [BODY...] [flags]", `
Send events to a hub. Each BODY argument is one event. Without BODY
arguments, events are read from standard input: one per line with --lines,
otherwise the whole input is one event. Events are sent as JSON when every
body is valid JSON, as raw bytes otherwise.

With --message-id, sending the one event again is harmless: the hub stores
an id once within its duplicate window (10 minutes by default) and answers
a repeat with the stored event's position.

Examples:
  sluice hub send telemetry '{"device":"d1","temp":21.5}' --key d1
  cat events.ndjson | sluice hub send telemetry --lines
  sluice hub send telemetry hello --property source=cli --partition 2
  sluice hub send orders '{"order":17,"paid":true}' --message-id order-17-paid`)
	c := clientFlags(fs)
	key := fs.String("key", "", "partition key: events with the same key keep their order")
	partition := fs.Int("partition", -1, "explicit partition (instead of a key)")
	lines := fs.Bool("lines", false, "read standard input as one event per line")
	messageID := fs.String("message-id", "", "message id of the one event: the hub stores it once within its duplicate window")
	var props multiFlag
	fs.Var(&props, "property", "event property name=value (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("give the hub name")
	}
	name, bodies := pos[0], pos[1:]
	if len(bodies) == 0 {
		in, err := io.ReadAll(os.Stdin)
		if err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
		if *lines {
			sc := bufio.NewScanner(bytes.NewReader(in))
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			for sc.Scan() {
				if l := strings.TrimSpace(sc.Text()); l != "" {
					bodies = append(bodies, l)
				}
			}
		} else if len(in) > 0 {
			bodies = append(bodies, string(in))
		}
	}
	if len(bodies) == 0 {
		return usagef("no events: give BODY arguments or pipe them on standard input")
	}
	if *messageID != "" && len(bodies) != 1 {
		return usagef("--message-id names one event, but there are %d: send them one at a time", len(bodies))
	}
	if err := hub.ValidateMessageID(*messageID); err != nil {
		return usagef("--message-id: %v", err)
	}
	q := url.Values{}
	if *key != "" {
		q.Set("partitionKey", *key)
	}
	if *partition >= 0 {
		q.Set("partition", strconv.Itoa(*partition))
	}
	var ctype string
	var body []byte
	allJSON := true
	for _, b := range bodies {
		allJSON = allJSON && json.Valid([]byte(b))
	}
	switch {
	case len(props) > 0:
		ctype = gateway.MediaEnvelope
		properties := map[string]string{}
		for _, p := range props {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" {
				return usagef("--property %q: use name=value", p)
			}
			properties[k] = v
		}
		var batch []map[string]any
		for _, b := range bodies {
			ev := map[string]any{"properties": properties}
			if *messageID != "" {
				ev["message_id"] = *messageID
			}
			if json.Valid([]byte(b)) {
				ev["body"] = json.RawMessage(b)
			} else {
				ev["body_text"] = b
			}
			batch = append(batch, ev)
		}
		body = jsonBody(batch)
	case allJSON:
		ctype = "application/x-ndjson"
		for _, b := range bodies {
			var buf bytes.Buffer
			_ = json.Compact(&buf, []byte(b))
			body = append(append(body, buf.Bytes()...), '\n')
		}
	case len(bodies) == 1:
		ctype, body = "application/octet-stream", []byte(bodies[0])
	default:
		return usagef("several non-JSON bodies: send them one at a time, or as JSON")
	}
	if *messageID != "" && ctype != gateway.MediaEnvelope {
		if c.header == nil {
			c.header = http.Header{}
		}
		c.header.Set(gateway.HeaderMessageID, *messageID)
	}
	var resp gateway.PublishResponse
	raw, err := c.do("POST", "/api/v1/hubs/"+url.PathEscape(name)+"/events", q, ctype, body, &resp)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		for _, p := range resp.Events {
			fmt.Fprintf(w, "stored in partition %d at sequence %d\n", p.Partition, p.Sequence)
		}
	})
	return nil
}

func hubTail(args []string) error {
	fs := flagSet("hub tail", "sluice hub tail NAME [flags]", `
Print a hub's events, oldest first, from every partition or one.
With --follow, keep printing new events until interrupted.`)
	c := clientFlags(fs)
	partition := fs.Int("partition", -1, "only this partition")
	from := fs.String("from", "start", "where to begin: start, end, or an RFC 3339 time")
	limit := fs.Int("limit", 100, "stop after this many events per partition (without --follow)")
	follow := fs.Bool("follow", false, "keep waiting for new events")
	name, err := parseName(fs, args, "hub")
	if err != nil {
		return err
	}
	var h gateway.HubJSON
	if _, err := c.do("GET", "/api/v1/hubs/"+url.PathEscape(name), nil, "", nil, &h); err != nil {
		return err
	}
	parts := []int{}
	for p := range h.Partitions {
		if *partition < 0 || *partition == p {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return usagef("--partition %d: hub %s has partitions 0 to %d", *partition, name, h.Partitions-1)
	}
	after := map[int]int64{}
	if *from == "end" {
		// Start after each partition's newest event, so nothing sent while
		// following is missed between requests.
		for _, pi := range h.PartitionInfo {
			after[pi.Partition] = pi.LastSequence
		}
	}
	printed := map[int]int{}
	enc := json.NewEncoder(stdout)
	for {
		got := 0
		for _, p := range parts {
			q := url.Values{"limit": {strconv.Itoa(min(*limit, 1000))}, "wait": {"200ms"}}
			if a, ok := after[p]; ok {
				q.Set("after", strconv.FormatInt(a, 10))
			} else {
				q.Set("from", *from)
			}
			if !*follow && printed[p] >= *limit {
				continue
			}
			var out struct{ Events []gateway.EventJSON }
			if _, err := c.do("GET", fmt.Sprintf("/api/v1/hubs/%s/partitions/%d/events", url.PathEscape(name), p), q, "", nil, &out); err != nil {
				return err
			}
			for _, e := range out.Events {
				if !*follow && printed[p] >= *limit {
					break
				}
				after[p] = e.Sequence
				printed[p]++
				got++
				if c.json {
					_ = enc.Encode(e)
					continue
				}
				body := "<binary " + strconv.Itoa(len(e.BodyBase64)) + " bytes>"
				if e.Body != nil {
					body = *e.Body
				}
				extra := ""
				if e.PartitionKey != "" {
					extra += " key=" + e.PartitionKey
				}
				keys := make([]string, 0, len(e.Properties))
				for k := range e.Properties {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					extra += " " + k + "=" + e.Properties[k]
				}
				fmt.Fprintf(stdout, "%d/%d %s%s %s\n", e.Partition, e.Sequence, e.EnqueuedTime.Local().Format("15:04:05.000"), extra, body)
			}
		}
		if !*follow && got == 0 {
			return nil
		}
		if *follow && got == 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func hubLag(args []string) error {
	fs := flagSet("hub lag", "sluice hub lag NAME [flags]", `
Show, per partition, the newest event, the consumer group's checkpoint, and
how many stored events come after it.`)
	c := clientFlags(fs)
	group := fs.String("group", hub.DefaultGroup, "consumer group")
	name, err := parseName(fs, args, "hub")
	if err != nil {
		return err
	}
	var out struct {
		Total      int64 `json:"total_events"`
		Partitions []hub.Lag
	}
	raw, err := c.do("GET", "/api/v1/hubs/"+url.PathEscape(name)+"/groups/"+url.PathEscape(*group)+"/lag", nil, "", nil, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "hub %s, consumer group %s: %d events behind\n\n", name, *group, out.Total)
		fmt.Fprintln(w, "PARTITION\tLAST SEQ\tCHECKPOINT\tLAG (EVENTS)\tOWNER\tCHECKPOINTED")
		for _, l := range out.Partitions {
			lag := strconv.FormatInt(l.Events, 10)
			if l.Estimated {
				lag = "~" + lag
			}
			when := "-"
			if !l.Updated.IsZero() {
				when = l.Updated.Local().Format(time.DateTime)
			}
			fmt.Fprintf(w, "%d\t%d\t%d\t%s\t%s\t%s\n", l.Partition, l.LastSequence, l.Checkpoint, lag, cmpOr(l.Owner, "-"), when)
		}
	})
	return nil
}

func cmpOr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func hubReplay(args []string) error {
	fs := flagSet("hub replay", "sluice hub replay NAME (--earliest | --time T | --sequence P=SEQ...) [flags]", `
Move a consumer group's checkpoints so that its function processes events
again (or skips ahead). The group pauses while its checkpoints move, then
resumes from the new position, in order.

A sequence is at most one past the partition's last event ('sluice hub
describe' shows it), which processes only events published from then on.
The group must have checkpointed before (or be $Default): a name that is
not one of the hub's groups is refused, unless --create starts it at the
target.

Examples:
  sluice hub replay telemetry --time 2026-11-21T08:00:00Z
  sluice hub replay telemetry --group audit --earliest
  sluice hub replay telemetry --sequence 0=131072 --sequence 3=65536
  sluice hub replay telemetry --group new-reader --time 1h --create`)
	c := clientFlags(fs)
	group := fs.String("group", hub.DefaultGroup, "consumer group")
	earliest := fs.Bool("earliest", false, "replay everything still stored")
	at := fs.String("time", "", "replay events enqueued at or after this RFC 3339 time (or a duration ago, e.g. 15m)")
	grace := fs.Duration("grace", 2*time.Second, "time for in-flight batches to finish before checkpoints move")
	create := fs.Bool("create", false, "start the group at the target if it has no checkpoint yet")
	var seqs multiFlag
	fs.Var(&seqs, "sequence", "PARTITION=SEQUENCE: the first event to process again in that partition (repeatable)")
	name, err := parseName(fs, args, "hub")
	if err != nil {
		return err
	}
	req := gateway.ReplayRequest{Earliest: *earliest, Grace: grace.String(), Create: *create}
	if *at != "" {
		if d, err := time.ParseDuration(*at); err == nil {
			req.Time = time.Now().Add(-d).UTC().Format(time.RFC3339Nano)
		} else {
			req.Time = *at
		}
	}
	if len(seqs) > 0 {
		req.Sequences = map[string]int64{}
		for _, s := range seqs {
			p, v, ok := strings.Cut(s, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if !ok || err != nil {
				return usagef("--sequence %q: use PARTITION=SEQUENCE, e.g. 0=131072", s)
			}
			req.Sequences[p] = n
		}
	}
	var out struct{ Partitions []hub.ReplayResult }
	raw, err := c.do("POST", "/api/v1/hubs/"+url.PathEscape(name)+"/groups/"+url.PathEscape(*group)+"/replay", nil, "application/json", jsonBody(req), &out)
	if aerr, ok := errors.AsType[*apiError](err); ok && aerr.Status == http.StatusNotFound && !*create {
		// The server's hint names the API's "create" member: name the flag.
		aerr.Msg = strings.Replace(aerr.Msg, `send "create": true`, "give --create", 1)
		aerr.Msg = strings.Replace(aerr.Msg, " (sluice hub replay --create)", "", 1)
	}
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "consumer group %s of hub %s moved:\n\n", *group, name)
		fmt.Fprintln(w, "PARTITION\tCHECKPOINT BEFORE\tCHECKPOINT NOW")
		for _, r := range out.Partitions {
			fmt.Fprintf(w, "%d\t%d\t%d\n", r.Partition, r.Before, r.After)
		}
	})
	return nil
}
