// Package blob stores blobs (staged change sets, large payloads) in NATS
// JetStream's object store.
//
// A container is an object store bucket named `blob-<container>` (its
// stream is `OBJ_blob-<container>`, file storage), so the nats CLI can read
// it too (`nats object ls blob-<container>`). A blob is an object of the
// bucket: its content is stored in chunks and its record (name, size,
// SHA-256 digest, content type, metadata) in one message per blob that the
// next write of the blob replaces (a subject rollup). Every write gets a new
// object ID (the NUID), which is the blob's ETag.
//
// Writes are streamed ([Service.Put] reads its reader in chunks) and
// bounded by [Options.MaxBlobBytes]; a write that fails or is refused leaves
// the previous version of the blob as it was. Reads ([Service.Get]) fetch
// the chunks one at a time as the reader is read, check the digest at the
// end, and fail with [ErrChanged] when the blob is overwritten or deleted
// meanwhile, rather than return a mix of two versions.
//
// [Service.Watch] delivers every blob of a container and then every change;
// see its comment for the exact delivery semantics.
package blob

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/engine"
)

// Errors returned by the service. Callers map them to user-facing answers.
var (
	// ErrNotFound: a container or a blob does not exist. Both
	// ErrContainerNotFound and ErrBlobNotFound are an ErrNotFound.
	ErrNotFound = errors.New("not found")
	// ErrContainerNotFound: the container does not exist (or was deleted
	// meanwhile).
	ErrContainerNotFound = fmt.Errorf("container %w", ErrNotFound)
	// ErrBlobNotFound: the container has no blob of that name (it was never
	// written, or it was deleted).
	ErrBlobNotFound = fmt.Errorf("blob %w", ErrNotFound)
	// ErrExists: CreateContainer was called for a name that is taken.
	ErrExists = errors.New("container already exists")
	// ErrInvalid wraps every validation error of caller input: names,
	// content types, metadata.
	ErrInvalid = errors.New("invalid")
	// ErrTooLarge: a blob is over the maximum size; nothing was stored.
	ErrTooLarge = errors.New("blob too large")
	// ErrChanged: a blob was overwritten or deleted while it was being
	// read; read it again.
	ErrChanged = errors.New("blob changed while it was read")
)

const (
	// DefaultMaxBlobBytes bounds a blob unless Options say otherwise.
	DefaultMaxBlobBytes = 256 << 20
	// MaxNameLength bounds a blob name, in characters.
	MaxNameLength = 1024
	// MaxMetadataBytes bounds a blob's metadata: the keys and values
	// together, as in Azure.
	MaxMetadataBytes = 8 << 10
	// MaxContentTypeLength bounds a content type.
	MaxContentTypeLength = 255
	// DefaultContentType is the content type of a blob written without one.
	DefaultContentType = "application/octet-stream"
	// BucketPrefix starts the object store bucket of every container.
	BucketPrefix = "blob-"
	// chunkSize is the size of the stored chunks of a blob.
	chunkSize = 128 << 10
)

