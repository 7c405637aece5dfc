package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// between returns a time after every record stored so far and before every
// record stored afterwards, on a clock as coarse as it may be: it waits for
// the clock to move on, before and after the time it returns.
func between() time.Time {
	before := time.Now()
	for !time.Now().After(before) {
		runtime.Gosched()
	}
	mid := time.Now()
	for !time.Now().After(mid) {
		runtime.Gosched()
	}
	return mid
}

func setup(t *testing.T, eng *engine.Engine, cfg hub.Config) (*hub.Service, string) {
	t.Helper()
	ctx := context.Background()
	s, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Stop(context.Background())) })
	if cfg.Name == "" {
		cfg.Name = enginetest.Name("h")
	}
	_, err = s.Create(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Delete(context.Background(), cfg.Name) })
	return s, cfg.Name
}

// readAll reads partition p from the start until it has want events.
func readAll(t *testing.T, s *hub.Service, name string, p int, from hub.Start, want int) []hub.StoredEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := s.OpenReader(ctx, name, p, from)
	require.NoError(t, err)
	defer r.Close()
	var out []hub.StoredEvent
	for len(out) < want {
		evs, err := r.Next(ctx)
		require.NoError(t, err, "read %d of %d events", len(out), want)
		out = append(out, evs...)
	}
	return out
}

func TestHubLifecycle(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		s, name := setup(t, eng, hub.Config{})
		info, err := s.Get(ctx, name)
		require.NoError(t, err)
		require.Equal(t, hub.DefaultPartitions, info.Partitions)
		require.Equal(t, hub.DefaultRetention, info.RetentionAge)

		_, err = s.Create(ctx, hub.Config{Name: name})
		require.ErrorIs(t, err, hub.ErrExists)

		list, err := s.List(ctx)
		require.NoError(t, err)
		require.Contains(t, names(list), name)

		_, parts, err := s.Describe(ctx, name)
		require.NoError(t, err)
		require.Len(t, parts, 4)
		require.Equal(t, int64(-1), parts[0].LastSequence)

		require.NoError(t, s.Delete(ctx, name))
		_, err = s.Get(ctx, name)
		require.ErrorIs(t, err, hub.ErrNotFound)
		_, err = s.Publish(ctx, name, []hub.Event{{Body: []byte("x")}})
		require.ErrorIs(t, err, hub.ErrNotFound)
	})
}

func names(list []hub.Info) []string {
	var out []string
	for _, i := range list {
		out = append(out, i.Name)
	}
	return out
}

func TestCreateRejectsBadConfig(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	s, err := hub.Open(context.Background(), eng.JS, eng.MaxPayload(), hub.Options{})
	require.NoError(t, err)
	defer s.Stop(context.Background())
	for _, cfg := range []hub.Config{
		{Name: ""}, {Name: "has space"}, {Name: "a.b"}, {Name: "-lead"}, {Name: string(make([]byte, 65))},
		{Name: "ok", Partitions: -1}, {Name: "ok", Partitions: hub.MaxPartitions + 1},
		{Name: "ok", RetentionAge: time.Millisecond}, {Name: "ok", RetentionBytes: -5},
	} {
		_, err := s.Create(context.Background(), cfg)
		require.ErrorIs(t, err, hub.ErrInvalid, "config %+v", cfg)
	}
	list, err := s.List(context.Background())
	require.NoError(t, err)
	require.Empty(t, list, "a rejected create must write nothing")
}

