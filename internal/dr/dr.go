// Package dr is Sluice's geo-disaster recovery: a secondary deployment, on
// an engine of its own, follows a primary and can be promoted when the
// primary's site is lost.
//
// The secondary's NATS server is a leaf node of the primary's, each with
// its own JetStream domain (see engine.Config.Domain). A [Follower] on the
// secondary mirrors, on the secondary's engine, every stream of the
// primary that holds Sluice's data: each hub partition, each queue, each
// blob container and the KV buckets whose state must survive the site
// (checkpoints, hub definitions, consumer groups, message ids, API keys,
// idempotency keys, timer occurrences, blob receipts, change-feed
// positions). A mirror keeps the sequence numbers of its origin, so event
// positions and checkpoints mean the same on both sites, and KV revisions
// stay valid for compare-and-set. Buckets that describe the running
// instances of one site stay local ([LocalBuckets]). The follower looks
// for new resources of the primary every [Config.Interval] and mirrors
// them too.
//
// While following, the secondary runs no functions and takes no writes.
// [Follower.Failover] promotes every mirror to an ordinary stream with its
// origin's subjects, and records the promotion in the local bucket
// [Bucket], which every instance of the secondary watches: they then start
// their functions from the mirrored checkpoints. What the mirrors had not
// received yet when the primary was lost (their lag at promotion) is the
// recovery point.
package dr

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Roles of an instance, as Status reports them.
const (
	// RolePrimary: not a DR secondary (whether or not a secondary follows it).
	RolePrimary = "primary"
	// RoleFollowing: a DR secondary that mirrors its primary and runs no
	// functions.
	RoleFollowing = "secondary-following"
	// RolePromoted: a DR secondary after failover; it runs as a primary.
	RolePromoted = "promoted"
)

// Bucket is the secondary's local KV bucket of DR state (the promotion
// record). It is never mirrored: it says what this site did.
const Bucket = "sluice-dr"

// Resource kinds.
const (
	KindHub   = "hub"
	KindQueue = "queue"
	KindKV    = "kv"
	KindBlob  = "blob"
)

// Errors.
var (
	// ErrNotSecondary: failover was asked of an instance that is not a DR
	// secondary.
	ErrNotSecondary = errors.New("this instance is not a DR secondary: it follows no primary, so there is nothing to promote " +
		"(failover runs on the secondary site, an instance started with --dr-primary-domain)")
	// ErrStandby: a write was asked of a secondary that is still
	// following its primary.
	ErrStandby = errors.New("this instance is a DR standby following its primary: it takes no writes and runs no functions; " +
		"write to the primary, or promote this site with `sluice dr failover` (POST /api/v1/dr/failover) if the primary is lost")
)

// LocalBuckets are the KV buckets of Sluice that a secondary does not
// mirror, with why: their entries are about the instances and the
// downstream services of one site, and carried over they would make the
// secondary's instances wait for the primary's dead ones.
var LocalBuckets = map[string]string{
	// Partition and feed-range leases and instance membership name the
	// primary's instances: mirrored, the secondary's instances would wait
	// out their expiry before taking any partition, and count dead
	// members when balancing.
	"sluice-leases": "leases and membership name the primary's instances",
	// A breaker reflects the health of a downstream service as this
	// site's instances see it (the secondary site has its own
	// downstreams), and its probe claims name instances.
	"sluice-breakers": "breaker state is the health of this site's downstream services",
	// Queue lock tokens name deliveries of the primary's consumers, which
	// a promoted queue does not have.
	"sluice-queue-locks": "queue lock tokens name deliveries of the primary's consumers",
	// Each instance announces its document store to the others of its
	// site; the secondary has its own store (a PostgreSQL replica).
	"sluice-docstores": "document store announcements are per site",
	// This package's own state.
	Bucket: "the DR state of this site",
}

// kvPrefix, objPrefix are the stream name prefixes of KV buckets and
// object stores.
const (
	kvPrefix  = "KV_"
	objPrefix = "OBJ_"
)

