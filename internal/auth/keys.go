package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/service"
)

// Bucket is the KV bucket that holds API keys, shared by every instance.
const Bucket = "sluice-keys"

// Key is an API key as stored: never the secret, only its SHA-256. The
// secret is high-entropy random (256 bits), so a plain hash is enough: no
// dictionary attack can find it.
type Key struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	Hash      string    `json:"hash"` // hex SHA-256 of the secret part
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by,omitempty"`
	// Expires is when the key stops working; zero: never.
	Expires time.Time `json:"expires,omitzero"`
	// LastUsed is recorded at most once a minute per instance.
	LastUsed time.Time `json:"last_used,omitzero"`
}

// Expired reports whether the key has expired at now.
func (k Key) Expired(now time.Time) bool { return !k.Expires.IsZero() && !now.Before(k.Expires) }

// Principal is who a verified key says a request comes from.
type Principal struct {
	KeyID  string
	Name   string
	Scopes []Scope
}

// Allows reports whether the principal may do need.
func (p *Principal) Allows(need Need) bool { return anyAllows(p.Scopes, need) }

func (p *Principal) String() string {
	if p.KeyID == "" {
		return p.Name
	}
	return fmt.Sprintf("key %q (%s)", p.Name, p.KeyID)
}

// Errors of Keys.
var (
	// ErrKeyNotFound is returned by Revoke when no key has that id or name.
	ErrKeyNotFound = errors.New("no such API key")
	// ErrBadRequest matches errors of Create, Import and Revoke that are
	// the caller's mistake (a bad name or scope, an ambiguous name).
	ErrBadRequest = errors.New("bad API key request")
	// ErrInvalidKey is returned by Verify for a key that is malformed,
	// unknown, revoked or wrong.
	ErrInvalidKey = errors.New("the API key is not valid (unknown, revoked or mistyped)")
)

// KeysOptions configure Keys.
type KeysOptions struct {
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// LastUsedEvery is how often recorded uses are written. Default 15s.
	LastUsedEvery time.Duration
}

// Keys are the API keys of the cluster, read from the KV bucket and kept
// in memory: every instance follows the bucket, so a key created or
// revoked anywhere is honoured everywhere (at once on the instance that
// changed it, within the watch's delivery elsewhere).
type Keys struct {
	kv   jetstream.KeyValue
	opts KeysOptions
	log  *slog.Logger

	mu      sync.RWMutex
	byID    map[string]*entry
	pending map[string]time.Time // uses to record, by key id

	life service.Lifecycle
}

type entry struct {
	key    Key
	scopes []Scope
	hash   []byte
	rev    uint64
	// wrote is the last use written or read for this key.
	wrote time.Time
}

// OpenKeysBucket creates or opens the keys bucket.
func OpenKeysBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("auth: open the API key bucket: %w", err)
	}
	return kv, nil
}

// OpenKeys loads the keys of kv and follows changes until Stop.
func OpenKeys(ctx context.Context, kv jetstream.KeyValue, opts KeysOptions) (*Keys, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.LastUsedEvery = cmp.Or(opts.LastUsedEvery, 15*time.Second)
	k := &Keys{kv: kv, opts: opts, log: opts.Logger, byID: map[string]*entry{}, pending: map[string]time.Time{}}
	// The initial values are in before OpenKeys returns, so that a
	// restarted instance never serves a request as if no key existed.
	if err := k.life.FollowKV(kv, k.apply); err != nil {
		_ = k.Stop(ctx)
		return nil, fmt.Errorf("auth: watch API keys: %w", err)
	}
	k.life.Every(opts.LastUsedEvery, k.FlushLastUsed)
	return k, nil
}

// Stop stops following the bucket and writes the uses recorded so far
// (within ctx, and at most 2s: a use not written is not worth more). Safe
// to call more than once.
func (k *Keys) Stop(ctx context.Context) error {
	return k.life.Stop(ctx, nil, func(ctx context.Context) error {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		k.FlushLastUsed(fctx)
		return nil
	})
}

// Stopped is closed once Stop has finished.
func (k *Keys) Stopped() <-chan struct{} { return k.life.Stopped() }

func keyName(id string) string { return "key." + id }

