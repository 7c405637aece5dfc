package main

import (
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/sluicehq/sluice/internal/gateway"
)

func runScale(args []string) error {
	fs := flagSet("scale", "sluice scale [FUNCTION] [flags]", `
Show how many instances the work needs, as Azure Functions' target-based
scaling computes it (GET /api/v1/scale; docs/autoscaling.md): for each hub
function, its consumer group's lag divided by its target per instance,
rounded up to a count that spreads the hub's partitions evenly and at most
their number; for each queue function, its queue's depth divided by its
target; for the app, the most any function needs. With a FUNCTION, that
function's numbers only.

  sluice scale
  sluice scale decode --json`)
	c := clientFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch len(pos) {
	case 0:
		var s gateway.Scale
		raw, err := c.do("GET", "/api/v1/scale", nil, "", nil, &s)
		if err != nil {
			return err
		}
		c.print(raw, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "desired instances: %d", s.DesiredInstances)
			if s.Instances != nil {
				fmt.Fprintf(w, " (running: %d)", *s.Instances)
			}
			fmt.Fprintln(w)
			if len(s.Functions) == 0 {
				fmt.Fprintln(w, "no hub or queue functions: nothing to scale by")
				return
			}
			fmt.Fprintln(w, "\nFUNCTION\tTRIGGER\tSOURCE\tPARTITIONS\tUNPROCESSED\tTARGET\tDESIRED")
			for _, f := range s.Functions {
				printFunctionScale(w, f)
			}
		})
	case 1:
		var f gateway.FunctionScale
		raw, err := c.do("GET", "/api/v1/scale/"+url.PathEscape(pos[0]), nil, "", nil, &f)
		if err != nil {
			return err
		}
		c.print(raw, func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "FUNCTION\tTRIGGER\tSOURCE\tPARTITIONS\tUNPROCESSED\tTARGET\tDESIRED")
			printFunctionScale(w, f)
		})
	default:
		return usagef("give at most one function name (got %d arguments)", len(pos))
	}
	return nil
}

func printFunctionScale(w *tabwriter.Writer, f gateway.FunctionScale) {
	source, parts, unprocessed := "queue "+f.Queue, "-", strconv.FormatInt(f.Unprocessed, 10)
	if f.Trigger == "hub" {
		source, parts = "hub "+f.Hub+" / "+f.Group, strconv.Itoa(f.Partitions)
		if f.LagEstimated {
			unprocessed = "~" + unprocessed
		}
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", f.Function, f.Trigger, source, parts, unprocessed, f.TargetPerInstance, f.DesiredInstances)
}
