// Package crashtest proves the platform's delivery invariants (DESIGN.md,
// invariants 1-4, and 5 for queues) by killing real processes with SIGKILL
// and counting every event afterwards. It has no API; everything is in its
// tests.
//
// # Child processes
//
// A test never kills itself. It starts children by re-executing its own test
// binary with
//
//	os.Args[0] -test.run=^TestChildMain$
//
// and a JSON description of the child's role in the environment variable
// SLUICE_CRASHTEST_CHILD. TestChildMain skips at once when that variable is
// absent, so a normal `go test` run only executes it as the parent's child.
// A child is a complete Sluice instance built with the public SDK: a
// consumer (a function on a hub, with the embedded engine on its own data
// directory or an external one by URL), a publisher, or a queue consumer (a
// function on a queue, with the embedded engine). Because the embedded
// NATS server lives in the child, a SIGKILL also kills the server in the
// middle of its writes, and the next child must recover the store.
//
// Children report what they did by appending lines to a file, one write(2)
// per batch, before the handler returns (consumer) or after Publish returned
// (publisher). Lines therefore survive the kill, and the parent counts them:
//
//	A <partition> <unix-nanos>                   the consumer acquired a partition
//	E <partition> <sequence> <unix-nanos> <body> the consumer processed an event
//	<id> <partition> <sequence>                  the publisher got an acknowledgement
//
// The consumer writes the A lines from its log handler when the host logs
// "partition acquired", so the parent can tell a redelivery after a lease
// handover from a reordering.
//
// The queue consumer writes a line per message given to its function,
// before the function returns, and the queue's depth every 100ms (read
// through the port its embedded server listens on):
//
//	C <id> <dequeue-count> <body>        a message the function completes
//	F <id> <dequeue-count> <body>        a poison message the function fails
//	D <depth> <locked> <delayed>         the queue's statistics
//
// The feed consumer writes a line per change given to its function, and an
// A line (with the range) when the host logs "range acquired":
//
//	C <lsn> <partition-key> <id> <deleted 0|1>  a change of the container's feed
//
// # What the tests prove
//
//   - TestConsumerCrash: a consumer killed repeatedly at random moments
//     (while processing, during start-up and store recovery, and during a
//     graceful stop) loses no event, never skips one, keeps the order of
//     each key within an ownership of a partition, redelivers at most host.MaxRedeliveredBatches
//     batches per partition per kill, and after a graceful stop redelivers
//     nothing (invariants 2 and 3, and invariant 1 for the consumer's own
//     state: checkpoints and leases).
//   - TestPublisherCrash: every event whose Publish returned is stored at
//     the position Publish reported, exactly once, after the publisher and
//     its embedded server are killed mid-stream, with sync=always and with
//     sync=interval; sequence numbers stay strictly increasing per partition
//     (invariant 1).
//   - TestRebalance: three consumers joining one server one after another
//     share a hub's partitions fairly; when one is killed, the survivors
//     take its partitions over after (never before) its lease can have
//     expired; nothing published is lost or reordered across the handovers,
//     and no partition is processed by two consumers at once (invariants
//     2-4).
//   - TestRebalanceOnACluster: the same on a 3-node NATS cluster with
//     every stream and bucket at three copies; the publishing instance,
//     a survivor, never fails a publish.
//   - TestHubCreateCrash: an instance killed while it creates a declared
//     hub's partitions leaves a hub that the next start makes usable.
//   - TestQueueConsumerCrash: a queue-triggered function killed repeatedly
//     (during start-up and while processing) loses no message: every good
//     message is completed at least once, every message its function
//     always fails is kept in the poison queue after maxDequeueCount
//     deliveries, and no good one is; a message keeps its ID across
//     deliveries, the function never sees one delivered more than
//     maxDequeueCount times, and after a graceful stop the queue is empty.
//     Duplicate completions and dead letters stay within what the kills
//     can explain: the messages locked at a kill, and those delivered and
//     completed in the last moments the server had not yet written to its
//     consumer state (invariants 1, 2 and 5 for queues).
//   - TestFeedCrashAndTakeover: two instances of a change-feed function
//     share a container's ranges while documents are written and deleted;
//     each is killed mid-feed in turn, and the survivor takes every range
//     over; every document's last change (deletes as tombstones) is
//     processed, and each partition key's changes come in LSN order within
//     an ownership of its range (invariants 2-4 for change feeds, on
//     SQLite shared by the processes, and on PostgreSQL when configured).
//
// The tests do not call t.Parallel: each one keeps both cores of a CI
// machine busy, and the lease expiries they rely on are timing-sensitive.
// With -short, TestConsumerCrash (about 40s with -race) and
// TestQueueConsumerCrash (about 25s) are skipped. The seed of every random
// choice is logged; set SLUICE_CRASH_SEED to repeat a run's choices,
// SLUICE_CRASH_EVENTS to change the consumer test's event count (default
// 200000), and SLUICE_CRASH_MESSAGES the queue test's message count
// (default 20000).
package crashtest
