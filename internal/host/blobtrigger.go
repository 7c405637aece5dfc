package host

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/resilience"
)

// BlobPath is a blob trigger's path: a container and a pattern of blob
// names with {parameters}, as Azure writes it: "uploads/{name}",
// "uploads/{folder}/{name}.json". The last parameter takes the rest of the
// name, '/' included; others stop at the text that follows them.
type BlobPath struct {
	Text      string
	Container string
	Params    []string
	re        *regexp.Regexp
}

var blobParam = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// ParseBlobPath reads a blob trigger's path.
func ParseBlobPath(path string) (BlobPath, error) {
	container, pattern, _ := strings.Cut(path, "/")
	if err := blob.ValidateContainerName(container); err != nil {
		return BlobPath{}, fmt.Errorf("blob path %q: %w", path, err)
	}
	p := BlobPath{Text: path, Container: container}
	var re strings.Builder
	re.WriteString("^")
	last := 0
	locs := blobParam.FindAllStringSubmatchIndex(pattern, -1)
	seen := map[string]bool{}
	for i, loc := range locs {
		literal := pattern[last:loc[0]]
		if strings.ContainsAny(literal, "{}") {
			return BlobPath{}, fmt.Errorf("blob path %q: %q is not a parameter; write {name} with letters, digits and '_'", path, literal)
		}
		if i > 0 && literal == "" {
			return BlobPath{}, fmt.Errorf("blob path %q: parameters need text between them", path)
		}
		re.WriteString(regexp.QuoteMeta(literal))
		name := pattern[loc[2]:loc[3]]
		if seen[name] {
			return BlobPath{}, fmt.Errorf("blob path %q: parameter {%s} appears twice", path, name)
		}
		seen[name] = true
		p.Params = append(p.Params, name)
		if i == len(locs)-1 {
			re.WriteString("(.+)")
		} else {
			re.WriteString("(.+?)")
		}
		last = loc[1]
	}
	rest := pattern[last:]
	if strings.ContainsAny(rest, "{}") {
		return BlobPath{}, fmt.Errorf("blob path %q: %q is not a parameter; write {name} with letters, digits and '_'", path, rest)
	}
	re.WriteString(regexp.QuoteMeta(rest))
	if len(locs) == 0 && rest == "" {
		re.WriteString(".+") // the whole container
	}
	re.WriteString("$")
	p.re = regexp.MustCompile(re.String())
	return p, nil
}

// Match reports whether a blob name fits the pattern, with the values of
// its parameters.
func (p BlobPath) Match(name string) (map[string]string, bool) {
	m := p.re.FindStringSubmatch(name)
	if m == nil {
		return nil, false
	}
	params := make(map[string]string, len(p.Params))
	for i, n := range p.Params {
		params[n] = m[i+1]
	}
	return params, true
}

