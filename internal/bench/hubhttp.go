package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice"
	"github.com/sluicehq/sluice/internal/gateway"
)

// HTTPOptions configure the HTTP ingestion cases of the hub workload:
// publishing through the HTTP API without API keys (the baseline), and
// with an API key that may publish to the hub (what checking keys costs).
type HTTPOptions struct {
	// Events per case and round. Default 300,000.
	Events int64
	// Rounds, interleaved (the order alternates), the median reported.
	// Default 5.
	Rounds int
	// Producers are concurrent HTTP clients. Default 16.
	Producers int
}

// runHubHTTP measures the "http" and "http-key" cases on an app of its
// own under o.DataDir.
func runHubHTTP(ctx context.Context, o HubOptions, report func(Result)) error {
	h := o.HTTP
	h.Events = cmp.Or(h.Events, 300_000)
	h.Rounds = cmp.Or(h.Rounds, 5)
	h.Producers = cmp.Or(h.Producers, 16)
	const hubName = "bench-http"
	app := sluice.New(sluice.Config{DataDir: filepath.Join(o.DataDir, "http"), NATSURL: o.NATSURL, HTTPAddr: "127.0.0.1:0",
		Sync: o.Sync, Linger: o.Linger, Logger: slog.New(slog.DiscardHandler)})
	app.Hub(sluice.HubConfig{Name: hubName, Partitions: o.Partitions})
	if err := app.Start(ctx); err != nil {
		return err
	}
	defer app.Stop(context.Background())
	base := app.URL()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: h.Producers, MaxConnsPerHost: h.Producers}}
	defer client.CloseIdleConnections()

	// One request body, reused: o.Batch events of about o.EventSize bytes.
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range o.Batch {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"partition_key":"k%d","body":{"v":%q}}`, i, strings.Repeat("x", max(o.EventSize-8, 1)))
	}
	body.WriteByte(']')
	payload := body.Bytes()

	publish := func(key string) (time.Duration, error) {
		var sent atomic.Int64
		var wg sync.WaitGroup
		var errOnce sync.Once
		var firstErr error
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		start := time.Now()
		for range h.Producers {
			wg.Go(func() {
				for sent.Add(int64(o.Batch)) <= h.Events && ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/hubs/"+hubName+"/events", bytes.NewReader(payload))
					req.Header.Set("Content-Type", gateway.MediaEnvelope)
					if key != "" {
						req.Header.Set("Authorization", "Bearer "+key)
					}
					resp, err := client.Do(req)
					if err == nil {
						msg, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("publish answered %s: %s", resp.Status, bytes.TrimSpace(msg))
						}
					}
					if err != nil {
						errOnce.Do(func() { firstErr = err; cancel() })
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start), firstErr
	}
	api := func(method, path, key string, in, out any) error {
		var rd io.Reader
		if in != nil {
			b, _ := json.Marshal(in)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, base+path, rd)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			return fmt.Errorf("%s %s answered %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
		}
		if out != nil {
			return json.Unmarshal(msg, out)
		}
		return nil
	}
	// withKey creates an admin key and a key that may publish to the hub,
	// runs fn with the latter, and revokes both, so that the next round
	// without keys runs as a server with none.
	withKey := func(fn func(key string) error) error {
		var admin, pub gateway.CreateKeyResponse
		if err := api("POST", "/api/v1/keys", "", gateway.CreateKeyRequest{Name: "bench-admin", Scopes: []string{"admin"}}, &admin); err != nil {
			return err
		}
		if err := api("POST", "/api/v1/keys", admin.Key, gateway.CreateKeyRequest{Name: "bench-publish", Scopes: []string{"publish:" + hubName}}, &pub); err != nil {
			return err
		}
		ferr := fn(pub.Key)
		if err := api("DELETE", "/api/v1/keys/"+pub.ID, admin.Key, nil, nil); err != nil {
			return err
		}
		if err := api("DELETE", "/api/v1/keys/"+admin.ID, admin.Key, nil, nil); err != nil {
			return err
		}
		return ferr
	}

	var plain, keyed []time.Duration
	runPlain := func() error {
		o.Progress(fmt.Sprintf("hub/http: round %d of %d, without keys", len(plain)+1, h.Rounds))
		d, err := publish("")
		plain = append(plain, d)
		return err
	}
	runKeyed := func() error {
		o.Progress(fmt.Sprintf("hub/http-key: round %d of %d, with an API key", len(keyed)+1, h.Rounds))
		return withKey(func(key string) error {
			d, err := publish(key)
			keyed = append(keyed, d)
			return err
		})
	}
	for r := range h.Rounds {
		first, second := runPlain, runKeyed
		if r%2 == 1 {
			first, second = runKeyed, runPlain
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	median := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	mp, mk := median(plain), median(keyed)
	note := fmt.Sprintf("median of %d interleaved rounds; %d producers, %d events per request", h.Rounds, h.Producers, o.Batch)
	pr := Result{Workload: "hub", Case: "http", Events: h.Events, Seconds: mp.Seconds(), EventsPerSec: rate(h.Events, mp),
		Sync: o.Sync, PeakRSSMiB: PeakRSSMiB(), Note: note + "; no API keys"}
	report(pr)
	kr := Result{Workload: "hub", Case: "http-key", Events: h.Events, Seconds: mk.Seconds(), EventsPerSec: rate(h.Events, mk),
		Sync: o.Sync, PeakRSSMiB: PeakRSSMiB(), Note: note + "; every request carries an API key with scope publish:" + hubName}
	kr.setBaseline("http (no keys)", h.Events, mp)
	report(kr)
	return nil
}