func TestPublishAndReadBackInOrder(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		s, name := setup(t, eng, hub.Config{Partitions: 3})
		// Concurrent publishers, each with its own key, so that per-key
		// order can be checked and records get packed.
		const publishers, perPublisher = 8, 300
		var mu sync.Mutex
		positions := map[string][]hub.Position{}
		var wg sync.WaitGroup
		for w := range publishers {
			wg.Go(func() {
				key := fmt.Sprintf("key-%d", w)
				for i := 0; i < perPublisher; i += 10 {
					batch := make([]hub.Event, 10)
					for j := range batch {
						batch[j] = hub.Event{Body: fmt.Appendf(nil, "%s/%d", key, i+j), PartitionKey: key,
							Properties: map[string]string{"n": fmt.Sprint(i + j)}}
					}
					pos, err := s.Publish(ctx, name, batch)
					require.NoError(t, err)
					mu.Lock()
					positions[key] = append(positions[key], pos...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for key, pos := range positions {
			want := hub.PartitionForKey(key, 3)
			for i, p := range pos {
				require.Equal(t, want, p.Partition)
				if i > 0 {
					require.Greater(t, p.Sequence, pos[i-1].Sequence, "sequence numbers of one key increase")
				}
			}
		}
		total := 0
		_, parts, err := s.Describe(ctx, name)
		require.NoError(t, err)
		for p := range 3 {
			count := 0
			for _, pos := range positions {
				if pos[0].Partition == p {
					count += len(pos)
				}
			}
			evs := readAll(t, s, name, p, hub.Start{Kind: hub.StartEarliest}, count)
			require.Len(t, evs, count)
			next := map[string]int{}
			for i, e := range evs {
				if i > 0 {
					require.Greater(t, e.Sequence, evs[i-1].Sequence)
				}
				require.Equal(t, p, e.Partition)
				n := next[e.PartitionKey]
				require.Equal(t, fmt.Sprintf("%s/%d", e.PartitionKey, n), string(e.Body), "per-key order")
				require.Equal(t, fmt.Sprint(n), e.Properties["n"])
				require.False(t, e.EnqueuedTime.IsZero())
				next[e.PartitionKey] = n + 1
			}
			if count > 0 {
				require.Equal(t, evs[len(evs)-1].Sequence, parts[p].LastSequence)
			}
			total += count
		}
		require.Equal(t, publishers*perPublisher, total)
	})
}

func TestPublishPacksEventsIntoRecords(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	s, name := setup(t, eng, hub.Config{Partitions: 1})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 20 {
				_, err := s.Publish(context.Background(), name, []hub.Event{{Body: []byte("e")}})
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	_, parts, err := s.Describe(context.Background(), name)
	require.NoError(t, err)
	require.Less(t, parts[0].Records, uint64(1000), "concurrent publishes must share records")
	require.Len(t, readAll(t, s, name, 0, hub.Start{Kind: hub.StartEarliest}, 1000), 1000)
}

func TestPublishSplitsLargeCallsAcrossRecords(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	s, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{MaxRecordBytes: 4096})
	require.NoError(t, err)
	defer s.Stop(context.Background())
	name := enginetest.Name("split")
	_, err = s.Create(ctx, hub.Config{Name: name, Partitions: 1})
	require.NoError(t, err)
	batch := make([]hub.Event, 100)
	for i := range batch {
		batch[i] = hub.Event{Body: make([]byte, 300)}
		batch[i].Body[0] = byte(i)
	}
	pos, err := s.Publish(ctx, name, batch)
	require.NoError(t, err)
	_, parts, err := s.Describe(ctx, name)
	require.NoError(t, err)
	require.Greater(t, parts[0].Records, uint64(5))
	evs := readAll(t, s, name, 0, hub.Start{Kind: hub.StartEarliest}, 100)
	for i, e := range evs {
		require.Equal(t, byte(i), e.Body[0])
		require.Equal(t, pos[i].Sequence, e.Sequence)
	}
}

// A reader's prefetch is bounded in bytes; the bound must still let the
// largest record the server accepts through, or the reader stalls on it.
func TestReaderReadsTheLargestEventAHubTakes(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		s, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{MaxEventBytes: 1 << 30, MaxRecordBytes: 1 << 30})
		require.NoError(t, err)
		defer s.Stop(context.Background())
		name := enginetest.Name("big")
		_, err = s.Create(ctx, hub.Config{Name: name, Partitions: 1})
		require.NoError(t, err)
		defer s.Delete(context.Background(), name)
		big := make([]byte, hub.MaxEventBytesFor(eng.MaxPayload())) // the largest event a hub takes on this server
		big[len(big)-1] = 7
		_, err = s.Publish(ctx, name, []hub.Event{{Body: []byte("small")}, {Body: big}, {Body: []byte("after")}})
		require.NoError(t, err)
		evs := readAll(t, s, name, 0, hub.Start{Kind: hub.StartEarliest}, 3)
		require.Equal(t, "small", string(evs[0].Body))
		require.Equal(t, big, evs[1].Body)
		require.Equal(t, "after", string(evs[2].Body))
	})
}

