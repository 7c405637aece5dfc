// Package claim is the one way Sluice claims a key of a NATS JetStream
// key-value bucket: claim it, renew it, let it expire, take it over. Leases
// of partitions and feed ranges, idempotency keys, timer occurrences,
// breaker probes and message-id de-duplication are all claims; they differ
// in what they store beside the claim, not in how a claim is won or lost.
//
// # The protocol
//
// A claim is a key whose value says who holds it and until when. Every
// write to it is a compare-and-set on the key's revision ([Write]):
//
//   - claim a free key: create it (revision 0; a key that was deleted or
//     purged is free too);
//   - renew it, or record a result under it: update it at the revision of
//     the holder's last write;
//   - take over an expired claim: update it at the revision the taker read;
//   - release it: delete it at the holder's revision ([Delete]).
//
// Two claimers can therefore never both win a write: one of them gets a
// failed compare-and-set ([Conflict]). A holder whose renewal fails its
// compare-and-set has lost the claim ([ErrLost]): someone took it over or
// changed it. [Claim] is a claim held by this process: it keeps the
// revision of its last write and the local deadline up to which the holder
// may act, and [Claim.KeepAlive] renews it in the background.
//
// Whether a claim read from the bucket has expired is judged by [Expired]:
// from its deadline on. The deadline is the writer's time of the write plus
// the claim's lifetime, stated in the value (or, for leases, the server's
// timestamp of the write plus the lifetime). A reader that must not depend
// on the writer's clock at all also times the claim itself with a
// [Sighting]: a revision unchanged for a whole lifetime under its own eyes
// is dead, whatever the value says.
//
// # Clock skew
//
// Deadlines written by one clock are read by another. Let TTL be a claim's
// lifetime, R the period of its holder's renewals, d the time a write takes
// to be stored, M the holder's margin (it acts only until TTL − M after the
// local time just before its last confirmed write: [Claim.Held]), and ε the
// largest difference between the clocks involved (the claimers' and, where
// the server's timestamp is used, the NATS server's). Then:
//
//   - a holder that keeps renewing never has its claim taken over, as long
//     as ε < TTL − R − d;
//   - a holder that stops renewing (it died, stalled or lost its connection)
//     stops acting before anyone takes its claim over, as long as ε < M.
//
// NTP keeps ε within milliseconds; the lifetimes in use are seconds to
// minutes (leases: TTL 30 s, R 10 s, M 5 s by default). Claims with no
// margin (idempotency keys, timer occurrences, breaker probes, message ids)
// accept that a stalled holder may still be working, for at most ε, when
// its claim is taken over; it finds out at its next write, which fails its
// compare-and-set. Larger skew than these bounds does not let two writes
// both win; it lets a new holder start while the old one is still working.
package claim
