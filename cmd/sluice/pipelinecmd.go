package main

import (
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/gateway"
)

func runPipeline(args []string) error {
	return runVerbs("pipeline", `Watch and steer data pipelines: a source whose changes are staged as change
sets on the pipeline's change log (the hub pipeline-NAME), and destinations
that apply them in order, each at its own position. A destination that
fails retries for ever, in order, and catches up by itself; replay moves
one destination back to apply the change log again from a point.`, []command{
		{"list", "list the pipelines: change sets staged, and where each destination is", pipelineList},
		{"status", "show a pipeline: its source's position and each destination's", pipelineStatus},
		{"replay", "move a destination back to a time or a change set; the others are untouched", pipelineReplay},
		{"pause", "stop a destination where it is, on every instance", func(a []string) error { return pipelinePause(a, true) }},
		{"resume", "let a paused destination go on", func(a []string) error { return pipelinePause(a, false) }},
	}, args)
}

func pipelineList(args []string) error {
	fs := flagSet("pipeline list", "sluice pipeline list [flags]", `
List the pipelines the instance runs, with each destination's position.`)
	c := clientFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var out struct {
		Pipelines []sluice.PipelineStatus `json:"pipelines"`
	}
	raw, err := c.do("GET", "/api/v1/pipelines", nil, "", nil, &out)
	if err != nil {
		return err
	}
	if len(out.Pipelines) == 0 && !c.json {
		fmt.Fprintln(stderr, "no pipelines (declare one with app.Pipeline, or in sluice.yaml)")
		return nil
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "PIPELINE\tSTAGED\tDESTINATION\tAPPLIED\tBEHIND\tSTATE")
		for _, p := range out.Pipelines {
			for i, d := range p.Destinations {
				name, staged := p.Name, strconv.FormatInt(p.Staged, 10)
				if i > 0 {
					name, staged = "", ""
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", name, staged, d.Name, d.Applied, d.Behind, destinationState(d))
			}
		}
	})
	return nil
}

func destinationState(d sluice.PipelineDestinationStatus) string {
	switch {
	case d.Paused:
		return "paused: " + d.Reason
	case d.Breaker != "" && d.Breaker != "closed":
		return "breaker " + d.Breaker
	case d.Behind > 0:
		return "catching up"
	}
	return "up to date"
}

func pipelineStatus(args []string) error {
	fs := flagSet("pipeline status", "sluice pipeline status NAME [flags]", `
Show a pipeline: the newest change set staged and its source position,
whether this instance reads the source and the source's last error, and
each destination's last change set applied, how far behind it is, and its
breaker.`)
	c := clientFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give the pipeline's name")
	}
	var st sluice.PipelineStatus
	raw, err := c.do("GET", "/api/v1/pipelines/"+url.PathEscape(pos[0]), nil, "", nil, &st)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "pipeline %s: %d change sets staged, source at %s", st.Name, st.Staged, dash(st.Position))
		if !st.StagedAt.IsZero() {
			fmt.Fprintf(w, " (last staged %s)", st.StagedAt.Local().Format(time.DateTime))
		}
		fmt.Fprintln(w)
		if st.SourceError != "" {
			fmt.Fprintf(w, "source error: %s\n", st.SourceError)
		}
		fmt.Fprintln(w, "DESTINATION\tAPPLIED\tBEHIND\tBREAKER\tSTATE")
		for _, d := range st.Destinations {
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\n", d.Name, d.Applied, d.Behind, dash(d.Breaker), destinationState(d))
		}
	})
	return nil
}

func pipelineReplay(args []string) error {
	fs := flagSet("pipeline replay", "sluice pipeline replay NAME --destination D (--from TIME | --change-set N) [flags]", `
Move one destination back so that it applies the change log again from a
point: the first change set staged at or after --from (RFC 3339, or a
duration back from now such as 2h), or change set --change-set. The
destination pauses on every instance, its in-flight change sets finish
(--grace), its position moves, and it resumes; change sets are applied
again idempotently. Other destinations are untouched.

  sluice pipeline replay orders --destination reporting --from 2026-12-01T10:00:00Z`)
	c := clientFlags(fs)
	dest := fs.String("destination", "", "the destination to move (required)")
	from := fs.String("from", "", "a time: RFC 3339, or a duration back from now (2h)")
	changeSet := fs.Int64("change-set", 0, "a change set number")
	grace := fs.Duration("grace", 2*time.Second, "time for in-flight change sets to finish")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *dest == "" {
		return usagef("give the pipeline's name and --destination")
	}
	if (*from == "") == (*changeSet == 0) {
		return usagef("give --from or --change-set, one of them")
	}
	req := gateway.PipelineReplayRequest{ChangeSet: *changeSet, Grace: grace.String()}
	if *from != "" {
		// A duration back from now, or a time the server checks.
		if d, err := time.ParseDuration(*from); err == nil {
			req.Time = time.Now().Add(-d).UTC().Format(time.RFC3339Nano)
		} else {
			req.Time = *from
		}
	}
	body := jsonBody(req)
	var out gateway.PipelineReplayJSON
	raw, err := c.do("POST", "/api/v1/pipelines/"+url.PathEscape(pos[0])+"/destinations/"+url.PathEscape(*dest)+"/replay", nil, "", body, &out)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "destination %s of pipeline %s goes on from change set %d\n", out.Destination, out.Pipeline, out.From)
	})
	return nil
}

func pipelinePause(args []string, pause bool) error {
	verb := map[bool]string{true: "pause", false: "resume"}[pause]
	fs := flagSet("pipeline "+verb, "sluice pipeline "+verb+" NAME --destination D [flags]", map[bool]string{
		true:  "\nStop a destination where it is, on every instance, until resumed.",
		false: "\nLet a paused destination go on from where it stopped.",
	}[pause])
	c := clientFlags(fs)
	dest := fs.String("destination", "", "the destination (required)")
	reason := ""
	if pause {
		fs.StringVar(&reason, "reason", "", "why, shown in the status")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *dest == "" {
		return usagef("give the pipeline's name and --destination")
	}
	body := jsonBody(gateway.PipelinePauseRequest{Reason: reason})
	var st sluice.PipelineStatus
	raw, err := c.do("POST", "/api/v1/pipelines/"+url.PathEscape(pos[0])+"/destinations/"+url.PathEscape(*dest)+"/"+verb, nil, "", body, &st)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		for _, d := range st.Destinations {
			if d.Name == *dest {
				fmt.Fprintf(w, "destination %s of pipeline %s: %s\n", d.Name, st.Name, destinationState(d))
			}
		}
	})
	return nil
}
