// Package deadletter keeps the inputs that functions gave up on, with
// everything needed to understand them and to send them back (redrive).
//
// Dead letters are queue messages. A queue trigger's go to the queue's
// poison queue, `<queue>-poison`, as users of Azure Storage queues expect;
// every other trigger's (hub, change feed, blob, timer) go to one queue per
// app, `sluice-deadletters`, with the function's name in each record. All
// have the same form: the message body is the input's body, its properties
// are the input's properties plus `sluice.dead_letter`, a JSON object with
// the function, the error, the source (hub, group, partition, sequence,
// partition key / queue, message id / container, document, LSN / blob,
// ETag / timer occurrence), attempts, first and last failure and optional
// state the function attached. So a poison queue can be consumed like any
// queue, and the tools here list, page, redrive and purge every kind.
package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
)

const (
	// Queue keeps the dead letters of every trigger except queue triggers.
	Queue = "sluice-deadletters"
	// PropRecord holds a dead letter's record (JSON) among its properties.
	PropRecord = "sluice.dead_letter"
	// PropRedrive marks a redriven input with how often it was redriven.
	PropRedrive = "sluice.redrive"
)

// Source locates an input where it came from.
type Source struct {
	Kind         string    `json:"kind"` // "hub", "queue", "container", "blob" or "timer" (EnqueuedTime: the occurrence)
	Hub          string    `json:"hub,omitempty"`
	Group        string    `json:"group,omitempty"`
	Partition    int       `json:"partition"`
	Sequence     int64     `json:"sequence,omitempty"`
	PartitionKey string    `json:"partition_key,omitempty"`
	Queue        string    `json:"queue,omitempty"`
	MessageID    uint64    `json:"message_id,omitempty"`
	EnqueuedTime time.Time `json:"enqueued_time,omitzero"`
	// A change of a container's feed: the document and the change's LSN.
	Container  string `json:"container,omitempty"`
	DocumentID string `json:"document_id,omitempty"`
	LSN        int64  `json:"lsn,omitempty"`
	// Deleted marks a change that was a delete (a tombstone).
	Deleted bool `json:"deleted,omitempty"`
	// A blob of a blob container (Container): its name and the version's
	// ETag.
	Blob string `json:"blob,omitempty"`
	ETag string `json:"etag,omitempty"`
	// A row a pipeline's destination (Group) refused: the pipeline, the
	// change set (its number and source position) and the row's table;
	// Hub and Sequence are its change-log event.
	Pipeline  string `json:"pipeline,omitempty"`
	ChangeSet int64  `json:"change_set,omitempty"`
	Position  string `json:"position,omitempty"`
	Table     string `json:"table,omitempty"`
}

// describe says where the input came from, for messages: "hub orders",
// "queue orders", "document \"a\" of container devices".
func (s Source) describe() string {
	switch s.Kind {
	case "hub":
		return "hub " + s.Hub
	case "queue":
		return "queue " + s.Queue
	case "container":
		return fmt.Sprintf("document %q of container %s", s.DocumentID, s.Container)
	case "blob":
		return fmt.Sprintf("blob %q of container %s", s.Blob, s.Container)
	case "timer":
		return "a timer"
	case "pipeline":
		return fmt.Sprintf("a row of %s in change set %d of pipeline %s", s.Table, s.ChangeSet, s.Pipeline)
	case "":
		return "an unknown source"
	}
	return fmt.Sprintf("a source of unknown kind %q", s.Kind)
}

// Name is the hub, queue or container the input came from.
func (s Source) Name() string {
	switch s.Kind {
	case "queue":
		return s.Queue
	case "container", "blob":
		return s.Container
	}
	return s.Hub
}

// Letter is an input a function gave up on (DESIGN.md invariant 5).
type Letter struct {
	// Where the letter is kept, once stored: its dead-letter queue and its
	// ID there.
	DeadLetterQueue string `json:"dead_letter_queue,omitempty"`
	ID              uint64 `json:"id,omitempty"`

	Function string `json:"function"`
	// Reason is the error text of the last failure.
	Reason       string    `json:"reason"`
	Source       Source    `json:"source"`
	Attempts     int       `json:"attempts"`
	FirstFailure time.Time `json:"first_failure"`
	LastFailure  time.Time `json:"last_failure"`
	// State is optional context the function attached.
	State json.RawMessage `json:"state,omitempty"`
	// Redriven counts how often the input was redriven before.
	Redriven int `json:"redriven,omitempty"`

	Body       []byte            `json:"body"`
	Properties map[string]string `json:"properties,omitempty"`

	// seq is where the letter is stored (queue.Message.Seq); kept is when
	// (its message's enqueued time), which orders pages (see ListPage).
	seq  uint64
	kept time.Time
}

