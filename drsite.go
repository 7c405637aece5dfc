package sluice

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/blob"
	"github.com/sluicehq/sluice/internal/dr"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/gateway"
	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/hub"
	"github.com/sluicehq/sluice/internal/queue"
	"github.com/sluicehq/sluice/internal/telemetry"
)

// Geo-disaster recovery (see internal/dr and docs/dr.md). An app with
// Config.DRPrimaryDomain is a secondary: Start opens its follower and,
// while the site is not promoted, starts a standby (startStandby) that
// mirrors the primary, serves reads, status and failover, and refuses
// writes; a goroutine waits for the promotion record and then starts the
// app as usual (startServices) on the promoted streams.

// swapHandler is the HTTP server's handler, replaced when a standby is
// promoted.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "starting", http.StatusServiceUnavailable)
}

// standbyParts are what a standby opens to serve reads, closed when it is
// promoted.
type standbyParts struct {
	hubs   *hub.Service
	queues *queue.Service
}

// openDR opens the follower of a secondary and says whether the site is
// still following (not promoted). Called with a.mu held.
func (a *App) openDR(ctx context.Context) (following bool, err error) {
	if a.eng.Embedded() && a.cfg.NATSLeafRemote == "" {
		return false, fmt.Errorf("sluice: --dr-primary-domain %s with the embedded engine needs --nats-leaf-remote, the primary's leaf-node address (nats-leaf://host:7422), to reach it", a.cfg.DRPrimaryDomain)
	}
	if a.cfg.DRPrimaryDomain == a.eng.Domain() {
		return false, fmt.Errorf("sluice: --dr-primary-domain %s is this instance's own engine's domain: a secondary's engine needs a domain of its own (--nats-domain secondary)", a.cfg.DRPrimaryDomain)
	}
	a.dr, err = dr.Open(ctx, dr.Config{PrimaryDomain: a.cfg.DRPrimaryDomain, JS: a.eng.JS, Replicas: a.eng.Replicas(),
		Interval: a.cfg.DRSyncInterval, InstanceID: a.cfg.InstanceID, Logger: a.log})
	if err != nil {
		return false, fmt.Errorf("sluice: %w", err)
	}
	if err := a.dr.Start(ctx); err != nil {
		return false, fmt.Errorf("sluice: %w", err)
	}
	return a.dr.Promotion() == nil, nil
}

// drRole is the instance's role for logs and status.
func (a *App) drRole() string {
	switch {
	case a.dr == nil:
		return dr.RolePrimary
	case a.dr.Promotion() == nil:
		return dr.RoleFollowing
	}
	return dr.RolePromoted
}

// startStandby starts a secondary that follows its primary: the follower
// (started by openDR), the HTTP server with reads, status and failover,
// and the goroutine that starts everything else once the site is
// promoted. Called with a.mu held.
func (a *App) startStandby(ctx context.Context) error {
	if a.cfg.HTTPAddr == "" && a.hasHTTPFunctions() {
		return errNoHTTPServer // as the promoted start would say
	}
	a.standby.Store(true)
	a.metrics = telemetry.NewMetrics()
	a.reportDR()
	// One pass first, bounded: the primary's buckets (API keys among
	// them) are mirrored before the standby opens them, when the primary
	// can be reached.
	if err := a.firstSync(ctx); err != nil {
		a.log.Warn("the DR standby cannot reach its primary for now: it serves status only until the primary's resources are mirrored", "err", err)
	}
	if err := a.openStandbyGuard(ctx); err != nil {
		return err
	}
	var reads *standbyParts
	if a.cfg.HTTPAddr != "" {
		reads = a.openStandbyReads(ctx, false)
		a.handler.set(a.standbyHandler(reads))
		if err := a.serveHTTP(a.tlsCfg); err != nil {
			return err
		}
	}
	a.promoteGo = make(chan struct{})
	go a.awaitPromotion()
	a.ready.Store(true)
	a.log.Info("sluice started as a DR standby: it mirrors its primary, runs no functions and takes no writes until `sluice dr failover`",
		"instance", a.cfg.InstanceID, "primary_domain", a.cfg.DRPrimaryDomain, "domain", a.eng.Domain(), "http", a.Addr(), "reads", reads != nil)
	return nil
}

