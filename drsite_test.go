package sluice_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/dr"
	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/hub"
)

// drPair is a DR primary and its secondary, each an app with an HTTP API,
// both declaring hub "orders" (4 partitions) and its function "count",
// which records every event it processes on its site.
type drPair struct {
	primary, secondary *sluice.App
	seenP, seenS       *seen
	secondaryDir       string
	// link is the network between the sites: the secondary's leaf-node
	// connection goes through it.
	link *tcpLink
}

// tcpLink forwards TCP connections to an address until it is cut, like a
// network between two sites that can be lost.
type tcpLink struct {
	ln     net.Listener
	to     string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
	copies sync.WaitGroup
}

func newLink(t *testing.T, to string) *tcpLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &tcpLink{ln: ln, to: to}
	l.copies.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			if l.cut {
				l.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			l.conns = append(l.conns, c, up)
			l.mu.Unlock()
			l.copies.Go(func() { _, _ = io.Copy(up, c); up.Close() })
			l.copies.Go(func() { _, _ = io.Copy(c, up); c.Close() })
		}
	})
	t.Cleanup(l.Cut)
	return l
}

// URL is the leaf-node URL that goes through the link.
func (l *tcpLink) URL() string { return "nats-leaf://" + l.ln.Addr().String() }

// Cut drops every connection and refuses new ones, and waits until its
// goroutines are gone.
func (l *tcpLink) Cut() {
	l.mu.Lock()
	l.cut = true
	for _, c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.ln.Close()
	l.copies.Wait()
}

// seen records the events a site's function processed, by partition and
// sequence, with when the first one came.
type seen struct {
	mu    sync.Mutex
	seqs  map[int][]int64 // partition -> sequences in processing order
	first time.Time
	n     atomic.Int64
}

func (s *seen) add(events []sluice.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seqs == nil {
		s.seqs = map[int][]int64{}
	}
	if s.first.IsZero() {
		s.first = time.Now()
	}
	for _, e := range events {
		s.seqs[e.Partition] = append(s.seqs[e.Partition], e.SequenceNumber)
	}
	s.n.Add(int64(len(events)))
}

func (s *seen) snapshot() (map[int][]int64, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int][]int64{}
	for p, q := range s.seqs {
		out[p] = slices.Clone(q)
	}
	return out, s.first
}

const drHub, drFunction = "orders", "count"

var drLogger = quiet

func declareDR(app *sluice.App, s *seen) {
	app.Hub(sluice.HubConfig{Name: drHub, Partitions: 4})
	app.Function(drFunction, sluice.HubTrigger{Hub: drHub, MaxBatchSize: 20}, func(_ context.Context, events []sluice.Event) error {
		s.add(events)
		return nil
	})
}

// startDRPair starts a primary, then a secondary following it, and waits
// until the secondary has mirrored the primary's hub.
func startDRPair(t *testing.T) *drPair {
	t.Helper()
	ctx := context.Background()
	p := &drPair{seenP: &seen{}, seenS: &seen{}}
	p.primary = sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet(),
		NATSDomain: "primary", NATSLeafListen: "127.0.0.1:0"})
	declareDR(p.primary, p.seenP)
	require.NoError(t, p.primary.Start(ctx))
	t.Cleanup(func() { _ = p.primary.Stop(context.Background()) })
	p.secondaryDir = t.TempDir()
	p.link = newLink(t, strings.TrimPrefix(p.primary.NATSLeafURL(), "nats-leaf://"))
	p.secondary = sluice.New(sluice.Config{DataDir: p.secondaryDir, HTTPAddr: "127.0.0.1:0", Logger: drLogger(),
		NATSDomain: "secondary", NATSLeafRemote: p.link.URL(), DRPrimaryDomain: "primary", DRSyncInterval: 100 * time.Millisecond})
	declareDR(p.secondary, p.seenS)
	require.NoError(t, p.secondary.Start(ctx))
	t.Cleanup(func() { _ = p.secondary.Stop(context.Background()) })
	waitFor(t, "the secondary mirrors the primary's hub", func() bool {
		st := drStatus(t, p.secondary.URL())
		n := 0
		for _, r := range st.Resources {
			if r.Kind == dr.KindHub && r.Name == drHub {
				n++
			}
		}
		return n == 4
	})
	return p
}