func TestPublishRejectsBadEventsAndWritesNothing(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	s, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{MaxEventBytes: 1000})
	require.NoError(t, err)
	defer s.Stop(context.Background())
	name := enginetest.Name("bad")
	_, err = s.Create(ctx, hub.Config{Name: name, Partitions: 2})
	require.NoError(t, err)

	_, err = s.Publish(ctx, name, []hub.Event{{Body: []byte("ok")}, {Body: make([]byte, 1001)}})
	require.ErrorIs(t, err, hub.ErrTooLarge)
	require.ErrorContains(t, err, "event 1 is 1001 bytes, the limit is 1000")
	_, err = s.Publish(ctx, name, []hub.Event{{Body: []byte("ok")}, {Body: []byte("x"), Partition: 2, HasPartition: true}})
	require.ErrorIs(t, err, hub.ErrInvalid)
	_, err = s.Publish(ctx, "no-such-hub", []hub.Event{{Body: []byte("x")}})
	require.ErrorIs(t, err, hub.ErrNotFound)

	_, parts, err := s.Describe(ctx, name)
	require.NoError(t, err)
	for _, p := range parts {
		require.Zero(t, p.Records, "a rejected publish must write nothing")
	}
}

func TestReaderStartPositions(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	s, name := setup(t, eng, hub.Config{Partitions: 1})
	var all []hub.Position
	for i := range 5 {
		pos, err := s.Publish(ctx, name, []hub.Event{{Body: fmt.Appendf(nil, "a%d", i)}, {Body: fmt.Appendf(nil, "b%d", i)}})
		require.NoError(t, err)
		all = append(all, pos...)
	}
	mid := between()
	pos, err := s.Publish(ctx, name, []hub.Event{{Body: []byte("late")}})
	require.NoError(t, err)
	all = append(all, pos...)

	// After a sequence in the middle of a record: the rest of that record.
	evs := readAll(t, s, name, 0, hub.Start{Kind: hub.StartAfter, After: all[2].Sequence}, 8)
	require.Equal(t, "b1", string(evs[0].Body))
	require.Equal(t, all[3].Sequence, evs[0].Sequence)
	// After nothing (-1): everything.
	evs = readAll(t, s, name, 0, hub.Start{Kind: hub.StartAfter, After: -1}, 11)
	require.Equal(t, "a0", string(evs[0].Body))
	// From a time.
	evs = readAll(t, s, name, 0, hub.Start{Kind: hub.StartTime, Time: mid}, 1)
	require.Equal(t, "late", string(evs[0].Body))

	// Latest: only what is stored after opening (OpenReader returns once
	// its consumer exists, with its start fixed).
	r, err := s.OpenReader(ctx, name, 0, hub.Start{Kind: hub.StartLatest})
	require.NoError(t, err)
	defer r.Close()
	_, err = s.Publish(ctx, name, []hub.Event{{Body: []byte("new")}})
	require.NoError(t, err)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got, err := r.Next(rctx)
	require.NoError(t, err)
	require.Equal(t, "new", string(got[0].Body))
}

