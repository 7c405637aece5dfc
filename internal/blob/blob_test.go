package blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

// setup opens a service with opts on eng and creates a container with a
// unique name, deleted when the test ends.
func setup(t *testing.T, eng *engine.Engine, opts blob.Options) (*blob.Service, string) {
	t.Helper()
	s := blob.Open(eng.JS, opts)
	name := enginetest.Name("c")
	_, err := s.CreateContainer(bg, name)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.DeleteContainer(context.Background(), name) })
	return s, name
}

func put(t *testing.T, s *blob.Service, container, name string, content []byte, meta blob.Meta) blob.Info {
	t.Helper()
	info, err := s.Put(bg, container, name, bytes.NewReader(content), meta)
	require.NoError(t, err)
	return info
}

func get(t *testing.T, s *blob.Service, container, name string) ([]byte, blob.Info) {
	t.Helper()
	rc, info, err := s.Get(bg, container, name)
	require.NoError(t, err)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	return data, info
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "SHA-256=" + base64.URLEncoding.EncodeToString(sum[:])
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// storedMsgs counts the messages of a container's stream: chunks and
// records.
func storedMsgs(t *testing.T, eng *engine.Engine, container string) uint64 {
	t.Helper()
	st, err := eng.JS.Stream(bg, "OBJ_"+blob.BucketName(container))
	require.NoError(t, err)
	return st.CachedInfo().State.Msgs
}

func TestContainers(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		s := blob.Open(eng.JS, blob.Options{})
		a, b := enginetest.Name("a"), enginetest.Name("b")
		created, err := s.CreateContainer(bg, b)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.DeleteContainer(context.Background(), b) })
		require.Equal(t, b, created.Name)
		require.False(t, created.Created.IsZero())
		_, err = s.CreateContainer(bg, a)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.DeleteContainer(context.Background(), a) })

		_, err = s.CreateContainer(bg, a)
		require.ErrorIs(t, err, blob.ErrExists)
		got, err := s.GetContainer(bg, b)
		require.NoError(t, err)
		require.Equal(t, created.Created, got.Created)
		ensured, err := s.EnsureContainer(bg, b)
		require.NoError(t, err)
		require.Equal(t, created.Created, ensured.Created)

		list, err := s.ListContainers(bg)
		require.NoError(t, err)
		var names []string
		for _, c := range list {
			if c.Name == a || c.Name == b {
				names = append(names, c.Name)
				require.False(t, c.Created.IsZero())
			}
		}
		require.Equal(t, []string{a, b}, names, "sorted by name")

		// Other object stores are not containers.
		other := "other-" + enginetest.Name("x")
		_, err = eng.JS.CreateObjectStore(bg, jetstream.ObjectStoreConfig{Bucket: other})
		require.NoError(t, err)
		t.Cleanup(func() { _ = eng.JS.DeleteObjectStore(context.Background(), other) })
		list, err = s.ListContainers(bg)
		require.NoError(t, err)
		for _, c := range list {
			require.NotContains(t, c.Name, "other-")
		}

		put(t, s, a, "x", []byte("x"), blob.Meta{})
		require.NoError(t, s.DeleteContainer(bg, a))
		_, err = s.GetContainer(bg, a)
		require.ErrorIs(t, err, blob.ErrContainerNotFound)
		require.ErrorIs(t, err, blob.ErrNotFound)
		require.ErrorIs(t, s.DeleteContainer(bg, a), blob.ErrContainerNotFound)
		// The name is free again, and the new container is empty.
		_, err = s.CreateContainer(bg, a)
		require.NoError(t, err)
		_, err = s.Stat(bg, a, "x")
		require.ErrorIs(t, err, blob.ErrBlobNotFound)
	})
}