// Ref names a stored dead letter: its dead-letter queue and its ID there.
type Ref struct {
	Queue string `json:"queue"`
	ID    uint64 `json:"id"`
}

func (r Ref) String() string { return r.Queue + "/" + strconv.FormatUint(r.ID, 10) }

// Ref names the letter.
func (l Letter) Ref() Ref { return Ref{Queue: l.DeadLetterQueue, ID: l.ID} }

func refs(letters []Letter) []Ref {
	out := make([]Ref, len(letters))
	for i, l := range letters {
		out[i] = l.Ref()
	}
	return out
}

// refList is refs for a message, shortened past a few dozen.
func refList(rs []Ref) string {
	const most = 20
	parts := make([]string, 0, min(len(rs), most)+1)
	for i, r := range rs {
		if i == most {
			parts = append(parts, fmt.Sprintf("and %d more", len(rs)-most))
			break
		}
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ", ")
}

// ErrNotFound: a dead letter named by its queue and ID does not exist: it
// was redriven or purged already, or the ID is wrong.
var ErrNotFound = errors.New("dead letter not found")

// NotFoundError names the dead letters that were asked for and do not
// exist. It is ErrNotFound, and queue.ErrNotFound.
type NotFoundError struct{ Refs []Ref }

func (e *NotFoundError) Error() string {
	if len(e.Refs) == 1 {
		return fmt.Sprintf("dead letter %s not found", e.Refs[0])
	}
	return fmt.Sprintf("dead letters %s not found", refList(e.Refs))
}

// Is makes a NotFoundError ErrNotFound and queue.ErrNotFound.
func (e *NotFoundError) Is(target error) bool {
	return target == ErrNotFound || target == queue.ErrNotFound
}

// RedriveError is returned when a redrive stopped partway, after every
// letter was checked: a write failed (the engine stopped answering, say).
// The letters in Redriven were sent back to their sources and removed;
// those in NotRedriven were not, and are still dead letters. NotRemoved
// were sent back but could not be removed: purge them, or they would be
// redriven again.
type RedriveError struct {
	Redriven, NotRedriven, NotRemoved []Ref
	Err                               error
}

func (e *RedriveError) Error() string {
	sent := len(e.Redriven) + len(e.NotRemoved)
	msg := fmt.Sprintf("redrive stopped after %d of %d dead letters: %v", sent, sent+len(e.NotRedriven), e.Err)
	if len(e.Redriven) > 0 {
		msg += "; redriven (sent back and removed): " + refList(e.Redriven)
	}
	if len(e.NotRemoved) > 0 {
		msg += "; sent back but still kept, purge them: " + refList(e.NotRemoved)
	}
	if len(e.NotRedriven) > 0 {
		msg += "; not redriven (still dead letters, redrive them again): " + refList(e.NotRedriven)
	}
	return msg
}

func (e *RedriveError) Unwrap() error { return e.Err }

// record is what PropRecord holds: the letter without its payload.
type record struct {
	Function     string          `json:"function"`
	Reason       string          `json:"reason"`
	Source       Source          `json:"source"`
	Attempts     int             `json:"attempts"`
	FirstFailure time.Time       `json:"first_failure"`
	LastFailure  time.Time       `json:"last_failure"`
	State        json.RawMessage `json:"state,omitempty"`
}

// Encode turns a letter into the queue message that keeps it.
func Encode(l Letter) queue.Outgoing {
	rec, _ := json.Marshal(record{Function: l.Function, Reason: shorten(l.Reason, maxReasonBytes), Source: l.Source, Attempts: l.Attempts,
		FirstFailure: l.FirstFailure, LastFailure: l.LastFailure, State: l.State})
	props := make(map[string]string, len(l.Properties)+1)
	maps.Copy(props, l.Properties)
	props[PropRecord] = string(rec)
	return queue.Outgoing{Body: l.Body, Properties: props}
}

