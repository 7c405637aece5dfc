package sluice

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/docstore"
	"github.com/sluicehq/sluice/internal/partner"
	"github.com/sluicehq/sluice/internal/resilience"
)

// DeliveryConfig configures a delivery function (App.Delivery).
type DeliveryConfig struct {
	// Hub holds the messages to deliver. Each event names its partner in
	// the property "partner" and its type in "message-type" (as partners'
	// own messages do; copy them, or set them when publishing results);
	// "message-id" names it for the partner's de-duplication (default:
	// the hub, partition and sequence). Its partition key orders an
	// endpoint's deliveries when the endpoint asks for order.
	Hub           string
	ConsumerGroup string
	MaxBatchSize  int
	// Concurrency bounds the POSTs in flight per instance. Default 32.
	Concurrency int
	// RetrySchedule is when parked deliveries are tried again: a TimeSpan
	// ("00:00:05") or an NCRONTAB expression. Default every 5 seconds.
	RetrySchedule string
	// RetryBackoff is the wait before a parked delivery's second attempt;
	// it doubles with each failure, up to MaxRetryBackoff. Defaults 5s and
	// 5 minutes.
	RetryBackoff, MaxRetryBackoff time.Duration
	// Breaker is the policy of each endpoint's breaker, shared by every
	// instance (named delivery:PARTNER/ENDPOINT in sluice breaker list).
	// Default: open after 5 consecutive failures, for 30s. While an
	// endpoint's breaker is open its deliveries are parked without a try,
	// and other partners' deliveries go on.
	Breaker BreakerPolicy
	// Client posts the deliveries; default a client with keep-alive.
	Client *http.Client
}

// Delivery declares a delivery function: a built-in function that posts
// each event of a hub to its partner's endpoints (registered with the
// partner: sluice partner endpoint put), with the endpoint's auth (bearer
// token, OAuth2 client credentials, or a Standard Webhooks signature),
// timeout and rate limit, and an Idempotency-Key header the partner can
// de-duplicate by. A delivery that fails for connectivity (no answer,
// timeout, 408, 429, 5xx) is parked in the retry table (the container
// sluice-deliveries, durable) and posted again on RetrySchedule, in order
// per key for endpoints that ask for it, until it succeeds or runs out of
// attempts; an answer that refuses it (another 4xx) gives it up at once.
// Given-up deliveries stay in the table for operators (sluice partner
// deliveries): retry or cancel them. Every attempt is in the delivery log.
func (a *App) Delivery(name string, cfg DeliveryConfig) {
	d := &delivery{app: a, name: name, cfg: cfg}
	d.cfg.Concurrency = cmp.Or(cfg.Concurrency, 32)
	d.sem = make(chan struct{}, d.cfg.Concurrency)
	d.cfg.RetryBackoff = cmp.Or(cfg.RetryBackoff, 5*time.Second)
	d.cfg.MaxRetryBackoff = cmp.Or(cfg.MaxRetryBackoff, 5*time.Minute)
	if !cfg.Breaker.Enabled() {
		d.cfg.Breaker = BreakerPolicy{ConsecutiveFailures: 5, CoolDown: 30 * time.Second}
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: d.cfg.Concurrency, IdleConnTimeout: 90 * time.Second,
			Proxy: http.ProxyFromEnvironment}}
	}
	d.poster = &partner.Poster{Client: client}
	a.deliveries = append(a.deliveries, d)
	a.Function(name, HubTrigger{Hub: cfg.Hub, ConsumerGroup: cfg.ConsumerGroup, MaxBatchSize: cfg.MaxBatchSize}, d.handle)
	a.TimerFunction(name+"-retry", TimerTrigger{Schedule: cmp.Or(cfg.RetrySchedule, "00:00:05")},
		func(ctx context.Context, _ TimerInfo) error { _, err := d.retryDue(ctx); return err })
}

type delivery struct {
	app    *App
	name   string
	cfg    DeliveryConfig
	poster *partner.Poster
	// sem bounds the POSTs in flight of every batch and retry sweep
	// together (the function runs a batch per partition at once).
	sem chan struct{}

	mu       sync.RWMutex
	breakers map[[2]string]*resilience.Breaker
}

