package partner

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/service"
)

// Bucket is the KV bucket of the registry, shared by every instance.
const Bucket = "sluice-partners"

// TokenKind is the kind of partner tokens: sluicep_<id>_<secret>, never
// taken for an API key (sluice_…) or the other way round.
var TokenKind = auth.TokenKind{Prefix: "sluicep_", What: "Sluice partner token"}

// Options configure a Registry.
type Options struct {
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// LastUsedEvery is how often recorded token uses are written.
	// Default 15s.
	LastUsedEvery time.Duration
}

// Registry holds the partners and message types of the cluster: read from
// the bucket, compiled, and kept in memory; every instance follows the
// bucket, so a change made anywhere applies everywhere without a restart.
type Registry struct {
	kv   jetstream.KeyValue
	opts Options
	log  *slog.Logger

	mu       sync.RWMutex
	partners map[string]*partnerEntry
	types    map[string]*typeEntry // by bucket key
	pending  map[string]time.Time  // token uses to record, by "partner/token"

	life service.Lifecycle
}

type partnerEntry struct {
	p   Partner
	rev uint64
	// wrote is the last use written or read, by token id.
	wrote map[string]time.Time
}

type typeEntry struct {
	c   *compiled
	rev uint64
	err error // the type could not be compiled on this instance
}

// OpenBucket creates or opens the registry's bucket.
func OpenBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("partner: open the registry bucket: %w", err)
	}
	return kv, nil
}

// Open loads the registry of kv and follows changes until Stop.
func Open(ctx context.Context, kv jetstream.KeyValue, opts Options) (*Registry, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.LastUsedEvery = cmp.Or(opts.LastUsedEvery, 15*time.Second)
	r := &Registry{kv: kv, opts: opts, log: opts.Logger, partners: map[string]*partnerEntry{},
		types: map[string]*typeEntry{}, pending: map[string]time.Time{}}
	if err := r.life.FollowKV(kv, r.apply); err != nil {
		_ = r.Stop(ctx)
		return nil, fmt.Errorf("partner: watch the registry: %w", err)
	}
	r.life.Every(opts.LastUsedEvery, r.FlushLastUsed)
	return r, nil
}

// Stop stops following the bucket and writes the token uses recorded so
// far (within ctx, at most 2s).
func (r *Registry) Stop(ctx context.Context) error {
	return r.life.Stop(ctx, nil, func(ctx context.Context) error {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		r.FlushLastUsed(fctx)
		return nil
	})
}

func partnerKey(id string) string { return "partner." + id }

func typeKey(partner, name string) string {
	return "type." + cmp.Or(partner, shared) + "." + name
}

// apply takes in a change of the bucket.
func (r *Registry) apply(kve jetstream.KeyValueEntry) {
	r.change(kve.Key(), kve.Value(), kve.Revision(), kve.Operation() != jetstream.KeyValuePut)
}

