package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/docstore"
)

// Documents under /api/v1/containers (see package docstore). A document is
// addressed by its container, its partition key and its id:
// /api/v1/containers/{container}/docs/{partition key}/{id}, each path
// segment percent-encoded ("." and ".." as %2E and %2E%2E, or they are
// resolved away). A document whose partition key is "" cannot be
// addressed: an empty segment does not survive path cleaning.
//
// Answers that hold documents (a document, a write, a query, the feed) are
// compact JSON, each body as stored; ?pretty=1 indents them. A document
// nests at most docstore.MaxDepth levels, and names each member once.

// Limits of the document routes.
const (
	// MaxBulkDocuments bounds the documents of one bulk upsert.
	MaxBulkDocuments = 10000
	// MaxFeedWait bounds how long a change feed read waits for a change.
	MaxFeedWait = 30 * time.Second
	// maxFeedLimit bounds the changes one feed read returns.
	maxFeedLimit = 1000
	// feedPoll is how often a waiting feed read looks for changes that
	// Store.Changed does not announce: writes by other processes.
	feedPoll = time.Second
	// maxDocumentBytes bounds the body of a one-document request: the
	// store's own bound, which the Store interface does not tell.
	maxDocumentBytes = docstore.DefaultMaxDocumentBytes
)

// docRoutes registers /api/v1/containers.
func (s *Server) docRoutes() {
	s.route("GET /api/v1/containers", "containers.list", s.listContainers)
	s.route("POST /api/v1/containers", "containers.create", s.createContainer)
	s.route("GET /api/v1/containers/{container}", "containers.describe", s.describeContainer)
	s.route("DELETE /api/v1/containers/{container}", "containers.delete", s.deleteContainer)
	s.route("POST /api/v1/containers/{container}/docs", "docs.create", s.createDoc)
	s.route("PUT /api/v1/containers/{container}/docs", "docs.upsert", s.upsertDoc)
	s.route("POST /api/v1/containers/{container}/docs/bulk", "docs.bulk", s.bulkUpsert)
	s.route("GET /api/v1/containers/{container}/docs/{pk}/{id}", "docs.read", s.readDoc)
	s.route("PUT /api/v1/containers/{container}/docs/{pk}/{id}", "docs.replace", s.replaceDoc)
	s.route("PATCH /api/v1/containers/{container}/docs/{pk}/{id}", "docs.patch", s.patchDoc)
	s.route("DELETE /api/v1/containers/{container}/docs/{pk}/{id}", "docs.delete", s.deleteDoc)
	s.route("POST /api/v1/containers/{container}/query", "docs.query", s.queryDocs)
	s.route("GET /api/v1/containers/{container}/feed", "docs.feed", s.feed)
}

// docKey names the document a request is about.
type docKey struct{ pk, id string }

// failDocs answers with the status that fits an error of the document
// store; name is the container the request is about, key the document
// (nil when the request is not about one document).
func (s *Server) failDocs(w http.ResponseWriter, r *http.Request, name string, key *docKey, err error) {
	switch {
	case errors.Is(err, docstore.ErrNotFound):
		// Say which is missing, the container or the document.
		c, cerr := s.cfg.Docs.GetContainer(r.Context(), name)
		switch {
		case errors.Is(cerr, docstore.ErrNotFound):
			writeError(w, http.StatusNotFound, fmt.Sprintf("container %s not found: create it with POST /api/v1/containers "+
				"or `sluice docs container create %s --partition-key /yourKey` (list containers with GET /api/v1/containers)", name, name))
		case cerr == nil && key != nil:
			writeError(w, http.StatusNotFound, fmt.Sprintf("document %q not found in partition %q of container %s "+
				"(the partition key is the document's value at %s)", key.id, key.pk, name, c.PartitionKeyPath))
		case cerr != nil:
			s.fail(w, r, cerr) // the store stopped answering meanwhile
		default:
			writeError(w, http.StatusNotFound, err.Error())
		}
	case errors.Is(err, docstore.ErrExists):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, docstore.ErrPrecondition):
		writeError(w, http.StatusPreconditionFailed, err.Error())
	case errors.Is(err, docstore.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, docstore.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.fail(w, r, err)
	}
}

