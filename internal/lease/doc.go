// Package lease shares units of work (the partitions of a hub for one consumer
// group, the ranges of a change feed) among the Sluice instances that use one
// NATS JetStream key-value bucket, so that at most one instance works on a unit
// at a time (DESIGN.md invariant 4, "one owner") and a dead instance's units
// are taken over once its leases expire.
//
// # Using it
//
// A [Manager] speaks for one instance. [Manager.Join] makes the instance a
// member of a named set of units; for every unit the instance comes to own, the
// run function given to Join is called in its own goroutine with a context that
// is cancelled the moment the unit must no longer be processed. Its cause
// ([context.Cause]) says why: [ErrLost], [ErrReleased] or [ErrStopped]. Before
// a holder writes anything that only the owner may write (a checkpoint), it can
// ask [Valid] whether the lease is still good right now.
//
// # Keys
//
// Each set is one token of the bucket's key space, named by escaping the set
// name (see encodeToken: "orders.$Default" becomes "orders_2E_24Default"):
//
//	<set>.m.<instance>  member heartbeat: {"instance","session","units"}, put every Renew
//	<set>.o.<unit>      ownership: {"owner","session"}, written only by compare-and-set
//
// A member whose heartbeat is older than Expiry is dead. An ownership key is
// held by its owner while it is younger than Expiry; a deleted or purged key
// is free, and so is one that has expired.
//
// # Safety
//
// An ownership key is a claim of package claim: every write to it is a
// compare-and-set on the key's revision (create for a free key, update at
// the revision last seen for a claim of an expired key or a renewal, a
// revision-checked delete for a release), so two instances can never both
// believe a write made them the owner. A renewal whose reply is lost (it
// timed out, but the server stored it) makes the holder's next
// compare-and-set fail on its own write: the holder reads the key and, when
// the write there is its own session's, adopts it and writes again, rather
// than take it for a takeover. A release whose delete fails for another
// reason than a compare-and-set is tried again every round until the key
// would have expired anyway.
//
// Expiry is judged by comparing the server's timestamp of the last write
// (entry.Created) with the local clock. The holder measures from the local
// time just before it sent its last confirmed renewal (no later than the
// server's timestamp of that write) and cancels the unit's context at
// Expiry − Renew/2 after it, without waiting for the next round; others take
// the unit only after Expiry. In the terms of package claim the lifetime is
// Expiry and the holder's margin Renew/2: the run function has Renew/2 to
// notice the cancellation, provided the clocks of the instances and of the
// NATS server differ by less than that (5 s with the defaults; the bound is
// stated in package claim).
//
// A run function must return promptly after its context is done. A voluntary
// release (rebalancing, Leave, Stop) keeps renewing the lease until run has
// returned and only then deletes the key, so the next owner never overlaps.
// An instance never starts a unit again while its previous run of that unit
// is still running.
//
// # Balance
//
// Each instance watches its sets' keys and keeps a view of them. With n live
// members and u units each member's share is u/n, and u mod n members (those
// with the lowest instance IDs among the ones already holding more than u/n)
// may hold one more; 8 units on 3 members gives 3/3/2. An instance below its
// share claims free or expired units, at most as many as it lacks; one above
// its share releases the excess. Claims race harmlessly (compare-and-set), and
// the view converges within a few rounds. A round runs every Renew, and at
// once when the view shows a unit freed or a member joining or leaving, so a
// graceful Stop hands units over within milliseconds rather than after Expiry.
package lease