func TestCheckpointCompareAndSet(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		s, name := setup(t, eng, hub.Config{Partitions: 2})
		cp, rev, err := s.GetCheckpoint(ctx, name, hub.DefaultGroup, 1)
		require.NoError(t, err)
		require.Zero(t, rev)
		require.Equal(t, int64(-1), cp.Sequence)

		rev1, err := s.PutCheckpoint(ctx, name, hub.DefaultGroup, 1, hub.Checkpoint{Sequence: 10, Owner: "a"}, 0)
		require.NoError(t, err)
		_, err = s.PutCheckpoint(ctx, name, hub.DefaultGroup, 1, hub.Checkpoint{Sequence: 11, Owner: "b"}, 0)
		require.ErrorIs(t, err, hub.ErrCheckpointMoved, "create loses against an existing checkpoint")
		rev2, err := s.PutCheckpoint(ctx, name, hub.DefaultGroup, 1, hub.Checkpoint{Sequence: 20, Owner: "a"}, rev1)
		require.NoError(t, err)
		_, err = s.PutCheckpoint(ctx, name, hub.DefaultGroup, 1, hub.Checkpoint{Sequence: 30, Owner: "b"}, rev1)
		require.ErrorIs(t, err, hub.ErrCheckpointMoved, "a stale revision loses")
		cp, rev, err = s.GetCheckpoint(ctx, name, hub.DefaultGroup, 1)
		require.NoError(t, err)
		require.Equal(t, rev2, rev)
		require.Equal(t, int64(20), cp.Sequence)
		// Groups are independent.
		cp, _, err = s.GetCheckpoint(ctx, name, "other", 1)
		require.NoError(t, err)
		require.Equal(t, int64(-1), cp.Sequence)
	})
}

func TestReplayAndLag(t *testing.T) {
	t.Parallel()
	enginetest.Each(t, func(t *testing.T, eng *engine.Engine) {
		ctx := context.Background()
		s, name := setup(t, eng, hub.Config{Partitions: 1})
		var pos []hub.Position
		var mid time.Time
		for i := range 10 {
			if i == 6 {
				mid = between()
			}
			p, err := s.Publish(ctx, name, []hub.Event{{Body: []byte{byte(i)}}, {Body: []byte{byte(i)}}})
			require.NoError(t, err)
			pos = append(pos, p...)
		}
		lag, err := s.GroupLag(ctx, name, hub.DefaultGroup)
		require.NoError(t, err)
		require.Equal(t, int64(20), lag[0].Events)
		require.Equal(t, int64(10), lag[0].Records)
		require.Equal(t, pos[19].Sequence, lag[0].LastSequence)

		_, err = s.PutCheckpoint(ctx, name, hub.DefaultGroup, 0, hub.Checkpoint{Sequence: pos[14].Sequence}, 0)
		require.NoError(t, err)
		lag, err = s.GroupLag(ctx, name, hub.DefaultGroup)
		require.NoError(t, err)
		require.Equal(t, int64(5), lag[0].Events, "exact count from the middle of a record")

		res, err := s.Replay(ctx, name, hub.DefaultGroup, hub.ReplayTarget{Time: mid}, 0)
		require.NoError(t, err)
		require.Equal(t, []hub.ReplayResult{{Partition: 0, Before: pos[14].Sequence, After: pos[12].Sequence - 1}}, res)
		lag, err = s.GroupLag(ctx, name, hub.DefaultGroup)
		require.NoError(t, err)
		require.Equal(t, int64(8), lag[0].Events)

		_, err = s.Replay(ctx, name, hub.DefaultGroup, hub.ReplayTarget{Sequences: map[int]int64{0: pos[3].Sequence}}, 0)
		require.NoError(t, err)
		lag, err = s.GroupLag(ctx, name, hub.DefaultGroup)
		require.NoError(t, err)
		require.Equal(t, int64(17), lag[0].Events)

		_, err = s.Replay(ctx, name, hub.DefaultGroup, hub.ReplayTarget{Earliest: true}, 0)
		require.NoError(t, err)
		lag, err = s.GroupLag(ctx, name, hub.DefaultGroup)
		require.NoError(t, err)
		require.Equal(t, int64(20), lag[0].Events)

		_, err = s.Replay(ctx, name, hub.DefaultGroup, hub.ReplayTarget{}, 0)
		require.ErrorIs(t, err, hub.ErrInvalid)
		_, err = s.Replay(ctx, name, hub.DefaultGroup, hub.ReplayTarget{Sequences: map[int]int64{5: 1}}, 0)
		require.ErrorIs(t, err, hub.ErrInvalid)
		_, err = s.Replay(ctx, name, "bad group!", hub.ReplayTarget{Earliest: true}, 0)
		require.ErrorIs(t, err, hub.ErrInvalid)
	})
}

