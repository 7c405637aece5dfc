package cursorsource_test

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/pipeline/cursorsource"
)

// An incremental table with DeleteCheck hands over, after each key pass,
// Deletes of exactly the rows hard-deleted since the pass before: those
// that pass saw, and those the cursor reads handed over since. The clock
// only moves when the test moves it, so the passes come when it says.
func testDeleteCheck(t *testing.T, f *fixture) {
	f.exec("CREATE TABLE " + f.name("h") + " (id bigint PRIMARY KEY, v bigint NOT NULL, updated_at {ts} NOT NULL DEFAULT {now})")
	for id := 1; id <= 10; id++ {
		f.exec("INSERT INTO "+f.name("h")+" (id, v) VALUES (?, ?)", id, id)
	}
	const every = time.Hour
	src := f.source(cursorsource.Config{
		Tables:       []cursorsource.TableConfig{{Name: f.name("h"), Cursor: "updated_at", DeleteCheck: every}},
		PollInterval: 5 * time.Millisecond, BatchSize: 3, Lag: -1,
	})
	var clock atomic.Int64 // nanoseconds since start
	start0 := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	cursorsource.SetClock(src, func() time.Time { return start0.Add(time.Duration(clock.Load())) })
	var passes, strangers atomic.Int64
	cursorsource.SetAfterKeyPass(src, func(table string) {
		if table != f.name("h") {
			strangers.Add(1)
		}
		passes.Add(1)
	})
	t.Cleanup(func() { require.Zero(t, strangers.Load(), "key passes of other tables") })
	r := start(t, src, "")
	resumed := "" // where r started
	read := func(ids ...string) func([]pipeline.Batch) bool {
		return func(bs []pipeline.Batch) bool {
			got := map[string]bool{}
			for _, c := range changesOf(bs) {
				if c.Op == pipeline.Read {
					got[c.Key["id"].(string)] = true
				}
			}
			for _, id := range ids {
				if !got[id] {
					return false
				}
			}
			return true
		}
	}
	// pass moves the clock to the next key pass and waits for it.
	pass := func(n int64) []pipeline.Change {
		before := len(r.col.snapshot())
		clock.Add(int64(every))
		eventually(t, "the key pass", func() bool { return passes.Load() >= n })
		require.Equal(t, n, passes.Load(), "one pass per DeleteCheck")
		bs := r.col.snapshot()
		var deletes []pipeline.Change
		for i, b := range bs[before:] {
			if !slices.ContainsFunc(b.Changes, func(c pipeline.Change) bool { return c.Op == pipeline.Delete }) {
				continue
			}
			require.LessOrEqual(t, len(b.Changes), 3, "BatchSize deletes a batch")
			progress := resumed
			if before+i > 0 {
				progress = bs[before+i-1].Position
			}
			require.NotEmpty(t, progress)
			require.Equal(t, progress, b.Position, "a batch of deletes keeps the progress")
			require.Equal(t, []string{"id", "v", "updated_at"}, columnNames(b.Tables[f.name("h")]))
			for _, c := range b.Changes {
				require.Equal(t, pipeline.Delete, c.Op, "a batch of a key pass holds deletes only")
				require.Equal(t, f.name("h"), c.Table)
				require.Nil(t, c.After)
				require.Len(t, c.Key, 1)
				deletes = append(deletes, c)
			}
		}
		return deletes
	}
	ids := func(cs []pipeline.Change) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Key["id"].(string))
		}
		slices.Sort(out)
		return out
	}

	r.wait("the first rows", read("1", "2", "3", "4", "5", "6", "7", "8", "9", "10"))
	require.Equal(t, int64(1), passes.Load(), "the first pass, before the first read, records the keys")
	require.Empty(t, ids(deletesOf(r.col.snapshot())))

	f.exec("DELETE FROM " + f.name("h") + " WHERE id IN (2, 5, 9)")
	for id := 11; id <= 14; id++ {
		f.exec("INSERT INTO "+f.name("h")+" (id, v) VALUES (?, ?)", id, id)
	}
	r.wait("the new rows", read("11", "12", "13", "14"))
	// Read, then deleted before any key pass saw it.
	f.exec("DELETE FROM " + f.name("h") + " WHERE id = 12")
	// Deleted and inserted again: not deleted.
	f.exec("DELETE FROM " + f.name("h") + " WHERE id = 7")
	f.exec("INSERT INTO " + f.name("h") + " (id, v) VALUES (7, 70)")
	require.Equal(t, []string{"12", "2", "5", "9"}, ids(pass(2)))

	// Nothing deleted since: nothing handed over, nothing deleted twice.
	require.Empty(t, pass(3))
	f.exec("DELETE FROM " + f.name("h") + " WHERE id IN (1, 7, 14)")
	require.Equal(t, []string{"1", "14", "7"}, ids(pass(4)))
	r.stop()
	require.Equal(t, []string{"1", "12", "14", "2", "5", "7", "9"}, ids(deletesOf(r.col.snapshot())), "every delete once")

	// Resumed: the first pass records the keys again, whatever was
	// deleted while the source was down.
	last := r.col.snapshot()
	f.exec("DELETE FROM " + f.name("h") + " WHERE id = 3")
	passes.Store(0)
	resumed = last[len(last)-1].Position
	r = start(t, src, resumed)
	eventually(t, "the first pass", func() bool { return passes.Load() >= 1 })
	f.exec("DELETE FROM " + f.name("h") + " WHERE id = 4")
	require.Equal(t, []string{"4"}, ids(pass(2)))
	r.stop()
}

func deletesOf(bs []pipeline.Batch) []pipeline.Change {
	var out []pipeline.Change
	for _, c := range changesOf(bs) {
		if c.Op == pipeline.Delete {
			out = append(out, c)
		}
	}
	return out
}
