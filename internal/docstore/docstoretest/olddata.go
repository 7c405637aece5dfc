package docstoretest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/docstore"
)

// The data that the migration tests of every backend write, with plain
// SQL, into a database of an earlier release, as that release would have
// stored it; CheckOldData checks that it survived the migrations. Two
// containers, live documents and a tombstone, LSNs with a gap (a version
// written over).
var (
	OldContainers = []OldContainer{
		{docstore.Container{Name: "devices", PartitionKeyPath: "/deviceId", Created: time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)}, 4},
		{docstore.Container{Name: "sessions", PartitionKeyPath: "/user", DefaultTTL: time.Hour, Created: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)}, 2},
	}
	OldDocuments = []OldDocument{
		{"devices", "d1", "a", 1, false},
		{"devices", "d2", "b", 3, false},
		{"devices", "d1", "c", 4, true},
		{"sessions", "u1", "s1", 2, false},
	}
)

// OldContainer is a container of OldContainers and its last LSN.
type OldContainer struct {
	docstore.Container
	LastLSN int64
}

// OldDocument is a document of OldDocuments, or its tombstone.
type OldDocument struct {
	Container, PartitionKey, ID string
	LSN                         int64
	Deleted                     bool
}

// Body is the document's stored JSON when written at ts, nil for a
// tombstone.
func (d OldDocument) Body(t *testing.T, ts time.Time) []byte {
	t.Helper()
	if d.Deleted {
		return nil
	}
	i := slices.IndexFunc(OldContainers, func(c OldContainer) bool { return c.Name == d.Container })
	c := OldContainers[i].Container
	doc := fmt.Appendf(nil, `{"id":%q,%q:%q,"n":%d}`, d.ID, strings.TrimPrefix(c.PartitionKeyPath, "/"), d.PartitionKey, d.LSN)
	p, err := docstore.Prepare(c, doc, docstore.DefaultMaxDocumentBytes)
	require.NoError(t, err)
	return p.Render(docstore.ETagFor(d.LSN), ts, d.LSN)
}

// CheckOldData checks that s holds the old data, written at ts, and that
// reads, feeds (by range too: the partition key hashes are right) and
// writes work on it. It writes to container devices.
func CheckOldData(t *testing.T, s docstore.Store, ts time.Time) {
	t.Helper()
	list, err := s.ListContainers(bg)
	require.NoError(t, err)
	require.Len(t, list, len(OldContainers))
	for i, c := range list {
		want := OldContainers[i]
		require.Equal(t, []any{want.Name, want.PartitionKeyPath, want.DefaultTTL}, []any{c.Name, c.PartitionKeyPath, c.DefaultTTL})
		require.True(t, want.Created.Equal(c.Created), "%s created %s, want %s", c.Name, c.Created, want.Created)

		last, err := s.LastLSN(bg, c.Name)
		require.NoError(t, err)
		require.Equal(t, want.LastLSN, last, c.Name)

		var docs []OldDocument
		for _, d := range OldDocuments {
			if d.Container == c.Name {
				docs = append(docs, d)
			}
		}
		slices.SortFunc(docs, func(a, b OldDocument) int { return cmp.Compare(a.LSN, b.LSN) })
		changes := feed(t, s, c.Name, docstore.FeedStart{})
		require.Len(t, changes, len(docs), c.Name)
		for i, d := range docs {
			got := changes[i]
			require.Equal(t, []any{d.PartitionKey, d.ID, d.LSN, d.Deleted, docstore.ETagFor(d.LSN)},
				[]any{got.PartitionKey, got.ID, got.LSN, got.Deleted, got.ETag})
			require.True(t, ts.Equal(got.TS), "ts %s, want %s", got.TS, ts)
			read, err := s.Read(bg, c.Name, d.PartitionKey, d.ID)
			if d.Deleted {
				require.Nil(t, got.Body)
				require.ErrorIs(t, err, docstore.ErrNotFound)
				continue
			}
			require.JSONEq(t, string(d.Body(t, ts)), string(got.Body))
			require.NoError(t, err)
			require.JSONEq(t, string(d.Body(t, ts)), string(read.Body))
		}
		n := 0
		for i := range 4 {
			r := docstore.FeedRange{Count: 4, Index: i}
			for _, d := range feed(t, s, c.Name, docstore.FeedStart{Range: r}) {
				require.True(t, r.Contains(d.PartitionKey), "%s in range %d", d.PartitionKey, i)
				n++
			}
		}
		require.Equal(t, len(docs), n, "the feed ranges of %s hold every change", c.Name)
	}

	// Writes go on from the last LSN, and keys stay unique.
	doc, err := s.Upsert(bg, "devices", []byte(`{"id":"b","deviceId":"d2","n":5}`))
	require.NoError(t, err)
	require.Equal(t, int64(5), doc.LSN)
	_, err = s.Create(bg, "sessions", []byte(`{"id":"s1","user":"u1"}`))
	require.ErrorIs(t, err, docstore.ErrExists)
	doc, err = s.Create(bg, "devices", []byte(`{"id":"c","deviceId":"d1"}`))
	require.NoError(t, err, "over a tombstone")
	require.Equal(t, int64(6), doc.LSN)
	changes := feed(t, s, "devices", docstore.FeedStart{AfterLSN: 4})
	require.Len(t, changes, 2)
	require.Equal(t, []string{"b", "c"}, []string{changes[0].ID, changes[1].ID})
	n, err := s.CountDocuments(bg, "devices")
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
}
