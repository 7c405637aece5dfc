package sluice_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/lease"
)

// downstream is a system the functions call: it keeps the latest round
// of each device, and can be taken down (503 for every call).
type downstream struct {
	srv      *httptest.Server
	down     atomic.Bool
	accepted atomic.Int64
	failed   atomic.Int64
	// goDownAt, when set, takes it down at that many accepted calls.
	goDownAt int64

	mu        sync.Mutex
	state     map[string]int // device → latest round
	seen      map[string]bool
	skipAhead []string // a round that came before the one before it
}

func newDownstream(t *testing.T, goDownAt int64) *downstream {
	d := &downstream{goDownAt: goDownAt, state: map[string]int{}, seen: map[string]bool{}}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.down.Load() {
			d.failed.Add(1)
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		device := strings.TrimPrefix(r.URL.Path, "/devices/")
		body, _ := io.ReadAll(r.Body)
		round, err := strconv.Atoi(string(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		d.mu.Lock()
		prev, ok := d.state[device]
		if !ok {
			prev = -1
		}
		// At-least-once may repeat rounds; order means never one ahead
		// of a round not yet seen.
		if round > prev+1 {
			d.skipAhead = append(d.skipAhead, fmt.Sprintf("%s: round %d after %d", device, round, prev))
		}
		if round > prev {
			d.state[device] = round
		}
		d.seen[fmt.Sprintf("%s/%d", device, round)] = true
		d.mu.Unlock()
		if n := d.accepted.Add(1); n == d.goDownAt {
			d.down.Store(true)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

// deliver is the function: it sends each event's round to the downstream,
// failing the batch on the first refusal.
func (d *downstream) deliver(ctx context.Context, events []sluice.Event) error {
	for _, e := range events {
		device, round, _ := strings.Cut(string(e.Body), "/")
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.srv.URL+"/devices/"+device, strings.NewReader(round))
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("downstream answered %s", resp.Status)
		}
	}
	return nil
}

// webhook counts the breaker events POSTed to it.
type webhook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []sluice.BreakerEvent
}

func newWebhook(t *testing.T) *webhook {
	wh := &webhook{}
	wh.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev sluice.BreakerEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		wh.mu.Lock()
		wh.events = append(wh.events, ev)
		wh.mu.Unlock()
	}))
	t.Cleanup(wh.srv.Close)
	return wh
}

func (wh *webhook) types() []string {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	var out []string
	for _, ev := range wh.events {
		out = append(out, ev.Type)
	}
	return out
}

