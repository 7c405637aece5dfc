package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
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
	replicas := fs.Int("replicas", 0, "copies a NATS cluster keeps of each partition, 1-5 (0: the instance's --replicas)")
	name, err := parseName(fs, args, "hub")
	if err != nil {
		return err
	}
	var h gateway.HubJSON
	raw, err := c.do("POST", "/api/v1/hubs", nil, "application/json", jsonBody(gateway.CreateHubRequest{
		Name: name, Partitions: *partitions, Retention: retention.String(), RetentionBytes: *retentionBytes, Replicas: *replicas}), &h)
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
		fmt.Fprintln(w, "PARTITION\tRECORDS\tBYTES\tFIRST SEQ\tLAST SEQ\tLAST ENQUEUED\tREPLICAS")
		for _, p := range h.PartitionInfo {
			last := "-"
			if !p.LastEnqueued.IsZero() {
				last = p.LastEnqueued.Local().Format(time.DateTime)
			}
			fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%d\t%s\t%s\n", p.Partition, p.Records, p.Bytes, p.FirstSequence, p.LastSequence, last, replicasText(p))
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

// replicasText says how a partition is replicated: "1", or the count, the
// leader and each follower's state, as "3: leader n1; n2 current, n3 12
// behind".
func replicasText(p hub.PartitionInfo) string {
	if p.Replicas <= 1 {
		return "1"
	}
	leader := p.Leader
	if leader == "" {
		leader = "(being elected)"
	}
	parts := make([]string, 0, len(p.Followers))
	for _, f := range p.Followers {
		switch {
		case f.Offline:
			parts = append(parts, f.Server+" offline")
		case f.Current:
			parts = append(parts, f.Server+" current")
		default:
			parts = append(parts, fmt.Sprintf("%s %d behind", f.Server, f.Lag))
		}
	}
	return fmt.Sprintf("%d: leader %s; %s", p.Replicas, leader, strings.Join(parts, ", "))
}
