package crashtest

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/partner"
)

// runDeliverer publishes cfg.Messages messages for partner acme (each with
// its id, so that a restarted child stores none twice) and delivers them
// to cfg.PartnerURL until ctx ends.
func runDeliverer(ctx context.Context, cfg childConfig) error {
	app := sluice.New(sluice.Config{
		DataDir: cfg.DataDir, Sync: cfg.Sync, InstanceID: cfg.InstanceID, ShutdownTimeout: 20 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	app.Hub(sluice.HubConfig{Name: cfg.Hub, Partitions: cfg.Partitions})
	app.Partner(sluice.PartnerConfig{ID: "acme", Endpoints: []sluice.PartnerEndpoint{{
		Name: "main", URL: cfg.PartnerURL, SigningSecrets: []string{cfg.Secret}, Ordered: true, Timeout: 5 * time.Second}}})
	app.Delivery("deliver", sluice.DeliveryConfig{Hub: cfg.Hub, MaxBatchSize: cfg.MaxBatchSize, RetrySchedule: "00:00:01",
		RetryBackoff: 50 * time.Millisecond, MaxRetryBackoff: 500 * time.Millisecond,
		Breaker: sluice.BreakerPolicy{ConsecutiveFailures: 1000}})
	if err := app.Start(ctx); err != nil {
		return err
	}
	for start := 0; start < cfg.Messages && ctx.Err() == nil; start += 100 {
		var evs []sluice.Event
		for i := start; i < min(cfg.Messages, start+100); i++ {
			id := fmt.Sprintf("m-%d", i)
			evs = append(evs, sluice.Event{Body: []byte(id), PartitionKey: fmt.Sprintf("k%d", i%50), MessageID: id,
				Properties: map[string]string{sluice.PropPartner: "acme", sluice.PropMessageType: "order", sluice.PropMessageID: id}})
		}
		if _, err := app.Publish(ctx, cfg.Hub, evs...); err != nil && ctx.Err() == nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	<-ctx.Done()
	return app.Stop(context.Background())
}

// crashPartner is the partner's endpoint: it verifies each signature,
// applies each idempotency key once, and is down for one post in eight of
// its first 800.
type crashPartner struct {
	secret string
	mu     sync.Mutex
	posts  int
	seen   map[string]int // idempotency key → posts that carried it
	bad    int
}

func (p *crashPartner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.posts++
	if err := partner.Verify(p.secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		p.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if p.posts%8 == 0 && p.posts < 800 {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	p.seen[r.Header.Get("Idempotency-Key")]++ // the effect applies on the first; repeats are answered alike
	w.WriteHeader(http.StatusNoContent)
}

func (p *crashPartner) applied() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}

// TestDeliveryCrash kills a delivering instance with SIGKILL again and
// again while it delivers a backlog to a partner that is now and then
// down, and proves that every message reached the partner, each with its
// idempotency key, so that the partner applied each once.
func TestDeliveryCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the delivery crash test takes about 20s; it runs without -short")
	}
	const messages, kills = 1000, 4
	rng := seeded(t)
	fp := &crashPartner{secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("the crash partner's signing key!")), seen: map[string]int{}}
	srv := httptest.NewServer(fp)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg := childConfig{Role: roleDeliverer, DataDir: filepath.Join(dir, "data"), Sync: "interval", Out: filepath.Join(dir, "out"),
		InstanceID: "deliverer", Hub: "post-to-partner", Partitions: 4, MaxBatchSize: 50,
		PartnerURL: srv.URL, Secret: fp.secret, Messages: messages}
	var children []*child
	for k := range kills {
		c := startChild(t, dir, fmt.Sprintf("deliverer-%d", k), cfg)
		children = append(children, c)
		// Kill it once it has delivered some more, at a random moment.
		before := fp.applied()
		waitFor(t, 2*time.Minute, 10*time.Millisecond, func() bool { c.requireAlive(t); return fp.applied() > before+50 },
			func() string { return fmt.Sprintf("child %d delivered nothing: %d applied", k, fp.applied()) })
		time.Sleep(between(rng, 0, 300*time.Millisecond)) // where the kill lands, not a synchronisation
		c.kill(t)
		t.Logf("killed child %d with %d applied", k, fp.applied())
	}
	last := startChild(t, dir, "deliverer-last", cfg)
	children = append(children, last)
	waitFor(t, 3*time.Minute, 20*time.Millisecond, func() bool { last.requireAlive(t); return fp.applied() == messages },
		func() string { return fmt.Sprintf("%d of %d messages delivered", fp.applied(), messages) })
	last.terminate(t, 30*time.Second)
	checkChildLogs(t, children)

	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.bad > 0 {
		t.Errorf("%d posts had a bad signature", fp.bad)
	}
	repeats := 0
	for i := range messages {
		key := fmt.Sprintf("acme/main/order/m-%d", i)
		n, ok := fp.seen[key]
		if !ok {
			t.Errorf("message m-%d never reached the partner", i)
		}
		repeats += n - 1
	}
	if len(fp.seen) != messages {
		t.Errorf("the partner saw %d idempotency keys for %d messages", len(fp.seen), messages)
	}
	t.Logf("%d messages, %d kills: %d posts, %d repeats of a delivered message (each applied once by its key)", messages, kills, fp.posts, repeats)
}