// firstSync waits (10s at most) for the leaf-node connection of an
// embedded engine, then mirrors what the primary has.
func (a *App) firstSync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if !a.eng.Embedded() || a.cfg.NATSLeafRemote == "" || a.eng.LeafConnected() {
			err := a.dr.Sync(ctx)
			if err == nil || ctx.Err() != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no leaf-node connection to the primary at %s within 10s (it keeps trying)", engine.RedactURL(a.cfg.NATSLeafRemote))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// openStandbyReads opens the services that serve reads on the mirrors,
// through dr.ReadOnly; nil when the mirrors are not there yet.
func (a *App) openStandbyReads(ctx context.Context, retry bool) *standbyParts {
	ro := dr.ReadOnly(a.eng.JS)
	hubs, err := hub.Open(ctx, ro, a.eng.MaxPayload(), hub.Options{ReadJS: dr.ReadOnly(a.eng.ReadJS), Logger: a.log,
		MaxEventBytes: a.cfg.MaxEventBytes, DuplicateWindow: a.cfg.DuplicateWindow})
	if err != nil {
		log := a.log.Warn
		if retry {
			log = a.log.Debug
		}
		log("the DR standby serves no reads until the primary's hubs are mirrored (it tries again on a read, at most once a second)", "err", err)
		return nil
	}
	return &standbyParts{hubs: hubs, queues: queue.Open(ro, a.eng.MaxPayload(), queue.Options{Logger: a.log})}
}

// openStandbyGuard opens the API keys of the mirrored key bucket (read
// only: uses are not recorded) and the guard. An admin key file is not
// registered while following (the bucket is the primary's): its key is
// accepted as the admin key, and registered once the site is promoted.
func (a *App) openStandbyGuard(ctx context.Context) error {
	adminKey := a.cfg.AdminKey
	if a.cfg.AdminKeyFile != "" && adminKey == "" {
		token, err := a.adminKeyFileToken()
		if err != nil {
			return err
		}
		adminKey = token
	}
	if kv, err := dr.ReadOnly(a.eng.JS).KeyValue(ctx, auth.Bucket); err == nil {
		if a.keys, err = auth.OpenKeys(ctx, kv, auth.KeysOptions{Logger: a.log, LastUsedEvery: 100 * 365 * 24 * time.Hour}); err != nil {
			return fmt.Errorf("sluice: %w", err)
		}
	}
	exposed := a.cfg.HTTPAddr != "" && beyondLoopback(a.cfg.HTTPAddr)
	a.standbyGuard = auth.GuardConfig{AdminKey: adminKey, PublicHosts: a.cfg.PublicHosts, Logger: a.log,
		RequireKeys: (exposed && !a.cfg.Insecure) || len(a.cfg.FunctionKeys) > 0}
	cfg := a.standbyGuard
	cfg.Keys = a.keys
	var err error
	a.guard, err = auth.NewGuard(cfg)
	if err != nil {
		return fmt.Errorf("sluice: --public-host: %w", err)
	}
	if exposed && !a.cfg.Insecure && adminKey == "" && (a.keys == nil || !a.keys.Any()) {
		return fmt.Errorf("sluice: --http %s listens beyond this machine, and no API key exists here yet (the primary's are not mirrored), so the standby's failover could not be authorised: start with --admin-key-file FILE or SLUICE_ADMIN_KEY", a.cfg.HTTPAddr)
	}
	return nil
}

// adminKeyFileToken reads the admin key file, making it (with a new key)
// when it does not exist.
func (a *App) adminKeyFileToken() (string, error) {
	data, err := os.ReadFile(a.cfg.AdminKeyFile)
	if errors.Is(err, os.ErrNotExist) {
		token := auth.NewToken()
		if err := os.WriteFile(a.cfg.AdminKeyFile, []byte(token+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("sluice: --admin-key-file: %w", err)
		}
		a.log.Info("a new admin API key was written to the admin key file; keep it secret (it is registered when this site is promoted)", "file", a.cfg.AdminKeyFile)
		return token, nil
	}
	if err != nil {
		return "", fmt.Errorf("sluice: --admin-key-file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if _, _, err := auth.ParseToken(token); err != nil {
		return "", fmt.Errorf("sluice: --admin-key-file %s holds no Sluice API key (%v); put a key made by sluice key create in it, or remove it to have one made", a.cfg.AdminKeyFile, err)
	}
	return token, nil
}

// standbySite is what a standby serves over HTTP: health, metrics, DR
// status and failover, and reads (GET and HEAD) of the mirrors once they
// can be opened; everything else is answered 503 with ErrStandby's
// advice, before it can write anything.
type standbySite struct {
	a *App

	mu    sync.Mutex
	guard *auth.Guard // the standby's (a.guard is replaced when promoted)
	reads *standbyParts
	api   http.Handler // the guarded gateway, with reads when there are
	tried time.Time    // the last attempt to open the reads
	// keys are the mirrored API keys when they were not there at start
	// (opened here later); haveKeys: the guard has keys.
	keys      *auth.Keys
	haveKeys  bool
	triedKeys time.Time
	stopped   bool // promoted or stopping: open nothing more
}

func (a *App) standbyHandler(reads *standbyParts) http.Handler {
	sb := &standbySite{a: a, guard: a.guard, tried: time.Now(), haveKeys: a.keys != nil, triedKeys: time.Now()}
	sb.setReads(reads)
	a.sb = sb
	return sb
}

// setReads builds the gateway, with reads when r is not nil. Called with
// sb.mu held or before serving.
func (sb *standbySite) setReads(r *standbyParts) {
	a := sb.a
	reads := r != nil
	cfg := gateway.Config{InstanceID: a.cfg.InstanceID, Metrics: a.metrics, Logger: a.log, Ready: a.ready.Load,
		Authorize: sb.guard.Authorize, Refuse: func(req *http.Request, route string) error { return standbyRefuses(req, route, reads) }}
	if r != nil {
		cfg.Hubs, cfg.Queues = r.hubs, r.queues
		cfg.Blobs = blob.Open(dr.ReadOnly(a.eng.JS), blob.Options{Logger: a.log})
		cfg.MaxEventBytes = r.hubs.MaxEventBytes()
	}
	gw := gateway.NewServer(cfg)
	gw.HandleDR(drControl{a})
	sb.reads, sb.api = r, sb.guard.Protect(gw, true)
}

// current is the gateway to serve with, opening the reads when they are
// missing (at most once a second).
func (sb *standbySite) current() (http.Handler, *auth.Guard, bool) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if !sb.haveKeys && !sb.stopped && time.Since(sb.triedKeys) > time.Second {
		// The primary's API keys, once their bucket is mirrored.
		sb.triedKeys = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		sb.openKeys(ctx)
		cancel()
	}
	if sb.reads == nil && !sb.stopped && time.Since(sb.tried) > time.Second {
		sb.tried = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if r := sb.a.openStandbyReads(ctx, true); r != nil {
			sb.setReads(r)
		}
		cancel()
	}
	return sb.api, sb.guard, sb.reads != nil
}

// openKeys opens the mirrored API keys and a guard that honours them.
// Called with sb.mu held.
func (sb *standbySite) openKeys(ctx context.Context) {
	a := sb.a
	kv, err := dr.ReadOnly(a.eng.JS).KeyValue(ctx, auth.Bucket)
	if err != nil {
		return
	}
	keys, err := auth.OpenKeys(ctx, kv, auth.KeysOptions{Logger: a.log, LastUsedEvery: 100 * 365 * 24 * time.Hour})
	if err != nil {
		a.log.Debug("the DR standby cannot open the primary's API keys yet", "err", err)
		return
	}
	cfg := a.standbyGuard
	cfg.Keys = keys
	g, err := auth.NewGuard(cfg)
	if err != nil {
		_ = keys.Stop(ctx)
		return
	}
	a.log.Info("the DR standby honours the primary's API keys from now on")
	sb.keys, sb.guard, sb.haveKeys = keys, g, true
	sb.setReads(sb.reads)
}

// close stops the reads; nothing is opened afterwards.
func (sb *standbySite) close(ctx context.Context) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.stopped = true
	var errs []error
	if sb.keys != nil {
		errs = append(errs, sb.keys.Stop(ctx))
		sb.keys = nil
	}
	if r := sb.reads; r != nil {
		errs = append(errs, r.hubs.Stop(ctx), r.queues.Stop(ctx))
		sb.reads = nil
	}
	return errors.Join(errs...)
}

func (sb *standbySite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	api, guard, _ := sb.current()
	p := r.URL.Path
	switch {
	case p == "/api/v1/containers" || strings.HasPrefix(p, "/api/v1/containers/"):
		// A standby does not open the document store (see docs/dr.md):
		// the caller is authorized as the document routes would, then
		// refused.
		guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := guard.Authorize(r, docsNeed(r)); err != nil {
				var aerr *auth.Error
				if errors.As(err, &aerr) {
					for k, v := range aerr.Header {
						w.Header()[k] = v
					}
					writeStandbyError(w, aerr.Status, aerr.Msg)
					return
				}
				writeStandbyError(w, http.StatusForbidden, err.Error())
				return
			}
			writeStandbyError(w, http.StatusServiceUnavailable, dr.ErrStandby.Error()+" (documents: read them from the PostgreSQL replica meanwhile)")
		}), true).ServeHTTP(w, r)
	case p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/api/v1/"):
		api.ServeHTTP(w, r) // authorized, then refused by standbyRefuses unless a read
	default:
		// HTTP functions and the dashboard: nothing runs here yet.
		writeStandbyError(w, http.StatusServiceUnavailable, dr.ErrStandby.Error())
	}
}

