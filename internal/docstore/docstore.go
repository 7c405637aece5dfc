// Package docstore is the document store: containers of JSON documents,
// each in a partition given by a path into the document (like
// `/deviceId`), with optimistic concurrency and a change feed.
//
// Every write stamps the document with the next LSN (log sequence number)
// of its container; the change feed is the documents ordered by LSN, so a
// reader that remembers the last LSN it saw misses nothing. A delete leaves
// a tombstone in the feed, kept for a retention period. The feed shows
// each document's latest version: a reader that falls behind sees one
// change for several updates of a document, never an older state after a
// newer one.
//
// Backends: sqlite (embedded, the default) and postgres; both pass the
// conformance suite in docstoretest.
package docstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Errors returned by every backend. Callers map them to user-facing answers.
var (
	// ErrNotFound: the container or document does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a container, or (on Create) a document, exists already.
	ErrExists = errors.New("already exists")
	// ErrPrecondition: an If-Match ETag does not match the document's.
	ErrPrecondition = errors.New("etag does not match")
	// ErrInvalid wraps every validation error of caller input.
	ErrInvalid = errors.New("invalid")
	// ErrTooLarge: a document is bigger than the maximum document size.
	ErrTooLarge = errors.New("document too large")
	// ErrUnavailable: the backend did not answer: its database is closed,
	// unreachable, refusing connections, or busy past its timeout. Nothing
	// is wrong with the request: retry it later. Backends mark such errors
	// with Unavailable.
	ErrUnavailable = errors.New("document store unavailable")
)

// Unavailable marks err as ErrUnavailable, its text unchanged.
func Unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	return &unavailableError{err}
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string        { return e.err.Error() }
func (e *unavailableError) Unwrap() error        { return e.err }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// DefaultMaxDocumentBytes bounds a document's JSON.
const DefaultMaxDocumentBytes = 2 << 20

// System fields of a stored document, besides "id".
const (
	FieldETag = "_etag"
	FieldTS   = "_ts"
	FieldLSN  = "_lsn"
)

var containerRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Container is a container's definition.
type Container struct {
	Name string `json:"name"`
	// PartitionKeyPath locates each document's partition key, like
	// "/deviceId" or "/address/country".
	PartitionKeyPath string `json:"partition_key_path"`
	// DefaultTTL, when positive, removes documents this long after their
	// last write. 0 keeps them.
	DefaultTTL time.Duration `json:"default_ttl,omitempty"`
	Created    time.Time     `json:"created"`
}

// Incarnation tells this container from one of the same name deleted
// and created again, whose LSNs start over: readers keep it with their
// position, and a position of another incarnation is no position at all.
// It is the creation time in microseconds, base 36.
func (c Container) Incarnation() string { return strconv.FormatInt(c.Created.UnixMicro(), 36) }

// Validate checks a container definition.
func (c Container) Validate() error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if _, err := ParsePath(c.PartitionKeyPath); err != nil {
		return fmt.Errorf("%w partition key path: %w", ErrInvalid, err)
	}
	if c.DefaultTTL < 0 {
		return fmt.Errorf("%w default ttl %s: must not be negative", ErrInvalid, c.DefaultTTL)
	}
	return nil
}

// ValidateName checks a container name.
func ValidateName(name string) error {
	if !containerRE.MatchString(name) {
		return fmt.Errorf("%w container name %q: use 1-64 letters, digits, '-' or '_', starting with a letter or digit", ErrInvalid, name)
	}
	return nil
}

// ParsePath splits a path like "/a/b" into its fields.
func ParsePath(path string) ([]string, error) {
	if !strings.HasPrefix(path, "/") || len(path) < 2 {
		return nil, fmt.Errorf("%q: want a path like /deviceId or /address/country", path)
	}
	fields := strings.Split(path[1:], "/")
	for _, f := range fields {
		if f == "" {
			return nil, fmt.Errorf("%q has an empty field", path)
		}
	}
	return fields, nil
}