// apply takes in a change of the bucket.
func (k *Keys) apply(kve jetstream.KeyValueEntry) {
	id, ok := strings.CutPrefix(kve.Key(), "key.")
	if !ok {
		return
	}
	if kve.Operation() != jetstream.KeyValuePut {
		k.mu.Lock()
		if e := k.byID[id]; e != nil && e.rev <= kve.Revision() {
			delete(k.byID, id)
		}
		k.mu.Unlock()
		return
	}
	var key Key
	if err := json.Unmarshal(kve.Value(), &key); err != nil || key.ID != id {
		k.log.Warn("auth: unreadable API key record; it grants nothing", "key_id", id, "err", err)
		return
	}
	e, err := newEntry(key, kve.Revision())
	if err != nil {
		k.log.Warn("auth: API key record with bad scopes or hash; it grants nothing", "key_id", id, "err", err)
		return
	}
	k.mu.Lock()
	if old := k.byID[id]; old == nil || old.rev < e.rev {
		k.byID[id] = e
	}
	k.mu.Unlock()
}

func newEntry(key Key, rev uint64) (*entry, error) {
	scopes, err := ParseScopes(key.Scopes)
	if err != nil {
		return nil, err
	}
	hash, err := hex.DecodeString(key.Hash)
	if err != nil || len(hash) != sha256.Size {
		return nil, errors.New("the hash is not a hex SHA-256")
	}
	return &entry{key: key, scopes: scopes, hash: hash, rev: rev, wrote: key.LastUsed}, nil
}

// Any reports whether at least one key exists (expired ones count: an
// expired key still means the operator asked for keys).
func (k *Keys) Any() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.byID) > 0
}

// CreateOptions describe a new key.
type CreateOptions struct {
	Name   string
	Scopes []string
	// TTL, when positive, makes the key expire that long after creation.
	TTL       time.Duration
	CreatedBy string
}

func (o CreateOptions) validate() ([]Scope, error) {
	if err := validName(o.Name); err != nil {
		return nil, badRequest{err}
	}
	if o.TTL < 0 {
		return nil, badRequest{fmt.Errorf("the expiry %s is negative: give a positive duration, or none for a key that does not expire", o.TTL)}
	}
	scopes, err := ParseScopes(o.Scopes)
	if err != nil {
		return nil, badRequest{err}
	}
	return scopes, nil
}

// badRequest is a caller's mistake; it matches ErrBadRequest.
type badRequest struct{ error }

func (e badRequest) Is(target error) bool { return target == ErrBadRequest }
func (e badRequest) Unwrap() error        { return e.error }

