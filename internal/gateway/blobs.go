package gateway

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/blob"
)

// Blobs under /api/v1/blobs (see package blob). A blob is addressed by its
// container and its name, a path: /api/v1/blobs/{container}/{name...},
// each segment of the name percent-encoded. The server cleans paths before
// routing them, so a name with "//", "." or ".." written as they are is
// redirected to another name: names with such segments are refused anyway,
// and a client should check them first (the CLI does).
//
// A blob's content type is the Content-Type of its PUT, and each
// x-sluice-meta-<name> header of the PUT is a metadata entry (names are
// case-insensitive); GET and HEAD answer with them, with the blob's ETag,
// Content-Length, Last-Modified and X-Sluice-Digest (the object store's
// SHA-256 digest).
//
// A blob is served as a download, never as a page of the API's origin:
// GET and HEAD answer with X-Content-Type-Options: nosniff,
// Content-Security-Policy: sandbox and Content-Disposition: attachment
// with the last segment of its name as the file name. Only a request that
// asks with ?inline=1 for a blob of a type browsers show without running
// anything (inlineTypes) gets Content-Disposition: inline. So a blob stored
// as text/html or image/svg+xml cannot run script with the rights of
// whoever opens its URL.

// Headers of the blob routes.
const (
	// HeaderBlobMetaPrefix starts the headers carrying a blob's metadata.
	HeaderBlobMetaPrefix = "X-Sluice-Meta-"
	// HeaderBlobDigest carries a blob's SHA-256 digest as the object store
	// keeps it ("SHA-256=" and URL-safe base64).
	HeaderBlobDigest = "X-Sluice-Digest"
)

// BlobContainerJSON is a blob container as the API shows it.
type BlobContainerJSON = blob.ContainerInfo

// BlobJSON is a blob's info as the API shows it.
type BlobJSON = blob.Info

// BlobListResponse answers GET /api/v1/blobs/{container}.
type BlobListResponse struct {
	Container string     `json:"container"`
	Prefix    string     `json:"prefix,omitempty"`
	Blobs     []BlobJSON `json:"blobs"`
}

// CreateBlobContainerRequest is the body of POST /api/v1/blobs.
type CreateBlobContainerRequest struct {
	Name string `json:"name"`
}

// blobRoutes registers /api/v1/blobs.
func (s *Server) blobRoutes() {
	s.route("GET /api/v1/blobs", "blobs.containers.list", s.listBlobContainers)
	s.route("POST /api/v1/blobs", "blobs.containers.create", s.createBlobContainer)
	s.route("GET /api/v1/blobs/{container}", "blobs.list", s.listBlobs)
	s.route("DELETE /api/v1/blobs/{container}", "blobs.containers.delete", s.deleteBlobContainer)
	s.route("PUT /api/v1/blobs/{container}/{name...}", "blobs.put", s.putBlob)
	s.route("GET /api/v1/blobs/{container}/{name...}", "blobs.get", s.getBlob)
	s.route("HEAD /api/v1/blobs/{container}/{name...}", "blobs.head", s.headBlob)
	s.route("DELETE /api/v1/blobs/{container}/{name...}", "blobs.delete", s.deleteBlob)
}

// failBlob answers with the status that fits an error of the blob
// service; container and name say what the request is about (name "" when
// it is not about one blob).
func (s *Server) failBlob(w http.ResponseWriter, r *http.Request, container, name string, err error) {
	switch {
	case errors.Is(err, blob.ErrContainerNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("blob container %s not found: create it with POST /api/v1/blobs "+
			"or `sluice blob container create %s` (list containers with GET /api/v1/blobs)", container, container))
	case errors.Is(err, blob.ErrBlobNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("blob %q not found in container %s (list its blobs with GET /api/v1/blobs/%s)", name, container, container))
	case errors.Is(err, blob.ErrExists):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, blob.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, blob.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, blob.ErrChanged):
		writeError(w, http.StatusConflict, err.Error())
	default:
		s.fail(w, r, err)
	}
}

// pathBlob returns the container and blob named in the path, after
// checking the names; on error it has answered.
func (s *Server) pathBlob(w http.ResponseWriter, r *http.Request) (container, name string, ok bool) {
	container, name = r.PathValue("container"), r.PathValue("name")
	err := blob.ValidateContainerName(container)
	if err == nil {
		err = blob.ValidateName(name)
	}
	if err != nil {
		s.failBlob(w, r, container, name, err)
		return "", "", false
	}
	return container, name, true
}