// docsNeed is what the document routes need of r (see the gateway's
// routeNeeds): read, admin for containers, or docs on the container.
func docsNeed(r *http.Request) auth.Need {
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/api/v1/containers"), "/")
	container, sub, _ := strings.Cut(rest, "/")
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead || sub == "query":
		return auth.Need{Verb: auth.VerbRead}
	case sub == "" || container == "":
		return auth.Need{Verb: auth.VerbAdmin}
	}
	return auth.Need{Verb: auth.VerbDocs, Resource: container}
}

func writeStandbyError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "60")
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, "{\"error\": %q}\n", msg)
}

// standbyRefuses is the standby gateway's Refuse: it serves health,
// metrics, DR status and failover, and reads (GET, HEAD) when the mirrors
// could be opened; everything else is a write, refused with ErrStandby
// before it runs.
func standbyRefuses(r *http.Request, route string, reads bool) error {
	switch {
	case route == "healthz" || route == "readyz" || route == "metrics" || strings.HasPrefix(route, "dr."):
		return nil
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		return dr.ErrStandby
	case !reads:
		return errors.New("this instance is a DR standby whose primary's resources are not mirrored yet: it serves GET /api/v1/dr only (see sluice dr status)")
	}
	return nil
}

// awaitPromotion waits until the site is promoted (by any of its
// instances), then starts the app on the promoted streams.
func (a *App) awaitPromotion() {
	defer close(a.promoteGo)
	select {
	case <-a.dr.Promoted():
	case <-a.promoteCut:
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-a.promoteCut:
			cancel()
		case <-ctx.Done():
		}
	}()
	started := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopping {
		return
	}
	a.log.Info("this DR site was promoted: starting the functions from the mirrored checkpoints", "instance", a.cfg.InstanceID)
	if a.keys != nil {
		_ = a.keys.Stop(ctx)
		a.keys = nil
	}
	if a.sb != nil {
		_ = a.sb.close(ctx)
	}
	if err := a.startServices(ctx); err != nil {
		a.log.Error("the promoted DR site could not start: restart this instance", "err", err)
		a.promoteErr.Store(&err)
		return
	}
	a.standby.Store(false)
	a.log.Info("the promoted DR site runs", "instance", a.cfg.InstanceID, "took", time.Since(started))
}