func validName(name string) error {
	switch {
	case name == "":
		return errors.New("a key needs a name that says who uses it, such as ci or dashboard")
	case len(name) > 64:
		return fmt.Errorf("key name %q is longer than 64 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("key name %q: use letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// Create makes a new key and returns it with its secret token, which is
// shown once and never stored.
func (k *Keys) Create(ctx context.Context, o CreateOptions) (Key, string, error) {
	if _, err := o.validate(); err != nil {
		return Key{}, "", err
	}
	id, secret := newToken()
	key, err := k.store(ctx, id, secret, o)
	if err != nil {
		return Key{}, "", err
	}
	return key, FormatToken(id, secret), nil
}

// Import stores a key whose token was made elsewhere (a bootstrap key
// file). Importing the same token again is a no-op; a token whose id
// exists with another secret is an error.
func (k *Keys) Import(ctx context.Context, token string, o CreateOptions) (Key, error) {
	if _, err := o.validate(); err != nil {
		return Key{}, err
	}
	id, secret, err := ParseToken(token)
	if err != nil {
		return Key{}, badRequest{err}
	}
	key, err := k.importExisting(ctx, id, secret)
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return key, err
	}
	key, err = k.store(ctx, id, secret, o)
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Another instance imported it at the same moment (instances
		// started together with one key file).
		return k.importExisting(ctx, id, secret)
	}
	return key, err
}

// importExisting returns the stored key id when secret is its own, and an
// error wrapping jetstream.ErrKeyNotFound when no key id is stored.
func (k *Keys) importExisting(ctx context.Context, id, secret string) (Key, error) {
	kve, err := k.kv.Get(ctx, keyName(id))
	if err != nil {
		return Key{}, fmt.Errorf("auth: read key %s: %w", id, err)
	}
	var existing Key
	if err := json.Unmarshal(kve.Value(), &existing); err != nil {
		return Key{}, fmt.Errorf("auth: key %s: unreadable record: %w", id, err)
	}
	if !hashMatches(existing.Hash, secret) {
		return Key{}, badRequest{fmt.Errorf("a different key with id %s exists; make a new token (remove the file to have one made)", id)}
	}
	return existing, nil
}

func (k *Keys) store(ctx context.Context, id, secret string, o CreateOptions) (Key, error) {
	now := k.opts.Now().UTC().Truncate(time.Second)
	scopes, _ := ParseScopes(o.Scopes)
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = s.String()
	}
	sum := sha256.Sum256([]byte(secret))
	key := Key{ID: id, Name: o.Name, Scopes: names, Hash: hex.EncodeToString(sum[:]), Created: now, CreatedBy: o.CreatedBy}
	if o.TTL > 0 {
		key.Expires = now.Add(o.TTL)
	}
	data, _ := json.Marshal(key)
	rev, err := k.kv.Create(ctx, keyName(id), data)
	if err != nil {
		return Key{}, fmt.Errorf("auth: store key %s: %w", o.Name, err)
	}
	e, err := newEntry(key, rev)
	if err != nil {
		return Key{}, err
	}
	k.mu.Lock()
	if old := k.byID[id]; old == nil || old.rev < rev {
		k.byID[id] = e
	}
	k.mu.Unlock()
	return key, nil
}

// List returns the keys, oldest first.
func (k *Keys) List() []Key {
	k.mu.RLock()
	out := make([]Key, 0, len(k.byID))
	for _, e := range k.byID {
		key := e.key
		if e.wrote.After(key.LastUsed) {
			key.LastUsed = e.wrote
		}
		if t, ok := k.pending[key.ID]; ok && t.After(key.LastUsed) {
			key.LastUsed = t
		}
		out = append(out, key)
	}
	k.mu.RUnlock()
	slices.SortFunc(out, func(a, b Key) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
	return out
}

// Revoke deletes the key with the id, or the one key with the name. It
// stops working at once on this instance.
func (k *Keys) Revoke(ctx context.Context, idOrName string) (Key, error) {
	var match []Key
	for _, key := range k.List() {
		if key.ID == idOrName || key.Name == idOrName {
			match = append(match, key)
		}
	}
	switch {
	case len(match) == 0:
		return Key{}, fmt.Errorf("%w: %q is neither the id nor the name of a key (list them with sluice key list)", ErrKeyNotFound, idOrName)
	case len(match) > 1:
		ids := make([]string, len(match))
		for i, m := range match {
			ids[i] = m.ID
		}
		return Key{}, badRequest{fmt.Errorf("%d keys are named %q (%s): revoke one by its id", len(match), idOrName, strings.Join(ids, ", "))}
	}
	key := match[0]
	if err := k.kv.Delete(ctx, keyName(key.ID)); err != nil {
		return Key{}, fmt.Errorf("auth: revoke key %s: %w", key.ID, err)
	}
	k.mu.Lock()
	delete(k.byID, key.ID)
	delete(k.pending, key.ID)
	k.mu.Unlock()
	return key, nil
}

// Verify checks a token and returns who it says the caller is. The secret
// is compared in constant time. A use is recorded for LastUsed.
func (k *Keys) Verify(token string) (*Principal, error) {
	id, secret, err := ParseToken(token)
	if err != nil {
		return nil, ErrInvalidKey
	}
	k.mu.RLock()
	e := k.byID[id]
	k.mu.RUnlock()
	if e == nil {
		return nil, ErrInvalidKey
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], e.hash) != 1 {
		return nil, ErrInvalidKey
	}
	now := k.opts.Now()
	if e.key.Expired(now) {
		return nil, fmt.Errorf("%w: key %q (%s) expired at %s; create a new one with sluice key create",
			ErrInvalidKey, e.key.Name, e.key.ID, e.key.Expires.Format(time.RFC3339))
	}
	k.noteUse(e, now)
	return &Principal{KeyID: e.key.ID, Name: e.key.Name, Scopes: e.scopes}, nil
}

// noteUse records a use to be written, at most once a minute per key.
func (k *Keys) noteUse(e *entry, now time.Time) {
	k.mu.RLock()
	fresh := now.Sub(e.wrote) < time.Minute
	if !fresh {
		if t, ok := k.pending[e.key.ID]; ok && now.Sub(t) < time.Minute {
			fresh = true
		}
	}
	k.mu.RUnlock()
	if fresh {
		return
	}
	k.mu.Lock()
	k.pending[e.key.ID] = now.UTC().Truncate(time.Second)
	k.mu.Unlock()
}

// FlushLastUsed writes the recorded uses. A key revoked meanwhile stays
// revoked: the write is conditional on the record's revision.
func (k *Keys) FlushLastUsed(ctx context.Context) {
	k.mu.Lock()
	pending := k.pending
	k.pending = map[string]time.Time{}
	k.mu.Unlock()
	for id, at := range pending {
		for range 3 {
			kve, err := k.kv.Get(ctx, keyName(id))
			if err != nil {
				break // revoked, or the engine is away: the use is not worth more
			}
			var key Key
			if json.Unmarshal(kve.Value(), &key) != nil || !key.LastUsed.Before(at) {
				break
			}
			key.LastUsed = at
			data, _ := json.Marshal(key)
			if _, err := k.kv.Update(ctx, keyName(id), data, kve.Revision()); err == nil {
				k.mu.Lock()
				if e := k.byID[id]; e != nil && e.wrote.Before(at) {
					e.wrote = at
				}
				k.mu.Unlock()
				break
			}
		}
	}
}

// Token format: "sluice_" + 12 hex digits of id + "_" + 64 hex digits of
// secret. The prefix lets secret scanners find leaked keys; the id finds
// the record without comparing secrets. Partner tokens have the same shape
// with their own prefix (see TokenKind).
const (
	tokenPrefix = "sluice_"
	idLen       = 12
	secretLen   = 64
)

// TokenKind is a kind of token: its prefix, and what to call it in errors.
type TokenKind struct {
	Prefix string // "sluice_"
	What   string // "Sluice API key"
}

// APIKeyToken is the kind of API keys.
var APIKeyToken = TokenKind{Prefix: tokenPrefix, What: "Sluice API key"}

// New makes a fresh random id and secret (256 bits) and the token of both.
func (k TokenKind) New() (id, secret, token string) {
	b := make([]byte, idLen/2+secretLen/2)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	id, secret = hex.EncodeToString(b[:idLen/2]), hex.EncodeToString(b[idLen/2:])
	return id, secret, k.Prefix + id + "_" + secret
}

// Parse splits a token of this kind into its id and secret.
func (k TokenKind) Parse(token string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(token, k.Prefix)
	if !ok || len(rest) != idLen+1+secretLen || rest[idLen] != '_' {
		return "", "", fmt.Errorf("not a %s: they look like %s<12 hex digits>_<64 hex digits>", k.What, k.Prefix)
	}
	id, secret = rest[:idLen], rest[idLen+1:]
	if !isLowerHex(id) || !isLowerHex(secret) {
		return "", "", fmt.Errorf("not a %s: the id and secret are lowercase hex digits", k.What)
	}
	return id, secret, nil
}

func newToken() (id, secret string) {
	id, secret, _ = APIKeyToken.New()
	return id, secret
}

// FormatToken makes a token from its id and secret.
func FormatToken(id, secret string) string { return tokenPrefix + id + "_" + secret }

// ParseToken splits an API key into its id and secret.
func ParseToken(token string) (id, secret string, err error) { return APIKeyToken.Parse(token) }

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// HashSecret is the stored form of a token's secret: hex SHA-256. The
// secret is 256 random bits, so a plain hash resists every search.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// HashMatches compares a secret with its stored hash in constant time.
func HashMatches(hexHash, secret string) bool {
	want, err := hex.DecodeString(hexHash)
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], want) == 1
}

func hashMatches(hexHash, secret string) bool { return HashMatches(hexHash, secret) }

// NewToken makes a fresh token, for a bootstrap key file.
func NewToken() string { return FormatToken(newToken()) }
