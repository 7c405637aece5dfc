package pgsource

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
)

// The positions a Source writes in Batch.Position (see the package
// documentation for what each means).
const (
	prefixSnapshot     = "snapshot:"
	prefixSnapshotDone = "snapshot-done:"
	prefixLSN          = "lsn:"
)

type positionKind int

const (
	// posNone: nothing was staged.
	posNone positionKind = iota
	// posSnapshot: part of a snapshot was staged ("snapshot:C:T:N").
	posSnapshot
	// posSnapshotDone: the whole snapshot was staged ("snapshot-done:C").
	posSnapshotDone
	// posLSN: every transaction committed at or before the LSN was staged
	// ("lsn:X").
	posLSN
)

// position is a parsed Batch.Position.
type position struct {
	kind positionKind
	// lsn is the slot's consistent point (snapshot kinds) or the commit
	// LSN of the last transaction staged (posLSN).
	lsn pglogrepl.LSN
	// table and rows say how far a snapshot got: the index in
	// Config.Tables of the table being read, and how many of its rows
	// were handed over.
	table int
	rows  int64
}

func (p position) String() string {
	switch p.kind {
	case posSnapshot:
		return fmt.Sprintf("%s%s:%d:%d", prefixSnapshot, p.lsn, p.table, p.rows)
	case posSnapshotDone:
		return prefixSnapshotDone + p.lsn.String()
	case posLSN:
		return prefixLSN + p.lsn.String()
	}
	return ""
}

// streamFrom is the first commit LSN that was not staged: a transaction
// whose commit LSN is below it was staged, by the snapshot or in a batch.
func (p position) streamFrom() pglogrepl.LSN {
	switch p.kind {
	case posSnapshotDone:
		// The snapshot holds exactly the transactions that committed
		// before the consistent point; one committing at it is streamed.
		return p.lsn
	case posLSN:
		return p.lsn + 1
	}
	return 0
}

func parsePosition(s string) (position, error) {
	bad := func(why string) (position, error) {
		return position{}, fmt.Errorf("%w: %q: %s", ErrBadPosition, s, why)
	}
	switch {
	case s == "":
		return position{}, nil
	case strings.HasPrefix(s, prefixSnapshotDone):
		lsn, err := parseLSN(s[len(prefixSnapshotDone):])
		if err != nil {
			return bad(err.Error())
		}
		return position{kind: posSnapshotDone, lsn: lsn}, nil
	case strings.HasPrefix(s, prefixSnapshot):
		parts := strings.Split(s[len(prefixSnapshot):], ":")
		if len(parts) != 3 {
			return bad("want snapshot:<lsn>:<table>:<rows>")
		}
		lsn, err := parseLSN(parts[0])
		if err != nil {
			return bad(err.Error())
		}
		table, err := strconv.Atoi(parts[1])
		if err != nil || table < 0 {
			return bad("the table index is not a number")
		}
		rows, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || rows < 0 {
			return bad("the row count is not a number")
		}
		return position{kind: posSnapshot, lsn: lsn, table: table, rows: rows}, nil
	case strings.HasPrefix(s, prefixLSN):
		lsn, err := parseLSN(s[len(prefixLSN):])
		if err != nil {
			return bad(err.Error())
		}
		return position{kind: posLSN, lsn: lsn}, nil
	}
	return bad("want snapshot:…, snapshot-done:… or lsn:…")
}

// parseLSN reads an LSN as PostgreSQL writes it: two hexadecimal 32-bit
// halves, "16/B374D848".
func parseLSN(s string) (pglogrepl.LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("LSN %q is not hi/lo", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("LSN %q: %v", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("LSN %q: %v", s, err)
	}
	return pglogrepl.LSN(h<<32 | l), nil
}