func (s *Server) listBlobContainers(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Blobs.ListContainers(r.Context())
	if err != nil {
		s.failBlob(w, r, "", "", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"containers": list})
}

func (s *Server) createBlobContainer(w http.ResponseWriter, r *http.Request) {
	var req CreateBlobContainerRequest
	if err := decodeRequest(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	info, err := s.cfg.Blobs.CreateContainer(r.Context(), req.Name)
	if err != nil {
		s.failBlob(w, r, req.Name, "", err)
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

func (s *Server) deleteBlobContainer(w http.ResponseWriter, r *http.Request) {
	container := r.PathValue("container")
	if err := s.cfg.Blobs.DeleteContainer(r.Context(), container); err != nil {
		s.failBlob(w, r, container, "", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listBlobs lists a container's blobs: GET
// /api/v1/blobs/{container}?prefix=P.
func (s *Server) listBlobs(w http.ResponseWriter, r *http.Request) {
	container, prefix := r.PathValue("container"), r.URL.Query().Get("prefix")
	list, err := s.cfg.Blobs.List(r.Context(), container, prefix)
	if err != nil {
		s.failBlob(w, r, container, "", err)
		return
	}
	writeJSON(w, http.StatusOK, BlobListResponse{Container: container, Prefix: prefix, Blobs: list})
}

// blobBody reads a PUT's body and remembers why it failed.
type blobBody struct {
	r   io.Reader
	err error
}

func (b *blobBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.err = err
	}
	return n, err
}

func (s *Server) putBlob(w http.ResponseWriter, r *http.Request) {
	container, name, ok := s.pathBlob(w, r)
	if !ok {
		return
	}
	if limit := s.cfg.Blobs.MaxBlobBytes(); r.ContentLength > limit {
		s.fail(w, r, tooLargef("the body is %d bytes, over the limit of %d bytes per blob", r.ContentLength, limit))
		return
	}
	meta := blob.Meta{ContentType: r.Header.Get("Content-Type"), Metadata: blobMetadata(r.Header)}
	body := &blobBody{r: r.Body}
	info, err := s.cfg.Blobs.Put(r.Context(), container, name, body, meta)
	if err != nil {
		if body.err != nil && !errors.Is(err, blob.ErrTooLarge) {
			s.fail(w, r, bodyError(body.err, s.cfg.Blobs.MaxBlobBytes(), "store a smaller blob (nothing was stored)"))
			return
		}
		s.failBlob(w, r, container, name, err)
		return
	}
	setBlobHeaders(w.Header(), info, false)
	writeJSON(w, http.StatusCreated, info)
}

// blobMetadata gathers the x-sluice-meta-<name> headers; several values of
// one header are joined with ", ".
func blobMetadata(h http.Header) map[string]string {
	var out map[string]string
	for k, vs := range h {
		if len(k) <= len(HeaderBlobMetaPrefix) || !strings.EqualFold(k[:len(HeaderBlobMetaPrefix)], HeaderBlobMetaPrefix) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[strings.ToLower(k[len(HeaderBlobMetaPrefix):])] = strings.Join(vs, ", ")
	}
	return out
}

// setBlobHeaders describes a blob in response headers; withLength adds its
// Content-Length (for GET and HEAD, whose body is the content).
func setBlobHeaders(h http.Header, info blob.Info, withLength bool) {
	h.Set("ETag", `"`+info.ETag+`"`)
	h.Set("Last-Modified", info.Modified.UTC().Format(http.TimeFormat))
	if info.Digest != "" {
		h.Set(HeaderBlobDigest, info.Digest)
	}
	if !withLength {
		return
	}
	h.Set("Content-Type", info.ContentType)
	h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	keys := make([]string, 0, len(info.Metadata))
	for k := range info.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		h.Set(HeaderBlobMetaPrefix+k, info.Metadata[k])
	}
}

// notModified reports whether an If-None-Match header matches etag.
func notModified(r *http.Request, etag string) bool {
	v := r.Header.Get("If-None-Match")
	if v == "" {
		return false
	}
	for t := range strings.SplitSeq(v, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == `"`+etag+`"` {
			return true
		}
	}
	return false
}

func (s *Server) getBlob(w http.ResponseWriter, r *http.Request) {
	container, name, ok := s.pathBlob(w, r)
	if !ok {
		return
	}
	inline, err := askedInline(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rc, info, err := s.cfg.Blobs.Get(r.Context(), container, name)
	if err != nil {
		s.failBlob(w, r, container, name, err)
		return
	}
	defer rc.Close()
	setBlobSafety(w.Header(), info, inline)
	if notModified(r, info.ETag) {
		setBlobHeaders(w.Header(), info, false)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	setBlobHeaders(w.Header(), info, true)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil && r.Context().Err() == nil {
		// The status is sent: the client sees the body end short of its
		// Content-Length.
		s.log.Warn("blob read failed after its first bytes were sent", "container", container, "blob", name, "err", err)
	}
}

func (s *Server) headBlob(w http.ResponseWriter, r *http.Request) {
	container, name, ok := s.pathBlob(w, r)
	if !ok {
		return
	}
	inline, err := askedInline(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	info, err := s.cfg.Blobs.Stat(r.Context(), container, name)
	if err != nil {
		s.failBlob(w, r, container, name, err)
		return
	}
	setBlobSafety(w.Header(), info, inline)
	if notModified(r, info.ETag) {
		setBlobHeaders(w.Header(), info, false)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	setBlobHeaders(w.Header(), info, true)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) deleteBlob(w http.ResponseWriter, r *http.Request) {
	container, name, ok := s.pathBlob(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Blobs.Delete(r.Context(), container, name); err != nil {
		s.failBlob(w, r, container, name, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// inlineTypes are the media types a blob may be shown inline with: types
// browsers render without running script. Anything else (text/html,
// image/svg+xml, application/xhtml+xml, text/xml, unknown types) is always
// an attachment.
var inlineTypes = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true,
	"text/plain": true, "application/json": true, "application/pdf": true,
}

// inlineSafe reports whether a blob of content type ct may be shown
// inline.
func inlineSafe(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return inlineTypes[mt] || strings.HasPrefix(mt, "audio/") || strings.HasPrefix(mt, "video/")
}

// askedInline reads the query parameter inline of a blob read.
func askedInline(r *http.Request) (bool, error) {
	q := r.URL.Query()
	if !q.Has("inline") {
		return false, nil
	}
	switch v := q.Get("inline"); v {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	default:
		return false, invalidRequestf("inline=%q: give inline=1 to show a blob of a safe type (such as image/png or text/plain) in the browser, or leave it out to download it", v)
	}
}

// setBlobSafety sets the headers that keep a served blob from acting as a
// page of the API's origin (see the comment at the top of this file).
func setBlobSafety(h http.Header, info blob.Info, inline bool) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	disposition := "attachment"
	if inline && inlineSafe(info.ContentType) {
		disposition = "inline"
	}
	h.Set("Content-Disposition", contentDisposition(disposition, lastSegment(info.Name)))
}

// lastSegment is the last segment of a blob name, the file name a
// download gets.
func lastSegment(name string) string {
	return name[strings.LastIndexByte(name, '/')+1:]
}

// contentDisposition is a Content-Disposition value for a file name
// (RFC 6266): filename as a quoted string with only printable ASCII (other
// characters become '_'), and when that is not the name itself, filename*
// with the name in UTF-8, percent-encoded (RFC 8187).
func contentDisposition(disposition, name string) string {
	var fallback strings.Builder
	exact := true
	for _, c := range name {
		switch {
		case c == utf8.RuneError || c < 0x20 || c >= 0x7f:
			fallback.WriteByte('_')
			exact = false
		case c == '"' || c == '\\':
			fallback.WriteByte('\\')
			fallback.WriteRune(c)
		default:
			fallback.WriteRune(c)
		}
	}
	out := disposition + `; filename="` + fallback.String() + `"`
	if !exact {
		out += "; filename*=UTF-8''" + encodeRFC8187(name)
	}
	return out
}

// encodeRFC8187 percent-encodes s as an RFC 8187 value: every byte but
// attr-char.
func encodeRFC8187(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
