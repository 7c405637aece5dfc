package sluice

import (
	"context"
	"fmt"

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
// another takes over when it dies. A blob is read whole into Blob.Data.
type BlobTrigger struct {
	Path string
}

// Blob is a blob given to a function.
type Blob struct {
	Info BlobInfo
	// Params are the values of the path's parameters ({name}).
	Params map[string]string
	Data   []byte
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
	f := host.BlobFunction{Name: name, Trigger: host.BlobTrigger{Path: path}, Retry: o.retry, Timeout: o.timeout}
	if handler != nil {
		f.Handler = func(ctx context.Context, in host.BlobInput) error {
			return handler(ctx, Blob{Info: in.Info, Params: in.Params, Data: in.Data})
		}
	}
	a.bfns = append(a.bfns, f)
}