// Document is a stored document, or in the change feed a change.
type Document struct {
	ID           string `json:"id"`
	PartitionKey string `json:"partition_key"`
	ETag         string `json:"etag"`
	// TS is when the document was last written.
	TS  time.Time `json:"ts"`
	LSN int64     `json:"lsn"`
	// Deleted marks a tombstone: the document was deleted (feed only).
	Deleted bool `json:"deleted,omitempty"`
	// Body is the document as stored, with its system fields ("id",
	// "_etag", "_ts" in Unix seconds, "_lsn"). Empty for tombstones.
	Body json.RawMessage `json:"body,omitempty"`
}

// Prepared is a document checked and ready to store: its user fields,
// without system fields, and its id and partition key.
type Prepared struct {
	ID           string
	PartitionKey string
	// idJSON is the id as a JSON string; members are the document's other
	// fields as JSON object members ("k":v,...), system fields removed.
	idJSON, members []byte
}

// Prepare checks a document for container c: a JSON object of at most
// maxBytes with a string "id" and a partition key at c's path (a string,
// number or boolean), nested at most MaxDepth levels, without an object
// that names a member twice (*DepthError, *DuplicateMemberError). System
// fields in it are ignored.
func Prepare(c Container, doc []byte, maxBytes int) (Prepared, error) {
	if len(doc) > maxBytes {
		return Prepared{}, fmt.Errorf("%w: the document is %d bytes, the limit is %d bytes", ErrTooLarge, len(doc), maxBytes)
	}
	path, _ := ParsePath(c.PartitionKeyPath)
	if p, ok := prepareFast(path, doc); ok {
		// The fast path read valid JSON: its shape is what is left to check.
		if err := CheckShape(doc, "document", MaxDepth); err != nil {
			return Prepared{}, err
		}
		return p, nil
	}
	return prepareDecoded(c, doc)
}

// prepareDecoded prepares a document by decoding its fields into a map:
// the path that decides every case prepareFast leaves, and words the
// errors.
func prepareDecoded(c Container, doc []byte) (Prepared, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(doc, &fields); err != nil || fields == nil {
		if derr, ok := errors.AsType[*DepthError](CheckShape(doc, "document", MaxDepth)); ok {
			return Prepared{}, derr // encoding/json stops at 10,000 levels
		}
		if _, ok := errors.AsType[*json.SyntaxError](err); ok && json.Valid(bytes.TrimSpace(firstValue(doc))) {
			return Prepared{}, fmt.Errorf("%w document: more than one JSON value", ErrInvalid)
		}
		return Prepared{}, fmt.Errorf("%w document: not a JSON object (%v)", ErrInvalid, errText(err))
	}
	// Decoding took the last of duplicate members, and went as deep as
	// the document does: check what it let through.
	if err := CheckShape(doc, "document", MaxDepth); err != nil {
		return Prepared{}, err
	}
	var id string
	if raw, ok := fields["id"]; !ok || json.Unmarshal(raw, &id) != nil || id == "" {
		return Prepared{}, fmt.Errorf(`%w document: it needs an "id" that is a non-empty string`, ErrInvalid)
	}
	if !validID(id) {
		return Prepared{}, fmt.Errorf(`%w id %q: at most 255 characters, without '/', '\', '?' or '#'`, ErrInvalid, id)
	}
	pk, err := PartitionKeyOf(c, fields)
	if err != nil {
		return Prepared{}, err
	}
	delete(fields, "id")
	delete(fields, FieldETag)
	delete(fields, FieldTS)
	delete(fields, FieldLSN)
	members, _ := json.Marshal(fields)
	idJSON, _ := json.Marshal(id)
	return Prepared{ID: id, PartitionKey: pk, idJSON: idJSON, members: members[1 : len(members)-1]}, nil
}

// validID reports whether id can name a document (in a URL path too).
func validID(id string) bool {
	return id != "" && len(id) <= 255 && !strings.ContainsAny(id, "/\\?#")
}