// waitFor polls cond until it holds, for at most two minutes (the machine
// may be loaded; this bounds a hang, it measures nothing).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within two minutes", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(body, out), string(body))
	}
	return resp.StatusCode
}

// post sends a JSON body (or none) and returns the status and body.
func post(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func drStatus(t *testing.T, base string) dr.Status {
	t.Helper()
	var st dr.Status
	require.Equal(t, http.StatusOK, getJSON(t, base+"/api/v1/dr", &st))
	return st
}

func failover(t *testing.T, base string) dr.Report {
	t.Helper()
	code, body := post(t, http.MethodPost, base+"/api/v1/dr/failover", "")
	require.Equal(t, http.StatusOK, code, body)
	var rep dr.Report
	require.NoError(t, json.Unmarshal([]byte(body), &rep))
	return rep
}

// lastSequences reads the last event sequence of each partition of the
// hub; nil when the hub is not there (not mirrored yet).
func lastSequences(t *testing.T, base string) []int64 {
	t.Helper()
	var h gateway.HubJSON
	if getJSON(t, base+"/api/v1/hubs/"+drHub, &h) != http.StatusOK {
		return nil
	}
	out := make([]int64, len(h.PartitionInfo))
	for i, p := range h.PartitionInfo {
		out[i] = p.LastSequence
	}
	return out
}

// groupLag reads the function's consumer group's total lag.
func groupLag(t *testing.T, base string) (int64, bool) {
	t.Helper()
	var lag struct {
		Total int64 `json:"total_events"`
	}
	code := getJSON(t, base+"/api/v1/hubs/"+drHub+"/groups/$Default/lag", &lag)
	return lag.Total, code == http.StatusOK
}

// TestDRFailover: a hub function on the primary processes part of a stream
// and checkpoints; under a steady load the primary's site is lost (the
// network between the sites is cut, the primary takes 500 more events,
// then its engine is shut down); the secondary is promoted and its function processes every remaining event
// it has, from the mirrored checkpoints: no mirrored event is lost, and
// the only events processed on both sites are those after the last
// mirrored checkpoint. The promoted hub takes publishes. The recovery point
// (acknowledged events the secondary never received) and the time from
// the failover request to the first event processed are logged.
func TestDRFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := startDRPair(t)
	pURL, sURL := p.primary.URL(), p.secondary.URL()

	// Phase 1: processed and checkpointed on the primary, and mirrored.
	const phase1 = 400
	acked := map[int][]int64{} // partition -> acknowledged sequences
	for i := range phase1 / 10 {
		batch := make([]sluice.Event, 10)
		for j := range batch {
			batch[j] = sluice.Event{Body: []byte("p1"), PartitionKey: strconv.Itoa(i*10 + j)}
		}
		pos, err := p.primary.Publish(ctx, drHub, batch...)
		require.NoError(t, err)
		for _, x := range pos {
			acked[x.Partition] = append(acked[x.Partition], x.SequenceNumber)
		}
	}
	waitFor(t, "the primary processed phase 1", func() bool {
		lag, ok := groupLag(t, pURL)
		return ok && lag == 0 && p.seenP.n.Load() >= phase1
	})
	want := lastSequences(t, pURL)
	waitFor(t, "the secondary mirrored phase 1 and its checkpoints", func() bool {
		lag, ok := groupLag(t, sURL) // a read served by the standby
		return ok && lag == 0 && slices.Equal(lastSequences(t, sURL), want)
	})
	require.Zero(t, p.seenS.n.Load(), "a standby runs no functions")
	phase1Last := map[int]int64{}
	for part, seqs := range acked {
		phase1Last[part] = slices.Max(seqs)
	}

	// Phase 2: a steady load; the primary is shut down in the middle.
	var mu sync.Mutex
	loadDone := make(chan struct{})
	var published atomic.Int64
	go func() {
		defer close(loadDone)
		for i := 0; ; i++ {
			batch := make([]sluice.Event, 10)
			for j := range batch {
				batch[j] = sluice.Event{Body: []byte("p2"), PartitionKey: strconv.Itoa(i*10 + j)}
			}
			pos, err := p.primary.Publish(ctx, drHub, batch...)
			if err != nil {
				return // the primary is gone
			}
			mu.Lock()
			for _, x := range pos {
				acked[x.Partition] = append(acked[x.Partition], x.SequenceNumber)
			}
			mu.Unlock()
			published.Add(int64(len(pos)))
			time.Sleep(2 * time.Millisecond) // the load's pace, not a synchronisation
		}
	}()
	waitFor(t, "the steady load runs", func() bool { return published.Load() >= 2000 })
	// The site is lost: first its network, while the load goes on...
	p.link.Cut()
	atCut := published.Load()
	waitFor(t, "the primary takes more events after the cut", func() bool { return published.Load() >= atCut+500 })
	// ...then its engine.
	dead, cancel := context.WithCancel(ctx)
	cancel()
	_ = p.primary.Stop(dead) // hard: in-flight batches are abandoned
	<-loadDone

	// Failover.
	start := time.Now()
	rep := failover(t, sURL)
	require.False(t, rep.Already)
	require.NotEmpty(t, rep.Resources)
	mirroredLast := map[int]uint64{} // partition -> last record mirrored
	for _, r := range rep.Resources {
		if r.Kind == dr.KindHub {
			name, part, ok := strings.Cut(strings.TrimPrefix(r.Stream, "hub-"), "-")
			require.True(t, ok)
			require.Equal(t, drHub, name)
			n, _ := strconv.Atoi(part)
			mirroredLast[n] = r.LastSeq
		}
	}
	pos, err := publishWhenPromoted(ctx, p.secondary)
	require.NoError(t, err, "the promoted hub takes publishes")
	waitFor(t, "the promoted secondary processes every remaining event", func() bool {
		lag, ok := groupLag(t, sURL)
		return ok && lag == 0 && containsSeq(p.seenS, pos)
	})
	_, firstS := p.seenS.snapshot()
	rto := firstS.Sub(start)

	// Count.
	byP, _ := p.seenP.snapshot()
	byS, _ := p.seenS.snapshot()
	mu.Lock()
	defer mu.Unlock()
	var lost, mirrored, dups, rpo int
	for part, seqs := range acked {
		doneP := setOf(byP[part])
		doneS := setOf(byS[part])
		for _, q := range seqs {
			rec, _ := hub.SplitSequence(q)
			if rec > mirroredLast[part] {
				rpo++ // acknowledged by the primary, never received here
				continue
			}
			mirrored++
			switch {
			case !doneP[q] && !doneS[q]:
				lost++
			case doneP[q] && doneS[q]:
				dups++
				require.Greater(t, q, phase1Last[part], "an event of phase 1 (checkpointed and mirrored) was processed again")
			}
		}
		// The secondary resumed where a mirrored checkpoint said: from
		// one point on, in order.
		require.True(t, slices.IsSorted(byS[part]), "partition %d processed out of order on the secondary", part)
	}
	require.Zero(t, lost, "mirrored events lost")
	require.GreaterOrEqual(t, rpo, 500, "the events acknowledged after the link was cut cannot have been mirrored")
	t.Logf("DR failover: %d events acknowledged by the primary, %d mirrored; recovery point: %d events not mirrored (%d records by the mirrors' lag at promotion, last contact %.1fs before); %d processed on both sites (after the last mirrored checkpoint); failover request to first event processed: %s",
		mirrored+rpo, mirrored, rpo, rep.RecoveryPoint, rep.Promotion.LastContactSeconds, dups, rto)

	// Again: nothing to do.
	again := failover(t, sURL)
	require.True(t, again.Already)
	require.Equal(t, dr.RolePromoted, drStatus(t, sURL).Role)
}