// job is one message to one endpoint.
type job struct {
	ev     int // index in the batch
	ep     partner.Endpoint
	msg    partner.Message
	source string
	order  int64
}

func (d *delivery) parks() partner.ParkStore { return partner.ParkStore{Docs: d.app.docs} }

// handle delivers a batch: every message to every endpoint of its
// partner that takes its type, in parallel across endpoints and keys.
func (d *delivery) handle(ctx context.Context, events []Event) error {
	reg := d.app.partners.Registry
	var jobs []job
	dead := map[int]error{}
	for i, e := range events {
		p, typ := e.Properties[PropPartner], e.Properties[PropMessageType]
		if p == "" {
			dead[i] = fmt.Errorf("the event has no %q property: a delivery needs to know its partner", PropPartner)
			continue
		}
		eps, err := reg.Endpoints(p, typ)
		if err != nil {
			dead[i] = err
			continue
		}
		if len(eps) == 0 {
			dead[i] = fmt.Errorf("partner %q has no endpoint for message type %q: add one with sluice partner endpoint put", p, typ)
			continue
		}
		source := fmt.Sprintf("%s/%d/%d", d.cfg.Hub, e.Partition, e.SequenceNumber)
		msg := partner.Message{Partner: p, Type: typ, ID: cmp.Or(e.Properties[PropMessageID], source), Key: e.PartitionKey,
			Body: e.Body, ContentType: cmp.Or(e.Properties[partner.PropContentType], "application/json")}
		for _, ep := range eps {
			jobs = append(jobs, job{ev: i, ep: ep, msg: msg, source: source, order: e.SequenceNumber})
		}
	}
	parked, refused, err := d.run(ctx, jobs)
	if err != nil {
		return err
	}
	if err := d.parks().Park(ctx, parked); err != nil {
		return err // the batch is tried again; deliveries made carry the same idempotency keys
	}
	for i, why := range refused {
		dead[i] = why
	}
	if len(dead) == 0 {
		return nil
	}
	var out []Event
	var reasons []error
	for i := range events {
		if why, ok := dead[i]; ok {
			out = append(out, events[i])
			reasons = append(reasons, why)
		}
	}
	return DeadLetter(errors.Join(reasons...), out...)
}

