package sluice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/internal/host"
)

// BlobTrigger runs a function for every blob written to a container whose
// name fits Path, as Azure writes it: "uploads/{name}" (every blob of
// container uploads), "uploads/in/{name}.json" (blobs under in/ ending in
// .json; name is what lies between). The last parameter takes the rest of
// the name, '/' included.
//
// Each version of a blob runs once: a receipt in the KV bucket
// `sluice-blob-receipts` records the versions a function is done with, so
// a restart does not run them again, and a blob written again runs again.
// One instance watches a container for a function at a time (a lease);
// another takes over when it dies. It runs up to Concurrency blobs at once
// (default 4); the versions of one blob run one after another. The
// function reads a blob's content with Blob.Open, as a stream: a large
// blob is never held in memory whole unless the function reads it so.
type BlobTrigger struct {
	Path        string
	Concurrency int
}

// Blob is a blob given to a function.
type Blob struct {
	Info BlobInfo
	// Params are the values of the path's parameters ({name}).
	Params map[string]string
	open   func(ctx context.Context) (io.ReadCloser, error)
}

// NewBlob makes a Blob with the given content, for tests of blob functions.
func NewBlob(info BlobInfo, params map[string]string, data []byte) Blob {
	return Blob{Info: info, Params: params, open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

// Open reads the blob's content from its beginning; close what it returns
// (the host closes it after the invocation otherwise). Each call reads
// anew.
func (b Blob) Open(ctx context.Context) (io.ReadCloser, error) {
	if b.open == nil {
		return nil, errors.New("sluice: this Blob has no content (make one with NewBlob)")
	}
	return b.open(ctx)
}

// ReadAll reads the whole content into memory.
func (b Blob) ReadAll(ctx context.Context) ([]byte, error) {
	rc, err := b.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// BlobHandler processes one blob. An error fails it: the retry policy
// governs it, then it is dead-lettered with the container, the blob's name
// and its version (ETag).
type BlobHandler func(ctx context.Context, b Blob) error

// BlobFunction declares a function triggered by blobs. The container must
// exist when the app starts (declare it with BlobContainer). Problems with
// the declaration are reported by Start.
func (a *App) BlobFunction(name string, trigger BlobTrigger, handler BlobHandler, opts ...FunctionOption) {
	path, err := host.ParseBlobPath(trigger.Path)
	if err != nil {
		a.errs = append(a.errs, fmt.Errorf("sluice: blob function %s: %w", name, err))
		return
	}
	o := applyOptions(opts)
	if o.breaker.Enabled() {
		a.errs = append(a.errs, fmt.Errorf("sluice: blob function %s: breakers are for hub, queue and change-feed functions", name))
		return
	}
	if trigger.Concurrency < 0 {
		a.errs = append(a.errs, fmt.Errorf("sluice: blob function %s: concurrency %d must not be negative", name, trigger.Concurrency))
		return
	}
	f := host.BlobFunction{Name: name, Trigger: host.BlobTrigger{Path: path, Concurrency: trigger.Concurrency}, Retry: o.retry, Timeout: o.timeout}
	if handler != nil {
		h := withMiddleware(a, name, TriggerBlob, o.middleware, (func(context.Context, Blob) error)(handler))
		f.Handler = func(ctx context.Context, in host.BlobInput) error {
			return h(ctx, Blob{Info: BlobInfo(in.Info), Params: in.Params, open: in.Open})
		}
	}
	a.declare(name, &f, nil, &f.Timeout)
}
