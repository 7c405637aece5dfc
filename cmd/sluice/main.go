// Command sluice runs the Sluice platform and operates it.
//
//	sluice dev                  run everything in one process, with a demo
//	sluice serve                run an instance (embedded or external NATS)
//	sluice hub <verb>           create, list, describe, delete, send, tail, lag, replay
//	sluice queue <verb>         create, list, describe, send, peek, receive, complete, abandon, depth, purge, delete
//	sluice deadletters <verb>   list, show, redrive, purge
//	sluice breaker <verb>       list, show, open, close
//	sluice docs <verb>          container (create, list, delete), get, put, delete, query, feed
//	sluice key <verb>           create, list, revoke API keys
//	sluice scale [function]     how many instances the work needs (for autoscalers)
//	sluice dr <verb>            geo-disaster recovery: status, failover
//	sluice bench <workload>     measure throughput against the raw engine
//	sluice health               ask an instance whether it is ready, for health checks
//
// Every command has --help; commands that print data have --json.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string) error
}

var commands []command

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

var stdout io.Writer = os.Stdout

// stderr is where progress goes (run sets it with stdout).
var stderr io.Writer = os.Stderr

func topCommands() []command {
	return []command{
		{"dev", "run the whole platform in one process with a demo pipeline", runDev},
		{"serve", "run a platform instance (no demo)", runServe},
		{"hub", "manage hubs and their events: create, list, describe, delete, send, tail, lag, replay", runHub},
		{"queue", "manage queues and their messages: create, list, describe, send, peek, receive, complete, abandon, depth, purge, delete", runQueue},
		{"deadletters", "inspect and redrive the inputs functions gave up on: list, show, redrive, purge", runDeadLetters},
		{"breaker", "see, open and close functions' circuit breakers: list, show, open, close", runBreaker},
		{"docs", "store and query JSON documents: container, get, put, delete, query, feed", runDocs},
		{"blob", "store blobs (large payloads, staged change sets): container, put, get, stat, list, delete", runBlob},
		{"key", "manage API keys: create, list, revoke", runKey},
		{"partner", "partners and their messages: create, token, type, rejections, send", runPartner},
		{"pipeline", "data pipelines: list, status, replay, pause and resume a destination", runPipeline},
		{"health", "ask an instance whether it is ready (/readyz) or alive (/healthz): exit 0 or 1", runHealth},
		{"scale", "show how many instances the work needs (hub lag, queue depth ÷ target per instance)", runScale},
		{"dr", "geo-disaster recovery: status of a secondary's mirrors, failover", runDR},
		{"bench", "measure throughput and latency (workloads: hub, queue, docs, handler, resilience, telemetry)", runBench},
		{"version", "print the version (also sluice --version, -v)", printVersion},
	}
}

const version = "0.1.0-dev"

func run(args []string, out, errOut io.Writer) int {
	stdout, stderr = out, errOut
	commands = topCommands()
	if len(args) == 0 || isHelp(args[0]) || args[0] == "help" {
		usage(out, "sluice", "Sluice: event-driven serverless data pipelines in one binary.", commands)
		return 0
	}
	if isVersion(args[0]) {
		_ = printVersion(args[1:])
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			if err := c.run(args[1:]); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return 0
				}
				fmt.Fprintln(errOut, "sluice "+args[0]+": "+err.Error())
				var ue usageError
				if errors.As(err, &ue) {
					return 2
				}
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(errOut, "sluice: unknown command %q; run 'sluice --help' for the list\n", args[0])
	return 2
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" }

func isVersion(a string) bool { return a == "-v" || a == "--version" || a == "-version" }

func printVersion([]string) error {
	fmt.Fprintln(stdout, "sluice", version)
	return nil
}

func usage(w io.Writer, name, about string, cmds []command) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s <command> [flags]\n\nCommands:\n", about, name)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's flags.\n", name)
}

// usageError is a mistake in how a command was called (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// flagSet makes a flag set whose --help prints a helpful text.
func flagSet(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: %s\n\n%s\n", synopsis, strings.TrimSpace(about))
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(stdout, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags given before, between or after positional arguments,
// and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