var (
	containerRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	metaKeyRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,127}$`)
)

// ValidateContainerName reports whether name can name a container: 1-63
// lowercase letters, digits and '-', starting with a letter or digit.
func ValidateContainerName(name string) error {
	if !containerRE.MatchString(name) {
		return fmt.Errorf("%w container name %q: use 1-63 lowercase letters, digits and '-', starting with a letter or digit", ErrInvalid, name)
	}
	return nil
}

// ValidateName reports whether name can name a blob. A name is a path like
// "incoming/2026/11/file.json": 1-1024 characters of UTF-8 without control
// characters; it does not start with '/', and its segments are neither
// empty (no "//", no '/' at the end) nor "." or "..".
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w blob name: it is empty; give a name such as incoming/2026/11/file.json", ErrInvalid)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w blob name %q: it is not valid UTF-8", ErrInvalid, name)
	case utf8.RuneCountInString(name) > MaxNameLength:
		return fmt.Errorf("%w blob name %.40q...: %d characters, more than %d", ErrInvalid, name, utf8.RuneCountInString(name), MaxNameLength)
	case name[0] == '/':
		return fmt.Errorf("%w blob name %q: it must not start with '/'", ErrInvalid, name)
	}
	for i, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w blob name %q: control character %U at byte %d", ErrInvalid, name, r, i)
		}
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w blob name %q: it has an empty path segment (no \"//\" and no '/' at the end)", ErrInvalid, name)
		case ".", "..":
			return fmt.Errorf("%w blob name %q: a path segment must not be %q", ErrInvalid, name, seg)
		}
	}
	return nil
}

// Meta is what a writer says about a blob besides its content.
type Meta struct {
	// ContentType is the blob's media type. Default
	// application/octet-stream.
	ContentType string
	// Metadata are name-value pairs kept with the blob. Names are
	// case-insensitive (kept in lower case): letters, digits, '-' and '_',
	// up to 128 characters, starting with a letter or digit. Values have
	// no control characters. All together at most 8 KiB.
	Metadata map[string]string
}

// normalized checks m and returns it with defaults and lower-case keys.
func (m Meta) normalized() (Meta, error) {
	m.ContentType = cmp.Or(m.ContentType, DefaultContentType)
	if len(m.ContentType) > MaxContentTypeLength || strings.ContainsFunc(m.ContentType, unicode.IsControl) || !utf8.ValidString(m.ContentType) {
		return Meta{}, fmt.Errorf("%w content type %.60q: use a media type such as application/json, up to %d characters without control characters", ErrInvalid, m.ContentType, MaxContentTypeLength)
	}
	if len(m.Metadata) == 0 {
		m.Metadata = nil
		return m, nil
	}
	out := make(map[string]string, len(m.Metadata))
	size := 0
	for k, v := range m.Metadata {
		lk := strings.ToLower(k)
		if !metaKeyRE.MatchString(lk) {
			return Meta{}, fmt.Errorf("%w metadata name %q: use 1-128 letters, digits, '-' and '_', starting with a letter or digit", ErrInvalid, k)
		}
		if _, dup := out[lk]; dup {
			return Meta{}, fmt.Errorf("%w metadata name %q: given twice (names are case-insensitive)", ErrInvalid, k)
		}
		if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
			return Meta{}, fmt.Errorf("%w metadata %s: the value %.60q has control characters or is not UTF-8", ErrInvalid, lk, v)
		}
		out[lk] = v
		size += len(lk) + len(v)
	}
	if size > MaxMetadataBytes {
		return Meta{}, fmt.Errorf("%w metadata: %d bytes of names and values, more than %d", ErrInvalid, size, MaxMetadataBytes)
	}
	m.Metadata = out
	return m, nil
}

// Info describes a stored blob.
type Info struct {
	Container   string            `json:"container"`
	Name        string            `json:"name"`
	Size        int64             `json:"size"`
	ContentType string            `json:"content_type"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// Modified is when this version was stored (the server's clock).
	Modified time.Time `json:"modified"`
	// Digest is the SHA-256 digest of the content as the object store
	// keeps it: "SHA-256=" and the URL-safe base64 of the hash.
	Digest string `json:"digest"`
	// ETag identifies this version: every write of a blob gets a new one.
	ETag string `json:"etag"`
}

func infoOf(container string, oi *jetstream.ObjectInfo) Info {
	info := Info{Container: container, Name: oi.Name, Size: int64(oi.Size), ContentType: cmp.Or(oi.Headers.Get(headerContentType), DefaultContentType),
		Modified: oi.ModTime.UTC(), Digest: oi.Digest, ETag: oi.NUID}
	if len(oi.Metadata) > 0 {
		info.Metadata = oi.Metadata
	}
	return info
}

const headerContentType = "Content-Type"

// ContainerInfo describes a container.
type ContainerInfo struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// StoredBytes is what the container takes in the store: its blobs'
	// content and records, and the records left by deleted blobs.
	StoredBytes uint64 `json:"stored_bytes"`
}

// Options tune the service. Zero values mean the defaults.
type Options struct {
	// Replicas is the replica count of each container's stream. Default
	// 0: the engine's (engine.Config.Replicas; 1 on a single server).
	Replicas int
	// MaxBlobBytes bounds one blob. Default 256 MiB.
	MaxBlobBytes int64
	Logger       *slog.Logger
}

// Service manages containers and blobs on one JetStream connection. It is
// safe for concurrent use.
type Service struct {
	js   jetstream.JetStream
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	buckets  map[string]*bucket
	watchers map[string]map[*Watcher]struct{}
}

// bucket is a container's bound object store and its stream.
type bucket struct {
	obs    jetstream.ObjectStore
	stream jetstream.Stream
}

// Open returns a service on js.
func Open(js jetstream.JetStream, opts Options) *Service {
	opts.MaxBlobBytes = cmp.Or(opts.MaxBlobBytes, DefaultMaxBlobBytes)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Service{js: js, opts: opts, log: opts.Logger, buckets: map[string]*bucket{}, watchers: map[string]map[*Watcher]struct{}{}}
}

// MaxBlobBytes is the largest blob the service stores.
func (s *Service) MaxBlobBytes() int64 { return s.opts.MaxBlobBytes }

// BucketName is the object store bucket holding a container.
func BucketName(container string) string { return BucketPrefix + container }

func streamName(container string) string { return "OBJ_" + BucketName(container) }

// chunkSubject is where the object store keeps the chunks of one version
// of a blob.
func chunkSubject(container, nuid string) string {
	return "$O." + BucketName(container) + ".C." + nuid
}