// publishWhenPromoted publishes one event to the secondary once its
// instance has started after the promotion.
func publishWhenPromoted(ctx context.Context, app *sluice.App) ([]sluice.Position, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pos, err := app.Publish(ctx, drHub, sluice.Event{Body: []byte("after failover")})
		if !errors.Is(err, sluice.ErrStandby) || time.Now().After(deadline) {
			return pos, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func containsSeq(s *seen, pos []sluice.Position) bool {
	byP, _ := s.snapshot()
	for _, x := range pos {
		if !slices.Contains(byP[x.Partition], x.SequenceNumber) {
			return false
		}
	}
	return true
}

func setOf(seqs []int64) map[int64]bool {
	out := make(map[int64]bool, len(seqs))
	for _, q := range seqs {
		out[q] = true
	}
	return out
}

// TestDRStandby: a standby serves reads and status, refuses every write
// with 503 and stores nothing; failover on a primary is refused; failover
// twice is fine, and the promoted site takes writes.
func TestDRStandby(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := startDRPair(t)
	pURL, sURL := p.primary.URL(), p.secondary.URL()
	_, err := p.primary.Publish(ctx, drHub, sluice.Event{Body: []byte("one")})
	require.NoError(t, err)
	want := lastSequences(t, pURL)
	waitFor(t, "mirrored", func() bool { return slices.Equal(lastSequences(t, sURL), want) })

	require.Equal(t, dr.RolePrimary, drStatus(t, pURL).Role)
	st := drStatus(t, sURL)
	require.Equal(t, dr.RoleFollowing, st.Role)
	require.Equal(t, "primary", st.PrimaryDomain)
	require.Positive(t, st.Mirrors)

	var hubs struct {
		Hubs []gateway.HubJSON `json:"hubs"`
	}
	require.Equal(t, http.StatusOK, getJSON(t, sURL+"/api/v1/hubs", &hubs), "the standby serves reads")
	require.Len(t, hubs.Hubs, 1)

	for _, w := range []struct{ method, path, body string }{
		{"POST", "/api/v1/hubs/" + drHub + "/events", `{"body":"x"}`},
		{"POST", "/api/v1/hubs", `{"name":"new"}`},
		{"DELETE", "/api/v1/hubs/" + drHub, ""},
		{"POST", "/api/v1/queues", `{"name":"q"}`},
		{"POST", "/api/v1/queues/q/messages", `{"body":"x"}`},
		{"POST", "/api/v1/containers", `{"name":"c","partition_key_path":"/pk"}`},
		{"PUT", "/api/v1/containers/c/docs", `{"id":"d","pk":"p"}`},
		{"POST", "/api/v1/hubs/" + drHub + "/groups/$Default/replay", `{"earliest":true}`},
	} {
		code, body := post(t, w.method, sURL+w.path, w.body)
		require.Equal(t, http.StatusServiceUnavailable, code, "%s %s: %s", w.method, w.path, body)
		require.Contains(t, body, "standby", body)
		require.Contains(t, body, "failover", body)
	}
	_, err = p.secondary.Publish(ctx, drHub, sluice.Event{Body: []byte("x")})
	require.ErrorIs(t, err, sluice.ErrStandby)
	require.Equal(t, want, lastSequences(t, sURL), "the refused writes stored nothing")
	require.Equal(t, want, lastSequences(t, pURL), "nor on the primary")
	require.Equal(t, http.StatusNotFound, getJSON(t, pURL+"/api/v1/hubs/new", nil))

	code, body := post(t, http.MethodPost, pURL+"/api/v1/dr/failover", "")
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body, "not a DR secondary")

	code, metrics := post(t, http.MethodGet, sURL+"/metrics", "")
	require.Equal(t, http.StatusOK, code)
	require.Regexp(t, `(?m)^sluice_dr_lag_messages \d+$`, metrics)
	require.Contains(t, metrics, "sluice_dr_seconds_since_contact")
	require.Contains(t, metrics, "sluice_dr_mirrors")

	first := failover(t, sURL)
	require.False(t, first.Already)
	require.True(t, first.PrimaryReachable, "the report says the primary still answers")
	second := failover(t, sURL)
	require.True(t, second.Already)
	require.Equal(t, first.Promotion, second.Promotion)
	waitFor(t, "the promoted site takes publishes", func() bool {
		code, _ := post(t, http.MethodPost, sURL+"/api/v1/hubs/"+drHub+"/events", `{"body":"after"}`)
		return code == http.StatusOK
	})
}

// TestDRRestart: a standby restarted on its data directory follows again
// with its mirrors; a promoted secondary restarted stays promoted and runs
// its functions (with the primary gone for good).
func TestDRRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := startDRPair(t)
	events := make([]sluice.Event, 50)
	for i := range events {
		events[i] = sluice.Event{Body: []byte("e"), PartitionKey: strconv.Itoa(i)}
	}
	_, err := p.primary.Publish(ctx, drHub, events...)
	require.NoError(t, err)
	want := lastSequences(t, p.primary.URL())
	waitFor(t, "mirrored", func() bool { return slices.Equal(lastSequences(t, p.secondary.URL()), want) })

	restart := func(s *seen) *sluice.App {
		app := sluice.New(sluice.Config{DataDir: p.secondaryDir, HTTPAddr: "127.0.0.1:0", Logger: drLogger(),
			NATSDomain: "secondary", NATSLeafRemote: p.primary.NATSLeafURL(), DRPrimaryDomain: "primary", DRSyncInterval: 100 * time.Millisecond})
		declareDR(app, s)
		require.NoError(t, app.Start(ctx))
		t.Cleanup(func() { _ = app.Stop(context.Background()) })
		return app
	}
	require.NoError(t, p.secondary.Stop(ctx))
	again := restart(&seen{})
	st := drStatus(t, again.URL())
	require.Equal(t, dr.RoleFollowing, st.Role)
	require.Equal(t, want, lastSequences(t, again.URL()), "the mirrors are kept across a restart")
	failover(t, again.URL())
	require.NoError(t, again.Stop(ctx))
	require.NoError(t, p.primary.Stop(ctx))

	s := &seen{}
	promoted := restart(s)
	require.Equal(t, dr.RolePromoted, drStatus(t, promoted.URL()).Role)
	pos, err := promoted.Publish(ctx, drHub, sluice.Event{Body: []byte("after restart")})
	require.NoError(t, err)
	waitFor(t, "the restarted promoted site processes everything", func() bool {
		lag, ok := groupLag(t, promoted.URL())
		return ok && lag == 0 && containsSeq(s, pos)
	})
}