// KindOf says whether a stream of the primary is mirrored and as what: ""
// when it is not one of Sluice's, or stays local. Hub partitions are
// hub-<name>-<p>, queues queue-<name>, blob containers OBJ_blob-<name>, and
// KV buckets KV_sluice-<name>: every one of those but LocalBuckets, so
// that a bucket added later is kept unless it is known to be local.
func KindOf(stream string) string {
	switch {
	case strings.HasPrefix(stream, "hub-"):
		return KindHub
	case strings.HasPrefix(stream, "queue-"):
		return KindQueue
	case strings.HasPrefix(stream, objPrefix+"blob-"):
		return KindBlob
	case strings.HasPrefix(stream, kvPrefix+"sluice-"):
		if _, local := LocalBuckets[strings.TrimPrefix(stream, kvPrefix)]; local {
			return ""
		}
		return KindKV
	}
	return ""
}

// Metadata keys of a mirror (and of the stream it is promoted to).
const (
	// metaSubjects holds the origin's subjects (a JSON list), given back
	// to the stream when it is promoted.
	metaSubjects = "sluice.dr.subjects"
	// metaOrigin names the origin's domain.
	metaOrigin = "sluice.dr.origin"
)

// APIPrefix is the JetStream API prefix of a domain.
func APIPrefix(domain string) string { return "$JS." + domain + ".API" }

// mirrorConfig is the configuration of the mirror of the primary's stream
// origin: the same limits, retention and name, no subjects (a mirror takes
// none), the origin's subjects kept in its metadata for promotion, and
// what a mirror cannot have (atomic batches, counters, schedules) left
// off: Sluice sets those again where it needs them once promoted.
//
// KV buckets and object stores get the stream form that nats.go's
// KeyValueConfig.Mirror makes (a stream named KV_<bucket> with no subjects
// and the origin in Mirror, so KeyValue(bucket) opens it and reads the
// origin's keys), but built from the origin's own configuration, so that
// history, TTL, limits and direct gets match whatever the bucket was
// created with. MirrorDirect stays off: the mirror has the origin's name
// and answers direct gets of it already (AllowDirect, copied).
func mirrorConfig(origin jetstream.StreamConfig, domain string, replicas int) jetstream.StreamConfig {
	c := origin
	subjects, _ := json.Marshal(origin.Subjects)
	c.Metadata = map[string]string{}
	for k, v := range origin.Metadata {
		if !strings.HasPrefix(k, "_nats.") {
			c.Metadata[k] = v
		}
	}
	c.Metadata[metaSubjects] = string(subjects)
	c.Metadata[metaOrigin] = domain
	c.Subjects, c.Sources, c.SubjectTransform, c.RePublish, c.Placement = nil, nil, nil, nil, nil
	c.Mirror = &jetstream.StreamSource{Name: origin.Name, External: &jetstream.ExternalStream{APIPrefix: APIPrefix(domain)}}
	c.MirrorDirect = false
	c.AllowAtomicPublish, c.AllowBatchPublish, c.AllowMsgCounter, c.AllowMsgSchedules = false, false, false, false
	c.FirstSeq, c.Sealed = 0, false
	c.Replicas = replicas
	return c
}

// promotedConfig is the configuration that promotes mirror m: no mirror,
// its origin's subjects.
func promotedConfig(m jetstream.StreamConfig) (jetstream.StreamConfig, error) {
	var subjects []string
	if err := json.Unmarshal([]byte(m.Metadata[metaSubjects]), &subjects); err != nil || len(subjects) == 0 {
		return m, fmt.Errorf("dr: mirror %s does not say its origin's subjects (metadata %s): it was not made by Sluice's follower; promote it by hand (nats stream edit) or delete it", m.Name, metaSubjects)
	}
	c := m
	c.Mirror, c.MirrorDirect = nil, false
	c.Subjects = subjects
	return c, nil
}

// isSluiceMirror reports whether cfg is a mirror this package made.
func isSluiceMirror(cfg jetstream.StreamConfig) bool {
	return cfg.Mirror != nil && cfg.Metadata[metaSubjects] != ""
}

// wasPromoted reports whether cfg is a stream this package made as a
// mirror and promoted.
func wasPromoted(cfg jetstream.StreamConfig) bool {
	return cfg.Mirror == nil && cfg.Metadata[metaSubjects] != ""
}
