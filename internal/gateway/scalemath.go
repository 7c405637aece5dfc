package gateway

// The target-based scaling formulas of Azure Functions' scale controller,
// as pure functions (see docs/autoscaling.md).

// HubDesired returns the instances a hub function needs for lag
// unprocessed events when each instance should have target of them and
// the hub has partitions partitions: ceil(lag / target), rounded up to the
// nearest count that spreads the partitions evenly, ceil(partitions / c)
// for c partitions per instance (for 8 partitions: 1, 2, 3, 4 or 8), so
// at most partitions. No lag needs no instance. A target below 1 counts
// as 1; a hub always has a partition, so partitions below 1 count as 1.
func HubDesired(lag int64, target, partitions int) int {
	if lag <= 0 {
		return 0
	}
	partitions = max(partitions, 1)
	n := ceilDiv(lag, target)
	if n >= int64(partitions) {
		return partitions
	}
	// ceil(partitions/c) grows as c falls: the first that reaches n,
	// counting c down from partitions, is the smallest even spread of at
	// least n instances. c = 1 gives partitions, which does.
	for c := partitions; c >= 1; c-- {
		if even := (partitions + c - 1) / c; int64(even) >= n {
			return even
		}
	}
	return partitions
}

// QueueDesired returns the instances a queue function needs for depth
// messages (visible or locked) when each instance should have target of
// them: ceil(depth / target). An empty queue needs no instance. A target
// below 1 counts as 1.
func QueueDesired(depth int64, target int) int {
	if depth <= 0 {
		return 0
	}
	n := ceilDiv(depth, target)
	const maxInt = int64(^uint(0) >> 1)
	return int(min(n, maxInt))
}

// ceilDiv is ceil(n / d) for n > 0, d counting as at least 1, without
// overflow.
func ceilDiv(n int64, d int) int64 {
	return (n-1)/int64(max(d, 1)) + 1
}