// TestDRFailoverReachesEveryInstance: a failover run on one instance of the
// secondary site promotes the whole site: another instance sharing its
// engine learns it from the promotion record and starts as well.
func TestDRFailoverReachesEveryInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary := sluice.New(sluice.Config{DataDir: t.TempDir(), Logger: quiet(), NATSDomain: "primary", NATSLeafListen: "127.0.0.1:0"})
	declareDR(primary, &seen{})
	require.NoError(t, primary.Start(ctx))
	t.Cleanup(func() { _ = primary.Stop(context.Background()) })
	first := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet(), NATSListen: "127.0.0.1:0",
		NATSDomain: "secondary", NATSLeafRemote: primary.NATSLeafURL(), DRPrimaryDomain: "primary", DRSyncInterval: 100 * time.Millisecond})
	declareDR(first, &seen{})
	require.NoError(t, first.Start(ctx))
	t.Cleanup(func() { _ = first.Stop(context.Background()) })
	second := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet(), NATSURL: first.NATSURL(),
		DRPrimaryDomain: "primary", DRSyncInterval: 100 * time.Millisecond})
	s2 := &seen{}
	declareDR(second, s2)
	require.NoError(t, second.Start(ctx))
	t.Cleanup(func() { _ = second.Stop(context.Background()) })
	require.Equal(t, dr.RoleFollowing, drStatus(t, second.URL()).Role)

	failover(t, first.URL())
	waitFor(t, "the other instance learns of the promotion", func() bool { return drStatus(t, second.URL()).Role == dr.RolePromoted })
	pos, err := publishWhenPromoted(ctx, second)
	require.NoError(t, err, "the other instance takes writes once promoted")
	waitFor(t, "the site processes the event", func() bool {
		lag, ok := groupLag(t, second.URL())
		return ok && lag == 0 && len(pos) == 1
	})
}