// TestBreakerSharedByTwoInstances is the seeds' reliable-processing
// scenario: two instances process one hub against a downstream that goes
// down for a while. The breaker opens on both, nothing is dead-lettered
// for the outage, and after recovery processing resumes in order and ends
// in the state a run without the outage has.
func TestBreakerSharedByTwoInstances(t *testing.T) {
	t.Parallel()
	const (
		devices    = 40
		rounds     = 50
		partitions = 4
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	down := newDownstream(t, 300)
	wh := newWebhook(t)
	var breakerEvents sync.Map // event type → count, from the events hub

	policy := sluice.BreakerPolicy{ConsecutiveFailures: 4, CoolDown: 300 * time.Millisecond, MaxCoolDown: time.Second}
	start := func(cfg sluice.Config, watch bool) *sluice.App {
		cfg.Logger, cfg.LeaseExpiry, cfg.BreakerWebhook = quiet(), 2*time.Second, wh.srv.URL
		app := sluice.New(cfg)
		app.Hub(sluice.HubConfig{Name: "telemetry", Partitions: partitions})
		// More retries than the breaker needs to open: the outage must
		// open the breaker before any batch runs out of them.
		app.Function("deliver", sluice.HubTrigger{Hub: "telemetry", MaxBatchSize: 20}, down.deliver,
			sluice.WithRetry(sluice.FixedDelay(50, 20*time.Millisecond)), sluice.WithBreaker(policy))
		if watch {
			app.Function("watch-breakers", sluice.HubTrigger{Hub: sluice.BreakerEventsHub}, func(ctx context.Context, events []sluice.Event) error {
				for _, e := range events {
					n, _ := breakerEvents.LoadOrStore(e.Properties["type"], new(atomic.Int32))
					n.(*atomic.Int32).Add(1)
				}
				return nil
			})
		}
		require.NoError(t, app.Start(ctx))
		t.Cleanup(func() { _ = app.Stop(context.Background()) })
		return app
	}
	a := start(sluice.Config{DataDir: filepath.Join(dir, "a"), NATSListen: "127.0.0.1:0", InstanceID: "a"}, true)
	b := start(sluice.Config{DataDir: filepath.Join(dir, "b"), NATSURL: a.NATSURL(), InstanceID: "b"}, false)

	// Both instances own partitions before the events come.
	nc, err := nats.Connect(a.NATSURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	leases, err := js.KeyValue(ctx, "sluice-leases")
	require.NoError(t, err)
	observer, err := lease.New(leases, lease.Config{InstanceID: "observer", Expiry: 2 * time.Second})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		own, _ := observer.Ownership(ctx, "telemetry.$Default")
		owners := map[string]int{}
		for _, o := range own {
			owners[o]++
		}
		return len(own) == partitions && owners["a"] > 0 && owners["b"] > 0
	}, 30*time.Second, 50*time.Millisecond, "both instances own partitions")

	for r := range rounds {
		events := make([]sluice.Event, devices)
		for d := range devices {
			dev := fmt.Sprintf("dev-%02d", d)
			events[d] = sluice.Event{Body: fmt.Appendf(nil, "%s/%d", dev, r), PartitionKey: dev}
		}
		_, err := a.Publish(ctx, "telemetry", events...)
		require.NoError(t, err)
	}

	// The downstream goes down after 300 calls; the breaker opens on both
	// instances: the one opening, shared (how soon the other sees it
	// depends on the machine).
	seenOpen := map[string]sluice.BreakerStatus{}
	for len(seenOpen) < 2 {
		require.NoError(t, ctx.Err(), "the breaker did not open on both instances")
		for name, app := range map[string]*sluice.App{"a": a, "b": b} {
			if _, ok := seenOpen[name]; ok {
				continue
			}
			st, err := app.Breaker(ctx, "deliver")
			require.NoError(t, err)
			if st.State != sluice.BreakerClosed {
				seenOpen[name] = st
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, st := range seenOpen {
		require.NotEmpty(t, st.History)
		assert.Equal(t, seenOpen["a"].History[0], st.History[0], "both instances see the same opening")
		assert.Equal(t, sluice.BreakerOpen, st.History[0].To)
	}
	require.True(t, down.down.Load())

	// While it is down, probes fail and the breaker stays (re)opened; the
	// calls made are the probes and the in-flight batches, not a retry
	// storm: counted once two probes have failed.
	require.Eventually(t, func() bool {
		st, err := a.Breaker(ctx, "deliver")
		return err == nil && st.FailedProbes >= 2
	}, 30*time.Second, 5*time.Millisecond, "probes during the outage")
	failedDuringOutage := down.failed.Load()
	down.down.Store(false)
	t.Logf("calls refused during the outage: %d", failedDuringOutage)
	assert.Less(t, failedDuringOutage, int64(60), "an open breaker stops the calls")

	assert.Eventually(t, func() bool {
		down.mu.Lock()
		defer down.mu.Unlock()
		if len(down.state) < devices {
			return false
		}
		for _, r := range down.state {
			if r != rounds-1 {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "processing resumes after the outage")
	if t.Failed() {
		for _, app := range []*sluice.App{a, b} {
			st, _ := app.Breaker(ctx, "deliver")
			t.Logf("%s: %+v", app.InstanceID(), st)
		}
		down.mu.Lock()
		t.Logf("state %v", down.state)
		down.mu.Unlock()
		t.FailNow()
	}

	down.mu.Lock()
	assert.Empty(t, down.skipAhead, "rounds of a device arrive in order")
	assert.Len(t, down.seen, devices*rounds, "every event reached the downstream")
	down.mu.Unlock()

	letters, err := a.DeadLetters(ctx, sluice.DeadLetterFilter{}, 100)
	require.NoError(t, err)
	assert.Empty(t, letters, "nothing is dead-lettered for the outage")
	assert.Positive(t, a.Processed("deliver"))
	assert.Positive(t, b.Processed("deliver"))

	// Closed everywhere, with the whole story in its history.
	for _, app := range []*sluice.App{a, b} {
		require.Eventually(t, func() bool {
			st, err := app.Breaker(ctx, "deliver")
			return err == nil && st.State == sluice.BreakerClosed
		}, 30*time.Second, 20*time.Millisecond)
	}
	st, err := b.Breaker(ctx, "deliver")
	require.NoError(t, err)
	var tos []string
	for _, tr := range st.History {
		tos = append(tos, string(tr.To))
	}
	require.GreaterOrEqual(t, len(tos), 3)
	assert.Equal(t, "open", tos[0])
	assert.Equal(t, "closed", tos[len(tos)-1])
	assert.Equal(t, "half-open", tos[len(tos)-2])

	// Each transition was announced once: on the events hub and to the
	// webhook.
	require.Eventually(t, func() bool {
		n, ok := breakerEvents.Load("breaker.closed")
		return ok && n.(*atomic.Int32).Load() == 1 && len(wh.types()) == len(st.History)
	}, 30*time.Second, 20*time.Millisecond, "breaker events: webhook %v", wh.types())
	opened := 0
	for _, ty := range wh.types() {
		if ty == "breaker.opened" {
			opened++
		}
	}
	n, _ := breakerEvents.Load("breaker.opened")
	assert.Equal(t, int32(opened), n.(*atomic.Int32).Load())
}

// TestBreakerOpenedByHandHoldsQueueMessages opens a queue function's
// breaker by hand: messages stay queued, with no delivery counted, until
// it is closed; a restarted instance still sees it open.
func TestBreakerOpenedByHandHoldsQueueMessages(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var handled atomic.Int32
	var maxDequeue atomic.Int32
	all := make(chan struct{}) // closed at the 50th message handled
	start := func() *sluice.App {
		app := sluice.New(sluice.Config{DataDir: dir, Logger: quiet()})
		app.Queue(sluice.QueueConfig{Name: "jobs"})
		app.QueueFunction("work", sluice.QueueTrigger{Queue: "jobs"}, func(ctx context.Context, m *sluice.Message) error {
			if handled.Add(1) == 50 {
				close(all)
			}
			for {
				cur := maxDequeue.Load()
				if int32(m.DequeueCount) <= cur || maxDequeue.CompareAndSwap(cur, int32(m.DequeueCount)) {
					break
				}
			}
			return nil
		}, sluice.WithBreaker(sluice.BreakerPolicy{FailureThreshold: 100}))
		require.NoError(t, app.Start(ctx))
		return app
	}
	app := start()
	_, err := app.OpenBreaker(ctx, "nosuch", "")
	require.ErrorContains(t, err, "function nosuch has no breaker")

	st, err := app.OpenBreaker(ctx, "work", "partner maintenance")
	require.NoError(t, err)
	assert.Equal(t, sluice.BreakerOpen, st.State)
	assert.True(t, st.Manual)
	msgs := make([]sluice.OutgoingMessage, 50)
	for i := range msgs {
		msgs[i] = sluice.OutgoingMessage{Body: fmt.Appendf(nil, "job %d", i)}
	}
	_, err = app.Send(ctx, "jobs", msgs...)
	require.NoError(t, err)
	// Only a delivery counted would show a message taken; the closing
	// below checks that none was (maxDequeue).
	assert.Zero(t, handled.Load(), "an open breaker takes no messages")

	// The state survives a restart.
	require.NoError(t, app.Stop(ctx))
	app = start()
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	st, err = app.Breaker(ctx, "work")
	require.NoError(t, err)
	assert.Equal(t, sluice.BreakerOpen, st.State)
	assert.Zero(t, handled.Load())

	st, err = app.CloseBreaker(ctx, "work", "maintenance over")
	require.NoError(t, err)
	assert.Equal(t, sluice.BreakerClosed, st.State)
	// However long the machine takes (the test's timeout bounds a hang).
	<-all
	assert.Equal(t, int32(1), maxDequeue.Load(), "held messages were not counted as deliveries")
	assert.Equal(t, "maintenance over", st.History[len(st.History)-1].Reason)
}

// TestBreakerOpenQueueFunctionHoldsFailures: a queue function whose
// downstream fails opens its breaker; the failing messages are put back
// without using up their deliveries, and none is poisoned.
func TestBreakerOpenQueueFunctionHoldsFailures(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var down atomic.Bool
	down.Store(true)
	var done sync.Map
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Queue(sluice.QueueConfig{Name: "jobs"})
	app.QueueFunction("work", sluice.QueueTrigger{Queue: "jobs", MaxDequeueCount: 3}, func(ctx context.Context, m *sluice.Message) error {
		if down.Load() {
			return errors.New("partner down")
		}
		done.Store(string(m.Body), true)
		return nil
	}, sluice.WithBreaker(sluice.BreakerPolicy{ConsecutiveFailures: 2, CoolDown: 200 * time.Millisecond, MaxCoolDown: 400 * time.Millisecond}))
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	msgs := make([]sluice.OutgoingMessage, 30)
	for i := range msgs {
		msgs[i] = sluice.OutgoingMessage{Body: fmt.Appendf(nil, "job %d", i)}
	}
	_, err := app.Send(ctx, "jobs", msgs...)
	require.NoError(t, err)
	// Several failed probes, each a single message.
	require.Eventually(t, func() bool {
		st, err := app.Breaker(ctx, "work")
		return err == nil && st.FailedProbes >= 3
	}, 30*time.Second, 10*time.Millisecond)
	down.Store(false)
	require.Eventually(t, func() bool {
		n := 0
		done.Range(func(any, any) bool { n++; return true })
		return n == len(msgs)
	}, 30*time.Second, 10*time.Millisecond)
	letters, err := app.DeadLetters(ctx, sluice.DeadLetterFilter{}, 100)
	require.NoError(t, err)
	assert.Empty(t, letters, "no message was poisoned by the outage")
}

func TestBreakerDeclarationErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(), BreakerWebhook: "ftp://example.com/hook"})
	require.ErrorContains(t, app.Start(ctx), "give an http:// or https:// URL")

	app = sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "h", Partitions: 1})
	app.Function("f", sluice.HubTrigger{Hub: "h"}, func(context.Context, []sluice.Event) error { return nil },
		sluice.WithBreaker(sluice.BreakerPolicy{FailureThreshold: 10, CoolDown: time.Minute, MaxCoolDown: time.Second}))
	require.ErrorContains(t, app.Start(ctx), "function f: breaker: maxCoolDown 1s is below coolDown 1m0s")

	app = sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.TimerFunction("tick", sluice.TimerTrigger{Schedule: "0 */5 * * * *"}, func(context.Context, sluice.TimerInfo) error { return nil },
		sluice.WithBreaker(sluice.BreakerPolicy{ConsecutiveFailures: 3}))
	require.ErrorContains(t, app.Start(ctx), "breakers are for hub, queue and change-feed functions")

	app = sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet()})
	app.Hub(sluice.HubConfig{Name: "h", Partitions: 1})
	app.Function("f", sluice.HubTrigger{Hub: "h"}, func(context.Context, []sluice.Event) error { return nil }, sluice.WithTimeout(-time.Second))
	require.ErrorContains(t, app.Start(ctx), "timeout -1s must not be negative")
}

