package main

import (
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/internal/gateway"
)

func deadLetterCommands() []command {
	return []command{
		{"list", "list dead letters: inputs functions gave up on", deadLettersList},
		{"show", "show one dead letter with its body", deadLettersShow},
		{"redrive", "send dead letters back to their hub or queue", func(args []string) error { return deadLettersAct("redrive", args) }},
		{"purge", "remove dead letters", func(args []string) error { return deadLettersAct("purge", args) }},
	}
}

func runDeadLetters(args []string) error {
	return runVerbs("deadletters", `Inspect and redrive dead letters. A queue function's dead letters are in
<queue>-poison; every other function's are in sluice-deadletters.`, deadLetterCommands(), args)
}

// selectorFlags are the flags that select dead letters.
type selectorFlags struct {
	queue, function, source, reason *string
}

func addSelectorFlags(fs *flag.FlagSet) selectorFlags {
	return selectorFlags{
		queue:    fs.String("queue", "", "only this dead-letter queue: sluice-deadletters or <queue>-poison"),
		function: fs.String("function", "", "only dead letters of this function"),
		source:   fs.String("source", "", "only dead letters from this hub or queue"),
		reason:   fs.String("reason", "", "only dead letters whose reason contains this text"),
	}
}

func deadLettersList(args []string) error {
	fs := flagSet("deadletters list", "sluice deadletters list [flags]", `
List dead letters, oldest first per dead-letter queue.

  sluice deadletters list
  sluice deadletters list --function decode --reason corrupt`)
	c := clientFlags(fs)
	sel := addSelectorFlags(fs)
	limit := fs.Int("limit", 100, "list at most this many")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	for k, v := range map[string]string{"queue": *sel.queue, "function": *sel.function, "source": *sel.source, "reason": *sel.reason} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out struct {
		DeadLetters []gateway.DeadLetterJSON `json:"dead_letters"`
	}
	raw, err := c.do("GET", "/api/v1/deadletters", q, "", nil, &out)
	if err != nil {
		return err
	}
	if len(out.DeadLetters) == 0 && !c.json {
		fmt.Fprintln(stderr, "no dead letters")
		return nil
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "QUEUE\tID\tFUNCTION\tSOURCE\tATTEMPTS\tLAST FAILURE\tREASON")
		for _, l := range out.DeadLetters {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", l.DeadLetterQueue, l.ID, l.Function, sourceText(l),
				l.Attempts, timeText(l.LastFailure), oneLine(l.Reason, 80))
		}
	})
	return nil
}

func sourceText(l gateway.DeadLetterJSON) string {
	s := l.Source
	switch s.Kind {
	case "hub":
		return fmt.Sprintf("hub %s/%d@%d", s.Hub, s.Partition, s.Sequence)
	case "queue":
		return fmt.Sprintf("queue %s#%d", s.Queue, s.MessageID)
	case "container":
		what := "change"
		if s.Deleted {
			what = "delete"
		}
		return fmt.Sprintf("container %s/%s@%d (%s)", s.Container, s.DocumentID, s.LSN, what)
	}
	return "?"
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

func deadLettersShow(args []string) error {
	fs := flagSet("deadletters show", "sluice deadletters show QUEUE ID [flags]", `
Show one dead letter: its record and body.

  sluice deadletters show sluice-deadletters 12`)
	c := clientFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("give the dead-letter queue and the ID, as 'sluice deadletters list' shows them")
	}
	var l gateway.DeadLetterJSON
	raw, err := c.do("GET", "/api/v1/deadletters/"+url.PathEscape(pos[0])+"/"+url.PathEscape(pos[1]), nil, "", nil, &l)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "queue\t%s\nid\t%d\nfunction\t%s\nsource\t%s\nreason\t%s\nattempts\t%d\nfirst failure\t%s\nlast failure\t%s\n",
			l.DeadLetterQueue, l.ID, l.Function, sourceText(l), l.Reason, l.Attempts,
			timeText(l.FirstFailure), timeText(l.LastFailure))
		if l.Redriven > 0 {
			fmt.Fprintf(w, "redriven before\t%d times\n", l.Redriven)
		}
		if len(l.State) > 0 {
			fmt.Fprintf(w, "state\t%s\n", l.State)
		}
		for k, v := range l.Properties {
			fmt.Fprintf(w, "property %s\t%s\n", k, v)
		}
		if l.BodyText != nil {
			fmt.Fprintf(w, "body\t%s\n", *l.BodyText)
		} else {
			fmt.Fprintf(w, "body\t(%d bytes, not text; use --json for base64)\n", len(l.Body))
		}
	})
	return nil
}

