package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/dr"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/hub"
)

// DRLag is the replication lag of a DR secondary, sampled while the
// primary takes a steady load (case dr of the hub workload).
type DRLag struct {
	// Samples is how many times the lag was read.
	Samples int `json:"samples"`
	// Events behind: acknowledged by the primary, not yet in the mirrors.
	P50Events float64 `json:"p50_events"`
	P99Events float64 `json:"p99_events"`
	MaxEvents float64 `json:"max_events"`
	// Ms behind: the age of the oldest record the mirrors lack (0 when
	// they lack none).
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// CatchUpMs is how long the mirrors took to hold everything once the
	// load stopped.
	CatchUpMs float64 `json:"catch_up_ms"`
}

// drSampleEvery is how often the lag is read.
const drSampleEvery = 20 * time.Millisecond

// benchDR measures the replication lag of a DR pair of embedded engines
// on this machine (the secondary a leaf node of the primary, mirroring its
// hub): events are published to the primary at rate events/s for
// o.LatencyFor (at least 10s), from o.Publishers publishers in calls of
// o.Batch, and the secondary's lag is read every drSampleEvery. target is
// half what the publish case reached in the same run; when it did not
// run, the pair's primary is measured first (o.Events/4 events).
func benchDR(ctx context.Context, o HubOptions, target float64) (Result, error) {
	if o.NATSURL != "" || o.DataDir == "" {
		return Result{}, errors.New("the dr case pairs two embedded engines in the data directory; it does not run with --nats-url")
	}
	pcfg := engine.Config{DataDir: filepath.Join(o.DataDir, "dr-primary"), Sync: o.Sync, Domain: "primary", LeafListen: "127.0.0.1:0"}
	primary, err := engine.Start(ctx, pcfg)
	if err != nil {
		return Result{}, err
	}
	defer primary.Close()
	scfg := engine.Config{DataDir: filepath.Join(o.DataDir, "dr-secondary"), Sync: o.Sync, Domain: "secondary", LeafRemote: primary.LeafURL()}
	secondary, err := engine.Start(ctx, scfg)
	if err != nil {
		return Result{}, err
	}
	defer secondary.Close()
	svc, err := hub.Open(ctx, primary.JS, primary.MaxPayload(), hub.Options{Linger: o.Linger, ReadJS: primary.ReadJS})
	if err != nil {
		return Result{}, err
	}
	defer svc.Stop(context.Background())
	note := fmt.Sprintf("embedded primary and secondary (leaf node) on this machine; publishing at %.0f events/s, half the publish case's rate", target)
	if target <= 0 {
		o.Progress("dr: no publish case in this run: measuring the primary's publish rate first")
		name, err := newHub(ctx, svc, o)
		if err != nil {
			return Result{}, err
		}
		start := time.Now()
		_, sent, err := publishAll(ctx, svc, name, o, max(o.Events/4, int64(o.Publishers*o.Batch)), 0, time.Time{})
		if err != nil {
			return Result{}, err
		}
		target = rate(sent, time.Since(start)) / 2
		_ = svc.Delete(ctx, name)
		note = fmt.Sprintf("embedded primary and secondary (leaf node) on this machine; publishing at %.0f events/s, half the rate the primary reached just before (no publish case in this run)", target)
	}
	name, err := newHub(ctx, svc, o)
	if err != nil {
		return Result{}, err
	}
	o.Progress("dr: waiting for the secondary to mirror the hub")
	f, err := dr.Open(ctx, dr.Config{PrimaryDomain: "primary", JS: secondary.JS, Interval: 100 * time.Millisecond, InstanceID: "bench",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return Result{}, err
	}
	if err := f.Start(ctx); err != nil {
		return Result{}, err
	}
	defer f.Stop(context.Background())
	if err := waitMirrors(ctx, secondary, name, o.Partitions); err != nil {
		return Result{}, err
	}

	// Events per record, by partition, as the publishers learn them.
	var mu sync.Mutex
	perRecord := make([]map[uint64]int, o.Partitions)
	for p := range perRecord {
		perRecord[p] = map[uint64]int{}
	}
	dur := max(o.LatencyFor, 10*time.Second)
	pace := time.Duration(float64(time.Second) * float64(o.Batch*o.Publishers) / target)
	o.Progress(fmt.Sprintf("dr: publishing %.0f events/s for %s, sampling the secondary's lag every %s", target, dur, drSampleEvery))
	var sent atomic.Int64
	var pubErr error
	until := time.Now().Add(dur)
	var wg sync.WaitGroup
	body := make([]byte, o.EventSize)
	start := time.Now()
	for range o.Publishers {
		wg.Go(func() {
			batch := make([]hub.Event, o.Batch)
			for i := range batch {
				batch[i] = hub.Event{Body: body}
			}
			tick := time.Now()
			for time.Now().Before(until) {
				tick = tick.Add(pace)
				if d := time.Until(tick); d > 0 {
					time.Sleep(d)
				}
				pos, err := svc.Publish(ctx, name, batch)
				if err != nil {
					mu.Lock()
					pubErr = cmp.Or(pubErr, err)
					mu.Unlock()
					return
				}
				mu.Lock()
				for _, x := range pos {
					rec, _ := hub.SplitSequence(x.Sequence)
					perRecord[x.Partition][rec]++
				}
				mu.Unlock()
				sent.Add(int64(len(pos)))
			}
		})
	}
	var events, ms []float64
	sampleDone := make(chan error, 1)
	stopSampling := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopSampling:
				sampleDone <- nil
				return
			case <-time.After(drSampleEvery):
			}
			ev, age, err := drLagNow(ctx, primary, secondary, name, o.Partitions, func(p int, from, to uint64) int {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for rec, c := range perRecord[p] {
					if rec > from && rec <= to {
						n += c
					}
				}
				return n
			})
			if err != nil {
				sampleDone <- err
				return
			}
			events = append(events, float64(ev))
			ms = append(ms, float64(age)/float64(time.Millisecond))
		}
	}()
	wg.Wait()
	elapsed := time.Since(start)
	close(stopSampling)
	if err := <-sampleDone; err != nil {
		return Result{}, fmt.Errorf("read the lag: %w", err)
	}
	if pubErr != nil {
		return Result{}, pubErr
	}
	catchStart := time.Now()
	for {
		ev, _, err := drLagNow(ctx, primary, secondary, name, o.Partitions, func(int, uint64, uint64) int { return 1 })
		if err != nil {
			return Result{}, err
		}
		if ev == 0 {
			break
		}
		if time.Since(catchStart) > time.Minute {
			return Result{}, errors.New("the secondary did not catch up within a minute of the load's end")
		}
		time.Sleep(time.Millisecond)
	}
	lag := DRLag{Samples: len(events), CatchUpMs: float64(time.Since(catchStart)) / float64(time.Millisecond)}
	lag.P50Events, lag.P99Events, lag.MaxEvents = quantiles(events)
	lag.P50Ms, lag.P99Ms, lag.MaxMs = quantiles(ms)
	r := Result{Events: sent.Load(), Seconds: elapsed.Seconds(), EventsPerSec: rate(sent.Load(), elapsed),
		P50ms: lag.P50Ms, P99ms: lag.P99Ms, LatencyAtRate: target, DRLag: &lag, Note: note + "; p50_ms/p99_ms are the replication lag's"}
	return r, nil
}

