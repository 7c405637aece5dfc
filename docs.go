package sluice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/host"
)

// ContainerConfig declares a document container, created when the app
// starts if it is missing.
type ContainerConfig struct {
	Name string
	// PartitionKeyPath locates each document's partition key, like
	// "/deviceId".
	PartitionKeyPath string
	// DefaultTTL, when positive, is how long documents are kept after
	// their last write.
	DefaultTTL time.Duration
}

// Document is a stored document: its id, partition key, ETag, LSN, write
// time and its JSON body with the system fields id, _etag, _ts and _lsn.
// In a change feed it is a change: the document as written, or a deletion.
type Document struct {
	ID           string `json:"id"`
	PartitionKey string `json:"partition_key"`
	// ETag changes with every write; pass it as ifMatch to write only
	// over this version.
	ETag string `json:"etag"`
	// TS is the time of the last write; LSN its position in the
	// container's change feed.
	TS  time.Time `json:"ts"`
	LSN int64     `json:"lsn"`
	// Deleted marks a deletion in a change feed (Body is then empty).
	Deleted bool `json:"deleted,omitempty"`
	// Body is the document's JSON, system fields included.
	Body json.RawMessage `json:"body,omitempty"`
}

// QueryRequest is a query in the store's SQL subset, for example
// `SELECT * FROM c WHERE c.battery < 20 ORDER BY c._ts DESC`, with
// optional @parameters, a partition key and paging.
type QueryRequest struct {
	// Text is the query.
	Text string `json:"query"`
	// Params are the values of its @parameters, named with the @.
	Params map[string]any `json:"parameters,omitempty"`
	// PartitionKey, when set, confines the query to one partition.
	PartitionKey *string `json:"partition_key,omitempty"`
	// MaxItems bounds the page (default and limit: the store's).
	MaxItems int `json:"max_items,omitempty"`
	// Continuation is the previous page's, to fetch the next.
	Continuation string `json:"continuation,omitempty"`
}

// QueryPage is a page of query results; its Continuation fetches the next.
type QueryPage struct {
	Documents    []Document `json:"documents"`
	Continuation string     `json:"continuation,omitempty"`
}

// The conversions at the SDK's boundary. They are conversions of
// identical struct types, so that a change to the store's types fails to
// compile here instead of changing the SDK.
func oneDoc(d docstore.Document, err error) (Document, error) { return Document(d), err }

func fromStoreDocs(ds []docstore.Document) []Document {
	if ds == nil {
		return nil
	}
	out := make([]Document, len(ds))
	for i, d := range ds {
		out[i] = Document(d)
	}
	return out
}

// Errors of the document store, for errors.Is.
var (
	ErrDocumentNotFound = docstore.ErrNotFound
	ErrDocumentExists   = docstore.ErrExists
	// ErrPreconditionFailed: an If-Match ETag did not match; read the
	// document again and retry.
	ErrPreconditionFailed = docstore.ErrPrecondition
	ErrDocumentTooLarge   = docstore.ErrTooLarge
)

// Container declares a container.
func (a *App) Container(cfg ContainerConfig) {
	a.containers = append(a.containers, cfg)
}

// Docs is the document store of a running app. Documents are JSON
// objects: pass []byte or json.RawMessage as they are, or any value that
// encodes to a JSON object.
type Docs struct{ app *App }

// Docs returns the document store. It may be taken before Start; its
// methods work while the app runs (ErrNotStarted otherwise).
func (a *App) Docs() *Docs { return &Docs{a} }

func encodeDoc(doc any) ([]byte, error) {
	switch d := doc.(type) {
	case []byte:
		return d, nil
	case json.RawMessage:
		return d, nil
	case string:
		return []byte(d), nil
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%w document: %v", docstore.ErrInvalid, err)
	}
	return b, nil
}

func (d *Docs) store() (docstore.Store, error) {
	a := d.app
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.started || a.stopped.Load() || a.docs == nil {
		return nil, ErrNotStarted
	}
	return a.docs, nil
}

// Upsert creates or replaces a document.
func (d *Docs) Upsert(ctx context.Context, container string, doc any) (Document, error) {
	return d.write(doc, func(s docstore.Store, b []byte) (docstore.Document, error) { return s.Upsert(ctx, container, b) })
}

// Create stores a new document; ErrDocumentExists if its id is taken in
// its partition.
func (d *Docs) Create(ctx context.Context, container string, doc any) (Document, error) {
	return d.write(doc, func(s docstore.Store, b []byte) (docstore.Document, error) { return s.Create(ctx, container, b) })
}

// Replace replaces an existing document; with ifMatch set (an ETag), only
// if the document has not changed since (else ErrPreconditionFailed).
func (d *Docs) Replace(ctx context.Context, container string, doc any, ifMatch string) (Document, error) {
	return d.write(doc, func(s docstore.Store, b []byte) (docstore.Document, error) {
		return s.Replace(ctx, container, b, ifMatch)
	})
}