// pathContainer returns the container named in the path; on error it has
// answered. Routes call it first, so that a missing container is told
// before a body is read or a document looked for.
func (s *Server) pathContainer(w http.ResponseWriter, r *http.Request) (docstore.Container, bool) {
	name := r.PathValue("container")
	c, err := s.cfg.Docs.GetContainer(r.Context(), name)
	if err != nil {
		s.failDocs(w, r, name, nil, err)
		return docstore.Container{}, false
	}
	return c, true
}

// ContainerJSON is a container as the API shows it.
type ContainerJSON struct {
	Name string `json:"name"`
	// PartitionKeyPath locates each document's partition key, like
	// "/deviceId".
	PartitionKeyPath string `json:"partition_key_path"`
	// DefaultTTL is how long documents are kept after their last write, as
	// a Go duration; absent when they are kept until deleted.
	DefaultTTL string    `json:"default_ttl,omitempty"`
	Created    time.Time `json:"created"`
}

func containerJSON(c docstore.Container) ContainerJSON {
	out := ContainerJSON{Name: c.Name, PartitionKeyPath: c.PartitionKeyPath, Created: c.Created}
	if c.DefaultTTL > 0 {
		out.DefaultTTL = c.DefaultTTL.String()
	}
	return out
}

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Docs.ListContainers(r.Context())
	if err != nil {
		s.failDocs(w, r, "", nil, err)
		return
	}
	out := make([]ContainerJSON, len(list))
	for i, c := range list {
		out[i] = containerJSON(c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"containers": out})
}

