package crashtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/hub"
)

// TestPublisherCrash kills a busy publisher, and its embedded server with
// it, several times, then reads the hub back and proves that every
// acknowledged event is stored, once, where Publish said.
func TestPublisherCrash(t *testing.T) {
	for _, mode := range []string{sluice.SyncAlways, sluice.SyncInterval} {
		t.Run("sync="+mode, func(t *testing.T) { testPublisherCrash(t, mode) })
	}
}

func testPublisherCrash(t *testing.T, syncMode string) {
	const (
		hubName    = "pub"
		partitions = 4
		rounds     = 3 // publisher lives, each killed mid-stream
	)
	rng := seeded(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	var children []*child
	var ackPaths []string
	for r := range rounds {
		name := fmt.Sprintf("publisher-%d", r)
		// A file per life: a kill can cut the last write short.
		ackPath := filepath.Join(dir, name+".acked")
		ackPaths = append(ackPaths, ackPath)
		c := startChild(t, dir, name, childConfig{
			Role: rolePublisher, DataDir: data, Sync: syncMode, Out: ackPath, Hub: hubName, Partitions: partitions,
			Run: fmt.Sprintf("r%d", r), Publishers: 50, BatchSize: 20,
		})
		children = append(children, c)
		started := time.Now()
		waitFor(t, 90*time.Second, 10*time.Millisecond, func() bool {
			c.requireAlive(t)
			return fileSize(t, ackPath) > 0
		}, func() string { return name + " got no acknowledgement\n" + c.logTail(30) })
		working := time.Since(started)
		d := between(rng, 300*time.Millisecond, 2*time.Second)
		time.Sleep(d)
		c.kill(t)
		t.Logf("%s: first acknowledgement %v after start, killed %v later; %d bytes of acknowledgements",
			name, working.Round(time.Millisecond), d.Round(time.Millisecond), fileSize(t, ackPath))
	}
	checkChildLogs(t, children)

	acked := readAcked(t, ackPaths...)
	stored := readHub(t, data, hubName)
	lost, moved := 0, 0
	var examples []string
	for id, want := range acked {
		got, ok := stored[id]
		switch {
		case !ok:
			lost++
			if len(examples) < 10 {
				examples = append(examples, fmt.Sprintf("%s (acknowledged at %d/%d) is missing", id, want.Partition, want.Sequence))
			}
		case got != want:
			moved++
			if len(examples) < 10 {
				examples = append(examples, fmt.Sprintf("%s acknowledged at %d/%d is stored at %d/%d", id, want.Partition, want.Sequence, got.Partition, got.Sequence))
			}
		}
	}
	t.Logf("%d events acknowledged, %d stored (%d stored without an acknowledgement: in flight at a kill)",
		len(acked), len(stored), len(stored)-(len(acked)-lost))
	if lost > 0 || moved > 0 {
		t.Errorf("%d acknowledged events lost, %d stored elsewhere than acknowledged:\n%s", lost, moved, strings.Join(examples, "\n"))
	}
	if len(acked) == 0 {
		t.Error("no event was acknowledged: the test proved nothing")
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// readAcked reads the publishers' acknowledgement lines "<id> <partition>
// <sequence>"; an incomplete last line (cut by the kill) is ignored.
func readAcked(t *testing.T, paths ...string) map[string]hub.Position {
	t.Helper()
	var lines []string
	for _, path := range paths {
		tl := &tail{path: path}
		l, err := tl.next()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l...)
	}
	out := make(map[string]hub.Position, len(lines))
	for _, s := range lines {
		f := strings.Fields(s)
		if len(f) != 3 {
			t.Fatalf("bad acknowledgement line %q", s)
		}
		p, err1 := strconv.Atoi(f[1])
		seq, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad acknowledgement line %q", s)
		}
		if _, dup := out[f[0]]; dup {
			t.Errorf("event %s was acknowledged twice", f[0])
		}
		out[f[0]] = hub.Position{Partition: p, Sequence: seq}
	}
	return out
}

// readHub reads every partition of a hub in storage order from the store in
// dataDir, checking that sequence numbers strictly increase and that no
// event is stored twice, and returns where each event is.
func readHub(t *testing.T, dataDir, hubName string) map[string]hub.Position {
	t.Helper()
	ctx := background(t, 3*time.Minute)
	eng, err := engine.Start(ctx, engine.Config{DataDir: dataDir, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("restart the engine on the killed publisher's store: %v", err)
	}
	defer func() { _ = eng.Close() }()
	svc, err := hub.Open(ctx, eng.JS, eng.MaxPayload(), hub.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(ctx)
	_, parts, err := svc.Describe(ctx, hubName)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]hub.Position{}
	for _, pi := range parts {
		if pi.LastSequence < 0 {
			continue
		}
		r, err := svc.OpenReader(ctx, hubName, pi.Partition, hub.Start{Kind: hub.StartEarliest})
		if err != nil {
			t.Fatal(err)
		}
		prev, records := int64(-1), 0
		for prev < pi.LastSequence {
			events, err := r.Next(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("read partition %d after sequence %d (last %d): %v", pi.Partition, prev, pi.LastSequence, err)
			}
			records++
			for _, e := range events {
				if e.Sequence <= prev {
					t.Errorf("partition %d: sequence %d stored after %d", pi.Partition, e.Sequence, prev)
				}
				if e.Partition != pi.Partition {
					t.Errorf("partition %d: event %s says partition %d", pi.Partition, e.Body, e.Partition)
				}
				if e.PartitionKey != "" && hub.PartitionForKey(e.PartitionKey, len(parts)) != pi.Partition {
					t.Errorf("partition %d: event %s has key %s of partition %d", pi.Partition, e.Body, e.PartitionKey, hub.PartitionForKey(e.PartitionKey, len(parts)))
				}
				if old, dup := stored[string(e.Body)]; dup {
					t.Errorf("event %s is stored twice: at %d/%d and %d/%d", e.Body, old.Partition, old.Sequence, pi.Partition, e.Sequence)
				}
				stored[string(e.Body)] = hub.Position{Partition: pi.Partition, Sequence: e.Sequence}
				prev = e.Sequence
			}
		}
		r.Close()
		t.Logf("partition %d: %d records, %d events up to sequence %d", pi.Partition, records, countIn(stored, pi.Partition), pi.LastSequence)
	}
	return stored
}

func countIn(stored map[string]hub.Position, p int) int {
	n := 0
	for _, pos := range stored {
		if pos.Partition == p {
			n++
		}
	}
	return n
}