// firstValue is the first JSON value of doc (all of it when it has only
// one, or when the first cannot be read).
func firstValue(doc []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(doc))
	var v json.RawMessage
	if dec.Decode(&v) != nil {
		return doc
	}
	return v
}

func errText(err error) string {
	if err == nil {
		return "null"
	}
	return err.Error()
}

// PartitionKeyOf finds the partition key value at c's path in a document's
// fields, as a string (numbers and booleans in their JSON form).
func PartitionKeyOf(c Container, fields map[string]json.RawMessage) (string, error) {
	path, _ := ParsePath(c.PartitionKeyPath)
	raw, ok := json.RawMessage(nil), false
	cur := fields
	for i, f := range path {
		raw, ok = cur[f]
		if !ok {
			break
		}
		if i < len(path)-1 {
			// A fresh map: decoding into cur would merge into the
			// document's own fields.
			var next map[string]json.RawMessage
			if json.Unmarshal(raw, &next) != nil {
				ok = false
				break
			}
			cur = next
		}
	}
	if !ok {
		return "", fmt.Errorf("%w document: it has no partition key at %s", ErrInvalid, c.PartitionKeyPath)
	}
	var v any
	_ = json.Unmarshal(raw, &v)
	switch v := v.(type) {
	case string:
		if v == "" {
			// It could not be named in a URL path (/docs/{pk}/{id}).
			return "", fmt.Errorf("%w document: the partition key at %s must not be empty", ErrInvalid, c.PartitionKeyPath)
		}
		return v, nil
	case float64, bool:
		return string(bytes.TrimSpace(raw)), nil
	}
	return "", fmt.Errorf("%w document: the partition key at %s must be a string, number or boolean", ErrInvalid, c.PartitionKeyPath)
}

// CheckPatch refuses a patch that sets a system field.
func CheckPatch(set map[string]json.RawMessage) error {
	for k := range set {
		if k == "id" || k == FieldETag || k == FieldTS || k == FieldLSN {
			return fmt.Errorf("%w patch: %q is a system field", ErrInvalid, k)
		}
	}
	return nil
}

// ApplyPatch sets top-level fields of a stored document's JSON (a null
// value removes the field) and prepares the result for container c; the
// partition key must stay pk.
func ApplyPatch(c Container, stored []byte, pk string, set map[string]json.RawMessage, maxBytes int) (Prepared, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(stored, &fields); err != nil {
		return Prepared{}, fmt.Errorf("docstore: stored document: %w", err)
	}
	for k, v := range set {
		if string(v) == "null" {
			delete(fields, k)
		} else {
			fields[k] = v
		}
	}
	merged, _ := json.Marshal(fields)
	p, err := Prepare(c, merged, maxBytes)
	if err != nil {
		return Prepared{}, err
	}
	if p.PartitionKey != pk {
		return Prepared{}, fmt.Errorf("%w patch: it would change the partition key from %q to %q; delete and create instead", ErrInvalid, pk, p.PartitionKey)
	}
	return p, nil
}

// ETagFor is the ETag of a document written at lsn.
func ETagFor(lsn int64) string { return `"` + strconv.FormatInt(lsn, 36) + `"` }

// FeedStart is where a change feed read begins, and which part of the
// feed it reads.
type FeedStart struct {
	// AfterLSN reads the changes after this LSN (0: from the beginning).
	AfterLSN int64
	// Time, when set, reads from the first change at or after it.
	Time time.Time
	// Range, when set, reads only the changes of some partition keys.
	Range FeedRange
}

// FeedRange is a part of a container's change feed: the partition keys
// whose hash (PartitionKeyHash) falls in the Index-th of Count equal,
// contiguous ranges of the 32-bit hash space. Count 0 is the whole feed.
// Every partition key is in exactly one range, so Count readers, one per
// range, see every change once, each in LSN order. Range i of n is the
// union of ranges 2i and 2i+1 of 2n.
type FeedRange struct {
	Count, Index int
}

