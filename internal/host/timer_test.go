package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/engine/enginetest"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/resilience"
)

// every fires at each multiple of d since the epoch.
type every time.Duration

func (e every) Next(t time.Time) time.Time {
	d := time.Duration(e)
	return t.Truncate(d).Add(d).Local() // the host gives times in UTC whatever the schedule's zone
}
func (e every) String() string { return time.Duration(e).String() }

// timerRuns records timer invocations from any number of hosts.
type timerRuns struct {
	mu   sync.Mutex
	runs []host.TimerInfo
	by   []string
	fail int // fail this many invocations first
}

func (r *timerRuns) handler(instance string) host.TimerHandler {
	return func(_ context.Context, info host.TimerInfo) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail > 0 {
			r.fail--
			return errors.New("not yet")
		}
		r.runs = append(r.runs, info)
		r.by = append(r.by, instance)
		return nil
	}
}

func (r *timerRuns) snapshot() ([]host.TimerInfo, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]host.TimerInfo(nil), r.runs...), append([]string(nil), r.by...)
}

type timerEnv struct {
	state jetstream.KeyValue
	name  string
}

func newTimerEnv(t *testing.T) timerEnv {
	eng := enginetest.Embedded(t)
	kv, err := eng.JS.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "timers", History: 1})
	require.NoError(t, err)
	return timerEnv{state: kv, name: enginetest.Name("tick")}
}

