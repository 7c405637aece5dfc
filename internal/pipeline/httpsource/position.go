package httpsource

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// positionPrefix starts every position this source writes.
const positionPrefix = "http:"

// phase says what the link of a position reads.
type phase string

const (
	// full: a page of a full sync (items are Reads, batches Snapshots).
	full phase = "full"
	// delta: a page of changes since a delta link (Updates and Deletes).
	delta phase = "delta"
)

// position is the link to read next, as JSON after the prefix "http:":
//
//	http:{"link":"https://graph.microsoft.com/v1.0/…/delta?token=…","phase":"delta","from":"9f86d081884c7d65"}
//
// From identifies Config.URL (the start of a SHA-256 of it): a position
// made under another URL is not resumed, the source starts over.
type position struct {
	Link  string `json:"link"`
	Phase phase  `json:"phase"`
	From  string `json:"from"`
}

// urlID is the From of positions made under raw.
func urlID(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:8])
}

// parsePosition reads s, which must not be empty. Its errors do not quote
// s: the link holds a delta token.
func parsePosition(s string) (position, error) {
	rest, ok := strings.CutPrefix(s, positionPrefix)
	if !ok {
		head, _, _ := strings.Cut(s, ":")
		if len(head) > 20 {
			head = head[:20]
		}
		return position{}, fmt.Errorf("%w: it starts with %q, not %q: it is not this source's (was the pipeline's source changed?)", ErrBadPosition, head, positionPrefix)
	}
	var p position
	if err := json.Unmarshal([]byte(rest), &p); err != nil {
		return position{}, fmt.Errorf("%w: not JSON after %q", ErrBadPosition, positionPrefix)
	}
	if p.Phase != full && p.Phase != delta {
		return position{}, fmt.Errorf("%w: phase %q is neither %q nor %q", ErrBadPosition, p.Phase, full, delta)
	}
	if p.From == "" {
		return position{}, fmt.Errorf("%w: no \"from\"", ErrBadPosition)
	}
	u, err := url.Parse(p.Link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return position{}, fmt.Errorf("%w: its link is not an absolute http(s) URL", ErrBadPosition)
	}
	return p, nil
}

func (p position) String() string {
	b, _ := json.Marshal(p) // strings only: cannot fail
	return positionPrefix + string(b)
}