func TestRepairRecreatesMissingPartitions(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	s, name := setup(t, eng, hub.Config{Partitions: 3})
	// Simulate a crash between storing the definition and creating the
	// last partition.
	require.NoError(t, eng.JS.DeleteStream(ctx, hub.StreamName(name, 2)))
	_, _, err := s.Describe(ctx, name)
	require.ErrorIs(t, err, hub.ErrNotFound)
	info, err := s.Repair(ctx, name)
	require.NoError(t, err)
	require.Equal(t, 3, info.Partitions)
	_, err = s.Publish(ctx, name, []hub.Event{{Body: []byte("x"), Partition: 2, HasPartition: true}})
	require.NoError(t, err)
	_, err = s.Repair(ctx, name)
	require.NoError(t, err, "repair is idempotent")
	_, err = s.Repair(ctx, "missing")
	require.ErrorIs(t, err, hub.ErrNotFound)
}

// TestReplayRefusesPastTheEnd: a replay to a sequence past a partition's
// end, or to a time out of range, is refused with what is wrong, and
// moves no checkpoint.
func TestReplayRefusesPastTheEnd(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	s, name := setup(t, eng, hub.Config{Partitions: 2})
	pos, err := s.Publish(ctx, name, []hub.Event{{Body: []byte("a"), HasPartition: true}, {Body: []byte("b"), HasPartition: true}})
	require.NoError(t, err)
	last := pos[1].Sequence
	rev0, err := s.PutCheckpoint(ctx, name, hub.DefaultGroup, 0, hub.Checkpoint{Sequence: pos[0].Sequence}, 0)
	require.NoError(t, err)

	for _, c := range []struct {
		target hub.ReplayTarget
		parts  []string
	}{
		{hub.ReplayTarget{Sequences: map[int]int64{0: last + 2}}, []string{
			fmt.Sprintf("replay sequence %d for partition 0", last+2), fmt.Sprintf("past the partition's last event, sequence %d", last),
			fmt.Sprintf("up to %d", last+1)}},
		{hub.ReplayTarget{Sequences: map[int]int64{0: 1, 1: 1 << 40}}, []string{
			"replay sequence 1099511627776 for partition 1", "holds no events", fmt.Sprintf("next event will be sequence %d", hub.SequenceOf(1, 0))}},
		{hub.ReplayTarget{Time: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)}, []string{"replay time 1969-12-31T00:00:00Z", "before 1970"}},
		{hub.ReplayTarget{Time: time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)}, []string{"before 1970"}},
	} {
		_, err := s.Replay(ctx, name, hub.DefaultGroup, c.target, 0)
		require.ErrorIs(t, err, hub.ErrInvalid, "%+v", c.target)
		for _, p := range c.parts {
			require.ErrorContains(t, err, p)
		}
	}
	cp, rev, err := s.GetCheckpoint(ctx, name, hub.DefaultGroup, 0)
	require.NoError(t, err)
	require.Equal(t, rev0, rev, "no checkpoint moved")
	require.Equal(t, pos[0].Sequence, cp.Sequence)
	_, rev, err = s.GetCheckpoint(ctx, name, hub.DefaultGroup, 1)
	require.NoError(t, err)
	require.Zero(t, rev)

	// Up to the end is fine: right after the last event, or on an empty
	// partition its next record's first sequence.
	res, err := s.Replay(ctx, name, hub.DefaultGroup, hub.ReplayTarget{Sequences: map[int]int64{0: last + 1, 1: hub.SequenceOf(1, 0)}}, 0)
	require.NoError(t, err)
	require.Equal(t, []hub.ReplayResult{{Partition: 0, Before: pos[0].Sequence, After: last}, {Partition: 1, Before: -1, After: hub.SequenceOf(1, 0) - 1}}, res)
}

