package sluice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/internal/host"
	"github.com/sluicehq/sluice/internal/service"
)

// Instances that share an engine must share their document store: change
// feeds, views and the documents functions write are only whole in one
// store. An instance with its own SQLite file beside others is the usual
// mistake (a second machine joined with --nats-url and no --docstore), so
// each instance that others can reach announces its store in the KV bucket
// sluice-docstores, and one whose store differs from a live instance's is
// refused when either of them is SQLite and either of them uses documents
// (declares containers or change-feed functions).

const (
	docStoresBucket = "sluice-docstores"
	// docStoreRefresh is how often an instance renews its announcement;
	// one not renewed within docStoreStale belongs to a stopped instance.
	docStoreRefresh = 20 * time.Second
	docStoreStale   = 3 * docStoreRefresh
)

// docStoreAnnouncement is an instance's record in sluice-docstores.
type docStoreAnnouncement struct {
	Instance string `json:"instance"`
	Store    string `json:"store"` // see docStoreIdentity
	// UsesDocs: the instance declares containers or change-feed
	// functions.
	UsesDocs bool      `json:"uses_docs"`
	Seen     time.Time `json:"seen"`
}

// docStoreIdentity names a document store so that instances using the
// same one agree: "sqlite:<host>:<absolute path>" or
// "postgres:<host:port>/<database>" (no user, no password).
func docStoreIdentity(cfg Config) string {
	if cfg.DocStore == "" {
		host, _ := os.Hostname()
		path := filepath.Join(cfg.DataDir, "docs.db")
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		return "sqlite:" + host + ":" + path
	}
	u, err := url.Parse(cfg.DocStore)
	if err != nil {
		return "postgres:(unparsable)"
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	return "postgres:" + host + ":" + port + strings.ToLower(u.Path)
}

// docShare keeps this instance's announcement fresh until stopped.
type docShare struct {
	kv   jetstream.KeyValue
	key  string
	ann  docStoreAnnouncement
	life service.Lifecycle
}

// checkDocStoreShared refuses a document store that differs from a live
// instance's on the same engine, when one of the two is SQLite, and
// starts announcing this instance's. It does nothing when no other
// process can reach the engine.
func (a *App) checkDocStoreShared(ctx context.Context) error {
	if a.eng.Private() {
		return nil
	}
	kv, err := a.eng.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: docStoresBucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return fmt.Errorf("sluice: open the document store registry: %w", err)
	}
	mine := docStoreIdentity(a.cfg)
	usesDocs := len(a.containers) > 0 || slices.ContainsFunc(a.fns, func(f *declared) bool {
		_, feed := f.trigger.(*host.FeedFunction)
		return feed
	})
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("sluice: read the document store registry: %w", err)
	}
	now := time.Now()
	var conflict *docStoreAnnouncement
	for key := range lister.Keys() {
		kve, err := kv.Get(ctx, key)
		if err != nil {
			continue // gone meanwhile
		}
		var ann docStoreAnnouncement
		if json.Unmarshal(kve.Value(), &ann) != nil || ann.Instance == a.cfg.InstanceID || now.Sub(ann.Seen) > docStoreStale {
			continue
		}
		if ann.Store != mine && (usesDocs || ann.UsesDocs) && (strings.HasPrefix(ann.Store, "sqlite:") || strings.HasPrefix(mine, "sqlite:")) {
			conflict = &ann
			break
		}
		if ann.Store != mine && !strings.HasPrefix(mine, "sqlite:") && !strings.HasPrefix(ann.Store, "sqlite:") {
			a.log.Warn("another instance on this engine names its PostgreSQL document store differently; instances must share one store (ignore this if both names are the same database)",
				"instance", ann.Instance, "theirs", ann.Store, "ours", mine)
		}
	}
	if conflict != nil {
		return fmt.Errorf("sluice: instance %s shares this NATS server and keeps its documents in %s, but this one would use %s: documents and change feeds would differ by instance. Give every instance the same --docstore (a PostgreSQL URL), or stop %s first",
			conflict.Instance, describeStore(conflict.Store), describeStore(mine), conflict.Instance)
	}
	s := &docShare{kv: kv, key: "instance." + keyToken(a.cfg.InstanceID),
		ann: docStoreAnnouncement{Instance: a.cfg.InstanceID, Store: mine, UsesDocs: usesDocs}}
	if err := s.announce(ctx); err != nil {
		return fmt.Errorf("sluice: announce the document store: %w", err)
	}
	stopping, rctx := s.life.Stopping(), s.life.Context()
	s.life.Go(func() {
		t := time.NewTicker(docStoreRefresh)
		defer t.Stop()
		for {
			select {
			case <-stopping:
				return
			case <-t.C:
				if err := s.announce(rctx); err != nil && rctx.Err() == nil {
					a.log.Warn("cannot renew this instance's document store announcement", "err", err)
				}
			}
		}
	})
	a.docShare = s
	return nil
}

func (s *docShare) announce(ctx context.Context) error {
	s.ann.Seen = time.Now().UTC()
	data, _ := json.Marshal(s.ann)
	_, err := s.kv.Put(ctx, s.key, data)
	return err
}

// Stop ends the announcement and removes it (within ctx, and at most 2s;
// one not removed goes stale on its own). Safe on nil and twice.
func (s *docShare) Stop(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return s.life.Stop(ctx, nil, func(ctx context.Context) error {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := s.kv.Delete(dctx, s.key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("remove this instance's record from %s (it goes stale within %s): %w", docStoresBucket, docStoreStale, err)
		}
		return nil
	})
}

func describeStore(id string) string {
	if rest, ok := strings.CutPrefix(id, "sqlite:"); ok {
		host, path, _ := strings.Cut(rest, ":")
		return "the SQLite file " + path + " on " + host
	}
	return "PostgreSQL at " + strings.TrimPrefix(id, "postgres:")
}

// keyToken makes s usable as one KV key token.
func keyToken(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