// maxReasonBytes bounds a letter's reason, so that a letter of the largest
// event fits its queue (see hub.EventReserve).
const maxReasonBytes = 16 << 10

// shorten cuts s to at most n bytes, on a UTF-8 boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = " …(cut)"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Decode reads a letter from a message of dead-letter queue dlq. A message
// without a record (sent to a poison queue by someone else) is returned
// with what is known.
func Decode(dlq string, m *queue.Message) Letter {
	l := Letter{DeadLetterQueue: dlq, ID: m.ID, seq: m.Seq, kept: m.Enqueued, Body: m.Body}
	var rec record
	if raw, ok := m.Properties[PropRecord]; ok && json.Unmarshal([]byte(raw), &rec) == nil {
		l.Function, l.Reason, l.Source, l.Attempts = rec.Function, rec.Reason, rec.Source, rec.Attempts
		l.FirstFailure, l.LastFailure, l.State = rec.FirstFailure, rec.LastFailure, rec.State
	} else {
		l.Reason = "(no dead-letter record: sent to this queue directly)"
		if src, ok := strings.CutSuffix(dlq, queue.PoisonSuffix); ok {
			l.Source = Source{Kind: "queue", Queue: src}
		}
	}
	for k, v := range m.Properties {
		if k == PropRecord {
			continue
		}
		if l.Properties == nil {
			l.Properties = map[string]string{}
		}
		l.Properties[k] = v
	}
	l.Redriven, _ = strconv.Atoi(l.Properties[PropRedrive])
	return l
}

// Store keeps, lists, redrives and purges dead letters.
type Store struct {
	Queues *queue.Service
	Hubs   *hub.Service
	// Docs, when set, lets changes of containers' feeds be redriven.
	Docs docstore.Store
	// Blobs, when set, lets blobs be redriven.
	Blobs *blob.Service
	// RetryRoute, when set, sends a redriven hub event back to the
	// function that gave up on it alone (host.RedriveMessage); nil: to
	// the hub.
	RetryRoute RetryRoute
}

// Put keeps letters in Queue. It returns when they are durably stored.
func (s *Store) Put(ctx context.Context, letters []Letter) error {
	return s.put(ctx, Queue, letters)
}

// Poison keeps a queue trigger's letter in the queue's poison queue (or in
// Queue when the queue has none: it is itself a poison queue).
func (s *Store) Poison(ctx context.Context, l Letter) error {
	dlq := queue.PoisonName(l.Source.Queue)
	if dlq == "" {
		dlq = Queue
	}
	return s.put(ctx, dlq, []Letter{l})
}

func (s *Store) put(ctx context.Context, dlq string, letters []Letter) error {
	if len(letters) == 0 {
		return nil
	}
	maxBytes := 0
	msgs := make([]queue.Outgoing, len(letters))
	for i, l := range letters {
		msgs[i] = Encode(l)
		maxBytes = max(maxBytes, msgs[i].Size())
	}
	_, err := s.Queues.Send(ctx, dlq, msgs)
	if errors.Is(err, queue.ErrNotFound) || errors.Is(err, queue.ErrTooLarge) {
		// First letter, or one larger than the queue allows: make room.
		if err := s.ensure(ctx, dlq, maxBytes); err != nil {
			return err
		}
		_, err = s.Queues.Send(ctx, dlq, msgs)
	}
	if err != nil {
		return fmt.Errorf("dead letters: keep in %s: %w", dlq, err)
	}
	return nil
}

// ensure creates a dead-letter queue that keeps letters until they are
// redriven or purged, with room for letters of maxBytes.
func (s *Store) ensure(ctx context.Context, dlq string, maxBytes int) error {
	size := min(max(queue.DefaultMaxMessageBytes, 2*maxBytes), s.Queues.MaxMessageBytesLimit())
	info, err := s.Queues.Ensure(ctx, queue.Config{Name: dlq, TTL: -1, MaxMessageBytes: size})
	if err != nil {
		return fmt.Errorf("dead letters: create %s: %w", dlq, err)
	}
	if info.MaxMessageBytes < maxBytes {
		return fmt.Errorf("dead letters: a %d-byte letter does not fit queue %s (limit %d); raise its limit", maxBytes, dlq, info.MaxMessageBytes)
	}
	return nil
}

