package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Put stores a blob, replacing any blob of that name, and returns its
// info once it is durable. r is read to its end, in chunks; when it holds
// more than the maximum blob size, Put fails with ErrTooLarge. A Put that
// fails stores nothing (the chunks written so far are removed) and leaves
// the previous version, if any, as it was.
func (s *Service) Put(ctx context.Context, container, name string, r io.Reader, meta Meta) (Info, error) {
	if err := ValidateName(name); err != nil {
		return Info{}, err
	}
	meta, err := meta.normalized()
	if err != nil {
		return Info{}, err
	}
	b, err := s.bucket(ctx, container)
	if err != nil {
		return Info{}, err
	}
	src := &fullReader{r: r, max: s.opts.MaxBlobBytes, container: container, name: name}
	oi, err := b.obs.Put(ctx, jetstream.ObjectMeta{
		Name:     name,
		Headers:  nats.Header{headerContentType: []string{meta.ContentType}},
		Metadata: meta.Metadata,
		Opts:     &jetstream.ObjectMetaOptions{ChunkSize: chunkSize},
	}, src)
	switch {
	case src.err != nil && errors.Is(err, src.err):
		return Info{}, src.err
	case err != nil:
		return Info{}, s.storeError(ctx, container, "put "+name+" in container "+container, err)
	}
	info := infoOf(container, oi)
	// The store answers with this process's clock; its record has the
	// server's, which Stat, List and Watch show.
	if cur, err := b.obs.GetInfo(ctx, name); err == nil && cur.NUID == oi.NUID {
		info.Modified = cur.ModTime.UTC()
	}
	return info, nil
}

// fullReader fills each chunk the object store asks for (an HTTP body
// would otherwise give it a few KiB at a time, each stored as a chunk), and
// fails once more than max bytes were read.
type fullReader struct {
	r               io.Reader
	max, n          int64
	container, name string
	// err is the error that stopped the reading: the source's, or
	// ErrTooLarge.
	err error
}

func (f *fullReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.r == nil {
		return 0, io.EOF
	}
	n, err := io.ReadFull(f.r, p)
	f.n += int64(n)
	switch {
	case f.n > f.max:
		f.err = fmt.Errorf("%w: blob %s of container %s is over the limit of %d bytes; nothing was stored", ErrTooLarge, f.name, f.container, f.max)
		return 0, f.err
	case err == nil:
		return n, nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return n, io.EOF
	default:
		f.err = fmt.Errorf("blob: read the content of %s: %w", f.name, err)
		return 0, f.err
	}
}

// Stat returns a blob's info.
func (s *Service) Stat(ctx context.Context, container, name string) (Info, error) {
	_, oi, err := s.stat(ctx, container, name)
	if err != nil {
		return Info{}, err
	}
	return infoOf(container, oi), nil
}

func (s *Service) stat(ctx context.Context, container, name string) (*bucket, *jetstream.ObjectInfo, error) {
	if err := ValidateName(name); err != nil {
		return nil, nil, err
	}
	b, err := s.bucket(ctx, container)
	if err != nil {
		return nil, nil, err
	}
	oi, err := b.obs.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil, fmt.Errorf("%w: %s in container %s", ErrBlobNotFound, name, container)
	}
	if err != nil {
		return nil, nil, s.storeError(ctx, container, "stat "+name+" in container "+container, err)
	}
	return b, oi, nil
}

// Get opens a blob for reading. The content is fetched as it is read; the
// reader fails with ErrChanged if the blob is overwritten or deleted before
// it is read to the end, and checks the digest at the end. ctx bounds the
// reading too. Close the reader when done.
func (s *Service) Get(ctx context.Context, container, name string) (io.ReadCloser, Info, error) {
	b, oi, err := s.stat(ctx, container, name)
	if err != nil {
		return nil, Info{}, err
	}
	info := infoOf(container, oi)
	return &reader{ctx: ctx, s: s, b: b, info: info, subject: chunkSubject(container, oi.NUID),
		chunks: oi.Chunks, seq: 1, hash: sha256.New()}, info, nil
}