// quantiles returns the p50, p99 and maximum of xs.
func quantiles(xs []float64) (p50, p99, mx float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	slices.Sort(xs)
	at := func(q float64) float64 { return xs[min(int(q*float64(len(xs))), len(xs)-1)] }
	return at(0.50), at(0.99), xs[len(xs)-1]
}

// waitMirrors waits until the secondary mirrors each partition of hub.
func waitMirrors(ctx context.Context, secondary *engine.Engine, name string, partitions int) error {
	deadline := time.Now().Add(time.Minute)
	for p := 0; p < partitions; {
		if _, err := secondary.JS.Stream(ctx, hub.StreamName(name, p)); err == nil {
			p++
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the secondary did not mirror partition %d of %s within a minute (is the leaf-node connection up?)", p, name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// drLagNow reads how far the secondary's mirrors of hub are behind the
// primary: the events of the records they lack (events(p, from, to)
// counts the events of partition p's records after from up to to), and
// the age of the oldest record they lack.
func drLagNow(ctx context.Context, primary, secondary *engine.Engine, name string, partitions int,
	events func(p int, from, to uint64) int) (int, time.Duration, error) {
	total := 0
	var oldest time.Duration
	now := time.Now()
	for p := range partitions {
		sn := hub.StreamName(name, p)
		ps, err := primary.ReadJS.Stream(ctx, sn)
		if err != nil {
			return 0, 0, err
		}
		pi, err := ps.Info(ctx)
		if err != nil {
			return 0, 0, err
		}
		ms, err := secondary.JS.Stream(ctx, sn)
		if err != nil {
			return 0, 0, err
		}
		mi, err := ms.Info(ctx)
		if err != nil {
			return 0, 0, err
		}
		have, want := mi.State.LastSeq, pi.State.LastSeq
		if have >= want {
			continue
		}
		total += events(p, have, want)
		if m, err := ps.GetMsg(ctx, have+1); err == nil {
			oldest = max(oldest, now.Sub(m.Time))
		}
	}
	return total, oldest, nil
}