func deadLettersAct(verb string, args []string) error {
	what := map[string]string{
		"redrive": "Send dead letters back, with their body and properties and a\nsluice.redrive property counting redrives, and remove them. A hub function's\ninput goes back to that function alone, through its retry queue (out of\npartition order); with --to-hub it is published to the hub again instead, a\nnew event every consumer group sees. A queue function's goes back to its\nqueue. Every letter of a request (up to 500) is checked first: if one cannot\nbe redriven (its hub or queue is gone, say), none is, and the error names it.",
		"purge":   "Remove dead letters for good.",
	}[verb]
	fs := flagSet("deadletters "+verb, "sluice deadletters "+verb+" [QUEUE ID...] [flags]", "\n"+what+`
Select them by ID (the dead-letter queue, then IDs), by filter flags, or
all of them with --all.

  sluice deadletters `+verb+` sluice-deadletters 12 13
  sluice deadletters `+verb+` --function decode
  sluice deadletters `+verb+` --all`)
	c := clientFlags(fs)
	sel := addSelectorFlags(fs)
	all := fs.Bool("all", false, "every dead letter (that the other flags select)")
	var toHub *bool
	if verb == "redrive" {
		toHub = fs.Bool("to-hub", false, "publish hub functions' inputs to their hub again, for every consumer group (default: back to the function alone)")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	req := gateway.DeadLetterSelector{Queue: *sel.queue, Function: *sel.function, Source: *sel.source, Reason: *sel.reason, All: *all}
	if toHub != nil {
		req.ToHub = *toHub
	}
	if len(pos) > 0 {
		if req.Queue != "" && req.Queue != pos[0] {
			return usagef("give the dead-letter queue once: as the first argument or with --queue")
		}
		req.Queue = pos[0]
		if len(pos) == 1 {
			return usagef("give the IDs of the dead letters in %s after it, or use --all", pos[0])
		}
		for _, p := range pos[1:] {
			id, err := strconv.ParseUint(p, 10, 64)
			if err != nil {
				return usagef("dead letter ID %q is not a number", p)
			}
			req.IDs = append(req.IDs, id)
		}
	}
	if len(req.IDs) == 0 && (req.All || req.Queue != "" || req.Function != "" || req.Source != "" || req.Reason != "") {
		return deadLettersInChunks(c, verb, req)
	}
	var out map[string]int
	raw, err := c.do("POST", "/api/v1/deadletters/"+verb, nil, "application/json", jsonBody(req), &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		n := out["redriven"] + out["purged"]
		fmt.Fprintf(w, "%s %d dead letters\n", map[string]string{"redrive": "redrove", "purge": "purged"}[verb], n)
	})
	return nil
}

// chunk is how many dead letters one request of a chunked redrive or
// purge names.
const chunk = 500

// deadLettersInChunks redrives or purges the dead letters a filter
// selects, as they are when it starts, a chunk per request, showing
// progress (a terminal line with rate and ETA, or a plain line now and
// then): there can be many.
func deadLettersInChunks(c *client, verb string, req gateway.DeadLetterSelector) error {
	q := url.Values{"limit": {"10000"}}
	for k, v := range map[string]string{"queue": req.Queue, "function": req.Function, "source": req.Source, "reason": req.Reason} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var list struct {
		DeadLetters []gateway.DeadLetterJSON `json:"dead_letters"`
	}
	if _, err := c.do("GET", "/api/v1/deadletters", q, "", nil, &list); err != nil {
		return err
	}
	byQueue := map[string][]uint64{}
	var queues []string
	for _, l := range list.DeadLetters {
		if _, ok := byQueue[l.DeadLetterQueue]; !ok {
			queues = append(queues, l.DeadLetterQueue)
		}
		byQueue[l.DeadLetterQueue] = append(byQueue[l.DeadLetterQueue], l.ID)
	}
	total := int64(len(list.DeadLetters))
	var p *progress
	if !c.json && total > chunk {
		p = newProgress(stderr, verb, total)
	}
	done := int64(0)
	for _, queue := range queues {
		ids := byQueue[queue]
		for len(ids) > 0 {
			n := min(chunk, len(ids))
			var out map[string]int
			if _, err := c.do("POST", "/api/v1/deadletters/"+verb, nil, "application/json",
				jsonBody(gateway.DeadLetterSelector{Queue: queue, IDs: ids[:n], ToHub: req.ToHub}), &out); err != nil {
				return fmt.Errorf("after %d of %d dead letters: %w", done, total, err)
			}
			ids = ids[n:]
			done += int64(out["redriven"] + out["purged"])
			if p != nil {
				p.update(done, "")
			}
		}
	}
	if p != nil {
		p.finish(done, "")
	}
	raw := jsonBody(map[string]int{map[string]string{"redrive": "redriven", "purge": "purged"}[verb]: int(done)})
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "%s %d dead letters\n", map[string]string{"redrive": "redrove", "purge": "purged"}[verb], done)
	})
	if total == 10000 {
		fmt.Fprintln(stderr, "(at most 10,000 at a time: run it again for the rest)")
	}
	return nil
}