// reader reads the chunks of one version of a blob, in order, by
// sequence: each is the first message on the version's chunk subject after
// the previous one. (The object store's own reader bounds the whole read
// by the context's deadline, 5 s when it has none, and waits out that
// deadline when the chunks are removed under it.)
type reader struct {
	ctx     context.Context
	s       *Service
	b       *bucket
	info    Info
	subject string
	chunks  uint32

	mu     sync.Mutex
	read   uint32 // chunks read so far
	seq    uint64 // where to look for the next chunk
	buf    []byte // unread part of the current chunk
	hash   hash.Hash
	err    error
	closed bool
}

func (r *reader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errors.New("blob: read after close")
	}
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.read == r.chunks {
			r.err = r.finish()
			continue
		}
		r.err = r.next()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// next fetches the next chunk.
func (r *reader) next() error {
	for attempt := 0; ; attempt++ {
		m, err := r.b.stream.GetMsg(r.ctx, r.seq, jetstream.WithGetMsgSubject(r.subject))
		if err == nil {
			r.read++
			r.seq = m.Sequence + 1
			r.hash.Write(m.Data)
			r.buf = m.Data
			return nil
		}
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			if r.ctx.Err() != nil {
				return r.ctx.Err()
			}
			return r.s.storeError(r.ctx, r.info.Container, "read "+r.info.Name+" of container "+r.info.Container, err)
		}
		// The chunk is gone: the blob was overwritten or deleted. (Or, on a
		// cluster, the replica that answered lags behind: try again while
		// the blob's record still names this version.)
		cur, err := r.b.obs.GetInfo(r.ctx, r.info.Name)
		if err != nil || cur.NUID != r.info.ETag || attempt == 5 {
			return fmt.Errorf("%w: %s of container %s was overwritten or deleted after %d of %d bytes were read; read it again",
				ErrChanged, r.info.Name, r.info.Container, r.bytesRead(), r.info.Size)
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
	}
}

// bytesRead is the size of the chunks fetched so far (all full but the
// last one).
func (r *reader) bytesRead() int64 {
	return min(int64(r.read)*chunkSize, r.info.Size)
}

// finish checks the digest of what was read: io.EOF when it matches.
func (r *reader) finish() error {
	want, err := jetstream.DecodeObjectDigest(r.info.Digest)
	if err != nil && r.info.Size == 0 && r.info.Digest == "" {
		return io.EOF
	}
	if err != nil || !bytes.Equal(r.hash.Sum(nil), want) {
		return fmt.Errorf("blob: %s of container %s: the content read does not match its digest %s", r.info.Name, r.info.Container, r.info.Digest)
	}
	return io.EOF
}

func (r *reader) Close() error {
	r.mu.Lock()
	r.closed, r.buf = true, nil
	r.mu.Unlock()
	return nil
}

// Delete removes a blob.
func (s *Service) Delete(ctx context.Context, container, name string) error {
	// The store's Delete accepts a deleted blob (and writes its deletion
	// again, which a watch would see): look first.
	b, _, err := s.stat(ctx, container, name)
	if err != nil {
		return err
	}
	err = b.obs.Delete(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("%w: %s in container %s", ErrBlobNotFound, name, container)
	}
	if err != nil {
		return s.storeError(ctx, container, "delete "+name+" of container "+container, err)
	}
	return nil
}

// listTimeout bounds a List whose context has no deadline.
const listTimeout = time.Minute

// List returns the blobs of a container whose names start with prefix, by
// name.
func (s *Service) List(ctx context.Context, container, prefix string) ([]Info, error) {
	b, err := s.bucket(ctx, container)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, listTimeout)
		defer cancel()
	}
	objs, err := b.obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, s.storeError(ctx, container, "list container "+container, err)
	}
	out := []Info{}
	for _, oi := range objs {
		if strings.HasPrefix(oi.Name, prefix) {
			out = append(out, infoOf(container, oi))
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
