package cursorsource

import (
	"encoding/json"
	"fmt"
	"strings"
)

// positionPrefix starts every position this source writes.
const positionPrefix = "cursor:"

// position is how far each table was read, by the table's name as
// changes give it:
//
//	cursor:{"tables":{"public.orders":{"cursor":"2026-12-08 10:00:00.5+00","key":["42"]}}}
//
// An incremental table's progress is the cursor and key (as text) of the
// last row handed over; a full-refresh table's is the key of the last row
// of the pass under way, none between passes.
type position struct {
	Tables map[string]progress `json:"tables"`
}

type progress struct {
	Cursor *string  `json:"cursor,omitempty"`
	Key    []string `json:"key,omitempty"`
}

func parsePosition(s string) (position, error) {
	if s == "" {
		return position{Tables: map[string]progress{}}, nil
	}
	rest, ok := strings.CutPrefix(s, positionPrefix)
	if !ok {
		return position{}, fmt.Errorf("%w: %q does not start with %q", ErrBadPosition, s, positionPrefix)
	}
	var p position
	if err := json.Unmarshal([]byte(rest), &p); err != nil {
		return position{}, fmt.Errorf("%w: %q: %v", ErrBadPosition, s, err)
	}
	if p.Tables == nil {
		p.Tables = map[string]progress{}
	}
	for name, pr := range p.Tables {
		if len(pr.Key) == 0 {
			// No key is no progress within a pass: read from the start.
			pr.Key = nil
			p.Tables[name] = pr
		}
	}
	return p, nil
}

func (p position) String() string {
	b, _ := json.Marshal(p) // strings and slices of strings: cannot fail
	return positionPrefix + string(b)
}