// CreateContainer creates a container.
func (s *Service) CreateContainer(ctx context.Context, name string) (ContainerInfo, error) {
	if err := ValidateContainerName(name); err != nil {
		return ContainerInfo{}, err
	}
	// Creating a stream that exists with the same configuration succeeds,
	// so look first.
	if _, err := s.GetContainer(ctx, name); err == nil {
		return ContainerInfo{}, fmt.Errorf("%w: %s", ErrExists, name)
	} else if !errors.Is(err, ErrContainerNotFound) {
		return ContainerInfo{}, err
	}
	_, err := s.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      BucketName(name),
		Description: "sluice blob container " + name,
		Storage:     jetstream.FileStorage,
		Replicas:    s.opts.Replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return ContainerInfo{}, fmt.Errorf("%w: %s", ErrExists, name)
	}
	if err != nil {
		return ContainerInfo{}, fmt.Errorf("blob: create container %s: %w", name, err)
	}
	return s.GetContainer(ctx, name)
}

// RaiseReplicas gives every container with fewer replicas than the
// service's (Options.Replicas) that many, such as containers created before
// the instance's setting was raised. It never lowers a container's
// replicas.
func (s *Service) RaiseReplicas(ctx context.Context) error {
	return engine.RaiseStreams(ctx, s.js, s.opts.Replicas, func(cfg jetstream.StreamConfig) bool {
		return strings.HasPrefix(cfg.Name, "OBJ_"+BucketPrefix)
	}, s.log)
}

// EnsureContainer creates the container if it does not exist.
func (s *Service) EnsureContainer(ctx context.Context, name string) (ContainerInfo, error) {
	info, err := s.GetContainer(ctx, name)
	if errors.Is(err, ErrContainerNotFound) {
		info, err = s.CreateContainer(ctx, name)
		if errors.Is(err, ErrExists) {
			return s.GetContainer(ctx, name)
		}
	}
	return info, err
}

// GetContainer describes a container.
func (s *Service) GetContainer(ctx context.Context, name string) (ContainerInfo, error) {
	if err := ValidateContainerName(name); err != nil {
		return ContainerInfo{}, err
	}
	st, err := s.js.Stream(ctx, streamName(name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s.forget(name)
		return ContainerInfo{}, fmt.Errorf("%w: %s", ErrContainerNotFound, name)
	}
	if err != nil {
		return ContainerInfo{}, fmt.Errorf("blob: get container %s: %w", name, err)
	}
	si := st.CachedInfo()
	return ContainerInfo{Name: name, Created: si.Created.UTC(), StoredBytes: si.State.Bytes}, nil
}

// ListContainers returns every container, by name.
func (s *Service) ListContainers(ctx context.Context) ([]ContainerInfo, error) {
	out := []ContainerInfo{}
	lister := s.js.ObjectStores(ctx)
	for st := range lister.Status() {
		name, ok := strings.CutPrefix(st.Bucket(), BucketPrefix)
		if !ok || ValidateContainerName(name) != nil {
			continue
		}
		info := ContainerInfo{Name: name, StoredBytes: st.Size()}
		if bs, ok := st.(*jetstream.ObjectBucketStatus); ok {
			info.Created = bs.StreamInfo().Created.UTC()
		}
		out = append(out, info)
	}
	if err := lister.Error(); err != nil {
		return nil, fmt.Errorf("blob: list containers: %w", err)
	}
	slices.SortFunc(out, func(a, b ContainerInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteContainer removes a container and all its blobs. Watches of it on
// this service end at once with ErrContainerNotFound.
func (s *Service) DeleteContainer(ctx context.Context, name string) error {
	if err := ValidateContainerName(name); err != nil {
		return err
	}
	s.forget(name)
	err := s.js.DeleteObjectStore(ctx, BucketName(name))
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: %s", ErrContainerNotFound, name)
	}
	if err != nil {
		return fmt.Errorf("blob: delete container %s: %w", name, err)
	}
	s.endWatches(name, fmt.Errorf("%w: %s was deleted", ErrContainerNotFound, name))
	return nil
}

// bucket returns the bound object store of a container.
func (s *Service) bucket(ctx context.Context, container string) (*bucket, error) {
	if err := ValidateContainerName(container); err != nil {
		return nil, err
	}
	s.mu.Lock()
	b := s.buckets[container]
	s.mu.Unlock()
	if b != nil {
		return b, nil
	}
	stream, err := s.js.Stream(ctx, streamName(container))
	if err == nil {
		b = &bucket{stream: stream}
		b.obs, err = s.js.ObjectStore(ctx, BucketName(container))
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrContainerNotFound, container)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open container %s: %w", container, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.buckets[container]; cur != nil {
		return cur, nil
	}
	s.buckets[container] = b
	return b, nil
}

func (s *Service) forget(container string) {
	s.mu.Lock()
	delete(s.buckets, container)
	s.mu.Unlock()
}

// storeError turns an error of the object store into the service's: when
// the container is gone (the store's errors for that vary with the call
// and the moment), ErrContainerNotFound.
func (s *Service) storeError(ctx context.Context, container, op string, err error) error {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrChanged) || errors.Is(err, errSource) {
		return err
	}
	if ctx.Err() == nil {
		if _, gerr := s.GetContainer(ctx, container); errors.Is(gerr, ErrContainerNotFound) {
			return gerr
		}
	}
	return fmt.Errorf("blob: %s: %w", op, err)
}