// MaxFeedRanges bounds FeedRange.Count.
const MaxFeedRanges = 4096

// Validate checks a range.
func (r FeedRange) Validate() error {
	if r.Count < 0 || r.Count > MaxFeedRanges || (r.Count > 0 && (r.Index < 0 || r.Index >= r.Count)) || (r.Count == 0 && r.Index != 0) {
		return fmt.Errorf("%w feed range %d of %d: give a count from 1 to %d and an index below it (or count 0 for the whole feed)", ErrInvalid, r.Index, r.Count, MaxFeedRanges)
	}
	return nil
}

// Bounds returns the hashes of the range: lo <= hash < hi.
func (r FeedRange) Bounds() (lo, hi int64) {
	if r.Count == 0 {
		return 0, 1 << 32
	}
	// The first hash h with h*Count >= i<<32, for i = Index and Index+1.
	first := func(i int) int64 { return (int64(i)<<32 + int64(r.Count) - 1) / int64(r.Count) }
	return first(r.Index), first(r.Index + 1)
}

// Contains tells whether a partition key is in the range.
func (r FeedRange) Contains(pk string) bool {
	lo, hi := r.Bounds()
	h := PartitionKeyHash(pk)
	return h >= lo && h < hi
}

// PartitionKeyHash is the hash that places a partition key in feed
// ranges: 32-bit FNV-1a of its value, mixed by MurmurHash3's finalizer so
// that keys differing in their last characters (device-1, device-2)
// spread over the high bits, which pick the range. Backends store it with
// each document (column pk_hash); it must never change.
func PartitionKeyHash(pk string) int64 {
	h := uint32(2166136261)
	for i := 0; i < len(pk); i++ {
		h ^= uint32(pk[i])
		h *= 16777619
	}
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return int64(h)
}

// FeedConditions checks a feed read and builds what its statement needs
// after "WHERE container = <1st> AND lsn > <2nd>": the conditions of its
// start time and range, the order and the limit, with the arguments of all
// of it (container and start LSN first). param writes the n-th
// placeholder (from 1) and at a time as the backend stores it. Each shape
// gets its own statement, so that no planner weighs conditions that are
// always true.
func FeedConditions(container string, from FeedStart, limit int, param func(n int) string, at func(time.Time) any) (string, []any, error) {
	if limit < 1 {
		return "", nil, fmt.Errorf("%w limit %d: must be at least 1", ErrInvalid, limit)
	}
	if err := from.Range.Validate(); err != nil {
		return "", nil, err
	}
	var q strings.Builder
	args := []any{container, from.AfterLSN}
	if !from.Time.IsZero() {
		args = append(args, at(from.Time))
		q.WriteString(" AND ts >= " + param(len(args)))
	}
	if from.Range.Count > 0 {
		lo, hi := from.Range.Bounds()
		args = append(args, lo, hi)
		q.WriteString(" AND pk_hash >= " + param(len(args)-1) + " AND pk_hash < " + param(len(args)))
	}
	args = append(args, limit)
	q.WriteString(" ORDER BY lsn LIMIT " + param(len(args)))
	return q.String(), args, nil
}

// Key names a document: its partition key and id.
type Key struct{ PartitionKey, ID string }

// MaxReadManyKeys bounds the keys of one ReadMany: a call is one
// statement, whose size, and the time it holds a connection, grow with
// its keys.
const MaxReadManyKeys = 1000