// change takes in a put (or a delete) of key at revision rev.
func (r *Registry) change(key string, value []byte, rev uint64, deleted bool) {
	switch {
	case strings.HasPrefix(key, "partner."):
		id := strings.TrimPrefix(key, "partner.")
		r.mu.Lock()
		defer r.mu.Unlock()
		old := r.partners[id]
		if old != nil && old.rev > rev {
			return
		}
		if deleted {
			delete(r.partners, id)
			return
		}
		var p Partner
		if err := json.Unmarshal(value, &p); err != nil || p.ID != id {
			r.log.Warn("partner: unreadable partner record; it is ignored", "partner", id, "err", err)
			return
		}
		e := &partnerEntry{p: p, rev: rev, wrote: map[string]time.Time{}}
		for _, t := range p.Tokens {
			e.wrote[t.ID] = t.LastUsed
		}
		r.partners[id] = e
	case strings.HasPrefix(key, "type."):
		var te *typeEntry
		if !deleted {
			var t MessageType
			err := json.Unmarshal(value, &t)
			var c *compiled
			if err == nil {
				c, err = compile(t)
			}
			if err != nil {
				r.log.Error("partner: a registered message type cannot be used on this instance; its messages are refused with 503", "key", key, "err", err)
			}
			te = &typeEntry{c: c, rev: rev, err: err}
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if old := r.types[key]; old != nil && old.rev > rev {
			return
		}
		if deleted {
			delete(r.types, key)
			return
		}
		r.types[key] = te
	}
}

// Partners lists the partners, by id, without token hashes.
func (r *Registry) Partners() []Partner {
	r.mu.RLock()
	out := make([]Partner, 0, len(r.partners))
	for _, e := range r.partners {
		out = append(out, public(e.p))
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Partner) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Partner returns one partner, without token hashes.
func (r *Registry) Partner(id string) (Partner, error) {
	r.mu.RLock()
	e := r.partners[id]
	r.mu.RUnlock()
	if e == nil {
		return Partner{}, fmt.Errorf("partner %q: %w (list partners with sluice partner list)", id, ErrNotFound)
	}
	return public(e.p), nil
}

// public is p without its tokens' hashes and endpoints' secrets.
func public(p Partner) Partner {
	p.Tokens = slices.Clone(p.Tokens)
	for i := range p.Tokens {
		p.Tokens[i].Hash = ""
	}
	p.Endpoints = slices.Clone(p.Endpoints)
	for i := range p.Endpoints {
		p.Endpoints[i] = p.Endpoints[i].redact()
	}
	return p
}

// Endpoints returns the endpoints of partner that take messages of type
// typ, secrets included (for delivery, never for showing).
func (r *Registry) Endpoints(partnerID, typ string) ([]Endpoint, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.partners[partnerID]
	if e == nil {
		return nil, fmt.Errorf("partner %q: %w", partnerID, ErrNotFound)
	}
	var out []Endpoint
	for _, ep := range e.p.Endpoints {
		if ep.Takes(typ) {
			out = append(out, ep)
		}
	}
	return out, nil
}

// Endpoint returns one endpoint of a partner, secrets included.
func (r *Registry) Endpoint(partnerID, name string) (Endpoint, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if e := r.partners[partnerID]; e != nil {
		for _, ep := range e.p.Endpoints {
			if ep.Name == name {
				return ep, nil
			}
		}
	}
	return Endpoint{}, fmt.Errorf("endpoint %q of partner %q: %w", name, partnerID, ErrNotFound)
}

// PutEndpoint adds or replaces an endpoint of a partner. A secret given
// as "(set)", as the API shows it, keeps the stored one.
func (r *Registry) PutEndpoint(ctx context.Context, partnerID string, ep Endpoint) (Endpoint, error) {
	var stored Endpoint
	_, err := r.UpdatePartner(ctx, partnerID, func(p *Partner) error {
		i := slices.IndexFunc(p.Endpoints, func(o Endpoint) bool { return o.Name == ep.Name })
		if i >= 0 {
			ep.Auth = keepSecrets(ep.Auth, p.Endpoints[i].Auth)
		}
		if err := ep.check(); err != nil {
			return err
		}
		if i >= 0 {
			p.Endpoints[i] = ep
		} else {
			if len(p.Endpoints) >= 20 {
				return fmt.Errorf("%w: partner %q has 20 endpoints, the most it may hold", ErrInvalid, partnerID)
			}
			p.Endpoints = append(p.Endpoints, ep)
		}
		stored = ep
		return nil
	})
	return stored.redact(), err
}

// keepSecrets replaces the "(set)" placeholders of a with old's secrets.
func keepSecrets(a, old EndpointAuth) EndpointAuth {
	if a.Token == redacted {
		a.Token = old.Token
	}
	if a.ClientSecret == redacted {
		a.ClientSecret = old.ClientSecret
	}
	for i, s := range a.Secrets {
		if s == redacted && i < len(old.Secrets) {
			a.Secrets[i] = old.Secrets[i]
		}
	}
	return a
}

// DeleteEndpoint removes an endpoint of a partner.
func (r *Registry) DeleteEndpoint(ctx context.Context, partnerID, name string) error {
	_, err := r.UpdatePartner(ctx, partnerID, func(p *Partner) error {
		i := slices.IndexFunc(p.Endpoints, func(o Endpoint) bool { return o.Name == name })
		if i < 0 {
			return fmt.Errorf("endpoint %q of partner %q: %w", name, partnerID, ErrNotFound)
		}
		p.Endpoints = slices.Delete(p.Endpoints, i, i+1)
		return nil
	})
	return err
}

// CreatePartner registers a partner. It has no token until AddToken.
func (r *Registry) CreatePartner(ctx context.Context, p Partner) (Partner, error) {
	if err := ValidateID("partner", p.ID); err != nil {
		return Partner{}, err
	}
	if len(p.Name) > 200 {
		return Partner{}, fmt.Errorf("%w partner name: at most 200 bytes", ErrInvalid)
	}
	p.Tokens = nil
	p.Created = r.opts.Now().UTC()
	p.Updated = time.Time{}
	data, _ := json.Marshal(p)
	rev, err := r.kv.Create(ctx, partnerKey(p.ID), data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return Partner{}, fmt.Errorf("partner %q %w", p.ID, ErrExists)
	}
	if err != nil {
		return Partner{}, fmt.Errorf("partner: create %s: %w", p.ID, err)
	}
	r.applyLocal(partnerKey(p.ID), data, rev)
	return p, nil
}

// UpdatePartner changes a partner with change, written with compare-and-set
// so that concurrent changes never undo each other.
func (r *Registry) UpdatePartner(ctx context.Context, id string, change func(*Partner) error) (Partner, error) {
	for {
		kve, err := r.kv.Get(ctx, partnerKey(id))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return Partner{}, fmt.Errorf("partner %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return Partner{}, fmt.Errorf("partner: read %s: %w", id, err)
		}
		var p Partner
		if err := json.Unmarshal(kve.Value(), &p); err != nil {
			return Partner{}, fmt.Errorf("partner: the record of %s is unreadable: %w", id, err)
		}
		if err := change(&p); err != nil {
			return Partner{}, err
		}
		p.ID = id
		p.Updated = r.opts.Now().UTC()
		data, _ := json.Marshal(p)
		rev, err := r.kv.Update(ctx, partnerKey(id), data, kve.Revision())
		if err != nil {
			if isConflict(err) {
				continue
			}
			return Partner{}, fmt.Errorf("partner: update %s: %w", id, err)
		}
		r.applyLocal(partnerKey(id), data, rev)
		return public(p), nil
	}
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// DeletePartner removes a partner, its tokens and its own message types.
func (r *Registry) DeletePartner(ctx context.Context, id string) error {
	if _, err := r.Partner(id); err != nil {
		return err
	}
	for _, t := range r.Types(id) {
		if t.Partner == id {
			if err := r.DeleteType(ctx, id, t.Name); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	if err := r.kv.Delete(ctx, partnerKey(id)); err != nil {
		return fmt.Errorf("partner: delete %s: %w", id, err)
	}
	r.mu.Lock()
	delete(r.partners, id)
	r.mu.Unlock()
	return nil
}

// AddToken gives a partner a new token, valid until expires (zero: no
// expiry). The token is returned once; only its hash is stored. Other
// tokens stay valid, so a partner can move to the new one before the old
// is revoked.
func (r *Registry) AddToken(ctx context.Context, partnerID, name string, expires time.Time) (Token, string, error) {
	if len(name) > 100 {
		return Token{}, "", fmt.Errorf("%w token name: at most 100 bytes", ErrInvalid)
	}
	now := r.opts.Now().UTC()
	if !expires.IsZero() && !expires.After(now) {
		return Token{}, "", fmt.Errorf("%w token expiry %s: it is in the past", ErrInvalid, expires.Format(time.RFC3339))
	}
	id, secret, token := TokenKind.New()
	t := Token{ID: id, Name: name, Hash: auth.HashSecret(secret), Created: now, Expires: expires.UTC()}
	_, err := r.UpdatePartner(ctx, partnerID, func(p *Partner) error {
		if len(p.Tokens) >= 10 {
			return fmt.Errorf("%w: partner %q has 10 tokens, the most it may hold: revoke one first", ErrInvalid, partnerID)
		}
		p.Tokens = append(p.Tokens, t)
		return nil
	})
	if err != nil {
		return Token{}, "", err
	}
	t.Hash = ""
	return t, token, nil
}

// RevokeToken removes one of a partner's tokens, by id or name.
func (r *Registry) RevokeToken(ctx context.Context, partnerID, idOrName string) (Token, error) {
	var gone Token
	_, err := r.UpdatePartner(ctx, partnerID, func(p *Partner) error {
		i := slices.IndexFunc(p.Tokens, func(t Token) bool { return t.ID == idOrName })
		if i < 0 {
			i = slices.IndexFunc(p.Tokens, func(t Token) bool { return t.Name == idOrName && t.Name != "" })
		}
		if i < 0 {
			return fmt.Errorf("token %q of partner %q: %w (sluice partner show %s lists its tokens)", idOrName, partnerID, ErrNotFound, partnerID)
		}
		gone = p.Tokens[i]
		p.Tokens = slices.Delete(p.Tokens, i, i+1)
		return nil
	})
	gone.Hash = ""
	return gone, err
}

// Authenticate checks that token is one of partner's, unexpired, and that
// the partner is enabled. The secret is compared in constant time. Every
// failure says what is wrong without telling a guesser which tokens exist.
func (r *Registry) Authenticate(partnerID, token string) error {
	id, secret, err := TokenKind.Parse(token)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	r.mu.RLock()
	e := r.partners[partnerID]
	var t Token
	found := false
	if e != nil {
		for _, c := range e.p.Tokens {
			if c.ID == id {
				t, found = c, true
				break
			}
		}
	}
	r.mu.RUnlock()
	if !found || !auth.HashMatches(t.Hash, secret) {
		return fmt.Errorf("%w: the token is not one of partner %q's (unknown, revoked or mistyped)", ErrUnauthorized, partnerID)
	}
	now := r.opts.Now()
	if t.Expired(now) {
		return fmt.Errorf("%w: the token %s of partner %q expired at %s; ask for a new one", ErrUnauthorized, t.ID, partnerID, t.Expires.Format(time.RFC3339))
	}
	if !e.p.Enabled {
		return fmt.Errorf("%w: partner %q is disabled", ErrForbidden, partnerID)
	}
	r.noteUse(partnerID, t.ID, now)
	return nil
}

// noteUse records a token's use, to be written at most once a minute.
func (r *Registry) noteUse(partnerID, tokenID string, now time.Time) {
	k := partnerID + "/" + tokenID
	r.mu.RLock()
	fresh := false
	if e := r.partners[partnerID]; e != nil && now.Sub(e.wrote[tokenID]) < time.Minute {
		fresh = true
	}
	if t, ok := r.pending[k]; ok && now.Sub(t) < time.Minute {
		fresh = true
	}
	r.mu.RUnlock()
	if fresh {
		return
	}
	r.mu.Lock()
	r.pending[k] = now.UTC().Truncate(time.Second)
	r.mu.Unlock()
}

// FlushLastUsed writes the recorded token uses.
func (r *Registry) FlushLastUsed(ctx context.Context) {
	r.mu.Lock()
	pending := r.pending
	r.pending = map[string]time.Time{}
	r.mu.Unlock()
	byPartner := map[string]map[string]time.Time{}
	for k, at := range pending {
		p, t, _ := strings.Cut(k, "/")
		if byPartner[p] == nil {
			byPartner[p] = map[string]time.Time{}
		}
		byPartner[p][t] = at
	}
	for p, uses := range byPartner {
		_, err := r.UpdatePartner(ctx, p, func(rec *Partner) error {
			for i := range rec.Tokens {
				if at, ok := uses[rec.Tokens[i].ID]; ok && rec.Tokens[i].LastUsed.Before(at) {
					rec.Tokens[i].LastUsed = at
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			r.log.Debug("partner: token uses not recorded", "partner", p, "err", err)
		}
	}
}

// applyLocal applies a write of this instance at once, before the watch
// delivers it.
func (r *Registry) applyLocal(key string, value []byte, rev uint64) { r.change(key, value, rev, false) }

// PutType registers or replaces a message type. It is compiled first:
// a schema, transform or expression that does not compile is refused with
// the reason, and nothing is stored. create refuses an existing type.
func (r *Registry) PutType(ctx context.Context, t MessageType, create bool) (MessageType, error) {
	if t.Partner != "" {
		if _, err := r.Partner(t.Partner); err != nil {
			return MessageType{}, err
		}
	}
	now := r.opts.Now().UTC()
	t.Created, t.Updated = now, time.Time{}
	c, err := compile(t)
	if err != nil {
		return MessageType{}, err
	}
	t = c.def
	key := typeKey(t.Partner, t.Name)
	var rev uint64
	if create {
		data, _ := json.Marshal(t)
		rev, err = r.kv.Create(ctx, key, data)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return MessageType{}, fmt.Errorf("message type %q %w (replace it with PUT)", t.TypeKey(), ErrExists)
		}
		if err != nil {
			return MessageType{}, fmt.Errorf("partner: create type %s: %w", t.TypeKey(), err)
		}
		r.applyLocal(key, data, rev)
		return t, nil
	}
	if old, err := r.kv.Get(ctx, key); err == nil {
		var prev MessageType
		if json.Unmarshal(old.Value(), &prev) == nil && !prev.Created.IsZero() {
			t.Created, t.Updated = prev.Created, now
		}
	}
	data, _ := json.Marshal(t)
	if rev, err = r.kv.Put(ctx, key, data); err != nil {
		return MessageType{}, fmt.Errorf("partner: store type %s: %w", t.TypeKey(), err)
	}
	r.applyLocal(key, data, rev)
	return t, nil
}

// DeleteType removes a message type (partner "" for a shared one).
func (r *Registry) DeleteType(ctx context.Context, partnerID, name string) error {
	key := typeKey(partnerID, name)
	r.mu.RLock()
	_, ok := r.types[key]
	r.mu.RUnlock()
	if !ok {
		return fmt.Errorf("message type %q: %w", MessageType{Partner: partnerID, Name: name}.TypeKey(), ErrNotFound)
	}
	if err := r.kv.Delete(ctx, key); err != nil {
		return fmt.Errorf("partner: delete type: %w", err)
	}
	r.mu.Lock()
	delete(r.types, key)
	r.mu.Unlock()
	return nil
}

// Types lists the message types partner may send (its own and the shared
// ones open to it); partner "" lists every type.
func (r *Registry) Types(partnerID string) []MessageType {
	r.mu.RLock()
	var out []MessageType
	for _, e := range r.types {
		if e.c == nil {
			continue
		}
		if partnerID == "" || e.c.def.Allows(partnerID) {
			out = append(out, e.c.def)
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b MessageType) int { return strings.Compare(a.TypeKey(), b.TypeKey()) })
	return out
}

// lookup finds the type partner sends as name: its own first, then a
// shared one. A type that exists but is not open to the partner is
// ErrForbidden; one that did not compile here is an error of its own.
func (r *Registry) lookup(partnerID, name string) (*compiled, error) {
	r.mu.RLock()
	e := r.types[typeKey(partnerID, name)]
	if e == nil {
		e = r.types[typeKey("", name)]
	}
	r.mu.RUnlock()
	if e == nil {
		return nil, fmt.Errorf("message type %q for partner %q: %w", name, partnerID, ErrNotFound)
	}
	if e.err != nil {
		return nil, fmt.Errorf("%w: message type %q does not compile on this instance (%v)", ErrTypeUnusable, name, e.err)
	}
	if !e.c.def.Allows(partnerID) {
		return nil, fmt.Errorf("%w: partner %q may not send messages of type %q", ErrForbidden, partnerID, name)
	}
	return e.c, nil
}