func TestContainerNames(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "0", "incoming", "cdc-staging-2", strings.Repeat("a", 63), "a--b", "a-"} {
		require.NoError(t, blob.ValidateContainerName(ok), ok)
	}
	for _, bad := range []string{"", "-a", "A", "Incoming", "a_b", "a.b", "a b", "a/b", strings.Repeat("a", 64), "é"} {
		err := blob.ValidateContainerName(bad)
		require.ErrorIs(t, err, blob.ErrInvalid, bad)
		require.ErrorContains(t, err, "1-63 lowercase letters, digits and '-'")
	}
	eng := enginetest.Embedded(t)
	s := blob.Open(eng.JS, blob.Options{})
	_, err := s.CreateContainer(bg, "Bad_Name")
	require.ErrorIs(t, err, blob.ErrInvalid)
	_, err = s.Put(bg, "Bad_Name", "x", strings.NewReader("x"), blob.Meta{})
	require.ErrorIs(t, err, blob.ErrInvalid)
	_, err = s.List(bg, "Bad_Name", "")
	require.ErrorIs(t, err, blob.ErrInvalid)
}

func TestBlobNames(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "file.json", "incoming/2026/11/file.json", "with space/ünïcödé.txt", "a..b", ".hidden", "a/.b/c",
		strings.Repeat("é", blob.MaxNameLength)} {
		require.NoError(t, blob.ValidateName(ok), ok)
	}
	for _, c := range []struct{ name, msg string }{
		{"", "it is empty"},
		{"/a", "must not start with '/'"},
		{"a//b", "empty path segment"},
		{"a/", "empty path segment"},
		{"a/../b", `must not be ".."`},
		{"..", `must not be ".."`},
		{"a/./b", `must not be "."`},
		{"a\x00b", "control character U+0000 at byte 1"},
		{"a\nb", "control character U+000A"},
		{"a\x7fb", "control character U+007F"},
		{"a\xffb", "not valid UTF-8"},
		{strings.Repeat("a", blob.MaxNameLength+1), "1025 characters, more than 1024"},
	} {
		err := blob.ValidateName(c.name)
		require.ErrorIs(t, err, blob.ErrInvalid, c.name)
		require.ErrorContains(t, err, c.msg, c.name)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		s, c := setup(t, eng, blob.Options{})

		// Small, with a content type and metadata (names kept in lower case).
		small := []byte(`{"op":"insert","id":1}`)
		meta := blob.Meta{ContentType: "application/json", Metadata: map[string]string{"Source": "cdc", "batch-id": "42"}}
		info := put(t, s, c, "incoming/2026/11/file.json", small, meta)
		require.Equal(t, c, info.Container)
		require.Equal(t, "incoming/2026/11/file.json", info.Name)
		require.Equal(t, int64(len(small)), info.Size)
		require.Equal(t, "application/json", info.ContentType)
		require.Equal(t, map[string]string{"source": "cdc", "batch-id": "42"}, info.Metadata)
		require.Equal(t, digestOf(small), info.Digest)
		require.NotEmpty(t, info.ETag)
		require.False(t, info.Modified.IsZero())
		data, got := get(t, s, c, "incoming/2026/11/file.json")
		require.Equal(t, small, data)
		require.Equal(t, info, got, "Get's info is Put's")
		stat, err := s.Stat(bg, c, "incoming/2026/11/file.json")
		require.NoError(t, err)
		require.Equal(t, info, stat)

		// Empty, without a content type.
		info = put(t, s, c, "empty", nil, blob.Meta{})
		require.Equal(t, int64(0), info.Size)
		require.Equal(t, blob.DefaultContentType, info.ContentType)
		require.Nil(t, info.Metadata)
		data, _ = get(t, s, c, "empty")
		require.Empty(t, data)

		// Several MiB, not a multiple of the chunk size, from a reader that
		// gives a byte at a time now and then.
		big := randomBytes(5<<20 + 12345)
		info, err = s.Put(bg, c, "big.bin", iotest.HalfReader(bytes.NewReader(big)), blob.Meta{ContentType: "application/octet-stream"})
		require.NoError(t, err)
		require.Equal(t, int64(len(big)), info.Size)
		require.Equal(t, digestOf(big), info.Digest)
		data, _ = get(t, s, c, "big.bin")
		require.True(t, bytes.Equal(big, data), "the content read back is the content written")
		// Chunks are full though the reader gave half of what was asked.
		// small: a chunk and a record; empty: a record; big: its chunks and
		// a record.
		require.Equal(t, uint64(2+1+len(big)/(128<<10)+1+1), storedMsgs(t, eng, c))

		// Small reads through the reader.
		rc, _, err := s.Get(bg, c, "big.bin")
		require.NoError(t, err)
		require.NoError(t, iotest.TestReader(rc, big))
		require.NoError(t, rc.Close())
		_, err = rc.Read(make([]byte, 1))
		require.Error(t, err, "read after close")
	})
}