// reconcilePromoted brings the hubs' checkpoints and message ids back
// within their partitions on a promoted site, before any function reads
// them (see hub.Service.Reconcile): the mirrors of the state and of the
// partitions stopped at different points when the primary was lost.
//
// Instances of the site that start at once each do it; one whose pass is
// slow may move back a checkpoint another instance's function has just
// written past the partition's end as it read it: those events are then
// processed again (at-least-once holds; nothing is skipped).
func (a *App) reconcilePromoted(ctx context.Context) error {
	if a.dr == nil || a.dr.Promotion() == nil {
		return nil
	}
	done, err := a.dr.Reconciled(ctx)
	if err != nil {
		return fmt.Errorf("sluice: promoted DR site: %w", err)
	}
	if a.reconciled = done; done {
		return nil
	}
	got, err := a.hubSvc.Reconcile(ctx)
	if err != nil {
		return fmt.Errorf("sluice: promoted DR site: %w", err)
	}
	if got != (hub.Reconciled{}) {
		a.log.Warn("promoted DR site: state that named events which never reached this site was brought back within the hubs' partitions",
			"checkpoints_moved_back", got.Checkpoints, "message_ids_forgotten", got.IDs)
	}
	return nil
}

// reconcilePromotedFeeds does for change-feed checkpoints what
// reconcilePromoted does for hubs, against the document store (a promoted
// PostgreSQL replica; see host.ReconcileFeeds).
// Once both are done, the site records it (dr.Follower.MarkReconciled).
func (a *App) reconcilePromotedFeeds(ctx context.Context) error {
	if a.dr == nil || a.dr.Promotion() == nil || a.reconciled {
		return nil
	}
	kv, err := a.eng.JS.KeyValue(ctx, host.FeedBucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		err = nil
	case err == nil:
		_, err = host.ReconcileFeeds(ctx, kv, a.docs, a.log)
	}
	if err == nil {
		err = a.dr.MarkReconciled(ctx, a.cfg.InstanceID)
	}
	if err != nil {
		return fmt.Errorf("sluice: promoted DR site: %w", err)
	}
	a.reconciled = true
	return nil
}