// TestDRStandbyAuth: the primary's API keys are mirrored and work on the
// standby; every route of the standby asks for a key once keys exist, and
// a write is refused (503) only after the caller is authorized.
func TestDRStandbyAuth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet(),
		NATSDomain: "primary", NATSLeafListen: "127.0.0.1:0", AdminKey: "primary-admin-key"})
	declareDR(primary, &seen{})
	require.NoError(t, primary.Start(ctx))
	t.Cleanup(func() { _ = primary.Stop(context.Background()) })
	ops := createKey(t, primary.URL(), "primary-admin-key", "ops", "admin")
	reader := createKey(t, primary.URL(), "primary-admin-key", "reader", "read")

	secondary := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: drLogger(),
		NATSDomain: "secondary", NATSLeafRemote: primary.NATSLeafURL(), DRPrimaryDomain: "primary", DRSyncInterval: 100 * time.Millisecond})
	declareDR(secondary, &seen{})
	require.NoError(t, secondary.Start(ctx))
	t.Cleanup(func() { _ = secondary.Stop(context.Background()) })
	base := secondary.URL()
	request := func(method, path, key string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(`{"id":"d","pk":"p"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		return do(t, req, key)
	}
	waitFor(t, "the standby follows the primary's keys", func() bool {
		code, _ := request("GET", "/api/v1/dr", "")
		if code != http.StatusUnauthorized {
			return false // no key mirrored yet
		}
		code, _ = request("GET", "/api/v1/dr", reader)
		return code == http.StatusOK
	})
	for _, r := range []struct {
		method, path string
		none, read   int // status without a key, with the read key
		admin        int
	}{
		{"GET", "/api/v1/dr", 401, 200, 200},
		{"GET", "/api/v1/hubs", 401, 200, 200},
		{"POST", "/api/v1/hubs/" + drHub + "/events", 401, 403, 503},
		{"PUT", "/api/v1/containers/c/docs", 401, 403, 503},
		{"POST", "/api/v1/dr/failover", 401, 403, 200},
	} {
		for _, k := range []struct {
			key  string
			want int
		}{{"", r.none}, {reader, r.read}, {ops, r.admin}} {
			code, body := request(r.method, r.path, k.key)
			require.Equal(t, k.want, code, "%s %s with key %q: %s", r.method, r.path, k.key, body)
		}
	}
}

func TestDRConfigurationIsChecked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		cfg  sluice.Config
		want string
	}{
		{sluice.Config{DRPrimaryDomain: "primary"}, "needs --nats-leaf-remote"},
		{sluice.Config{DRPrimaryDomain: "primary", NATSLeafRemote: "nats-leaf://127.0.0.1:1"}, "--nats-domain"},
		{sluice.Config{DRPrimaryDomain: "primary", NATSDomain: "primary", NATSLeafRemote: "nats-leaf://127.0.0.1:1"}, "own engine's domain"},
	} {
		c.cfg.DataDir, c.cfg.Logger = t.TempDir(), quiet()
		app := sluice.New(c.cfg)
		require.ErrorContains(t, app.Start(ctx), c.want)
	}
}

// TestDRFailBack follows the runbook's failing back: after a failover to
// the secondary, the promoted site restarts as a primary with a leaf-node
// listener, the old primary's site starts afresh as its secondary, mirrors
// it, and is promoted in turn, resuming from the checkpoints the other
// site wrote.
func TestDRFailBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := startDRPair(t)
	events := make([]sluice.Event, 40)
	for i := range events {
		events[i] = sluice.Event{Body: []byte("on A"), PartitionKey: strconv.Itoa(i)}
	}
	_, err := p.primary.Publish(ctx, drHub, events...)
	require.NoError(t, err)
	waitFor(t, "A processed its events", func() bool { lag, ok := groupLag(t, p.primary.URL()); return ok && lag == 0 })
	want := lastSequences(t, p.primary.URL())
	waitFor(t, "B mirrored A", func() bool { return slices.Equal(lastSequences(t, p.secondary.URL()), want) })
	require.NoError(t, p.primary.Stop(ctx))
	failover(t, p.secondary.URL())
	_, err = p.secondary.Publish(ctx, drHub, events...)
	require.NoError(t, err)
	waitFor(t, "B processed its events", func() bool { lag, ok := groupLag(t, p.secondary.URL()); return ok && lag == 0 })
	require.NoError(t, p.secondary.Stop(ctx))

	// B restarts as a primary; A starts afresh as its secondary.
	b := sluice.New(sluice.Config{DataDir: p.secondaryDir, HTTPAddr: "127.0.0.1:0", Logger: quiet(),
		NATSDomain: "secondary", NATSLeafListen: "127.0.0.1:0"})
	declareDR(b, &seen{})
	require.NoError(t, b.Start(ctx))
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	require.Equal(t, dr.RolePrimary, drStatus(t, b.URL()).Role)
	seenA := &seen{}
	a := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet(),
		NATSDomain: "primary", NATSLeafRemote: b.NATSLeafURL(), DRPrimaryDomain: "secondary", DRSyncInterval: 100 * time.Millisecond})
	declareDR(a, seenA)
	require.NoError(t, a.Start(ctx))
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	wantB := lastSequences(t, b.URL())
	waitFor(t, "A mirrored B", func() bool {
		lag, ok := groupLag(t, a.URL())
		return ok && lag == 0 && slices.Equal(lastSequences(t, a.URL()), wantB)
	})

	// A quiet moment: B stops; A is promoted and goes on from B's
	// checkpoints.
	require.NoError(t, b.Stop(ctx))
	failover(t, a.URL())
	pos, err := a.Publish(ctx, drHub, sluice.Event{Body: []byte("back on A")})
	require.NoError(t, err)
	waitFor(t, "A processes again", func() bool {
		lag, ok := groupLag(t, a.URL())
		return ok && lag == 0 && containsSeq(seenA, pos)
	})
	require.EqualValues(t, 1, seenA.n.Load(), "A resumed from B's checkpoints: only the new event")
}

// TestDRStandbyWithoutPrimary: a secondary whose primary cannot be reached
// starts anyway (after a bounded wait), says so in its status, and serves
// status, health and metrics; everything else is refused until the
// primary's resources are mirrored.
func TestDRStandbyWithoutPrimary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "nats-leaf://" + ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there
	s := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet(),
		NATSDomain: "secondary", NATSLeafRemote: dead, DRPrimaryDomain: "primary", DRSyncInterval: 100 * time.Millisecond})
	declareDR(s, &seen{})
	require.NoError(t, s.Start(ctx))
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	st := drStatus(t, s.URL())
	require.Equal(t, dr.RoleFollowing, st.Role)
	require.Zero(t, st.Mirrors)
	require.Contains(t, st.SyncError, "list the primary's streams")
	require.Equal(t, http.StatusOK, getJSON(t, s.URL()+"/metrics", nil))
	require.Equal(t, http.StatusOK, getJSON(t, s.URL()+"/readyz", nil))
	code, body := post(t, http.MethodGet, s.URL()+"/api/v1/hubs", "")
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, "not mirrored yet")
	code, body = post(t, http.MethodPost, s.URL()+"/api/v1/hubs/"+drHub+"/events", `{"body":"x"}`)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.Contains(t, body, "sluice dr failover")
}

// TestDRStandbyCatchesUp: a secondary started before its primary could be
// reached serves the primary's hubs and honours its API keys once they are
// mirrored, without a restart.
func TestDRStandbyCatchesUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	leafAddr := ln.Addr().String()
	require.NoError(t, ln.Close()) // the primary listens there later
	s := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet(),
		NATSDomain: "secondary", NATSLeafRemote: "nats-leaf://" + leafAddr, DRPrimaryDomain: "primary", DRSyncInterval: 100 * time.Millisecond})
	declareDR(s, &seen{})
	require.NoError(t, s.Start(ctx))
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	require.Equal(t, http.StatusServiceUnavailable, getJSON(t, s.URL()+"/api/v1/hubs", nil))

	primary := sluice.New(sluice.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: quiet(),
		NATSDomain: "primary", NATSLeafListen: leafAddr, AdminKey: "primary-admin-key"})
	declareDR(primary, &seen{})
	require.NoError(t, primary.Start(ctx))
	t.Cleanup(func() { _ = primary.Stop(context.Background()) })
	reader := createKey(t, primary.URL(), "primary-admin-key", "reader", "read")

	waitFor(t, "the standby honours the primary's keys", func() bool {
		req, err := http.NewRequest(http.MethodGet, s.URL()+"/api/v1/dr", nil)
		require.NoError(t, err)
		code, _ := do(t, req, "")
		return code == http.StatusUnauthorized
	})
	waitFor(t, "the standby serves the primary's hubs", func() bool {
		req, err := http.NewRequest(http.MethodGet, s.URL()+"/api/v1/hubs/"+drHub, nil)
		require.NoError(t, err)
		code, _ := do(t, req, reader)
		return code == http.StatusOK
	})
}
