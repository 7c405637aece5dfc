package host_test

import (
	"context"
	"encoding/json"
	"errors"
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

func TestTimerRunsEachOccurrenceOnceAcrossInstances(t *testing.T) {
	e := newTimerEnv(t)
	runs := &timerRuns{}
	sched := every(200 * time.Millisecond)
	for _, id := range []string{"a", "b", "c"} {
		e.start(t, id, host.TimerFunction{Name: e.name, Trigger: host.TimerTrigger{Schedule: sched, UseMonitor: true}, Handler: runs.handler(id)})
	}
	eventually(t, "ten occurrences", func() bool { r, _ := runs.snapshot(); return len(r) >= 10 })
	r, by := runs.snapshot()
	seen := map[time.Time]bool{}
	for i, info := range r {
		require.False(t, seen[info.Scheduled], "occurrence %s ran twice", info.Scheduled)
		seen[info.Scheduled] = true
		require.Equal(t, info.Scheduled, info.Scheduled.Truncate(200*time.Millisecond), "an occurrence of the schedule")
		if i > 0 {
			require.Equal(t, r[i-1].Scheduled.Add(200*time.Millisecond), info.Scheduled, "no occurrence skipped while nothing was running long")
			require.Equal(t, r[i-1].Scheduled, info.Last, "the status gives the last run")
		}
		require.Equal(t, info.Scheduled.Add(200*time.Millisecond), info.Next)
		require.Equal(t, time.UTC, info.Scheduled.Location())
		require.False(t, info.IsPastDue)
	}
	require.NotEmpty(t, by)
}

func TestTimerRunsAMissedOccurrenceOnceWhenBack(t *testing.T) {
	e := newTimerEnv(t)
	runs := &timerRuns{}
	sched := every(time.Second)
	f := host.TimerFunction{Name: e.name, Trigger: host.TimerTrigger{Schedule: sched, UseMonitor: true}, Handler: runs.handler("a")}
	h := e.start(t, "a", f)
	eventually(t, "a first run", func() bool { r, _ := runs.snapshot(); return len(r) >= 1 })
	h.Stop(context.Background())
	r, _ := runs.snapshot()
	missed := r[len(r)-1].Next // recorded as next, then every instance was down
	time.Sleep(time.Until(missed.Add(1500 * time.Millisecond)))

	e.start(t, "b", host.TimerFunction{Name: e.name, Trigger: host.TimerTrigger{Schedule: sched, UseMonitor: true}, Handler: runs.handler("b")})
	eventually(t, "the missed occurrence", func() bool {
		all, _ := runs.snapshot()
		for _, info := range all {
			if info.IsPastDue {
				return true
			}
		}
		return false
	})
	time.Sleep(300 * time.Millisecond) // room for a wrong second past-due run
	all, by := runs.snapshot()
	var pastDue []host.TimerInfo
	for i, info := range all {
		if info.IsPastDue {
			pastDue = append(pastDue, info)
			require.Equal(t, "b", by[i])
		}
	}
	require.Len(t, pastDue, 1, "missed occurrences run once, not once each")
	require.Equal(t, missed, pastDue[0].Scheduled)
}

func TestTimerWithoutMonitorSkipsMissedOccurrences(t *testing.T) {
	e := newTimerEnv(t)
	runs := &timerRuns{}
	f := host.TimerFunction{Name: e.name, Trigger: host.TimerTrigger{Schedule: every(time.Second)}, Handler: runs.handler("a")}
	h := e.start(t, "a", f)
	eventually(t, "a first run", func() bool { r, _ := runs.snapshot(); return len(r) >= 1 })
	h.Stop(context.Background())
	time.Sleep(1500 * time.Millisecond)
	e.start(t, "b", f)
	eventually(t, "a run after the restart", func() bool { r, _ := runs.snapshot(); return len(r) >= 2 })
	all, _ := runs.snapshot()
	for _, info := range all {
		require.False(t, info.IsPastDue)
		require.True(t, info.Last.IsZero() && info.Next.IsZero(), "no status without the monitor")
	}
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
// An occurrence whose claimant completes it is not run again.
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

	// A claimant that is alive and completes t0: nobody else runs it.
	completed := enginetest.Name("done")
	put(completed, map[string]any{"next": t0, "owner": "alive", "occurrence": t0, "until": lapse})
	other := &timerRuns{}
	e.start(t, "c", host.TimerFunction{Name: completed, Trigger: host.TimerTrigger{Schedule: at(t0), UseMonitor: true}, Handler: other.handler("c")})
	put(completed, map[string]any{"last": t0, "next": t0.Add(time.Hour)})

	eventually(t, "the lapsed occurrence", func() bool { r, _ := runs.snapshot(); return len(r) == 1 })
	r, by := runs.snapshot()
	require.Equal(t, []string{"b"}, by)
	require.Equal(t, t0, r[0].Scheduled)
	require.True(t, r[0].IsPastDue, "it runs late")
	require.False(t, ranAt.Before(lapse), "not while the dead instance's claim held")
	st, err := e.state.Get(ctx, e.name)
	require.NoError(t, err)
	require.Contains(t, string(st.Value()), `"last":"`+t0.Format(time.RFC3339Nano)+`"`, "recorded as run")

	// The completed one was never run by c (its state says so at once).
	eventually(t, "c past t0's lapse", func() bool { return !time.Now().Before(lapse) })
	r, _ = other.snapshot()
	require.Empty(t, r)
}