func TestOverwriteAndDelete(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		s, c := setup(t, eng, blob.Options{})
		v1 := put(t, s, c, "state.json", randomBytes(300<<10), blob.Meta{Metadata: map[string]string{"v": "1"}})
		v2 := put(t, s, c, "state.json", []byte("v2"), blob.Meta{ContentType: "text/plain"})
		require.NotEqual(t, v1.ETag, v2.ETag, "every write gets a new ETag")
		require.False(t, v2.Modified.Before(v1.Modified))
		data, info := get(t, s, c, "state.json")
		require.Equal(t, "v2", string(data))
		require.Equal(t, v2, info)
		require.Nil(t, info.Metadata, "metadata is per version")
		require.Equal(t, uint64(2), storedMsgs(t, eng, c), "the old version's chunks are gone: one chunk and one record")
		v3 := put(t, s, c, "state.json", []byte("v2"), blob.Meta{ContentType: "text/plain"})
		require.NotEqual(t, v2.ETag, v3.ETag, "the same content written again is a new version")
		require.Equal(t, v2.Digest, v3.Digest)

		require.NoError(t, s.Delete(bg, c, "state.json"))
		_, err := s.Stat(bg, c, "state.json")
		require.ErrorIs(t, err, blob.ErrBlobNotFound)
		_, _, err = s.Get(bg, c, "state.json")
		require.ErrorIs(t, err, blob.ErrBlobNotFound)
		require.ErrorContains(t, err, "state.json in container "+c)
		require.ErrorIs(t, s.Delete(bg, c, "state.json"), blob.ErrBlobNotFound, "deleted already")
		list, err := s.List(bg, c, "")
		require.NoError(t, err)
		require.Empty(t, list)

		// A deleted blob can be written again.
		put(t, s, c, "state.json", []byte("v4"), blob.Meta{})
		data, _ = get(t, s, c, "state.json")
		require.Equal(t, "v4", string(data))
	})
}

func TestList(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		s, c := setup(t, eng, blob.Options{})
		list, err := s.List(bg, c, "")
		require.NoError(t, err)
		require.NotNil(t, list)
		require.Empty(t, list)
		for _, n := range []string{"incoming/b.json", "incoming/a.json", "done/a.json", "incoming2/x", "gone/x"} {
			put(t, s, c, n, []byte(n), blob.Meta{Metadata: map[string]string{"name": n}})
		}
		require.NoError(t, s.Delete(bg, c, "gone/x"))
		names := func(prefix string) []string {
			list, err := s.List(bg, c, prefix)
			require.NoError(t, err)
			out := []string{}
			for _, i := range list {
				require.Equal(t, c, i.Container)
				require.Equal(t, int64(len(i.Name)), i.Size)
				require.Equal(t, i.Name, i.Metadata["name"])
				require.NotEmpty(t, i.ETag)
				out = append(out, i.Name)
			}
			return out
		}
		require.Equal(t, []string{"done/a.json", "incoming/a.json", "incoming/b.json", "incoming2/x"}, names(""))
		require.Equal(t, []string{"incoming/a.json", "incoming/b.json"}, names("incoming/"))
		require.Equal(t, []string{"incoming/a.json", "incoming/b.json", "incoming2/x"}, names("incoming"))
		require.Equal(t, []string{}, names("nothing/"))
	})
}

