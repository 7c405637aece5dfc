package sluice

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sluicehq/sluice/internal/blob"
)

// BlobInfo describes a stored blob: its container and name, size, content
// type, metadata, when it was written, its SHA-256 digest and its ETag,
// which every write of the blob changes.
type BlobInfo struct {
	Container   string            `json:"container"`
	Name        string            `json:"name"`
	Size        int64             `json:"size"`
	ContentType string            `json:"content_type"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// Modified is when this version was stored (the server's clock).
	Modified time.Time `json:"modified"`
	// Digest is the SHA-256 digest of the content: "SHA-256=" and the
	// URL-safe base64 of the hash.
	Digest string `json:"digest"`
	// ETag identifies this version: every write of a blob gets a new one.
	ETag string `json:"etag"`
}

func blobInfo(i blob.Info, err error) (BlobInfo, error) { return BlobInfo(i), err }

// BlobMeta is what is stored with a blob besides its content: a content
// type (default application/octet-stream) and metadata, name-value pairs
// whose names are case-insensitive (kept in lower case).
type BlobMeta struct {
	ContentType string
	Metadata    map[string]string
}

// Errors of the blob store, for errors.Is.
var (
	// ErrBlobNotFound: the container has no blob of that name.
	ErrBlobNotFound = blob.ErrBlobNotFound
	// ErrBlobContainerNotFound: the blob container does not exist.
	ErrBlobContainerNotFound = blob.ErrContainerNotFound
	// ErrBlobTooLarge: the blob is over the maximum size (256 MiB);
	// nothing was stored.
	ErrBlobTooLarge = blob.ErrTooLarge
	// ErrBlobChanged: the blob was overwritten or deleted while it was
	// read; read it again.
	ErrBlobChanged = blob.ErrChanged
)

// BlobContainer declares a blob container, created when the app starts if
// it is missing. A name is 1-63 lowercase letters, digits and '-',
// starting with a letter or digit.
func (a *App) BlobContainer(name string) {
	if err := blob.ValidateContainerName(name); err != nil {
		a.errs = append(a.errs, fmt.Errorf("sluice: blob container: %w", err))
		return
	}
	a.blobCtrs = append(a.blobCtrs, name)
}

// Blobs is the blob store of a running app: named blobs in containers,
// kept in the engine's object store (bucket blob-<container>). Blob names
// are paths such as "incoming/2026/11/file.json".
type Blobs struct{ a *App }

// Blobs returns the blob store; use it while the app runs.
func (a *App) Blobs() *Blobs { return &Blobs{a} }

func (b *Blobs) service() (*blob.Service, error) {
	if err := b.a.running(); err != nil {
		return nil, err
	}
	return b.a.blobs, nil
}

// Put stores data as a blob, replacing any blob of that name, and returns
// once it is durable. contentType may be "".
func (b *Blobs) Put(ctx context.Context, container, name string, data []byte, contentType string) (BlobInfo, error) {
	return b.PutReader(ctx, container, name, bytes.NewReader(data), BlobMeta{ContentType: contentType})
}

// PutReader stores a blob read from r to its end, streamed in chunks. A
// blob over the maximum size fails with ErrBlobTooLarge; a failed write
// stores nothing and leaves the previous version as it was.
func (b *Blobs) PutReader(ctx context.Context, container, name string, r io.Reader, meta BlobMeta) (BlobInfo, error) {
	s, err := b.service()
	if err != nil {
		return BlobInfo{}, err
	}
	return blobInfo(s.Put(ctx, container, name, r, blob.Meta(meta)))
}

// Get returns a blob's content and info.
func (b *Blobs) Get(ctx context.Context, container, name string) ([]byte, BlobInfo, error) {
	rc, info, err := b.Open(ctx, container, name)
	if err != nil {
		return nil, BlobInfo{}, err
	}
	defer rc.Close()
	data := make([]byte, 0, info.Size)
	buf := bytes.NewBuffer(data)
	if _, err := buf.ReadFrom(rc); err != nil {
		return nil, BlobInfo{}, err
	}
	return buf.Bytes(), info, nil
}

// Open opens a blob for reading; its content is fetched as it is read. The
// reader fails with ErrBlobChanged if the blob is overwritten or deleted
// before it is read to the end. ctx bounds the reading too.
func (b *Blobs) Open(ctx context.Context, container, name string) (io.ReadCloser, BlobInfo, error) {
	s, err := b.service()
	if err != nil {
		return nil, BlobInfo{}, err
	}
	rc, info, err := s.Get(ctx, container, name)
	return rc, BlobInfo(info), err
}

// Stat returns a blob's info.
func (b *Blobs) Stat(ctx context.Context, container, name string) (BlobInfo, error) {
	s, err := b.service()
	if err != nil {
		return BlobInfo{}, err
	}
	return blobInfo(s.Stat(ctx, container, name))
}

// Delete removes a blob.
func (b *Blobs) Delete(ctx context.Context, container, name string) error {
	s, err := b.service()
	if err != nil {
		return err
	}
	return s.Delete(ctx, container, name)
}

// List returns the blobs of a container whose names start with prefix
// ("" for all), by name.
func (b *Blobs) List(ctx context.Context, container, prefix string) ([]BlobInfo, error) {
	s, err := b.service()
	if err != nil {
		return nil, err
	}
	infos, err := s.List(ctx, container, prefix)
	if infos == nil {
		return nil, err
	}
	out := make([]BlobInfo, len(infos))
	for i, info := range infos {
		out[i] = BlobInfo(info)
	}
	return out, err
}