// BlobInput is a blob given to a function.
type BlobInput struct {
	Info blob.Info
	// Params are the values of the trigger path's parameters.
	Params map[string]string
	// Open reads the blob's content. Each call starts from the beginning;
	// what it returns is closed after the invocation if the function has
	// not closed it.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// BlobHandler processes one blob.
type BlobHandler func(ctx context.Context, in BlobInput) error

// BlobTrigger runs a function for every blob written to a container whose
// name fits Path, once per version: a receipt (KV bucket) records each
// version done. One instance watches a container for a function at a time,
// and runs up to Concurrency blobs at once (default
// DefaultBlobConcurrency); the versions of one blob run one after another.
type BlobTrigger struct {
	Path        BlobPath
	Concurrency int
}

// DefaultBlobConcurrency is how many blobs a blob function runs at once
// unless its trigger says otherwise.
const DefaultBlobConcurrency = 4

// BlobFunction is a function triggered by blobs.
type BlobFunction struct {
	Name    string
	Trigger BlobTrigger
	Retry   resilience.Retry
	// Timeout bounds one invocation, as for hub functions. Zero: no bound.
	Timeout time.Duration
	Handler BlobHandler
}

type blobFunction struct {
	BlobFunction
	processed *atomicCounter
	m         fnMetrics
	run       *batchRun[BlobInput]
}

// blobReceipt records the version of a blob a function is done with.
type blobReceipt struct {
	Name string    `json:"name"`
	ETag string    `json:"etag"`
	Done time.Time `json:"done"`
}

// RegisterBlob is Register of a blob function: the host's Config.Blobs,
// Leases, and BlobReceipts or JS must be set.
func (h *Host) RegisterBlob(f BlobFunction) error { return h.Register(f) }

// BlobReceiptBucket is the KV bucket of blob functions' receipts, unless
// Config.BlobReceipts gives another.
const BlobReceiptBucket = "sluice-blob-receipts"

var _ Trigger = BlobFunction{}

func (f BlobFunction) functionName() string { return f.Name }

func (f BlobFunction) bind(h *Host) (bound, error) {
	switch {
	case h.cfg.Blobs == nil || (h.cfg.BlobReceipts == nil && h.cfg.JS == nil) || h.cfg.Leases == nil:
		return nil, fmt.Errorf("host: function %s reads blobs, but the host has no blob service, receipts or leases", f.Name)
	case f.Name == "":
		return nil, errors.New("host: a function needs a name")
	case f.Handler == nil:
		return nil, fmt.Errorf("host: function %s has no handler", f.Name)
	case f.Trigger.Path.re == nil:
		return nil, fmt.Errorf("host: blob function %s has no path (use ParseBlobPath)", f.Name)
	}
	if f.Trigger.Concurrency < 0 {
		return nil, fmt.Errorf("host: blob function %s: concurrency %d must not be negative", f.Name, f.Trigger.Concurrency)
	}
	if err := h.checkNew(f.Name, f.Retry, resilience.BreakerPolicy{}, f.Timeout); err != nil {
		return nil, err
	}
	bf := &blobFunction{BlobFunction: f, processed: &atomicCounter{},
		m: h.newFnMetrics(f.Name, h.cfg.Metrics.EventsProcessed.WithLabelValues(f.Name, "", ""))}
	bf.run = &batchRun[BlobInput]{
		name: f.Name, kind: "blob", retry: f.Retry, m: &bf.m, processed: bf.processed, timeout: f.Timeout,
		handler:  func(ctx context.Context, in []BlobInput) error { return f.Handler(ctx, in[0]) },
		position: func(BlobInput) int64 { return 0 },
		letter: func(in BlobInput, reason error, attempts int, first, last time.Time) DeadLetter {
			return DeadLetter{Function: f.Name, Reason: reason.Error(), Attempts: attempts, FirstFailure: first, LastFailure: last,
				Source:     Source{Kind: "blob", Container: in.Info.Container, Blob: in.Info.Name, ETag: in.Info.ETag},
				Properties: in.Info.Metadata}
		},
	}
	return bf, nil
}

var _ bound = (*blobFunction)(nil)

// start watches the container on the instance holding its lease. The
// container must exist.
func (f *blobFunction) start(ctx context.Context, h *Host) error {
	c := f.Trigger.Path.Container
	if _, err := h.cfg.Blobs.GetContainer(ctx, c); err != nil {
		return fmt.Errorf("host: function %s: %w", f.Name, err)
	}
	if err := h.bucket(ctx, &h.cfg.BlobReceipts, BlobReceiptBucket); err != nil {
		return err
	}
	return h.join("blob:"+c+"/"+f.Name, 1, func(lctx context.Context, _ int) {
		log := h.log.With("function", f.Name, "container", c)
		h.runUnit(lctx, "blob container", h.cfg.Metrics.FeedOwnedRanges.WithLabelValues(c, f.Name), log, func() error {
			return h.consumeBlobs(lctx, f, log)
		})
	})
}

// consumeBlobs watches the container and runs the function for each blob
// version without a receipt, up to the trigger's concurrency at once and
// the versions of one blob one after another, until the lease ends.
func (h *Host) consumeBlobs(lctx context.Context, f *blobFunction, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(lctx)
	defer cancel()
	changes := make(chan blob.Change, 64)
	w, err := h.cfg.Blobs.Watch(ctx, f.Trigger.Path.Container, func(c blob.Change) {
		select {
		case changes <- c:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return err
	}
	defer func() {
		cancel() // fn may be waiting to hand a change over
		_ = w.Stop(context.Background())
	}()
	r := &blobRunner{h: h, f: f, log: log, ctx: ctx, sem: make(chan struct{}, cmp.Or(f.Trigger.Concurrency, DefaultBlobConcurrency)),
		pending: map[string]*blobChange{}, failed: make(chan error, 1)}
	defer r.wg.Wait() // no invocation outlives the lease
	for {
		select {
		case c := <-changes:
			if c.Deleted {
				continue
			}
			params, ok := f.Trigger.Path.Match(c.Name)
			if !ok {
				continue
			}
			if !r.run(blobChange{info: c.Info, params: params}) {
				return nil
			}
		case err := <-r.failed:
			return err
		case <-w.Done():
			return cmp.Or(w.Err(), errors.New("the container's watch ended"))
		case <-lctx.Done():
			return nil
		case <-h.soft:
			return nil
		}
	}
}

type blobChange struct {
	info   blob.Info
	params map[string]string
}

// blobRunner runs a blob function's blobs concurrently, one version of a
// blob at a time.
type blobRunner struct {
	h   *Host
	f   *blobFunction
	log *slog.Logger
	ctx context.Context
	sem chan struct{}
	wg  sync.WaitGroup

	mu sync.Mutex
	// pending holds, per blob running now, the latest change that came
	// meanwhile (nil: none), run when it is done.
	pending map[string]*blobChange
	failed  chan error
}

// run starts c, or queues it behind its blob's run. It waits for a free
// slot and reports false when the context ended first.
func (r *blobRunner) run(c blobChange) bool {
	name := c.info.Name
	r.mu.Lock()
	if _, running := r.pending[name]; running {
		r.pending[name] = &c // the newest change wins: it names the newest version
		r.mu.Unlock()
		return true
	}
	r.pending[name] = nil
	r.mu.Unlock()
	select {
	case r.sem <- struct{}{}:
	case <-r.ctx.Done():
		r.mu.Lock()
		delete(r.pending, name)
		r.mu.Unlock()
		return false
	}
	r.wg.Go(func() {
		defer func() { <-r.sem }()
		for {
			if err := r.h.processBlob(r.ctx, r.f, c.info, c.params, r.log); err != nil {
				select {
				case r.failed <- err:
				default:
				}
			}
			r.mu.Lock()
			next := r.pending[name]
			if next == nil || r.ctx.Err() != nil {
				delete(r.pending, name)
				r.mu.Unlock()
				return
			}
			r.pending[name] = nil
			r.mu.Unlock()
			c = *next
		}
	})
	return true
}

func receiptKey(f *blobFunction, container, name string) string {
	sum := sha256.Sum256([]byte(container + "/" + name))
	return f.Name + "." + hex.EncodeToString(sum[:16])
}

// processBlob runs the function for one blob version unless its receipt
// says it was done, then writes the receipt. A version the function gave
// up on is dead-lettered and gets a receipt too. The function reads the
// content through BlobInput.Open: it is never read whole here.
func (h *Host) processBlob(lctx context.Context, f *blobFunction, info blob.Info, params map[string]string, log *slog.Logger) error {
	key := receiptKey(f, info.Container, info.Name)
	if e, err := h.cfg.BlobReceipts.Get(lctx, key); err == nil {
		var r blobReceipt
		if json.Unmarshal(e.Value(), &r) == nil && r.ETag == info.ETag {
			return nil
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("read the receipt of blob %s: %w", info.Name, err)
	}
	rc, cur, err := h.cfg.Blobs.Get(lctx, info.Container, info.Name)
	if errors.Is(err, blob.ErrBlobNotFound) {
		return nil // deleted since; nothing to run
	}
	if err != nil {
		return fmt.Errorf("read blob %s: %w", info.Name, err)
	}
	// The current version may be newer than the change: it is the one run,
	// and the newer change's receipt check skips it later.
	o := &blobOpener{blobs: h.cfg.Blobs, container: cur.Container, name: cur.Name, first: rc}
	defer o.closeAll()
	in := BlobInput{Info: cur, Params: params, Open: o.open}
	if !invokeBatch(h, lctx, f.run, []BlobInput{in}, resilience.Permit{}, log.With("blob", info.Name), nil) {
		return nil // stopped or lease lost: no receipt, it runs again
	}
	r, _ := json.Marshal(blobReceipt{Name: cur.Name, ETag: cur.ETag, Done: time.Now().UTC()})
	_, err = h.cfg.BlobReceipts.Put(context.WithoutCancel(lctx), key, r)
	return err
}

// blobOpener opens a blob for a function: the first time with the reader
// the host already has, then (retries) from the store again. It closes
// what the function left open.
type blobOpener struct {
	blobs           *blob.Service
	container, name string

	mu     sync.Mutex
	first  io.ReadCloser
	opened []io.ReadCloser
}

func (o *blobOpener) open(ctx context.Context) (io.ReadCloser, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	rc := o.first
	o.first = nil
	if rc == nil {
		var err error
		if rc, _, err = o.blobs.Get(ctx, o.container, o.name); err != nil {
			return nil, fmt.Errorf("read blob %s: %w", o.name, err)
		}
	}
	once := &closeOnce{ReadCloser: rc}
	o.opened = append(o.opened, once)
	return once, nil
}

// closeOnce closes its reader once, however many times it is closed.
type closeOnce struct {
	io.ReadCloser
	once sync.Once
	err  error
}

func (c *closeOnce) Close() error {
	c.once.Do(func() { c.err = c.ReadCloser.Close() })
	return c.err
}

func (o *blobOpener) closeAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.first != nil {
		o.first.Close()
	}
	for _, rc := range o.opened {
		rc.Close()
	}
}
