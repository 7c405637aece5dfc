package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/deadletter"
	"github.com/sluicehq/sluice/internal/queue"
)

// Dead letters under /api/v1/deadletters (see package deadletter).

// DeadLetterJSON is a dead letter in API answers: the record, with the body
// also as text when it is UTF-8.
type DeadLetterJSON struct {
	deadletter.Letter
	BodyText *string `json:"body_text,omitempty"`
}

// DeadLetterSelector selects dead letters for redrive and purge. At least
// one field must be set, or All, so that nothing is redriven or purged by
// an empty request.
type DeadLetterSelector struct {
	Queue    string   `json:"queue,omitempty"`
	Function string   `json:"function,omitempty"`
	Source   string   `json:"source,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	IDs      []uint64 `json:"ids,omitempty"`
	All      bool     `json:"all,omitempty"`
	// ToHub, for redrive: a hub function's inputs are published to the
	// hub again, as new events every consumer group sees; by default they
	// go back to the function that gave up on them alone, through its
	// retry queue.
	ToHub bool `json:"to_hub,omitempty"`
}

func (d DeadLetterSelector) filter() (deadletter.Filter, error) {
	f := deadletter.Filter{Queue: d.Queue, Function: d.Function, Source: d.Source, Reason: d.Reason, IDs: d.IDs}
	if !d.All && f.Queue == "" && f.Function == "" && f.Source == "" && f.Reason == "" && len(f.IDs) == 0 {
		return f, invalidRequestf(`select dead letters with queue, function, source, reason or ids, or send "all": true`)
	}
	if len(f.IDs) > 0 && f.Queue == "" {
		return f, invalidRequestf("ids are per dead-letter queue: give the queue too (sluice-deadletters or <queue>-poison)")
	}
	return f, nil
}

func (s *Server) deadLetterRoutes() {
	s.route("GET /api/v1/deadletters", "deadletters.list", s.listDeadLetters)
	s.route("GET /api/v1/deadletters/{queue}/{id}", "deadletters.show", s.showDeadLetter)
	s.route("POST /api/v1/deadletters/redrive", "deadletters.redrive", s.redrive)
	s.route("POST /api/v1/deadletters/purge", "deadletters.purge", s.purgeDeadLetters)
}

// failDeadLetters answers with the status that fits an error of the dead
// letter store.
func (s *Server) failDeadLetters(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, queue.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error()+" (list dead letters with GET /api/v1/deadletters)")
	case errors.Is(err, queue.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, queue.ErrUnsupported):
		writeError(w, http.StatusNotImplemented, err.Error())
	default:
		s.fail(w, r, err)
	}
}

func (s *Server) deadLetterStore() *deadletter.Store {
	return &deadletter.Store{Queues: s.cfg.Queues, Hubs: s.cfg.Hubs, Docs: s.cfg.Docs, Blobs: s.cfg.Blobs, RetryRoute: s.cfg.RetryRoute}
}

func deadLetterJSON(l deadletter.Letter) DeadLetterJSON {
	out := DeadLetterJSON{Letter: l}
	if utf8.Valid(l.Body) {
		text := string(l.Body)
		out.BodyText = &text
	}
	return out
}

// DeadLetterListJSON is the answer of GET /api/v1/deadletters.
type DeadLetterListJSON struct {
	DeadLetters []DeadLetterJSON `json:"dead_letters"`
	// Older and Newer are cursors (with order): pass Older as before= for
	// the next older page, Newer as after= for the next newer one. Each is
	// absent when there is no such page (Newer: on the newest page).
	Older string `json:"older,omitempty"`
	Newer string `json:"newer,omitempty"`
}

// listDeadLetters serves GET /api/v1/deadletters. Parameters, all
// optional:
//
//   - queue, function, source, reason: select letters (see
//     DeadLetterSelector).
//   - limit: list at most this many, 1 to 10000 (default 100).
//   - order: "newest" lists the letters of all dead-letter queues newest
//     first, "oldest" oldest first, merged by when each was kept, and the
//     answer has the cursors older and newer. Without order (and without
//     a cursor) the letters are listed oldest first per dead-letter queue,
//     one queue after the other, without cursors, as before order existed.
//   - before: a cursor (an answer's older): the page of letters older
//     than it. after: a cursor (an answer's newer): the page of letters
//     newer than it, the nearest ones. At most one of them; with either,
//     order defaults to "newest". A page asked with a cursor stays the same
//     page while letters are kept: new letters are on the newer side.
//
// The dashboard lists newest first and pages with older and newer.
func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			s.fail(w, r, invalidRequestf("limit %q: use a number from 1 to 10000", v))
			return
		}
		limit = n
	}
	f := deadletter.Filter{Queue: q.Get("queue"), Function: q.Get("function"), Source: q.Get("source"), Reason: q.Get("reason")}
	order, before, after := q.Get("order"), q.Get("before"), q.Get("after")
	if order == "" && before == "" && after == "" {
		letters, err := s.deadLetterStore().List(r.Context(), f, limit)
		if err != nil {
			s.failDeadLetters(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, DeadLetterListJSON{DeadLetters: deadLettersJSON(letters)})
		return
	}
	o := deadletter.PageOptions{Limit: limit}
	switch order {
	case "newest", "":
		o.Order = deadletter.NewestFirst
	case "oldest":
		o.Order = deadletter.OldestFirst
	default:
		s.fail(w, r, invalidRequestf(`order %q: use "newest" or "oldest"`, order))
		return
	}
	if before != "" && after != "" {
		s.fail(w, r, invalidRequestf("give before or after, not both: before lists older letters, after newer ones"))
		return
	}
	for _, c := range []struct {
		name, text string
		dst        **deadletter.Cursor
	}{{"before", before, &o.Before}, {"after", after, &o.After}} {
		if c.text == "" {
			continue
		}
		cur, err := deadletter.ParseCursor(c.text)
		if err != nil {
			s.fail(w, r, invalidRequestf("%s: %s", c.name, strings.TrimPrefix(err.Error(), queue.ErrInvalid.Error()+" ")))
			return
		}
		*c.dst = &cur
	}
	page, err := s.deadLetterStore().ListPage(r.Context(), f, o)
	if err != nil {
		s.failDeadLetters(w, r, err)
		return
	}
	out := DeadLetterListJSON{DeadLetters: deadLettersJSON(page.Letters)}
	if page.HasOlder {
		out.Older = page.Older.String()
	}
	if page.HasNewer {
		out.Newer = page.Newer.String()
	}
	writeJSON(w, http.StatusOK, out)
}

func deadLettersJSON(letters []deadletter.Letter) []DeadLetterJSON {
	out := make([]DeadLetterJSON, len(letters))
	for i, l := range letters {
		out[i] = deadLetterJSON(l)
	}
	return out
}

func (s *Server) showDeadLetter(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, r, invalidRequestf("dead letter id %q: want a number, as listed by GET /api/v1/deadletters", r.PathValue("id")))
		return
	}
	l, err := s.deadLetterStore().Get(r.Context(), r.PathValue("queue"), id)
	if err != nil {
		s.failDeadLetters(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, deadLetterJSON(l))
}

func (s *Server) selectDeadLetters(w http.ResponseWriter, r *http.Request) (deadletter.Filter, DeadLetterSelector, bool) {
	var sel DeadLetterSelector
	if err := decodeRequest(r, &sel); err != nil {
		s.failDeadLetters(w, r, err)
		return deadletter.Filter{}, sel, false
	}
	f, err := sel.filter()
	if err != nil {
		s.failDeadLetters(w, r, err)
		return f, sel, false
	}
	return f, sel, true
}

// RedriveStoppedJSON answers a redrive that stopped partway (a write
// failed after every letter was checked): the error, and which letters
// were redriven and which not.
type RedriveStoppedJSON struct {
	Error string `json:"error"`
	// Redriven were sent back to their sources and removed.
	Redriven []deadletter.Ref `json:"redriven"`
	// NotRedriven are still dead letters.
	NotRedriven []deadletter.Ref `json:"not_redriven"`
	// NotRemoved were sent back but are still kept: purge them.
	NotRemoved []deadletter.Ref `json:"not_removed,omitempty"`
}

// redrive sends dead letters back: every selected letter is checked
// first, and if one cannot be redriven nothing is (see
// deadletter.Store.Redrive).
func (s *Server) redrive(w http.ResponseWriter, r *http.Request) {
	f, sel, ok := s.selectDeadLetters(w, r)
	if !ok {
		return
	}
	n, err := s.deadLetterStore().Redrive(r.Context(), f, deadletter.RedriveOptions{ToHub: sel.ToHub}, nil)
	if rerr, ok := errors.AsType[*deadletter.RedriveError](err); ok {
		s.log.Warn("redrive stopped", "redriven", n, "err", err)
		code := http.StatusInternalServerError
		if unavailable(r, err) {
			code = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", retryAfter)
		}
		writeJSON(w, code, RedriveStoppedJSON{Error: err.Error(), Redriven: nonNil(rerr.Redriven),
			NotRedriven: nonNil(rerr.NotRedriven), NotRemoved: rerr.NotRemoved})
		return
	}
	if err != nil {
		s.failDeadLetters(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"redriven": n})
}

// nonNil is refs, or an empty list (JSON [], not null).
func nonNil(refs []deadletter.Ref) []deadletter.Ref {
	if refs == nil {
		return []deadletter.Ref{}
	}
	return refs
}

func (s *Server) purgeDeadLetters(w http.ResponseWriter, r *http.Request) {
	f, _, ok := s.selectDeadLetters(w, r)
	if !ok {
		return
	}
	n, err := s.deadLetterStore().Purge(r.Context(), f)
	if err != nil {
		s.failDeadLetters(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"purged": n})
}