// Filter selects dead letters. Zero fields match everything.
type Filter struct {
	// Queue is a dead-letter queue (Queue or a poison queue); "" is all.
	Queue    string
	Function string
	// Source is the hub or queue the inputs came from.
	Source string
	// Reason matches letters whose reason contains it.
	Reason string
	// IDs are letter IDs (within Queue when set).
	IDs []uint64
}

func (f Filter) match(l Letter) bool {
	if f.Function != "" && l.Function != f.Function {
		return false
	}
	if f.Source != "" && l.Source.Name() != f.Source {
		return false
	}
	if f.Reason != "" && !strings.Contains(l.Reason, f.Reason) {
		return false
	}
	if len(f.IDs) > 0 {
		for _, id := range f.IDs {
			if id == l.ID {
				return true
			}
		}
		return false
	}
	return true
}

// DeadLetterQueues returns the queues holding dead letters: Queue and
// every poison queue, those that exist.
func (s *Store) DeadLetterQueues(ctx context.Context) ([]string, error) {
	infos, err := s.Queues.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, info := range infos {
		if isDeadLetterQueue(info.Name) {
			out = append(out, info.Name)
		}
	}
	return out, nil
}

// List returns up to limit letters matching f, oldest first per queue.
func (s *Store) List(ctx context.Context, f Filter, limit int) ([]Letter, error) {
	var out []Letter
	err := s.each(ctx, f, func(l Letter) bool {
		out = append(out, l)
		return len(out) < limit
	})
	return out, err
}

// Get returns one letter; a *NotFoundError if there is none.
func (s *Store) Get(ctx context.Context, dlq string, id uint64) (Letter, error) {
	letters, err := s.selected(ctx, Filter{Queue: dlq, IDs: []uint64{id}})
	if err != nil {
		return Letter{}, err
	}
	return letters[0], nil
}

