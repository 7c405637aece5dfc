package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
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
	"github.com/nats-io/nuid"
)

// Put stores a blob, replacing any blob of that name, and returns its
// info once it is durable. r is read to its end, in chunks; when it holds
// more than the maximum blob size, Put fails with ErrTooLarge. A Put that
// fails stores nothing (the chunks written so far are removed) and leaves
// the previous version, if any, as it was.
//
// Put writes the object store's format (ADR-20) itself rather than call
// the store's Put, which makes a JetStream context per call whose
// reconnect listener can outlive it (a goroutine leaked now and then), and
// which lets any number of chunks wait for acknowledgement on the
// connection shared with hubs and queues. Here at most putWindow chunks of
// a Put are unacknowledged at once.
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
	// The previous version's chunks go once the new record is stored.
	prev, err := b.obs.GetInfo(ctx, name, jetstream.GetObjectInfoShowDeleted())
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return Info{}, s.storeError(ctx, container, "put "+name+" in container "+container, err)
	}
	oi := &jetstream.ObjectInfo{
		ObjectMeta: jetstream.ObjectMeta{
			Name:     name,
			Headers:  nats.Header{headerContentType: []string{meta.ContentType}},
			Metadata: meta.Metadata,
			Opts:     &jetstream.ObjectMetaOptions{ChunkSize: chunkSize},
		},
		Bucket: BucketName(container),
		NUID:   nuid.Next(),
	}
	src := &fullReader{r: r, max: s.opts.MaxBlobBytes, container: container, name: name}
	if err := s.putChunks(ctx, b, container, oi, src); err != nil {
		return Info{}, s.storeError(ctx, container, "put "+name+" in container "+container, err)
	}
	rec, err := json.Marshal(oi)
	if err == nil {
		m := nats.NewMsg(metaSubject(container, name))
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		m.Data = rec
		var ack *jetstream.PubAck
		if ack, err = s.js.PublishMsg(ctx, m, jetstream.WithExpectStream(streamName(container))); err == nil {
			oi.ModTime = time.Now()
			// The record's time is the server's, which Stat, List and
			// Watch show.
			if sm, err := b.stream.GetMsg(ctx, ack.Sequence); err == nil {
				oi.ModTime = sm.Time
			}
		}
	}
	if err != nil {
		// The record may be stored though its acknowledgement was lost:
		// then the chunks are the blob's.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		cur, gerr := b.obs.GetInfo(cctx, name)
		cancel()
		if gerr != nil || cur.NUID != oi.NUID {
			s.purgeChunks(ctx, b, container, oi.NUID)
			return Info{}, s.storeError(ctx, container, "put "+name+" in container "+container, err)
		}
		oi.ModTime = cur.ModTime
	}
	if prev != nil && !prev.Deleted && prev.NUID != "" {
		s.purgeChunks(ctx, b, container, prev.NUID)
	}
	return infoOf(container, oi), nil
}

// Put's limits.
const (
	// putWindow bounds the unacknowledged chunks of one Put.
	putWindow = 32
	// ackTimeout bounds the wait for a chunk's acknowledgement when the
	// context has no deadline.
	ackTimeout = 30 * time.Second
)

// putChunks stores the content read from src as the chunks of oi and sets
// its size, chunk count and digest. On error, it has removed what it
// stored.
func (s *Service) putChunks(ctx context.Context, b *bucket, container string, oi *jetstream.ObjectInfo, src io.Reader) error {
	type inflight struct {
		ack jetstream.PubAckFuture
		buf []byte
	}
	var (
		subject = chunkSubject(container, oi.NUID)
		sum     = sha256.New()
		pending []inflight
		free    [][]byte
	)
	// wait waits for the oldest chunk's acknowledgement and recycles its
	// buffer (a chunk may be sent again until it is acknowledged).
	wait := func(ctx context.Context) error {
		f := pending[0]
		pending = pending[1:]
		err := waitAck(ctx, f.ack)
		free = append(free, f.buf)
		return err
	}
	// fail removes the chunks stored, once those in flight are settled
	// (even when ctx has ended: they would be stored after the removal).
	fail := func(err error) error {
		drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
		defer cancel()
		for len(pending) > 0 {
			_ = wait(drain)
		}
		s.purgeChunks(ctx, b, container, oi.NUID)
		return err
	}
	for {
		var buf []byte
		if n := len(free); n > 0 {
			buf, free = free[n-1], free[:n-1]
		} else {
			buf = make([]byte, chunkSize)
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			sum.Write(buf[:n])
			m := nats.NewMsg(subject)
			m.Data = buf[:n]
			f, err := s.js.PublishMsgAsync(m, jetstream.WithExpectStream(streamName(container)))
			if err != nil {
				return fail(err)
			}
			pending = append(pending, inflight{f, buf})
			oi.Size += uint64(n)
			oi.Chunks++
			if len(pending) >= putWindow {
				if err := wait(ctx); err != nil {
					return fail(err)
				}
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fail(rerr)
		}
	}
	for len(pending) > 0 {
		if err := wait(ctx); err != nil {
			return fail(err)
		}
	}
	oi.Digest = jetstream.GetObjectDigestValue(sum)
	return nil
}

func waitAck(ctx context.Context, f jetstream.PubAckFuture) error {
	var timeout <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := time.NewTimer(ackTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout:
		return fmt.Errorf("no acknowledgement from the server in %s", ackTimeout)
	}
}

// purgeChunks removes the chunks of one version of a blob: a version
// replaced, or one whose write failed. Failing that (the server is
// unreachable), they stay in the stream, unreferenced.
func (s *Service) purgeChunks(ctx context.Context, b *bucket, container, nuid string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := b.stream.Purge(ctx, jetstream.WithPurgeSubject(chunkSubject(container, nuid))); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		s.log.Warn("could not remove the chunks of a replaced or failed blob write; they stay in the container's stream, unused",
			"container", container, "object", nuid, "err", err)
	}
}

// metaSubject is where the object store keeps the record of a blob.
func metaSubject(container, name string) string {
	return "$O." + BucketName(container) + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
}

// errSource marks an error of the reader given to Put.
var errSource = errors.New("blob: read the content of")

// fullReader fills each chunk (an HTTP body would otherwise give a few KiB
// at a time, each stored as a chunk), and fails once more than max bytes
// were read.
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
		f.err = fmt.Errorf("%w %s: %w", errSource, f.name, err)
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