// Config.Functions (a configuration file's settings) overrides declared
// breakers and timeouts by name.
func TestFunctionSettingsOverrideDeclarations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	declare := func(fns map[string]sluice.FunctionSettings) *sluice.App {
		app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(), Functions: fns})
		app.Hub(sluice.HubConfig{Name: "h", Partitions: 1})
		app.Function("deliver", sluice.HubTrigger{Hub: "h"}, func(context.Context, []sluice.Event) error { return nil },
			sluice.WithBreaker(sluice.BreakerPolicy{FailureThreshold: 5}))
		app.TimerFunction("tick", sluice.TimerTrigger{Schedule: "0 0 * * * *"}, func(context.Context, sluice.TimerInfo) error { return nil })
		return app
	}
	app := declare(map[string]sluice.FunctionSettings{
		"deliver": {Breaker: &sluice.BreakerPolicy{ConsecutiveFailures: 7}, Timeout: time.Second},
		"tick":    {Timeout: time.Minute},
	})
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	st, err := app.Breaker(ctx, "deliver")
	require.NoError(t, err)
	require.NotNil(t, st.Policy)
	assert.Equal(t, 7, st.Policy.ConsecutiveFailures)
	assert.Zero(t, st.Policy.FailureThreshold, "the file's policy replaces the declared one")

	err = declare(map[string]sluice.FunctionSettings{
		"nosuch": {Timeout: time.Second},
		"tick":   {Breaker: &sluice.BreakerPolicy{ConsecutiveFailures: 1}},
	}).Start(ctx)
	require.ErrorContains(t, err, "settings of function nosuch: no function of that name is declared")
	require.ErrorContains(t, err, "settings of function tick: breakers are for hub, queue and change-feed functions")
}

// The breaker API answers bad requests with a clear 4xx and changes
// nothing.
func TestBreakerAPIBadRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(), HTTPAddr: "127.0.0.1:0"})
	app.Hub(sluice.HubConfig{Name: "h", Partitions: 1})
	app.Function("f", sluice.HubTrigger{Hub: "h"}, func(context.Context, []sluice.Event) error { return nil },
		sluice.WithBreaker(sluice.BreakerPolicy{ConsecutiveFailures: 3}))
	require.NoError(t, app.Start(ctx))
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	post := func(path, body string) (int, string) {
		resp, err := http.Post("http://"+app.Addr()+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post("/api/v1/breakers/f/open", `{"reason": "x", "bogus": 1}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "bogus")
	code, body = post("/api/v1/breakers/f/open", `{"reason": `)
	assert.Equal(t, http.StatusBadRequest, code, body)
	code, body = post("/api/v1/breakers/nosuch/close", ``)
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, body, "function nosuch has no breaker")
	st, err := app.Breaker(ctx, "f")
	require.NoError(t, err)
	assert.Equal(t, sluice.BreakerClosed, st.State, "nothing changed")
	assert.Empty(t, st.History)
}