// selected returns every letter matching f, checking that each of f.IDs
// names one (a *NotFoundError names those that do not).
func (s *Store) selected(ctx context.Context, f Filter) ([]Letter, error) {
	var letters []Letter
	err := s.each(ctx, f, func(l Letter) bool {
		letters = append(letters, l)
		return true
	})
	if len(f.IDs) == 0 {
		return letters, err
	}
	if errors.Is(err, queue.ErrNotFound) {
		// No such dead-letter queue: none of its letters exists.
		letters, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	found := make(map[uint64]bool, len(letters))
	for _, l := range letters {
		found[l.ID] = true
	}
	var missing []Ref
	for _, id := range f.IDs {
		if !found[id] && !slices.Contains(missing, Ref{f.Queue, id}) {
			missing = append(missing, Ref{Queue: f.Queue, ID: id})
		}
	}
	if len(missing) > 0 {
		return nil, &NotFoundError{Refs: missing}
	}
	return letters, nil
}

// each calls fn with every letter matching f until fn returns false.
func (s *Store) each(ctx context.Context, f Filter, fn func(Letter) bool) error {
	queues := []string{f.Queue}
	if f.Queue == "" {
		var err error
		if queues, err = s.DeadLetterQueues(ctx); err != nil {
			return err
		}
	} else if !isDeadLetterQueue(f.Queue) {
		return fmt.Errorf("%w dead-letter queue %q: dead letters are in %s and in <queue>%s queues", queue.ErrInvalid, f.Queue, Queue, queue.PoisonSuffix)
	}
	for _, dlq := range queues {
		var after uint64
		for {
			page, err := s.Queues.PeekAfter(ctx, dlq, after, 500)
			if errors.Is(err, queue.ErrNotFound) && f.Queue != "" {
				return fmt.Errorf("dead-letter queue %s not found: no dead letter was kept there yet (%w)", dlq, err)
			}
			if err != nil {
				return err
			}
			for _, m := range page {
				if l := Decode(dlq, m); f.match(l) && !fn(l) {
					return nil
				}
				after = m.Seq
			}
			if len(page) < 500 {
				break
			}
		}
	}
	return nil
}

// RedriveOptions say where redriven hub events go.
type RedriveOptions struct {
	// ToHub publishes a hub function's dead-lettered events to the hub
	// again, as new events every consumer group of the hub sees. By
	// default they go back to the function that gave up on them alone,
	// through its retry queue (see Store.RetryRoute), out of partition
	// order, as sluice.RetryAt does.
	ToHub bool
}

// RetryRoute makes the message that gives a hub function's event back to
// that function alone: the queue (its retry queue) and the message. ok is
// false when the function has none.
type RetryRoute func(function, hubName, group string, partition int, sequence int64, partitionKey string,
	enqueued time.Time, body []byte, props map[string]string) (queueName string, m queue.Outgoing, ok bool)

// Redrive sends the letters matching f back to their sources, preserving
// body and properties and counting the redrive in PropRedrive, and removes
// them from the dead letters. A hub function's input goes back to that
// function alone, through its retry queue (unless opts.ToHub: then it is a
// new event of the hub, seen by every consumer group). It returns how many
// it redrove; progress, if set, is called after each.
//
// Every letter is checked before any is sent: an ID that names no letter
// is a *NotFoundError, and a letter that cannot be redriven (its source is
// gone, it is too large for it, it is a timer's or a delete's) is
// queue.ErrInvalid naming each; then nothing is sent. If a write fails
// after that, the error is a *RedriveError saying which letters were
// redriven and which not.
func (s *Store) Redrive(ctx context.Context, f Filter, opts RedriveOptions, progress func(done int)) (int, error) {
	letters, err := s.selected(ctx, f)
	if err != nil {
		return 0, err
	}
	if err := s.checkRedrive(ctx, letters, opts); err != nil {
		return 0, err
	}
	for i, l := range letters {
		if err := s.send(ctx, l, opts); err != nil {
			return i, &RedriveError{Redriven: refs(letters[:i]), NotRedriven: refs(letters[i:]),
				Err: fmt.Errorf("redrive %s to %s: %w", l.Ref(), l.Source.describe(), err)}
		}
		if err := s.Queues.DeleteMessage(ctx, l.DeadLetterQueue, l.seq); err != nil && !errors.Is(err, queue.ErrNotFound) {
			return i + 1, &RedriveError{Redriven: refs(letters[:i]), NotRemoved: []Ref{l.Ref()}, NotRedriven: refs(letters[i+1:]),
				Err: fmt.Errorf("remove redriven letter %s: %w", l.Ref(), err)}
		}
		if progress != nil {
			progress(i + 1)
		}
	}
	return len(letters), nil
}

// checkRedrive checks that every letter can be sent back to its source,
// and names those that cannot.
func (s *Store) checkRedrive(ctx context.Context, letters []Letter, opts RedriveOptions) error {
	c := redriveCheck{s: s, opts: opts, hubs: map[string]error{}, queues: map[string]queueCheck{}}
	var problems []string
	for _, l := range letters {
		err := c.letter(ctx, l)
		if err == nil {
			continue
		}
		if !errors.Is(err, queue.ErrInvalid) {
			return err // not about the letter: the check itself failed
		}
		if len(problems) == 10 {
			problems = append(problems, "and maybe more")
			break
		}
		problems = append(problems, fmt.Sprintf("%s: %v", l.Ref(), strings.TrimPrefix(err.Error(), queue.ErrInvalid.Error()+": ")))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: nothing was redriven: of the %d selected dead letters, these cannot be redriven (purge them, or select the others): %s",
		queue.ErrInvalid, len(letters), strings.Join(problems, "; "))
}

// redriveCheck checks letters, looking each source up once.
type redriveCheck struct {
	s      *Store
	opts   RedriveOptions
	hubs   map[string]error
	queues map[string]queueCheck
}

// queue looks a queue up once.
func (c *redriveCheck) queue(ctx context.Context, name string) queueCheck {
	qc, ok := c.queues[name]
	if !ok {
		qc.info, qc.err = c.s.Queues.Get(ctx, name)
		c.queues[name] = qc
	}
	return qc
}

// fits checks that m fits queue qc.
func fits(m queue.Outgoing, qc queueCheck, name string) error {
	if n := m.Size(); n-len(m.Body) > queue.MaxPropertiesBytes {
		return fmt.Errorf("%w: its properties take %d bytes, over the limit of %d bytes", queue.ErrInvalid, n-len(m.Body), queue.MaxPropertiesBytes)
	} else if n > qc.info.MaxMessageBytes {
		return fmt.Errorf("%w: it is %d bytes with its properties, over the limit of %d bytes of queue %s", queue.ErrInvalid, n, qc.info.MaxMessageBytes, name)
	}
	return nil
}

// toFunction is the retry-queue message of a hub letter, when it goes back
// to its function.
func (s *Store) toFunction(l Letter, opts RedriveOptions) (string, queue.Outgoing, bool) {
	if opts.ToHub || s.RetryRoute == nil || l.Source.Kind != "hub" || l.Function == "" {
		return "", queue.Outgoing{}, false
	}
	src := l.Source
	return s.RetryRoute(l.Function, src.Hub, src.Group, src.Partition, src.Sequence, src.PartitionKey, src.EnqueuedTime, l.Body, redriveProperties(l))
}

type queueCheck struct {
	info queue.Info
	err  error
}

// letter checks one letter: nil, queue.ErrInvalid saying why it cannot be
// redriven, or another error when the check could not be made.
func (c *redriveCheck) letter(ctx context.Context, l Letter) error {
	src := l.Source
	props := redriveProperties(l)
	if name, m, ok := c.s.toFunction(l, c.opts); ok {
		qc := c.queue(ctx, name)
		if errors.Is(qc.err, queue.ErrNotFound) {
			return fmt.Errorf("%w: function %s has no retry queue (it has not run since it was declared); redrive it to hub %s instead (to_hub), or start the function first", queue.ErrInvalid, l.Function, src.Hub)
		}
		if qc.err != nil {
			return qc.err
		}
		return fits(m, qc, name)
	}
	switch src.Kind {
	case "pipeline":
		return fmt.Errorf("%w: a row that destination %s of pipeline %s refused is applied again by replaying the destination from its change set, once the cause is fixed (sluice pipeline replay %s --destination %s --change-set %d); then purge the letter",
			queue.ErrInvalid, src.Group, src.Pipeline, src.Pipeline, src.Group, src.ChangeSet)
	case "hub":
		if c.s.Hubs == nil {
			return fmt.Errorf("%w: this instance has no hubs", queue.ErrInvalid)
		}
		err, ok := c.hubs[src.Hub]
		if !ok {
			_, err = c.s.Hubs.Get(ctx, src.Hub)
			c.hubs[src.Hub] = err
		}
		if errors.Is(err, hub.ErrNotFound) || errors.Is(err, hub.ErrInvalid) {
			return fmt.Errorf("%w: hub %s no longer exists; create it again, or purge the letter", queue.ErrInvalid, src.Hub)
		}
		if err != nil {
			return err
		}
		ev := hub.Event{Body: l.Body, Properties: props, PartitionKey: src.PartitionKey}
		if n, limit := ev.Size(), c.s.Hubs.MaxEventBytes(); n > limit {
			return fmt.Errorf("%w: it is %d bytes with its properties, over the limit of %d bytes of hub %s's events", queue.ErrInvalid, n, limit, src.Hub)
		}
		return nil
	case "queue":
		qc := c.queue(ctx, src.Queue)
		if errors.Is(qc.err, queue.ErrNotFound) || errors.Is(qc.err, queue.ErrInvalid) {
			return fmt.Errorf("%w: queue %s no longer exists; create it again, or purge the letter", queue.ErrInvalid, src.Queue)
		}
		if qc.err != nil {
			return qc.err
		}
		return fits(queue.Outgoing{Body: l.Body, Properties: props}, qc, src.Queue)
	case "container":
		if c.s.Docs == nil {
			return fmt.Errorf("%w: this instance has no document store", queue.ErrInvalid)
		}
		if src.Deleted {
			return deleteNotRedrivable(src)
		}
		_, err := c.s.Docs.Read(ctx, src.Container, src.PartitionKey, src.DocumentID)
		if errors.Is(err, docstore.ErrNotFound) || errors.Is(err, docstore.ErrInvalid) {
			return documentGone(src)
		}
		return err
	case "blob":
		if c.s.Blobs == nil {
			return fmt.Errorf("%w: this instance has no blob service", queue.ErrInvalid)
		}
		_, err := c.s.Blobs.Stat(ctx, src.Container, src.Blob)
		if errors.Is(err, blob.ErrNotFound) || errors.Is(err, blob.ErrInvalid) {
			return blobGone(src)
		}
		return err
	}
	return kindNotRedrivable(src)
}

// kindNotRedrivable is the error of a source of a kind that has nothing to
// send again.
func kindNotRedrivable(src Source) error {
	if src.Kind == "timer" {
		return fmt.Errorf("%w: a timer's occurrence has nothing to send again; purge the letter (the timer runs at its next occurrence)", queue.ErrInvalid)
	}
	return fmt.Errorf("%w: it comes from %s; it cannot be redriven, only purged", queue.ErrInvalid, src.describe())
}

func deleteNotRedrivable(src Source) error {
	return fmt.Errorf("%w: the change was the delete of document %q (partition %q); a delete cannot be redriven, only purged", queue.ErrInvalid, src.DocumentID, src.PartitionKey)
}

func documentGone(src Source) error {
	return fmt.Errorf("%w: document %q (partition %q) is no longer in container %s; its change cannot be redriven, only purged", queue.ErrInvalid, src.DocumentID, src.PartitionKey, src.Container)
}

func blobGone(src Source) error {
	return fmt.Errorf("%w: blob %q is no longer in container %s; it cannot be redriven, only purged", queue.ErrInvalid, src.Blob, src.Container)
}

// redriveProperties are a letter's properties as redriven: with the
// redrive counted.
func redriveProperties(l Letter) map[string]string {
	props := make(map[string]string, len(l.Properties)+1)
	maps.Copy(props, l.Properties)
	props[PropRedrive] = strconv.Itoa(l.Redriven + 1)
	return props
}

func (s *Store) send(ctx context.Context, l Letter, opts RedriveOptions) error {
	if name, m, ok := s.toFunction(l, opts); ok {
		_, err := s.Queues.Send(ctx, name, []queue.Outgoing{m})
		return err
	}
	props := redriveProperties(l)
	switch l.Source.Kind {
	case "hub":
		_, err := s.Hubs.Publish(ctx, l.Source.Hub, []hub.Event{{Body: l.Body, Properties: props, PartitionKey: l.Source.PartitionKey}})
		return err
	case "queue":
		_, err := s.Queues.Send(ctx, l.Source.Queue, []queue.Outgoing{{Body: l.Body, Properties: props}})
		return err
	case "container":
		return s.touch(ctx, l.Source)
	case "blob":
		return s.rewriteBlob(ctx, l.Source)
	}
	return kindNotRedrivable(l.Source)
}

// touch redrives a change of a container's feed: it writes the document
// again, unchanged, so that it comes through the feed once more, to every
// function that follows the container. The feed shows the document's
// latest version, so that is what comes, not the letter's body.
func (s *Store) touch(ctx context.Context, src Source) error {
	if s.Docs == nil {
		return fmt.Errorf("%w: this instance has no document store", queue.ErrInvalid)
	}
	if src.Deleted {
		return deleteNotRedrivable(src)
	}
	_, err := s.Docs.Patch(ctx, src.Container, src.PartitionKey, src.DocumentID, nil, "")
	if errors.Is(err, docstore.ErrNotFound) {
		return documentGone(src)
	}
	return err
}

// rewriteBlob redrives a blob: it writes the blob again, unchanged, so
// that it is a new version, which every function on its path runs. The
// current version is what runs, which may be newer than the letter's.
func (s *Store) rewriteBlob(ctx context.Context, src Source) error {
	if s.Blobs == nil {
		return fmt.Errorf("%w: this instance has no blob service", queue.ErrInvalid)
	}
	rc, info, err := s.Blobs.Get(ctx, src.Container, src.Blob)
	if errors.Is(err, blob.ErrNotFound) {
		return blobGone(src)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = s.Blobs.Put(ctx, src.Container, src.Blob, rc, blob.Meta{ContentType: info.ContentType, Metadata: info.Metadata})
	return err
}

// Purge removes the letters matching f and returns how many. An ID that
// names no letter is a *NotFoundError, and nothing is purged.
func (s *Store) Purge(ctx context.Context, f Filter) (int, error) {
	letters, err := s.selected(ctx, f)
	if err != nil {
		return 0, err
	}
	for i, l := range letters {
		if err := s.Queues.DeleteMessage(ctx, l.DeadLetterQueue, l.seq); err != nil && !errors.Is(err, queue.ErrNotFound) {
			return i, fmt.Errorf("dead letters: purge %d from %s: %w", l.ID, l.DeadLetterQueue, err)
		}
	}
	return len(letters), nil
}
