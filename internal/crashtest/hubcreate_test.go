package crashtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/hub"
)

// TestHubCreateCrash kills an instance while it creates a declared hub's
// partitions, and requires that the next start of an instance declaring the
// same hub leaves it usable: every partition takes events. The kill is
// placed by watching the embedded store on disk (nats-server keeps a stream
// in <store>/jetstream/$G/streams/<name>): right after the first partition's
// stream directory appears, usually long before the last one's.
func TestHubCreateCrash(t *testing.T) {
	const (
		hubName    = "fresh"
		partitions = 8
		attempts   = 10
	)
	streamDir := func(data string, p int) string {
		return filepath.Join(data, "nats", "jetstream", "$G", "streams", hub.StreamName(hubName, p))
	}
	exists := func(path string) bool {
		_, err := os.Stat(path)
		return err == nil
	}
	for attempt := range attempts {
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		c := startChild(t, dir, "creator", childConfig{
			Role: rolePublisher, DataDir: data, Out: filepath.Join(dir, "acked"), Hub: hubName, Partitions: partitions,
			Run: "r", Publishers: 1, BatchSize: 1,
		})
		acked := filepath.Join(dir, "acked")
		waitFor(t, time.Minute, 200*time.Microsecond, func() bool {
			c.requireAlive(t)
			if fileSize(t, acked) > 0 {
				t.Fatalf("the child published before %s appeared: has the embedded server's store layout changed?", streamDir(data, 0))
			}
			return exists(streamDir(data, 0))
		}, func() string { return "the child created no partition\n" + c.logTail(20) })
		c.kill(t)
		checkChildLogs(t, []*child{c})
		created := 0
		for p := range partitions {
			if exists(streamDir(data, p)) {
				created++
			}
		}
		if created == partitions {
			t.Logf("attempt %d: the kill came after all %d partitions were created; again", attempt, partitions)
			continue
		}
		t.Logf("attempt %d: killed with %d of %d partition streams on disk", attempt, created, partitions)

		ctx := background(t, time.Minute)
		app := sluice.New(sluice.Config{DataDir: data, InstanceID: "restart", Logger: testLogger(t)})
		app.Hub(sluice.HubConfig{Name: hubName, Partitions: partitions})
		if err := app.Start(ctx); err != nil {
			t.Fatalf("restart after a kill during hub creation: %v", err)
		}
		defer func() { _ = app.Stop(context.Background()) }()
		var failed []error
		for p := range partitions {
			if _, err := app.PublishToPartition(ctx, hubName, p, sluice.Event{Body: fmt.Appendf(nil, "after-restart-%d", p)}); err != nil {
				failed = append(failed, fmt.Errorf("partition %d: %w", p, err))
			}
		}
		if len(failed) > 0 {
			t.Fatalf("after a kill during the creation of hub %s, a restart declaring it left %d of %d partitions unusable:\n%v",
				hubName, len(failed), partitions, errors.Join(failed...))
		}
		return
	}
	t.Skipf("in %d attempts the kill never landed while the partitions were being created", attempts)
}
