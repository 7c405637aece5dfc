package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/sluicehq/sluice/internal/dr"
)

func drCommands() []command {
	return []command{
		{"status", "show this site's DR role and how far its mirrors are behind the primary", drStatus},
		{"failover", "promote a DR secondary: its mirrors become the hubs, queues and state, and its functions start", drFailover},
	}
}

func runDR(args []string) error {
	return runVerbs("dr", `Geo-disaster recovery (docs/dr.md). A secondary site (sluice serve
--dr-primary-domain primary) mirrors every hub, queue, blob container and
the state of a primary site through its NATS leaf-node connection, keeping
sequence numbers, so checkpoints stay valid. It runs no functions and takes
no writes until it is promoted by a failover.`, drCommands(), args)
}

func drStatus(args []string) error {
	fs := flagSet("dr status", "sluice dr status [flags]", `
Show the instance's DR role (primary, secondary-following, promoted) and, on
a secondary, each mirrored resource: messages it knows it lacks (lag), time
since it last heard from the primary, errors; and the totals. The total lag
is what a failover now would lose at least.

  sluice dr status
  sluice dr status --json --server https://dr.example.com:7070`)
	c := clientFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var st dr.Status
	raw, err := c.do("GET", "/api/v1/dr", nil, "", nil, &st)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "role: %s\n", st.Role)
		if st.Domain != "" {
			fmt.Fprintf(w, "domain: %s\n", st.Domain)
		}
		if st.LeafConnected != nil {
			fmt.Fprintf(w, "leaf-node connection: %v\n", *st.LeafConnected)
		}
		if st.Role == dr.RolePrimary {
			fmt.Fprintln(w, "this instance follows no primary (a secondary runs with --dr-primary-domain)")
			return
		}
		fmt.Fprintf(w, "primary domain: %s\n", st.PrimaryDomain)
		if p := st.Promotion; p != nil {
			fmt.Fprintf(w, "promoted: %s by %s, recovery point %d messages (last contact %s before)\n",
				p.At.Format("2006-01-02 15:04:05Z07:00"), p.By, p.RecoveryPoint, seconds(p.LastContactSeconds))
		}
		fmt.Fprintf(w, "mirrors: %d, total lag: %d messages, last contact: %s ago, errors: %d\n",
			st.Mirrors, st.TotalLag, seconds(st.LastContactSeconds), st.Errors)
		if st.SyncError != "" {
			fmt.Fprintf(w, "following: %s\n", st.SyncError)
		}
		if len(st.Resources) > 0 {
			fmt.Fprintln(w, "\nSTREAM\tKIND\tNAME\tMIRROR\tMESSAGES\tLAST SEQ\tLAG\tLAST CONTACT\tERROR")
			for _, r := range st.Resources {
				name := r.Name
				if r.Partition != nil {
					name += "/" + strconv.Itoa(*r.Partition)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%d\t%d\t%d\t%s\t%s\n", r.Stream, r.Kind, name, r.Mirror, r.Messages, r.LastSeq, r.Lag,
					seconds(r.LastContactSeconds), r.Error)
			}
		}
		for stream, why := range st.Problems {
			fmt.Fprintf(w, "not mirrored: %s: %s\n", stream, why)
		}
	})
	return nil
}

// seconds shows a time in seconds, or "never" for a negative one.
func seconds(s float64) string {
	if s < 0 {
		return "never"
	}
	return strconv.FormatFloat(s, 'f', 1, 64) + "s"
}

func drFailover(args []string) error {
	fs := flagSet("dr failover", "sluice dr failover [flags]", `
Promote this DR secondary site: every mirror of the primary becomes an
ordinary stream with the primary's subjects (hubs, queues, buckets, blob
containers keep their sequence numbers), the promotion is recorded for every
instance of the site, and each starts its functions from the mirrored
checkpoints. It reports what it promoted and the recovery point: messages
the mirrors knew they lacked. Needs an admin key.

Run it when the primary site is lost. With the primary still running, stop
its writers first: what it stores afterwards is not carried over. The
failover can be run again (an interrupted one is finished; a finished one
changes nothing); on a primary it is refused.

  sluice dr failover --server https://dr.example.com:7070
  sluice dr failover --json`)
	c := clientFlags(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var rep dr.Report
	raw, err := c.do("POST", "/api/v1/dr/failover", nil, "", nil, &rep)
	if err != nil {
		return err
	}
	c.print(raw, func(w *tabwriter.Writer) {
		if rep.Already {
			fmt.Fprintf(w, "already promoted on %s by %s: nothing left to do\n", rep.Promotion.At.Format("2006-01-02 15:04:05Z07:00"), rep.Promotion.By)
			return
		}
		fmt.Fprintf(w, "promoted %d mirrors of primary %s (%d promoted earlier)\n", len(rep.Resources), rep.PrimaryDomain, rep.AlreadyPromoted)
		if rep.PrimaryReachable {
			fmt.Fprintln(w, "WARNING: the primary still answers: what it stores from now on is not carried over here; stop its writers and point producers at this site")
		}
		fmt.Fprintf(w, "recovery point: %d messages the mirrors knew they lacked; last contact with the primary %s before\n",
			rep.RecoveryPoint, seconds(rep.Promotion.LastContactSeconds))
		fmt.Fprintln(w, "the site's instances now start their functions from the mirrored checkpoints (sluice dr status shows role promoted)")
		if len(rep.Resources) > 0 {
			fmt.Fprintln(w, "\nSTREAM\tKIND\tLAST SEQ\tLAG\tTRIMMED")
			for _, r := range rep.Resources {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\n", r.Stream, r.Kind, r.LastSeq, r.Lag, r.Trimmed)
			}
		}
	})
	return nil
}