// cutPromotion stops the promotion goroutine from starting anything: Stop
// calls it first.
func (a *App) cutPromotion() { a.cutOnce.Do(func() { close(a.promoteCut) }) }

// reportDR feeds the sluice_dr_* gauges on a secondary.
func (a *App) reportDR() {
	if a.dr == nil {
		return
	}
	a.metrics.ReportDR(func(ctx context.Context) (telemetry.DR, error) {
		st, err := a.dr.Status(ctx)
		if err != nil {
			return telemetry.DR{}, err
		}
		return telemetry.DR{Lag: st.TotalLag, SinceContact: st.LastContactSeconds, Mirrors: st.Mirrors}, nil
	})
}

// drControl is the app as the gateway's DR routes see it.
type drControl struct{ a *App }

var _ gateway.DRControl = drControl{}

func (c drControl) DRStatus(ctx context.Context) (dr.Status, error) {
	a := c.a
	if a.dr == nil {
		connected := a.eng.LeafConnected()
		st := dr.Status{Role: dr.RolePrimary, Domain: a.eng.Domain(), Resources: []dr.Resource{}}
		if a.eng.Embedded() {
			st.LeafConnected = &connected
		}
		return st, nil
	}
	st, err := a.dr.Status(ctx)
	if err != nil {
		return st, err
	}
	st.Domain = a.eng.Domain()
	if a.eng.Embedded() {
		connected := a.eng.LeafConnected()
		st.LeafConnected = &connected
	}
	if perr := a.promoteErr.Load(); perr != nil {
		st.SyncError = "the site was promoted but this instance could not start: " + (*perr).Error() + " (restart it)"
	}
	return st, nil
}

func (c drControl) DRFailover(ctx context.Context) (dr.Report, error) {
	a := c.a
	if a.dr == nil {
		return dr.Report{}, ErrNotDRSecondary
	}
	rep, err := a.dr.Failover(ctx)
	if err != nil {
		return rep, err
	}
	// Answer once this instance runs as promoted (its watch of the record
	// starts it), so that writes to it succeed right after: at most 30s.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for a.standby.Load() {
		if perr := a.promoteErr.Load(); perr != nil {
			return rep, fmt.Errorf("sluice: the site is promoted, but this instance could not start: %w (restart it)", *perr)
		}
		select {
		case <-ctx.Done():
			return rep, nil // promoted; this instance is still starting
		case <-a.promoteGo:
			return rep, nil // stopping
		case <-time.After(5 * time.Millisecond):
		}
	}
	return rep, nil
}
