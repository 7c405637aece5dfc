package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/gateway"
)

func runPipeline(args []string) error {
	return runVerbs("pipeline", `Watch and steer data pipelines: a source whose changes are staged as change
sets on the pipeline's change log (the hub pipeline-NAME), and destinations
that apply them in order, each at its own position. A destination that
fails retries for ever, in order, and catches up by itself; replay moves
one destination back to apply the change log again from a point.`, []command{
		{"create", "create a pipeline from a definition file, on every instance", pipelineCreate},
		{"delete", "delete a created pipeline, its change log and its replication slot", pipelineDelete},
		{"list", "list the pipelines: change sets staged, and where each destination is", pipelineList},
		{"status", "show a pipeline: its source's position and each destination's", pipelineStatus},
		{"replay", "move a destination back to a time or a change set; the others are untouched", pipelineReplay},
		{"backfill", "read a table's rows again (those a WHERE condition selects) for every destination", pipelineBackfill},
		{"pause", "stop a destination where it is, on every instance", func(a []string) error { return pipelinePause(a, true) }},
		{"resume", "let a paused destination go on", func(a []string) error { return pipelinePause(a, false) }},
	}, args)
}

func pipelineCreate(args []string) error {
	fs := flagSet("pipeline create", "sluice pipeline create NAME --file FILE [flags]", `
Create a pipeline while the cluster runs: every instance starts it (one
reads its source), as if declared. FILE holds its definition, in YAML or
JSON, in the shape of an entry of sluice.yaml's pipelines section. Name
secrets by environment variable (urlEnv, headersEnv): each instance reads
them, and they are never stored. The definition is checked first; nothing
is created when it is wrong.

  # orders.yaml
  postgres:
    urlEnv: ORDERS_DATABASE_URL
    tables: [public.orders]
  destinations:
    reporting:
      sql: {urlEnv: REPORTING_DATABASE_URL, createTables: true}
    service:
      http: {url: https://orders.example.com/changes, headersEnv: {Authorization: SERVICE_TOKEN}}
      transform:
        public.orders: {filter: '.status != "draft"', exclude: [note]}

  sluice pipeline create orders --file orders.yaml`)
	c := clientFlags(fs)
	file := fs.String("file", "", "the definition, YAML or JSON (- for standard input)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *file == "" {
		return usagef("give the pipeline's name and --file")
	}
	spec, err := readSpecFile(*file)
	if err != nil {
		return err
	}
	body := jsonBody(gateway.PipelineCreateRequest{Name: pos[0], Spec: spec})
	var st sluice.PipelineStatus
	raw, err := c.do("POST", "/api/v1/pipelines", nil, "", body, &st)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "created pipeline %s with %d destinations; see it with: sluice pipeline status %s\n", st.Name, len(st.Destinations), st.Name)
	})
	return nil
}

// readSpecFile reads a pipeline's definition, YAML or JSON, as JSON.
func readSpecFile(name string) (json.RawMessage, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s: not YAML or JSON: %v", name, err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("%s: the definition is a mapping (source and destinations), not %T", name, v)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return out, nil
}