// TestGroups: a group exists once it has a checkpoint in some partition;
// DefaultGroup always exists.
func TestGroups(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	s, name := setup(t, eng, hub.Config{Partitions: 2})
	_, other := setup(t, eng, hub.Config{Partitions: 1})

	groups, err := s.Groups(ctx, name)
	require.NoError(t, err)
	require.Empty(t, groups)
	require.NoError(t, s.CheckGroup(ctx, name, hub.DefaultGroup))
	err = s.CheckGroup(ctx, name, "audit")
	require.ErrorIs(t, err, hub.ErrGroupNotFound)
	require.ErrorContains(t, err, "consumer group audit of hub "+name+" not found")
	require.ErrorContains(t, err, "it has none yet")

	for _, c := range []struct {
		hub, group string
		p          int
	}{{name, "audit", 1}, {name, "audit", 0}, {name, "$Billing", 1}, {other, "elsewhere", 0}} {
		_, err = s.PutCheckpoint(ctx, c.hub, c.group, c.p, hub.Checkpoint{Sequence: 3}, 0)
		require.NoError(t, err)
	}
	groups, err = s.Groups(ctx, name)
	require.NoError(t, err)
	require.Equal(t, []string{"$Billing", "audit"}, groups)
	require.NoError(t, s.CheckGroup(ctx, name, "audit"))
	require.NoError(t, s.CheckGroup(ctx, name, "$Billing"))
	err = s.CheckGroup(ctx, name, "audt")
	var gerr *hub.GroupNotFoundError
	require.ErrorAs(t, err, &gerr)
	require.Equal(t, []string{"$Billing", "audit"}, gerr.Groups)
	require.ErrorContains(t, err, "its groups are $Billing, audit")
	require.ErrorIs(t, s.CheckGroup(ctx, name, "bad group!"), hub.ErrInvalid)
	require.ErrorIs(t, s.CheckGroup(ctx, "missing", "audit"), hub.ErrNotFound)
}

func TestStopStoresAcceptedPublishesAndRefusesTheRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := enginetest.Embedded(t)
	s, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{})
	require.NoError(t, err)
	name := enginetest.Name("stop")
	_, err = s.Create(ctx, hub.Config{Name: name, Partitions: 1})
	require.NoError(t, err)

	const publishers = 50
	results := make(chan error, publishers)
	begun := make(chan struct{}, publishers)
	for i := range publishers {
		go func() {
			begun <- struct{}{}
			_, err := s.Publish(ctx, name, []hub.Event{{Body: fmt.Appendf(nil, "%d", i)}})
			results <- err
		}()
	}
	for range publishers / 2 {
		<-begun
	}
	require.NoError(t, s.Stop(ctx))
	select {
	case <-s.Stopped():
	default:
		t.Fatal("Stopped is not closed after Stop")
	}
	stored := 0
	for range publishers {
		err := <-results
		if err == nil {
			stored++
			continue
		}
		require.ErrorIs(t, err, service.ErrStopped)
	}
	require.NoError(t, s.Stop(ctx), "Stop twice is safe")

	other, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, other.Stop(context.Background())) })
	lags, err := other.GroupLag(ctx, name, hub.DefaultGroup)
	require.NoError(t, err)
	require.EqualValues(t, stored, lags[0].Events, "every publish that succeeded is stored, and no other")
}

// A server whose max_payload cannot carry Sluice's records is refused at
// start, saying what to change.
func TestOpenRefusesATinyMaxPayload(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	_, err := hub.Open(context.Background(), eng.JS, 128<<10, hub.Options{})
	require.ErrorContains(t, err, "max_payload is 131072 bytes; Sluice needs at least 262144")
	require.ErrorContains(t, err, "raise max_payload")
}