func (e timerEnv) start(t *testing.T, instance string, f host.TimerFunction) *host.Host {
	t.Helper()
	h, err := host.New(host.Config{InstanceID: instance, TimerState: e.state, DeadLetters: &memSink{}, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, h.RegisterTimer(f))
	require.NoError(t, h.Start(context.Background()))
	t.Cleanup(func() { h.Stop(context.Background()) })
	return h
}

// TestTimerRunsEachOccurrenceOnceAcrossInstances: three instances share a
// timer; each occurrence runs at most once, in order, with the status of
// the one before. How late an occurrence runs depends on the machine's
// load, and occurrences that pass while the one before runs are skipped
// (see TimerTrigger): so the test does not require every occurrence, only
// that any skipped one had passed before the run before it was recorded.
// One that came later and was lost would be a bug.
func TestTimerRunsEachOccurrenceOnceAcrossInstances(t *testing.T) {
	e := newTimerEnv(t)
	runs := &timerRuns{}
	const period = 200 * time.Millisecond
	sched := every(period)
	for _, id := range []string{"a", "b", "c"} {
		e.start(t, id, host.TimerFunction{Name: e.name, Trigger: host.TimerTrigger{Schedule: sched, UseMonitor: true}, Handler: runs.handler(id)})
	}
	eventually(t, "ten occurrences", func() bool { r, _ := runs.snapshot(); return len(r) >= 10 })
	r, by := runs.snapshot()
	for i, info := range r {
		require.Equal(t, info.Scheduled, info.Scheduled.Truncate(period), "an occurrence of the schedule")
		require.Equal(t, info.Scheduled.Add(period), info.Next)
		require.Equal(t, time.UTC, info.Scheduled.Location())
		if i == 0 {
			continue
		}
		prev := r[i-1]
		require.True(t, prev.Scheduled.Before(info.Scheduled), "occurrence %s ran after %s: twice, or out of order", info.Scheduled, prev.Scheduled)
		require.Equal(t, prev.Scheduled, info.Last, "the status gives the last run")
		// info.LastUpdated is when prev's run was recorded.
		require.False(t, sched.Next(info.LastUpdated).UTC().Before(info.Scheduled),
			"occurrence %s was skipped although it came after %s's run was recorded (at %s)",
			sched.Next(info.LastUpdated).UTC(), prev.Scheduled, info.LastUpdated)
	}
	require.Len(t, by, len(r))
}

// TestTimerRunsAMissedOccurrenceOnceWhenBack: two occurrences pass while no
// instance runs; the next instance runs the recorded one once, late, and
// none of the others before its own start.
func TestTimerRunsAMissedOccurrenceOnceWhenBack(t *testing.T) {
	e := newTimerEnv(t)
	runs := &timerRuns{}
	sched := every(time.Second)
	f := host.TimerFunction{Name: e.name, Trigger: host.TimerTrigger{Schedule: sched, UseMonitor: true}, Handler: runs.handler("a")}
	h := e.start(t, "a", f)
	eventually(t, "a first run", func() bool { r, _ := runs.snapshot(); return len(r) >= 1 })
	h.Stop(context.Background())
	r, _ := runs.snapshot()
	before := len(r)
	missed := r[before-1].Next // recorded as next, then every instance was down
	eventually(t, "two occurrences to pass", func() bool { return time.Now().After(missed.Add(time.Second)) })

	back := time.Now().UTC()
	e.start(t, "b", host.TimerFunction{Name: e.name, Trigger: host.TimerTrigger{Schedule: sched, UseMonitor: true}, Handler: runs.handler("b")})
	// An occurrence after b started has run: b is past the missed ones,
	// and a second past-due run of them would have come before it.
	eventually(t, "an occurrence after the restart", func() bool {
		all, _ := runs.snapshot()
		return len(all) > before && all[len(all)-1].Scheduled.After(back)
	})
	all, by := runs.snapshot()
	var late []host.TimerInfo
	for i, info := range all[before:] {
		require.Equal(t, "b", by[before+i])
		if info.Scheduled.Before(back) {
			late = append(late, info)
		}
	}
	require.Len(t, late, 1, "missed occurrences run once, not once each")
	require.Equal(t, missed, late[0].Scheduled)
	require.True(t, late[0].IsPastDue)
}

func TestTimerWithoutMonitorSkipsMissedOccurrences(t *testing.T) {
	e := newTimerEnv(t)
	runs := &timerRuns{}
	f := host.TimerFunction{Name: e.name, Trigger: host.TimerTrigger{Schedule: every(time.Second)}, Handler: runs.handler("a")}
	h := e.start(t, "a", f)
	eventually(t, "a first run", func() bool { r, _ := runs.snapshot(); return len(r) >= 1 })
	h.Stop(context.Background())
	r, _ := runs.snapshot()
	before := len(r)
	missed := r[before-1].Scheduled.Add(time.Second)
	eventually(t, "an occurrence to pass", func() bool { return time.Now().After(missed) })
	back := time.Now().UTC()
	e.start(t, "b", f)
	eventually(t, "a run after the restart", func() bool { r, _ := runs.snapshot(); return len(r) > before })
	all, _ := runs.snapshot()
	for _, info := range all {
		require.False(t, info.IsPastDue)
		require.True(t, info.Last.IsZero() && info.Next.IsZero(), "no status without the monitor")
	}
	require.True(t, all[before].Scheduled.After(back), "the missed occurrence %s is not run", missed)
}

func TestTimerRunOnStartupAndRetries(t *testing.T) {
	e := newTimerEnv(t)
	runs := &timerRuns{fail: 2}
	retry := resilience.Retry{Strategy: resilience.FixedDelay, MaxRetryCount: 3, Delay: 10 * time.Millisecond}
	e.start(t, "a", host.TimerFunction{Name: e.name, Retry: retry,
		Trigger: host.TimerTrigger{Schedule: every(time.Hour), RunOnStartup: true}, Handler: runs.handler("a")})
	eventually(t, "the startup run, after two failures", func() bool { r, _ := runs.snapshot(); return len(r) == 1 })
	r, _ := runs.snapshot()
	require.True(t, r[0].Startup)
}

func TestTimerGivesUpIntoADeadLetter(t *testing.T) {
	e := newTimerEnv(t)
	runs := &timerRuns{fail: 1 << 30}
	sink := &memSink{}
	h, err := host.New(host.Config{InstanceID: "a", TimerState: e.state, DeadLetters: sink, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, h.RegisterTimer(host.TimerFunction{Name: e.name, Handler: runs.handler("a"),
		Retry:   resilience.Retry{Strategy: resilience.FixedDelay, MaxRetryCount: 1, Delay: 10 * time.Millisecond},
		Trigger: host.TimerTrigger{Schedule: every(time.Hour), RunOnStartup: true}}))
	require.NoError(t, h.Start(context.Background()))
	t.Cleanup(func() { h.Stop(context.Background()) })
	eventually(t, "the dead letter", func() bool { return len(sink.all()) == 1 })
	dl := sink.all()[0]
	require.Equal(t, "timer", dl.Source.Kind)
	require.Equal(t, 2, dl.Attempts)
	require.Equal(t, "not yet", dl.Reason)
	require.Contains(t, string(dl.Body), `"Startup":true`)
}

// at fires at t0, then hourly.
type at time.Time

func (a at) Next(t time.Time) time.Time {
	t0 := time.Time(a)
	for !t0.After(t) {
		t0 = t0.Add(time.Hour)
	}
	return t0
}
func (a at) String() string { return "at " + time.Time(a).Format(time.RFC3339Nano) }

// TestTimerClaimOfADeadInstanceLapses: an instance that claimed an
// occurrence and died leaves its claim in the shared state; once the claim
// lapses, another instance runs the occurrence, late and past due, once.
func TestTimerClaimOfADeadInstanceLapses(t *testing.T) {
	e := newTimerEnv(t)
	ctx := context.Background()
	t0 := time.Now().Add(700 * time.Millisecond).Truncate(time.Millisecond).UTC()
	lapse := t0.Add(time.Second)
	put := func(name string, st map[string]any) {
		b, err := json.Marshal(st)
		require.NoError(t, err)
		_, err = e.state.Put(ctx, name, b)
		require.NoError(t, err)
	}
	// What a claimant leaves when it dies while running t0.
	put(e.name, map[string]any{"next": t0, "owner": "dead", "occurrence": t0, "until": lapse})
	runs := &timerRuns{}
	var ranAt time.Time
	handler := runs.handler("b")
	e.start(t, "b", host.TimerFunction{Name: e.name, Trigger: host.TimerTrigger{Schedule: at(t0), UseMonitor: true},
		Handler: func(ctx context.Context, info host.TimerInfo) error {
			ranAt = time.Now()
			return handler(ctx, info)
		}})

	eventually(t, "the lapsed occurrence", func() bool { r, _ := runs.snapshot(); return len(r) == 1 })
	r, by := runs.snapshot()
	require.Equal(t, []string{"b"}, by)
	require.Equal(t, t0, r[0].Scheduled)
	require.True(t, r[0].IsPastDue, "it runs late")
	require.False(t, ranAt.Before(lapse), "not while the dead instance's claim held")
	eventually(t, "the run recorded", func() bool {
		st, err := e.state.Get(ctx, e.name)
		require.NoError(t, err)
		return strings.Contains(string(st.Value()), `"last":"`+t0.Format(time.RFC3339Nano)+`"`)
	})
}

// times fires at the given times.
type times []time.Time

func (ts times) Next(t time.Time) time.Time {
	for _, x := range ts {
		if x.After(t) {
			return x
		}
	}
	return time.Time{}
}
func (ts times) String() string { return fmt.Sprint([]time.Time(ts)) }

// TestTimerOccurrenceCompletedByItsClaimantIsNotRunAgain: another instance
// claimed t0 and completes it; this instance, which saw the claim or the
// completion, does not run t0, and runs the next occurrence.
func TestTimerOccurrenceCompletedByItsClaimantIsNotRunAgain(t *testing.T) {
	e := newTimerEnv(t)
	ctx := context.Background()
	t0 := time.Now().Add(time.Second).Truncate(time.Millisecond).UTC()
	next := t0.Add(300 * time.Millisecond)
	put := func(st map[string]any) {
		b, err := json.Marshal(st)
		require.NoError(t, err)
		_, err = e.state.Put(ctx, e.name, b)
		require.NoError(t, err)
	}
	// The claim of a live instance running t0. It lasts long enough that
	// this test completes t0 before it could lapse, however slow the
	// machine: a lapsed claim would rightly let c run t0.
	put(map[string]any{"next": t0, "owner": "alive", "occurrence": t0, "until": t0.Add(5 * time.Second)})
	runs := &timerRuns{}
	e.start(t, "c", host.TimerFunction{Name: e.name, Trigger: host.TimerTrigger{Schedule: times{t0, next}, UseMonitor: true}, Handler: runs.handler("c")})
	put(map[string]any{"last": t0, "next": next}) // the claimant completes t0

	// The next occurrence ran: c is past t0, which it would have run first.
	eventually(t, "the next occurrence", func() bool { r, _ := runs.snapshot(); return len(r) == 1 })
	r, _ := runs.snapshot()
	require.Equal(t, next, r[0].Scheduled, "t0 was not run again")
	require.Equal(t, t0, r[0].Last)
}