// CreateContainerRequest is the body of POST /api/v1/containers.
type CreateContainerRequest struct {
	Name string `json:"name"`
	// PartitionKeyPath is the path of each document's partition key, like
	// "/deviceId" or "/address/country". It cannot change later.
	PartitionKeyPath string `json:"partition_key_path"`
	// DefaultTTL, a Go duration such as "24h", removes documents this long
	// after their last write; empty or "0s" keeps them.
	DefaultTTL string `json:"default_ttl,omitempty"`
}

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) {
	var req CreateContainerRequest
	err := requireJSON(r)
	if err == nil {
		err = decodeRequest(r, &req)
	}
	var ttl time.Duration
	if err == nil {
		ttl, err = parseDuration("default_ttl", req.DefaultTTL, `"24h", or "0s" to keep documents until they are deleted`)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.cfg.Docs.CreateContainer(r.Context(), docstore.Container{Name: req.Name, PartitionKeyPath: req.PartitionKeyPath, DefaultTTL: ttl})
	if err != nil {
		s.failDocs(w, r, req.Name, nil, err)
		return
	}
	writeJSON(w, http.StatusCreated, containerJSON(c))
}

func (s *Server) describeContainer(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.pathContainer(w, r); ok {
		writeJSON(w, http.StatusOK, containerJSON(c))
	}
}

func (s *Server) deleteContainer(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("container")
	if err := s.cfg.Docs.DeleteContainer(r.Context(), name); err != nil {
		s.failDocs(w, r, name, nil, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// requireJSON checks that a request's body is declared as JSON: as
// application/json, or as one of also.
func requireJSON(r *http.Request, also ...string) error {
	mt := mediaTypeOf(r.Header.Get("Content-Type"))
	if mt == mediaJSON {
		return nil
	}
	for _, a := range also {
		if mt == a {
			return nil
		}
	}
	want := strings.Join(append([]string{mediaJSON}, also...), " or ")
	if mt == "" {
		return &Error{Status: http.StatusUnsupportedMediaType, Msg: "missing Content-Type: send the body as " + want}
	}
	return &Error{Status: http.StatusUnsupportedMediaType, Msg: fmt.Sprintf("unsupported Content-Type %q: send the body as %s", mt, want)}
}

// readJSON reads a JSON request body of at most limit bytes and checks that
// it is one valid JSON text in UTF-8 in which no object names a member
// twice. what names the body in errors ("document"); want says what it
// should hold; tooLarge what to do when it is over limit.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, what, want, tooLarge string) ([]byte, error) {
	body, err := readBody(w, r, limit, tooLarge)
	if err != nil {
		return nil, err
	}
	if len(trimJSONSpace(body)) == 0 {
		return nil, invalidRequestf("the body is empty: send %s", want)
	}
	if !json.Valid(body) {
		pos, msg := syntaxError(body)
		return nil, invalidRequestf("invalid JSON at byte offset %d: %s (send %s)", pos, msg, want)
	}
	if pos := invalidUTF8(body); pos >= 0 {
		return nil, invalidRequestf("invalid UTF-8 at byte offset %d: JSON must be UTF-8", pos)
	}
	if err := checkUniqueMembers(body, what); err != nil {
		return nil, err
	}
	return body, nil
}

// readDocument reads the body of a one-document request for container c.
func readDocument(w http.ResponseWriter, r *http.Request, c docstore.Container) ([]byte, error) {
	if err := requireJSON(r); err != nil {
		return nil, err
	}
	return readJSON(w, r, maxDocumentBytes, "document", docWant(c),
		fmt.Sprintf("a document is at most %d bytes (2 MiB)", maxDocumentBytes))
}

// docWant describes a document of container c, for error messages.
func docWant(c docstore.Container) string {
	return fmt.Sprintf(`the document: a JSON object with an "id" and its partition key at %s`, c.PartitionKeyPath)
}

// ifMatch returns the ETag of a request's If-Match header: "" when there is
// none or it is "*" (the document must exist, which every conditional
// write requires anyway).
func ifMatch(r *http.Request) (string, error) {
	values := r.Header.Values("If-Match")
	if len(values) > 1 {
		return "", invalidRequestf("If-Match is given %d times: give the document's ETag once", len(values))
	}
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	switch {
	case v == "" || v == "*":
		return "", nil
	case strings.Contains(v, ","):
		return "", invalidRequestf("If-Match %s: give one ETag, the one of the document's last read or write", v)
	case len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"':
		return "", invalidRequestf(`If-Match %s: give the ETag as the API returned it, in double quotes, like "1a"`, v)
	}
	return v, nil
}

// noIfMatch rejects If-Match on the routes that do not address one document.
func noIfMatch(r *http.Request) error {
	if r.Header.Get("If-Match") != "" {
		return invalidRequestf("If-Match applies to one document: replace it with PUT /api/v1/containers/%s/docs/{partition key}/{id}",
			r.PathValue("container"))
	}
	return nil
}

func setETag(w http.ResponseWriter, d docstore.Document) { w.Header().Set("ETag", d.ETag) }

// createDoc stores a new document: 201, or 409 when its id is taken in its
// partition.
func (s *Server) createDoc(w http.ResponseWriter, r *http.Request) {
	s.writeDoc(w, r, http.StatusCreated, s.cfg.Docs.Create)
}

// upsertDoc creates or replaces a document.
func (s *Server) upsertDoc(w http.ResponseWriter, r *http.Request) {
	s.writeDoc(w, r, http.StatusOK, s.cfg.Docs.Upsert)
}

func (s *Server) writeDoc(w http.ResponseWriter, r *http.Request, code int,
	write func(ctx context.Context, container string, doc []byte) (docstore.Document, error),
) {
	c, ok := s.pathContainer(w, r)
	if !ok {
		return
	}
	err := noIfMatch(r)
	var body []byte
	if err == nil {
		body, err = readDocument(w, r, c)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := write(r.Context(), c.Name, body)
	if err != nil {
		s.failDocs(w, r, c.Name, nil, err)
		return
	}
	setETag(w, d)
	writeDocsJSON(w, r, code, d)
}

// pathKey returns the document named in the path.
func pathKey(r *http.Request) *docKey { return &docKey{pk: r.PathValue("pk"), id: r.PathValue("id")} }

// replaceDoc replaces an existing document, if its ETag is If-Match's when
// that is given. The document's id and partition key must be the path's.
func (s *Server) replaceDoc(w http.ResponseWriter, r *http.Request) {
	c, ok := s.pathContainer(w, r)
	if !ok {
		return
	}
	key := pathKey(r)
	etag, err := ifMatch(r)
	var body []byte
	if err == nil {
		body, err = readDocument(w, r, c)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Find the document's id and partition key to compare them with the
	// path's; the store checks the document again as it writes it.
	p, err := docstore.Prepare(c, body, maxDocumentBytes)
	if err != nil {
		s.failDocs(w, r, c.Name, key, err)
		return
	}
	if p.ID != key.id || p.PartitionKey != key.pk {
		s.fail(w, r, invalidRequestf("the document has id %q and partition key %q (at %s), the path names id %q in partition %q: "+
			"they must be the same (a replace cannot rename or move a document: create the new one and delete the old)",
			p.ID, p.PartitionKey, c.PartitionKeyPath, key.id, key.pk))
		return
	}
	d, err := s.cfg.Docs.Replace(r.Context(), c.Name, body, etag)
	if err != nil {
		s.failDocs(w, r, c.Name, key, err)
		return
	}
	setETag(w, d)
	writeDocsJSON(w, r, http.StatusOK, d)
}

// mediaMergePatch is the media type of JSON merge patches (RFC 7396), which
// a patch of top-level fields is.
const mediaMergePatch = "application/merge-patch+json"

const patchWant = `a JSON object of the top-level fields to set, like {"battery": 75, "mode": null} (null removes a field)`

// patchDoc sets top-level fields of a document.
func (s *Server) patchDoc(w http.ResponseWriter, r *http.Request) {
	c, ok := s.pathContainer(w, r)
	if !ok {
		return
	}
	key := pathKey(r)
	etag, err := ifMatch(r)
	if err == nil {
		err = requireJSON(r, mediaMergePatch)
	}
	var set map[string]json.RawMessage
	if err == nil {
		set, err = readPatch(w, r)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.cfg.Docs.Patch(r.Context(), c.Name, key.pk, key.id, set, etag)
	if err != nil {
		s.failDocs(w, r, c.Name, key, err)
		return
	}
	setETag(w, d)
	writeDocsJSON(w, r, http.StatusOK, d)
}

func readPatch(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, error) {
	body, err := readJSON(w, r, maxDocumentBytes, "patch", patchWant, "a patch is at most as large as a document, 2 MiB")
	if err != nil {
		return nil, err
	}
	if b := trimLeftJSONSpace(body); b[0] != '{' {
		return nil, invalidRequestf("the patch is a JSON %s: send %s", jsonKind(b[0]), patchWant)
	}
	var set map[string]json.RawMessage
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, invalidRequestf("the patch cannot be read: %v (send %s)", err, patchWant)
	}
	if len(set) == 0 {
		return nil, invalidRequestf("the patch is empty: send %s", patchWant)
	}
	return set, nil
}

// readDoc answers a document's body as stored (compact), with its ETag;
// indented with ?pretty=1.
func (s *Server) readDoc(w http.ResponseWriter, r *http.Request) {
	c, ok := s.pathContainer(w, r)
	if !ok {
		return
	}
	key := pathKey(r)
	d, err := s.cfg.Docs.Read(r.Context(), c.Name, key.pk, key.id)
	if err != nil {
		s.failDocs(w, r, c.Name, key, err)
		return
	}
	setETag(w, d)
	body := d.Body
	if pretty(r) {
		var b bytes.Buffer
		if json.Indent(&b, d.Body, "", "  ") == nil {
			body = append(b.Bytes(), '\n')
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// pretty reports whether a request asks for indented JSON (?pretty=1).
func pretty(r *http.Request) bool {
	v := r.URL.Query().Get("pretty")
	return v == "1" || v == "true"
}

// writeDocsJSON answers with documents: compact, with each stored body as
// it is stored, unless the request asks ?pretty=1. Indenting re-indents
// the bodies too: deeply nested documents made answers hundreds of times
// their size.
func writeDocsJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	if pretty(r) {
		writeJSON(w, code, v)
		return
	}
	writeCompactJSON(w, code, v)
}

// deleteDoc removes a document (leaving a tombstone in the feed), if its
// ETag is If-Match's when that is given.
func (s *Server) deleteDoc(w http.ResponseWriter, r *http.Request) {
	c, ok := s.pathContainer(w, r)
	if !ok {
		return
	}
	key := pathKey(r)
	etag, err := ifMatch(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.Docs.Delete(r.Context(), c.Name, key.pk, key.id, etag); err != nil {
		s.failDocs(w, r, c.Name, key, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// BulkRequest is the body of POST /api/v1/containers/{container}/docs/bulk:
// documents to upsert together, all or none.
type BulkRequest struct {
	Documents []json.RawMessage `json:"documents"`
}

// BulkResponse answers a bulk upsert: the stored documents in request
// order, without their bodies.
type BulkResponse struct {
	Count     int                 `json:"count"`
	Documents []docstore.Document `json:"documents"`
}

const bulkWant = `{"documents": [...]}, the documents to upsert`

func (s *Server) bulkUpsert(w http.ResponseWriter, r *http.Request) {
	c, ok := s.pathContainer(w, r)
	if !ok {
		return
	}
	err := noIfMatch(r)
	if err == nil {
		err = requireJSON(r)
	}
	var docs [][]byte
	if err == nil {
		docs, err = readBulk(w, r, s.cfg.MaxRequestBytes)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stored, err := s.cfg.Docs.BulkUpsert(r.Context(), c.Name, docs)
	if err != nil {
		s.failDocs(w, r, c.Name, nil, err)
		return
	}
	for i := range stored {
		stored[i].Body = nil
	}
	writeJSON(w, http.StatusOK, BulkResponse{Count: len(stored), Documents: stored})
}

func readBulk(w http.ResponseWriter, r *http.Request, limit int64) ([][]byte, error) {
	body, err := readJSON(w, r, limit, "request body", bulkWant, "send fewer documents per request")
	if err != nil {
		return nil, err
	}
	var req BulkRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, invalidRequestf("the body is not a bulk request: %v (send %s)", err, bulkWant)
	}
	if len(req.Documents) == 0 {
		return nil, invalidRequestf("no documents: send %s with at least one document", bulkWant)
	}
	if len(req.Documents) > MaxBulkDocuments {
		return nil, tooLargef("%d documents in one request, more than %d: split them into several requests", len(req.Documents), MaxBulkDocuments)
	}
	docs := make([][]byte, len(req.Documents))
	for i, d := range req.Documents {
		docs[i] = d
	}
	return docs, nil
}

// queryDocs runs a query (docstore.QueryRequest) and answers a page of
// results (docstore.Page). A query is at most docstore.MaxQueryBytes of
// text and docstore.MaxQueryTerms terms; it stops when the client goes
// away.
func (s *Server) queryDocs(w http.ResponseWriter, r *http.Request) {
	q, ok := s.cfg.Docs.(docstore.Querier)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this document store backend does not run queries: read documents by id, or follow the change feed")
		return
	}
	c, ok := s.pathContainer(w, r)
	if !ok {
		return
	}
	var req docstore.QueryRequest
	err := requireJSON(r)
	if err == nil {
		err = decodeRequest(r, &req)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := q.Query(r.Context(), c.Name, req)
	if err != nil {
		s.failDocs(w, r, c.Name, nil, err)
		return
	}
	if page.Documents == nil {
		page.Documents = []docstore.Document{} // [], not null
	}
	writeDocsJSON(w, r, http.StatusOK, page)
}

// FeedResponse answers a change feed read.
type FeedResponse struct {
	// Changes are the latest versions of the documents written since the
	// start, in LSN order; a deleted document is a tombstone with
	// "deleted": true and no body.
	Changes []docstore.Document `json:"changes"`
	// Continuation is the LSN to read after next time (?after=).
	Continuation int64 `json:"continuation"`
	// Incarnation tells this container from one of the same name deleted
	// and created again, whose LSNs start over: send it back
	// (?incarnation=) with the continuation, and a read after the
	// container was re-created answers 410 instead of skipping changes.
	Incarnation string `json:"incarnation"`
}

// feed reads the change feed: GET
// /api/v1/containers/{container}/feed?after=LSN|from=start|now|RFC3339&incarnation=I&limit=N&wait=DURATION.
// limit defaults to 100 (at most 1000); wait (default 0: answer at once,
// at most 30s) bounds how long to wait for a change when there is none.
func (s *Server) feed(w http.ResponseWriter, r *http.Request) {
	c, ok := s.pathContainer(w, r)
	if !ok {
		return
	}
	limit, wait, err := feedParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	if inc := r.URL.Query().Get("incarnation"); inc != "" && inc != c.Incarnation() {
		s.fail(w, r, &Error{Status: http.StatusGone, Msg: fmt.Sprintf("container %s was deleted and created again since this continuation (incarnation %s, now %s): its LSNs started over; read it again with from=start",
			c.Name, inc, c.Incarnation())})
		return
	}
	start, none, err := s.feedStart(r, c.Name)
	if err != nil {
		s.failDocs(w, r, c.Name, nil, err)
		return
	}
	var timeout, poll <-chan time.Time
	if wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		ticker := time.NewTicker(feedPoll)
		defer ticker.Stop()
		timeout, poll = timer.C, ticker.C
	}
	for {
		// Ask for the wake-up before reading, so that a write between the
		// read and the wait is not missed.
		changed := s.cfg.Docs.Changed(c.Name)
		changes, err := s.cfg.Docs.Feed(ctx, c.Name, start, limit)
		if err != nil {
			s.failDocs(w, r, c.Name, nil, err)
			return
		}
		if len(changes) > 0 {
			writeDocsJSON(w, r, http.StatusOK, FeedResponse{Changes: changes, Continuation: changes[len(changes)-1].LSN, Incarnation: c.Incarnation()})
			return
		}
		start.AfterLSN = max(start.AfterLSN, none)
		if wait == 0 {
			writeDocsJSON(w, r, http.StatusOK, FeedResponse{Changes: []docstore.Document{}, Continuation: start.AfterLSN, Incarnation: c.Incarnation()})
			return
		}
		select {
		case <-changed:
		case <-poll:
		case <-timeout:
			writeDocsJSON(w, r, http.StatusOK, FeedResponse{Changes: []docstore.Document{}, Continuation: start.AfterLSN, Incarnation: c.Incarnation()})
			return
		case <-ctx.Done():
			return // the client went away
		}
	}
}

// feedParams parses the query parameters limit and wait of a feed read.
func feedParams(r *http.Request) (limit int, wait time.Duration, err error) {
	q := r.URL.Query()
	limit = 100
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxFeedLimit {
			return 0, 0, invalidRequestf("limit=%q: give a number from 1 to %d", v, maxFeedLimit)
		}
	}
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 || wait > MaxFeedWait {
			return 0, 0, invalidRequestf("wait=%q: give a duration from 0s to %s, such as 5s", v, MaxFeedWait)
		}
	}
	return limit, wait, nil
}

// feedStart parses where a feed read starts (query parameters after and
// from), and returns the continuation to answer when there is no change
// since then.
func (s *Server) feedStart(r *http.Request, name string) (start docstore.FeedStart, none int64, err error) {
	q := r.URL.Query()
	from := q.Get("from")
	switch {
	case q.Has("after") && q.Has("from"):
		return start, 0, invalidRequestf("give after (the continuation of the previous read) or from (where a new reader starts), not both")
	case q.Has("after"):
		after, err := strconv.ParseInt(q.Get("after"), 10, 64)
		if err != nil || after < 0 {
			return start, 0, invalidRequestf("after=%q: give the continuation of the previous read, an LSN, or 0 for the beginning", q.Get("after"))
		}
		return docstore.FeedStart{AfterLSN: after}, after, nil
	case from == "" || from == "start":
		return start, 0, nil
	case from == "now":
		last, err := s.cfg.Docs.LastLSN(r.Context(), name)
		return docstore.FeedStart{AfterLSN: last}, last, err
	}
	t, perr := time.Parse(time.RFC3339Nano, from)
	if perr != nil {
		return start, 0, invalidRequestf("from=%q: use start, now, or an RFC 3339 time such as 2026-01-02T15:04:05Z", from)
	}
	if t.Year() < 1970 || t.Year() > 2262 {
		return start, 0, invalidRequestf("from=%q: the time must be between 1970 and 2262", from)
	}
	// Changes written before the last LSN was found are read at once, with
	// the time; later ones come after it.
	last, err := s.cfg.Docs.LastLSN(r.Context(), name)
	return docstore.FeedStart{Time: t}, last, err
}
