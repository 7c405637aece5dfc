package dr

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Status is what `sluice dr status` and GET /api/v1/dr show.
type Status struct {
	// Role is RolePrimary, RoleFollowing or RolePromoted.
	Role string `json:"role"`
	// PrimaryDomain is the JetStream domain a secondary follows (or
	// followed).
	PrimaryDomain string `json:"primary_domain,omitempty"`
	// Domain is this site's JetStream domain.
	Domain string `json:"domain,omitempty"`
	// Resources are this site's mirrors, by stream name (once promoted,
	// every stream of Sluice on this site).
	Resources []Resource `json:"resources"`
	// Mirrors counts the resources that are mirrors.
	Mirrors int `json:"mirrors"`
	// TotalLag is the messages the mirrors know they lack: what a
	// failover now would lose, at least.
	TotalLag uint64 `json:"total_lag"`
	// LastContactSeconds is the longest time since a mirror heard from
	// the primary; -1 when one never did, 0 without mirrors.
	LastContactSeconds float64 `json:"last_contact_seconds"`
	// Errors counts mirrors that report an error and streams of the
	// primary that could not be mirrored (see Problems).
	Errors int `json:"errors"`
	// Problems are the primary's streams that are not mirrored, with why.
	Problems map[string]string `json:"problems,omitempty"`
	// LastSync is when this instance last listed the primary's streams;
	// SyncError why the last attempt failed.
	LastSync  *time.Time `json:"last_sync,omitempty"`
	SyncError string     `json:"sync_error,omitempty"`
	// Promotion is the failover record, once promoted.
	Promotion *Promotion `json:"promotion,omitempty"`
	// LeafConnected says whether this site's embedded engine has a
	// leaf-node connection (to its primary, or from a secondary); absent
	// with an external engine.
	LeafConnected *bool `json:"leaf_connected,omitempty"`
}

// Resource is one mirrored stream.
type Resource struct {
	Stream string `json:"stream"`
	// Kind is KindHub, KindQueue, KindKV or KindBlob, and Name the hub,
	// queue, bucket or blob container; Partition a hub's partition.
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Partition *int   `json:"partition,omitempty"`
	// Mirror: still a mirror (false once promoted).
	Mirror   bool   `json:"mirror"`
	Messages uint64 `json:"messages"`
	LastSeq  uint64 `json:"last_seq"`
	// Lag is how many messages of the primary the mirror knows it lacks,
	// as of its last contact.
	Lag uint64 `json:"lag"`
	// LastContactSeconds is the time since the mirror last heard from the
	// primary; -1 when it never did.
	LastContactSeconds float64 `json:"last_contact_seconds"`
	Error              string  `json:"error,omitempty"`
}

// Status reports the mirrors of this site.
func (f *Follower) Status(ctx context.Context) (Status, error) {
	st := Status{Role: RoleFollowing, PrimaryDomain: f.cfg.PrimaryDomain, Resources: []Resource{}}
	if p := f.Promotion(); p != nil {
		st.Role, st.Promotion = RolePromoted, p
	}
	infos, err := f.localStreams(ctx)
	if err != nil {
		return st, err
	}
	for _, info := range infos {
		cfg := info.Config
		if !isSluiceMirror(cfg) && st.Role == RoleFollowing {
			continue // not a mirror: see Problems
		}
		r := Resource{Stream: cfg.Name, Kind: KindOf(cfg.Name), Mirror: cfg.Mirror != nil,
			Messages: info.State.Msgs, LastSeq: info.State.LastSeq, LastContactSeconds: -1}
		r.Name, r.Partition = nameOf(cfg.Name)
		if m := info.Mirror; m != nil {
			st.Mirrors++
			r.Lag = m.Lag
			if m.Active >= 0 {
				r.LastContactSeconds = m.Active.Seconds()
			}
			if m.Error != nil {
				r.Error = m.Error.Error()
			}
			st.TotalLag += r.Lag
			if r.LastContactSeconds < 0 || st.LastContactSeconds < 0 {
				st.LastContactSeconds = -1
			} else {
				st.LastContactSeconds = max(st.LastContactSeconds, r.LastContactSeconds)
			}
		} else {
			r.LastContactSeconds = 0
		}
		if r.Error != "" {
			st.Errors++
		}
		st.Resources = append(st.Resources, r)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if st.Role != RoleFollowing {
		return st, nil // following is over: its last attempts do not matter
	}
	if !f.lastSync.IsZero() {
		t := f.lastSync.UTC()
		st.LastSync = &t
	}
	if f.syncErr != nil {
		st.SyncError = f.syncErr.Error()
	}
	if len(f.problems) > 0 {
		st.Problems = map[string]string{}
		for k, v := range f.problems {
			st.Problems[k] = v
		}
		st.Errors += len(f.problems)
	}
	return st, nil
}

// nameOf is the user-facing name of a stream: a hub and its partition, a
// queue, a bucket or a blob container.
func nameOf(stream string) (string, *int) {
	switch KindOf(stream) {
	case KindHub:
		rest := strings.TrimPrefix(stream, "hub-")
		if i := strings.LastIndexByte(rest, '-'); i > 0 {
			if p, err := strconv.Atoi(rest[i+1:]); err == nil {
				return rest[:i], &p
			}
		}
		return rest, nil
	case KindQueue:
		return strings.TrimPrefix(stream, "queue-"), nil
	case KindBlob:
		return strings.TrimPrefix(stream, objPrefix+"blob-"), nil
	case KindKV:
		return strings.TrimPrefix(stream, kvPrefix), nil
	}
	return stream, nil
}