// DistinctKeys checks the keys of a ReadMany and returns them with
// repeats left out, in the order of their first occurrence (keys itself
// when none repeats).
func DistinctKeys(keys []Key) ([]Key, error) {
	if len(keys) > MaxReadManyKeys {
		return nil, fmt.Errorf("%w read of %d documents: at most %d at a time; split the keys into several reads", ErrInvalid, len(keys), MaxReadManyKeys)
	}
	seen := make(map[Key]struct{}, len(keys))
	var distinct []Key // nil until a key repeats
	for i, k := range keys {
		if k.PartitionKey == "" || k.ID == "" {
			return nil, fmt.Errorf("%w key %d (partition key %q, id %q): both must be non-empty", ErrInvalid, i, k.PartitionKey, k.ID)
		}
		if _, dup := seen[k]; dup {
			if distinct == nil {
				distinct = append(make([]Key, 0, len(keys)), keys[:i]...)
			}
			continue
		}
		seen[k] = struct{}{}
		if distinct != nil {
			distinct = append(distinct, k)
		}
	}
	if distinct == nil {
		return keys, nil
	}
	return distinct, nil
}

// InKeyOrder puts docs, found by a ReadMany of distinct keys, in the
// order of the keys (a statement returns its rows in any order).
func InKeyOrder(keys []Key, docs []Document) []Document {
	if len(docs) < 2 {
		return docs
	}
	pos := make(map[Key]int, len(keys))
	for i, k := range keys {
		pos[k] = i
	}
	found := make([]int, len(keys)) // 1 + the index in docs of each key's document, or 0
	for i, d := range docs {
		found[pos[Key{d.PartitionKey, d.ID}]] = 1 + i
	}
	out := make([]Document, 0, len(docs))
	for _, i := range found {
		if i > 0 {
			out = append(out, docs[i-1])
		}
	}
	return out
}

// Store is a document store backend. Implementations are safe for
// concurrent use.
type Store interface {
	CreateContainer(ctx context.Context, c Container) (Container, error)
	GetContainer(ctx context.Context, name string) (Container, error)
	ListContainers(ctx context.Context) ([]Container, error)
	DeleteContainer(ctx context.Context, name string) error

	// Create stores a new document; ErrExists if its id is taken in its
	// partition.
	Create(ctx context.Context, container string, doc []byte) (Document, error)
	// Upsert creates or replaces a document.
	Upsert(ctx context.Context, container string, doc []byte) (Document, error)
	// Replace replaces an existing document; with ifMatch set, only if its
	// ETag is ifMatch (else ErrPrecondition).
	Replace(ctx context.Context, container string, doc []byte, ifMatch string) (Document, error)
	// Patch sets top-level fields of a document (a null value removes the
	// field), with ifMatch as in Replace.
	Patch(ctx context.Context, container, partitionKey, id string, set map[string]json.RawMessage, ifMatch string) (Document, error)
	// Read returns a live document: not deleted, not past the container's
	// TTL; else ErrNotFound.
	Read(ctx context.Context, container, partitionKey, id string) (Document, error)
	// ReadMany returns the live documents (as Read would) among keys, in
	// the order of keys, each once: keys that find none are left out, and
	// a key may repeat. An unknown container is ErrNotFound, as in Read;
	// more than MaxReadManyKeys keys, or a key with an empty partition key
	// or id, is ErrInvalid.
	ReadMany(ctx context.Context, container string, keys []Key) ([]Document, error)
	// CountDocuments counts a container's live documents (not tombstones,
	// not expired ones). It reads every one: for dashboards, not hot paths.
	CountDocuments(ctx context.Context, container string) (int64, error)
	// Delete removes a document, leaving a tombstone in the feed.
	Delete(ctx context.Context, container, partitionKey, id, ifMatch string) error
	// BulkUpsert upserts documents in one transaction: all or none.
	BulkUpsert(ctx context.Context, container string, docs [][]byte) ([]Document, error)

	// Feed returns up to limit changes after from, in LSN order.
	Feed(ctx context.Context, container string, from FeedStart, limit int) ([]Document, error)
	// LastLSN returns the LSN of the container's newest committed change
	// (0 when there is none): a reader that starts after it reads only
	// later changes.
	LastLSN(ctx context.Context, container string) (int64, error)
	// Changed returns a channel closed at the next committed write to the
	// container (by this process; readers poll as a fallback).
	Changed(container string) <-chan struct{}

	Close() error
}