func pipelineDelete(args []string) error {
	fs := flagSet("pipeline delete", "sluice pipeline delete NAME --yes [flags]", `
Delete a pipeline created with sluice pipeline create: it stops on every
instance, and its change log, its staged change sets and, for a PostgreSQL
source, its replication slot and publication are dropped (so the database
stops keeping WAL for it). What its destinations wrote stays. A pipeline
declared in sluice.yaml or the app's code is removed there instead.`)
	c := clientFlags(fs)
	yes := fs.Bool("yes", false, "confirm: its change log cannot be recovered")
	name, err := parseName(fs, args, "pipeline")
	if err != nil {
		return err
	}
	if !*yes {
		return usagef("deleting pipeline %s drops its change log and replication slot; add --yes to confirm", name)
	}
	if _, err := c.do("DELETE", "/api/v1/pipelines/"+url.PathEscape(name), nil, "", nil, nil); err != nil {
		return err
	}
	c.print(append(jsonBody(map[string]string{"deleted": name}), '\n'), func(w *tabwriter.Writer) { fmt.Fprintf(w, "deleted pipeline %s\n", name) })
	return nil
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
		fmt.Fprintln(stderr, "no pipelines (declare one with app.Pipeline or in sluice.yaml, or create one with sluice pipeline create)")
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
		if st.StartError != "" {
			fmt.Fprintf(w, "pipeline %s does not run on this instance yet: %s\n", st.Name, st.StartError)
			return
		}
		fmt.Fprintf(w, "pipeline %s: %d change sets staged, source at %s", st.Name, st.Staged, dash(st.Position))
		if !st.StagedAt.IsZero() {
			fmt.Fprintf(w, " (last staged %s)", st.StagedAt.Local().Format(time.DateTime))
		}
		fmt.Fprintln(w)
		if st.SourceError != "" {
			fmt.Fprintf(w, "source error: %s\n", st.SourceError)
		}
		if l := st.SourceLag; l != nil {
			fmt.Fprintf(w, "source lag: %d bytes, %.1fs\n", l.Bytes, l.Seconds)
		}
		fmt.Fprintln(w, "DESTINATION\tAPPLIED\tBEHIND\tLAG\tBREAKER\tSTATE")
		for _, d := range st.Destinations {
			fmt.Fprintf(w, "%s\t%d\t%d\t%.1fs\t%s\t%s\n", d.Name, d.Applied, d.Behind, d.LagSeconds, dash(d.Breaker), destinationState(d))
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

func pipelineBackfill(args []string) error {
	fs := flagSet("pipeline backfill", "sluice pipeline backfill NAME --table TABLE [--where CONDITION] [flags]", `
Read rows of one of the source's tables again, as they are now, and stage
them as change sets for every destination (applied as upserts): for a
destination added later, or rows a destination lost. --where is an SQL
condition on the table's columns, run read-only on the source database;
without it every row is read. The instance reading the source runs it
between the stream's change sets; the stream goes on meanwhile. One
backfill runs at a time; this command waits for it, showing its progress
(--no-wait returns at once; sluice pipeline status shows it).

  sluice pipeline backfill orders --table public.orders --where "created_at >= '2026-12-01'"`)
	c := clientFlags(fs)
	table := fs.String("table", "", "the source table (required)")
	where := fs.String("where", "", "an SQL condition selecting the rows (default: all)")
	noWait := fs.Bool("no-wait", false, "return once the backfill is asked for")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *table == "" {
		return usagef("give the pipeline's name and --table")
	}
	path := "/api/v1/pipelines/" + url.PathEscape(pos[0])
	var bf sluice.PipelineBackfill
	raw, err := c.do("POST", path+"/backfill", nil, "", jsonBody(gateway.PipelineBackfillRequest{Table: *table, Where: *where}), &bf)
	if err != nil {
		return err
	}
	if !*noWait {
		var prog *progress
		if !c.json {
			prog = newProgress(stderr, "backfill of "+*table, 0)
		}
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for bf.State == "pending" || bf.State == "running" {
			<-tick.C
			var st sluice.PipelineStatus
			if _, err = c.do("GET", path, nil, "", nil, &st); err != nil {
				return err
			}
			if st.Backfill == nil {
				return fmt.Errorf("pipeline %s shows no backfill any more", pos[0])
			}
			bf = *st.Backfill
			if raw, err = json.Marshal(bf); err != nil {
				return err
			}
			if prog != nil {
				prog.update(bf.Rows, bf.State)
			}
		}
		if prog != nil {
			prog.finish(bf.Rows, bf.State)
		}
		if bf.State == "failed" {
			return fmt.Errorf("the backfill of %s failed after %d rows: %s", bf.Table, bf.Rows, bf.Error)
		}
	}
	c.print(append(raw, '\n'), func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "backfill of %s: %s, %d rows\n", bf.Table, bf.State, bf.Rows)
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