func TestSizeLimit(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		const limit = 300 << 10 // more than two chunks
		s, c := setup(t, eng, blob.Options{MaxBlobBytes: limit})
		require.Equal(t, int64(limit), s.MaxBlobBytes())
		put(t, s, c, "exact", randomBytes(limit), blob.Meta{})
		before := storedMsgs(t, eng, c)

		_, err := s.Put(bg, c, "new", bytes.NewReader(randomBytes(limit+1)), blob.Meta{})
		require.ErrorIs(t, err, blob.ErrTooLarge)
		require.ErrorContains(t, err, "over the limit of 307200 bytes")
		_, err = s.Stat(bg, c, "new")
		require.ErrorIs(t, err, blob.ErrBlobNotFound)

		// Refused over an existing blob: the old version stays.
		old := put(t, s, c, "kept", []byte("old"), blob.Meta{})
		before += 2
		_, err = s.Put(bg, c, "kept", bytes.NewReader(randomBytes(1<<20)), blob.Meta{})
		require.ErrorIs(t, err, blob.ErrTooLarge)
		data, info := get(t, s, c, "kept")
		require.Equal(t, "old", string(data))
		require.Equal(t, old.ETag, info.ETag)
		require.Equal(t, before, storedMsgs(t, eng, c), "nothing of the refused writes is stored")
	})
}

// failingReader gives some bytes, then fails.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrClosedPipe
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestSourceError(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	s, c := setup(t, eng, blob.Options{})
	_, err := s.Put(bg, c, "partial", &failingReader{n: 400 << 10}, blob.Meta{})
	require.ErrorIs(t, err, io.ErrClosedPipe)
	require.ErrorContains(t, err, "read the content of partial")
	_, err = s.Stat(bg, c, "partial")
	require.ErrorIs(t, err, blob.ErrBlobNotFound)
	require.Zero(t, storedMsgs(t, eng, c))
}

func TestMeta(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	s, c := setup(t, eng, blob.Options{})
	for _, m := range []struct {
		meta blob.Meta
		msg  string
	}{
		{blob.Meta{Metadata: map[string]string{"": "x"}}, `metadata name ""`},
		{blob.Meta{Metadata: map[string]string{"a b": "x"}}, `metadata name "a b"`},
		{blob.Meta{Metadata: map[string]string{"-a": "x"}}, `metadata name "-a"`},
		{blob.Meta{Metadata: map[string]string{"a": "x", "A": "y"}}, "given twice"},
		{blob.Meta{Metadata: map[string]string{"a": "line\nbreak"}}, "control characters"},
		{blob.Meta{Metadata: map[string]string{"a": strings.Repeat("x", blob.MaxMetadataBytes)}}, "more than 8192"},
		{blob.Meta{ContentType: "text/plain\r\nX-Evil: 1"}, "content type"},
		{blob.Meta{ContentType: strings.Repeat("a", 256)}, "up to 255 characters"},
	} {
		_, err := s.Put(bg, c, "x", strings.NewReader("x"), m.meta)
		require.ErrorIs(t, err, blob.ErrInvalid, m.msg)
		require.ErrorContains(t, err, m.msg)
	}
	require.Zero(t, storedMsgs(t, eng, c))
}