// A partition the engine lost while consumers read it is recreated
// numbering its records after every checkpoint, so that no group skips a
// new event; a publish that finds it missing recreates it and answers
// unavailable (nothing stored), and the next one stores.
func TestLostPartitionIsRestoredAfterEveryKnownPosition(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	s, name := setup(t, eng, hub.Config{Partitions: 2})
	var last hub.Position
	for i := range 5 {
		pos, err := s.Publish(ctx, name, []hub.Event{{Body: fmt.Appendf(nil, "e%d", i), Partition: 1, HasPartition: true}})
		require.NoError(t, err)
		last = pos[0]
	}
	_, err := s.PutCheckpoint(ctx, name, "g", 1, hub.Checkpoint{Sequence: last.Sequence}, 0)
	require.NoError(t, err)
	lastRec, _ := hub.SplitSequence(last.Sequence)

	// The partition's storage is lost.
	require.NoError(t, eng.JS.DeleteStream(ctx, hub.StreamName(name, 1)))
	_, err = s.Publish(ctx, name, []hub.Event{{Body: []byte("lost"), Partition: 1, HasPartition: true}})
	require.ErrorIs(t, err, hub.ErrUnavailable, "the partition was missing: nothing stored, retry")
	require.ErrorContains(t, err, "recreated")
	pos, err := s.Publish(ctx, name, []hub.Event{{Body: []byte("after"), Partition: 1, HasPartition: true}})
	require.NoError(t, err)
	rec, _ := hub.SplitSequence(pos[0].Sequence)
	require.Greater(t, rec, lastRec, "a new event is numbered after the group's checkpoint")
	got := readAll(t, s, name, 1, hub.Start{Kind: hub.StartAfter, After: last.Sequence}, 1)
	require.Equal(t, "after", string(got[0].Body), "the group reads the new event")

	// Restoring a partition that exists does nothing.
	restored, err := s.RestorePartition(ctx, name, 1, 0)
	require.NoError(t, err)
	require.False(t, restored)
	// A deleted hub is never restored.
	require.NoError(t, s.Delete(ctx, name))
	_, err = s.RestorePartition(ctx, name, 1, 0)
	require.ErrorIs(t, err, hub.ErrNotFound)
	_, err = eng.JS.Stream(ctx, hub.StreamName(name, 1))
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
}

// A deletion interrupted after it marked the hub (its instance died) hides
// the hub, is not taken for a loss, and is finished by the next create of
// the name, whose hub starts empty.
func TestInterruptedDeletionIsFinishedByCreate(t *testing.T) {
	t.Parallel()
	eng := enginetest.Embedded(t)
	ctx := context.Background()
	s, name := setup(t, eng, hub.Config{Partitions: 1})
	_, err := s.Publish(ctx, name, []hub.Event{{Body: []byte("old")}})
	require.NoError(t, err)
	kv, err := eng.JS.KeyValue(ctx, "sluice-hubs")
	require.NoError(t, err)
	e, err := kv.Get(ctx, name)
	require.NoError(t, err)
	var def map[string]any
	require.NoError(t, json.Unmarshal(e.Value(), &def))
	def["deleting"] = true
	marked, _ := json.Marshal(def)
	_, err = kv.Put(ctx, name, marked)
	require.NoError(t, err)

	_, err = s.Get(ctx, name)
	require.ErrorIs(t, err, hub.ErrNotFound)
	list, err := s.List(ctx)
	require.NoError(t, err)
	for _, info := range list {
		require.NotEqual(t, name, info.Name)
	}
	_, err = s.RestorePartition(ctx, name, 0, 0)
	require.ErrorIs(t, err, hub.ErrNotFound, "a hub being deleted is not restored")

	_, err = s.Create(ctx, hub.Config{Name: name, Partitions: 1})
	require.NoError(t, err)
	info, parts, err := s.Describe(ctx, name)
	require.NoError(t, err)
	require.False(t, info.Deleting)
	require.Equal(t, uint64(0), parts[0].Records, "the new hub has none of the old one's events")
}