func (d *Docs) write(doc any, fn func(docstore.Store, []byte) (docstore.Document, error)) (Document, error) {
	s, err := d.store()
	if err != nil {
		return Document{}, err
	}
	b, err := encodeDoc(doc)
	if err != nil {
		return Document{}, err
	}
	return oneDoc(fn(s, b))
}

// BulkUpsert upserts documents in one transaction: all or none.
func (d *Docs) BulkUpsert(ctx context.Context, container string, docs ...any) ([]Document, error) {
	s, err := d.store()
	if err != nil {
		return nil, err
	}
	raw := make([][]byte, len(docs))
	for i, doc := range docs {
		if raw[i], err = encodeDoc(doc); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
	}
	out, err := s.BulkUpsert(ctx, container, raw)
	return fromStoreDocs(out), err
}

// Patch sets top-level fields of a document; a nil value removes a field.
func (d *Docs) Patch(ctx context.Context, container, partitionKey, id string, set map[string]any, ifMatch string) (Document, error) {
	s, err := d.store()
	if err != nil {
		return Document{}, err
	}
	fields := make(map[string]json.RawMessage, len(set))
	for k, v := range set {
		b, err := json.Marshal(v)
		if err != nil {
			return Document{}, fmt.Errorf("%w patch field %s: %v", docstore.ErrInvalid, k, err)
		}
		fields[k] = b
	}
	return oneDoc(s.Patch(ctx, container, partitionKey, id, fields, ifMatch))
}

// Read returns a document.
func (d *Docs) Read(ctx context.Context, container, partitionKey, id string) (Document, error) {
	s, err := d.store()
	if err != nil {
		return Document{}, err
	}
	return oneDoc(s.Read(ctx, container, partitionKey, id))
}

// DocumentKey names a document for ReadMany: its partition key and id.
type DocumentKey struct{ PartitionKey, ID string }

// MaxReadManyKeys bounds the keys of one ReadMany call.
const MaxReadManyKeys = docstore.MaxReadManyKeys

// ReadMany returns the documents of keys, in one round trip to the store:
// much cheaper than a Read per key. The documents come in the order of
// keys, each once: a key that finds no document (never written, deleted,
// or past the container's TTL) is left out, and a repeated key adds
// nothing. An unknown container is ErrDocumentNotFound, as in Read; more
// than MaxReadManyKeys keys, or a key with an empty partition key or id,
// is an error.
//
//	docs, err := app.Docs().ReadMany(ctx, "devices",
//		sluice.DocumentKey{PartitionKey: "dev-1", ID: "dev-1"},
//		sluice.DocumentKey{PartitionKey: "dev-2", ID: "dev-2"})
func (d *Docs) ReadMany(ctx context.Context, container string, keys ...DocumentKey) ([]Document, error) {
	s, err := d.store()
	if err != nil {
		return nil, err
	}
	skeys := make([]docstore.Key, len(keys))
	for i, k := range keys {
		skeys[i] = docstore.Key(k)
	}
	out, err := s.ReadMany(ctx, container, skeys)
	return fromStoreDocs(out), err
}

// Delete removes a document (with ifMatch as in Replace). The change feed
// shows a tombstone.
func (d *Docs) Delete(ctx context.Context, container, partitionKey, id, ifMatch string) error {
	s, err := d.store()
	if err != nil {
		return err
	}
	return s.Delete(ctx, container, partitionKey, id, ifMatch)
}

// Query runs a query and returns one page of results.
func (d *Docs) Query(ctx context.Context, container string, req QueryRequest) (QueryPage, error) {
	s, err := d.store()
	if err != nil {
		return QueryPage{}, err
	}
	q, ok := s.(docstore.Querier)
	if !ok {
		return QueryPage{}, fmt.Errorf("sluice: this document store cannot run queries")
	}
	page, err := q.Query(ctx, container, docstore.QueryRequest(req))
	return QueryPage{Documents: fromStoreDocs(page.Documents), Continuation: page.Continuation}, err
}

// UpsertTo is an output binding: it turns fn, a handler that returns
// documents, into a handler for any trigger (hub events, feed changes, a
// queue message) that upserts those documents into container, in one
// transaction, once fn has succeeded. Nothing is written when fn fails; a
// failure to write fails the invocation, which the retry policy then
// governs, so no result is dropped. When fn returns documents and a
// DeadLetter error, the documents are written and the named inputs are
// dead-lettered.
//
//	app.FeedFunction("totals", sluice.FeedTrigger{Container: "orders"},
//		sluice.UpsertTo(app, "totals", func(ctx context.Context, changes []sluice.Document) ([]any, error) { ... }))
func UpsertTo[In any](app *App, container string, fn func(ctx context.Context, in In) ([]any, error)) func(ctx context.Context, in In) error {
	return func(ctx context.Context, in In) error {
		docs, err := fn(ctx, in)
		if _, partial := errors.AsType[*host.DeadLetterError](err); err != nil && !partial {
			return err
		}
		if len(docs) > 0 {
			if _, werr := app.Docs().BulkUpsert(ctx, container, docs...); werr != nil {
				return fmt.Errorf("output to container %s: %w", container, werr)
			}
		}
		return err
	}
}