func TestMissing(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		s, c := setup(t, eng, blob.Options{})
		_, err := s.Stat(bg, c, "nope")
		require.ErrorIs(t, err, blob.ErrBlobNotFound)
		require.ErrorIs(t, err, blob.ErrNotFound)
		require.NotErrorIs(t, err, blob.ErrContainerNotFound)
		_, _, err = s.Get(bg, c, "nope")
		require.ErrorIs(t, err, blob.ErrBlobNotFound)
		require.ErrorIs(t, s.Delete(bg, c, "nope"), blob.ErrBlobNotFound)

		missing := enginetest.Name("missing")
		checkMissing := func(container string) {
			t.Helper()
			_, err := s.Put(bg, container, "x", strings.NewReader("x"), blob.Meta{})
			require.ErrorIs(t, err, blob.ErrContainerNotFound)
			require.ErrorContains(t, err, "container not found: "+container)
			_, err = s.Stat(bg, container, "x")
			require.ErrorIs(t, err, blob.ErrContainerNotFound)
			_, _, err = s.Get(bg, container, "x")
			require.ErrorIs(t, err, blob.ErrContainerNotFound)
			require.ErrorIs(t, s.Delete(bg, container, "x"), blob.ErrContainerNotFound)
			_, err = s.List(bg, container, "")
			require.ErrorIs(t, err, blob.ErrContainerNotFound)
			_, err = s.Watch(bg, container, func(blob.Change) {})
			require.ErrorIs(t, err, blob.ErrContainerNotFound)
		}
		checkMissing(missing)

		// A container deleted by another instance, after this one used it.
		put(t, s, c, "x", []byte("x"), blob.Meta{})
		other := blob.Open(eng.JS, blob.Options{})
		require.NoError(t, other.DeleteContainer(bg, c))
		checkMissing(c)
	})
}

func TestReadWhileOverwritten(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		s, c := setup(t, eng, blob.Options{})
		put(t, s, c, "staged", randomBytes(1<<20), blob.Meta{})
		for _, change := range []func(){
			func() { put(t, s, c, "staged", []byte("new"), blob.Meta{}) },
			func() { require.NoError(t, s.Delete(bg, c, "staged")) },
		} {
			rc, _, err := s.Get(bg, c, "staged")
			require.NoError(t, err)
			_, err = io.ReadFull(rc, make([]byte, 200<<10))
			require.NoError(t, err)
			change()
			_, err = io.ReadAll(rc)
			require.ErrorIs(t, err, blob.ErrChanged)
			require.ErrorContains(t, err, "overwritten or deleted after 262144 of 1048576 bytes were read")
			put(t, s, c, "staged", randomBytes(1<<20), blob.Meta{})
		}
	})
}

// Blobs are objects of the object store, readable and writable with its
// own client (and the nats CLI).
func TestObjectStoreInterop(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		s, c := setup(t, eng, blob.Options{})
		obs, err := eng.JS.ObjectStore(bg, blob.BucketName(c))
		require.NoError(t, err)

		content := randomBytes(700 << 10)
		info := put(t, s, c, "dir/ours.bin", content, blob.Meta{ContentType: "application/x-test", Metadata: map[string]string{"k": "v"}})
		theirs, err := obs.GetBytes(bg, "dir/ours.bin")
		require.NoError(t, err, "the store's reader checks the digest too")
		require.True(t, bytes.Equal(content, theirs))
		oi, err := obs.GetInfo(bg, "dir/ours.bin")
		require.NoError(t, err)
		require.Equal(t, info.ETag, oi.NUID)
		require.Equal(t, info.Modified, oi.ModTime.UTC())
		require.Equal(t, "application/x-test", oi.Headers.Get("Content-Type"))
		require.Equal(t, map[string]string{"k": "v"}, oi.Metadata)

		content2 := randomBytes(300 << 10)
		_, err = obs.PutBytes(bg, "dir/theirs.bin", content2)
		require.NoError(t, err)
		data, got := get(t, s, c, "dir/theirs.bin")
		require.True(t, bytes.Equal(content2, data))
		require.Equal(t, digestOf(content2), got.Digest)
		require.Equal(t, blob.DefaultContentType, got.ContentType, "written without one")

		// Overwritten by the store's client: our version's chunks are gone.
		_, err = obs.PutBytes(bg, "dir/ours.bin", []byte("small"))
		require.NoError(t, err)
		data, _ = get(t, s, c, "dir/ours.bin")
		require.Equal(t, "small", string(data))
		require.NoError(t, obs.Delete(bg, "dir/theirs.bin"))
		list, err := s.List(bg, c, "dir/")
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, uint64(3), storedMsgs(t, eng, c), "a chunk and a record, and the deleted blob's record")
	})
}
