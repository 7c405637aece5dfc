package main

import (
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/internal/gateway"
)

func breakerCommands() []command {
	return []command{
		{"list", "list the circuit breakers and their state", breakersList},
		{"show", "show a breaker: state, counts, policy and history", breakerShow},
		{"open", "open a breaker by hand: the function takes no new work on any instance", func(args []string) error { return breakerChange("open", args) }},
		{"close", "close a breaker by hand: the function resumes from where it stopped", func(args []string) error { return breakerChange("close", args) }},
	}
}

func runBreaker(args []string) error {
	return runVerbs("breaker", `Inspect, open and close functions' circuit breakers. A breaker's state is
shared by every instance: while it is open, the function takes no new batches
or messages anywhere, hub partitions hold at their checkpoint and queue
messages stay queued.`, breakerCommands(), args)
}

func breakersList(args []string) error {
	fs := flagSet("breaker list", "sluice breaker list [flags]", `
List the breakers of the functions the instance runs, and any other breaker
with shared state.

  sluice breaker list`)
	c := clientFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var out struct {
		Breakers []gateway.BreakerJSON `json:"breakers"`
	}
	raw, err := c.do("GET", "/api/v1/breakers", nil, "", nil, &out)
	if err != nil {
		return err
	}
	if len(out.Breakers) == 0 && !c.json {
		fmt.Fprintln(stderr, "no breakers (give a function one with WithBreaker, or a breaker in host.json)")
		return nil
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "FUNCTION\tSTATE\tSINCE\tFAILURES\tCONSECUTIVE\tREASON")
		for _, b := range out.Breakers {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", b.Function, stateText(b), timeText(b.Since), b.Failures, b.Consecutive, oneLine(b.Reason, 80))
		}
	})
	return nil
}

// stateText is a breaker's state with what it waits for.
func stateText(b gateway.BreakerJSON) string {
	switch {
	case b.State == "open" && b.Manual:
		return "open (by hand)"
	case b.State == "open" && !b.Until.IsZero():
		if d := time.Until(b.Until); d > 0 {
			return fmt.Sprintf("open (probe in %s)", d.Round(time.Second))
		}
		return "open (probe due)"
	case b.State == "half-open":
		return "half-open (probe on " + b.ProbeOwner + ")"
	}
	return string(b.State)
}

func breakerShow(args []string) error {
	fs := flagSet("breaker show", "sluice breaker show FUNCTION [flags]", `
Show a function's breaker: its state, the failures counted over all
instances, its policy and its last transitions.

  sluice breaker show deliver`)
	c := clientFlags(fs)
	name, err := parseName(fs, args, "function")
	if err != nil {
		return err
	}
	var b gateway.BreakerJSON
	raw, err := c.do("GET", "/api/v1/breakers/"+url.PathEscape(name), nil, "", nil, &b)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) { printBreaker(w, b) })
	return nil
}

func printBreaker(w *tabwriter.Writer, b gateway.BreakerJSON) {
	fmt.Fprintf(w, "function\t%s\nstate\t%s\nsince\t%s\n", b.Function, stateText(b), timeText(b.Since))
	if b.Reason != "" {
		fmt.Fprintf(w, "reason\t%s\n", b.Reason)
	}
	fmt.Fprintf(w, "failures in window\t%d\nconsecutive failures\t%d\n", b.Failures, b.Consecutive)
	if p := b.Policy; p != nil {
		fmt.Fprintf(w, "policy\t")
		if p.FailureThreshold > 0 {
			fmt.Fprintf(w, "open at %d failures within %s; ", p.FailureThreshold, p.Window)
		}
		if p.ConsecutiveFailures > 0 {
			fmt.Fprintf(w, "open at %d consecutive failures; ", p.ConsecutiveFailures)
		}
		fmt.Fprintf(w, "cool-down %s (up to %s)\n", p.CoolDown, p.MaxCoolDown)
	}
	for _, t := range b.History {
		fmt.Fprintf(w, "%s\t%s → %s by %s: %s\n", timeText(t.At), t.From, t.To, t.By, t.Reason)
	}
}

func breakerChange(verb string, args []string) error {
	what := map[string]string{
		"open":  "Open a function's breaker by hand. Every instance stops taking new work for\nit; in-flight work finishes. It stays open until closed by hand.",
		"close": "Close a function's breaker by hand. Every instance takes work again, from\nthe last checkpoint, in order; the failures counted so far are forgotten.",
	}[verb]
	fs := flagSet("breaker "+verb, "sluice breaker "+verb+" FUNCTION [flags]", "\n"+what+`

  sluice breaker `+verb+` deliver --reason "partner maintenance"`)
	c := clientFlags(fs)
	reason := fs.String("reason", "", "why, kept in the breaker's history")
	name, err := parseName(fs, args, "function")
	if err != nil {
		return err
	}
	var b gateway.BreakerJSON
	raw, err := c.do("POST", "/api/v1/breakers/"+url.PathEscape(name)+"/"+verb, nil, "application/json",
		jsonBody(gateway.BreakerChange{Reason: *reason, By: "cli"}), &b)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "breaker of %s is %s\n", b.Function, stateText(b))
	})
	return nil
}