// run posts the jobs: endpoints and keys in parallel, an ordered
// endpoint's messages of one key in order. It returns the deliveries to
// park and the events an endpoint refused.
func (d *delivery) run(ctx context.Context, jobs []job) ([]partner.Parked, map[int]error, error) {
	// Lanes: an ordered endpoint's key is one lane, run in order; every
	// other job is a lane of its own.
	type laneKey struct{ partner, ep, key string }
	lanes := map[laneKey][]job{}
	var order []laneKey
	behind := map[laneKey]bool{}
	seq := 0
	for _, j := range jobs {
		k := laneKey{j.msg.Partner, j.ep.Name, j.msg.Key}
		if !j.ep.Ordered {
			seq++
			k.key = fmt.Sprintf("\x00%d", seq)
		}
		if _, ok := lanes[k]; !ok {
			order = append(order, k)
		}
		lanes[k] = append(lanes[k], j)
	}
	// Keys of ordered endpoints with a delivery parked wait behind it.
	byEP := map[[2]string][]string{}
	for _, k := range order {
		if j := lanes[k][0]; j.ep.Ordered {
			byEP[[2]string{k.partner, k.ep}] = append(byEP[[2]string{k.partner, k.ep}], k.key)
		}
	}
	for pe, keys := range byEP {
		got, err := d.parks().ParkedKeys(ctx, pe[0], pe[1], keys)
		if err != nil {
			return nil, nil, err
		}
		for key := range got {
			behind[laneKey{pe[0], pe[1], key}] = true
		}
	}
	var (
		mu      sync.Mutex
		parked  []partner.Parked
		refused = map[int]error{}
		wg      sync.WaitGroup
		sem     = d.sem
		logged  attempts
	)
	defer d.flush(&logged)
	now := time.Now()
	for _, k := range order {
		lane, wait := lanes[k], behind[k]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for _, j := range lane {
				if wait {
					p := partner.NewParked(j.msg, j.ep.Name, j.source, d.name, j.order, now)
					p.Reason = "behind an earlier parked delivery of the same key"
					d.log(&logged, j, partner.Attempt{Time: now}, 0, true, p.Reason)
					mu.Lock()
					parked = append(parked, p)
					mu.Unlock()
					continue
				}
				out, att, reason := d.attempt(ctx, j.ep, j.msg)
				d.log(&logged, j, att, 1, out == partner.Retry, reason)
				switch out {
				case partner.Retry:
					p := partner.NewParked(j.msg, j.ep.Name, j.source, d.name, j.order, now)
					p.Reason, p.Last = reason, &att
					if att.Outcome != "" {
						p.Attempts = 1
					}
					p.NextAttempt = now.Add(d.cfg.RetryBackoff)
					mu.Lock()
					parked = append(parked, p)
					mu.Unlock()
					wait = j.ep.Ordered // the rest of this key waits behind it
				case partner.Refused:
					mu.Lock()
					refused[j.ev] = fmt.Errorf("endpoint %s of partner %s refused message %s: %s", j.ep.Name, j.msg.Partner, j.msg.ID, describe(att))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return parked, refused, ctx.Err()
}

// attempt posts m to ep through ep's breaker: an open breaker parks it
// without a try (reason says so).
func (d *delivery) attempt(ctx context.Context, ep partner.Endpoint, m partner.Message) (partner.Outcome, partner.Attempt, string) {
	b, err := d.breaker(ctx, m.Partner, ep.Name)
	if err != nil {
		return partner.Retry, partner.Attempt{}, err.Error()
	}
	permit, ok, _ := b.Acquire(ctx)
	if !ok {
		return partner.Retry, partner.Attempt{}, "the endpoint's breaker is open"
	}
	out, att := d.poster.Post(ctx, ep, m)
	b.Done(context.WithoutCancel(ctx), permit, out == partner.Retry)
	return out, att, describe(att)
}

func describe(att partner.Attempt) string {
	if att.Error != "" {
		return att.Error
	}
	return fmt.Sprintf("HTTP %d %s", att.Status, att.Response)
}

// breaker is the shared breaker of one endpoint.
func (d *delivery) breaker(ctx context.Context, partnerID, ep string) (*resilience.Breaker, error) {
	k := [2]string{partnerID, ep}
	d.mu.RLock()
	b, ok := d.breakers[k]
	d.mu.RUnlock()
	if ok {
		return b, nil
	}
	b, err := d.app.host.Breakers().Add(ctx, "delivery:"+partnerID+"/"+ep, d.cfg.Breaker.internal(), 0)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.breakers == nil {
		d.breakers = map[[2]string]*resilience.Breaker{}
	}
	d.breakers[k] = b
	d.mu.Unlock()
	return b, nil
}

// attempts collects the delivery log's records of one batch or sweep,
// written together by flush.
type attempts struct {
	mu   sync.Mutex
	recs []partner.DeliveryRecord
}

func (d *delivery) log(l *attempts, j job, att partner.Attempt, n int, parked bool, reason string) {
	outcome := att.Outcome
	if outcome == "" {
		outcome = "parked"
	}
	d.app.metrics.Deliveries.WithLabelValues(j.msg.Partner, j.ep.Name, outcome).Inc()
	rec := partner.DeliveryRecord{Attempt: att, Partner: j.msg.Partner, Endpoint: j.ep.Name, Type: j.msg.Type,
		MessageID: j.msg.ID, Source: j.source, Number: n, Parked: parked}
	if parked {
		rec.Reason = reason
	}
	l.mu.Lock()
	l.recs = append(l.recs, rec)
	l.mu.Unlock()
}

// flush writes the collected records to the delivery log.
func (d *delivery) flush(l *attempts) {
	if d.app.deliveryLog != nil && len(l.recs) > 0 {
		_ = d.app.deliveryLog.Record(l.recs...)
	}
}

// retryDue posts the parked deliveries of this function whose time has
// come: oldest first, an ordered endpoint's key in order and no further
// than its first failure. It returns how many it delivered.
func (d *delivery) retryDue(ctx context.Context) (int, error) {
	due, err := d.parks().List(ctx, partner.Filter{Due: time.Now()}, 2000)
	if err != nil {
		return 0, err
	}
	type laneKey struct{ partner, ep, key string }
	lanes := map[laneKey][]partner.Parked{}
	var order []laneKey
	seq := 0
	for _, p := range due {
		if p.Function != d.name {
			continue
		}
		k := laneKey{p.Partner, p.Endpoint, p.Key}
		ep, _ := d.app.partners.Registry.Endpoint(p.Partner, p.Endpoint)
		if !ep.Ordered {
			seq++
			k.key = fmt.Sprintf("\x00%d", seq)
			lanes[k] = []partner.Parked{p}
			order = append(order, k)
			continue
		}
		if _, ok := lanes[k]; ok {
			continue
		}
		// An ordered key's lane is every delivery parked for it, due or
		// not: it goes from its oldest, and waits while that one waits.
		all, err := d.parks().Lane(ctx, p.Partner, p.Endpoint, p.Key)
		if err != nil {
			return 0, err
		}
		lanes[k] = all
		order = append(order, k)
	}
	now := time.Now()
	var (
		wg        sync.WaitGroup
		sem       = d.sem
		mu        sync.Mutex
		delivered int
		errs      []error
		logged    attempts
	)
	defer d.flush(&logged)
	for _, k := range order {
		lane := lanes[k]
		slices.SortStableFunc(lane, func(a, b partner.Parked) int { return cmp.Compare(a.Order, b.Order) })
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for _, p := range lane {
				if p.NextAttempt.After(now) {
					return // not its time yet: the rest of the lane waits behind it
				}
				ok, err := d.retryOne(ctx, p, &logged)
				mu.Lock()
				if ok {
					delivered++
				}
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
				if !ok {
					return // the rest of the lane stays behind it
				}
			}
		}()
	}
	wg.Wait()
	return delivered, errors.Join(errs...)
}

// retryOne tries a parked delivery again and records how it went.
func (d *delivery) retryOne(ctx context.Context, p partner.Parked, logged *attempts) (bool, error) {
	store := d.parks()
	now := time.Now()
	ep, err := d.app.partners.Registry.Endpoint(p.Partner, p.Endpoint)
	if err != nil {
		p.State, p.Reason = partner.StateDead, "the endpoint no longer exists: "+err.Error()
		return false, ignoreConflict(store.Update(ctx, p))
	}
	j := job{ep: ep, msg: p.Message(), source: p.Source, order: p.Order}
	out, att, reason := d.attempt(ctx, ep, j.msg)
	tried := att.Outcome != ""
	if tried {
		p.Attempts++
		p.Last = &att
	}
	d.log(logged, j, att, p.Attempts, out == partner.Retry, reason)
	switch out {
	case partner.Delivered:
		return true, ignoreConflict(store.Remove(ctx, p))
	case partner.Refused:
		p.State, p.Reason = partner.StateDead, "refused by the endpoint: "+reason
	default:
		p.Reason = reason
		p.NextAttempt = now.Add(partner.Backoff(max(p.Attempts, 1), d.cfg.RetryBackoff, d.cfg.MaxRetryBackoff))
		if p.Attempts >= ep.MaxAttemptsOrDefault() {
			p.State, p.Reason = partner.StateDead, fmt.Sprintf("gave up after %d attempts: %s", p.Attempts, reason)
		}
	}
	return false, ignoreConflict(store.Update(ctx, p))
}

// ignoreConflict: an operator changed the delivery meanwhile; theirs wins.
func ignoreConflict(err error) error {
	if errors.Is(err, docstore.ErrPrecondition) || errors.Is(err, docstore.ErrNotFound) {
		return nil
	}
	return err
}
